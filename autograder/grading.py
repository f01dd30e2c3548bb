"""One submission of one assignment, graded: ``grade_one``.

The whole work of a submission, testable alone: the grading program
(``course.exercise_program``: the instructor's setup cells, then the learner's solution
cells), the payload the student process runs (``sandbox.protocol.payload``: the program and
each check's seeds), one run in a sandbox, its messages read into an ``Outcome``, and the
judge's ``Record``. ``engine.grade`` plans (discover, shard, skip) and calls it for each
submission; it knows nothing of seeds or of the payload.
"""

from __future__ import annotations

from typing import Protocol

from autograder import course, scoring
from autograder.outcome import Outcome
from autograder.records import Record
from autograder.sandbox import protocol
from autograder.submissions import Submission


class Sandbox(Protocol):
    """Where a payload runs: ``sandbox.client.Zygote`` behind the engine's job slots, or a
    test's stand-in. ``run`` returns the run's messages, the supervisor's ``Status`` last."""

    timeout: float

    def run(self, payload: bytes) -> list[protocol.Message]: ...


def grade_one(grading: scoring.Grading, submission: Submission, sandbox: Sandbox,
              previous: Record | None = None) -> Record:
    """The record of ``submission`` graded as ``grading`` says; ``previous`` (the record of
    an earlier run, or None) is returned as it is when it graded the same submission with
    the same scoring and seeds."""
    fingerprint = grading.fingerprint(submission)
    if previous is not None and previous.fingerprint == fingerprint:
        return previous
    outcome = Outcome(submission.student_id, fingerprint, submission.reason, list(submission.notes))
    if submission.notebook is not None:
        assignment = grading.assignment
        program = course.exercise_program(assignment.source, submission.notebook)
        outcome.notes += program.notes
        payload = protocol.payload(assignment.id, program.cells,
                                   {c.grade_id: grading.seeds[c.grade_id] for c in assignment.cells
                                    if c.grade_id in grading.seeds})
        outcome.read(sandbox.run(payload), sandbox.timeout)
    return scoring.judge(grading, outcome)
