"""The grader's side of the sandbox: start the fork server, send jobs, read what comes back.

``Zygote`` starts ``python -m autograder.sandbox`` (``sandbox.server``) and sends it one job
per submission; ``StreamReader`` splits the result stream into messages at a bounded cost;
``slot_uids`` and ``nproc_limit`` are the policy for job slots and processes.
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from autograder.errors import GraderError
from autograder.sandbox import confine, protocol

# What the fork server inherits from the grader's environment: enough to load Python and its
# libraries, nothing else (no tokens, no paths of the course, the submissions or the results:
# the strings of a process's first environment stay on its stack, where a student process
# forked from it could read them whatever ``os.environ`` says).
# ``AUTOGRADER_FRESH_PER`` too: observing in a fresh fork per case rather than per check
# (``sandbox.server.FRESH_PER``).
ENVIRONMENT = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "LD_LIBRARY_PATH", "AUTOGRADER_FRESH_PER")
# What the fork server's environment sets: Matplotlib without a display, one thread, and
# glibc's heap in transparent huge pages where the kernel allows it (``madvise`` mode): the
# heap of a process that imported torch, about 120 MB, is then copied by every fork as 2 MB
# entries rather than 4 KB ones, and the forks that observe a submission's checks
# (``sandbox.server.observe_fresh``) cost about a fifth less CPU (``benchmarks/fresh_state_cost.py``).
# Nothing else changes: glibc older than 2.35 and kernels without transparent huge pages
# ignore it.
SETTINGS = {"MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1", "GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"}
# Tests only: behave as if the kernel had no Landlock (the degraded mode).
NO_LANDLOCK = "AUTOGRADER_NO_LANDLOCK"

# The fork server's command line: ``python -I -c BOOT FD`` (isolated: no PYTHON* variables,
# no user site, not the working folder). Its ``sys.path`` and what a student may read come
# over the socket (``protocol.setup``), never on the command line.
BOOT = ("import json, socket, sys; sock = socket.socket(fileno=int(sys.argv[1])); "
        "setup = json.loads(sock.recv(1 << 20)); sys.path[:] = setup['path']; "
        "from autograder.sandbox.server import serve; serve(sock, setup)")


def server_environment() -> dict[str, str]:
    """The fork server's environment: ``ENVIRONMENT`` from this process's, and ``SETTINGS``."""
    env = {k: os.environ[k] for k in ENVIRONMENT if k in os.environ}
    env.update(SETTINGS)
    return env


class Zygote:
    """The fork server process (``autograder.sandbox``) and the protocol to use it.

    ``private``: the folders no student process may read or write; the fork server never
    learns them, only the folders a student process may read (``confine.allowed_paths``).
    """

    def __init__(self, private: list[str]):
        self.readable = confine.allowed_paths(private)
        self.landlock = not os.environ.get(NO_LANDLOCK)
        self.lock = threading.Lock()
        self.info: dict | None = None
        self._start()

    def _start(self) -> None:
        """Start the fork server; ``wait_ready`` waits for its imports."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-c", BOOT, str(theirs.fileno())],
            pass_fds=(theirs.fileno(),), env=server_environment(), cwd="/", stdin=subprocess.DEVNULL)
        theirs.close()
        self.sock = ours
        self.info = None
        path = [os.path.abspath(p or ".") for p in sys.path]  # it runs in "/", not here
        self.sock.sendall(protocol.setup(path, self.readable, self.landlock))

    def wait_ready(self) -> dict:
        """The server's ``ready`` message (``protocol.ready``), once its imports are done."""
        if self.info is None:
            ready = self.sock.recv(protocol.CONTROL_LIMIT)
            if not ready:
                raise GraderError("the fork server failed to start (see its error above)")
            self.info = protocol.decode(ready)
        return self.info

    def close(self) -> None:
        if self.info is None and self.process.poll() is None:
            self.process.kill()  # still importing, never used
        try:
            self.sock.close()
        finally:
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def run(self, job: bytes, payload: bytes, timeout: float,
            limit: int = protocol.TOTAL_LIMIT) -> list[protocol.Message]:
        """Send one job (``protocol.job``, ``protocol.payload``); return the messages it wrote
        (the supervisor's ``Status`` last). ``timeout``: the job's, the supervisor enforces it."""
        payload_r, payload_w = os.pipe()
        result_r, result_w = os.pipe()
        try:
            with self.lock:
                if self.process.poll() is not None:
                    self._start()
                self.wait_ready()
                socket.send_fds(self.sock, [job], [payload_r, result_w])
        except OSError as exc:
            for fd in (payload_r, payload_w, result_r, result_w):
                os.close(fd)
            raise GraderError(f"could not reach the fork server: {exc}") from exc
        os.close(payload_r)
        os.close(result_w)
        try:
            with os.fdopen(payload_w, "wb") as stream:
                stream.write(payload)
        except BrokenPipeError:
            pass
        reader = StreamReader(limit)
        deadline = time.monotonic() + float(timeout) + 120
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise GraderError("no answer from the sandbox supervisor")
                ready, _, _ = select.select([result_r], [], [], left)
                if not ready:
                    continue
                chunk = os.read(result_r, 1 << 20)
                if not chunk:
                    break
                reader.feed(chunk)
        finally:
            os.close(result_r)
        reader.feed(b"\n")
        messages = reader.messages
        status = [m for m in messages if isinstance(m, protocol.Status)]
        if not status:
            raise GraderError("the sandbox supervisor ended without a status")
        return [m for m in messages if not isinstance(m, protocol.Status)] + [status[-1]]


class StreamReader:
    """Splits the result stream into messages (``protocol.parse``), at a bounded cost to the
    grader.

    One line is one message. A line longer than ``protocol.LINE_LIMIT`` is dropped as it
    arrives (never held whole) and one with more than ``protocol.CONTAINER_LIMIT`` lists and
    objects is not parsed; each becomes an ``Oversize`` message. Past ``total`` bytes only the
    supervisor's status line (written last, by a process that never ran student code) is
    still parsed; the first line refused there becomes an ``Overflow`` message.
    """

    def __init__(self, total: int):
        self.total = total
        self.size = 0
        self.messages: list[protocol.Message] = []
        self.line = bytearray()
        self.dropping = 0  # bytes of the current, over-long line dropped so far

    def feed(self, chunk: bytes) -> None:
        self.size += len(chunk)
        *complete, rest = chunk.split(b"\n")
        for part in complete:
            self._end_line(part)
        self._extend(rest)

    def _extend(self, part: bytes) -> None:
        if self.dropping or len(self.line) + len(part) > protocol.LINE_LIMIT:
            self.dropping += len(self.line) + len(part)
            self.line = bytearray()
        else:
            self.line += part

    def _end_line(self, part: bytes) -> None:
        self._extend(part)
        line, dropped = bytes(self.line), self.dropping
        self.line, self.dropping = bytearray(), 0
        if dropped:
            self.messages.append(protocol.Oversize(dropped, "long"))
            return
        if not line.strip():
            return
        if self.size > self.total and protocol.STATUS_MARK not in line:
            if not any(isinstance(m, protocol.Overflow) for m in self.messages):
                self.messages.append(protocol.Overflow(self.size))
            return
        if line.count(b"[") + line.count(b"{") > protocol.CONTAINER_LIMIT:
            self.messages.append(protocol.Oversize(len(line), "nested"))
            return
        message = protocol.parse(line)
        if message is not None:
            self.messages.append(message)


def slot_uids(jobs: int) -> list[int | None]:
    """One uid per job slot when the grader runs as root (so the process limit applies to
    each student process alone), else None: the grader's own uid."""
    if os.geteuid() != 0:
        return [None] * jobs
    base = 200_000 + (os.getpid() % 30_000) * 64
    return [base + i for i in range(jobs)]


def nproc_limit(extra: int = 64) -> int:
    """Processes allowed to a student process (its uid's count when not root)."""
    if os.geteuid() == 0:
        return extra
    uid, count = os.getuid(), 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        if fields.get("Uid", "").split()[:1] == [str(uid)]:
            count += int(fields.get("Threads", "1").strip() or 1)
    return count + extra
