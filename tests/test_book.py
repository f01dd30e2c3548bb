"""The Jupyter Book builds from chapters/ with warnings as errors, executing every chapter."""

import re

import pytest

from autograder import course
from conftest import ASSIGNMENTS

pytestmark = [pytest.mark.book, pytest.mark.kernel]


def test_book_builds_without_warnings(built_book):
    assert (built_book / "intro.html").exists()


def test_every_chapter_page_is_executed_without_tracebacks(built_book, assignment_id):
    released = course.notebook_path(assignment_id, released=True)
    page = built_book / released.relative_to(course.ROOT).with_suffix(".html")
    html = page.read_text()
    assert "Traceback" not in html and "NotImplementedError:" not in html, \
        f"{page.name} shows a traceback: exercise and test cells must hide their errors"
    assert re.search(r'class="cell_output', html), f"{page.name} has no executed output"


def test_exercise_cells_show_the_code_to_complete(built_book):
    released = course.notebook_path(ASSIGNMENTS[0], released=True)
    html = (built_book / released.relative_to(course.ROOT).with_suffix(".html")).read_text()
    assert "YOUR CODE HERE" in html
