"""Command line.

- ``python -m autograder release [ID...]``: regenerate ``chapters/`` from ``solutions/``;
- ``python -m autograder grade SUBMITTED_DIR --out RESULTS_DIR [--jobs N] [--timeout S]
  [--shard K/N] [--memory MB]``: the project's isolated grader (spec section 6);
- ``python -m autograder merge RESULTS_DIR... --out RESULTS_DIR``: combine shards;
- ``python -m autograder import-grades RESULTS_DIR [--db URL]``: store the scores in the
  nbgrader gradebook, so that ``nbgrader export`` reports them;
- ``python -m autograder gradescope ASSIGNMENT --out DIR``: write ``DIR/autograder.zip``
  for a Gradescope programming assignment (``autograder/gradescope.py``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder")
    commands = parser.add_subparsers(dest="command", required=True)
    release = commands.add_parser("release", help="regenerate chapters/ from solutions/ "
                                  "with nbgrader generate_assignment")
    release.add_argument("assignments", nargs="*", help="assignment ids (default: all)")

    grade = commands.add_parser("grade", help="grade submissions in isolated processes")
    grade.add_argument("submitted", type=Path,
                       help="nbgrader submitted/ layout: <student_id>/<assignment_id>/<notebook>.ipynb")
    grade.add_argument("--out", type=Path, required=True, help="results folder")
    grade.add_argument("--jobs", type=int, default=None, help="parallel submissions (default: cores)")
    grade.add_argument("--timeout", type=float, default=60.0,
                       help="wall-clock seconds per submission (default: 60)")
    grade.add_argument("--memory", type=int, default=2048,
                       help="memory a submission may allocate, MiB (default: 2048)")
    grade.add_argument("--shard", default=None,
                       help="K/N: grade only shard K (0 <= K < N) of the sorted student x assignment pairs")
    grade.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    grade.add_argument("--seed", default=None,
                       help="the secret that inputs and weights are drawn from (default: the one "
                       "recorded in --out, else a new one, recorded there for re-runs)")
    grade.add_argument("--fixed-seeds", action="store_true",
                       help="use the nbgrader path's fixed seeds (to compare both paths)")
    grade.add_argument("--shared-network", action="store_true",
                       help="allow --jobs > 1 where student processes cannot be cut off from "
                       "the network")
    grade.add_argument("--without-landlock", action="store_true",
                       help="grade where Landlock is unavailable: student code can then read "
                       "every file its user may read (the grader explains what is at stake)")

    merge = commands.add_parser("merge", help="merge results folders (shards) into one")
    merge.add_argument("results", type=Path, nargs="+")
    merge.add_argument("--out", type=Path, required=True)

    gradebook = commands.add_parser("import-grades",
                                    help="store results in the nbgrader gradebook (for nbgrader export)")
    gradebook.add_argument("results", type=Path)
    gradebook.add_argument("--db", default="sqlite:///gradebook.db",
                           help="gradebook URL (default: sqlite:///gradebook.db, as nbgrader)")

    gradescope = commands.add_parser("gradescope", help="build a Gradescope autograder.zip "
                                     "for one assignment")
    gradescope.add_argument("assignment", help="assignment id, e.g. 01-positional-encoding")
    gradescope.add_argument("--out", type=Path, required=True, help="folder for autograder.zip")
    args = parser.parse_args(argv)

    if args.command == "release":
        from autograder.release import generate

        for assignment_id in generate(only=args.assignments or None):
            print(f"released chapters/{assignment_id}")
    elif args.command == "grade":
        from autograder import engine

        try:
            engine.grade(args.submitted, args.out, jobs=args.jobs, timeout=args.timeout,
                         shard_spec=args.shard, memory_mb=args.memory, progress=not args.quiet,
                         secret=args.seed, fixed_seeds=args.fixed_seeds,
                         shared_network=args.shared_network,
                         without_landlock=args.without_landlock)
        except engine.UsageError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except engine.GraderError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"wrote {args.out / 'grades.csv'}")
    elif args.command == "merge":
        from autograder import formats, report
        from autograder.assignments import load_assignments

        records = formats.merge(args.results, args.out)
        print(report.summary_table(records, load_assignments()), file=sys.stderr)
        print(f"wrote {args.out / 'grades.csv'} ({len(records)} submissions)")
    elif args.command == "import-grades":
        from autograder import formats
        from autograder.assignments import load_assignments

        records = formats.load_records(args.results)
        count = formats.import_gradebook(records, args.db, load_assignments())
        print(f"imported {count} grades of {len(records)} submissions into {args.db}")
    elif args.command == "gradescope":
        from autograder import gradescope as gs

        try:
            target = gs.build(args.assignment, args.out)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"wrote {target}: upload it as the autograder of a Gradescope programming assignment")
    return 0


if __name__ == "__main__":
    sys.exit(main())
