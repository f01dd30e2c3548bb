"""The warm kernels that the suite's stock ``nbgrader autograde`` runs use
(``testkit.warm_kernel``): a real IPython kernel that behaves as a stock one, dies
with its launcher, and gives nbgrader the same scores as stock kernels."""

import os
import time

import pytest

from autograder import course
from conftest import ASSIGNMENTS
from testkit import catalog
from testkit.stock import StockCourse

pytestmark = [pytest.mark.kernel]


def _execute(client, code: str) -> str:
    """The text of the cell's result, or the MIME types that it displayed."""
    request = client.execute(code)
    shown = []
    while True:
        message = client.get_iopub_msg(timeout=60)
        if message["parent_header"].get("msg_id") != request:
            continue
        if message["msg_type"] == "execute_result":
            return message["content"]["data"]["text/plain"]
        if message["msg_type"] == "display_data":
            shown += sorted(message["content"]["data"])
        if message["msg_type"] == "error":
            raise AssertionError(message["content"]["traceback"])
        if message["msg_type"] == "status" and message["content"]["execution_state"] == "idle":
            return " ".join(shown)


def _gone(pid: int, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("stop", ["shutdown", "kill"])
def test_a_warm_kernel_is_a_fresh_kernel_and_dies_with_its_launcher(stop, warm_kernels,
                                                                    monkeypatch, tmp_path):
    from jupyter_client import KernelManager

    for key, value in warm_kernels.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    before = warm_kernels.served
    manager = KernelManager(kernel_name="python3")
    manager.start_kernel()
    client = manager.client()
    client.start_channels()
    client.wait_for_ready(timeout=60)
    try:
        assert warm_kernels.served == before + 1, "the kernel did not come from the zygote"
        pid = int(_execute(client, "import os; os.getpid()"))
        assert pid != manager.provisioner.process.pid  # the fork, not the launcher
        assert _execute(client, "os.getcwd()") == repr(str(tmp_path))
        assert _execute(client, "'torch' in __import__('sys').modules") == "True"
        assert _execute(client, "'autograder' in __import__('sys').modules") == "False"
        assert _execute(client, "x = 2; x * 21") == "42"
        assert "image/png" in _execute(client, "import matplotlib.pyplot as plt\n"
                                               "plt.plot([1, 2]); plt.show()")
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=stop == "kill")
    assert _gone(pid), f"the kernel {pid} outlived its launcher after {stop}"


def test_warm_kernels_give_the_scores_of_stock_kernels(nbgrader_graded, tmp_path):
    assignment_id = ASSIGNMENTS[0]
    warm = nbgrader_graded(assignment_id)
    cold = StockCourse(tmp_path / "stock")  # stock kernels
    cold.generate(assignment_id)
    students = ["solution", "untouched"] + [bundle.name for bundle in
                                             catalog.bundles(assignment_id, correct=False)[:3]]
    for student in students:
        name = course.notebook_path(assignment_id).name
        cold.submit(student, assignment_id,
                    (warm.dir / "submitted" / student / assignment_id / name).read_bytes())
    cold.autograde(assignment_id)
    for student in students:
        assert cold.scores(assignment_id, student) == warm.scores(assignment_id, student), student


def test_the_zygote_ends_with_the_process_that_started_it(tmp_path):
    import signal
    import subprocess
    import sys

    starter = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\n"
         "from testkit.warm_kernel import WarmKernels\n"
         f"kernels = WarmKernels({str(tmp_path)!r})\n"
         "print(kernels.process.pid, flush=True)\n"
         "time.sleep(120)"], stdout=subprocess.PIPE, text=True)
    zygote = int(starter.stdout.readline())
    assert not _gone(zygote, 0.5), "the zygote did not start"
    starter.send_signal(signal.SIGKILL)
    starter.wait()
    assert _gone(zygote), "the zygote outlived the test process that started it"


def test_the_zygote_refuses_to_fork_a_threaded_process(tmp_path):
    """Without OMP_NUM_THREADS=1 torch starts a thread at import; a fork of a threaded process
    can inherit a lock that no thread will release, so the zygote must not serve."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    result = subprocess.run(
        [sys.executable, "-c", "from testkit.warm_kernel import WarmKernels\n"
         f"WarmKernels({str(tmp_path)!r})"], env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "the warm-kernel zygote did not start" in result.stderr
    assert "more thread(s)" in result.stderr and "OMP_NUM_THREADS=1" in result.stderr
