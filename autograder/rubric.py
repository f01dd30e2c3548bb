"""Each assignment's rubric: its instructor notebook, grade cells, points and checks.

The instructor's ``solutions/`` notebooks give the setup cells, the grade cells and their
points (never the submission's metadata); ``autograder.checks`` gives one check per grade
cell. Kept apart from ``course`` so that tools that only read notebooks do not load checks.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from autograder import checks, course

VERSION = "1"  # of the scoring: a change regrades every pair


@dataclass
class Assignment:
    id: str
    notebook: str                       # the file name a submission must use
    source: nbformat.NotebookNode       # the instructor's notebook
    cells: list[course.GradeCell]       # grade cells and points, in notebook order
    exercise: dict[str, str]            # grade cell -> the solution cell it grades
    hidden: dict[str, bool]             # grade cell -> only hidden tests (not shown)
    digest: str                         # changes when the notebook or its checks change
    checks: dict = field(repr=False, default_factory=dict)

    @property
    def max_score(self) -> float:
        return sum(c.points for c in self.cells)


def load_assignments(root: Path = course.ROOT) -> dict[str, Assignment]:
    """Every assignment of ``solutions/`` with its checks (``autograder.checks.checks_for``)."""
    found = {}
    for assignment_id in course.assignment_ids(root):
        path = course.notebook_path(assignment_id, root)
        source = course.read(path)
        try:
            registered = checks.checks_for(assignment_id)
        except (ImportError, KeyError) as exc:
            print(f"warning: {assignment_id} has no hidden checks ({exc}): not graded", file=sys.stderr)
            continue
        cells = course.grade_cells(source)
        hidden = {}
        for cell in source.cells:
            meta = course.nbgrader_meta(cell)
            if meta.get("grade"):
                visible = course.HIDDEN_REGION.sub("", cell.source)
                hidden[meta["grade_id"]] = not any(
                    line.strip() and not line.strip().startswith("#") for line in visible.splitlines())
        digest = score_digest(root, path, assignment_id)
        found[assignment_id] = Assignment(
            assignment_id, path.name, source, cells,
            {g: c.exercise for g, c in registered.items()}, hidden, digest, registered)
    return found


def score_digest(root: Path, assignment_path: Path, assignment_id: str) -> str:
    """A digest of everything that defines a score: the grading package's runtime sources
    (checks, references, the observation format, the scoring code; not ``testing/``)
    and the grade cells and points of the instructor's notebook."""
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256(VERSION.encode())
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package).as_posix()
        if relative.startswith("testing/"):
            continue
        digest.update(relative.encode() + b"\0" + path.read_bytes())
    source = course.read(assignment_path)
    for cell in source.cells:
        meta = course.nbgrader_meta(cell)
        if meta.get("grade") or meta.get("solution") or course.is_setup(cell):
            digest.update(json.dumps([meta.get("grade_id"), meta.get("points"), cell.source],
                                     sort_keys=True).encode())
    return digest.hexdigest()
