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


def written(assignment_id: str) -> list[Case]:
    """The hand-written cases of an assignment (empty when it has no catalog yet)."""
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if getattr(module, "ASSIGNMENT", None) == assignment_id:
            return list(module.CASES)
    return []


def cases(assignment_id: str) -> list[Case]:
    """Every case for an assignment: the written ones, then the generated mutants."""
    from autograder.testing.catalog.mutants import generated

    return written(assignment_id) + generated(assignment_id)
