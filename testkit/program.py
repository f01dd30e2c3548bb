"""The grading program of a submission, run in-process: the instructor's setup cells, then the
solution cells (the reference solution's, except ``answers``), in one fresh namespace, as
``course.exercise_program`` builds them for the sandbox; and every hidden check observed and
judged on it. For tests and benchmarks that judge checks without a student process.
``submission`` is a learner's notebook with every exercise completed (or given answers)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import nbformat

from autograder import checks, course


def submission(assignment_id: str, answers: dict[str, str] | None = None,
               root: Path = course.ROOT) -> nbformat.NotebookNode:
    """A learner's notebook: the released one with every exercise completed.

    Each solution cell gets the reference solution, except those named in ``answers``
    (grade_id -> the whole cell source), which get the given code instead.
    """
    answers = dict(answers or {})
    released = course.read(course.notebook_path(assignment_id, root, released=True))
    reference = course.solution_cells(course.read(course.notebook_path(assignment_id, root)))
    for grade_id, cell in course.solution_cells(released).items():
        cell.source = answers.pop(grade_id) if grade_id in answers \
            else course.strip_markers(reference[grade_id].source)
    if answers:
        raise KeyError(f"{assignment_id} has no solution cell named {sorted(answers)}")
    return released



def run(assignment_id: str, answers: dict[str, str] | None = None, *, submitted=None,
        tolerate: bool = False) -> dict:
    """The namespace after the program ran. ``submitted``: a whole notebook instead of
    ``answers``. ``tolerate``: a cell that raises (the student's error) is skipped, and the
    checks then see what is missing; otherwise it propagates."""
    source = course.read(course.notebook_path(assignment_id))
    notebook = submitted if submitted is not None else submission(assignment_id, answers)
    namespace = {"__name__": "__main__"}
    for code in course.exercise_program(source, notebook).code:
        with contextlib.suppress(Exception) if tolerate else contextlib.nullcontext(), \
                contextlib.redirect_stdout(io.StringIO()):
            exec(compile(code, "<cell>", "exec"), namespace)
    return namespace


def failures(assignment_id: str, answers: dict[str, str] | None = None,
             secret: str | None = None) -> dict[str, list[str]]:
    """``{grade_id: failures}`` of every check of the assignment, observed and judged in this
    process on a fresh run of the program: with the fixed seeds of the nbgrader path, or with
    the seeds that ``secret`` derives, as the project's grader draws them."""
    namespace = run(assignment_id, answers)
    return {grade_id: check.judge_seen(check.observe_in(namespace, check.seeds(secret)),
                                       check.seeds(secret))
            for grade_id, check in checks.checks_for(assignment_id).items()}


def calls(registered, exercise) -> set[str]:
    """The exercises ``exercise`` calls, directly or through others (``Check.needs``)."""
    found, frontier = set(), [exercise]
    while frontier:
        current = frontier.pop()
        for check in registered.values():
            if check.exercise == current:
                new = set(check.needs) - found
                found |= new
                frontier.extend(new)
    return found
