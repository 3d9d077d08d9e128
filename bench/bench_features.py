"""Feature catalogue vs a hand-written DuckDB query vs a typical pandas pipeline.

Each contender runs in its own fresh process (so peak RSS is its own), several times;
medians, ratios and peak memory are reported side by side, in one run.

    python bench/bench_features.py --sizes 10000000,50000000 --repeats 3

Data: a simulated venue (``traderseg simulate``) ingested into a DuckDB store under
``bench/out/``; sizes are reached by choosing the number of accounts and days. The store
is kept between runs (delete ``bench/out/`` to rebuild).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
WINDOWS = ("30d", "all")
RSS_CAP_GB = 20.0
MEMORY_LIMIT = ""


def _peak_rss_gb() -> float:
    from memory import peak_rss_gib

    return peak_rss_gib()


def run_one(contender: str, db: str, as_of: str) -> dict:
    """Run one contender in this process and return its timings."""
    t0 = time.perf_counter()
    if contender == "catalogue":
        from traderseg.features.compute import compute_features

        df = compute_features(db, as_of, WINDOWS)
        load = 0.0
    elif contender == "duckdb_sql":
        import pandas as pd

        from baselines import duckdb_sql_features
        from traderseg.store import connect

        con = connect(db, read_only=True)  # same settings (memory limit) as the catalogue
        parts = []
        for w in WINDOWS:
            part = con.sql(duckdb_sql_features(con, pd.Timestamp(as_of), w, exact=True)).df()
            part = part.set_index("account_id").add_suffix(f"__{w}")
            parts.append(part)
        df = parts[-1].join(parts[:-1], how="left")
        load = 0.0
    elif contender == "pandas":
        import duckdb

        from baselines import pandas_features

        con = duckdb.connect(db, read_only=True)
        con.execute("SET TimeZone='UTC'")
        fills = con.sql("SELECT * EXCLUDE (source) FROM fills").df()
        events = {
            r[0]
            for r in con.sql(
                "SELECT DISTINCT CAST(ts AS DATE) FROM market WHERE event IS NOT NULL"
            ).fetchall()
        }
        load = time.perf_counter() - t0
        df = pandas_features(fills, as_of, WINDOWS, events)
    else:
        raise SystemExit(f"unknown contender {contender}")
    return {
        "contender": contender,
        "seconds": time.perf_counter() - t0,
        "load_seconds": load,
        "accounts": int(len(df)),
        "peak_rss_gb": _peak_rss_gb(),
    }


def _spawn(contender: str, db: str, as_of: str) -> dict:
    cmd = [sys.executable, __file__, "--one", contender, "--db", db, "--as-of", as_of]
    env = dict(os.environ, PYTHONPATH=str(HERE))
    if MEMORY_LIMIT:
        env["TRADERSEG_DUCKDB_MEMORY_LIMIT"] = MEMORY_LIMIT
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    killed = {"flag": False}

    def watch() -> None:  # stop a contender before it takes the machine down
        while proc.poll() is None:
            try:
                with open(f"/proc/{proc.pid}/status") as fh:
                    for line in fh:
                        if line.startswith("VmRSS:"):
                            if int(line.split()[1]) / 1024**2 > RSS_CAP_GB:
                                killed["flag"] = True
                                proc.kill()
            except FileNotFoundError:
                return
            time.sleep(0.2)

    threading.Thread(target=watch, daemon=True).start()
    out, err = proc.communicate()
    if killed["flag"]:
        return {"contender": contender, "error": f"killed above {RSS_CAP_GB} GiB RSS"}
    if proc.returncode != 0:
        return {"contender": contender, "error": err.strip().splitlines()[-1:]}
    return json.loads(out.strip().splitlines()[-1])


def build_store(n_fills: int, seed: int = 7) -> tuple[Path, str]:
    """Simulate and ingest a venue of about ``n_fills`` fills (cached)."""
    OUT.mkdir(exist_ok=True)
    db = OUT / f"fills_{n_fills // 1_000_000}M.duckdb"
    meta = db.with_suffix(".json")
    if db.exists() and meta.exists():
        return db, json.loads(meta.read_text())["as_of"]
    from traderseg.ingest import ingest
    from traderseg.simulate import simulate_venue

    days = 90
    # the simulator's mean fills per account-day at its default mix, measured on a pilot run
    pilot = OUT / "pilot"
    shutil.rmtree(pilot, ignore_errors=True)
    s = simulate_venue(pilot, accounts=2000, days=days, seed=seed)
    per_account = max(s.fills / 2000, 1.0)
    accounts = int(n_fills / per_account)
    sim_dir = OUT / f"sim_{n_fills // 1_000_000}M"
    summary = simulate_venue(sim_dir, accounts=accounts, days=days, seed=seed)
    ingest([sim_dir], db)
    as_of = str(summary.start + dt.timedelta(days=days))
    meta.write_text(json.dumps({"as_of": as_of, "fills": summary.fills, "accounts": accounts}))
    return db, as_of


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000000,50000000")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--contenders", default="catalogue,duckdb_sql,pandas")
    ap.add_argument("--memory-limit", default="3GB",
                    help="DuckDB memory limit for both DuckDB contenders ('' for DuckDB's default)")
    ap.add_argument("--one")
    ap.add_argument("--db")
    ap.add_argument("--as-of")
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.db, args.as_of)))
        return
    global MEMORY_LIMIT
    MEMORY_LIMIT = args.memory_limit
    results = []
    for size in [int(s) for s in args.sizes.split(",")]:
        db, as_of = build_store(size)
        for c in args.contenders.split(","):
            runs = [_spawn(c, str(db), as_of) for _ in range(args.repeats)]
            ok = [r for r in runs if "error" not in r]
            row = {"size": size, "contender": c, "runs": runs}
            if ok:
                row["median_s"] = statistics.median(r["seconds"] for r in ok)
                row["peak_rss_gb"] = max(r["peak_rss_gb"] for r in ok)
                row["accounts"] = ok[0]["accounts"]
            results.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "runs"}), flush=True)
    by = {(r["size"], r["contender"]): r for r in results}
    print("\nsize        contender     median_s  peak_GiB  vs_sql  vs_catalogue")
    for r in results:
        sql = by.get((r["size"], "duckdb_sql"), {}).get("median_s")
        cat = by.get((r["size"], "catalogue"), {}).get("median_s")
        m = r.get("median_s")
        print(
            f"{r['size']:>10,}  {r['contender']:<12} "
            f"{m if m is None else round(m, 2)!s:>9} {r.get('peak_rss_gb', float('nan')):>8.2f} "
            f"{(m / sql) if m and sql else float('nan'):>7.2f} "
            f"{(m / cat) if m and cat else float('nan'):>12.2f}"
        )
    (OUT / "features_results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
