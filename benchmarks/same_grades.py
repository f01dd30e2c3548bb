"""Same grades before and after a change: the whole bug catalog and the tamper suite's chapter
attacks, graded by an earlier commit's grader and by this tree's, cell by cell.

The class (every catalog case, the solution, the untouched notebook and every chapter attack,
for every assignment) is built by the EARLIER commit's code, so both graders see the same
files; each grades it in its own process with the nbgrader path's fixed seeds.

    python benchmarks/same_grades.py --before 554ac36
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

BUILD = r'''
import json, sys
from pathlib import Path
import nbformat
from autograder import course
if (Path(course.__file__).parent / "testing").is_dir():
    from autograder.testing import catalog, tamper
else:  # before the package split
    from autograder import catalog, tamper
out, kinds = Path(sys.argv[1]), {}
def put(student, a, nb, kind):
    folder = out / student / a
    folder.mkdir(parents=True, exist_ok=True)
    data = nb if isinstance(nb, bytes) else nbformat.writes(nb).encode()
    (folder / course.notebook_path(a).name).write_bytes(data)
    kinds[f"{student}/{a}"] = kind
ids = getattr(course, "assignment_ids", None) or course.assignments  # its name before issue 22
for a in ids():
    put("solution", a, course.submission(a), "solution")
    put("untouched", a, course.notebook_path(a, released=True).read_bytes(), "untouched")
    for i, case in enumerate(catalog.cases(a)):
        put(f"case{i:03d}", a, course.submission(a, {case.cell: case.source}), case.name)
    for attack, _ in tamper.chapter_attacks(a):
        put(f"attack_{attack.name}", a, attack.build(), attack.name)
Path(sys.argv[2]).write_text(json.dumps(kinds))
'''

GRADE = r'''
import json, sys
from pathlib import Path
from autograder import engine
records = engine.grade(Path(sys.argv[1]), Path(sys.argv[2]), progress=False, fixed_seeds=True)
cells = {}
for r in records:
    r = r.to_json() if hasattr(r, "to_json") else r
    cells[f"{r['student_id']}/{r['assignment_id']}"] = {
        "status": r["status"], "cells": {c["grade_id"]: c["score"] for c in r["cells"]}}
Path(sys.argv[3]).write_text(json.dumps(cells))
'''


def run(tree: Path, script: str, *args: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    subprocess.run([sys.executable, "-c", script, *args], env=env, check=True, cwd=tree)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", required=True, help="the earlier commit")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="same-grades-"))
    before = work / "before"
    subprocess.run(["git", "worktree", "add", "--detach", "-q", str(before), args.before],
                   cwd=ROOT, check=True)
    try:
        run(before, BUILD, str(work / "submitted"), str(work / "kinds.json"))
        run(before, GRADE, str(work / "submitted"), str(work / "results-before"), str(work / "before.json"))
        run(ROOT, GRADE, str(work / "submitted"), str(work / "results-after"), str(work / "after.json"))
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(before)], cwd=ROOT, check=False)
    kinds = json.loads((work / "kinds.json").read_text())
    old, new = (json.loads((work / f"{w}.json").read_text()) for w in ("before", "after"))
    same, changed = Counter(), defaultdict(list)
    for key in sorted(kinds):
        assignment = key.split("/")[1]
        if old[key] == new[key]:
            same[assignment] += 1
        else:
            cells = {g: (old[key]["cells"].get(g), new[key]["cells"].get(g))
                     for g in {**old[key]["cells"], **new[key]["cells"]}
                     if old[key]["cells"].get(g) != new[key]["cells"].get(g)}
            changed[assignment].append((kinds[key], cells))
    print(f"{len(kinds)} submissions, graded by {args.before} and by this tree\n")
    print("| assignment | same grades | different |\n|---|---|---|")
    for assignment in sorted({k.split("/")[1] for k in kinds}):
        print(f"| {assignment} | {same[assignment]} | {len(changed[assignment])} |")
    for assignment, items in sorted((a, i) for a, i in changed.items() if i):
        print(f"\n{assignment}:")
        for kind, cells in items:
            print(f"  {kind}: {cells}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
