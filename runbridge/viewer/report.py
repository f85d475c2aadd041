"""`runbridge report`: run pages as one self-contained HTML file (charts as inline SVG, images as
data: URIs, no script and nothing fetched from the network), to attach to a pull request, an email
or a CI artefact. `run_html` is the same page for one run (notebooks, `widgets`)."""

from __future__ import annotations

import base64
from datetime import datetime, timezone
from typing import Sequence

from ..errors import RunNotFoundError
from ..run import Workspace
from .pages import union_runs
from .render import render
from .runpage import Links, run_page

#: Media types embedded as images; other files are listed by name.
EMBEDDED = ("image/png", "image/jpeg", "image/gif", "image/svg+xml")


def _data_uri(run_id: str, name: str, media_type: str, data: bytes | None) -> str | None:
    if data is None or media_type not in EMBEDDED:
        return None
    return f"data:{media_type};base64,{base64.b64encode(data).decode('ascii')}"


#: Links of a self-contained page: images embedded, runs as anchors in the same file.
EMBEDDING = Links(file=_data_uri, run=lambda run_id: f"#run-{run_id}", embeds=True)


def select_runs(ws: Workspace, targets: Sequence[str]) -> list[str]:
    """The run ids `targets` name: each an experiment (all its runs, newest first) or a run id;
    no target: every run. LookupError names a target that is neither."""
    runs = union_runs(ws, None).runs
    if not targets:
        return [h.info.run_id for h in runs]
    ids = {h.info.run_id for h in runs}
    out: list[str] = []
    for target in targets:
        in_experiment = [h.info.run_id for h in runs if h.info.experiment == target]
        if in_experiment:
            out.extend(in_experiment)
        elif target in ids:
            out.append(target)
        else:
            raise RunNotFoundError(f"{target!r} is neither an experiment nor a run in {', '.join(ws.specs)} "
                                   "(list them with: runbridge runs)")
    return list(dict.fromkeys(out))


def report_html(ws: Workspace, run_ids: Sequence[str], title: str = "runbridge report") -> str:
    """One self-contained HTML page showing every run of `run_ids`."""
    made = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M")
    return render("report.html", title=title, made=made, specs=ws.specs,
                  pages=[run_page(ws, run_id, EMBEDDING) for run_id in run_ids])


def run_html(ws: Workspace, run_id: str) -> str:
    """One run's page, self-contained (what a notebook shows)."""
    return report_html(ws, [run_id], title=f"Run {run_id}")
