"""What the fresh state costs a submission: its checks observed in fresh forks, or in place.

The project's grader observes each check of a submission in a fork of the student process
taken after its cells ran (``sandbox.server.observe_fresh``), so that nothing a module or
a function remembers crosses from one check to the next. This script measures what that
costs against the same process observing every check in place, one after the other (what
nbgrader's kernel does), on the same submissions in the same run:

- a measuring process imports what the grader's fork server imports
  (``sandbox.server.preload``);
- for every distinct submission of the class and each way of observing, it forks a
  "student" (as the fork server forks a student process), which runs the grading program,
  then observes and encodes every check, fresh (``observe_fresh``) or in place
  (``Check.observe_in``); the student times that, its wall time and the CPU time of itself
  and of its forks;
- the difference, weighted by how many submissions of the class share a program, is the
  cost of the fresh states per submission (median of ``--repeats``).

It runs outside the sandbox (no Landlock, seccomp or namespaces: they cost the same either
way). ``grading_throughput.py`` calls ``measure`` on the class it graded.

    python benchmarks/fresh_state_cost.py SUBMITTED_DIR [--repeats 3] [--per check|case]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
from pathlib import Path

MODES = ("in place", "fresh")


def programs(submitted: Path) -> list[dict]:
    """The distinct grading programs of a ``submitted/`` folder, with how many submissions
    share each (the seeds are the fixed ones: the work is the same with a secret)."""
    from autograder import course, submissions
    from autograder.rubric import load_assignments

    assignments = load_assignments(course.ROOT)
    pairs, _ = submissions.discover(submitted, assignments)
    found: dict[str, dict] = {}
    for pair in pairs:
        assignment = assignments[pair.assignment_id]
        submission = submissions.read(pair, assignment)
        if submission.notebook is None:
            continue
        program = course.exercise_program(assignment.source, submission.notebook)
        seeds = {c.grade_id: assignment.checks[c.grade_id].seeds()
                 for c in assignment.cells if c.grade_id in assignment.checks}
        key = json.dumps([pair.assignment_id, program.cells])
        if key not in found:
            found[key] = {"assignment_id": pair.assignment_id, "program": program.cells,
                          "checks": seeds, "count": 0}
        found[key]["count"] += 1
    return list(found.values())


def measure(submitted: Path, repeats: int = 3, per: str = "check") -> dict:
    """The cost of fresh states on the class in ``submitted``: per assignment and for the
    class, mean seconds per submission (wall, CPU) in place, fresh, and their difference."""
    from autograder.sandbox import client

    jobs = programs(submitted)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(client.SETTINGS, AUTOGRADER_FRESH_PER=per,  # the fork server's settings
               PYTHONPATH=os.pathsep.join(os.path.abspath(p or ".") for p in sys.path))
    run = subprocess.run([sys.executable, os.path.abspath(__file__), "--measuring-process",
                          "--repeats", str(repeats)], input=json.dumps(jobs).encode(),
                         capture_output=True, env=env, cwd=os.path.dirname(os.path.abspath(__file__)))
    if run.returncode != 0:
        raise RuntimeError(f"the measuring process failed:\n{run.stderr.decode()[-3000:]}")
    timings = json.loads(run.stdout)
    by_assignment: dict[str, dict] = {}
    for job, timing in zip(jobs, timings, strict=True):
        row = by_assignment.setdefault(job["assignment_id"], {
            "submissions": 0, "checks": len(job["checks"]),
            **{f"{mode} {unit}": 0.0 for mode in MODES for unit in ("wall", "cpu")}})
        row["submissions"] += job["count"]
        for mode in MODES:
            for unit in ("wall", "cpu"):
                row[f"{mode} {unit}"] += job["count"] * statistics.median(
                    t[unit] for t in timing[mode])
    total = {"submissions": sum(r["submissions"] for r in by_assignment.values())}
    for key in (f"{mode} {unit}" for mode in MODES for unit in ("wall", "cpu")):
        total[key] = sum(r[key] for r in by_assignment.values()) / total["submissions"]
        for row in by_assignment.values():
            row[key] /= row["submissions"]
    for row in (*by_assignment.values(), total):
        for unit in ("wall", "cpu"):
            row[f"cost {unit}"] = row[f"fresh {unit}"] - row[f"in place {unit}"]
    return {"assignments": by_assignment, "class": total, "repeats": repeats, "per": per,
            "distinct": len(jobs)}


def table(result: dict) -> str:
    """``measure``'s result as a Markdown table (milliseconds per submission)."""
    lines = [f"Fresh states, per submission ({result['distinct']} distinct programs, median of "
             f"{result['repeats']}, one fork per {result['per']}; observing and encoding every "
             "check, CPU of the student and its forks):", "",
             "| assignment | submissions | checks | in place wall / CPU (ms) | fresh wall / CPU (ms) "
             "| cost wall / CPU (ms) |", "|---|---|---|---|---|---|"]
    rows = [*result["assignments"].items(), ("class", result["class"])]
    for name, row in rows:
        cells = [f"{row[f'{what} wall'] * 1e3:.0f} / {row[f'{what} cpu'] * 1e3:.0f}"
                 for what in ("in place", "fresh", "cost")]
        lines.append(f"| {name} | {row['submissions']} | {row.get('checks', '')} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def _measuring_process(repeats: int) -> None:
    """Reads the programs on stdin, writes their timings on stdout (``measure``)."""
    import gc
    import resource
    import time

    from autograder.sandbox import protocol, server

    checks = server.preload()
    jobs = json.loads(sys.stdin.buffer.read())
    devnull = os.open(os.devnull, os.O_WRONLY)

    def student(job: dict, mode: str) -> dict:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(read)
                signal.alarm(120)
                sys.stdout = sys.stderr = open(os.devnull, "w")
                namespace = {"__name__": "__main__", "__builtins__": __builtins__}
                for label, code in job["program"]:
                    try:
                        exec(compile(code, f"<cell {label}>", "exec"), namespace)
                    except BaseException:
                        pass
                gc.freeze()
                children = resource.getrusage(resource.RUSAGE_CHILDREN)
                wall, cpu = time.perf_counter(), time.process_time()
                for grade_id, seeds in job["checks"].items():
                    check = checks[job["assignment_id"]][grade_id]
                    if mode == "fresh":
                        answers = server.observe_fresh(check, namespace, seeds, devnull)
                    else:
                        try:
                            answers = json.dumps({str(i): check.observe_case(namespace, i, s)
                                                  for i, s in enumerate(seeds)}).encode()
                        except BaseException as exc:
                            answers = json.dumps({"error": str(exc)}).encode()
                    protocol.encode_seen(grade_id, answers)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                os.write(write, json.dumps({
                    "wall": time.perf_counter() - wall,
                    "cpu": time.process_time() - cpu + (after.ru_utime + after.ru_stime)
                    - (children.ru_utime + children.ru_stime)}).encode())
            finally:
                os._exit(0)
        os.close(write)
        with os.fdopen(read, "rb") as stream:
            data = stream.read()
        os.waitpid(pid, 0)
        return json.loads(data) if data else {"wall": float("nan"), "cpu": float("nan")}

    timings = [{mode: [] for mode in MODES} for _ in jobs]
    for repeat in range(repeats):
        for job, timing in zip(jobs, timings, strict=True):
            for mode in (MODES if repeat % 2 == 0 else MODES[::-1]):
                timing[mode].append(student(job, mode))
    sys.stdout.write(json.dumps(timings))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("submitted", type=Path, nargs="?")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--per", choices=("check", "case"), default="check")
    parser.add_argument("--measuring-process", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measuring_process:
        _measuring_process(args.repeats)
        return 0
    if args.submitted is None:
        parser.error("give the submitted/ folder of a class")
    print(table(measure(args.submitted.resolve(), args.repeats, args.per)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
