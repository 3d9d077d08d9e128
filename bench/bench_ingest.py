"""Ingest throughput and memory on synthetic canonical fills.

Usage: python bench/bench_ingest.py [ROWS] [PARTS] [WORKDIR]
Writes ROWS fills (default 10M) in PARTS Parquet files, ingests them into a fresh store,
then ingests them again (everything already present), and prints rows/s and peak RSS,
beside a plain DuckDB ``INSERT ... FROM read_parquet`` into the same schema (no validation,
no dedupe) as the floor.
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from traderseg.ingest import ingest
from traderseg.schema import FILLS
from traderseg.store import connect


def write_parts(root: Path, rows: int, parts: int) -> None:
    (root / "fills").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    per = rows // parts
    t0 = np.datetime64("2024-01-01T00:00:00", "us").astype(np.int64)
    for p in range(parts):
        ids = np.arange(p * per, (p + 1) * per)
        qty = rng.gamma(2.0, 5.0, per) + 0.001
        price = 40000 + rng.normal(0, 500, per)
        cols = {
            "fill_id": pa.array(np.char.add("f", ids.astype(str))),
            "ts": pa.array(t0 + ids * 1_000_000, pa.timestamp("us", tz="UTC")),
            "account_id": pa.array(np.char.add("a", (ids % 50_000).astype(str))),
            "instrument": pa.array(np.full(per, "BTC-PERPETUAL")),
            "underlying": pa.array(np.full(per, "BTC")),
            "kind": pa.array(np.full(per, "perp")),
            "side": pa.array(np.where(ids % 2 == 0, "buy", "sell")),
            "qty": qty, "price": price, "notional_usd": qty * price,
            "fee_usd": qty * price * 5e-4, "is_maker": ids % 3 == 0,
        }
        table = pa.table({c.name: cols.get(c.name, pa.nulls(per, c.type)) for c in FILLS.columns},
                         schema=FILLS.arrow_schema())
        pq.write_table(table, root / "fills" / f"part-{p:04d}.parquet")


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000
    parts = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    work = Path(sys.argv[3]) if len(sys.argv) > 3 else Path(tempfile.mkdtemp())
    sim = work / "sim"
    t = time.perf_counter()
    write_parts(sim, rows, parts)
    print(f"wrote {rows:,} fills in {parts} parts: {time.perf_counter() - t:.1f}s")
    db = work / "bench.duckdb"
    db.unlink(missing_ok=True)
    for label in ("first load", "re-ingest"):
        t = time.perf_counter()
        rep = ingest(sim, db)
        dt = time.perf_counter() - t
        print(f"{label}: read {rep.total('read'):,} stored {rep.total('stored'):,} "
              f"already present {rep.total('already_present'):,} in {dt:.1f}s "
              f"= {rep.total('read') / dt:,.0f} rows/s")
    base = work / "baseline.duckdb"
    base.unlink(missing_ok=True)
    con: duckdb.DuckDBPyConnection = connect(base)
    t = time.perf_counter()
    con.execute(f"INSERT INTO fills SELECT * FROM read_parquet('{sim}/fills/*.parquet', "
                "filename = true)")
    con.close()
    dt = time.perf_counter() - t
    print(f"baseline (plain DuckDB INSERT from read_parquet, no checks): {dt:.1f}s "
          f"= {rows / dt:,.0f} rows/s")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:,.0f} MB")


if __name__ == "__main__":
    main()
