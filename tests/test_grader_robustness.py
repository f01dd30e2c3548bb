"""Broken and misbehaving submissions, interrupted runs, shards and the gradebook (slow).

Every broken submission becomes a clear reason (or is graded normally), the batch goes
on, the other students' grades are intact, and a killed run resumes with the same grades.
"""

import csv
import os
import signal
import subprocess
import sys
import time

import pytest

from autograder import course, engine, formats, scoring
from testkit import tamper
from testkit.stock import StockCourse

pytestmark = [pytest.mark.sandbox, pytest.mark.nbgrader]

A = tamper.ASSIGNMENT
# Each submission's wall limit: the infinite loop and the fork bomb run into it. The memory
# bomb must finish inside it: its 768 MB of fresh pages took from 0.1 to 6 s on an idle
# machine of ours (it varies that much from one run to the next), and at 8 s it once ran
# out under the suite's load.
TIMEOUT = 15


def expected_scores():
    """In-process grading (the same checks) of the honest submissions used below."""
    from testkit.program import failures

    points = {c.grade_id: c.points for c in course.grade_cells(course.read(course.notebook_path(A)))}

    def total(answers):
        return sum(points[g] for g, failed in failures(A, answers).items() if not failed)

    return {"solution": total(None), "honest_wrong": total(tamper.wrong_with()),
            "untouched": 0.0}


def honest_class(submitted, copies=1):
    for i in range(copies):
        tamper.write(submitted, f"solution{i}", tamper.Submission("s", "", tamper.notebook))
        tamper.write(submitted, f"honest_wrong{i}", tamper.Submission("w", "", tamper.honest_wrong))
        tamper.write(submitted, f"untouched{i}", tamper.Submission(
            "u", "", lambda: course.notebook_path(A, released=True).read_bytes()))


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("robust")
    honest_class(root / "submitted")
    for item, _ in tamper.BROKEN:
        tamper.write(root / "submitted", item.name, item)
    start = time.monotonic()
    records = engine.grade(root / "submitted", root / "results", jobs=2, timeout=TIMEOUT,
                           memory_mb=768, progress=False)
    return {r.student_id: r for r in records}, root, time.monotonic() - start


@pytest.mark.parametrize("item, expected", tamper.BROKEN, ids=[b.name for b, _ in tamper.BROKEN])
def test_broken_submission(graded, item, expected):
    records, root, _ = graded
    record = records[item.name]
    best = record.max_score
    explained = record.reason or record.notes or record.cell_errors
    if expected == "full":
        assert record.score == best, record
    elif expected == "reason":
        assert record.score == 0 and record.status == "error" and record.reason, record
        assert record.reason in (root / "results" / item.name / "feedback.md").read_text()
        for cell in record.cells:
            assert cell.failures, "every cell of an ungraded submission says why"
    else:  # partial: the other exercises still count
        assert 0 < record.score < best and explained, record
    if item.name in ("nbformat_3", "extra_notebook", "renamed_notebook"):
        assert record.notes, "a converted, ignored or renamed notebook is noted"
    if item.name == "memory_bomb":
        assert any("MemoryError" in e for e in record.cell_errors)


def test_batch_completes_and_honest_grades_are_intact(graded):
    records, root, elapsed = graded
    expected = expected_scores()
    for student, score in expected.items():
        assert records[student + "0"].score == score
    assert len(records) == 3 + len(tamper.BROKEN)
    rows = list(csv.DictReader(open(root / "results" / "grades.csv")))
    assert {r["student_id"] for r in rows} == set(records)
    assert elapsed < 120, f"the batch took {elapsed:.0f} s"


def grade_cli(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "autograder", *map(str, args)],
                          capture_output=True, text=True, cwd=course.ROOT, **kwargs)


def test_killed_run_resumes_with_the_same_grades(tmp_path):
    submitted, results = tmp_path / "submitted", tmp_path / "results"
    honest_class(submitted, copies=3)
    slow = tamper.with_cell_code("import time\ntime.sleep(1)", cell=tamper.REL)
    for i in range(3):
        (submitted / f"slow{i}" / A).mkdir(parents=True)
        (submitted / f"slow{i}" / A / course.notebook_path(A).name).write_bytes(slow)
    command = [sys.executable, "-m", "autograder", "grade", str(submitted), "--out", str(results),
               "--jobs", "1", "--timeout", "30"]
    run = subprocess.Popen(command, cwd=course.ROOT, start_new_session=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(list(results.glob("*/*/results.json"))) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    done = len(list(results.glob("*/*/results.json")))
    assert 3 <= done < 12, f"{done} results when the grader was killed"
    again = grade_cli("grade", submitted, "--out", results, "--jobs", "2", "--timeout", "30")
    assert again.returncode == 0, again.stderr
    assert f"resuming: {done} of 12" in again.stderr
    expected = expected_scores()
    records = {r.student_id: r for r in formats.load_records(results)}
    assert len(records) == 12
    for student, record in records.items():
        base = student.rstrip("0123456789")
        assert record.score == expected.get(base, expected["solution"]), student
    rows = list(csv.DictReader(open(results / "grades.csv")))
    assert len(rows) == 12 * len(engine.load_assignments()[A].cells)


def test_shards_merge_and_nbgrader_export(tmp_path):
    submitted = tmp_path / "submitted"
    honest_class(submitted, copies=2)
    outs = []
    for k in range(2):
        out = tmp_path / f"shard{k}"
        result = grade_cli("grade", submitted, "--out", out, "--shard", f"{k}/2", "--quiet",
                           "--seed-file", tmp_path / "secret")
        assert result.returncode == 0, result.stderr
        outs.append(out)
    counts = [len(list(o.glob("*/*/results.json"))) for o in outs]
    assert counts == [3, 3]
    secret = (tmp_path / "secret").read_text().strip()
    assert {r.seed for o in outs for r in formats.load_records(o)} == {scoring.seed_id(secret)}
    other = grade_cli("grade", submitted, "--out", tmp_path / "other", "--shard", "1/2",
                      "--quiet", "--seed-file", tmp_path / "another-secret")
    assert other.returncode == 0, other.stderr
    mixed = grade_cli("merge", outs[0], tmp_path / "other", "--out", tmp_path / "mixed")
    assert mixed.returncode == 2 and "different secrets" in mixed.stderr.splitlines()[0], mixed.stderr
    assert not (tmp_path / "mixed").exists()
    merged = grade_cli("merge", *outs, "--out", tmp_path / "merged")
    assert merged.returncode == 0, merged.stderr
    for path in (tmp_path / "merged").rglob("*"):
        assert path.is_dir() or secret not in path.read_text(), path
    rows = list(csv.DictReader(open(tmp_path / "merged" / "grades.csv")))
    expected = expected_scores()
    totals = {}
    for row in rows:
        totals[row["student_id"]] = totals.get(row["student_id"], 0) + float(row["score"])
    assert totals == {f"{s}{i}": expected[s] for s in expected for i in range(2)}

    stock = StockCourse(tmp_path / "course")
    imported = grade_cli("import-grades", tmp_path / "merged", "--db", stock.db_url)
    assert imported.returncode == 0, imported.stderr
    stock.nbgrader("export", "--to", str(tmp_path / "export.csv"))
    exported = {r["student_id"]: r for r in csv.DictReader(open(tmp_path / "export.csv"))
                if r["assignment"] == A}
    assert {s: float(r["score"]) for s, r in exported.items()} == totals
    assert all(float(r["max_score"]) == engine.load_assignments()[A].max_score
               for r in exported.values())


def test_command_line_names_what_it_did_not_grade_and_exits_3(tmp_path):
    """0 when every submission is graded; 3, naming each, when some could not be; anything
    under submitted/ that is not graded is named, even with --quiet."""
    submitted, results = tmp_path / "submitted", tmp_path / "results"
    notebook = course.notebook_path(A).name
    tamper.write(submitted, "ada", tamper.Submission("s", "", tamper.notebook))
    (submitted / "bob" / A).mkdir(parents=True)
    (submitted / "bob" / A / "positional_encoding (2).ipynb").write_bytes(tamper.notebook())
    clean = grade_cli("grade", submitted, "--out", results, "--jobs", "1", "--quiet")
    assert clean.returncode == 0, clean.stderr
    assert f"bob/{A}/positional_encoding (2).ipynb: graded as {notebook}" in clean.stderr
    assert {r.student_id: r.score for r in formats.load_records(results)} == {"ada": 10, "bob": 10}

    tamper.write(submitted, "cyd", tamper.Submission("damaged", "", lambda: b'{"cells": ['))
    tamper.write(submitted, "dan", tamper.Submission(
        "loop", "", lambda: tamper.with_cell_code("while True:\n    pass")))
    (submitted / "eve").mkdir()
    (submitted / "eve" / notebook).write_bytes(tamper.notebook())
    result = grade_cli("grade", submitted, "--out", results, "--jobs", "1", "--timeout", "5",
                       "--quiet")
    assert result.returncode == 3, result.stderr
    assert "2 submission(s) could not be graded" in result.stderr
    assert f"cyd/{A}: {notebook} is not valid JSON" in result.stderr
    assert f"dan/{A}: timed out after 5 s" in result.stderr
    assert f"eve/{notebook}: a file at the wrong depth, not graded" in result.stderr
    assert "Traceback" not in result.stderr
