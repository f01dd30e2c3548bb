"""The nbgrader path end to end, with the real commands on a temporary copy of the course.

Also the catalog proof: every wrong implementation loses points on its exercise (in a
bundle of cases that cannot touch each other's exercises: ``catalog.bundles``). The
alternative correct ones keep full marks with our grader (test_grader_agreement), in-process
(test_checks, under the fixed seeds and secret ones) and in the visible tests
(test_visible_tests): the checks that nbgrader's hidden cells run.
"""

import csv

import pytest

from autograder import checks, course
from conftest import ASSIGNMENTS, bundle_of
from testkit import catalog

pytestmark = [pytest.mark.nbgrader, pytest.mark.kernel]

WRONG = [(a, c) for a in ASSIGNMENTS for c in catalog.cases(a) if not c.correct]


def exercise_points(scores, assignment_id, exercise):
    cells = [g for g, c in checks.checks_for(assignment_id).items() if c.exercise == exercise]
    return sum(scores[g][0] for g in cells), sum(scores[g][1] for g in cells)


def test_solution_scores_full_marks(assignment_id, nbgrader_graded):
    stock = nbgrader_graded(assignment_id)
    scores = stock.scores(assignment_id, "solution")
    expected = {g.grade_id: g.points for g in course.grade_cells(course.read(
        course.notebook_path(assignment_id)))}
    assert {g: s[1] for g, s in scores.items()} == expected
    lost = {g: s for g, s in scores.items() if s[0] != s[1]}
    assert not lost, f"the reference solution lost points: {lost}\n{stock.log.stderr[-3000:]}"


def test_solution_notebook_runs_without_errors(assignment_id, nbgrader_graded):
    """Every cell of the solution notebook, lesson cells included, ran to the end without an
    error in nbgrader's kernel, on the run the other tests of this assignment share (the
    released learner notebooks run under nbval: pyproject.toml's testpaths)."""
    stock = nbgrader_graded(assignment_id)
    name = course.notebook_path(assignment_id).name
    ran = course.read(stock.dir / "autograded" / "solution" / assignment_id / name)
    code = [cell for cell in ran.cells if cell.cell_type == "code"]
    assert len(code) == sum(c.cell_type == "code" for c in course.read(
        course.notebook_path(assignment_id)).cells), "cells went missing in autograding"
    for cell in code:
        assert cell.execution_count is not None, f"cell {cell.id} did not run"
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert not errors, f"cell {cell.id} raised {errors[0].ename}: {errors[0].evalue}"


def test_untouched_notebook_scores_zero_and_grades_cleanly(assignment_id, nbgrader_graded):
    stock = nbgrader_graded(assignment_id)
    scores = stock.scores(assignment_id, "untouched")
    assert scores and all(score == 0 for score, _ in scores.values()), scores
    autograded = stock.dir / "autograded" / "untouched" / assignment_id
    assert course.notebook_path(assignment_id).name in {p.name for p in autograded.glob("*.ipynb")}


@pytest.mark.parametrize("assignment_id, case", WRONG, ids=[f"{a}:{c.name}" for a, c in WRONG])
def test_catalog_case_with_nbgrader(assignment_id, case, nbgrader_graded):
    """Graded in its bundle (``catalog.bundles``), where the other cases are of exercises
    that neither call nor name this one: the points of its exercise are its own."""
    bundle = bundle_of(assignment_id, case.name)
    scores = nbgrader_graded(assignment_id).scores(assignment_id, bundle)
    got, best = exercise_points(scores, assignment_id, case.cell)
    assert got < best, f"wrong implementation {case.name} ({case.note}) kept {got}/{best} " \
        f"(submitted as {bundle})"


def test_feedback_and_export(nbgrader_graded):
    assignment_id = ASSIGNMENTS[0]
    stock = nbgrader_graded(assignment_id)
    stock.nbgrader("generate_feedback", assignment_id, "--force")
    name = course.notebook_path(assignment_id).stem + ".html"
    for student in ("solution", "untouched"):
        page = stock.dir / "feedback" / student / assignment_id / name
        assert page.exists(), f"no feedback written for {student}"
        assert "Score" in page.read_text() or "score" in page.read_text()
    stock.nbgrader("export", "--to", str(stock.dir / "grades.csv"))
    rows = list(csv.DictReader(open(stock.dir / "grades.csv")))
    by_student = {r["student_id"]: r for r in rows if r["assignment"] == assignment_id}
    assert float(by_student["solution"]["score"]) == float(by_student["solution"]["max_score"])
    assert float(by_student["untouched"]["score"]) == 0
