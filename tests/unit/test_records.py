"""``records``: a graded pair, written and read back key for key."""

import pytest

from autograder.records import ERROR, GRADED, CellResult, Record


def _record() -> Record:
    return Record("ada", "01-x", "x.ipynb", GRADED, "", ["a note"], ["cell f: E"], 1.0, 3.0,
                  [CellResult("one", "f", 1.0, 1.0, False), CellResult("two", "f", 0.0, 2.0, True,
                                                                        ["wrong"])],
                  sandbox={"landlock": 6}, wall=0.5, seed="fixed", fingerprint="fp")


def test_a_record_reads_back_as_written():
    record = _record()
    assert Record.from_json(record.to_json()) == record
    assert record.graded and not Record.from_json({**record.to_json(), "status": ERROR}).graded


def test_a_record_of_an_older_version_reads_without_wall_and_seed():
    data = {k: v for k, v in _record().to_json().items() if k not in ("wall", "seed", "sandbox")}
    old = Record.from_json(data)
    assert old.wall is None and old.seed is None and old.sandbox == {}


@pytest.mark.parametrize("broken", [{}, {"student_id": "ada"}, {**_record().to_json(), "score": "x"},
                                    {**_record().to_json(), "cells": [{"grade_id": "g"}]}])
def test_what_is_not_a_record_raises(broken):
    with pytest.raises((KeyError, TypeError, ValueError)):
        Record.from_json(broken)
