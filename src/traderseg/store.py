"""The fills store: a DuckDB file holding the canonical tables.

The store is the hand-off point between ingest and everything downstream. It creates the
canonical tables (see :mod:`traderseg.schema`) plus an ``ingest_runs`` log, and applies the
DuckDB resource settings from :class:`traderseg.settings.Settings`.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from traderseg.errors import DataError, SchemaError
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


# DuckDB database files carry this magic at byte 8 of their first block.
_DUCKDB_MAGIC = b"DUCK"
_OTHER_FORMATS = ((b"PAR1", "a Parquet file"), (b"SQLite format 3", "an SQLite database"),
                  (b"PK\x03\x04", "a zip archive"), (b"\x1f\x8b", "a gzip file"))
_LOCK_PID = re.compile(r"\(PID (\d+)\)")


def open_store(path: str | Path, *, read_only: bool = False,
               must_exist: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the store file at ``path`` with clear errors for the paths that cannot be one.

    Unlike :func:`connect`, which takes any DuckDB location, this is for a store named by a
    user: it refuses ``:memory:`` (the data would vanish when the program ends), a directory,
    a file that is not a DuckDB database (a Parquet or CSV file given as ``--db`` by
    mistake), and reports a store opened for writing by another process. ``must_exist``
    refuses a missing file, as ``read_only`` does (a command that records into an existing
    store must not create one at a mistyped path).

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
    if (read_only or must_exist) and not p.exists():
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


def read_parquet_file(path: str | Path, what: str) -> pd.DataFrame:
    """Read a Parquet file given on the command line or to the API.

    Raises
    ------
    DataError
        Naming ``what`` (e.g. ``--assignments``) and the path: missing, a directory, or
        not a readable Parquet file.
    """
    p = Path(path)
    if p.is_dir():
        raise DataError(f"{what} {p}: is a directory, not a Parquet file")
    if not p.exists():
        raise DataError(f"{what} {p}: file not found")
    try:
        return pd.read_parquet(p)
    except (OSError, ValueError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise DataError(f"{what} {p}: not a readable Parquet file ({reason})") from None


def store_name(con: duckdb.DuckDBPyConnection) -> str:
    """Return the file of a connection's store, for messages (``:memory:`` for none)."""
    row = con.execute("SELECT path FROM duckdb_databases() "
                      "WHERE database_name = current_database()").fetchone()
    return str(row[0]) if row and row[0] else ":memory:"


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


# ---------------------------------------------------------------- shared helpers
# Store access and time parsing shared by the analyses (profitability, drivers, churn,
# migration, lifetime value).

ASSIGNMENT_COLUMNS = ("account_id", "segment", "segment_name")
_OPTIONAL_COLUMNS = ("lifecycle", "value_tier", "risk_score")


def store_connection(
    db: str | Path | duckdb.DuckDBPyConnection,
) -> tuple[duckdb.DuckDBPyConnection, bool]:
    """Return a connection to the store and whether the caller must close it.

    The analyses take either a store file or an open connection; a file is opened
    read-only through :func:`open_store` (so a missing or foreign file is a clear error).

    Parameters
    ----------
    db : str, Path or duckdb connection
        A store file (opened read-only) or an open connection.

    Returns
    -------
    tuple of (duckdb.DuckDBPyConnection, bool)
        The connection, and True when it was opened here.
    """
    if isinstance(db, duckdb.DuckDBPyConnection):
        db.execute("SET TimeZone = 'UTC'")
        return db, False
    return open_store(db, read_only=True), True



def read_assignments(assignments: pd.DataFrame | str | Path, *,
                     what: str | None = None) -> pd.DataFrame:
    """Read and check segment assignments.

    Parameters
    ----------
    assignments : pandas.DataFrame, str or Path
        A frame, or a Parquet file, with ``account_id``, ``segment`` (int id),
        ``segment_name`` and optionally ``lifecycle`` (or ``lifecycle_stage``),
        ``value_tier``, ``risk_score``.
    what : str, optional
        What the assignments are, for the messages (default: the file, or "assignments").

    Returns
    -------
    pandas.DataFrame
        The known columns, ``account_id`` as str, ``segment`` as int64.

    Raises
    ------
    SchemaError
        A required column is missing or ``segment`` is not an integer id.
    DataError
        No account, a missing account_id/segment, or an account listed twice.
    """
    if what is None:
        what = ("assignments" if isinstance(assignments, pd.DataFrame)
                else f"assignments file {assignments}")
    if not isinstance(assignments, pd.DataFrame):
        assignments = read_parquet_file(assignments, "assignments file")
    if "lifecycle" not in assignments.columns and "lifecycle_stage" in assignments.columns:
        # the segmentation overlays call it lifecycle_stage
        assignments = assignments.rename(columns={"lifecycle_stage": "lifecycle"})
    missing = [c for c in ASSIGNMENT_COLUMNS if c not in assignments.columns]
    if missing:
        raise SchemaError(f"assignments lack column(s) {missing}; present: "
                          f"{list(assignments.columns)}")
    if assignments.empty:  # every account would count as unassigned, without a word
        raise DataError(f"{what}: no accounts")
    keep = [*ASSIGNMENT_COLUMNS, *(c for c in _OPTIONAL_COLUMNS if c in assignments.columns)]
    out = assignments[keep].reset_index(drop=True).copy()
    for col in ("account_id", "segment"):
        bad = out[col].isna().to_numpy()
        if bad.any():
            raise DataError(f"assignments row {int(np.argmax(bad))}: {col} is missing "
                            f"({int(bad.sum())} row(s) in all)")
    seg = pd.to_numeric(out["segment"], errors="coerce")
    bad = (seg.isna() | (seg != seg.round())).to_numpy()
    if bad.any():
        i = int(np.argmax(bad))
        raise SchemaError(f"assignments row {i}: segment {out['segment'].iloc[i]!r} is not "
                          "an integer segment id")
    out["segment"] = seg.astype("int64")
    out["account_id"] = out["account_id"].astype(str)
    out["segment_name"] = out["segment_name"].astype("string").fillna(out["segment"].astype(str))
    dup = out["account_id"].duplicated().to_numpy()
    if dup.any():
        i = int(np.argmax(dup))
        raise DataError(f"assignments row {i}: account {out['account_id'].iloc[i]!r} is "
                        "listed more than once")
    if "risk_score" in out.columns:
        out["risk_score"] = pd.to_numeric(out["risk_score"], errors="coerce")
    return out



def as_utc(value: Any, name: str) -> pd.Timestamp:
    """Parse a timestamp-like value as UTC (naive values are read as UTC).

    Parameters
    ----------
    value : timestamp-like
        The value to parse.
    name : str
        What it is, for the error message.

    Returns
    -------
    pandas.Timestamp
        Timezone-aware UTC timestamp.
    """
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise DataError(f"{name} is not a timestamp: {value!r}") from exc
    if ts is pd.NaT:
        raise DataError(f"{name} is missing")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")



def fill_bounds(con: duckdb.DuckDBPyConnection) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Return the first and last fill time of the store.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Store connection.

    Returns
    -------
    tuple of pandas.Timestamp
        ``(first, last)`` fill times, UTC.

    Raises
    ------
    SchemaError
        The store has no fills table.
    DataError
        The fills table is empty.
    """
    try:
        bounds = con.execute("SELECT epoch_us(MIN(ts)), epoch_us(MAX(ts)) FROM fills").fetchone()
    except duckdb.CatalogException as exc:
        raise SchemaError(f"{store_name(con)}: no 'fills' table; run `traderseg ingest` "
                          "first") from exc
    if bounds is None or bounds[0] is None:
        raise DataError("the store has no fills")
    return (pd.Timestamp(bounds[0], unit="us", tz="UTC"),
            pd.Timestamp(bounds[1], unit="us", tz="UTC"))



def check_covered(con: duckdb.DuckDBPyConnection, end: pd.Timestamp) -> None:
    """Raise unless the store's fills reach the UTC day before ``end``.

    A horizon ``[t, end)`` can only be observed (activity or its absence) when the store
    holds fills up to that day; the last day with fills counts as covered.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Store connection.
    end : pandas.Timestamp
        End (exclusive) of the period that must be covered.

    Raises
    ------
    DataError
        The period runs past the last day of the store.
    """
    _, last = fill_bounds(con)
    need = (end - pd.Timedelta(microseconds=1)).normalize()
    if need > last.normalize():
        raise DataError(f"cutoff outside the data: the period up to {end.isoformat()} runs past "
                        f"the last day with fills ({last.date()})")
