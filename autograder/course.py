"""The course layout (spec section 2) and the notebook surgery shared by tools and tests."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
CHAPTERS = ROOT / "chapters"

SOLUTION_REGION = re.compile(
    r"^[ \t]*### BEGIN SOLUTION\n(.*?)^[ \t]*### END SOLUTION[ \t]*\n?", re.M | re.S)
HIDDEN_REGION = re.compile(
    r"^[ \t]*### BEGIN HIDDEN TESTS\n(.*?)^[ \t]*### END HIDDEN TESTS[ \t]*\n?", re.M | re.S)


@dataclass(frozen=True)
class GradeCell:
    grade_id: str
    points: float


def assignment_ids(root: Path = ROOT) -> list[str]:
    """Assignment ids in course order: the folders of ``solutions/``."""
    return sorted(p.name for p in (root / "solutions").iterdir()
                  if p.is_dir() and re.fullmatch(r"\d\d-[a-z0-9-]+", p.name))


def notebook_path(assignment_id: str, root: Path = ROOT, released: bool = False) -> Path:
    """The one notebook of an assignment (source, or released with ``released=True``)."""
    folder = root / ("chapters" if released else "solutions") / assignment_id
    notebooks = sorted(folder.glob("*.ipynb"))
    if len(notebooks) != 1:
        raise FileNotFoundError(f"{folder} should hold exactly one notebook, found {len(notebooks)}")
    return notebooks[0]


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(str(path), as_version=4)


def nbgrader_meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def grade_cells(nb) -> list[GradeCell]:
    """Grade cells with points, in notebook order."""
    return [GradeCell(m["grade_id"], float(m.get("points", 0)))
            for m in map(nbgrader_meta, nb.cells) if m.get("grade")]


def solution_cells(nb) -> dict[str, nbformat.NotebookNode]:
    return {nbgrader_meta(c)["grade_id"]: c for c in nb.cells if nbgrader_meta(c).get("solution")}


def strip_markers(source: str) -> str:
    """The solution as a learner would type it: the solution region without its markers."""
    return SOLUTION_REGION.sub(lambda m: m.group(1), source)


def solution_texts(source: str) -> list[str]:
    """The text between each BEGIN/END SOLUTION pair."""
    return [m.group(1) for m in SOLUTION_REGION.finditer(source)]


def hidden_texts(source: str) -> list[str]:
    """The text between each BEGIN/END HIDDEN TESTS pair."""
    return [m.group(1) for m in HIDDEN_REGION.finditer(source)]


def submission(assignment_id: str, answers: dict[str, str] | None = None,
               root: Path = ROOT) -> nbformat.NotebookNode:
    """A learner's notebook: the released one with every exercise completed.

    Each solution cell gets the reference solution, except those named in ``answers``
    (grade_id -> the whole cell source), which get the given code instead.
    """
    answers = dict(answers or {})
    released = read(notebook_path(assignment_id, root, released=True))
    reference = solution_cells(read(notebook_path(assignment_id, root)))
    for grade_id, cell in solution_cells(released).items():
        cell.source = answers.pop(grade_id) if grade_id in answers \
            else strip_markers(reference[grade_id].source)
    if answers:
        raise KeyError(f"{assignment_id} has no solution cell named {sorted(answers)}")
    return released


def is_setup(cell) -> bool:
    """A read-only cell the exercises need (imports, provided code): grade_id ``setup*``."""
    meta = nbgrader_meta(cell)
    return bool(meta.get("locked")) and not meta.get("grade") and \
        meta.get("grade_id", "").startswith("setup")


@dataclass
class Program:
    """What grading executes, and what the learner's notebook made it skip."""

    cells: list[tuple[str, str]]        # (grade_id, code), in the order of the source notebook
    notes: list[str]

    @property
    def code(self) -> list[str]:
        return [code for _, code in self.cells]


def exercise_program(source_nb, submitted_nb) -> Program:
    """What grading executes: the instructor's setup cells, then the learner's solution cells.

    Cells are taken in the order of the source notebook and matched by ``grade_id``; the
    submitted notebook is only trusted for the source of its code cells marked as solutions.
    A solution cell the learner deleted (or turned into markdown) is missing, with a note
    (its checks then fail with a NameError).
    """
    notes = []
    solutions = {}
    for cell in submitted_nb.cells:
        meta = nbgrader_meta(cell) if isinstance(cell.get("metadata"), dict) else {}
        if isinstance(meta, dict) and meta.get("solution") and isinstance(meta.get("grade_id"), str):
            if cell.get("cell_type") != "code":
                notes.append(f"solution cell {meta['grade_id']} is not a code cell: not run")
                continue
            solutions[meta["grade_id"]] = cell
    cells = []
    for cell in source_nb.cells:
        meta = nbgrader_meta(cell)
        if meta.get("solution"):
            gid = meta["grade_id"]
            if gid in solutions:
                source = solutions[gid].get("source", "")
                cells.append((gid, "".join(source) if isinstance(source, list) else str(source)))
            elif not any(note.startswith(f"solution cell {gid} ") for note in notes):
                notes.append(f"solution cell {gid} is missing (deleted, or its metadata changed)")
        elif is_setup(cell):
            cells.append((meta["grade_id"], cell.source))
    return Program(cells, notes)


def graded_cells_only(nb) -> nbformat.NotebookNode:
    """The notebook with only the cells grading uses (setup, solution and grade cells): what
    stock nbgrader needs to grade a case without re-running the lesson."""
    nb = nbformat.from_dict(nb)
    nb.cells = [c for c in nb.cells if nbgrader_meta(c).get("grade")
                or nbgrader_meta(c).get("solution") or is_setup(c)]
    return nb
