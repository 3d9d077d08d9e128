"""Benchmark of the service: account lookup latency under load, audience export of 100k.

1. **Lookup**: a venue is simulated, ingested and segmented once (kept in the work folder),
   ``traderseg serve`` runs it with uvicorn on 127.0.0.1 in a child process, and an
   open-loop load generator sends ``GET /v1/accounts/{id}`` for random accounts at a fixed
   rate (200 and 500 requests/s by default) for ``--seconds`` each, over ``--connections``
   keep-alive connections. Open loop: a request is due at its scheduled time whether or
   not earlier ones have answered, and its latency runs from that scheduled time, so a
   stalled server shows in the figures instead of slowing the sender down. At most
   ``--max-queued`` requests wait for a connection (bounded); one more counts as dropped.
2. **Export**: the same app, in this process with uvicorn in a thread, with its account
   book replaced by ``--export-accounts`` synthetic accounts (the columns of a real book);
   ``GET /v1/audiences/export`` is streamed to the end. Time and the peak growth of this
   process's resident memory during the export are reported.

Usage::

    python bench/bench_service.py                       # 2000 accounts, 200 and 500 rps, 3 runs
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


async def open_loop(host: str, port: int, token: str, ids: list[str], rate: float,
                    seconds: float, connections: int, max_queued: int) -> dict[str, float]:
    """Send ``GET /v1/accounts/{id}`` at ``rate`` per second for ``seconds``.

    Requests are scheduled at fixed times and queued; ``connections`` keep-alive HTTP/1.1
    connections take them in turn. A request's latency runs from its scheduled time, so
    time spent waiting for a free connection counts (no coordinated omission). At most
    ``max_queued`` requests wait at once: one more is counted as dropped. The client is a
    few lines over asyncio streams so that it costs the server's core as little as
    possible; both run on this machine.
    """
    queue: asyncio.Queue[tuple[float, str] | None] = asyncio.Queue()
    latencies: list[float] = []
    errors = dropped = 0

    async def connection() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while (item := await queue.get()) is not None:
                scheduled, account = item
                writer.write(f"GET /v1/accounts/{account} HTTP/1.1\r\nHost: {host}\r\n"
                             f"Authorization: Bearer {token}\r\n\r\n".encode())
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - scheduled)
                if head[9:12] != b"200":
                    errors += 1
        finally:
            writer.close()

    workers = [asyncio.create_task(connection()) for _ in range(connections)]
    await asyncio.sleep(0.2)  # connections open before the clock starts
    rng = random.Random(0)
    t0 = time.perf_counter() + 0.05
    for i in range(int(rate * seconds)):
        scheduled = t0 + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if queue.qsize() >= max_queued:
            dropped += 1
            continue
        queue.put_nowait((scheduled, rng.choice(ids)))
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    elapsed = time.perf_counter() - t0
    ms = np.array(latencies) * 1000
    return {"rate": rate, "answered": len(latencies),
            "achieved_rps": round(len(latencies) / elapsed, 1),
            "p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p99_ms": round(float(np.percentile(ms, 99)), 2),
            "max_ms": round(float(ms.max()), 2), "errors": errors, "dropped": dropped}


def lookup_bench(db: Path, model: Path, work: Path, rates: list[float], seconds: float,
                 connections: int, max_queued: int) -> list[dict[str, float]]:
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
        # the key's one slow check (scrypt), done once before the clock starts
        httpx.get(f"{base}/v1/accounts/{ids[0]}", headers={"Authorization": f"Bearer {token}"})
        return [asyncio.run(open_loop("127.0.0.1", port, token, ids, r, seconds, connections,
                                      max_queued)) for r in rates]
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
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--max-queued", type=int, default=5000)
    p.add_argument("--export-accounts", type=int, default=100_000)
    p.add_argument("--repeats", type=int, default=3, help="Exports timed.")
    p.add_argument("--runs", type=int, default=3,
                   help="Lookup runs (a fresh server each), medians reported.")
    args = p.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    db, model = prepare(args.work, args.accounts, args.days)
    rates = [float(r) for r in args.rates.split(",")]
    runs = [lookup_bench(db, model, args.work, rates, args.seconds, args.connections,
                         args.max_queued) for _ in range(args.runs)]
    lookup = []
    for i, rate in enumerate(rates):
        each = [run[i] for run in runs]
        lookup.append({"rate": rate, "runs": len(each),
                       **{f"{k}_median": statistics.median(r[k] for r in each)
                          for k in ("achieved_rps", "p50_ms", "p99_ms", "max_ms")},
                       "p99_ms_each": [r["p99_ms"] for r in each],
                       "errors": sum(r["errors"] for r in each),
                       "dropped": sum(r["dropped"] for r in each)})
    out = {"lookup": lookup,
           "export": export_bench(db, model, args.work, args.export_accounts, args.repeats),
           "cpus": os.cpu_count()}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
