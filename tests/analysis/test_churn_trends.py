import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from traderseg.analysis.churn.model import ChurnClassifier
from traderseg.analysis.churn.trends import add_trends, trend_columns
from traderseg.errors import DataError


def _frame(**cols):
    return pd.DataFrame(cols, index=pd.Index(["a", "b"], name="account_id"))


def test_rate_trend_is_the_log_ratio_of_daily_rates():
    # a: 7 fills in 7 days, 30 in 30 days -> the same pace, trend 0
    # b: 0 fills in 7 days, 60 in 30 days -> -log1p(2)
    f = add_trends(_frame(fill_count__7d=[7.0, 0.0], fill_count__30d=[30.0, 60.0]))
    t = f["trend_fill_count__7d_30d"]
    assert t["a"] == pytest.approx(0.0, abs=1e-15)
    assert t["b"] == pytest.approx(-math.log1p(2.0))
    assert list(f.columns[:2]) == ["fill_count__7d", "fill_count__30d"]


def test_level_trend_and_missing_short_window():
    f = add_trends(_frame(notional_median__30d=[99.0, np.nan], notional_median__90d=[9.0, 50.0]))
    t = f["trend_notional_median__30d_90d"]
    assert t["a"] == pytest.approx(math.log(100.0) - math.log(10.0))
    assert np.isnan(t["b"])


def test_loss_to_size_uses_the_longest_window_median():
    f = add_trends(_frame(realized_pnl_usd__30d=[-500.0, 20.0],
                          notional_median__30d=[1.0, 1.0], notional_median__90d=[250.0, 0.0]))
    assert f.loc["a", "pnl_to_size__30d"] == pytest.approx(-2.0)
    assert np.isnan(f.loc["b", "pnl_to_size__30d"])  # no size to compare with


def test_only_trends_whose_inputs_are_present():
    assert trend_columns(["fill_count__7d", "fill_count__90d"]) == []
    assert trend_columns(["active_days__30d", "active_days__90d", "x__7d"]) == [
        "trend_active_days__30d_90d"]


def test_negative_amount_is_an_error_naming_the_column():
    with pytest.raises(DataError, match="fill_count__7d: 1 negative"):
        add_trends(_frame(fill_count__7d=[-1.0, 0.0], fill_count__30d=[1.0, 1.0]))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 200)), min_size=1, max_size=20))
def test_steady_pace_scores_zero_and_slowing_down_scores_below(rows):
    # an account whose 30-day count is at least 30/7 times its 7-day count has not sped up
    short = np.array([r[0] for r in rows], dtype=float)
    long = short * 30 / 7 + np.array([r[1] for r in rows], dtype=float)
    f = add_trends(pd.DataFrame({"fill_count__7d": short, "fill_count__30d": long}))
    t = f["trend_fill_count__7d_30d"].to_numpy()
    extra = np.array([r[1] for r in rows]) > 0
    assert (np.abs(t[~extra]) < 1e-12).all()
    assert (t[extra] < 0).all()


def test_classifier_with_trends_learns_a_ratio_and_predicts_from_raw_columns():
    # churn is decided by the ratio of two columns, which neither shows alone
    rng = np.random.default_rng(0)
    n = 2400
    long = rng.lognormal(3, 1.5, n)
    ratio = rng.uniform(0, 2, n)
    X = pd.DataFrame({"fill_count__7d": long * 7 / 30 * ratio, "fill_count__30d": long})
    y = (ratio < 0.5).astype(int)
    plain = ChurnClassifier(max_iter=60, random_state=0, n_threads=1).fit(X[:400], y[:400])
    trend = ChurnClassifier(max_iter=60, random_state=0, n_threads=1,
                            trends=True).fit(X[:400], y[:400])
    assert trend.trend_columns_ == ["trend_fill_count__7d_30d"]
    assert list(trend.feature_names_in_) == ["fill_count__7d", "fill_count__30d"]
    acc_plain = (plain.predict(X[400:]) == y[400:]).mean()
    acc_trend = (trend.predict(X[400:]) == y[400:]).mean()
    assert acc_trend > 0.93
    assert acc_trend > acc_plain + 0.03
    with pytest.raises(DataError, match="needs a DataFrame"):
        trend.predict_proba(X[400:].to_numpy())
