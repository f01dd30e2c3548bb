"""``outcome.Outcome``: what a run's messages say, and why a run ended early."""

import signal

import pytest

from autograder.outcome import Outcome
from autograder.sandbox import protocol

DONE = [protocol.Done(), protocol.Status(False, 1.25, 0, None)]


def _read(messages, timeout=60.0) -> Outcome:
    outcome = Outcome("ada", "fp")
    outcome.read(messages, timeout)
    return outcome


def test_a_whole_run():
    outcome = _read([protocol.Sandbox({"landlock": 6}), protocol.Cell(0, "setup"),
                     protocol.Cell(1, "f"), protocol.CellError(1, "f", "NameError: x"),
                     protocol.Sandbox({"landlock": 0}),  # written by student code: ignored
                     protocol.Observing("a"), protocol.Seen("a", {"0": {}}),
                     protocol.Observing("b"), protocol.Seen("b", error="it died"), *DONE])
    assert outcome.reason == "" and outcome.wall == 1.25
    assert outcome.sandbox == {"landlock": 6}
    assert outcome.cell_errors == ["cell f: NameError: x"]
    assert outcome.seen == {"a": {"0": {}}} and outcome.errors == {"b": "it died"}


@pytest.mark.parametrize("status, reason", [
    (protocol.Status(True, 60.0, None, int(signal.SIGKILL)),
     "timed out after 60 s while checking b (an infinite loop"),
    (protocol.Status(False, 1.0, None, int(signal.SIGKILL)),
     "crashed with SIGKILL (out of memory?) while checking b"),
    (protocol.Status(False, 1.0, None, int(signal.SIGSEGV)), "crashed with SIGSEGV while checking b"),
    (protocol.Status(False, 1.0, 3, None), "exited with code 3 while checking b"),
])
def test_a_run_that_never_said_done(status, reason):
    outcome = _read([protocol.Cell(0, "setup"), protocol.Observing("b"), status])
    assert reason in outcome.reason


def test_where_a_run_stopped_is_named():
    stopped = protocol.Status(False, 1.0, 1, None)
    assert "before running any cell" in _read([stopped]).reason
    assert "while running cell f" in _read([protocol.Cell(0, "f"), stopped]).reason


def test_what_the_reader_refused():
    big = protocol.Oversize(10 ** 8, "long")
    outcome = _read([big, protocol.Observing("a"), big, *DONE])
    assert "not read" in outcome.notes[0] and "answers to a were not read" in outcome.errors["a"]
    assert outcome.reason == ""
    flood = _read([protocol.Cell(0, "f"), protocol.Overflow(10 ** 9), *DONE])
    assert flood.reason.startswith("sent more than 32 MiB of results")
    cut = _read([protocol.Cell(0, "f"), protocol.Overflow(10 ** 9), protocol.Status()])
    assert cut.reason == "sent more than 32 MiB of results while running cell f"
