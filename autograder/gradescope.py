"""Gradescope: build an assignment's ``autograder.zip`` and grade inside Gradescope's container.

``python -m autograder gradescope ASSIGNMENT --out DIR`` writes ``DIR/autograder.zip`` in the
layout Gradescope expects (https://gradescope-autograders.readthedocs.io/en/latest/specs/)::

    setup.sh            installs requirements.txt (torch 2.13.0 from PyTorch's CPU index) and
                        this package, once, when Gradescope builds the image
    run_autograder      grades /autograder/submission/*.ipynb, writes /autograder/results/results.json
    gradescope.json     the assignment id and the notebook file name a submission must use
    requirements.txt, pyproject.toml, nbgrader_config.py
    autograder/         the grader, the hidden checks and their references (not ``testing/``:
                        no bug catalog, no tamper suite)
    solutions/<assignment>/<notebook>.ipynb
                        the instructor's notebook: setup cells, grade cells and points

Gradescope unzips this into ``/autograder/source`` and copies ``run_autograder`` to
``/autograder/run_autograder``. ``run_autograder`` calls ``python -m autograder.gradescope run``,
which lays the submission out as ``submitted/<student>/<assignment>/<notebook>.ipynb`` in a
temporary folder, grades it with ``python -m autograder grade`` (the sandboxed grader) and
copies the pair's ``results.json`` (already in Gradescope's format) to
``/autograder/results/results.json``. A wrong file name, a malformed notebook or a grader
failure still produce a valid ``results.json`` with score 0 and an ``output`` that says what
is wrong; where the sandbox could not use Landlock (or drop privileges) in the container, the
``output`` says so.

The root is ``$AUTOGRADER_ROOT`` when set (default ``/autograder``); the Python that grades is
``$PYTHON`` when set (default ``python3``).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from autograder import course
from autograder.records import Record

# Parts of the package a Gradescope image must not hold: the test support (the bug catalog of
# wrong and correct solutions, the hostile submissions of the tamper suite, stock nbgrader).
EXCLUDED = {"testing", "__pycache__"}
STUDENT = "submission"  # the student id of the one pair graded in the container
TORCH_INDEX = "https://download.pytorch.org/whl/cpu"

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image.
set -euo pipefail
cd /autograder/source
# newer Ubuntu images mark the system Python as externally managed (PEP 668); this image is
# the autograder's own, so install into it (older pips ignore the variable)
export PIP_BREAK_SYSTEM_PACKAGES=1
if ! command -v python3 >/dev/null || ! python3 -m pip --version >/dev/null 2>&1; then
    apt-get update
    apt-get install -y --no-install-recommends python3 python3-pip python3-venv
fi
python3 -m pip install --upgrade pip
# the CPU build of the pinned torch (PyPI's Linux wheel pulls GBs of CUDA libraries)
python3 -m pip install --index-url {torch_index} "{torch_pin}"
# everything else pinned in the course's requirements.txt; its "-e ." installs this package
python3 -m pip install -r requirements.txt
python3 -c "import autograder.gradescope, torch, numpy, nbformat; print('autograder ready')"
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for every submission (as /autograder/run_autograder).
# It always writes $AUTOGRADER_ROOT/results/results.json (score 0 and a reason on any problem).
ROOT="${AUTOGRADER_ROOT:-/autograder}"
PYTHON="${PYTHON:-python3}"
export AUTOGRADER_ROOT="$ROOT"
cd "$ROOT/source" || exit 1
"$PYTHON" -m autograder.gradescope run --root "$ROOT"
status=$?
if [ ! -s "$ROOT/results/results.json" ]; then
    mkdir -p "$ROOT/results"
    printf '{"score": 0, "output": "The autograder failed before it could grade (exit status %s). \\
Please contact the course staff.", "tests": []}\\n' "$status" > "$ROOT/results/results.json"
fi
exit 0
"""


def torch_pin(root: Path = course.ROOT) -> str:
    for line in (root / "requirements.txt").read_text().splitlines():
        if line.strip().startswith("torch=="):
            return line.strip()
    raise ValueError("requirements.txt pins no torch version")


def _add_tree(archive: zipfile.ZipFile, folder: Path, name: str) -> None:
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if any(part in EXCLUDED for part in relative.parts) or not path.is_file() \
                or path.suffix in (".pyc", ".pyo"):
            continue
        archive.write(path, f"{name}/{relative.as_posix()}")


def _add_text(archive: zipfile.ZipFile, name: str, text: str, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.external_attr = (0o100755 if executable else 0o100644) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, text)


def build(assignment_id: str, out: Path, root: Path = course.ROOT) -> Path:
    """Write ``out/autograder.zip`` for one assignment; return its path."""
    if assignment_id not in course.assignments(root):
        raise ValueError(f"{assignment_id!r} is not an assignment of this course "
                         f"(one of: {', '.join(course.assignments(root))})")
    notebook = course.notebook_path(assignment_id, root)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    target = out / "autograder.zip"
    meta = {"assignment_id": assignment_id, "notebook": notebook.name,
            "max_score": sum(c.points for c in course.grade_cells(course.read(notebook)))}
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        _add_text(archive, "setup.sh", SETUP_SH.format(torch_index=TORCH_INDEX,
                                                         torch_pin=torch_pin(root)), executable=True)
        _add_text(archive, "run_autograder", RUN_AUTOGRADER, executable=True)
        _add_text(archive, "gradescope.json", json.dumps(meta, indent=1) + "\n")
        for name in ("requirements.txt", "pyproject.toml", "nbgrader_config.py"):
            archive.write(root / name, name)
        _add_tree(archive, root / "autograder", "autograder")
        archive.write(notebook, f"solutions/{assignment_id}/{notebook.name}")
    return target


# --- inside Gradescope's container ---------------------------------------------------------

def _failed(meta: dict, output: str) -> dict:
    """A valid results.json with score 0: one test per grade cell, none graded."""
    from autograder.assignments import load_assignments
    from autograder.formats import cell_title

    tests = []
    try:
        assignment = load_assignments(course.ROOT)[meta["assignment_id"]]
        for cell in assignment.cells:
            exercise = assignment.exercise.get(cell.grade_id, "")
            tests.append({"name": cell_title(cell.grade_id, exercise),
                          "score": 0.0, "max_score": cell.points, "output": "not graded: see above",
                          "visibility": "after_published" if assignment.hidden.get(cell.grade_id, True)
                          else "visible"})
    except Exception as exc:  # the grade cells could not be read: the top-level output says why
        output += f"\n(the grade cells could not be listed: {exc})"
    return {"score": 0.0, "max_score": meta.get("max_score", 0.0), "output": output,
            "visibility": "visible", "stdout_visibility": "hidden", "tests": tests}


def sandbox_note(sandbox: dict) -> str:
    """What the sandbox could and could not do, in words (empty when it had everything)."""
    if not sandbox:
        return ""
    notes = []
    if not sandbox.get("landlock"):
        why = sandbox.get("landlock_error") or "not supported by this kernel"
        notes.append(f"Landlock is unavailable in this container ({why}): your code ran without "
                     "the filesystem sandbox, as its own unprivileged user where the grader could "
                     "drop to one (memory, process, file-size and time limits still applied)")
    if sandbox.get("user_error"):
        notes.append(f"the grader could not drop to an unprivileged user ({sandbox['user_error']})")
    return "Sandbox: " + "; ".join(notes) + "." if notes else ""


def _linked(path: Path, folder: Path) -> str:
    """Why ``path`` is not a file of ``folder`` itself: a symbolic link on the way (git keeps
    them), or a place outside the folder; "" when it is one."""
    part = path
    while part != folder and folder in part.parents:
        if part.is_symlink():
            return (f"{part.relative_to(folder)} is a symbolic link: submit the notebook file "
                    "itself (links are not graded)")
        part = part.parent
    if folder.resolve() not in path.resolve().parents:
        return f"{path.relative_to(folder)} lies outside the submission: submit the notebook file itself"
    return ""


def _find_submission(folder: Path, expected: str) -> tuple[Path | None, str]:
    """The submitted notebook, or None and what is wrong (a symbolic link, or a file that
    resolves outside the submission folder, is refused with a reason)."""
    found = sorted(p for p in folder.rglob("*.ipynb")
                   if ".ipynb_checkpoints" not in p.parts
                   and (p.is_file() or p.is_symlink())) if folder.is_dir() else []
    named = [p for p in found if p.name == expected]
    if named:
        problem = _linked(named[0], folder)
        return (None, problem) if problem else (named[0], "")
    links = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_symlink()) \
        if folder.is_dir() else []
    if links:
        return None, (f"The submission holds symbolic links ({', '.join(links[:5])}), which are "
                      f"not followed: submit the notebook file {expected} itself.")
    if not found:
        return None, (f"No notebook was submitted: upload {expected} (the chapter's notebook, "
                      "with your solutions).")
    names = ", ".join(str(p.relative_to(folder)) for p in found)
    return None, (f"Wrong file name: the submission must be a notebook named {expected}, "
                  f"but it holds {names}. Rename your notebook to {expected} and submit again.")


def _copy(notebook: Path, target: Path) -> str:
    """Copy the submitted notebook without following a link, at most ``MAX_BYTES`` of it;
    "" or why it was refused."""
    from autograder.submissions import MAX_BYTES

    try:
        fd = os.open(notebook, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        return f"{notebook.name} could not be opened ({exc.strerror}): submit the notebook file itself"
    with os.fdopen(fd, "rb") as stream:
        info = os.fstat(stream.fileno())
        if not stat.S_ISREG(info.st_mode):
            return f"{notebook.name} is not a regular file: submit the notebook file itself"
        if info.st_size > MAX_BYTES:
            return (f"{notebook.name} is {info.st_size / 2**20:.0f} MiB, over the limit of "
                    f"{MAX_BYTES / 2**20:.0f} MiB: clear the outputs (Edit > Clear Outputs of All "
                    "Cells), save and submit again")
        target.write_bytes(stream.read(MAX_BYTES + 1))
    return ""


def _restrict_source() -> None:
    """Make the course's files (the instructor's notebook, the references, the grader)
    readable by root only: without Landlock, the student process has a uid of its own and no
    file privilege beyond it, so what these permissions deny it cannot read."""
    if os.geteuid() == 0 and (course.ROOT / "gradescope.json").is_file():
        os.chmod(course.ROOT, 0o700)


def run(root: Path) -> dict:
    """Grade ``root/submission`` and write ``root/results/results.json``; return the results."""
    root = Path(root)
    meta = json.loads((course.ROOT / "gradescope.json").read_text())
    results_file = root / "results" / "results.json"
    notebook, problem = _find_submission(root / "submission", meta["notebook"])
    try:
        _restrict_source()
        results = _failed(meta, problem) if notebook is None else _grade(notebook, meta)
    except Exception as exc:  # never leave Gradescope without a results.json
        results = _failed(meta, f"The autograder failed ({type(exc).__name__}: {exc}). "
                          "Please contact the course staff.")
    results_file.parent.mkdir(parents=True, exist_ok=True)
    results_file.write_text(json.dumps(results, indent=1))
    return results


def _grade(notebook: Path, meta: dict) -> dict:
    with tempfile.TemporaryDirectory(prefix="gradescope-") as tmp:
        submitted = Path(tmp) / "submitted"
        pair = submitted / STUDENT / meta["assignment_id"] / meta["notebook"]
        pair.parent.mkdir(parents=True)
        problem = _copy(notebook, pair)
        if problem:
            return _failed(meta, problem)
        out = Path(tmp) / "results"
        # one student per container: nobody else's files to read, and the course's files are
        # root's alone (_restrict_source), so a kernel without Landlock still grades
        command = [sys.executable, "-m", "autograder", "grade", str(submitted), "--out", str(out),
                   "--jobs", "1", "--quiet", "--without-landlock"]
        done = subprocess.run(command, cwd=course.ROOT, capture_output=True, text=True)
        produced = out / STUDENT / meta["assignment_id"] / "results.json"
        if not produced.is_file():
            return _failed(meta, "The autograder could not grade this submission (exit status "
                           f"{done.returncode}). Please contact the course staff.\n"
                           f"{(done.stderr or done.stdout)[-2000:]}")
        results = json.loads(produced.read_text())
    record = Record.from_json(results["extra_data"])
    results["max_score"] = record.max_score
    note = sandbox_note(record.sandbox)
    if note:
        results["output"] = "\n".join(filter(None, [results.get("output", ""), note]))
    return results


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m autograder.gradescope")
    commands = parser.add_subparsers(dest="command", required=True)
    runner = commands.add_parser("run", help="grade inside Gradescope's container")
    runner.add_argument("--root", type=Path,
                        default=Path(os.environ.get("AUTOGRADER_ROOT", "/autograder")))
    args = parser.parse_args(argv)
    if args.command == "run":
        results = run(args.root)
        print(f"score {results['score']:g} / {results.get('max_score', 0):g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
