"""Mutants generated from the reference solutions: the smallest wrong edits of a correct one.

For every solution cell of ``solutions/`` (every exercise):

- ``returns_none``: every ``return <value>`` of the exercise returns ``None`` instead
  (a stub that checks its arguments and gives nothing back);
- ``forgot_return``: the last ``return <value>`` of the function (of ``forward`` for a
  module) loses its ``return``: the value is computed and dropped;
- ``default_<arg>``: each default argument of the exercise's signature changed to another
  plausible value (``base=10000.0`` -> ``1000.0``, ``qkv_bias=False`` -> ``True``, ...).

They are realistic (each one was seen in learners' code) and need no hand-written catalog
entry, so every exercise has them, including exercises added later.
"""

from __future__ import annotations

import ast

from autograder import course

NAME = "mutant"


def _constant(node: ast.expr) -> object | None:
    """The value of a literal default (``-1`` included), else None."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) \
            and isinstance(node.operand, ast.Constant) \
            and isinstance(node.operand.value, (int, float)):
        return -node.operand.value
    return None


def _changed_default(value: object) -> object | None:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value - 1 if value < 0 else (value * 2 if value else 1)
    if isinstance(value, float):
        return 0.1 if value == 0.0 else value / 10
    return None


class _ReturnsNone(ast.NodeTransformer):
    def visit_Return(self, node: ast.Return) -> ast.Return:
        return ast.copy_location(ast.Return(value=ast.Constant(None)), node) \
            if node.value is not None else node


def _last_return(function: ast.FunctionDef) -> ast.Return | None:
    returns = [n for n in ast.walk(function) if isinstance(n, ast.Return) and n.value is not None]
    return max(returns, key=lambda n: (n.lineno, n.col_offset), default=None)


def _target(tree: ast.Module, name: str) -> ast.FunctionDef | None:
    """The exercise's function, or the ``forward`` of its class."""
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node
        if isinstance(node, ast.ClassDef) and node.name == name:
            return next((n for n in node.body
                         if isinstance(n, ast.FunctionDef) and n.name == "forward"), None)
    return None


def _signature(tree: ast.Module, name: str) -> ast.arguments | None:
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node.args
        if isinstance(node, ast.ClassDef) and node.name == name:
            init = next((n for n in node.body
                         if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
            return init.args if init else None
    return None


def mutants(exercise: str, source: str) -> list[tuple[str, str, str]]:
    """(name, note, source) of each mutant of one solution cell (markers stripped)."""
    code = course.strip_markers(source)
    found = []
    tree = ast.parse(code)
    target = _target(tree, exercise)
    if target is not None and _last_return(target) is not None:
        _ReturnsNone().visit(target)
        found.append(("returns_none", "every return gives None", ast.unparse(tree)))
    tree = ast.parse(code)
    target = _target(tree, exercise)
    last = _last_return(target) if target is not None else None
    if last is not None:
        parent = next(p for p in ast.walk(target) if last in getattr(p, "body", [])
                      or last in getattr(p, "orelse", []))
        block = parent.body if last in parent.body else parent.orelse
        block[block.index(last)] = ast.copy_location(ast.Expr(value=last.value), last)
        found.append(("forgot_return", "the last `return` is missing (the value is dropped)",
                      ast.unparse(tree)))
    arguments = _signature(ast.parse(code), exercise)
    if arguments is not None:
        names = [a.arg for a in arguments.args + arguments.kwonlyargs]
        defaults = [(a.arg, d) for a, d in zip(arguments.args[len(arguments.args)
                                                                - len(arguments.defaults):],
                                                arguments.defaults, strict=True)]
        defaults += [(a.arg, d) for a, d in zip(arguments.kwonlyargs, arguments.kw_defaults,
                                                strict=True) if d is not None]
        for arg, default in defaults:
            value = _constant(default)
            new = None if value is None or arg not in names else _changed_default(value)
            if new is None:
                continue
            tree = ast.parse(code)
            signature = _signature(tree, exercise)
            for node in ast.walk(signature):
                for field in ("defaults", "kw_defaults"):
                    values = getattr(node, field, None)
                    if isinstance(values, list):
                        for i, old in enumerate(values):
                            if old is not None and (old.lineno, old.col_offset) == \
                                    (default.lineno, default.col_offset):
                                values[i] = ast.Constant(new)
            found.append((f"default_{arg}", f"the default of {arg} changed from "
                          f"{value!r} to {new!r}", ast.unparse(tree)))
    return found


def generated(assignment_id: str) -> list:
    """Catalog cases (wrong) for every mutant of every exercise of the assignment."""
    from testkit.catalog import Case

    source = course.read(course.notebook_path(assignment_id))
    cases = []
    for exercise, cell in course.solution_cells(source).items():
        for name, note, code in mutants(exercise, cell.source):
            cases.append(Case(f"{NAME}_{exercise}_{name}", exercise, False,
                              f"generated mutant: {note}", code))
    return cases
