"""The mutant sweep's table: the smallest wrong edits of every solution cell, judged in-process
(``autograder.testing.sweep``), counted by kind, with every survivor listed so a person can
tell an equivalent mutant from a gap.

    python benchmarks/mutant_sweep.py [--assignments 01-positional-encoding ...]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter

from autograder import course
from autograder.testing.sweep import sweep


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--assignments", nargs="*", default=None)
    args = parser.parse_args()
    totals, caught = Counter(), Counter()
    survivors = []
    for assignment_id in args.assignments or course.assignment_ids():
        results, lived = sweep(assignment_id)
        for kind, was_caught in results:
            totals[kind] += 1
            caught[kind] += was_caught
        survivors += [f"{assignment_id} {s.exercise} {s.kind} ({s.where})" for s in lived]
        print(f"{assignment_id}: done", file=sys.stderr, flush=True)
    print("| mutant | generated | caught |\n|---|---|---|")
    for kind in sorted(totals):
        print(f"| {kind} | {totals[kind]} | {caught[kind]} |")
    print(f"| all | {sum(totals.values())} | {sum(caught.values())} |")
    print(f"\n{len(survivors)} survivors (equivalent mutants or gaps):")
    print("\n".join(f"- {s}" for s in survivors))
    return 0


if __name__ == "__main__":
    sys.exit(main())
