"""Judging: what the sandbox reported for one pair becomes its ``Record``.

Runs in the grader's process, which never ran student code: ``check.judge_seen`` compares
the observations with the references; a grade cell scores its points when its check has
no failure. Also the run's secret (``run_secret``) and what a record remembers of it.
"""

from __future__ import annotations

import hashlib
import os
import signal
from pathlib import Path

from autograder import checks
from autograder.assignments import Assignment
from autograder.errors import GraderError, UsageError
from autograder.records import ERROR, GRADED, CellResult, Record
from autograder.sandbox import protocol
from autograder.submissions import Pair, Submission

SIGNALS = {int(s): s.name for s in signal.Signals}


def judge(assignment: Assignment, pair: Pair, submission: Submission,
          records: list[dict] | None, notes: list[str], timeout: float,
          secret: str | None = None) -> Record:
    """Turn the messages of one run (``protocol``; None: nothing was run) into the pair's record.

    Raises ``GraderError`` when a judge fails on answers that passed validation (a grader
    bug): the pair is then reported as a grader error and graded again on the next run.
    """
    seen, observe_errors, cell_errors = {}, {}, []
    notes = list(notes)
    reason = submission.reason
    isolation = {}
    status = protocol.status(False, None, 0, None)
    where = "before running any cell"
    observing = None
    overflow = False
    for record in records or []:
        kind = record.get("type")
        if kind == protocol.SANDBOX and not isolation:  # the first one: written before student code ran
            isolation = {k: v for k, v in record.items() if k != "type"}
        elif kind == protocol.CELL:
            where = f"while running cell {str(record.get('label'))[:100]}"
        elif kind == protocol.CELL_ERROR:
            cell_errors.append(f"cell {str(record.get('label'))[:100]}: "
                               f"{str(record.get('error'))[:2000]}")
        elif kind == protocol.OBSERVING and isinstance(record.get("grade_id"), str):
            observing = record["grade_id"]
            where = f"while checking {observing[:100]}"
        elif kind == protocol.SEEN and isinstance(record.get("grade_id"), str):
            if "seen" in record:
                seen[record["grade_id"]] = record["seen"]
            else:
                observe_errors[record["grade_id"]] = str(record.get("error"))[:2000]
        elif kind == protocol.OVERSIZE:
            problem = (f"more than {protocol.human(protocol.LINE_LIMIT)} in one line or more than "
                       f"{protocol.CONTAINER_LIMIT} nested lists and objects")
            if observing is not None:
                observe_errors[observing] = f"the answers to {observing} were not read: {problem}"
            else:
                notes.append(f"the student process wrote a record that was not read ({problem})")
        elif kind == protocol.OVERFLOW:
            overflow = True
        elif kind == protocol.STATUS:
            status = record
    done = any(r.get("type") == protocol.DONE for r in records or [])
    if records is not None and not done:
        if overflow:
            reason = f"sent more than {protocol.human(protocol.TOTAL_LIMIT)} of results {where}"
        elif status.get("timed_out"):
            reason = (f"timed out after {timeout:g} s {where} (an infinite loop, a call that never "
                      "returns, or a fork bomb?)")
        elif status.get("signal"):
            name = SIGNALS.get(status["signal"], f"signal {status['signal']}")
            hint = " (out of memory?)" if name in ("SIGKILL", "SIGABRT") else ""
            reason = f"the student process crashed with {name}{hint} {where}"
        else:
            reason = (f"the student process exited with code {status.get('exit')} {where} "
                      "(sys.exit/os._exit in a solution cell?)")
    elif overflow:
        reason = f"sent more than {protocol.human(protocol.TOTAL_LIMIT)} of results"
    cells = []
    for cell in assignment.cells:
        gid = cell.grade_id
        check = assignment.checks.get(gid)
        if check is None:
            failures = [f"no hidden check is registered for grade cell {gid}"]
        elif gid in seen:
            try:
                failures = check.judge_seen(seen[gid], check.seeds(secret))
            except checks.JudgeError as exc:
                raise GraderError(str(exc)) from exc
        elif gid in observe_errors:
            failures = [observe_errors[gid]]
        else:
            failures = [f"not graded: {reason or 'no result'}"]
        cells.append(CellResult(gid, assignment.exercise.get(gid, ""),
                                0.0 if failures else cell.points, cell.points,
                                assignment.hidden.get(gid, True), failures))
    failed = {c.exercise for c in cells if c.failures and c.grade_id in assignment.checks
              and assignment.checks[c.grade_id].blame}
    for c in cells:
        if c.grade_id in assignment.checks:
            c.failures = checks.blame_earlier(assignment.checks[c.grade_id], c.failures, failed)
    return Record(
        student_id=pair.student_id, assignment_id=assignment.id, notebook=assignment.notebook,
        status=ERROR if reason else GRADED, reason=reason,
        notes=submission.notes + notes, cell_errors=cell_errors,
        score=sum(c.score for c in cells), max_score=assignment.max_score,
        cells=cells, sandbox=isolation, wall=status.get("wall"), seed=seed_id(secret),
        fingerprint=fingerprint(assignment, submission, secret))


def seed_id(secret: str | None) -> str:
    """What the results record of the run's secret: a digest that names it, never the secret."""
    return "fixed" if secret is None else hashlib.sha256(secret.encode()).hexdigest()[:16]


def fingerprint(assignment: Assignment, submission: Submission, secret: str | None = None) -> str:
    return f"{assignment.digest[:16]}:{seed_id(secret)}:{submission.digest[:32]}"


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
