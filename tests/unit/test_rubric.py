"""``rubric``: points from the instructor's notebook, and what defines a score."""

import shutil
from pathlib import Path

import pytest

from autograder import course, rubric
from autograder.testing import tamper

A = tamper.ASSIGNMENT

# The package's modules that define no score: a change to them regrades nothing.
NOT_SCORE = {"__init__.py", "__main__.py", "engine.py", "errors.py", "formats.py",
             "gradescope.py", "leaks.py", "publish.py", "records.py", "release.py", "report.py",
             "sandbox/__init__.py", "sandbox/__main__.py"}


def test_points_come_from_the_instructor_notebook(assignments, assignment_id):
    loaded = assignments[assignment_id]
    source = course.read(course.notebook_path(assignment_id))
    assert [(c.grade_id, c.points) for c in loaded.cells] == \
        [(c.grade_id, c.points) for c in course.grade_cells(source)]
    assert set(loaded.checks) == {c.grade_id for c in loaded.cells}


def test_every_module_either_defines_a_score_or_is_named_as_one_that_does_not():
    package = rubric.PACKAGE
    scored = {p.relative_to(package).as_posix() for p in rubric.score_files()}
    runtime = {p.relative_to(package).as_posix() for p in package.rglob("*.py")
               if "__pycache__" not in p.parts and p.relative_to(package).parts[0] != "testing"}
    assert not scored & NOT_SCORE
    assert runtime == scored | NOT_SCORE, "name a new module in SCORE_SOURCES or in NOT_SCORE"
    assert all(p.is_file() for p in rubric.score_files())


@pytest.fixture
def package(tmp_path) -> Path:
    """A copy of the package's runtime sources."""
    copy = tmp_path / "autograder"
    shutil.copytree(rubric.PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "testing"))
    return copy


def test_a_docstring_edit_outside_the_score_changes_no_digest(package):
    before = rubric.package_digest(package)
    for name in ("report.py", "engine.py", "formats.py"):
        (package / name).write_text('"""edited"""\n' + (package / name).read_text())
    assert rubric.package_digest(package) == before


@pytest.mark.parametrize("name", ["checks/_common.py", "reference/rope.py", "data.py",
                                  "scoring.py", "sandbox/server.py"])
def test_an_edit_of_what_defines_a_score_changes_the_digest(package, name):
    before = rubric.package_digest(package)
    (package / name).write_text((package / name).read_text() + "\n# edited\n")
    assert rubric.package_digest(package) != before


def test_the_digest_follows_the_points_and_the_cells_of_the_notebook(assignments):
    source = assignments[A].source
    package = rubric.package_digest()
    assert rubric.score_digest(source, package) == assignments[A].digest
    changed = course.read(course.notebook_path(A))
    cell = next(c for c in changed.cells if course.nbgrader_meta(c).get("grade"))
    cell.metadata["nbgrader"]["points"] += 1
    assert rubric.score_digest(changed, package) != assignments[A].digest
    lesson = course.read(course.notebook_path(A))
    lesson.cells[0].source += "\nA lesson sentence more."
    assert rubric.score_digest(lesson, package) == assignments[A].digest
    assert rubric.score_digest(source, "another package") != assignments[A].digest
