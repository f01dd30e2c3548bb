"""The grader's map (CONTRIBUTING.md) is what the package does: every module imports only
the modules its row names, every module has a row, and no imports go round in a cycle.

The table is read from CONTRIBUTING.md itself, the imports from each module's syntax tree
(``ast``), so changing either without the other fails here. A row's first cell names files
(``sandbox/client.py``) or folders (``checks/``: every module in it); its last cell names
what they may import (``sandbox.protocol``, ``checks``), "nothing of ours" or "anything".
A name marked "(types only)" may be imported only under ``if TYPE_CHECKING:``, and the
names after "in a function only:" only inside a function.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "autograder"
MAP = "## The grader's map"
NAME = re.compile(r"`([^`]+)`")


@dataclass
class Row:
    modules: list[str]                                # files and folders, relative to PACKAGE
    anything: bool = False
    allowed: set[str] = field(default_factory=set)    # anywhere
    types_only: set[str] = field(default_factory=set)
    in_function: set[str] = field(default_factory=set)


def read_map(text: str) -> list[Row]:
    """The table of CONTRIBUTING.md's section on the grader's map."""
    section = text.split(MAP, 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or cells[0] in ("module", "") or set(cells[0]) <= set("-"):
            continue
        row = Row(NAME.findall(cells[0]))
        may = cells[2]
        if may == "anything":
            row.anything = True
        elif may != "nothing of ours":
            anywhere, _, in_function = may.partition("in a function only:")
            for part in anywhere.split(","):
                names = NAME.findall(part)
                (row.types_only if "(types only)" in part else row.allowed).update(names)
            row.in_function.update(NAME.findall(in_function))
            assert row.allowed | row.types_only | row.in_function, f"no module named in {line}"
        rows.append(row)
    return rows


def unit(module: Path, rows: list[Row]) -> str | None:
    """The map's name for a module of the package (``sandbox.client``, ``checks``), None when
    no row names it."""
    relative = module.relative_to(PACKAGE).as_posix()
    for row in rows:
        for entry in row.modules:
            if entry == relative or (entry.endswith("/") and relative.startswith(entry)):
                return _dotted(entry)
    return None


def _dotted(entry: str) -> str:
    return entry.rstrip("/").removesuffix(".py").replace("/", ".")


def _module_file(dotted: str) -> Path | None:
    path = PACKAGE.joinpath(*dotted.split(".")) if dotted else PACKAGE
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    return None


@dataclass(frozen=True)
class Import:
    target: Path          # the module's file
    line: int
    where: str            # "top", "function" or "types"


def imports(path: Path, source: str | None = None) -> list[Import]:
    """Every import of a module of the package in the module at ``path`` (its text, or
    ``source``), and where it stands."""
    tree = ast.parse(path.read_text() if source is None else source, str(path))
    found: list[Import] = []

    def visit(node: ast.AST, where: str) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            where = "function"
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                visit(child, "types")
            for child in node.orelse:
                visit(child, where)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "autograder" or alias.name.startswith("autograder."):
                    found.append(Import(_module_file(alias.name.partition(".")[2]), node.lineno,
                                        where))
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(path, node)
            if base is not None:
                for alias in node.names:  # a submodule, or a name of ``base``
                    inner = f"{base}.{alias.name}".lstrip(".")
                    found.append(Import(_module_file(inner) or _module_file(base), node.lineno,
                                        where))
        for child in ast.iter_child_nodes(node):
            visit(child, where)

    visit(tree, "top")
    return found


def _absolute(path: Path, node: ast.ImportFrom) -> str | None:
    """``from X import ...``'s X relative to the package ("" for the package itself), or
    None when X is not in the package."""
    if node.level:
        here = path.parent.relative_to(PACKAGE).parts
        here = here[:len(here) - (node.level - 1)]
        return ".".join([*here, *([node.module] if node.module else [])])
    module = node.module or ""
    if module == "autograder" or module.startswith("autograder."):
        return module.partition(".")[2]
    return None


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


@pytest.fixture(scope="module")
def rows() -> list[Row]:
    return read_map((ROOT / "CONTRIBUTING.md").read_text())


def test_the_map_is_read(rows):
    named = {_dotted(entry) for row in rows for entry in row.modules}
    assert {"engine", "grading", "scoring", "sandbox.protocol", "checks", "testing"} <= named
    engine = next(r for r in rows if "engine.py" in r.modules)
    assert "sandbox.server" not in engine.allowed and "grading" in engine.allowed
    assert not any("testing" in r.allowed | r.types_only | r.in_function for r in rows)


def test_every_module_has_a_row(rows):
    missing = [p.relative_to(PACKAGE).as_posix() for p in modules() if unit(p, rows) is None]
    assert not missing, f"modules with no row in CONTRIBUTING.md's map: {missing}"


def test_every_module_imports_only_what_its_row_names(rows):
    by_unit = {_dotted(entry): row for row in rows for entry in row.modules}
    broken = []
    for path in modules():
        mine = unit(path, rows)
        row = by_unit.get(mine)
        if row is None or row.anything:
            continue
        for found in imports(path):
            other = unit(found.target, rows) if found.target else None
            if other is None or other == mine:
                continue
            allowed = row.allowed | (row.types_only if found.where == "types" else set()) | \
                (row.in_function if found.where == "function" else set())
            if other not in allowed:
                broken.append(f"{path.relative_to(ROOT)}:{found.line} imports {other} "
                              f"({found.where}); its row allows {sorted(row.allowed)}"
                              + (f", types only {sorted(row.types_only)}" if row.types_only else "")
                              + (f", in a function {sorted(row.in_function)}"
                                 if row.in_function else ""))
    assert not broken, "imports the map does not allow:\n" + "\n".join(broken)


def test_no_import_cycles(rows):
    graph: dict[str, set[str]] = {}
    for path in modules():
        mine = unit(path, rows)
        targets = {unit(f.target, rows) for f in imports(path) if f.target and f.where != "types"}
        graph.setdefault(mine, set()).update(t for t in targets if t and t != mine)
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(trail[trail.index(nxt):] + [node, nxt]
                                          if nxt in trail else [node, nxt]))
            elif nxt not in state:
                visit(nxt, trail + [node])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    assert not cycles, f"import cycles: {cycles}"


def test_the_reader_catches_what_the_map_forbids(rows):
    """The checker itself: a forbidden import, one at the top that may only be in a
    function, and one outside ``if TYPE_CHECKING`` that is allowed for types only."""
    source = ("from typing import TYPE_CHECKING\nfrom autograder import engine\n"
              "from autograder.reference import rope\n"
              "if TYPE_CHECKING:\n    from autograder.rubric import Assignment\n"
              "def judge():\n    from autograder.reference import rope\n")
    path = PACKAGE / "checks" / "example.py"
    found = [(f.target.relative_to(PACKAGE).as_posix(), f.where)
             for f in imports(path, source)]
    assert found == [("engine.py", "top"), ("reference/rope.py", "top"),
                     ("rubric.py", "types"), ("reference/rope.py", "function")]
    checks = next(r for r in rows if "checks/" in r.modules)
    assert "reference" in checks.in_function and "reference" not in checks.allowed
    submissions = next(r for r in rows if "submissions.py" in r.modules)
    assert submissions.types_only == {"rubric"} and not submissions.allowed

