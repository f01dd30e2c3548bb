"""Gradescope: build an assignment's ``autograder.zip`` and grade inside Gradescope's container.

``python -m autograder gradescope ASSIGNMENT --out DIR`` writes ``DIR/autograder.zip`` in the
layout Gradescope expects (https://gradescope-autograders.readthedocs.io/en/latest/specs/)::

    setup.sh            installs the grader's set (this package and its dependencies in
                        pyproject.toml: torch 2.13.0 from PyTorch's CPU index, numpy,
                        matplotlib, nbformat) into a virtual environment, /autograder/venv, once,
                        when Gradescope builds the image; refuses a Python older than 3.11
    run_autograder      grades /autograder/submission/*.ipynb, writes /autograder/results/results.json
    gradescope.json     the assignment id and the notebook file name a submission must use
    pyproject.toml
    autograder/         the grader, and the hidden checks and reference of this assignment's
                        chapter only (no other chapter's; the bug catalog and the tamper suite
                        are in ``testkit/``, outside the package)
    solutions/<assignment>/<notebook>.ipynb
                        the instructor's notebook: setup cells, grade cells and points

Base image: Gradescope's default, Ubuntu 22.04, or newer. Its ``python3`` is 3.10, too old
for the pins (numpy 2.4.6 and matplotlib 3.11.2 need 3.11): ``setup.sh`` then installs
``python3.11`` and ``python3.11-venv`` from Ubuntu's archive with apt-get. Where no Python 3.11
or newer can be had, it stops with a one-line reason.

Gradescope unzips this into ``/autograder/source`` and copies ``run_autograder`` to
``/autograder/run_autograder``. ``run_autograder`` calls ``python -m autograder.gradescope run``,
which lays the submission out as ``submitted/<student>/<assignment>/<notebook>.ipynb`` in a
temporary folder, grades it with ``engine.grade`` (the sandboxed grader, in this process) and
writes the pair's record in Gradescope's format (``formats.results_json``) to
``/autograder/results/results.json``, with a top-level ``output`` that sums it up for the
learner: points per exercise and what to fix first, from the visible tests only (Gradescope
hides the total while hidden tests are unpublished, so the summary never tells what they
found). A wrong file name, a malformed notebook or a grader failure still produce a valid
``results.json`` with score 0 and an ``output`` that says what is wrong; where the sandbox
could not use Landlock (or drop privileges) in the container, the ``output`` says so.

Environment (for both scripts): ``AUTOGRADER_ROOT`` (default ``/autograder``); ``PYTHON``, the
Python that installs or grades (``setup.sh``: default, the first Python 3.11 or newer it
finds; ``run_autograder``: default ``$AUTOGRADER_ROOT/venv/bin/python``); ``TORCH_INDEX_URL``
(``setup.sh``: where torch comes from; empty: pip's own index, as ``pip install .`` would).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import zipfile
from pathlib import Path

from autograder import course
from autograder.checks import module_name
from autograder.records import Record

# Folders of the package that hold one module per chapter: the zip keeps the graded chapter's
# and the shared ones (``__init__``, ``_common``).
PER_CHAPTER = ("checks", "reference")
STUDENT = "submission"  # the student id of the one pair graded in the container
TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
MIN_PYTHON = (3, 11)  # numpy 2.4.6 and matplotlib 3.11.2 have no build for older Pythons

SETUP_SH = r"""#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image (base image: Ubuntu
# 22.04, Gradescope's default, or newer). It installs the grader's set, the package in this
# folder with its dependencies (pyproject.toml), into the virtual environment $ROOT/venv:
# torch {torch_version} from PyTorch's CPU index (PyPI's Linux wheel pulls GBs of CUDA
# libraries), then numpy, matplotlib and nbformat from PyPI.
# PYTHON: the Python to use (default: the first of python3, python3.13, python3.12, python3.11
# that is {floor} or newer; on an apt system without one, python3.11 from the distribution).
# TORCH_INDEX_URL: where torch comes from; empty: pip's own index.
set -euo pipefail
cd "$(dirname "$0")"
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
VENV="$ROOT/venv"
TORCH_INDEX_URL="${{TORCH_INDEX_URL-{torch_index}}}"
REASON="numpy {numpy_version} and matplotlib {matplotlib_version} have no build for older Pythons"

fits() {{ "$1" -c 'import sys; sys.exit(sys.version_info < ({floor_tuple}))' 2>/dev/null; }}
pick() {{
    local candidate
    for candidate in "$@"; do
        if command -v "$candidate" >/dev/null 2>&1 && fits "$candidate"; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}}
describe() {{
    "$1" -c 'import sys; print(sys.executable, "is Python", sys.version.split()[0])' 2>/dev/null \
        || echo "$1 does not run"
}}

if [ -n "${{PYTHON:-}}" ]; then  # the caller chose: use it or refuse
    if ! python=$(pick "$PYTHON"); then
        echo "setup.sh: Python {floor} or newer is needed ($REASON); $(describe "$PYTHON")." >&2
        exit 1
    fi
else
    candidates=(python3 python3.13 python3.12 python3.11)
    if ! python=$(pick "${{candidates[@]}}"); then
        if command -v apt-get >/dev/null 2>&1; then
            # Ubuntu 22.04 (Gradescope's default image) has Python 3.10; its archive has 3.11
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                python3.11 python3.11-venv >/dev/null || true
        fi
        if ! python=$(pick "${{candidates[@]}}"); then
            found=$(command -v python3 >/dev/null 2>&1 && python3 -V 2>&1 || echo "missing")
            echo "setup.sh: Python {floor} or newer is needed ($REASON); python3 is $found" \
                "and none could be installed: choose Gradescope's Ubuntu 22.04 base image or" \
                "newer." >&2
            exit 1
        fi
    fi
fi
echo "setup.sh: $(describe "$python")"
if ! "$python" -m venv "$VENV" >/dev/null 2>&1; then
    # Debian and Ubuntu ship venv's pip apart (python3.X-venv)
    rm -rf "$VENV"
    version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "python$version-venv" >/dev/null
    "$python" -m venv "$VENV"
fi
pip=("$VENV/bin/python" -m pip install --no-input --disable-pip-version-check)
if [ -n "$TORCH_INDEX_URL" ]; then
    "${{pip[@]}}" --index-url "$TORCH_INDEX_URL" "torch=={torch_version}"
fi
# the grader's set: this package and what it depends on (torch is there already)
"${{pip[@]}}" -e .
"$VENV/bin/python" -c "import autograder.gradescope, torch, numpy, matplotlib, nbformat
print('autograder ready: torch', torch.__version__, 'in', '$VENV')"
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for every submission (as /autograder/run_autograder).
# It always writes $AUTOGRADER_ROOT/results/results.json (score 0 and a reason on any problem).
ROOT="${AUTOGRADER_ROOT:-/autograder}"
if [ -z "${PYTHON:-}" ]; then  # the environment setup.sh made
    PYTHON="$ROOT/venv/bin/python"
    [ -x "$PYTHON" ] || PYTHON=python3
fi
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


def grader_pins(root: Path = course.ROOT) -> dict[str, str]:
    """The grader's set as pyproject.toml pins it: ``{name: version}``."""
    import tomllib

    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    pins = {}
    for requirement in project.get("dependencies", []):
        name, sep, version = requirement.partition("==")
        if not sep:
            raise ValueError(f"pyproject.toml: {requirement!r} is not pinned with ==")
        pins[name.strip().lower()] = version.strip()
    return pins


def torch_pin(root: Path = course.ROOT) -> str:
    pins = grader_pins(root)
    if "torch" not in pins:
        raise ValueError("pyproject.toml pins no torch version")
    return f"torch=={pins['torch']}"


def setup_sh(root: Path = course.ROOT) -> str:
    pins = grader_pins(root)
    return SETUP_SH.format(torch_version=pins["torch"], numpy_version=pins["numpy"],
                           matplotlib_version=pins["matplotlib"], torch_index=TORCH_INDEX,
                           floor="%d.%d" % MIN_PYTHON, floor_tuple="%d, %d" % MIN_PYTHON)


def _keep(relative: Path, chapter: str) -> bool:
    """Whether the zip holds this file of the package (``relative`` to ``autograder/``)."""
    parts = relative.parts
    if "__pycache__" in parts or relative.suffix in (".pyc", ".pyo"):
        return False
    if len(parts) > 1 and parts[0] in PER_CHAPTER:  # one chapter's module, or a shared one
        return len(parts) == 2 and (parts[1].startswith("_") or relative.stem == chapter)
    return True


def _add_tree(archive: zipfile.ZipFile, folder: Path, name: str, chapter: str) -> None:
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if path.is_file() and _keep(relative, chapter):
            archive.write(path, f"{name}/{relative.as_posix()}")


def _add_text(archive: zipfile.ZipFile, name: str, text: str, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.external_attr = (0o100755 if executable else 0o100644) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, text)


def build(assignment_id: str, out: Path, root: Path = course.ROOT) -> Path:
    """Write ``out/autograder.zip`` for one assignment; return its path."""
    if assignment_id not in course.assignment_ids(root):
        raise ValueError(f"{assignment_id!r} is not an assignment of this course "
                         f"(one of: {', '.join(course.assignment_ids(root))})")
    notebook = course.notebook_path(assignment_id, root)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    target = out / "autograder.zip"
    meta = {"assignment_id": assignment_id, "notebook": notebook.name,
            "max_score": sum(c.points for c in course.grade_cells(course.read(notebook)))}
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        _add_text(archive, "setup.sh", setup_sh(root), executable=True)
        _add_text(archive, "run_autograder", RUN_AUTOGRADER, executable=True)
        _add_text(archive, "gradescope.json", json.dumps(meta, indent=1) + "\n")
        archive.write(root / "pyproject.toml", "pyproject.toml")
        _add_tree(archive, root / "autograder", "autograder", module_name(assignment_id))
        archive.write(notebook, f"solutions/{assignment_id}/{notebook.name}")
    return target


# --- inside Gradescope's container ---------------------------------------------------------

def _failed(meta: dict, output: str) -> dict:
    """A valid results.json with score 0: one test per grade cell, none graded."""
    from autograder.formats import cell_title
    from autograder.rubric import load_assignments

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
    """Copy the submitted notebook as the grader reads one (``submissions.read_bounded``: no
    link followed, nothing outside its folder, at most ``MAX_BYTES``); "" or why it was refused."""
    from autograder.submissions import read_bounded

    raw = read_bounded(notebook, notebook.parent, notebook.name)
    if isinstance(raw, str):
        return raw
    target.write_bytes(raw)
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
    from autograder import engine, formats

    with tempfile.TemporaryDirectory(prefix="gradescope-") as tmp:
        submitted = Path(tmp) / "submitted"
        pair = submitted / STUDENT / meta["assignment_id"] / meta["notebook"]
        pair.parent.mkdir(parents=True)
        problem = _copy(notebook, pair)
        if problem:
            return _failed(meta, problem)
        # one student per container: nobody else's files to read, and the course's files are
        # root's alone (_restrict_source), so a kernel without Landlock still grades
        [record] = engine.grade(submitted, Path(tmp) / "results", jobs=1, progress=False,
                                without_landlock=True)
    results = formats.results_json(record)
    results["max_score"] = record.max_score
    results["output"] = "\n".join(filter(None, [summary(record), results["output"],
                                                 sandbox_note(record.sandbox)]))
    return results


def _shorten(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3].rstrip() + "..."


def summary(record: Record) -> str:
    """A few lines for the learner: points per exercise and what to fix first.

    Only the visible tests speak: Gradescope hides a hidden test, and the total, until the
    grades are published, so the summary counts their points apart and says nothing of what
    they found."""
    exercises: dict[str, list] = {}
    for cell in record.cells:
        exercises.setdefault(cell.exercise or cell.grade_id, []).append(cell)
    visible = [c for c in record.cells if not c.hidden]
    hidden_points = sum(c.max_score for c in record.cells if c.hidden)
    score = sum(c.score for c in visible)
    if hidden_points:
        lines = [f"Visible tests: {score:g} / {sum(c.max_score for c in visible):g} points. "
                 f"Hidden tests ({hidden_points:g} more points) are shown when the grades are "
                 "published."]
    else:
        lines = [f"Score: {record.score:g} / {record.max_score:g}."]
    from autograder.formats import not_attempted

    blank = set(not_attempted(record))  # what the feedback says "not attempted" of, too
    for name, cells in exercises.items():
        shown = [c for c in cells if not c.hidden]
        line = f"- {name}: "
        if shown:
            line += f"{sum(c.score for c in shown):g} / {sum(c.max_score for c in shown):g}"
        else:
            line += "hidden tests only"
        failures = [f for c in shown for f in c.failures]
        if name in blank:
            line += ": not attempted yet (it still raises NotImplementedError)"
        elif failures:
            line += f": fix first: {_shorten(failures[0])}"
        lines.append(line)
    if any(c.failures for c in visible):
        lines.append("Each test below says what it found.")
    return "\n".join(lines)


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
