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


def test_unknown_run_id_names_it(spec):
    experiment = Experiment(Workspace(backends=[spec]), "bad-input")
    with pytest.raises(RunNotFoundError, match="'nope'"):
        from runbridge import Run
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
