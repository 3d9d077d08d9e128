"""The fills store: a DuckDB file holding the canonical tables.

The store is the hand-off point between ingest and everything downstream. It creates the
canonical tables (see :mod:`traderseg.schema`) plus an ``ingest_runs`` log, and applies the
DuckDB resource settings from :class:`traderseg.settings.Settings`.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import duckdb

from traderseg.errors import DataError
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


# DuckDB database files carry this magic at byte 8 of their first block.
_DUCKDB_MAGIC = b"DUCK"
_OTHER_FORMATS = ((b"PAR1", "a Parquet file"), (b"SQLite format 3", "an SQLite database"),
                  (b"PK\x03\x04", "a zip archive"), (b"\x1f\x8b", "a gzip file"))
_LOCK_PID = re.compile(r"\(PID (\d+)\)")


def open_store(path: str | Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the store file at ``path`` with clear errors for the paths that cannot be one.

    Unlike :func:`connect`, which takes any DuckDB location, this is for a store named by a
    user: it refuses ``:memory:`` (the data would vanish when the program ends), a directory,
    a file that is not a DuckDB database (a Parquet or CSV file given as ``--db`` by
    mistake), and reports a store opened for writing by another process.

    Raises
    ------
    DataError
        Naming the path and what is wrong.
    """
    text = str(path)
    if text == ":memory:" or text.startswith(":memory:"):
        raise DataError(f"{text}: an in-memory store would be discarded when the command "
                        "ends; give a store file")
    p = Path(path)
    if p.is_dir():
        raise DataError(f"{p}: is a directory, not a store file")
    if read_only and not p.exists():
        raise DataError(f"{p}: no such store (run `traderseg ingest` first)")
    if p.exists() and p.stat().st_size > 0:
        _check_is_duckdb(p)
    if not p.parent.exists():
        raise DataError(f"{p}: folder {p.parent} does not exist")
    try:
        return connect(p, read_only=read_only)
    except duckdb.IOException as exc:
        pid = _LOCK_PID.search(str(exc))
        if pid:
            raise DataError(f"{p}: the store is in use by process {pid.group(1)}") from None
        raise DataError(f"{p}: cannot open the store ({str(exc).splitlines()[0]})") from None
    except duckdb.Error as exc:
        raise DataError(f"{p}: cannot open the store ({str(exc).splitlines()[0]})") from None


def _check_is_duckdb(p: Path) -> None:
    try:
        with p.open("rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise DataError(f"{p}: cannot read the store ({exc.strerror})") from None
    if head[8:12] == _DUCKDB_MAGIC:
        return
    for magic, what in _OTHER_FORMATS:
        if head.startswith(magic):
            raise DataError(f"{p}: is {what}, not a DuckDB store; --db names the store file "
                            "the data is loaded into")
    raise DataError(f"{p}: is not a DuckDB store file (a CSV or other file given as --db?)")
