"""The backend contract suite: every backend passes these same tests.

Bind it to a backend by subclassing and providing a `backend_spec` fixture that returns a spec
for an empty store (per test, e.g. under `tmp_path`)::

    from runbridge.testing import BackendContract

    class TestMyBackend(BackendContract):
        @pytest.fixture
        def backend_spec(self, tmp_path):
            return f"mybackend:{tmp_path / 'store'}"

A backend is done when the whole class passes. Tests use pytest (``pip install runbridge[test]``).

Longer than 400 lines because it is one test class, the whole contract, kept in one place so a
backend author reads and subclasses one thing.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import textwrap
import uuid
import zlib
from pathlib import Path
from typing import Any, Callable

import pytest

from .run import Experiment, Run, Workspace
from .errors import FileExistsInRunError, PropertyChangeError, RunEndedError, RunNotFoundError, StoreNotFoundError
from .records import File, Image, Metric, Property, Row, RunInfo, Tag, exactly_equal

# ---------------------------------------------------------------------------------------------
# helpers


#: Deep, type-exact, NaN-aware equality (re-exported for backend authors' own tests).
same = exactly_equal


def assert_same(actual: Any, expected: Any) -> None:
    assert same(actual, expected), f"read back {actual!r}, expected {expected!r}"


def make_png(width: int = 3, height: int = 2, seed: int = 0) -> bytes:
    """A small valid PNG (no dependency), different per seed."""
    raw = b"".join(b"\x00" + bytes((seed + x + y) % 256 for x in range(width * 3)) for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


#: Values that must read back exactly, with their types.
EXACT_VALUES: list[Any] = [
    0, 1, -1, 2**53 + 1, 2**62, -(2**63), 0.1 + 0.2, 1 / 3, -0.0, 5e-324, 1.7976931348623157e308,
    float("nan"), float("inf"), float("-inf"), 1e-300, "", "text", "ünïcødé ✓ 日本", "a\nb\tc", True, False, None,
]


# One case per row of the docs/metrics-shapes.md table: (id, what the script does, get_metrics()[name]).
def _shape_cases() -> list[tuple[str, Callable[[Run], None], str, Any]]:
    png = make_png()
    def image(run: Run) -> None:
        path = Path(f"roc_{uuid.uuid4().hex[:6]}.png")
        path.write_bytes(png)
        try:
            run.log_image("roc", path=str(path))
            run.log_image("roc", path=str(path))
        finally:
            path.unlink()

    return [
        ("log-float", lambda r: r.log("a", 0.5), "a", 0.5),
        ("log-int", lambda r: r.log("a", 1), "a", 1),
        ("log-three", lambda r: [r.log("a", v) for v in (0.1, 0.2, 0.3)], "a", [0.1, 0.2, 0.3]),
        ("log-str-once", lambda r: r.log("s", "abc"), "s", "abc"),
        ("log-str-twice", lambda r: (r.log("s", "abc"), r.log("s", "def")), "s", ["abc", "def"]),
        ("log-bool", lambda r: r.log("b", True), "b", True),
        ("log-none", lambda r: r.log("n", None), "n", None),
        ("log_list-ints", lambda r: r.log_list("l", [1, 2, 3]), "l", [1, 2, 3]),
        ("log_list-mixed", lambda r: r.log_list("l", [1, 2.5]), "l", [1.0, 2.5]),
        ("log_list-single", lambda r: r.log_list("l", [5]), "l", 5),
        ("log_list-twice", lambda r: (r.log_list("l", [1, 2]), r.log_list("l", [1, 2])), "l", [1, 2, 1, 2]),
        ("log_row-once", lambda r: r.log_row("r", x=1, y=0.4), "r", {"x": 1, "y": 0.4}),
        ("log_row-three", lambda r: [r.log_row("r", x=i, y=y) for i, y in ((1, 0.4), (2, 0.5), (3, 0.6))],
         "r", {"x": [1, 2, 3], "y": [0.4, 0.5, 0.6]}),
        ("log_table", lambda r: r.log_table("t", {"x": [1, 2, 3], "y": [.6, .7, .89]}),
         "t", {"x": [1, 2, 3], "y": [0.6, 0.7, 0.89]}),
        ("log_table-one-row", lambda r: r.log_table("t", {"x": [1], "y": ["a"]}), "t", {"x": 1, "y": "a"}),
        ("log_table-twice", lambda r: (r.log_table("t", {"x": [1, 2], "y": ["a", "b"]}),
                                       r.log_table("t", {"x": [3], "y": ["c"]})),
         "t", {"x": [1, 2, 3], "y": ["a", "b", "c"]}),
        ("log_image", image, "roc", "runbridge://{run_id}/{first_image}"),
        ("log_confusion_matrix", lambda r: r.log_confusion_matrix("cm", {"schema_type": "confusion_matrix",
                                                                           "data": [[1, 0], [0, 1]]}),
         "cm", "runbridge://{run_id}/cm"),
    ]


SHAPE_CASES = _shape_cases()


class BackendContract:
    """The contract every backend passes. Subclass it and provide `backend_spec`."""

    @pytest.fixture
    def backend_spec(self) -> str:  # pragma: no cover - overridden by every binding
        raise NotImplementedError("bind the contract with a backend_spec fixture returning 'name:location'")

    @pytest.fixture
    def workspace(self, backend_spec: str) -> Workspace:
        return Workspace(backends=[backend_spec])

    @pytest.fixture
    def experiment(self, workspace: Workspace) -> Experiment:
        # Unique per test, so bindings that share one store (a server) do not see each other's runs.
        return Experiment(workspace, f"contract-{uuid.uuid4().hex[:10]}")

    @pytest.fixture
    def run(self, experiment: Experiment):
        run = experiment.start_logging(outputs=None)
        yield run
        run.complete()

    @staticmethod
    def reopen(backend_spec: str, run: Run) -> Run:
        """The same run through a fresh workspace and backend instance (no shared memory)."""
        return Run(Experiment(Workspace(backends=[backend_spec]), run.experiment.name), run.id)

    # -- docs/metrics-shapes.md, one test per row of the table ---------------------------------
    @pytest.mark.parametrize("case", SHAPE_CASES, ids=[c[0] for c in SHAPE_CASES])
    def test_get_metrics_shape(self, case, run: Run, backend_spec: str, tmp_path, monkeypatch) -> None:
        _, script, name, expected = case
        monkeypatch.chdir(tmp_path)
        script(run)
        run.complete()
        fresh = self.reopen(backend_spec, run)
        if isinstance(expected, str) and "{run_id}" in expected:
            first_image = sorted(n for n in fresh.get_file_names() if n.startswith("roc"))[0] \
                if "{first_image}" in expected else ""
            expected = expected.format(run_id=run.id, first_image=first_image)
        assert_same(fresh.get_metrics()[name], expected)
        assert_same(fresh.get_metrics(name=name), {name: expected})
        assert fresh.get_metrics(name="absent") == {}

    # -- exact values ----------------------------------------------------------------------------
    def test_scalars_round_trip_exactly(self, run: Run, backend_spec: str) -> None:
        for value in EXACT_VALUES:
            run.log("exact", value)
        run.log_list("as_list", [v for v in EXACT_VALUES if type(v) is not float])
        run.log_table("as_table", {"v": EXACT_VALUES, "i": list(range(len(EXACT_VALUES)))})
        run.complete()
        metrics = self.reopen(backend_spec, run).get_metrics()
        assert_same(metrics["exact"], EXACT_VALUES)
        assert_same(metrics["as_list"], [v for v in EXACT_VALUES if type(v) is not float])
        assert_same(metrics["as_table"], {"v": EXACT_VALUES, "i": list(range(len(EXACT_VALUES)))})

    def test_numpy_scalars_are_converted(self, run: Run, backend_spec: str) -> None:
        import numpy as np
        run.log("i64", np.int64(7))
        run.log("f32", np.float32(0.1))
        run.log("b", np.bool_(True))
        run.complete()
        metrics = self.reopen(backend_spec, run).get_metrics()
        assert_same(metrics["i64"], 7)
        assert_same(metrics["f32"], float(np.float32(0.1)))
        assert_same(metrics["b"], True)

    def test_records_round_trip_at_the_hook_level(self, backend_spec: str, experiment: Experiment,
                                                  tmp_path: Path) -> None:
        """What `write` stores, a fresh instance's `read` returns: every field, times to the µs."""
        backend = Workspace(backends=[backend_spec]).backends[0]
        t0 = 1_700_000_000_123_456
        info = RunInfo(f"hook_{uuid.uuid4().hex[:10]}", experiment.name, "hook run", None, "Running", t0)
        png = make_png(seed=7)
        records = [
            *[Metric("m", i, v, None if i % 2 else i * 10, t0 + i, bool(i % 3 == 0), "desc" if i == 0 else "")
              for i, v in enumerate(EXACT_VALUES)],
            Metric("stepped", 0, 1.5, -3, t0 + 100),
            Row("tab", 0, (("x", 1), ("y", float("nan")), ("z", None)), t0 + 200, False, "a table"),
            Row("tab", 1, (("x", 2), ("y", 0.1), ("z", "s")), t0 + 201, True),
            Image("img", 0, "plots/img.png", "image/png", t0 + 300, 5, png, "an image"),
            Tag("k", "v", t0 + 400), Tag("empty", None, t0 + 401), Tag("k", "v2", t0 + 402),
            Tag("gone", "x", t0 + 403), Tag("gone", None, t0 + 404, True),
            Property("p", "1", t0 + 500), Property("q", None, t0 + 501),
            File("nested/dir/data.bin", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
                 t0 + 600, data=b"abc"),
        ]
        # every stream record from writer "w-one", plus a second writer reusing seq 0 of "m"
        records = [r._replace(writer="w-one") if type(r) in (Metric, Row, Image) else r for r in records]
        records.insert(3, Metric("m", 0, 7.0, None, t0 + 2, writer="w-two"))
        backend.start_run(info)
        backend.write(info, records)
        ended = info._replace(status="Completed", end_time=t0 + 999)
        backend.end_run(ended, "Completed")

        fresh = Workspace(backends=[backend_spec]).backends[0]
        got = fresh.read(experiment.name, info.run_id)
        assert got is not None
        assert_same(tuple(got.info), tuple(ended))
        by_kind: dict[type, list] = {}
        for rec in got.records:
            by_kind.setdefault(type(rec), []).append(rec)
        for kind in (Metric, Row, Tag, Property):
            assert_same([tuple(r) for r in by_kind.get(kind, [])], [tuple(r) for r in records if type(r) is kind])
        [image] = by_kind[Image]
        written_image = next(r for r in records if type(r) is Image)
        assert_same(tuple(image._replace(data=None)), tuple(written_image._replace(data=None)))
        [file] = by_kind[File]
        assert (file.name, file.size, file.sha256, file.time) == ("nested/dir/data.bin", 3, records[-1].sha256, t0 + 600)
        for name, content in (("plots/img.png", png), ("nested/dir/data.bin", b"abc")):
            target = tmp_path / "fetched" / name
            assert fresh.fetch_file(got.info, name, str(target))
            assert target.read_bytes() == content

    def test_fast_reads_agree_with_read(self, backend_spec: str, experiment: Experiment) -> None:
        """`read_info`, `read_metrics` and `summarize_runs` (where the backend has them) give what
        `read` gives: the same info, points, values, order, frames and run-list numbers."""
        import pandas as pd

        from . import shapes
        from .columns import columns_to_records, fold_columns
        from .frames import columns_frame, metrics_frame
        from .records import in_logging_order

        backend = Workspace(backends=[backend_spec]).backends[0]
        t0 = 1_700_000_000_000_000
        one = [Metric("m", i, v, None if i % 2 else i * 10, t0 + i, i % 3 == 0, "d" if i == 0 else "", "w-one")
               for i, v in enumerate(EXACT_VALUES)]
        one += [Metric("n", i, -float(i), i, t0 + 50 + i, False, "", "w-one") for i in range(3)]
        one += [Row("tab", 0, (("x", 1), ("y", None)), t0 + 200, False, "", "w-one"),
                Image("img", 0, "img.png", "image/png", t0 + 300, 5, make_png(), "", "w-one"),
                Tag("k", "v", t0 + 400), Tag("k", "v2", t0 + 401), Tag("gone", "x", t0 + 402),
                Tag("gone", None, t0 + 403, True), Property("p", "1", t0 + 500)]
        two = one[:3] + [Metric("m", 0, 7, 1, t0 + 2, False, "", "w-two"),
                         Metric("n", 0, 9.5, None, t0 + 51, False, "", "w-two")] + one[3:]
        infos = []
        # names and errors a tracker may not hold as they are: read_info must still agree with read
        hostile = [(None, None), (None, None), ("名" * 300, "E" * 10_000), ("  ", "x\ny")]
        for records, (display_name, error) in zip((one, two, one[:2], two[:2]), hostile):
            info = RunInfo(f"fast_{uuid.uuid4().hex[:10]}", experiment.name, display_name, None, "Running", t0)
            backend.start_run(info)
            backend.write(info, records)
            status = "Completed" if error is None else "Failed"
            backend.end_run(info._replace(status=status, end_time=t0 + 999, error=error), status)
            infos.append(info)
        fresh = Workspace(backends=[backend_spec]).backends[0]
        for info in infos:
            found = fresh.read(experiment.name, info.run_id)
            records = in_logging_order(found.all())
            assert_same(tuple(fresh.read_info(experiment.name, info.run_id)), tuple(found.info))
            if not fresh.implements("read_metrics"):
                continue
            for name in (None, "m", "n", "tab", "img", "absent"):
                columns = fresh.read_metrics(experiment.name, info.run_id, name)
                assert columns is not None
                expected = shapes.fold(records)
                assert_same(fold_columns(info.run_id, columns),
                            expected if name is None else {k: v for k, v in expected.items() if k == name})
                stream = [r._replace(description="") for r in records if type(r) in (Metric, Row, Image)
                          and (name is None or r.name == name)]
                assert_same([tuple(r) for r in columns_to_records(columns) if type(r) is Metric],
                            [tuple(r) for r in stream if type(r) is Metric])
                pd.testing.assert_frame_equal(columns_frame(columns), metrics_frame(records, name))
        assert fresh.read_info(experiment.name, "no-such-run") is None
        summaries = fresh.summarize_runs(experiment.name)
        if summaries is not None:
            assert [s.info.run_id for s in summaries] == [i.run_id for i in fresh.list_runs(experiment.name)]
            for summary in summaries:
                found = fresh.read(experiment.name, summary.info.run_id)
                expected = shapes.summarize(in_logging_order(found.all()))
                assert_same(tuple(summary.info), tuple(expected.info))
                for part in ("tags", "properties", "metrics"):
                    assert_same(getattr(summary, part), getattr(expected, part))

    def test_two_writers_of_one_run_keep_every_point(self, run: Run, backend_spec: str) -> None:
        """Two processes logging one run (here two Run objects, each a writer numbering its own
        records) log the same values at the same steps: every point reads back, in time order."""
        other = self.reopen(backend_spec, run)
        for i in range(50):
            run.log("loss", 0.5, step=i)
            other.log("loss", 0.5, step=i)
            run.log_row("t", i=i)
            other.log_row("t", i=i)
        other.flush()
        run.complete()
        fresh = self.reopen(backend_spec, run)
        frame = fresh.get_metrics_frame("loss")
        assert sorted(frame["step"].tolist()) == sorted(list(range(50)) * 2)
        assert sorted(frame.groupby("writer").size().tolist()) == [50, 50]  # two writers, 50 points each
        assert frame["timestamp"].is_monotonic_increasing
        assert fresh.get_metrics()["t"] == {"i": [i for i in range(50) for _ in range(2)]}

    def test_many_points_keep_order(self, run: Run, backend_spec: str) -> None:
        values = [i * 0.5 for i in range(25_000)]  # crosses the buffer's batch size
        for i, v in enumerate(values):
            run.log("long", v, step=i)
        run.complete()
        fresh = self.reopen(backend_spec, run)
        assert_same(fresh.get_metrics()["long"], values)
        frame = fresh.get_metrics_frame("long")
        assert frame["step"].tolist() == list(range(25_000))

    def test_steps_and_timestamps_are_kept(self, run: Run, backend_spec: str) -> None:
        run.log("loss", 0.9, step=10)
        run.log("loss", 0.8, step=20)
        run.log("acc", 0.1)
        run.complete()
        frame = self.reopen(backend_spec, run).get_metrics_frame()
        loss = frame[frame["name"] == "loss"]
        assert loss["step"].tolist() == [10, 20]
        assert loss["value"].tolist() == [0.9, 0.8]
        assert loss["timestamp"].is_monotonic_increasing
        start = self.reopen(backend_spec, run).get_details()["startTimeUtc"]
        assert str(loss["timestamp"].iloc[0].isoformat()) >= start[:19]

    def test_a_new_process_reads_everything(self, run: Run, backend_spec: str, tmp_path: Path) -> None:
        png = tmp_path / "pic.png"
        png.write_bytes(make_png(seed=3))
        run.log("loss", 0.25)
        run.log("loss", 0.125)
        run.log_row("r", x=1, y="a")
        run.log_image("pic", path=str(png))
        run.tag("team", "vision")
        run.add_properties({"seed": "42"})
        run.upload_file("notes/readme.txt", io.BytesIO(b"hello"))
        run.complete()
        code = textwrap.dedent(f"""
            import json, sys
            from runbridge import Workspace, Experiment, Run
            run = Run(Experiment(Workspace(backends=[{backend_spec!r}]), {run.experiment.name!r}), {run.id!r})
            out = run.get_metrics()
            json.dump({{"metrics": out, "tags": run.get_tags(), "props": run.get_properties(),
                        "files": run.get_file_names(), "status": run.get_status()}}, sys.stdout)
        """)
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                                timeout=300)
        assert result.returncode == 0, result.stderr
        seen = json.loads(result.stdout)
        assert seen["metrics"]["loss"] == [0.25, 0.125]
        assert seen["metrics"]["r"] == {"x": 1, "y": "a"}
        assert seen["metrics"]["pic"] == f"runbridge://{run.id}/{png.name}"
        assert seen["tags"] == {"team": "vision"}
        assert seen["props"] == {"seed": "42"}
        assert seen["files"] == sorted(["notes/readme.txt", png.name])
        assert seen["status"] == "Completed"

    # -- images and files ------------------------------------------------------------------------
    def test_images_come_back_byte_identical(self, run: Run, backend_spec: str, tmp_path: Path) -> None:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        png = make_png(seed=11)
        (tmp_path / "imgs").mkdir()
        (tmp_path / "imgs" / "a.png").write_bytes(png)
        jpeg = b"\xff\xd8\xff\xe0" + bytes(range(256)) + b"\xff\xd9"
        (tmp_path / "b.jpg").write_bytes(jpeg)
        run.log_image("png", path=str(tmp_path / "imgs" / "a.png"))
        run.log_image("jpeg", path=str(tmp_path / "b.jpg"))
        fig = plt.figure()
        plt.plot([1, 2, 3])
        run.log_image("plot", plot=fig)
        plt.close(fig)
        run.complete()
        fresh = self.reopen(backend_spec, run)
        names = fresh.get_file_names()
        assert "a.png" in names and "b.jpg" in names
        plot_name = [n for n in names if n.startswith("plot_") and n.endswith(".png")]
        assert len(plot_name) == 1
        out = tmp_path / "out"
        assert Path(fresh.download_file("a.png", out / "a.png")).read_bytes() == png
        assert Path(fresh.download_file("b.jpg", out / "b.jpg")).read_bytes() == jpeg
        assert Path(fresh.download_file(plot_name[0], out / "p.png")).read_bytes().startswith(b"\x89PNG")

    def test_uploads_nested_names_and_streams(self, run: Run, backend_spec: str, tmp_path: Path) -> None:
        src = tmp_path / "src"
        (src / "sub" / "deeper").mkdir(parents=True)
        (src / "a.txt").write_text("A")
        (src / "sub" / "deeper" / "b.bin").write_bytes(bytes(range(256)) * 40)
        model = tmp_path / "model.pkl"
        model.write_bytes(b"\x00model\xff")
        run.upload_file("best_model.pkl", str(model))
        run.upload_file("streams/one.bin", io.BytesIO(b"stream-bytes"))
        run.upload_folder("folder", str(src))
        run.upload_files(["x/1.txt", "x/2.txt"], [str(src / "a.txt"), str(model)])
        with pytest.raises(FileExistsInRunError, match="best_model.pkl"):
            run.upload_file("best_model.pkl", io.BytesIO(b"again"))
        run.complete()
        fresh = self.reopen(backend_spec, run)
        assert fresh.get_file_names() == sorted([
            "best_model.pkl", "streams/one.bin", "folder/a.txt", "folder/sub/deeper/b.bin", "x/1.txt", "x/2.txt"])
        out = tmp_path / "out"
        paths = fresh.download_files(prefix="folder/", output_directory=str(out))
        assert sorted(Path(p).relative_to(out).as_posix() for p in paths) == ["folder/a.txt", "folder/sub/deeper/b.bin"]
        assert (out / "folder/sub/deeper/b.bin").read_bytes() == bytes(range(256)) * 40
        assert Path(fresh.download_file("streams/one.bin", out / "s.bin")).read_bytes() == b"stream-bytes"
        assert Path(fresh.download_file("best_model.pkl", out / "m.pkl")).read_bytes() == b"\x00model\xff"
        with pytest.raises(FileExistsInRunError):  # write-once holds for a fetched run too
            fresh.upload_file("x/1.txt", io.BytesIO(b"z"))

    def test_outputs_folder_is_uploaded_on_complete(self, experiment: Experiment, backend_spec: str,
                                                    tmp_path: Path) -> None:
        outputs = tmp_path / "outputs"
        (outputs / "nested").mkdir(parents=True)
        (outputs / "myfile.txt").write_text("explicit")
        (outputs / "nested" / "auto.txt").write_text("auto")
        run = experiment.start_logging(outputs=str(outputs))
        run.upload_file("outputs/myfile.txt", str(outputs / "myfile.txt"))
        run.complete()
        assert self.reopen(backend_spec, run).get_file_names() == ["outputs/myfile.txt", "outputs/nested/auto.txt"]

    # -- tags, properties ------------------------------------------------------------------------
    def test_tags_set_overwrite_remove_valueless(self, run: Run, backend_spec: str) -> None:
        run.tag("selected", "yes")
        run.tag("flag")
        run.set_tags({"a": "1", "b": "2", "selected": "no"})
        run.remove_tags(["a"])
        run.tag("long", "x" * 10_000)
        assert run.get_tags() == {"selected": "no", "flag": None, "b": "2", "long": "x" * 10_000}
        run.complete()
        completed = self.reopen(backend_spec, run)
        completed.tag("after", "completion")  # an ended run still takes tags
        again = self.reopen(backend_spec, run)
        assert again.get_tags() == {"selected": "no", "flag": None, "b": "2", "long": "x" * 10_000,
                                    "after": "completion"}

    def test_properties_are_add_only(self, run: Run, backend_spec: str) -> None:
        run.add_properties({"author": "ada", "seed": "1"})
        run.add_properties({"author": "ada"})  # the same value again is fine
        with pytest.raises(PropertyChangeError, match="author"):
            run.add_properties({"new": "x", "author": "bob"})
        run.complete()
        fresh = self.reopen(backend_spec, run)
        assert fresh.get_properties() == {"author": "ada", "seed": "1"}  # 'new' was not written either
        with pytest.raises(PropertyChangeError, match="seed"):
            fresh.add_properties({"seed": "2"})
        fresh.add_properties({"late": "ok"})
        assert self.reopen(backend_spec, run).get_properties() == {"author": "ada", "seed": "1", "late": "ok"}

    # -- lifecycle -------------------------------------------------------------------------------
    def test_status_and_times(self, experiment: Experiment, backend_spec: str) -> None:
        done = experiment.start_logging(outputs=None)
        assert done.get_status() == "Running"
        assert "endTimeUtc" not in done.get_details()
        done.complete()
        failed = experiment.start_logging(outputs=None)
        failed.fail("the loss diverged")
        canceled = experiment.start_logging(outputs=None)
        canceled.cancel()
        for run, status in ((done, "Completed"), (failed, "Failed"), (canceled, "Canceled")):
            details = self.reopen(backend_spec, run).get_details()
            assert details["status"] == status
            assert details["runId"] == run.id
            assert details["startTimeUtc"] <= details["endTimeUtc"]
        assert self.reopen(backend_spec, failed).get_details()["error"]["error"]["message"] == "the loss diverged"
        with pytest.raises(RunEndedError, match="ended"):
            done.log("late", 1)

    def test_with_block_completes_or_fails(self, experiment: Experiment, backend_spec: str) -> None:
        with experiment.start_logging(outputs=None) as ok:
            ok.log("x", 1)
        with pytest.raises(ZeroDivisionError):
            with experiment.start_logging(outputs=None) as bad:
                1 / 0
        assert self.reopen(backend_spec, ok).get_status() == "Completed"
        failed = self.reopen(backend_spec, bad).get_details()
        assert failed["status"] == "Failed" and "ZeroDivisionError" in failed["error"]["error"]["message"]

    def test_opening_a_run_by_id_reads_its_info_not_its_records(self, experiment: Experiment,
                                                                backend_spec: str) -> None:
        """`Run(exp, id)` asks only `read_info` of a backend that has it (one `read` otherwise);
        the points are read when asked for, as columns by a backend with `read_metrics`."""
        run = experiment.start_logging(display_name="named", outputs=None)
        for i in range(100):
            run.log("loss", float(i))
        run.complete()
        workspace = Workspace(backends=[backend_spec])
        backend = workspace.backends[0]
        called: list[str] = []
        backend.pm.add_hookcall_monitoring(lambda hook, impls, kwargs: called.append(hook), lambda *a: None)
        opened = Run(Experiment(workspace, experiment.name), run.id)
        assert (opened.display_name, opened.status) == ("named", "Completed")
        assert called == (["read_info"] if backend.implements("read_info") else ["read"])
        assert opened.get_metrics("loss")["loss"] == [float(i) for i in range(100)]
        if backend.implements("read_metrics"):  # as columns, not every record
            assert "read_metrics" in called and "read" not in called[1:]

    def test_unknown_run_id_is_a_clear_error(self, experiment: Experiment) -> None:
        experiment.start_logging(outputs=None).complete()  # the store exists: only the run is unknown
        with pytest.raises(RunNotFoundError, match="no-such-run"):
            Run(experiment, "no-such-run")

    def test_reading_creates_nothing(self, backend_spec: str, tmp_path: Path) -> None:
        """Reads on a store nothing wrote to yet create nothing: they raise `StoreNotFoundError`
        (naming the location) or, for a store that exists (a server), find nothing."""
        before = sorted(tmp_path.rglob("*"))
        backend = Workspace(backends=[backend_spec]).backends[0]
        reads = [lambda: backend.list_runs(None), lambda: backend.list_experiments(),
                 lambda: backend.read("contract-none", "no-such-run")]
        for read in reads:
            try:
                found = read()
            except StoreNotFoundError as exc:
                assert str(exc), "StoreNotFoundError must name the location"
            else:
                assert not [x for x in (found or []) if getattr(x, "experiment", x) == "contract-none"]
        assert sorted(tmp_path.rglob("*")) == before

    # -- listing and children --------------------------------------------------------------------
    def test_runs_listed_newest_first_with_tag_filters(self, experiment: Experiment, backend_spec: str) -> None:
        first = experiment.start_logging(outputs=None, tags={"kind": "a"})
        first.complete()
        second = experiment.start_logging(display_name="second", outputs=None, tags={"kind": "b", "x": None})
        second.complete()
        fresh = Experiment(Workspace(backends=[backend_spec]), experiment.name)
        assert [r.id for r in fresh.get_runs()] == [second.id, first.id]
        assert [r.id for r in fresh.get_runs(tags={"kind": "a"})] == [first.id]
        assert [r.id for r in fresh.get_runs(tags="x")] == [second.id]
        assert Run(fresh, second.id).display_name == "second"
        assert experiment.name in {e.name for e in Experiment.list(fresh.workspace)}
        assert [first.number, second.number] == [1, 2]

    def test_child_runs_and_recursive_metrics(self, run: Run, backend_spec: str) -> None:
        run.log("top", 1)
        child = run.child_run(name="child")
        child.log("c", 2)
        grandchild = child.child_run()
        grandchild.log("g", 3)
        tagged = run.create_children(tag_key="fold", tag_values=["0", "1"])
        for g in (grandchild, child, *tagged):
            g.complete()
        assert child.parent.id == run.id
        assert run.parent is None
        run.complete()
        fresh = self.reopen(backend_spec, run)
        assert {c.id for c in fresh.get_children()} == {child.id, *(t.id for t in tagged)}
        assert {c.id for c in fresh.get_children(recursive=True)} == {child.id, grandchild.id, *(t.id for t in tagged)}
        assert fresh.get_metrics(recursive=True) == {run.id: {"top": 1}, child.id: {"c": 2}, grandchild.id: {"g": 3}}
        assert self.reopen(backend_spec, grandchild).parent.parent.id == run.id
        assert sorted(t.get_tags()["fold"] for t in fresh.get_children() if t.id != child.id) == ["0", "1"]
        assert [r.id for r in fresh.experiment.get_runs()] == [run.id]  # children only on request
        assert len(list(fresh.experiment.get_runs(include_children=True))) == 5

    def test_portal_url(self, run: Run) -> None:
        url = run.get_portal_url()
        assert isinstance(url, str) and url
