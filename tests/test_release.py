"""``chapters/`` is exactly what ``nbgrader generate_assignment`` makes from ``solutions/``.

Each assignment is compared with the release that the suite's nbgrader run of that assignment
generated (``nbgrader_graded``: the real command, the course's ``nbgrader_config.py``), and
``python -m autograder release`` itself is run on one assignment.
"""

import json
import shutil

import pytest

from autograder import course, release
from conftest import ASSIGNMENTS

pytestmark = pytest.mark.nbgrader


def _files(folder):
    return {p.relative_to(folder) for p in folder.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}


def _assert_same(fresh, committed):
    assert _files(committed) == _files(fresh), \
        f"{committed} and its fresh release hold different files: run `python -m autograder release`"
    for relative in sorted(_files(fresh)):
        new, old = fresh / relative, committed / relative
        if relative.suffix == ".ipynb":
            same = json.loads(new.read_text()) == json.loads(old.read_text())
        else:
            same = new.read_bytes() == old.read_bytes()
        assert same, f"{old.relative_to(course.ROOT)} is stale: run `python -m autograder release`"


def test_chapters_holds_one_release_per_assignment():
    assert sorted(p.name for p in course.CHAPTERS.iterdir() if p.is_dir()
                  and p.name != "__pycache__") == ASSIGNMENTS


def test_chapter_is_not_stale(assignment_id, nbgrader_graded):
    fresh = nbgrader_graded(assignment_id).dir / "chapters" / assignment_id
    _assert_same(fresh, course.CHAPTERS / assignment_id)


def test_release_command_regenerates_a_chapter(tmp_path):
    assignment_id = ASSIGNMENTS[0]
    shutil.copytree(course.SOLUTIONS, tmp_path / "solutions")
    shutil.copy2(course.ROOT / "nbgrader_config.py", tmp_path)
    assert release.generate(tmp_path, only=[assignment_id]) == [assignment_id]
    _assert_same(tmp_path / "chapters" / assignment_id, course.CHAPTERS / assignment_id)
