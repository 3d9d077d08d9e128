"""Time the venue simulator and its peak memory.

    python bench/bench_simulate.py                       # ~10M fills (28,000 accounts, 60 days)
    python bench/bench_simulate.py --accounts 140000     # ~50M fills, memory stays bounded

Prints wall time, fills, fills per second and the peak resident memory of the process.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
from pathlib import Path

from traderseg.simulate import simulate_venue


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--accounts", type=int, default=28_000)
    ap.add_argument("--days", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--chunk-accounts", type=int, default=2_000)
    ap.add_argument("--out", type=Path, default=None, help="keep the output here")
    args = ap.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-sim-"))
    try:
        s = simulate_venue(
            out, accounts=args.accounts, days=args.days, seed=args.seed,
            chunk_accounts=args.chunk_accounts,
        )
        size = sum(p.stat().st_size for p in out.rglob("*.parquet"))
    finally:
        if args.out is None:
            shutil.rmtree(out, ignore_errors=True)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"accounts={s.accounts} days={s.days} parts={s.parts}")
    print(f"fills={s.fills:,} seconds={s.seconds:.1f} fills_per_second={s.fills_per_second:,.0f}")
    print(f"peak_rss_mb={peak_mb:,.0f} parquet_mb={size / 2**20:,.0f}")


if __name__ == "__main__":
    main()
