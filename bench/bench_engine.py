"""The feature engine against the lean single-window reference, side by side in one run.

    python bench/bench_engine.py --sizes 10000000,50000000 --repeats 3

For each size (a simulated venue ingested into ``bench/out/``, cached; see
``bench_features.build_store``) it measures, each contender in a fresh process, alternating
between contenders, medians of ``--repeats`` runs:

- ``lean``: ``../shared/bench/lean_features.py``'s query (22 core lifetime features);
- ``fills``: the whole catalogue over four windows (7d, 30d, 90d, all) from the fills;
- ``tiles``: the same from the store's current daily tiles (plus the partial cutoff day);
- ``fills_warm``, ``tiles_warm``: the same with the compiled SQL cache
  (``traderseg.features.sqlcache``) holding the template made by the two days before, as a
  daily refresh finds it; the cold contenders each start from an empty cache folder;

then the ingest of one more day of fills with its tile update (on a copy of the store
without that day). ``--parts`` picks what runs (default ``sizes,online``):

- ``sizes``: the above, for each of ``--sizes``;
- ``online``: the online state's update rate on one core, per fill (``AccountState.update``)
  and by table (``fold_table``, the stream consumer's path), and its bytes per account;
- ``spark`` (or ``--spark-fills N``): Spark beside DuckDB on a smaller store, features and
  assignment with a saved model;
- ``ingest`` (or ``--ingest``): ``traderseg ingest`` against a bare DuckDB
  ``CREATE TABLE AS SELECT`` of the same Parquet, medians of ``--repeats``.

Results go to ``bench/out/engine_results*.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
LEAN = HERE.parents[1] / "shared" / "bench" / "lean_features.py"
WINDOWS = ("7d", "30d", "90d", "all")


def _rss_gib() -> float:
    from memory import peak_rss_gib

    return peak_rss_gib()


def run_one(contender: str, db: str, as_of: str) -> dict:
    """Run one contender in this process."""
    t0 = time.perf_counter()
    sql = None
    imported = None
    if contender == "lean":
        import importlib.util

        import duckdb

        spec = importlib.util.spec_from_file_location("lean", LEAN)
        lean = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(lean)
        con = duckdb.connect(db, read_only=True)
        con.execute("set threads = 2")
        con.execute("set enable_progress_bar = false")
        t0 = time.perf_counter()
        rows = len(con.execute(lean.SQL, [as_of]).fetchall())
    else:
        from traderseg.features import sqlcache
        from traderseg.features.compute import compute_features

        imported = time.perf_counter() - t0
        mode = {"fills": "never", "tiles": "require"}[contender.removesuffix("_warm")]
        rows = len(compute_features(db, as_of, WINDOWS, tiles=mode))
        sql = dict(sqlcache.counts)
    # ours are timed from before the import of the library (``import_s`` of it), the lean
    # query from after its connection: the ratios hold our import against us
    return {"contender": contender, "seconds": time.perf_counter() - t0, "accounts": rows,
            "peak_rss_gib": _rss_gib(), "sql": sql,
            "import_s": imported}


def prime(db: str, as_of: str) -> dict:
    """Compute both contenders at the two days before ``as_of`` (the cache learns a template)."""
    import pandas as pd

    from traderseg.features import sqlcache
    from traderseg.features.compute import compute_features

    for mode in ("never", "require"):
        for back in (2, 1):
            cut = pd.Timestamp(as_of) - pd.Timedelta(days=back)
            compute_features(db, cut, WINDOWS, tiles=mode)
    return {"sql": dict(sqlcache.counts)}


def _spawn(*args: str, cache: str | None = None) -> dict:
    env = dict(os.environ, PYTHONPATH=str(HERE))
    if cache is not None:
        env["TRADERSEG_SQL_CACHE_DIR"] = cache
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                          env=env)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _ensure_tiles(db: Path) -> float:
    from traderseg.features import tiles
    from traderseg.store import connect

    con = connect(db)
    try:
        if tiles.status(con)[0]:
            return float("nan")
        t = time.perf_counter()
        tiles.rebuild(con)
        return time.perf_counter() - t
    finally:
        con.close()


def one_more_day(db: Path, as_of: str) -> dict:
    """Time ingesting the last day of fills (with its tile refresh) into a store without it."""
    import duckdb

    from traderseg.features import tiles
    from traderseg.ingest import ingest
    from traderseg.store import connect

    work = OUT / "one_more_day"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    copy = work / "store.duckdb"
    shutil.copy(db, copy)
    day_file = work / "fills-last-day.parquet"
    con = duckdb.connect(str(copy))
    con.execute("SET TimeZone = 'UTC'")
    last = "(SELECT max(ts)::DATE FROM fills)"
    con.execute(f"COPY (SELECT * EXCLUDE (source) FROM fills WHERE ts::DATE = {last}) "
                f"TO '{day_file}' (FORMAT parquet)")
    n = con.execute(f"SELECT count(*) FROM fills WHERE ts::DATE = {last}").fetchone()[0]
    con.execute(f"DELETE FROM fills WHERE ts::DATE = {last}")
    con.close()
    con = connect(copy)
    tiles.rebuild(con)
    con.close()
    # as a daily run finds it: the tile SQL of a refresh compiled and kept by an earlier day
    # (two small ingests into a scratch store: the first builds the tiles, the second
    # refreshes them)
    con = duckdb.connect()
    for k in (0, 1):
        con.execute(f"COPY (SELECT * FROM read_parquet('{day_file}') LIMIT 50 OFFSET {50 * k}) "
                    f"TO '{work / f'prime{k}.parquet'}' (FORMAT parquet)")
    con.close()
    for k in (0, 1):
        ingest([work / f"prime{k}.parquet"], work / "prime.duckdb")
    t = time.perf_counter()
    ingest([day_file], copy)
    seconds = time.perf_counter() - t
    con = connect(copy, read_only=True)
    current = tiles.status(con)[0]
    con.close()
    shutil.rmtree(work, ignore_errors=True)
    return {"fills": int(n), "seconds": seconds, "tiles_current_after": current}


def online_rate(db: Path, n: int = 1_000_000, batches: tuple[int, ...] = (10_000, 100_000),
                repeats: int = 3) -> dict:
    """Fills per second into the online state on one core, per fill and by table; state bytes.

    Per fill: ``AccountState.update`` over records converted beforehand. By table:
    ``fold_table`` over slices of the Arrow table (the stream consumer's path; the column
    conversion is inside the timing). The same fills, in time order, medians of ``repeats``,
    the two paths alternating; the cyclic collector runs as it does by default.
    """
    import gc
    import tracemalloc

    import duckdb

    from traderseg.features.online import AccountState, fold_records, records_from_frame
    from traderseg.features.online_fold import fold_table

    con = duckdb.connect(str(db), read_only=True)
    con.execute("SET enable_progress_bar = false")
    table = con.sql(f"SELECT * EXCLUDE (source) FROM fills ORDER BY ts, fill_id LIMIT {n}")
    table = table.arrow()
    table = table.read_all() if hasattr(table, "read_all") else table
    con.close()
    records = list(records_from_frame(table.to_pandas()))

    def per_fill() -> dict[str, AccountState]:
        states: dict[str, AccountState] = {}
        fold_records(states, records)
        return states

    def by_table(size: int) -> dict[str, AccountState]:
        states: dict[str, AccountState] = {}
        for i in range(0, table.num_rows, size):
            fold_table(states, table.slice(i, size))
        return states

    # the inputs are long-lived: keep the cyclic collector off them (gc.freeze), as a
    # consumer holding its batch would; the states built are collected as usual
    gc.collect()
    gc.freeze()
    contenders: dict[str, Any] = {"per_fill": per_fill}
    for b in batches:
        contenders[f"table_{b}"] = lambda b=b: by_table(b)
    runs: dict[str, list[float]] = {k: [] for k in contenders}
    for _ in range(repeats):
        for name, fn in contenders.items():
            t = time.perf_counter()
            states = fn()
            runs[name].append(time.perf_counter() - t)
            del states
            gc.collect()
    out: dict[str, Any] = {"fills": len(records)}
    for name, secs in runs.items():
        med = statistics.median(secs)
        out[name] = {"median_s": med, "fills_per_s": len(records) / med,
                     "runs_s": [round(x, 3) for x in secs]}
    tracemalloc.start()  # a separate pass for memory only: tracing slows the loop
    before = tracemalloc.get_traced_memory()[0]
    states = per_fill()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    days = sum(len(s.tiles) for s in states.values())
    snap = sum(len(s.to_json()) for s in states.values())
    folded = by_table(table.num_rows)  # one table: bit for bit (several: up to summation order)
    out["one_table_equals_per_fill"] = all(folded[a].to_json() == s.to_json()
                                       for a, s in states.items()) and len(folded) == len(states)
    out.update({"accounts": len(states), "account_days": days,
                "bytes_per_account_in_memory": held / len(states),
                "bytes_per_account_day_in_memory": held / days,
                "snapshot_bytes_per_account": snap / len(states)})
    return out


def spark_vs_duckdb(n_fills: int) -> dict:
    """Spark (local[2]) beside DuckDB on a store of about ``n_fills`` fills."""
    import numpy as np
    import pandas as pd

    from bench_features import build_store
    from traderseg.features.compute import compute_features
    from traderseg.features.spark import compute_features_spark, spark_session

    db, as_of = build_store(n_fills)
    t = time.perf_counter()
    duck = compute_features(db, as_of, WINDOWS, tiles="never")
    duck_s = time.perf_counter() - t
    session = spark_session()
    t = time.perf_counter()
    spark = compute_features_spark(db, as_of, WINDOWS, session=session)
    spark_s = time.perf_counter() - t
    spark = spark.reindex(index=duck.index, columns=duck.columns)
    sketch = [c for c in duck.columns if c.startswith(("notional_median", "notional_p95"))]
    exact = [c for c in duck.columns if c not in sketch]
    close = np.isclose(spark[exact], duck[exact], rtol=1e-9, atol=1e-9, equal_nan=True)
    out = {"fills": n_fills, "duckdb_s": duck_s, "spark_s": spark_s,
           "accounts": len(duck), "exact_columns_equal": bool(close.all()),
           "sketch_columns_equal": bool(np.isclose(spark[sketch], duck[sketch], rtol=1e-9,
                                                   equal_nan=True).all())}
    # assignment with a saved model: DuckDB features + scoring vs features + scoring in Spark
    from traderseg.segment.spark import write_assignments_spark
    from traderseg.segment.workflow import assign_accounts, fit_segments

    model = OUT / "spark_model"
    shutil.rmtree(model, ignore_errors=True)
    fit_segments(db, as_of, model, n_segments=8, random_state=0)
    t = time.perf_counter()
    ref = assign_accounts(db, model)
    out["assign_duckdb_s"] = time.perf_counter() - t
    target = OUT / "spark_assign.parquet"
    shutil.rmtree(target, ignore_errors=True)
    t = time.perf_counter()
    write_assignments_spark(db, model, target, session=session)
    out["assign_spark_s"] = time.perf_counter() - t
    session.stop()
    got = pd.read_parquet(target).set_index("account_id").reindex(ref["account_id"])
    out["assign_segments_equal"] = bool((got["segment"].to_numpy()
                                         == ref["segment"].to_numpy()).all())
    out["assign_tiers_equal"] = bool((got["value_tier"].to_numpy()
                                      == ref["value_tier"].astype(str).to_numpy()).all())
    out["assign_membership_max_diff"] = float(np.abs(got["membership"].to_numpy()
                                                     - ref["membership"].to_numpy()).max())
    return out


def ingest_vs_ctas(n_fills: int, repeats: int = 3) -> dict:
    """`traderseg ingest` (tiles included) against CREATE TABLE AS SELECT of the Parquet.

    Both write a new DuckDB file from the simulated venue's fills Parquet, alternating,
    ``repeats`` times; medians.
    """
    import duckdb

    from bench_features import build_store
    from traderseg.ingest import ingest

    build_store(n_fills)
    sim = OUT / f"sim_{n_fills // 1_000_000}M" / "fills"
    work = OUT / "ingest_vs_ctas"
    runs: dict[str, list[float]] = {"ctas_s": [], "ingest_s": []}
    for _ in range(repeats):
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        t = time.perf_counter()
        con = duckdb.connect(str(work / "ctas.duckdb"))
        con.execute("SET enable_progress_bar = false")
        con.execute(f"CREATE TABLE fills AS SELECT * FROM read_parquet('{sim}/*.parquet')")
        con.close()
        runs["ctas_s"].append(time.perf_counter() - t)
        t = time.perf_counter()
        ingest([sim], work / "ingest.duckdb")
        runs["ingest_s"].append(time.perf_counter() - t)
    shutil.rmtree(work, ignore_errors=True)
    ctas, ing = (statistics.median(runs[k]) for k in ("ctas_s", "ingest_s"))
    return {"fills": n_fills, "ctas_s": ctas, "ingest_s": ing, "ratio": ing / ctas,
            "runs": {k: [round(x, 2) for x in v] for k, v in runs.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000000,50000000")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--spark-fills", type=int, default=0)
    ap.add_argument("--ingest", action="store_true")
    ap.add_argument("--online-fills", type=int, default=1_000_000)
    ap.add_argument("--parts", default="sizes,online",
                    help="what to run, of sizes,online,spark,ingest (--spark-fills and "
                         "--ingest add theirs)")
    ap.add_argument("--one")
    ap.add_argument("--prime", action="store_true")
    ap.add_argument("--db")
    ap.add_argument("--as-of")
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.db, args.as_of)))
        return
    if args.prime:
        print(json.dumps(prime(args.db, args.as_of)))
        return
    sys.path.insert(0, str(HERE))
    from bench_features import build_store

    parts = set(args.parts.split(","))
    if args.spark_fills:
        parts.add("spark")
    if args.ingest:
        parts.add("ingest")
    results: dict = {"sizes": []}
    for size in [int(s) for s in args.sizes.split(",") if s] if "sizes" in parts else []:
        db, as_of = build_store(size)
        rebuild_s = _ensure_tiles(db)
        runs: dict[str, list] = {c: [] for c in
                                 ("lean", "fills", "tiles", "fills_warm", "tiles_warm")}
        with tempfile.TemporaryDirectory() as caches:
            warm = str(Path(caches) / "warm")
            primed = _spawn("--prime", "--db", str(db), "--as-of", as_of, cache=warm)
            for i in range(args.repeats):  # alternate, so the machine's noise hits all alike
                for c in runs:
                    cache = warm if c.endswith("_warm") else str(Path(caches) / f"{c}-{i}")
                    runs[c].append(_spawn("--one", c, "--db", str(db), "--as-of", as_of,
                                          cache=cache))
        row = {"size": size, "tile_rebuild_s": rebuild_s, "primed": primed}
        for c, rs in runs.items():
            ok = [r for r in rs if "error" not in r]
            row[c] = {"median_s": statistics.median(r["seconds"] for r in ok) if ok else None,
                      "runs_s": [round(r.get("seconds", float("nan")), 2) for r in rs],
                      "peak_rss_gib": max((r["peak_rss_gib"] for r in ok), default=None),
                      "import_s": [None if r.get("import_s") is None else round(r["import_s"], 2)
                                   for r in ok],
                      "sql": [r.get("sql") for r in ok],
                      "errors": [r["error"] for r in rs if "error" in r]}
        lean, fills, tl = (row[c]["median_s"] for c in ("lean", "fills", "tiles"))
        if lean and fills and tl:
            row["fills_over_lean"] = fills / lean
            row["tiles_over_fills"] = tl / fills
        fw, tw = (row[c]["median_s"] for c in ("fills_warm", "tiles_warm"))
        if lean and fw and tw:
            row["fills_warm_over_lean"] = fw / lean
            row["tiles_warm_over_fills_warm"] = tw / fw
        row["one_more_day"] = one_more_day(db, as_of)
        if fills:
            row["one_more_day"]["over_full_recompute"] = row["one_more_day"]["seconds"] / fills
        print(json.dumps(row), flush=True)
        results["sizes"].append(row)
    if "online" in parts and args.online_fills:
        db, _ = build_store(int(args.sizes.split(",")[0]))
        results["online"] = online_rate(db, args.online_fills)
        print(json.dumps(results["online"]), flush=True)
    if "spark" in parts:
        results["spark"] = spark_vs_duckdb(args.spark_fills or 1_000_000)
        print(json.dumps(results["spark"]), flush=True)
    if "ingest" in parts:
        results["ingest"] = ingest_vs_ctas(int(args.sizes.split(",")[0]), args.repeats)
        print(json.dumps(results["ingest"]), flush=True)
    OUT.mkdir(exist_ok=True)
    name = "engine_results.json" if parts == {"sizes", "online"} else (
        f"engine_results_{'_'.join(sorted(parts))}.json")
    (OUT / name).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
