"""The project's grader: observe submissions in a sandbox, judge them here.

A pipeline in the spirit of nbgrader's preprocessors, with Otter-Grader's separation of
what the instructor wrote from what is graded:

1. ``load_assignments``: the instructor's ``solutions/`` notebooks give the setup cells,
   the grade cells and their points (never the submission's metadata).
2. ``discover`` / ``shard``: the ``submitted/<student>/<assignment>/<notebook>.ipynb``
   layout becomes a sorted list of (student, assignment) pairs; ``--shard K/N`` takes
   every N-th pair starting at K.
3. ``read_submission``: bytes -> UTF-8 -> JSON -> nbformat 4 (version 3 is converted);
   each failure is a clear reason and zero points.
4. ``Zygote.run``: the grading program (``course.exercise_program``: setup cells, then
   the learner's solution cells matched by ``grade_id``) runs in a sandboxed process
   forked from a fork server that imported NumPy, PyTorch, Matplotlib and the check
   modules once (``autograder.sandbox``); each check's ``observe`` returns JSON.
5. ``judge``: here, in a process that never ran student code, ``check.judge_seen``
   compares the observations with the references; a grade cell scores its points
   when its check has no failure.
6. ``formats``: one ``results.json`` per pair, written atomically (a re-run skips pairs
   whose results match the same submission), then ``grades.csv``, feedback, summary.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from autograder import checks, course, formats, sandbox

VERSION = "1"
SIGNALS = {int(s): s.name for s in signal.Signals}


@dataclass
class Assignment:
    id: str
    notebook: str                       # the file name a submission must use
    source: nbformat.NotebookNode       # the instructor's notebook
    cells: list[course.GradeCell]       # grade cells and points, in notebook order
    exercise: dict[str, str]            # grade cell -> the solution cell it grades
    hidden: dict[str, bool]             # grade cell -> only hidden tests (not shown)
    digest: str                         # changes when the notebook or its checks change
    checks: dict = field(repr=False, default_factory=dict)

    @property
    def max_score(self) -> float:
        return sum(c.points for c in self.cells)


def load_assignments(root: Path = course.ROOT) -> dict[str, Assignment]:
    """Every assignment of ``solutions/`` with its checks (``autograder.checks.checks_for``)."""
    found = {}
    for assignment_id in course.assignments(root):
        path = course.notebook_path(assignment_id, root)
        source = course.read(path)
        try:
            registered = checks.checks_for(assignment_id)
        except (ImportError, KeyError) as exc:
            print(f"warning: {assignment_id} has no hidden checks ({exc}): not graded", file=sys.stderr)
            continue
        cells = course.grade_cells(source)
        hidden = {}
        for cell in source.cells:
            meta = course.nbgrader_meta(cell)
            if meta.get("grade"):
                visible = course.HIDDEN_REGION.sub("", cell.source)
                hidden[meta["grade_id"]] = not any(
                    line.strip() and not line.strip().startswith("#") for line in visible.splitlines())
        digest = score_digest(root, path, assignment_id)
        found[assignment_id] = Assignment(
            assignment_id, path.name, source, cells,
            {g: c.exercise for g, c in registered.items()}, hidden, digest, registered)
    return found


@dataclass(frozen=True)
class Pair:
    student_id: str
    assignment_id: str
    folder: Path


def discover(submitted: Path, assignments: dict[str, Assignment]) -> tuple[list[Pair], list[str]]:
    """Sorted (student, assignment) pairs under ``submitted``; notes on what was skipped."""
    pairs, notes = [], []
    for student in sorted(p for p in Path(submitted).iterdir() if p.is_dir()):
        for folder in sorted(p for p in student.iterdir() if p.is_dir()):
            if folder.name in assignments:
                pairs.append(Pair(student.name, folder.name, folder))
            else:
                notes.append(f"{student.name}/{folder.name}: not an assignment of this course, skipped")
    return pairs, notes


def parse_shard(text: str | None) -> tuple[int, int]:
    if not text:
        return 0, 1
    k, _, n = text.partition("/")
    try:
        k, n = int(k), int(n)
    except ValueError:
        raise ValueError(f"--shard {text}: expected K/N with 0 <= K < N") from None
    if not (n >= 1 and 0 <= k < n):
        raise ValueError(f"--shard {text}: expected K/N with 0 <= K < N")
    return k, n


def shard(pairs: list[Pair], k: int, n: int) -> list[Pair]:
    """Deterministic partition: the pairs sorted by (student, assignment), every n-th from k."""
    ordered = sorted(pairs, key=lambda p: (p.student_id, p.assignment_id))
    return ordered[k::n]


# --- reading a submission -----------------------------------------------------------------

@dataclass
class Submission:
    notebook: nbformat.NotebookNode | None
    digest: str
    reason: str = ""
    notes: list[str] = field(default_factory=list)


def read_submission(pair: Pair, assignment: Assignment) -> Submission:
    """Parse the learner's notebook defensively; any problem becomes a reason."""
    path = pair.folder / assignment.notebook
    others = sorted(p.name for p in pair.folder.glob("*.ipynb") if p.name != assignment.notebook)
    notes = [f"extra notebook(s) ignored: {', '.join(others)}"] if others else []
    if not path.is_file():
        found = f" (found {', '.join(others)})" if others else ""
        return Submission(None, "missing", f"missing notebook {assignment.notebook}{found}", notes)
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Submission(None, digest, f"{assignment.notebook} is not valid UTF-8 "
                          f"(byte {exc.start}): re-save the notebook from Jupyter", notes)
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        return Submission(None, digest, f"{assignment.notebook} is not valid JSON ({exc}): "
                          "the file is damaged; re-save it from Jupyter", notes)
    try:
        if not isinstance(data, dict) or "nbformat" not in data:
            raise ValueError("no 'nbformat' field")
        version = int(data.get("nbformat", 0))
        nb = nbformat.reads(text, as_version=4)
        if version != 4:
            notes.append(f"notebook format {version} converted to 4")
        if not isinstance(nb.get("cells"), list):
            raise ValueError("no cells")
    except Exception as exc:
        return Submission(None, digest, f"{assignment.notebook} is not a Jupyter notebook "
                          f"({type(exc).__name__}: {str(exc)[:200]})", notes)
    return Submission(nb, digest, "", notes)


def program(assignment: Assignment, nb) -> tuple[list[tuple[str, str]], list[str]]:
    """(label, code) cells to execute, and notes about the learner's solution cells."""
    notes = []
    solutions = {}
    for cell in nb.cells:
        meta = course.nbgrader_meta(cell) if isinstance(cell.get("metadata"), dict) else {}
        if isinstance(meta, dict) and meta.get("solution") and isinstance(meta.get("grade_id"), str):
            if cell.get("cell_type") != "code":
                notes.append(f"solution cell {meta['grade_id']} is not a code cell: not run")
                continue
            solutions[meta["grade_id"]] = cell
    program = []
    for cell in assignment.source.cells:
        meta = course.nbgrader_meta(cell)
        if meta.get("solution"):
            gid = meta["grade_id"]
            if gid in solutions:
                source = solutions[gid].get("source", "")
                program.append((gid, "".join(source) if isinstance(source, list) else str(source)))
            elif not any(note.startswith(f"solution cell {gid} ") for note in notes):
                notes.append(f"solution cell {gid} is missing (deleted, or its metadata changed)")
        elif course.is_setup(cell):
            program.append((meta["grade_id"], cell.source))
    return program, notes


# --- the fork server ------------------------------------------------------------------------

class GraderError(RuntimeError):
    """The grader itself failed (not the submission): the pair is retried on a re-run."""


class UsageError(ValueError):
    """The command was given something it cannot grade; nothing was written."""


class Zygote:
    """The fork server process (``autograder.sandbox``) and the protocol to use it."""

    def __init__(self, hidden: list[str]):
        self.hidden = hidden
        self.lock = threading.Lock()
        self.info: dict | None = None
        self._start()

    def _start(self) -> None:
        """Start the fork server; ``wait_ready`` waits for its imports."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = dict(os.environ)
        env.setdefault("MPLBACKEND", "Agg")
        env["OMP_NUM_THREADS"] = "1"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "autograder.sandbox", str(theirs.fileno()), json.dumps(self.hidden)],
            pass_fds=(theirs.fileno(),), env=env, cwd=str(course.ROOT),
            stdin=subprocess.DEVNULL)
        theirs.close()
        self.sock = ours
        self.info = None

    def wait_ready(self) -> dict:
        if self.info is None:
            ready = self.sock.recv(65536)
            if not ready:
                raise GraderError("the fork server failed to start (see its error above)")
            self.info = json.loads(ready)
        return self.info

    def close(self) -> None:
        if self.info is None and self.process.poll() is None:
            self.process.kill()  # still importing, never used
        try:
            self.sock.close()
        finally:
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def run(self, job: dict, payload: bytes, limit: int) -> list[dict]:
        """Send one job; return the records it wrote (the supervisor's status last)."""
        payload_r, payload_w = os.pipe()
        result_r, result_w = os.pipe()
        try:
            with self.lock:
                if self.process.poll() is not None:
                    self._start()
                self.wait_ready()
                socket.send_fds(self.sock, [json.dumps(job).encode()], [payload_r, result_w])
        except OSError as exc:
            for fd in (payload_r, payload_w, result_r, result_w):
                os.close(fd)
            raise GraderError(f"could not reach the fork server: {exc}") from exc
        os.close(payload_r)
        os.close(result_w)
        try:
            with os.fdopen(payload_w, "wb") as stream:
                stream.write(payload)
        except BrokenPipeError:
            pass
        reader = RecordReader(limit)
        deadline = time.monotonic() + float(job["timeout"]) + 120
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise GraderError("no answer from the sandbox supervisor")
                ready, _, _ = select.select([result_r], [], [], left)
                if not ready:
                    continue
                chunk = os.read(result_r, 1 << 20)
                if not chunk:
                    break
                reader.feed(chunk)
        finally:
            os.close(result_r)
        reader.feed(b"\n")
        records = reader.records
        status = [r for r in records if r["type"] == "status"]
        if not status:
            raise GraderError("the sandbox supervisor ended without a status")
        return [r for r in records if r["type"] != "status"] + [status[-1]]


class RecordReader:
    """Splits the result stream into JSON records, at a bounded cost to the grader.

    One line is one record. A line longer than ``sandbox.LINE_LIMIT`` is dropped as it
    arrives (never held whole) and one with more than ``sandbox.CONTAINER_LIMIT`` lists and
    objects is not parsed; each becomes an ``oversize`` record. Past ``total`` bytes only the
    supervisor's status line (written last, by a process that never ran student code) is
    still parsed.
    """

    def __init__(self, total: int):
        self.total = total
        self.size = 0
        self.records: list[dict] = []
        self.line = bytearray()
        self.dropping = 0  # bytes of the current, over-long line dropped so far

    def feed(self, chunk: bytes) -> None:
        self.size += len(chunk)
        *complete, rest = chunk.split(b"\n")
        for part in complete:
            self._end_line(part)
        self._extend(rest)

    def _extend(self, part: bytes) -> None:
        if self.dropping or len(self.line) + len(part) > sandbox.LINE_LIMIT:
            self.dropping += len(self.line) + len(part)
            self.line = bytearray()
        else:
            self.line += part

    def _end_line(self, part: bytes) -> None:
        self._extend(part)
        line, dropped = bytes(self.line), self.dropping
        self.line, self.dropping = bytearray(), 0
        if dropped:
            self.records.append({"type": "oversize", "size": dropped, "why": "long"})
            return
        if not line.strip():
            return
        if self.size > self.total and b'"type": "status"' not in line:
            if not any(r["type"] == "overflow" for r in self.records):
                self.records.append({"type": "overflow", "size": self.size})
            return
        if line.count(b"[") + line.count(b"{") > sandbox.CONTAINER_LIMIT:
            self.records.append({"type": "oversize", "size": len(line), "why": "nested"})
            return
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            return
        if isinstance(record, dict) and isinstance(record.get("type"), str):
            self.records.append(record)


# --- judging --------------------------------------------------------------------------------

def judge(assignment: Assignment, pair: Pair, submission: Submission,
          records: list[dict] | None, notes: list[str], timeout: float,
          secret: str | None = None) -> dict:
    """Turn what the sandbox reported into the pair's record (scores and reasons).

    Raises ``GraderError`` when a judge fails on answers that passed validation (a grader
    bug): the pair is then reported as a grader error and graded again on the next run.
    """
    seen, observe_errors, cell_errors = {}, {}, []
    notes = list(notes)
    reason = submission.reason
    isolation = {}
    status = {"type": "status", "exit": 0}
    where = "before running any cell"
    observing = None
    overflow = False
    for record in records or []:
        kind = record.get("type")
        if kind == "sandbox" and not isolation:  # the first one: written before student code ran
            isolation = {k: v for k, v in record.items() if k != "type"}
        elif kind == "cell":
            where = f"while running cell {str(record.get('label'))[:100]}"
        elif kind == "cell_error":
            cell_errors.append(f"cell {str(record.get('label'))[:100]}: "
                               f"{str(record.get('error'))[:2000]}")
        elif kind == "observing" and isinstance(record.get("grade_id"), str):
            observing = record["grade_id"]
            where = f"while checking {observing[:100]}"
        elif kind == "seen" and isinstance(record.get("grade_id"), str):
            if "seen" in record:
                seen[record["grade_id"]] = record["seen"]
            else:
                observe_errors[record["grade_id"]] = str(record.get("error"))[:2000]
        elif kind == "oversize":
            problem = (f"more than {formats.human(sandbox.LINE_LIMIT)} in one line or more than "
                       f"{sandbox.CONTAINER_LIMIT} nested lists and objects")
            if observing is not None:
                observe_errors[observing] = f"the answers to {observing} were not read: {problem}"
            else:
                notes.append(f"the student process wrote a record that was not read ({problem})")
        elif kind == "overflow":
            overflow = True
        elif kind == "status":
            status = record
    done = any(r.get("type") == "done" for r in records or [])
    if records is not None and not done:
        if overflow:
            reason = f"sent more than {formats.human(sandbox.TOTAL_LIMIT)} of results {where}"
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
        reason = f"sent more than {formats.human(sandbox.TOTAL_LIMIT)} of results"
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
        cells.append({"grade_id": gid, "exercise": assignment.exercise.get(gid, ""),
                      "score": 0.0 if failures else cell.points, "max_score": cell.points,
                      "hidden": assignment.hidden.get(gid, True), "failures": failures})
    failed = {c["exercise"] for c in cells if c["failures"]}
    for c in cells:
        if c["grade_id"] in assignment.checks:
            c["failures"] = checks.blame_earlier(assignment.checks[c["grade_id"]], c["failures"],
                                                 failed)
    return {
        "student_id": pair.student_id, "assignment_id": assignment.id,
        "notebook": assignment.notebook,
        "status": "error" if reason else "graded", "reason": reason,
        "notes": submission.notes + notes, "cell_errors": cell_errors,
        "score": sum(c["score"] for c in cells), "max_score": assignment.max_score,
        "cells": cells, "sandbox": isolation,
        "wall": status.get("wall"),
        "seed": seed_id(secret),
        "fingerprint": fingerprint(assignment, submission, secret),
    }


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


def score_digest(root: Path, assignment_path: Path, assignment_id: str) -> str:
    """A digest of everything that defines a score: the grading package's runtime sources
    (checks, references, the observation format, the scoring code; not the test support)
    and the grade cells and points of the instructor's notebook."""
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256(VERSION.encode())
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package).as_posix()
        if relative.startswith(("catalog/", "testing/")) or relative in ("tamper.py", "stock.py"):
            continue
        digest.update(relative.encode() + b"\0" + path.read_bytes())
    source = course.read(assignment_path)
    for cell in source.cells:
        meta = course.nbgrader_meta(cell)
        if meta.get("grade") or meta.get("solution") or course.is_setup(cell):
            digest.update(json.dumps([meta.get("grade_id"), meta.get("points"), cell.source],
                                     sort_keys=True).encode())
    return digest.hexdigest()


# --- the batch ------------------------------------------------------------------------------

def _slot_uids(jobs: int) -> list[int | None]:
    if os.geteuid() != 0:
        return [None] * jobs
    base = 200_000 + (os.getpid() % 30_000) * 64
    return [base + i for i in range(jobs)]


def _nproc_limit(extra: int = 64) -> int:
    """Processes allowed to a student process (its uid's count when not root)."""
    if os.geteuid() == 0:
        return extra
    uid, count = os.getuid(), 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        if fields.get("Uid", "").split()[:1] == [str(uid)]:
            count += int(fields.get("Threads", "1").strip() or 1)
    return count + extra


def check_arguments(submitted: Path, out: Path, jobs: int | None, timeout: float,
                    memory_mb: int, shard_spec: str | None) -> None:
    """``UsageError`` naming the problem, before anything is started or written."""
    if not submitted.exists():
        raise UsageError(f"{submitted} does not exist: give the nbgrader submitted/ folder "
                         "(<student_id>/<assignment_id>/<notebook>.ipynb)")
    if not submitted.is_dir():
        raise UsageError(f"{submitted} is not a folder: give the nbgrader submitted/ folder")
    if out == submitted or submitted in out.parents:
        raise UsageError(f"--out {out} is inside the submissions folder {submitted}: the results "
                         "would land among the students' work; choose a folder outside it")
    if out in submitted.parents:
        raise UsageError(f"--out {out} contains the submissions folder: choose a folder of its own")
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder")
    if not any(p.is_dir() for s in submitted.iterdir() if s.is_dir() for p in s.iterdir()):
        raise UsageError(f"no submissions under {submitted}: expected "
                         "<student_id>/<assignment_id>/<notebook>.ipynb")
    if jobs is not None and jobs < 1:
        raise UsageError(f"--jobs {jobs}: give at least 1")
    if not timeout > 0:
        raise UsageError(f"--timeout {timeout:g}: give a positive number of seconds")
    if memory_mb < 64:
        raise UsageError(f"--memory {memory_mb}: give at least 64 MiB")
    try:
        parse_shard(shard_spec)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def grade(submitted: Path, out: Path, jobs: int | None = None, timeout: float = 60.0,
          shard_spec: str | None = None, memory_mb: int = 2048, progress: bool = True,
          root: Path = course.ROOT, secret: str | None = None, fixed_seeds: bool = False,
          shared_network: bool = False) -> list[dict]:
    """Grade every submission (of this shard); write results; return the records.

    Inputs and weights come from ``secret`` (default: the one recorded in ``out``, else a
    new one recorded there); ``fixed_seeds`` uses the nbgrader path's fixed seeds instead.
    Without network isolation for student processes, ``jobs > 1`` is refused unless
    ``shared_network`` says that students graded at the same time may talk.
    """
    submitted, out = Path(submitted).resolve(), Path(out).resolve()
    check_arguments(submitted, out, jobs, timeout, memory_mb, shard_spec)
    out.mkdir(parents=True, exist_ok=True)
    hidden = sorted({str(root.resolve()), str(Path(course.__file__).resolve().parent),
                     str(submitted), str(out)})
    zygote = Zygote(hidden)  # starts importing while this process loads the assignments
    try:
        assignments = load_assignments(root)
    except BaseException:
        zygote.close()
        raise
    pairs, skipped = discover(submitted, assignments)
    pairs = shard(pairs, *parse_shard(shard_spec))
    jobs = max(1, jobs or os.cpu_count() or 1)
    secret = None if fixed_seeds else run_secret(out, secret)
    try:
        network = zygote.wait_ready().get("network", "none")
    except BaseException:
        zygote.close()
        raise
    if network == "none" and jobs > 1 and not shared_network:
        zygote.close()
        raise GraderError("student processes cannot be cut off from the network here (no network "
                          "namespace, no seccomp): students graded at the same time could talk. "
                          "Use --jobs 1, or --shared-network to accept that")

    records: dict[tuple[str, str], dict] = {}
    todo = []
    for pair in pairs:
        assignment = assignments[pair.assignment_id]
        previous = formats.load_record(out, pair.student_id, pair.assignment_id)
        if previous is not None:
            submission = read_submission(pair, assignment)
            if previous.get("fingerprint") == fingerprint(assignment, submission, secret):
                records[(pair.student_id, pair.assignment_id)] = previous
                continue
        todo.append(pair)

    bar = formats.Progress(len(pairs), done=len(records), enabled=progress)
    slots: queue.Queue = queue.Queue()
    for uid in _slot_uids(jobs):
        slots.put(uid)
    nproc = _nproc_limit()
    failures: list[str] = []


    def one(pair: Pair) -> None:
        assignment = assignments[pair.assignment_id]
        submission = read_submission(pair, assignment)
        records_in = None
        notes: list[str] = []
        if submission.notebook is not None:
            cells, notes = program(assignment, submission.notebook)
            payload = json.dumps({"assignment_id": assignment.id, "program": cells,
                                  "checks": {c.grade_id: assignment.checks[c.grade_id].seeds(secret)
                                             for c in assignment.cells
                                             if c.grade_id in assignment.checks}}).encode()
            uid = slots.get()
            try:
                records_in = zygote.run({"uid": uid, "timeout": timeout, "memory_mb": memory_mb,
                                         "nproc": nproc}, payload, sandbox.TOTAL_LIMIT)
            finally:
                slots.put(uid)
        record = judge(assignment, pair, submission, records_in, notes, timeout, secret)
        formats.write_record(out, record)
        records[(pair.student_id, pair.assignment_id)] = record
        bar.advance(error=record["status"] != "graded")

    def guarded(pair: Pair) -> None:
        try:
            one(pair)
        except Exception as exc:  # a grader failure: report it, keep going, retry on re-run
            failures.append(f"{pair.student_id}/{pair.assignment_id}: grader error: {exc}")
            bar.advance(error=True)

    try:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            list(pool.map(guarded, todo))
    finally:
        zygote.close()
        bar.finish()

    ordered = [records[(p.student_id, p.assignment_id)] for p in pairs
               if (p.student_id, p.assignment_id) in records]
    formats.write_outputs(out, ordered)
    if progress:
        if network == "none":
            print("warning: student processes were not cut off from the network (no network "
                  "namespace, no seccomp)", file=sys.stderr)
        for line in skipped + failures:
            print(line, file=sys.stderr)
        print(formats.summary_table(ordered, assignments), file=sys.stderr)
    if failures:
        raise GraderError(f"{len(failures)} submission(s) could not be graded; run again to retry")
    return ordered
