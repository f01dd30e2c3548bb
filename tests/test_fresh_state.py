"""Every check (or every case) is observed in a fresh fork of the student process (issue
19): nothing a function or a module remembers crosses from one to the next, and a case
whose fork dies fails instead of being observed in place."""

import json
import os

import numpy as np
import pytest

from autograder import checks, data
from autograder.sandbox import server

ASSIGNMENT = "01-positional-encoding"


def _namespace(behaviour):
    calls = []

    def sinusoidal_positional_encoding(seq_len, d_model, base=10000.0):
        calls.append(seq_len)
        return behaviour(calls, seq_len, d_model)

    return {"sinusoidal_positional_encoding": sinusoidal_positional_encoding}, calls


def _observe(check, namespace):
    """The answers as the student process sends them (JSON, encoded once, in the fork)."""
    out = os.open(os.devnull, os.O_WRONLY)
    try:
        return json.loads(server.observe_fresh(check, namespace, check.seeds(), out))
    finally:
        os.close(out)


def test_each_case_starts_from_the_state_after_the_cells(monkeypatch):
    monkeypatch.setattr(server, "FRESH_PER", "case")
    check = checks.checks_for(ASSIGNMENT)["sinusoidal_basics"]
    assert len(check.cases) > 1
    namespace, calls = _namespace(lambda calls, n, d: np.full((n, d), float(len(calls))))
    seen = _observe(check, namespace)
    assert calls == [], "a case ran in the observing process"
    for index, answers in seen.items():
        for field, answer in answers.items():
            found = data.decode(answer)
            if isinstance(found, data.Array):  # the first call of its case, every time
                assert found.values.min() >= 1 and found.values.max() <= len(answers), \
                    (index, field, found.values.max())
    in_place = check.observe_in(namespace)  # the nbgrader path: one process, calls pile up
    assert len(calls) > max(len(a) for a in seen.values())
    assert in_place.keys() == seen.keys()


@pytest.mark.parametrize("per", ["case", "check"])
def test_a_case_whose_fork_dies_fails(monkeypatch, per):
    monkeypatch.setattr(server, "FRESH_PER", per)
    check = checks.checks_for(ASSIGNMENT)["sinusoidal_basics"]

    def exits(calls, n, d):
        os._exit(0)

    namespace, _ = _namespace(exits)
    seen = _observe(check, namespace)
    assert check.judge_seen(seen)
    for answers in seen.values():
        found = data.decode(answers["raised"])
        assert isinstance(found, data.Raised) and "ended before it answered" in found.message


def test_each_check_starts_from_the_state_after_the_cells(monkeypatch):
    monkeypatch.setattr(server, "FRESH_PER", "check")
    namespace, calls = _namespace(lambda calls, n, d: np.full((n, d), float(len(calls))))
    for check in checks.checks_for(ASSIGNMENT).values():
        seen = _observe(check, namespace)
        assert calls == [], "a check ran in the observing process"
        for answers in seen.values():  # counts the calls of this check only
            for answer in answers.values():
                found = data.decode(answer)
                if isinstance(found, data.Array) and found.values is not None and \
                        found.values.size:
                    assert found.values.max() <= sum(len(a) for a in seen.values())
