import os
import sys

# One thread per torch/BLAS process, set before anything imports torch and inherited by every
# process the suite starts (nbgrader's kernels, JupyterLab's, the book build's): on a shared 2-core
# machine, intra-op threads of concurrent processes spin against each other (the hidden checks
# ran up to 10x slower); the project's grader already runs its sandboxes with one thread.
os.environ["OMP_NUM_THREADS"] = "1"

# An optional dependency of jsonschema whose import costs 1.1 s of CPU in every process that
# reads a notebook, and that nothing here uses: hidden from the suite (tests/shims).
# The repository's root holds ``testkit``, the test support that `pip install .` leaves out:
# importable here (pytest puts the root conftest's folder on sys.path) and in every process
# the suite starts.
SHIMS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shims")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [SHIMS, ROOT,
                                                         os.environ.get("PYTHONPATH")]))
sys.path.insert(0, SHIMS)

import pytest  # noqa: E402

from autograder import course  # noqa: E402

ASSIGNMENTS = course.assignment_ids()

# What a test needs (registered in pyproject.toml); a test that needs any of them is slow.
NEEDS = ("nbgrader", "kernel", "sandbox", "book", "browser", "slurm", "registry")


@pytest.hookimpl(tryfirst=True)  # before xdist's worker reads the groups
def pytest_collection_modifyitems(items):
    """Derive ``slow`` from what a test needs, and keep the tests that share an expensive
    session fixture in one ``xdist_group`` (``-n auto --dist loadgroup`` sends a group to one
    worker, and a session fixture is built once per worker):

    - ``nbgrader_graded(assignment_id)`` autogrades an assignment once: one group per
      assignment for the catalog proof, the solution's clean run and the agreement test;
    - ``judged(assignment_id, case)`` judges a catalog case in-process once: one group per
      assignment for test_checks and test_seed_stability, which share the fixed-seed verdicts;
    - ``built_book`` builds the book once: one group for the book, its pages and its leaks;
    - ``learners_copy`` (and the learners' book built from it) once: one group (test_publish);
    - the JupyterLab and Formgrader tests share a Playwright driver: one group;
    - nbval runs a released notebook's cells in order in one kernel: one group per notebook
      (the root conftest.py, since chapters/ is outside tests/);
    - the tests of a module that share a module-scoped fixture (the tamper suite's graded
      class, for one): one group per module, so that the fixture runs once.

    xdist's ``loadgroup`` decides the order (it hands out the groups with the most tests
    first); a scheduler of our own that ran the longest groups first, from a table of measured
    seconds, was slower than that on 2 cores (18:05 against 17:32 for the whole suite, the
    same commit, one after the other), and is gone.
    """
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if "nbgrader_graded" in fixtures:
            params = getattr(getattr(item, "callspec", None), "params", {})
            item.add_marker(pytest.mark.xdist_group(
                f"nbgrader:{params.get('assignment_id', ASSIGNMENTS[0])}"))
        elif "judged" in fixtures:
            params = getattr(getattr(item, "callspec", None), "params", {})
            item.add_marker(pytest.mark.xdist_group(
                f"judged:{params.get('assignment_id', ASSIGNMENTS[0])}"))
        elif "built_book" in fixtures:
            item.add_marker(pytest.mark.xdist_group("book"))
        elif "learners_copy" in fixtures:  # test_publish: the learners' copy, its book, its pages
            item.add_marker(pytest.mark.xdist_group("learners-book"))
        elif "playwright_driver" in fixtures:  # JupyterLab and Formgrader: one browser at a time
            item.add_marker(pytest.mark.xdist_group("lab"))
        elif _shares_a_module_fixture(item):
            item.add_marker(pytest.mark.xdist_group(f"module:{item.module.__name__}"))
        if any(item.get_closest_marker(need) for need in NEEDS):
            item.add_marker(pytest.mark.slow)


def _shares_a_module_fixture(item) -> bool:
    definitions = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
    return any(defs and defs[-1].scope == "module" for defs in definitions.values())


def toc_pages(root=course.ROOT) -> list[str]:
    """Every page of the book in reading order, from ``_toc.yml``: the root, then each
    ``file`` of its parts, chapters and sections (paths without suffix)."""
    import yaml

    toc = yaml.safe_load((root / "_toc.yml").read_text())
    pages = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                pages.append(entry["file"])
            walk(entry.get("sections"))

    for part in toc.get("parts") or [toc]:
        walk(part.get("chapters"))
    walk(toc.get("sections"))
    return [str(p).removesuffix(".ipynb").removesuffix(".md") for p in pages]


BOOK_PAGES = toc_pages()


@pytest.fixture(params=ASSIGNMENTS)
def assignment_id(request):
    return request.param


@pytest.fixture(scope="session")
def warm_kernels(tmp_path_factory):
    """One warm-kernel zygote per test process (``testkit.warm_kernel``): the
    kernels that ``nbgrader autograde`` starts for the catalog fork from it with IPython and
    torch already imported."""
    from testkit.warm_kernel import WarmKernels

    kernels = WarmKernels(tmp_path_factory.mktemp("warm-kernels"))
    yield kernels
    kernels.close()


def bundle_of(assignment_id: str, case_name: str) -> str:
    """The student id of the submission that holds a catalog case (``catalog.bundles``)."""
    from testkit import catalog

    return next(bundle.name for correct in (False, True)
                for bundle in catalog.bundles(assignment_id, correct)
                if case_name in {case.name for case in bundle.cases})


@pytest.fixture(scope="session")
def nbgrader_graded(tmp_path_factory, warm_kernels):
    """``graded(assignment_id)``: the solution, the untouched notebook and the whole catalog
    in one nbgrader course, autograded once per assignment by the real ``nbgrader autograde``
    (cached per session).

    The solution and the untouched notebook are submitted whole; the catalog's cases go in
    bundles (``catalog.bundles``: cases of exercises that neither call nor name each other
    share a submission, 275 wrong cases in 215 notebooks), each submitted with the cells
    grading uses only (setup, solution and grade cells), so nbgrader does not re-run the
    lesson once per case (the scores are the same). nbgrader grades every submission but the
    bundles of alternative correct cases: the spec asks it to take points from the wrong ones;
    the correct ones are graded by our grader from the same ``submitted/``
    (test_grader_agreement), judged in-process and run through the visible tests, which are the
    same checks in the same order. Two ``nbgrader autograde`` processes share the wrong bundles
    (``StockCourse.autograde``'s ``elsewhere``), each filling the other's waits for its
    kernels. The kernels are warm ones, and every notebook nbgrader graded must have had its
    own: a test in ``test_warm_kernel.py`` shows that stock kernels give the same scores."""
    from testkit import catalog, program
    from testkit.stock import StockCourse

    cache = {}

    def graded(assignment_id):
        if assignment_id not in cache:
            stock = StockCourse(tmp_path_factory.mktemp(f"nbgrader-{assignment_id}"),
                                kernels=warm_kernels)
            stock.generate(assignment_id)
            stock.submit("solution", assignment_id, program.submission(assignment_id))
            untouched = course.notebook_path(assignment_id, released=True).read_bytes()
            stock.submit("untouched", assignment_id, untouched)
            wrong = catalog.bundles(assignment_id, correct=False)
            correct = catalog.bundles(assignment_id, correct=True)
            for bundle in wrong + correct:
                stock.submit(bundle.name, assignment_id, course.graded_cells_only(
                    program.submission(assignment_id, bundle.answers)))
            before = warm_kernels.served
            stock.log = stock.autograde(assignment_id, exclude=[b.name for b in correct],
                                        elsewhere=[b.name for b in wrong[::2]])
            graded = len(list((stock.dir / "submitted").iterdir())) - len(correct)
            assert warm_kernels.served - before == graded, \
                f"{warm_kernels.served - before} warm kernels for {graded} submissions"
            cache[assignment_id] = stock
        return cache[assignment_id]

    return graded


@pytest.fixture(scope="session")
def judged():
    """``judged(assignment_id, name, secret=None)``: ``{grade_id: failures}`` of the solution
    (``name="solution"``) or of one catalog case, judged in-process with the fixed seeds or the
    secret's (``testkit.program.failures``), once per session."""
    import functools

    from testkit import catalog, program

    @functools.cache
    def judge(assignment_id, name, secret=None):
        if name == "solution":
            return program.failures(assignment_id, None, secret)
        [case] = [c for c in catalog.cases(assignment_id) if c.name == name]
        return program.failures(assignment_id, {case.cell: case.source}, secret)

    return judge


@pytest.fixture(scope="session")
def built_book(tmp_path_factory):
    """Build the book once per session, as the README does, into a temporary folder.

    With ``BOOK_PATH_OUTPUT=<folder>`` it builds into that folder instead, which keeps the
    build (and the browser tests' screenshots under ``<folder>/_build/screenshots``) for
    review and lets jupyter-cache reuse the executed notebooks on the next run.
    """
    import os
    import subprocess
    import sys
    from pathlib import Path

    out = Path(os.environ["BOOK_PATH_OUTPUT"]).resolve() if os.environ.get("BOOK_PATH_OUTPUT") \
        else tmp_path_factory.mktemp("book")
    command = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()",
               "build", str(course.ROOT), "--all", "-W", "--path-output", str(out)]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, \
        f"jupyter-book build failed:\n{result.stdout[-6000:]}{result.stderr[-3000:]}"
    return out / "_build" / "html"


@pytest.fixture(scope="session")
def playwright_driver():
    """One Playwright driver for the whole session (its sync API allows one at a time in a
    thread): the book's page tests and the JupyterLab/Formgrader tests share it."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the Python package playwright is missing: python -m pip install -r "
                    "requirements.txt", pytrace=False)
    with sync_playwright() as driver:
        yield driver
