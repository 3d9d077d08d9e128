"""Who may call what: one access rule per route of the app, by route name.

Every route the app serves has an entry here: ``PUBLIC`` (no key needed) or the roles
that may use it. A request to a route without an entry is refused (fail closed), and the
test suite walks the app's route table so that a new route without a rule fails it.
Role-gated parts of a response or a page (the controls inside an account lookup, the
override form of the dashboard) ask :func:`allowed` with the route that serves them, so
the rule is stated once.
"""

from __future__ import annotations

from traderseg.service.keys import ROLES

PUBLIC: frozenset[str] = frozenset({"*"})
"""Marker of a route anyone may call (health, readiness, metrics, sign-in, static files)."""
EVERYONE = frozenset(ROLES)
CONTROL_READERS = frozenset({"risk", "compliance", "admin"})
CONTROL_WRITERS = frozenset({"risk", "admin"})
AUDIENCE_READERS = frozenset({"growth", "analyst", "admin"})
ADMIN = frozenset({"admin"})

ACCESS: dict[str, frozenset[str]] = {
    # service
    "health": PUBLIC,
    "ready": PUBLIC,
    "metrics": PUBLIC,
    "openapi": PUBLIC,
    # API
    "whoami": EVERYONE,
    "account": EVERYONE,
    "read_controls": CONTROL_READERS,
    "change_controls": CONTROL_WRITERS,
    "segments": EVERYONE,
    "segment_members": EVERYONE,
    "export_audience": AUDIENCE_READERS,
    "audit_log": CONTROL_READERS,
    "read_policy": CONTROL_READERS,
    "change_policy": CONTROL_WRITERS,
    "models": EVERYONE,
    "promote_model": ADMIN,
    "ingest_file": ADMIN,
    # dashboard
    "ui_login_form": PUBLIC,
    "ui_login": PUBLIC,
    "ui_static": PUBLIC,
    "ui_logout": EVERYONE,
    "ui_overview": EVERYONE,
    "ui_segment": EVERYONE,
    "ui_audience": AUDIENCE_READERS,
    "ui_account_lookup": EVERYONE,
    "ui_account": EVERYONE,
    "ui_change_controls": CONTROL_WRITERS,
    "ui_controls": CONTROL_READERS,
    "ui_models": EVERYONE,
}


def rule(route: str) -> frozenset[str]:
    """Roles allowed on ``route``; no rule means nobody (fail closed)."""
    return ACCESS.get(route, frozenset())


def allowed(role: str | None, route: str) -> bool:
    """Whether ``role`` (``None``: no key) may use ``route``."""
    roles = rule(route)
    return "*" in roles or (role is not None and role in roles)
