"""Benchmark of the service: account lookup latency under load, audience export of 100k.

1. **Lookup**: a venue is simulated, ingested and segmented once (kept in the work folder),
   ``traderseg serve`` runs it with uvicorn on 127.0.0.1 in a child process, and an
   open-loop load generator sends ``GET /v1/accounts/{id}`` for random accounts at a fixed
   rate (200 and 500 requests/s by default) for ``--seconds`` each. Open loop: a request
   is sent at its scheduled time whether or not earlier ones have answered, and its
   latency runs from that scheduled time, so a stalled server shows in the figures
   instead of slowing the sender down. At most ``--max-in-flight`` requests are
   outstanding (bounded); a request that would exceed it counts as dropped.
2. **Export**: the same app, in this process with uvicorn in a thread, with its account
   book replaced by ``--export-accounts`` synthetic accounts (the columns of a real book);
   ``GET /v1/audiences/export`` is streamed to the end. Time and the peak growth of this
   process's resident memory during the export are reported.

Usage::

    python bench/bench_service.py                       # 2000 accounts, 200 and 500 rps
    python bench/bench_service.py --rates 200,500,800 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import psutil

START = date(2024, 1, 1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(work: Path, accounts: int, days: int) -> tuple[Path, Path]:
    from traderseg.ingest import ingest
    from traderseg.segment.workflow import fit_segments
    from traderseg.simulate import simulate_venue

    root = work / f"venue-{accounts}-{days}d"
    db, model = root / "venue.duckdb", root / "model"
    if (root / "ready").exists():
        return db, model
    root.mkdir(parents=True, exist_ok=True)
    simulate_venue(root / "sim", accounts=accounts, days=days, seed=3, start=START)
    ingest([root / "sim"], db)
    fit_segments(db, (START + timedelta(days=(2 * days) // 3)).isoformat(), model,
                 random_state=0)
    (root / "ready").touch()
    return db, model


def account_ids(db: Path) -> list[str]:
    from traderseg.store import connect

    con = connect(db, read_only=True)
    try:
        return [r[0] for r in con.execute("SELECT DISTINCT account_id FROM fills").fetchall()]
    finally:
        con.close()


async def open_loop(base: str, token: str, ids: list[str], rate: float, seconds: float,
                    max_in_flight: int) -> dict[str, float]:
    limits = httpx.Limits(max_connections=max_in_flight, max_keepalive_connections=max_in_flight)
    latencies: list[float] = []
    errors = dropped = 0
    in_flight = 0
    rng = random.Random(0)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30,
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        await client.get(f"/v1/accounts/{ids[0]}")  # the key's one slow check, done once

        async def one(scheduled: float, account: str) -> None:
            nonlocal errors, in_flight
            try:
                r = await client.get(f"/v1/accounts/{account}")
                if r.status_code != 200:
                    errors += 1
            except httpx.HTTPError:
                errors += 1
            finally:
                in_flight -= 1
            latencies.append(time.perf_counter() - scheduled)

        n = int(rate * seconds)
        t0 = time.perf_counter() + 0.1
        tasks = []
        for i in range(n):
            scheduled = t0 + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if in_flight >= max_in_flight:
                dropped += 1
                continue
            in_flight += 1
            tasks.append(asyncio.create_task(one(scheduled, rng.choice(ids))))
        await asyncio.gather(*tasks)
        achieved = len(tasks) / (time.perf_counter() - t0)
    ms = np.array(latencies) * 1000
    return {"rate": rate, "sent": len(tasks), "achieved_rps": round(achieved, 1),
            "p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p99_ms": round(float(np.percentile(ms, 99)), 2),
            "max_ms": round(float(ms.max()), 2), "errors": errors, "dropped": dropped}


def lookup_bench(db: Path, model: Path, work: Path, rates: list[float], seconds: float,
                 max_in_flight: int) -> list[dict[str, float]]:
    from traderseg.service.keys import KeyStore

    keys = work / "bench-keys.json"
    token = KeyStore(keys).create("risk", "bench")[1]
    ids = account_ids(db)  # before the service holds the store's lock
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "traderseg", "serve", "--db", str(db),
                             "--model", str(model), "--venue", "bench", "--keys", str(keys),
                             "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600
        while True:
            try:
                if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the service did not start")
            time.sleep(0.5)
        return [asyncio.run(open_loop(base, token, ids, r, seconds, max_in_flight))
                for r in rates]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def synthetic_accounts(book_accounts: pd.DataFrame, n: int) -> pd.DataFrame:
    """``n`` accounts drawn (with replacement) from a real book, under new ids."""
    rng = np.random.default_rng(0)
    rows = book_accounts.iloc[rng.integers(0, len(book_accounts), n)].copy()
    rows.index = pd.Index([f"x{i:07d}" for i in range(n)], name="account_id")
    return rows


def export_bench(db: Path, model: Path, work: Path, n: int, repeats: int) -> dict[str, float]:
    import uvicorn

    from traderseg.service import ServiceSettings, VenueStore, create_app
    from traderseg.service.keys import KeyStore

    keys = work / "bench-keys.json"
    token = KeyStore(keys).create("growth", "bench")[1]
    app = create_app(ServiceSettings(venues={"bench": VenueStore(db=db, model=model)},
                                     keys_file=keys))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    while True:
        try:
            if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.5)
    venue = app.state.service.venues["bench"]
    venue.book.accounts = synthetic_accounts(venue.book.accounts, n)
    me = psutil.Process(os.getpid())
    times, peaks, rows = [], [], 0
    try:
        for _ in range(repeats):
            base_rss = me.memory_info().rss
            peak = [base_rss]
            done = threading.Event()

            def sample(peak: list[int] = peak, done: threading.Event = done) -> None:
                while not done.is_set():
                    peak[0] = max(peak[0], me.memory_info().rss)
                    time.sleep(0.005)

            sampler = threading.Thread(target=sample)
            sampler.start()
            t0 = time.perf_counter()
            size = 0
            lines = 0
            with httpx.stream("GET", base + "/v1/audiences/export", timeout=300,
                              headers={"Authorization": f"Bearer {token}"}) as r:
                for chunk in r.iter_bytes():
                    size += len(chunk)
                    lines += chunk.count(b"\n")
            times.append(time.perf_counter() - t0)
            done.set()
            sampler.join()
            peaks.append((peak[0] - base_rss) / 2**20)
            rows = lines - 1
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    return {"accounts": n, "rows": rows, "bytes": size,
            "median_s": round(statistics.median(times), 3),
            "peak_rss_growth_mb_median": round(statistics.median(peaks), 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, default=Path("bench-out/service"))
    p.add_argument("--accounts", type=int, default=2000)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--rates", default="200,500")
    p.add_argument("--seconds", type=float, default=15)
    p.add_argument("--max-in-flight", type=int, default=256)
    p.add_argument("--export-accounts", type=int, default=100_000)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    db, model = prepare(args.work, args.accounts, args.days)
    rates = [float(r) for r in args.rates.split(",")]
    out = {"lookup": lookup_bench(db, model, args.work, rates, args.seconds,
                                  args.max_in_flight),
           "export": export_bench(db, model, args.work, args.export_accounts, args.repeats),
           "cpus": os.cpu_count()}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
