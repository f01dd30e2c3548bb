"""``__main__``: the command line meets bad input with one line and status 2."""

import subprocess
import sys

import pytest

from autograder import course


@pytest.mark.parametrize("problem", ["missing", "a file", "empty", "out inside", "out is it",
                                     "bad shard", "no jobs"])
def test_command_line_meets_bad_input_with_one_line_and_status_2(tmp_path, problem):
    submitted = tmp_path / "submitted"
    submitted.mkdir()
    out = tmp_path / "results"
    extra: list[str] = []
    if problem == "missing":
        submitted = tmp_path / "nonexistent"
    elif problem == "a file":
        submitted = tmp_path / "file.txt"
        submitted.write_text("x")
    elif problem != "empty":
        (submitted / "alice" / "01-positional-encoding").mkdir(parents=True)
        if problem == "out inside":
            out = submitted / "results"
        elif problem == "out is it":
            out = submitted
        elif problem == "bad shard":
            extra = ["--shard", "3/2"]
        elif problem == "no jobs":
            extra = ["--jobs", "0"]
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    result = subprocess.run([sys.executable, "-m", "autograder", "grade", str(submitted),
                             "--out", str(out), *extra], capture_output=True, text=True,
                            cwd=course.ROOT, timeout=120)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
