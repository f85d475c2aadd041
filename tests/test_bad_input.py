"""Bad input raises at the call, names the argument, and writes nothing (docs/api.md)."""

import io

import pytest

from runbridge import Experiment, Workspace
from runbridge.errors import (BackendUnavailableError, FileExistsInRunError, PropertyChangeError,
                              RunEndedError, RunNotFoundError)
from runbridge.testing import make_png


@pytest.fixture
def spec(tmp_path):
    return f"sqlite:{tmp_path / 'runs.db'}"


@pytest.fixture
def run(spec):
    run = Experiment(Workspace(backends=[spec]), "bad-input").start_logging(outputs=None)
    yield run
    run.complete()


def stored(run):
    """What a user reads back: metrics, files, tags and properties."""
    return run.get_metrics(), run.get_file_names(), run.get_tags(), run.get_properties()


def test_log_refuses_sequences_and_points_to_log_list(run):
    before = stored(run)
    for value in ([1, 2], (1, 2), range(3), (x for x in range(2))):
        with pytest.raises(TypeError, match="value.*log_list"):
            run.log("a", value)
    assert stored(run) == before


def test_log_stores_other_objects_as_repr_with_a_warning(run):
    class Thing:
        def __repr__(self):
            return "<thing>"
    with pytest.warns(UserWarning, match="value of type Thing"):
        run.log("obj", Thing())
    assert run.get_metrics()["obj"] == "<thing>"


def test_log_names_a_bad_name_and_step(run):
    with pytest.raises(TypeError, match="name must be a str"):
        run.log(3, 1.0)
    with pytest.raises(TypeError, match="step must be an int"):
        run.log("a", 1.0, step=1.5)
    assert run.get_metrics() == {}


def test_empty_log_list(run):
    with pytest.raises(ValueError, match="value is empty"):
        run.log_list("l", [])
    assert run.get_metrics() == {}


def test_log_table_unequal_or_empty(run):
    with pytest.raises(ValueError, match="unequal lengths.*'x': 2.*'y': 1"):
        run.log_table("t", {"x": [1, 2], "y": [1]})
    with pytest.raises(ValueError, match="empty dict"):
        run.log_table("t", {})
    with pytest.raises(TypeError, match="value must be a dict"):
        run.log_table("t", [1, 2])
    assert run.get_metrics() == {}


def test_log_row_columns_must_not_change(run):
    run.log_row("r", x=1, y=2)
    with pytest.raises(ValueError, match="columns of 'r' must stay \\['x', 'y'\\]"):
        run.log_row("r", x=1, z=2)
    with pytest.raises(ValueError, match="needs at least one column"):
        run.log_row("r2")
    assert run.get_metrics() == {"r": {"x": 1, "y": 2}}


def test_a_name_keeps_its_kind(run):
    run.log("a", 1)
    with pytest.raises(ValueError, match="'a' already holds a scalar metric"):
        run.log_row("a", x=1)
    assert run.get_metrics() == {"a": 1}


def test_log_image_arguments(run, tmp_path):
    text = tmp_path / "not-an-image.png"
    text.write_text("hello")
    with pytest.raises(ValueError, match="exactly one of path or plot, got neither"):
        run.log_image("i")
    with pytest.raises(ValueError, match="got both"):
        run.log_image("i", path=str(text), plot=object())
    with pytest.raises(FileNotFoundError, match="missing.png"):
        run.log_image("i", path=str(tmp_path / "missing.png"))
    with pytest.raises(ValueError, match="not-an-image.png.*not a PNG or JPEG"):
        run.log_image("i", path=str(text))
    with pytest.raises(TypeError, match="plot must be a matplotlib Figure"):
        run.log_image("i", plot=object())
    assert stored(run) == ({}, [], {}, {})


@pytest.mark.parametrize("name, message", [
    ("/etc/passwd", "absolute"),
    ("../escape.txt", "'..'"),
    ("a/../../b", "'..'"),
    ("nul\x00.txt", "NUL"),
    ("win\\path.txt", "backslash"),
    ("", "empty"),
])
def test_upload_names_that_could_escape_are_refused(run, name, message):
    with pytest.raises(ValueError, match=message):
        run.upload_file(name, io.BytesIO(b"x"))
    assert run.get_file_names() == []


def test_upload_is_write_once_and_validates_everything_first(run, tmp_path):
    good = tmp_path / "good.txt"
    good.write_text("g")
    run.upload_file("a.txt", str(good))
    with pytest.raises(FileExistsInRunError, match="'a.txt' is already a file"):
        run.upload_file("a.txt", str(good))
    with pytest.raises(FileExistsInRunError):
        run.upload_files(["new.txt", "a.txt"], [str(good), str(good)])
    with pytest.raises(FileNotFoundError, match="missing"):
        run.upload_files(["b.txt", "c.txt"], [str(good), str(tmp_path / "missing")])
    with pytest.raises(TypeError, match="text stream"):
        run.upload_file("t.txt", io.StringIO("text"))
    assert run.get_file_names() == ["a.txt"]  # nothing of the refused batches was written


def test_properties_cannot_change(run):
    run.add_properties({"p": "1"})
    with pytest.raises(PropertyChangeError, match="property 'p' is already '1'"):
        run.add_properties({"p": "2"})
    assert run.get_properties() == {"p": "1"}


def test_ended_run_refuses_metrics_but_takes_tags(run):
    run.log("a", 1)
    run.complete()
    for call in (lambda: run.log("a", 2), lambda: run.log_list("l", [1]), lambda: run.log_row("r", x=1),
                 lambda: run.log_table("t", {"x": 1})):
        with pytest.raises(RunEndedError, match="has ended \\(Completed\\)"):
            call()
    run.tag("late", "ok")
    run.add_properties({"late": "ok"})
    assert run.get_metrics() == {"a": 1}
    assert run.get_tags() == {"late": "ok"} and run.get_properties() == {"late": "ok"}


def test_json_metrics_need_valid_json(run):
    with pytest.raises(ValueError, match="'cm' is not valid JSON"):
        run.log_confusion_matrix("cm", "{not json")
    with pytest.raises(TypeError, match="dict or a JSON string"):
        run.log_predictions("p", 3)
    assert run.get_metrics() == {}


def test_unknown_backend_lists_the_installed_ones():
    with pytest.raises(BackendUnavailableError, match="unknown backend 'nosuch'; installed backends: .*sqlite"):
        Workspace(backends=["nosuch:somewhere"])
    with pytest.raises(Exception, match="not of the form 'name:location'"):
        Workspace(backends=["no-colon"])


def test_unknown_run_id_names_it(spec, tmp_path):
    from runbridge import Run
    from runbridge.errors import StoreNotFoundError

    experiment = Experiment(Workspace(backends=[spec]), "bad-input")
    with pytest.raises(StoreNotFoundError, match=f"no runbridge SQLite store at {tmp_path / 'runs.db'}"):
        Run(experiment, "nope")  # nothing was ever written there
    assert not (tmp_path / "runs.db").exists()
    experiment.start_logging(outputs=None).complete()
    with pytest.raises(RunNotFoundError, match="'nope'"):
        Run(experiment, "nope")


def test_experiment_name_is_checked(spec):
    ws = Workspace(backends=[spec])
    with pytest.raises(ValueError, match="257 characters"):
        Experiment(ws, "x" * 257)
    with pytest.raises(ValueError, match="non-empty"):
        Experiment(ws, " ")


def test_valid_png_still_logs_after_errors(run, tmp_path):
    png = tmp_path / "ok.png"
    png.write_bytes(make_png())
    with pytest.raises(ValueError):
        run.log_image("i", path=str(png), plot=object())
    run.log_image("i", path=str(png))
    assert run.get_metrics() == {"i": f"runbridge://{run.id}/ok.png"}


# -- values no backend can hold: refused at the call, on every backend ------------------------------

ALL_KINDS = ("sqlite", "tensorboard", "mlflow", "jsonl")


def _spec(kind, root):
    return {"sqlite": f"sqlite:{root / 'runs.db'}", "tensorboard": f"tensorboard:{root / 'tb'}",
            "mlflow": f"mlflow:sqlite:///{root / 'mlflow.db'}", "jsonl": f"jsonl:{root / 'jsonl'}"}[kind]


@pytest.fixture(scope="module")
def every_backend(tmp_path_factory):
    """One workspace writing to all four backends at once (each bad call reaches every one)."""
    root = tmp_path_factory.mktemp("every-backend")
    return [_spec(kind, root) for kind in ALL_KINDS]


LONG = "x" * 300
BAD_CALLS = {
    "step above int64": (lambda r: r.log("m", 1, step=2**63), ValueError, "step 9223372036854775808 does not fit"),
    "step below int64": (lambda r: r.log("m", 1, step=-(2**63) - 1), ValueError, "step -9223372036854775809"),
    "int beyond float": (lambda r: r.log("m", 10**400), ValueError, "value is an int too large"),
    "log_list int beyond float": (lambda r: r.log_list("l", [1, 10**400]), ValueError,
                                  r"value\[1\] is an int too large"),
    "log_list mixed": (lambda r: r.log_list("l", [1.5, -10**400]), ValueError, r"value\[1\] is an int too large"),
    "surrogate name": (lambda r: r.log("\ud800", 1), ValueError, "name contains '\\\\ud800'.*lone surrogate"),
    "surrogate value": (lambda r: r.log("m", "a\udfff"), ValueError, "value contains '\\\\udfff' at position 1"),
    "surrogate description": (lambda r: r.log("m", 1, description="\ud800"), ValueError, "description contains"),
    "surrogate row cell": (lambda r: r.log_row("t", x="\ud800"), ValueError, "column 'x' contains"),
    "surrogate column": (lambda r: r.log_row("t", **{"\ud800": 1}), ValueError, "column name contains"),
    "surrogate tag key": (lambda r: r.tag("\ud800", "v"), ValueError, "key contains"),
    "surrogate tag value": (lambda r: r.tag("k", "\ud800"), ValueError, "value of tag 'k' contains"),
    "surrogate property": (lambda r: r.add_properties({"p": "\ud800"}), ValueError, "property 'p' contains"),
    "surrogate file name": (lambda r: r.upload_file("f\ud800.txt", io.BytesIO(b"x")), ValueError,
                            "name .* lone surrogate"),
    "description not a str": (lambda r: r.log("m", 1, description=5), TypeError, "description must be a str, got int"),
    "log_row description": (lambda r: r.log_row("t", description=5, x=1), TypeError, "description must be a str"),
    "long upload component": (lambda r: r.upload_file(f"dir/{LONG}.txt", io.BytesIO(b"x")), ValueError,
                              "name has a path component of 304 bytes.*at most 255"),
    "long folder component": (lambda r: r.upload_file(f"{LONG}/a.txt", io.BytesIO(b"x")), ValueError,
                              "path component of 300 bytes"),
    "long json metric name": (lambda r: r.log_confusion_matrix(LONG, {"a": 1}), ValueError, "path component"),
    "long name": (lambda r: r.log("n" * 1025, 1), ValueError, "name is 1025 characters"),
    "child run id escaping": (lambda r: r.child_run(run_id="../../x"), ValueError, "run_id '../../x' is not a valid"),
    "child run id absolute": (lambda r: r.child_run(run_id="/tmp/x"), ValueError, "run_id '/tmp/x' is not a valid"),
    "child run id dots": (lambda r: r.child_run(run_id=".."), ValueError, "run_id '..' is not a valid"),
    "child run id too long": (lambda r: r.child_run(run_id="x" * 256), ValueError, "is not a valid run id"),
    "surrogate display name": (lambda r: r.child_run(name="\ud800"), ValueError, "display_name contains"),
}


@pytest.mark.parametrize("case", list(BAD_CALLS))
def test_values_no_backend_can_hold_are_refused_at_the_call(every_backend, case):
    call, error, message = BAD_CALLS[case]
    ws = Workspace(backends=every_backend)
    run = Experiment(ws, "hostile").start_logging(outputs=None)
    run.log("m", 1, step=5)
    with pytest.raises(error, match=message):
        call(run)
    run.log("m", 2, step=6)
    run.complete()
    assert all(ws.fan_out.failure(b, run.id) is None for b in ws.backends)  # no backend was disabled
    for spec in every_backend:  # each backend on its own holds the run, whole
        from runbridge import Run
        again = Run(Experiment(Workspace(backends=[spec]), "hostile"), run.id)
        assert again.get_metrics() == {"m": [1, 2]}, spec
        assert again.get_status() == "Completed", spec
        assert again.get_file_names() == [] and again.get_children() == [], spec


def test_the_limits_themselves_are_stored_exactly(every_backend):
    """The largest accepted values read back unchanged from every backend."""
    ws = Workspace(backends=every_backend)
    run = Experiment(ws, "limits").start_logging(outputs=None)
    run.log("m", 2**1000, step=2**63 - 1)
    run.log("m", -(2**64), step=-(2**63))
    name = "d/" + "é" * 126 + "xyz"  # a 255-byte component
    run.upload_file(name, io.BytesIO(b"x"))
    child = run.child_run(run_id="c-" + "x" * 253)
    child.complete()
    run.complete()
    assert all(ws.fan_out.failure(b, run.id) is None and ws.fan_out.failure(b, child.id) is None for b in ws.backends)
    for spec in every_backend:
        from runbridge import Run
        again = Run(Experiment(Workspace(backends=[spec]), "limits"), run.id)
        frame = again.get_metrics_frame("m")
        assert list(frame["value"]) == [2**1000, -(2**64)], spec
        assert list(frame["step"]) == [2**63 - 1, -(2**63)], spec
        assert again.get_file_names() == [name], spec
        assert [c.id for c in again.get_children()] == ["c-" + "x" * 253], spec


def test_upload_folder_skips_symlinks_out_of_the_folder(run, tmp_path):
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "a.txt").write_text("a")
    secret = tmp_path / "secret.txt"
    secret.write_text("outside")
    (folder / "link.txt").symlink_to(secret)
    (folder / "dirlink").symlink_to(tmp_path, target_is_directory=True)
    with pytest.warns(UserWarning, match="skipped 2 symbolic link.*dirlink, link.txt"):
        run.upload_folder("up", str(folder))
    assert run.get_file_names() == ["up/sub/a.txt"]
