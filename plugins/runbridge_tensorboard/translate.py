"""Pure translation between runbridge records and TensorBoard events (no file I/O).

What a run's event file holds, per record (one ``Event`` each, ``step`` = the user's step, else
the record's ``seq``; ``wall_time`` = the record's time):

* ``Metric`` with an int (int64 range) or float value: the **exact** value as a DT_INT64 /
  DT_DOUBLE scalar tensor under ``runbridge.exact/<name>`` (plugin ``runbridge``, hidden from the
  dashboards), plus a **display** copy under ``<name>``: a DT_FLOAT scalar tensor with plugin
  ``scalars``, because TensorBoard's default (Rust) data server drops DT_DOUBLE / DT_INT64
  scalars from the Scalars dashboard.
* ``Metric`` with a str value: a ``text`` summary under ``<name>`` (display) and the exact
  DT_STRING tensor under ``runbridge.exact/<name>``.
* Other metrics (bool, None, ints beyond int64) and every ``Row``, ``Image``, ``Tag``,
  ``Property``, ``File``, ``RunInfo``: the exact record as one JSON line
  (`runbridge.records.record_to_json`) in a DT_STRING tensor under ``runbridge.records``;
  bools and big ints also get a display scalar, rows a display scalar ``<table>/<column>`` per
  numeric cell (step = the row's index) and, on the last row of each batch, the table so far
  as markdown in the Text dashboard (`TableView`), images an image summary with the original
  bytes, JSON metrics a text summary.

Fields of an exact metric that the event cannot carry by itself travel in the value's
``metadata.plugin_data.content``: in the common case one flag byte and the writer id
(``=<writer>``: the user's step equals seq; ``~<writer>``: no user step, the event step is seq);
otherwise compact JSON (seq when a user step differs from it, from_list, description, a time
that float seconds would not round-trip, the writer as ``w``).

Reading (`decode_own`) takes only the exact values and records and ignores display copies; event
folders other tools wrote are read by `ForeignDecoder` the way TensorBoard shows them.
"""

from __future__ import annotations

import json
import math
import struct
from collections import deque
from typing import Any, Iterable, Iterator, Sequence

from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2

from runbridge.media import media_type_of
from runbridge.records import (
    File, Image, Metric, Property, Record, Row, RunInfo, record_from_json, record_to_json,
)

from . import fastwrite

EXACT_PREFIX = "runbridge.exact/"
RECORDS_TAG = "runbridge.records"
PLUGIN = "runbridge"
#: First byte of the `plugin_data.content` of an exact metric whose user step equals its seq
#: (short for {"seq": step}); the writer id follows. Written alone by earlier versions.
STEP_IS_SEQ = b"="
#: First byte of the content of an exact metric without a user step (step = seq); the writer follows.
NO_STEP = b"~"

_INT64_MIN, _INT64_MAX = -(2 ** 63), 2 ** 63 - 1
_SCALAR_SHAPE = tensor_shape_pb2.TensorShapeProto()

_Event = event_pb2.Event
_Summary = summary_pb2.Summary
_Value = summary_pb2.Summary.Value
_Tensor = tensor_pb2.TensorProto
_Metadata = summary_pb2.SummaryMetadata
_PluginData = summary_pb2.SummaryMetadata.PluginData


def _plugin_metadata(plugin: str, data_class: int = 0, content: bytes = b"") -> summary_pb2.SummaryMetadata:
    return _Metadata(plugin_data=_PluginData(plugin_name=plugin, content=content), data_class=data_class)


def _scalar_metadata() -> summary_pb2.SummaryMetadata:
    from tensorboard.plugins.scalar import metadata as scalar_metadata

    md = scalar_metadata.create_summary_metadata(display_name="", description="")
    md.data_class = summary_pb2.DATA_CLASS_SCALAR
    return md


def _text_metadata() -> summary_pb2.SummaryMetadata:
    from tensorboard.plugins.text import metadata as text_metadata

    md = text_metadata.create_summary_metadata(display_name="", description="")
    md.data_class = summary_pb2.DATA_CLASS_TENSOR
    return md


SCALAR_METADATA = _scalar_metadata()
TEXT_METADATA = _text_metadata()
EXACT_METADATA = _plugin_metadata(PLUGIN, summary_pb2.DATA_CLASS_TENSOR)
RECORDS_METADATA = _plugin_metadata(PLUGIN, summary_pb2.DATA_CLASS_TENSOR)


def _f32(value: float) -> float:
    try:
        return struct.unpack("<f", struct.pack("<f", value))[0]
    except OverflowError:
        return math.copysign(math.inf, value)


def _time_exact(time_us: int) -> bool:
    return round((time_us / 1e6) * 1e6) == time_us


def image_size(data: bytes) -> tuple[int, int]:
    """(height, width) of a PNG, JPEG or GIF from its header, (0, 0) if unknown."""
    try:
        if data[:8] == b"\x89PNG\r\n\x1a\n":
            w, h = struct.unpack(">II", data[16:24])
            return h, w
        if data[:6] in (b"GIF87a", b"GIF89a"):
            w, h = struct.unpack("<HH", data[6:10])
            return h, w
        if data[:2] == b"\xff\xd8":
            i = 2
            while i + 9 < len(data):
                if data[i] != 0xFF:
                    i += 1
                    continue
                marker = data[i + 1]
                if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                    i += 2
                    continue
                (seglen,) = struct.unpack(">H", data[i + 2:i + 4])
                if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                    h, w = struct.unpack(">HH", data[i + 5:i + 9])
                    return h, w
                i += 2 + seglen
    except struct.error:
        pass
    return 0, 0


def _md_cell(value: Any) -> str:
    text = "None" if value is None else (repr(value) if isinstance(value, float) else str(value))
    return text.replace("|", "\\|").replace("\n", " ")


#: How many rows of a table the Text dashboard shows (the latest ones).
TABLE_ROWS_SHOWN = 500


class TableView:
    """The rows of one table logged so far (the latest `TABLE_ROWS_SHOWN`), as markdown."""

    def __init__(self) -> None:
        self.columns: list[str] = []
        self.rows: deque[dict[str, Any]] = deque(maxlen=TABLE_ROWS_SHOWN)
        self.count = 0

    def add(self, row: Row) -> None:
        for c, _ in row.cells:
            if c not in self.columns:
                self.columns.append(c)
        self.rows.append(dict(row.cells))
        self.count += 1

    def markdown(self) -> str:
        """The table so far (columns in first-seen order), with a note when rows are left out."""
        columns = self.columns
        lines = []
        if self.count > len(self.rows):
            lines += [f"(the last {len(self.rows):,} of {self.count:,} rows)", ""]
        lines += ["| " + " | ".join(_md_cell(c) for c in columns) + " |", "|" + "---|" * len(columns)]
        for cells in self.rows:
            lines.append("| " + " | ".join(_md_cell(cells.get(c, "")) for c in columns) + " |")
        return "\n".join(lines)


class Encoder:
    """Records -> serialized events for one event file (remembers which tags got metadata)."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._display_plugin: dict[str, str] = {}
        self._tables: dict[str, TableView] = {}
        self.templates = fastwrite.Templates()
        self.max_step = 0

    def _meta(self, tag: str, metadata: summary_pb2.SummaryMetadata,
              description: str = "") -> summary_pb2.SummaryMetadata | None:
        """The tag's metadata the first time this file holds it (TensorBoard's convention), with
        the metric's description, which the dashboards show beside the chart."""
        if tag in self._seen:
            return None
        self._seen.add(tag)
        if description:
            metadata = summary_pb2.SummaryMetadata.FromString(metadata.SerializeToString())
            metadata.summary_description = description
        return metadata

    def _display_tag(self, name: str, plugin: str) -> str:
        """`name`, or `name/<plugin>` if this file already shows `name` in another dashboard
        (a metric that mixes numbers and strings)."""
        first = self._display_plugin.setdefault(name, plugin)
        return name if first == plugin else f"{name}/{plugin}"

    def _display_scalar(self, name: str, value: float, description: str = "") -> summary_pb2.Summary.Value:
        tag = self._display_tag(name, "scalars")
        return _Value(tag=tag, metadata=self._meta(tag, SCALAR_METADATA, description),
                      tensor=_Tensor(dtype=types_pb2.DT_FLOAT, tensor_shape=_SCALAR_SHAPE,
                                     float_val=[_f32(value)]))

    def _display_text(self, name: str, text: str, description: str = "") -> summary_pb2.Summary.Value:
        tag = self._display_tag(name, "text")
        return _Value(tag=tag, metadata=self._meta(tag, TEXT_METADATA, description),
                      tensor=_Tensor(dtype=types_pb2.DT_STRING, tensor_shape=_SCALAR_SHAPE,
                                     string_val=[text.encode("utf-8", "surrogatepass")]))

    def _display_image(self, name: str, image: summary_pb2.Summary.Image) -> summary_pb2.Summary.Value:
        return _Value(tag=self._display_tag(name, "images"), image=image)

    def _record_value(self, record: Record) -> summary_pb2.Summary.Value:
        text = record_to_json(record).encode("utf-8", "surrogatepass")
        return _Value(tag=RECORDS_TAG, metadata=self._meta(RECORDS_TAG, RECORDS_METADATA),
                      tensor=_Tensor(dtype=types_pb2.DT_STRING, tensor_shape=_SCALAR_SHAPE,
                                     string_val=[text]))

    def _event(self, wall_time: float, step: int, values: list) -> bytes:
        if step > self.max_step:
            self.max_step = step
        return _Event(wall_time=wall_time, step=step, summary=_Summary(value=values)).SerializeToString()

    def metric(self, m: Metric) -> bytes:
        v = m.value
        kind = type(v)
        step = m.step if m.step is not None else m.seq
        templated = (kind is float and v - v == 0.0 and 0 < step <= _INT64_MAX and not m.description
                     and not m.from_list and (m.step is None or m.step == m.seq) and _time_exact(m.time))
        if templated:
            key = (m.name, m.step is None, m.writer)
            wall_time = m.time / 1e6
            event = self.templates.event(key, wall_time, step, v)
            if event is not None:
                if step > self.max_step:
                    self.max_step = step
                return event
            event = self._metric_event(m, v, kind, step)
            self.templates.learn(key, event, wall_time, step, v)
            return event
        return self._metric_event(m, v, kind, step)

    def _metric_event(self, m: Metric, v: Any, kind: type, step: int) -> bytes:
        """The event of one metric, serialized by protobuf."""
        if not (_INT64_MIN <= step <= _INT64_MAX) or not (_INT64_MIN <= m.seq <= _INT64_MAX):
            return self._record_event(m, m.time, self._display_for(m.name, v))
        if kind is float:
            tensor = _Tensor(dtype=types_pb2.DT_DOUBLE, tensor_shape=_SCALAR_SHAPE, double_val=[v])
            display = self._display_scalar(m.name, v, m.description)
        elif kind is int and _INT64_MIN <= v <= _INT64_MAX:
            tensor = _Tensor(dtype=types_pb2.DT_INT64, tensor_shape=_SCALAR_SHAPE, int64_val=[v])
            display = self._display_scalar(m.name, float(v), m.description)
        elif kind is str:
            tensor = _Tensor(dtype=types_pb2.DT_STRING, tensor_shape=_SCALAR_SHAPE,
                             string_val=[v.encode("utf-8", "surrogatepass")])
            display = self._display_text(m.name, v, m.description)
        else:  # bool, None, big ints: the exact JSON record (+ a display scalar where it means one)
            return self._record_event(m, m.time, self._display_for(m.name, v), step=step)
        tag = EXACT_PREFIX + m.name
        if m.description or m.from_list or not _time_exact(m.time) or (m.step is not None and m.step != m.seq):
            extra: dict[str, Any] = {}
            if m.step is not None:
                extra["seq"] = m.seq
            if m.from_list:
                extra["list"] = 1
            if m.description:
                extra["desc"] = m.description
            if not _time_exact(m.time):
                extra["time"] = m.time
            if m.writer:
                extra["w"] = m.writer
            content = json.dumps(extra, ensure_ascii=False).encode("utf-8", "surrogatepass")
        elif m.step is not None:
            # the user's step, equal to seq (the common `log(..., step=i)`)
            content = STEP_IS_SEQ + m.writer.encode("utf-8", "surrogatepass")
        elif m.writer:
            content = NO_STEP + m.writer.encode("utf-8", "surrogatepass")
        else:
            content = b""
        if content:
            metadata = _plugin_metadata(PLUGIN, summary_pb2.DATA_CLASS_TENSOR, content)
            self._seen.add(tag)
        else:
            metadata = self._meta(tag, EXACT_METADATA)
        exact = _Value(tag=tag, metadata=metadata, tensor=tensor)
        return self._event(m.time / 1e6, step, [exact, display])

    def _column_scalars(self, row: Row) -> list:
        """Display scalars ``<table>/<column>`` of the row's numeric cells (for the Scalars charts)."""
        shown = []
        for column, v in row.cells:
            kind = type(v)
            if kind is float or (kind is int and -2 ** 1023 < v < 2 ** 1023):
                shown.append(self._display_scalar(f"{row.name}/{column}", float(v)))
        return shown

    def _display_for(self, name: str, v: Any) -> list:
        if type(v) is bool or type(v) is int:
            return [self._display_scalar(name, float(v))]
        if type(v) is float:
            return [self._display_scalar(name, v)]
        if type(v) is str:
            return [self._display_text(name, v)]
        return []

    def encode(self, records: Sequence[Record]) -> list[bytes]:
        """The serialized events of one batch, in record order."""
        out: list[bytes] = []
        i = 0
        n = len(records)
        while i < n:
            rec = records[i]
            kind = type(rec)
            if kind is Metric:
                out.append(self.metric(rec))
            elif kind is Row:
                j = i
                while j < n and type(records[j]) is Row and records[j].name == rec.name:
                    j += 1
                view = self._tables.get(rec.name)
                if view is None:
                    view = self._tables[rec.name] = TableView()
                for k in range(i, j):  # step = the row's index in its table
                    row = records[k]
                    view.add(row)
                    shown = self._column_scalars(row)
                    if k == j - 1:  # the batch's last row carries the whole table so far
                        shown.append(self._display_text(rec.name, view.markdown(), rec.description))
                    out.append(self._record_event(row, row.time, shown, step=row.seq))
                i = j
                continue
            elif kind is Image:
                extra = []
                if rec.data is not None:
                    if rec.media_type.startswith("image/"):
                        h, w = image_size(rec.data)
                        extra.append(self._display_image(rec.name, _Summary.Image(
                            height=h, width=w, colorspace=4 if rec.media_type == "image/png" else 3,
                            encoded_image_string=rec.data)))
                    elif rec.media_type == "application/json":
                        extra.append(self._display_text(
                            rec.name, "```\n" + rec.data.decode("utf-8", "replace") + "\n```"))
                stored = rec._replace(data=None)
                step = rec.step if rec.step is not None else rec.seq
                out.append(self._record_event(stored, rec.time, extra, step=step))
            elif kind is File:
                out.append(self._record_event(rec._replace(source=None, data=None), rec.time))
            elif kind is RunInfo:  # timed by the run's own clock, like every other record
                out.append(self._record_event(rec, rec.end_time if rec.end_time is not None else rec.start_time))
            else:  # Tag, Property
                out.append(self._record_event(rec, rec.time))
            i += 1
        return out

    def _record_event(self, record: Record, time_us: int | None, extra: list | None = None,
                      step: int | None = None) -> bytes:
        """One event holding the exact JSON record (+ display values); metrics and images keep
        their step, other records take the highest step so far (steps never go backwards)."""
        values = [self._record_value(record)]
        if extra:
            values.extend(extra)
        wall = (time_us / 1e6) if time_us is not None else _now()
        if step is None or not (_INT64_MIN <= step <= _INT64_MAX):
            step = self.max_step
        elif step > self.max_step:
            self.max_step = step
        return _Event(wall_time=wall, step=step, summary=_Summary(value=values)).SerializeToString()


def file_version_event() -> bytes:
    return _Event(wall_time=_now(), file_version="brain.Event:2").SerializeToString()


def _now() -> float:
    import time

    return time.time()


# --- reading runbridge's own runs ----------------------------------------------------------

def decode_own(events: Iterable[event_pb2.Event]) -> Iterator[Record]:
    """The exact records in events runbridge wrote, in event order (display copies skipped)."""
    DT_DOUBLE, DT_INT64, DT_STRING = types_pb2.DT_DOUBLE, types_pb2.DT_INT64, types_pb2.DT_STRING
    plen = len(EXACT_PREFIX)
    loads = json.loads
    for ev in events:
        values = ev.summary.value
        if not values:
            continue
        v = values[0]  # the exact value or record; display copies follow it
        tag = v.tag
        if tag == RECORDS_TAG:
            yield record_from_json(v.tensor.string_val[0].decode("utf-8", "surrogatepass"))
        elif tag.startswith(EXACT_PREFIX):
            t = v.tensor
            dtype = t.dtype
            if dtype == DT_DOUBLE:
                value: Any = t.double_val[0] if t.double_val else struct.unpack("<d", t.tensor_content)[0]
            elif dtype == DT_INT64:
                value = t.int64_val[0] if t.int64_val else struct.unpack("<q", t.tensor_content)[0]
            elif dtype == DT_STRING:
                value = t.string_val[0].decode("utf-8", "surrogatepass")
            else:
                continue
            content = v.metadata.plugin_data.content
            flag = content[:1]
            if not content:
                yield Metric(tag[plen:], ev.step, value, None, round(ev.wall_time * 1e6))
            elif flag == STEP_IS_SEQ:
                step = ev.step
                yield Metric(tag[plen:], step, value, step, round(ev.wall_time * 1e6), False, "",
                             content[1:].decode("utf-8", "surrogatepass"))
            elif flag == NO_STEP:
                yield Metric(tag[plen:], ev.step, value, None, round(ev.wall_time * 1e6), False, "",
                             content[1:].decode("utf-8", "surrogatepass"))
            else:
                extra = loads(content)
                seq = extra.get("seq")
                if seq is None:
                    seq, step = ev.step, None
                else:
                    step = ev.step
                t_us = extra.get("time")
                if t_us is None:
                    t_us = round(ev.wall_time * 1e6)
                yield Metric(tag[plen:], seq, value, step, t_us,
                             bool(extra.get("list", 0)), extra.get("desc", ""), extra.get("w", ""))


# --- reading event folders other tools wrote ------------------------------------------------

def _hparam_value(value: Any) -> str | None:
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        x = value.number_value
        return str(int(x)) if x.is_integer() and abs(x) < 2 ** 53 else repr(x)
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return str(value.bool_value)
    return None


class ForeignDecoder:
    """Events another tool wrote (tensorboardX, PyTorch, TensorFlow) -> records, as TensorBoard
    shows them: scalars (legacy ``simple_value`` and tensors) as numeric `Metric`s, text as
    string `Metric`s, images as `Image`s (file ``<tag>/<step>[_<k>].<ext>``), hparams as
    `Property`s. Kinds runbridge has no record for (histograms, audio, PR curves, graphs) are
    counted in `skipped` so the caller can warn about them.
    """

    def __init__(self) -> None:
        self._plugin_of: dict[str, str] = {}
        self._seq: dict[str, int] = {}
        self.skipped: dict[str, int] = {}
        self.images: dict[str, bytes] = {}
        self._file_names: set[str] = set()
        self.first_time: float | None = None
        self.last_time: float | None = None

    def _next_seq(self, name: str) -> int:
        s = self._seq.get(name, 0)
        self._seq[name] = s + 1
        return s

    def decode(self, ev: event_pb2.Event, keep_image_bytes: bool = False) -> list[Record]:
        from tensorboard import data_compat
        from tensorboard.util import tensor_util

        if self.first_time is None or ev.wall_time < self.first_time:
            self.first_time = ev.wall_time
        if self.last_time is None or ev.wall_time > self.last_time:
            self.last_time = ev.wall_time
        if not ev.HasField("summary"):
            return []
        out: list[Record] = []
        t_us = round(ev.wall_time * 1e6)
        for raw in ev.summary.value:
            if raw.WhichOneof("value") == "simple_value":  # fast path: what TensorBoard shows
                self._plugin_of.setdefault(raw.tag, "scalars")
                out.append(Metric(raw.tag, self._next_seq(raw.tag), raw.simple_value, ev.step, t_us))
                continue
            value = data_compat.migrate_value(raw)
            tag = value.tag
            if value.HasField("metadata") and value.metadata.plugin_data.plugin_name:
                plugin = self._plugin_of.setdefault(tag, value.metadata.plugin_data.plugin_name)
            else:
                plugin = self._plugin_of.get(tag, "")
            if plugin == "scalars":
                arr = tensor_util.make_ndarray(value.tensor)
                x = arr.item() if arr.size == 1 else None
                if x is None:
                    self.skipped[f"{tag} (non-scalar)"] = self.skipped.get(f"{tag} (non-scalar)", 0) + 1
                    continue
                if isinstance(x, float) or isinstance(x, int) and not isinstance(x, bool):
                    pass
                else:
                    x = float(x)
                out.append(Metric(tag, self._next_seq(tag), x, ev.step, t_us))
            elif plugin == "text":
                arr = tensor_util.make_ndarray(value.tensor)
                flat = [b.decode("utf-8", "replace") if isinstance(b, bytes) else str(b) for b in arr.flatten()]
                out.append(Metric(tag, self._next_seq(tag), "\n".join(flat) if len(flat) != 1 else flat[0],
                                  ev.step, t_us))
            elif plugin == "images":
                blobs = list(value.tensor.string_val[2:])
                for k, blob in enumerate(blobs):
                    media = media_type_of(blob)
                    ext = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif"}.get(media, "bin")
                    suffix = f"_{k}" if len(blobs) > 1 else ""
                    file_name = f"{tag}/{ev.step}{suffix}.{ext}"
                    n = 1
                    while file_name in self._file_names:  # the same tag and step logged again
                        n += 1
                        file_name = f"{tag}/{ev.step}{suffix}-{n}.{ext}"
                    self._file_names.add(file_name)
                    if keep_image_bytes:
                        self.images[file_name] = blob
                    out.append(Image(tag, self._next_seq(tag), file_name, media, t_us, ev.step, None))
            elif plugin == "hparams":
                out.extend(self._hparams(value, t_us))
            else:
                key = plugin or "unknown"
                self.skipped[key] = self.skipped.get(key, 0) + 1
        return out

    def _hparams(self, value: Any, t_us: int) -> list[Record]:
        from tensorboard.plugins.hparams import plugin_data_pb2

        try:
            data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
        except Exception:  # noqa: BLE001 - undecodable: count it as skipped
            self.skipped["hparams"] = self.skipped.get("hparams", 0) + 1
            return []
        if data.WhichOneof("data") != "session_start_info":
            return []
        out: list[Record] = []
        for key in sorted(data.session_start_info.hparams):
            out.append(Property(key, _hparam_value(data.session_start_info.hparams[key]), t_us))
        return out
