"""The one rule for "what a backend still lacks": record identity, writer included."""

from runbridge.holdings import lacking
from runbridge.records import File, Metric, Property, Row, RunInfo, Tag


def test_a_partly_stored_batch_is_completed_without_duplicates():
    held = [Metric("x", 0, 0, None, 1, writer="a"), Metric("x", 1, 1, None, 1, writer="a"), Property("p", "1", 1),
            File("f", 1, "", 1), Tag("t", "v", 5)]
    spooled = [Metric("x", 1, 1, None, 1, writer="a"), Metric("x", 2, 2, None, 1, writer="a"), Property("p", "1", 1),
               Metric("y", 0, 5, None, 1, writer="a"), File("f", 1, "", 1), Tag("t", "v", 5), Tag("t", "w", 6)]
    assert lacking(spooled, held) == [Metric("x", 2, 2, None, 1, writer="a"), Metric("y", 0, 5, None, 1, writer="a"),
                                      Tag("t", "w", 6)]


def test_the_same_seq_from_another_writer_is_another_record():
    """Four ranks each log `loss` #0 with the same value at the same instant: four records."""
    ranks = [Metric("loss", 0, 0.5, 0, 1_000, writer=w) for w in ("r0", "r1", "r2", "r3")]
    assert lacking(ranks, ranks[:1]) == ranks[1:]
    rows = [Row("t", 0, (("a", 1),), 1, writer=w) for w in ("r0", "r1")]
    assert lacking(rows, rows) == []
    assert lacking([RunInfo("r", "e"), *rows], None) == rows
