"""The learner's flow in a real JupyterLab, in Debian's Chromium.

A real ``jupyter lab`` (no token, localhost, a free port) is driven with Playwright, started as
the learners' README says: in a folder of the learner's own that holds copies of the released
notebooks (nothing of the course around them), with nbgrader's instructor tools turned off by
the README's commands (``autograder.publish``; in a temporary Jupyter config folder). For
chapter 01 (NumPy) and chapter 08 (PyTorch) the test:

0. sees none of nbgrader's instructor tools: no Nbgrader menu, no Create Assignment panel, no
   Formgrader behind ``/formgrader``, and no "course directory root is not a subdirectory"
   warning in the server's log;
1. opens the notebook, runs all cells, and sees every visible-test cell fail with the stub's
   ``NotImplementedError`` and its message;
2. types, through the keyboard into the CodeMirror editor, a wrong solution from the bug
   catalog (``testkit/catalog``) into one exercise cell, and pastes the solutions of
   ``solutions/`` into the others (typing those too cost a minute of the chapter 08 flow and
   showed nothing the typed cell does not); runs all cells and sees that visible test's own
   message (computed here by running the same cells in-process) and "visible tests passed"
   for the others; saves; the file on disk holds exactly that code and is a valid notebook;
   nbgrader's *Validate* toolbar button (``nbgrader validate`` of the saved file, run by the
   server) shows the failure;
3. types the solution into that cell, runs all, sees "visible tests passed" everywhere; saves;
   the file holds it, and the *Validate* button says it passes.

JupyterLab's settings (a temporary ``JUPYTERLAB_SETTINGS_DIR``) turn off auto-closed brackets
and smart indentation; each typed line replaces the editor's automatic indentation
(Shift+Home), so the saved source is compared with the intended one character for character.
Screenshots of each step go to ``$BOOK_PATH_OUTPUT/_build/screenshots/jupyterlab/`` when
``BOOK_PATH_OUTPUT`` is set, else to a temporary folder.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request

import nbformat
import pytest
from jupyter_app import LabServer, browser_session, learner_folder, screenshot_dir

from autograder import course
from testkit import catalog

pytestmark = [pytest.mark.browser, pytest.mark.kernel, pytest.mark.nbgrader]

VISIBLE_PASSED = "visible tests passed"
# what the stub of an unsolved exercise says (nbgrader_config.py: ClearSolutions.code_stub)
STUB_MESSAGE = "not written yet: replace this line with your code for the exercise above"
# chapter -> the exercise that gets a wrong solution first
# (chapter 03's flow, the same steps on another PyTorch chapter, was dropped for the suite's time)
EXERCISES = {"01-positional-encoding": "sinusoidal_positional_encoding",
             "08-kv-cache": "cached_causal_mask"}
RUN_TIMEOUT_MS = 180_000
CELLS = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell"  # of the notebook on show


def released_cells(assignment_id: str) -> list:
    return course.read(course.notebook_path(assignment_id, released=True)).cells


def reference_solutions(assignment_id: str) -> dict[str, str]:
    source = course.read(course.notebook_path(assignment_id))
    return {gid: course.strip_markers(cell.source).strip("\n")
            for gid, cell in course.solution_cells(source).items()}


def visible_cells(assignment_id: str) -> dict[str, int]:
    """Exercise -> index of the grade cell right after it that holds the visible tests."""
    cells = released_cells(assignment_id)
    found = {}
    for index, cell in enumerate(cells):
        meta = course.nbgrader_meta(cell)
        if meta.get("solution"):
            nxt = cells[index + 1]
            assert course.nbgrader_meta(nxt).get("grade") and VISIBLE_PASSED in nxt.source
            found[meta["grade_id"]] = index + 1
    return found


def exercise_index(assignment_id: str) -> dict[str, int]:
    return {course.nbgrader_meta(c)["grade_id"]: i for i, c in enumerate(released_cells(assignment_id))
            if course.nbgrader_meta(c).get("solution")}


RUNNER = """
import json, sys
ns = {"__name__": "__main__"}
for index, code in json.loads(sys.stdin.read()):
    try:
        exec(code, ns)
    except AssertionError as error:
        print(f"\\nVISIBLE {index}:", str(error).splitlines()[0] if str(error) else "")
    except Exception:
        pass
"""


def visible_messages(assignment_id: str, answers: dict[str, str]) -> dict[str, str | None]:
    """Exercise -> the first line of its visible test's AssertionError (None: the test passes).

    Computed here, in a fresh Python process that runs the notebook's code cells in order (the
    lesson too: it sets print options), with ``answers`` in the solution cells.
    """
    program = []
    for index, cell in enumerate(released_cells(assignment_id)):
        if cell.cell_type == "code":
            meta = course.nbgrader_meta(cell)
            program.append((index, answers[meta["grade_id"]] if meta.get("solution") else cell.source))
    result = subprocess.run([sys.executable, "-c", RUNNER], input=json.dumps(program),
                            capture_output=True, text=True, timeout=300,
                            cwd=course.ROOT / "chapters" / assignment_id,
                            env={**os.environ, "MPLBACKEND": "Agg"})
    assert result.returncode == 0, result.stderr
    said = dict(re.findall(r"^VISIBLE (\d+): (.*)$", result.stdout, re.M))
    return {exercise: said.get(str(index)) for exercise, index in visible_cells(assignment_id).items()}


def wrong_case(assignment_id: str, exercise: str, solutions: dict[str, str]):
    """The first catalog bug of ``exercise`` that its visible test catches, and what every
    visible test then says."""
    for case in catalog.cases(assignment_id):
        if case.cell == exercise and not case.correct:
            messages = visible_messages(assignment_id, {**solutions, exercise: case.source})
            if messages[exercise]:
                return case, messages
    raise AssertionError(f"no catalog bug of {exercise} fails its visible test")


# --- driving JupyterLab -----------------------------------------------------------------------

def cell(page, index: int):
    return page.locator(CELLS).nth(index)


def menu(page, label: str, command: str) -> None:
    page.locator(f'.lm-MenuBar-itemLabel:text-is("{label}")').click()
    page.locator(f'.lm-Menu li[data-command="{command}"]').click()


PROMPTS = f"[...document.querySelectorAll('{CELLS.replace('.jp-Cell', '.jp-CodeCell')} .jp-InputPrompt')]"


def wait_kernel_idle(page) -> None:
    page.wait_for_function(
        "() => [...document.querySelectorAll('.jp-StatusBar-Widget')]"
        ".some(e => /\\(ipykernel\\) \\| Idle/.test(e.textContent))", timeout=RUN_TIMEOUT_MS)


def run_all(page) -> None:
    """Run > Run All Cells, then wait until every code cell has a new execution count."""
    wait_kernel_idle(page)
    count = "p => +(/\\d+/.exec(p.textContent) || [0])[0]"
    before = page.evaluate(f"() => Math.max(0, ...{PROMPTS}.map({count}))")
    menu(page, "Run", "runmenu:run-all")
    page.wait_for_function(
        f"""() => {{
            const prompts = {PROMPTS};
            return prompts.length > 0 &&
                prompts.every(p => /\\[\\d+\\]/.test(p.textContent) && ({count})(p) > {before});
        }}""", timeout=RUN_TIMEOUT_MS)
    wait_kernel_idle(page)


def type_into_cell(page, index: int, text: str) -> None:
    """Replace a cell's code by typing ``text`` on the keyboard, line by line.

    After each Enter the editor indents on its own; Shift+Home selects that indentation so
    the line's own (typed) indentation replaces it. An empty line is typed as "x", Backspace.
    """
    editor = cell(page, index).locator(".cm-content")
    editor.click()
    page.keyboard.press("Control+a")
    page.keyboard.press("Backspace")
    for number, line in enumerate(text.split("\n")):
        if number:
            page.keyboard.press("Enter")
        page.keyboard.press("Shift+Home")
        page.keyboard.type(line or "x")
        if not line:
            page.keyboard.press("Backspace")
    page.keyboard.press("Escape")  # back to command mode


def paste_into_cell(page, index: int, text: str) -> None:
    """Replace a cell's code by pasting ``text`` (one input event, as a paste makes: the editor
    indents nothing)."""
    cell(page, index).locator(".cm-content").click()
    page.keyboard.press("Control+a")
    page.keyboard.press("Backspace")
    page.keyboard.insert_text(text)
    page.keyboard.press("Escape")


def printed_passed(text: str) -> bool:
    """The visible-test cell printed its success line (not just quoted it in a traceback)."""
    return re.search(rf"^{VISIBLE_PASSED}$", text, re.M) is not None


def output_text(page, index: int) -> str:
    return cell(page, index).locator(".jp-OutputArea").inner_text()


def save(page) -> None:
    """File > Save; the tab's unsaved-changes mark must appear before and go away after."""
    dirty = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.jp-mod-dirty")
    dirty.first.wait_for(timeout=10_000)
    menu(page, "File", "docmanager:save")
    dirty.first.wait_for(state="detached", timeout=30_000)


def press_validate(page, shots, name: str) -> tuple[bool, str]:
    """nbgrader's Validate toolbar button: (passed, the dialog's text)."""
    page.locator("jp-button.validate-button, .validate-button").first.click()
    dialog = page.locator(".nbgrader-SuccessDialog, .nbgrader-ErrorDialog")
    dialog.first.wait_for(timeout=RUN_TIMEOUT_MS)
    passed = page.locator(".nbgrader-SuccessDialog").count() == 1
    text = dialog.first.inner_text()
    page.screenshot(path=str(shots / name))
    dialog.first.locator("button.jp-Dialog-button").last.click()
    dialog.first.wait_for(state="detached", timeout=30_000)
    return passed, text


def assert_no_instructor_tools(page, lab) -> None:
    """The learner's JupyterLab shows none of nbgrader's instructor tools (the Validate button,
    a learner's tool, stays), and its server serves no Formgrader."""
    page.locator('.lm-MenuBar-itemLabel:text-is("File")').wait_for(timeout=60_000)
    menus = page.locator(".lm-MenuBar-itemLabel").all_inner_texts()
    assert "Nbgrader" not in menus, f"the learner sees nbgrader's instructor menu: {menus}"
    for label in ("Create Assignment", "Formgrader", "Course List", "Assignment List"):
        assert page.locator(f'[title*="{label}" i], .lm-TabBar-tabLabel:text-is("{label}")').count() == 0, \
            f"the learner sees nbgrader's {label}"
    page.locator("jp-button.validate-button, .validate-button").first.wait_for(timeout=60_000)
    log = lab.log_text()
    assert "not a subdirectory of the notebook server root" not in log, log
    # (the shared server's log also holds the 404 of an earlier chapter's request below)
    assert "server_extensions.formgrader" not in log and "formgrader nbgrader serverextension" \
        not in log.lower(), f"the server loaded nbgrader's Formgrader:\n{log}"
    try:
        with urllib.request.urlopen(f"{lab.url}formgrader", timeout=30) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    assert status == 404, f"the learner's server serves nbgrader's Formgrader (HTTP {status})"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = learner_folder(tmp_path_factory.mktemp("learner") / "my-attention", EXERCISES)
    server = LabServer(root, tmp_path_factory.mktemp("jupyter-home"), learner=True)
    yield server
    server.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory, playwright_driver):
    yield from browser_session(tmp_path_factory, playwright_driver)


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    return screenshot_dir(tmp_path_factory, "jupyterlab")


@pytest.mark.parametrize("assignment_id", list(EXERCISES))
def test_learner_flow(assignment_id, lab, browser, shots):
    exercise = EXERCISES[assignment_id]
    solutions = reference_solutions(assignment_id)
    case, messages = wrong_case(assignment_id, exercise, solutions)
    message = messages[exercise]
    assert visible_messages(assignment_id, solutions) == dict.fromkeys(messages)
    visible = visible_cells(assignment_id)
    editors = exercise_index(assignment_id)
    name = course.notebook_path(assignment_id, released=True).name
    on_disk = lab.root / name
    slug = assignment_id

    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{lab.url}lab/workspaces/{slug}/tree/{name}")  # a workspace of its own
    page.locator(CELLS).first.wait_for(timeout=120_000)
    wait_kernel_idle(page)
    count = len(released_cells(assignment_id))  # every cell rendered: no windowing (SETTINGS)
    page.wait_for_function(f"() => document.querySelectorAll('{CELLS}').length == {count}",
                           timeout=60_000)

    # 0. none of nbgrader's instructor tools
    assert_no_instructor_tools(page, lab)

    # 1. the untouched notebook: every visible test fails with the stub's NotImplementedError
    run_all(page)
    page.screenshot(path=str(shots / f"{slug}-1-stubs-run.png"), full_page=True)
    for grade_id, index in visible.items():
        text = output_text(page, index)
        assert f"NotImplementedError: {STUB_MESSAGE}" in text, f"{grade_id}: {text[-500:]}"
        assert not printed_passed(text)

    # 2. a catalog bug typed on the keyboard into one exercise, the solutions pasted into the others
    typed = {**solutions, exercise: case.source}
    for grade_id, text in typed.items():
        if grade_id == exercise:
            type_into_cell(page, editors[grade_id], text)
        else:
            paste_into_cell(page, editors[grade_id], text)
    run_all(page)
    cell(page, visible[exercise]).scroll_into_view_if_needed()
    page.screenshot(path=str(shots / f"{slug}-2-wrong-{case.name}.png"), full_page=True)
    for grade_id, index in visible.items():
        text = output_text(page, index)
        if messages[grade_id]:  # the bug's own test, and any test of an exercise that uses it
            assert "AssertionError" in text and messages[grade_id] in text, \
                f"expected the visible test's message {messages[grade_id]!r}, found:\n{text[-1500:]}"
            assert not printed_passed(text)
        else:
            assert printed_passed(text), f"{grade_id}: {text[-1500:]}"
    save(page)
    saved = nbformat.read(str(on_disk), as_version=4)
    nbformat.validate(saved)
    sources = {gid: c.source for gid, c in course.solution_cells(saved).items()}
    assert sources == typed, "the saved notebook does not hold exactly the typed code"
    passed, verdict = press_validate(page, shots, f"{slug}-3-validate-wrong.png")
    assert not passed, verdict
    assert "The following cell failed" in verdict or "cells failed" in verdict, verdict
    assert f"AssertionError: {message}" in verdict, verdict

    # 3. the solution, typed on the keyboard
    type_into_cell(page, editors[exercise], solutions[exercise])
    run_all(page)
    page.screenshot(path=str(shots / f"{slug}-4-correct.png"), full_page=True)
    for grade_id, index in visible.items():
        text = output_text(page, index)
        assert printed_passed(text), f"{grade_id}: {text[-1500:]}"
        assert "Error" not in text, f"{grade_id}: {text[-1500:]}"
    save(page)
    saved = nbformat.read(str(on_disk), as_version=4)
    nbformat.validate(saved)
    assert {gid: c.source for gid, c in course.solution_cells(saved).items()} == solutions
    passed, verdict = press_validate(page, shots, f"{slug}-5-validate-correct.png")
    assert passed, verdict
    assert "passes all the tests" in verdict.lower() or "success" in verdict.lower(), verdict
    assert not errors, errors
    page.close()
