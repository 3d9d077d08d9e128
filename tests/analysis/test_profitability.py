from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from helpers.cli import run_cli_text
from helpers.fills import random_fills
from helpers.store import fills_store
from traderseg.analysis.profitability import profitability, read_assignments
from traderseg.errors import DataError, SchemaError


@pytest.fixture(scope="module")
def data():
    fills = random_fills(n=4000, accounts=60, seed=3)
    ids = sorted(fills["account_id"].unique())
    assigned = ids[:52]  # eight accounts trade but have no assignment
    asg = pd.DataFrame({
        "account_id": assigned,
        "segment": [i % 4 for i in range(len(assigned))],
        "segment_name": [f"seg{i % 4}" for i in range(len(assigned))],
        "lifecycle": [("active", "at-risk", "dormant", None)[i % 3 if i % 7 else 3]
                      for i in range(len(assigned))],
        "value_tier": [("top", "mid", "low")[i % 3] for i in range(len(assigned))],
    })
    return fills, asg


def _gini(x):
    x = np.clip(np.asarray(x, float), 0, None)
    n = len(x)
    # mean absolute difference over all ordered pairs, independent of the rank formula
    return np.abs(x[:, None] - x[None, :]).sum() / (2 * n * n * x.mean())


def _expected(fills, asg):
    acct = fills.groupby("account_id").agg(
        fills=("fill_id", "size"), notional=("notional_usd", "sum"),
        revenue=("fee_usd", "sum"), pnl=("realized_pnl_usd", lambda s: s.fillna(0).sum()))
    seg = asg.set_index("account_id")["segment_name"]
    acct["grp"] = seg.reindex(acct.index).fillna("unassigned")
    rows = {}
    for g, d in acct.groupby("grp"):
        rev = d["revenue"].sort_values(ascending=False)
        n = len(d)
        rows[g] = {
            "accounts": n, "fills": d["fills"].sum(), "notional_usd": d["notional"].sum(),
            "revenue_usd": d["revenue"].sum(), "pnl_usd": d["pnl"].sum(),
            "losing_share": (d["pnl"] < 0).mean(),
            "top1_share": rev.iloc[:int(np.ceil(0.01 * n))].sum() / rev.sum(),
            "top10_share": rev.iloc[:int(np.ceil(0.10 * n))].sum() / rev.sum(),
            "gini": _gini(d["revenue"]),
            "revenue_bps": 1e4 * d["revenue"].sum() / d["notional"].sum(),
        }
    exp = pd.DataFrame(rows).T
    exp["revenue_share"] = exp["revenue_usd"] / fills["fee_usd"].sum()
    return exp


def test_metrics_match_an_independent_pandas_computation(data):
    fills, asg = data
    rep = profitability(fills_store(fills), asg)
    got = rep.by_segment.set_index("segment_name")
    exp = _expected(fills, asg)
    assert set(got.index) == set(exp.index) == {"seg0", "seg1", "seg2", "seg3", "unassigned"}
    for col in exp.columns:
        np.testing.assert_allclose(got.loc[exp.index, col].astype(float),
                                   exp[col].astype(float), rtol=1e-9, err_msg=col)
    assert got["revenue_per_account"].mul(got["accounts"]).sub(got["revenue_usd"]).abs().max() < 1e-6
    assert pd.isna(got.loc["unassigned", "segment"])
    assert rep.overall["accounts"] == fills["account_id"].nunique()


def test_segment_totals_reconcile_exactly_with_the_venue_total():
    fills = random_fills(n=3000, accounts=50, seed=7)
    # fees on a 1/1024 USD grid are exact in binary floating point, so any summation
    # order gives the same double and equality is meaningful
    fills["fee_usd"] = np.round(fills["fee_usd"] * 1024) / 1024
    ids = sorted(fills["account_id"].unique())[:30]
    asg = pd.DataFrame({"account_id": ids, "segment": [i % 3 for i in range(30)],
                        "segment_name": [f"s{i % 3}" for i in range(30)]})
    con = fills_store(fills)
    rep = profitability(con, asg)
    venue = con.execute("SELECT sum(fee_usd) FROM fills").fetchone()[0]
    assert rep.by_segment["revenue_usd"].sum() == venue
    assert rep.by_segment["accounts"].sum() == fills["account_id"].nunique()
    assert rep.by_segment["fills"].sum() == len(fills)


def test_reconciliation_is_exact_in_decimal_for_arbitrary_fees_and_time_ranges(data):
    fills, asg = data
    con = fills_store(fills)
    start, end = "2024-02-01", "2024-03-15"
    rep = profitability(con, asg, start=start, end=end, freq="week")
    exact = con.execute("SELECT sum(CAST(fee_usd AS DECIMAL(38, 12))) FROM fills "
                        "WHERE ts >= TIMESTAMPTZ '2024-02-01' AND ts < TIMESTAMPTZ '2024-03-15'"
                        ).fetchone()[0]
    assert rep.venue_revenue == exact and isinstance(rep.venue_revenue, Decimal)
    in_range = fills[(fills.ts >= pd.Timestamp(start, tz="UTC")) & (fills.ts < pd.Timestamp(end, tz="UTC"))]
    assert rep.by_segment["revenue_usd"].sum() == pytest.approx(in_range["fee_usd"].sum(), rel=1e-12)
    assert rep.by_segment["fills"].sum() == len(in_range)
    for table in rep.by_overlay.values():
        assert table["revenue_usd"].sum() == pytest.approx(in_range["fee_usd"].sum(), rel=1e-12)


def test_by_period_matches_calendar_months(data):
    fills, asg = data
    rep = profitability(fills_store(fills), asg, freq="month")
    per = rep.by_period
    month = fills["ts"].dt.tz_convert("UTC").dt.tz_localize(None).dt.to_period("M").dt.start_time
    exp = fills.groupby(month)["fee_usd"].sum()
    got = per.groupby(per["period"].dt.tz_localize(None))["revenue_usd"].sum()
    np.testing.assert_allclose(got.loc[exp.index], exp, rtol=1e-9)
    shares = per.groupby("period")["revenue_share"].sum()
    np.testing.assert_allclose(shares, 1.0, rtol=1e-12)
    # summing periods gives the whole-range segment figures
    by_seg = per.groupby("segment_name")[["fills", "revenue_usd"]].sum()
    ref = rep.by_segment.set_index("segment_name")
    np.testing.assert_allclose(by_seg.loc[ref.index, "revenue_usd"], ref["revenue_usd"], rtol=1e-9)
    assert (by_seg.loc[ref.index, "fills"] == ref["fills"]).all()


def test_overlays_have_unassigned_and_missing_values(data):
    fills, asg = data
    rep = profitability(fills_store(fills), asg)
    life = rep.by_overlay["lifecycle"].set_index("lifecycle")
    assert {"active", "at-risk", "dormant", "(none)", "unassigned"} == set(life.index)
    n_none = asg["lifecycle"].isna().sum()
    assert life.loc["(none)", "accounts"] == n_none
    assert life.loc["unassigned", "accounts"] == fills["account_id"].nunique() - len(asg)
    assert set(rep.by_overlay) == {"lifecycle", "value_tier"}


def test_reads_assignments_from_parquet(tmp_path, data):
    fills, asg = data
    path = tmp_path / "a.parquet"
    asg.to_parquet(path)
    a = profitability(fills_store(fills), path).by_segment
    b = profitability(fills_store(fills), asg).by_segment
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize("kwargs, err, msg", [
    ({"start": "2024-03-01", "end": "2024-02-01"}, DataError, "empty period"),
    ({"start": "2030-01-01"}, DataError, "empty period"),
    ({"freq": "fortnight"}, SchemaError, "freq"),
    ({"overlays": ["region"]}, SchemaError, "region"),
])
def test_bad_arguments_raise_clear_errors(data, kwargs, err, msg):
    fills, asg = data
    with pytest.raises(err, match=msg):
        profitability(fills_store(fills), asg, **kwargs)


def test_bad_assignments_name_the_row():
    good = pd.DataFrame({"account_id": ["a", "b"], "segment": [0, 1], "segment_name": ["x", "y"]})
    with pytest.raises(SchemaError, match="segment_name"):
        read_assignments(good.drop(columns="segment_name"))
    with pytest.raises(DataError, match="row 1.*'a'"):
        read_assignments(good.assign(account_id=["a", "a"]))
    with pytest.raises(SchemaError, match="row 0.*integer"):
        read_assignments(good.assign(segment=["x", 1]))
    with pytest.raises(DataError, match="assignments file /nonexistent/a.parquet: file not found"):
        read_assignments("/nonexistent/a.parquet")


def test_assignments_that_are_not_parquet_are_one_line_errors(tmp_path):
    text = tmp_path / "a.parquet"
    text.write_text("segment\n1\n")
    with pytest.raises(DataError, match=f"{text}: not a readable Parquet file"):
        read_assignments(text)
    with pytest.raises(DataError, match=f"{tmp_path}: is a directory"):
        read_assignments(tmp_path)


def test_cli_writes_every_breakdown_and_reports_errors(tmp_path, capsys, data):
    fills, asg = data
    db = tmp_path / "s.duckdb"
    fills_store(fills, db).close()
    asg.to_parquet(tmp_path / "a.parquet")
    out = tmp_path / "p.parquet"
    code, text = run_cli_text(["analyze", "profitability", "--db", str(db), "--assignments",
                              str(tmp_path / "a.parquet"), "--freq", "month", "--out", str(out)], capsys)
    assert code == 0, text
    assert "per segment" in text and "Gini" in text
    long = pd.read_parquet(out)
    assert set(long["breakdown"]) == {"overall", "segment", "lifecycle", "value_tier", "period"}
    for part in ("segment", "lifecycle", "period"):
        total = long.loc[long["breakdown"] == part, "revenue_usd"].sum()
        assert total == pytest.approx(fills["fee_usd"].sum(), rel=1e-12)
    code, text = run_cli_text(["analyze", "profitability", "--db", str(db), "--assignments",
                              str(tmp_path / "a.parquet"), "--start", "2030-01-01"], capsys)
    assert code == 2 and "empty period" in text


@pytest.mark.parametrize("group, name", [("analyze", "profitability"), ("analyze", "drivers"),
                                         ("analyze", "migration"), ("app", "churn")])
def test_commands_have_help(group, name):
    from traderseg.cli import _load_commands, analyze_app, app
    _load_commands()
    typer_app = analyze_app if group == "analyze" else app
    cmds = {c.name: c for c in typer_app.registered_commands}
    assert cmds[name].callback.__doc__
