"""What the grader writes: Gradescope results, grades.csv, feedback, merges, the gradebook.

Layout of a results folder::

    RESULTS_DIR/grades.csv                                one row per student, assignment, grade cell
    RESULTS_DIR/<student_id>/<assignment_id>/results.json  Gradescope format (+ extra_data: the record)
    RESULTS_DIR/<student_id>/feedback.md                   readable feedback, every assignment

``results.json`` is written atomically and is what a re-run checks to skip a pair;
``grades.csv`` and the feedback are rebuilt from the ``results.json`` files, so a merge of
shards is a copy of the pair folders plus a rebuild. The console output (progress bar,
summary table) is ``report``'s.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import tempfile
from pathlib import Path

from autograder.records import Record

CSV_FIELDS = ["student_id", "assignment_id", "grade_id", "score", "max_score"]


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# --- Gradescope results -----------------------------------------------------------------------

def cell_title(grade_id: str, exercise: str) -> str:
    """A grade cell's name in Gradescope: ``grade_id (exercise)``."""
    return f"{grade_id} ({exercise})" if exercise else grade_id


def results_json(record: Record) -> dict:
    """The Gradescope autograder format: https://gradescope-autograders.readthedocs.io."""
    tests = []
    for cell in record.cells:
        if cell.failures:
            output = "\n".join(f"- {f}" for f in cell.failures)
        else:
            output = "passed"
        tests.append({
            "name": cell_title(cell.grade_id, cell.exercise),
            "score": cell.score, "max_score": cell.max_score, "output": output,
            "visibility": "after_published" if cell.hidden else "visible",
        })
    lines = []
    if record.reason:
        lines.append(f"Problem: {record.reason}")
    lines += record.notes + record.cell_errors
    return {"score": record.score, "output": "\n".join(lines), "visibility": "visible",
            "stdout_visibility": "hidden", "tests": tests, "extra_data": record.to_json()}


def record_path(out: Path, student_id: str, assignment_id: str) -> Path:
    return Path(out) / student_id / assignment_id / "results.json"


def write_record(out: Path, record: Record) -> None:
    text = json.dumps(results_json(record), indent=1)
    write_atomic(record_path(out, record.student_id, record.assignment_id), text)


def load_record(out: Path, student_id: str, assignment_id: str) -> Record | None:
    path = record_path(out, student_id, assignment_id)
    try:
        return Record.from_json(json.loads(path.read_text())["extra_data"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def load_records(out: Path) -> list[Record]:
    """Every pair record under a results folder, sorted by student and assignment."""
    records = []
    for path in sorted(Path(out).glob("*/*/results.json")):
        record = load_record(out, path.parent.parent.name, path.parent.name)
        if record is not None:
            records.append(record)
    return sorted(records, key=lambda r: (r.student_id, r.assignment_id))


# --- grades.csv and feedback ------------------------------------------------------------------

def grades_csv(records: list[Record]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for record in records:
        for cell in record.cells:
            writer.writerow({"student_id": record.student_id,
                             "assignment_id": record.assignment_id, "grade_id": cell.grade_id,
                             "score": number(cell.score), "max_score": number(cell.max_score)})
    return buffer.getvalue()


def number(value: float) -> str:
    return f"{value:g}"


def feedback(records: list[Record]) -> str:
    """Markdown for one student: every assignment, every failed check with its message."""
    student = records[0].student_id
    lines = [f"# Feedback for {student}", ""]
    for record in records:
        lines += [f"## {record.assignment_id}: {number(record.score)} / "
                  f"{number(record.max_score)}", ""]
        if record.reason:
            lines += [f"**Problem with this submission:** {record.reason}", ""]
        for note in record.notes:
            lines.append(f"- Note: {note}")
        for error in record.cell_errors:
            lines.append(f"- Error in {error}")
        if record.notes or record.cell_errors:
            lines.append("")
        for cell in record.cells:
            mark = "passed" if not cell.failures else "failed"
            lines.append(f"- **{cell.grade_id}** ({cell.exercise}): "
                         f"{number(cell.score)} / {number(cell.max_score)}, {mark}")
            for failure in cell.failures:
                lines.append(f"    - {failure}")
        lines.append("")
    return "\n".join(lines)


def write_outputs(out: Path, records: list[Record]) -> None:
    """grades.csv for ``records`` and each student's feedback (from all of their records)."""
    out = Path(out)
    write_atomic(out / "grades.csv", grades_csv(records))
    students = sorted({r.student_id for r in records})
    for student in students:
        mine = [r for r in load_records_for(out, student)]
        if mine:
            write_atomic(out / student / "feedback.md", feedback(mine))


def load_records_for(out: Path, student: str) -> list[Record]:
    folder = Path(out) / student
    records = []
    for path in sorted(folder.glob("*/results.json")):
        record = load_record(out, student, path.parent.name)
        if record is not None:
            records.append(record)
    return records


def merge(sources: list[Path], out: Path) -> list[Record]:
    """Copy every pair folder of ``sources`` into ``out``; rebuild grades.csv and feedback."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    seen: dict[tuple[str, str], Path] = {}
    for source in map(Path, sources):
        for path in sorted(source.glob("*/*/results.json")):
            key = (path.parent.parent.name, path.parent.name)
            if key in seen and seen[key] != source:
                print(f"merge: {key[0]}/{key[1]} appears in {seen[key]} and {source}; "
                      f"keeping {source}", file=sys.stderr)
            seen[key] = source
            target = record_path(out, *key)
            if path.resolve() != target.resolve():
                write_atomic(target, path.read_text())
    records = load_records(out)
    write_outputs(out, records)
    return records


# --- the nbgrader gradebook -------------------------------------------------------------------

def import_gradebook(records: list[Record], db_url: str, assignments: dict) -> int:
    """Store the scores as nbgrader auto-grades, so that ``nbgrader export`` reports them.

    The assignment, its notebook and grade cells are created from the instructor's notebook
    (with the same points) when the gradebook does not have them yet.
    """
    from nbgrader.api import Gradebook, MissingEntry

    count = 0
    with Gradebook(db_url) as gb:
        for assignment_id in sorted({r.assignment_id for r in records}):
            assignment = assignments[assignment_id]
            notebook_id = Path(assignment.notebook).stem
            gb.update_or_create_assignment(assignment_id)
            try:
                gb.find_notebook(notebook_id, assignment_id)
            except MissingEntry:
                gb.add_notebook(notebook_id, assignment_id)
            for cell in assignment.cells:
                gb.update_or_create_grade_cell(cell.grade_id, notebook_id, assignment_id,
                                               max_score=cell.points, cell_type="code")
        for record in records:
            gb.update_or_create_student(record.student_id)
            try:
                gb.find_submission(record.assignment_id, record.student_id)
            except MissingEntry:
                gb.add_submission(record.assignment_id, record.student_id)
            notebook_id = Path(record.notebook).stem
            for cell in record.cells:
                grade = gb.find_grade(cell.grade_id, notebook_id, record.assignment_id,
                                      record.student_id)
                grade.auto_score = cell.score
                grade.needs_manual_grade = False
                count += 1
            gb.db.commit()
    return count
