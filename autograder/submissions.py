"""What was submitted: the (student, assignment) pairs of a ``submitted/`` folder, their
shards, and each learner's notebook read defensively.

The layout is nbgrader's ``submitted/<student>/<assignment>/<notebook>.ipynb``; ``--shard
K/N`` takes every N-th pair of the sorted list, starting at K. Reading a notebook goes
bytes -> UTF-8 -> JSON -> nbformat 4 (version 3 is converted); each failure is a reason.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat

if TYPE_CHECKING:
    from autograder.assignments import Assignment


@dataclass(frozen=True)
class Pair:
    student_id: str
    assignment_id: str
    folder: Path


def discover(submitted: Path, assignments: dict[str, Assignment]) -> tuple[list[Pair], list[str]]:
    """Sorted (student, assignment) pairs under ``submitted``; notes on what was skipped."""
    pairs, notes = [], []
    for student in sorted(p for p in Path(submitted).iterdir() if p.is_dir()):
        for folder in sorted(p for p in student.iterdir() if p.is_dir()):
            if folder.name in assignments:
                pairs.append(Pair(student.name, folder.name, folder))
            else:
                notes.append(f"{student.name}/{folder.name}: not an assignment of this course, skipped")
    return pairs, notes


def parse_shard(text: str | None) -> tuple[int, int]:
    if not text:
        return 0, 1
    k, _, n = text.partition("/")
    try:
        k, n = int(k), int(n)
    except ValueError:
        raise ValueError(f"--shard {text}: expected K/N with 0 <= K < N") from None
    if not (n >= 1 and 0 <= k < n):
        raise ValueError(f"--shard {text}: expected K/N with 0 <= K < N")
    return k, n


def shard(pairs: list[Pair], k: int, n: int) -> list[Pair]:
    """Deterministic partition: the pairs sorted by (student, assignment), every n-th from k."""
    ordered = sorted(pairs, key=lambda p: (p.student_id, p.assignment_id))
    return ordered[k::n]


@dataclass
class Submission:
    notebook: nbformat.NotebookNode | None
    digest: str
    reason: str = ""
    notes: list[str] = field(default_factory=list)


def read_submission(pair: Pair, assignment: Assignment) -> Submission:
    """Parse the learner's notebook defensively; any problem becomes a reason."""
    path = pair.folder / assignment.notebook
    others = sorted(p.name for p in pair.folder.glob("*.ipynb") if p.name != assignment.notebook)
    notes = [f"extra notebook(s) ignored: {', '.join(others)}"] if others else []
    if not path.is_file():
        found = f" (found {', '.join(others)})" if others else ""
        return Submission(None, "missing", f"missing notebook {assignment.notebook}{found}", notes)
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Submission(None, digest, f"{assignment.notebook} is not valid UTF-8 "
                          f"(byte {exc.start}): re-save the notebook from Jupyter", notes)
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        return Submission(None, digest, f"{assignment.notebook} is not valid JSON ({exc}): "
                          "the file is damaged; re-save it from Jupyter", notes)
    try:
        if not isinstance(data, dict) or "nbformat" not in data:
            raise ValueError("no 'nbformat' field")
        version = int(data.get("nbformat", 0))
        nb = nbformat.reads(text, as_version=4)
        if version != 4:
            notes.append(f"notebook format {version} converted to 4")
        if not isinstance(nb.get("cells"), list):
            raise ValueError("no cells")
    except Exception as exc:
        return Submission(None, digest, f"{assignment.notebook} is not a Jupyter notebook "
                          f"({type(exc).__name__}: {str(exc)[:200]})", notes)
    return Submission(nb, digest, "", notes)
