"""The bug catalog: realistic wrong implementations and alternative correct ones.

Each chapter module defines ``ASSIGNMENT`` and ``CASES``. A case replaces one solution
cell (named by its nbgrader ``grade_id``) with the code a learner might have written.
Wrong cases must lose points on their exercise; correct ones must keep full marks.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
import textwrap
from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    name: str
    cell: str
    correct: bool
    note: str
    source: str


def wrong(name: str, cell: str, note: str, source: str) -> Case:
    return Case(name, cell, False, note, textwrap.dedent(source).strip("\n"))


def correct(name: str, cell: str, note: str, source: str) -> Case:
    return Case(name, cell, True, note, textwrap.dedent(source).strip("\n"))


COMPILED_SOFTMAX = """
@torch.compile
def compiled_softmax(x, dim=-1):
    return torch.softmax(x, dim=dim)
"""


def compiled(assignment_id: str, cell: str, old: str = "torch.softmax(",
             new: str = "compiled_softmax(", helper: str = COMPILED_SOFTMAX) -> Case:
    """The reference solution of ``cell`` with a helper decorated with ``@torch.compile``
    (``old`` replaced by a call to it): correct code that a sandbox hiding the C++ compiler
    inductor needs must not lose points for (issue 19)."""
    from autograder import course

    cells = course.solution_cells(course.read(course.notebook_path(assignment_id)))
    source = course.strip_markers(cells[cell].source)
    assert old in source, f"{old!r} is not in the solution of {cell}"
    return correct("compiled_helper", cell, f"the solution with {old.rstrip('(')} moved into a "
                   "helper decorated with @torch.compile (eager under our grader)",
                   helper + "\n" + source.replace(old, new))


def written(assignment_id: str) -> list[Case]:
    """The hand-written cases of an assignment (empty when it has no catalog yet)."""
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if getattr(module, "ASSIGNMENT", None) == assignment_id:
            return list(module.CASES)
    return []


def cases(assignment_id: str) -> list[Case]:
    """Every case for an assignment: the written ones, then the generated mutants."""
    from testkit.catalog.mutants import generated

    return written(assignment_id) + generated(assignment_id)


@dataclass(frozen=True)
class Bundle:
    """Catalog cases of one kind (wrong or correct) submitted together, each in its own
    exercise's solution cell: ``name`` is the submission's student id."""

    name: str
    cases: tuple[Case, ...]

    @property
    def answers(self) -> dict[str, str]:
        return {case.cell: case.source for case in self.cases}


def _names(source: str) -> tuple[set[str], set[str], bool]:
    """(the top-level names the code binds, every name it reads or binds, whether it only
    defines: its top-level statements are imports, ``def``, ``class`` and assignments to
    plain names, and nothing in it says ``global`` or ``nonlocal``)."""
    import ast

    tree = ast.parse(source)
    bound, plain = set(), True
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            plain &= all(isinstance(target, ast.Name) for target in targets)
            bound |= {target.id for target in targets if isinstance(target, ast.Name)}
        else:
            plain = False
    used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    plain &= not any(isinstance(node, (ast.Global, ast.Nonlocal)) for node in ast.walk(tree))
    return bound, used | bound, plain


@functools.cache
def bundles(assignment_id: str, correct: bool) -> tuple[Bundle, ...]:
    """The wrong (or the correct) cases of an assignment packed into as few submissions as
    keep each case's verdict its own (``pack``), named ``wrong-01``, ``correct-01``, ..."""
    kind = "correct" if correct else "wrong"
    packed = pack(assignment_id, [c for c in cases(assignment_id) if c.correct == correct])
    return tuple(Bundle(f"{kind}-{number:02d}", tuple(members))
                 for number, members in enumerate(packed, 1))


def pack(assignment_id: str, members: list[Case]) -> list[list[Case]]:
    """``members`` in groups (first fit, in order) where every check of an exercise runs the
    same code as it would with that exercise's case alone: cases share a group only when their
    exercises differ and neither calls the other (``Check.needs``, through other exercises
    too), when each only defines things (``_names``), and when neither case's code, nor the
    reference solution of its exercise, names anything that the other one binds (beyond what
    both the cases and both references bind: the libraries they import)."""
    from autograder import checks, course
    from testkit.program import calls

    registered = checks.checks_for(assignment_id)
    reference = {grade_id: _names(course.strip_markers(cell.source))
                 for grade_id, cell in course.solution_cells(
                     course.read(course.notebook_path(assignment_id))).items()}

    def apart(one: Case, other: Case) -> bool:
        (bound, used, plain), (other_bound, other_used, other_plain) = \
            _names(one.source), _names(other.source)
        shared = (bound & reference[one.cell][0]) & (other_bound & reference[other.cell][0])
        return plain and other_plain and one.cell != other.cell \
            and one.cell not in calls(registered, other.cell) \
            and other.cell not in calls(registered, one.cell) \
            and not (bound - shared) & (other_used | reference[other.cell][1]) \
            and not (other_bound - shared) & (used | reference[one.cell][1])

    groups: list[list[Case]] = []
    for case in members:
        home = next((group for group in groups if all(apart(case, other) for other in group)),
                    None)
        if home is None:
            groups.append([case])
        else:
            home.append(case)
    return groups
