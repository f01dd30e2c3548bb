"""The suite's scheduler (``testkit/schedule.py``): how a report is credited to its unit, and
the order it gives the collected tests."""

from types import SimpleNamespace

import pytest

from testkit import schedule


@pytest.mark.parametrize("nodeid, unit", [
    ("tests/test_nbgrader.py::test_x[01-positional-encoding]@nbgrader:01-positional-encoding",
     "nbgrader:01-positional-encoding"),
    ("tests/test_book.py::test_book_builds_without_warnings@book", "book"),
    ("tests/test_slurm.py::test_the_slurm_recipe", "tests/test_slurm.py::test_the_slurm_recipe"),
    ("tests/test_x.py::test_y[a@b]", "tests/test_x.py::test_y[a@b]"),
    ("tests/test_x.py::test_y[a@b]@module:test_x", "module:test_x"),
])
def test_a_report_is_credited_to_its_unit(nodeid, unit):
    assert schedule.unit_of_report(nodeid) == unit


def _item(nodeid, group=None):
    mark = SimpleNamespace(args=(group,), kwargs={}) if group else None
    return SimpleNamespace(nodeid=nodeid, get_closest_marker=lambda name: mark)


def test_the_longest_units_come_first_and_groups_stay_whole(monkeypatch):
    monkeypatch.setattr(schedule, "SECONDS", {"lab": 100.0, "t::slow": 50.0})
    items = [_item("t::a"), _item("t::b", "lab"), _item("t::slow"), _item("t::c"),
             _item("t::d", "lab")]
    schedule.pytest_collection_modifyitems(items)
    assert [i.nodeid for i in items] == ["t::b", "t::d", "t::slow", "t::a", "t::c"]
