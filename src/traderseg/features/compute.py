"""Compute the catalogue as of a cutoff: from the store's daily tiles or from the fills.

Semantics
---------
- **As of a cutoff.** Only fills with ``ts < as_of`` are read; a fill at or after the
  cutoff never influences any value.
- **Windows** are whole UTC days: ``Nd`` / ``Nw`` cover ``[start_of_day(as_of) − N days,
  as_of)`` — exactly N days at a midnight cutoff, N days plus the partial cutoff day
  otherwise — and ``all`` is the whole history. ``recency_days`` and ``tenure_days`` are
  computed over the whole history (named ``__all``).
- **Accounts.** One row per account with at least one fill before the cutoff.
- **No activity in a window.** Counts and sums take their declared idle value (0); means,
  shares and ratios are NaN.
- **Unknown is not zero.** Option features are NaN without option fills; ``win_rate``
  without closing fills carrying a PnL; the leverage features without leveraged fills
  carrying a leverage; the liquidation features without fills carrying the flag; the event
  features when the store has no market events. ``leverage_known_share`` and
  ``liquidation_known_share`` say how much of the account's data carries the field.
- **Days the account could trade** (``span_days``): the UTC days from its first active day
  in the window through the cutoff's day, a partial cutoff day counting as a day, so a
  daily trader reads ``active_day_share`` 1 and ``event_activity_ratio`` 1 at any cutoff.
- **Event days** are the UTC days whose market row (any underlying, before the cutoff)
  carries an event. ``event_activity_ratio`` is ``((event_fills + r) / (event_days + 1)) /
  ((calm_fills + r) / (calm_days + 1))`` with ``r`` the account's fills per day.
- **Quantiles** (median, p95 of notional) come from a mergeable log-bucket sketch within
  2% (``SKETCH_RELATIVE_ERROR``) of the exact order statistic; ``exact_quantiles=True``
  computes them exactly (interpolated) from the fills instead.

Execution: tiles in the store (kept by ``ingest``, :mod:`traderseg.features.tiles`) when
they are current, plus the partial cutoff day from the fills; otherwise tiles computed
from the fills in the same query. Either way every window is merged in one aggregation.
On DuckDB the compiled SQL is reused at later cutoffs (:mod:`traderseg.features.sqlcache`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import duckdb
import pandas as pd

from traderseg.errors import DataError, SchemaError
from traderseg.features import windows as wins_
from traderseg.features.catalog import LIFETIME_ONLY

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from traderseg.features import batch

logger = logging.getLogger(__name__)

__all__ = [
    "LIFETIME_ONLY",
    "compute_features",
    "feature_columns",
    "features_expr",
    "parse_as_of",
    "parse_window",
    "window_days",
    "check_windows",
]

_WINDOW_RE = re.compile(r"^(\d+)([dw])$")
MAX_WINDOW_DAYS = 3650
"""Longest window in days; ten years is longer than any venue's history."""
TileMode = Literal["auto", "never", "require"]


def parse_window(window: str) -> timedelta | None:
    """Parse ``"30d"``, ``"2w"`` or ``"all"`` (``None``) into a timedelta of whole days."""
    days = window_days(window)
    return None if days is None else timedelta(days=days)


def window_days(window: str) -> int | None:
    """Length of a window in whole days (``None`` for ``all``).

    The one definition of a window, for the library and the command line alike.
    """
    if window == "all":
        return None
    m = _WINDOW_RE.match(window)
    if not m:
        raise SchemaError(f"{window!r} is not a window (use Nd or Nw, e.g. 30d, or all)")
    days = int(m.group(1)) * (7 if m.group(2) == "w" else 1)
    if not 1 <= days <= MAX_WINDOW_DAYS:
        raise SchemaError(f"window {window!r} must be 1 to {MAX_WINDOW_DAYS} days")
    return days


def check_windows(windows: Sequence[str]) -> dict[str, int | None]:
    """Validate windows (each once) and return their lengths in days (None: all)."""
    if not windows:
        raise SchemaError("windows: at least one window is needed")
    out: dict[str, int | None] = {}
    for w in windows:
        if w in out:
            raise SchemaError(f"window {w!r} is given twice")
        out[w] = window_days(w)
    return out


def parse_as_of(as_of: str | datetime | pd.Timestamp) -> datetime:
    """Parse a cutoff into an aware UTC datetime (naive input is taken as UTC)."""
    try:
        ts = pd.Timestamp(as_of)
    except (ValueError, TypeError) as exc:
        raise SchemaError(f"as_of {as_of!r} is not a timestamp: {exc}") from None
    if ts is pd.NaT:
        raise SchemaError(f"as_of {as_of!r} is not a timestamp")
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.to_pydatetime()


def feature_columns(windows: Sequence[str]) -> list[str]:
    """Names of the columns :func:`compute_features` returns, in order."""
    return wins_.feature_columns(windows)


def event_days_of(market: ir.Table | None, cutoff: datetime) -> list[date] | None:
    """Market-event days before the cutoff (None when the table carries no events)."""
    if market is None:
        return None
    m = market.filter(market.event.notnull())
    if int(m.count().execute()) == 0:
        return None
    m = m.filter(m.ts < cutoff)
    days = m.select(d=m.ts.date()).distinct().execute()["d"]
    return sorted(pd.Timestamp(x).date() for x in days)


def _event_days_duckdb(con: duckdb.DuckDBPyConnection, cutoff: datetime) -> list[date] | None:
    """:func:`event_days_of` on a DuckDB connection (UTC session), without Ibis."""
    row = con.execute("SELECT count(*), list(DISTINCT CAST(ts AS DATE)) FILTER (WHERE ts < ?) "
                      "FROM market WHERE event IS NOT NULL", [cutoff]).fetchone()
    if not row or not row[0]:
        return None
    return sorted(row[1] or [])


def features_expr(
    fills: ir.Table,
    as_of: str | datetime,
    windows: Sequence[str] = ("30d", "all"),
    *,
    market: ir.Table | None = None,
    exact_quantiles: bool = False,
    tiles: batch.Tiles | None = None,
    event_days: Sequence[date] | None = None,
) -> ir.Table:
    """Build the lazy Ibis expression of the whole catalogue.

    Parameters
    ----------
    fills : ibis Table
        Canonical fills.
    as_of : str or datetime
        Cutoff; only fills strictly before it are read.
    windows : sequence of str
        Windows such as ``"7d"``, ``"30d"``, ``"all"``.
    market : ibis Table, optional
        Canonical market table; event days come from its ``event`` column.
    exact_quantiles : bool
        Exact per-account quantiles instead of the sketch.
    tiles : Tiles, optional
        Stored tiles of every day before the cutoff's day; the partial cutoff day is
        computed from ``fills``. Without them, tiles are computed from the fills.
    event_days : sequence of date, optional
        Event days, when already known (otherwise read from ``market``).

    Returns
    -------
    ibis Table
        One row per account, columns :func:`feature_columns`.
    """
    from traderseg.features import batch

    cutoff = parse_as_of(as_of)
    wins = check_windows(windows)
    merged = dict(wins)
    merged.setdefault("all", None)  # recency, tenure and the account set
    if event_days is None and market is not None:
        event_days = event_days_of(market, cutoff)
    if tiles is None:
        starts = batch.window_start_days(cutoff, merged.values())
        t = batch.tiles_from_fills(fills, buckets=starts or [0], hi=cutoff)
    else:
        day0 = datetime(cutoff.year, cutoff.month, cutoff.day, tzinfo=cutoff.tzinfo)
        t = tiles
        if cutoff > day0:
            t = tiles.union(batch.tiles_from_fills(fills, lo=day0, hi=cutoff))
    exact = batch.exact_quantiles(fills, cutoff, merged) if exact_quantiles else None
    values = batch.window_values(t, cutoff, merged, event_days, exact_quantiles=exact)
    return batch.feature_table(values, list(windows)).order_by("account_id")


def _open(source: Any) -> tuple[duckdb.DuckDBPyConnection | None, Any, bool]:
    """Open a DuckDB path, or take a DuckDB connection or an Ibis backend.

    Returns the DuckDB connection (None for another engine), the Ibis backend when one was
    given, and whether the connection was opened here (and is closed after).
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise DataError(f"store {path} does not exist")
        from traderseg.store import open_store

        # the store's connection applies the memory / thread settings and UTC days; a
        # directory, another file format or a store in use is one line naming the path
        return open_store(path, read_only=True), None, True
    if isinstance(source, duckdb.DuckDBPyConnection):
        source.execute("SET TimeZone='UTC'")
        return source, None, False
    raw = getattr(source, "con", None)
    if isinstance(raw, duckdb.DuckDBPyConnection):
        return raw, source, False
    return None, source, False


def _duckdb_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Tables and views of the connection's schema (registered relations included)."""
    return {r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
        "AND table_catalog IN (current_database(), 'temp')").fetchall()}


NO_FILLS = "the store has no 'fills' table; run `traderseg ingest` first"


def _compute_duckdb(con: duckdb.DuckDBPyConnection, backend: Any, cutoff: datetime,
                    windows: Sequence[str], *, exact_quantiles: bool, use_market_events: bool,
                    tiles: TileMode) -> tuple[Any, bool, str]:
    """Run the catalogue's SQL on DuckDB: (Arrow table, tiles used, why).

    Ibis builds and compiles the SQL only when the cache (:mod:`~traderseg.features.sqlcache`)
    holds none for this key: a daily refresh runs the cached text without loading it.
    """
    from traderseg.features import sqlcache
    from traderseg.features import tiles as tile_store

    names = _duckdb_tables(con)
    if "fills" not in names:
        raise SchemaError(NO_FILLS)
    use_tiles, tiles_why = False, "not used"
    if tiles != "never":
        use_tiles, tiles_why = tile_store.status(con)
        if not use_tiles:
            if tiles == "require":
                raise DataError(f"the store's tiles are not current ({tiles_why}); "
                                "run with --rebuild-tiles")
            logger.info("features from the fills: %s", tiles_why)
    logger.info("features as of %s from %s", cutoff.isoformat(),
                "the store's daily tiles" if use_tiles else "the fills")
    event_days = (_event_days_duckdb(con, cutoff) if use_market_events and "market" in names
                  else None)
    fills_schema = tuple((str(r[0]), str(r[1])) for r in con.execute("DESCRIBE fills").fetchall())

    def compile_at(cut: datetime) -> str:
        import ibis

        b = backend if backend is not None else ibis.duckdb.from_connection(con)
        stored = tile_store.tile_tables(b, cut) if use_tiles else None
        expr = features_expr(b.table("fills"), cut, windows, exact_quantiles=exact_quantiles,
                             tiles=stored, event_days=event_days)
        return str(ibis.to_sql(expr, dialect="duckdb", pretty=False))

    key = sqlcache.cache_key(
        "features", tuple(windows), exact_quantiles,
        # the stored tiles' column types shape the SQL (a cast to the declared type is left
        # out where the column has it already)
        tile_store.stored_schemas(con) if use_tiles else None,
        fills_schema,
        None if event_days is None else tuple(wins_.day_number(d) for d in event_days),
        cutoff=cutoff)
    sql = sqlcache.cached_sql(key, cutoff, compile_at)
    return con.sql(sql).to_arrow_table(), use_tiles, tiles_why


def compute_features(
    source: Any,
    as_of: str | datetime,
    windows: Sequence[str] = ("30d", "all"),
    *,
    exact_quantiles: bool = False,
    use_market_events: bool = True,
    tiles: TileMode = "auto",
) -> pd.DataFrame:
    """Compute the catalogue for every account with fills before ``as_of``.

    Parameters
    ----------
    source : str, Path, duckdb connection or Ibis backend
        The fills store (tables ``fills`` and optionally ``market``).
    as_of : str or datetime
        Cutoff (UTC); fills at or after it are ignored.
    windows : sequence of str
        Windows to compute, e.g. ``("7d", "30d", "90d", "all")``.
    exact_quantiles : bool
        Exact per-account quantiles (an extra pass per window) instead of the sketch.
    use_market_events : bool
        Use the ``market`` table's events for the event-sensitivity family.
    tiles : {"auto", "never", "require"}
        Use the store's daily tiles when they are current (``auto``), never, or fail when
        they are not current (``require``).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``account_id``; columns :func:`feature_columns` (float64).
        ``attrs["source"]`` says whether the store's tiles or the fills were read, and
        ``attrs["tiles_status"]`` why the tiles were or were not used.

    Examples
    --------
    >>> import duckdb
    >>> from traderseg.store import ensure_tables
    >>> con = duckdb.connect()
    >>> ensure_tables(con)
    >>> _ = con.execute(
    ...     "INSERT INTO fills (fill_id, ts, account_id, instrument, underlying, kind, side, "
    ...     "qty, price, notional_usd, fee_usd, is_maker) VALUES "
    ...     "('1', '2024-01-01 10:00:00+00', 'a', 'BTC-PERPETUAL', 'BTC', 'perp', 'buy', "
    ...     "1, 40000, 40000, 20, false)")
    >>> df = compute_features(con, "2024-01-02", windows=("all",))
    >>> float(df.loc["a", "fill_count__all"]), float(df.loc["a", "perp_share__all"])
    (1.0, 1.0)
    """
    cutoff = parse_as_of(as_of)
    check_windows(windows)
    con, backend, owned = _open(source)
    try:
        if con is None:  # another engine: the expression runs there
            tables = set(backend.list_tables())
            if "fills" not in tables:
                raise SchemaError(NO_FILLS)
            if tiles == "require":
                raise DataError("the store's tiles are not current (the backend is not a "
                                "DuckDB store); run with --rebuild-tiles")
            use_tiles, tiles_why = False, "not used" if tiles == "never" else (
                "the backend is not a DuckDB store")
            market = backend.table("market") if use_market_events and "market" in tables else None
            table = features_expr(backend.table("fills"), cutoff, windows,
                                  exact_quantiles=exact_quantiles, market=market).to_pyarrow()
        else:
            table, use_tiles, tiles_why = _compute_duckdb(
                con, backend, cutoff, windows, exact_quantiles=exact_quantiles,
                use_market_events=use_market_events, tiles=tiles)
        df = table.to_pandas().set_index("account_id")
    finally:
        if owned and con is not None:
            con.close()
    if df.empty:
        raise DataError(f"no fills before {cutoff.isoformat()}")
    out = df[feature_columns(windows)].astype("float64")
    out.attrs["source"] = "tiles" if use_tiles else "fills"
    out.attrs["tiles_status"] = tiles_why
    return out

