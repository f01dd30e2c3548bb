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
    """(description, case index or None, damaged answers) for one check's answers. A damage
    to one case comes as the answers of that case alone (under the key "0", or none when the
    case is missing), to be judged by the check narrowed to it (``narrowed``): ``judge_seen``
    judges each case on its own, so the narrowed verdict is the case's verdict in the whole."""
    yield "no answers (None)", None, None
    yield "an empty record", None, {}
    yield "a list instead of a record", None, []
    for case, given in answers.items():
        yield f"case {case} missing", int(case), {}
        yield f"case {case} None", int(case), {"0": None}
        for field, value in given.items():
            if field == checks.RAISED:
                continue
            yield f"case {case}: {field} missing", int(case), \
                {"0": {k: v for k, v in given.items() if k != field}}
            for label, replacement in replacements(value).items():
                if replacement != value:
                    yield f"case {case}: {field} replaced by {label}", int(case), \
                        {"0": dict(copy.deepcopy(given), **{field: replacement})}


def narrowed(check: checks.Check, index: int | None) -> tuple[checks.Check, list[int]]:
    """The check with its case ``index`` only, and that case's seed (the whole check when
    ``index`` is None)."""
    if index is None:
        return check, check.seeds()
    one = copy.copy(check)
    one.cases = [check.cases[index]]
    return one, [check.seeds()[index]]


def test_every_damaged_answer_fails_its_check(assignment_id):
    answers = solution_answers(assignment_id)
    registered = checks.checks_for(assignment_id)
    missed, counted = [], 0
    for grade_id, check in registered.items():
        assert not check.judge_seen(answers[grade_id]), f"the solution fails {grade_id}"
        for index in range(len(check.cases)):  # a case narrowed but untouched passes
            one, seeds = narrowed(check, index)
            assert not one.judge_seen({"0": answers[grade_id][str(index)]}, seeds), \
                f"the solution fails {grade_id} case {index} judged alone"
        for label, index, mutant in damaged(answers[grade_id]):
            counted += 1
            one, seeds = narrowed(check, index)
            try:
                failures = one.judge_seen(mutant, seeds)
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
