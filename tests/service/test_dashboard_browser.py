"""The dashboard in a real headless Chromium (Debian's, through Playwright), over uvicorn.

Each role signs in with its key through the form, visits every page, and finds exactly
the role-gated parts its access rules allow. Every request outside the app is aborted
and recorded (none may happen), and no page logs a console error. Screenshots of every
page per role are kept in ``test-artefacts/service-screenshots/`` of the working tree.
"""

import shutil
from pathlib import Path

import pytest

from report.test_browser import LAUNCH_ARGS, _chromium
from traderseg.service import ServiceSettings, VenueStore, create_app
from traderseg.service.access import AUDIENCE_READERS, CONTROL_READERS, CONTROL_WRITERS
from traderseg.service.keys import ROLES

from .live import serving

SHOTS = Path(__file__).resolve().parents[2] / "test-artefacts" / "service-screenshots"


@pytest.fixture(scope="module")
def base_url(venues, keys, tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    shutil.copy(venues["root"] / "pristine" / "alpha.duckdb", root / "alpha.duckdb")
    app = create_app(ServiceSettings(
        venues={"alpha": VenueStore(db=root / "alpha.duckdb", model=venues["model"])},
        keys_file=venues["root"] / "keys.json"))
    with serving(app) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    exe = _chromium()
    if exe is None:
        pytest.skip("no Chromium on this machine (make test installs it)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, headless=True, args=LAUNCH_ARGS)
        yield b
        b.close()


def _charts_drawn(page):
    page.wait_for_function("[...document.querySelectorAll('[data-chart]')]"
                           ".every(el => el.classList.contains('js-plotly-plot'))")


@pytest.mark.parametrize("role", ROLES)
def test_each_role_sees_what_it_may(browser, base_url, keys, alpha_ids, role):
    SHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1366, "height": 850})
    outside, errors = [], []

    def route(r):
        if r.request.url.startswith(base_url + "/"):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(base_url + "/ui/")
    assert page.url.endswith("/ui/login")
    page.fill("#api_key", keys[role])
    page.click("#login button[type=submit]")
    page.wait_for_url(base_url + "/ui/")
    assert page.locator(f"[data-role='{role}']").count() == 1
    cookie = next(c for c in context.cookies() if c["name"] == "traderseg_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"

    account = alpha_ids[4]
    pages = {"overview": "/ui/", "segment": "/ui/segments/0",
             "account": f"/ui/accounts/{account}", "models": "/ui/models",
             "controls": "/ui/controls"}
    for name, path in pages.items():
        before = len(errors)
        resp = page.goto(base_url + path)
        if name == "controls" and role not in CONTROL_READERS:
            assert resp.status == 403
            assert "may not use" in page.inner_text("#error-detail")
            # Chromium logs the 403 of the page itself; nothing else may be logged
            assert all("403" in e for e in errors[before:])
            del errors[before:]
            continue
        assert resp.status == 200, (role, path)
        _charts_drawn(page)
        page.screenshot(path=str(SHOTS / f"{role}-{name}.png"), full_page=False)
        nav = page.locator("[data-nav='controls']").count()
        assert nav == (1 if role in CONTROL_READERS else 0)
        if name == "overview":
            assert page.locator("[data-chart]").count() >= 3
            assert page.locator("#segments tbody tr").count() >= 2
        if name == "segment":
            link = page.locator("#audience-download").count()
            assert link == (1 if role in AUDIENCE_READERS else 0)
        if name == "account":
            assert page.locator("#why tbody tr").count() >= 1
            assert page.locator("#controls").count() == (1 if role in CONTROL_READERS else 0)
            assert page.locator("#override").count() == (1 if role in CONTROL_WRITERS else 0)
        if name == "models":
            assert page.locator("#models tbody tr").count() == 1
    if role in CONTROL_WRITERS:
        page.goto(base_url + f"/ui/accounts/{account}")
        page.fill("#c-max_leverage", "4")
        page.fill("#reason", f"browser test by {role}")
        page.click("#override button[type=submit]")
        notice = page.locator("#form-notice").inner_text()
        key_id = keys[role].split("_")[1]
        assert f"key:{key_id}" in notice
        assert "4.0" in page.locator("#controls").inner_text()
    page.goto(base_url + "/ui/")
    page.click("#logout")
    page.wait_for_url(base_url + "/ui/login")
    assert errors == [] and outside == []
    context.close()
