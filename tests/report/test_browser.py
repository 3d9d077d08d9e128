"""The report in a real headless Chromium (Debian's, driven by Playwright).

The network is blocked for the whole browser context: every request other than the
report file itself is aborted and recorded, and the page must make none. Screenshots of
each section are written under pytest's base temporary folder, in
``report-screenshots/`` (``/tmp/pytest-of-$USER/pytest-current/report-screenshots/``
by default; ``pytest --basetemp DIR`` puts them in ``DIR/report-screenshots/``).
"""

import os
import shutil

import pytest

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# the machine's network may be closed: keep Chromium from calling home on its own
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update",
               "--disable-sync"]
# the marks each kind of Plotly trace draws: a chart with none of them drew nothing
MARKS = (".trace.bars .point path, .trace.scatter .points path, .trace.scatter .js-line, "
         ".trace.scatter .js-fill, .trace.boxes path.box, .hm image, .heatmaplayer image, "
         ".sankey .sankey-link, .trace.scatter .textpoint")


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
    # laptop width
    context = browser.new_context(viewport={"width": 1366, "height": 850}, offline=True)
    url = built.path.resolve().as_uri()
    outside, errors = [], []

    def route(r):
        if r.request.url == url:
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    pg = context.new_page()
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(url, wait_until="load")
    pg.wait_for_function("document.querySelectorAll('[data-chart]').length > 0 && "
                         "[...document.querySelectorAll('[data-chart]')]"
                         ".every(el => el.classList.contains('js-plotly-plot'))")
    pg.outside, pg.errors = outside, errors
    yield pg
    context.close()


def test_the_page_loads_without_console_errors_or_any_request(page):
    assert page.errors == []
    assert page.outside == []
    assert page.title().startswith("Trader segments as of 2024-03-16")
    assert page.evaluate("typeof Plotly") == "object"


def test_every_chart_container_renders_a_non_empty_plot(page, built):
    charts = page.locator("[data-chart]")
    expected = built.path.read_text(encoding="utf-8").count('data-chart="')
    assert charts.count() == expected >= 20
    for i in range(charts.count()):
        el = charts.nth(i)
        key = el.get_attribute("data-chart")
        box = el.bounding_box()
        assert box is not None and box["width"] >= 600 and box["height"] >= 100, (key, box)
        traces = el.evaluate("el => (el._fullData || []).filter(t => t.visible !== false)"
                             ".length")
        assert traces > 0, key
        assert el.locator(MARKS).count() > 0, f"{key} drew no marks"


def test_hover_names_the_unit(page):
    heat = page.locator("[data-chart='fig-profile']")
    template = heat.evaluate("el => el._fullData[0].hovertemplate")
    assert "median" in template and "customdata[1]" in template
    units = heat.evaluate("el => el.data[0].customdata.flat().map(c => c[1])")
    assert "USD" in units


def test_the_navigation_reaches_every_section(page):
    links = page.locator("nav a")
    assert links.count() == 14  # with the fairness section (a note when there are no decisions)
    for i in range(links.count()):
        assert page.locator(links.nth(i).get_attribute("href")).count() == 1


def test_a_screenshot_of_each_section(page, tmp_path_factory):
    out = tmp_path_factory.mktemp("report-screenshots", numbered=False)
    sections = page.locator("main > section")
    ids = [sections.nth(i).get_attribute("id") for i in range(sections.count())]
    assert len(ids) == 14
    for i, sid in enumerate(ids):
        shot = out / f"{i:02d}-{sid}.png"
        sections.nth(i).screenshot(path=str(shot))
        assert shot.stat().st_size > 5_000, sid
    print(f"screenshots in {out}")  # noqa: T201  (the test run's artefacts)
