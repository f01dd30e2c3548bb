"""Command line: ``python -m autograder release`` (and the grader's commands)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder")
    commands = parser.add_subparsers(dest="command", required=True)
    release = commands.add_parser("release", help="regenerate chapters/ from solutions/ "
                                  "with nbgrader generate_assignment")
    release.add_argument("assignments", nargs="*", help="assignment ids (default: all)")
    args = parser.parse_args(argv)

    if args.command == "release":
        from autograder.release import generate

        for assignment_id in generate(only=args.assignments or None):
            print(f"released chapters/{assignment_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
