"""How long the book takes to build, cold and cached, and what the cache re-executes.

    python benchmarks/book_build.py [--touch chapters/<id>/<name>.ipynb] [--keep DIR]

The book is copied to a temporary folder (the repository is never modified) and built with
``jupyter-book build -W`` four times into the same output folder, so that jupyter-cache
(``execute_notebooks: cache`` in _config.yml) can reuse executed notebooks:

1. cold: a fresh ``_build``, every notebook executed;
2. no change, incremental and then with ``--all`` as the README builds: nothing should be
   executed again;
3. markdown edited in one notebook: jupyter-cache hashes only code cells (and kernel
   metadata), so a prose edit should re-execute nothing;
4. code edited in the same notebook: exactly that notebook should be executed again.

For each build it prints the wall time and the notebooks myst-nb executed, as its log says
("Executing notebook"), cross-checked with the jupyter-cache records.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parent.parent
IGNORE = shutil.ignore_patterns("_build", ".git", ".pytest_cache", ".ruff_cache", "__pycache__",
                                "*.egg-info", "submitted", "autograded", "feedback", "gradebook.db")
EXECUTED = re.compile(r"^(\S+\.ipynb): Executing notebook", re.M)


def first_chapter(book: Path) -> str:
    toc = yaml.safe_load((book / "_toc.yml").read_text())
    for part in toc.get("parts") or [toc]:
        for chapter in part.get("chapters") or []:
            if (book / f"{chapter['file']}.ipynb").is_file():
                return f"{chapter['file']}.ipynb"
    raise SystemExit("_toc.yml lists no notebook")


def cache_records(out: Path) -> int:
    from jupyter_cache import get_cache

    folder = out / "_build" / ".jupyter_cache"
    return len(get_cache(folder).list_cache_records()) if folder.exists() else 0


def build(book: Path, out: Path, everything: bool = False) -> tuple[float, list[str], str]:
    command = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()",
               "build", str(book), "-W", "--path-output", str(out)] + (["--all"] if everything else [])
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    log = result.stdout + result.stderr
    if result.returncode:
        raise SystemExit(f"the build failed:\n{log[-4000:]}")
    executed = [str(Path(p).relative_to(book)) for p in EXECUTED.findall(log)]
    return seconds, executed, log


def edit(notebook: Path, cell_type: str, text: str) -> None:
    nb = nbformat.read(str(notebook), as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == cell_type and
                not c.get("metadata", {}).get("nbgrader", {}).get("locked"))
    cell.source += text
    nbformat.write(nb, str(notebook))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--touch", help="the notebook to edit (default: the first chapter of _toc.yml)")
    parser.add_argument("--keep", type=Path, help="build here and keep it (default: a temporary folder)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="book-bench-"))
    book = work / "book"
    shutil.copytree(ROOT, book, ignore=IGNORE)
    out = args.keep.resolve() if args.keep else work / "out"
    shutil.rmtree(out / "_build", ignore_errors=True)
    touched = args.touch or first_chapter(book)

    steps = [("cold build (fresh _build)", None),
             ("rebuild, nothing changed", None),
             ("rebuild with --all (as the README), nothing changed", "--all"),
             (f"rebuild, markdown edited in {touched}",
              lambda: edit(book / touched, "markdown", "\n\nOne more sentence of prose.")),
             (f"rebuild, code edited in {touched}",
              lambda: edit(book / touched, "code", "\n# one more comment"))]
    rows = []
    try:
        for name, change in steps:
            if callable(change):
                change()
            seconds, executed, _ = build(book, out, everything=change == "--all")
            rows.append((name, seconds, executed, cache_records(out)))
            print(f"{seconds:7.1f} s  {name}: executed {executed or 'nothing'} "
                  f"({rows[-1][3]} cache records)", flush=True)
    finally:
        shutil.rmtree(book, ignore_errors=True)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    print("\n| build | seconds | notebooks executed |\n|---|---:|---|")
    for name, seconds, executed, _ in rows:
        print(f"| {name} | {seconds:.1f} | {', '.join(executed) or 'none'} |")


if __name__ == "__main__":
    main()
