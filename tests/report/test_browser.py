"""The report in a real headless Chromium: offline, no errors, every picture drawn."""

import os
import shutil

import pytest

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# as the machine's network is closed, keep Chromium from calling home (see the Makefile)
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update",
               "--disable-sync"]


def _chromium():
    path = os.environ.get("TRADERSEG_CHROMIUM")
    if path:
        return path
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    exe = _chromium()
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("no Chromium found in CI: `make test` installs it from the system's "
                        "packages (or set TRADERSEG_CHROMIUM)")
        pytest.skip("no Chromium on this machine (make test installs it)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, headless=True, args=LAUNCH_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def page(browser, built):
    context = browser.new_context(viewport={"width": 1400, "height": 900}, offline=True)
    url = built.path.resolve().as_uri()
    outside, errors = [], []

    def route(r):
        if r.request.url == url or r.request.url.startswith("data:"):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    pg = context.new_page()
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(url, wait_until="load")
    pg.outside, pg.errors = outside, errors
    yield pg
    context.close()


def test_the_page_opens_offline_without_requests_or_errors(page):
    assert page.outside == []
    assert page.errors == []
    assert page.title().startswith("Trader segments as of 2024-03-16")


def test_every_picture_is_drawn_at_a_readable_size(page, built):
    figures = page.locator("figure[data-figure]")
    assert figures.count() >= 17
    for i in range(figures.count()):
        fig = figures.nth(i)
        svg = fig.locator("svg")
        assert svg.count() == 1, fig.get_attribute("data-figure")
        box = svg.bounding_box()
        assert box is not None and box["width"] >= 300 and box["height"] >= 100, (
            fig.get_attribute("data-figure"), box)
        # the picture's own text is real text, laid out inside it
        assert svg.locator("text").count() > 0
    # the scatter layers are embedded pictures that decoded
    images = page.locator("figure[data-figure='fig-map'] svg image")
    assert images.count() >= 1
    assert images.first.bounding_box()["width"] > 50


def test_the_navigation_reaches_every_section(page):
    links = page.locator("nav a")
    assert links.count() == 11
    for i in range(links.count()):
        target = links.nth(i).get_attribute("href")
        assert page.locator(target).count() == 1
    page.locator("nav a[href='#bias']").click()
    page.wait_for_function("Math.abs(document.querySelector('#bias').getBoundingClientRect().top) < 40")
    assert page.locator("#bias").is_visible()


def test_segment_names_read_in_the_page(page, built):
    text = page.locator("#segments table").first.inner_text()
    for name in built.data.names.values():
        assert name in text


def test_a_full_page_screenshot(page, built, tmp_path_factory):
    out = tmp_path_factory.mktemp("shots") / "report.png"
    page.screenshot(path=str(out), full_page=True)
    assert out.stat().st_size > 100_000
    height = page.evaluate("document.documentElement.scrollHeight")
    assert height > 5000  # a long page of pictures, not an empty shell
