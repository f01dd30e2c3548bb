"""A real ``jupyter lab`` on a temporary folder, driven by Debian's Chromium.

Shared by tests/test_jupyterlab.py (the learner: copies of chapters in a folder of their own,
nbgrader's instructor tools turned off) and tests/test_formgrader.py (the instructor: a copy
of the course).
The server listens on a free localhost port without a token, with its own Jupyter config,
data, runtime and JupyterLab settings folders, so nothing of the machine's user setup leaks
in and nothing is written outside the temporary folder. Its kernels import the ``autograder``
package of this checkout (``PYTHONPATH``). The browser blocks every request that does not go
to localhost.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from test_browser import CHROMIUM_ARGS, INSTALL_HINT, chromium_executable

from autograder import course

# JupyterLab settings for typing code through the keyboard: no auto-closed brackets or quotes,
# no re-indentation while typing (smartIndent), every cell rendered (no windowing), no news.
SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {
        "codeCellConfig": {"autoClosingBrackets": False, "smartIndent": False, "lineWrap": False},
        "windowingMode": "none",
    },
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false", "checkForUpdates": False,
    },
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def copy_course(target: Path) -> Path:
    """What a course folder needs: notebooks, nbgrader config (no package, no tests)."""
    target.mkdir(parents=True, exist_ok=True)
    for name in ("chapters", "solutions"):
        shutil.copytree(course.ROOT / name, target / name)
    shutil.copy2(course.ROOT / "nbgrader_config.py", target / "nbgrader_config.py")
    return target


def learner_folder(target: Path, assignment_ids) -> Path:
    """A learner's own folder, as the learners' README makes it: a copy of each chapter's
    released notebook, side by side, and nothing else (no course, no nbgrader config)."""
    target.mkdir(parents=True, exist_ok=True)
    for assignment_id in assignment_ids:
        shutil.copy2(course.notebook_path(assignment_id, released=True), target)
    return target


def environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "IPYTHON"))}
    for name, folder in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_RUNTIME_DIR", "runtime"),
                         ("JUPYTERLAB_SETTINGS_DIR", "settings"),
                         ("JUPYTERLAB_WORKSPACES_DIR", "workspaces"), ("IPYTHONDIR", "ipython")):
        (home / folder).mkdir(parents=True, exist_ok=True)
        env[name] = str(home / folder)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(course.ROOT), env.get("PYTHONPATH")]))
    env["MPLBACKEND"] = "Agg"
    return env


def disable_instructor_tools(env: dict[str, str]) -> None:
    """Turn nbgrader's instructor tools off as the learners' README says, but in this server's
    temporary JUPYTER_CONFIG_DIR (the README's level, the environment's ``sys_prefix``, is the
    machine's own Python here): its ``jupyter labextension disable`` command at ``--level=user``,
    and for the server extensions what its ``jupyter server extension disable --sys-prefix``
    writes, in the user's config (that command cannot disable at the user level an extension
    enabled at a lower one: it only reads the level it writes)."""
    from autograder.publish import INSTRUCTOR_SERVER_EXTENSIONS, disable_instructor_tools_commands

    config = Path(env["JUPYTER_CONFIG_DIR"])
    assert config.is_dir() and "JUPYTER_CONFIG_DIR" in env
    [lab, server] = disable_instructor_tools_commands(level="user")
    assert lab[:4] == ["jupyter", "labextension", "disable", "--level=user"], lab
    result = subprocess.run([sys.executable, "-m", *lab], env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, f"{' '.join(lab)} failed:\n{result.stdout}{result.stderr}"
    disabled = json.loads((config / "labconfig" / "page_config.json").read_text())["disabledExtensions"]
    assert all(disabled.get(plugin) for plugin in lab[4:]), disabled
    (config / "jupyter_server_config.json").write_text(json.dumps(
        {"ServerApp": {"jpserver_extensions": dict.fromkeys(INSTRUCTOR_SERVER_EXTENSIONS, False)}}))


class LabServer:
    def __init__(self, root: Path, home: Path, learner: bool = False):
        """``learner``: with nbgrader's instructor tools turned off, as the learners' README says."""
        self.root, self.home = root, home
        self.env = environment(home)
        if learner:
            disable_instructor_tools(self.env)
        settings = Path(self.env["JUPYTERLAB_SETTINGS_DIR"])
        for name, value in SETTINGS.items():
            (settings / name).parent.mkdir(parents=True, exist_ok=True)
            (settings / name).write_text(json.dumps(value))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = open(home / "jupyter-lab.log", "w")
        command = [sys.executable, "-m", "jupyter", "lab", "--no-browser",
                   "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}",
                   "--ServerApp.port_retries=0", "--IdentityProvider.token=",
                   "--ServerApp.password=", f"--ServerApp.root_dir={root}",
                   "--LabApp.news_url=", "--ServerApp.allow_remote_access=False"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:  # CI containers run as root
            command.append("--allow-root")
        self.process = subprocess.Popen(command, cwd=root, env=self.env, stdout=self.log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        self._wait()

    def _wait(self, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"jupyter lab exited with {self.process.returncode}:\n{self.log_text()}")
            try:
                with urllib.request.urlopen(self.url + "api/status", timeout=5) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.5)
        pytest.fail(f"jupyter lab did not answer on {self.url} within {timeout} s:\n{self.log_text()}")

    def log_text(self) -> str:
        self.log.flush()
        return (self.home / "jupyter-lab.log").read_text()[-6000:]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # SIGTERM: the server shuts its kernels down and exits
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def launch_browser(playwright, profile: Path):
    executable = chromium_executable()
    try:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=executable, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000})
    except Exception as error:
        pytest.fail(f"Chromium at {executable} does not start ({error}): {INSTALL_HINT}", pytrace=False)
    blocked: list[str] = []

    def route(request_route):
        url = request_route.request.url
        if url.startswith(("http://127.0.0.1", "http://localhost", "ws://127.0.0.1", "data:", "blob:")):
            request_route.continue_()
        else:
            blocked.append(url)
            request_route.abort()

    context.route("**/*", route)
    context.blocked = blocked
    return context


def browser_session(tmp_path_factory, driver):
    """Generator for a module-scoped ``browser`` fixture on the session's Playwright
    ``driver`` (conftest): Chromium, or a failure that says how to install it."""
    chromium_executable()
    context = launch_browser(driver, tmp_path_factory.mktemp("chromium-profile"))
    yield context
    context.close()


def screenshot_dir(tmp_path_factory, name: str) -> Path:
    """``$BOOK_PATH_OUTPUT/_build/screenshots/<name>/`` when set (kept for review), else a tmp folder."""
    if os.environ.get("BOOK_PATH_OUTPUT"):
        folder = Path(os.environ["BOOK_PATH_OUTPUT"]).resolve() / "_build" / "screenshots" / name
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    return tmp_path_factory.mktemp(f"screenshots-{name}")
