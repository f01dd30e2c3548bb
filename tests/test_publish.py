"""``python -m autograder publish``: the learners' copy holds what learners need and nothing more.

The copy is written once (``learners_copy``) by the real command line, into a temporary folder,
with a learners' repository and hub of its own; its book is built once (``learners_book``) by
the real ``jupyter-book build --all -W``, as the copy's README says, and opened in Debian's
Chromium (tests/test_browser.py's machinery). No solution line and no hidden-test line of
``solutions/`` may be in the copy or its built site (``autograder.leaks``, shared with
tests/test_leaks.py), and nothing in it may point at the course repository, which holds
``solutions/``, or at the placeholder hub.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest
import yaml

from autograder import course, leaks, publish
from conftest import toc_pages

REPOSITORY = "https://github.com/example-school/attention-learners"
HUB = "https://hub.example-school.edu"
COURSE_REPOSITORY = yaml.safe_load((course.ROOT / "_config.yml").read_text())["repository"]["url"]
PLACEHOLDER_HUB = "hub.example.org"
WRITTEN = {".gitignore", "README.md", "_config.yml", "_toc.yml", "intro.md", "_ext", "_static",
           "chapters", "requirements.txt", "requirements-book.txt"}
NEVER = {"solutions", "autograder", "tests", "benchmarks", "nbgrader_config.py", "gradebook.db",
         "pyproject.toml", "CONTRIBUTING.md", "instructors.md"}


def run_publish(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autograder", "publish", *args], cwd=course.ROOT,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="session")
def learners_copy(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("learners") / "attention-learners"
    result = run_publish("--out", str(out), "--repository", REPOSITORY, "--hub", HUB)
    assert result.returncode == 0, result.stdout + result.stderr
    return out


@pytest.fixture(scope="session")
def secrets() -> set[str]:
    found = leaks.course_secrets()
    assert len(found) > 50, "too few secret lines to look for: the leak checks would pass vacuously"
    return found


def text_files(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): leaks.file_text(p) for p in sorted(folder.rglob("*"))
            if p.is_file() and p.suffix in leaks.TEXT_SUFFIXES | {".yml", ".css", ".gitignore"}}


# ---------------------------------------------------------------- the copy


def test_the_copy_holds_what_learners_need_and_nothing_else(learners_copy):
    assert {p.name for p in learners_copy.iterdir()} == WRITTEN
    found = [p for p in learners_copy.rglob("*") if NEVER & set(p.relative_to(learners_copy).parts)]
    assert not found, f"the learners' copy holds instructor material: {found}"
    for assignment_id in course.assignment_ids():
        released = course.notebook_path(assignment_id, released=True)
        copy = learners_copy / released.relative_to(course.ROOT)
        assert copy.read_bytes() == released.read_bytes(), f"{copy} is not the release notebook"
    assert (learners_copy / "requirements.txt").read_text() == \
        (course.ROOT / "requirements-learner.txt").read_text()
    assert "nbgrader" not in (learners_copy / "requirements.txt").read_text()
    assert "jupyter-book==" in (learners_copy / "requirements-book.txt").read_text()


def test_the_copy_points_at_the_learners_repository_and_hub(learners_copy):
    config = yaml.safe_load((learners_copy / "_config.yml").read_text())
    assert config["repository"]["url"] == REPOSITORY
    assert config["launch_buttons"]["jupyterhub_url"] == HUB
    # the rest of the configuration is the course's
    course_config = yaml.safe_load((course.ROOT / "_config.yml").read_text())
    assert {k: v for k, v in config.items() if k not in ("repository", "launch_buttons")} == \
        {k: v for k, v in course_config.items() if k not in ("repository", "launch_buttons")}
    pointing = [f"{name}: {needle}" for name, text in text_files(learners_copy).items()
                for needle in (COURSE_REPOSITORY, PLACEHOLDER_HUB) if needle in text]
    assert not pointing, "the learners' copy points at the course repository or the placeholder " \
        "hub:\n" + "\n".join(pointing)


def test_the_copy_has_the_introduction_and_the_chapters_only(learners_copy):
    chapters = [str(course.notebook_path(a, released=True).relative_to(course.ROOT).with_suffix(""))
                for a in course.assignment_ids()]
    assert toc_pages(learners_copy) == ["intro", *chapters]
    intro = (learners_copy / "intro.md").read_text()
    assert "solutions/" not in intro and "instructors-only" not in intro, intro
    assert "{{ repository }}" in intro  # the link, to the learners' repository (_ext/book_extras.py)


def test_an_instructors_part_of_the_toc_is_left_out():
    toc = yaml.safe_load((course.ROOT / "_toc.yml").read_text())
    toc["parts"].append({"caption": "For instructors", "chapters": [{"file": "instructors"}]})
    kept = yaml.safe_load(publish.toc_text(yaml.safe_dump(toc)))
    assert [part["caption"] for part in kept["parts"]] == ["Chapters"], kept


def test_the_readme_says_how_to_work_on_a_chapter(learners_copy):
    readme = (learners_copy / "README.md").read_text()
    first = course.notebook_path(course.assignment_ids()[0], released=True)
    [torch] = [line for line in (course.ROOT / "requirements-learner.txt").read_text().splitlines()
               if line.startswith("torch==")]
    for line in (f"git clone {REPOSITORY} && cd attention-learners",
                 "python -m pip install -r requirements.txt",
                 f"python -m pip install {torch} --index-url https://download.pytorch.org/whl/cpu",
                 f"cp {first.relative_to(course.ROOT).as_posix()} ~/my-attention/",
                 f"cd ~/my-attention && jupyter lab {first.name}",
                 "jupyter-book build --all .",
                 *(" ".join(c) for c in publish.disable_instructor_tools_commands())):
        assert line in readme, f"the learners' README lacks {line!r}"


def test_no_secret_line_in_the_copy(learners_copy, secrets):
    found = leaks.leaks(secrets, learners_copy)
    assert not found, "solution or hidden-test text in the learners' copy:\n" + "\n".join(found)


def test_without_a_hub_there_is_no_jupyterhub_button(tmp_path):
    result = run_publish("--out", str(tmp_path / "copy"), "--repository", REPOSITORY)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load((tmp_path / "copy" / "_config.yml").read_text())
    assert "jupyterhub_url" not in config["launch_buttons"], config["launch_buttons"]
    assert config["launch_buttons"]["binderhub_url"] == "https://mybinder.org"


# ---------------------------------------------------------------- refusals


def refusals(tmp: Path) -> dict[str, tuple[list[str], str]]:
    full = tmp / "full"
    full.mkdir()
    (full / "notes.txt").write_text("mine")
    ok = ["--repository", REPOSITORY]
    return {
        "out inside the repository": (["--out", str(course.ROOT / "learners-copy"), *ok],
                                      "inside the course repository"),
        "out not empty": (["--out", str(full), *ok], "is not an empty folder"),
        "out is a file": (["--out", str(full / "notes.txt"), *ok], "is not an empty folder"),
        "parent missing": (["--out", str(tmp / "missing" / "copy"), *ok], "does not exist"),
        "course repository": (["--out", str(tmp / "a"), "--repository", COURSE_REPOSITORY + "/"],
                              "holds solutions/"),
        "course repository .git": (["--out", str(tmp / "a"), "--repository",
                                    COURSE_REPOSITORY.replace("https:", "http:").upper() + ".git"],
                                   "holds solutions/"),
        "repository not a URL": (["--out", str(tmp / "b"), "--repository", "attention-learners"],
                                 "not an http(s) address"),
        "hub not a URL": (["--out", str(tmp / "c"), *ok, "--hub", "hub.example-school.edu"],
                          "not an http(s) address"),
    }


REFUSED = ["out inside the repository", "out not empty", "out is a file", "parent missing",
           "course repository", "course repository .git", "repository not a URL", "hub not a URL"]


@pytest.mark.parametrize("case", REFUSED)
def test_bad_input_is_refused_with_one_line_and_exit_2(tmp_path, case):
    args, says = refusals(tmp_path)[case]
    before = sorted(p.name for p in course.ROOT.iterdir())
    result = run_publish(*args)
    assert result.returncode == 2, f"{case}: exit {result.returncode}\n{result.stdout}{result.stderr}"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], result.stderr
    assert sorted(p.name for p in course.ROOT.iterdir()) == before, "publish wrote into the repository"
    assert not any((tmp_path / name).exists() for name in "abc"), "a refused copy was written"
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["notes.txt"]


def course_checkout(target: Path) -> Path:
    """What publish reads from a checkout of the course."""
    for name in ("chapters", "solutions", "_ext", "_static"):
        shutil.copytree(course.ROOT / name, target / name, ignore=publish.JUNK)
    for name in ("_config.yml", "_toc.yml", "intro.md", "requirements.txt", "requirements-learner.txt"):
        shutil.copy2(course.ROOT / name, target / name)
    return target


def test_a_missing_source_is_refused(tmp_path):
    root = course_checkout(tmp_path / "course")
    (root / "requirements-learner.txt").unlink()
    with pytest.raises(publish.PublishError, match="has no requirements-learner.txt"):
        publish.publish(tmp_path / "copy", REPOSITORY, root=root)
    assert not (tmp_path / "copy").exists()


def test_a_copy_that_would_leak_is_removed(tmp_path):
    """publish's own leak check can fail: a solution line planted in a release notebook."""
    root = course_checkout(tmp_path / "course")
    assignment_id = course.assignment_ids(root)[0]
    source = course.read(course.notebook_path(assignment_id, root))
    # what publish looks for: all chapters (a line of chapter 1 may be shown in chapter 7)
    secrets = leaks.course_secrets(root)
    line = next(raw.strip() for cell in source.cells for text in course.solution_texts(cell.source)
                for raw in text.splitlines() if leaks.normalize(raw) in secrets)
    released = course.notebook_path(assignment_id, root, released=True)
    nb = course.read(released)
    nb.cells.insert(1, nbformat.v4.new_markdown_cell(f"A remark:\n\n    {line}\n"))
    nbformat.write(nb, released)
    out = tmp_path / "copy"
    out.mkdir()
    with pytest.raises(publish.PublishError, match="solution or hidden-test lines") as raised:
        publish.publish(out, REPOSITORY, root=root)
    assert leaks.normalize(line) in str(raised.value)
    assert out.is_dir() and not any(out.iterdir()), "the leaking copy was left behind"


# ---------------------------------------------------------------- the learners' book


@pytest.fixture(scope="session")
def learners_book(learners_copy, built_book, tmp_path_factory) -> Path:
    """``jupyter-book build --all -W`` of the copy, as its README says; into a folder beside it
    (the tests of the copy may run after this build), with ``BOOK_PATH_OUTPUT`` into
    ``$BOOK_PATH_OUTPUT/learners`` (kept for review).

    The copy's notebooks are the course book's, byte for byte (the copy's first test), and the
    course book (``built_book``) has just executed them: this build starts from that build's
    jupyter-cache, as a second build of one book would, instead of running the same cells
    again (about 40 s of CPU). Its pages, sources and links are its own."""
    command = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()",
               "build", str(learners_copy), "--all", "-W"]
    if os.environ.get("BOOK_PATH_OUTPUT"):
        out = Path(os.environ["BOOK_PATH_OUTPUT"]).resolve() / "learners"
        out.mkdir(parents=True, exist_ok=True)
    else:
        out = tmp_path_factory.mktemp("learners-book")
    command += ["--path-output", str(out)]
    shutil.copytree(built_book.parent / ".jupyter_cache", out / "_build" / ".jupyter_cache",
                    dirs_exist_ok=True)
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, \
        f"jupyter-book build of the learners' copy failed:\n{result.stdout[-6000:]}{result.stderr[-3000:]}"
    return out / "_build" / "html"


@pytest.mark.book
@pytest.mark.kernel
def test_no_secret_line_in_the_learners_book(learners_copy, learners_book, secrets):
    pages = sorted(p.relative_to(learners_book).as_posix() for p in learners_book.rglob("*.html"))
    chapters = [f"{page}.html" for page in toc_pages(learners_copy)]
    assert set(chapters) <= set(pages), f"the learners' book lacks pages: {set(chapters) - set(pages)}"
    assert (learners_book / "_sources").is_dir(), "the build has no _sources/ to check"
    found = leaks.leaks(secrets, learners_book, skip=("_static/",))
    found += leaks.leaks(secrets, learners_copy, skip=("_build/html/_static/",))
    assert not found, "solution or hidden-test text in the learners' book:\n" + "\n".join(found)


@pytest.mark.book
@pytest.mark.kernel
def test_the_learners_book_does_not_point_at_the_course_repository(learners_book):
    found = [f"{name}: {needle}" for name, text in text_files(learners_book).items()
             if not name.startswith("_static/")
             for needle in (COURSE_REPOSITORY, PLACEHOLDER_HUB, "solutions/") if needle in text]
    assert not found, "the learners' book points at the course repository:\n" + "\n".join(found)
    assert not (learners_book / "instructors.html").exists()


# ---------------------------------------------------------------- in a browser


@pytest.fixture(scope="session")
def learners_url(learners_book):
    from test_browser import QuietHandler

    handler = functools.partial(QuietHandler, directory=str(learners_book))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def learners_browser(tmp_path_factory, playwright_driver):
    from jupyter_app import browser_session

    yield from browser_session(tmp_path_factory, playwright_driver)


def learner_pages() -> list[str]:
    return ["intro", *(str(course.notebook_path(a, released=True).relative_to(course.ROOT)
                           .with_suffix("")) for a in course.assignment_ids())]


@pytest.mark.book
@pytest.mark.kernel
@pytest.mark.browser
@pytest.mark.parametrize("page", learner_pages())
def test_learners_book_page_in_a_browser(learners_browser, learners_url, learners_book, tmp_path, page):
    from test_browser import visit

    report = visit(learners_browser, learners_url, page, "light", tmp_path)
    assert not report["blocked"], f"{page} loads remote resources: {report['blocked']}"
    assert not report["bad_responses"], f"{page}: failed requests {report['bad_responses']}"
    assert not report["console_errors"], f"{page}: console errors {report['console_errors']}"
    assert not report["page_errors"], f"{page}: uncaught JavaScript errors {report['page_errors']}"
    assert REPOSITORY in [h.rstrip("/") for h in report["header_links"]], \
        f"{page}: no link to the learners' repository in the header: {report['header_links']}"
    bad = [link for link in report["links"]
           if COURSE_REPOSITORY in link or PLACEHOLDER_HUB in link or "/solutions/" in link]
    assert not bad, f"{page} links to the course repository or the placeholder hub: {bad}"
    owner_repo = urlsplit(REPOSITORY).path.strip("/")
    if page == "intro":
        assert REPOSITORY in [link.rstrip("/") for link in report["links"]], \
            f"the introduction has no link to the learners' repository: {report['links']}"
        return
    launches = [unquote(launch["href"]) for launch in report["launches"]]
    expected = {"JupyterHub": f"{HUB}/hub/user-redirect/git-pull?repo={REPOSITORY}",
                "Binder": f"https://mybinder.org/v2/gh/{owner_repo}/main",
                "Colab": f"https://colab.research.google.com/github/{owner_repo}/blob/main/{page}.ipynb"}
    for name, start in expected.items():
        found = [link for link in launches if link.startswith(start)]
        assert found and all(f"{page}.ipynb" in link for link in found), \
            f"{page}: no {name} button at {start}... that opens {page}.ipynb: {launches}"
