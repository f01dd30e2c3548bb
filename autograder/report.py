"""What the grader prints: a progress bar while it grades, a summary table at the end."""

from __future__ import annotations

import sys
import time

from autograder.formats import number
from autograder.records import Record


def summary_table(records: list[Record], assignments: dict | None = None) -> str:
    """Per assignment: submissions, mean, min, max (out of the maximum) and errors."""
    rows = []
    for assignment_id in sorted({r.assignment_id for r in records}):
        mine = [r for r in records if r.assignment_id == assignment_id]
        scores = [r.score for r in mine]
        best = mine[0].max_score
        errors = sum(not r.graded for r in mine)
        rows.append([assignment_id, str(len(mine)), f"{sum(scores) / len(scores):.2f}",
                     number(min(scores)), number(max(scores)), number(best), str(errors)])
    header = ["assignment", "graded", "mean", "min", "max", "out of", "errors"]
    widths = [max(len(x) for x in column) for column in zip(header, *rows, strict=True)]
    line = " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    table = [line, "-+-".join("-" * w for w in widths)]
    table += [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    sandboxes = {r.sandbox.get("landlock") for r in records if r.sandbox}
    if 0 in sandboxes:
        table.append("WARNING: graded without Landlock: student code could read every file its "
                     "user may read (world-readable solutions, references and other students' "
                     "submissions included) and leave files for later students in world-writable "
                     "folders; the other limits still applied")
    return "\n".join(table)


class Progress:
    """A one-line progress bar with rate and ETA on stderr (plain lines when not a tty)."""

    def __init__(self, total: int, resumed: int = 0, enabled: bool = True, stream=None):
        self.total, self.done, self.errors = total, 0, 0
        self.skipped = 0  # results of an earlier run, kept
        self.stream = stream or sys.stderr
        self.enabled = enabled and total > 0
        self.tty = self.enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.monotonic()
        self.last = 0.0
        self.shown = -1
        if self.enabled and resumed:
            print(f"resuming: {resumed} of {total} already graded (kept where unchanged)",
                  file=self.stream)
        self._show(force=True)

    def advance(self, error: bool = False, kept: bool = False) -> None:
        """One more pair: graded (``error``: not graded), or ``kept`` from an earlier run."""
        self.done += 1
        self.errors += bool(error)
        self.skipped += bool(kept)
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


def not_graded(skipped: list[str], records: list[Record], failures: list[str]) -> str:
    """What the console names after a run, even when quiet: each thing under the submissions
    folder that was not graded (``submissions.discover``), each submission that could not be
    graded with its reason, and each grader failure."""
    lines = [f"note: {line}" for line in skipped]
    errored = [r for r in records if not r.graded]
    if errored:
        lines.append(f"{len(errored)} submission(s) could not be graded (scored 0; the feedback "
                     "says why):")
        lines += [f"  {r.student_id}/{r.assignment_id}: {r.reason}" for r in errored]
    lines += failures
    return "".join(line + "\n" for line in lines)
