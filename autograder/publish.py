"""Write the learners' copy of the course: what an instructor gives learners, and nothing more.

``python -m autograder publish --out DIR --repository URL [--hub URL] [--branch NAME]`` writes

- ``chapters/``: the release notebooks (no solutions, no hidden tests);
- the book's configuration and pages: ``_config.yml`` (with ``repository.url`` and the
  launch buttons set from ``--repository``, ``--branch`` and ``--hub``: the one setting they
  come from), a ``_toc.yml`` of the introduction and the chapters (no instructors' pages),
  ``intro.md`` (without its instructors-only parts), ``_ext/`` and ``_static/``;
- ``requirements.txt``: the learner's set (``requirements-learner.txt`` of the course);
- ``requirements-book.txt``: what building the book adds (pins of the course's
  ``requirements.txt``);
- ``README.md``: how to install, open a chapter and build the book.

Nothing of ``solutions/``, ``autograder/``, ``tests/`` or ``benchmarks/`` is copied, and before
it returns ``publish`` looks for every solution and hidden-test line of ``solutions/`` in what
it wrote (``autograder.leaks``): it removes the copy and fails if one is there.

The learners' book must not send learners to the repository that holds ``solutions/``: the
copy's repository is the one ``--repository`` names (where the instructor pushes DIR), and
``publish`` refuses the course repository's own address (``repository.url`` of this book).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from autograder import course, leaks

PAGES = ("_config.yml", "_toc.yml", "intro.md", "_ext", "_static", "chapters")
LEARNER_REQUIREMENTS = "requirements-learner.txt"
# what building the book needs on top of the learner's set (pins taken from requirements.txt)
BOOK_PACKAGES = ("jupyter-book", "myst-nb", "sphinx", "django-static-mathjax")
# in intro.md, lines between these two MyST comments are left out of the learners' copy
INSTRUCTORS_ONLY = re.compile(r"^% instructors-only\b.*?^% end instructors-only[^\n]*\n?", re.M | re.S)
JUNK = shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints", "_build", ".*")
# nbgrader's instructor tools in JupyterLab, which a learner whose environment has nbgrader turns
# off (the README's commands; tests/test_jupyterlab.py runs the same ones): the Nbgrader menu
# (Assignment List, Course List, Formgrader, Create Assignment), their panels and the server side
# of Formgrader (which logs "The course directory root is not a subdirectory of the notebook
# server root" wherever the notebook is not inside a course). nbgrader's Validate button stays.
INSTRUCTOR_LAB_PLUGINS = ("@jupyter/nbgrader:menu", "@jupyter/nbgrader:formgrader",
                          "@jupyter/nbgrader:course-list", "@jupyter/nbgrader:create-assignment",
                          "@jupyter/nbgrader:assignment-list")
INSTRUCTOR_SERVER_EXTENSIONS = ("nbgrader.server_extensions.formgrader",
                                "nbgrader.server_extensions.course_list",
                                "nbgrader.server_extensions.assignment_list")


def disable_instructor_tools_commands(level: str = "sys_prefix") -> list[list[str]]:
    """The two commands that turn nbgrader's instructor tools off, at a Jupyter config level:
    ``sys_prefix`` (the active environment, what the README says) or ``user``."""
    return [["jupyter", "labextension", "disable", f"--level={level}", *INSTRUCTOR_LAB_PLUGINS],
            ["jupyter", "server", "extension", "disable", f"--{level.replace('_', '-')}",
             *INSTRUCTOR_SERVER_EXTENSIONS]]


class PublishError(Exception):
    """Bad input, or a copy that would leak: the command prints it after `error:` and exits 2."""


def check_url(option: str, url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise PublishError(f"{option} {url!r} is not an http(s) address")
    return url.rstrip("/")


def same_repository(a: str, b: str) -> bool:
    """The same host and path, whatever the scheme, case, trailing slash or ``.git``."""
    def key(url: str) -> tuple[str, str]:
        parts = urlsplit(url.strip())
        return parts.netloc.lower(), parts.path.lower().rstrip("/").removesuffix(".git").rstrip("/")
    return key(a) == key(b)


def check_out(out: Path, root: Path) -> Path:
    out = Path(out).expanduser().resolve()
    if out == root or root in out.parents:
        raise PublishError(f"--out {out} is inside the course repository {root}: the learners' copy "
                           "must be a folder of its own (its own git repository)")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise PublishError(f"--out {out} exists and is not an empty folder")
    if not out.parent.is_dir():
        raise PublishError(f"--out {out}: its parent folder {out.parent} does not exist")
    return out


def check_sources(root: Path) -> None:
    missing = [name for name in (*PAGES, LEARNER_REQUIREMENTS, "requirements.txt")
               if not (root / name).exists()]
    if missing:
        raise PublishError(f"{root} has no {', '.join(missing)}: run publish from a checkout of the course")


def config_text(text: str, repository: str, branch: str, hub: str | None) -> str:
    """The course's _config.yml with the learners' repository, branch and hub (comments kept)."""
    def set_key(text: str, block: str, key: str, value: str | None, comment: str = "") -> str:
        """Set ``block.key`` (drop it when ``value`` is None); the comment lines right above
        the key are replaced by ``comment``."""
        pattern = re.compile(rf"^({block}:\n(?:[ \t]+.*\n|[ \t]*\n)*?)((?:[ \t]+#.*\n)*)([ \t]+){key}:.*\n",
                             re.M)
        found = pattern.search(text)
        if not found:
            raise PublishError(f"_config.yml has no {block}.{key} to set")
        indent = found.group(3)
        lines = "".join(f"{indent}# {line}\n" for line in comment.splitlines())
        if value is not None:
            lines += f"{indent}{key}: {value}\n"
        return text[:found.end(1)] + lines + text[found.end():]

    text = set_key(text, "repository", "url", repository)
    text = set_key(text, "repository", "branch", branch)
    text = set_key(text, "launch_buttons", "jupyterhub_url", hub,
                   "your JupyterHub (publish --hub), which must run nbgitpuller for the button's git-pull\n"
                   "link to open the chapter's notebook" if hub else
                   "no JupyterHub button: publish --hub URL adds one (a hub that runs nbgitpuller)")
    header = ("# The learners' copy, written by `python -m autograder publish`: repository.url and\n"
              "# repository.branch come from its --repository and --branch, launch_buttons.jupyterhub_url\n"
              "# from --hub (no JupyterHub button without it). Change them there, or here and rebuild.\n")
    return header + text


def toc_text(text: str) -> str:
    """The course's _toc.yml with the introduction and the chapters only."""
    toc = yaml.safe_load(text)

    def learner(entry) -> bool:
        return str(entry.get("file", "")).startswith("chapters/")

    parts = []
    for part in toc.get("parts") or []:
        chapters = [c for c in part.get("chapters") or [] if learner(c)]
        if chapters:
            parts.append({**part, "chapters": chapters})
    if not parts:
        raise PublishError("_toc.yml lists no chapter under chapters/")
    toc["parts"] = parts
    return ("# The learners' copy (python -m autograder publish): the introduction and the chapters\n"
            + yaml.safe_dump(toc, sort_keys=False))


def intro_text(text: str) -> str:
    """intro.md without its instructors-only parts."""
    text = INSTRUCTORS_ONLY.sub("", text)
    if re.search(r"^% (end )?instructors-only", text, re.M):
        raise PublishError("intro.md: an '% instructors-only' comment has no '% end instructors-only'")
    return text


def book_requirements(text: str) -> str:
    pins = [line.strip() for line in text.splitlines()
            if re.match(rf"^({'|'.join(map(re.escape, BOOK_PACKAGES))})(==|>=|\s*$)", line.strip())]
    found = {re.split(r"[=<>]", p)[0] for p in pins}
    if found != set(BOOK_PACKAGES):
        raise PublishError(f"requirements.txt pins none of {sorted(set(BOOK_PACKAGES) - found)}")
    return ("# What building the book adds to requirements.txt:\n"
            "#   python -m pip install -r requirements.txt -r requirements-book.txt\n"
            + "\n".join(pins) + "\n")


def torch_pin(requirements: str) -> str:
    found = re.search(r"^torch==[^\s#]+", requirements, re.M)
    if not found:
        raise PublishError(f"{LEARNER_REQUIREMENTS} pins no torch==VERSION")
    return found.group(0)


def readme_text(repository: str, first_notebook: str, torch: str = "torch") -> str:
    name = first_notebook.rsplit("/", 1)[-1]
    disable = "\n".join(" ".join(command) for command in disable_instructor_tools_commands())
    return f"""# Attention from Scratch: the learners' copy

The course's chapters as notebooks, each with exercises and the visible tests that check them,
and the book they form. Its home is {repository}.

## Install (Python 3.11 or newer)

```bash
git clone {repository} && cd {repository.rsplit("/", 1)[-1].removesuffix(".git")}
python -m venv .venv && . .venv/bin/activate    # Windows: .venv\\Scripts\\activate
# on Linux, the CPU-only PyTorch first (the default build pulls gigabytes of CUDA libraries):
python -m pip install {torch} --index-url https://download.pytorch.org/whl/cpu
python -m pip install -r requirements.txt
```

## Work on a chapter

From this folder, copy the chapter's notebook into a folder of your own and open it there, so
that this copy stays as it was given (you can compare with it, or update it with `git pull`):

```bash
mkdir -p ~/my-attention
cp {first_notebook} ~/my-attention/
cd ~/my-attention && jupyter lab {name}
```

Run the notebook from the top. Each exercise is one cell with `# YOUR CODE HERE`: replace the
`raise NotImplementedError(...)` line under it with your code. The cell after it runs the
visible tests; they say what they expected and what they found. Your instructor grades with
more tests than these, so also check the cases the exercise describes.

If nbgrader is installed in the same environment (it is not in `requirements.txt`), JupyterLab
shows its instructor tools; turn them off in this environment with:

```bash
{disable}
```

(nbgrader's *Validate* button stays: it runs the visible tests of the whole notebook.)

## Build the book

```bash
python -m pip install -r requirements.txt -r requirements-book.txt
jupyter-book build --all .       # then open _build/html/index.html
```
"""


def publish(out: Path, repository: str, hub: str | None = None, branch: str = "main",
            root: Path = course.ROOT) -> list[str]:
    """Write the learners' copy into ``out``; return the files written (relative paths)."""
    root = Path(root).resolve()
    check_sources(root)
    out = check_out(out, root)
    repository = check_url("--repository", repository)
    hub = check_url("--hub", hub) if hub is not None else None
    if not re.fullmatch(r"[A-Za-z0-9._/-]+", branch):
        raise PublishError(f"--branch {branch!r} is not a branch name")
    config = (root / "_config.yml").read_text()
    own = str((yaml.safe_load(config).get("repository") or {}).get("url", ""))
    if own and same_repository(repository, own):
        raise PublishError(f"--repository {repository} is the course repository, which holds solutions/: "
                           "give the address of the learners' copy (where you push DIR)")

    toc = toc_text((root / "_toc.yml").read_text())
    pages = [entry["file"] for part in yaml.safe_load(toc)["parts"] for entry in part["chapters"]]
    texts = {
        "_config.yml": config_text(config, repository, branch, hub),
        "_toc.yml": toc,
        "intro.md": intro_text((root / "intro.md").read_text()),
        "requirements.txt": (root / LEARNER_REQUIREMENTS).read_text(),
        "requirements-book.txt": book_requirements((root / "requirements.txt").read_text()),
        "README.md": readme_text(repository, f"{pages[0]}.ipynb",
                                 torch_pin((root / LEARNER_REQUIREMENTS).read_text())),
        ".gitignore": "_build/\n.ipynb_checkpoints/\n",
    }
    created = not out.exists()
    out.mkdir(exist_ok=True)
    try:
        for name in ("_ext", "_static", "chapters"):
            shutil.copytree(root / name, out / name, ignore=JUNK)
        for name, text in texts.items():
            (out / name).write_text(text)
        missing = [p for p in pages if not (out / f"{p}.ipynb").is_file()]
        if missing:
            raise PublishError(f"_toc.yml lists chapters that chapters/ does not hold: {missing}")
        found = leaks.leaks(leaks.course_secrets(root), out)
        if found:
            raise PublishError("the learners' copy would hold solution or hidden-test lines "
                               "(run `python -m autograder release`?):\n" + "\n".join(found))
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        if not created:
            out.mkdir()
        raise
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
