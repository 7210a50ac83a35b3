"""In a real browser: the built tiny site served on localhost and driven with Debian's headless Chromium.

Checks what a reader would notice: every image loads (after scrolling, since they are lazy), the
console stays free of errors, nothing is fetched from outside localhost (the site must work
offline), unit links lead to unit pages, the dark/light toggle works and the glightbox lightbox
opens. Full-page screenshots go to $SCREENSHOT_DIR, or else the test's tmp_path.
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
from urllib.parse import urlsplit

import pytest

CHROMIUM = Path("/usr/bin/chromium")
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


@pytest.fixture(scope="module")
def site(tiny_build, tmp_path_factory) -> Path:
    """The tiny project (a copy, so the shared build stays as it is) built by mkdocs into site/."""
    project = tmp_path_factory.mktemp("browser") / "project"
    shutil.copytree(tiny_build[0], project)
    shutil.copy(REPO / "mkdocs.yml", project / "mkdocs.yml")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict"], cwd=project, env=env,
                         capture_output=True, text=True)
    assert run.returncode == 0 and "WARNING" not in run.stderr, run.stderr
    return project / "site"


@pytest.fixture(scope="module")
def base_url(site):
    """site/ served by http.server on a free port of 127.0.0.1."""

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join(5)


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


def test_unit_link_leads_to_the_unit_page(tab):
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


def test_dark_scheme_shows_figures_on_light_cards(browser, base_url, tmp_path):
    tab = Tab(browser, base_url, scheme="dark")
    try:
        tab.open("report/")
        assert tab.page.locator("body").get_attribute("data-md-color-scheme") == "slate"
        page_background = tab.page.evaluate("() => getComputedStyle(document.body).backgroundColor")
        figure = tab.page.locator(".md-content figure img").first
        card = figure.evaluate("i => getComputedStyle(i).backgroundColor")
        assert card == "rgb(255, 255, 255)" != page_background  # a light card on the dark page
        assert float(figure.evaluate("i => parseFloat(getComputedStyle(i).paddingLeft)")) > 0
        assert tab.broken_images() == []
        screenshot(tab, tmp_path, "report-dark")
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
