"""Tampering: the same attack submissions graded by stock nbgrader and by the project's grader.

Table 1: the honest wrong solution of chapter 01 plus an attack on the grading machinery
(``autograder.testing.tamper.ATTACKS``, the collusion pair, the JSON bomb), and the
kernel-object channels and links of issue 18 (the SysV and lock pairs, whose receivers hold
no implementation, SysV memory left behind, a notebook that links to the instructor's).
Stock nbgrader grades one student at a time, so its lock receiver has nobody to talk to.
Table 2: the attacks on the observation boundary on every chapter
(``tamper.chapter_attacks``), each against its baseline (the untouched notebook or the
chapter's honest wrong solution). Prints the points each grading path gives, next to what
the baseline earns.

    python benchmarks/tamper_table.py [--workdir DIR] [--no-chapters]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from autograder import engine
from autograder.testing import tamper
from autograder.testing.stock import StockCourse

# submissions measured against another baseline than the honest wrong solution
OWN_BASELINE = {"collusion_server": "the solution: its own marks, full",
                "shm_a_sender": "the solution: its own marks, full",
                "locks_a_sender": "the solution: its own marks, full"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--only", nargs="*", help="attack names (default: all)")
    parser.add_argument("--no-chapters", action="store_true", help="table 1 only")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="tamper-"))
    assignment = tamper.ASSIGNMENT
    subjects = [tamper.Submission("honest_wrong", "the honest wrong solution (baseline)",
                                  tamper.honest_wrong)]
    issue18 = tamper.lock_pair() + tamper.shm_pair() + [tamper.shm_hog(), tamper.symlinked_notebook()]
    subjects += [a for a in tamper.ATTACKS + tamper.collusion_pair() + [tamper.json_bomb()] + issue18
                 if not args.only or a.name in args.only]

    stock = StockCourse(workdir / "stock")
    stock.generate(assignment)
    for subject in subjects:
        tamper.write(stock.dir / "submitted", subject.name, subject)
    ours_dir = workdir / "ours"
    for subject in subjects:
        tamper.write(ours_dir / "submitted", subject.name, subject)

    tamper.remove_shm([tamper.SHM_KEY] + tamper.SHM_HOG_KEYS)
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
    stock_left = tamper.host_shm_keys() & set(tamper.SHM_HOG_KEYS + [tamper.SHM_KEY])
    tamper.remove_shm([tamper.SHM_KEY] + tamper.SHM_HOG_KEYS)

    start = time.monotonic()
    records = engine.grade(ours_dir / "submitted", ours_dir / "results", jobs=2, timeout=30,
                           progress=False)
    ours_time = time.monotonic() - start
    ours_left = tamper.host_shm_keys() & set(tamper.SHM_HOG_KEYS + [tamper.SHM_KEY])
    ours = {r.student_id: r for r in records}
    best = engine.load_assignments()[assignment].max_score

    baseline_stock = stock_scores["honest_wrong"]
    baseline_ours = ours["honest_wrong"].score

    def show(score, baseline, name=""):
        if score is None:
            return "not graded (nbgrader failed)"
        if name in OWN_BASELINE:
            return f"{score:g} / {best:g} ({OWN_BASELINE[name]})"
        flag = " **(gains)**" if baseline is not None and score > baseline else ""
        return f"{score:g} / {best:g}{flag}"

    print("| submission | attack | stock `nbgrader autograde` | `python -m autograder grade` |")
    print("|---|---|---|---|")
    for subject in subjects:
        record = ours[subject.name]
        note = f" ({record.reason})" if record.reason else ""
        print(f"| `{subject.name}` | {subject.description} | "
              f"{show(stock_scores[subject.name], baseline_stock, subject.name)} | "
              f"{show(record.score, baseline_ours, subject.name)}{note} |")
    attacks = [s for s in subjects[1:] if s.name not in OWN_BASELINE]
    gains_stock = sum(1 for s in attacks if (stock_scores[s.name] or 0) > (baseline_stock or 0))
    gains_ours = sum(1 for s in attacks if ours[s.name].score > baseline_ours)
    print(f"\n{len(attacks)} attacks; more than the honest wrong solution: "
          f"stock nbgrader {gains_stock}, our grader {gains_ours}. "
          f"(stock {stock_time:.0f} s, ours {ours_time:.1f} s)")
    print(f"SysV segments of the students left on the host after grading: stock nbgrader "
          f"{len(stock_left)}, our grader {len(ours_left)}")
    if not args.no_chapters:
        gains_ours += chapters_table(workdir)
    return 0 if gains_ours == 0 else 1


def chapters_table(workdir: Path) -> int:
    """Table 2; returns how many attacks gained under our grader."""
    import nbformat

    from autograder import course

    stock = StockCourse(workdir / "chapters-stock")
    ours_dir = workdir / "chapters-ours" / "submitted"
    rows = []
    for assignment_id in course.assignment_ids():
        stock.generate(assignment_id)
        name = course.notebook_path(assignment_id).name
        subjects = {"untouched": course.notebook_path(assignment_id, released=True).read_bytes()}
        subjects.update({name: nbformat.writes(course.submission(assignment_id, answers)).encode()
                         for name, answers in tamper.chapter_baselines(assignment_id).items()})
        for attack, baseline in tamper.chapter_attacks(assignment_id):
            subjects[attack.name] = attack.build()
            rows.append((assignment_id, attack, baseline))
        for student, content in subjects.items():
            stock.submit(student, assignment_id, content)
            (ours_dir / student / assignment_id).mkdir(parents=True, exist_ok=True)
            (ours_dir / student / assignment_id / name).write_bytes(content)
    stock_scores = {}
    for assignment_id in course.assignment_ids():
        stock.autograde(assignment_id)
        for student in {"untouched", *tamper.chapter_baselines(assignment_id)} | {
                a.name for a, b in tamper.chapter_attacks(assignment_id)}:
            try:
                stock_scores[(student, assignment_id)] = sum(
                    s for s, _ in stock.scores(assignment_id, student).values())
            except Exception:
                stock_scores[(student, assignment_id)] = None
    records = engine.grade(ours_dir, ours_dir.parent / "results", jobs=2, timeout=60,
                           progress=False)
    ours = {(r.student_id, r.assignment_id): r for r in records}
    best = {a.id: a.max_score for a in engine.load_assignments().values()}
    print("\n| chapter | attack | baseline | stock `nbgrader autograde` | "
          "`python -m autograder grade` |")
    print("|---|---|---|---|---|")
    gains = {"stock": 0, "ours": 0}
    for assignment_id, attack, baseline in rows:
        cells = []
        for label, score, base in (
                ("stock", stock_scores[(attack.name, assignment_id)],
                 stock_scores[(baseline, assignment_id)]),
                ("ours", ours[(attack.name, assignment_id)].score,
                 ours[(baseline, assignment_id)].score)):
            if score is None:
                cells.append("not graded")
                continue
            gained = base is not None and score > base
            gains[label] += gained
            cells.append(f"{score:g} / {best[assignment_id]:g} (baseline {base:g})"
                         + (" **(gains)**" if gained else ""))
        print(f"| {assignment_id} | `{attack.name}`: {attack.description} | {baseline} | "
              f"{cells[0]} | {cells[1]} |")
    print(f"\n{len(rows)} chapter attacks; more than their baseline: stock nbgrader "
          f"{gains['stock']}, our grader {gains['ours']}.")
    return gains["ours"]


if __name__ == "__main__":
    sys.exit(main())
