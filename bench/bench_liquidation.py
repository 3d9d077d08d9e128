"""Liquidation-risk backtest on a simulated venue: the model against the leverage-only rule.

Usage::

    python bench/bench_liquidation.py --workdir work/liq-bench [--accounts 3000 --days 90 \\
        --seed 7 --difficulty realistic]

Simulates a venue (unless the work folder holds it; the demo's settings by default),
ingests it and runs ``liquidation_backtest`` with weekly training cutoffs from day 31 to
day 60 and the test cutoff at day 74 (labels: a liquidation within 7 days; population:
accounts active in the 30 days before the cutoff). Prints AUC and top-decile lift of the
model and of max leverage over 30 days, and the time taken.
"""

from __future__ import annotations

import argparse
import time
from datetime import date, timedelta
from pathlib import Path

import pandas as pd

from traderseg.analysis.liquidation import liquidation_backtest
from traderseg.ingest import ingest
from traderseg.simulate import simulate_venue

START = date(2024, 1, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--accounts", type=int, default=3000)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--difficulty", default="realistic")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    work = args.workdir
    db = work / "venue.duckdb"
    if not db.exists():
        simulate_venue(work / "sim", accounts=args.accounts, days=args.days, seed=args.seed,
                       start=START, difficulty=args.difficulty)
        ingest([work / "sim"], db)
    day = lambda d: (START + timedelta(days=d)).isoformat()  # noqa: E731
    cutoffs = [day(d) for d in (31, 38, 45, 52, 60)] + [day(74)]
    t = time.perf_counter()
    bt = liquidation_backtest(db, cutoffs, n_threads=args.threads)
    took = time.perf_counter() - t
    pd.set_option("display.width", 120)
    print(f"venue: {args.accounts} accounts, {args.days} days, seed {args.seed}, "
          f"{args.difficulty}; cutoffs {', '.join(cutoffs)}")
    print(f"test: {len(bt.predictions):,} accounts, base rate {bt.base_rate:.1%}; "
          f"train: {bt.n_train:,} rows")
    print(bt.metrics.round(3).to_string())
    print(f"AUC ratio model / leverage rule: "
          f"{bt.metrics.loc['model', 'auc'] / bt.metrics.loc['leverage_rule', 'auc']:.3f}; "
          f"{took:.0f}s")


if __name__ == "__main__":
    main()
