"""A run's tags and properties as TensorBoard HParams, so its HParams dashboard lists them.

They live in one small event file per run folder (`HPARAMS_FILE`), holding a single HParams
``session_start_info`` summary (written with TensorBoard's own `hparams_pb`): hparam
``tags/<key>`` per tag and ``properties/<key>`` per property, as strings; reserved
``runbridge.*`` tags stay out. TensorBoard keeps the first metadata it meets for a tag, so an
update cannot be appended: the file is rewritten whole (atomically) when the set changes. Its
name sorts before every other event file and ends like runbridge's own files, and reading a run
skips it: the exact tags and properties are in the record stream (see `translate`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from runbridge.media import write_file_atomically
from runbridge.records import Property, Record, Tag

from . import tfrecord

#: The HParams event file of a run folder (wall time 0 in the name: it sorts first).
HPARAMS_FILE = "events.out.tfevents.0000000000.hparams.runbridge"
TAG_PREFIX = "tags/"
PROPERTY_PREFIX = "properties/"
#: Tags runbridge keeps for itself (bookkeeping), never shown as hparams.
RESERVED_PREFIX = "runbridge."


def shown_in(records: Sequence[Record]) -> bool:
    """Whether `records` set a tag or property the HParams dashboard shows (heartbeats and other
    bookkeeping tags do not, so they never cost a read of the HParams file)."""
    return any(type(r) is Property or (type(r) is Tag and not r.key.startswith(RESERVED_PREFIX))
               for r in records)


def updated(current: dict[str, str], records: Sequence[Record]) -> dict[str, str] | None:
    """`current` with the tags and properties of `records` applied, or None if none changes it."""
    out = dict(current)
    for rec in records:
        kind = type(rec)
        if kind is Tag:
            if rec.key.startswith(RESERVED_PREFIX):
                continue
            if rec.removed:
                out.pop(TAG_PREFIX + rec.key, None)
            else:
                out[TAG_PREFIX + rec.key] = "" if rec.value is None else rec.value
        elif kind is Property:
            out[PROPERTY_PREFIX + rec.key] = "" if rec.value is None else rec.value
    return None if out == current else out


def read(folder: Path) -> dict[str, str]:
    """The hparams the run folder's HParams file holds ({} without one)."""
    from tensorboard.compat.proto import event_pb2
    from tensorboard.plugins.hparams import plugin_data_pb2

    path = folder / HPARAMS_FILE
    if not path.is_file():
        return {}
    out: dict[str, str] = {}
    for blob in tfrecord.read_records(str(path)):
        event = event_pb2.Event.FromString(blob)
        for value in event.summary.value:
            if value.metadata.plugin_data.plugin_name != "hparams":
                continue
            data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
            if data.WhichOneof("data") == "session_start_info":
                for key, v in data.session_start_info.hparams.items():
                    out[key] = v.string_value
    return out


def write(folder: Path, hparams: dict[str, str], start_time_us: int, group: str) -> None:
    """Rewrite the run folder's HParams file with `hparams` (`group`: the session group name)."""
    from tensorboard.compat.proto import event_pb2
    from tensorboard.plugins.hparams import summary_v2

    wall = start_time_us / 1e6
    summary = summary_v2.hparams_pb(dict(sorted(hparams.items())), trial_id=group, start_time_secs=wall)
    events = [event_pb2.Event(wall_time=wall, file_version="brain.Event:2").SerializeToString(),
              event_pb2.Event(wall_time=wall, step=0, summary=summary).SerializeToString()]
    write_file_atomically(folder / HPARAMS_FILE, data=tfrecord.frame(events))
