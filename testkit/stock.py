"""Stock nbgrader on a temporary copy of the course: the reference grading path.

Used by the tests (the catalog proof, the end-to-end checks, agreement with our own
grader) and by the throughput benchmark. Everything here runs the real ``nbgrader``
command line; the gradebook is read through ``nbgrader.api``.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Sequence

import nbformat

from autograder.course import ROOT, notebook_path

Scores = dict[str, tuple[float, float]]  # grade_id -> (score, max_score)


class StockCourse:
    """A throw-away nbgrader course directory built from this repository."""

    def __init__(self, workdir: Path, root: Path = ROOT, kernels=None, env=None):
        """``kernels``: a ``warm_kernel.WarmKernels`` whose kernels nbgrader should start
        (the test suite's speed-up); stock kernels without it. ``env``: the environment of
        nbgrader's processes (default: this process's, with ``kernels``' variables)."""
        self.dir = Path(workdir)
        self.root = root
        self.env = env or {**os.environ, **(kernels.env if kernels else {})}
        self.graded_in: dict[str, StockCourse] = {}  # students autograded ``elsewhere``
        self.dir.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / "nbgrader_config.py", self.dir / "nbgrader_config.py")
        shutil.copytree(root / "solutions", self.dir / "solutions", dirs_exist_ok=True)
        gradebook = self.dir / "gradebook.db"
        if not gradebook.exists():
            gradebook.write_bytes(_blank_gradebook(_course_id(self.dir)))
        self.db_url = f"sqlite:///{gradebook}"

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "nbgrader", *args, f"--CourseDirectory.db_url={self.db_url}"]

    def start(self, *args: str) -> tuple[subprocess.Popen, Any, Any]:
        """``nbgrader *args`` started: the process, and the files that take its output (a
        pipe that nobody reads while another process runs would stop it when full)."""
        out, err = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
        return subprocess.Popen(self.command(*args), cwd=self.dir, stdout=out, stderr=err,
                                text=True, env=self.env), out, err

    def nbgrader(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(self.command(*args), cwd=self.dir, capture_output=True,
                                text=True, env=self.env)
        if check and result.returncode != 0:
            raise RuntimeError(f"nbgrader {' '.join(args)} exited {result.returncode}:\n"
                               f"{result.stdout[-4000:]}{result.stderr[-4000:]}")
        return result

    def generate(self, assignment_id: str) -> None:
        self.nbgrader("generate_assignment", assignment_id, "--force")

    def submit(self, student_id: str, assignment_id: str, nb) -> Path:
        name = notebook_path(assignment_id, self.root).name
        target = self.dir / "submitted" / student_id / assignment_id / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(nb, (bytes, str)):
            target.write_bytes(nb if isinstance(nb, bytes) else nb.encode())
        else:
            nbformat.write(nb, str(target))
        return target

    def autograde(self, assignment_id: str, *extra: str, exclude: Sequence[str] = (),
                  elsewhere: Sequence[str] = ()) -> subprocess.CompletedProcess:
        """``nbgrader autograde`` of every submitted student but those in ``exclude``, with
        kernels that talk over IPC (unix sockets in a short temporary folder), not TCP. Over
        TCP, jupyter_client picks free ports, releases them and writes them down for the
        kernel, which dies if another process took one in between (jupyter/jupyter_client#154);
        beside JupyterLab, a browser and hundreds of kernels, about one full run of the suite
        in seven lost a submission that way.

        ``elsewhere``: students graded at the same time by a second ``nbgrader autograde`` in a
        copy of this course (its own gradebook), while this one grades the others: each kernel's
        start leaves nbgrader and its kernel idle for about 0.4 s (jupyter_client's readiness
        check waits for IOPub to stay quiet for 0.2 s), which the other process fills.
        ``scores`` reads each student where they were graded. Returns this course's run, whose
        ``stderr`` holds the other run's log too."""
        runs = [(self, [*exclude, *elsewhere])]
        if elsewhere:
            other = StockCourse(self.dir.with_name(self.dir.name + "-elsewhere"), self.root,
                                env=self.env)
            shutil.copytree(self.dir, other.dir, dirs_exist_ok=True, ignore=lambda folder, names:
                            ["submitted", "autograded", "feedback"] if Path(folder) == self.dir
                            else [])
            for student in elsewhere:
                shutil.copytree(self.dir / "submitted" / student, other.dir / "submitted" / student)
                self.graded_in[student] = other
            runs.append((other, []))
        sockets = tempfile.mkdtemp(prefix="ipc-")  # a socket path may not exceed 107 bytes
        try:
            started = [where.start("autograde", assignment_id, "--force",
                                   "--KernelManager.transport=ipc",
                                   f"--KernelManager.ip={sockets}/kernel{number}", *extra,
                                   *([f"--CourseDirectory.student_id_exclude={','.join(skip)}"]
                                     if skip else []))
                       for number, (where, skip) in enumerate(runs)]
            done = [subprocess.CompletedProcess(process.args, process.wait(), _read(out),
                                                _read(err)) for process, out, err in started]
        finally:
            shutil.rmtree(sockets, ignore_errors=True)
        done[0].stderr = "".join(run.stderr for run in done)
        return done[0]

    def scores(self, assignment_id: str, student_id: str) -> Scores:
        """Per-grade-cell scores of one autograded submission, from the gradebook."""
        from nbgrader.api import Gradebook

        if student_id in self.graded_in:
            return self.graded_in[student_id].scores(assignment_id, student_id)
        notebook_id = notebook_path(assignment_id, self.root).stem
        with Gradebook(self.db_url) as gradebook:
            submission = gradebook.find_submission_notebook(notebook_id, assignment_id,
                                                            student_id)
            return {g.name: (float(g.score), float(g.max_score)) for g in submission.grades}


def _read(file) -> str:
    with file:
        file.seek(0)
        return file.read()


def _course_id(folder: Path) -> str:
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(folder)).load_config()
    return config.CourseDirectory.get("course_id", "default_course")


@functools.cache
def _blank_gradebook(course_id: str) -> bytes:
    """An empty gradebook, made by ``nbgrader.api.Gradebook`` once per process. nbgrader runs
    ``alembic heads`` in a new process for every gradebook it creates (2.5 s of CPU); a course
    starts from a copy of this one instead, which holds what that first command would write."""
    from nbgrader.api import Gradebook

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "gradebook.db"
        with Gradebook(f"sqlite:///{path}", course_id=course_id):
            pass
        return path.read_bytes()
