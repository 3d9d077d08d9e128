"""One bad row per validation rule: its (field, reason), and the boundary value that passes.

Each case writes a CSV with a good row (line 2) and the case's row (line 3); a failing case
must reject exactly line 3 with the field and reason, a passing boundary must store both.
"""

from __future__ import annotations

import pytest

from traderseg.ingest import ingest

from .conftest import NOW, rejects

PERP = {"fill_id": "x", "ts": "2024-03-01T10:00:00Z", "account_id": "a", "instrument": "P",
        "underlying": "BTC", "kind": "perp", "side": "buy", "qty": "1", "price": "100",
        "notional_usd": "100", "fee_usd": "0.1", "is_maker": "true"}
OPTION = {**PERP, "kind": "option", "option_type": "call", "strike": "70000",
          "expiry": "2024-03-29T08:00:00Z", "iv": "0.5", "delta": "0.3",
          "underlying_price": "60000"}
ACCOUNT = {"account_id": "x", "created_at": "2024-01-01T00:00:00Z", "kyc_tier": "1",
           "vip_tier": "0"}
MARKET = {"ts": "2024-03-01T00:00:00Z", "underlying": "X", "price": "10", "high": "11",
          "low": "9"}
TRANSFER = {"transfer_id": "x", "ts": "2024-03-01T00:00:00Z", "account_id": "a",
            "direction": "deposit", "amount_usd": "5"}
BASES = {"fills": PERP, "accounts": ACCOUNT, "market": MARKET, "transfers": TRANSFER}


def _load(store, tmp_path, table, base, change):
    good = {**base}
    bad = {**base, **change}
    keys = {"fills": "fill_id", "accounts": "account_id", "transfers": "transfer_id"}
    if table in keys:
        good[keys[table]] = "good"
        bad[keys[table]] = change.get(keys[table], "case")
    else:
        good["underlying"] = "GOOD"
    cols = list(dict.fromkeys([*good, *bad]))
    path = tmp_path / f"{table}.csv"
    path.write_text(",".join(cols) + "\n" + "\n".join(
        ",".join(str(r.get(c, "")) for c in cols) for r in (good, bad)) + "\n")
    return ingest(path, store, now=NOW).sources[0]


FAILING = [  # (table, base, change, field, words in the reason)
    ("fills", PERP, {"fill_id": ""}, "fill_id", "missing required value"),
    ("fills", PERP, {"account_id": ""}, "account_id", "missing required value"),
    ("fills", PERP, {"kind": "swap"}, "kind", "'swap' is not one of spot, perp, future, option"),
    ("fills", PERP, {"side": "long"}, "side", "'long' is not one of buy, sell"),
    ("fills", PERP, {"position_effect": "flip"}, "position_effect", "'flip' is not one of"),
    ("fills", PERP, {"qty": "inf"}, "qty", "not a finite number"),
    ("fills", PERP, {"price": "abc"}, "price", "cannot read 'price' as a number"),
    ("fills", PERP, {"ts": "2024-13-45"}, "ts", "cannot read 'ts' as a timestamp"),
    ("fills", PERP, {"ts": "2009-01-02T23:59:59Z"}, "ts", "before 2009-01-03"),
    ("fills", PERP, {"ts": "2026-01-01T00:00:01Z"}, "ts", "in the future"),
    ("fills", PERP, {"qty": "0"}, "qty", "must be > 0"),
    ("fills", PERP, {"price": "-1"}, "price", "must be > 0"),
    ("fills", PERP, {"notional_usd": "-0.01"}, "notional_usd", "must be >= 0"),
    ("fills", PERP, {"leverage": "0.999"}, "leverage", "must be >= 1"),
    ("fills", PERP, {"is_maker": "maybe"}, "is_maker", "as true/false"),
    ("fills", PERP, {"strike": "100"}, "strike", "only options carry a strike"),
    ("fills", PERP, {"option_type": "put"}, "option_type", "only options carry an option_type"),
    ("fills", OPTION, {"iv": "-0.01"}, "iv", "must be >= 0"),
    ("fills", OPTION, {"underlying_price": "0"}, "underlying_price", "must be > 0"),
    ("fills", OPTION, {"delta": "1.0001"}, "delta", "must be within [-1, 1]"),
    ("fills", OPTION, {"delta": "-1.0001"}, "delta", "must be within [-1, 1]"),
    ("fills", OPTION, {"option_type": ""}, "option_type", "option without option_type"),
    ("fills", OPTION, {"strike": ""}, "strike", "option without strike"),
    ("fills", OPTION, {"strike": "0"}, "strike", "must be > 0"),
    ("fills", OPTION, {"expiry": ""}, "expiry", "option without expiry"),
    ("fills", OPTION, {"expiry": "2024-03-01T10:00:00Z"}, "expiry",
     "option expiry is not after the fill time"),
    ("accounts", ACCOUNT, {"kyc_tier": "4"}, "kyc_tier", "must be between 0 and 3"),
    ("accounts", ACCOUNT, {"kyc_tier": "-1"}, "kyc_tier", "must be between 0 and 3"),
    ("accounts", ACCOUNT, {"kyc_tier": "1.5"}, "kyc_tier", "as an integer"),
    ("accounts", ACCOUNT, {"vip_tier": "-1"}, "vip_tier", "must be >= 0"),
    ("accounts", ACCOUNT, {"created_at": "2030-01-01T00:00:00Z"}, "created_at", "in the future"),
    ("market", MARKET, {"price": "0"}, "price", "must be > 0"),
    ("market", MARKET, {"high": "8.99"}, "high", "high is below low"),
    ("transfers", TRANSFER, {"amount_usd": "0"}, "amount_usd", "must be > 0"),
    ("transfers", TRANSFER, {"direction": "sideways"}, "direction", "'sideways' is not one of"),
]


@pytest.mark.parametrize("table, base, change, field, words", FAILING,
                         ids=[f"{t}-{f}-{list(c.values())[0]}" for t, _, c, f, _ in FAILING])
def test_each_rule_rejects_its_row(store, tmp_path, table, base, change, field, words):
    s = _load(store, tmp_path, table, base, change)
    assert (s.read, s.stored, s.rejected) == (2, 1, 1)
    (rej,) = rejects(store)
    assert (rej["line"], rej["field"]) == (3, field)
    assert words in rej["reason"]


PASSING = [  # the boundary value each rule accepts
    ("fills", PERP, {"notional_usd": "0"}),
    ("fills", PERP, {"leverage": "1"}),
    ("fills", PERP, {"fee_usd": "-5"}),
    ("fills", PERP, {"ts": "2009-01-03T00:00:00Z"}),
    ("fills", PERP, {"ts": "2026-01-01T00:00:00Z"}),  # exactly the run's time
    ("fills", PERP, {"kind": "PERP", "side": "Buy"}),
    ("fills", OPTION, {"iv": "0"}),
    ("fills", OPTION, {"delta": "1"}),
    ("fills", OPTION, {"delta": "-1"}),
    ("fills", OPTION, {"expiry": "2024-03-01T10:00:00.000001Z"}),
    ("accounts", ACCOUNT, {"kyc_tier": "3"}),
    ("accounts", ACCOUNT, {"kyc_tier": "0", "vip_tier": "0"}),
    ("market", MARKET, {"high": "9"}),
]


@pytest.mark.parametrize("table, base, change", PASSING,
                         ids=[f"{t}-{list(c.items())[0]}" for t, _, c in PASSING])
def test_boundary_values_pass(store, tmp_path, table, base, change):
    s = _load(store, tmp_path, table, base, change)
    assert (s.read, s.stored, s.rejected) == (2, 2, 0), rejects(store)
