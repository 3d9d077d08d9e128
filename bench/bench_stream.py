"""Stream consumer throughput and latency, embedded replay and a real Redis server.

    python bench/bench_stream.py [--accounts 2000] [--days 20] [--runs 3] [--out bench/out/stream]

Builds a simulated venue, fits a segment model on its first two thirds, then measures:

- embedded replay (file -> validate -> store -> online features -> assign -> policy ->
  state and audit write), fills per second, medians of ``--runs``;
- a Redis stream consumed by one consumer (XADD of every fill first, then the consumer
  to an idle stop), and by two consumers in two processes on two account partitions (two
  streams, two stores: a store has one writer), fills per second of the whole;
- latency with producers (other processes) pacing fills at each of ``--rates`` per second
  in all, read by one consumer or by two (two account partitions, each half the rate),
  with checkpoints every ``--checkpoint-every`` seconds: from the XADD of the fill that
  closes a decision interval to that interval's decisions, and from each entry's XADD to
  the commit that stores, acknowledges and publishes it (p50 / p99).

The Redis figures come twice: with one fill an entry (its fields the encoded columns) and
with packed entries of ``--pack`` fills (one field of JSON lines).

The redis-server of the system is started on 127.0.0.1 and a free port and stopped after.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from helpers.redis_server import RedisServer, free_port, redis_binary  # noqa: E402

POLICY = ROOT / "examples" / "policy.yaml"


def setup(out: Path, accounts: int, days: int, policy: Path) -> dict[str, Path]:
    from traderseg.ingest import ingest
    from traderseg.segment.workflow import fit_segments
    from traderseg.simulate import simulate_venue

    sim = out / "sim"
    if not (out / "model").exists():
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        simulate_venue(sim, accounts=accounts, days=days, seed=11, difficulty="realistic")
        ingest([sim], out / "history.duckdb")
        import pandas as pd

        fit_at = (pd.Timestamp("2024-01-01") + pd.Timedelta(days=days * 2 // 3)).date()
        fit_segments(out / "history.duckdb", str(fit_at), out / "model")
        ingest([p for p in sim.iterdir() if p.name not in ("fills", "truth.parquet")],
               out / "empty.duckdb")
    return {"fills": sim / "fills", "empty": out / "empty.duckdb", "model": out / "model",
            "policy": policy}


def replay_once(paths, db: Path, decide_every_s: float) -> tuple[float, int, float]:
    from traderseg.online.consumer import StreamConfig, StreamConsumer
    from traderseg.online.run import build_engine
    from traderseg.online.sources import ReplaySource
    from traderseg.store import connect

    shutil.copy(paths["empty"], db)
    con = connect(db)
    eng = build_engine(con, paths["model"], paths["policy"])
    src = ReplaySource(paths["fills"])
    t = time.perf_counter()
    st = StreamConsumer(con, src, eng, StreamConfig(decide_every_s=decide_every_s),
                        source_label="replay").run()
    wall = time.perf_counter() - t
    con.close()
    return st.accepted / wall, st.decisions, st.decide_seconds / wall


def flap(paths, db: Path, hysteresis) -> tuple[float, float, int]:
    """Segment changes per account-day of decisions, and the share reverting within 3 days."""
    import pandas as pd

    from traderseg.online.consumer import StreamConfig, StreamConsumer
    from traderseg.online.run import build_engine
    from traderseg.online.sources import ReplaySource
    from traderseg.store import connect

    shutil.copy(paths["empty"], db)
    con = connect(db)
    eng = build_engine(con, paths["model"], paths["policy"], hysteresis=hysteresis)
    seen = []
    inner = eng.decide_stacked

    def keep(*args):
        d = inner(*args)
        seen.append(d.rows[["account_id", "segment_id", "as_of"]])
        return d

    eng.decide_stacked = keep  # type: ignore[method-assign]
    StreamConsumer(con, ReplaySource(paths["fills"]), eng, StreamConfig(decide_every_s=3600),
                   source_label="replay").run()
    con.close()
    h = pd.concat(seen).sort_values(["account_id", "as_of"], kind="stable")
    h["prev"] = h.groupby("account_id")["segment_id"].shift(1)
    h["change"] = h["prev"].notna() & (h["prev"] != h["segment_id"])
    days = h.assign(day=h["as_of"].dt.floor("D")).drop_duplicates(["account_id", "day"])
    changes = h[h["change"]]
    reverted = 0
    for acct, g in changes.groupby("account_id"):
        rows = h[h["account_id"] == acct]
        for _, r in g.iterrows():
            later = rows[(rows["as_of"] > r["as_of"])
                         & (rows["as_of"] <= r["as_of"] + pd.Timedelta(days=3))]
            reverted += bool((later["segment_id"] == r["prev"]).any())
    return len(changes) / len(days), reverted / max(len(changes), 1), len(days)


def produce(url: str, stream: str, fills_dir: Path, *, part=None, rate: float = 0.0,
            pack: int = 1) -> float:
    """XADD the fills (one an entry, or ``pack`` to a packed entry), 200 a pipeline."""
    import redis

    from traderseg.simulate.fillcodec import encode_fill, encode_packed
    from traderseg.simulate.live import live_fills

    client = redis.Redis.from_url(url)
    pipe = client.pipeline(transaction=False)
    n, t0, per = 0, time.perf_counter(), 200
    held: list[dict] = []
    for f in live_fills(fills_dir):
        if part is not None and hash_part(f["account_id"], part[1]) != part[0]:
            continue
        if pack == 1:
            pipe.xadd(stream, encode_fill(f))
        else:
            held.append(f)
        n += 1
        if n % per == 0:
            if held:
                for k in range(0, len(held), pack):
                    pipe.xadd(stream, encode_packed(held[k:k + pack]))
                held = []
            pipe.execute()
            if rate > 0:
                due = t0 + n / rate
                wait = due - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
    for k in range(0, len(held), pack):
        pipe.xadd(stream, encode_packed(held[k:k + pack]))
    pipe.execute()
    client.close()
    return n / (time.perf_counter() - t0)


def hash_part(account: str, parts: int) -> int:
    import zlib

    return zlib.crc32(account.encode()) % parts


def consume(url: str, stream: str, paths, db: Path, *, record_latency: bool = False,
            idle_stop_s: float = 3.0, checkpoint_s: float = 0.05):
    from traderseg.online.consumer import StreamConfig, StreamConsumer
    from traderseg.online.run import build_engine
    from traderseg.online.sources import RedisSource
    from traderseg.store import connect

    shutil.copy(paths["empty"], db)
    con = connect(db)
    eng = build_engine(con, paths["model"], paths["policy"])
    src = RedisSource(f"{url}/{stream}")
    cfg = StreamConfig(decide_every_s=900, idle_stop_s=idle_stop_s, checkpoint_s=checkpoint_s,
                       record_latency=record_latency, block_ms=20)
    t = time.perf_counter()
    st = StreamConsumer(con, src, eng, cfg, source_label=f"{url}/{stream}").run()
    wall = time.perf_counter() - t - idle_stop_s
    con.close()
    return st, wall


def redis_runs(url: str, paths, args, pack: int) -> None:
    """One consumer, two consumers and the paced latency, with entries of ``pack`` fills."""
    form = "one fill an entry" if pack == 1 else f"{pack} fills an entry"
    tag = f"p{pack}-"
    xadd = produce(url, tag + "all", paths["fills"], pack=pack)
    print(f"[{form}] XADD (pipelined, hiredis): {xadd:,.0f} fills/s")
    one = []
    for k in range(args.runs):
        if k:
            produce(url, f"{tag}all{k}", paths["fills"], pack=pack)
        st, wall = consume(url, tag + "all" if k == 0 else f"{tag}all{k}", paths,
                           args.out / "redis1.duckdb")
        one.append(st.accepted / wall)
    print(f"[{form}] Redis, 1 consumer: median {statistics.median(one):,.0f} fills/s "
          f"({[round(x) for x in one]})")
    for p in range(2):
        produce(url, f"{tag}part{p}", paths["fills"], part=(p, 2), pack=pack)
    t = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, __file__, "--out", str(args.out),
                               "--accounts", str(args.accounts), "--days", str(args.days),
                               "--child", url, f"{tag}part{p}",
                               str(args.out / f"part{p}.duckdb")],
                              stdout=subprocess.PIPE, text=True) for p in range(2)]
    outs = [p.communicate()[0].split() for p in procs]
    total = sum(int(o[-2]) for o in outs)
    slowest = max(float(o[-1]) for o in outs)
    print(f"[{form}] Redis, 2 consumers (2 partitions, 2 processes): {total / slowest:,.0f} "
          f"fills/s of the whole (each {[round(int(o[-2]) / float(o[-1])) for o in outs]}); "
          f"wall {time.perf_counter() - t:.1f} s with start-up")
    # latency at paced rates: the producers are other processes (as a venue's matching engine
    # would be; in this process they would share the consumer's GIL). With two consumers,
    # the offered rate is split over two account partitions, each with its producer.
    for rate in args.rates:
        for consumers in (1, 2):
            for every in args.checkpoint_every:
                paced(url, paths, args, pack, rate, consumers, every, form)


def paced(url: str, paths, args, pack: int, rate: float, consumers: int, every: float,
          form: str) -> None:
    """Latency of ``consumers`` consumers with ``rate`` fills/s offered in all."""
    tag = f"p{pack}-paced{rate:g}-c{consumers}-e{every:g}"
    common = [sys.executable, __file__, "--out", str(args.out), "--accounts",
              str(args.accounts), "--days", str(args.days)]
    streams = [f"{tag}-{p}" for p in range(consumers)]
    cons = [subprocess.Popen([*common, "--child", url, stream,
                              str(args.out / f"paced{p}.duckdb"), "--child-paced", str(every)],
                             stdout=subprocess.PIPE, text=True)
            for p, stream in enumerate(streams)]
    time.sleep(2.0)  # the consumers start (they stop after 8 s without a message)
    prods = [subprocess.Popen([*common, "--produce", url, stream, str(rate / consumers),
                               str(pack), str(p), str(consumers)],
                              stdout=subprocess.PIPE, text=True)
             for p, stream in enumerate(streams)]
    sent = sum(float(p.communicate()[0].split()[-1]) for p in prods)
    outs = [json.loads(c.communicate()[0].splitlines()[-1]) for c in cons]
    lat = np.concatenate([o["commit"] for o in outs])
    dec = np.concatenate([o["decision"] for o in outs])
    got = sum(o["accepted"] for o in outs)
    print(f"[{form}] {rate:,.0f} fills/s offered to {consumers} consumer(s) ({sent:,.0f} "
          f"sent, {got:,} fills stored), checkpoint every {every:g} s:\n"
          f"    XADD of an interval's closing fill to its decisions: p50 "
          f"{np.percentile(dec, 50):.1f} ms, p99 {np.percentile(dec, 99):.1f} ms, max "
          f"{dec.max():.1f} ms over {len(dec):,} intervals\n"
          f"    XADD to commit (stored, acknowledged, published): p50 "
          f"{np.percentile(lat, 50):.1f} ms, p99 {np.percentile(lat, 99):.1f} ms, max "
          f"{lat.max():.1f} ms over {len(lat):,} entries", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--accounts", type=int, default=2000)
    ap.add_argument("--days", type=int, default=20)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rates", default="5000,20000",
                    help="offered fills/s of the latency runs, comma-separated")
    ap.add_argument("--pack", type=int, default=100, help="fills per packed Redis entry")
    ap.add_argument("--checkpoint-every", default="0.05,1",
                    help="checkpoint intervals (s) of the latency runs, comma-separated")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "stream")
    ap.add_argument("--policy", type=Path, default=POLICY)
    ap.add_argument("--child", nargs=3, metavar=("URL", "STREAM", "DB"), help=argparse.SUPPRESS)
    ap.add_argument("--produce", nargs="+", help=argparse.SUPPRESS)
    ap.add_argument("--child-paced", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.rates = [float(r) for r in args.rates.split(",") if r]
    args.checkpoint_every = [float(r) for r in args.checkpoint_every.split(",") if r]
    paths = setup(args.out, args.accounts, args.days, args.policy)
    if args.produce:  # URL STREAM RATE PACK [PART PARTS]
        url, stream, rate, pack, *part = args.produce
        print(produce(url, stream, paths["fills"], rate=float(rate), pack=int(pack),
                      part=(int(part[0]), int(part[1])) if part else None))
        return
    if args.child:
        url, stream, db = args.child
        if args.child_paced is None:
            st, wall = consume(url, stream, paths, Path(db))
            print(f"{st.accepted} {wall:.3f}")
        else:
            st, wall = consume(url, stream, paths, Path(db), record_latency=True,
                               checkpoint_s=args.child_paced, idle_stop_s=8.0)
            print(json.dumps({"accepted": st.accepted, "wall": wall,
                              "commit": st.latencies_ms, "decision": st.decision_latencies_ms}))
        return
    n_fills = sum(1 for _ in __import__("traderseg.simulate.live", fromlist=["x"])
                  .live_fills(paths["fills"]))
    print(f"venue: {args.accounts} accounts, {args.days} days, {n_fills:,} fills")

    for every in (900.0, 3600.0):
        rates = [replay_once(paths, args.out / "replay.duckdb", every) for _ in range(args.runs)]
        med = statistics.median(r[0] for r in rates)
        print(f"embedded replay, decisions every {every / 60:g} min: median {med:,.0f} fills/s "
              f"({[round(r[0]) for r in rates]}); {rates[0][1]:,} decisions; decision share "
              f"of the wall time {statistics.median(r[2] for r in rates):.0%}")

    from traderseg.online.decide import Hysteresis

    for label, h in (("without hysteresis", Hysteresis(0.0, 0.0)),
                     ("with hysteresis (margin 0.10, dwell 1 day)", Hysteresis())):
        rate, back, days = flap(paths, args.out / "flap.duckdb", h)
        print(f"segment changes {label}: {rate:.2%} of {days:,} account-days with decisions "
              f"(hourly decisions); {back:.0%} of them revert within 3 days")

    binary = redis_binary()
    if binary is None:
        print("redis-server not installed: Redis figures skipped")
        return
    server = RedisServer(binary, free_port(), args.out)
    server.start()
    try:
        for pack in (1, args.pack):
            redis_runs(server.url, paths, args, pack)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
