"""The example policy against a fitted model, policy diff on the store, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import PREDICT_AS_OF
from helpers.cli import run_cli
from traderseg.online.tables import CONTROLS_TABLE, read_controls, write_decisions
from traderseg.policy import check_policy, load_policy, parse_policy
from traderseg.policy.diff import month_starts, policy_diff
from traderseg.policy.inputs import decision_inputs
from traderseg.segment.persist import load_model, model_version
from traderseg.store import connect

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "policy.yaml"


@pytest.fixture(scope="module")
def inputs(venue, predictors):
    _, db, model = venue
    con = connect(db, read_only=True)
    try:
        return decision_inputs(con, model, pd.Timestamp(PREDICT_AS_OF, tz="UTC"),
                               predictors=predictors)
    finally:
        con.close()


@pytest.fixture(scope="module")
def decided(venue, inputs, tmp_path_factory):
    """A copy of the store whose controls table holds the example policy's decisions."""
    import shutil

    _, db, model = venue
    path = tmp_path_factory.mktemp("decided") / "venue.duckdb"
    shutil.copy(db, path)
    policy = load_policy(EXAMPLE)
    out = policy.evaluate(inputs)
    frame = pd.concat([inputs.reset_index(drop=True), out.reset_index(drop=True)], axis=1)
    frame["model_version"] = model_version(load_model(model)[1])
    frame["as_of"] = pd.Timestamp(PREDICT_AS_OF, tz="UTC")
    frame["fill_id"] = None
    frame["updated_at"] = pd.Timestamp.now(tz="UTC")
    con = connect(path)
    try:
        write_decisions(con, frame[CONTROLS_TABLE.names], actor="batch")
    finally:
        con.close()
    return path


def test_example_policy_is_valid_for_the_fitted_model_and_does_what_it_says(venue, inputs):
    _, _, model = venue
    policy = load_policy(EXAMPLE)
    check_policy(policy, load_model(model)[1])
    out = policy.evaluate(inputs).set_index(inputs["account_id"])
    x = inputs.set_index("account_id")
    assert len(out) == len(x) and x["segment_name"].notna().all()
    high = x["risk_score"] >= 70
    assert (out.loc[high, "max_leverage"] <= 10).all() and out.loc[high, "review_flag"].all()
    no_kyc = x["kyc_tier"] == 0
    assert out.loc[no_kyc.fillna(False), "allowed_products"].isin(["spot,perp", "spot", "perp", ""]).all()
    low_kyc = x["kyc_tier"].isin([0, 1]).fillna(False)
    assert not out.loc[low_kyc, "option_writing"].any()
    dormant = x["lifecycle_stage"].isin(["dormant", "churned"])
    assert not out.loc[dormant, "marketing_eligible"].any()
    liq = x["liquidation_risk"] >= 0.3
    assert (out.loc[liq, "max_leverage"] <= 5).all()
    # the predictions are present, and the example's rules do fire on this venue
    assert x["liquidation_risk"].notna().all() and x["churn_probability"].notna().all()
    fired = {v for t in out["rules"] for v in json.loads(t).values()} - {"default"}
    assert len(fired) >= 3


def test_diff_lists_exactly_the_accounts_a_new_rule_tightens(venue, decided):
    root, _, _ = venue
    old = load_policy(EXAMPLE)
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["version"] = "2024.2"
    doc["rules"].append({"name": "eu-cap", "when": {"region": ["EU"]},
                         "set": {"max_leverage": 3}})
    new = parse_policy(yaml.safe_dump(doc, sort_keys=False), "new.yaml")
    con = connect(decided)
    try:
        current = read_controls(con)
    finally:
        con.close()
    con = connect(decided, read_only=True)
    try:
        [res] = policy_diff(con, old, new, history=0)
    finally:
        con.close()
    eu = set(current.loc[current["region"] == "EU", "account_id"])
    assert res.source == "current" and res.accounts == len(current)
    assert set(res.changes["account_id"]) == eu and eu
    assert set(res.changes["control"]) == {"max_leverage"}
    assert (res.changes["direction"] == "tighter").all()
    assert (res.changes["new_rule"] == "eu-cap").all() and (res.changes["new_value"] == "3.0").all()
    # fees of the 30 days before the last fill, counted from the simulator's files
    fills = pd.read_parquet(root / "sim" / "fills")
    ts = pd.to_datetime(fills["ts"], utc=True)
    end = ts.max() + pd.Timedelta(microseconds=1)
    recent = fills[(ts >= end - pd.Timedelta(days=30)) & (ts < end)]
    fees = recent.groupby("account_id")["fee_usd"].sum()
    got = res.changes.set_index("account_id")["fees_30d_usd"]
    expected = fees.reindex(got.index).fillna(0.0)
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=1e-9, atol=1e-9)
    s = res.summary.loc["max_leverage"]
    assert s["accounts"] == len(eu) and s["tighter"] == len(eu) and s["looser"] == 0
    # the reverse change loosens the same accounts
    con = connect(decided, read_only=True)
    try:
        [back] = policy_diff(con, new, old, history=0)
    finally:
        con.close()
    assert (back.changes["direction"] == "looser").all() and len(back.changes) == len(res.changes)


def test_history_needs_the_model_and_month_starts_lie_inside_the_data(venue, decided):
    from traderseg.errors import DataError

    p = load_policy(EXAMPLE)
    con = connect(decided, read_only=True)
    try:
        assert month_starts(con, 5) == [pd.Timestamp("2024-02-01", tz="UTC"),
                                        pd.Timestamp("2024-03-01", tz="UTC")]
        assert month_starts(con, 1) == [pd.Timestamp("2024-03-01", tz="UTC")]
        with pytest.raises(DataError, match="history needs the segment model"):
            policy_diff(con, p, p, history=1)
    finally:
        con.close()


def test_cli_check_diff_and_activate(venue, decided, tmp_path, capsys):
    _, _, model = venue
    code, out, _ = run_cli(["policy", "check", str(EXAMPLE), "--model", str(model)], capsys)
    assert code == 0 and "is valid against model" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXAMPLE.read_text().replace("[option premium sellers]", "[option sellers]"))
    code, _, err = run_cli(["policy", "check", str(bad), "--model", str(model)], capsys)
    assert code == 2 and "unknown segment name 'option sellers'" in err
    assert len(err.strip().splitlines()) == 1 and f"{bad}:" in err
    code, out, _ = run_cli(["policy", "diff", str(EXAMPLE), str(EXAMPLE), "--db", str(decided),
                            "--history", "0"], capsys)
    assert code == 0 and "current" in out
    code, _, err = run_cli(["policy", "diff", str(EXAMPLE), str(EXAMPLE), "--db", str(decided)],
                           capsys)
    assert code == 2 and "--model" in err
    db = tmp_path / "p.duckdb"
    code, out, _ = run_cli(["policy", "activate", str(EXAMPLE), "--db", str(db)], capsys)
    assert code == 0 and "is now active" in out
    code, out, _ = run_cli(["policy", "activate", str(EXAMPLE), "--db", str(db)], capsys)
    assert code == 0 and "was already active" in out
    changed = tmp_path / "changed.yaml"
    changed.write_text(EXAMPLE.read_text().replace("max_leverage: 50", "max_leverage: 40"))
    code, _, err = run_cli(["policy", "activate", str(changed), "--db", str(db)], capsys)
    assert code == 2 and "already saved with different text" in err


def test_cli_refuses_bad_arguments_in_one_line(venue, capsys, tmp_path):
    _, db, _ = venue
    for argv, why in [
        (["liquidation", "--db", str(db), "--cutoffs", "2024-02-01"], "two or more"),
        (["liquidation", "--db", str(db), "--cutoffs", "2024-02-01,soon"], "item 2"),
        (["predict", "train", "--db", str(db), "--as-of", "later", "--out", str(tmp_path / "p")],
         "--as-of 'later'"),
        (["policy", "check", str(tmp_path / "none.yaml")], "policy file not found"),
    ]:
        code, _, err = run_cli(argv, capsys)
        assert code == 2 and why in err and len(err.strip().splitlines()) == 1, (argv, err)
