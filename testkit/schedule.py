"""The suite's scheduler: a pytest plugin that orders xdist's ``loadgroup`` work longest first.

A *unit* is what one worker runs in one go: an ``xdist_group`` (tests/conftest.py puts the
tests that share an expensive fixture in one), or a test of its own. Under ``-n auto --dist
loadgroup`` this plugin:

- sorts the collected tests so that the units of ``schedule.json`` (seconds each took in a
  full run) come first, longest first, and keeps that order: xdist would otherwise hand out
  the groups with the most tests first (the book's hundred page tests before the three browser
  flows that take minutes); the short units follow in collection order;
- gives a worker that is still busy with a long unit the shortest unit left instead of the
  next long one (``LongestFirst``): xdist hands a worker its next unit when two of its tests
  are left, and behind the tail of a long unit the next long one would wait while a core idles;
- chooses the number of workers for ``-n auto``: one per core, and one more when the slow
  tests run (they wait on kernels, servers and a browser often enough to leave a core idle).

The table is generated, never edited by hand. Refresh it from a full run on the machine the
suite is timed on (2 cores)::

    python -m pytest -n auto --dist loadgroup --schedule-refresh

which rewrites ``testkit/schedule.json`` with every unit that took at least ``LONG`` seconds.
A stale table costs time, never a result: it only orders the work. ``-p no:testkit.schedule``
runs the suite with xdist's plain ``loadgroup`` (for comparison).
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path

import pytest

TABLE = Path(__file__).with_name("schedule.json")
LONG = 10.0  # seconds: a unit this long or longer is written to the table


def load() -> dict[str, float]:
    return json.loads(TABLE.read_text()) if TABLE.is_file() else {}


SECONDS = load()


def unit(item) -> str:
    """The unit a test belongs to: its ``xdist_group``, or its own node id."""
    mark = item.get_closest_marker("xdist_group")
    group = (mark.args[0] if mark.args else mark.kwargs.get("name", "")) if mark else ""
    return group or item.nodeid


def unit_of_report(nodeid: str) -> str:
    """The unit of a report's node id: ``loadgroup`` appends ``@<group>`` to the id of a test
    in a group (a group name holds no ``]``, ``/`` or ``::``, so a parameter id that holds an
    ``@`` is not taken for one)."""
    head, at, group = nodeid.rpartition("@")
    return group if at and head and not any(c in group for c in ("]", "/", "::")) else nodeid


def pytest_addoption(parser):
    parser.addoption("--schedule-refresh", action="store_true",
                     help=f"write the seconds of this run's long units to {TABLE} "
                          "(run the whole suite with -n auto --dist loadgroup)")


def pytest_configure(config):
    if hasattr(config.option, "loadscopereorder"):  # keep the order of pytest_collection_modifyitems
        config.option.loadscopereorder = False


@pytest.hookimpl(trylast=True)  # after tests/conftest.py has put the tests in their groups
def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: -SECONDS.get(unit(item), 0.0))  # stable: groups stay whole


def pytest_xdist_auto_num_workers(config):
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    fast = "not slow" in (config.getoption("markexpr", "") or "")
    return (cores or 1) + (0 if fast else 1)


def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class LongestFirst(LoadGroupScheduling):
        def _assign_work_unit(self, node):
            running = [scope for scope, tests in self.assigned_work.get(node, {}).items()
                       if not all(tests.values())]
            if any(scope in SECONDS for scope in running):
                self.workqueue.move_to_end(next(reversed(self.workqueue)), last=False)
            super()._assign_work_unit(node)

    return LongestFirst(config, log)


_seconds: dict[str, float] = defaultdict(float)  # unit -> seconds, in this run


def pytest_runtest_logreport(report):
    """Sum each unit's setup, call and teardown (on the controller: every worker's reports)."""
    _seconds[unit_of_report(report.nodeid)] += report.duration


def pytest_sessionfinish(session, exitstatus):
    config = session.config
    if not config.getoption("schedule_refresh") or hasattr(config, "workerinput"):
        return
    if exitstatus != 0:
        print(f"\nschedule: {TABLE.name} kept (the run did not pass)")
        return
    long = {name: round(s) for name, s in sorted(_seconds.items(),
                                                  key=lambda kv: -kv[1]) if s >= LONG}
    TABLE.write_text(json.dumps(long, indent=1) + "\n")
    print(f"\nschedule: {len(long)} units of {LONG:g} s or more written to {TABLE}")
