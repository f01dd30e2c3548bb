"""The project's grader, piece by piece, without running student code (fast)."""

import csv
import dataclasses
import io
import json

import nbformat
import pytest

from autograder import course, formats, report, submissions
from autograder.records import CellResult, Record
from autograder.rubric import load_assignments
from autograder.sandbox import confine
from autograder.testing import tamper

A = tamper.ASSIGNMENT


@pytest.fixture(scope="module")
def assignments():
    return load_assignments()


def test_points_come_from_the_instructor_notebook(assignments, assignment_id):
    loaded = assignments[assignment_id]
    source = course.read(course.notebook_path(assignment_id))
    assert [(c.grade_id, c.points) for c in loaded.cells] == \
        [(c.grade_id, c.points) for c in course.grade_cells(source)]
    assert set(loaded.checks) == {c.grade_id for c in loaded.cells}


def test_shards_partition_the_pairs_deterministically(tmp_path):
    pairs = [submissions.Pair(f"s{i:02d}", a, tmp_path) for i in range(7) for a in ("01-x", "02-y")]
    shards = [submissions.shard(list(reversed(pairs)), k, 3) for k in range(3)]
    flat = [p for s in shards for p in s]
    assert sorted(flat, key=str) == sorted(pairs, key=str) and len(flat) == len(set(flat))
    assert shards == [submissions.shard(pairs, k, 3) for k in range(3)], "order of discovery matters"
    assert max(map(len, shards)) - min(map(len, shards)) <= 1
    assert submissions.parse_shard("2/3") == (2, 3)
    for bad in ("3/3", "-1/2", "1/0"):
        with pytest.raises(ValueError):
            submissions.parse_shard(bad)


def _submit(tmp_path, content: bytes | None, name=None):
    folder = tmp_path / "student" / A
    folder.mkdir(parents=True, exist_ok=True)
    if content is not None:
        (folder / (name or course.notebook_path(A).name)).write_bytes(content)
    return submissions.Pair("student", A, folder)


@pytest.mark.parametrize("content, reason", [
    (b'{"cells": [', "not valid JSON"),
    (b'\xff\xfe{"cells": []}', "not valid UTF-8"),
    (b'[1, 2, 3]', "not a Jupyter notebook"),
    (b'{"nbformat": 4, "cells": 7}', "not a Jupyter notebook"),
    (None, "missing notebook"),
])
def test_unreadable_submissions_get_a_reason(tmp_path, assignments, content, reason):
    submission = submissions.read_submission(_submit(tmp_path, content), assignments[A])
    assert submission.notebook is None and reason in submission.reason


def test_nbformat_3_is_converted(tmp_path, assignments):
    v3 = json.dumps(nbformat.convert(course.submission(A), 3)).encode()
    submission = submissions.read_submission(_submit(tmp_path, v3), assignments[A])
    assert submission.notebook is not None and not submission.reason
    program = course.exercise_program(assignments[A].source, submission.notebook)
    assert [label for label, _ in program.cells] == [label for label, _ in course.exercise_program(
        assignments[A].source, course.submission(A)).cells]


def test_program_is_instructor_setup_plus_learner_solutions(assignments):
    nb = course.submission(A, {tamper.ADD: "def add_positional_encoding(x, base=1.0):\n    return x"})
    for cell in nb.cells:
        meta = course.nbgrader_meta(cell)
        if meta.get("grade_id", "").startswith("setup"):
            cell.source = "raise SystemExit('the learner edited a setup cell')"
        elif meta.get("grade"):
            cell.source = "print('edited tests')"
            meta["points"] = 1000
        elif meta.get("grade_id") == tamper.REL:
            cell.cell_type = "markdown"
    program = course.exercise_program(assignments[A].source, nb)
    cells, notes = program.cells, program.notes
    source = course.read(course.notebook_path(A))
    setup = [c.source for c in source.cells if course.is_setup(c)]
    assert [code for label, code in cells if label.startswith("setup")] == setup
    assert dict(cells)[tamper.ADD].endswith("return x")
    assert tamper.REL not in dict(cells) and any("not a code cell" in n for n in notes)
    assert not any("edited tests" in code for _, code in cells)


def _record(score_a=1.0, failures=()):
    cells = [CellResult("visible_one", "f", score_a, 1.0, False, list(failures)),
             CellResult("hidden_two", "f", 0.0, 2.0, True,
                        ["f(3) has wrong values: it matches the pos - 1 bug"])]
    return Record("ada", A, "positional_encoding.ipynb", "graded", "", [], [], score_a, 3.0, cells,
                  sandbox={"landlock": 7}, fingerprint="x")


def test_gradescope_results_format():
    results = formats.results_json(_record())
    assert results["score"] == 1.0
    assert [t["visibility"] for t in results["tests"]] == ["visible", "after_published"]
    for test in results["tests"]:
        assert set(test) >= {"name", "score", "max_score", "output", "visibility"}
    assert "pos - 1" in results["tests"][1]["output"]


def test_grades_csv_and_feedback(tmp_path):
    formats.write_record(tmp_path, _record())
    formats.write_outputs(tmp_path, formats.load_records(tmp_path))
    rows = list(csv.DictReader(io.StringIO((tmp_path / "grades.csv").read_text())))
    assert list(rows[0]) == formats.CSV_FIELDS
    assert [(r["grade_id"], r["score"], r["max_score"]) for r in rows] == \
        [("visible_one", "1", "1"), ("hidden_two", "0", "2")]
    text = (tmp_path / "ada" / "feedback.md").read_text()
    assert "hidden_two" in text and "pos - 1" in text and "1 / 3" in text


def test_merge_rebuilds_from_shards(tmp_path):
    first, second = _record(), dataclasses.replace(_record(), student_id="bob")
    formats.write_record(tmp_path / "a", first)
    formats.write_record(tmp_path / "b", second)
    records = formats.merge([tmp_path / "a", tmp_path / "b"], tmp_path / "all")
    assert [r.student_id for r in records] == ["ada", "bob"]
    rows = list(csv.DictReader(open(tmp_path / "all" / "grades.csv")))
    assert {r["student_id"] for r in rows} == {"ada", "bob"} and len(rows) == 4


def test_sandbox_hides_folders_inside_allowed_roots(tmp_path):
    (tmp_path / "site" / "autograder" / "reference").mkdir(parents=True)
    (tmp_path / "site" / "numpy").mkdir()
    (tmp_path / "site" / "six.py").write_text("")
    (tmp_path / "site" / "autograder" / "checks").mkdir()
    original = confine.python_roots
    confine.python_roots = lambda: [str(tmp_path / "site")]
    try:
        allowed = confine.allowed_paths([str(tmp_path / "site" / "autograder")])
    finally:
        confine.python_roots = original
    assert str(tmp_path / "site" / "numpy") in allowed and str(tmp_path / "site" / "six.py") in allowed
    assert not any("autograder" in p for p in allowed)


def test_progress_bar_is_plain_text_without_a_tty():
    stream = io.StringIO()
    bar = report.Progress(3, stream=stream)
    for _ in range(3):
        bar.advance()
    bar.finish()
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue() and lines[-2].startswith("[###") and "3/3" in lines[-2]
    assert "ETA" in lines[0]


@pytest.mark.parametrize("problem", ["missing", "a file", "empty", "out inside", "out is it",
                                     "bad shard", "no jobs"])
def test_command_line_meets_bad_input_with_one_line_and_status_2(tmp_path, problem):
    import subprocess
    import sys

    submitted = tmp_path / "submitted"
    submitted.mkdir()
    out = tmp_path / "results"
    extra: list[str] = []
    if problem == "missing":
        submitted = tmp_path / "nonexistent"
    elif problem == "a file":
        submitted = tmp_path / "file.txt"
        submitted.write_text("x")
    elif problem != "empty":
        (submitted / "alice" / "01-positional-encoding").mkdir(parents=True)
        if problem == "out inside":
            out = submitted / "results"
        elif problem == "out is it":
            out = submitted
        elif problem == "bad shard":
            extra = ["--shard", "3/2"]
        elif problem == "no jobs":
            extra = ["--jobs", "0"]
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    result = subprocess.run([sys.executable, "-m", "autograder", "grade", str(submitted),
                             "--out", str(out), *extra], capture_output=True, text=True,
                            cwd=course.ROOT, timeout=120)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize("order", ["imported before", "imported after"])
def test_the_fork_server_refuses_test_support(order):
    """``autograder.testing`` (the catalog's solutions, the tamper suite) never enters the fork
    server: loaded before ``preload`` it stops the server, imported after it fails."""
    import subprocess
    import sys

    if order == "imported before":
        code = "import autograder.testing.catalog\nfrom autograder.sandbox import server\nserver.preload()"
    else:
        code = ("from autograder.sandbox import server\nserver.refuse_forbidden()\n"
                "import autograder.testing.tamper")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=course.ROOT, timeout=300)
    assert result.returncode != 0
    expected = "refusing to serve" if order == "imported before" else "does not import autograder.testing"
    assert expected in result.stderr, result.stderr[-2000:]


def test_reference_dropout_is_pytorchs_and_leaves_the_global_generator_alone():
    """Judges run in parallel threads: a reference must draw dropout from its own generator
    (the global one is shared by every thread) and draw exactly what the student's
    nn.Dropout draws after torch.manual_seed(seed)."""
    import torch
    import torch.nn.functional as F

    from autograder.reference import dropout, generator
    from autograder.reference.stacking_heads import stacked

    for dtype in (torch.float32, torch.float64):
        for p in (0.0, 0.19, 0.5, 1.0):
            x = torch.randn(2, 3, 4, 4, dtype=dtype)
            torch.manual_seed(7)
            expected = [F.dropout(x, p, training=True), torch.nn.Dropout(p)(x)]
            g = generator(7)
            assert all(torch.equal(e, dropout(x, p, g)) for e in expected), (dtype, p)
    torch.manual_seed(0)
    state = torch.get_rng_state()
    layer = {f"{n}.weight": torch.randn(4, 4) for n in ("W_query", "W_key", "W_value")}
    torch.set_rng_state(state)
    stacked(torch.randn(1, 3, 4, generator=torch.Generator().manual_seed(1)), [layer, layer],
            dropout=0.5, seed=3)
    assert torch.equal(torch.get_rng_state(), state), "a reference moved the global generator"
