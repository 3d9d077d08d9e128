"""The API's behaviour: keys, roles, venue isolation, lookups, overrides and their audit."""

import io

import pandas as pd
import pytest

from traderseg.features.catalog import get_feature, split_column
from traderseg.online.book import AUDIENCE_COLUMNS
from traderseg.segment.registry import ModelRegistry
from traderseg.service.keys import ROLES

from .conftest import DEFAULTS, NOT_MARKETABLE, auth


def test_no_key_is_401_and_a_bad_key_too(client, keys, alpha_ids):
    url = f"/v1/accounts/{alpha_ids[0]}"
    assert client.get(url).status_code == 401
    assert client.get(url, headers={"Authorization": "Bearer nonsense"}).status_code == 401
    # the right key id with a wrong secret
    token = keys["risk"]
    wrong = token[:-1] + ("A" if token[-1] != "A" else "B")
    r = client.get(url, headers=auth(wrong))
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"


def test_growth_cannot_change_controls_and_sees_none(client, keys, alpha_ids):
    acct = alpha_ids[5]
    r = client.put(f"/v1/accounts/{acct}/controls", headers=auth(keys["growth"]),
                   json={"max_leverage": 2, "reason": "x"})
    assert r.status_code == 403 and "growth" in r.json()["detail"]
    assert client.get(f"/v1/accounts/{acct}", headers=auth(keys["growth"])).json()[
        "controls"] is None
    assert client.get(f"/v1/accounts/{acct}", headers=auth(keys["risk"])).json()[
        "controls"]["max_leverage"] == DEFAULTS["max_leverage"]


def test_another_venues_account_is_404_like_one_that_does_not_exist(client, keys, alpha_ids):
    beta = client.get("/v1/segments/0/members", headers=auth(keys["beta-admin"])).json()
    beta_acct = beta["members"][0]["account_id"]
    assert beta_acct.startswith("beta-")
    assert client.get(f"/v1/accounts/{beta_acct}", headers=auth(keys["beta-admin"])).status_code == 200
    there = client.get(f"/v1/accounts/{beta_acct}", headers=auth(keys["admin"]))
    nowhere = client.get("/v1/accounts/beta-no-such", headers=auth(keys["admin"]))
    assert there.status_code == nowhere.status_code == 404
    # the same words for both: nothing tells that the first one exists elsewhere
    assert there.json()["detail"].replace(beta_acct, "X") == \
        nowhere.json()["detail"].replace("beta-no-such", "X")
    # and alpha's accounts are not beta's
    assert client.get(f"/v1/accounts/{alpha_ids[0]}", headers=auth(keys["beta-admin"])).status_code == 404


def test_a_key_for_a_venue_not_served_is_refused(client, keys):
    r = client.get("/v1/me", headers=auth(keys["nowhere"]))
    assert r.status_code == 403 and "gamma" in r.json()["detail"]


def test_lookup_has_every_part_with_units(client, keys, alpha_ids):
    a = client.get(f"/v1/accounts/{alpha_ids[1]}", headers=auth(keys["analyst"])).json()
    assert set(a["risk"]["components"]) == {"leverage", "liquidations", "short_option",
                                            "concentration", "pnl_volatility"}
    units = {f["column"]: f["unit"] for f in a["features"]}
    assert units and all(u == get_feature(split_column(c)[0]).unit for c, u in units.items())
    assert "USD" in units.values() and "count" in units.values()
    assert 0 <= a["segment"]["membership"] <= 1
    assert a["lifecycle_stage"] in {"new", "active", "at-risk", "dormant", "churned"}


def test_an_override_is_audited_with_the_key_id_and_is_idempotent(client, keys, alpha_ids):
    acct = alpha_ids[7]
    who = client.get("/v1/me", headers=auth(keys["risk"])).json()["key_id"]
    body = {"max_leverage": 3, "review_flag": True, "reason": "manual review"}
    first = client.put(f"/v1/accounts/{acct}/controls", headers=auth(keys["risk"]), json=body)
    assert first.status_code == 200, first.text
    assert first.json()["audit_rows"] == 2 and first.json()["actor"] == f"key:{who}"
    again = client.put(f"/v1/accounts/{acct}/controls", headers=auth(keys["risk"]), json=body)
    assert again.json()["audit_rows"] == 0
    log = client.get("/v1/audit", params={"account_id": acct},
                     headers=auth(keys["compliance"])).json()["entries"]
    mine = [e for e in log if e["actor"] == f"key:{who}"]
    assert {(e["control"], e["old_value"], e["new_value"]) for e in mine} == {
        ("max_leverage", "20.0", "3.0"), ("review_flag", "false", "true")}
    assert all(e["rule"] == "override: manual review" for e in mine)


def test_a_lookup_after_an_override_shows_the_new_controls(client, keys, alpha_ids):
    acct = alpha_ids[11]
    h = auth(keys["risk"])
    before = client.get(f"/v1/accounts/{acct}", headers=h).json()["controls"]  # read once
    assert before["position_limit_usd"] != 1234.0
    r = client.put(f"/v1/accounts/{acct}/controls", headers=h,
                   json={"position_limit_usd": 1234.0, "reason": "cache check"})
    assert r.status_code == 200, r.text
    assert client.get(f"/v1/accounts/{acct}", headers=h).json()["controls"][
        "position_limit_usd"] == 1234.0
    assert client.get(f"/v1/accounts/{acct}/controls", headers=h).json()["controls"][
        "position_limit_usd"] == 1234.0


@pytest.mark.parametrize(("value", "status"), [(1.0, 200), (0.999, 422)])
def test_leverage_cap_boundary_at_one(client, keys, alpha_ids, value, status):
    r = client.put(f"/v1/accounts/{alpha_ids[9]}/controls", headers=auth(keys["admin"]),
                   json={"max_leverage": value, "reason": "boundary"})
    assert r.status_code == status, r.text


def test_an_unknown_product_is_refused_with_the_reason(client, keys, alpha_ids):
    r = client.put(f"/v1/accounts/{alpha_ids[9]}/controls", headers=auth(keys["admin"]),
                   json={"allowed_products": "spot,swaps", "reason": "x"})
    assert r.status_code == 422 and "swaps" in r.json()["detail"]


def test_audience_export_leaves_out_the_not_marketable(client, keys, alpha_ids):
    r = client.get("/v1/audiences/export", headers=auth(keys["growth"]))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    frame = pd.read_csv(io.StringIO(r.text))
    assert tuple(frame.columns) == AUDIENCE_COLUMNS
    withdrawn = set(alpha_ids[:NOT_MARKETABLE])
    assert not withdrawn & set(frame["account_id"])
    segs = client.get("/v1/segments", headers=auth(keys["growth"])).json()["segments"]
    assert len(frame) == sum(s["accounts"] for s in segs) - NOT_MARKETABLE
    assert client.get("/v1/audiences/export", headers=auth(keys["risk"])).status_code == 403


def test_members_are_paged_by_account_id(client, keys):
    h = auth(keys["analyst"])
    whole = client.get("/v1/segments/0/members", params={"limit": 1000}, headers=h).json()
    ids = [m["account_id"] for m in whole["members"]]
    assert ids == sorted(ids) and len(ids) == whole["total"] >= 3
    page = client.get("/v1/segments/0/members", params={"offset": 1, "limit": 2}, headers=h)
    assert [m["account_id"] for m in page.json()["members"]] == ids[1:3]
    assert client.get("/v1/segments/9999/members", headers=h).status_code == 404


def test_ingest_upload_rejects_bad_rows_like_the_cli_and_is_idempotent(client, keys, venues):
    fills = pd.read_parquet(venues["root"] / "beta-src" / "fills.parquet").head(20).copy()
    fills["fill_id"] = "up-" + fills["fill_id"]
    fills.loc[fills.index[0], "qty"] = -1.0  # qty must be > 0
    buf = io.BytesIO()
    fills.to_parquet(buf, index=False)
    files = {"file": ("fills.parquet", buf.getvalue(), "application/octet-stream")}
    h = auth(keys["beta-admin"])
    r = client.post("/v1/ingest", headers=h, files=files)
    assert r.status_code == 200, r.text
    f = r.json()["files"][0]
    assert (f["read"], f["stored"], f["rejected"]) == (20, 19, 1)
    assert f["top_rejects"][0]["field"] == "qty"
    again = client.post("/v1/ingest", headers=h, files=files).json()["files"][0]
    assert (again["stored"], again["already_present"]) == (0, 19)
    assert client.post("/v1/ingest", headers=auth(keys["risk"]), files=files).status_code == 403


def test_health_readiness_and_metrics_need_no_key(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"ready": True, "venues": 2}
    text = client.get("/metrics").text
    assert "traderseg_http_requests_total" in text and 'route="health"' in text


def test_every_role_can_read_the_segment_catalogue(client, keys):
    for role in ROLES:
        segs = client.get("/v1/segments", headers=auth(keys[role])).json()["segments"]
        assert segs and all(s["name"] for s in segs)


def test_models_of_a_registry_and_a_promotion_recorded_with_the_key(client, keys, venues):
    h = auth(keys["beta-admin"])
    models = client.get("/v1/models", headers=h).json()["models"]
    assert [(m["version"], m["champion"], m["serving"]) for m in models] == [("v1", True, True)]
    r = client.post("/v1/models/v1/promote", headers=h, json={"reason": "confirmed by hand"})
    assert r.status_code == 200, r.text
    key_id = client.get("/v1/me", headers=h).json()["key_id"]
    assert r.json()["actor"] == f"key:{key_id}" and r.json()["serving"] == "v1"
    last = ModelRegistry(venues["registry"]).decisions()[-1]
    assert (last.actor, last.reason) == (f"key:{key_id}", "confirmed by hand")
    assert client.post("/v1/models/v9/promote", headers=h,
                       json={"reason": "x"}).status_code == 404
    # alpha is served from one saved model: nothing to promote
    assert client.post("/v1/models/v1/promote", headers=auth(keys["admin"]),
                       json={"reason": "x"}).status_code == 409
