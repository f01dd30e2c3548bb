"""What was submitted: the (student, assignment) pairs of a ``submitted/`` folder, their
shards, and each learner's notebook read defensively.

The layout is nbgrader's ``submitted/<student>/<assignment>/<notebook>.ipynb``; ``--shard
K/N`` takes every N-th pair of the sorted list, starting at K. Reading a notebook goes
bytes -> UTF-8 -> JSON -> nbformat 4 (version 3 is converted); each failure is a reason.
Reading is bounded (``MAX_BYTES``, ``MAX_CONTAINERS``, ``MAX_DEPTH``, checked before the
costly step) and parses once; a symlink, or a file that is not a regular file of the
pair's folder, is refused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat

if TYPE_CHECKING:
    from autograder.rubric import Assignment


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


# What a submitted notebook may cost the grader (README, "A bounded grader"): its size, read
# only after fstat says it is under the limit; its lists and objects, counted on the bytes
# before JSON is parsed (each costs about 100 bytes parsed, and ``nbformat`` copies them);
# and their nesting (a real notebook nests about 8 deep; the recursive code that walks a
# notebook, nbformat's included, must never meet Python's recursion limit).
# Stored outputs and attachments are dropped as soon as the JSON is parsed (grading runs the
# code, never reads what a learner's kernel printed), and the code that is sent to the
# sandbox is bounded too (``MAX_CODE``: all code cells together; a solution cell is a few KB).
MAX_BYTES = 64 * 1024 * 1024
MAX_CONTAINERS = 200_000
MAX_DEPTH = 64
MAX_CODE = 4 * 1024 * 1024


@dataclass
class Submission:
    """One student's notebook for one assignment, as read (``notebook`` None: ``reason``
    says why it cannot be graded); ``digest`` names its bytes."""

    student_id: str
    notebook: nbformat.NotebookNode | None
    digest: str
    reason: str = ""
    notes: list[str] = field(default_factory=list)


def _depth(data) -> int:
    """The nesting depth of parsed JSON, without recursion."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            value = value.values()
        elif not isinstance(value, list):
            continue
        deepest = max(deepest, depth)
        stack.extend((v, depth + 1) for v in value if isinstance(v, (dict, list)))
    return deepest


def _drop_outputs(data) -> int:
    """Empty the stored outputs and drop the attachments of every cell (nbformat 3 and 4);
    return the characters of code left (the sources of the code cells)."""
    cells = [data.get("cells")] + [w.get("cells") for w in data.get("worksheets") or []
                                   if isinstance(w, dict)]
    code = 0
    for cell in (c for group in cells if isinstance(group, list) for c in group):
        if not isinstance(cell, dict):
            continue
        cell.pop("attachments", None)
        if cell.get("cell_type") == "code":
            if "outputs" in cell:
                cell["outputs"] = []
            source = cell.get("source", cell.get("input", ""))
            code += sum(map(len, source)) if isinstance(source, list) else len(str(source))
    return code


def read_bounded(path: Path, folder: Path, name: str) -> bytes | str:
    """The file's bytes, or why it is refused: a symlink (or a folder on the way that is
    one), something that is not a regular file of ``folder``, or a file over ``MAX_BYTES``
    (checked before reading)."""
    for part in (path, folder, folder.parent):
        if part.is_symlink():
            return (f"{part.name} is a symbolic link: submit the notebook file itself (a link "
                    "is not graded)")
    if path.resolve().parent != folder.resolve():
        return f"{name} lies outside the submission folder: submit the notebook file itself"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        return f"{name} could not be opened ({exc.strerror})"
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return f"{name} is not a regular file: submit the notebook file itself"
        if info.st_size > MAX_BYTES:
            return (f"{name} is {info.st_size / 2**20:.0f} MiB, over the limit of "
                    f"{MAX_BYTES / 2**20:.0f} MiB: clear the outputs (Edit > Clear Outputs of "
                    "All Cells), save and submit again")
        with os.fdopen(fd, "rb", closefd=False) as stream:
            raw = stream.read(MAX_BYTES + 1)
    finally:
        os.close(fd)
    if len(raw) > MAX_BYTES:
        return f"{name} is over the limit of {MAX_BYTES / 2**20:.0f} MiB"
    return raw


def read_submission(pair: Pair, assignment: Assignment) -> Submission:
    """Parse the learner's notebook defensively; any problem becomes a reason."""
    path = pair.folder / assignment.notebook
    others = sorted(p.name for p in pair.folder.glob("*.ipynb") if p.name != assignment.notebook)
    notes = [f"extra notebook(s) ignored: {', '.join(others)}"] if others else []

    def refused(digest: str, reason: str, notes: list[str]) -> Submission:
        return Submission(pair.student_id, None, digest, reason, notes)

    if not path.is_file() and not path.is_symlink():
        found = f" (found {', '.join(others)})" if others else ""
        return refused("missing", f"missing notebook {assignment.notebook}{found}", notes)
    raw = read_bounded(path, pair.folder, assignment.notebook)
    if isinstance(raw, str):
        return refused("refused " + hashlib.sha256(raw.encode()).hexdigest(), raw, notes)
    digest = hashlib.sha256(raw).hexdigest()
    containers = raw.count(b"[") + raw.count(b"{")
    if containers > MAX_CONTAINERS:
        return refused(digest, f"{assignment.notebook} holds {containers:,} JSON lists "
                       f"and objects, over the limit of {MAX_CONTAINERS:,}: clear the outputs "
                       "and remove large metadata, save and submit again", notes)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return refused(digest, f"{assignment.notebook} is not valid UTF-8 "
                       f"(byte {exc.start}): re-save the notebook from Jupyter", notes)
    del raw
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        return refused(digest, f"{assignment.notebook} is not valid JSON ({exc}): "
                       "the file is damaged; re-save it from Jupyter", notes)
    del text
    depth = _depth(data)
    if depth > MAX_DEPTH:
        return refused(digest, f"{assignment.notebook} nests JSON {depth} deep, over "
                       f"the limit of {MAX_DEPTH}: the file is damaged; re-save it from "
                       "Jupyter", notes)
    if isinstance(data, dict) and _drop_outputs(data) > MAX_CODE:
        return refused(digest, f"{assignment.notebook} holds more than "
                       f"{MAX_CODE / 2**20:.0f} MiB of code: remove what is not needed, save "
                       "and submit again", notes)
    try:
        if not isinstance(data, dict) or "nbformat" not in data:
            raise ValueError("no 'nbformat' field")
        version = int(data.get("nbformat", 0))
        major, minor = nbformat.reader.get_version(data)
        if major not in nbformat.versions:
            raise ValueError(f"unknown notebook format {major}")
        # what nbformat.reads does after its own parse: from_dict, rejoin lines, then convert
        nb = nbformat.convert(nbformat.versions[major].to_notebook_json(data, minor=minor), 4)
        if version != 4:
            notes.append(f"notebook format {version} converted to 4")
        if not isinstance(nb.get("cells"), list):
            raise ValueError("no cells")
    except Exception as exc:
        return refused(digest, f"{assignment.notebook} is not a Jupyter notebook "
                       f"({type(exc).__name__}: {str(exc)[:200]})", notes)
    return Submission(pair.student_id, nb, digest, "", notes)
