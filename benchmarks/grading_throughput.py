"""Throughput: a whole class graded by stock ``nbgrader autograde`` and by our grader.

The class: ``--students`` students x every assignment present, a mix of the reference
solution, the untouched learner notebook and every entry of the bug catalog (wrong and
alternative correct ones). Both paths grade the same files on the same machine in one run
(ours ``--ours-runs`` times, the ratio with their median); the script prints the wall times,
the ratio, and whether every grade cell got the same score, then what the fresh states (each
check observed in its own fork of the student process) cost a submission of this class
against observing in place (``fresh_state_cost.py``; ``--fresh-repeats 0`` skips it).

    python benchmarks/grading_throughput.py --students 100 [--jobs N] [--assignments ID ...]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import _root  # noqa: F401  (testkit: the test support beside the package)
import fresh_state_cost

from autograder import course, engine
from testkit import catalog, program
from testkit.stock import StockCourse


def build_class(stock: StockCourse, assignments: list[str], students: int) -> dict:
    """Submit the class; returns {(student, assignment): kind}."""
    kinds = {}
    for assignment_id in assignments:
        cases = catalog.cases(assignment_id)
        untouched = course.notebook_path(assignment_id, released=True).read_bytes()
        solution = program.submission(assignment_id)
        for i in range(students):
            student = f"student{i:04d}"
            if i % 4 == 0 or not cases:
                nb, kind = solution, "solution"
            elif i % 4 == 1:
                nb, kind = untouched, "untouched"
            else:
                case = cases[i % len(cases)]
                nb, kind = program.submission(assignment_id, {case.cell: case.source}), case.name
            stock.submit(student, assignment_id, nb)
            kinds[(student, assignment_id)] = kind
    return kinds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--students", type=int, default=100)
    parser.add_argument("--assignments", nargs="*", default=None)
    parser.add_argument("--jobs", type=int, default=None, help="our grader's parallelism (default: cores)")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--fixed-seeds", action="store_true",
                        help="our grader with the nbgrader path's fixed seeds (default: a secret, "
                        "as in real grading; the work is the same)")
    parser.add_argument("--ours-runs", type=int, default=3,
                        help="runs of our grader (a few seconds each, so one burst of load on "
                        "the machine can double one); the ratio uses their median")
    parser.add_argument("--fresh-repeats", type=int, default=3,
                        help="repeats of the fresh-state measurement (0: skip it)")
    args = parser.parse_args()
    if args.ours_runs < 1:
        parser.error("--ours-runs: give at least 1")
    assignments = args.assignments or course.assignment_ids()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="throughput-"))
    stock = StockCourse(workdir / "stock")
    for assignment_id in assignments:
        stock.generate(assignment_id)
    kinds = build_class(stock, assignments, args.students)
    ours_submitted = workdir / "ours" / "submitted"
    shutil.copytree(stock.dir / "submitted", ours_submitted)
    n = len(kinds)
    print(f"{args.students} students x {len(assignments)} assignment(s) = {n} submissions; "
          f"{os.cpu_count()} cores; load average before: {os.getloadavg()[0]:.1f}", flush=True)

    start = time.monotonic()
    for assignment_id in assignments:
        result = stock.autograde(assignment_id)
        if result.returncode != 0:
            print(f"nbgrader autograde {assignment_id} exited {result.returncode}", file=sys.stderr)
    stock_time = time.monotonic() - start
    print(f"stock nbgrader autograde: {stock_time:.1f} s", flush=True)

    times, disagree = [], []
    for run in range(args.ours_runs):  # each into a results folder of its own: no resuming
        start = time.monotonic()
        records = engine.grade(ours_submitted, workdir / "ours" / f"results-{run}", jobs=args.jobs,
                               progress=False, fixed_seeds=args.fixed_seeds)
        times.append(time.monotonic() - start)
        print(f"python -m autograder grade (run {run + 1} of {args.ours_runs}): {times[-1]:.1f} s "
              f"(load average after: {os.getloadavg()[0]:.1f})", flush=True)
        for record in records:
            key = (record.student_id, record.assignment_id)
            theirs = stock.scores(record.assignment_id, record.student_id)
            ours = {c.grade_id: (c.score, c.max_score) for c in record.cells}
            if ours != theirs:
                disagree.append(f"{key} ({kinds[key]}, run {run + 1}): ours {ours} nbgrader {theirs}")
    ours_time = statistics.median(times)
    print()
    print("| grader | submissions | wall time (s) | submissions/s |")
    print("|---|---|---|---|")
    print(f"| stock `nbgrader autograde` | {n} | {stock_time:.1f} | {n / stock_time:.2f} |")
    print(f"| `python -m autograder grade` (median) | {len(records)} | {ours_time:.1f} | "
          f"{len(records) / ours_time:.2f} |")
    print(f"\nspeed-up: {stock_time / ours_time:.1f}x (our median of {len(times)}; our first run "
          f"alone: {stock_time / times[0]:.1f}x); identical scores on every grade cell: "
          f"{'all' if not disagree else 'not all'} {n} submissions in every run")
    for line in disagree[:20]:
        print("  DIFFERENT", line)
    if args.fresh_repeats > 0:
        fresh = fresh_state_cost.measure(ours_submitted, args.fresh_repeats)
        print()
        print(fresh_state_cost.table(fresh))
        jobs = max(1, args.jobs or os.cpu_count() or 1)
        cost = fresh["class"]["cost cpu"]
        print(f"\nfresh states: {cost * 1e3:.0f} ms of CPU per submission; over {jobs} job slot(s), "
              f"about {n * cost / jobs:.1f} s ({n * cost / jobs / ours_time:.0%}) of our "
              f"{ours_time:.1f} s")
    return 0 if not disagree and len(records) == n else 1


if __name__ == "__main__":
    sys.exit(main())
