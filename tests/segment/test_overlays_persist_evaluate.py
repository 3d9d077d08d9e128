import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from traderseg.errors import DataError, ModelVersionError, SchemaError
from traderseg.segment import persist
from traderseg.segment.evaluate import evaluate_segments, rfm_codes
from traderseg.segment.overlays import (
    lifecycle_stage,
    overlay_arrays,
    overlay_columns,
    overlays,
    risk_profile,
    value_tier,
)


def _rows():
    # recency, tenure, fills all, fills 30d -> expected stage
    data = {
        "churned": (120, 400, 100, 0),
        "dormant": (45, 400, 100, 0),
        "new": (2, 20, 10, 10),
        "at_risk_recency": (20, 300, 300, 10),
        "at_risk_trend": (1, 300, 300, 5),  # 1/day lifetime, 5/30 recently
        "active": (1, 300, 300, 40),
    }
    f = pd.DataFrame(data, index=["recency_days__all", "tenure_days__all", "fill_count__all",
                                  "fill_count__30d"]).T
    return f


def test_lifecycle_rules_on_hand_made_rows():
    f = _rows()
    got = lifecycle_stage(f)
    expected = ["churned", "dormant", "new", "at-risk", "at-risk", "active"]
    assert got.astype(str).tolist() == expected
    with pytest.raises(SchemaError, match="fill_count__7d"):
        lifecycle_stage(f, trend_window="7d")
    f.iloc[0, 0] = np.nan
    with pytest.raises(DataError, match="recency_days__all.*1 accounts"):
        lifecycle_stage(f)


def test_value_tiers_by_revenue_rank():
    fees = np.r_[np.arange(1, 191, dtype=float), np.zeros(5), -np.arange(1, 6, dtype=float)]
    f = pd.DataFrame({"fees_usd__all": fees}, index=[f"a{i:03d}" for i in range(200)])
    t = value_tier(f)
    assert t.loc["a189"] == "platinum" and t.loc["a188"] == "platinum"  # top 2 of 200
    assert (t == "gold").sum() == 18 and (t == "silver").sum() == 80
    assert (t[fees <= 0] == "bronze").all()


def test_value_tiers_rank_within_each_group():
    # group 0: 100 accounts paying 1..100; group 1: 10 accounts paying 1..10 (ids shared)
    fees = np.r_[np.arange(1, 101, dtype=float), np.arange(1, 11, dtype=float)]
    ids = [f"a{i:03d}" for i in range(100)] + [f"a{i:03d}" for i in range(10)]
    f = pd.DataFrame({"fees_usd__all": fees}, index=ids)
    by = np.r_[np.zeros(100, int), np.ones(10, int)]
    t = value_tier(f, by=by).astype(str).to_numpy()
    g0, g1 = t[:100], t[100:]
    assert g0[99] == "platinum" and (g0 == "platinum").sum() == 1  # round(0.01 * 100) = 1
    assert (g0 == "gold").sum() == 9 and (g0 == "silver").sum() == 40
    # 10 accounts: round(0.1) = 0 platinum, round(1.0) = 1 gold, round(5.0) = 5 -> 4 silver
    assert (g1 == "platinum").sum() == 0 and g1[9] == "gold"
    assert (g1 == "silver").sum() == 4 and (g1 == "bronze").sum() == 5
    # ranked together, the 110 accounts tier differently (round(1.1) = 1, round(11.0) = 11)
    together = value_tier(f).astype(str).to_numpy()
    assert (together == "gold").sum() == 10 and (together != t).any()


def test_value_tier_ties_break_by_account_id_within_a_group():
    f = pd.DataFrame({"fees_usd__all": [5.0] * 100}, index=[f"b{i:03d}" for i in range(100)])
    t = value_tier(f, by=np.zeros(100, int))
    assert t.loc["b000"] == "platinum" and t.loc["b001"] == "gold"


def _risk_row(**kw):
    base = {"leverage_mean__all": 1.0, "high_leverage_share__all": 0.0,
            "liquidation_count__all": 0.0, "option_share__all": 0.0,
            "long_premium_share__all": np.nan, "top_instrument_share__all": 0.0,
            "pnl_std_usd__all": 0.0}
    base.update({f"{k}__all": v for k, v in kw.items()})
    return base


def test_risk_components_on_hand_made_rows():
    f = pd.DataFrame([
        _risk_row(),
        _risk_row(leverage_mean=50.0, high_leverage_share=1.0),
        _risk_row(liquidation_count=2.0),
        _risk_row(option_share=0.8, long_premium_share=0.25),  # writes 0.6 of fills
        _risk_row(option_share=0.8, long_premium_share=1.0),  # only buys
        _risk_row(top_instrument_share=0.4, pnl_std_usd=999.0),
    ])
    r = risk_profile(f)
    assert r.iloc[0].to_numpy() == pytest.approx(np.zeros(6))
    assert r.loc[1, "leverage"] == pytest.approx(100)
    assert r.loc[2, "liquidations"] == pytest.approx(100 * (1 - np.exp(-1)))
    assert r.loc[3, "short_option"] == pytest.approx(100)
    assert r.loc[4, "short_option"] == pytest.approx(0)
    assert r.loc[5, "concentration"] == pytest.approx(40)
    assert r.loc[5, "pnl_volatility"] == pytest.approx(50)
    assert r.loc[1, "risk_score"] == pytest.approx(30)  # leverage weight 0.30
    assert ((r >= 0) & (r <= 100)).all().all()


def test_lifecycle_thresholds_are_inclusive_where_documented():
    # recency, tenure, fills all, fills 30d; the lifetime rate 1 a day, the recent 1 a day
    rows = {
        "r=90": ((90, 400, 400, 30), "churned"),
        "r<90": ((89.999, 400, 400, 30), "dormant"),
        "r=30": ((30, 400, 400, 30), "dormant"),
        "r<30": ((29.999, 400, 400, 30), "at-risk"),  # r >= 14
        "t=30": ((1, 30, 30, 30), "new"),
        "t>30": ((1, 30.001, 30, 30), "active"),
        "r=14": ((14, 400, 400, 30), "at-risk"),
        "r<14": ((13.999, 400, 400, 30), "active"),
        # the recent rate exactly half the lifetime rate is not below it
        "half": ((1, 400, 400, 15), "active"),
        "below": ((1, 400, 400, 14.999), "at-risk"),
    }
    f = pd.DataFrame([v for v, _ in rows.values()], index=list(rows),
                     columns=["recency_days__all", "tenure_days__all", "fill_count__all",
                              "fill_count__30d"], dtype=float)
    assert lifecycle_stage(f).astype(str).tolist() == [s for _, s in rows.values()]


def test_risk_score_is_the_weighted_mean_of_the_known_components():
    f = pd.DataFrame([
        # leveraged fills without leverage (known share 0) and no liquidation flag: the
        # score is (0.20 * 100 + 0.10 * 40 + 0.15 * 50) / 0.45 = 70
        {**_risk_row(option_share=0.8, long_premium_share=0.25, top_instrument_share=0.4,
                     pnl_std_usd=999.0, leverage_mean=np.nan, liquidation_count=np.nan),
         "leverage_known_share__all": 0.0},
        # no leveraged fill at all (known share NaN): leverage scores 0 and counts
        {**_risk_row(option_share=0.8, long_premium_share=0.25, top_instrument_share=0.4,
                     pnl_std_usd=999.0, leverage_mean=np.nan),
         "leverage_known_share__all": np.nan},
    ])
    r = risk_profile(f)
    assert np.isnan(r.loc[0, "leverage"]) and np.isnan(r.loc[0, "liquidations"])
    assert r.loc[0, "risk_score"] == pytest.approx(70.0)
    assert r.loc[1, "leverage"] == 0.0
    assert r.loc[1, "risk_score"] == pytest.approx((20 + 4 + 7.5) / 1.0)


def test_overlay_arrays_are_the_overlays(frame):
    X, _ = frame
    by = np.arange(len(X)) % 3
    frame_ = overlays(X, by=by)
    arrays = overlay_arrays(X, by=by)
    assert list(arrays) == list(frame_.columns)
    for c in frame_.columns:
        want = frame_[c].astype(object).to_numpy() if c in ("lifecycle_stage", "value_tier") \
            else frame_[c].to_numpy(float)
        np.testing.assert_array_equal(arrays[c], want)


def test_overlays_on_synthetic_frame(frame):
    X, _ = frame
    o = overlays(X)
    assert len(o) == len(X) and o.notna().all().all()


def test_overlays_read_only_the_columns_they_declare(frame):
    X, _ = frame
    k = np.arange(len(X))
    # leverage unknown on some rows: the known share tells "no leveraged fill" (NaN) from
    # "leveraged fills without leverage"
    X = X.assign(leverage_known_share__all=np.where(k % 3 == 0, np.nan, 0.0),
                 leverage_mean__all=X["leverage_mean__all"].where(k % 2 == 1))
    cols = overlay_columns()
    assert set(cols) <= set(X.columns) and len(cols) == len(set(cols))
    pd.testing.assert_frame_equal(overlays(X[cols]), overlays(X))
    for c in cols:  # each declared column is read: without it the overlays differ or refuse
        try:
            o = overlays(X[[k for k in cols if k != c]])
        except SchemaError:
            continue
        assert not o.equals(overlays(X)), c


def test_save_load_round_trip_is_exact(tmp_path, frame, fitted):
    X, _ = frame
    persist.save_model(fitted, tmp_path / "m", as_of="2025-01-01T00:00:00Z",
                       metrics={"silhouette": 0.3}, segments=[{"label": 0, "name": "x"}])
    model, meta = persist.load_model(tmp_path / "m")
    np.testing.assert_array_equal(model.predict(X), fitted.predict(X))
    np.testing.assert_array_equal(model.predict_proba(X), fitted.predict_proba(X))
    assert model.selection_.equals(fitted.selection_)
    assert meta["n_segments"] == fitted.n_segments_
    assert meta["windows"] == ["30d", "all"]
    assert meta["feature_columns"] == list(X.columns)
    assert len(meta["selection"]) == len(fitted.selection_)


def test_load_refuses_other_catalogue_version_and_tampering(tmp_path, fitted):
    path = persist.save_model(fitted, tmp_path / "m")
    meta_file = path / persist.METADATA_FILE
    meta = json.loads(meta_file.read_text())
    meta["catalog_version"] = "0"
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(ModelVersionError, match="catalogue version '0'"):
        persist.load_model(path)
    blob = bytearray((path / persist.MODEL_FILE).read_bytes())
    blob[-10] ^= 1
    (path / persist.MODEL_FILE).write_bytes(bytes(blob))
    with pytest.raises(DataError, match="hash"):
        persist.load_model(path)
    with pytest.raises(DataError, match="not found"):
        persist.load_model(tmp_path / "nowhere")


def test_evaluation_scores_and_baselines(frame, fitted):
    X, y = frame
    ev = evaluate_segments(fitted.labels_, y, X)
    assert ev.ari == pytest.approx(adjusted_rand_score(y, fitted.labels_))
    assert set(ev.baselines.index) == {"rfm", "raw_kmeans"}
    assert ev.ari > ev.baselines["ari"].max()
    perfect = evaluate_segments(pd.factorize(y)[0], y, X)
    assert perfect.ari == pytest.approx(1.0) and (perfect.per_archetype["purity"] == 1).all()


def test_rfm_codes_against_hand_count():
    f = pd.DataFrame({"recency_days__all": [5, 1, 9, 3, 7, 2],
                      "fill_count__all": [1, 2, 3, 4, 5, 6],
                      "fees_usd__all": [6.0, 5, 4, 3, 2, 1]})
    assert rfm_codes(f).tolist() == ["R2F1M3", "R3F1M3", "R1F2M2", "R2F2M2", "R1F3M1", "R3F3M1"]
