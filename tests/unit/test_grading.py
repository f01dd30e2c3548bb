"""``grading.grade_one``: one submission graded alone, from a notebook in memory, with no
``submitted/`` folder and no fork server: a stand-in sandbox runs the payload here."""

import hashlib
import json

import nbformat

from autograder import checks, course, grading, scoring
from autograder.sandbox import protocol
from autograder.submissions import Submission
from autograder.testing import tamper

A = tamper.ASSIGNMENT
WRONG_ADD = "def add_positional_encoding(x, base=1.0):\n    return x"


class InProcess:
    """Runs a payload in this process as the student process would (the program's cells, then
    each check's ``observe`` with the seeds the payload carries) and says so in messages."""

    timeout = 60.0

    def __init__(self):
        self.payloads: list[dict] = []

    def run(self, payload: bytes) -> list[protocol.Message]:
        job = json.loads(payload)
        self.payloads.append(job)
        registered = checks.checks_for(job["assignment_id"])
        namespace = {"__name__": "__main__"}
        messages: list[protocol.Message] = [protocol.Sandbox({"landlock": 0, "in": "process"})]
        for index, (label, code) in enumerate(job["program"]):
            messages.append(protocol.Cell(index, label))
            try:
                exec(compile(code, f"<cell {label}>", "exec"), namespace)
            except Exception as exc:
                messages.append(protocol.CellError(index, label, repr(exc)))
        for grade_id, seeds in job["checks"].items():
            messages.append(protocol.Observing(grade_id))
            answers = registered[grade_id].observe_in(namespace, seeds)
            messages.append(protocol.parse(protocol.encode_seen(grade_id, json.dumps(answers).encode())))
        return messages + [protocol.Done(), protocol.Status(False, 0.5, 0, None)]


def _submission(student: str, answers: dict | None = None) -> Submission:
    notebook = course.submission(A, answers)
    return Submission(student, notebook, hashlib.sha256(nbformat.writes(notebook).encode()).hexdigest())


def test_one_submission_is_graded_alone(assignments):
    sandbox = InProcess()
    record = grading.grade_one(scoring.Grading(assignments[A]), _submission("ada"), sandbox)
    assert record.graded and record.score == record.max_score == assignments[A].max_score
    assert (record.student_id, record.assignment_id, record.seed) == ("ada", A, "fixed")
    assert record.sandbox == {"landlock": 0, "in": "process"} and record.wall == 0.5
    assert len(sandbox.payloads) == 1


def test_a_wrong_exercise_loses_its_points(assignments):
    record = grading.grade_one(scoring.Grading(assignments[A]),
                               _submission("bob", {tamper.ADD: WRONG_ADD}), InProcess())
    lost = {c.grade_id for c in record.cells if c.score < c.max_score}
    assert lost == {g for g, e in assignments[A].exercise.items() if e == tamper.ADD}


def test_the_payload_is_the_program_and_the_runs_seeds(assignments):
    sandbox = InProcess()
    run = scoring.Grading(assignments[A], "s3cret")
    grading.grade_one(run, _submission("ada"), sandbox)
    payload = sandbox.payloads[0]
    program = course.exercise_program(assignments[A].source, course.submission(A))
    assert [tuple(cell) for cell in payload["program"]] == program.cells
    assert list(payload["checks"]) == [c.grade_id for c in assignments[A].cells]
    assert payload["checks"] == {g: assignments[A].checks[g].seeds("s3cret")
                                 for g in payload["checks"]}


def test_an_unreadable_submission_runs_nothing(assignments):
    sandbox = InProcess()
    unread = Submission("eve", None, "missing", "missing notebook positional_encoding.ipynb",
                        ["extra notebook(s) ignored: x.ipynb"])
    record = grading.grade_one(scoring.Grading(assignments[A]), unread, sandbox)
    assert not sandbox.payloads and not record.graded and record.score == 0
    assert record.reason == unread.reason and record.notes == unread.notes
    assert all(c.failures == [f"not graded: {unread.reason}"] for c in record.cells)


def test_an_earlier_record_is_kept_only_for_the_same_submission_and_seeds(assignments):
    fixed = scoring.Grading(assignments[A])
    earlier = grading.grade_one(fixed, _submission("ada"), InProcess())
    sandbox = InProcess()
    assert grading.grade_one(fixed, _submission("ada"), sandbox, earlier) is earlier
    assert not sandbox.payloads
    again = grading.grade_one(scoring.Grading(assignments[A], "s3cret"), _submission("ada"),
                              sandbox, earlier)
    assert again is not earlier and again.seed == scoring.seed_id("s3cret")
    changed = grading.grade_one(fixed, _submission("ada", {tamper.ADD: WRONG_ADD}), sandbox,
                                earlier)
    assert changed is not earlier and changed.score < earlier.score
