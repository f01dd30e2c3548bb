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
    items.sort(key=_longest_first)


# Seconds that each long unit of work (a group, or a test of its own) took in a full run on 2
# cores (3 workers), for _longest_first; they only order the work, so a stale entry costs time,
# never a result.
SECONDS = {"lab": 180, "nbgrader:07-numpy-decoder": 130, "nbgrader:08-kv-cache": 125,
           "nbgrader:06-rope": 115,
           "nbgrader:05-multi-head-attention": 95, "nbgrader:01-positional-encoding": 85,
           "book": 75, "nbgrader:04-stacking-heads": 73, "nbgrader:02-self-attention": 70,
           "nbgrader:03-causal-masking": 69, "learners-book": 60,
           "tests/test_grader_robustness.py::test_shards_merge_and_nbgrader_export": 55,
           "tests/test_slurm.py::test_the_slurm_recipe_grades_a_class_in_a_job_array": 55,
           "module:test_gradescope": 90,
           "tests/test_install.py::test_learner_and_grader_resolve_without_development_packages": 35,
           "module:test_grader_tamper": 33, "judged:06-rope": 28,
           "judged:04-stacking-heads": 23, "judged:05-multi-head-attention": 22,
           "tests/test_grader_robustness.py::test_killed_run_resumes_with_the_same_grades": 22,
           "judged:07-numpy-decoder": 19, "judged:08-kv-cache": 20,
           "module:test_grader_robustness": 18}


def pytest_configure(config):
    """xdist's ``loadgroup`` hands out groups in collection order only when it is told not to
    reorder them (it would put the groups with the most tests first: 121 page tests before the
    three browser flows that take three minutes)."""
    if hasattr(config.option, "loadscopereorder") and not os.environ.get("REORDER"):
        config.option.loadscopereorder = False


def pytest_xdist_make_scheduler(config, log):
    """``loadgroup``, except that a worker still busy with a long unit (one in ``SECONDS``) is
    given the shortest unit left, not the next long one. A worker runs a test only once it
    knows the next, so xdist hands it a new unit when two of its tests are left: behind the
    last two browser flows (two minutes), the next long group would wait while a core idles."""
    if config.getvalue("dist") != "loadgroup" or os.environ.get("NOSCHED"):
        return None
    from xdist.scheduler import LoadGroupScheduling

    class LongestFirst(LoadGroupScheduling):
        def _assign_work_unit(self, node):
            running = [scope for scope, tests in self.assigned_work.get(node, {}).items()
                       if not all(tests.values())]
            if any(scope in SECONDS for scope in running):
                self.workqueue.move_to_end(next(reversed(self.workqueue)), last=False)
            super()._assign_work_unit(node)

    return LongestFirst(config, log)


def _longest_first(item) -> float:
    """The longest unit of work first, so that no long group starts when the others are done
    (``pytest_configure``). A stable sort keeps the order within a group, and the short tests,
    in collection order, fill the end."""
    mark = item.get_closest_marker("xdist_group")
    group = (mark.args[0] if mark.args else mark.kwargs.get("name", "")) if mark else ""
    return -SECONDS.get(group or item.nodeid, 0)


def _shares_a_module_fixture(item) -> bool:
    definitions = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
    return any(defs and defs[-1].scope == "module" for defs in definitions.values())


def pytest_xdist_auto_num_workers(config):
    """``-n auto``: one worker per core, and one more when slow tests run. They wait on
    kernels, servers and a browser often enough that a third worker on 2 cores keeps the cores
    busy (9:01 against 9:35 for the whole suite); the fast tier only computes (58 s against
    51 s with the extra worker)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    fast = "not slow" in (config.getoption("markexpr", "") or "")
    return (cores or 1) + (0 if fast else 1)


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


@pytest.fixture(scope="session")
def nbgrader_graded(tmp_path_factory, warm_kernels):
    """``graded(assignment_id)``: the whole catalog, the solution and the untouched notebook,
    autograded once per assignment by the real ``nbgrader autograde`` (cached per session).

    The solution and the untouched notebook are submitted whole; each catalog case is
    submitted with the cells grading uses only (setup, solution and grade cells), so
    nbgrader does not re-run the lesson once per case (the scores are the same). The kernels
    are warm ones, and every notebook must have had its own: a test in ``test_nbgrader.py``
    shows that stock kernels give the same scores."""
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
            for case in catalog.cases(assignment_id):
                stock.submit(case.name, assignment_id, course.graded_cells_only(
                    program.submission(assignment_id, {case.cell: case.source})))
            before = warm_kernels.served
            stock.log = stock.autograde(assignment_id)
            submitted = len(list((stock.dir / "submitted").iterdir()))
            assert warm_kernels.served - before == submitted, \
                f"{warm_kernels.served - before} warm kernels for {submitted} submissions"
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
