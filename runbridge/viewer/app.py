"""`runbridge ui`: a local, read-only Flask app over a workspace's backends.

GET pages only (Flask answers any other method 405): ``/`` the experiments, ``/runs`` the runs
list (``experiment``, ``status``, ``tag``, ``q``, ``sort``, ``desc``, ``page``, ``per``, ``stats``),
``/run?id=`` a run, ``/compare?id=&id=`` several runs, ``/file?id=&name=`` a run file. No request
writes to a store: pages read through the backends' read hooks, and a file is fetched into a
temporary folder, served, and removed. A bad query argument is a 400 naming it; an unknown run a 404.
"""

from __future__ import annotations

import mimetypes
from typing import TYPE_CHECKING, Any

from .. import shapes
from ..errors import RunNotFoundError, StoreNotFoundError
from ..media import safe_name
from ..records import FINAL_STATUSES, RunInfo
from ..run import Workspace
from . import pages, runpage
from .render import render

if TYPE_CHECKING:
    import flask

#: Seconds between reloads of the page of a Running run.
REFRESH_SECONDS = 5
#: Media types a run file is served as inline (shown by the browser); anything else downloads.
INLINE = ("image/png", "image/jpeg", "image/gif")
#: Ended runs whose file names the app keeps (then it starts over).
FILES_CACHED = 1000


def create_app(ws: Workspace) -> "flask.Flask":
    """The viewer's Flask app over `ws` (nothing is read before a request)."""
    import flask

    app = flask.Flask("runbridge.viewer")

    def page(template: str, **context: Any) -> str:
        return render(template, url_for=flask.url_for, specs=ws.specs, **context)

    def links() -> runpage.Links:
        return runpage.Links(file=lambda run_id, name, media, data: flask.url_for("file_view", id=run_id, name=name),
                             run=lambda run_id: flask.url_for("run_view", id=run_id))

    files: dict[str, frozenset[str]] = {}  # run id -> its file names, for ended runs (they do not change)

    def remember(info: RunInfo, names: list[str]) -> frozenset[str]:
        if info.status in FINAL_STATUSES:
            if len(files) >= FILES_CACHED:
                files.clear()
            files[info.run_id] = frozenset(names)
        return frozenset(names)

    def run_files(info: RunInfo) -> frozenset[str]:
        """The names `/file` may serve: the files the run lists (read once per ended run, so the
        images of a run page of a million points do not read the points again each)."""
        if info.run_id in files:
            return files[info.run_id]
        _, records = ws.read_run(info.experiment, info.run_id)
        return remember(info, shapes.file_names(records))

    def run_id() -> str:
        value = flask.request.args.get("id", "")
        if not value:
            raise ValueError("query argument 'id' must name a run (id=<run id>)")
        return value

    @app.errorhandler(ValueError)
    def bad_request(exc: ValueError) -> tuple[str, int]:
        return page("base.html", title="Bad request", errors=[("request", str(exc))]), 400

    @app.errorhandler(RunNotFoundError)
    def not_found(exc: RunNotFoundError) -> tuple[str, int]:
        return page("base.html", title="Not found", errors=[("run", str(exc))]), 404

    @app.errorhandler(StoreNotFoundError)
    def no_store(exc: StoreNotFoundError) -> tuple[str, int]:
        return page("base.html", title="No store", errors=[("store", str(exc))]), 404

    @app.get("/")
    def experiments_view() -> str:
        found, errors = pages.experiments(ws)
        return page("experiments.html", title="Experiments", experiments=found, errors=errors,
                    several=len(ws.backends) > 1)

    @app.get("/runs")
    def runs_view() -> str:
        args = flask.request.args.to_dict()
        query = pages.Query.parse(args)
        data = pages.runs_page(ws, query)

        def sort_url(column: str) -> str:
            desc = "0" if query.sort == column and query.descending else "1"
            return flask.url_for("runs_view", **{**args, "sort": column, "desc": desc, "page": "1"})

        return page("runs.html", title=query.experiment or "All runs", sort_url=sort_url,
                    page_url=lambda n: flask.url_for("runs_view", **{**args, "page": str(n)}), **data)

    @app.get("/run")
    def run_view() -> str:
        data = runpage.run_page(ws, run_id(), links())
        remember(data["info"], [name for name, _, _ in data["files"]])
        return page("run.html", title=data["info"].display_name or data["info"].run_id, p=data,
                    refresh=REFRESH_SECONDS if data["running"] else 0)

    @app.get("/compare")
    def compare_view() -> str:
        data = runpage.compare_page(ws, flask.request.args.getlist("id"), links())
        return page("compare.html", title="Compare", c=data)

    @app.get("/file")
    def file_view() -> Any:
        name = safe_name(flask.request.args.get("name", ""), "name")
        info = ws.find_run(run_id())
        if name not in run_files(info):
            raise RunNotFoundError(f"run {info.run_id!r} has no file {name!r}")
        data = runpage.load_file(ws, info, name)
        if data is None:
            raise RunNotFoundError(f"no backend could give file {name!r} of run {info.run_id!r}")
        media = mimetypes.guess_type(name)[0] or "application/octet-stream"
        inline = media in INLINE
        response = flask.Response(data, mimetype=media if inline else "application/octet-stream")
        response.headers["Content-Disposition"] = ("inline" if inline else "attachment") + \
            f"; filename*=UTF-8''{_quote(name.rsplit('/', 1)[-1])}"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    return app


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


def serve(ws: Workspace, host: str = "127.0.0.1", port: int = 5005) -> None:
    """Serve the viewer until interrupted (Werkzeug's threaded server; local use)."""
    create_app(ws).run(host=host, port=port, debug=False, use_reloader=False, threaded=True)
