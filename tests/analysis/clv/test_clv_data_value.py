"""RFM data preparation, Gamma-Gamma behaviour and the discounted value."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from traderseg.analysis.clv import (
    BGNBDModel,
    GammaGammaModel,
    annual_to_period_rate,
    customer_lifetime_value,
    expected_discounted_purchases,
    rfm_summary,
)
from traderseg.errors import DataError, SchemaError


def _tx() -> pd.DataFrame:
    return pd.DataFrame({
        "id": ["a", "a", "a", "a", "b", "c"],
        "ts": pd.to_datetime(["2024-01-01 09:00", "2024-01-01 17:00", "2024-01-15 00:00",
                              "2024-02-01 00:00", "2024-01-10 00:00", "2024-02-20 00:00"]),
        "usd": [2.0, 3.0, 10.0, 20.0, 7.0, 1.0],
    })


def test_same_day_rows_are_one_occasion_and_late_starters_are_left_out():
    s = rfm_summary(_tx(), "id", "ts", "usd", "2024-02-10", freq="D", observation_end="2024-03-01")
    assert list(s.index) == ["a", "b"]  # c starts after the calibration end
    a = s.loc["a"]
    assert (a["frequency"], a["recency"], a["T"]) == (2, 31.0, 40.0)
    assert a["first_value"] == 5.0 and a["monetary_value"] == 15.0
    assert s.loc["b", "monetary_value"] == 0.0
    assert (s["frequency_holdout"] == 0).all() and (s["duration_holdout"] == 20.0).all()


def test_weeks_are_days_over_seven_and_timezones_are_utc_days():
    days = rfm_summary(_tx(), "id", "ts", "usd", "2024-02-10", freq="D")
    weeks = rfm_summary(_tx(), "id", "ts", "usd", "2024-02-10", freq="W")
    np.testing.assert_allclose(weeks[["recency", "T"]] * 7, days[["recency", "T"]])
    tz = _tx().assign(ts=lambda d: d["ts"].dt.tz_localize("UTC").dt.tz_convert("Asia/Tokyo"))
    pd.testing.assert_frame_equal(rfm_summary(tz, "id", "ts", "usd", "2024-02-10", freq="D"), days)


def test_rfm_summary_refuses_bad_input():
    tx = _tx()
    with pytest.raises(SchemaError, match="usd"):
        rfm_summary(tx.drop(columns="usd"), "id", "ts", "usd", "2024-02-10")
    with pytest.raises(DataError, match="empty"):
        rfm_summary(tx.iloc[:0], "id", "ts", "usd", "2024-02-10")
    with pytest.raises(DataError, match="'usd'.*row 2"):
        rfm_summary(tx.assign(usd=[1.0, 2.0, np.nan, 1.0, 1.0, 1.0]), "id", "ts", "usd",
                    "2024-02-10")
    with pytest.raises(DataError, match="'ts'"):
        rfm_summary(tx.assign(ts=tx["ts"].where(tx.index != 4)), "id", "ts", "usd", "2024-02-10")
    with pytest.raises(SchemaError, match="datetimes"):
        rfm_summary(tx.assign(ts=tx["ts"].astype(str)), "id", "ts", "usd", "2024-02-10")
    for bad_end in ("2023-12-31", "2024-03-01"):
        with pytest.raises(DataError, match="outside"):
            rfm_summary(tx, "id", "ts", "usd", bad_end)
    with pytest.raises(DataError, match="after calibration_end"):
        rfm_summary(tx, "id", "ts", "usd", "2024-02-10", observation_end="2024-02-01")
    with pytest.raises(DataError, match="freq"):
        rfm_summary(tx, "id", "ts", "usd", "2024-02-10", freq="M")  # type: ignore[arg-type]


def test_gammagamma_recovers_simulated_parameters():
    rng = np.random.default_rng(8)
    n, p, q, gamma = 6000, 5.0, 4.0, 12.0
    x = 1 + rng.poisson(2.0, n)
    nu = rng.gamma(q, 1 / gamma, n)
    # mean of x Gamma(p, rate nu) values, drawn value by value
    zbar = np.array([rng.gamma(p, 1 / nu_i, x_i).mean() for nu_i, x_i in zip(nu, x, strict=True)])
    model = GammaGammaModel().fit(x, zbar)
    for name, value in {"p": p, "q": q, "gamma": gamma}.items():
        assert abs(model.params_[name] - value) < 4 * model.standard_errors_[name], name


def test_gammagamma_expectation_shrinks_between_prior_and_own_mean(gammagamma):
    p, q, gamma = gammagamma.params_
    prior = p * gamma / (q - 1)
    got = gammagamma.conditional_expected_average_profit([0, 1, 10, 10_000], [99.0, 80.0, 80.0, 80.0])
    assert got[0] == pytest.approx(prior)
    assert prior < got[1] < got[2] < 80.0 and got[3] == pytest.approx(80.0, rel=1e-3)


def test_gammagamma_refuses_non_positive_values():
    with pytest.raises(DataError, match="positive mean value.*row 1"):
        GammaGammaModel().fit([1, 2, 0], [10.0, -3.0, 0.0])
    with pytest.raises(DataError, match="x > 0"):
        GammaGammaModel().fit([0, 0], [0.0, 0.0])
    with pytest.raises(DataError, match="empty"):
        GammaGammaModel().fit([], [])
    with pytest.raises(DataError, match="NaN"):
        GammaGammaModel().fit([1, 2], [np.nan, 3.0])
    with pytest.raises(SchemaError, match="monetary_value"):
        GammaGammaModel().fit(pd.DataFrame({"frequency": [1]}))


def test_discounting(bgnbd, gammagamma, cdnow):
    x, t_x, T, m = (cdnow[c] for c in ("frequency", "recency", "T", "monetary_value"))
    plain = expected_discounted_purchases(bgnbd, x, t_x, T, horizon=52, discount_rate=0.0)
    direct = bgnbd.conditional_expected_number_of_purchases_up_to_time(52, x, t_x, T)
    np.testing.assert_allclose(plain.expected, direct, rtol=1e-12)
    np.testing.assert_allclose(plain.discounted, direct, rtol=1e-12)
    # one step over the whole horizon: everything discounted at its end
    one = expected_discounted_purchases(bgnbd, x, t_x, T, horizon=52, discount_rate=0.01,
                                        step=52)
    np.testing.assert_allclose(one.discounted, direct / 1.01**52, rtol=1e-12)
    weekly = expected_discounted_purchases(bgnbd, x, t_x, T, horizon=52, discount_rate=0.01)
    assert (weekly.discounted > one.discounted).all() and (weekly.discounted < direct).all()
    clv = customer_lifetime_value(bgnbd, gammagamma, x, t_x, T, m, horizon=52,
                                  discount_rate=0.01)
    value = gammagamma.conditional_expected_average_profit(x, m)
    np.testing.assert_allclose(clv, weekly.discounted * value, rtol=1e-12)
    with pytest.raises(DataError, match="horizon"):
        expected_discounted_purchases(bgnbd, x, t_x, T, horizon=0, discount_rate=0.0)


def test_annual_rate_compounds_to_the_year():
    d = annual_to_period_rate(0.10, 1.0)
    assert (1 + d) ** 365 == pytest.approx(1.10)
    assert annual_to_period_rate(0.0, 7.0) == 0.0
    with pytest.raises(DataError):
        annual_to_period_rate(-1.5, 1.0)


def test_bgnbd_not_fitted_expectation_is_refused():
    from traderseg.errors import NotFittedError

    with pytest.raises(NotFittedError):
        BGNBDModel().expected_number_of_purchases_up_to_time(10)
