"""Batches of float points are framed with numpy (plugins' fastbatch): the bytes must be exactly
what the per-point protobuf path writes, across batches, steps of every varint length, values
that do not fit the template, interleaved series and writers; TensorBoard's reader reads them."""

import math
import random
import struct

import pytest

from runbridge.batch import Batch
from runbridge_tensorboard import fastbatch, fastwrite, tfrecord, translate

T0 = 1_800_000_000_000_000


class _ProtobufOnly(fastwrite.Templates):
    def event(self, *args):  # never a template: every event serialized by protobuf
        return None


def _both(batches):
    fast, plain = translate.Encoder(), translate.Encoder()
    plain.templates = _ProtobufOnly()
    vectorized = 0
    for entries in batches:
        got = fastbatch.framed(fast, Batch(entries))
        want = tfrecord.frame(plain.encode(Batch(entries)))
        if got is None:
            got = tfrecord.frame(fast.encode(Batch(entries)))
        else:
            vectorized += 1
        assert got == want
        assert fast.max_step == plain.max_step
    return vectorized


def _point(name, seq, value, stepped, time_us, writer="w"):
    return (name, seq, value, seq if stepped else None, time_us, False, "", writer)


@pytest.mark.parametrize("stepped", [False, True])
def test_one_series_across_batches_and_every_step_length(stepped):
    seqs = list(range(0, 300)) + [16_382, 16_383, 16_384, 2 ** 21 - 1, 2 ** 21, 2 ** 28, 2 ** 35, 2 ** 42,
                                  2 ** 49, 2 ** 56, 2 ** 63 - 1]
    points = [_point("loss", s, 1 / (s + 1), stepped, T0 + 1000 * i) for i, s in enumerate(seqs)]
    assert _both([points[:100], points[100:]]) == 2


def test_values_the_template_cannot_take_fall_back_in_place():
    rng = random.Random(3)
    specials = [0.0, -0.0, 1e-310, -1e-310, 5e-324, 3.4e38, 3.4028235677973366e38, 3.5e38, -1e300, math.nan,
                math.inf, -math.inf, 1.0]
    points = []
    for s in range(2000):
        value = specials[s % len(specials)] if s % 3 == 0 else rng.uniform(-1e6, 1e6) * 10 ** rng.randint(-30, 30)
        time_us = T0 + rng.randint(0, 10 ** 12) if s % 5 else rng.randint(1, 10 ** 17)  # some not exact as a double
        points.append(_point("x", s, value, False, time_us))
    points[500] = _point("x", 500, 0.5, False, 0)  # wall time 0: never a template
    assert _both([points[:700], points[700:1400], points[1400:]]) == 3


def test_interleaved_series_and_writers_keep_their_order():
    rng = random.Random(11)
    seq: dict = {}
    batches = []
    for b in range(4):
        entries = []
        for i in range(3000):
            name = rng.choice(["loss", "lr", "é/ü 名前", "x" * 200]) if b else ("loss", "lr")[i % 2]
            writer = rng.choice(["w1", "w2"]) if b >= 2 else "w1"
            n = seq[(name, writer)] = seq.get((name, writer), -1) + 1
            entries.append(_point(name, n, rng.random() * 10 ** rng.randint(-5, 5), b == 3, T0 + i))
        batches.append(entries)
    assert _both(batches) == 4


def test_a_batch_with_steps_unlike_seqs_or_other_records_takes_the_per_point_path():
    points = [_point("loss", s, 0.5, True, T0 + s) for s in range(100)]
    assert fastbatch.framed(translate.Encoder(), Batch(points)) is not None
    moved = points[:50] + [p[:3] + (p[3] + 7,) + p[4:] for p in points[50:]]
    assert fastbatch.framed(translate.Encoder(), Batch(moved)) is None
    described = points[:99] + [points[99][:6] + ("a description",) + points[99][7:]]
    assert fastbatch.framed(translate.Encoder(), Batch(described)) is None
    ints = points[:99] + [points[99][:2] + (3,) + points[99][3:]]
    assert fastbatch.framed(translate.Encoder(), Batch(ints)) is None
    float_time = points[:99] + [points[99][:4] + (T0 + 99.5,) + points[99][5:]]
    assert fastbatch.framed(translate.Encoder(), Batch(float_time)) is None


def test_tensorboards_reader_reads_what_the_backend_wrote(tmp_path):
    from tensorboard.backend.event_processing import event_accumulator

    from runbridge import Experiment, Run, Workspace

    spec = f"tensorboard:{tmp_path / 'tb'}"
    run = Experiment(Workspace(backends=[spec]), "fast").start_logging(outputs=None)
    values = [math.sin(i) * 10 ** (i % 7) for i in range(30_000)]
    for i, v in enumerate(values):
        run.log("loss", v)
        if i % 3 == 0:
            run.log("lr", 1e-3 / (i + 1), step=i // 3)
    run.complete()
    assert Run(Experiment(Workspace(backends=[spec]), "fast"), run.id).get_metrics("loss")["loss"] == values
    folder = next(p.parent for p in (tmp_path / "tb").rglob("events.out.*"))
    acc = event_accumulator.EventAccumulator(str(folder), size_guidance={event_accumulator.SCALARS: 0,
                                                                        event_accumulator.TENSORS: 0})
    acc.Reload()
    from tensorboard.util import tensor_util

    shown = acc.Tensors("loss")
    assert [tensor_util.make_ndarray(e.tensor_proto).item() for e in shown] == \
        [struct.unpack("<f", struct.pack("<f", v))[0] for v in values]
    assert [e.step for e in shown] == list(range(len(values)))
    assert [e.step for e in acc.Tensors("lr")] == list(range(10_000))
