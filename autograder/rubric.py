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
    package = package_digest()
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
        digest = score_digest(source, package)
        found[assignment_id] = Assignment(
            assignment_id, path.name, source, cells,
            {g: c.exercise for g, c in registered.items()}, hidden, digest, registered)
    return found


# What defines a score, relative to the package: a change to any of these files (or
# folders) grades every submission again on the next run; nothing else does (the console,
# the files written, the command line, the Gradescope zip, test support). A new module of
# the package is named here or in tests/unit/test_rubric.py's list of those that do not.
SCORE_SOURCES = (
    "checks",                 # the hidden checks and their framework
    "reference",              # what the judges compare with
    "data.py",                # how an answer is encoded and decoded
    "course.py",              # what grading runs of a notebook (exercise_program)
    "submissions.py",         # what is read of a submitted notebook
    "rubric.py",              # grade cells, points, exercises, this list
    "grading.py",             # the payload: the program and each check's seeds
    "outcome.py",             # what a run's messages say: answers, errors, why it ended
    "scoring.py",             # the judge: verdicts, blame, the record
    "sandbox/protocol.py",    # the messages and the limits of what is read back
    "sandbox/client.py",      # the bounded reader of the result stream
    "sandbox/server.py",      # how the student process runs and is observed
    "sandbox/confine.py",     # the student process's limits
)
PACKAGE = Path(__file__).resolve().parent


def score_files(package: Path = PACKAGE) -> list[Path]:
    """The sources of ``SCORE_SOURCES`` in ``package``, sorted."""
    found = set()
    for name in SCORE_SOURCES:
        path = package / name
        found |= set(path.rglob("*.py")) if path.is_dir() else {path}
    return sorted(found)


def package_digest(package: Path = PACKAGE) -> str:
    """A digest of the package's part in every score (``score_files``)."""
    digest = hashlib.sha256(VERSION.encode())
    for path in score_files(package):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def score_digest(source: nbformat.NotebookNode, package: str) -> str:
    """A digest of everything that defines a score of one assignment: the package's part
    (``package_digest``) and the setup, solution and grade cells and points of the
    instructor's notebook ``source``."""
    digest = hashlib.sha256(package.encode())
    for cell in source.cells:
        meta = course.nbgrader_meta(cell)
        if meta.get("grade") or meta.get("solution") or course.is_setup(cell):
            digest.update(json.dumps([meta.get("grade_id"), meta.get("points"), cell.source],
                                     sort_keys=True).encode())
    return digest.hexdigest()
