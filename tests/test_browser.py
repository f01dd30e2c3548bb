"""The built book in a real browser, offline: every page of _toc.yml opened in headless Chromium.

The book is built once (the ``built_book`` fixture, with ``-W``), served from localhost, and
each page is opened twice, in the light and in the dark theme, with every request that does
not go to localhost blocked: the book must render completely from its own files (MathJax
included). A screenshot of each page and theme is written beside the build, in
``<build>/_build/screenshots/``: of the whole page when ``BOOK_PATH_OUTPUT`` keeps the build for
review (see tests/conftest.py), else of the first screen (a full page of a chapter is about
1280 x 15000 pixels, and encoding 18 of them cost half a minute of CPU in every run).

Chromium is Debian's (``apt-get install chromium``), driven by the Python ``playwright``
package; no browser is ever downloaded.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import threading
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlsplit

import nbformat
import pytest
import yaml

from autograder import course
from conftest import BOOK_PAGES

try:
    from playwright.sync_api import Error as PlaywrightError
except ImportError:  # the browser_context fixture then fails, saying how to install playwright
    PlaywrightError = Exception

pytestmark = [pytest.mark.book, pytest.mark.browser]

CONFIG = yaml.safe_load((course.ROOT / "_config.yml").read_text())
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
THEMES = ("light", "dark")
# whole-page screenshots only when the build is kept for review (BOOK_PATH_OUTPUT)
KEPT = bool(os.environ.get("BOOK_PATH_OUTPUT"))
INSTALL_HINT = ("install Debian's Chromium with `apt-get update && apt-get install -y chromium` "
                "(bash .ci/run does this), or point CHROMIUM=/path/to/chromium at one")


def notebook_pages() -> list[str]:
    return [p for p in BOOK_PAGES if (course.ROOT / f"{p}.ipynb").is_file()]


CHAPTER_PAGES = [p for p in notebook_pages() if p.startswith("chapters/")]


def slug(page: str) -> str:
    return page.replace("/", "__")


def chromium_executable() -> str:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).is_file():
        pytest.fail(f"Chromium is missing ({path} does not exist), so the book cannot be tested "
                    f"in a browser: {INSTALL_HINT}", pytrace=False)
    return path


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def book_url(built_book):
    """The built book served by ``http.server`` on a free localhost port."""
    handler = functools.partial(QuietHandler, directory=str(built_book))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def browser_context(tmp_path_factory, playwright_driver):
    """Headless Debian Chromium with a fresh profile folder."""
    executable = chromium_executable()
    try:
        context = playwright_driver.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=executable,
            headless=True, args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 900})
    except Exception as error:  # an unusable binary: say how to get a working one
        pytest.fail(f"Chromium at {executable} does not start ({error}): {INSTALL_HINT}", pytrace=False)
    yield context
    context.close()


# Everything a test asserts about one page, gathered in the page itself after it loaded.
INSPECT = r"""() => {
  const content = document.querySelector('.bd-article') || document.querySelector('main') || document.body;
  const prose = content.cloneNode(true);
  prose.querySelectorAll('pre, code, script, style, textarea, mjx-container, .highlight')
       .forEach(e => e.remove());
  const backing = img => {
    let corner = null;
    try {
      const canvas = document.createElement('canvas');
      canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
      const ctx = canvas.getContext('2d');
      ctx.drawImage(img, 0, 0);
      corner = Array.from(ctx.getImageData(1, 1, 1, 1).data);
    } catch (e) { corner = null; }
    return {corner: corner, css: getComputedStyle(img).backgroundColor};
  };
  return {
    theme: document.documentElement.dataset.theme,
    title: document.title,
    mjx: document.querySelectorAll('mjx-container').length,
    mjx_errors: Array.from(document.querySelectorAll('mjx-merror')).map(e => e.textContent),
    // TeX that MathJax typeset as literal text, e.g. \_ inside \text{} or \texttt{}
    mjx_literal_tex: window.MathJax && MathJax.startup && MathJax.startup.document
      ? Array.from(MathJax.startup.document.math)
             .filter(m => />[^<]*\\[^<]*</.test(MathJax.startup.toMML(m.root))).map(m => m.math)
      : [],
    mathjax_src: Array.from(document.scripts).map(s => s.src).filter(s => /mathjax/i.test(s)),
    prose: prose.textContent,
    images: Array.from(document.images).map(img => ({
      src: img.currentSrc || img.src, alt: img.getAttribute('alt'),
      loaded: img.complete && img.naturalWidth > 0, width: img.naturalWidth})),
    figures: Array.from(content.querySelectorAll('figure')).map(f => {
      const img = f.querySelector('img');
      const caption = f.querySelector('figcaption');
      return {id: f.id, alt: img ? img.getAttribute('alt') : null,
              loaded: !!img && img.naturalWidth > 0,
              caption: caption ? caption.textContent.trim() : '',
              backing: img ? backing(img) : null};
    }),
    sidebar: Array.from(document.querySelectorAll('.bd-sidebar-primary nav.bd-links a'))
                  .map(a => ({href: a.href, text: a.textContent.trim()})),
    links: Array.from(document.querySelectorAll('a[href]')).map(a => a.href),
    downloads: Array.from(document.querySelectorAll('.dropdown-download-buttons a[href]'))
                    .map(a => ({href: a.href, text: a.textContent.trim()})),
    launches: Array.from(document.querySelectorAll('.dropdown-launch-buttons a[href]'))
                   .map(a => ({href: a.href, text: a.textContent.trim()})),
    header_links: Array.from(document.querySelectorAll(
                    '.bd-header-article a[href], .article-header-buttons a[href]')).map(a => a.href),
  };
}"""


def visit(context, base_url: str, page: str, theme: str, screenshots: Path) -> dict:
    """Open one page offline in one theme; return what INSPECT found and what went wrong."""
    tab = context.new_page()
    report = {"console_errors": [], "page_errors": [], "blocked": [], "bad_responses": []}

    def route(r):
        if r.request.url.startswith(base_url):
            r.continue_()
        else:
            report["blocked"].append(r.request.url)
            r.abort()

    tab.route("**/*", route)
    tab.on("console", lambda m: m.type == "error" and report["console_errors"].append(m.text))
    tab.on("pageerror", lambda e: report["page_errors"].append(str(e)))
    tab.on("response", lambda r: r.status >= 400 and report["bad_responses"].append(f"{r.status} {r.url}"))
    try:
        tab.emulate_media(color_scheme=theme)
        tab.goto(base_url + page + ".html", wait_until="load")
        if tab.evaluate("() => !!document.querySelector('script[src*=\"mathjax\" i]')"):
            try:  # a MathJax that cannot load (a blocked CDN) shows up as untypeset math below
                tab.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise",
                                      timeout=10_000)
                tab.evaluate("async () => { await MathJax.startup.promise; }")
            except PlaywrightError as error:
                report["page_errors"].append(f"MathJax never started: {error}")
        tab.wait_for_load_state("networkidle")
        report.update(tab.evaluate(INSPECT))
        screenshots.mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=str(screenshots / f"{slug(page)}-{theme}.png"), full_page=KEPT)
    finally:
        tab.close()
    return report


@pytest.fixture(scope="session")
def screenshots(built_book):
    return built_book.parent / "screenshots"


@pytest.fixture(scope="session")
def pages(browser_context, book_url, screenshots):
    """``pages(page, theme)``: the report of one page in one theme, visited once per session
    (a visit that failed fails every test of that page at once, without visiting again)."""
    @functools.cache
    def report(page, theme):
        try:
            return visit(browser_context, book_url, page, theme, screenshots)
        except PlaywrightError as error:
            return {"visit_error": f"{page} ({theme}) could not be inspected: {error}"}

    def get(page, theme="light"):
        found = report(page, theme)
        if "visit_error" in found:
            pytest.fail(found["visit_error"], pytrace=False)
        return found

    return get


@functools.cache
def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, b""


def math_in_source(built_book: Path, page: str) -> int:
    """Formulas Sphinx wrote into the page (each becomes at least one typeset mjx-container)."""
    return (built_book / f"{page}.html").read_text().count('class="math notranslate nohighlight"')


# ---------------------------------------------------------------- every page, both themes


@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize("page", BOOK_PAGES)
def test_page_loads_offline_without_errors(pages, page, theme):
    report = pages(page, theme)
    assert report["theme"] == theme, f"{page}: the {theme} theme was not applied"
    assert not report["blocked"], f"{page} loads remote resources, so it breaks offline: {report['blocked']}"
    assert not report["bad_responses"], f"{page}: failed requests {report['bad_responses']}"
    assert not report["console_errors"], f"{page}: console errors {report['console_errors']}"
    assert not report["page_errors"], f"{page}: uncaught JavaScript errors {report['page_errors']}"


@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize("page", BOOK_PAGES)
def test_screenshot_is_written(pages, screenshots, page, theme):
    pages(page, theme)
    shot = screenshots / f"{slug(page)}-{theme}.png"
    assert shot.is_file() and shot.stat().st_size > 10_000, f"no usable screenshot at {shot}"


# ---------------------------------------------------------------- content


RAW_TEX = [re.compile(p) for p in (r"\$\$", r"\\\(", r"\\\)", r"\\\[", r"\\\]", r"\\begin\{",
                                    r"\$[^$\n]{0,80}\\[A-Za-z]+")]


@pytest.mark.parametrize("page", BOOK_PAGES)
def test_math_is_typeset_from_the_book_itself(pages, built_book, book_url, page):
    report = pages(page)
    expected = math_in_source(built_book, page)
    if expected:
        assert report["mathjax_src"] and all(s.startswith(f"{book_url}_static/mathjax/")
                                             for s in report["mathjax_src"]), \
            f"{page} must load MathJax from the book's _static/mathjax, not {report['mathjax_src']}"
        assert report["mjx"] >= expected, \
            f"{page}: {expected} formulas in the page but only {report['mjx']} typeset by MathJax"
    assert not report["mjx_errors"], f"{page}: MathJax could not typeset {report['mjx_errors']}"
    assert not report["mjx_literal_tex"], \
        f"{page}: formulas show a backslash as text (MathJax text mode, e.g. \\texttt{{a\\_b}}; " \
        f"use \\mathtt{{a\\_b}}): {report['mjx_literal_tex']}"
    leftovers = sorted({m.group(0) for p in RAW_TEX for m in p.finditer(report["prose"])})
    assert not leftovers, f"{page} shows raw LaTeX in its text: {leftovers}"


@pytest.mark.parametrize("page", BOOK_PAGES)
def test_every_image_loads_and_has_alt_text(pages, page):
    images = pages(page)["images"]
    broken = [i["src"] for i in images if not i["loaded"]]
    no_alt = [i["src"] for i in images if not (i["alt"] or "").strip()]
    assert not broken, f"{page}: images that did not load {broken}"
    assert not no_alt, f"{page}: images without alt text {no_alt}"


@pytest.mark.parametrize("page", CHAPTER_PAGES)
def test_chapter_has_two_captioned_figures_with_alt_text(pages, page):
    figures = pages(page)["figures"]
    good = [f for f in figures if f["loaded"] and (f["alt"] or "").strip() and f["caption"]]
    assert len(good) >= 2, \
        f"{page} needs at least two figures with caption and alt text, found {len(good)}: {figures}"


def named_figures(page: str) -> dict[str, dict]:
    """``{name: (caption, alt)}`` of every cell of the chapter's notebook whose metadata makes
    it a named figure (``mystnb.figure.name``): the plots and the diagrams drawn from code."""
    notebook = nbformat.read(course.ROOT / f"{page}.ipynb", as_version=4)
    found = {}
    for cell in notebook.cells:
        mystnb = cell.metadata.get("mystnb", {})
        name = mystnb.get("figure", {}).get("name")
        if name:
            found[name] = {"caption": mystnb["figure"].get("caption", ""),
                           "alt": mystnb.get("image", {}).get("alt", "")}
    return found


@pytest.mark.parametrize("page", CHAPTER_PAGES)
def test_every_named_figure_renders_with_its_caption_and_alt_text(pages, page):
    """Each figure the notebook names (every diagram drawn from code among them) is on the page
    under its name, loaded, with the caption and the alt text its cell gives."""
    expected = named_figures(page)
    assert expected, f"{page} names no figure"
    shown = {f["id"]: f for f in pages(page)["figures"] if f["id"]}
    for name, meta in expected.items():
        figure = shown.get(name) or shown.get(name.replace("_", "-"))
        assert figure is not None, f"{page}: figure '{name}' is not on the page ({sorted(shown)})"
        assert figure["loaded"], f"{page}: the image of '{name}' did not load"
        assert figure["alt"] and figure["alt"].strip() == meta["alt"].strip(), \
            f"{page}: '{name}' has alt text {figure['alt']!r}"
        assert figure["caption"] and meta["caption"].split()[0] in figure["caption"], \
            f"{page}: '{name}' has caption {figure['caption']!r}"


def luminance(rgba) -> float:
    r, g, b = (c / 255 for c in rgba[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def css_rgba(css: str) -> list[float]:
    values = [float(v) for v in re.findall(r"[\d.]+", css)]
    return values[:3] + [values[3] * 255 if len(values) > 3 else 255]


@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize("page", CHAPTER_PAGES)
def test_figures_sit_on_a_light_opaque_backing(pages, page, theme):
    """Matplotlib draws dark ink: each figure needs a light backing, also in the dark theme.

    The backing is the figure's own pixels where they are opaque (a white facecolor), otherwise
    the image's CSS background (``_static/custom.css`` makes it white in the dark theme)."""
    for figure in pages(page, theme)["figures"]:
        corner = figure["backing"]["corner"]
        assert corner is not None, f"{page}: cannot read the pixels of a figure"
        css = css_rgba(figure["backing"]["css"])
        if theme == "dark":  # so that a transparent figure added later stays legible too
            assert css[3] == 255 and luminance(css) > 0.85, \
                f"{page}: in the dark theme figures sit on {figure['backing']['css']}, not on white " \
                "(see _static/custom.css)"
        backing = corner if corner[3] == 255 else css
        if theme == "light" and corner[3] < 255:
            continue  # a transparent figure on the light page background is legible
        assert backing[3] == 255 and luminance(backing) > 0.85, \
            f"{page} ({theme}): the figure '{figure['caption'][:60]}' sits on {backing}, " \
            "not on a light opaque backing"


# ---------------------------------------------------------------- navigation and links


def page_of(url: str, base_url: str) -> str:
    path = urlsplit(urldefrag(url).url).path
    return unquote(path[len(urlsplit(base_url).path):]).removesuffix(".html")


@pytest.mark.parametrize("page", BOOK_PAGES)
def test_sidebar_lists_every_page_in_order(pages, book_url, page):
    sidebar = pages(page)["sidebar"]
    expected = BOOK_PAGES if CONFIG.get("html", {}).get("home_page_in_navbar", True) else BOOK_PAGES[1:]
    listed = [page_of(link["href"], book_url) for link in sidebar]
    listed = [p for i, p in enumerate(listed) if p not in listed[:i]]  # a page may link its own sections
    assert listed == expected, f"{page}: the sidebar lists {listed}, the _toc.yml order is {expected}"
    assert all(link["text"] for link in sidebar), f"{page}: a sidebar entry has no title"


@pytest.mark.parametrize("page", BOOK_PAGES)
def test_every_internal_link_resolves(pages, book_url, page):
    problems = []
    for link in sorted(set(pages(page)["links"])):
        if not link.startswith(book_url):
            continue
        target, fragment = urldefrag(link)
        status, body = fetch(target)
        if status != 200:
            problems.append(f"{link}: HTTP {status}")
        elif fragment and target.endswith(".html") and \
                not re.search(rf'\bid="{re.escape(unquote(fragment))}"', body.decode()):
            problems.append(f"{link}: no element with id {unquote(fragment)!r}")
    assert not problems, f"{page} has broken links:\n" + "\n".join(problems)


@pytest.mark.parametrize("page", BOOK_PAGES)
def test_header_links_to_the_repository(pages, page):
    url = CONFIG["repository"]["url"].rstrip("/")
    assert any(h.rstrip("/") == url for h in pages(page)["header_links"]), \
        f"{page}: no repository link to {url} in the header ({pages(page)['header_links']})"


@pytest.mark.parametrize("page", notebook_pages())
def test_page_offers_its_notebook_for_download(pages, page):
    downloads = [d["href"] for d in pages(page)["downloads"] if urldefrag(d["href"]).url.endswith(".ipynb")]
    assert downloads, f"{page}: the download menu offers no .ipynb ({pages(page)['downloads']})"
    status, body = fetch(downloads[0])
    assert status == 200, f"{page}: downloading {downloads[0]} gives HTTP {status}"
    downloaded = nbformat.reads(body.decode(), as_version=4)
    nbformat.validate(downloaded)
    source = course.read(course.ROOT / f"{page}.ipynb")
    assert [c.source for c in downloaded.cells] == [c.source for c in source.cells], \
        f"{page}: the downloaded notebook is not {page}.ipynb from the repository"


LAUNCHERS = {"binderhub_url": "Binder", "jupyterhub_url": "JupyterHub", "colab_url": "Colab"}


@pytest.mark.parametrize("page", notebook_pages())
def test_launch_buttons_open_the_chapter_notebook(pages, page):
    launches = pages(page)["launches"]
    configured = {key: url for key, url in CONFIG.get("launch_buttons", {}).items() if key in LAUNCHERS}
    assert set(configured) == set(LAUNCHERS), \
        f"_config.yml launch_buttons should configure {sorted(LAUNCHERS)}"
    for key, url in configured.items():
        links = [launch["href"] for launch in launches if launch["href"].startswith(url.rstrip("/"))]
        assert links, f"{page}: no {LAUNCHERS[key]} launch button (found {launches})"
        assert all(unquote(link).count(f"{page}.ipynb") == 1 for link in links), \
            f"{page}: the {LAUNCHERS[key]} button does not open {page}.ipynb: {links}"


# ---------------------------------------------------------------- search


def search(browser_context, book_url: str, query: str) -> int:
    tab = browser_context.new_page()
    try:
        tab.goto(f"{book_url}search.html?q={query}", wait_until="load")
        tab.wait_for_function(
            "() => { const s = document.querySelector('#search-results .search-summary, "
            "#search-results p'); return s && /found|did not match/i.test(s.textContent); }",
            timeout=20_000)
        return tab.evaluate("() => document.querySelectorAll('#search-results ul.search li').length")
    finally:
        tab.close()


def test_search_finds_causal(browser_context, book_url):
    assert search(browser_context, book_url, "causal") > 0, "search.html?q=causal shows no results"


def test_search_reports_no_results_for_nonsense(browser_context, book_url):
    assert search(browser_context, book_url, "qzxwvnonsenseword") == 0, \
        "the search check counts results even for a word that is nowhere in the book"


def test_notebook_download_matches_released_files(built_book):
    """The _sources copies that readers download are the learner notebooks of chapters/."""
    for page in notebook_pages():
        copy = built_book / "_sources" / f"{page}.ipynb"
        assert copy.is_file(), f"the build holds no downloadable {copy.name}"
        assert json.loads(copy.read_text())["cells"] == \
            json.loads((course.ROOT / f"{page}.ipynb").read_text())["cells"]


REMOTE_ASSET = re.compile(
    r"<(?:script|img|iframe|source|audio|video)\b[^>]*\bsrc=[\"']?(?:https?:)?//[^>]*>"
    r"|<link\b(?=[^>]*\brel=[\"']?(?:stylesheet|preload|modulepreload|icon))[^>]*\bhref=[\"']?(?:https?:)?//[^>]*>"
    r"|url\([\"']?(?:https?:)?//[^)]*\)", re.I)


def test_no_page_references_remote_assets(built_book):
    """Without a browser: no page pulls a script, stylesheet, font or image from the network
    (links a reader clicks, like the launch buttons, are fine)."""
    found = [f"{path.relative_to(built_book)}: {m.group(0)[:120]}"
             for path in sorted(built_book.rglob("*.html"))
             for m in REMOTE_ASSET.finditer(path.read_text())]
    found += [f"{path.relative_to(built_book)}: {m.group(0)[:120]}"
              for path in sorted((built_book / "_static").rglob("*.css"))
              for m in REMOTE_ASSET.finditer(path.read_text(errors="replace"))]
    assert not found, "remote assets break the book offline:\n" + "\n".join(found)
