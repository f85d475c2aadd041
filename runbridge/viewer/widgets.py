"""Runs in a notebook: `RunDetails(run).show()` (what `azureml.widgets` users call) and the HTML
behind `Run._repr_html_`: the run page, self-contained, refreshed by calling again."""

from __future__ import annotations

from typing import Any

from ..run import Run
from .report import run_html


def html(run: Run) -> str:
    """The run's page as self-contained HTML (charts inline, images embedded)."""
    run.flush()
    return run_html(run.experiment.workspace, run.id)


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
