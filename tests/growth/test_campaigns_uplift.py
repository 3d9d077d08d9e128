"""Campaign registry, holdout, uplift estimators and the ranking scores, by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers.store import fills_store
from traderseg.errors import DataError
from traderseg.growth.campaigns import (
    assign_arms,
    holdout_size,
    list_campaigns,
    read_members,
    register_campaign,
)
from traderseg.growth.ranking import qini_curve, ranking_scores, uplift_gain
from traderseg.growth.uplift import (
    campaign_outcomes,
    cuped,
    cuped_adjust,
    difference_in_means,
    measure_outcomes,
    post_stratify,
)


def members(n_per_segment=(20, 10, 3)):
    rows = [(f"a{s}-{i:03d}", s) for s, n in enumerate(n_per_segment) for i in range(n)]
    return pd.DataFrame(rows, columns=["account_id", "segment_id"])


def test_holdout_size_rounds_half_up():
    assert holdout_size(10, 0.1) == 1
    assert holdout_size(4, 0.1) == 0      # 0.4 rounds down
    assert holdout_size(5, 0.1) == 1      # 0.5 rounds up
    assert holdout_size(14, 0.1) == 1     # 1.4
    assert holdout_size(15, 0.1) == 2     # 1.5


def test_arms_are_exact_per_segment_and_reproducible():
    m = members()
    arms = assign_arms("c1", m, 0.25)
    held = arms[arms["arm"] == "holdout"].groupby("segment_id").size().to_dict()
    assert held == {0: 5, 1: 3, 2: 1}     # 5.0; 2.5 rounds up to 3; 0.75 rounds to 1
    again = assign_arms("c1", m.sample(frac=1.0, random_state=3), 0.25)
    assert again.equals(arms)
    other = assign_arms("c2", m, 0.25)
    assert not other["arm"].equals(arms["arm"])


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=60), st.floats(0.05, 0.95))
def test_holdout_share_holds_in_every_segment(segments, share):
    m = pd.DataFrame({"account_id": [f"x{i}" for i in range(len(segments))],
                      "segment_id": segments})
    arms = assign_arms("p", m, share)
    for _s, part in arms.groupby("segment_id"):
        assert (part["arm"] == "holdout").sum() == holdout_size(len(part), share)


def test_bad_holdout_and_duplicates():
    with pytest.raises(DataError, match="between 0 and 1"):
        assign_arms("c", members(), 1.0)
    dup = pd.concat([members((2,)), members((2,))])
    with pytest.raises(DataError, match="listed twice"):
        assign_arms("c", dup, 0.5)


def test_register_is_idempotent_and_refuses_changes():
    from traderseg.store import connect

    con = connect(":memory:")
    m = members()
    c = register_campaign(con, "c1", m, treatment="rebate", start="2024-02-01",
                          end="2024-03-01")
    again = register_campaign(con, "c1", m, treatment="rebate", start="2024-02-01",
                              end="2024-03-01")
    assert again == c and len(list_campaigns(con)) == 1 and len(read_members(con, "c1")) == 33
    with pytest.raises(DataError, match="already registered"):
        register_campaign(con, "c1", m, treatment="other", start="2024-02-01", end="2024-03-01")
    with pytest.raises(DataError, match="audience is empty"):
        register_campaign(con, "c2", m.iloc[:0], treatment="x", start="2024-02-01",
                          end="2024-03-01")
    with pytest.raises(DataError, match="not after start"):
        register_campaign(con, "c3", m, treatment="x", start="2024-02-01", end="2024-02-01")


def test_difference_in_means_by_hand():
    # treated 3, 5 (mean 4, var 2); held out 1, 1 (mean 1, var 0): uplift 3, se sqrt(2/2)=1
    e = difference_in_means(np.array([3.0, 5, 1, 1]), np.array([True, True, False, False]))
    assert e.uplift == 3.0 and e.se == pytest.approx(1.0)
    # Welch df = 1: t(0.975, 1) = 12.706
    assert e.ci_high - e.uplift == pytest.approx(12.7062, rel=1e-4)


def test_cuped_removes_the_pre_period_variance():
    x = np.array([1.0, 2.0, 3.0, 1.0, 2.0, 3.0])
    y = 10 * x + np.array([5.0, 5, 5, 0, 0, 0])
    t = np.array([True, True, True, False, False, False])
    adj = cuped_adjust(y, x)
    # theta = 10, adjusted outcomes are 25 for treated, 20 for held out
    assert adj.tolist() == pytest.approx([25, 25, 25, 20, 20, 20])
    e = cuped(y, x, t)
    assert e.uplift == pytest.approx(5.0) and e.se == pytest.approx(0.0)
    assert difference_in_means(y, t).se > 5


def test_an_arm_under_two_accounts_gives_no_estimate():
    e = difference_in_means(np.array([1.0, 2.0, 3.0]), np.array([True, True, False]))
    assert np.isnan(e.uplift)


def test_post_stratify_weights_by_size():
    from traderseg.growth.uplift import Estimate

    e = post_stratify([(3.0, Estimate(1.0, 1.0, 0, 0, 0)), (1.0, Estimate(5.0, 2.0, 0, 0, 0))])
    assert e.uplift == pytest.approx(2.0)                     # (3*1 + 1*5) / 4
    assert e.se == pytest.approx(np.sqrt(0.75**2 + 0.25**2 * 4))


def outcomes_frame():
    # segment 0: treated 4, 6 / held out 1, 3 -> +3; segment 1: treated 10, 10 / held 10 -> one
    # held-out account only, left out of the overall figure
    return pd.DataFrame({
        "account_id": list("abcdefg"), "segment_id": [0, 0, 0, 0, 1, 1, 1],
        "arm": ["treatment", "treatment", "holdout", "holdout", "treatment", "treatment",
                "holdout"],
        "fees_usd": [4.0, 6, 1, 3, 10, 10, 10], "fees_usd__pre": [0.0] * 7,
        "volume_usd": [0.0] * 7, "volume_usd__pre": [0.0] * 7,
        "retained": [1.0, 1, 0, 1, 1, 1, 1], "retained__pre": [1.0] * 7})


def test_measure_overall_and_empty_arm_rows():
    res = measure_outcomes(outcomes_frame())
    fees = res[(res["metric"] == "fees_usd") & (res["estimator"] == "difference_in_means")]
    overall = fees[fees["group"] == "all"].iloc[0]
    assert overall["uplift"] == pytest.approx(3.0)
    assert "segments left out" in overall["note"] and "1" in overall["note"]
    seg1 = fees[fees["group"] == "1"].iloc[0]
    assert np.isnan(seg1["uplift"]) and "holdout arm" in seg1["note"]
    assert not seg1["significant"]


def test_measure_refuses_an_empty_campaign():
    with pytest.raises(DataError, match="no members"):
        measure_outcomes(outcomes_frame().iloc[:0])


def test_campaign_outcomes_from_fills_by_hand():
    t0 = pd.Timestamp("2024-02-01", tz="UTC")
    fills = pd.DataFrame({
        "fill_id": ["1", "2", "3", "4", "5"],
        "ts": [t0 - pd.Timedelta(days=3), t0, t0 + pd.Timedelta(days=9, hours=23),
               t0 + pd.Timedelta(days=10), t0 - pd.Timedelta(days=11)],
        "account_id": ["a", "a", "a", "a", "b"], "instrument": "BTC-PERPETUAL",
        "underlying": "BTC", "kind": "perp", "side": "buy", "qty": 1.0, "price": 1.0,
        "notional_usd": [100.0, 200, 300, 400, 50], "fee_usd": [1.0, 2, 3, 4, 0.5],
        "is_maker": False})
    con = fills_store(fills)
    m = pd.DataFrame({"account_id": ["a", "b", "c"], "segment_id": [0, 0, 0]})
    register_campaign(con, "c", m, treatment="x", start=t0, end=t0 + pd.Timedelta(days=10),
                      holdout_share=0.4)
    from traderseg.growth.campaigns import get_campaign

    out = campaign_outcomes(con, get_campaign(con, "c")).set_index("account_id")
    # window [t0, t0+10d): fills 2 and 3 (fill 4 is at the exclusive end); pre [t0-10d, t0):
    # fill 1 (fill 5 is a day before the pre-period)
    assert out.loc["a", "fees_usd"] == 5.0 and out.loc["a", "volume_usd"] == 500.0
    assert out.loc["a", "fees_usd__pre"] == 1.0 and out.loc["a", "retained"] == 1.0
    assert out.loc["b", "retained"] == 0.0 and out.loc["b", "volume_usd__pre"] == 0.0
    assert out.loc["c", "fees_usd"] == 0.0


def test_qini_and_gain_by_hand():
    score = np.array([3.0, 2, 1, 0])
    y = np.array([1.0, 0, 1, 0])
    t = np.array([True, False, False, True])
    # k=1: T 1/1, C 0 -> Q 0 (no control yet); k=2: Yt 1, Nt 1, Yc 0, Nc 1 -> 1;
    # k=3: Yc 1, Nc 2 -> 1 - 1 * 1/2 = 0.5; k=4: Nt 2 -> 1 - 1 * 2/2 = 0
    assert qini_curve(score, y, t).tolist() == [0.0, 1.0, 0.5, 0.0]
    # gain: k=2: (1 - 0) * 2 = 2; k=3: (1 - 0.5) * 3 = 1.5; k=4: (0.5 - 0.5) * 4 = 0
    assert uplift_gain(score, y, t).tolist() == [0.0, 2.0, 1.5, 0.0]
    s = ranking_scores(score, y, t)
    assert s["qini_coefficient"] == pytest.approx(np.mean([0, 1, 0.5, 0]) / 4)
    assert s["auuc"] == pytest.approx(3.5 / 4 / 4) and s["auuc_random"] == 0.0
