"""Broken and misbehaving submissions (``testkit.tamper.BROKEN``) through our grader.

Prints a markdown table: what each submission does, the points it got, and the reason or
notes its results carry. The honest submissions graded in the same batch must keep their
grades.

    python benchmarks/robustness_table.py [--timeout 10] [--memory 1024]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import _root  # noqa: F401  (testkit: the test support beside the package)

from autograder import course, engine
from testkit import tamper


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--timeout", type=float, default=10)
    parser.add_argument("--memory", type=int, default=1024)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="robustness-"))
    submitted = workdir / "submitted"
    tamper.write(submitted, "honest_solution", tamper.Submission("s", "", tamper.notebook))
    tamper.write(submitted, "honest_untouched", tamper.Submission(
        "u", "", lambda: course.notebook_path(tamper.ASSIGNMENT, released=True).read_bytes()))
    for item, _ in tamper.BROKEN:
        tamper.write(submitted, item.name, item)
    start = time.monotonic()
    records = {r.student_id: r for r in engine.grade(
        submitted, workdir / "results", timeout=args.timeout, memory_mb=args.memory, progress=False)}
    elapsed = time.monotonic() - start
    print("| submission | what it does | expected | points | reason or notes in its results |")
    print("|---|---|---|---|---|")
    for item, expected in tamper.BROKEN:
        r = records[item.name]
        errors = [e.split(":")[0] + ": " + e.strip().splitlines()[-1] if "\n" in e.strip() else e
                  for e in r.cell_errors]
        said = r.reason or "; ".join(r.notes + errors)
        print(f"| `{item.name}` | {item.description} | {expected} | {r.score:g} / {r.max_score:g} | "
              f"{said.replace('|', '/')} |")
    honest = {s: records[s].score for s in ("honest_solution", "honest_untouched")}
    print(f"\n{len(records)} submissions in {elapsed:.1f} s (timeout {args.timeout:g} s, memory "
          f"{args.memory} MiB); honest grades in the same batch: {honest}")
    best = engine.load_assignments()[tamper.ASSIGNMENT].max_score
    return 0 if honest == {"honest_solution": best, "honest_untouched": 0.0} else 1


if __name__ == "__main__":
    sys.exit(main())
