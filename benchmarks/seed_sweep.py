"""Verdicts under many secrets: the reference solution and every catalog case (wrong and
correct, mutants included) judged in-process with the fixed seeds of the nbgrader path and
with the seeds that each of many secrets derives, as the project's grader draws them.

A *flip* is a verdict that depends on the secret:

- a correct case (or the solution) that fails some grade cell;
- a wrong case that passes every grade cell of its own exercise (its bug does not show);
- a grade cell of a case's own exercise, or of an exercise that does not call the case's
  cell (``Check.needs``), whose verdict differs from the fixed-seed one (what
  ``tests/test_seed_stability.py`` requires of the secrets it samples).

    python benchmarks/seed_sweep.py [--secrets 48] [--jobs 2] [--assignments 06-rope ...]

The secrets are random (``--seed`` makes them reproducible) plus the ones listed in
``KNOWN``, that once found a flip.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import _root  # noqa: F401  (testkit: the test support beside the package)

# Secrets that found flips (benchmark of three random secrets per results folder, then this
# sweep); tests/test_seed_stability.py samples them too.
KNOWN = ("da599120eba64f2aa20cf320de887a79", "9531985d5d9dc9f81818e811892f902b",
         "a170b33839263059f28c105d1fb17c23", "0cb1e29c658cda1495e60af593bd04cf",
         "119a72d174c9df6acc011cdd9474031b", "8e81973e0becd7b03898d190f9ebdacc",
         "c7a2ea20b2f14c942e05319acb5c7427", "8d116ece1738f7d93d9c172411e20b8f",
         "ec66a78795e761d17731af10506bf2ef", "5affb2297631a992f0ce583505c6af07",
         "3f98e2774cbd87ad5c90a9587403e430")


def flips(assignment_id: str, name: str, secrets: list[str]) -> list[str]:
    """The flips of one subject (``"solution"`` or a catalog case) under ``secrets``."""
    from autograder import checks
    from testkit import catalog, program

    registered = checks.checks_for(assignment_id)
    if name == "solution":
        answers, correct, cell = None, True, None
    else:
        [case] = [c for c in catalog.cases(assignment_id) if c.name == name]
        answers, correct, cell = {case.cell: case.source}, case.correct, case.cell
    own = sorted(g for g, c in registered.items() if c.exercise == cell)
    found = []
    fixed = program.failures(assignment_id, answers)
    for secret in [None, *secrets]:
        failed = fixed if secret is None else program.failures(assignment_id, answers, secret)
        shown = "fixed seeds" if secret is None else f"secret {secret}"
        if correct:
            bad = sorted(g for g, f in failed.items() if f)
            found += [f"{name} [correct] fails {g} with {shown}: {failed[g][0][:160]}"
                      for g in bad]
            continue
        if own and not any(failed[g] for g in own):
            found.append(f"{name} [wrong] passes every cell of {cell} ({own}) with {shown}")
        if secret is not None:
            changed = sorted(g for g in fixed if bool(fixed[g]) != bool(failed[g])
                             and cell not in program.calls(registered, registered[g].exercise))
            found += [f"{name} [wrong] {g}: {'fails' if failed[g] else 'passes'} with {shown}, "
                      f"{'fails' if fixed[g] else 'passes'} with the fixed seeds" for g in changed]
    return found


def _unit(args):
    assignment_id, name, secrets = args
    return assignment_id, name, flips(assignment_id, name, secrets)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--secrets", type=int, default=48, help="random secrets (plus KNOWN)")
    parser.add_argument("--seed", type=int, default=None, help="makes the secrets reproducible")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--assignments", nargs="*", default=None)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    from autograder import checks
    from testkit import catalog

    draw = random.Random(args.seed)
    secrets = list(KNOWN) + [f"{draw.getrandbits(128):032x}" for _ in range(args.secrets)]
    units = [(a, name, secrets) for a in args.assignments or checks.assignments()
             for name in ["solution"] + [c.name for c in catalog.cases(a)]]
    start, problems = time.time(), []
    with ProcessPoolExecutor(args.jobs) as pool:
        for assignment_id, _, found in pool.map(_unit, units, chunksize=1):
            problems += [f"{assignment_id} {line}" for line in found]
            for line in found:
                print(f"{assignment_id} {line}", flush=True)
    subjects = {(a, n) for a, n, _ in units}
    flipped = {tuple(p.split(" ", 2)[:2]) for p in problems}
    print(f"\n{len(secrets)} secrets (+ the fixed seeds) x {len(subjects)} subjects "
          f"(solutions and catalog cases) in {time.time() - start:.0f} s: "
          f"{len(problems)} flips in {len(flipped)} subjects")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
