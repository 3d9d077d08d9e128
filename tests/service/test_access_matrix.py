"""Every route of the app against every role, generated from the app's route table.

A route without an access rule fails here; so does a route whose handler lets a role in
that its rule leaves out, or keeps out a role that its rule lets in.
"""

import re

import pytest
from fastapi.routing import APIRoute

from traderseg.service import create_app
from traderseg.service.access import ACCESS, allowed
from traderseg.service.app import route_table
from traderseg.service.dashboard import LOGIN_COOKIE, SESSION_COOKIE
from traderseg.service.keys import ROLES

from .conftest import auth

CALLERS = (None, *ROLES)
DENIED = "may not use"


def _routes(app):
    return [(name, method, path) for name, method, path, _ in route_table(app)]


def test_every_route_has_an_access_rule(settings):
    app = create_app(settings)
    names = {name for name, _, _ in _routes(app)}
    missing = sorted(names - set(ACCESS))
    assert missing == [], f"routes without an access rule: {missing}"
    assert sorted(set(ACCESS) - names) == [], "rules for routes that do not exist"
    # every API route (in the schema) declares the 401 and 403 it can answer
    api = [(path, route) for _, _, path, route in route_table(app) if path.startswith("/v1")]
    assert len(api) >= 10
    for path, route in api:
        assert isinstance(route, APIRoute) and {401, 403} <= set(route.responses), path


@pytest.fixture(scope="module")
def sessions(client, keys):
    """A dashboard session id per role (signed in through the form)."""
    out = {}
    for role in ROLES:
        client.cookies.clear()
        client.get("/ui/login")
        token = client.cookies.get(LOGIN_COOKIE)
        r = client.post("/ui/login", data={"api_key": keys[role], "csrf_token": token},
                        follow_redirects=False)
        assert r.status_code == 303, r.text
        out[role] = r.cookies.get(SESSION_COOKIE)
    client.cookies.clear()
    return out


def _fill(path, account):
    values = {"account_id": account, "segment_id": "0", "name": "dashboard.js", "version": "v1"}
    return re.sub(r"\{(\w+)(:[^}]*)?\}", lambda m: values[m.group(1)], path)


@pytest.mark.parametrize("caller", CALLERS, ids=lambda c: c or "no-key")
def test_route_role_matrix(client, settings, keys, sessions, alpha_ids, caller):
    app = create_app(settings)  # the same route table as the app under test
    account = alpha_ids[-1]
    checked = 0
    for name, method, path in _routes(app):
        url = _fill(path, account)
        if name == "ui_account_lookup":
            url += f"?account_id={account}"
        headers, cookies = {}, {}
        if caller is not None:
            headers = auth(keys[caller])
            cookies = {SESSION_COOKIE: sessions[caller]}
        client.cookies.clear()
        for k, v in cookies.items():
            client.cookies.set(k, v, path="/ui")
        # bodies are left out on purpose: an allowed write then fails validation (422) or
        # the CSRF check, and changes nothing
        r = client.request(method, url, headers=headers, follow_redirects=False)
        ui = path.startswith("/ui")
        to_login = r.status_code == 303 and r.headers.get("location") == "/ui/login"
        if allowed(caller, name):
            assert r.status_code != 401 and not to_login, (caller, method, path, r.status_code)
            assert not (r.status_code == 403 and DENIED in r.text), (caller, method, path)
        elif caller is None:
            assert (to_login if ui else r.status_code == 401), (method, path, r.status_code)
        else:
            assert r.status_code == 403 and DENIED in r.text, (caller, method, path,
                                                                r.status_code)
        checked += 1
    assert checked >= len(ACCESS)
    client.cookies.clear()
