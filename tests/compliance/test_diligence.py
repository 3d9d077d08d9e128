"""Due-diligence rules at their thresholds, deposit cycles from transfers, the queue."""

from __future__ import annotations

import numpy as np
import pandas as pd

from traderseg.compliance import diligence as dd
from traderseg.store import connect


def frames():
    ids = ["at", "below", "kyc0", "kyc1", "liq", "liqp", "writer", "nonwriter", "cyc"]
    inputs = pd.DataFrame({
        "account_id": ids, "segment_name": "s", "region": "EU",
        "risk_score": [dd.RISK_MIN, dd.RISK_MIN - 1e-9, 10, 10, 10, 10, 10, 10, 10],
        "kyc_tier": [2, 2, 0, 1, 2, 2, 2, 2, 2],
        "liquidation_risk": [0, 0, 0, 0, 0, dd.LIQUIDATION_RISK_MIN, 0, 0, 0],
        "review_flag": [False] * 8 + [True], "review_reason": None})
    # written = notional * option share * (1 - long premium share)
    feats = pd.DataFrame({
        "notional_total__30d": [0, 0, dd.UNVERIFIED_NOTIONAL_USD, 1e9, 0, 0,
                                4 * dd.WRITTEN_NOTIONAL_USD, 4 * dd.WRITTEN_NOTIONAL_USD - 4, 0],
        "option_share__30d": [0, 0, 0, 0, 0, 0, 0.5, 0.5, 0],
        "long_premium_share__30d": [0, 0, 0, 0, 0, 0, 0.5, 0.5, 0],
        "liquidation_count__30d": [0, 0, 0, 0, dd.LIQUIDATIONS_MIN, 1, 0, 0, 0],
    }, index=ids)
    cycles = pd.Series({"cyc": dd.CYCLES_MIN, "writer": dd.CYCLES_MIN - 1})
    return inputs, feats, cycles


def test_each_rule_fires_at_its_threshold_and_not_below():
    inputs, feats, cycles = frames()
    t = dd.diligence_tiers(inputs, feats, cycles).set_index("account_id")
    assert t.loc["at", "reasons"] == "high_risk" and t.loc["below", "tier"] == "standard"
    assert t.loc["kyc0", "reasons"] == "unverified_volume" and t.loc["kyc1", "tier"] == "standard"
    assert t.loc["liq", "reasons"] == "liquidation_prone"
    assert t.loc["liqp", "reasons"] == "liquidation_prone"
    assert t.loc["writer", "reasons"] == "large_option_writing"
    assert t.loc["nonwriter", "tier"] == "standard"
    assert t.loc["cyc", "reasons"] == "rapid_cycles" and t.loc["cyc", "rapid_cycles_count"] == 2


def test_queue_holds_enhanced_and_policy_flags_most_reasons_first():
    inputs, feats, cycles = frames()
    inputs.loc[inputs["account_id"] == "at", "kyc_tier"] = 0
    feats.loc["at", "notional_total__30d"] = dd.UNVERIFIED_NOTIONAL_USD
    t = dd.diligence_tiers(inputs, feats, cycles)
    q = dd.review_queue(t, inputs)
    assert q["account_id"].iloc[0] == "at" and q["n_reasons"].iloc[0] == 2
    assert set(q["account_id"]) == {"at", "kyc0", "liq", "liqp", "writer", "cyc"}


def test_deposit_cycles_from_transfers_by_hand():
    con = connect(":memory:")
    t0 = pd.Timestamp("2024-03-01", tz="UTC")
    h = pd.Timedelta(hours=1)
    rows = [
        # a: out within 48h at 80% -> cycle; out at exactly 48h -> cycle
        ("1", t0, "a", "deposit", 100.0), ("2", t0 + 3 * h, "a", "withdrawal", 80.0),
        ("3", t0 + 100 * h, "a", "deposit", 100.0), ("4", t0 + 148 * h, "a", "withdrawal", 90.0),
        # b: 79.99% -> no; after 48h + 1us -> no
        ("5", t0, "b", "deposit", 100.0), ("6", t0 + h, "b", "withdrawal", 79.99),
        ("7", t0 + 200 * h, "b", "deposit", 100.0),
        ("8", t0 + 248 * h + pd.Timedelta(microseconds=1), "b", "withdrawal", 100.0),
    ]
    tr = pd.DataFrame(rows, columns=["transfer_id", "ts", "account_id", "direction",
                                     "amount_usd"])
    con.register("tr", tr)
    con.execute("INSERT INTO transfers SELECT * FROM tr")
    got = dd.deposit_cycles(con, t0 + pd.Timedelta(days=30))
    assert got.to_dict() == {"a": 2}


def test_rules_are_documented_from_their_thresholds():
    text = " ".join(r["enhanced when"] for r in dd.rules_table())
    assert f"{dd.RISK_MIN:g}" in text and f"{dd.CYCLE_HOURS}" in text
    assert np.all([r.name for r in dd.RULES] == list(dd.rule_flags(*frames()).columns))
