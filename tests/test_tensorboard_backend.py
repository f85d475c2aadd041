"""The TensorBoard backend against the real thing: a live TensorBoard server, TensorBoard's own
loaders, event folders tensorboardX wrote, damaged files, volume, flushing and two processes.

(The contract suite in test_contract.py covers exact read-back through runbridge itself.)
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import struct
import subprocess
import sys
import textwrap
import time
import urllib.parse
import urllib.request
import warnings
from pathlib import Path

import pytest

from runbridge import Experiment, Run, Workspace
from runbridge.backends import open_backend
from runbridge.records import Image, Metric, RunInfo
from runbridge.testing import make_png
from runbridge_tensorboard import EventFileDamageWarning, ForeignRunWarning
from runbridge_tensorboard.backend import path_component
from runbridge_tensorboard.hparams import HPARAMS_FILE
from tensorboard.backend.event_processing import event_accumulator as ea

F32 = lambda v: struct.unpack("<f", struct.pack("<f", v))[0]  # noqa: E731 - what float32 shows


def event_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if "tfevents" in p.name)


def accumulator(folder: Path) -> ea.EventAccumulator:
    """TensorBoard's own loader with sampling off and no purging."""
    acc = ea.EventAccumulator(str(folder), size_guidance={ea.SCALARS: 0, ea.TENSORS: 0, ea.IMAGES: 0},
                              purge_orphaned_data=False)
    acc.Reload()
    return acc


# --- a live TensorBoard server -------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as resp:  # noqa: S310 - 127.0.0.1 only
        return resp.read()


def _get_json(url: str):
    return json.loads(_get(url))


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """A log folder with one named parent run (numbers, strings, tables, an image, tags and
    properties), a named child run, and a run without a name."""
    logdir = tmp_path_factory.mktemp("tb-live")
    png = make_png(width=4, height=3, seed=5)
    pic = logdir.parent / f"{logdir.name}-pic.png"
    pic.write_bytes(png)
    ws = Workspace(backends=[f"tensorboard:{logdir}"])
    run = Experiment(ws, "live").start_logging(display_name="ridge sweep", outputs=None,
                                               tags={"model": "ridge", "flag": None})
    run.add_properties({"dataset": "diabetes"})
    losses = [0.1, 0.2 + 1e-12, 1 / 3, 2.5]
    for i, v in enumerate(losses):
        run.log("loss", v, step=10 * i, description="training loss" if i == 0 else "")
    run.log("count", 7)
    run.log("count", 2**40 + 1)
    run.log("note", "hello **world**")
    run.log_table("tbl", {"epoch": [1, 2], "acc": [0.5, 0.75]})
    run.log_image("pic", path=str(pic))
    for x in range(5):  # one table logged row by row, over several write batches
        run.log_row("Y over X", x=x, y=x * 0.5, label=f"r{x}")
        if x % 2:
            run.flush()
    run.log("final_mse", 0.25)
    child = run.child_run(name="fold-0")
    child.log("child_metric", 1.5)
    child.complete()
    anonymous = Experiment(ws, "live").start_logging(outputs=None)
    anonymous.log("loss", 1.0)
    anonymous.complete()
    run.complete()
    tb_run = f"live/ridge sweep ({run.id[-8:]})"
    return {"logdir": logdir, "run": run, "child": child, "losses": losses, "png": png,
            "tb_run": tb_run, "tb_child": f"{tb_run}/fold-0 ({child.id[-8:]})",
            "tb_anonymous": f"live/{anonymous.id}"}


@pytest.fixture(scope="module", params=["default", "legacy-loader"])
def tensorboard_server(request, logged):
    """`tensorboard --logdir <tmp> --host 127.0.0.1 --port <free>`: the default server (its Rust
    data server) and the legacy Python loader (--load_fast=false). Stopped after the module."""
    port = _free_port()
    cmd = [sys.executable, "-m", "tensorboard.main", "--logdir", str(logged["logdir"]),
           "--host", "127.0.0.1", "--port", str(port), "--reload_interval", "1"]
    if request.param == "legacy-loader":
        cmd.append("--load_fast=false")
    log = open(logged["logdir"].parent / f"tensorboard-{request.param}.log", "wb")
    env = dict(os.environ, TMPDIR=str(logged["logdir"].parent))  # its .tensorboard-info stays in tmp
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"tensorboard exited with {proc.returncode}")
            try:
                tags = _get_json(f"{base}/data/plugin/scalars/tags")
                if logged["tb_child"] in tags and "loss" in tags.get(logged["tb_run"], {}):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("tensorboard did not load the runs within 90 s")
            time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)
        log.close()


def _q(**params) -> str:
    return urllib.parse.urlencode(params)


def test_scalars_dashboard_plots_every_number(tensorboard_server, logged):
    base, run = tensorboard_server, logged["tb_run"]
    tags = _get_json(f"{base}/data/plugin/scalars/tags")
    # runbridge's exact copies stay out of the dashboard; a table's numeric columns are in it
    assert set(tags[run]) == {"loss", "count", "tbl/epoch", "tbl/acc", "Y over X/x", "Y over X/y", "final_mse"}
    assert "training loss" in tags[run]["loss"]["description"]
    points = _get_json(f"{base}/data/plugin/scalars/scalars?{_q(run=run, tag='loss')}")
    assert [p[1] for p in points] == [0, 10, 20, 30]
    assert [p[2] for p in points] == [F32(v) for v in logged["losses"]]
    counts = _get_json(f"{base}/data/plugin/scalars/scalars?{_q(run=run, tag='count')}")
    assert [p[2] for p in counts] == [7.0, F32(2**40 + 1)]
    child = _get_json(f"{base}/data/plugin/scalars/scalars?{_q(run=logged['tb_child'], tag='child_metric')}")
    assert [p[2] for p in child] == [1.5]


def test_text_dashboard_shows_strings_and_tables(tensorboard_server, logged):
    base, run = tensorboard_server, logged["tb_run"]
    tags = _get_json(f"{base}/data/plugin/text/tags")
    assert set(tags[run]) == {"note", "tbl", "Y over X"}
    [note] = _get_json(f"{base}/data/plugin/text/text?{_q(run=run, tag='note')}")
    assert "hello <strong>world</strong>" in note["text"]
    [table] = _get_json(f"{base}/data/plugin/text/text?{_q(run=run, tag='tbl')}")
    assert "<table>" in table["text"] and "0.75" in table["text"] and "epoch" in table["text"]


def test_images_dashboard_serves_the_original_bytes(tensorboard_server, logged):
    base, run = tensorboard_server, logged["tb_run"]
    tags = _get_json(f"{base}/data/plugin/images/tags")
    assert set(tags[run]) == {"pic"}
    [entry] = _get_json(f"{base}/data/plugin/images/images?{_q(run=run, tag='pic', sample=0)}")
    assert _get(f"{base}/data/plugin/images/individualImage?{entry['query']}") == logged["png"]


def test_run_selector_shows_display_names(tensorboard_server, logged):
    runs = _get_json(f"{tensorboard_server}/data/runs")
    assert logged["tb_run"] in runs and logged["tb_child"] in runs  # "live/ridge sweep (1a2b3c4d)"
    assert logged["tb_anonymous"] in runs  # a run without a name is listed by its id


def test_table_columns_are_scalars_over_the_row_index(tensorboard_server, logged):
    base, run = tensorboard_server, logged["tb_run"]
    ys = _get_json(f"{base}/data/plugin/scalars/scalars?{_q(run=run, tag='Y over X/y')}")
    assert [(p[1], p[2]) for p in ys] == [(x, x * 0.5) for x in range(5)]
    acc = _get_json(f"{base}/data/plugin/scalars/scalars?{_q(run=run, tag='tbl/acc')}")
    assert [(p[1], p[2]) for p in acc] == [(0, 0.5), (1, 0.75)]


def test_text_view_shows_the_table_so_far(tensorboard_server, logged):
    base, run = tensorboard_server, logged["tb_run"]
    shown = _get_json(f"{base}/data/plugin/text/text?{_q(run=run, tag='Y over X')}")
    # one entry per write batch (the flushes end batches after rows 1 and 3), each entry the
    # whole table up to its last row (a header and step + 1 rows), not that batch's rows alone
    assert {1, 3, 4} <= {entry["step"] for entry in shown}
    assert all(entry["text"].count("<tr>") == entry["step"] + 2 for entry in shown)
    last = shown[-1]["text"]
    assert shown[-1]["step"] == 4 and all(f"r{x}" in last for x in range(5))


def _post_json(url: str, body: dict):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", "X-XSRF-Protected": "1"})
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - 127.0.0.1 only
        return json.loads(resp.read())


def test_hparams_dashboard_lists_tags_properties_and_final_metrics(tensorboard_server, logged):
    base, run = tensorboard_server, logged["tb_run"]
    experiment = _post_json(f"{base}/data/plugin/hparams/experiment", {"experimentName": ""})
    names = {h["name"] for h in experiment["hparamInfos"]}
    assert {"tags/model", "tags/flag", "properties/dataset"} <= names
    assert not any(n.startswith("tags/runbridge.") for n in names)  # bookkeeping stays out
    metrics = {m["name"]["tag"] for m in experiment["metricInfos"]}
    assert {"loss", "final_mse"} <= metrics
    groups = _post_json(f"{base}/data/plugin/hparams/session_groups", {
        "experimentName": "", "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"],
        "colParams": [{"hparam": "tags/model"}, {"metric": {"tag": "final_mse"}}],
        "startIndex": 0, "sliceSize": 100})
    [ours] = [g for g in groups["sessionGroups"] if g["sessions"][0]["name"] == run]
    assert ours["hparams"] == {"tags/model": "ridge", "tags/flag": "", "properties/dataset": "diabetes"}
    final = {m["name"]["tag"]: m["value"] for m in ours["metricValues"]}
    assert final["final_mse"] == 0.25 and final["loss"] == F32(logged["losses"][-1])


def test_exact_values_come_back_through_runbridge(logged):
    fresh = Run(Experiment(Workspace(backends=[f"tensorboard:{logged['logdir']}"]), "live"), logged["run"].id)
    metrics = fresh.get_metrics()
    assert metrics["loss"] == logged["losses"] and type(metrics["count"][1]) is int
    assert metrics["count"] == [7, 2**40 + 1]
    # a command to paste into a shell: the folder "ridge sweep (…)" is one quoted argument
    assert shlex.split(fresh.get_portal_url()) == ["tensorboard", "--logdir", str(logged["logdir"] / logged["tb_run"])]
    assert [c.id for c in fresh.get_children()] == [logged["child"].id]


# --- event folders other tools wrote -------------------------------------------------------------

@pytest.fixture
def tbx_logdir(tmp_path):
    """tensorboardX output: a run using every common call, and nested train/ validation/ runs."""
    import numpy as np
    import tensorboardX as tbx
    logdir = tmp_path / "tbx"
    w = tbx.SummaryWriter(str(logdir / "single"))
    for step in (2, 0, 1):  # out of order on purpose: read back in step order
        w.add_scalar("loss", 1.0 / (step + 3), step)
    for step in range(3):
        w.add_scalars("grp", {"a": step * 0.1, "b": step * 0.2}, step)
    w.add_text("notes", "some *markdown*", 0)
    image = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    w.add_image("pic", image, 3, dataformats="HWC")
    w.add_hparams({"lr": 0.01, "batch": 32, "opt": "adam"}, {"hparam/acc": 0.875})
    w.close()
    for split, scale in (("train", 1.0), ("validation", 2.0)):
        sw = tbx.SummaryWriter(str(logdir / "mnist" / split))
        for step in range(5):
            sw.add_scalar("acc", scale * step / 10, step)
        sw.close()
    return logdir, image


def test_tensorboardx_folders_are_runs(tbx_logdir):
    logdir, _ = tbx_logdir
    ws = Workspace(backends=[f"tensorboard:{logdir}"])
    runs = {(r.experiment, r.run_id): r for r in ws.backends[0].list_runs(None)}
    hparam_runs = [k for k in runs if k[1].startswith("single/") and not k[1].startswith("single/grp")]
    assert len(hparam_runs) == 1
    assert set(runs) == {("tbx", "single"), ("tbx", "single/grp/a"), ("tbx", "single/grp/b"),
                         hparam_runs[0], ("mnist", "train"), ("mnist", "validation")}
    assert runs[("tbx", "single/grp/a")].parent_id == "single"
    assert runs[("mnist", "train")].parent_id is None
    assert {e.name for e in Experiment.list(ws)} == {"tbx", "mnist"}


def test_tensorboardx_values_read_as_tensorboard_shows_them(tbx_logdir, tmp_path):
    import numpy as np
    logdir, image = tbx_logdir
    ws = Workspace(backends=[f"tensorboard:{logdir}"])
    single = Run(Experiment(ws, "tbx"), "single")
    metrics = single.get_metrics()
    shown = [e.value for e in sorted(accumulator(logdir / "single").Scalars("loss"), key=lambda e: e.step)]
    assert metrics["loss"] == shown == [F32(1 / 3), F32(1 / 4), F32(1 / 5)]
    assert single.get_metrics_frame("loss")["step"].tolist() == [0, 1, 2]
    assert metrics["notes/text_summary"] == "some *markdown*"  # the tag tensorboardX writes
    assert metrics["pic"] == "runbridge://single/pic/3.png"
    out = Path(single.download_file("pic/3.png", tmp_path / "pic.png"))
    from PIL import Image as PILImage

    assert (np.asarray(PILImage.open(out)) == image).all()
    grp_a = Run(Experiment(ws, "tbx"), "single/grp/a").get_metrics()
    assert grp_a == {"grp": [0.0, F32(0.1), F32(0.2)]}
    hparam_run = next(r for r in Experiment(ws, "tbx").get_runs(include_children=True)
                      if r.id.startswith("single/") and not r.id.startswith("single/grp"))
    assert hparam_run.get_properties() == {"lr": "0.01", "batch": "32", "opt": "adam"}
    assert hparam_run.get_metrics() == {"hparam/acc": 0.875}
    train = Run(Experiment(ws, "mnist"), "train").get_metrics()
    validation = Run(Experiment(ws, "mnist"), "validation").get_metrics()
    assert train["acc"] == [F32(s / 10) for s in range(5)]
    assert validation["acc"] == [F32(2 * s / 10) for s in range(5)]


def test_legacy_simple_value_scalars(tmp_path):
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    folder = tmp_path / "logs" / "legacy"
    writer = EventFileWriter(str(folder))
    values = [0.1, 0.7, 1e-8, -3.25]
    t0 = time.time()
    for step, v in enumerate(values):
        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag="old/loss", simple_value=v)])
        writer.add_event(event_pb2.Event(wall_time=t0 + step, step=step * 5, summary=summary))
    writer.close()
    ws = Workspace(backends=[f"tensorboard:{tmp_path / 'logs'}"])
    run = Run(Experiment(ws, "logs"), "legacy")
    assert run.get_metrics() == {"old/loss": [F32(v) for v in values]}
    frame = run.get_metrics_frame()
    assert frame["step"].tolist() == [0, 5, 10, 15]
    assert [t.timestamp() for t in frame["timestamp"]] == pytest.approx([t0 + s for s in range(4)], abs=1e-6)
    assert run.get_details()["startTimeUtc"] <= frame["timestamp"].iloc[0].isoformat()


def test_foreign_tensor_scalars_of_every_dtype(tmp_path):
    """TF2-style scalars are tensors: float32 as TensorBoard shows it, float64 exact, int64 as int."""
    from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, types_pb2
    from tensorboard.plugins.scalar import metadata as scalar_metadata
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter(str(tmp_path / "logs" / "tf2"))
    meta = scalar_metadata.create_summary_metadata(display_name="", description="")
    for step in range(3):
        values = [
            summary_pb2.Summary.Value(tag="f32", metadata=meta, tensor=tensor_pb2.TensorProto(
                dtype=types_pb2.DT_FLOAT, float_val=[0.1 * step])),
            summary_pb2.Summary.Value(tag="f64", metadata=meta, tensor=tensor_pb2.TensorProto(
                dtype=types_pb2.DT_DOUBLE, tensor_content=struct.pack("<d", 0.1 * step))),
            summary_pb2.Summary.Value(tag="i64", metadata=meta, tensor=tensor_pb2.TensorProto(
                dtype=types_pb2.DT_INT64, int64_val=[2**60 + step])),
        ]
        writer.add_event(event_pb2.Event(wall_time=time.time(), step=step, summary=summary_pb2.Summary(value=values)))
    writer.close()
    metrics = Run(Experiment(Workspace(backends=[f"tensorboard:{tmp_path / 'logs'}"]), "logs"), "tf2").get_metrics()
    assert metrics == {"f32": [F32(0.1 * s) for s in range(3)], "f64": [0.1 * s for s in range(3)],
                       "i64": [2**60 + s for s in range(3)]}
    assert all(type(v) is int for v in metrics["i64"])


def test_foreign_kinds_runbridge_cannot_hold_are_named_in_a_warning(tmp_path):
    import numpy as np
    import tensorboardX as tbx
    w = tbx.SummaryWriter(str(tmp_path / "logs" / "h"))
    w.add_scalar("x", 1.0, 0)
    w.add_histogram("weights", np.arange(10.0), 0)
    w.close()
    backend = open_backend(f"tensorboard:{tmp_path / 'logs'}")
    with pytest.warns(ForeignRunWarning, match="histograms"):
        records = backend.read("logs", "h").records
    assert [r.value for r in records if type(r) is Metric] == [1.0]


# --- damaged files ---------------------------------------------------------------------------------

@pytest.fixture(params=["8MiB-chunks", "777-byte-chunks", "numpy-crc"], autouse=False)
def read_chunk(request, monkeypatch):
    """Event files are read and checked in chunks: check records that straddle chunk borders too,
    and the checksums computed with numpy (where google-crc32c is not installed)."""
    from runbridge_tensorboard import tfrecord

    if request.param == "777-byte-chunks":
        monkeypatch.setattr(tfrecord, "READ_CHUNK", 777)
    if request.param == "numpy-crc":
        monkeypatch.setattr(tfrecord, "_crc_c", None)
    return request.param


def _write_run(logdir: Path, n: int, batches: int = 1) -> tuple[Path, RunInfo, list[Metric]]:
    backend = open_backend(f"tensorboard:{logdir}")
    info = RunInfo("damaged", "exp", None, None, "Running", 1_700_000_000_000_000)
    backend.pm.hook.start_run(run=info)
    metrics = [Metric("m", i, i + 0.5, None, 1_700_000_000_000_000 + i) for i in range(n)]
    size = n // batches
    for b in range(batches):
        backend.pm.hook.write(run=info, records=metrics[b * size:(b + 1) * size])
    [path] = event_files(logdir / "exp" / "damaged")
    return path, info, metrics


def _offsets(path: Path) -> list[int]:
    data = path.read_bytes()
    out, pos = [], 0
    while pos < len(data):
        out.append(pos)
        (length,) = struct.unpack_from("<Q", data, pos)
        pos += 12 + length + 4
    return out


def _read_values(logdir: Path):
    records = open_backend(f"tensorboard:{logdir}").read("exp", "damaged").records
    return [r.value for r in records if type(r) is Metric]


def test_truncated_file_reads_to_the_last_whole_record_and_warns(tmp_path, read_chunk):
    path, _, metrics = _write_run(tmp_path, 50)
    last = _offsets(path)[-1]
    with open(path, "r+b") as f:
        f.truncate(last + 20)  # cut mid-record
    with pytest.warns(EventFileDamageWarning, match=rf"{path.name}.*truncated record at byte offset {last}"):
        values = _read_values(tmp_path)
    assert values == [m.value for m in metrics[:-1]]


def test_corrupted_record_mid_file_warns_with_offset_and_reads_on(tmp_path, read_chunk):
    path, _, metrics = _write_run(tmp_path, 50)
    offsets = _offsets(path)
    bad = offsets[20]  # record 0 is the file version, 1 the RunInfo, then the metrics
    data = bytearray(path.read_bytes())
    data[bad + 14] ^= 0x5A  # inside the payload: its checksum fails
    path.write_bytes(bytes(data))
    with pytest.warns(EventFileDamageWarning, match=rf"{path.name}.*corrupted record at byte offset {bad}.*reading on"):
        values = _read_values(tmp_path)
    assert values == [m.value for i, m in enumerate(metrics) if i != 18]


def test_corrupted_length_resynchronises_on_the_next_record(tmp_path, read_chunk):
    path, _, metrics = _write_run(tmp_path, 50)
    offsets = _offsets(path)
    bad = offsets[30]
    data = bytearray(path.read_bytes())
    data[bad + 2] ^= 0xFF  # the length itself: its checksum fails, the length cannot be trusted
    path.write_bytes(bytes(data))
    with pytest.warns(EventFileDamageWarning, match=rf"{path.name}.*offset {bad}.*reading on at offset {offsets[31]}"):
        values = _read_values(tmp_path)
    assert values == [m.value for i, m in enumerate(metrics) if i != 28]


def test_damaged_foreign_file_warns_too(tbx_logdir, read_chunk):
    logdir, _ = tbx_logdir
    [path] = event_files(logdir / "mnist" / "train")
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size - 3)
    with pytest.warns(EventFileDamageWarning, match=path.name):
        metrics = Run(Experiment(Workspace(backends=[f"tensorboard:{logdir}"]), "mnist"), "train").get_metrics()
    assert metrics["acc"] == [F32(s / 10) for s in range(4)]


def test_intact_files_read_without_warnings(tmp_path, read_chunk):
    _, info, _ = _write_run(tmp_path, 2000, batches=8)
    big = make_png(seed=1) + os.urandom(6000)  # one record far larger than a small chunk
    backend = open_backend(f"tensorboard:{tmp_path}")
    backend.pm.hook.write(run=info, records=[Image("big", 0, "big.png", "image/png", info.start_time, None, big),
                                             Metric("m", 2000, 0.25, None, info.start_time)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(_read_values(tmp_path)) == 2001
        records = open_backend(f"tensorboard:{tmp_path}").read("exp", "damaged").records
    assert [r.file_name for r in records if type(r) is Image] == ["big.png"]


# --- volume, flushing, processes ------------------------------------------------------------------

def test_100k_points_under_one_name_read_back_as_100k(tmp_path):
    logdir = tmp_path / "logs"
    ws = Workspace(backends=[f"tensorboard:{logdir}"])
    run = Experiment(ws, "big").start_logging(outputs=None)
    values = [i / 7 for i in range(100_000)]
    for v in values:
        run.log("loss", v)
    run.complete()
    fresh = Run(Experiment(Workspace(backends=[f"tensorboard:{logdir}"]), "big"), run.id)
    assert fresh.get_metrics()["loss"] == values
    # TensorBoard's own loader, with sampling off, sees every display point too
    tensors = accumulator(logdir / "big" / path_component(run.id)).Tensors("loss")
    assert len(tensors) == 100_000


def test_logged_values_reach_another_reader_while_the_run_is_still_running(tmp_path):
    """The background flusher writes what a running script logs, without a flush() or complete()
    call: another reader (runbridge or TensorBoard's loader) sees it while the run is open. (How
    soon is a speed figure, not a test: the poll below only guards against a hang.)"""
    logdir = tmp_path / "logs"
    run = Experiment(Workspace(backends=[f"tensorboard:{logdir}"]), "live").start_logging(outputs=None)
    run.log("first", 1)
    run.log("live", 0.5)
    folder = logdir / "live" / path_component(run.id)
    seen_runbridge = seen_tensorboard = False
    deadline = time.monotonic() + 60
    while not (seen_runbridge and seen_tensorboard) and time.monotonic() < deadline:
        if not seen_runbridge:
            found = open_backend(f"tensorboard:{logdir}").read("live", run.id)
            records = found.records if found is not None else []
            seen_runbridge = any(type(r) is Metric and r.name == "live" and r.value == 0.5 for r in records)
        if not seen_tensorboard and folder.exists():
            seen_tensorboard = "live" in accumulator(folder).Tags()["tensors"]
        time.sleep(0.05)
    assert run.get_status() == "Running"  # seen before the run ended
    run.complete()
    assert seen_runbridge, "runbridge's reader never saw the point the running script logged"
    assert seen_tensorboard, "TensorBoard's loader never saw the point the running script logged"


def test_second_process_writes_its_own_file_and_reads_merge_in_order(tmp_path):
    logdir = tmp_path / "logs"
    spec = f"tensorboard:{logdir}"
    info = RunInfo("shared", "exp", None, None, "Running", 1_700_000_000_000_000)
    backend = open_backend(spec)
    backend.pm.hook.start_run(run=info)
    t0 = 1_700_000_000_000_000
    backend.pm.hook.write(run=info, records=[Metric("m", 0, 0.0, None, t0 + 1)])
    code = textwrap.dedent(f"""
        from runbridge.backends import open_backend
        from runbridge.records import Metric, RunInfo, Tag
        info = RunInfo("shared", "exp", None, None, "Running", {t0})
        b = open_backend({spec!r})
        b.pm.hook.start_run(run=info)
        b.pm.hook.write(run=info, records=[Metric("m", 1, 1.0, None, {t0} + 2), Tag("worker", "2", {t0} + 3)])
    """)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    backend.pm.hook.write(run=info, records=[Metric("m", 2, 2.0, None, t0 + 4)])
    backend.pm.hook.end_run(run=info._replace(end_time=t0 + 5, status="Completed"), status="Completed")
    files = [p.name for p in event_files(logdir / "exp" / "shared")]
    assert len(files) == 3 and HPARAMS_FILE in files  # one per process, and the tag as an hparam
    found = open_backend(spec).read("exp", "shared")
    assert found.info.status == "Completed"
    assert [(type(r).__name__, getattr(r, "seq", None)) for r in found.records] == [
        ("Metric", 0), ("Metric", 1), ("Tag", None), ("Metric", 2)]


def test_a_run_is_found_by_id_from_a_fresh_process(tmp_path):
    logdir = tmp_path / "logs"
    ws = Workspace(backends=[f"tensorboard:{logdir}"])
    run = Experiment(ws, "exp with spaces/and:odd chars").start_logging(outputs=None)
    child = run.child_run()
    grandchild = child.child_run()
    grandchild.log("deep", 3)
    for r in (grandchild, child, run):
        r.complete()
    code = textwrap.dedent(f"""
        from runbridge import Workspace, Experiment, Run
        ws = Workspace(backends=[{f"tensorboard:{logdir}"!r}])
        r = Run(Experiment(ws, {run.experiment.name!r}), {grandchild.id!r})
        print(r.get_metrics()["deep"], r.parent.parent.id)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["3", run.id]
    # TensorBoard sees the nesting: grandchild folder inside child folder inside the parent's
    folder = logdir / path_component(run.experiment.name) / path_component(run.id) / path_component(child.id) / path_component(grandchild.id)
    assert event_files(folder)


def test_a_tensorboardx_run_can_be_tagged_and_keeps_its_data(tbx_logdir):
    logdir, _ = tbx_logdir
    spec = f"tensorboard:{logdir}"
    before = {(r.experiment, r.run_id) for r in open_backend(spec).list_runs(None)}
    run = Run(Experiment(Workspace(backends=[spec]), "mnist"), "train")
    run.tag("reviewed", "yes")
    run.add_properties({"dataset": "mnist"})
    fresh = Run(Experiment(Workspace(backends=[spec]), "mnist"), "train")
    assert fresh.get_tags() == {"reviewed": "yes"}
    assert fresh.get_properties() == {"dataset": "mnist"}
    assert fresh.get_metrics()["acc"] == [F32(s / 10) for s in range(5)]
    assert {(r.experiment, r.run_id) for r in open_backend(spec).list_runs(None)} == before
    assert accumulator(logdir / "mnist" / "train").Scalars("acc")[-1].value == F32(0.4)  # TensorBoard still reads it


def test_writing_to_many_runs_keeps_few_files_open(tmp_path, monkeypatch):
    from runbridge_tensorboard import backend as tb_backend

    monkeypatch.setattr(tb_backend, "MAX_OPEN_FILES", 4)
    logdir = tmp_path / "logs"
    backend = open_backend(f"tensorboard:{logdir}")
    infos = [RunInfo(f"r{i}", "exp", None, None, "Running", 1_700_000_000_000_000 + i) for i in range(12)]
    for rnd in range(3):
        for info in infos:
            backend.write(info, [Metric("m", rnd, float(rnd), None, info.start_time + rnd)])
    assert sum(1 for w in tb_backend._OPEN.values() if w.handle is not None and str(logdir) in str(w.folder)) <= 4
    fresh = open_backend(f"tensorboard:{logdir}")
    for info in infos:
        assert [r.value for r in fresh.read("exp", info.run_id).records if type(r) is Metric] == [0.0, 1.0, 2.0]
        assert len(event_files(logdir / "exp" / info.run_id)) == 1  # reopened for appending, not a new file


def test_tensorboardx_folders_migrate_to_sqlite_and_back(tbx_logdir, tmp_path):
    import runbridge

    logdir, _ = tbx_logdir
    report = runbridge.migrate(f"tensorboard:{logdir}", f"sqlite:{tmp_path / 'db' / 'runs.db'}")
    assert "every value copied reads back exactly" in str(report)
    sqlite_ws = Workspace(backends=[f"sqlite:{tmp_path / 'db' / 'runs.db'}"])
    assert Run(Experiment(sqlite_ws, "mnist"), "validation").get_metrics()["acc"] == [F32(2 * s / 10) for s in range(5)]
    single = Run(Experiment(sqlite_ws, "tbx"), "single")
    assert single.get_file_names() == ["pic/3.png"]
    back = tmp_path / "tb-again"
    runbridge.migrate(f"sqlite:{tmp_path / 'db' / 'runs.db'}", f"tensorboard:{back}")
    again = Run(Experiment(Workspace(backends=[f"tensorboard:{back}"]), "tbx"), "single")
    assert again.get_metrics() == single.get_metrics()
    assert Path(again.download_file("pic/3.png", tmp_path / "p.png")).read_bytes() == \
        Path(single.download_file("pic/3.png", tmp_path / "q.png")).read_bytes()


def test_files_follow_the_umask_so_other_users_can_read_them(tmp_path):
    """With umask 022 every file runbridge writes is 0644 (a TensorBoard server running as another
    user reads them), folders 0755."""
    import io

    old = os.umask(0o022)
    try:
        ws = Workspace(backends=[f"tensorboard:{tmp_path / 'tb'}"])
        run = Experiment(ws, "modes").start_logging(outputs=None)
        run.log("m", 1)
        run.upload_file("notes/a.txt", io.BytesIO(b"a"))
        png = tmp_path / "i.png"
        png.write_bytes(make_png())
        run.log_image("img", path=str(png))
        run.child_run().complete()
        run.complete()
    finally:
        os.umask(old)
    paths = list((tmp_path / "tb").rglob("*"))
    files = {p.relative_to(tmp_path / "tb").as_posix(): oct(p.stat().st_mode & 0o777)
             for p in paths if p.is_file()}
    kinds = {"runbridge.run.json", ".runbridge-index", "files/notes/a.txt", "files/i.png", "tfevents"}
    assert all(any(k in f for f in files) for k in kinds), files
    assert set(files.values()) == {"0o644"}, files
    assert {oct(p.stat().st_mode & 0o777) for p in paths if p.is_dir()} == {"0o755"}


# --- folder names: what TensorBoard's run selector lists ------------------------------------------

def _run_folders(exp_dir: Path) -> list[Path]:
    return sorted(p for p in exp_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


@pytest.mark.parametrize("name", ["../x", "/", "..", ".", "a/../../b", "nul\x00name", "x" * 5000,
                                  ".runbridge-index", "files", "C:\\evil", "é" * 300])
def test_hostile_display_names_stay_one_folder_inside_the_experiment(tmp_path, name):
    logdir = tmp_path / "logs"
    spec = f"tensorboard:{logdir}"
    run = Experiment(Workspace(backends=[spec]), "exp").start_logging(display_name=name, outputs=None)
    run.log("m", 1.5)
    run.complete()
    [folder] = _run_folders(logdir / "exp")
    assert folder.parent == logdir / "exp" and folder.name.endswith(f" ({run.id[-8:]})")
    assert len(folder.name.encode()) <= 255 and "/" not in folder.name and "\x00" not in folder.name
    assert sorted(p.name for p in logdir.iterdir()) == ["exp"]  # nothing escaped the experiment
    fresh = Run(Experiment(Workspace(backends=[spec]), "exp"), run.id)
    assert fresh.get_metrics() == {"m": 1.5} and fresh.display_name == name
    assert [r.run_id for r in open_backend(spec).list_runs("exp")] == [run.id]


def test_a_taken_folder_name_falls_back_to_the_run_id(tmp_path):
    logdir = tmp_path / "logs"
    spec = f"tensorboard:{logdir}"
    exp = Experiment(Workspace(backends=[spec]), "exp")
    parent = exp.start_logging(display_name="p", outputs=None)
    # two runs whose names and id endings agree: the second cannot have the same folder
    first = parent.child_run(name="same", run_id="first-12345678")
    second = parent.child_run(name="same", run_id="second-12345678")
    # a folder someone else made holds the name a third run would get
    parent_dir = logdir / "exp" / f"p ({parent.id[-8:]})"
    foreign = parent_dir / "taken (87654321)"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("not a run")
    third = parent.child_run(name="taken", run_id="third-87654321")
    for i, r in enumerate((first, second, third)):
        r.log("i", i)
        r.complete()
    parent.complete()
    assert sorted(p.name for p in _run_folders(parent_dir)) == [
        "same (12345678)", "second-12345678", "taken (87654321)", "third-87654321"]
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]  # left as it was
    for i, r in enumerate((first, second, third)):
        assert Run(Experiment(Workspace(backends=[spec]), "exp"), r.id).get_metrics() == {"i": i}


def test_runs_in_folders_named_by_id_still_read(tmp_path):
    """Earlier versions named every run folder by its run id: such log folders read as before."""
    logdir = tmp_path / "logs"
    spec = f"tensorboard:{logdir}"
    run = Experiment(Workspace(backends=[spec]), "exp").start_logging(display_name="old", outputs=None)
    child = run.child_run(name="kid")
    child.log("c", 2)
    child.complete()
    run.log("m", 1)
    run.tag("t", "v")
    run.complete()
    exp_dir = logdir / "exp"
    # lay the runs out as the earlier version did: <exp>/<run id>/<child id>/, index by id
    old = exp_dir / path_component(run.id)
    (exp_dir / f"old ({run.id[-8:]})").rename(old)
    (old / f"kid ({child.id[-8:]})").rename(old / path_component(child.id))
    (exp_dir / ".runbridge-index" / path_component(child.id)).write_text(f"{run.id}/{child.id}")
    (exp_dir / ".runbridge-index" / path_component(run.id)).unlink()
    ws = Workspace(backends=[spec])
    fresh = Run(Experiment(ws, "exp"), run.id)
    assert fresh.get_metrics() == {"m": 1} and fresh.get_tags() == {"t": "v"}
    assert [c.get_metrics() for c in fresh.get_children()] == [{"c": 2}]
    assert {r.run_id for r in open_backend(spec).list_runs("exp")} == {run.id, child.id}
    fresh.tag("later", "yes")  # writing to an old-layout run keeps it where it is
    assert Run(Experiment(Workspace(backends=[spec]), "exp"), run.id).get_tags() == {"t": "v", "later": "yes"}
    assert sorted(p.name for p in _run_folders(exp_dir)) == [path_component(run.id)]


def test_named_runs_migrate_to_sqlite_and_back(tmp_path):
    import runbridge

    spec = f"tensorboard:{tmp_path / 'tb'}"
    run = Experiment(Workspace(backends=[spec]), "exp").start_logging(display_name="ridge", outputs=None)
    run.log_row("Y over X", x=1, y=0.5)
    run.tag("model", "ridge")
    child = run.child_run(name="fold-0")
    child.log("m", 3)
    child.complete()
    run.complete()
    db = f"sqlite:{tmp_path / 'runs.db'}"
    assert "every value copied reads back exactly" in str(runbridge.migrate(spec, db))
    back = f"tensorboard:{tmp_path / 'tb-again'}"
    assert "every value copied reads back exactly" in str(runbridge.migrate(db, back))
    again = Run(Experiment(Workspace(backends=[back]), "exp"), run.id)
    assert again.display_name == "ridge" and again.get_tags() == {"model": "ridge"}
    assert again.get_metrics() == {"Y over X": {"x": 1, "y": 0.5}}
    folder = tmp_path / "tb-again" / "exp" / f"ridge ({run.id[-8:]})"
    assert (folder / f"fold-0 ({child.id[-8:]})").is_dir() and (folder / HPARAMS_FILE).is_file()


def _hparams_tensorboard_reads(folder: Path) -> dict:
    """The hparams TensorBoard's own loader finds in a run folder (as its HParams plugin does)."""
    from tensorboard.plugins.hparams import plugin_data_pb2

    content = accumulator(folder).PluginTagToContent("hparams")
    [start] = [plugin_data_pb2.HParamsPluginData.FromString(c).session_start_info for c in content.values()]
    return {k: v.string_value for k, v in start.hparams.items()}


def test_hparams_follow_tag_changes_from_any_process(tmp_path):
    logdir = tmp_path / "logs"
    spec = f"tensorboard:{logdir}"
    run = Experiment(Workspace(backends=[spec]), "exp").start_logging(display_name="r", outputs=None,
                                                                       tags={"a": "1", "b": "2"})
    run.add_properties({"p": "x"})
    run.flush()
    folder = logdir / "exp" / f"r ({run.id[-8:]})"
    assert _hparams_tensorboard_reads(folder) == {"tags/a": "1", "tags/b": "2", "properties/p": "x"}
    run.tag("a", None)  # a valueless tag
    run.tag("b", "3")
    run.complete()
    code = textwrap.dedent(f"""
        from runbridge import Workspace, Experiment, Run
        Run(Experiment(Workspace(backends=[{spec!r}]), "exp"), {run.id!r}).tag("later", "yes")
    """)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    assert _hparams_tensorboard_reads(folder) == {"tags/a": "", "tags/b": "3", "properties/p": "x",
                                                  "tags/later": "yes"}
    assert not any(p.name.endswith(".tmp") for p in folder.iterdir())  # rewritten atomically


def test_text_view_of_a_long_table_shows_its_latest_rows(tmp_path):
    logdir = tmp_path / "logs"
    run = Experiment(Workspace(backends=[f"tensorboard:{logdir}"]), "exp").start_logging(outputs=None)
    for i in range(1200):
        run.log_row("curve", i=i, v=i / 10)
    run.complete()
    acc = accumulator(logdir / "exp" / path_component(run.id))
    from tensorboard.util import tensor_util

    shown = acc.Tensors("curve")[-1]  # the last write batch shows the whole table
    text = tensor_util.make_ndarray(shown.tensor_proto).item().decode()
    lines = text.splitlines()
    assert lines[0] == "(the last 500 of 1,200 rows)"
    assert lines[4] == "| 700 | 70.0 |" and lines[-1] == "| 1199 | 119.9 |" and len(lines) == 2 + 2 + 500
    assert [e.step for e in acc.Tensors("curve/v")] == list(range(1200))


def test_every_float_and_step_reads_back_exactly_in_bulk(tmp_path):
    """Long runs are decoded by byte templates: every value, step and writer still comes back
    exactly, whatever the mix of names, kinds, steps and descriptions."""
    nan_payload = struct.unpack("<d", struct.pack("<Q", 0x7FF8_0000_DEAD_BEEF))[0]
    specials = [0.0, -0.0, float("inf"), float("-inf"), 5e-324, 1.7976931348623157e308, nan_payload]
    names = [f"metric-{k}" for k in range(20)]  # more names than templates kept
    ints = [0, 1, 127, 128, 2 ** 31, -1, -(2 ** 63), 2 ** 63 - 1, 2 ** 64, -(2 ** 70)]
    logged: dict[str, list] = {n: [] for n in names + ["mixed", "stepped", "ints"]}
    logdir = tmp_path / "logs"
    spec = f"tensorboard:{logdir}"
    run = Experiment(Workspace(backends=[spec]), "bulk").start_logging(outputs=None)
    for i in range(3000):
        name = names[(i * 7) % len(names)]
        value = specials[i % len(specials)] if i % 5 == 0 else i / 3
        run.log(name, value)
        logged[name].append(value)
        mixed = i if i % 3 == 0 else (f"s{i}" if i % 3 == 1 else i + 0.5)
        run.log("mixed", mixed, description="half and half" if i == 7 else "")
        logged["mixed"].append(mixed)
        run.log("ints", ints[i % len(ints)])
        logged["ints"].append(ints[i % len(ints)])
        for step in (-(2 ** 63), -1, 2 ** 21, 2 ** 35, 2 ** 63 - 1) if i % 1000 == 0 else ():
            run.log("stepped", i + 0.25, step=step)
            logged["stepped"].append(i + 0.25)
    run.complete()
    fresh = Run(Experiment(Workspace(backends=[spec]), "bulk"), run.id)
    metrics = fresh.get_metrics()
    for name, values in logged.items():
        assert [struct.pack("<d", v) if type(v) is float else v for v in metrics[name]] == \
            [struct.pack("<d", v) if type(v) is float else v for v in values], name
    stepped = [r.step for r in open_backend(spec).read("bulk", run.id).records
               if type(r) is Metric and r.name == "stepped"]
    assert stepped == [-(2 ** 63), -1, 2 ** 21, 2 ** 35, 2 ** 63 - 1] * 3


def test_scalar_events_built_from_templates_are_the_bytes_protobuf_writes():
    """Float series are written by concatenating a learned template (plugins' fastwrite); every
    event must equal protobuf's serialization of the same record, whatever the value or step."""
    import random
    import struct

    from runbridge.records import Metric
    from runbridge_tensorboard import fastwrite, translate

    rng = random.Random(7)
    specials = [0.0, -0.0, 1e-310, -1e-310, 3.4e38, 3.5e38, -1e300, 1.0, struct.unpack("<d", struct.pack("<Q", 1))[0]]
    records, seq = [], {}
    for i in range(3000):
        name = rng.choice(["loss", "accuracy", "é/ü 名前", "x" * 300])
        writer = rng.choice(["w1", "w2", ""])
        n = seq[(name, writer)] = seq.get((name, writer), -1) + 1
        value = rng.choice(specials) if i % 7 == 0 else rng.uniform(-1e6, 1e6) * 10 ** rng.randint(-30, 30)
        step = rng.choice([None, n, n + 5, 2 ** 40 + n])
        time_us = 1_800_000_000_000_000 + rng.randint(0, 10 ** 12)
        records.append(Metric(name, n, value, step, time_us, False, "", writer))

    class Plain(fastwrite.Templates):
        def event(self, *args):  # never a template: every event through protobuf
            return None

    fast, plain = translate.Encoder(), translate.Encoder()
    plain.templates = Plain()
    assert fast.encode(records) == plain.encode(records)
    assert fast.max_step == plain.max_step
    built = sum(1 for parts in fast.templates._by_key.values() if parts is not None)
    assert built >= 12, "the series that qualify (steps None or equal to seq) should have templates"
