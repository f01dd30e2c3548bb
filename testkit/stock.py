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

import nbformat

from autograder.course import ROOT, notebook_path

Scores = dict[str, tuple[float, float]]  # grade_id -> (score, max_score)


class StockCourse:
    """A throw-away nbgrader course directory built from this repository."""

    def __init__(self, workdir: Path, root: Path = ROOT, kernels=None):
        """``kernels``: a ``warm_kernel.WarmKernels`` whose kernels nbgrader should start
        (the test suite's speed-up); stock kernels without it."""
        self.dir = Path(workdir)
        self.root = root
        self.env = {**os.environ, **(kernels.env if kernels else {})}
        self.dir.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / "nbgrader_config.py", self.dir / "nbgrader_config.py")
        shutil.copytree(root / "solutions", self.dir / "solutions", dirs_exist_ok=True)
        gradebook = self.dir / "gradebook.db"
        if not gradebook.exists():
            gradebook.write_bytes(_blank_gradebook(_course_id(self.dir)))
        self.db_url = f"sqlite:///{gradebook}"

    def nbgrader(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "nbgrader", *args,
                   f"--CourseDirectory.db_url={self.db_url}"]
        result = subprocess.run(command, cwd=self.dir, capture_output=True, text=True,
                                env=self.env)
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

    def autograde(self, assignment_id: str, *extra: str) -> subprocess.CompletedProcess:
        """``nbgrader autograde``, with kernels that talk over IPC (unix sockets in a short
        temporary folder), not TCP. Over TCP, jupyter_client picks free ports, releases them
        and writes them down for the kernel, which dies if another process took one in between
        (jupyter/jupyter_client#154); beside JupyterLab, a browser and hundreds of kernels,
        about one full run of the suite in seven lost a submission that way."""
        sockets = tempfile.mkdtemp(prefix="ipc-")  # a socket path may not exceed 107 bytes
        try:
            return self.nbgrader("autograde", assignment_id, "--force",
                                 "--KernelManager.transport=ipc",
                                 f"--KernelManager.ip={sockets}/kernel", *extra, check=False)
        finally:
            shutil.rmtree(sockets, ignore_errors=True)

    def scores(self, assignment_id: str, student_id: str) -> Scores:
        """Per-grade-cell scores of one autograded submission, from the gradebook."""
        from nbgrader.api import Gradebook

        notebook_id = notebook_path(assignment_id, self.root).stem
        with Gradebook(self.db_url) as gradebook:
            submission = gradebook.find_submission_notebook(notebook_id, assignment_id,
                                                            student_id)
            return {g.name: (float(g.score), float(g.max_score)) for g in submission.grades}


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
