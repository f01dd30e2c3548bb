"""``formats``: results.json, grades.csv, feedback, merges."""

import csv
import dataclasses
import io

from autograder import formats
from autograder.records import CellResult, Record
from autograder.testing import tamper

A = tamper.ASSIGNMENT


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


def test_outputs_come_from_the_records_given_not_from_disk(tmp_path):
    """No results.json is read back: the feedback is written from the records in hand."""
    second = dataclasses.replace(_record(), assignment_id="02-self-attention")
    formats.write_outputs(tmp_path, [second, _record()])
    assert not list(tmp_path.glob("*/*/results.json"))
    text = (tmp_path / "ada" / "feedback.md").read_text()
    assert text.index(f"## {A}") < text.index("## 02-self-attention")


def test_merge_rebuilds_from_shards(tmp_path):
    first, second = _record(), dataclasses.replace(_record(), student_id="bob")
    formats.write_record(tmp_path / "a", first)
    formats.write_record(tmp_path / "b", second)
    records = formats.merge([tmp_path / "a", tmp_path / "b"], tmp_path / "all")
    assert [r.student_id for r in records] == ["ada", "bob"]
    rows = list(csv.DictReader(open(tmp_path / "all" / "grades.csv")))
    assert {r["student_id"] for r in rows} == {"ada", "bob"} and len(rows) == 4
    assert formats.load_records(tmp_path / "all") == records
