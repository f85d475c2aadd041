"""Runs in a notebook: `RunDetails(run).show()` (what `azureml.widgets` users call) and the HTML
behind `Run._repr_html_`: the run page, self-contained, refreshed by calling again. The page sits
in an iframe of its own (`srcdoc`), so its styles never touch the notebook's."""

from __future__ import annotations

from typing import Any

from ..run import Run
from .render import render
from .report import run_html

#: Height of the notebook frame, in pixels (the page scrolls inside it).
FRAME_HEIGHT = 720


def html(run: Run) -> str:
    """The run's page, self-contained (charts inline, images embedded), in a sandboxed iframe."""
    run.flush()
    page = run_html(run.experiment.workspace, run.id)
    return render("widget.html", page=page, title=f"run {run.id}", height=FRAME_HEIGHT)


class RunDetails:
    """azureml.widgets' `RunDetails`: `RunDetails(run).show()` displays the run page in Jupyter."""

    def __init__(self, run_instance: Run, **_ignored: Any):
        if not isinstance(run_instance, Run):
            raise TypeError(f"run_instance must be a runbridge Run, got {type(run_instance).__name__}")
        self.run = run_instance

    def _repr_html_(self) -> str:
        return html(self.run)

    def get_html(self) -> str:
        """The page as HTML text."""
        return html(self.run)

    def show(self) -> Any:
        """Display the run page in the notebook (IPython); outside one, return its HTML."""
        try:
            from IPython.display import HTML, display
        except ImportError:
            return self.get_html()
        return display(HTML(self.get_html()))
