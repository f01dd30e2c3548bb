"""``sandbox.server``: the fork server never holds the judges' references."""

import subprocess
import sys

import pytest

from autograder import course


@pytest.mark.parametrize("order", ["imported before", "imported after"])
def test_the_fork_server_refuses_the_references(order):
    """The judges' references never enter the fork server: loaded before ``preload`` one
    stops the server, imported after it fails."""
    if order == "imported before":
        code = ("import autograder.reference.rope\nfrom autograder.sandbox import server\n"
                "server.preload()")
    else:
        code = ("from autograder.sandbox import server\nserver.refuse_forbidden()\n"
                "import autograder.reference.rope")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=course.ROOT, timeout=300)
    assert result.returncode != 0
    expected = ("refusing to serve" if order == "imported before"
                else "does not import autograder.reference")
    assert expected in result.stderr, result.stderr[-2000:]
