"""Lifetime value where users run it: heavy-tailed revenue (q <= 1), data without repeat
activity, returns and cancellations, the generic (customer, time, value) path, and the
README's simulated venue."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers.cli import run_cli
from traderseg.analysis.clv import BGNBDModel, GammaGammaModel, rfm_summary, venue_clv
from traderseg.analysis.clv.venue import score_summary
from traderseg.errors import DataError
from traderseg.ingest import ingest
from traderseg.simulate import simulate_venue
from traderseg.store import connect


def _gg(p, q, gamma):
    m = GammaGammaModel().fit([1, 2, 3], [1.0, 2.0, 3.0])
    m.params_ = pd.Series({"p": p, "q": q, "gamma": gamma})
    return m


def test_posterior_mean_where_finite_by_hand():
    # p=0.5, q=0.6, gamma=10: p x + q - 1 > 0 iff x > 0.8, so x=0 has no finite mean
    m = _gg(0.5, 0.6, 10.0)
    values, finite = m.expected_average_profit_where_finite([0, 1, 4], [0.0, 8.0, 2.0])
    assert finite.tolist() == [False, True, True]
    assert np.isnan(values[0])
    assert values[1] == pytest.approx(0.5 * (10 + 8) / (0.5 + 0.6 - 1))   # 90
    assert values[2] == pytest.approx(0.5 * (10 + 8) / (2.0 + 0.6 - 1))   # 5.625


def test_posterior_mean_boundary_is_not_finite():
    # p x + q - 1 == 0 exactly (x=1, p=0.5, q=0.5): infinite, not finite
    _, finite = _gg(0.5, 0.5, 10.0).expected_average_profit_where_finite([1], [3.0])
    assert finite.tolist() == [False]


def test_conditional_expectation_raises_naming_the_customer():
    m = _gg(0.5, 0.6, 10.0)
    x = pd.Series([2, 0], index=["alice", "bob"])
    with pytest.raises(DataError, match="customer 'bob'"):
        m.conditional_expected_average_profit(x, pd.Series([3.0, 0.0], index=x.index))


def test_scoring_refuses_negative_values_like_fitting():
    m = _gg(6.0, 3.7, 15.0)
    x = pd.Series([2, 1], index=["a1", "a2"])
    with pytest.raises(DataError, match="first customer 'a2'"):
        m.conditional_expected_average_profit(x, pd.Series([4.0, -1.0], index=x.index))
    with pytest.raises(DataError, match="first customer 'a2'"):
        GammaGammaModel().fit(x, pd.Series([4.0, -1.0], index=x.index))


def test_fit_without_repeat_activity_is_not_converged():
    m = BGNBDModel().fit([0, 0, 0, 0], [0.0, 0.0, 0.0, 0.0], [10.0, 20.0, 5.0, 7.0])
    assert m.converged_ is False


def test_fit_with_repeat_activity_converges(bgnbd):
    assert bgnbd.converged_ is True  # CDNOW, the same model with repeat purchases


def test_rfm_summary_nonpositive_days_kept_or_dropped():
    tx = pd.DataFrame({
        "c": ["a", "a", "a", "a", "b", "b"],
        "t": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-02", "2024-01-05",
                             "2024-01-01", "2024-01-03"]),
        # a: +10 ; +5 and a -5 return on day 2 (net 0) ; +20 ; b: +7 ; -3 refund alone
        "v": [10.0, 5.0, -5.0, 20.0, 7.0, -3.0],
    })
    kept = rfm_summary(tx, "c", "t", "v", "2024-01-05", freq="D")
    assert kept.attrs == {"periods": 5, "nonpositive_periods": 2, "dropped_periods": 0}
    assert kept.loc["a", "frequency"] == 2 and kept.loc["a", "monetary_value"] == 10.0  # (0+20)/2
    dropped = rfm_summary(tx, "c", "t", "v", "2024-01-05", freq="D", nonpositive="drop")
    assert dropped.attrs["dropped_periods"] == 2
    assert dropped.loc["a", "frequency"] == 1 and dropped.loc["a", "monetary_value"] == 20.0
    assert dropped.loc["b", "frequency"] == 0
    assert dropped.loc["a", "value_to_date"] == 30.0


def _summary(rows):
    return pd.DataFrame(rows, columns=["id", "frequency", "recency", "T", "monetary_value",
                                       "first_value"]).set_index("id")


def test_score_summary_values_heavy_tail_customers_at_their_own_mean():
    rng = np.random.default_rng(3)
    n = 400
    x = rng.poisson(2.0, n)
    T = rng.uniform(20, 60, n)
    rec = np.where(x > 0, T * rng.uniform(0.1, 1, n), 0.0)
    # Pareto-like revenue per day: a heavy tail gives a fitted q below 1
    zbar = np.where(x > 0, rng.pareto(0.7, n) + 0.01, 0.0)
    first = rng.pareto(0.7, n) + 0.01
    s = _summary(list(zip([f"c{i}" for i in range(n)], x, rec, T, zbar, first)))
    scored = score_summary(s, 30.0, 0.1)
    q = scored.value_model.params_["q"]
    assert q <= 1
    acc = scored.accounts
    heavy = acc["value_basis"] == "own_mean_heavy_tail"
    assert heavy.any() and (acc.loc[acc["frequency"] == 0, "value_basis"]
                            == "own_mean_heavy_tail").all()
    own = np.where(acc["frequency"] > 0, acc["monetary_value"], acc["first_value"])
    np.testing.assert_allclose(acc.loc[heavy, "value_per_active_day"], own[heavy.to_numpy()])
    assert np.isfinite(acc["clv"]).all()
    assert scored.notes and "q = " in scored.notes[0]


@pytest.fixture(scope="module")
def sim_store(tmp_path_factory):
    out = tmp_path_factory.mktemp("clv-venue")
    simulate_venue(out / "venue", accounts=300, days=30, seed=7, chunk_accounts=300)
    ingest(out / "venue", out / "venue.duckdb")
    return out / "venue.duckdb"


def test_venue_clv_on_simulator_output(sim_store):
    con = connect(sim_store, read_only=True)
    as_of = con.execute("SELECT CAST(max(ts) AS DATE) FROM fills").fetchone()[0]
    res = venue_clv(con, pd.Timestamp(as_of) - pd.Timedelta(days=5), horizon_days=30)
    acc = res.accounts
    n_accounts = con.execute(
        "SELECT count(DISTINCT account_id) FROM fills WHERE ts < ?::TIMESTAMPTZ",
        [str(pd.Timestamp(as_of) - pd.Timedelta(days=5))]).fetchone()[0]
    assert len(acc) == n_accounts
    assert np.isfinite(acc[["p_alive", "expected_revenue", "clv"]].to_numpy()).all()
    assert set(acc["value_basis"]) <= {"gamma_gamma", "population", "own_mean",
                                       "own_mean_heavy_tail"}
    assert (acc.loc[acc["rebate_earner"], "clv"] <= 0).all()
    assert ((acc["p_alive"] >= 0) & (acc["p_alive"] <= 1)).all()
    con.close()


def test_clv_cli_on_simulated_venue(sim_store, tmp_path, capsys):
    code, out, err = run_cli(["clv", "--db", str(sim_store), "--as-of", "2024-01-25", "--out",
                              str(tmp_path / "c.parquet"), "--horizon-days", "30"], capsys)
    assert code == 0, err
    assert "valued by:" in out


def test_generic_transactions_path(tmp_path, capsys):
    tx = tmp_path / "orders.csv"
    rows = ["order,cust,placed_at,amount"]
    rng = np.random.default_rng(1)
    for i in range(600):
        c = f"u{i % 60}"
        day = int(rng.integers(0, 50))
        rows.append(f"o{i},{c},2024-01-{1 + day % 28:02d}T10:00:00Z,{rng.gamma(2, 20):.2f}")
    rows.append("o-ret,u1,2024-01-20T12:00:00Z,-15.00")
    tx.write_text("\n".join(rows) + "\n")
    out = tmp_path / "clv.parquet"
    code, text, err = run_cli(["clv", "--transactions", str(tx), "--customer", "cust", "--time",
                               "placed_at", "--value", "amount", "--as-of", "2024-01-29",
                               "--out", str(out)], capsys)
    assert code == 0, err
    scores = pd.read_parquet(out)
    assert len(scores) == 60 and "clv" in scores.columns
    assert "customer-days" in text and "(kept)" in text


def test_generic_path_names_the_customer_of_a_bad_value(tmp_path, capsys):
    tx = tmp_path / "orders.csv"
    tx.write_text("cust,placed_at,amount\nu1,2024-01-01,5\nu2,2024-01-02,five\n")
    code, _, err = run_cli(["clv", "--transactions", str(tx), "--customer", "cust", "--time",
                            "placed_at", "--value", "amount", "--as-of", "2024-01-03",
                            "--out", str(tmp_path / "x.parquet")], capsys)
    assert code == 2 and "of customer 'u2' is not a number: 'five'" in err


@pytest.mark.parametrize("make, words", [
    (lambda p: p.mkdir(), "is a directory"),
    (lambda p: p.write_text("x"), "file exists; pass --overwrite"),
])
def test_clv_out_checked_before_work(tmp_path, capsys, make, words):
    out = tmp_path / "clv.parquet"
    make(out)
    code, _, err = run_cli(["clv", "--db", str(tmp_path / "none.duckdb"), "--as-of",
                            "2024-01-01", "--out", str(out)], capsys)
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1


def _clv_fill(fid, acct, ts, fee):
    return {"fill_id": fid, "ts": pd.Timestamp(ts, tz="UTC"), "account_id": acct,
            "instrument": "X", "underlying": "BTC", "kind": "perp", "side": "buy", "qty": 1.0,
            "price": 1.0, "notional_usd": 1.0, "fee_usd": fee, "is_maker": False}


def test_as_of_exactly_midnight():
    from helpers.store import fills_store
    from traderseg.analysis.clv import account_day_summary

    con = fills_store(pd.DataFrame([
        _clv_fill("1", "a", "2024-03-10 12:00", 1.0),
        _clv_fill("2", "a", "2024-03-19 23:59:59.999999", 2.0),
        _clv_fill("3", "b", "2024-03-20 00:00:00", 5.0),  # exactly the cutoff: excluded
    ]))
    s = account_day_summary(con, "2024-03-20")
    assert list(s.index) == ["a"]
    assert s.loc["a", ["frequency", "recency", "T"]].tolist() == [1, 9.0, 9.0]
    assert s.loc["a", "revenue_to_date"] == 3.0
    later = account_day_summary(con, "2024-03-20 00:00:00.000001")  # one microsecond on
    assert list(later.index) == ["a", "b"]
    assert later.loc["a", "T"] == 10.0 and later.loc["b", ["frequency", "T"]].tolist() == [0, 0.0]
    con.close()
