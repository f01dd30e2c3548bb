"""The visible tests a learner runs: they catch the realistic bugs and name their cause.

In-process (no kernel): the released notebook's setup cells and solution cells (the reference
solution, one cell replaced by a catalog case) run in a fresh namespace, then the visible part
(outside ``### BEGIN HIDDEN TESTS``) of the grade cells of one exercise.

Catch rates of the hand-written wrong catalog cases (not the generated mutants), measured when
these visible tests were written (before -> after):
    01 sinusoidal_positional_encoding 5/7 -> 6/7, add_positional_encoding 3/4 -> 4/4,
    relative_position_matrix 1/2 -> 2/2 (issue 21: a base of 100, a second pair),
    02 scaled_dot_product_attention 4/9 -> 9/9, SelfAttention 5/13 -> 12/13,
    03 causal_mask 3/3, CausalAttention 10/21 -> 18/21 (20/23 with the later cases),
    04 MultiHeadAttentionWrapper 9/15 -> 15/15,
    StackedCausalAttention 5/9 -> 9/9, 05 MultiHeadAttention 6/20 -> 17/20,
    06 RoPEMultiHeadAttention 5/13 -> 12/13, 08 repeat_kv 3/5 -> 5/5, cached_causal_mask 5/6,
    KVCache 8/8 (after), GroupedQueryAttention 8/17 -> 16/17.
"""

import contextlib
import io
import re

import pytest

from autograder import checks, course, scoring
from autograder.outcome import Outcome
from autograder.rubric import load_assignments
from autograder.sandbox import protocol
from conftest import ASSIGNMENTS
from testkit import catalog, program

# every module exercise, scaled_dot_product_attention, and every exercise of chapters 01 and 03
MODULE_EXERCISES = [
    ("01-positional-encoding", "sinusoidal_positional_encoding"),
    ("01-positional-encoding", "add_positional_encoding"),
    ("01-positional-encoding", "relative_position_matrix"),
    ("02-self-attention", "scaled_dot_product_attention"),
    ("02-self-attention", "SelfAttention"),
    ("03-causal-masking", "causal_mask"),
    ("03-causal-masking", "CausalAttention"),
    ("04-stacking-heads", "MultiHeadAttentionWrapper"),
    ("04-stacking-heads", "StackedCausalAttention"),
    ("05-multi-head-attention", "MultiHeadAttention"),
    ("06-rope", "RoPEMultiHeadAttention"),
    ("08-kv-cache", "repeat_kv"),
    ("08-kv-cache", "cached_causal_mask"),
    ("08-kv-cache", "KVCache"),
    ("08-kv-cache", "GroupedQueryAttention"),
]

# the published or lesson bug of each exercise, and a word its visible message must hold
CANONICAL = [
    ("02-self-attention", "missing_scale", "1 / sqrt(d_k)"),
    ("02-self-attention", "scale_by_sqrt_d_in", "sqrt(d_out)"),
    ("03-causal-masking", "mask_not_sliced", "slice the mask"),
    ("03-causal-masking", "fill_with_zero", "-inf"),
    ("03-causal-masking", "mask_plain_attribute", "register_buffer"),
    ("04-stacking-heads", "heads_reversed", "in order"),
    ("04-stacking-heads", "d_out_split_across_heads", "num_heads * d_out"),
    ("04-stacking-heads", "stack_without_residual", "x = x + layer(x)"),
    ("05-multi-head-attention", "published_bug_d_out_not_divided", "d_out // num_heads"),
    ("05-multi-head-attention", "out_proj_not_applied", "out_proj"),
    ("05-multi-head-attention", "scale_by_d_out", "sqrt(head_dim)"),
    ("05-multi-head-attention", "mask_not_sliced", "slice the mask"),
    ("06-rope", "mha_layout_bug", "(b, num_tokens, num_heads, head_dim) layout"),
    ("06-rope", "mha_no_rope_on_keys", "queries and keys"),
    ("08-kv-cache", "repeat_tiles_heads", "repeat_interleave"),
    ("08-kv-cache", "mask_ignores_cache", "num_cached + i"),
    ("08-kv-cache", "gqa_positions_restart_per_chunk", "past .. past + n_new - 1"),
    ("08-kv-cache", "gqa_is_causal_on_chunks", "cached_causal_mask(n_new, past)"),
    ("08-kv-cache", "gqa_repeat_tiles_heads", "h // (num_heads // num_kv_heads)"),
]


def _case(assignment_id: str, name: str) -> catalog.Case:
    return next(c for c in catalog.written(assignment_id) if c.name == name)


def _namespace(assignment_id: str, answers: dict | None = None) -> dict:
    """Setup cells and solution cells (the reference, except ``answers``), as grading runs them."""
    return program.run(assignment_id, answers, tolerate=True)


def _grade_cells(assignment_id: str, exercise: str, released: bool = True) -> list:
    """The grade cells of ``exercise``: those after its solution cell (whose ``grade_id`` is the
    exercise's name) and before the next one. Read from the notebook alone, so these tests do
    not import the chapter's check module."""
    notebook = course.read(course.notebook_path(assignment_id, released=released))
    found, current = [], None
    for cell in notebook.cells:
        meta = course.nbgrader_meta(cell)
        if meta.get("solution"):
            current = meta["grade_id"]
        elif meta.get("grade") and current == exercise:
            found.append(cell)
    return found


def _visible_cells(assignment_id: str, exercise: str) -> list[str]:
    """The visible tests of ``exercise`` in the learner's (released) notebook."""
    found = []
    for cell in _grade_cells(assignment_id, exercise):
        code = course.HIDDEN_REGION.sub("", cell.source)
        if any(line.strip() and not line.lstrip().startswith("#") for line in code.splitlines()):
            found.append(code)
    return found


def _run_visible(assignment_id: str, exercise: str, answers: dict | None = None):
    """The exception the visible tests of ``exercise`` raise, or None when they pass."""
    namespace = _namespace(assignment_id, answers)
    try:
        for code in _visible_cells(assignment_id, exercise):
            with contextlib.redirect_stdout(io.StringIO()) as printed:
                exec(compile(code, "<visible>", "exec"), namespace)
            assert "visible tests passed" in printed.getvalue()
    except Exception as exc:  # what the learner would see
        return exc
    return None


@pytest.mark.parametrize("assignment_id, exercise", MODULE_EXERCISES)
def test_the_solution_passes_the_visible_tests(assignment_id, exercise):
    assert _visible_cells(assignment_id, exercise), f"{exercise} has no visible tests"
    assert _run_visible(assignment_id, exercise) is None


@pytest.mark.parametrize("assignment_id, name, keyword", CANONICAL,
                         ids=[f"{a}:{n}" for a, n, _ in CANONICAL])
def test_a_canonical_bug_fails_with_a_message_naming_its_cause(assignment_id, name, keyword):
    case = _case(assignment_id, name)
    error = _run_visible(assignment_id, case.cell, {case.cell: case.source})
    assert isinstance(error, AssertionError), f"{name}: visible tests raised {error!r}"
    assert keyword in str(error), f"{name}: the message does not name {keyword!r}: {error}"


@pytest.mark.parametrize("assignment_id, exercise", MODULE_EXERCISES)
def test_visible_tests_catch_most_catalog_bugs(assignment_id, exercise):
    wrong = [c for c in catalog.written(assignment_id) if c.cell == exercise and not c.correct]
    missed = [c.name for c in wrong
              if _run_visible(assignment_id, exercise, {c.cell: c.source}) is None]
    rate = 1 - len(missed) / len(wrong)
    print(f"{assignment_id} {exercise}: {len(wrong) - len(missed)}/{len(wrong)} caught")
    assert rate >= 0.85, f"{exercise}: visible tests catch {rate:.0%}; missed {missed}"


# every alternative correct case of the catalog, of every exercise: nbgrader runs the visible
# tests too, and stock nbgrader grades only the wrong cases (test_nbgrader.py)
CORRECT = [(a, c) for a in ASSIGNMENTS for c in catalog.written(a) if c.correct]


@pytest.mark.parametrize("assignment_id, case", CORRECT, ids=[f"{a}:{c.name}" for a, c in CORRECT])
def test_visible_tests_accept_the_correct_alternatives(assignment_id, case):
    error = _run_visible(assignment_id, case.cell, {case.cell: case.source})
    assert error is None, f"correct {case.name} rejected: {error!r}"


# --- a wrong earlier exercise: the later checks say to fix it first --------------------------

SIGN_BUG = "rope_rotate_half_sign"  # rotate_half as cat(x2, -x1): rotates by -angle


def test_a_wrong_compute_rope_is_blamed_in_the_attention_checks():
    namespace = _namespace("06-rope", {"compute_rope": _case("06-rope", SIGN_BUG).source})
    with pytest.raises(checks.CheckFailed) as failed:
        checks.run("06-rope", "rope_mha_values", namespace)
    assert failed.value.failures[0].startswith("fix `compute_rope` first"), failed.value.failures
    with pytest.raises(checks.CheckFailed):  # compute_rope's own check: no blame, its values
        checks.run("06-rope", "rope_values", namespace)


def test_a_dtype_check_judges_dtypes_not_values():
    upcast = _case("06-rope", "rope_upcast_dtype")
    namespace = _namespace("06-rope", {upcast.cell: upcast.source})
    with pytest.raises(checks.CheckFailed):
        checks.run("06-rope", "rope_dtypes", namespace)
    # a wrong rotation with the right dtype handling loses the dtype point too: it rests on
    # the reference, not on the learner's own float32 call (issue 19)
    namespace = _namespace("06-rope", {"compute_rope": _case("06-rope", SIGN_BUG).source})
    with pytest.raises(checks.CheckFailed):
        checks.run("06-rope", "rope_dtypes", namespace)


def test_the_grader_records_blame_the_earlier_exercise():
    """The same through the project's grader: ``scoring.judge`` on the outcome of the
    messages a sandbox would write (observed here in-process, with the fixed seeds)."""
    assignment = load_assignments()["06-rope"]
    namespace = _namespace("06-rope", {"compute_rope": _case("06-rope", SIGN_BUG).source})
    outcome = Outcome("learner", "fingerprint")
    outcome.read([protocol.Seen(gid, check.observe_in(namespace))
                  for gid, check in assignment.checks.items()] + [protocol.Done()], timeout=60.0)
    result = scoring.judge(scoring.Grading(assignment), outcome)
    cells = {c.grade_id: c for c in result.cells}
    for gid in ("rope_mha_basics", "rope_mha_values", "rope_mha_contract"):
        assert cells[gid].score == 0
        assert cells[gid].failures[0].startswith("fix `compute_rope` first"), cells[gid]
    assert cells["precompute_values"].score == cells["precompute_values"].max_score


# --- the cascade: a bug in an earlier exercise A, seen through a later exercise B -----------

# (chapter, B, A) for every A that a check of B names in ``needs``: B calls A, or may call it
# (then a catalog alternative of B does)
CASCADES = sorted({(assignment_id, check.exercise, earlier) for assignment_id in ASSIGNMENTS
                   for check in checks.checks_for(assignment_id).values()
                   for earlier in check.needs})


def _callers(assignment_id: str, later: str, earlier: str) -> list[tuple[str, dict]]:
    """The solutions of ``later`` that call ``earlier``: the reference and the correct catalog
    alternatives (a solution that never calls it by name cannot depend on it; a call of
    ``torch.nn.functional.scaled_dot_product_attention`` is not a call of the exercise)."""
    calls = re.compile(rf"(?<![\w.]){earlier}\(")
    reference = course.strip_markers(course.solution_cells(
        course.read(course.notebook_path(assignment_id)))[later].source)
    found = [("reference", {})] if calls.search(reference) else []
    return found + [(case.name, {later: case.source}) for case in catalog.written(assignment_id)
                    if case.correct and case.cell == later and calls.search(case.source)]


@pytest.mark.parametrize("assignment_id, later, earlier", CASCADES,
                         ids=[f"{a}:{b}" for a, b, _ in CASCADES])
def test_a_wrong_earlier_exercise_is_named_first(assignment_id, later, earlier):
    """Every wrong catalog case of ``earlier`` that fails a grade cell of ``later`` (its
    reference, or a correct alternative that calls ``earlier``): the hidden failure, with the
    blame that ``checks.run`` (and ``scoring.judge``) apply, names ``earlier``, and the visible
    test of ``later`` stops with a message that says to fix ``earlier`` first."""
    callers = _callers(assignment_id, later, earlier)
    if not callers:  # it reaches ``earlier`` only through another exercise: that pair tests it
        assert any(_callers(assignment_id, later, other) for a, b, other in CASCADES
                   if (a, b) == (assignment_id, later)), f"no solution of {later} calls {earlier}"
        return
    later_cells = [course.nbgrader_meta(c)["grade_id"]
                   for c in _grade_cells(assignment_id, later, released=False)]
    cascaded, problems = [], []
    for case in catalog.written(assignment_id):
        if case.correct or case.cell != earlier:
            continue
        for caller, answers in callers:
            answers = {**answers, earlier: case.source}
            namespace = _namespace(assignment_id, answers)
            hidden = {}
            for grade_id in later_cells:
                try:
                    checks.run(assignment_id, grade_id, namespace)
                except checks.CheckFailed as failed:
                    hidden[grade_id] = failed.failures
            if not hidden:
                continue
            cascaded.append(f"{case.name} ({caller})")
            for grade_id, failures in hidden.items():
                if f"`{earlier}`" not in failures[0]:
                    problems.append(f"{case.name} ({caller}): hidden {grade_id} does not name "
                                    f"{earlier} first: {failures[0]}")
            error = _run_visible(assignment_id, later, answers)
            if not (isinstance(error, AssertionError) and earlier in str(error)
                    and re.search(r"fix (it|them) first", str(error))):
                problems.append(f"{case.name} ({caller}): the visible test of {later} does not "
                                f"say to fix {earlier} first: {error!r}")
    print(f"{assignment_id} {later} <- {earlier}: {cascaded}")
    assert cascaded, f"no wrong case of {earlier} fails {later}: the test proves nothing"
    assert not problems, "\n".join(problems)
