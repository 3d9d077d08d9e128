"""Daily (or any fixed-width) trading activity per segment, aggregated in DuckDB.

The fills never leave the database: the segment assignments are registered as a view,
joined to ``fills`` and aggregated by one SQL query; only the per-segment, per-bucket
totals come back to pandas.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from traderseg.analysis.events.market import query_frame
from traderseg.errors import ConfigError, DataError, SchemaError

logger = logging.getLogger(__name__)

ACTIVITY_COLUMNS = [
    "segment", "ts", "fills", "notional_usd", "active_accounts",
    "buy_notional_usd", "sell_notional_usd", "net_delta_usd",
]
FILL_COLUMNS = (
    "fill_id", "ts", "account_id", "underlying", "kind", "side", "qty", "notional_usd",
    "delta", "underlying_price",
)

_CHECKS = """
SELECT
  count(*) AS n,
  count(*) FILTER (WHERE side IS NULL OR side NOT IN ('buy', 'sell')) AS bad_side,
  min(fill_id) FILTER (WHERE side IS NULL OR side NOT IN ('buy', 'sell')) AS bad_side_id,
  count(*) FILTER (WHERE kind IS NULL OR kind NOT IN ('spot', 'perp', 'future', 'option'))
    AS bad_kind,
  min(fill_id) FILTER (WHERE kind IS NULL OR kind NOT IN ('spot', 'perp', 'future', 'option'))
    AS bad_kind_id,
  count(*) FILTER (WHERE kind = 'option' AND (delta IS NULL OR underlying_price IS NULL
    OR qty IS NULL)) AS bad_option,
  min(fill_id) FILTER (WHERE kind = 'option' AND (delta IS NULL OR underlying_price IS NULL
    OR qty IS NULL)) AS bad_option_id,
  count(*) FILTER (WHERE notional_usd IS NULL OR notional_usd < 0 OR ts IS NULL
    OR f.account_id IS NULL) AS bad_fill,
  min(fill_id) FILTER (WHERE notional_usd IS NULL OR notional_usd < 0 OR ts IS NULL
    OR f.account_id IS NULL) AS bad_fill_id,
  count(*) FILTER (WHERE a.account_id IS NULL) AS unassigned,
  min(f.account_id) FILTER (WHERE a.account_id IS NULL) AS unassigned_id
FROM {fills} f LEFT JOIN {assign} a ON f.account_id = a.account_id
WHERE $underlying IS NULL OR f.underlying = $underlying
"""

_AGGREGATE = """
WITH j AS (
  SELECT
    COALESCE(a.segment, $unassigned) AS segment,
    time_bucket(to_microseconds($width), timezone('UTC', f.ts), TIMESTAMP '1970-01-01') AS ts,
    f.account_id,
    f.notional_usd,
    CASE WHEN f.side = 'buy' THEN 1.0 ELSE -1.0 END AS sign,
    CASE WHEN f.kind = 'option'
      THEN f.qty * f.delta * f.underlying_price ELSE f.notional_usd END AS delta_usd
  FROM {fills} f LEFT JOIN {assign} a ON f.account_id = a.account_id
  WHERE $underlying IS NULL OR f.underlying = $underlying
)
SELECT
  segment,
  ts,
  count(*) AS fills,
  sum(notional_usd) AS notional_usd,
  count(DISTINCT account_id) AS active_accounts,
  sum(notional_usd) FILTER (WHERE sign > 0) AS buy_notional_usd,
  sum(notional_usd) FILTER (WHERE sign < 0) AS sell_notional_usd,
  sum(sign * delta_usd) AS net_delta_usd
FROM j
GROUP BY segment, ts
ORDER BY segment, ts
"""

FillsSource = duckdb.DuckDBPyConnection | str | Path | pd.DataFrame


def segment_activity(
    con_or_fills: FillsSource,
    assignments: pd.DataFrame,
    freq: str = "1D",
    *,
    underlying: str | None = None,
    segment_col: str = "segment",
    unassigned: str | None = "unassigned",
) -> pd.DataFrame:
    """Activity per segment and time bucket: fills, notional, accounts, net delta.

    Parameters
    ----------
    con_or_fills : duckdb.DuckDBPyConnection, str, Path or pandas.DataFrame
        A store connection (its ``fills`` table is read), a store file, or a frame of
        fills in the canonical shape (queried in an in-memory DuckDB).
    assignments : pandas.DataFrame
        One row per account: ``account_id`` and the segment column.
    freq : str
        Fixed bucket width understood by :class:`pandas.Timedelta` (``"1D"``, ``"6h"``,
        ``"7D"``); buckets start at multiples of the width from 1970-01-01 UTC.
    underlying : str, optional
        Only fills on this underlying.
    segment_col : str
        Column of ``assignments`` holding the segment.
    unassigned : str or None
        Segment label of fills whose account has no assignment; ``None`` makes such
        fills an error instead.

    Returns
    -------
    pandas.DataFrame
        Columns ``segment`` (string), ``ts`` (bucket start, UTC), ``fills``,
        ``notional_usd``, ``active_accounts``, ``buy_notional_usd``,
        ``sell_notional_usd`` and ``net_delta_usd`` (buy minus sell exposure in USD;
        options count ``qty * delta * underlying_price``). Every segment has a row for
        every bucket between the first and the last fill, zero when it did not trade.

    Raises
    ------
    SchemaError
        Missing columns in the fills or the assignments, or an account assigned twice.
    DataError
        No fills, a fill with an invalid side, kind or notional, an option fill without
        delta or underlying price, or unassigned fills when ``unassigned`` is None.
    """
    width = _bucket_width(freq)
    assign = _check_assignments(assignments, segment_col)
    con, owned, fills_name = _open(con_or_fills)
    view = f"_segments_{uuid.uuid4().hex[:12]}"
    try:
        _check_fill_columns(con, fills_name)
        con.register(view, assign)
        params: dict[str, object] = {"underlying": underlying}
        _check_fills(con, _CHECKS.format(fills=fills_name, assign=view), params, unassigned)
        sql = _AGGREGATE.format(fills=fills_name, assign=view)
        params = {"underlying": underlying, "width": width, "unassigned": unassigned}
        # DuckDB binds the width as BIGINT microseconds.
        result = query_frame(con, sql, params)
    finally:
        try:
            con.unregister(view)
        finally:
            if owned:
                con.close()
    return _complete(result, list(assign["segment"].unique()), pd.Timedelta(freq))


def _bucket_width(freq: str) -> int:
    try:
        width = pd.Timedelta(freq)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"freq must be a fixed width such as '1D' or '6h', got {freq!r}") from exc
    if width <= pd.Timedelta(0):
        raise ConfigError(f"freq must be positive, got {freq!r}")
    return int(width / pd.Timedelta(microseconds=1))


def _check_assignments(assignments: pd.DataFrame, segment_col: str) -> pd.DataFrame:
    if not isinstance(assignments, pd.DataFrame):
        kind = type(assignments).__name__
        raise SchemaError(f"assignments must be a pandas DataFrame, got {kind}")
    missing = [c for c in ("account_id", segment_col) if c not in assignments.columns]
    if missing:
        raise SchemaError(f"assignments are missing column(s): {', '.join(missing)}")
    out = pd.DataFrame({
        "account_id": assignments["account_id"].astype(str).to_numpy(dtype=object),
        "segment": assignments[segment_col].to_numpy(dtype=object),
    })
    null = assignments["account_id"].isna() | assignments[segment_col].isna()
    if null.any():
        row = assignments.index[null][0]
        raise SchemaError(f"assignments row {row}: account_id or {segment_col!r} is missing")
    out["segment"] = out["segment"].astype(str).to_numpy(dtype=object)
    dup = out["account_id"].duplicated()
    if dup.any():
        raise SchemaError(
            f"assignments give account {out.loc[dup, 'account_id'].iloc[0]!r} more than one row"
        )
    return out


def _open(source: FillsSource) -> tuple[duckdb.DuckDBPyConnection, bool, str]:
    if isinstance(source, duckdb.DuckDBPyConnection):
        return source, False, "fills"
    if isinstance(source, pd.DataFrame):
        con = duckdb.connect()
        con.register("fills_input", source)
        return con, True, "fills_input"
    path = Path(source)
    if not path.is_file():
        raise DataError(f"fills store {path} does not exist")
    from traderseg.store import open_store

    return open_store(path, read_only=True), True, "fills"


def _check_fill_columns(con: duckdb.DuckDBPyConnection, name: str) -> None:
    try:
        cols = {r[0] for r in con.execute(f"DESCRIBE {name}").fetchall()}
    except duckdb.CatalogException as exc:
        raise SchemaError(f"no {name!r} table to read fills from") from exc
    missing = [c for c in FILL_COLUMNS if c not in cols]
    if missing:
        raise SchemaError(f"fills are missing column(s): {', '.join(missing)}")


def _check_fills(
    con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, object], unassigned: str | None
) -> None:
    row = query_frame(con, sql, params).iloc[0]
    where = f" on {params['underlying']}" if params["underlying"] else ""
    if row["n"] == 0:
        raise DataError(f"no fills{where} to aggregate")
    problems = (
        ("bad_side", "side must be 'buy' or 'sell'"),
        ("bad_kind", "kind must be spot, perp, future or option"),
        ("bad_option", "option fills need qty, delta and underlying_price"),
        ("bad_fill", "ts, account_id and a notional_usd >= 0 are required"),
    )
    for key, reason in problems:
        if row[key]:
            first = row[key + "_id"]
            raise DataError(
                f"{int(row[key])} fill(s) are invalid: {reason} (first fill_id {first!r})"
            )
    if row["unassigned"]:
        message = (
            f"{int(row['unassigned'])} fill(s) belong to accounts without a segment "
            f"(e.g. account_id {row['unassigned_id']!r})"
        )
        if unassigned is None:
            raise DataError(message)
        logger.warning("%s; counted under segment %r", message, unassigned)


def _complete(result: pd.DataFrame, segments: list[str], width: pd.Timedelta) -> pd.DataFrame:
    result["ts"] = pd.to_datetime(result["ts"]).dt.tz_localize("UTC").astype("datetime64[us, UTC]")
    present = set(result["segment"])
    all_segments = sorted(set(segments) | present)
    buckets = pd.date_range(result["ts"].min(), result["ts"].max(), freq=width)
    grid = pd.MultiIndex.from_product([all_segments, buckets], names=["segment", "ts"])
    out = result.set_index(["segment", "ts"]).reindex(grid)
    counts = ["fills", "active_accounts"]
    out[counts] = out[counts].fillna(0).astype(np.int64)
    sums = ["notional_usd", "buy_notional_usd", "sell_notional_usd", "net_delta_usd"]
    out[sums] = out[sums].astype("float64").fillna(0.0)
    out = out.reset_index()
    out["segment"] = out["segment"].astype(object)
    out["ts"] = out["ts"].astype("datetime64[us, UTC]")
    return out[ACTIVITY_COLUMNS]
