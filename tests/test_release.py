"""``chapters/`` is exactly what ``nbgrader generate_assignment`` makes from ``solutions/``."""

import json
import shutil

import pytest

from autograder import course, release

pytestmark = pytest.mark.nbgrader


def test_chapters_are_not_stale(tmp_path):
    shutil.copytree(course.SOLUTIONS, tmp_path / "solutions")
    shutil.copy2(course.ROOT / "nbgrader_config.py", tmp_path)
    release.generate(tmp_path)
    fresh = {p.relative_to(tmp_path / "chapters") for p in (tmp_path / "chapters").rglob("*")
             if p.is_file()}
    committed = {p.relative_to(course.CHAPTERS) for p in course.CHAPTERS.rglob("*")
                 if p.is_file() and "__pycache__" not in p.parts}
    assert committed == fresh, "chapters/ and solutions/ hold different files: " \
        "run `python -m autograder release`"
    for relative in sorted(fresh):
        new, old = tmp_path / "chapters" / relative, course.CHAPTERS / relative
        if relative.suffix == ".ipynb":
            same = json.loads(new.read_text()) == json.loads(old.read_text())
        else:
            same = new.read_bytes() == old.read_bytes()
        assert same, f"chapters/{relative} is stale: run `python -m autograder release`"
