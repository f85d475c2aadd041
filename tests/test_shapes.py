"""shapes.fold: one case per row of the docs/metrics-shapes.md table, on records alone (pure)."""

import pytest

from runbridge.records import Image, Metric, Row, RunInfo, Tag
from runbridge.shapes import file_names, fold, fold_properties, fold_tags
from runbridge.testing import assert_same

INFO = RunInfo("r1", "exp")


def m(name, *values, from_list=False):
    return [Metric(name, i, v, None, i, from_list) for i, v in enumerate(values)]


def rows(name, *dicts, from_table=False):
    return [Row(name, i, tuple(d.items()), i, from_table) for i, d in enumerate(dicts)]


CASES = [
    ("log a 0.5", m("a", 0.5), "a", 0.5),
    ("log a 1 stays int", m("a", 1), "a", 1),
    ("log three times", m("a", 0.1, 0.2, 0.3), "a", [0.1, 0.2, 0.3]),
    ("string once", m("s", "abc"), "s", "abc"),
    ("string twice", m("s", "abc", "def"), "s", ["abc", "def"]),
    ("bool", m("b", True), "b", True),
    ("None", m("n", None), "n", None),
    ("log_list ints", m("l", 1, 2, 3, from_list=True), "l", [1, 2, 3]),
    ("log_list floats", m("l", 1.0, 2.5, from_list=True), "l", [1.0, 2.5]),
    ("log_list single", m("l", 5, from_list=True), "l", 5),
    ("log_list twice", m("l", 1, 2, 1, 2, from_list=True), "l", [1, 2, 1, 2]),
    ("log_row once", rows("r", {"x": 1, "y": 0.4}), "r", {"x": 1, "y": 0.4}),
    ("log_row three", rows("r", {"x": 1, "y": 0.4}, {"x": 2, "y": 0.5}, {"x": 3, "y": 0.6}),
     "r", {"x": [1, 2, 3], "y": [0.4, 0.5, 0.6]}),
    ("log_table", rows("t", {"x": 1, "y": .6}, {"x": 2, "y": .7}, {"x": 3, "y": .89}, from_table=True),
     "t", {"x": [1, 2, 3], "y": [0.6, 0.7, 0.89]}),
    ("log_table one row", rows("t", {"x": 1, "y": "a"}, from_table=True), "t", {"x": 1, "y": "a"}),
    ("log_image first wins", [Image("roc", 0, "roc_1.png", "image/png", 1), Image("roc", 1, "roc_2.png", "image/png", 2)],
     "roc", "runbridge://r1/roc_1.png"),
    ("confusion matrix", [Image("cm", 0, "cm", "application/json", 1)], "cm", "runbridge://r1/cm"),
]


@pytest.mark.parametrize("records, name, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_fold_gives_the_spec_shape(records, name, expected):
    assert_same(fold([INFO, *records])[name], expected)


def test_names_keep_first_logged_order():
    records = [INFO, *m("b", 1), *rows("t", {"x": 1}), *m("a", 2), *m("b", 3)]
    assert list(fold(records)) == ["b", "t", "a"]


def test_tags_properties_and_files_hide_reserved_names():
    from runbridge.records import File, Property
    records = [INFO, Tag("a", "1", 1), Tag("runbridge.status", "x", 2), Tag("a", None, 3), Tag("b", "2", 4),
               Tag("b", None, 5, removed=True), Property("p", "1", 1), Property("runbridge.x", "1", 1),
               File("f.txt", 1, "0", 1), File("runbridge.hidden", 1, "0", 1), Image("i", 0, "i.png", "image/png", 1)]
    assert fold_tags(records) == {"a": None}
    assert fold_tags(records, include_reserved=True) == {"a": None, "runbridge.status": "x"}
    assert fold_properties(records) == {"p": "1"}
    assert file_names(records) == ["f.txt", "i.png"]
