"""Compile the feature catalogue to Ibis expressions and run them (DuckDB by default).

Semantics
---------
- **As of a cutoff.** Only fills with ``ts < as_of`` are read; a fill at or after the
  cutoff never influences any value. Windows are half-open: ``[as_of - window, as_of)``.
- **Accounts.** One row per account with at least one fill before the cutoff.
- **Windows.** ``7d``, ``30d``, ``90d``... or ``all`` (the account's whole history).
  ``recency_days`` and ``tenure_days`` are properties of the whole history and are always
  computed over it (named ``__all``).
- **No activity in a window.** Counts and sums are 0; means, shares and ratios are
  undefined (NaN) for an account without fills in that window.
- **Option features** are NaN for accounts without option fills in the window; ``win_rate``
  is NaN without closing fills carrying a realised PnL.
- **Event days** are the UTC days whose market row (any underlying) carries an event.
  ``event_activity_ratio`` is ``((event_fills + r) / (event_days + 1)) /
  ((calm_fills + r) / (calm_days + 1))`` over the days from the account's first fill in the
  window to the cutoff, where ``r`` is the account's own fills per day: one pseudo-day at
  its usual rate on each side, so the ratio is exactly 1 when there is no event evidence.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import ibis
import ibis.expr.types as ir
import pandas as pd

from traderseg.errors import DataError, SchemaError
from traderseg.features.catalog import CATALOG, column_name

logger = logging.getLogger(__name__)

LIFETIME_ONLY = ("recency_days", "tenure_days")
USED_COLUMNS = (
    "ts", "account_id", "instrument", "underlying", "kind", "side", "notional_usd", "fee_usd",
    "is_maker", "leverage", "position_effect", "realized_pnl_usd", "is_liquidation",
    "option_type", "strike", "expiry", "underlying_price", "iv", "delta",
)
DEEP_OTM_DELTA = 0.15
SHORT_DATED_DAYS = 3.0
HIGH_LEVERAGE = 20.0
_WINDOW_RE = re.compile(r"^(\d+)([dhw])$")
_SECONDS_PER_DAY = 86400.0


def parse_window(window: str) -> timedelta | None:
    """Parse ``"30d"``, ``"12h"``, ``"2w"`` or ``"all"`` (``None``) into a timedelta."""
    if window == "all":
        return None
    m = _WINDOW_RE.match(window)
    if not m or int(m.group(1)) <= 0:
        raise SchemaError(f"window {window!r}: expected a positive count with d, h or w, or 'all'")
    n, unit = int(m.group(1)), m.group(2)
    return {"d": timedelta(days=n), "h": timedelta(hours=n), "w": timedelta(weeks=n)}[unit]


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
    cols = [column_name(n, "all") for n in LIFETIME_ONLY]
    for w in windows:
        cols += [column_name(f.name, w) for f in CATALOG if f.name not in LIFETIME_ONLY]
    return cols


def _share(num: ir.NumericValue, den: ir.NumericValue) -> ir.NumericValue:
    """Num / den, NULL when den is 0."""
    return (den > 0).ifelse(num.cast("float64") / den.cast("float64"), ibis.null("float64"))


def _window_expr(
    fills: ir.Table,
    event_days: ir.Table | None,
    as_of: datetime,
    window: str,
    exact_quantiles: bool,
) -> ir.Table:
    """Lazy per-account features for one window (columns named by feature stem)."""
    span = parse_window(window)
    f = fills.filter(fills.ts < as_of)
    if span is not None:
        f = f.filter(f.ts >= as_of - span)
    # only the columns the catalogue reads: the engine may materialise this relation once
    # for all the aggregates below, and ids and lineage strings would dominate its size
    f = f.select(*USED_COLUMNS)
    is_opt = f.kind == "option"
    is_lev = f.kind.isin(["perp", "future"])
    f = f.mutate(
        day=f.ts.date(),
        is_opt=is_opt,
        is_lev=is_lev,
        is_buy=f.side == "buy",
        opt_notional=is_opt.ifelse(f.notional_usd, 0.0),
        abs_delta=is_opt.ifelse(f.delta.abs(), ibis.null("float64")),
        tenor_days=is_opt.ifelse(
            (f.expiry.epoch_seconds() - f.ts.epoch_seconds()).cast("float64") / _SECONDS_PER_DAY,
            ibis.null("float64"),
        ),
        lev=is_lev.ifelse(f.leverage.fill_null(1.0), ibis.null("float64")),
    )
    # event days are a small table: membership is one more column of the single pass
    f = f.mutate(
        is_ev=f.day.isin(event_days.event_day) if event_days is not None else ibis.literal(False)
    )
    q = f.notional_usd.quantile if exact_quantiles else f.notional_usd.approx_quantile
    base = f.group_by("account_id").aggregate(
        n=f.count(),
        first_ts=f.ts.min(),
        last_ts=f.ts.max(),
        weekend=(f.ts.day_of_week.index() >= 5).cast("int64").sum(),
        notional_total=f.notional_usd.sum(),
        notional_mean=f.notional_usd.mean(),
        notional_median=q(0.5),
        notional_p95=q(0.95),
        notional_max=f.notional_usd.max(),
        n_spot=(f.kind == "spot").cast("int64").sum(),
        n_perp=(f.kind == "perp").cast("int64").sum(),
        n_future=(f.kind == "future").cast("int64").sum(),
        n_opt=f.is_opt.cast("int64").sum(),
        n_call=(f.is_opt & (f.option_type == "call")).cast("int64").sum(),
        n_put_buy=(f.is_opt & (f.option_type == "put") & f.is_buy).cast("int64").sum(),
        opt_notional=f.opt_notional.sum(),
        opt_buy_notional=f.is_buy.ifelse(f.opt_notional, 0.0).sum(),
        mean_abs_delta=f.abs_delta.mean(),
        n_deep_otm=(f.abs_delta < DEEP_OTM_DELTA).cast("int64").sum(),
        mean_days_to_expiry=f.tenor_days.mean(),
        n_short_dated=(f.tenor_days <= SHORT_DATED_DAYS).cast("int64").sum(),
        mean_abs_log_moneyness=f.is_opt.ifelse(
            (f.strike / f.underlying_price).ln().abs(), ibis.null("float64")
        ).mean(),
        mean_iv=f.is_opt.ifelse(f.iv, ibis.null("float64")).mean(),
        n_lev=f.is_lev.cast("int64").sum(),
        leverage_mean=f.lev.mean(),
        leverage_max=f.lev.max(),
        n_high_lev=(f.lev >= HIGH_LEVERAGE).cast("int64").sum(),
        liquidation_count=f.is_liquidation.fill_null(False).cast("int64").sum(),
        n_close=(f.position_effect == "close").cast("int64").sum(),
        fees_usd=f.fee_usd.sum(),
        realized_pnl_usd=f.realized_pnl_usd.fill_null(0.0).sum(),
        n_pnl=f.realized_pnl_usd.notnull().cast("int64").sum(),
        n_win=(f.realized_pnl_usd > 0).cast("int64").sum(),
        n_maker=f.is_maker.cast("int64").sum(),
        n_buy=f.is_buy.cast("int64").sum(),
        ev_fills=f.is_ev.cast("int64").sum(),
        ev_notional=f.is_ev.ifelse(f.notional_usd, 0.0).sum(),
    )

    # hour-of-day entropy: H = ln n - sum(c ln c) / n over per-hour counts c
    by_hour = f.group_by(["account_id", f.ts.hour().name("hour")]).aggregate(c=f.count())
    hours = by_hour.group_by("account_id").aggregate(
        c_ln_c=(by_hour.c.cast("float64") * by_hour.c.cast("float64").ln()).sum()
    )
    # concentration: share of notional in the most traded instrument
    # distinct counts come from small per-(account, key) tables rather than COUNT(DISTINCT)
    # inside the main aggregate, which is several times slower in DuckDB
    by_inst = f.group_by(["account_id", "instrument", "underlying"]).aggregate(
        v=f.notional_usd.sum()
    )
    top = by_inst.group_by("account_id").aggregate(
        top_notional=by_inst.v.max(),
        instrument_breadth=by_inst.instrument.nunique(),
        underlying_count=by_inst.underlying.nunique(),
    )
    # straddles: option fills with both a call and a put on the same day/expiry/strike/side
    o = f.filter(f.is_opt)
    legs = o.group_by(["account_id", "day", "expiry", "strike", "side"]).aggregate(
        types=o.option_type.nunique(), legs=o.count()
    )
    strad = legs.group_by("account_id").aggregate(
        n_straddle=(legs.types >= 2).ifelse(legs.legs, 0).sum()
    )
    # daily realised PnL volatility
    daily = f.group_by(["account_id", "day"]).aggregate(
        pnl=f.realized_pnl_usd.fill_null(0.0).sum()
    )
    pnl = daily.group_by("account_id").aggregate(
        pnl_std_usd=daily.pnl.std(how="sample"), active_days=daily.count()
    )

    t = (
        base.left_join(hours, "account_id")
        .select(~ibis.selectors.endswith("_right"))
        .left_join(top, "account_id")
        .select(~ibis.selectors.endswith("_right"))
        .left_join(strad, "account_id")
        .select(~ibis.selectors.endswith("_right"))
        .left_join(pnl, "account_id")
        .select(~ibis.selectors.endswith("_right"))
    )

    as_of_day = ibis.literal(as_of.date())
    if event_days is not None:
        # from the fills CTE, not from `t`: reusing the joined table would make the SQL
        # compute the main aggregate a second time
        acct_days = f.group_by("account_id").aggregate(first_day=f.ts.min().date())
        j = acct_days.inner_join(
            event_days,
            (event_days.event_day >= acct_days.first_day) & (event_days.event_day < as_of_day),
        )
        ev_span = j.group_by("account_id").aggregate(ev_days=j.count())
        t = t.left_join(ev_span, "account_id").select(~ibis.selectors.endswith("_right"))
        ev_days_c = t.ev_days.fill_null(0).cast("float64")
    else:
        ev_days_c = ibis.literal(0.0)
    ev_fills_c = t.ev_fills.cast("float64")
    ev_not = t.ev_notional

    # days the account could trade in the window: from its first fill in the window to the cutoff
    span_days = ibis.greatest(as_of_day.delta(t.first_ts.date(), unit="day").cast("float64"), 1.0)
    if span is not None:
        span_days = ibis.least(span_days, math.ceil(span.total_seconds() / _SECONDS_PER_DAY))
    n = t.n.cast("float64")
    calm_days = ibis.greatest(span_days - ev_days_c, 0.0)
    rate = n / span_days  # the account's own daily rate: one pseudo-day of evidence each side
    out = t.select(
        "account_id",
        "first_ts",
        "last_ts",
        fill_count=t.n,
        active_days=t.active_days,
        fills_per_active_day=n / t.active_days,
        active_day_share=ibis.least(t.active_days / span_days, 1.0),
        mean_gap_days=span_days / t.active_days,
        hour_entropy=(t.n > 1).ifelse((n.ln() - t.c_ln_c / n) / math.log(24.0), 0.0),
        weekend_share=_share(t.weekend, t.n),
        notional_total=t.notional_total,
        notional_mean=t.notional_mean,
        notional_median=t.notional_median,
        notional_p95=t.notional_p95,
        notional_max=t.notional_max,
        top_instrument_share=_share(t.top_notional, t.notional_total),
        underlying_count=t.underlying_count,
        spot_share=_share(t.n_spot, t.n),
        perp_share=_share(t.n_perp, t.n),
        future_share=_share(t.n_future, t.n),
        option_share=_share(t.n_opt, t.n),
        instrument_breadth=t.instrument_breadth,
        call_share=_share(t.n_call, t.n_opt),
        long_premium_share=_share(t.opt_buy_notional, t.opt_notional),
        mean_abs_delta=t.mean_abs_delta,
        deep_otm_share=_share(t.n_deep_otm, t.n_opt),
        mean_days_to_expiry=t.mean_days_to_expiry,
        short_dated_share=_share(t.n_short_dated, t.n_opt),
        mean_abs_log_moneyness=t.mean_abs_log_moneyness,
        mean_iv=t.mean_iv,
        straddle_share=_share(t.n_straddle.fill_null(0), t.n_opt),
        put_buy_share=_share(t.n_put_buy, t.n_opt),
        leverage_mean=t.leverage_mean.fill_null(1.0),
        leverage_max=t.leverage_max.fill_null(1.0),
        high_leverage_share=(t.n_lev > 0).ifelse(t.n_high_lev / t.n_lev.cast("float64"), 0.0),
        liquidation_count=t.liquidation_count,
        liquidation_share=_share(t.liquidation_count, t.n),
        close_share=_share(t.n_close, t.n),
        fees_usd=t.fees_usd,
        fee_bps=_share(t.fees_usd * 1e4, t.notional_total),
        realized_pnl_usd=t.realized_pnl_usd,
        win_rate=_share(t.n_win, t.n_pnl),
        pnl_std_usd=t.pnl_std_usd.fill_null(0.0),
        maker_share=_share(t.n_maker, t.n),
        buy_share=_share(t.n_buy, t.n),
        event_activity_ratio=((ev_fills_c + rate) / (ev_days_c + 1.0))
        / ((n - ev_fills_c + rate) / (calm_days + 1.0)),
        event_notional_share=_share(ev_not, t.notional_total),
    )
    return out


def _lifetime_expr(fills: ir.Table, as_of: datetime) -> ir.Table:
    """First and last fill of each account over its whole history before the cutoff."""
    f = fills.filter(fills.ts < as_of)
    return f.group_by("account_id").aggregate(first_ts=f.ts.min(), last_ts=f.ts.max())


def _lifetime_columns(
    first_ts: ir.TimestampValue, last_ts: ir.TimestampValue, as_of: datetime
) -> dict[str, ir.NumericValue]:
    cutoff = ibis.literal(as_of).epoch_seconds()
    return {
        column_name("recency_days", "all"): (cutoff - last_ts.epoch_seconds()).cast("float64")
        / _SECONDS_PER_DAY,
        column_name("tenure_days", "all"): (cutoff - first_ts.epoch_seconds()).cast("float64")
        / _SECONDS_PER_DAY,
    }


_ZERO_WHEN_IDLE = (
    "fill_count",
    "active_days",
    "notional_total",
    "liquidation_count",
    "fees_usd",
    "realized_pnl_usd",
    "pnl_std_usd",
    "underlying_count",
    "instrument_breadth",
)


def features_expr(
    fills: ir.Table,
    as_of: str | datetime,
    windows: Sequence[str] = ("30d", "all"),
    *,
    market: ir.Table | None = None,
    exact_quantiles: bool = True,
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
        Exact per-account quantiles (default) instead of DuckDB's approximate ones.

    Returns
    -------
    ibis Table
        One row per account, columns :func:`feature_columns`.
    """
    parts = feature_parts(fills, as_of, windows, market=market, exact_quantiles=exact_quantiles)
    t = parts[0]
    for part in parts[1:]:
        t = t.left_join(part, "account_id").select(~ibis.selectors.endswith("_right"))
    fills_after = {column_name(n, w): 0 for w in windows for n in _ZERO_WHEN_IDLE}
    t = t.mutate(**{c: t[c].fill_null(v) for c, v in fills_after.items()})
    return t.select("account_id", *feature_columns(windows)).order_by("account_id")


def feature_parts(
    fills: ir.Table,
    as_of: str | datetime,
    windows: Sequence[str],
    *,
    market: ir.Table | None = None,
    exact_quantiles: bool = True,
) -> list[ir.Table]:
    """One lazy table per window, the first also carrying recency and tenure.

    The first part holds every account with a fill before the cutoff (the lifetime
    window when requested); the others hold the accounts active in their window and are
    left-joined onto it. :func:`features_expr` joins them into one expression;
    :func:`compute_features` runs them one at a time, which bounds the engine's memory to
    one window's aggregates.
    """
    cutoff = parse_as_of(as_of)
    if not windows:
        raise SchemaError("windows: at least one window is needed")
    for w in windows:
        parse_window(w)
    event_days = None
    if market is not None:
        m = market.filter(market.event.notnull() & (market.ts < cutoff))
        event_days = m.select(event_day=m.ts.date()).distinct()
    parts: list[ir.Table] = []
    if "all" not in windows:
        life = _lifetime_expr(fills, cutoff)
        parts.append(
            life.select("account_id", **_lifetime_columns(life.first_ts, life.last_ts, cutoff))
        )
    # the lifetime window first: its first/last fill give recency and tenure
    for w in sorted(windows, key=lambda w: w != "all"):
        wt = _window_expr(fills, event_days, cutoff, w, exact_quantiles)
        cols = {
            column_name(feat.name, w): wt[feat.name]
            for feat in CATALOG
            if feat.name not in LIFETIME_ONLY
        }
        life_cols = _lifetime_columns(wt.first_ts, wt.last_ts, cutoff) if w == "all" else {}
        parts.append(wt.select("account_id", **life_cols, **cols))
    return parts


def _backend(source: Any) -> tuple[Any, bool]:
    """Return an Ibis backend for a DuckDB path, DuckDB connection or Ibis backend."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise DataError(f"store {path} does not exist")
        from traderseg.store import connect

        # the store's connection applies the memory / thread settings and UTC days
        return ibis.duckdb.from_connection(connect(path, read_only=True)), True
    if isinstance(source, duckdb.DuckDBPyConnection):
        source.execute("SET TimeZone='UTC'")
        return ibis.duckdb.from_connection(source), False
    return source, False


def compute_features(
    source: Any,
    as_of: str | datetime,
    windows: Sequence[str] = ("30d", "all"),
    *,
    exact_quantiles: bool = True,
    use_market_events: bool = True,
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
        Exact per-account quantiles (default). DuckDB's approximate quantile keeps a
        t-digest per account outside its memory limit: at 50M fills it doubled peak
        memory and time, so exact is both cheaper and right.
    use_market_events : bool
        Use the ``market`` table's events for the event-sensitivity family.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``account_id``; columns :func:`feature_columns` (float64).

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
    backend, owned = _backend(source)
    try:
        tables = set(backend.list_tables())
        if "fills" not in tables:
            raise SchemaError("the store has no 'fills' table; run `traderseg ingest` first")
        fills = backend.table("fills")
        market = None
        if use_market_events and "market" in tables:
            market = backend.table("market")
        parts = feature_parts(
            fills, as_of, windows, market=market, exact_quantiles=exact_quantiles
        )
        frames = [p.to_pyarrow().to_pandas().set_index("account_id") for p in parts]
    finally:
        if owned:
            backend.disconnect()
    df = frames[0].join(frames[1:], how="left") if len(frames) > 1 else frames[0]
    if df.empty:
        raise DataError(f"no fills before {parse_as_of(as_of).isoformat()}")
    idle = [column_name(n, w) for w in windows for n in _ZERO_WHEN_IDLE]
    df[idle] = df[idle].fillna(0)
    return df[feature_columns(windows)].sort_index().astype("float64")
