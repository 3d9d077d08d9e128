"""A store holding given fills (import as ``helpers.store``)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pandas as pd

from traderseg.store import connect


def fills_store(fills: pd.DataFrame, path: str | Path = ":memory:",
                truth: pd.DataFrame | None = None) -> duckdb.DuckDBPyConnection:
    """Open a store at ``path`` and insert ``fills`` (by column name) and ``truth`` rows."""
    con = connect(path)
    con.register("src", fills)
    cols = ", ".join(fills.columns)
    con.execute(f"INSERT INTO fills ({cols}) SELECT {cols} FROM src")
    con.unregister("src")
    if truth is not None:
        con.register("tr", truth)
        con.execute("INSERT INTO truth (account_id, archetype, created_at, churned_at) "
                    "SELECT account_id, archetype, created_at, churned_at FROM tr")
        con.unregister("tr")
    return con


def simulated_store(root: Path, *, accounts: int, days: int, seed: int,
                    start: date = date(2024, 1, 1), name: str = "venue.duckdb") -> Path:
    """Simulate a venue into ``root / "sim"`` and ingest it into the store ``root / name``."""
    from traderseg.ingest import ingest
    from traderseg.simulate import simulate_venue

    simulate_venue(root / "sim", accounts=accounts, days=days, seed=seed, start=start)
    db = root / name
    ingest([root / "sim"], db)
    return db
