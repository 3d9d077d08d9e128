"""Benchmark of the HTML report: build time and file size at 3k, 30k and 100k accounts.

For each size a venue is simulated (``traderseg simulate``), ingested and segmented once
(model fitted at two thirds of the period) and kept in the work folder, so a second run
only measures the report. The report is then built ``--repeats`` times, each in a fresh
worker process, at the end of the period with the comparison at the training cutoff;
the median build time and the file size are printed. Usage::

    python bench/bench_report.py                          # 3k, 30k, 100k x 21 days
    python bench/bench_report.py --sizes 3000 --days 60 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

START = date(2024, 1, 1)


def _run_cli(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "traderseg", *args], check=True,
                   stdout=subprocess.DEVNULL)


def prepare(work: Path, accounts: int, days: int) -> tuple[Path, Path, float]:
    """Simulate, ingest and fit once; return the store, the model and the prep seconds."""
    root = work / f"venue-{accounts}-{days}d"
    db, model = root / "venue.duckdb", root / "model"
    if (model / "meta.json").exists() or (root / "ready").exists():
        return db, model, 0.0
    t0 = time.perf_counter()
    root.mkdir(parents=True, exist_ok=True)
    _run_cli("simulate", "--out", str(root / "sim"), "--accounts", str(accounts), "--days",
             str(days), "--seed", "3", "--start", START.isoformat())
    _run_cli("ingest", str(root / "sim"), "--db", str(db))
    fit = START + timedelta(days=(2 * days) // 3)
    _run_cli("fit", "--db", str(db), "--as-of", fit.isoformat(), "--out", str(model))
    (root / "ready").touch()
    return db, model, time.perf_counter() - t0


def worker(db: str, model: str, out: str, as_of: str) -> dict[str, float]:
    """Build one report in this process; return seconds and bytes."""
    from traderseg.report import build_report

    t0 = time.perf_counter()
    built = build_report(db, model, out, as_of=as_of)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "bytes": Path(out).stat().st_size,
            "left_out": len(built.unavailable)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[3000, 30_000, 100_000])
    ap.add_argument("--days", type=int, default=21)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--work", type=Path, default=Path("bench-out/report"))
    ap.add_argument("--worker", nargs=4, metavar=("DB", "MODEL", "OUT", "AS_OF"))
    a = ap.parse_args()
    if a.worker:
        print(json.dumps(worker(*a.worker)))
        return
    as_of = (START + timedelta(days=a.days)).isoformat()
    print(f"{'accounts':>9} {'days':>5} {'build s (median)':>17} {'size MB':>8} "
          f"{'left out':>8}")
    for n in a.sizes:
        db, model, prep = prepare(a.work, n, a.days)
        runs = []
        for i in range(a.repeats):
            out = a.work / f"report-{n}-{a.days}d-{i}.html"
            res = subprocess.run([sys.executable, __file__, "--worker", str(db), str(model),
                                  str(out), as_of], check=True, capture_output=True, text=True)
            runs.append(json.loads(res.stdout.strip().splitlines()[-1]))
        secs = statistics.median(r["seconds"] for r in runs)
        size = runs[-1]["bytes"] / 1e6
        print(f"{n:>9,} {a.days:>5} {secs:>17.1f} {size:>8.2f} {runs[-1]['left_out']:>8}"
              + (f"   (prepared in {prep:.0f} s)" if prep else ""), flush=True)


if __name__ == "__main__":
    main()
