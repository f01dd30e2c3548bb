"""``submissions``: pairs, shards, and each notebook read within bounds."""

import json
import os

import nbformat
import pytest

from autograder import course, submissions
from autograder.testing import tamper

A = tamper.ASSIGNMENT


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
    assert submission.student_id == "student"


def test_nbformat_3_is_converted(tmp_path, assignments):
    v3 = json.dumps(nbformat.convert(course.submission(A), 3)).encode()
    submission = submissions.read_submission(_submit(tmp_path, v3), assignments[A])
    assert submission.notebook is not None and not submission.reason
    assert any("format 3 converted" in n for n in submission.notes)
    program = course.exercise_program(assignments[A].source, submission.notebook)
    assert [label for label, _ in program.cells] == [label for label, _ in course.exercise_program(
        assignments[A].source, course.submission(A)).cells]


# --- read_bounded: the one reader of a submitted file's bytes ---------------------------------

def test_read_bounded_gives_the_bytes_of_a_regular_file(tmp_path):
    (tmp_path / "n.ipynb").write_bytes(b"{}")
    assert submissions.read_bounded(tmp_path / "n.ipynb", tmp_path, "n.ipynb") == b"{}"


def test_read_bounded_refuses_a_symlink_and_a_linked_folder(tmp_path):
    (tmp_path / "elsewhere.ipynb").write_bytes(b"{}")
    folder = tmp_path / "pair"
    folder.mkdir()
    (folder / "n.ipynb").symlink_to(tmp_path / "elsewhere.ipynb")
    assert "symbolic link" in submissions.read_bounded(folder / "n.ipynb", folder, "n.ipynb")
    (tmp_path / "linked").symlink_to(folder)
    assert "symbolic link" in submissions.read_bounded(tmp_path / "linked" / "x.ipynb",
                                                       tmp_path / "linked", "x.ipynb")


def test_read_bounded_refuses_a_file_outside_the_folder(tmp_path):
    (tmp_path / "outside.ipynb").write_bytes(b"{}")
    (tmp_path / "pair").mkdir()
    found = submissions.read_bounded(tmp_path / "pair" / ".." / "outside.ipynb",
                                     tmp_path / "pair", "outside.ipynb")
    assert "outside the submission folder" in found


def test_read_bounded_refuses_what_is_not_a_regular_file(tmp_path):
    os.mkfifo(tmp_path / "n.ipynb")  # opening it must not block, reading it must not happen
    assert "not a regular file" in submissions.read_bounded(tmp_path / "n.ipynb", tmp_path,
                                                            "n.ipynb")
    (tmp_path / "d.ipynb").mkdir()
    assert isinstance(submissions.read_bounded(tmp_path / "d.ipynb", tmp_path, "d.ipynb"), str)


def test_read_bounded_refuses_a_file_over_the_limit_before_reading_it(tmp_path, monkeypatch):
    monkeypatch.setattr(submissions, "MAX_BYTES", 1024)
    (tmp_path / "n.ipynb").write_bytes(b" " * 1025)
    found = submissions.read_bounded(tmp_path / "n.ipynb", tmp_path, "n.ipynb")
    assert isinstance(found, str) and "over the limit" in found
    (tmp_path / "n.ipynb").write_bytes(b" " * 1024)
    assert submissions.read_bounded(tmp_path / "n.ipynb", tmp_path, "n.ipynb") == b" " * 1024


def test_read_bounded_names_a_file_that_cannot_be_opened(tmp_path):
    found = submissions.read_bounded(tmp_path / "gone.ipynb", tmp_path, "gone.ipynb")
    assert found == "gone.ipynb could not be opened (No such file or directory)"
