"""Throughput of the simulator's live mode at --rate 0: fills/s to Redis and to JSONL.

    python bench/bench_live.py                      # ~260k fills (1,500 accounts, 30 days)
    python bench/bench_live.py --accounts 5000

A venue is simulated once; its fills are read in time order once (``live_fills``, timed on
its own), then written from memory three times to each target: a Redis stream on a
redis-server started here on 127.0.0.1 (``XADD`` with explicit ids, one pipeline per batch
of 500, hiredis parser) and a JSONL file (flushed per batch). Prints the median and the
three runs in fills/s, and the ratio of the two.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from helpers.redis_server import RedisServer, free_port, redis_binary  # noqa: E402
from traderseg.simulate import simulate_venue  # noqa: E402
from traderseg.simulate.live import JsonlSink, RedisSink, live_fills, write_live  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--accounts", type=int, default=1_500)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    import hiredis  # noqa: F401  (fail early: the figure is for the hiredis parser)

    tmp = Path(tempfile.mkdtemp(prefix="bench-live-"))
    binary = redis_binary()
    if binary is None:
        sys.exit("redis-server is not installed")
    server = RedisServer(binary, free_port(), tmp)
    try:
        s = simulate_venue(tmp / "venue", accounts=args.accounts, days=args.days, seed=0)
        t = time.perf_counter()
        fills = list(live_fills(tmp / "venue"))
        read_s = time.perf_counter() - t
        print(f"fills={len(fills):,} (simulated in {s.seconds:.1f}s); live_fills read them in "
              f"time order at {len(fills) / read_s:,.0f} fills/s")
        server.start()
        results = {}
        for target in ("redis", "jsonl"):
            rates = []
            for run in range(args.runs):
                if target == "redis":
                    sink = RedisSink(f"{server.url}/bench-{run}")
                else:
                    sink = JsonlSink(tmp / f"bench-{run}.jsonl")
                res = write_live(fills, sink, rate=0)
                sink.close()
                assert res.written == len(fills)
                rates.append(res.fills_per_second)
            results[target] = statistics.median(rates)
            runs = ", ".join(f"{r:,.0f}" for r in rates)
            print(f"{target}: median {results[target]:,.0f} fills/s (runs {runs})")
        print(f"redis / jsonl = {results['redis'] / results['jsonl']:.2f}")
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
