"""Command line.

- ``python -m autograder release [ID...]``: regenerate ``chapters/`` from ``solutions/``;
- ``python -m autograder grade SUBMITTED_DIR --out RESULTS_DIR [--jobs N] [--timeout S]
  [--shard K/N --seed-file FILE] [--memory MB]``: the project's isolated grader (spec
  section 6); the shards of one class read one ``--seed-file`` (created when missing);
- ``python -m autograder merge RESULTS_DIR... --out RESULTS_DIR``: combine shards;
- ``python -m autograder import-grades RESULTS_DIR [--db URL]``: store the scores in the
  nbgrader gradebook, so that ``nbgrader export`` reports them;
- ``python -m autograder gradescope ASSIGNMENT --out DIR``: write ``DIR/autograder.zip``
  for a Gradescope programming assignment (``autograder/gradescope.py``);
- ``python -m autograder publish --out DIR --repository URL [--hub URL] [--branch NAME]``: the
  learners' copy (release notebooks, book, requirements, README; ``autograder/publish.py``).

Exit status (``EXIT``): 0 done, every submission graded; 1 the grader failed (the pairs it
could not grade are named; run again to retry them); 2 refused: a bad command line, a path
that does not exist, or results that cannot be merged or imported (one ``error:`` line,
then the reasons; nothing was written); 3 done, but some submissions could not be graded
(named on stderr; they score 0 and their feedback says why).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from autograder.errors import GraderError, UsageError

EXIT = {"ok": 0, "grader failed": 1, "refused": 2, "submissions errored": 3}
STATUS = ("exit status: 0 done (every submission graded); 1 the grader failed (run again to "
          "retry); 2 refused (bad command line, a path that does not exist, results that cannot "
          "be merged or imported; nothing written); 3 done, but some submissions could not be "
          "graded (named on stderr)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder", epilog=STATUS)
    commands = parser.add_subparsers(dest="command", required=True)
    release = commands.add_parser("release", help="regenerate chapters/ from solutions/ "
                                  "with nbgrader generate_assignment")
    release.add_argument("assignments", nargs="*", help="assignment ids (default: all)")

    grade = commands.add_parser("grade", help="grade submissions in isolated processes",
                                epilog=STATUS)
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
    grade.add_argument("--seed-file", type=Path, default=None,
                       help="a file that holds the class's secret, created with a new one when "
                       "missing: every shard of one class reads the same file")
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

    publish = commands.add_parser("publish", help="write the learners' copy: release notebooks, "
                                  "book pages and configuration, requirements, README")
    publish.add_argument("--out", type=Path, required=True, help="a new or empty folder outside "
                         "the repository")
    publish.add_argument("--repository", required=True, help="address of the learners' repository "
                         "(where DIR is pushed): the book's repository link, Binder and Colab buttons")
    publish.add_argument("--hub", default=None, help="your JupyterHub (with nbgitpuller) for the "
                         "JupyterHub launch button (default: no JupyterHub button)")
    publish.add_argument("--branch", default="main", help="the learners' repository's branch (default: main)")
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT["refused"]
    except GraderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT["grader failed"]


def existing_folder(path: Path, what: str) -> Path:
    if not path.exists():
        raise UsageError(f"{path} does not exist: give {what}")
    if not path.is_dir():
        raise UsageError(f"{path} is not a folder: give {what}")
    return path


def release(args) -> int:
    from autograder import course
    from autograder.release import generate

    unknown = [a for a in args.assignments if a not in course.assignment_ids()]
    if unknown:
        raise UsageError(f"{', '.join(unknown)}: not an assignment of this course (one of: "
                         f"{', '.join(course.assignment_ids())})")
    try:
        released = generate(only=args.assignments or None)
    except RuntimeError as exc:  # nbgrader generate_assignment failed: its output says why
        raise GraderError(str(exc)) from None
    for assignment_id in released:
        print(f"released chapters/{assignment_id}")
    return EXIT["ok"]


def grade(args) -> int:
    from autograder import engine

    records = engine.grade(args.submitted, args.out, jobs=args.jobs, timeout=args.timeout,
                           shard_spec=args.shard, memory_mb=args.memory, progress=not args.quiet,
                           secret=args.seed, fixed_seeds=args.fixed_seeds,
                           shared_network=args.shared_network, seed_file=args.seed_file,
                           without_landlock=args.without_landlock)
    print(f"wrote {args.out / 'grades.csv'} and {args.out / 'totals.csv'}")
    return EXIT["ok"] if all(r.graded for r in records) else EXIT["submissions errored"]


def merge(args) -> int:
    from autograder import formats, report
    from autograder.rubric import load_assignments

    for source in args.results:
        existing_folder(source, "a results folder of python -m autograder grade")
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out} is a file, not a folder")
    assignments = load_assignments()
    records = formats.merge(args.results, args.out, assignments)
    print(report.summary_table(records, assignments), file=sys.stderr)
    print(report.not_graded([], records, []), file=sys.stderr, end="")  # the shards' errors, together
    print(f"wrote {args.out / 'grades.csv'} and {args.out / 'totals.csv'} "
          f"({len(records)} submissions)")
    return EXIT["ok"]


def import_grades(args) -> int:
    import importlib.util

    from autograder import formats
    from autograder.rubric import load_assignments

    if importlib.util.find_spec("nbgrader") is None:
        raise UsageError("import-grades writes nbgrader's gradebook, and nbgrader is not installed "
                         "(the grader's set leaves it out): install the version requirements.txt pins")
    existing_folder(args.results, "a results folder of python -m autograder grade or merge")
    if args.db.startswith("sqlite:///"):
        folder = Path(args.db.removeprefix("sqlite:///")).parent
        existing_folder(folder, f"a gradebook in an existing folder (--db {args.db})")
    assignments = load_assignments()
    records = formats.load_records(args.results, assignments, strict=True)
    count = formats.import_gradebook(records, args.db, assignments)
    print(f"imported {count} grades of {len(records)} submissions into {args.db}")
    return EXIT["ok"]


def gradescope(args) -> int:
    from autograder import gradescope as gs

    try:
        target = gs.build(args.assignment, args.out)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    print(f"wrote {target}: upload it as the autograder of a Gradescope programming assignment")
    return EXIT["ok"]


def publish(args) -> int:
    from autograder import publish as pub

    try:
        files = pub.publish(args.out, args.repository, hub=args.hub, branch=args.branch)
    except pub.PublishError as exc:
        raise UsageError(str(exc)) from None
    print(f"wrote the learners' copy to {args.out} ({len(files)} files): push it to {args.repository}")
    return EXIT["ok"]


COMMANDS = {"release": release, "grade": grade, "merge": merge, "import-grades": import_grades,
            "gradescope": gradescope, "publish": publish}

if __name__ == "__main__":
    sys.exit(main())
