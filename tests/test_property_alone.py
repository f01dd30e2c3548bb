"""No check awards a point on a property of the student's answers alone (issue 19).

A property compares the student's answers with each other: causality (the answer on x and
the answer with the future changed agree up to t), merge(split(x)) == x, a chunked run
equals a whole one, relative position, norm preservation. Each is kept by a wrong answer
that moves every answer of a case the same way. Here every float array a case answered
for the reference solution is replaced by ``a + 0.5``: every equality between answers still
holds, none matches the reference, and every such case must fail.
"""

import numpy as np
import pytest

from autograder import checks, course, data
from autograder.testing import program

# Cases whose float answers are judged for their shape only, beside a required error that
# earns the point (the error is compared with the contract, the answer only shows that the
# call does not always raise).
SHAPE_ONLY = {
    ("01-positional-encoding", "sinusoidal_errors"),
    ("05-multi-head-attention", "mha_errors"),
}


def _shift(answer):
    """``answer`` (encoded) with every float array shifted by 0.5."""
    if isinstance(answer, dict) and answer.get("kind") == "array":
        found = data.decode(answer)
        if found.values is None or found.values.dtype.kind != "f":
            return answer
        return data.roundtrip(data._encode_array(found.values + 0.5, found.library,
                                                 dtype=found.dtype, device=found.device))
    if isinstance(answer, dict) and answer.get("kind") in ("list", "tuple", "sequence"):
        return {**answer, "items": [_shift(item) for item in answer["items"]]}
    return answer


def _has_float_array(answer) -> bool:
    if isinstance(answer, dict) and answer.get("kind") == "array":
        found = data.decode(answer)
        return found.values is not None and found.values.dtype.kind == "f"
    if isinstance(answer, dict) and answer.get("kind") in ("list", "tuple", "sequence"):
        return any(_has_float_array(item) for item in answer["items"])
    return False


@pytest.mark.parametrize("assignment_id", course.assignment_ids())
def test_shifted_answers_fail_every_case(assignment_id):
    namespace = program.run(assignment_id)
    tried = 0
    for grade_id, check in checks.checks_for(assignment_id).items():
        seen = check.observe_in(namespace)
        assert not check.judge_seen(seen), f"the solution fails {grade_id}"
        if (assignment_id, grade_id) in SHAPE_ONLY:
            continue
        for index, answers in seen.items():
            fields = {k: v for k, v in answers.items() if _has_float_array(v)}
            if not fields:
                continue  # claims, errors, integers: no property between float answers
            tried += 1
            shifted = {**seen, index: {**answers, **{k: _shift(v) for k, v in fields.items()}}}
            failures = check.judge_seen(shifted)
            assert failures, (f"{grade_id} case {index} passes with every float answer "
                              f"({sorted(fields)}) shifted by 0.5: a point on a property alone")
    assert tried, "no case with float answers"


SPLIT_PERMUTED = '''
def split_heads(x, num_heads):
    b, n, d = x.shape
    if d % num_heads:
        raise ValueError(f"d={d} is not divisible by num_heads={num_heads}")
    heads = x.view(b, n, num_heads, d // num_heads).transpose(1, 2)
    return heads.flip(1)  # heads in reverse order
'''

MERGE_PERMUTED = '''
def merge_heads(x):
    b, h, n, hd = x.shape
    return x.flip(1).transpose(1, 2).reshape(b, n, h * hd)  # undoes the reversed split
'''


def test_a_wrong_inverse_pair_fails_split_and_merge():
    """split_heads and merge_heads with the heads reversed: merge(split(x)) == x holds, and
    both exercises still fail (the round trip goes through the reference's split)."""
    answers = {"split_heads": SPLIT_PERMUTED, "merge_heads": MERGE_PERMUTED}
    found = program.failures("05-multi-head-attention", answers)
    namespace = program.run("05-multi-head-attention", answers)
    x = np.arange(24, dtype=np.float32).reshape(1, 3, 8)
    import torch

    roundtrip = namespace["merge_heads"](namespace["split_heads"](torch.from_numpy(x), 4))
    assert np.array_equal(roundtrip.numpy(), x), "the pair is not an inverse pair"
    for grade_id in ("split_basics", "split_contract", "merge_basics", "merge_contract"):
        assert found[grade_id], f"{grade_id} passes a wrong inverse pair"
