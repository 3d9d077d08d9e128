"""Fairness audit on hand-made venues: a clean policy, a proxy rule, a single level."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from traderseg.compliance.fairness import (
    CONTROL_OUTCOMES,
    FOUR_FIFTHS,
    fairness_audit,
    holm,
    residual_statistic,
)

REVIEW = next(o for o in CONTROL_OUTCOMES if o.name == "review_flag_restricted")
LEVERAGE = next(o for o in CONTROL_OUTCOMES if o.name == "max_leverage_restricted")


def venue(n=600, *, proxy=False, seed=0):
    rng = np.random.default_rng(seed)
    region = rng.choice(["EU", "APAC", "LATAM"], n)
    # behaviour differs by region (LATAM trades riskier), which is legitimate
    risk = np.clip(rng.normal(np.where(region == "LATAM", 55, 45), 15), 0, 100)
    review = risk >= 60
    lev = np.where(risk >= 60, 10.0, 50.0)
    if proxy:
        latam = region == "LATAM"
        review = review | latam
        lev = np.where(latam, np.minimum(lev, 10.0), lev)
    return pd.DataFrame({
        "account_id": [f"a{i}" for i in range(n)], "segment_id": rng.integers(0, 3, n),
        "segment_name": "s", "membership": 1.0, "lifecycle_stage": "active",
        "value_tier": "bronze", "risk_score": risk, "churn_probability": np.nan,
        "liquidation_risk": np.nan, "region": region, "kyc_tier": 1,
        "review_flag": review, "max_leverage": lev})


def row(audit, attribute, outcome):
    d = audit.disparity
    return d[(d["attribute"] == attribute) & (d["outcome"] == outcome)].iloc[0]


def test_clean_venue_has_disparity_but_no_flag():
    a = fairness_audit(venue(), attributes=["region"], outcomes=[REVIEW, LEVERAGE],
                       n_permutations=199)
    r = row(a, "region", REVIEW.name)
    assert r["ratio"] < FOUR_FIFTHS          # LATAM is reviewed more: its behaviour is riskier
    assert not r["flagged"] and not a.disparity["flagged"].any()


def test_proxy_rule_on_region_is_flagged():
    a = fairness_audit(venue(proxy=True), attributes=["region"], outcomes=[REVIEW, LEVERAGE],
                       n_permutations=199)
    for outcome in (REVIEW.name, LEVERAGE.name):
        r = row(a, "region", outcome)
        assert r["flagged"] and r["conditional_effect"] > 0.3
        assert r["highest_group"] == "LATAM" and r["highest_rate"] == 1.0


def test_rates_and_ratio_by_hand():
    f = venue(90)
    f["region"] = np.repeat(["A", "B", "C"], 30)
    f["review_flag"] = np.r_[np.ones(15), np.zeros(15), np.ones(30), np.zeros(30)].astype(bool)
    a = fairness_audit(f, attributes=["region"], outcomes=[REVIEW], n_permutations=19)
    rates = a.rates.set_index("group")["rate"].to_dict()
    assert rates == {"A": 0.5, "B": 1.0, "C": 0.0}
    r = row(a, "region", REVIEW.name)
    assert (r["lowest_group"], r["highest_group"], r["ratio"]) == ("C", "B", 0.0)
    assert r["ratio_ci_low"] <= r["ratio"] <= r["ratio_ci_high"]


def test_groups_below_the_minimum_are_listed_not_compared():
    f = venue(89)
    f["region"] = ["A"] * 30 + ["B"] * 29 + ["C"] * 30
    a = fairness_audit(f, attributes=["region"], outcomes=[REVIEW], n_permutations=19)
    assert row(a, "region", REVIEW.name)["groups"] == 2      # B has 29 < 30
    assert not a.rates.set_index("group").loc["B", "tested"]


def test_single_level_attribute_is_noted_not_flagged():
    a = fairness_audit(venue(200), attributes=["kyc_tier"], outcomes=[REVIEW],
                       n_permutations=19)
    r = row(a, "kyc_tier", REVIEW.name)
    assert "single level" in r["note"] and not r["flagged"] and np.isnan(r["ratio"])


def test_missing_attribute_column():
    from traderseg.errors import DataError

    with pytest.raises(DataError, match="attribute column"):
        fairness_audit(venue(50).drop(columns="region"), attributes=["region"])


def test_statistic_and_holm_by_hand():
    # groups 0: residuals 1, 1 (mean 1, n 2) -> 2; group 1: -1 (n 1) -> 1
    assert residual_statistic(np.array([1.0, 1.0, -1.0]), np.array([0, 0, 1]), 2) == 3.0
    assert holm(np.array([0.01, np.nan, 0.04])).tolist()[0] == pytest.approx(0.02)
    assert np.isnan(holm(np.array([0.01, np.nan]))[1])
