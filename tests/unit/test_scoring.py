"""``scoring``: an outcome judged into a record (``judge_cells``, ``blame``, ``record``)."""

from types import SimpleNamespace

import pytest

from autograder import checks, scoring
from autograder.course import GradeCell
from autograder.errors import GraderError
from autograder.outcome import Outcome
from autograder.records import CellResult
from autograder.rubric import Assignment
from autograder.submissions import Submission
from autograder.testing import tamper

A = tamper.ASSIGNMENT


def test_seeds_are_drawn_once_per_run_from_the_secret(assignments):
    fixed, secret = scoring.Grading(assignments[A]), scoring.Grading(assignments[A], "s3cret")
    for gid, check in assignments[A].checks.items():
        assert fixed.seeds[gid] == check.seeds() == checks.case_seeds(gid, len(check.cases))
        assert secret.seeds[gid] == check.seeds("s3cret") != fixed.seeds[gid]
    assert fixed.seed == "fixed" and secret.seed == scoring.seed_id("s3cret") != "s3cret"


def test_the_fingerprint_names_scoring_seeds_and_submission(assignments):
    submission = Submission("ada", None, "d" * 64)
    fixed, secret = scoring.Grading(assignments[A]), scoring.Grading(assignments[A], "s3cret")
    assert fixed.fingerprint(submission) == f"{assignments[A].digest[:16]}:fixed:{'d' * 32}"
    assert secret.fingerprint(submission) != fixed.fingerprint(submission)
    assert fixed.fingerprint(Submission("bob", None, "e" * 64)) != fixed.fingerprint(submission)


def test_cells_without_answers_fail_with_the_reason(assignments):
    grading = scoring.Grading(assignments[A])
    outcome = Outcome("ada", "fp", reason="timed out", errors={"add_basics": "it died"})
    record = scoring.judge(grading, outcome)
    assert record.status == "error" and record.score == 0 and record.reason == "timed out"
    failures = {c.grade_id: c.failures for c in record.cells}
    assert failures["add_basics"] == ["it died"]
    assert failures["sinusoidal_basics"] == ["not graded: timed out"]
    assert [c.grade_id for c in record.cells] == [c.grade_id for c in assignments[A].cells]
    assert record.fingerprint == "fp" and record.seed == "fixed" and record.student_id == "ada"


def test_a_judge_that_fails_on_valid_answers_is_a_grader_error(assignments, monkeypatch):
    grading = scoring.Grading(assignments[A])
    check = assignments[A].checks["add_basics"]

    def broken(seen, seeds=None):
        raise checks.JudgeError("the judge of add_basics failed")

    monkeypatch.setattr(check, "judge_seen", broken)
    with pytest.raises(GraderError, match="the judge of add_basics failed"):
        scoring.judge_cells(grading, Outcome("ada", "fp", seen={"add_basics": {}}))


def _assignment(blames: bool) -> Assignment:
    """Two exercises, ``g`` calling ``f``; ``f_dtype`` judges no values unless ``blames``."""
    stub = {"f_values": SimpleNamespace(grade_id="f_values", exercise="f", needs=(), blame=True),
            "f_dtype": SimpleNamespace(grade_id="f_dtype", exercise="f", needs=(), blame=blames),
            "g_values": SimpleNamespace(grade_id="g_values", exercise="g", needs=("f",), blame=True)}
    return Assignment("01-x", "x.ipynb", None, [GradeCell(g, 1.0) for g in stub],
                      {g: c.exercise for g, c in stub.items()}, {g: True for g in stub}, "", stub)


def _cells(*failing: str) -> list[CellResult]:
    return [CellResult(g, g.split("_")[0], 0.0 if g in failing else 1.0, 1.0, True,
                       ["wrong. Likely cause: x"] if g in failing else [])
            for g in ("f_values", "f_dtype", "g_values")]


ALL = {"f_values", "f_dtype", "g_values"}


def test_blame_points_at_the_failing_exercise_called():
    cells = scoring.blame(_assignment(True), _cells("f_values", "g_values"), ALL)
    assert cells[2].failures[0].startswith("fix `f` first") and cells[2].failures[1] == "wrong"
    assert cells[0].failures == ["wrong. Likely cause: x"], "f itself is not blamed"
    assert scoring.blame(_assignment(True), _cells("g_values"), ALL)[2].failures == \
        ["wrong. Likely cause: x"]


def test_only_a_check_that_judges_values_makes_its_exercise_a_culprit():
    """A failing check whose ``blame`` is false (errors, dtypes, structure) does not make the
    exercises that call its exercise say "fix it first"."""
    assert scoring.blame(_assignment(False), _cells("f_dtype", "g_values"), ALL)[2].failures == \
        ["wrong. Likely cause: x"]
    assert scoring.blame(_assignment(True), _cells("f_dtype", "g_values"), ALL)[2].failures[0] \
        .startswith("fix `f` first")


def test_only_judged_cells_blame_and_are_blamed():
    """A cell whose answers never came back (the run died, it timed out) is not evidence
    against an earlier exercise, and its reason is not replaced by a "fix it first"."""
    died = scoring.blame(_assignment(True), _cells("f_values", "g_values"), {"f_dtype", "g_values"})
    assert died[2].failures == ["wrong. Likely cause: x"]
    unjudged = scoring.blame(_assignment(True), _cells("f_values", "g_values"), {"f_values"})
    assert unjudged[2].failures == ["wrong. Likely cause: x"]


def test_an_unwritten_stub_is_not_blamed_on_an_earlier_exercise():
    """A later exercise that is still the stub keeps its "not attempted" failures."""
    cells = _cells("f_values", "g_values")
    cells[2].failures = ["g(x) raised NotImplementedError: not written yet"]
    assert scoring.blame(_assignment(True), cells, ALL)[2].failures == cells[2].failures
