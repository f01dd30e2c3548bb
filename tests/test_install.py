"""The three installs: the learner's set (requirements-learner.txt), the grader's set (the
package's own dependencies, ``python -m pip install .``) and the development set
(requirements.txt).

The pins agree across the three files and the Python floor is the one the pins need; pip's
resolution of the learner's and the grader's sets, in a fresh virtual environment, holds no
development package. The resolution asks the registry (``registry``): here torch 2.13.0 is
this machine's local CPU build, whose requirements are those of PyTorch's CPU wheel; on a
user's Linux machine PyPI's wheel adds the CUDA libraries (nvidia-*, triton), which is why
the README installs the CPU-only torch from PyTorch's index first.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from autograder import course, gradescope

# The book, the browser driver, the test tools, nbgrader, the linter: development only.
DEVELOPMENT = {"jupyter-book", "sphinx", "myst-nb", "myst-parser", "nbgrader", "pytest",
               "pytest-xdist", "ruff", "playwright", "django-static-mathjax", "notebook"}
GRADER = {"attention-from-scratch", "torch", "numpy", "matplotlib", "nbformat"}
LEARNER = {"torch", "numpy", "matplotlib", "jupyterlab", "ipykernel"}


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, str]:
    """``name==version`` lines of a requirements file: ``{name: version}``."""
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            found[normalized(name)] = version.strip()
    return found


def project() -> dict:
    return tomllib.loads((course.ROOT / "pyproject.toml").read_text())["project"]


def test_pins_agree_and_the_floor_is_the_pins():
    development = pins(course.ROOT / "requirements.txt")
    learner = pins(course.ROOT / "requirements-learner.txt")
    grader = gradescope.grader_pins()
    assert set(grader) == GRADER - {"attention-from-scratch"}, grader
    assert set(learner) == LEARNER, learner
    for name, version in {**grader, **learner}.items():  # one version of each, everywhere
        assert development.get(name) == version, (name, version, development.get(name))
    assert not DEVELOPMENT & (set(grader) | set(learner))
    assert "-e ." in (course.ROOT / "requirements.txt").read_text().splitlines()
    # numpy 2.4 and matplotlib 3.11 need Python 3.11: the floor says so everywhere
    assert project()["requires-python"] == ">=%d.%d" % gradescope.MIN_PYTHON == ">=3.11"
    for name in ("requirements.txt", "requirements-learner.txt"):
        text = (course.ROOT / name).read_text()
        assert "Python 3.11 or newer" in text, name
        assert "--index-url https://download.pytorch.org/whl/cpu" in text, name
        assert "the CPU build this course targets" not in text, name


def resolve(tmp_path: Path, *requirements: str) -> dict[str, str]:
    """What pip installs for ``requirements`` into a fresh venv: ``{name: version}``. It runs
    in a copy of the project (pip writes the package's metadata next to pyproject.toml)."""
    venv = tmp_path / "venv"
    if not venv.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    project = tmp_path / "project"
    if not project.exists():
        shutil.copytree(course.ROOT / "autograder", project / "autograder",
                        ignore=shutil.ignore_patterns("__pycache__"))
        for name in ("pyproject.toml", "requirements-learner.txt"):
            shutil.copyfile(course.ROOT / name, project / name)
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--dry-run",
                           "--quiet", "--report", "-", *requirements], cwd=project,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return {normalized(item["metadata"]["name"]): item["metadata"]["version"]
            for item in json.loads(done.stdout)["install"]}


@pytest.mark.slow
@pytest.mark.registry
def test_learner_and_grader_resolve_without_development_packages(tmp_path):
    learner = resolve(tmp_path, "-r", "requirements-learner.txt")
    grader = resolve(tmp_path, ".")
    assert LEARNER <= set(learner), sorted(learner)
    assert GRADER <= set(grader), sorted(grader)
    assert not DEVELOPMENT & set(learner), sorted(DEVELOPMENT & set(learner))
    assert not DEVELOPMENT & set(grader), sorted(DEVELOPMENT & set(grader))
    # the grader runs no Jupyter: nothing of JupyterLab or of a kernel
    assert not {name for name in grader if name.startswith(("jupyterlab", "ipy", "notebook"))}
    for name, version in gradescope.grader_pins().items():
        assert grader[name].split("+")[0] == version


def test_the_graders_package_holds_no_test_support(tmp_path):
    """What ``python -m pip install .`` installs is the wheel pip builds from this tree: the
    package ``autograder`` (with its checks and references) and nothing of ``testkit``, the
    bug catalog or the tests. Built from a copy of the tree: the build writes ``build/`` and
    metadata beside pyproject.toml, and other tests read the repository's folder meanwhile."""
    import zipfile

    tree = tmp_path / "tree"
    shutil.copytree(course.ROOT, tree, ignore=shutil.ignore_patterns(
        ".git", "_build", "build", "*.egg-info", "__pycache__", ".*_cache"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                            "--no-build-isolation", "--wheel-dir", str(tmp_path), "."],
                           cwd=tree, capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    [wheel] = tmp_path.glob("attention_from_scratch-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/", 1)[0] for name in names if not name.split("/", 1)[0].endswith(
        (".dist-info", ".data"))}
    assert tops == {"autograder"}, tops
    assert "autograder/checks/rope.py" in names and "autograder/reference/rope.py" in names
    assert not [n for n in names if "testkit" in n or "catalog" in n or "/testing/" in n]
