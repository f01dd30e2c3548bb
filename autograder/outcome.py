"""What one run of a submission came to: the student process's messages read into an
``Outcome``, the one thing the judge (``scoring.judge``) takes.

Runs in the grader's process. Each kind of message (``sandbox.protocol.Kind``) says one
thing: what confinement the process got, which cell or check it was in, what a cell
raised, what a check answered, how the process ended, and what the grader's reader refused.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from typing import Any

from autograder.sandbox import protocol

SIGNALS = {int(s): s.name for s in signal.Signals}


@dataclass
class Outcome:
    """One submission of one student: what grading it came to, before any check is judged.

    ``reason`` says why the run did not reach its end (or why nothing was run: an
    unreadable notebook), "" when it did; ``seen`` holds each observed check's answers and
    ``errors`` why a check has none.
    """

    student_id: str
    fingerprint: str                # what a re-run compares (``scoring.Grading.fingerprint``)
    reason: str = ""
    notes: list[str] = field(default_factory=list)
    cell_errors: list[str] = field(default_factory=list)
    seen: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    sandbox: dict = field(default_factory=dict)
    wall: float | None = None

    def read(self, messages: list[protocol.Message], timeout: float) -> None:
        """Take in the messages of the run (``sandbox.client.Zygote.run``: the supervisor's
        ``Status`` last); ``timeout``: the run's, named when it was reached."""
        where = "before running any cell"
        observing = None
        overflow = done = False
        status = protocol.Status()
        for message in messages:
            if isinstance(message, protocol.Sandbox):
                if not self.sandbox:  # the first one: written before student code ran
                    self.sandbox = dict(message.isolation)
            elif isinstance(message, protocol.Cell):
                where = f"while running cell {message.label}"
            elif isinstance(message, protocol.CellError):
                self.cell_errors.append(f"cell {message.label}: {message.error}")
            elif isinstance(message, protocol.Observing):
                observing = message.grade_id
                where = f"while checking {observing[:100]}"
            elif isinstance(message, protocol.Seen):
                if message.error is None:
                    self.seen[message.grade_id] = message.answers
                else:
                    self.errors[message.grade_id] = message.error
            elif isinstance(message, protocol.Oversize):
                problem = (f"more than {protocol.human(protocol.LINE_LIMIT)} in one line or "
                           f"more than {protocol.CONTAINER_LIMIT} nested lists and objects")
                if observing is not None:
                    self.errors[observing] = f"the answers to {observing} were not read: {problem}"
                else:
                    self.notes.append(f"the student process wrote a message that was not read "
                                      f"({problem})")
            elif isinstance(message, protocol.Overflow):
                overflow = True
            elif isinstance(message, protocol.Done):
                done = True
            elif isinstance(message, protocol.Status):
                status = message
        self.wall = status.wall
        if not done:
            self.reason = _ended_early(status, overflow, where, timeout)
        elif overflow:
            self.reason = f"sent more than {protocol.human(protocol.TOTAL_LIMIT)} of results"


def _ended_early(status: protocol.Status, overflow: bool, where: str, timeout: float) -> str:
    """Why a run that never said ``Done`` ended, in words."""
    if overflow:
        return f"sent more than {protocol.human(protocol.TOTAL_LIMIT)} of results {where}"
    if status.timed_out:
        return (f"timed out after {timeout:g} s {where} (an infinite loop, a call that never "
                "returns, or a fork bomb?)")
    if status.signal:
        name = SIGNALS.get(status.signal, f"signal {status.signal}")
        hint = " (out of memory?)" if name in ("SIGKILL", "SIGABRT") else ""
        return f"the student process crashed with {name}{hint} {where}"
    return (f"the student process exited with code {status.exit} {where} "
            "(sys.exit/os._exit in a solution cell?)")
