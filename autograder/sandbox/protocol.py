"""What the grader and the fork server say to each other, and what it may cost the grader.

Imported by both sides (``sandbox.server`` writes, ``sandbox.client`` reads); this module
owns every kind of message (``Kind``), its fields (one class per kind), how it is written
(``encode``) and read (``parse``), and the limits that bound what reading costs.

- The control socket (``SOCK_SEQPACKET``): the grader's ``setup`` (the fork server's
  ``sys.path``, what a student process may read; never on its command line or in its
  environment), the server's one ``ready`` message, then one
  ``job`` message per submission, sent with two file descriptors: the read end of the
  payload pipe and the write end of the result pipe.
- The payload pipe: the grading program and the checks to observe (``payload``).
- The result pipe: one JSON line per message from the student process (``Sandbox``,
  ``Cell``, ``CellError``, ``Observing``, ``Seen``, ``Done``), then the supervisor's
  ``Status`` line. The grader's reader (``client.StreamReader``) adds ``Oversize`` and
  ``Overflow`` for what it refused to read.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import Any, Union

# What the grader reads back from one student process. The largest honest message (one
# check's answers) is about 0.3 MB with a few dozen lists and objects; these limits leave
# room and bound what a hostile process costs the grader (README, "A bounded grader").
LINE_LIMIT = 4 * 1024 * 1024    # bytes of one message
TOTAL_LIMIT = 32 * 1024 * 1024  # bytes of one submission
CONTAINER_LIMIT = 10_000        # '[' and '{' in one message: bounds what parsing it costs
CONTROL_LIMIT = 65536           # bytes of one message on the control socket
TEXT_LIMIT = 2000               # characters of an error or a label the grader keeps


class Kind(enum.Enum):
    """The kinds of message on the result pipe (and those the reader adds)."""

    SANDBOX = "sandbox"         # the confinement the student process got, before any student code
    CELL = "cell"               # a cell of the program starts
    CELL_ERROR = "cell_error"   # a cell raised
    OBSERVING = "observing"     # a check's observation starts
    SEEN = "seen"               # a check's answers, or why there are none
    DONE = "done"               # every check was observed
    STATUS = "status"           # the supervisor's, written last by a process that ran no student code
    OVERSIZE = "oversize"       # the reader's: a line it did not parse
    OVERFLOW = "overflow"       # the reader's: the stream passed ``TOTAL_LIMIT``


def _text(value: Any, limit: int = TEXT_LIMIT) -> str:
    return str(value)[:limit]


@dataclass(frozen=True)
class Sandbox:
    """What confinement the student process got (written before any student code ran)."""

    isolation: dict = field(default_factory=dict)
    kind = Kind.SANDBOX

    def fields(self) -> dict:
        return dict(self.isolation)

    @classmethod
    def read(cls, data: dict) -> Sandbox:
        return cls({k: v for k, v in data.items() if k != "type"})


@dataclass(frozen=True)
class Cell:
    index: int
    label: str
    kind = Kind.CELL

    def fields(self) -> dict:
        return {"index": self.index, "label": self.label}

    @classmethod
    def read(cls, data: dict) -> Cell:
        return cls(data.get("index"), _text(data.get("label"), 100))


@dataclass(frozen=True)
class CellError:
    index: int
    label: str
    error: str
    kind = Kind.CELL_ERROR

    def fields(self) -> dict:
        return {"index": self.index, "label": self.label, "error": self.error}

    @classmethod
    def read(cls, data: dict) -> CellError:
        return cls(data.get("index"), _text(data.get("label"), 100), _text(data.get("error")))


@dataclass(frozen=True)
class Observing:
    grade_id: str
    kind = Kind.OBSERVING

    def fields(self) -> dict:
        return {"grade_id": self.grade_id}

    @classmethod
    def read(cls, data: dict) -> Observing | None:
        return cls(data["grade_id"]) if isinstance(data.get("grade_id"), str) else None


@dataclass(frozen=True)
class Seen:
    """A check's answers (``answers``), or why there are none (``error``)."""

    grade_id: str
    answers: Any = None
    error: str | None = None
    kind = Kind.SEEN

    def fields(self) -> dict:
        if self.error is not None:
            return {"grade_id": self.grade_id, "error": self.error}
        return {"grade_id": self.grade_id, "seen": self.answers}

    @classmethod
    def read(cls, data: dict) -> Seen | None:
        if not isinstance(data.get("grade_id"), str):
            return None
        if "seen" in data:
            return cls(data["grade_id"], data["seen"])
        return cls(data["grade_id"], error=_text(data.get("error")))


@dataclass(frozen=True)
class Done:
    kind = Kind.DONE

    def fields(self) -> dict:
        return {}

    @classmethod
    def read(cls, data: dict) -> Done:
        return cls()


@dataclass(frozen=True)
class Status:
    """How the student process ended: the supervisor's, the last line of the stream."""

    timed_out: bool = False
    wall: float | None = None
    exit: int | None = 0
    signal: int | None = None
    kind = Kind.STATUS

    def fields(self) -> dict:
        return {"timed_out": self.timed_out, "wall": self.wall, "exit": self.exit,
                "signal": self.signal}

    @classmethod
    def read(cls, data: dict) -> Status:
        return cls(bool(data.get("timed_out")), data.get("wall"), data.get("exit"),
                   data.get("signal"))


@dataclass(frozen=True)
class Oversize:
    """A line the reader did not parse: ``why`` is ``"long"`` or ``"nested"``."""

    size: int
    why: str
    kind = Kind.OVERSIZE


@dataclass(frozen=True)
class Overflow:
    """The stream passed ``TOTAL_LIMIT``: only the status line was read after it."""

    size: int
    kind = Kind.OVERFLOW


Message = Union[Sandbox, Cell, CellError, Observing, Seen, Done, Status, Oversize, Overflow]

# What a line of the stream may be (the reader's own kinds never come from the stream).
WRITTEN = {cls.kind.value: cls for cls in (Sandbox, Cell, CellError, Observing, Seen, Done, Status)}
STATUS_MARK = b'"type": "status"'  # how ``encode`` spells a status line (found without parsing)


def encode(message: Message) -> bytes:
    """One message as one line of the result pipe."""
    return json.dumps({"type": message.kind.value, **message.fields()}).encode() + b"\n"


def encode_seen(grade_id: str, answers: bytes) -> bytes:
    """The line of ``Seen(grade_id, answers)`` around answers that are JSON already (the
    student process encodes an observation once, where it is made)."""
    head = encode(Seen(grade_id, None))
    return head[:head.rindex(b"null")] + answers + b"}\n"


def parse(line: bytes) -> Message | None:
    """The message of one line of the result pipe; None for a line that is none."""
    try:
        data = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("type") not in WRITTEN:
        return None
    return WRITTEN[data["type"]].read(data)


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
