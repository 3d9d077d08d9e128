"""The dashboard: server-rendered pages under ``/ui`` with the report's charts.

Sign-in exchanges an API key for a session: a random id in an ``HttpOnly``,
``SameSite=Lax`` cookie (``Secure`` when the settings say so), the key itself is not kept.
Sessions live in the process's memory and end with it. Every form carries a CSRF token:
the session's for signed-in forms, a double-submit cookie for the sign-in form. Pages
show only what the role's access rules allow (:mod:`traderseg.service.access`), and the
page scripts and plotly.js are served by the app itself: nothing is fetched from outside.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.exceptions import HTTPException as StarletteHTTPException

from traderseg import __version__
from traderseg.analysis.migration import RISK_THRESHOLD
from traderseg.errors import DataError
from traderseg.online.book import iter_csv
from traderseg.online.overrides import override_controls
from traderseg.online.tables import read_audit
from traderseg.policy.controls import CONTROLS
from traderseg.report import charts
from traderseg.report.render import TIER_NAMES, figure_json, plotly_js
from traderseg.segment.overlays import LIFECYCLE_STAGES
from traderseg.service.access import allowed
from traderseg.service.auth import Caller, authorise, route_name, service_state
from traderseg.service.keys import ApiKey
from traderseg.service.views import account_view, controls_of, model_versions, not_found

SESSION_COOKIE = "traderseg_session"
LOGIN_COOKIE = "traderseg_login_csrf"
AUDIT_ROWS = 200
"""Latest audit rows shown on the controls page."""
MEMBER_ROWS = 50
"""Accounts listed on a segment page."""
DRIFT_ROWS = 20
"""Most shifted columns drawn on the models page."""
TEMPLATES = Path(__file__).parent / "templates"
STATIC = {"plotly.js": "application/javascript", "dashboard.js": "application/javascript",
          "dashboard.css": "text/css"}

router = APIRouter(prefix="/ui", include_in_schema=False)


@dataclass
class Session:
    """A signed-in dashboard user."""

    key: ApiKey
    csrf: str
    expires: float


class Sessions:
    """Sessions of one app, in memory."""

    def __init__(self, minutes: int) -> None:
        self.seconds = 60 * minutes
        self._by_id: dict[str, Session] = {}
        self._lock = threading.Lock()

    def open(self, key: ApiKey) -> str:
        """Start a session for ``key``; return its id (the cookie's value)."""
        sid = secrets.token_urlsafe(32)
        with self._lock:
            now = time.monotonic()
            self._by_id = {k: s for k, s in self._by_id.items() if s.expires > now}
            self._by_id[sid] = Session(key, secrets.token_urlsafe(32), now + self.seconds)
        return sid

    def get(self, sid: str | None) -> Session | None:
        """Return the live session of ``sid``, or ``None``."""
        if not sid:
            return None
        with self._lock:
            s = self._by_id.get(sid)
            if s is None or s.expires <= time.monotonic():
                self._by_id.pop(sid, None)
                return None
            return s

    def close(self, sid: str | None) -> None:
        """End a session."""
        with self._lock:
            self._by_id.pop(sid or "", None)


class SignInRequired(Exception):
    """A dashboard page was asked for without a live session."""


@cache
def _env() -> Environment:
    return Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(),
                       trim_blocks=True, lstrip_blocks=True)


@dataclass(frozen=True)
class UiCaller:
    """The signed-in caller of a page, with the session's CSRF token."""

    caller: Caller
    csrf: str


def ui_caller(request: Request) -> UiCaller:
    """Dependency of every signed-in page: the session's key, authorised for the route."""
    state = service_state(request)
    sessions: Sessions = request.app.state.sessions
    session = sessions.get(request.cookies.get(SESSION_COOKIE))
    if session is None or not state.keys.is_active(session.key.key_id):
        raise SignInRequired()
    return UiCaller(authorise(state, session.key, route_name(request)), session.csrf)


UiDep = Annotated[UiCaller, Depends(ui_caller)]


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """Render a page; ``may(route)`` tells the template what the role may see."""
    who: UiCaller | None = context.get("who")
    role = who.caller.role if who else None
    html = _env().get_template(template).render(
        version=__version__, may=lambda route: allowed(role, route) and role is not None,
        role=role, venue=who.caller.key.venue if who else None,
        csrf=who.csrf if who else None, **context)
    return HTMLResponse(html, status_code=status, headers={
        "Cache-Control": "no-store", "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin", "X-Content-Type-Options": "nosniff"})


def _check_csrf(expected: str, given: str) -> None:
    if not given or not hmac.compare_digest(expected, given):
        raise HTTPException(403, "the form's CSRF token does not match; reload the page")


def _fig(key: str, summary: str, fig: Any) -> dict[str, Any]:
    return {"key": key, "summary": summary, "json": figure_json(fig)}


# ------------------------------------------------------------------ sign-in
@router.get("/login", name="ui_login_form", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    """Show the sign-in page."""
    token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(32)
    resp = render(request, "login.html", login_csrf=token, error=None)
    _set_cookie(request, resp, LOGIN_COOKIE, token)
    return resp


@router.post("/login", name="ui_login", response_class=HTMLResponse)
def login(request: Request, api_key: Annotated[str, Form(max_length=200)],
          csrf_token: Annotated[str, Form(max_length=100)]) -> Response:
    """Exchange an API key for a session."""
    _check_csrf(request.cookies.get(LOGIN_COOKIE, ""), csrf_token)
    state = service_state(request)
    key = state.keys.verify(api_key.strip())
    if key is None or key.venue not in state.venues:
        return render(request, "login.html", status=401, login_csrf=csrf_token,
                      error="That key is not valid here (unknown, revoked or mistyped).")
    sid = request.app.state.sessions.open(key)
    resp = RedirectResponse("/ui/", status_code=303)
    _set_cookie(request, resp, SESSION_COOKIE, sid)
    resp.delete_cookie(LOGIN_COOKIE, path="/ui")
    return resp


def _set_cookie(request: Request, resp: Response, name: str, value: str) -> None:
    settings = service_state(request).settings
    resp.set_cookie(name, value, httponly=True, samesite="lax", secure=settings.secure_cookies,
                    path="/ui", max_age=60 * settings.session_minutes)


@router.post("/logout", name="ui_logout")
def logout(request: Request, who: UiDep,
           csrf_token: Annotated[str, Form(max_length=100)]) -> Response:
    """End the session."""
    _check_csrf(who.csrf, csrf_token)
    request.app.state.sessions.close(request.cookies.get(SESSION_COOKIE))
    resp = RedirectResponse("/ui/login", status_code=303)
    resp.delete_cookie(SESSION_COOKIE, path="/ui")
    return resp


@router.get("/static/{name}", name="ui_static")
def static(name: str) -> Response:
    """Serve plotly.js (from the plotly package) and the dashboard's own script and style."""
    if name not in STATIC:
        raise HTTPException(404, f"no static file {name!r}")
    body = str(plotly_js()) if name == "plotly.js" else (TEMPLATES / name).read_text("utf-8")
    return Response(body, media_type=STATIC[name],
                    headers={"Cache-Control": "public, max-age=86400"})


# ------------------------------------------------------------------ pages
@router.get("/", name="ui_overview", response_class=HTMLResponse)
def overview(request: Request, who: UiDep) -> HTMLResponse:
    """Show the segments of the venue with their lifecycle, value and risk mix."""
    book = who.caller.venue.book
    names = book.segment_names
    colours = charts.segment_colours(sorted(names))
    acc = book.accounts.reset_index()
    segs = book.segments()
    figs = [
        _fig("lifecycle", "Lifecycle stage of each segment's accounts.",
             charts.overlay_mix(acc, "lifecycle_stage", LIFECYCLE_STAGES,
                                charts.LIFECYCLE_COLOURS, names)),
        _fig("tiers", "Value tier (by venue revenue) of each segment's accounts.",
             charts.overlay_mix(acc, "value_tier", TIER_NAMES, charts.TIER_COLOURS, names)),
        _fig("risk", f"Risk score per segment; {RISK_THRESHOLD:g} and above is high risk.",
             charts.risk_by_segment(acc, names, colours, RISK_THRESHOLD)),
    ]
    per = segs.rename(columns={"mean_clv_usd": "mean_clv",
                               "mean_churn_probability": "churn_probability"})
    if per["mean_clv"].notna().any():
        figs.append(_fig("clv", "Lifetime value per account and churn probability.",
                         charts.clv_churn(per.fillna(0.0), names, colours)))
    return render(request, "overview.html", who=who, book=book,
                  segments=segs.to_dict("records"), figures=figs, title="Overview")


def _segment_or_404(who: UiCaller, segment_id: int) -> dict[str, Any]:
    segs = who.caller.venue.book.segments()
    row = segs[segs["segment"] == segment_id]
    if row.empty:
        raise HTTPException(404, f"no segment {segment_id} in the model")
    out = {str(k): v for k, v in row.iloc[0].to_dict().items()}
    return out


@router.get("/segments/{segment_id}", name="ui_segment", response_class=HTMLResponse)
def segment_page(request: Request, who: UiDep, segment_id: int) -> HTMLResponse:
    """Show one segment: what it is, its accounts, its distinctive features."""
    seg = _segment_or_404(who, segment_id)
    book = who.caller.venue.book
    meta = next(s for s in book.metadata.get("segments", []) if int(s["id"]) == segment_id)
    members = book.members(segment_id, limit=MEMBER_ROWS).to_dict("records")
    acc = book.accounts.reset_index()
    mine = acc[acc["segment"] == segment_id]
    figs = []
    if len(mine):
        figs.append(_fig("lifecycle", "Lifecycle stage of the segment's accounts.",
                         charts.overlay_mix(mine, "lifecycle_stage", LIFECYCLE_STAGES,
                                            charts.LIFECYCLE_COLOURS, book.segment_names)))
    return render(request, "segment.html", who=who, seg=seg, members=members,
                  top=meta.get("top_features", []), figures=figs, title=seg["name"])


@router.get("/segments/{segment_id}/audience.csv", name="ui_audience")
def segment_audience(who: UiDep, segment_id: int) -> StreamingResponse:
    """Download the segment's audience as CSV (accounts not eligible for marketing left out)."""
    _segment_or_404(who, segment_id)
    venue = who.caller.venue
    cur = venue.cursor()
    try:
        out = [str(r[0]) for r in cur.execute(
            "SELECT account_id FROM controls WHERE NOT marketing_eligible").fetchall()]
    finally:
        cur.close()
    frame = venue.book.audience(segments=[segment_id], exclude=out)
    return StreamingResponse(iter_csv(frame), media_type="text/csv", headers={
        "Content-Disposition": f'attachment; filename="segment-{segment_id}.csv"'})


@router.get("/accounts", name="ui_account_lookup")
def account_lookup(who: UiDep,
                   account_id: Annotated[str, Query(min_length=1, max_length=200)]) -> Response:
    """Go from the account search box to the account's page."""
    from urllib.parse import quote

    return RedirectResponse(f"/ui/accounts/{quote(account_id.strip(), safe='')}",
                            status_code=303)


def _account_page(request: Request, who: UiCaller, account_id: str, *, status: int = 200,
                  error: str | None = None, notice: str | None = None) -> HTMLResponse:
    venue = who.caller.venue
    view = account_view(venue, account_id, with_controls=who.caller.may("read_controls"))
    units = {f.column: f.unit for f in view.features}
    return render(request, "account.html", status=status, who=who, acc=view,
                  why=venue.book.why(account_id), units=units, controls=CONTROLS,
                  error=error, notice=notice, title=f"Account {account_id}")


@router.get("/accounts/{account_id}", name="ui_account", response_class=HTMLResponse)
def account_page(request: Request, who: UiDep, account_id: str) -> HTMLResponse:
    """Show one account: why it is in its segment, overlays, predictions and controls."""
    return _account_page(request, who, account_id)


def _form_value(kind: str, text: str) -> Any:
    if kind == "bool":
        return text == "true"
    if kind == "double":
        try:
            return float(text)
        except ValueError:
            raise DataError(f"{text!r} is not a number") from None
    return text


@router.post("/accounts/{account_id}/controls", name="ui_change_controls",
             response_class=HTMLResponse)
async def change_controls(request: Request, who: UiDep, account_id: str) -> HTMLResponse:
    """Set controls by hand from the override form, audited with the key's id."""
    form = await request.form()
    _check_csrf(who.csrf, str(form.get("csrf_token", "")))
    venue = who.caller.venue
    if account_id not in venue.book and controls_of(venue, account_id) is None:
        raise not_found(account_id)
    try:
        changes = {c.name: _form_value(str(c.type), str(form[c.name])) for c in CONTROLS
                   if str(form.get(c.name, "")).strip()}
        with venue.writing():
            cur = venue.cursor()
            try:
                n = override_controls(cur, account_id, changes, actor=who.caller.key.actor,
                                      reason=str(form.get("reason", "")))
            finally:
                cur.close()
    except DataError as exc:
        return _account_page(request, who, account_id, status=422, error=str(exc))
    request.app.state.metrics.control_changes.inc(n)
    return _account_page(request, who, account_id,
                         notice=f"{n} change(s) recorded as {who.caller.key.actor}")


@router.get("/controls", name="ui_controls", response_class=HTMLResponse)
def controls_page(request: Request, who: UiDep) -> HTMLResponse:
    """Show the latest control changes (the audit log) and who made them."""
    cur = who.caller.venue.cursor()
    try:
        audit = read_audit(cur)
    finally:
        cur.close()
    latest = audit.iloc[::-1].head(AUDIT_ROWS)
    by_actor = audit.groupby("actor").size().sort_values(ascending=False).to_dict()
    return render(request, "controls.html", who=who, rows=latest.to_dict("records"),
                  total=len(audit), by_actor=by_actor, title="Controls and audit log")


@router.get("/models", name="ui_models", response_class=HTMLResponse)
def models_page(request: Request, who: UiDep) -> HTMLResponse:
    """Show the model versions and the drift of the accounts from the training population."""
    book = who.caller.venue.book
    drift = book.drift.head(DRIFT_ROWS)
    figs = []
    if len(drift):
        figs.append(_fig("drift", "Population stability index of the most shifted model "
                         "columns, today's accounts against the training population.",
                         charts.drift_bars(drift)))
    return render(request, "models.html", who=who, models=model_versions(who.caller.venue),
                  drift=drift.to_dict("records"), figures=figs,
                  as_of=pd.Timestamp(book.as_of).isoformat(), title="Models and drift")


def install(app: Any, minutes: int) -> None:
    """Add the dashboard's sessions and its error pages to ``app``."""
    app.state.sessions = Sessions(minutes)

    @app.exception_handler(SignInRequired)
    async def sign_in(request: Request, exc: SignInRequired) -> Response:
        return RedirectResponse("/ui/login", status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if request.url.path.startswith(router.prefix + "/"):
            return render(request, "error.html", status=exc.status_code, detail=exc.detail,
                          title=f"Error {exc.status_code}")
        return await http_exception_handler(request, exc)
