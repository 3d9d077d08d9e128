"""Policy evaluation throughput: accounts per second of ``Policy.evaluate``.

Usage::

    python bench/bench_policy.py [--policy examples/policy.yaml] [--sizes 100,1000,10000,100000]

Random decision inputs (segments, lifecycle stages, value tiers, risk scores, KYC tiers,
regions, predictions; a tenth of each input missing) are evaluated with the example
policy; for each batch size it prints the median of ``--repeats`` runs and accounts/s.
The stream calls ``evaluate`` on each micro-batch of touched accounts, so small batches
matter as much as large ones. A row-by-row evaluation (each row a one-row frame) on the
smallest size gives the ratio the vectorised form gains.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd

from traderseg.policy import load_policy
from traderseg.policy.schema import VALUE_TIER_NAMES
from traderseg.segment.overlays import LIFECYCLE_STAGES

ROOT = Path(__file__).resolve().parents[1]
NAMES = ["option premium sellers", "active perp scalpers", "occasional spot holders",
         "high-leverage perp takers", "short-dated OTM call buyers"]


def random_inputs(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)

    def holes(values):
        values = pd.Series(values, dtype=object if not np.issubdtype(np.asarray(values).dtype, np.number) else float)
        values[rng.random(n) < 0.1] = None if values.dtype == object else np.nan
        return values

    seg = rng.integers(0, len(NAMES), n)
    return pd.DataFrame({
        "account_id": [f"a{i:07d}" for i in range(n)],
        "segment_id": seg, "segment_name": np.asarray(NAMES, dtype=object)[seg],
        "membership": rng.uniform(0.3, 1.0, n),
        "lifecycle_stage": holes(rng.choice(LIFECYCLE_STAGES, n)),
        "value_tier": holes(rng.choice(VALUE_TIER_NAMES, n)),
        "risk_score": holes(rng.uniform(0, 100, n)),
        "kyc_tier": holes(rng.integers(0, 4, n).astype(float)),
        "region": holes(rng.choice(["EU", "APAC", "LATAM", "NA"], n)),
        "churn_probability": holes(rng.uniform(0, 1, n)),
        "liquidation_risk": holes(rng.beta(1, 8, n)),
    })


def median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policy", type=Path, default=ROOT / "examples" / "policy.yaml")
    ap.add_argument("--sizes", default="100,1000,10000,100000")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    policy = load_policy(args.policy)
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"policy {policy.version}: {len(policy.rules)} rules")
    print(f"{'accounts':>10} {'median s':>10} {'accounts/s':>12}")
    for n in sizes:
        x = random_inputs(n)
        s = median_seconds(lambda x=x: policy.evaluate(x), args.repeats)
        print(f"{n:>10,} {s:>10.4f} {n / s:>12,.0f}")
    n = min(sizes)
    x = random_inputs(n)
    rows = [x.iloc[[i]] for i in range(n)]
    s_rows = median_seconds(lambda: [policy.evaluate(r) for r in rows], max(1, args.repeats // 2))
    s_vec = median_seconds(lambda: policy.evaluate(x), args.repeats)
    print(f"row by row on {n:,} accounts: {n / s_rows:,.0f} accounts/s; vectorised is "
          f"{s_rows / s_vec:,.0f}x faster")


if __name__ == "__main__":
    main()
