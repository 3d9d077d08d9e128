"""Parts of the stream consumer timed in process, on the venue of ``bench_stream.py``.

    python bench/bench_stream_parts.py [--accounts 1000] [--days 15] [--runs 3]
                                       [--parts validate,checkpoint,collector]

- ``validate``: validating batches of 200, 1,000 and 5,000 streamed fills (their Redis
  fields, one fill an entry), medians of 20 calls, with text times read by Arrow's fast
  path and, in the same run, with that path turned off (every time read by pandas).
- ``checkpoint``: an embedded replay of the first 20,000 fills with a checkpoint every 200
  fills, milliseconds per call of each phase (wrapped timers): what a low rate costs per
  checkpoint. It runs against whichever ``traderseg`` is imported (``PYTHONPATH`` may point
  at another checkout).
- ``collector``: the 15-minute embedded replay with the collector's thresholds as the
  consumer sets them and as Python's defaults, alternating, medians of ``--runs``.
- ``density``: the embedded replay with decisions every 15 minutes, every hour and every
  day of data time, alternating, medians of ``--runs``: fills per second against decisions
  per fill (the per-fill path alone shows at daily decisions).
- ``engine``: the decision engine (model, overlays, policy) on 1, 30, 300 and 3,000
  accounts' features at one cutoff, medians of 20 calls: its fixed cost a call.
- ``interval``: one decision interval on the live-paced venue of ``bench_stream_live.py``
  (its history's online state, at a cutoff just after its last fill): reading 100, 560
  (what one second holds at 20,000 fills/s) and all (817) accounts' parts, combining them, the
  formulas, and the decision engine, milliseconds a call, medians of 20: the work between
  an interval's closing fill and its decisions.
- ``profile``: one 15-minute replay under cProfile: the cumulative time of reading the
  accounts' parts, combining them, the formulas and the decision engine per decision, and
  of folding per fill (profiled times, inflated alike).

No Redis server is needed.
"""

from __future__ import annotations

import argparse
import collections
import functools
import gc
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from bench_stream import POLICY, setup  # noqa: E402


def validate(paths) -> None:
    from datetime import UTC, datetime

    from traderseg.ingest import coerce
    from traderseg.online.messages import validate_messages
    from traderseg.online.sources import Message
    from traderseg.simulate.fillcodec import encode_fill
    from traderseg.simulate.live import live_fills

    fields = [encode_fill(f) for f, _ in zip(live_fills(paths["fills"]), range(5000),
                                             strict=False)]
    now = datetime.now(UTC)
    fast = getattr(coerce, "_iso_utc", None)
    for n in (200, 1000, 5000):
        msgs = [Message(f, f"s:{i}-0") for i, f in enumerate(fields[:n])]
        row = []
        for label, path in (("Arrow fast path", fast), ("pandas only", None)):
            if fast is None and label == "Arrow fast path":
                continue
            if fast is not None:
                coerce._iso_utc = path if path is not None else (lambda text: None)
            times = []
            for _ in range(22):
                t = time.perf_counter()
                validate_messages(msgs, now)
                times.append(time.perf_counter() - t)
            row.append(f"{label} {statistics.median(times[2:]) * 1000:.2f} ms")
        if fast is not None:
            coerce._iso_utc = fast
        print(f"validate {n:,} fills: " + ", ".join(row))


def _replay(paths, db: Path, **cfg):
    from traderseg.online.consumer import StreamConfig, StreamConsumer
    from traderseg.online.run import build_engine
    from traderseg.online.sources import ReplaySource
    from traderseg.store import connect

    shutil.copy(paths["empty"], db)
    con = connect(db)
    eng = build_engine(con, paths["model"], paths["policy"])
    max_messages = cfg.pop("max_messages", None)
    t = time.perf_counter()
    st = StreamConsumer(con, ReplaySource(paths["fills"]), eng, StreamConfig(**cfg),
                        source_label="replay").run(max_messages=max_messages)
    wall = time.perf_counter() - t
    con.close()
    return st, wall, eng


def checkpoint(paths, out: Path) -> None:
    import traderseg.online.consumer as C
    import traderseg.online.state as S
    import traderseg.online.tables as T

    spent: collections.Counter[str] = collections.Counter()
    calls: collections.Counter[str] = collections.Counter()

    def timed(owner, name):
        f = getattr(owner, name, None)
        if f is None:
            return
        @functools.wraps(f)
        def g(*a, **k):
            t = time.perf_counter()
            try:
                return f(*a, **k)
            finally:
                spent[name] += time.perf_counter() - t
                calls[name] += 1
        setattr(owner, name, g)

    # the names of either layout (before and after the state rows were split from save)
    for owner, name in ((C.StreamConsumer, "checkpoint"), (C.StreamConsumer, "_submit"),
                        (C.StreamConsumer, "_store"), (C.StreamConsumer, "_decide_pending"),
                        (C, "write_decisions"), (T, "read_controls"), (S, "save"),
                        (S, "state_rows"), (S, "write_state")):
        timed(owner, name)
    st, wall, _ = _replay(paths, out / "parts.duckdb", decide_every_s=900.0,
                          checkpoint_fills=200, batch_size=200, max_messages=20_000)
    print(f"checkpoint every 200 fills, first {st.accepted:,} fills: {st.checkpoints} "
          f"checkpoints, {st.decisions:,} decisions, {wall:.2f} s")
    for name, s in spent.most_common():
        print(f"    {name:16s} {s * 1000 / calls[name]:7.2f} ms a call ({calls[name]} calls)")


def collector(paths, out: Path, runs: int) -> None:
    import traderseg.online.consumer as C

    raised = getattr(C, "FULL_COLLECTION_EVERY", None)
    default = gc.get_threshold()[2]
    if raised is None:
        print("collector: this checkout does not change the thresholds")
        return
    times: dict[str, list[float]] = {"consumer's": [], "default": []}
    for _ in range(runs):
        for label, value in (("consumer's", raised), ("default", default)):
            C.FULL_COLLECTION_EVERY = value
            _, wall, _ = _replay(paths, out / "parts.duckdb", decide_every_s=900.0)
            times[label].append(wall)
    C.FULL_COLLECTION_EVERY = raised
    print("collector, 15-minute replay: " + ", ".join(
        f"{k} thresholds {statistics.median(v):.2f} s ({', '.join(f'{x:.2f}' for x in v)})"
        for k, v in times.items()))


def density(paths, out: Path, runs: int) -> None:
    every = (900.0, 3600.0, 86400.0)
    rates: dict[float, list[float]] = {e: [] for e in every}
    decisions: dict[float, int] = {}
    for _ in range(runs):
        for e in every:
            st, wall, _ = _replay(paths, out / "parts.duckdb", decide_every_s=e)
            rates[e].append(st.accepted / wall)
            decisions[e] = st.decisions
            fills = st.accepted
    for e in every:
        print(f"replay, decisions every {e / 60:g} min: median {statistics.median(rates[e]):,.0f}"
              f" fills/s ({', '.join(f'{x:,.0f}' for x in rates[e])}); {decisions[e]:,} "
              f"decisions, {decisions[e] / fills:.3f} a fill")


def engine(paths) -> None:
    import pandas as pd

    from traderseg.features.compute import compute_features
    from traderseg.online.decide import empty_assignments
    from traderseg.online.run import build_engine
    from traderseg.store import connect

    work = paths["empty"].parent / "engine.duckdb"
    shutil.copy(paths["empty"], work)
    con = connect(work)
    eng = build_engine(con, paths["model"], paths["policy"])
    con.close()
    at = pd.Timestamp("2024-01-12", tz="UTC")
    feats = compute_features(paths["empty"].parent / "history.duckdb", at, eng.windows)
    feats = feats[eng.feature_columns]
    while len(feats) < 3000:
        feats = pd.concat([feats, feats.set_axis([f"{a}+{len(feats)}" for a in feats.index])])
    prev = empty_assignments()
    for n in (1, 30, 300, 3000):
        f = feats.iloc[:n]
        ids = [dict.fromkeys(f.index, "x")]
        times = []
        for _ in range(22):
            t = time.perf_counter()
            eng.decide_stacked([at], f, [n], ids, prev)
            times.append(time.perf_counter() - t)
        print(f"decision engine, {n:,} accounts: {statistics.median(times[2:]) * 1000:.1f} ms "
              "a call")


def interval(paths, out: Path) -> None:
    import pandas as pd

    from bench_stream_live import shifted_history
    from traderseg.features.online import (
        combine,
        quantile_windows,
        read_parts,
        read_plan,
        values_frame,
    )
    from traderseg.online import state as S
    from traderseg.online.decide import empty_assignments
    from traderseg.online.run import build_engine
    from traderseg.store import connect

    _, history = shifted_history(paths, out)
    store = out / "interval.duckdb"
    shutil.copy(history, store)
    con = connect(store)
    eng = build_engine(con, paths["model"], paths["policy"])
    states = S.load(con, "history").states
    con.close()
    cols = eng.feature_columns
    qw = quantile_windows(eng.windows, cols)
    last = max(st.last_us for st in states.values() if st.last_us is not None)
    at = pd.Timestamp((last // 1_000_000 + 1) * 1_000_000_000, tz="UTC")
    plan = read_plan(at.to_pydatetime(), eng.windows, None, cols)
    busiest = sorted(states, key=lambda a: -sum(t.s[0] for t in states[a].tiles.values()))
    for n in (100, 560, len(busiest)):
        accts = sorted(busiest[:n])
        ids = [dict.fromkeys(accts, "x")]
        times: dict[str, list[float]] = collections.defaultdict(list)
        for _ in range(22):
            t0 = time.perf_counter()
            parts = read_parts(states, accts, plan)
            t1 = time.perf_counter()
            values = combine(parts, qw)
            t2 = time.perf_counter()
            feats = values_frame([values], eng.windows, accts, cols)
            t3 = time.perf_counter()
            eng.decide_stacked([at], feats, [n], ids, empty_assignments())
            t4 = time.perf_counter()
            for k, v in (("read", t1 - t0), ("combine", t2 - t1), ("formulas", t3 - t2),
                         ("engine", t4 - t3), ("total", t4 - t0)):
                times[k].append(v)
        print(f"one interval, {n:,} accounts: " + ", ".join(
            f"{k} {statistics.median(v[2:]) * 1000:.1f}" for k, v in times.items()) + " ms")


def profile(paths, out: Path) -> None:
    import cProfile
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    st, wall, _ = _replay(paths, out / "parts.duckdb", decide_every_s=900.0)
    prof.disable()
    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    cum: dict[str, float] = collections.Counter()
    for (_, _, name), (_, _, _, ct, _) in stats.items():
        cum[name] += ct
    print(f"15-minute replay under cProfile: {wall:.2f} s, {st.accepted:,} fills, "
          f"{st.decisions:,} decisions")
    for name, per in (("read_parts", "decision"), ("combine", "decision"),
                      ("values_frame", "decision"), ("decide_stacked", "decision"),
                      ("fold_record_slice", "fill"), ("fold_table", "fill"),
                      ("_new_fills", "fill"), ("validate_raw", "fill")):
        n = st.decisions if per == "decision" else st.accepted
        print(f"    {name:18s} {cum.get(name, 0.0):6.2f} s, "
              f"{cum.get(name, 0.0) / max(n, 1) * 1e6:6.1f} us a {per}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--accounts", type=int, default=1000)
    ap.add_argument("--days", type=int, default=15)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--parts", default="validate,checkpoint,collector")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "stream")
    args = ap.parse_args()
    paths = setup(args.out, args.accounts, args.days, POLICY)
    parts = args.parts.split(",")
    if "validate" in parts:
        validate(paths)
    if "checkpoint" in parts:
        checkpoint(paths, args.out)
    if "collector" in parts:
        collector(paths, args.out, args.runs)
    if "density" in parts:
        density(paths, args.out, args.runs)
    if "engine" in parts:
        engine(paths)
    if "interval" in parts:
        interval(paths, args.out)
    if "profile" in parts:
        profile(paths, args.out)


if __name__ == "__main__":
    main()
