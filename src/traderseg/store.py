"""The fills store: a DuckDB file holding the canonical tables.

The store is the hand-off point between ingest and everything downstream. It creates the
canonical tables (see :mod:`traderseg.schema`) plus an ``ingest_runs`` log, and applies the
DuckDB resource settings from :class:`traderseg.settings.Settings`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb

from traderseg.schema import ACCOUNTS, FILLS, MARKET, REJECTS, TRANSFERS, TRUTH
from traderseg.settings import get_settings

logger = logging.getLogger(__name__)

INGEST_RUNS_DDL = """
CREATE TABLE IF NOT EXISTS ingest_runs (
  run_id VARCHAR NOT NULL,
  started_at TIMESTAMPTZ NOT NULL,
  source VARCHAR NOT NULL,
  format VARCHAR NOT NULL,
  table_name VARCHAR NOT NULL,
  rows_read BIGINT NOT NULL,
  rows_stored BIGINT NOT NULL,
  rows_rejected BIGINT NOT NULL,
  rows_already_present BIGINT NOT NULL
)
"""

# Canonical tables held by the store; fills carry the source file they came from.
STORE_TABLES = (FILLS, ACCOUNTS, MARKET, TRANSFERS, TRUTH, REJECTS)


def connect(path: str | Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) a store and make sure its tables exist.

    Parameters
    ----------
    path : str or Path
        DuckDB file; ``":memory:"`` for a throw-away store.
    read_only : bool
        Open without write access (the tables must already exist).

    Returns
    -------
    duckdb.DuckDBPyConnection
        Connection with the canonical tables present.
    """
    settings = get_settings()
    config: dict[str, str | bool | int | float | list[str]] = {}
    if settings.duckdb_threads:
        config["threads"] = settings.duckdb_threads
    if settings.duckdb_memory_limit:
        config["memory_limit"] = settings.duckdb_memory_limit
    con = duckdb.connect(str(path), read_only=read_only, config=config)
    # no progress bar: it prints to the standard output of any program embedding the library
    con.execute("SET enable_progress_bar = false")
    # Dates and hours of fills are UTC days and hours, whatever the machine's zone.
    con.execute("SET TimeZone = 'UTC'")
    if not read_only:
        ensure_tables(con)
    return con


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the canonical tables and the ingest log when they are missing."""
    for table in STORE_TABLES:
        extra = ("source VARCHAR",) if table is FILLS else ()
        con.execute(table.duckdb_ddl(extra=extra))
    con.execute(INGEST_RUNS_DDL)
