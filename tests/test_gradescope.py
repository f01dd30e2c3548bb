"""Gradescope: ``python -m autograder gradescope`` builds autograder.zip; its real run_autograder
grades submissions laid out as Gradescope lays them out.

Each run unzips the archive into ``<root>/source`` of a temporary ``$AUTOGRADER_ROOT`` (Gradescope's
``/autograder``), puts one file in ``<root>/submission`` and runs ``<root>/source/run_autograder``
with bash. Most runs use the current Python (``$PYTHON``); ``test_setup_installs_the_graders_set``
runs the real ``setup.sh`` first, which makes a fresh virtual environment ``<root>/venv`` and
installs the grader's set into it (torch the local way: ``TORCH_INDEX_URL`` empty, since this
machine cannot reach PyTorch's index), then grades with that environment alone.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from autograder import course, gradescope
from testkit import catalog, program

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
    for required in ("setup.sh", "run_autograder", "gradescope.json", "pyproject.toml",
                     "autograder/__init__.py", "autograder/__main__.py", "autograder/engine.py",
                     "autograder/sandbox/server.py", "autograder/sandbox/protocol.py",
                     "autograder/gradescope.py", "autograder/checks/positional_encoding.py",
                     "autograder/reference/positional_encoding.py",
                     f"solutions/{ASSIGNMENT}/{NOTEBOOK}"):
        assert required in names, f"{required} missing from autograder.zip"
    for script in ("setup.sh", "run_autograder"):
        assert modes[script] & stat.S_IXUSR, f"{script} is not executable in the zip"
        check = subprocess.run(["bash", "-n", str(tmp_path / script)], capture_output=True, text=True)
        assert check.returncode == 0, f"{script}: {check.stderr}"
    # nothing a student must not see, nothing from other chapters' notebooks, no tests, and no
    # development set: setup.sh installs the package's own dependencies, not requirements.txt
    forbidden = [n for n in names if n.startswith(("testkit/", "tests/", "chapters/",
                                                   "benchmarks/"))
                 or "__pycache__" in n or n.endswith(".pyc")
                 or n in ("requirements.txt", "nbgrader_config.py")]
    assert not forbidden, f"autograder.zip must not hold {forbidden}"
    assert {n for n in names if n.startswith("solutions/")} == {f"solutions/{ASSIGNMENT}/{NOTEBOOK}"}
    # setup.sh installs the CPU-only torch from PyTorch's index, then the package (pyproject.toml)
    setup = (tmp_path / "setup.sh").read_text()
    assert 'torch==2.13.0"' in setup and gradescope.TORCH_INDEX in setup
    assert "requirements" not in setup and '"${pip[@]}" -e .' in setup
    assert (tmp_path / "pyproject.toml").read_bytes() == (course.ROOT / "pyproject.toml").read_bytes()
    meta = json.loads((tmp_path / "gradescope.json").read_text())
    assert meta == {"assignment_id": ASSIGNMENT, "notebook": NOTEBOOK, "max_score": MAX_SCORE}
    assert (tmp_path / "solutions" / ASSIGNMENT / NOTEBOOK).read_bytes() == \
        course.notebook_path(ASSIGNMENT).read_bytes()


@pytest.mark.parametrize("assignment_id", [course.assignment_ids()[0], course.assignment_ids()[-1]])
def test_zip_holds_one_chapter(assignment_id, tmp_path):
    """The checks and reference of the graded chapter only (and the modules they share), its
    instructor notebook only; nothing of the test support."""
    gradescope.build(assignment_id, tmp_path)
    with zipfile.ZipFile(tmp_path / "autograder.zip") as zf:
        names = set(zf.namelist())
    module = assignment_id.split("-", 1)[1].replace("-", "_")
    package = course.ROOT / "autograder"
    shared = {f"autograder/{folder}/{p.name}" for folder in ("checks", "reference")
              for p in (package / folder).glob("_*.py")}
    assert {n for n in names if n.startswith(("autograder/checks/", "autograder/reference/"))} == \
        shared | {f"autograder/checks/{module}.py", f"autograder/reference/{module}.py"}
    notebook = course.notebook_path(assignment_id)
    assert {n for n in names if n.startswith("solutions/")} == \
        {f"solutions/{assignment_id}/{notebook.name}"}
    others = [a.split("-", 1)[1].replace("-", "_") for a in course.assignment_ids() if a != assignment_id]
    leaked = [n for n in names for other in others if other in n]
    assert not leaked, f"autograder.zip of {assignment_id} holds other chapters: {leaked}"
    assert not [n for n in names if n.startswith(("testkit/", "tests/"))]


def test_unknown_assignment(tmp_path):
    result = subprocess.run([sys.executable, "-m", "autograder", "gradescope", "99-nope",
                             "--out", str(tmp_path)], cwd=course.ROOT, capture_output=True, text=True)
    assert result.returncode == 2 and "99-nope" in result.stderr  # refused: a usage error
    assert not (tmp_path / "autograder.zip").exists()


# --- setup.sh --------------------------------------------------------------------------------

def python310() -> str | None:
    """A real Python 3.10 (pyenv's or the system's), or None."""
    for candidate in [shutil.which("python3.10"), *sorted(Path("/root/.pyenv/versions").glob(
            "3.10.*/bin/python3.10"))]:
        if candidate and subprocess.run([str(candidate), "-c", "import sys; assert sys.version_info[:2] "
                                         "== (3, 10)"], capture_output=True).returncode == 0:
            return str(candidate)
    return None


def fake_python310(folder: Path) -> str:
    """A ``python3`` that says it is 3.10 (where no real one is installed): setup.sh asks a
    Python its version by running ``-c`` code, which this answers as 3.10 would."""
    fake = folder / "python3"
    fake.write_text("#!/bin/sh\n"
                    'case "$2" in *sys.exit*) exit 1;; esac\n'
                    f'echo "{fake} is Python 3.10.12"\n')
    fake.chmod(0o755)
    return str(fake)


def run_setup(archive: Path, root: Path, env: dict, timeout: float = 60) -> subprocess.CompletedProcess:
    (root / "source").mkdir(parents=True)
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(root / "source")
    env = {**env, "AUTOGRADER_ROOT": str(root)}
    return subprocess.run(["bash", str(root / "source" / "setup.sh")], cwd=root, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_setup_refuses_python_310(archive, tmp_path):
    """The Python that was asked for is too old: one line that says why, exit 1, nothing made."""
    old = python310() or fake_python310(tmp_path)
    done = run_setup(archive, tmp_path / "root", {**os.environ, "PYTHON": old})
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("setup.sh: Python 3.11 or newer is needed") and "3.10" in lines[0]
    assert "numpy 2.4.6" in lines[0]
    assert not (tmp_path / "root" / "venv").exists() and not done.stdout


def test_setup_refuses_when_no_python_fits(archive, tmp_path):
    """No Python was named, the image's python3 is 3.10 and there is no apt-get to install
    3.11 (Gradescope's Ubuntu images have it): one line that names the base image to choose."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    old = python310()
    if old:
        (bin_dir / "python3").symlink_to(old)
    else:
        fake_python310(bin_dir)
    for tool in ("dirname", "bash"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    env = {k: v for k, v in os.environ.items() if k != "PYTHON"}
    done = run_setup(archive, tmp_path / "root", {**env, "PATH": str(bin_dir)})
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Python 3.11 or newer is needed" in lines[0] and "Python 3.10" in lines[0]
    assert "Ubuntu 22.04 base image or newer" in lines[0]
    assert not (tmp_path / "root" / "venv").exists()


def distributions(python: Path) -> dict[str, str]:
    """``{normalized name: version}`` of what is installed in ``python``'s environment."""
    code = ("import importlib.metadata as m, json, re; print(json.dumps({re.sub(r'[-_.]+', '-', "
            "d.metadata['Name']).lower(): d.version for d in m.distributions()}))")
    return json.loads(subprocess.run([str(python), "-c", code], capture_output=True, text=True,
                                     check=True, env={"PATH": os.environ["PATH"]}).stdout)


def resolution(python: Path, *requirements: str, cwd: Path) -> dict[str, str]:
    """What pip would install for ``requirements`` into an empty environment: ``{name: version}``."""
    done = subprocess.run([str(python), "-m", "pip", "install", "--dry-run", "--ignore-installed",
                           "--quiet", "--report", "-", *requirements], cwd=cwd, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    return {re.sub(r"[-_.]+", "-", item["metadata"]["name"]).lower(): item["metadata"]["version"]
            for item in report["install"]}


# What a learner or the grader never needs: the book, the browser driver, the test tools,
# nbgrader, the linter.
DEVELOPMENT = {"jupyter-book", "sphinx", "myst-nb", "myst-parser", "nbgrader", "pytest",
               "pytest-xdist", "ruff", "playwright", "django-static-mathjax", "notebook"}


@pytest.fixture(scope="module")
def installed(archive, tmp_path_factory) -> Path:
    """The real setup.sh, run on a temporary root: the root (its venv holds the grader's set)."""
    root = tmp_path_factory.mktemp("gradescope-setup")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(PYTHON=sys.executable, TORCH_INDEX_URL="")  # torch the local way (see above)
    done = run_setup(archive, root, env, timeout=1200)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "autograder ready: torch 2.13.0" in done.stdout
    return root


@pytest.mark.sandbox
@pytest.mark.registry
def test_setup_installs_the_graders_set(installed, tmp_path):
    """Nothing in the venv but a fresh venv's own tools and the grader's set as pip resolves
    ``pyproject.toml`` (the package, torch, numpy, matplotlib, nbformat and what they need),
    and that is enough: run_autograder grades with it alone."""
    venv_python = installed / "venv" / "bin" / "python"
    have = distributions(venv_python)
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "empty")], check=True)
    fresh = distributions(tmp_path / "empty" / "bin" / "python")
    wanted = resolution(venv_python, "-e", ".", cwd=installed / "source")
    assert {"attention-from-scratch", "torch", "numpy", "matplotlib", "nbformat"} <= set(wanted)
    assert not DEVELOPMENT & set(have), sorted(DEVELOPMENT & set(have))
    extra = {name: version for name, version in have.items()
             if name not in wanted and fresh.get(name) != version}
    assert not extra, f"setup.sh installed more than the grader's set: {extra}"
    missing = {name for name in wanted if name not in have}
    assert not missing, f"setup.sh did not install {missing}"
    assert have["torch"].startswith("2.13.0") and have["numpy"] == "2.4.6"
    # run_autograder picks the venv by itself (no $PYTHON)
    root = tmp_path / "graded"
    (root / "results").mkdir(parents=True)
    (root / "submission").mkdir()
    (root / "venv").symlink_to(installed / "venv")
    shutil.copytree(installed / "source", root / "source", symlinks=True)
    (root / "submission" / NOTEBOOK).write_bytes(submission_bytes())
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHON")}
    env["AUTOGRADER_ROOT"] = str(root)
    done = subprocess.run(["bash", str(root / "source" / "run_autograder")], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads((root / "results" / "results.json").read_text())
    validate(results)
    assert results["score"] == MAX_SCORE, results["output"]


def test_import_grades_without_nbgrader_says_so(installed, tmp_path):
    """The grader's set has no nbgrader: ``import-grades``, which writes nbgrader's gradebook,
    refuses with one line that says so (status 2), and writes no gradebook."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHON")}
    done = subprocess.run([str(installed / "venv" / "bin" / "python"), "-m", "autograder",
                           "import-grades", str(tmp_path), "--db", f"sqlite:///{tmp_path}/g.db"],
                          cwd=installed / "source", env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith("error: import-grades writes nbgrader's gradebook, and nbgrader "
                                  "is not installed") and done.stderr.count("\n") == 1, done.stderr
    assert not (tmp_path / "g.db").exists()


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
    return nbformat.writes(program.submission(ASSIGNMENT, answers)).encode()


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


def exercise_lines(results: dict) -> dict[str, str]:
    return {line[2:].split(":", 1)[0]: line for line in results["output"].splitlines()
            if line.startswith("- ")}


@pytest.mark.sandbox
def test_output_sums_up_for_the_learner(archive, tmp_path):
    """The top-level output: visible points per exercise and what to fix first, in a few
    lines; nothing of what the hidden tests found (Gradescope hides them, and the total, until
    the grades are published)."""
    results = run_autograder(archive, tmp_path, {NOTEBOOK: submission_bytes({BUG.cell: BUG.source})})
    tests = {t["name"].split(" ")[0]: t for t in results["tests"]}
    hidden = [c for c in GRADE_CELLS if hidden_only(c.grade_id)]
    visible = [c for c in GRADE_CELLS if not hidden_only(c.grade_id)]
    head = results["output"].splitlines()[0]
    assert head == (f"Visible tests: {sum(tests[c.grade_id]['score'] for c in visible):g} / "
                    f"{sum(c.points for c in visible):g} points. Hidden tests "
                    f"({sum(c.points for c in hidden):g} more points) are shown when the grades "
                    "are published."), results["output"]
    lines = exercise_lines(results)
    exercises = {t["name"].split(" ")[1].strip("()") for t in results["tests"]}
    assert set(lines) == exercises and len(results["output"].splitlines()) <= len(exercises) + 4
    for exercise, line in lines.items():
        shown = [tests[c.grade_id] for c in visible if f"({exercise})" in tests[c.grade_id]["name"]]
        assert line.startswith(f"- {exercise}: {sum(t['score'] for t in shown):g} / "
                               f"{sum(t['max_score'] for t in shown):g}"), line
        failed = [t for t in shown if t["score"] < t["max_score"]]
        assert ("fix first: " in line) == bool(failed), line
        if failed:
            first = failed[0]["output"].splitlines()[0].removeprefix("- ")
            assert first[:60] in line, (first, line)
    assert any("fix first: " in line for line in lines.values()), "the bug shows in a visible test"
    for cell in hidden:  # nothing a hidden test found
        for failure in tests[cell.grade_id]["output"].splitlines():
            if failure != "passed" and all(failure not in tests[c.grade_id]["output"] for c in visible):
                assert failure.removeprefix("- ")[:60] not in results["output"]


@pytest.mark.sandbox
def test_output_says_not_attempted(archive, tmp_path):
    untouched = nbformat.writes(course.read(course.notebook_path(ASSIGNMENT, released=True))).encode()
    results = run_autograder(archive, tmp_path, {NOTEBOOK: untouched})
    validate(results)
    assert results["score"] == 0
    lines = exercise_lines(results)
    assert lines and all(line.endswith(": not attempted yet (it still raises NotImplementedError)")
                         for line in lines.values()), results["output"]


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

    from testkit import tamper

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
