import numpy as np
import pandas as pd
import pytest

from helpers.cli import run_cli
from helpers.fills import random_fills
from helpers.store import fills_store
from traderseg.analysis.drivers import clean_design, fit_ols, revenue_drivers
from traderseg.errors import DataError, SchemaError


def test_recovers_known_coefficients_with_heteroskedastic_noise():
    rng = np.random.default_rng(1)
    n = 3000
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.uniform(0, 3, n),
                      "d": (rng.random(n) < 0.3).astype(float)})
    beta = {"const": 1.5, "a": 2.0, "b": -0.7, "d": 0.4}
    noise = rng.normal(size=n) * (0.2 + 0.6 * X["b"])  # variance grows with b
    y = beta["const"] + 2.0 * X["a"] - 0.7 * X["b"] + 0.4 * X["d"] + noise
    res = fit_ols(X, y)
    t = res.table
    for term, value in beta.items():
        assert t.loc[term, "ci_low"] < value < t.loc[term, "ci_high"], term
        assert abs(t.loc[term, "coef"] - value) < 0.1
    assert res.n_obs == n and res.dropped == {}
    assert 0 < res.r_squared < 1


def test_hc3_standard_errors_match_the_textbook_formula():
    rng = np.random.default_rng(2)
    n = 200
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.exponential(size=n)})
    y = 0.5 + X["a"] + rng.normal(size=n) * (0.1 + X["b"])
    res = fit_ols(X, y)
    Z = np.column_stack([np.ones(n), X.to_numpy()])
    xtx_inv = np.linalg.inv(Z.T @ Z)
    coef = xtx_inv @ Z.T @ y.to_numpy()
    e = y.to_numpy() - Z @ coef
    h = np.einsum("ij,jk,ik->i", Z, xtx_inv, Z)
    meat = Z.T @ (Z * (e**2 / (1 - h) ** 2)[:, None])
    se = np.sqrt(np.diag(xtx_inv @ meat @ xtx_inv))
    np.testing.assert_allclose(res.table["coef"], coef, rtol=1e-9)
    np.testing.assert_allclose(res.table["std_err"], se, rtol=1e-9)
    # VIF of a regressor = 1 / (1 - R^2 of it on the others)
    r = np.corrcoef(X["a"], X["b"])[0, 1]
    np.testing.assert_allclose(res.table.loc["a", "vif"], 1 / (1 - r**2), rtol=1e-9)


def test_collinear_columns_are_dropped_with_reasons():
    rng = np.random.default_rng(3)
    n = 100
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    X["const_col"] = 4.0
    X["a_again"] = X["a"]
    X["a_plus_b"] = X["a"] + 2 * X["b"]
    kept, dropped = clean_design(X)
    assert list(kept.columns) == ["a", "b"]
    assert dropped == {"const_col": "constant", "a_again": "duplicate of a",
                       "a_plus_b": "linear combination of other columns"}
    res = fit_ols(X, X["a"] + rng.normal(size=n))
    assert list(res.table.index) == ["const", "a", "b"]
    assert res.condition_number < 30


def test_too_few_accounts_for_the_regressors():
    rng = np.random.default_rng(4)
    X = pd.DataFrame(rng.normal(size=(15, 6)), columns=list("abcdef"))
    with pytest.raises(DataError, match="too few accounts: 15 for 6 regressors"):
        fit_ols(X, pd.Series(rng.normal(size=15)))
    X.iloc[3, 2] = np.nan
    with pytest.raises(DataError, match="'c' is not finite for row 3"):
        fit_ols(X, pd.Series(rng.normal(size=15)), min_residual_df=1)


def _volume_store(n_accounts=150, seed=5):
    """Accounts trade a fixed daily size s before the cutoff and s * g after it."""
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp("2024-01-01", tz="UTC")
    rows = []
    g = np.exp(rng.normal(0, 0.3, n_accounts))
    s = np.exp(rng.uniform(np.log(1e3), np.log(1e6), n_accounts))
    for i in range(n_accounts):
        for d in range(90):
            size = s[i] * (g[i] if d >= 60 else 1.0) * rng.uniform(0.9, 1.1)
            rows.append((f"f{i}_{d}", t0 + pd.Timedelta(days=d, hours=rng.uniform(0, 23)),
                         f"acct{i:03d}", size))
    df = pd.DataFrame(rows, columns=["fill_id", "ts", "account_id", "notional_usd"])
    df = df.assign(instrument="BTC-PERPETUAL", underlying="BTC", kind="perp", side="buy",
                   qty=1.0, price=df["notional_usd"], fee_usd=df["notional_usd"] * 5e-4,
                   is_maker=False)
    return df


def test_next_volume_recovers_the_generating_elasticity():
    fills = _volume_store()
    con = fills_store(fills)
    ids = sorted(fills["account_id"].unique())
    asg = pd.DataFrame({"account_id": ids[:140], "segment": [i % 2 for i in range(140)],
                        "segment_name": [("big", "small")[i % 2] for i in range(140)]})
    as_of = "2024-03-01"  # day 60
    res = revenue_drivers(con, as_of, asg, target="next_volume", features=["notional_total"],
                          horizon_days=30)
    # independent target: log1p of the notional traded in [as_of, as_of + 30d)
    cut = pd.Timestamp(as_of, tz="UTC")
    nxt = fills[(fills.ts >= cut) & (fills.ts < cut + pd.Timedelta(days=30))]
    exp = np.log1p(nxt.groupby("account_id")["notional_usd"].sum())
    np.testing.assert_allclose(res.design["target"].loc[exp.index], exp, rtol=1e-12)
    t = res.table
    assert t.loc["notional_total__30d", "ci_low"] < 1.0 < t.loc["notional_total__30d", "ci_high"]
    assert res.r_squared > 0.9
    assert res.reference_segment == "big"  # 70 vs 70: ties go to the first name
    assert {"segment[small]", "segment[unassigned]"} <= set(t.index)


def test_revenue_target_is_the_signed_log_of_window_fees():
    fills = random_fills(n=6000, accounts=120, seed=6)
    con = fills_store(fills)
    ids = sorted(fills["account_id"].unique())
    asg = pd.DataFrame({"account_id": ids, "segment": [i % 3 for i in range(len(ids))],
                        "segment_name": [f"s{i % 3}" for i in range(len(ids))]})
    res = revenue_drivers(con, "2024-04-01", asg, window="30d")
    cut = pd.Timestamp("2024-04-01", tz="UTC")
    win = fills[(fills.ts >= cut - pd.Timedelta(days=30)) & (fills.ts < cut)]
    fees = win.groupby("account_id")["fee_usd"].sum()
    exp = np.sign(fees) * np.log1p(fees.abs())
    assert set(res.design.index) == set(fees.index)
    np.testing.assert_allclose(res.design["target"].loc[exp.index], exp, rtol=1e-9)
    assert list(res.table.columns) == ["coef", "std_err", "ci_low", "ci_high", "t", "p_value", "vif"]
    assert (res.table["ci_low"] <= res.table["coef"]).all()


@pytest.mark.parametrize("kwargs, err, msg", [
    ({"features": ["no_such_feature"]}, SchemaError, "unknown feature"),
    ({"features": ["fees_usd"]}, SchemaError, "define the revenue target"),
    ({"target": "profit"}, SchemaError, "target must be"),
    ({"window": "all"}, SchemaError, "finite window"),
    ({"target": "next_volume", "horizon_days": 60}, DataError, "cutoff outside the data"),
])
def test_bad_arguments(kwargs, err, msg):
    fills = _volume_store(n_accounts=30)
    asg = pd.DataFrame({"account_id": ["acct000"], "segment": [0], "segment_name": ["x"]})
    with pytest.raises(err, match=msg):
        revenue_drivers(fills_store(fills), "2024-03-01", asg, **kwargs)


def test_too_few_accounts_in_the_store():
    fills = _volume_store(n_accounts=12)
    asg = pd.DataFrame({"account_id": ["acct000"], "segment": [0], "segment_name": ["x"]})
    with pytest.raises(DataError, match="too few accounts: 12"):
        revenue_drivers(fills_store(fills), "2024-03-01", asg, features=["notional_total", "fill_count"])


def test_undefined_and_constant_features_are_reported_not_fatal():
    fills = _volume_store(n_accounts=60)
    ids = sorted(fills["account_id"].unique())
    asg = pd.DataFrame({"account_id": ids, "segment": 0, "segment_name": "all"})
    res = revenue_drivers(fills_store(fills), "2024-03-01", asg)
    # perp only, no closing fills, never a maker: these carry no information here
    assert res.dropped["close_share__30d"] == "undefined for every account"
    assert res.dropped["option_share__30d"] == "constant"
    assert res.dropped["maker_share__30d"] == "constant"
    assert "close_share__30d" not in res.table.index
    assert res.n_obs == 60


def test_cli_prints_and_writes_the_coefficients(tmp_path, capsys):
    fills = _volume_store(n_accounts=60)
    db = tmp_path / "s.duckdb"
    fills_store(fills, db).close()
    ids = sorted(fills["account_id"].unique())
    pd.DataFrame({"account_id": ids, "segment": [i % 2 for i in range(60)],
                  "segment_name": [("a", "b")[i % 2] for i in range(60)]}).to_parquet(tmp_path / "a.parquet")
    out = tmp_path / "d.parquet"
    base = ["analyze", "drivers", "--db", str(db), "--as-of", "2024-03-01", "--assignments",
            str(tmp_path / "a.parquet")]
    code, text, err = run_cli([*base, "--target", "next_volume", "--features", "notional_total,fill_count",
                               "--out", str(out)], capsys)
    assert code == 0, err
    assert "R^2" in text and "segment[b]" in text
    table = pd.read_parquet(out)
    assert {"const", "notional_total__30d", "segment[b]"} <= set(table["term"])
    code, _, err = run_cli([*base, "--target", "margin"], capsys)
    assert code == 2 and "target must be" in err
