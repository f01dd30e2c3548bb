"""Find the secret lines of ``solutions/`` in what learners and readers receive.

A *secret line* is a non-trivial line (at least MIN_CHARS characters once whitespace is
collapsed) between ``### BEGIN SOLUTION``/``### END SOLUTION`` or ``### BEGIN HIDDEN
TESTS``/``### END HIDDEN TESTS`` in any source notebook, unless the same line also appears
outside every such region in a source notebook, on its own or inside a longer line (the
lesson or the exercise text shows it on purpose, e.g. the imports, a line of a worked
example, or the formula `x = x + layer(x)` quoted from the specification).

Used by tests/test_leaks.py (``chapters/`` and the built book), by ``python -m autograder
publish`` (which refuses to leave a learners' copy that holds one) and by tests/test_publish.py
(the learners' copy and its built book).
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import nbformat

from autograder import course

MIN_CHARS = 12
TEXT_SUFFIXES = {".html", ".ipynb", ".md", ".txt", ".js", ".json", ".py"}


def normalize(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def regions(source: str) -> list[str]:
    return course.solution_texts(source) + course.hidden_texts(source)


def secret_lines(notebooks: list[nbformat.NotebookNode]) -> set[str]:
    """The secret lines of these source notebooks (see the module docstring)."""
    inside, outside = set(), []
    for nb in notebooks:
        for cell in nb.cells:
            enclosed = regions(cell.source)
            inside |= {normalize(line) for text in enclosed for line in text.splitlines()}
            rest = course.HIDDEN_REGION.sub("", course.SOLUTION_REGION.sub("", cell.source))
            outside += [normalize(line) for line in rest.splitlines()]
    shown = "\n".join(outside)
    return {line for line in inside if len(line) >= MIN_CHARS and line not in shown}


def notebook_text(nb: nbformat.NotebookNode) -> str:
    """What a notebook shows: every cell's source and every output's text."""
    parts = []
    for cell in nb.cells:
        parts.append(cell.source)
        for output in cell.get("outputs", []):
            parts.append(str(output.get("text", "")))
            for mime, data in output.get("data", {}).items():
                if mime.startswith("text/") or mime.endswith("json"):
                    parts.append(html_text(str(data)) if mime == "text/html" else str(data))
    return "\n".join(parts)


def html_text(page: str) -> str:
    """The text of an HTML page: highlighted code split into spans reads as it was written."""
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def file_text(path: Path) -> str:
    raw = path.read_text(errors="replace")
    if path.suffix == ".ipynb":
        return notebook_text(nbformat.reads(raw, as_version=4))
    if path.suffix == ".html":
        return html_text(raw)
    return raw


def leaks(secrets: set[str], folder: Path, skip: tuple[str, ...] = ()) -> list[str]:
    """``file: line`` for every secret line found in a text file under ``folder``."""
    found = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if not path.is_file() or path.suffix not in TEXT_SUFFIXES or relative.startswith(skip):
            continue
        text = normalize(file_text(path))
        found += [f"{relative}: {line}" for line in sorted(secrets) if line in text]
    return found


def course_secrets(root: Path = course.ROOT) -> set[str]:
    """The secret lines of every source notebook under ``root/solutions``."""
    return secret_lines([course.read(course.notebook_path(a, root)) for a in course.assignment_ids(root)])
