"""In a real browser: the built tiny site served on localhost and driven with Debian's headless Chromium.

Checks what a reader would notice: every image loads (after scrolling, since they are lazy), the
console stays free of errors, nothing is fetched from outside localhost (the site must work
offline), unit links lead to unit pages, the dark/light toggle works and the glightbox lightbox
opens. Full-page screenshots go to $SCREENSHOT_DIR, or else the test's tmp_path.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import io
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
import yaml
from PIL import Image

from generator.build import build_site
from generator.config import load_config

# Debian's launcher, else the binary it starts (some images ship the package without the launcher).
CHROMIUM = next((p for p in (Path("/usr/bin/chromium"), Path("/usr/lib/chromium/chromium")) if p.is_file()),
                Path("/usr/bin/chromium"))
if not CHROMIUM.is_file():
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")

REPO = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
TIMEOUT_MS = 10_000

# Scroll down one screen at a time so that every loading=lazy image comes into view.
SCROLL_TO_BOTTOM = """async () => {
    for (let y = 0; y < document.documentElement.scrollHeight; y += window.innerHeight / 2) {
        window.scrollTo(0, y);
        await new Promise(r => setTimeout(r, 30));
    }
    window.scrollTo(0, document.documentElement.scrollHeight);
}"""
BROKEN_IMAGES = "() => Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)"


def mkdocs_site(tiny_build, folder: Path, site_dir: Path, url: str = "") -> Path:
    """The tiny project copied into ``folder`` (the shared build stays as it is), its ``site.url`` set to
    ``url`` if given, built by mkdocs --strict into ``site_dir``."""
    project = folder / "project"
    shutil.copytree(tiny_build[0], project)
    if url:
        config = yaml.safe_load((project / "site_config.yaml").read_text())
        config["site"]["url"] = url
        (project / "site_config.yaml").write_text(yaml.safe_dump(config))
        build_site(load_config(project / "site_config.yaml"), project)  # all cached: only the pages are written
    shutil.copy(REPO / "mkdocs.yml", project / "mkdocs.yml")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site_dir)],
                         cwd=project, env=env, capture_output=True, text=True)
    assert run.returncode == 0 and "WARNING" not in run.stderr, run.stderr
    return site_dir


@pytest.fixture(scope="module")
def site(tiny_build, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("browser")
    return mkdocs_site(tiny_build, folder, folder / "project" / "site")


class Handler(http.server.SimpleHTTPRequestHandler):
    """Static files; a missing path gets ``not_found``'s page with status 404, as GitHub Pages does."""

    not_found: Path | None = None

    def log_message(self, *args):
        pass

    def send_error(self, code, message=None, explain=None):
        if code != 404 or self.not_found is None:
            return super().send_error(code, message, explain)
        body = self.not_found.read_bytes()
        self.send_response(404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


@contextlib.contextmanager
def serve(root: Path, not_found: Path | None = None):
    """``root`` served by http.server on a free port of 127.0.0.1; yields the root's URL."""
    handler = type("SiteHandler", (Handler,), {"not_found": not_found})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(scope="module")
def base_url(site):
    with serve(site) as url:
        yield url


@pytest.fixture(scope="module")
def sub_path(tiny_build, tmp_path_factory) -> tuple[str, Path]:
    """A project site as GitHub serves it: built for https://example.github.io/my-report/ and served under
    /my-report/ (the 404 page for any missing path); yields that URL and the site folder."""
    folder = tmp_path_factory.mktemp("sub-path")
    site = mkdocs_site(tiny_build, folder, folder / "www" / "my-report", url="https://example.github.io/my-report/")
    with serve(folder / "www", not_found=site / "404.html") as url:
        yield url + "my-report/", site


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Tab:
    """A fresh page that records console errors, page errors and requests leaving localhost."""

    def __init__(self, browser, base_url: str, width: int = 1280, scheme: str = "light"):
        self.base_url = base_url
        self.context = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=scheme)
        self.context.set_default_timeout(TIMEOUT_MS)
        self.errors: list[str] = []
        self.external: list[str] = []
        # Requests that leave localhost are recorded and aborted, never sent: the test stays offline.
        self.context.route(lambda url: urlsplit(url).hostname not in ("127.0.0.1", "localhost"), self._block)
        self.page = self.context.new_page()
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))

    def _block(self, route):
        self.external.append(route.request.url)
        route.abort()

    def _console(self, message):
        if message.type == "error":
            where = message.location.get("url", "")
            self.errors.append(f"console error: {message.text} ({where})" if where else f"console error: {message.text}")

    def open(self, path: str):
        self.page.goto(self.base_url + path)
        self.settle()

    def settle(self):
        """Scroll through the page, wait until the network is idle and every image has finished."""
        self.page.evaluate(SCROLL_TO_BOTTOM)
        self.page.wait_for_load_state("networkidle")
        self.page.wait_for_function("() => Array.from(document.images).every(i => i.complete)")

    def broken_images(self) -> list[str]:
        return self.page.evaluate(BROKEN_IMAGES)

    def image_count(self) -> int:
        return self.page.evaluate("() => document.images.length")

    def path(self) -> str:
        """The current URL relative to the site root, without the #fragment (navigation.tracking sets one)."""
        url = self.page.url.split("#")[0]
        assert url.startswith(self.base_url), url
        return url[len(self.base_url):]

    def h1(self) -> str:
        return " ".join(self.page.locator(".md-content h1").first.inner_text().split())

    def assert_clean(self):
        assert self.external == [], ("the site requests resources outside localhost; it must work offline "
                                     "(Material's Google Fonts: set `theme: font: false` in mkdocs.yml)")
        assert self.errors == []

    def close(self):
        self.context.close()


@pytest.fixture
def tab(browser, base_url):
    tab = Tab(browser, base_url)
    yield tab
    tab.close()


def screenshot(tab: Tab, tmp_path: Path, name: str) -> Path:
    """A full-page screenshot from the top (else the sticky header lands mid-screenshot)."""
    path = screenshot_dir(tmp_path) / f"{name}.png"
    tab.page.evaluate("() => window.scrollTo(0, 0)")
    tab.page.wait_for_function("() => window.scrollY === 0")
    tab.page.screenshot(path=str(path), full_page=True)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    return path


def screenshot_dir(tmp_path: Path) -> Path:
    folder = Path(os.environ["SCREENSHOT_DIR"]) if os.environ.get("SCREENSHOT_DIR") else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder


PAGES = {  # path -> (screenshot name, what the H1 contains)
    "": ("home", []),
    "models/tiny/c2/": ("layer-c2", ["c2"]),
    "models/tiny/c3/": ("layer-c3", ["c3"]),
    "models/tiny/c3/5/": ("unit-c3-5", ["c3", "channel 5"]),
}


@pytest.mark.parametrize("path", list(PAGES), ids=[name for name, _ in PAGES.values()])
def test_page_renders(tab, path, tmp_path):
    name, heading = PAGES[path]
    tab.open(path)
    assert tab.path() == path
    for word in heading:
        assert word in tab.h1()
    assert tab.image_count() > 0
    broken = tab.broken_images()
    assert broken == [], f"images that did not load: {broken}"
    # The theme's stylesheet applied: Material's header is fixed-position and the palette toggle shows.
    assert tab.page.locator("header.md-header").evaluate("e => getComputedStyle(e).position") in ("sticky", "fixed")
    toggle = tab.page.locator('form[data-md-component="palette"] label:visible')
    assert toggle.count() == 1, "one dark/light toggle button is visible"

    screenshot(tab, tmp_path, name)
    tab.assert_clean()


def test_dark_light_toggle(tab):
    tab.open("models/tiny/c3/")
    body = tab.page.locator("body")
    toggle = tab.page.locator('form[data-md-component="palette"] label:visible')
    assert body.get_attribute("data-md-color-scheme") == "default"
    toggle.click()
    sync_api.expect(body).to_have_attribute("data-md-color-scheme", "slate")
    toggle.click()
    sync_api.expect(body).to_have_attribute("data-md-color-scheme", "default")
    tab.assert_clean()


@pytest.fixture(params=["root", "sub-path"])
def root_or_sub_path_tab(request, browser):
    """A tab on the site served at the server's root, then on the project site served under /my-report/."""
    url = request.getfixturevalue("base_url") if request.param == "root" else request.getfixturevalue("sub_path")[0]
    tab = Tab(browser, url)
    yield tab
    tab.close()


def test_unit_link_leads_to_the_unit_page(root_or_sub_path_tab):
    tab = root_or_sub_path_tab  # navigation.instant follows the link in page, then the URL must keep the sub-path
    tab.open("models/tiny/c3/")
    link = tab.page.locator('.md-content a[href="5/"], .md-content a[href$="/c3/5/"]').first
    link.click()
    tab.page.wait_for_url(lambda url: url.split("#")[0].endswith("/models/tiny/c3/5/"))
    sync_api.expect(tab.page.locator(".md-content h1").first).to_contain_text("channel 5")
    tab.settle()
    assert tab.path() == "models/tiny/c3/5/"
    assert "c3" in tab.h1() and "channel 5" in tab.h1()
    broken = tab.broken_images()
    assert tab.image_count() > 0 and broken == [], f"images that did not load: {broken}"
    tab.assert_clean()


def test_lightbox_opens_on_a_figure(tab):
    tab.open("models/tiny/c3/5/")
    links = tab.page.locator("a.glightbox")
    assert links.count() > 0
    target = links.first.get_attribute("href")
    links.first.click()
    image = tab.page.locator(".glightbox-container .gslide.current img")
    sync_api.expect(image).to_be_visible()
    assert image.get_attribute("src").endswith(target)
    image.evaluate("i => i.complete || new Promise(r => i.addEventListener('load', r))")
    assert image.evaluate("i => i.naturalWidth") > 0
    tab.page.keyboard.press("Escape")
    sync_api.expect(tab.page.locator(".glightbox-container")).to_have_count(0)
    tab.assert_clean()


LINKS = "() => Array.from(document.querySelectorAll('a[href]'), a => a.href)"  # as the browser resolves them


def links_on_the_site(tab, origin: str) -> list[str]:
    """The links of the open page that stay on ``origin``, without #fragments."""
    return sorted({url.split("#")[0] for url in tab.page.evaluate(LINKS) if url.startswith(origin)})


def test_a_project_site_under_a_sub_path_loads_every_image_and_links_only_under_it(browser, sub_path):
    """GitHub serves a project site under /<repository>/: visit every page from the home page by its links."""
    base, site = sub_path
    origin = base.removesuffix("my-report/")
    tab = Tab(browser, base)
    requested = []
    tab.page.on("request", lambda request: requested.append(request.url))
    pages, files, queue, images = set(), set(), [base], 0
    try:
        while queue:
            url = queue.pop()
            if url in pages:
                continue
            pages.add(url)
            tab.open(url.removeprefix(base))
            broken = tab.broken_images()
            assert broken == [], f"images that did not load on {url}: {broken}"
            images += tab.image_count()
            for link in links_on_the_site(tab, origin):
                assert link.startswith(base), f"{url} links outside the sub-path: {link}"
                (queue.append if link.endswith("/") else files.add)(link)
        assert images > 100
        for url in sorted(files):  # figures, CSV and JSON files linked from the pages
            assert tab.context.request.get(url).ok, url
        tab.assert_clean()
    finally:
        tab.close()
    built = {base + p.parent.relative_to(site).as_posix() + "/" for p in site.rglob("index.html")}
    assert pages == {url.removesuffix("./") for url in built}  # every page was reached, by links alone
    assert [url for url in requested if url.startswith(origin) and not url.startswith(base)] == []


def test_the_404_page_works_at_any_depth_under_the_sub_path(browser, sub_path):
    base, _ = sub_path
    tab = Tab(browser, base)
    try:
        tab.open("models/tiny/c3/no-such-unit/")
        assert "404" in tab.h1()
        # Its stylesheets and scripts come from /my-report/ (site_url), not from the missing page's folder.
        assert tab.page.locator("header.md-header").evaluate("e => getComputedStyle(e).position") in ("sticky", "fixed")
        assert tab.broken_images() == []
        links = links_on_the_site(tab, base.removesuffix("my-report/"))
        assert base in links and all(link.startswith(base) for link in links), links
        assert tab.external == [] and [e for e in tab.errors if "status of 404" not in e] == []
    finally:
        tab.close()


INK = (128, 128, 128)  # the charts' text and axes (generator.figures.INK)


def chart_pixels(tab: Tab) -> np.ndarray:
    """The first chart (a bar chart of predictions) as the reader sees it on the page, RGB."""
    chart = tab.page.locator(".md-content figure img.chart").first
    chart.scroll_into_view_if_needed()
    return np.asarray(Image.open(io.BytesIO(chart.screenshot())).convert("RGB")).astype(int)


@pytest.mark.parametrize("scheme, page_colour", [("dark", "slate"), ("light", "default")])
def test_charts_read_on_either_scheme_and_pictures_sit_on_light_cards(browser, base_url, tmp_path, scheme,
                                                                       page_colour):
    tab = Tab(browser, base_url, scheme=scheme)
    try:
        tab.open("report/")
        assert tab.page.locator("body").get_attribute("data-md-color-scheme") == page_colour
        background = tab.page.evaluate("() => getComputedStyle(document.body).backgroundColor")
        background = tuple(int(v) for v in background[background.index("(") + 1:-1].split(",")[:3])
        chart = tab.page.locator(".md-content figure img.chart").first
        assert chart.evaluate("i => getComputedStyle(i).backgroundColor") == "rgba(0, 0, 0, 0)"
        pixels = chart_pixels(tab)
        colours, counts = np.unique(pixels.reshape(-1, 3), axis=0, return_counts=True)
        assert np.abs(colours[counts.argmax()] - background).max() <= 3  # the page shows through: no grey box
        ink = np.abs(pixels - INK).max(axis=-1) <= 24
        assert ink.sum() > 50  # the chart's text and axes are drawn, in the grey that reads on both
        picture = tab.page.locator(".md-content figure img:not(.chart)").first
        card = picture.evaluate("i => getComputedStyle(i).backgroundColor")
        assert (card == "rgb(255, 255, 255)") == (scheme == "dark")  # labels drawn on white: a light card in the dark
        assert tab.broken_images() == []
        screenshot(tab, tmp_path, f"report-{scheme}")
        tab.assert_clean()
    finally:
        tab.close()


def test_map_table_scrolls_at_phone_width(browser, base_url, tmp_path):
    tab = Tab(browser, base_url, width=390)
    try:
        tab.open("report/")
        maps = tab.page.locator(".md-content table img[alt*=' on ']")
        assert maps.count() > 3
        widths = [maps.nth(k).bounding_box()["width"] for k in range(maps.count())]
        assert min(widths) >= 100, widths  # shown at their size, not shrunk to fit the screen
        wrap = maps.first.locator("xpath=ancestor::div[contains(@class, 'md-typeset__scrollwrap')]")
        assert wrap.evaluate("w => w.scrollWidth > w.clientWidth")  # the table scrolls sideways ...
        assert tab.page.evaluate("() => document.documentElement.scrollWidth") <= 390  # ... not the page
        screenshot(tab, tmp_path, "report-phone")
        tab.assert_clean()
    finally:
        tab.close()


def test_unit_search_finds_a_unit_by_its_label_and_opens_its_page(root_or_sub_path_tab):
    tab = root_or_sub_path_tab
    fetched = []
    tab.page.on("request", lambda request: fetched.append(request.url))
    tab.open("models/tiny/c3/")
    assert not [url for url in fetched if url.endswith("units.json")], "the index loads on the search page only"
    tab.open("unit-search/")
    index = [url for url in fetched if url.endswith("units.json")]
    assert index == [tab.base_url + "unit-search/units.json"]
    label = next(e["label"] for e in tab.page.evaluate(f"() => fetch('{index[0]}').then(r => r.json())")
                 if e["unit"] == "c3:5")
    tab.page.locator("#unit-search-box").fill(f"{label} c3:5")
    result = tab.page.locator("#unit-search-results a", has_text="c3:5")
    sync_api.expect(result).to_have_count(1)
    assert label in tab.page.locator("#unit-search-results li").first.inner_text()
    result.click()
    tab.page.wait_for_url("**/models/tiny/c3/5/")
    tab.settle()
    assert tab.path() == "models/tiny/c3/5/" and "channel 5" in tab.h1()
    tab.page.go_back()
    tab.page.locator("#unit-search-box").fill("no-such-unit-anywhere")
    sync_api.expect(tab.page.locator("#unit-search-count")).to_have_text("0 units")
    tab.assert_clean()


def test_layer_summary_sorts_by_a_clicked_column(tab):
    tab.open("models/tiny/c3/")
    table = tab.page.locator(".sortable table")
    header = table.locator("th").nth(4)  # max
    assert header.inner_text() == "max"
    header.click()
    values = [float(v) for v in table.locator("tbody tr td:nth-child(5)").all_inner_texts()]
    assert values == sorted(values, reverse=True) and len(values) == 8 and len(set(values)) > 1
    header.click()
    values = [float(v) for v in table.locator("tbody tr td:nth-child(5)").all_inner_texts()]
    assert values == sorted(values)
    tab.assert_clean()
