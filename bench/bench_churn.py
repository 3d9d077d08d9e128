"""Churn backtest, profitability and drivers on a simulated venue, with timings.

Usage::

    python bench/bench_churn.py --workdir /tmp/churn-bench --accounts 3000 --days 240

Simulates a venue (unless the work folder already holds one), loads fills and truth into
a DuckDB store, then times and reports:

* ``profitability`` per segment and month (segments = the simulator's archetypes, a
  stand-in for assignments: the analysis takes assignments as given);
* ``revenue_drivers`` for revenue and next-period volume;
* ``churn_backtest`` over monthly cutoffs: AUC, Brier, lift of the model, BG/NBD P(alive)
  and recency, AUC against the simulator's true churn, and volume R^2.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from traderseg.analysis.churn import churn_backtest
from traderseg.analysis.drivers import revenue_drivers
from traderseg.analysis.profitability import profitability
from traderseg.simulate.writer import simulate_venue
from traderseg.store import connect


def build_store(work: Path, accounts: int, days: int, seed: int) -> Path:
    sim = work / "sim"
    db = work / "store.duckdb"
    if db.exists():
        return db
    if not (sim / "truth.parquet").exists():
        simulate_venue(sim, accounts=accounts, days=days, seed=seed)
    con = connect(db)
    con.execute(f"INSERT INTO fills BY NAME SELECT * FROM read_parquet('{sim}/fills/*.parquet')")
    con.execute(f"INSERT INTO truth BY NAME SELECT * FROM read_parquet('{sim}/truth.parquet')")
    con.execute(f"INSERT INTO market BY NAME SELECT * FROM read_parquet('{sim}/market.parquet')")
    con.close()
    return db


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--accounts", type=int, default=3000)
    ap.add_argument("--days", type=int, default=240)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cutoffs", default="2024-04-01,2024-05-01,2024-06-01,2024-07-01")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    db = build_store(args.workdir, args.accounts, args.days, args.seed)
    print(f"store ready in {time.perf_counter() - t:.1f}s: {db}")
    con = connect(db, read_only=True)
    n_fills = con.execute("SELECT COUNT(*) FROM fills").fetchone()[0]
    truth = con.execute("SELECT account_id, archetype FROM truth ORDER BY archetype").df()
    con.close()
    codes = {a: i for i, a in enumerate(sorted(truth["archetype"].unique()))}
    asg = truth.assign(segment=truth["archetype"].map(codes), segment_name=truth["archetype"])
    print(f"{n_fills:,} fills, {len(truth):,} accounts")

    t = time.perf_counter()
    rep = profitability(db, asg, freq="month")
    print(f"\nprofitability (segments + months) in {time.perf_counter() - t:.2f}s; "
          f"venue revenue {rep.venue_revenue:,.2f} USD")
    cols = ["segment_name", "accounts", "revenue_usd", "revenue_share", "revenue_bps",
            "pnl_usd", "losing_share", "top10_share", "gini"]
    print(rep.by_segment[cols].to_string(index=False, float_format=lambda v: f"{v:,.3f}"))

    cuts = args.cutoffs.split(",")
    for target in ("revenue", "next_volume"):
        t = time.perf_counter()
        res = revenue_drivers(db, cuts[-1], asg, target=target)
        print(f"\ndrivers of {res.target}: R^2 {res.r_squared:.3f}, n {res.n_obs:,}, "
              f"condition number {res.condition_number:.1f} ({time.perf_counter() - t:.1f}s)")
        print(res.table[["coef", "ci_low", "ci_high", "p_value"]].round(3).to_string())

    t = time.perf_counter()
    bt = churn_backtest(db, cuts, 30, n_threads=args.threads)
    print(f"\nchurn backtest in {time.perf_counter() - t:.1f}s: train {bt.n_train:,} rows "
          f"({len(bt.train_cutoffs)} cutoffs), test {len(bt.predictions):,} accounts at "
          f"{bt.test_cutoff.date()}, base rate {bt.base_rate:.3f}")
    print(bt.metrics.round(3).to_string())
    cal = bt.calibration[bt.calibration["scorer"] == "model"]
    print(cal.round(3).to_string(index=False))
    print(bt.volume.round(3).to_string())


if __name__ == "__main__":
    main()
