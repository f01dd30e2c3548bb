"""What was submitted: the (student, assignment) pairs of a ``submitted/`` folder, their
shards, and each learner's notebook read defensively.

The layout is nbgrader's ``submitted/<student>/<assignment>/<notebook>.ipynb``; ``--shard
K/N`` takes every N-th pair of the sorted list, starting at K. Reading a notebook goes
bytes -> UTF-8 -> JSON -> nbformat 4 (version 3 is converted); each failure is a reason.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
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
    notebook: str = ""              # the file graded ("": the assignment's notebook name)


# nbgrader's submit and collect write this file in every assignment folder
NBGRADER_FILES = frozenset({"timestamp.txt"})
# a browser's name for a second download of the same file: "name (2).ipynb", "name(1).ipynb"
BROWSER_COPY = re.compile(r"^(?P<stem>.+?) ?\(\d+\)\.ipynb$")


def discover(submitted: Path, assignments: dict[str, Assignment]) -> tuple[list[Pair], list[str]]:
    """Sorted (student, assignment) pairs under ``submitted``, and one line naming each thing
    under it that is not graded (files at the wrong depth, folders that are not an assignment,
    other files beside a notebook) or is graded under another name.

    A folder without the assignment's notebook but with exactly one browser-renamed copy of it
    (``positional_encoding (2).ipynb``) grades that copy; with two or more, the pair stays
    without its notebook (``read_submission``'s reason names them) and the line says so.
    """
    notebooks = {a.notebook: a.id for a in assignments.values()}
    pairs, notes = [], []
    expected = "expected <student_id>/<assignment_id>/<notebook>.ipynb"
    for student in sorted(Path(submitted).iterdir()):
        if not student.is_dir():
            notes.append(f"{student.name}: a file at the top of the submissions folder, not graded "
                         f"({expected})")
            continue
        for folder in sorted(student.iterdir()):
            where = f"{student.name}/{folder.name}"
            if folder.is_dir() and folder.name in assignments:
                pair, lines = _pair(student.name, folder, assignments[folder.name])
                pairs.append(pair)
                notes += lines
            elif folder.is_dir():
                inside = sorted(p.name for p in folder.glob("*.ipynb") if p.name in notebooks)
                hint = (f" (it holds {', '.join(inside)}: the folder must be named "
                        f"{', '.join(notebooks[n] for n in inside)})") if inside else ""
                notes.append(f"{where}/: not an assignment of this course, not graded{hint}")
            else:
                owner = notebooks.get(folder.name) or notebooks.get(_browser_original(folder.name))
                hint = f"move it to {student.name}/{owner}/" if owner else expected
                notes.append(f"{where}: a file at the wrong depth, not graded ({hint})")
    return pairs, notes


def _browser_original(name: str) -> str:
    match = BROWSER_COPY.match(name)
    return f"{match['stem']}.ipynb" if match else ""


def _pair(student: str, folder: Path, assignment: Assignment) -> tuple[Pair, list[str]]:
    """The pair of one assignment folder, and a line for each entry that is not graded."""
    where = f"{student}/{folder.name}"
    names = sorted(p.name for p in folder.iterdir())
    notebook = assignment.notebook
    notes = []
    if notebook not in names:
        copies = [n for n in names if _browser_original(n) == notebook]
        if len(copies) == 1:
            notebook = copies[0]
            notes.append(f"{where}/{notebook}: graded as {assignment.notebook} (renamed by a "
                         "browser's download?)")
        elif copies:
            notes.append(f"{where}: no {assignment.notebook} but {len(copies)} renamed copies "
                         f"({', '.join(copies)}): none graded; keep one, named {assignment.notebook}")
    for name in names:
        if name != notebook and name not in NBGRADER_FILES:
            kind = "a folder" if (folder / name).is_dir() else "a notebook" \
                if name.endswith(".ipynb") else "a file"
            notes.append(f"{where}/{name}: {kind} beside the submission, not graded")
    return Pair(student, assignment.id, folder, "" if notebook == assignment.notebook else notebook), notes


def read(pair: Pair, assignment: Assignment) -> Submission:
    """``read_submission`` of the notebook ``discover`` chose for the pair: a browser-renamed
    copy is read under its own name, and the submission notes that it was graded."""
    if not pair.notebook or pair.notebook == assignment.notebook:
        return read_submission(pair, assignment)
    submission = read_submission(pair, dataclasses.replace(assignment, notebook=pair.notebook))
    submission.notes.insert(0, f"graded {pair.notebook} as {assignment.notebook}: name your "
                            f"notebook {assignment.notebook} next time")
    return submission


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
