"""The instructor's flow in nbgrader's Formgrader, in a real JupyterLab in Debian's Chromium.

On a temporary copy of the course (a real nbgrader course folder: ``nbgrader_config.py``,
``solutions/`` as source, ``chapters/`` as release, its own ``gradebook.db``), with two
students added with ``nbgrader db student add`` and two submissions of chapter 01 in
``submitted/`` (the solution, and a published bug from the catalog), the test:

1. opens Formgrader from JupyterLab's Nbgrader menu and sees the seven assignments;
2. generates the student version of chapter 01 with its *Generate* button (the release
   notebook it writes equals the committed ``chapters/`` one);
3. autogrades both submissions with their *Autograde* buttons;
4. reads both scores in the gradebook view (``Manual Grading`` > assignment > notebook).

The scores must equal, per student, those of ``nbgrader autograde`` on the command line (a
separate ``testkit.stock.StockCourse``) and those of ``python -m autograder grade`` run as a
subprocess on the same ``submitted/`` folder (its ``grades.csv``); per grade cell, the
gradebook Formgrader wrote equals the command line's too. Screenshots of each step go to
``$BOOK_PATH_OUTPUT/_build/screenshots/formgrader/`` when set, else to a temporary folder.
"""

from __future__ import annotations

import csv
import subprocess
import sys

import nbformat
import pytest
from jupyter_app import LabServer, browser_session, copy_course, screenshot_dir

from autograder import course
from testkit import catalog, program
from testkit.stock import StockCourse

pytestmark = [pytest.mark.nbgrader, pytest.mark.kernel, pytest.mark.sandbox, pytest.mark.browser]

ASSIGNMENT = "01-positional-encoding"
NOTEBOOK = course.notebook_path(ASSIGNMENT).stem
BUG = next(c for c in catalog.cases(ASSIGNMENT) if c.name == "cos_uses_pos_minus_1")
SUBMISSIONS = {"solution": program.submission(ASSIGNMENT),
               "bug": program.submission(ASSIGNMENT, {BUG.cell: BUG.source})}
TIMEOUT_MS = 300_000


@pytest.fixture(scope="module")
def browser(tmp_path_factory, playwright_driver):
    yield from browser_session(tmp_path_factory, playwright_driver)


def nbgrader(root, *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=root, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def close_modal(frame, kind: str) -> str:
    """Wait for Formgrader's success (or error) modal; return its text, close it."""
    modal = frame.locator("#success-modal, #error-modal")
    modal.first.wait_for(state="visible", timeout=TIMEOUT_MS)
    text = modal.first.inner_text()
    assert modal.first.get_attribute("id") == f"{kind}-modal", text
    modal.first.locator(".modal-footer button").first.click()
    modal.first.wait_for(state="detached", timeout=30_000)
    return text


def command_line_scores(tmp_path) -> dict[str, dict[str, float]]:
    """Per student, per grade cell: stock ``nbgrader autograde`` on the command line."""
    stock = StockCourse(tmp_path / "stock")
    stock.generate(ASSIGNMENT)
    for student, nb in SUBMISSIONS.items():
        stock.submit(student, ASSIGNMENT, nb)
    log = stock.autograde(ASSIGNMENT)
    assert log.returncode == 0, log.stdout + log.stderr
    return {s: {g: score for g, (score, _) in stock.scores(ASSIGNMENT, s).items()} for s in SUBMISSIONS}


def project_grader_scores(submitted, out) -> dict[str, dict[str, float]]:
    result = subprocess.run([sys.executable, "-m", "autograder", "grade", str(submitted),
                             "--out", str(out), "--quiet"], cwd=course.ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    scores: dict[str, dict[str, float]] = {}
    with open(out / "grades.csv", newline="") as stream:
        for row in csv.DictReader(stream):
            assert row["assignment_id"] == ASSIGNMENT
            scores.setdefault(row["student_id"], {})[row["grade_id"]] = float(row["score"])
    return scores


def gradebook_scores(root) -> dict[str, dict[str, float]]:
    """Per student, per grade cell, from the gradebook that Formgrader's autograde wrote."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        return {s: {g.name: float(g.score) for g in
                    gradebook.find_submission_notebook(NOTEBOOK, ASSIGNMENT, s).grades}
                for s in SUBMISSIONS}


def test_instructor_flow(browser, tmp_path, tmp_path_factory):
    shots = screenshot_dir(tmp_path_factory, "formgrader")
    root = copy_course(tmp_path / "course")
    committed_release = course.read(course.notebook_path(ASSIGNMENT, released=True))
    (root / "chapters" / ASSIGNMENT).joinpath(f"{NOTEBOOK}.ipynb").unlink()  # Generate writes it
    with open(root / "nbgrader_config.py", "a") as config:  # an exchange of its own (not used)
        config.write(f"\nc.Exchange.root = {str(tmp_path / 'exchange')!r}\n")
    for student, nb in SUBMISSIONS.items():
        nbgrader(root, "db", "student", "add", student)
        target = root / "submitted" / student / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
        target.parent.mkdir(parents=True)
        nbformat.write(nb, str(target))
    server = LabServer(root, tmp_path / "jupyter-home")
    try:
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{server.url}lab/workspaces/formgrader")
        page.locator('.lm-MenuBar-itemLabel:text-is("Nbgrader")').click(timeout=120_000)
        page.locator('.lm-Menu li[data-command="nbgrader:open-formgrader"]').click()
        page.locator("iframe").first.wait_for(timeout=60_000)
        page.wait_for_function("() => [...document.querySelectorAll('iframe')]"
                               ".some(f => (f.src || '').includes('/formgrader'))", timeout=60_000)
        frame = page.locator("iframe").first.element_handle().content_frame()

        # 1. the seven assignments
        frame.wait_for_url("**/formgrader/manage_assignments", timeout=60_000)
        frame.wait_for_function(f"() => document.querySelectorAll('td.name').length == "
                                f"{len(course.assignment_ids())}", timeout=60_000)
        names = [t.strip() for t in frame.locator("td.name").all_inner_texts()]
        assert sorted(names) == course.assignment_ids(), names
        page.screenshot(path=str(shots / "1-assignments.png"))

        # 2. Generate the student version of chapter 01
        row = frame.locator("tbody tr").filter(has_text=ASSIGNMENT)
        row.locator("td.assign a").click()
        text = close_modal(frame, "success")
        assert f"Successfully created the student version of '{ASSIGNMENT}'" in text, text
        generated = root / "chapters" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
        assert generated.is_file(), "Generate did not write the release notebook"
        released = course.read(generated)
        assert [(c.cell_type, c.source) for c in released.cells] == \
            [(c.cell_type, c.source) for c in committed_release.cells]
        page.screenshot(path=str(shots / "2-generated.png"))

        # 3. Autograde both submissions
        row = frame.locator("tbody tr").filter(has_text=ASSIGNMENT)
        row.locator("td.num-submissions a").click()
        frame.wait_for_url(f"**/formgrader/manage_submissions/{ASSIGNMENT}", timeout=60_000)
        frame.wait_for_function(f"() => document.querySelectorAll('td.student-id').length == "
                                f"{len(SUBMISSIONS)}", timeout=60_000)
        for student in SUBMISSIONS:
            line = frame.locator("tbody tr").filter(has=frame.locator("td.student-id", has_text=student))
            line.locator("td.autograde a").click()
            text = close_modal(frame, "success")
            assert f"Successfully autograded '{ASSIGNMENT}' for student '{student}'" in text, text
        page.screenshot(path=str(shots / "3-autograded.png"))

        # 4. the gradebook view: Manual Grading > chapter 01 > its notebook, names shown
        frame.locator('a:text-is("Manual Grading")').first.click()
        frame.wait_for_url("**/formgrader/gradebook", timeout=60_000)
        frame.locator(f'a:text-is("{ASSIGNMENT}")').click()
        frame.wait_for_url(f"**/formgrader/gradebook/{ASSIGNMENT}", timeout=60_000)
        frame.locator(f'a:text-is("{NOTEBOOK}")').click()
        frame.wait_for_url(f"**/formgrader/gradebook/{ASSIGNMENT}/{NOTEBOOK}", timeout=60_000)
        frame.wait_for_function(f"() => document.querySelectorAll('td.score').length == "
                                f"{len(SUBMISSIONS)}", timeout=60_000)
        frame.locator("#toggle_names").click()
        ui = {}
        for tr in frame.locator("tbody tr").all():
            name = tr.locator("td.name a.name-shown").inner_text().strip()
            score, _, max_score = tr.locator("td.score").inner_text().partition(" / ")
            ui[name] = (float(score), float(max_score))
        page.screenshot(path=str(shots / "4-gradebook.png"))
        assert not errors, errors
    finally:
        server.close()

    max_score = sum(c.points for c in course.grade_cells(course.read(course.notebook_path(ASSIGNMENT))))
    assert set(ui) == set(SUBMISSIONS), ui
    assert ui["solution"] == (max_score, max_score)
    assert 0 < ui["bug"][0] < max_score, ui
    # the same as the command line, per student and per grade cell
    in_gradebook = gradebook_scores(root)
    cli = command_line_scores(tmp_path)
    assert in_gradebook == cli
    ours = project_grader_scores(root / "submitted", tmp_path / "results")
    assert ours == cli
    for student in SUBMISSIONS:
        assert ui[student][0] == sum(cli[student].values()) == sum(ours[student].values())
