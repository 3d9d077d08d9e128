"""A store holding given fills (import as ``helpers.store``)."""

from __future__ import annotations

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
