"""What the grader writes: Gradescope results, grades.csv, feedback, the summary, the gradebook.

Layout of a results folder::

    RESULTS_DIR/grades.csv                                one row per student, assignment, grade cell
    RESULTS_DIR/<student_id>/<assignment_id>/results.json  Gradescope format (+ extra_data: the record)
    RESULTS_DIR/<student_id>/feedback.md                   readable feedback, every assignment

``results.json`` is written atomically and is what a re-run checks to skip a pair;
``grades.csv`` and the feedback are rebuilt from the ``results.json`` files, so a merge of
shards is a copy of the pair folders plus a rebuild.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

CSV_FIELDS = ["student_id", "assignment_id", "grade_id", "score", "max_score"]


def human(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}"
        size /= 1024
    return f"{size:.0f} GiB"


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

def results_json(record: dict) -> dict:
    """The Gradescope autograder format: https://gradescope-autograders.readthedocs.io."""
    tests = []
    for cell in record["cells"]:
        if cell["failures"]:
            output = "\n".join(f"- {f}" for f in cell["failures"])
        else:
            output = "passed"
        tests.append({
            "name": f"{cell['grade_id']} ({cell['exercise']})" if cell["exercise"] else cell["grade_id"],
            "score": cell["score"], "max_score": cell["max_score"], "output": output,
            "visibility": "after_published" if cell["hidden"] else "visible",
        })
    lines = []
    if record["reason"]:
        lines.append(f"Problem: {record['reason']}")
    lines += record.get("notes", []) + record.get("cell_errors", [])
    return {"score": record["score"], "output": "\n".join(lines), "visibility": "visible",
            "stdout_visibility": "hidden", "tests": tests, "extra_data": record}


def record_path(out: Path, student_id: str, assignment_id: str) -> Path:
    return Path(out) / student_id / assignment_id / "results.json"


def write_record(out: Path, record: dict) -> None:
    text = json.dumps(results_json(record), indent=1)
    write_atomic(record_path(out, record["student_id"], record["assignment_id"]), text)


def load_record(out: Path, student_id: str, assignment_id: str) -> dict | None:
    path = record_path(out, student_id, assignment_id)
    try:
        return json.loads(path.read_text())["extra_data"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def load_records(out: Path) -> list[dict]:
    """Every pair record under a results folder, sorted by student and assignment."""
    records = []
    for path in sorted(Path(out).glob("*/*/results.json")):
        record = load_record(out, path.parent.parent.name, path.parent.name)
        if record is not None:
            records.append(record)
    return sorted(records, key=lambda r: (r["student_id"], r["assignment_id"]))


# --- grades.csv and feedback ------------------------------------------------------------------

def grades_csv(records: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for record in records:
        for cell in record["cells"]:
            writer.writerow({"student_id": record["student_id"],
                             "assignment_id": record["assignment_id"], "grade_id": cell["grade_id"],
                             "score": _number(cell["score"]), "max_score": _number(cell["max_score"])})
    return buffer.getvalue()


def _number(value: float) -> str:
    return f"{value:g}"


def feedback(records: list[dict]) -> str:
    """Markdown for one student: every assignment, every failed check with its message."""
    student = records[0]["student_id"]
    lines = [f"# Feedback for {student}", ""]
    for record in records:
        lines += [f"## {record['assignment_id']}: {_number(record['score'])} / "
                  f"{_number(record['max_score'])}", ""]
        if record["reason"]:
            lines += [f"**Problem with this submission:** {record['reason']}", ""]
        for note in record.get("notes", []):
            lines.append(f"- Note: {note}")
        for error in record.get("cell_errors", []):
            lines.append(f"- Error in {error}")
        if record.get("notes") or record.get("cell_errors"):
            lines.append("")
        for cell in record["cells"]:
            mark = "passed" if not cell["failures"] else "failed"
            lines.append(f"- **{cell['grade_id']}** ({cell['exercise']}): "
                         f"{_number(cell['score'])} / {_number(cell['max_score'])}, {mark}")
            for failure in cell["failures"]:
                lines.append(f"    - {failure}")
        lines.append("")
    return "\n".join(lines)


def write_outputs(out: Path, records: list[dict]) -> None:
    """grades.csv for ``records`` and each student's feedback (from all of their records)."""
    out = Path(out)
    write_atomic(out / "grades.csv", grades_csv(records))
    students = sorted({r["student_id"] for r in records})
    for student in students:
        mine = [r for r in load_records_for(out, student)]
        if mine:
            write_atomic(out / student / "feedback.md", feedback(mine))


def load_records_for(out: Path, student: str) -> list[dict]:
    folder = Path(out) / student
    records = []
    for path in sorted(folder.glob("*/results.json")):
        record = load_record(out, student, path.parent.name)
        if record is not None:
            records.append(record)
    return records


def merge(sources: list[Path], out: Path) -> list[dict]:
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


# --- summary and progress ---------------------------------------------------------------------

def summary_table(records: list[dict], assignments: dict | None = None) -> str:
    """Per assignment: submissions, mean, min, max (out of the maximum) and errors."""
    rows = []
    for assignment_id in sorted({r["assignment_id"] for r in records}):
        mine = [r for r in records if r["assignment_id"] == assignment_id]
        scores = [r["score"] for r in mine]
        best = mine[0]["max_score"]
        errors = sum(r["status"] != "graded" for r in mine)
        rows.append([assignment_id, str(len(mine)), f"{sum(scores) / len(scores):.2f}",
                     _number(min(scores)), _number(max(scores)), _number(best), str(errors)])
    header = ["assignment", "graded", "mean", "min", "max", "out of", "errors"]
    widths = [max(len(x) for x in column) for column in zip(header, *rows, strict=True)]
    line = " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    table = [line, "-+-".join("-" * w for w in widths)]
    table += [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    sandboxes = {r.get("sandbox", {}).get("landlock") for r in records if r.get("sandbox")}
    if 0 in sandboxes:
        table.append("WARNING: Landlock is unavailable on this kernel: student code could read "
                     "files the grader's user can read (the other limits still applied)")
    return "\n".join(table)


class Progress:
    """A one-line progress bar with rate and ETA on stderr (plain lines when not a tty)."""

    def __init__(self, total: int, done: int = 0, enabled: bool = True, stream=None):
        self.total, self.done, self.errors = total, done, 0
        self.skipped = done
        self.stream = stream or sys.stderr
        self.enabled = enabled and total > 0
        self.tty = self.enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.monotonic()
        self.last = 0.0
        self.shown = -1
        if self.enabled and done:
            print(f"resuming: {done} of {total} already graded", file=self.stream)
        self._show(force=True)

    def advance(self, error: bool = False) -> None:
        self.done += 1
        self.errors += bool(error)
        self._show()

    def _show(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self.last < (0.2 if self.tty else 10) and self.done < self.total:
            return
        if not self.tty and not force and self.done == self.shown:
            return
        self.shown = self.done
        self.last = now
        elapsed = now - self.start
        fresh = self.done - self.skipped
        rate = fresh / elapsed if elapsed > 0 and fresh else 0.0
        eta = (self.total - self.done) / rate if rate else 0.0
        width = 30
        filled = int(width * self.done / self.total)
        text = (f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} "
                f"{rate:.1f}/s ETA {int(eta) // 60}:{int(eta) % 60:02d} errors {self.errors}")
        if self.tty:
            self.stream.write("\r" + text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled:
            if self.tty or self.done < self.total:
                self._show(force=True)
            if self.tty:
                self.stream.write("\n")
            elapsed = time.monotonic() - self.start
            self.stream.write(f"graded {self.done - self.skipped} submission(s) in {elapsed:.1f} s\n")
            self.stream.flush()


# --- the nbgrader gradebook -------------------------------------------------------------------

def import_gradebook(records: list[dict], db_url: str, assignments: dict) -> int:
    """Store the scores as nbgrader auto-grades, so that ``nbgrader export`` reports them.

    The assignment, its notebook and grade cells are created from the instructor's notebook
    (with the same points) when the gradebook does not have them yet.
    """
    from nbgrader.api import Gradebook, MissingEntry

    count = 0
    with Gradebook(db_url) as gb:
        for assignment_id in sorted({r["assignment_id"] for r in records}):
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
            gb.update_or_create_student(record["student_id"])
            try:
                gb.find_submission(record["assignment_id"], record["student_id"])
            except MissingEntry:
                gb.add_submission(record["assignment_id"], record["student_id"])
            notebook_id = Path(record["notebook"]).stem
            for cell in record["cells"]:
                grade = gb.find_grade(cell["grade_id"], notebook_id, record["assignment_id"],
                                      record["student_id"])
                grade.auto_score = cell["score"]
                grade.needs_manual_grade = False
                count += 1
            gb.db.commit()
    return count


def copy_tree(source: Path, target: Path) -> None:
    shutil.copytree(source, target, dirs_exist_ok=True)
