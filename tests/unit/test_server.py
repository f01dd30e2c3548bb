"""``sandbox.server``: the fork server never holds test support or the references."""

import subprocess
import sys

import pytest

from autograder import course


@pytest.mark.parametrize("order", ["imported before", "imported after"])
def test_the_fork_server_refuses_test_support(order):
    """``autograder.testing`` (the catalog's solutions, the tamper suite) never enters the fork
    server: loaded before ``preload`` it stops the server, imported after it fails."""
    if order == "imported before":
        code = "import autograder.testing.catalog\nfrom autograder.sandbox import server\nserver.preload()"
    else:
        code = ("from autograder.sandbox import server\nserver.refuse_forbidden()\n"
                "import autograder.testing.tamper")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=course.ROOT, timeout=300)
    assert result.returncode != 0
    expected = "refusing to serve" if order == "imported before" else "does not import autograder.testing"
    assert expected in result.stderr, result.stderr[-2000:]
