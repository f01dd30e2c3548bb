"""Gradescope: ``python -m autograder gradescope`` builds autograder.zip; its real run_autograder
grades submissions laid out as Gradescope lays them out.

Each run unzips the archive into ``<root>/source`` of a temporary ``$AUTOGRADER_ROOT`` (Gradescope's
``/autograder``), puts one file in ``<root>/submission`` and runs ``<root>/source/run_autograder``
with bash and the current Python (``$PYTHON``); ``setup.sh`` is not run (it installs packages),
only checked with ``bash -n`` and read.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from autograder import course, gradescope
from autograder.testing import catalog

ASSIGNMENT = "01-positional-encoding"
NOTEBOOK = course.notebook_path(ASSIGNMENT).name
SOURCE = course.read(course.notebook_path(ASSIGNMENT))
GRADE_CELLS = course.grade_cells(SOURCE)
MAX_SCORE = sum(c.points for c in GRADE_CELLS)
BUG = next(c for c in catalog.cases(ASSIGNMENT) if c.name == "cos_uses_pos_minus_1")


def hidden_only(grade_id: str) -> bool:
    cell = next(c for c in SOURCE.cells if course.nbgrader_meta(c).get("grade_id") == grade_id)
    visible = course.HIDDEN_REGION.sub("", cell.source)
    return not any(line.strip() and not line.strip().startswith("#") for line in visible.splitlines())


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gradescope-zip")
    result = subprocess.run([sys.executable, "-m", "autograder", "gradescope", ASSIGNMENT,
                             "--out", str(out)], cwd=course.ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    path = out / "autograder.zip"
    assert path.is_file(), result.stdout
    return path


def test_zip_layout(archive, tmp_path):
    with zipfile.ZipFile(archive) as zf:
        names = set(zf.namelist())
        modes = {i.filename: i.external_attr >> 16 for i in zf.infolist()}
        zf.extractall(tmp_path)
    for required in ("setup.sh", "run_autograder", "gradescope.json", "requirements.txt",
                     "pyproject.toml", "nbgrader_config.py", "autograder/__init__.py",
                     "autograder/__main__.py", "autograder/engine.py",
                     "autograder/sandbox/server.py", "autograder/sandbox/protocol.py",
                     "autograder/gradescope.py", "autograder/checks/positional_encoding.py",
                     "autograder/reference/positional_encoding.py",
                     f"solutions/{ASSIGNMENT}/{NOTEBOOK}"):
        assert required in names, f"{required} missing from autograder.zip"
    for script in ("setup.sh", "run_autograder"):
        assert modes[script] & stat.S_IXUSR, f"{script} is not executable in the zip"
        check = subprocess.run(["bash", "-n", str(tmp_path / script)], capture_output=True, text=True)
        assert check.returncode == 0, f"{script}: {check.stderr}"
    # nothing a student must not see, nothing from other chapters' notebooks, no tests
    forbidden = [n for n in names if n.startswith(("autograder/testing/", "tests/", "chapters/",
                                                   "benchmarks/"))
                 or "__pycache__" in n or n.endswith(".pyc")]
    assert not forbidden, f"autograder.zip must not hold {forbidden}"
    assert {n for n in names if n.startswith("solutions/")} == {f"solutions/{ASSIGNMENT}/{NOTEBOOK}"}
    # setup.sh installs the course's pinned requirements, torch from the CPU index, the package
    setup = (tmp_path / "setup.sh").read_text()
    assert "torch==2.13.0" in setup and gradescope.TORCH_INDEX in setup
    assert "pip install -r requirements.txt" in setup
    assert (tmp_path / "requirements.txt").read_text() == (course.ROOT / "requirements.txt").read_text()
    assert "-e ." in (tmp_path / "requirements.txt").read_text().splitlines()
    meta = json.loads((tmp_path / "gradescope.json").read_text())
    assert meta == {"assignment_id": ASSIGNMENT, "notebook": NOTEBOOK, "max_score": MAX_SCORE}
    assert (tmp_path / "solutions" / ASSIGNMENT / NOTEBOOK).read_bytes() == \
        course.notebook_path(ASSIGNMENT).read_bytes()


def test_unknown_assignment(tmp_path):
    result = subprocess.run([sys.executable, "-m", "autograder", "gradescope", "99-nope",
                             "--out", str(tmp_path)], cwd=course.ROOT, capture_output=True, text=True)
    assert result.returncode == 1 and "99-nope" in result.stderr
    assert not (tmp_path / "autograder.zip").exists()


def test_sandbox_note_says_what_is_missing():
    assert gradescope.sandbox_note({"landlock": 7, "user": "uid 1"}) == ""
    note = gradescope.sandbox_note({"landlock": 0, "landlock_error": "Function not implemented",
                                    "user_error": "Operation not permitted"})
    assert "Landlock is unavailable" in note and "Function not implemented" in note
    assert "unprivileged user" in note and "Operation not permitted" in note


def run_autograder(archive: Path, root: Path, files: dict[str, bytes],
                   links: dict[str, str] | None = None, env: dict | None = None) -> dict:
    """Gradescope's layout under ``root``, the real run_autograder, the results.json it wrote.
    ``links``: symbolic links in the submission (name -> target, relative to the submission
    folder, as git keeps them)."""
    for folder in ("source", "submission", "results"):
        (root / folder).mkdir(parents=True)
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(root / "source")
    for name, data in files.items():
        (root / "submission" / name).write_bytes(data)
    for name, target in (links or {}).items():
        (root / "submission" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "submission" / name).symlink_to(target)
    env = {**os.environ, **(env or {}), "AUTOGRADER_ROOT": str(root), "PYTHON": sys.executable}
    env.pop("PYTHONPATH", None)  # the grader must come from the zip, not from this checkout
    done = subprocess.run(["bash", str(root / "source" / "run_autograder")], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    path = root / "results" / "results.json"
    assert path.is_file(), f"run_autograder wrote no results.json:\n{done.stdout}{done.stderr}"
    return json.loads(path.read_text())


def validate(results: dict) -> None:
    """Gradescope's format: score, max_score, one test per grade cell with visibility."""
    assert isinstance(results["score"], (int, float))
    assert results["max_score"] == MAX_SCORE
    assert isinstance(results["output"], str)
    tests = results["tests"]
    assert [t["name"].split(" ")[0] for t in tests] == [c.grade_id for c in GRADE_CELLS]
    for test, cell in zip(tests, GRADE_CELLS, strict=True):
        assert test["max_score"] == cell.points
        assert 0 <= test["score"] <= test["max_score"]
        assert isinstance(test["output"], str) and test["output"]
        assert test["visibility"] == ("after_published" if hidden_only(cell.grade_id) else "visible")
    assert results["score"] == sum(t["score"] for t in tests)
    json.dumps(results)  # plain JSON all the way down


def submission_bytes(answers=None) -> bytes:
    return nbformat.writes(course.submission(ASSIGNMENT, answers)).encode()


def sandbox_is_reported(results: dict) -> None:
    sandbox = results["extra_data"]["sandbox"]
    assert "landlock" in sandbox
    if not sandbox["landlock"] or sandbox.get("user_error"):
        assert "Sandbox:" in results["output"], "a weaker sandbox must be said in the output"
    else:
        assert "Sandbox:" not in results["output"]


@pytest.mark.sandbox
def test_correct_notebook_full_marks(archive, tmp_path):
    results = run_autograder(archive, tmp_path, {NOTEBOOK: submission_bytes()})
    validate(results)
    assert results["score"] == MAX_SCORE, results["output"]
    assert all(t["output"] == "passed" for t in results["tests"])
    sandbox_is_reported(results)


@pytest.mark.sandbox
def test_catalog_bug_loses_points(archive, tmp_path):
    results = run_autograder(archive, tmp_path, {NOTEBOOK: submission_bytes({BUG.cell: BUG.source})})
    validate(results)
    assert 0 < results["score"] < MAX_SCORE
    mine = [t for t in results["tests"] if f"({BUG.cell})" in t["name"]]
    assert mine and sum(t["score"] for t in mine) < sum(t["max_score"] for t in mine)
    assert any("pos - 1" in t["output"] for t in mine), [t["output"] for t in mine]
    others = [t for t in results["tests"] if f"({BUG.cell})" not in t["name"]]
    assert any(t["score"] == t["max_score"] for t in others)
    sandbox_is_reported(results)
    # the same as the project's grader run directly on the checkout
    submitted = tmp_path / "direct" / "submitted" / "s" / ASSIGNMENT
    submitted.mkdir(parents=True)
    (submitted / NOTEBOOK).write_bytes(submission_bytes({BUG.cell: BUG.source}))
    out = tmp_path / "direct" / "results"
    subprocess.run([sys.executable, "-m", "autograder", "grade", str(submitted.parent.parent),
                    "--out", str(out), "--quiet", "--jobs", "1"], cwd=course.ROOT, check=True)
    import csv
    with open(out / "grades.csv") as stream:
        direct = {row["grade_id"]: float(row["score"]) for row in csv.DictReader(stream)}
    assert {t["name"].split(" ")[0]: t["score"] for t in results["tests"]} == direct


@pytest.mark.sandbox
def test_wrong_file_name(archive, tmp_path):
    results = run_autograder(archive, tmp_path, {"my_homework.ipynb": submission_bytes()})
    validate(results)
    assert results["score"] == 0
    assert "Wrong file name" in results["output"]
    assert NOTEBOOK in results["output"] and "my_homework.ipynb" in results["output"]
    assert all(t["score"] == 0 for t in results["tests"])


@pytest.mark.sandbox
def test_malformed_notebook(archive, tmp_path):
    broken = submission_bytes()[:5000]  # cut off in the middle: not JSON any more
    results = run_autograder(archive, tmp_path, {NOTEBOOK: broken})
    validate(results)
    assert results["score"] == 0
    assert NOTEBOOK in results["output"], results["output"]
    assert any(word in results["output"] for word in ("JSON", "damaged", "not a Jupyter notebook"))
    assert all(t["score"] == 0 for t in results["tests"])


@pytest.mark.sandbox
def test_nothing_submitted(archive, tmp_path):
    results = run_autograder(archive, tmp_path, {"notes.txt": b"hello"})
    validate(results)
    assert results["score"] == 0 and "No notebook was submitted" in results["output"]


INSTRUCTOR = f"../source/solutions/{ASSIGNMENT}/{NOTEBOOK}"


@pytest.mark.sandbox
@pytest.mark.parametrize("links", [{NOTEBOOK: INSTRUCTOR},
                                   {"work": f"../source/solutions/{ASSIGNMENT}"}],
                         ids=["notebook", "folder"])
def test_a_symlink_is_not_graded(archive, tmp_path, links):
    """A git submission keeps symbolic links: one to the instructor's notebook (or its
    folder) in the zip is refused with a reason, never graded (it earned full marks)."""
    results = run_autograder(archive, tmp_path, {}, links=links)
    validate(results)
    assert results["score"] == 0, results["output"]
    assert "symbolic link" in results["output"], results["output"]


@pytest.mark.sandbox
def test_without_landlock_the_course_files_stay_hidden(archive, tmp_path):
    """Landlock made unavailable: the container still grades (one student per container),
    says so, and a student who looks for the instructor's notebook on disk finds nothing
    (the runner made the course's files root's alone; the student has a uid of its own)."""
    import shutil
    import tempfile

    from autograder.testing import tamper

    steal = next(a for a in tamper.ATTACKS if a.name == "steal_source_notebook")
    root = Path(tempfile.mkdtemp(prefix="gradescope-"))  # as /autograder: anyone may enter it
    root.chmod(0o755)
    try:
        results = run_autograder(archive, root / "steal", {NOTEBOOK: steal.build()},
                                 env={"AUTOGRADER_NO_LANDLOCK": "1"})
    finally:
        shutil.rmtree(root)
    validate(results)
    sandbox = results["extra_data"]["sandbox"]
    assert sandbox["landlock"] == 0 and "Landlock is unavailable" in results["output"]
    if os.geteuid() != 0:
        pytest.skip("without root the student process keeps the grader's uid")
    honest = run_autograder(archive, tmp_path / "honest", {NOTEBOOK: tamper.honest_wrong()},
                            env={"AUTOGRADER_NO_LANDLOCK": "1"})
    assert 0 < honest["score"] < MAX_SCORE
    assert results["score"] <= honest["score"], results["tests"]
