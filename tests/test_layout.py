"""The course layout and notebook conventions of spec sections 2 and 3 (fast)."""

import ast
import re

import pytest

from autograder import checks, course
from conftest import ASSIGNMENTS
from testkit import catalog

EXPECTED = ["01-positional-encoding", "02-self-attention", "03-causal-masking",
            "04-stacking-heads", "05-multi-head-attention", "06-rope", "07-numpy-decoder",
            "08-kv-cache"]


def test_top_level_layout():
    for name in ["_config.yml", "_toc.yml", "chapters", "solutions", "autograder/__init__.py",
                 "requirements.txt", "nbgrader_config.py", "README.md", ".ci/run"]:
        assert (course.ROOT / name).exists(), f"{name} is missing from the repository root"
    config = (course.ROOT / "nbgrader_config.py").read_text()
    assert 'source_directory = "solutions"' in config
    assert 'release_directory = "chapters"' in config


def test_assignment_ids_follow_the_spec():
    assert ASSIGNMENTS, "no assignments in solutions/"
    assert ASSIGNMENTS == EXPECTED[: len(ASSIGNMENTS)], \
        f"assignments {ASSIGNMENTS} should be a prefix of {EXPECTED}"


def test_every_chapter_is_in_the_toc(assignment_id):
    toc = (course.ROOT / "_toc.yml").read_text()
    released = course.notebook_path(assignment_id, released=True)
    entry = released.relative_to(course.ROOT).with_suffix("").as_posix()
    assert entry in toc, f"{entry} is not listed in _toc.yml"


def test_notebooks_are_committed_clean(assignment_id):
    for released in (False, True):
        nb = course.read(course.notebook_path(assignment_id, released=released))
        ids = [cell.get("id") for cell in nb.cells]
        assert all(ids) and len(set(ids)) == len(ids), "cell ids must be present and unique"
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, \
                    f"cell {cell.id} has outputs: commit notebooks without outputs"


def test_grade_cells_and_hidden_checks_match(assignment_id):
    """Every grade cell calls its own hidden check, and every check has a grade cell."""
    nb = course.read(course.notebook_path(assignment_id))
    registered = checks.checks_for(assignment_id)
    solution_ids = set(course.solution_cells(nb))
    grade_ids = []
    for cell in nb.cells:
        meta = course.nbgrader_meta(cell)
        if not meta.get("grade"):
            continue
        grade_ids.append(meta["grade_id"])
        hidden = "".join(course.hidden_texts(cell.source))
        call = f'run("{assignment_id}", "{meta["grade_id"]}", globals())'
        assert call in hidden, f"grade cell {meta['grade_id']} should call {call} in its hidden tests"
        assert meta.get("points", 0) > 0, f"grade cell {meta['grade_id']} has no points"
    assert sorted(grade_ids) == sorted(registered), "grade cells and hidden checks differ"
    for check in registered.values():
        assert check.exercise in solution_ids, \
            f"check {check.grade_id} names exercise {check.exercise}, which has no solution cell"


def test_each_solution_cell_defines_exactly_its_name(assignment_id):
    nb = course.read(course.notebook_path(assignment_id))
    for grade_id, cell in course.solution_cells(nb).items():
        names = re.findall(r"^(?:def|class)\s+(\w+)|^(\w+)\s*=", course.strip_markers(cell.source), re.M)
        defined = {a or b for a, b in names}
        assert defined == {grade_id}, f"solution cell {grade_id} defines {sorted(defined)}"


def test_catalog_size(assignment_id):
    cases = catalog.cases(assignment_id)
    minimum = 8 if assignment_id.startswith("01") else 10
    assert sum(not c.correct for c in cases) >= minimum, f"fewer than {minimum} wrong cases"
    assert sum(c.correct for c in cases) >= 3, "fewer than 3 alternative correct cases"
    names = [c.name for c in cases]
    assert len(set(names)) == len(names), "case names must be unique"
    cells = course.solution_cells(course.read(course.notebook_path(assignment_id)))
    for case in cases:
        assert case.cell in cells, f"case {case.name} targets unknown cell {case.cell}"


@pytest.mark.parametrize("path", sorted(course.ROOT.glob("*/*.ipynb")) or [None])
def test_no_stray_notebooks(path):
    assert path is None or path.parent.name in {"chapters", "solutions"}


# One process checks every chapter: it imports what the check modules share (torch, numpy,
# autograder.checks), then forks a child per chapter that imports that chapter's module alone
# (a fresh process per chapter paid one torch import each).
REFERENCES_PROGRAM = """
import importlib, json, os, sys
import numpy, torch  # what the check modules import, as the grader's zygote preloads it
import autograder.checks, autograder.checks._common
def leaked():
    return [m for m in sys.modules if m.startswith(("autograder.reference", "testkit"))]
found = {"": leaked()}
for module in sys.argv[1:]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        importlib.import_module("autograder.checks." + module)
        os.write(write, json.dumps(leaked()).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        found[module] = json.loads(pipe.read() or '["(the import failed)"]')
    os.waitpid(pid, 0)
print(json.dumps(found))
"""


@pytest.fixture(scope="module")
def loaded_with_checks() -> dict[str, list[str]]:
    """``{check module: reference or catalog modules in sys.modules after importing it}``."""
    import json
    import subprocess
    import sys

    modules = [checks.module_name(a) for a in ASSIGNMENTS]
    result = subprocess.run([sys.executable, "-c", REFERENCES_PROGRAM, *modules],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_check_modules_do_not_load_references(assignment_id, loaded_with_checks):
    """The grader's student process imports check modules; references must stay out of it."""
    assert not loaded_with_checks[""], f"importing autograder.checks loads {loaded_with_checks['']}"
    leaked = loaded_with_checks[checks.module_name(assignment_id)]
    assert not leaked, f"importing the checks loads {leaked}"


def test_figure_cells_hide_their_plumbing(assignment_id):
    """A cell that draws a figure hides its input in the book and is only plumbing: it defines
    no name that a later cell uses, so the computation a figure shows sits in a visible cell
    above it, where the prose explains it. (A benchmark's hidden cells may define the variants
    that later cells time.)"""
    cells = [c for c in course.read(course.notebook_path(assignment_id)).cells
             if c.cell_type == "code"]
    trees = [ast.parse(course.strip_markers(c.source)) for c in cells]
    for i, (cell, tree) in enumerate(zip(cells, trees, strict=True)):
        calls = {ast.unparse(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
        if "plt.show" not in calls:
            continue
        assert "hide-input" in cell.metadata.get("tags", []), \
            f"cell {cell.id} draws a figure: tag it hide-input"
        defined = _names(tree, ast.Store)
        used = set().union(*(_names(later, ast.Load) - _names(later, ast.Store)
                             for later in trees[i + 1:]))
        assert not defined & used, f"cell {cell.id} draws a figure but defines " \
            f"{sorted(defined & used)}, used later: compute them in a visible cell"


def _names(tree, context) -> set[str]:
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, context)}
    if context is ast.Store:  # a function's parameters are its own names
        names |= {n.arg for n in ast.walk(tree) if isinstance(n, ast.arg)}
    return names
