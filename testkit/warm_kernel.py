"""Warm IPython kernels for the test suite's stock ``nbgrader autograde`` runs.

Every catalog case goes through the real ``nbgrader autograde``, which starts one fresh kernel
per notebook; most of that kernel's CPU goes to importing IPython and torch (about 1.7 s of the
4 s a stripped submission costs on this machine). Here a *zygote* process imports them once, and
a kernelspec named ``python3`` whose command is this file (run as a script: standard library
only) asks the zygote to fork a child that becomes the kernel: ``IPKernelApp`` with the
connection file, the working directory, the environment and the standard streams of the
launcher that ``jupyter_client`` started. Nothing but modules is preloaded (no ``autograder``,
no user state, no random draws), and the caches that formatting a traceback fills from
installed files (``_warm_tracebacks``), so the child is what a fresh ``ipykernel_launcher``
would be after ``import torch``.

The launcher stays alive while its kernel runs, so ``jupyter_client`` sees the usual process:
SIGINT and SIGTERM sent to the launcher go to the kernel, and a kernel whose launcher dies
(SIGKILL) exits at once. Without a zygote (``WARM_KERNEL_SOCKET`` unset or not answering) the
launcher becomes a plain ``python -m ipykernel_launcher``.

The throughput benchmark and the instructor-facing tests keep stock kernels; see
``WarmKernels`` for how the suite uses this.
"""

from __future__ import annotations

import gc
import json
import os
import select
import signal
import socket
import sys

SOCKET_ENV = "WARM_KERNEL_SOCKET"
# torch._dynamo is what the meta device's first use imports (1.2 s): the hidden checks of
# chapters 03 to 06 move modules to "meta". Every setup cell imports pyplot (0.6 s), and every
# kernel imports ipykernel.debugger (debugpy) as it starts (0.09 s).
PRELOAD = ("numpy", "torch", "torch.nn", "torch.nn.functional", "torch._dynamo",
           "ipykernel.kernelapp", "ipykernel.debugger", "matplotlib.pyplot")
# what ipykernel sets before a notebook can import matplotlib, which reads it at import
INLINE = {"MPLBACKEND": "module://matplotlib_inline.backend_inline"}


def launch(connection_file: str) -> None:
    """The kernelspec's command: hand this launcher's kernel to the zygote, then wait for it."""
    zygote = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        zygote.connect(os.environ[SOCKET_ENV])
    except (KeyError, OSError):
        os.execv(sys.executable, [sys.executable, "-m", "ipykernel_launcher", "-f",
                                  connection_file])
    request = {"connection_file": connection_file, "cwd": os.getcwd(), "env": dict(os.environ),
               "launcher": os.getpid()}
    socket.send_fds(zygote, [json.dumps(request).encode()], [0, 1, 2])
    kernel = int(zygote.recv(64))
    zygote.close()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda signum, _: _signal(kernel, signum))
    try:
        done = os.pidfd_open(kernel)
    except ProcessLookupError:
        return
    select.select([done], [], [])


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def serve(path: str) -> None:
    """The zygote: preload, then fork one kernel per launcher that connects to ``path``."""
    import importlib

    sys.path.pop(0)  # this file's folder: nothing beside it may shadow a preloaded module
    os.environ.update(INLINE)
    for name in PRELOAD:
        importlib.import_module(name)
    _warm_tracebacks()
    threads = len(os.listdir("/proc/self/task"))
    if threads > 1:  # a fork copies one thread: a lock another thread held stays locked
        raise SystemExit(f"warm-kernel zygote: preloading started {threads - 1} more thread(s) "
                         "(run with OMP_NUM_THREADS=1, as tests/conftest.py does); not forking")
    gc.freeze()  # the preloaded objects: never scanned by the kernels' collector, nor copied
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernels are reaped automatically
    server = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    server.bind(path)
    server.listen(16)
    parent = os.pidfd_open(os.getppid())  # the test process: the zygote ends with it
    served = 0
    ready = path + ".served"
    with open(ready, "w") as out:
        out.write("0")
    while True:
        if parent in select.select([server, parent], [], [])[0]:
            os._exit(0)
        conn, _ = server.accept()
        message, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
        pid = os.fork()
        if pid == 0:
            server.close()
            _become_kernel(conn, json.loads(message), fds)
        for fd in fds:
            os.close(fd)
        conn.send(str(pid).encode())
        conn.close()
        served += 1
        with open(ready, "w") as out:
            out.write(str(served))


def _warm_tracebacks() -> None:
    """Fill, once, the caches that a kernel's first traceback fills from installed files:
    ``inspect``'s map from files to modules, the parsed source of IPython's ``run_code`` (the
    top frame of every traceback in a cell) and pygments' compiled Python lexer. Most catalog
    submissions raise in several cells; in each fresh kernel these cost about 0.06 s of CPU, a
    seventh of the kernel's whole run (chapter 07: 0.50 s of CPU per kernel, 0.42 warmed). They
    hold what those files say, nothing of a run: the tracebacks read the same."""
    import inspect

    import stack_data
    from IPython.core import interactiveshell
    from IPython.core.ultratb import VerboseTB

    inspect.getmodule(inspect.currentframe())
    stack_data.Source.for_filename(interactiveshell.__file__)
    try:
        raise RuntimeError("warm-up")
    except RuntimeError:
        VerboseTB(color_scheme="Linux").structured_traceback(*sys.exc_info())


def _become_kernel(conn: socket.socket, request: dict, fds: list[int]) -> None:
    code = 1
    try:
        conn.close()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        _exit_with(request["launcher"])
        import ipykernel_launcher  # noqa: F401  (what the stock kernelspec runs; cheap)
        from ipykernel import kernelapp

        # a parent handle, as jupyter_client's JPY_PARENT_PID gives a stock kernel (read at
        # import, in the zygote): the kernel polls for its parent, and prints no banner
        sys.argv = [ipykernel_launcher.__file__, "-f", request["connection_file"],
                    f"--IPKernelApp.parent_handle={request['launcher']}"]
        kernelapp.launch_new_instance()
        code = 0
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else 1
    except BaseException:  # say why on the launcher's stderr (nbgrader's log), as a kernel would
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _exit_with(launcher: int) -> None:
    """Exit as soon as the launcher is gone (jupyter_client killed it)."""
    import threading

    try:
        gone = os.pidfd_open(launcher)
    except ProcessLookupError:
        os._exit(1)

    def watch():
        select.select([gone], [], [])
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="warm-kernel-launcher-watch").start()


class WarmKernels:
    """A zygote for the lifetime of a test session, and the environment that points
    ``nbgrader`` (through ``JUPYTER_PATH``) at its ``python3`` kernelspec."""

    def __init__(self, workdir):
        import subprocess
        import time
        from pathlib import Path

        self.dir = Path(workdir)
        spec = self.dir / "kernels" / "python3"
        spec.mkdir(parents=True, exist_ok=True)
        (spec / "kernel.json").write_text(json.dumps({
            "argv": [sys.executable, os.path.abspath(__file__), "{connection_file}"],
            "display_name": "Python 3 (ipykernel)", "language": "python",
            "metadata": {"debugger": True}}))
        self.socket = str(self.dir / "zygote.sock")
        for stale in (self.socket, self.socket + ".served"):
            if os.path.exists(stale):
                os.unlink(stale)
        self.process = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve",
                                         self.socket])
        deadline = time.monotonic() + 120
        while not os.path.exists(self.socket + ".served"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the warm-kernel zygote did not start (exit "
                                   f"{self.process.poll()})")
            time.sleep(0.05)
        self.env = {"JUPYTER_PATH": str(self.dir), SOCKET_ENV: self.socket}

    @property
    def served(self) -> int:
        """How many kernels the zygote has forked so far."""
        with open(self.socket + ".served") as served:
            return int(served.read() or 0)

    def close(self) -> None:
        self.process.kill()
        self.process.wait()


if __name__ == "__main__":
    if sys.argv[1] == "--serve":
        serve(sys.argv[2])
    else:
        launch(sys.argv[1])
