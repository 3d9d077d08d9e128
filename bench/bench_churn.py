"""Churn backtest on simulated venues, against BG/NBD P(alive) and recency, with timings.

Usage::

    python bench/bench_churn.py --workdir work/churn-bench --difficulty realistic,hard \\
        --seeds 1,2,3 [--analysis]

For each difficulty and seed: simulate a 3,000-account, 305-day venue (unless the work
folder already holds it), load fills, truth and market into a DuckDB store and run
``churn_backtest`` with training cutoffs 2024-03-01, 04-01, 05-01 and test cutoff
2024-08-01, a 30-day horizon and two labels:

* ``stopped`` (``grace_days`` = 60): the account has no fill in the 60 days after the
  horizon, i.e. it stopped within the horizon;
* ``inactive`` (``grace_days`` = 0): no fill in the horizon (dormant accounts count).

It reports AUC of the model, BG/NBD (1 - P(alive)) and recency: against the label,
against true churn by the end of the horizon (``auc_truth``), and among accounts truly
alive at the cutoff, against a true churn time inside the horizon (``auc_truth_alive``).

With ``--analysis`` the first venue also gets ``profitability`` per segment and month
(segments = the simulator's dominant archetypes, a stand-in for assignments) and
``revenue_drivers`` for revenue and next-period volume, timed.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from traderseg.analysis.churn import churn_backtest
from traderseg.analysis.drivers import revenue_drivers
from traderseg.analysis.profitability import profitability
from traderseg.simulate.writer import simulate_venue
from traderseg.store import connect

LABELS = {"stopped": 60.0, "inactive": 0.0}


def build_store(work: Path, accounts: int, days: int, seed: int, difficulty: str) -> Path:
    sim = work / "sim"
    db = work / "store.duckdb"
    if db.exists():
        return db
    if not (sim / "truth.parquet").exists():
        simulate_venue(sim, accounts=accounts, days=days, seed=seed, difficulty=difficulty)
    con = connect(db)
    con.execute(f"INSERT INTO fills BY NAME SELECT * FROM read_parquet('{sim}/fills/*.parquet')")
    con.execute(f"INSERT INTO truth BY NAME SELECT * FROM read_parquet('{sim}/truth.parquet')")
    con.execute(f"INSERT INTO market BY NAME SELECT * FROM read_parquet('{sim}/market.parquet')")
    con.close()
    return db


def analysis(db: Path, cutoff: str) -> None:
    con = connect(db, read_only=True)
    truth = con.execute("SELECT account_id, archetype FROM truth ORDER BY archetype").df()
    con.close()
    codes = {a: i for i, a in enumerate(sorted(truth["archetype"].unique()))}
    asg = truth.assign(segment=truth["archetype"].map(codes), segment_name=truth["archetype"])
    t = time.perf_counter()
    rep = profitability(db, asg, freq="month")
    print(f"\nprofitability (segments + months) in {time.perf_counter() - t:.2f}s; "
          f"venue revenue {rep.venue_revenue:,.2f} USD")
    cols = ["segment_name", "accounts", "revenue_usd", "revenue_share", "revenue_bps",
            "pnl_usd", "losing_share", "top10_share", "gini"]
    print(rep.by_segment[cols].to_string(index=False, float_format=lambda v: f"{v:,.3f}"))
    for target in ("revenue", "next_volume"):
        t = time.perf_counter()
        res = revenue_drivers(db, cutoff, asg, target=target)
        print(f"\ndrivers of {res.target}: R^2 {res.r_squared:.3f}, n {res.n_obs:,}, "
              f"condition number {res.condition_number:.1f} ({time.perf_counter() - t:.1f}s)")
        print(res.table[["coef", "ci_low", "ci_high", "p_value"]].round(3).to_string())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--difficulty", default="realistic,hard")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--accounts", type=int, default=3000)
    ap.add_argument("--days", type=int, default=305)
    ap.add_argument("--cutoffs", default="2024-03-01,2024-04-01,2024-05-01,2024-08-01")
    ap.add_argument("--labels", default="stopped,inactive")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--analysis", action="store_true")
    args = ap.parse_args()
    cuts = args.cutoffs.split(",")
    rows = []
    for level in args.difficulty.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            work = args.workdir / f"{level}-{seed}"
            work.mkdir(parents=True, exist_ok=True)
            t = time.perf_counter()
            db = build_store(work, args.accounts, args.days, seed, level)
            print(f"{level} seed {seed}: store ready in {time.perf_counter() - t:.1f}s",
                  flush=True)
            if args.analysis and not rows:
                analysis(db, cuts[-1])
            for label in args.labels.split(","):
                t = time.perf_counter()
                bt = churn_backtest(db, cuts, 30, n_threads=args.threads,
                                    grace_days=LABELS[label])
                secs = time.perf_counter() - t
                print(f"  label {label}: {secs:.1f}s, train {bt.n_train:,} rows, test "
                      f"{len(bt.predictions):,} accounts, base rate {bt.base_rate:.3f}")
                print(bt.metrics.round(3).to_string(), flush=True)
                for scorer, m in bt.metrics.iterrows():
                    rows.append({"difficulty": level, "seed": seed, "label": label,
                                 "scorer": scorer, **m.to_dict(), "seconds": secs})
    df = pd.DataFrame(rows)
    keys = ["auc", "auc_truth", "auc_truth_alive"]
    med = df.groupby(["difficulty", "label", "scorer"], sort=False)[keys].median()
    print("\nmedians over seeds")
    print(med.round(3).to_string())
    wide = df.pivot_table(index=["difficulty", "label", "seed"], columns="scorer",
                          values="auc_truth_alive")
    print("\nAUC among accounts truly alive at the cutoff, per seed")
    print(wide.round(3).to_string())


if __name__ == "__main__":
    main()
