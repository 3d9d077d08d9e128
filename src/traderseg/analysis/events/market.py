"""Load the daily market series in the canonical ``market`` shape.

Two sources give the same frame: the real daily files shipped with the package (or any
folder laid out the same way) and the ``market`` table of a fills store. Every frame
leaving this module has gone through :func:`validate_market`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from traderseg.errors import ConfigError, DataError, SchemaError
from traderseg.schema import MARKET
from traderseg.settings import get_settings

logger = logging.getLogger(__name__)

PRICE_SUFFIX = "USDT_1d.csv"
PRICE_COLUMNS = ("timestamp", "high", "low", "close")
IV_COLUMNS = ("date", "dvol")

MarketSource = str | Path | duckdb.DuckDBPyConnection | None


def load_market(
    path_or_dir: MarketSource = None, *, underlyings: Sequence[str] | None = None
) -> pd.DataFrame:
    """Load daily market bars as a canonical ``market`` frame.

    Parameters
    ----------
    path_or_dir : str, Path, duckdb.DuckDBPyConnection or None
        A folder of daily files (``<SYM>USDT_1d.csv`` with timestamp, open, high, low,
        close, volume; optional ``DVOL_<SYM>_1d.csv`` with date, dvol), a DuckDB store
        file, or an open store connection whose ``market`` table is read. ``None`` reads
        the folder ``get_settings().market_data_dir`` (the real BTC and ETH series).
    underlyings : sequence of str, optional
        Keep only these underlyings (upper case, e.g. ``["BTC"]``).

    Returns
    -------
    pandas.DataFrame
        Columns of :data:`traderseg.schema.MARKET`: ``ts`` (UTC, daily), ``underlying``,
        ``price`` (close), ``high``, ``low``, ``iv_index`` (NaN on days without an
        implied-vol print; never filled) and ``event`` (None), sorted by underlying, ts.

    Raises
    ------
    SchemaError
        A file lacks a column or holds a value that is not a number or a date.
    DataError
        The source is empty, an underlying is missing, or a price is not positive.

    Examples
    --------
    >>> m = load_market(underlyings=["BTC"])
    >>> float(m.loc[m.ts == "2020-03-12", "price"].iloc[0])
    4800.0
    """
    if isinstance(path_or_dir, duckdb.DuckDBPyConnection):
        return market_from_store(path_or_dir, underlyings=underlyings)
    path = Path(path_or_dir) if path_or_dir is not None else get_settings().market_data_dir
    if path.is_dir():
        return _load_folder(path, underlyings)
    if path.is_file():
        if path.suffix.lower() == ".csv":
            raise ConfigError(
                f"{path}: give the folder holding the daily files, not one CSV file"
            )
        from traderseg.store import open_store

        con = open_store(path, read_only=True)
        try:
            return market_from_store(con, underlyings=underlyings)
        finally:
            con.close()
    raise DataError(f"market source {path} does not exist")


def market_from_store(
    con: duckdb.DuckDBPyConnection, *, underlyings: Sequence[str] | None = None
) -> pd.DataFrame:
    """Read and validate the ``market`` table of a fills store.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Open store connection.
    underlyings : sequence of str, optional
        Keep only these underlyings.

    Returns
    -------
    pandas.DataFrame
        Canonical market frame (see :func:`load_market`).
    """
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    if "market" not in tables:
        raise SchemaError("the store has no 'market' table")
    frame = query_frame(con, "SELECT * FROM market")
    if frame.empty:
        raise DataError("the store's market table is empty")
    return _select(validate_market(frame), underlyings, "the store's market table")


def query_frame(
    con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, object] | None = None
) -> pd.DataFrame:
    """Run a query and return the result as pandas, by way of Arrow."""
    result = con.execute(sql, params or {})
    fetch = getattr(result, "to_arrow_table", None) or result.fetch_arrow_table
    return fetch().to_pandas()


def validate_market(market: pd.DataFrame) -> pd.DataFrame:
    """Check a market frame against the contract and return a normalised copy.

    Parameters
    ----------
    market : pandas.DataFrame
        Needs ``ts``, ``underlying`` and ``price``; ``high``, ``low``, ``iv_index`` and
        ``event`` are optional and added as missing when absent.

    Returns
    -------
    pandas.DataFrame
        Columns in contract order, ``ts`` as UTC microseconds, sorted by underlying, ts.

    Raises
    ------
    SchemaError
        A required column is missing or a value has the wrong type.
    DataError
        The frame is empty, a price is missing or not positive, or a (underlying, ts)
        pair repeats.
    """
    if not isinstance(market, pd.DataFrame):
        raise SchemaError(f"market must be a pandas DataFrame, got {type(market).__name__}")
    missing = [c for c in MARKET.required if c not in market.columns]
    if missing:
        raise SchemaError(f"market is missing required column(s): {', '.join(missing)}")
    if market.empty:
        raise DataError("market is empty: no bars to analyse")
    out = pd.DataFrame(index=market.index)
    out["ts"] = _utc(market["ts"], "ts")
    out["underlying"] = market["underlying"].astype(object)
    bad_u = out["underlying"].isna()
    if bad_u.any():
        raise DataError(f"market row {market.index[bad_u][0]}: field 'underlying' is missing")
    for col in ("price", "high", "low", "iv_index"):
        if col in market.columns:
            out[col] = _numeric(market[col], col)
        else:
            out[col] = np.nan
    bad = ~(out["price"] > 0) | ~np.isfinite(out["price"])
    if bad.any():
        row = market.index[bad][0]
        raise DataError(
            f"market row {row}: field 'price' must be a positive number, "
            f"got {market.loc[row, 'price']!r}"
        )
    out["event"] = None
    if "event" in market.columns:
        event = market["event"].astype(object)
        out["event"] = event.where(event.notna(), None)
    out["event_start"] = pd.Series(pd.NaT, index=out.index, dtype="datetime64[us, UTC]")
    if "event_start" in market.columns:  # optional: null where only the day is known
        known = market["event_start"].notna()
        out.loc[known, "event_start"] = _utc(market.loc[known, "event_start"], "event_start")
    dup = out.duplicated(["underlying", "ts"], keep=False)
    if dup.any():
        row = out[dup].iloc[0]
        raise DataError(
            f"market has {int(dup.sum())} rows sharing (underlying, ts), "
            f"e.g. {row['underlying']} at {row['ts']}"
        )
    out = out.sort_values(["underlying", "ts"], kind="stable").reset_index(drop=True)
    return out[MARKET.names]


def _utc(values: pd.Series, field: str) -> pd.Series:
    try:
        ts = pd.to_datetime(values, utc=True)
    except (ValueError, TypeError) as exc:
        raise SchemaError(f"market field {field!r} holds values that are not times: {exc}") from exc
    if ts.isna().any():
        raise DataError(f"market row {values.index[ts.isna()][0]}: field {field!r} is missing")
    return ts.astype("datetime64[us, UTC]")


def _numeric(values: pd.Series, field: str) -> pd.Series:
    num = pd.to_numeric(values, errors="coerce").astype("float64")
    wrong = num.isna() & values.notna()
    if wrong.any():
        row = values.index[wrong][0]
        raise SchemaError(f"market row {row}: field {field!r} is not a number: {values[row]!r}")
    return num


def _load_folder(folder: Path, underlyings: Sequence[str] | None) -> pd.DataFrame:
    files = sorted(folder.glob(f"*{PRICE_SUFFIX}"))
    if not files:
        raise DataError(f"{folder}: no daily price files named <SYM>{PRICE_SUFFIX}")
    available = {f.name[: -len(PRICE_SUFFIX)]: f for f in files}
    wanted = list(underlyings) if underlyings is not None else sorted(available)
    absent = [u for u in wanted if u not in available]
    if absent:
        raise DataError(
            f"{folder}: no price file for {', '.join(absent)} "
            f"(available: {', '.join(sorted(available))})"
        )
    frames = [_load_underlying(folder, u, available[u]) for u in wanted]
    return validate_market(pd.concat(frames, ignore_index=True))


def _load_underlying(folder: Path, underlying: str, price_file: Path) -> pd.DataFrame:
    raw = _read_csv(price_file, PRICE_COLUMNS)
    ts = _parse_dates(raw["timestamp"], price_file, "timestamp")
    bars = pd.DataFrame({"ts": ts, "underlying": underlying})
    bars["price"] = _parse_numbers(raw["close"], price_file, "close", required=True)
    bars["high"] = _parse_numbers(raw["high"], price_file, "high", required=False)
    bars["low"] = _parse_numbers(raw["low"], price_file, "low", required=False)
    _check_unique(ts, price_file, "timestamp")
    bars["iv_index"] = np.nan
    iv_file = folder / f"DVOL_{underlying}_1d.csv"
    if iv_file.exists():
        iv = _load_iv(iv_file)
        bars["iv_index"] = bars["ts"].map(iv).astype("float64")
        unused = int((~iv.index.isin(bars["ts"])).sum())
        if unused:
            logger.info(
                "%s: %d implied-vol days have no price bar and are not used", iv_file.name, unused
            )
        logger.info(
            "%s: implied vol present on %d of %d price days (missing days stay NaN)",
            underlying, int(bars["iv_index"].notna().sum()), len(bars),
        )
    bars["event"] = None
    return bars


def _load_iv(path: Path) -> pd.Series:
    raw = _read_csv(path, IV_COLUMNS)
    ts = _parse_dates(raw["date"], path, "date")
    _check_unique(ts, path, "date")
    values = _parse_numbers(raw["dvol"], path, "dvol", required=False)
    bad = values <= 0
    if bad.any():
        line = int(np.flatnonzero(bad.to_numpy())[0]) + 2
        raise DataError(f"{path.name} line {line}: field 'dvol' must be positive")
    return pd.Series(values.to_numpy(), index=pd.DatetimeIndex(ts))


def _read_csv(path: Path, columns: Sequence[str]) -> pd.DataFrame:
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in columns if c not in raw.columns]
    if missing:
        raise SchemaError(f"{path.name}: missing column(s) {', '.join(missing)}")
    if raw.empty:
        raise DataError(f"{path.name}: no rows")
    return raw


def _parse_dates(values: pd.Series, path: Path, field: str) -> pd.Series:
    ts = pd.to_datetime(values.str.strip(), format="%Y-%m-%d", errors="coerce", utc=True)
    if ts.isna().any():
        i = int(np.flatnonzero(ts.isna().to_numpy())[0])
        raise SchemaError(
            f"{path.name} line {i + 2}: field {field!r} is not a YYYY-MM-DD date: "
            f"{values.iloc[i]!r}"
        )
    return ts.astype("datetime64[us, UTC]")


def _parse_numbers(values: pd.Series, path: Path, field: str, *, required: bool) -> pd.Series:
    text = values.str.strip()
    blank = text == ""
    num = pd.to_numeric(text.where(~blank), errors="coerce").astype("float64")
    wrong = num.isna() & ~blank
    if required:
        wrong |= blank
    if wrong.any():
        i = int(np.flatnonzero(wrong.to_numpy())[0])
        raise SchemaError(
            f"{path.name} line {i + 2}: field {field!r} is not a number: {values.iloc[i]!r}"
        )
    if blank.any():
        logger.info("%s: %d blank %r values kept as missing", path.name, int(blank.sum()), field)
    return num


def _check_unique(ts: pd.Series, path: Path, field: str) -> None:
    dup = ts.duplicated()
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise DataError(
            f"{path.name} line {i + 2}: field {field!r} repeats the date {ts.iloc[i].date()}"
        )


def _select(market: pd.DataFrame, underlyings: Sequence[str] | None, where: str) -> pd.DataFrame:
    if underlyings is None:
        return market
    absent = sorted(set(underlyings) - set(market["underlying"]))
    if absent:
        raise DataError(f"{where} has no bars for {', '.join(absent)}")
    keep = market["underlying"].isin(list(underlyings))
    return market[keep].reset_index(drop=True)
