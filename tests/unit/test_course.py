"""``course``: what grading runs of a notebook (``exercise_program``)."""

from autograder import course
from autograder.testing import tamper

A = tamper.ASSIGNMENT


def test_program_is_instructor_setup_plus_learner_solutions(assignments):
    nb = course.submission(A, {tamper.ADD: "def add_positional_encoding(x, base=1.0):\n    return x"})
    for cell in nb.cells:
        meta = course.nbgrader_meta(cell)
        if meta.get("grade_id", "").startswith("setup"):
            cell.source = "raise SystemExit('the learner edited a setup cell')"
        elif meta.get("grade"):
            cell.source = "print('edited tests')"
            meta["points"] = 1000
        elif meta.get("grade_id") == tamper.REL:
            cell.cell_type = "markdown"
    program = course.exercise_program(assignments[A].source, nb)
    cells, notes = program.cells, program.notes
    source = course.read(course.notebook_path(A))
    setup = [c.source for c in source.cells if course.is_setup(c)]
    assert [code for label, code in cells if label.startswith("setup")] == setup
    assert dict(cells)[tamper.ADD].endswith("return x")
    assert tamper.REL not in dict(cells) and any("not a code cell" in n for n in notes)
    assert not any("edited tests" in code for _, code in cells)


def test_assignment_ids_are_the_solution_folders_in_course_order():
    ids = course.assignment_ids()
    assert ids == sorted(ids) and A in ids
    assert all((course.SOLUTIONS / a).is_dir() for a in ids)
