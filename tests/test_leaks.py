"""No solution code and no hidden-test text from solutions/ reaches learners or readers.

A *secret line* is a non-trivial line (at least MIN_CHARS characters once whitespace is
collapsed) between ``### BEGIN SOLUTION``/``### END SOLUTION`` or ``### BEGIN HIDDEN
TESTS``/``### END HIDDEN TESTS`` in any source notebook, unless the same line also appears
outside every such region in a source notebook, on its own or inside a longer line (the
lesson or the exercise text shows it on purpose, e.g. the imports, a line of a worked
example, or the formula `x = x + layer(x)` quoted from the specification). No secret
line of any chapter may appear in ``chapters/`` (the learner notebooks) nor anywhere in
the built book: its pages, its ``_sources/`` (the notebooks readers download) and its
search index. The helpers are in ``autograder/leaks.py``, shared with ``publish`` and
tests/test_publish.py.
"""

from __future__ import annotations

import nbformat
import pytest

from autograder import course
from autograder.leaks import leaks, normalize, secret_lines
from conftest import ASSIGNMENTS


@pytest.fixture(scope="module")
def secrets() -> set[str]:
    return secret_lines([course.read(course.notebook_path(a)) for a in ASSIGNMENTS])


def test_every_chapter_has_secret_lines_to_look_for(assignment_id):
    """Otherwise the checks below would pass vacuously."""
    nb = course.read(course.notebook_path(assignment_id))
    hidden = [t for c in nb.cells for t in course.hidden_texts(c.source)]
    solutions = [t for c in nb.cells for t in course.solution_texts(c.source)]
    assert hidden and solutions, f"{assignment_id} has no solution or no hidden-test region"
    secrets = secret_lines([nb])
    assert all(any(normalize(line) in secrets for line in t.splitlines()) for t in hidden), \
        f"{assignment_id}: a hidden-test region has no line long enough to be checked"
    assert any(normalize(line) in secrets for t in solutions for line in t.splitlines()), \
        f"{assignment_id}: no solution line is long enough to be checked"


def test_no_secret_line_in_the_learner_notebooks(secrets):
    found = leaks(secrets, course.CHAPTERS)
    assert not found, "solution or hidden-test text in chapters/:\n" + "\n".join(found)


def plant(nb: nbformat.NotebookNode, line: str) -> nbformat.NotebookNode:
    nb = nbformat.from_dict(nb)
    nb.cells.insert(1, nbformat.v4.new_markdown_cell(f"A harmless-looking remark:\n\n    {line}\n"))
    return nb


@pytest.mark.parametrize("kind", ["solution", "hidden"])
def test_a_planted_leak_is_detected(assignment_id, tmp_path, kind):
    """The check can fail: one secret line planted in a copy of the learner notebook, and the
    same line in a page highlighted as the book does, are both found."""
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    source = course.read(course.notebook_path(assignment_id))
    texts = [t for c in source.cells
             for t in (course.solution_texts if kind == "solution" else course.hidden_texts)(c.source)]
    secrets = secret_lines([source])
    line = next(raw.strip() for t in texts for raw in t.splitlines() if normalize(raw) in secrets)

    released = course.read(course.notebook_path(assignment_id, released=True))
    nbformat.write(released, tmp_path / "clean.ipynb")
    assert leaks(secrets, tmp_path) == [], "the untouched learner notebook already leaks"

    nbformat.write(plant(released, line), tmp_path / "planted.ipynb")
    page = f"<html><body><div class='highlight'>{highlight(line, PythonLexer(), HtmlFormatter())}</div>"
    (tmp_path / "planted.html").write_text(page + "</body></html>")
    found = leaks(secrets, tmp_path)
    assert f"planted.ipynb: {normalize(line)}" in found and f"planted.html: {normalize(line)}" in found, \
        f"a planted {kind} line was not detected: {found}"


@pytest.mark.book
def test_no_secret_line_in_the_built_book(secrets, built_book):
    """Pages, downloadable _sources and search index (not _static/, the theme's own files)."""
    assert (built_book / "_sources").is_dir(), "the build has no _sources/ to check"
    found = leaks(secrets, built_book, skip=("_static/",))
    assert not found, "solution or hidden-test text in the built book:\n" + "\n".join(found)
