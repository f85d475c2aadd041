"""runbridge backend for TensorBoard event files (``tensorboard:<logdir>``, extra ``[tensorboard]``).

Numbers, strings, images and tables show up natively in TensorBoard's dashboards, and every
record reads back exactly (see `translate` for the event layout, `backend` for the folders).
"""

from .backend import ForeignRunWarning, TensorBoardBackend
from .tfrecord import EventFileDamageWarning

__all__ = ["TensorBoardBackend", "EventFileDamageWarning", "ForeignRunWarning"]
