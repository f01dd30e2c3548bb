"""The smallest wrong edits of every solution cell, judged by the hidden checks in-process.

For each exercise, one mutant per site: a comparison flipped (``<`` <-> ``<=``, ``>`` <->
``>=``, ``==`` <-> ``!=``), a keyword argument dropped from a call, a numeric constant changed
(ints + 1, floats x 2), ``sin`` <-> ``cos``, ``+`` <-> ``-``. A mutant is *caught* when some
check of its own exercise fails. A survivor is either equivalent to the solution (a dropped
``dtype=`` that was the default anyway, a constant inside an error message) or a gap in the
checks. ``tests/test_mutant_sweep.py`` pins the survivors to the known equivalent ones;
``benchmarks/mutant_sweep.py`` prints the table.
"""

from __future__ import annotations

import ast
import copy
from typing import NamedTuple

from autograder import checks, course
from testkit import program

FLIP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt,
        ast.Eq: ast.NotEq, ast.NotEq: ast.Eq}
SWAP_NAMES = {"sin": "cos", "cos": "sin"}


def sites(tree: ast.AST):
    """(node, kind, detail, edit) for every mutable site; edit(node_copy) mutates in place."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                if type(op) in FLIP:
                    yield node, "flipped_comparison", type(op).__name__, \
                        lambda n, i=i: n.ops.__setitem__(i, FLIP[type(n.ops[i])]())
        elif isinstance(node, ast.Call):
            for i, kw in enumerate(node.keywords):
                if kw.arg is not None:
                    yield node, "dropped_keyword", f"{kw.arg}=", \
                        lambda n, i=i: n.keywords.pop(i)
        elif isinstance(node, ast.Constant) and type(node.value) in (int, float) \
                and not isinstance(node.value, bool):
            yield node, "changed_constant", repr(node.value), \
                lambda n: setattr(n, "value", n.value + 1 if isinstance(n.value, int) else n.value * 2)
        elif isinstance(node, ast.Attribute) and node.attr in SWAP_NAMES:
            yield node, "sin_cos_swapped", node.attr, \
                lambda n: setattr(n, "attr", SWAP_NAMES[n.attr])
        elif isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
            yield node, "plus_minus", type(node.op).__name__, \
                lambda n: setattr(n, "op", ast.Sub() if isinstance(n.op, ast.Add) else ast.Add())


def mutants(source: str):
    """(kind, where, mutated code) for every site. ``where`` names the site by the code it
    changes (``"pe = np.zeros(...) | dtype="``), not by its line number, so an edit elsewhere
    in the solution keeps the names of the known equivalent survivors; a site that repeats
    on one line gets ``#2``, ``#3``."""
    code = course.strip_markers(source)
    lines = code.splitlines()
    tree = ast.parse(code)
    count = sum(1 for _ in sites(tree))
    seen: dict[str, int] = {}
    for index in range(count):
        mutated = copy.deepcopy(tree)
        node, kind, detail, edit = list(sites(mutated))[index]
        where = f"{lines[node.lineno - 1].strip()} | {detail}"
        seen[where] = seen.get(where, 0) + 1
        if seen[where] > 1:
            where += f" #{seen[where]}"
        before = ast.unparse(mutated)
        edit(node)
        after = ast.unparse(mutated)
        if after != before:
            yield kind, where, after


def judge(assignment_id: str, answers: dict[str, str], exercise: str) -> bool:
    """True when some check of ``exercise`` fails (or the program itself fails)."""
    namespace = program.run(assignment_id, answers, tolerate=True)
    own = [c for c in checks.checks_for(assignment_id).values() if c.exercise == exercise]
    return any(c.judge_seen(c.observe_in(namespace)) for c in own)


class Survivor(NamedTuple):
    exercise: str
    kind: str
    where: str


def sweep(assignment_id: str):
    """(kind, caught) for every mutant of the assignment's solution cells, then the survivors."""
    results, survivors = [], []
    cells = course.solution_cells(course.read(course.notebook_path(assignment_id)))
    for exercise, cell in cells.items():
        for kind, where, code in mutants(cell.source):
            caught = judge(assignment_id, {exercise: code}, exercise)
            results.append((kind, caught))
            if not caught:
                survivors.append(Survivor(exercise, kind, where))
    return results, survivors
