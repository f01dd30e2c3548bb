"""The typed result of grading one (student, assignment) pair.

A ``Record`` is what the grader writes as the ``extra_data`` of ``results.json`` (see
``formats``), reads back to skip a pair on a re-run, and turns into ``grades.csv`` and
feedback. ``to_json()`` gives the dict written to disk, key for key; ``from_json()`` reads
it back (also records of older versions, which lack ``wall`` and ``seed``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

GRADED, ERROR = "graded", "error"  # Record.status
STUB = "raised NotImplementedError"  # in a failure: the learner's stub, not written yet


@dataclass
class CellResult:
    """One grade cell: its points when its check found no failure, else 0 and the messages."""

    grade_id: str
    exercise: str                   # the solution cell it grades ("" when unknown)
    score: float
    max_score: float
    hidden: bool                    # only hidden tests: shown after the grades are published
    failures: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"grade_id": self.grade_id, "exercise": self.exercise, "score": self.score,
                "max_score": self.max_score, "hidden": self.hidden, "failures": list(self.failures)}

    @classmethod
    def from_json(cls, data: dict) -> CellResult:
        return cls(str(data["grade_id"]), str(data.get("exercise", "")), float(data["score"]),
                   float(data["max_score"]), bool(data.get("hidden", True)),
                   [str(f) for f in data.get("failures", [])])


@dataclass
class Record:
    """One pair, graded (``status == "graded"``) or not (``"error"`` and a ``reason``)."""

    student_id: str
    assignment_id: str
    notebook: str                   # the file name the submission had to use
    status: str                     # GRADED or ERROR
    reason: str                     # why it was not graded ("" when graded)
    notes: list[str]                # what the grader noticed (converted, extra notebooks, ...)
    cell_errors: list[str]          # exceptions raised by the learner's cells
    score: float
    max_score: float
    cells: list[CellResult]
    sandbox: dict = field(default_factory=dict)  # the confinement the student process got
    wall: float | None = None       # seconds the student process ran
    seed: str | None = None         # names the run's secret ("fixed": the nbgrader path's seeds)
    fingerprint: str = ""           # scoring code + seed + submission: a re-run skips a match

    @property
    def graded(self) -> bool:
        return self.status == GRADED

    def to_json(self) -> dict:
        return {"student_id": self.student_id, "assignment_id": self.assignment_id,
                "notebook": self.notebook, "status": self.status, "reason": self.reason,
                "notes": list(self.notes), "cell_errors": list(self.cell_errors),
                "score": self.score, "max_score": self.max_score,
                "cells": [c.to_json() for c in self.cells], "sandbox": dict(self.sandbox),
                "wall": self.wall, "seed": self.seed, "fingerprint": self.fingerprint}

    @classmethod
    def from_json(cls, data: dict) -> Record:
        """Raises KeyError, TypeError or ValueError on data that is not a record."""
        return cls(str(data["student_id"]), str(data["assignment_id"]), str(data["notebook"]),
                   str(data["status"]), str(data.get("reason", "")),
                   [str(n) for n in data.get("notes", [])],
                   [str(e) for e in data.get("cell_errors", [])],
                   float(data["score"]), float(data["max_score"]),
                   [CellResult.from_json(c) for c in data["cells"]],
                   dict(data.get("sandbox") or {}), data.get("wall"), data.get("seed"),
                   str(data.get("fingerprint", "")))
