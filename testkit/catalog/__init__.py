"""The bug catalog: realistic wrong implementations and alternative correct ones.

Each chapter module defines ``ASSIGNMENT`` and ``CASES``. A case replaces one solution
cell (named by its nbgrader ``grade_id``) with the code a learner might have written.
Wrong cases must lose points on their exercise; correct ones must keep full marks.
"""

from __future__ import annotations

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
