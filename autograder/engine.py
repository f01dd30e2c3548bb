"""The project's grader: observe submissions in a sandbox, judge them here.

Orchestration only, in the spirit of nbgrader's preprocessors; each step is a module of
its own (CONTRIBUTING.md, "The grader's map"):

1. ``assignments.load_assignments``: the instructor's ``solutions/`` notebooks give the
   setup cells, the grade cells and their points (never the submission's metadata).
2. ``submissions.discover`` / ``shard``: the ``submitted/<student>/<assignment>/<notebook>.ipynb``
   layout becomes a sorted list of (student, assignment) pairs; ``--shard K/N`` takes
   every N-th pair starting at K.
   ``discover`` also names everything under ``submitted/`` that is not graded, and picks a
   lone browser-renamed notebook (``name (2).ipynb``).
3. ``submissions.read`` (``read_submission``): bytes -> UTF-8 -> JSON -> nbformat 4; each
   failure is a clear reason and zero points.
4. ``grading.grade_one``: one submission to its ``records.Record`` (a re-run keeps the
   record of a pair whose submission, scoring and seeds are unchanged). The grading program
   (``course.exercise_program``: setup cells, then the learner's solution cells matched by
   ``grade_id``) runs in a sandboxed process forked from a fork server that imported NumPy,
   PyTorch, Matplotlib and the check modules once (``sandbox.server``, reached through
   ``sandbox.client.Zygote`` and this module's job slots); its messages become an
   ``outcome.Outcome`` that ``scoring.judge``, in a process that never ran student code,
   turns into the record.
5. ``formats``: one ``results.json`` per pair, written atomically, then ``grades.csv``,
   ``totals.csv`` and feedback; ``report``: the progress bar, the summary, and what was not
   graded.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import queue
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from autograder import course, formats, grading, report, scoring, submissions
from autograder.errors import GraderError, UsageError
from autograder.records import Record
from autograder.rubric import Assignment, load_assignments
from autograder.sandbox import client, protocol
from autograder.submissions import Pair

__all__ = ["Assignment", "GraderError", "UsageError", "check_arguments", "grade", "load_assignments"]


NO_LANDLOCK = (
    "Landlock is unavailable here (Linux < 5.13, or refused by this container): student code "
    "runs without the filesystem sandbox. It can read every file that its user may read "
    "(when the grader runs as root, each student process has a uid of its own and no file "
    "privilege beyond it; otherwise it has the grader's user and can read the grading "
    "secret and write what that user may write): world-readable files include, unless their "
    "permissions say otherwise, the instructor's notebooks in solutions/, the references "
    "in autograder/reference/ and the other students' submissions, and students can leave "
    "files for each other in world-writable folders such as /tmp.")


def _load_references() -> None:
    """Import every reference before any student runs: what the judges run is what was on
    disk before grading, whatever a student process could write later."""
    import importlib
    import pkgutil

    from autograder import reference

    for module in pkgutil.iter_modules(reference.__path__):
        importlib.import_module(f"autograder.reference.{module.name}")


@contextlib.contextmanager
def _loading():
    """Load what lives as long as the grader (torch, the references, the assignments)
    without cyclic garbage collection, then freeze it (``_frozen_while``): collections
    would walk that heap again and again, about 0.3 s each with torch loaded, holding the
    lock that every judging thread needs."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def _frozen_while(grade):
    """``grade`` leaves the collector as it found it: what it froze (``_loading``) is
    unfrozen when it returns, unless the caller had frozen objects itself."""
    @functools.wraps(grade)
    def wrapper(*args, **kwargs):
        frozen = gc.get_freeze_count()
        try:
            return grade(*args, **kwargs)
        finally:
            if not frozen:
                gc.unfreeze()
    return wrapper


def check_arguments(submitted: Path, out: Path, jobs: int | None, timeout: float,
                    memory_mb: int, shard_spec: str | None, seed_file: Path | None = None,
                    secret: str | None = None, fixed_seeds: bool = False) -> None:
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
        submissions.parse_shard(shard_spec)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if sum(map(bool, (seed_file, secret, fixed_seeds))) > 1:
        raise UsageError("give one of --seed-file, --seed and --fixed-seeds")
    if seed_file is not None:
        if seed_file.is_dir():
            raise UsageError(f"--seed-file {seed_file} is a folder: give a file (created when missing)")
        if not seed_file.parent.is_dir():
            raise UsageError(f"--seed-file {seed_file}: the folder {seed_file.parent} does not exist")


@_frozen_while
def grade(submitted: Path, out: Path, jobs: int | None = None, timeout: float = 60.0,
          shard_spec: str | None = None, memory_mb: int = 2048, progress: bool = True,
          root: Path = course.ROOT, secret: str | None = None, fixed_seeds: bool = False,
          shared_network: bool = False, seed_file: Path | None = None,
          without_landlock: bool = False) -> list[Record]:
    """Grade every submission (of this shard); write results; return the records.

    Inputs and weights come from ``secret``, or from ``seed_file`` (created once with a new
    secret when missing: the shards of one class share it), else from the one recorded in
    ``out``, else a new one recorded there; ``fixed_seeds`` uses the nbgrader path's fixed
    seeds instead.
    Without network isolation for student processes, ``jobs > 1`` is refused unless
    ``shared_network`` says that students graded at the same time may talk. Without
    Landlock, grading is refused unless ``without_landlock`` accepts what is at stake
    (``NO_LANDLOCK``).
    """
    submitted, out = Path(submitted).resolve(), Path(out).resolve()
    seed_file = Path(seed_file).absolute() if seed_file is not None else None
    check_arguments(submitted, out, jobs, timeout, memory_mb, shard_spec, seed_file, secret,
                    fixed_seeds)
    out.mkdir(parents=True, exist_ok=True)
    private = sorted({str(root.resolve()), str(Path(course.__file__).resolve().parent),
                      str(submitted), str(out)} | ({str(seed_file)} if seed_file else set()))
    zygote = client.Zygote(private)  # starts importing while this process loads the assignments
    try:
        with _loading():
            assignments = load_assignments(root)
            _load_references()
    except BaseException:
        zygote.close()
        raise
    pairs, skipped = submissions.discover(submitted, assignments)
    pairs = submissions.shard(pairs, *submissions.parse_shard(shard_spec))
    jobs = max(1, jobs or os.cpu_count() or 1)
    if seed_file is not None:
        try:
            secret = scoring.shared_secret(seed_file)
        except BaseException:
            zygote.close()
            raise
    secret = None if fixed_seeds else scoring.run_secret(out, secret)
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
    if not zygote.wait_ready().get("landlock") and not without_landlock:
        zygote.close()
        raise GraderError(NO_LANDLOCK + " Use --without-landlock to grade anyway.")

    gradings = {a.id: scoring.Grading(a, secret) for a in assignments.values()}
    sandbox = _Slots(zygote, jobs, timeout, memory_mb)
    # what an earlier run into ``out`` graded: grade_one keeps it when nothing changed
    earlier = {p: formats.load_record(out, p.student_id, p.assignment_id) for p in pairs}
    records: dict[tuple[str, str], Record] = {}
    bar = report.Progress(len(pairs), resumed=sum(r is not None for r in earlier.values()),
                          enabled=progress)
    failures: list[str] = []

    def one(pair: Pair) -> None:
        scored_as = gradings[pair.assignment_id]
        submission = submissions.read(pair, scored_as.assignment)
        record = grading.grade_one(scored_as, submission, sandbox, earlier[pair])
        if record is earlier[pair]:
            bar.advance(kept=True)
        else:
            formats.write_record(out, record)
            bar.advance(error=not record.graded)
        records[(pair.student_id, pair.assignment_id)] = record

    def guarded(pair: Pair) -> None:
        try:
            one(pair)
        except Exception as exc:  # a grader failure: report it, keep going, retry on re-run
            failures.append(f"{pair.student_id}/{pair.assignment_id}: grader error: {exc}")
            bar.advance(error=True)

    try:
        # one worker more than the job slots: a submission is judged here while the next one
        # of its slot already runs in the sandbox (``slots`` still bounds those to ``jobs``)
        with ThreadPoolExecutor(max_workers=jobs + 1) as pool:
            list(pool.map(guarded, pairs))
    finally:
        zygote.close()
        bar.finish()

    ordered = [records[(p.student_id, p.assignment_id)] for p in pairs
               if (p.student_id, p.assignment_id) in records]
    formats.write_outputs(out, ordered)
    if progress:
        if not zygote.info.get("landlock"):
            print("warning: " + NO_LANDLOCK, file=sys.stderr)
        if network == "none":
            print("warning: student processes were not cut off from the network (no network "
                  "namespace, no seccomp)", file=sys.stderr)
        print(report.summary_table(ordered, assignments), file=sys.stderr)
    # named even with --quiet: what was not graded, and why
    print(report.not_graded(skipped, ordered, failures), file=sys.stderr, end="")
    if failures:
        raise GraderError(f"{len(failures)} submission(s) could not be graded; run again to retry")
    return ordered


class _Slots:
    """The engine's sandbox for ``grading.grade_one``: each run takes a job slot (its uid,
    when the grader runs as root) and the fork server runs the payload under the run's
    limits."""

    def __init__(self, zygote: client.Zygote, jobs: int, timeout: float, memory_mb: int):
        self.zygote, self.timeout, self.memory_mb = zygote, timeout, memory_mb
        self.nproc = client.nproc_limit()
        self.slots: queue.Queue = queue.Queue()
        for uid in client.slot_uids(jobs):
            self.slots.put(uid)

    def run(self, payload: bytes) -> list[protocol.Message]:
        uid = self.slots.get()
        try:
            return self.zygote.run(protocol.job(uid, self.timeout, self.memory_mb, self.nproc),
                                   payload, self.timeout)
        finally:
            self.slots.put(uid)
