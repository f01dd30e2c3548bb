"""Small fixes to the built book, kept out of _config.yml because they need a few lines of code.

1. Serve MathJax from the built book itself, so every formula renders with no network.

Jupyter Book (Sphinx) loads MathJax 3 from a CDN by default; offline, every formula then
shows as raw LaTeX. The PyPI package ``django-static-mathjax`` (pinned in requirements.txt, and
in requirements-book.txt of the learners' copy) ships the MathJax 3 distribution as package
data. This extension copies its ``es5/`` folder into the book's ``_static/mathjax/`` and points
``mathjax_path`` at the local copy.
Django itself is not needed: only the package's static files are used.

2. Give the theme a valid colour mode. Jupyter Book leaves pydata-sphinx-theme's page
variable ``default_mode`` empty, so every page logs the console error "Got invalid theme mode";
"auto" (follow the reader's system setting) is what the theme then falls back to anyway.

3. Drop scripts included twice. sphinx-thebe registers its inline configuration once per
read of the environment, and Jupyter Book reads it twice, so each page declared
``const THEBE_JS_URL`` twice: the uncaught "Identifier 'THEBE_JS_URL' has already been
declared" on every page.

4. Name the repository once. The MyST substitution ``{{ repository }}`` (a link) and
``{{ repository_url }}`` are _config.yml's ``repository.url``, so intro.md's link follows the same
setting as the header's button and the launch buttons (and ``python -m autograder publish``
rewrites only that setting for the learners' copy).
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from sphinx.errors import ExtensionError

ENTRY = "tex-mml-chtml.js"  # the bundle Sphinx loads from the CDN by default
TARGET = "mathjax"  # folder under _static/
# the other prebuilt bundles are never loaded by the book: leave them out (about 14 MB)
UNUSED_BUNDLES = {"mml-chtml.js", "mml-svg.js", "tex-chtml.js", "tex-chtml-full.js",
                  "tex-chtml-full-speech.js", "tex-mml-svg.js", "tex-svg.js", "tex-svg-full.js",
                  "node-main.js"}


def mathjax_dist() -> Path:
    """The ``es5/`` folder of the installed MathJax 3 distribution."""
    spec = importlib.util.find_spec("mathjax")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        es5 = Path(location) / "static" / "mathjax" / "es5"
        if (es5 / ENTRY).is_file():
            return es5
    raise ExtensionError(
        "MathJax is not installed, so the book cannot render its formulas offline: "
        "install django-static-mathjax: `python -m pip install -r requirements.txt` in the course, "
        "`python -m pip install -r requirements-book.txt` in the learners' copy")


def use_local_mathjax(app, config) -> None:
    mathjax_dist()  # fail early, before anything is built, when MathJax is missing
    config.mathjax_path = f"{TARGET}/{ENTRY}"  # relative paths are resolved under _static/


def repository_substitutions(app, config) -> None:
    url = str((config.html_theme_options or {}).get("repository_url") or "").rstrip("/")
    config.myst_substitutions = {**(config.myst_substitutions or {}), "repository_url": url,
                                 "repository": f"[{url}]({url})" if url else "the repository"}


def default_theme_mode(app, pagename, templatename, context, doctree) -> None:
    if not context.get("default_mode"):
        context["default_mode"] = "auto"


def drop_duplicate_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if scripts:
        unique, seen = [], set()
        for script in scripts:  # an inline script is registered with filename None or ""
            key = (getattr(script, "filename", script) or "", getattr(script, "priority", 0),
                   tuple(sorted(getattr(script, "attributes", {}).items())))
            if key not in seen:
                seen.add(key)
                unique.append(script)
        context["script_files"] = unique


def copy_mathjax(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    source = mathjax_dist()
    target = Path(app.outdir) / "_static" / TARGET

    def ignore(folder, names):
        return [n for n in names if Path(folder) == source and n in UNUSED_BUNDLES]

    shutil.copytree(source, target, ignore=ignore, dirs_exist_ok=True)


def setup(app):
    app.connect("config-inited", use_local_mathjax)
    app.connect("config-inited", repository_substitutions)
    app.connect("html-page-context", default_theme_mode)
    app.connect("html-page-context", drop_duplicate_scripts)
    app.connect("build-finished", copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
