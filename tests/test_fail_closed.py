"""Every check fails closed: any damage to the solution's answers is a failure, never a pass.

The solution's answers for every check (fixed seeds) are observed once; then each answer is
replaced, one at a time, by what a broken or lying student process could send instead:
``None``, nothing, another kind of value, an exception, NaN, a wrong shape, data that
``encode`` cannot write. Every such mutant must fail its check, and the untouched answers
must pass (so the test can tell the two apart).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from autograder import checks, data
from testkit import program

ENCODED_NAN = data.encode(np.array([np.nan]))


def solution_answers(assignment_id: str) -> dict:
    namespace = program.run(assignment_id)
    return {g: c.observe_in(namespace) for g, c in checks.checks_for(assignment_id).items()}


def replacements(value) -> dict[str, object]:
    """What a field's answer may be replaced with; each must fail."""
    found = {
        "None": None,
        "an int": data.encode(7),
        "a string": "answer",
        "an empty record": {},
        "a list": [value],
        "an error": data.error(RuntimeError("lost")),
        "NotImplementedError recorded as None": None,
        "an unknown kind": {"kind": "verdict", "value": "pass"},
        "an opaque object": data.encode(object()),
    }
    if isinstance(value, dict) and value.get("kind") == "array" and value.get("data"):
        values = data.decode(value).values
        if values.dtype.kind == "f":
            found["NaN everywhere"] = data.encode(np.full(values.shape, np.nan))
            found["NaN in one place"] = data.encode(np.where(
                np.arange(values.size).reshape(values.shape) == 0, np.nan, values))
        found["a wrong shape"] = data.encode(np.zeros(values.shape + (1,)))
        found["a shorter array"] = data.encode(values.reshape(-1)[:-1] if values.size > 1
                                               else np.zeros(0))
        lying = dict(value, shape=[int(n) for n in values.shape][::-1] + [2])
        found["a shape that does not match its data"] = lying
        found["bytes that are not base64"] = dict(value, data="@" * len(value["data"]))
        found["an unknown storage"] = dict(value, storage="object")
    return found


def damaged(answers: dict):
    """(description, damaged answers) for one check's answers."""
    yield "no answers (None)", None
    yield "an empty record", {}
    yield "a list instead of a record", []
    for case in answers:
        less = {k: v for k, v in answers.items() if k != case}
        yield f"case {case} missing", less
        yield f"case {case} None", dict(answers, **{case: None})
        for field, value in answers[case].items():
            if field == checks.RAISED:
                continue
            fewer = copy.deepcopy(answers)
            del fewer[case][field]
            yield f"case {case}: {field} missing", fewer
            for label, replacement in replacements(value).items():
                if replacement == value:
                    continue
                mutant = copy.deepcopy(answers)
                mutant[case][field] = replacement
                yield f"case {case}: {field} replaced by {label}", mutant


def test_every_damaged_answer_fails_its_check(assignment_id):
    answers = solution_answers(assignment_id)
    registered = checks.checks_for(assignment_id)
    missed, counted = [], 0
    for grade_id, check in registered.items():
        assert not check.judge_seen(answers[grade_id]), f"the solution fails {grade_id}"
        for label, mutant in damaged(answers[grade_id]):
            counted += 1
            try:
                failures = check.judge_seen(mutant)
            except checks.JudgeError as exc:
                missed.append(f"{grade_id}: {label}: the judge crashed ({exc})")
                continue
            if not failures:
                missed.append(f"{grade_id}: {label}")
    assert counted > 50
    assert not missed, f"{len(missed)} of {counted} damaged answers pass:\n" + "\n".join(missed[:40])


@pytest.mark.parametrize("bad", [None, {}, [], "x", {"kind": "int", "value": True},
                                 {"kind": "array", "shape": [10**9], "library": "numpy",
                                  "dtype": "float64", "storage": "float64", "data": "AAAA"},
                                 {"kind": "list", "items": [[]] * 3}])
def test_a_none_or_malformed_answer_names_the_problem(bad):
    verdict = checks.Verdict({"out": bad}, "case")
    assert not verdict.array("out", np.zeros(3), "f(x)")
    assert verdict.failures and "f(x)" in verdict.failures[0]
    if bad is None:
        assert "returned None: is a `return` missing?" in verdict.failures[0]
