"""Tampering: the same attack submissions graded by stock nbgrader and by the project's grader.

Every attack is the honest wrong solution of chapter 01 plus an attack on the grading
machinery (``autograder.tamper.ATTACKS``). Prints a markdown table of the points each grading
path gives (out of the assignment's maximum), next to what the honest wrong solution earns.

    python benchmarks/tamper_table.py [--workdir DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from autograder import engine, tamper
from autograder.stock import StockCourse


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--only", nargs="*", help="attack names (default: all)")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="tamper-"))
    assignment = tamper.ASSIGNMENT
    subjects = [tamper.Submission("honest_wrong", "the honest wrong solution (baseline)",
                                  tamper.honest_wrong)]
    subjects += [a for a in tamper.ATTACKS if not args.only or a.name in args.only]

    stock = StockCourse(workdir / "stock")
    stock.generate(assignment)
    for subject in subjects:
        tamper.write(stock.dir / "submitted", subject.name, subject)
    ours_dir = workdir / "ours"
    for subject in subjects:
        tamper.write(ours_dir / "submitted", subject.name, subject)

    start = time.monotonic()
    stock_scores = {}
    for subject in subjects:  # one autograde per student: an attack may kill nbgrader itself
        result = stock.autograde(assignment, f"--student={subject.name}")
        try:
            stock_scores[subject.name] = sum(s for s, _ in stock.scores(assignment, subject.name).values())
        except Exception:
            stock_scores[subject.name] = None
        if result.returncode != 0:
            print(f"nbgrader autograde {subject.name}: exit {result.returncode}", file=sys.stderr)
    stock_time = time.monotonic() - start

    start = time.monotonic()
    records = engine.grade(ours_dir / "submitted", ours_dir / "results", timeout=30, progress=False)
    ours_time = time.monotonic() - start
    ours = {r["student_id"]: r for r in records}
    best = engine.load_assignments()[assignment].max_score

    baseline_stock = stock_scores["honest_wrong"]
    baseline_ours = ours["honest_wrong"]["score"]

    def show(score, baseline):
        if score is None:
            return "not graded (nbgrader failed)"
        flag = " **(gains)**" if baseline is not None and score > baseline else ""
        return f"{score:g} / {best:g}{flag}"

    print("| submission | attack | stock `nbgrader autograde` | `python -m autograder grade` |")
    print("|---|---|---|---|")
    for subject in subjects:
        record = ours[subject.name]
        note = f" ({record['reason']})" if record["reason"] else ""
        print(f"| `{subject.name}` | {subject.description} | "
              f"{show(stock_scores[subject.name], baseline_stock)} | "
              f"{show(record['score'], baseline_ours)}{note} |")
    gains_stock = sum(1 for s in subjects[1:] if (stock_scores[s.name] or 0) > (baseline_stock or 0))
    gains_ours = sum(1 for s in subjects[1:] if ours[s.name]["score"] > baseline_ours)
    print(f"\n{len(subjects) - 1} attacks; more than the honest wrong solution: "
          f"stock nbgrader {gains_stock}, our grader {gains_ours}. "
          f"(stock {stock_time:.0f} s, ours {ours_time:.1f} s)")
    return 0 if gains_ours == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
