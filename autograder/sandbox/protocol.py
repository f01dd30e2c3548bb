"""What the grader and the fork server say to each other, and what it may cost the grader.

Imported by both sides (``sandbox.server`` writes, ``sandbox.client`` and ``scoring`` read);
every message is one JSON object with a ``"type"``, built by the functions below.

- The control socket (``SOCK_SEQPACKET``): the grader's ``setup`` (the fork server's
  ``sys.path``, what a student process may read; never on its command line or in its
  environment), the server's one ``ready`` message, then one
  ``job`` message per submission, sent with two file descriptors: the read end of the
  payload pipe and the write end of the result pipe.
- The payload pipe: the grading program and the checks to observe (``payload``).
- The result pipe: one JSON line per message from the student process (``sandbox``,
  ``cell``, ``cell_error``, ``observing``, ``seen``, ``done``), then the supervisor's
  ``status`` line. The grader's reader (``client.RecordReader``) adds ``oversize`` and
  ``overflow`` for what it refused to read.
"""

from __future__ import annotations

import json

# What the grader reads back from one student process. The largest honest record (one
# check's answers) is about 0.3 MB with a few dozen lists and objects; these limits leave
# room and bound what a hostile process costs the grader (README, "A bounded grader").
LINE_LIMIT = 4 * 1024 * 1024    # bytes of one record
TOTAL_LIMIT = 32 * 1024 * 1024  # bytes of one submission
CONTAINER_LIMIT = 10_000        # '[' and '{' in one record: bounds what parsing it costs
CONTROL_LIMIT = 65536           # bytes of one message on the control socket

# The types of the messages on the result pipe (and those the reader adds).
SANDBOX, CELL, CELL_ERROR = "sandbox", "cell", "cell_error"
OBSERVING, SEEN, DONE = "observing", "seen", "done"
STATUS = "status"  # the supervisor's, written last by a process that ran no student code
OVERSIZE, OVERFLOW = "oversize", "overflow"
STATUS_MARK = b'"type": "status"'  # how ``encode`` spells a status line (found without parsing)


def encode(message: dict) -> bytes:
    """One message as one line of the result pipe."""
    return json.dumps(message).encode() + b"\n"


def human(size: float) -> str:
    """A size in words, for the messages that name a limit."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}"
        size /= 1024
    return f"{size:.0f} GiB"


# --- the control socket ---------------------------------------------------------------------

def setup(path: list[str], readable: list[str], landlock: bool) -> bytes:
    """The grader's first message: the fork server's ``sys.path``, the folders a student
    process may read, and whether to use Landlock (False: tests of the degraded mode)."""
    return json.dumps({"path": path, "readable": readable, "landlock": landlock}).encode()


def ready(landlock: int, network: str, assignments: list[str]) -> bytes:
    """The server's first message: its imports are done (``network``: what isolation a student
    process gets, ``"none"`` when it cannot be cut off from the network)."""
    return json.dumps({"ready": True, "landlock": landlock, "network": network,
                       "assignments": sorted(assignments)}).encode()


def job(uid: int | None, timeout: float, memory_mb: int, nproc: int) -> bytes:
    """One submission to run: the slot's uid (root only), its limits."""
    return json.dumps({"uid": uid, "timeout": timeout, "memory_mb": memory_mb,
                       "nproc": nproc}).encode()


def decode(data: bytes) -> dict:
    """A message of the control socket or the payload pipe."""
    return json.loads(data.decode("utf-8"))


# --- the payload pipe -----------------------------------------------------------------------

def payload(assignment_id: str, program: list[tuple[str, str]], checks: dict[str, list]) -> bytes:
    """What the student process runs: ``program`` ((label, code) cells), then ``observe`` of
    each check (grade_id -> its seeds)."""
    return json.dumps({"assignment_id": assignment_id, "program": program,
                       "checks": checks}).encode()


# --- the result pipe ------------------------------------------------------------------------

def sandbox(**isolation) -> dict:
    """What confinement the student process got (written before any student code ran)."""
    return {"type": SANDBOX, **isolation}


def cell(index: int, label: str) -> dict:
    return {"type": CELL, "index": index, "label": label}


def cell_error(index: int, label: str, error: str) -> dict:
    return {"type": CELL_ERROR, "index": index, "label": label, "error": error}


def observing(grade_id: str) -> dict:
    return {"type": OBSERVING, "grade_id": grade_id}


def seen(grade_id: str, answers) -> dict:
    return {"type": SEEN, "grade_id": grade_id, "seen": answers}


def seen_error(grade_id: str, error: str) -> dict:
    return {"type": SEEN, "grade_id": grade_id, "error": error}


def done() -> dict:
    return {"type": DONE}


def status(timed_out: bool, wall: float | None, exit: int | None, signal: int | None) -> dict:
    return {"type": STATUS, "timed_out": timed_out, "wall": wall, "exit": exit, "signal": signal}


def oversize(size: int, why: str) -> dict:
    """A line the reader did not parse: ``why`` is ``"long"`` or ``"nested"``."""
    return {"type": OVERSIZE, "size": size, "why": why}


def overflow(size: int) -> dict:
    """The stream passed ``TOTAL_LIMIT``: only the status line was read after it."""
    return {"type": OVERFLOW, "size": size}
