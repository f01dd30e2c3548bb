"""What the grader writes: Gradescope results, grades.csv, feedback, merges, the gradebook.

Layout of a results folder::

    RESULTS_DIR/grades.csv                                one row per student, assignment, grade cell
    RESULTS_DIR/totals.csv                                one row per student: a total per assignment
    RESULTS_DIR/<student_id>/<assignment_id>/results.json  Gradescope format (+ extra_data: the record)
    RESULTS_DIR/<student_id>/feedback.md                   readable feedback, every assignment

``results.json`` is written atomically and is what a re-run checks to skip a pair;
``grades.csv`` and the feedback are rebuilt from the ``results.json`` files, so a merge of
shards is a copy of the pair folders plus a rebuild. What is read back is bounded
(``RECORD_LIMIT``) and validated against its folder (``read_results``): ``merge`` and
``import-grades`` refuse a folder with a record that is not what its place says, and
``merge`` refuses results graded under different secrets. The console output (progress
bar, summary table) is ``report``'s.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

from autograder.errors import UsageError
from autograder.records import ERROR, GRADED, STUB, Record

CSV_FIELDS = ["student_id", "assignment_id", "grade_id", "score", "max_score"]
RECORD_LIMIT = 16 * 1024 * 1024  # bytes: the largest results.json read back (ours: under 1 MB)


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
            output = "\n".join(f"- {f}" for f in failure_lines(cell.failures))
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
    """The pair's record in ``out``, or None when there is none that is valid."""
    record, _ = read_results(record_path(out, student_id, assignment_id))
    return record


def read_results(path: Path, assignments: dict | None = None) -> tuple[Record | None, str]:
    """The record of ``<student_id>/<assignment_id>/results.json``, checked against its folder
    (and against ``assignments``' grade cells and points when given), or None and why not.
    Bounded: at most ``RECORD_LIMIT`` bytes are read; nesting too deep for the JSON parser
    is a reason, never an exception."""
    path = Path(path)
    try:
        if path.is_symlink() or not path.is_file():
            return None, "not a regular file"
        with open(path, "rb") as stream:
            raw = stream.read(RECORD_LIMIT + 1)
        if len(raw) > RECORD_LIMIT:
            return None, f"larger than {RECORD_LIMIT // 2**20} MiB: not a results file of this grader"
        data = json.loads(raw.decode("utf-8"))
    except RecursionError:
        return None, "JSON nested too deeply: not a results file of this grader"
    except (OSError, ValueError) as exc:
        return None, f"not readable JSON ({str(exc)[:200]})"
    if not isinstance(data, dict) or not isinstance(data.get("extra_data"), dict):
        return None, "no grader record in it (extra_data)"
    try:
        record = Record.from_json(data["extra_data"])
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
        return None, f"not a grader record ({type(exc).__name__}: {str(exc)[:200]})"
    problem = _invalid(record, data, path.parent.parent.name, path.parent.name, assignments)
    return (None, problem) if problem else (record, "")


def _invalid(record: Record, data: dict, student_id: str, assignment_id: str,
             assignments: dict | None) -> str:
    """Why a record does not belong where it was found ("" when it does)."""
    if record.student_id != student_id:
        return f"its record is for student {record.student_id[:100]!r}, not {student_id!r} (its folder)"
    if record.assignment_id != assignment_id:
        return (f"its record is for assignment {record.assignment_id[:100]!r}, not "
                f"{assignment_id!r} (its folder)")
    if record.status not in (GRADED, ERROR):
        return f"unknown status {record.status[:100]!r}"
    numbers = [record.score, record.max_score] + [x for c in record.cells for x in (c.score, c.max_score)]
    if not all(math.isfinite(x) for x in numbers):
        return "a score that is not a finite number"
    if any(not 0 <= c.score <= c.max_score for c in record.cells):
        return "a grade cell scored outside 0 .. its points"
    if not (math.isclose(record.score, sum(c.score for c in record.cells), abs_tol=1e-9)
            and math.isclose(record.max_score, sum(c.max_score for c in record.cells), abs_tol=1e-9)
            and isinstance(data.get("score"), (int, float))
            and math.isclose(float(data["score"]), record.score, abs_tol=1e-9)):
        return "its total does not add up from its grade cells"
    if any(not isinstance(v, (str, int, float, bool, type(None))) for v in record.sandbox.values()):
        return "an unexpected value in its sandbox description"
    if assignments is not None:
        assignment = assignments.get(assignment_id)
        if assignment is None:
            return f"{assignment_id!r} is not an assignment of this course"
        if [(c.grade_id, c.max_score) for c in record.cells] != \
                [(c.grade_id, float(c.points)) for c in assignment.cells]:
            return ("graded with other grade cells or points than the course has now: grade it "
                    "again")
    return ""


def read_folder(folder: Path, assignments: dict | None = None) -> tuple[list[tuple[Path, Record]], list[str]]:
    """Every pair record under a results folder, sorted, and a line for each one refused."""
    found, refused = [], []
    for path in sorted(Path(folder).glob("*/*/results.json")):
        record, problem = read_results(path, assignments)
        if record is None:
            refused.append(f"{path}: {problem}")
        else:
            found.append((path, record))
    return found, refused


def load_records(out: Path, assignments: dict | None = None, strict: bool = False) -> list[Record]:
    """Every pair record under a results folder, sorted by student and assignment; invalid
    ones are left out, or with ``strict`` refused (``UsageError`` naming each)."""
    found, refused = read_folder(out, assignments)
    if strict:
        refuse(refused)
        if not found:
            raise UsageError(f"{out} holds no results (<student_id>/<assignment_id>/results.json)")
    return sorted((r for _, r in found), key=lambda r: (r.student_id, r.assignment_id))


def refuse(problems: list[str]) -> None:
    if problems:
        raise UsageError(f"{len(problems)} result(s) refused, nothing was written:\n" +
                         "\n".join(f"  {p}" for p in problems))


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


def totals_csv(records: list[Record]) -> str:
    """One row per student: the score and the points of each assignment, the total, and the
    assignments that could not be graded (scored 0) or have no result here (left empty)."""
    ids = sorted({r.assignment_id for r in records})
    best = {a: max(r.max_score for r in records if r.assignment_id == a) for a in ids}
    fields = ["student_id"] + [f for a in ids for f in (a, f"{a}_max")] + \
        ["total", "total_max", "problems"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fields, lineterminator="\n")
    writer.writeheader()
    for student in sorted({r.student_id for r in records}):
        mine = {r.assignment_id: r for r in records if r.student_id == student}
        row, problems = {"student_id": student}, []
        for a in ids:
            row[a] = number(mine[a].score) if a in mine else ""
            row[f"{a}_max"] = number(best[a])
            if a not in mine:
                problems.append(f"{a}: no result")
            elif not mine[a].graded:
                problems.append(f"{a}: not graded")
        row["total"] = number(sum(r.score for r in mine.values()))
        row["total_max"] = number(sum(best.values()))
        row["problems"] = "; ".join(problems)
        writer.writerow(row)
    return buffer.getvalue()


def failure_lines(failures: list[str]) -> list[str]:
    """Each message once, in order, with a count when it was repeated: ``... (x5)``."""
    counts = Counter(failures)
    return [f if counts[f] == 1 else f"{f} (x{counts[f]})" for f in dict.fromkeys(failures)]


def not_attempted(record: Record) -> list[str]:
    """Exercises whose every grade cell failed only because the stub still raises
    ``NotImplementedError``: said once, not once per case."""
    exercises: dict[str, list] = {}
    for cell in record.cells:
        if cell.exercise:
            exercises.setdefault(cell.exercise, []).append(cell)
    return [name for name, cells in exercises.items()
            if all(c.failures and all(STUB in f for f in c.failures) for c in cells)]


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
        blank = not_attempted(record) if not record.reason else []
        for exercise in blank:
            cells = [c for c in record.cells if c.exercise == exercise]
            lines.append(f"- **{exercise}**: not attempted yet (it still raises NotImplementedError): "
                         f"0 / {number(sum(c.max_score for c in cells))} "
                         f"({', '.join(c.grade_id for c in cells)})")
        for cell in record.cells:
            if cell.exercise in blank:
                continue
            mark = "passed" if not cell.failures else "failed"
            lines.append(f"- **{cell.grade_id}** ({cell.exercise}): "
                         f"{number(cell.score)} / {number(cell.max_score)}, {mark}")
            for failure in failure_lines(cell.failures):
                lines.append(f"    - {failure}")
        lines.append("")
    return "\n".join(lines)


def write_outputs(out: Path, records: list[Record]) -> None:
    """grades.csv and totals.csv for ``records``, and each student's feedback (from their
    records among them)."""
    out = Path(out)
    write_atomic(out / "grades.csv", grades_csv(records))
    write_atomic(out / "totals.csv", totals_csv(records))
    by_student: dict[str, list[Record]] = {}
    for record in sorted(records, key=lambda r: (r.student_id, r.assignment_id)):
        by_student.setdefault(record.student_id, []).append(record)
    for student, mine in by_student.items():
        write_atomic(out / student / "feedback.md", feedback(mine))


def _secret_name(seed: str | None) -> str:
    return {"fixed": "fixed seeds", None: "an unrecorded secret"}.get(seed, f"secret {seed}")


def merge(sources: list[Path], out: Path, assignments: dict | None = None) -> list[Record]:
    """Copy every pair folder of ``sources`` into ``out``; rebuild grades.csv, totals.csv and
    feedback. Refused (``UsageError``, nothing written) when a source holds no results or a
    record that is not valid (``read_results``), or when the records (with those already in
    ``out``) were graded under different secrets."""
    out = Path(out)
    sources = [Path(s) for s in sources]
    refused, found = [], {}
    for source in sources + ([out] if out.is_dir() and out not in sources else []):
        records, problems = read_folder(source, assignments)
        refused += problems
        if not records and not problems and source != out:
            refused.append(f"{source}: holds no results (<student_id>/<assignment_id>/results.json)")
        found[source] = records
    refuse(refused)
    secrets: dict[str | None, list[Path]] = {}
    for source, records in found.items():
        for seed in dict.fromkeys(r.seed for _, r in records):
            secrets.setdefault(seed, []).append(source)
    if len(secrets) > 1:
        raise UsageError("the results were graded under different secrets, so on different "
                         "inputs: " + "; ".join(
                             f"{_secret_name(s)} in "
                             f"{', '.join(map(str, where))}" for s, where in secrets.items()) +
                         ". Grade every shard of a class with the same --seed-file")
    out.mkdir(parents=True, exist_ok=True)
    seen: dict[tuple[str, str], Path] = {}
    merged = {(r.student_id, r.assignment_id): r for _, r in found.get(out, [])}
    for source in sources:
        for path, record in found[source]:
            key = (path.parent.parent.name, path.parent.name)
            merged[key] = record
            if key in seen and seen[key] != source:
                print(f"merge: {key[0]}/{key[1]} appears in {seen[key]} and {source}; "
                      f"keeping {source}", file=sys.stderr)
            seen[key] = source
            target = record_path(out, *key)
            if path.resolve() != target.resolve():
                with open(path, "rb") as stream:          # bounded, as it was when validated
                    write_atomic(target, stream.read(RECORD_LIMIT).decode("utf-8"))
    records = [merged[key] for key in sorted(merged)]
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
