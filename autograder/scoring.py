"""Judging: one submission's ``Outcome`` becomes its ``Record``.

Runs in the grader's process, which never ran student code. ``Grading`` is an assignment
as one run scores it (its checks' seeds under the run's secret, computed once); ``judge``
takes an outcome through three steps: ``judge_cells`` (each check's ``judge_seen`` compares
the answers with the references; a grade cell scores its points when its check has no
failure), ``blame`` (a failing exercise that calls a failing one is told to fix that one
first) and ``record``. Also the run's secret (``run_secret``, ``shared_secret``) and what a
record remembers of it (``seed_id``).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from autograder import checks
from autograder.errors import GraderError, UsageError
from autograder.outcome import Outcome
from autograder.records import ERROR, GRADED, CellResult, Record
from autograder.rubric import Assignment
from autograder.submissions import Submission


def seed_id(secret: str | None) -> str:
    """What the results record of the run's secret: a digest that names it, never the secret."""
    return "fixed" if secret is None else hashlib.sha256(secret.encode()).hexdigest()[:16]


@dataclass
class Grading:
    """An assignment as one run scores it: every check's seeds under the run's ``secret``
    (None: the nbgrader path's fixed seeds) and what the records say of the secret, computed
    once for every submission."""

    assignment: Assignment
    secret: str | None = None
    seeds: dict[str, list[int]] = field(init=False)
    seed: str = field(init=False)

    def __post_init__(self) -> None:
        self.seeds = {gid: check.seeds(self.secret) for gid, check in self.assignment.checks.items()}
        self.seed = seed_id(self.secret)

    def fingerprint(self, submission: Submission) -> str:
        """What a re-run compares to keep a record: the scoring, the seeds, the submission."""
        return f"{self.assignment.digest[:16]}:{self.seed}:{submission.digest[:32]}"


def judge(grading: Grading, outcome: Outcome) -> Record:
    """The record of one outcome.

    Raises ``GraderError`` when a judge fails on answers that passed validation (a grader
    bug): the pair is then reported as a grader error and graded again on the next run.
    """
    cells = judge_cells(grading, outcome)
    judged = {gid for gid in outcome.seen if gid in grading.assignment.checks}
    return record(grading, outcome, blame(grading.assignment, cells, judged))


def judge_cells(grading: Grading, outcome: Outcome) -> list[CellResult]:
    """Every grade cell of the assignment, judged on the outcome's answers."""
    assignment = grading.assignment
    cells = []
    for cell in assignment.cells:
        gid = cell.grade_id
        check = assignment.checks.get(gid)
        if check is None:
            failures = [f"no hidden check is registered for grade cell {gid}"]
        elif gid in outcome.seen:
            try:
                failures = check.judge_seen(outcome.seen[gid], grading.seeds[gid])
            except checks.JudgeError as exc:
                raise GraderError(str(exc)) from exc
        elif gid in outcome.errors:
            failures = [outcome.errors[gid]]
        else:
            failures = [f"not graded: {outcome.reason or 'no result'}"]
        cells.append(CellResult(gid, assignment.exercise.get(gid, ""),
                                0.0 if failures else cell.points, cell.points,
                                assignment.hidden.get(gid, True), failures))
    return cells


def blame(assignment: Assignment, cells: list[CellResult], judged: set[str]) -> list[CellResult]:
    """The cells, with the failures of an exercise that calls a failing one
    (``checks.blame_earlier``) led by "fix that one first". Only a judged cell (its answers
    came back: ``judged``) whose check has ``blame`` (it judges values) makes its exercise a
    culprit, and only a judged cell is told: a run that died is not an earlier bug."""
    failed = {c.exercise for c in cells if c.failures and c.grade_id in judged
              and assignment.checks[c.grade_id].blame}
    for c in cells:
        if c.grade_id in judged:
            c.failures = checks.blame_earlier(assignment.checks[c.grade_id], c.failures, failed)
    return cells


def record(grading: Grading, outcome: Outcome, cells: list[CellResult]) -> Record:
    """The judged cells and the outcome, as the pair's ``Record``."""
    assignment = grading.assignment
    return Record(
        student_id=outcome.student_id, assignment_id=assignment.id,
        notebook=assignment.notebook, status=ERROR if outcome.reason else GRADED,
        reason=outcome.reason, notes=outcome.notes, cell_errors=outcome.cell_errors,
        score=sum(c.score for c in cells), max_score=assignment.max_score, cells=cells,
        sandbox=outcome.sandbox, wall=outcome.wall, seed=grading.seed,
        fingerprint=outcome.fingerprint)


SECRET_FILE = "grading-secret"


def run_secret(out: Path, secret: str | None = None) -> str:
    """The run's secret seed: given, else the one recorded in ``out``, else a new one that is
    recorded there (readable by the grader only), so a re-run reproduces the same grades."""
    path = Path(out) / SECRET_FILE
    if secret is None and path.is_file():
        secret = path.read_text().strip()
    if not secret:
        import secrets

        secret = secrets.token_hex(16)
    if not path.is_file() or path.read_text().strip() != secret:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as stream:
            stream.write(secret + "\n")
    return secret


def shared_secret(path: Path) -> str:
    """The secret in ``path`` (``--seed-file``), created once when missing: the shards of one
    class, started together on several machines, all read the one secret that was created.

    A new secret is written whole to a temporary file beside ``path`` and hard-linked into
    place, which fails when ``path`` exists: no shard ever reads a half-written file, and the
    first link wins (also on NFS). Where links are not supported, ``O_EXCL`` creates it.
    """
    import secrets
    import time

    path = Path(path)
    if not path.exists():
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as stream:
                stream.write(secrets.token_hex(16) + "\n")
                stream.flush()
                os.fsync(stream.fileno())
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass                                    # another shard created it first
            except OSError:                             # no hard links on this file system
                try:
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                except FileExistsError:
                    pass
                else:
                    with os.fdopen(fd, "w") as stream:
                        stream.write(Path(tmp).read_text())
        finally:
            os.unlink(tmp)
    while True:
        try:
            secret = path.read_text().strip()
            fresh = time.time() - path.stat().st_mtime < 10  # an O_EXCL creator writing it now
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--seed-file {path} cannot be read: {exc}") from None
        if secret or not fresh:
            break
        time.sleep(0.1)
    if not secret:
        raise UsageError(f"--seed-file {path} is empty: delete it (grade creates a new secret) "
                         "or write the class's secret in it")
    return secret
