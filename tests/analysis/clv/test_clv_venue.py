"""Lifetime value of fee revenue on a small fills store built in the test."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from traderseg.analysis.clv import account_day_summary, venue_clv
from traderseg.analysis.clv.venue import UNASSIGNED
from traderseg.errors import DataError, SchemaError

AS_OF = "2024-03-20"


def _pandas_summary(fills: pd.DataFrame, as_of: str) -> pd.DataFrame:
    """The per-account active-day summary, computed independently with pandas."""
    f = fills[fills["ts"] < pd.Timestamp(as_of, tz="UTC")].copy()
    f["day"] = f["ts"].dt.tz_convert("UTC").dt.normalize()
    daily = f.groupby(["account_id", "day"])["fee_usd"].sum().reset_index()
    cal_end = pd.Timestamp(as_of, tz="UTC") - pd.Timedelta(days=1)
    rows = {}
    for acc, d in daily.groupby("account_id"):
        d = d.sort_values("day")
        rows[acc] = {
            "frequency": len(d) - 1,
            "recency": float((d["day"].iloc[-1] - d["day"].iloc[0]).days),
            "T": float((cal_end - d["day"].iloc[0]).days),
            "monetary_value": d["fee_usd"].iloc[1:].mean() if len(d) > 1 else 0.0,
            "first_value": d["fee_usd"].iloc[0],
            "revenue_to_date": d["fee_usd"].sum(),
        }
    return pd.DataFrame.from_dict(rows, orient="index").sort_index()


def test_sql_summary_matches_pandas(venue_store):
    con, fills, _ = venue_store
    ours = account_day_summary(con, AS_OF)
    theirs = _pandas_summary(fills, AS_OF)
    assert list(ours.index) == list(theirs.index)
    for col in theirs.columns:
        np.testing.assert_allclose(ours[col].to_numpy(float), theirs[col].to_numpy(float),
                                   rtol=1e-9, atol=1e-9, err_msg=col)


def test_scores_and_rebate_earners(venue_store):
    con, fills, _ = venue_store
    res = venue_clv(con, AS_OF, horizon_days=90, discount_rate_annual=0.10)
    acc = res.accounts
    assert len(acc) == fills.loc[fills["ts"] < pd.Timestamp(AS_OF, tz="UTC"),
                                 "account_id"].nunique()
    assert ((acc["p_alive"] > 0) & (acc["p_alive"] <= 1)).all()
    assert (acc.loc[acc["frequency"] == 0, "p_alive"] == 1).all()
    assert (acc["expected_active_days"] >= 0).all() and (acc["expected_active_days"] <= 90).all()
    np.testing.assert_allclose(acc["expected_revenue"],
                               acc["expected_active_days"] * acc["value_per_active_day"])
    # makers (every tenth account) earn rebates: flagged, valued by their own mean, CLV <= 0
    makers = acc.index.str[-1] == "0"
    assert makers.any()
    assert acc.loc[makers, "rebate_earner"].all() and not acc.loc[~makers, "rebate_earner"].any()
    own = np.where(acc["frequency"] > 0, acc["monetary_value"], acc["first_value"])
    np.testing.assert_allclose(acc.loc[makers, "value_per_active_day"], own[makers])
    assert (acc.loc[makers, "clv"] <= 0).all()
    takers = acc.loc[~makers]
    assert set(takers["value_basis"]) <= {"gamma_gamma", "population"}
    # discounting lowers the value of positive flows, and never below zero
    assert ((takers["clv"] <= takers["expected_revenue"]) & (takers["clv"] >= 0)).all()
    assert res.value_model.n_customers_ == int((acc["value_basis"] == "gamma_gamma").sum())


def test_later_fills_do_not_leak_into_the_scores(venue_store, store_writer, tmp_path):
    con, fills, _ = venue_store
    base = venue_clv(con, AS_OF).accounts
    cut = fills[fills["ts"] < pd.Timestamp(AS_OF, tz="UTC")]
    other = store_writer(tmp_path / "cut.duckdb", pd.concat([cut, fills.tail(1)]))
    try:
        again = venue_clv(other, AS_OF).accounts
    finally:
        other.close()
    pd.testing.assert_frame_equal(base, again)


def test_segment_summary(venue_store):
    con, _, _ = venue_store
    everyone = account_day_summary(con, AS_OF).index
    assigned = pd.DataFrame({"account_id": list(everyone[:-3]) + ["ghost"],
                             "segment": ["whales" if i % 3 == 0 else "retail"
                                         for i in range(len(everyone) - 3)] + ["retail"]})
    res = venue_clv(con, AS_OF, assignments=assigned)
    seg = res.segments
    assert seg is not None
    assert set(seg.index) == {"whales", "retail", UNASSIGNED}
    assert seg.loc[UNASSIGNED, "accounts"] == 3
    assert seg["accounts"].sum() == len(everyone)
    for col in ("clv", "expected_revenue", "revenue_to_date", "expected_active_days"):
        assert seg[col].sum() == pytest.approx(res.accounts[col].sum())
    whales = res.accounts["segment"] == "whales"
    assert seg.loc["whales", "clv"] == pytest.approx(res.accounts.loc[whales, "clv"].sum())


def test_paretonbd_variant_runs(venue_store):
    con, _, _ = venue_store
    res = venue_clv(con, AS_OF, activity="paretonbd")
    assert np.isfinite(res.accounts["clv"]).all()


def test_bad_requests_are_refused(venue_store):
    con, _, _ = venue_store
    with pytest.raises(DataError, match="no fills before"):
        venue_clv(con, "2023-06-01")
    with pytest.raises(DataError, match="after the last day"):
        venue_clv(con, "2025-01-01")
    with pytest.raises(DataError, match="horizon"):
        venue_clv(con, AS_OF, horizon_days=0)
    with pytest.raises(SchemaError, match="segment"):
        venue_clv(con, AS_OF, assignments=pd.DataFrame({"account_id": ["acc001"]}))
    with pytest.raises(DataError, match="more than once"):
        venue_clv(con, AS_OF, assignments=pd.DataFrame({"account_id": ["acc001", "acc001"],
                                                        "segment": ["a", "b"]}))
    con.execute("UPDATE fills SET fee_usd = 'NaN'::DOUBLE WHERE fill_id = "
                "(SELECT min(fill_id) FROM fills WHERE account_id = 'acc001')")
    assert con.execute("SELECT count(*) FROM fills WHERE isnan(fee_usd)").fetchone() == (1,)
    with pytest.raises(DataError, match="fee_usd"):
        venue_clv(con, AS_OF)
