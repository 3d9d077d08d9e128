"""Liquidation-risk labels and backtest, and the saved predictor bundle, on a small venue."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import PREDICT_AS_OF
from helpers.store import fills_store
from traderseg.analysis.churn import ChurnClassifier
from traderseg.analysis.liquidation import (
    leverage_rule_score,
    liquidation_backtest,
    liquidation_dataset,
)
from traderseg.errors import DataError, ModelVersionError
from traderseg.policy.predict import PREDICTIONS, load_predictors


def test_the_horizon_boundary_is_exclusive():
    """A liquidation exactly 7 days after the cutoff is outside the horizon; 1 us before is in."""
    c = pd.Timestamp("2024-01-10", tz="UTC")
    ts = [c - pd.Timedelta(days=1), c + pd.Timedelta(days=7) - pd.Timedelta(microseconds=1),
          c - pd.Timedelta(days=1), c + pd.Timedelta(days=7), c + pd.Timedelta(days=9)]
    fills = pd.DataFrame({
        "fill_id": [f"f{i}" for i in range(5)], "ts": ts,
        "account_id": ["in", "in", "out", "out", "out"], "instrument": "BTC-PERPETUAL",
        "underlying": "BTC", "kind": "perp", "side": "buy", "qty": 1.0, "price": 100.0,
        "notional_usd": 100.0, "fee_usd": 0.05, "is_maker": False, "leverage": 20.0,
        "is_liquidation": [False, True, False, True, False]})
    con = fills_store(fills)
    labels = liquidation_dataset(con, c).labels
    assert labels["liquidated"].to_dict() == {"in": True, "out": False}
    no_flag = fills_store(fills.drop(columns="is_liquidation"))
    with pytest.raises(DataError, match="no fill carries the liquidation flag"):
        liquidation_dataset(no_flag, c)


def test_leverage_rule_uses_30_day_max_leverage():
    f = pd.DataFrame({"leverage_max__30d": [50.0, np.nan, 3.0]}, index=["a", "b", "c"])
    assert leverage_rule_score(f).to_dict() == {"a": 50.0, "b": 0.0, "c": 3.0}
    with pytest.raises(DataError, match="leverage_max__30d"):
        leverage_rule_score(pd.DataFrame({"x": [1.0]}))


def test_backtest_reports_model_and_leverage_rule_on_counted_labels(venue):
    root, db, _ = venue
    small = ChurnClassifier(max_iter=40, n_threads=1, random_state=0)
    bt = liquidation_backtest(db, ["2024-02-01", "2024-02-15"], model=small, windows=("30d",))
    assert list(bt.metrics.index) == ["model", "leverage_rule"]
    assert np.isnan(bt.metrics.loc["leverage_rule", "brier"])
    assert bt.metrics["auc"].astype(float).between(0, 1).all()
    assert bt.n_train > 0 and len(bt.predictions) > 0
    assert bt.predictions["p_liquidation"].between(0, 1).all()
    assert bt.base_rate == pytest.approx(bt.predictions["liquidated"].mean())
    # the test labels, counted independently from the simulator's files
    fills = pd.read_parquet(root / "sim" / "fills")
    c = bt.test_cutoff
    ts = pd.to_datetime(fills["ts"], utc=True)
    active = set(fills.loc[(ts >= c - pd.Timedelta(days=30)) & (ts < c), "account_id"])
    flagged = fills["is_liquidation"].astype("boolean").fillna(False).to_numpy(bool)
    nxt = fills[(ts >= c) & (ts < c + pd.Timedelta(days=7)) & flagged]
    expected = nxt.groupby("account_id").size()
    expected = expected[expected.index.isin(active)]
    pred = bt.predictions.set_index("account_id")
    assert set(pred.index) == active
    got = pred["liquidations"]
    assert got[got > 0].sort_index().to_dict() == expected.sort_index().to_dict()
    assert len(expected) > 0
    with pytest.raises(DataError, match="reaches past the test cutoff"):
        liquidation_backtest(db, ["2024-02-10", "2024-02-15"])


def test_bundle_round_trip_and_score(venue, predictors, features_at_predict):
    root, db, _ = venue
    meta = predictors.metadata
    assert meta["as_of"] == pd.Timestamp(PREDICT_AS_OF, tz="UTC").isoformat()
    # label periods end by the as-of time
    asof = pd.Timestamp(PREDICT_AS_OF, tz="UTC")
    assert meta["training"]["liquidation_risk"]["cutoffs"] == [
        (asof - pd.Timedelta(days=7)).isoformat()]
    for name, horizon in (("churn_probability", 30), ("liquidation_risk", 7)):
        for c in meta["training"][name]["cutoffs"]:
            assert pd.Timestamp(c) + pd.Timedelta(days=horizon) <= asof
    loaded = load_predictors(root / "predictors")
    assert loaded.version == predictors.version and loaded.feature_columns == predictors.feature_columns
    feats = features_at_predict.iloc[::-1]
    a, b = predictors.score(feats), loaded.score(feats)
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns) == list(PREDICTIONS) and list(a.index) == list(feats.index)
    assert ((a >= 0) & (a <= 1)).all().all()
    assert len(loaded.score(feats.iloc[:0])) == 0
    with pytest.raises(DataError, match="feature column"):
        loaded.score(feats.drop(columns=predictors.feature_columns[:2]))


def test_decisions_read_the_columns_the_engine_declares(venue, predictors, features_at_predict,
                                                       tmp_path):
    from traderseg.online.decide import DecisionEngine, empty_assignments
    from traderseg.policy import parse_policy
    from traderseg.segment.overlays import overlay_columns

    _, _, model = venue
    policy = parse_policy(
        "version: p1\n"
        "defaults: {max_leverage: 50, position_limit_usd: 1000000, margin_multiplier: 1.0,\n"
        "  allowed_products: [spot, perp, future, option], option_writing: true,\n"
        "  review_flag: false, marketing_eligible: true}\n"
        "rules:\n"
        "  - name: churning\n"
        "    when: {churn_probability: {min: 0.5}}\n"
        "    set: {marketing_eligible: false}\n"
        "  - name: liquidation-risk\n"
        "    when: {liquidation_risk: {min: 0.2}}\n"
        "    set: {max_leverage: 5}\n", "p.yaml")
    eng = DecisionEngine(model, policy, predictors=predictors)
    cols = eng.feature_columns
    assert len(cols) == len(set(cols))
    assert {*eng.columns, *predictors.feature_columns} <= set(cols)
    assert {*overlay_columns()} & set(features_at_predict.columns) <= set(cols)
    at = pd.Timestamp(PREDICT_AS_OF, tz="UTC")
    whole = eng.decide(features_at_predict, empty_assignments(), at)
    some = eng.decide(features_at_predict[[c for c in cols
                                           if c in features_at_predict.columns]],
                      empty_assignments(), at)
    pd.testing.assert_frame_equal(some.rows, whole.rows)
    assert whole.rows["liquidation_risk"].notna().all()
    # a column only the predictors read, left out, is refused, not read as missing
    only = [c for c in predictors.feature_columns
            if c not in eng.columns and c not in overlay_columns()]
    assert only
    with pytest.raises(DataError, match="feature column"):
        eng.decide(features_at_predict.drop(columns=only[:1]), empty_assignments(), at)


def test_bundle_refuses_tampering_and_another_catalogue(venue, predictors, tmp_path):
    import shutil

    root, _, _ = venue
    copy = tmp_path / "p"
    shutil.copytree(root / "predictors", copy)
    (copy / "liquidation.skops").write_bytes(b"not a model")
    with pytest.raises(DataError, match="does not match the hash"):
        load_predictors(copy)
    shutil.copytree(root / "predictors", tmp_path / "q")
    meta = json.loads((tmp_path / "q" / "predictors.json").read_text())
    (tmp_path / "q" / "predictors.json").write_text(json.dumps({**meta, "catalog_version": "0"}))
    with pytest.raises(ModelVersionError, match="catalogue version '0'"):
        load_predictors(tmp_path / "q")
    with pytest.raises(DataError, match="not a predictor bundle"):
        load_predictors(tmp_path / "missing")
