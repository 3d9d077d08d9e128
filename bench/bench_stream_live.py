"""The stream consumer on a live-paced stream: fill times are the wall clock, as a venue's are.

    python bench/bench_stream_live.py [--accounts 1000] [--days 15] [--runs 3]
        [--fills 400000] [--data-rate 100000] [--rates 5000,20000] [--decide-every 1]

``bench_stream.py`` replays a simulated venue as fast as it can: fifteen days of data time
pass in seconds, so every 15-minute decision interval closes after a few dozen fills and
the consumer decides about 0.6 times a fill. A live venue's fills carry the time they
happened. Here:

1. the simulated venue is moved in time (whole days, so its UTC days stay days) to end at
   the start of today, and replayed into a store: the accounts' history and online state,
   as a consumer finds them when it takes over a running venue;
2. **sustained rate**: ``--fills`` live fills (the venue's fills again, with new ids, in
   turn) are written to a Redis stream first, stamped ``1 / --data-rate`` seconds apart
   (the venue trades ``--data-rate`` fills a second); one consumer then reads them as fast
   as it can, deciding every ``--decide-every`` seconds of data time and checkpointing every
   second (the default), and the fills per second of wall time are reported (medians of
   ``--runs``); then the same with two consumers in two processes, each on the stream of
   its account partition;
3. **latency**: producers in other processes write live fills at each of ``--rates`` fills
   per second, each stamped with the time of its XADD, to one consumer or to two (two
   account partitions); each consumer decides every ``--decide-every`` seconds; reported
   are the times from the XADD of the fill that closes an interval to that interval's
   decisions, and from each entry's XADD to its commit (p50 / p99), with checkpoints every
   ``--checkpoint-every`` seconds.

Options of live fills keep their tenor (the expiry moves with the fill). The redis-server of
the system is started on 127.0.0.1 and a free port and stopped after.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from bench_stream import POLICY, hash_part, setup  # noqa: E402
from helpers.redis_server import RedisServer, free_port, redis_binary  # noqa: E402

US = 1_000_000


def today_start() -> datetime:
    now = datetime.now(UTC)
    return datetime(now.year, now.month, now.day, tzinfo=UTC)


def shifted_history(paths, out: Path) -> tuple[Path, Path]:
    """The venue's fills moved to end at the start of today, and a store replayed from them."""
    import duckdb

    from traderseg.online.consumer import StreamConfig, StreamConsumer
    from traderseg.online.run import build_engine
    from traderseg.online.sources import ReplaySource
    from traderseg.store import connect

    day = today_start().date().isoformat()
    folder = out / f"live-history-{day}"
    store = out / f"live-history-{day}.duckdb"
    if store.exists() and folder.exists():
        return folder, store
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    src = str(paths["fills"] / "*.parquet")
    last = con.execute(f"SELECT max(ts)::DATE FROM read_parquet('{src}')").fetchone()[0]
    shift = (today_start().date() - last).days - 1  # the last day becomes yesterday
    con.execute(f"COPY (SELECT * REPLACE (ts + INTERVAL {shift} DAY AS ts, "
                f"expiry + INTERVAL {shift} DAY AS expiry) FROM read_parquet('{src}') "
                f"ORDER BY ts, fill_id) TO '{folder / 'fills.parquet'}' (FORMAT parquet)")
    con.close()
    tmp = store.with_suffix(".tmp.duckdb")
    shutil.copy(paths["empty"], tmp)
    con = connect(tmp)
    eng = build_engine(con, paths["model"], paths["policy"])
    StreamConsumer(con, ReplaySource(folder), eng, StreamConfig(decide_every_s=86400.0),
                   source_label="history").run()
    con.close()
    tmp.rename(store)
    return folder, store


def live_records(history: Path, n: int, *, part=None):
    """``n`` live fills: the history's fills in turn, each with a new id (its round)."""
    from traderseg.simulate.live import live_fills

    base = list(live_fills(history))
    if part is not None:
        base = [f for f in base if hash_part(f["account_id"], part[1]) == part[0]]
    k = 0
    while True:
        for f in base:
            if k >= n:
                return
            yield k // len(base), f
            k += 1


def stamped(f: dict, rnd: int, at: datetime) -> dict:
    g = dict(f)
    g["fill_id"] = f"L{rnd}-{f['fill_id']}"
    if g.get("expiry") is not None:
        g["expiry"] = g["expiry"] + (at - f["ts"])
    g["ts"] = at
    return g


def produce(url: str, stream: str, history: Path, n: int, *, rate: float, pack: int,
            data_rate: float | None = None, part=None) -> float:
    """XADD ``n`` live fills ``pack`` to an entry, 200 fills a pipeline.

    With ``data_rate`` the fills are stamped that many a second from just before now and
    written as fast as Redis takes them; otherwise each is stamped with the time of its
    pipeline and the writes are paced at ``rate`` fills a second.
    """
    import redis

    from traderseg.simulate.fillcodec import encode_fill, encode_packed

    client = redis.Redis.from_url(url)
    pipe = client.pipeline(transaction=False)
    t0 = time.perf_counter()
    start = None
    if data_rate:
        start = max(datetime.now(UTC) - timedelta(seconds=n / data_rate + 1.0),
                    today_start() + timedelta(seconds=1))
    sent, held = 0, []
    now = datetime.now(UTC)
    for rnd, f in live_records(history, n, part=part):
        at = start + timedelta(microseconds=int(sent * US / data_rate)) if start else now
        held.append(stamped(f, rnd, at))
        sent += 1
        if len(held) == 200:
            _flush(pipe, stream, held, pack, encode_fill, encode_packed)
            held = []
            if rate > 0:
                wait = t0 + sent / rate - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
            now = datetime.now(UTC)
    _flush(pipe, stream, held, pack, encode_fill, encode_packed)
    client.close()
    return sent / (time.perf_counter() - t0)


def _flush(pipe, stream, held, pack, encode_fill, encode_packed) -> None:
    if pack == 1:
        for f in held:
            pipe.xadd(stream, encode_fill(f))
    else:
        for k in range(0, len(held), pack):
            pipe.xadd(stream, encode_packed(held[k:k + pack]))
    pipe.execute()


def consume(url: str, stream: str, paths, store: Path, db: Path, *, decide_every: float,
            record_latency: bool = False, idle_stop_s: float = 3.0,
            checkpoint_s: float = 0.05, batch_size: int | None = None):
    from traderseg.online.consumer import StreamConfig, StreamConsumer
    from traderseg.online.run import build_engine
    from traderseg.online.sources import RedisSource
    from traderseg.store import connect

    shutil.copy(store, db)
    con = connect(db)
    eng = build_engine(con, paths["model"], paths["policy"])
    cfg = StreamConfig(decide_every_s=decide_every, idle_stop_s=idle_stop_s,
                       checkpoint_s=checkpoint_s, record_latency=record_latency, block_ms=20,
                       **({} if batch_size is None else {"batch_size": batch_size}))
    consumer = StreamConsumer(con, RedisSource(f"{url}/{stream}"), eng, cfg,
                              source_label="live")  # the history's state is loaded here
    t = time.perf_counter()
    st = consumer.run()
    wall = time.perf_counter() - t - idle_stop_s
    con.close()
    return st, wall


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--accounts", type=int, default=1000)
    ap.add_argument("--days", type=int, default=15)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--fills", type=int, default=400_000, help="live fills of a sustained run")
    ap.add_argument("--data-rate", type=float, default=100_000.0,
                    help="fills a second of data time in the sustained runs")
    ap.add_argument("--rates", default="5000,20000", help="offered fills/s of the latency runs")
    ap.add_argument("--seconds", type=float, default=10.0, help="length of a latency run")
    ap.add_argument("--decide-every", type=float, default=1.0,
                    help="decision interval, seconds of data time")
    ap.add_argument("--pack", type=int, default=100, help="fills per packed Redis entry")
    ap.add_argument("--checkpoint-every", type=float, default=0.05)
    ap.add_argument("--batch-size", type=int, help="most fills a read takes (default: the "
                    "library's)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "stream")
    ap.add_argument("--child", nargs=4, metavar=("URL", "STREAM", "DB", "PART"),
                    help=argparse.SUPPRESS)
    ap.add_argument("--produce", nargs=6, help=argparse.SUPPRESS)
    ap.add_argument("--child-sustained", nargs=3, metavar=("URL", "STREAM", "DB"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args()
    paths = setup(args.out, args.accounts, args.days, POLICY)
    history, store = shifted_history(paths, args.out)
    if args.produce:  # URL STREAM N RATE PART PARTS
        url, stream, n, rate, p, parts = args.produce
        print(produce(url, stream, history, int(n), rate=float(rate), pack=args.pack,
                      part=(int(p), int(parts)) if int(parts) > 1 else None))
        return
    if args.child_sustained:
        url, stream, db = args.child_sustained
        st, wall = consume(url, stream, paths, store, Path(db), decide_every=args.decide_every,
                           checkpoint_s=1.0, batch_size=args.batch_size)
        print(json.dumps({"accepted": st.accepted, "wall": wall, "decisions": st.decisions}))
        return
    if args.child:
        url, stream, db, _ = args.child
        st, wall = consume(url, stream, paths, store, Path(db), decide_every=args.decide_every,
                           record_latency=True, idle_stop_s=8.0,
                           checkpoint_s=args.checkpoint_every, batch_size=args.batch_size)
        print(json.dumps({"accepted": st.accepted, "wall": wall, "decisions": st.decisions,
                          "commit": st.latencies_ms, "decision": st.decision_latencies_ms}))
        return

    binary = redis_binary()
    if binary is None:
        sys.exit("redis-server not installed")
    server = RedisServer(binary, free_port(), args.out)
    server.start()
    try:
        url = server.url
        print(f"venue: {args.accounts} accounts, {args.days} days of history ending yesterday; "
              f"decisions every {args.decide_every:g} s of data time; {args.pack} fills an "
              "entry", flush=True)
        rates, decided = [], []
        for k in range(args.runs):
            stream = f"sustained{k}"
            xadd = produce(url, stream, history, args.fills, rate=0.0, pack=args.pack,
                           data_rate=args.data_rate)
            # checkpoints at the library's default (every second of wall time)
            st, wall = consume(url, stream, paths, store, args.out / "live.duckdb",
                               decide_every=args.decide_every, checkpoint_s=1.0,
                               batch_size=args.batch_size)
            rates.append(st.accepted / wall)
            decided.append(st.decisions / max(st.accepted, 1))
            print(f"  sustained run {k + 1}: XADD {xadd:,.0f} fills/s; consumer "
                  f"{st.accepted:,} fills in {wall:.2f} s, {st.decisions:,} decisions",
                  flush=True)
        print(f"sustained, 1 consumer, data time {args.data_rate:,.0f} fills/s: median "
              f"{statistics.median(rates):,.0f} fills/s ({[round(r) for r in rates]}); "
              f"{statistics.median(decided):.4f} decisions a fill", flush=True)
        sustained_two(url, args, history)
        for rate in [float(r) for r in args.rates.split(",") if r]:
            for consumers in (1, 2):
                paced(url, args, rate, consumers)
    finally:
        server.stop()


def _common(args) -> list[str]:
    return [sys.executable, __file__, "--out", str(args.out), "--accounts", str(args.accounts),
            "--days", str(args.days), "--decide-every", str(args.decide_every), "--pack",
            str(args.pack), "--checkpoint-every", str(args.checkpoint_every),
            *([] if args.batch_size is None else ["--batch-size", str(args.batch_size)])]


def sustained_two(url: str, args, history: Path) -> None:
    """Two consumers in two processes, each on its account partition's stream, written first.

    Each partition's fills are stamped over the same data time as one consumer's run (the
    venue trades ``--data-rate`` fills a second in all); fills per second of the whole is
    the fills of both over the slower one's wall time.
    """
    rates = []
    for k in range(args.runs):
        streams = [f"two{k}-{p}-{time.time_ns()}" for p in range(2)]
        for p, s in enumerate(streams):
            produce(url, s, history, args.fills // 2, rate=0.0, pack=args.pack,
                    data_rate=args.data_rate / 2, part=(p, 2))
        procs = [subprocess.Popen([*_common(args), "--child-sustained", url, s,
                                   str(args.out / f"live-two{p}.duckdb")],
                                  stdout=subprocess.PIPE, text=True)
                 for p, s in enumerate(streams)]
        outs = [json.loads(p.communicate()[0].splitlines()[-1]) for p in procs]
        total = sum(o["accepted"] for o in outs)
        rates.append(total / max(o["wall"] for o in outs))
        print(f"  two consumers, run {k + 1}: {total:,} fills, each "
              f"{[round(o['accepted'] / o['wall']) for o in outs]} fills/s", flush=True)
    print(f"sustained, 2 consumers (2 partitions, 2 processes): median "
          f"{statistics.median(rates):,.0f} fills/s of the whole ({[round(r) for r in rates]})",
          flush=True)


def paced(url: str, args, rate: float, consumers: int) -> None:
    common = _common(args)
    tag = f"live{rate:g}-c{consumers}-{time.time_ns()}"
    streams = [f"{tag}-{p}" for p in range(consumers)]
    cons = [subprocess.Popen([*common, "--child", url, s, str(args.out / f"live{p}.duckdb"),
                              str(p)], stdout=subprocess.PIPE, text=True)
            for p, s in enumerate(streams)]
    time.sleep(3.0)  # the consumers load the history's state
    n = int(rate * args.seconds / consumers)
    prods = [subprocess.Popen([*common, "--produce", url, s, str(n), str(rate / consumers),
                               str(p), str(consumers)], stdout=subprocess.PIPE, text=True)
             for p, s in enumerate(streams)]
    sent = [float(p.communicate()[0].split()[-1]) for p in prods]
    outs = [json.loads(c.communicate()[0].splitlines()[-1]) for c in cons]
    dec = np.concatenate([o["decision"] for o in outs])
    lat = np.concatenate([o["commit"] for o in outs])
    got = sum(o["accepted"] for o in outs)
    decisions = sum(o["decisions"] for o in outs)
    print(f"{rate:,.0f} fills/s offered to {consumers} consumer(s) (producers reached "
          f"{sum(sent):,.0f} fills/s; {got:,} fills stored, {decisions:,} decisions):\n"
          f"    XADD of an interval's closing fill to its decisions: p50 "
          f"{np.percentile(dec, 50):.1f} ms, p99 {np.percentile(dec, 99):.1f} ms, max "
          f"{dec.max():.1f} ms over {len(dec):,} intervals\n"
          f"    XADD to commit: p50 {np.percentile(lat, 50):.1f} ms, p99 "
          f"{np.percentile(lat, 99):.1f} ms over {len(lat):,} entries", flush=True)


if __name__ == "__main__":
    main()
