"""Both grading paths agree: the solution, the untouched notebook and every wrong case of the
catalog (in its bundles: ``catalog.bundles``) get the same score on every grade cell from
``nbgrader autograde`` and from our grader; every alternative correct case (in bundles too)
gets full marks from our grader (its sandbox hides the C++ compiler that a ``torch.compile``
helper would use, for one)."""

import pytest

from autograder import engine
from testkit import catalog

pytestmark = [pytest.mark.nbgrader, pytest.mark.kernel, pytest.mark.sandbox]


def test_same_score_per_grade_cell(assignment_id, nbgrader_graded, tmp_path):
    stock = nbgrader_graded(assignment_id)
    records = engine.grade(stock.dir / "submitted", tmp_path / "results", timeout=120,
                           progress=False, fixed_seeds=True)  # the nbgrader path's seeds
    students = sorted(p.name for p in (stock.dir / "submitted").iterdir())
    assert sorted(r.student_id for r in records) == students
    assert len(students) >= 3, "the solution, the untouched notebook and the catalog"
    correct = {bundle.name: [case.name for case in bundle.cases]
               for bundle in catalog.bundles(assignment_id, correct=True)}
    cells = set(stock.scores(assignment_id, "solution"))
    disagree, lost = {}, {}
    for record in records:
        assert record.status == "graded", (record.student_id, record.reason)
        ours = {c.grade_id: (c.score, c.max_score) for c in record.cells}
        if record.student_id in correct:
            if set(ours) != cells or any(score != best for score, best in ours.values()):
                lost[record.student_id] = (correct[record.student_id],
                                           {g: s for g, s in ours.items() if s[0] != s[1]})
            continue
        theirs = stock.scores(assignment_id, record.student_id)
        if ours != theirs:
            disagree[record.student_id] = {g: (ours.get(g), theirs.get(g))
                                              for g in set(ours) | set(theirs)
                                              if ours.get(g) != theirs.get(g)}
    assert not lost, f"alternative correct implementations lost points with our grader: {lost}"
    assert not disagree, f"ours vs nbgrader (score, max) per grade cell: {disagree}\n" \
        f"nbgrader's log of these students:\n{log_of(stock.log.stderr, disagree)[-6000:]}"


def log_of(log: str, students) -> str:
    """nbgrader's log lines that name one of ``students``, each with the lines that continue
    it (a traceback that nbgrader logged after an error)."""
    kept, keep = [], False
    for line in log.splitlines():
        if line.startswith("["):
            keep = any(student in line for student in students) or \
                (keep and "ERROR" in line and "Traceback" in line)
        if keep:
            kept.append(line)
    return "\n".join(kept)
