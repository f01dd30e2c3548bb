"""Regenerate ``chapters/`` from ``solutions/`` with the real ``nbgrader generate_assignment``."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from autograder.course import ROOT, assignment_ids


def generate(root: Path = ROOT, only: list[str] | None = None) -> list[str]:
    """Run ``nbgrader generate_assignment --force`` for each assignment under ``root``.

    The gradebook used for this lives in a temporary folder: releasing never touches
    the instructor's real gradebook.
    """
    ids = only or assignment_ids(root)
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{Path(tmp) / 'release.db'}"
        for assignment_id in ids:
            command = [sys.executable, "-m", "nbgrader", "generate_assignment", assignment_id,
                       "--force", f"--CourseDirectory.db_url={db}", "--log-level=WARN"]
            result = subprocess.run(command, cwd=root, capture_output=True, text=True)
            if result.returncode != 0:
                raise RuntimeError(f"nbgrader generate_assignment {assignment_id} failed:\n"
                                   f"{result.stdout}{result.stderr}")
    return ids
