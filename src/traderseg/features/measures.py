"""Measures: per-fill expressions with mergeable aggregators, declared once.

A measure turns the fills of one account and one UTC day into a small state that merges
with the states of other days: the *daily tile*. Windows are merges of tiles, and the
feature formulas in :mod:`traderseg.features.catalog` read the merged values. Every engine
(Ibis on DuckDB or Spark, the tiles kept in the store, the online per-account state)
derives from the declarations in this module; none repeats them.

Kinds of measure
----------------
- :class:`Measure` — ``count`` (of fills where a condition holds and the expression is
  not NULL), ``sum``, ``min``, ``max``; merged by sum, sum, min, max.
- :class:`KeyedMap` — per-key sums or counts (notional per instrument); merged by adding
  the values of equal keys. Window values are reductions of the map (largest value,
  number of keys, distinct values of one key part).
- :class:`Sketch` — a log-bucket histogram of a positive quantity (DDSketch-style): the
  bucket of ``x`` is ``ceil(ln x / ln γ)`` with ``γ = (1 + α) / (1 − α)``, so the
  representative ``2 γ^k / (γ + 1)`` of a bucket is within relative error ``α`` of every
  value in it. Buckets merge by adding counts; a quantile is the representative of the
  bucket holding the order statistic at rank ``⌊q (n − 1)⌋``, hence within ``α`` of that
  exact order statistic. Zero (and values below 1e-9) fall in a bucket of their own
  whose representative is 0.
- :class:`PairedLegs` — per day, the fills of groups (same key) that hold at least two
  distinct values of a type column (straddle legs: a call and a put on the same expiry,
  strike and side on the same day); the day's count merges by sum.

Day-level values of a merged window are also declared here (:data:`DAY_LEVEL`): the number
of active days, the first and last active day, the sum of squared daily sums (for the
standard deviation of daily PnL) and the sums over market-event days.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from traderseg.features.expr import (
    Expr,
    Named,
    abs_,
    col,
    epoch_micros,
    epoch_seconds,
    hour,
    ln,
    weekday,
)

Agg = Literal["count", "sum", "min", "max"]

MEASURES_VERSION = "1"
SECONDS_PER_DAY = 86400.0
MICROS_PER_DAY = 86400e6

# -- parameters declared once ------------------------------------------------------------
DEEP_OTM_DELTA = 0.15
"""Option fills with |delta| strictly below this are deep out of the money."""
SHORT_DATED_DAYS = 3.0
"""Option fills expiring within this many days (inclusive) are short-dated."""
HIGH_LEVERAGE = 20.0
"""Leveraged fills at or above this leverage are high-leverage."""
SKETCH_RELATIVE_ERROR = 0.02
"""Relative error bound of the notional quantile sketch."""

# -- the fills' columns ------------------------------------------------------------------
ts = col("ts", kind="ts")
kind = col("kind", kind="str")
side = col("side", kind="str")
notional = col("notional_usd")
fee = col("fee_usd")
is_maker = col("is_maker", kind="bool")
leverage = col("leverage", nullable=True)
position_effect = col("position_effect", nullable=True, kind="str")
pnl = col("realized_pnl_usd", nullable=True)
is_liquidation = col("is_liquidation", nullable=True, kind="bool")
option_type = col("option_type", nullable=True, kind="str")
strike = col("strike", nullable=True)
expiry = col("expiry", nullable=True, kind="ts")
underlying_price = col("underlying_price", nullable=True)
iv = col("iv", nullable=True)
delta = col("delta", nullable=True)
instrument = col("instrument", kind="str")
underlying = col("underlying", kind="str")

# -- derived per-fill values (computed once wherever they are used) ------------------------
is_opt = Named("is_opt", kind == "option")
is_lev = Named("is_lev", kind.isin(("perp", "future")))
is_buy = Named("is_buy", side == "buy")
is_close = Named("is_close", position_effect == "close")
abs_delta = Named("abs_delta", abs_(delta))
tenor_days = Named("tenor_days", (epoch_seconds(expiry) - epoch_seconds(ts)) / SECONDS_PER_DAY)
abs_log_moneyness = Named("abs_log_moneyness", abs_(ln(strike / underlying_price)))
epoch_us = Named("epoch_us", epoch_micros(ts))
hour_of_day = Named("hour_of_day", hour(ts))


@dataclass(frozen=True)
class Measure:
    """A per-fill expression with a mergeable aggregator.

    Parameters
    ----------
    name : str
        Column of the tile.
    agg : {"count", "sum", "min", "max"}
        Aggregator; ``count`` counts fills where ``where`` holds and ``expr`` (if given)
        is not NULL.
    expr : Expr, optional
        The per-fill value (not needed for ``count``).
    where : Expr, optional
        Only fills where this holds contribute (NULL counts as false).
    """

    name: str
    agg: Agg
    expr: Expr | None = None
    where: Expr | None = None

    @property
    def identity(self) -> float | None:
        """State of an empty tile: 0 for counts and sums, NULL for min and max."""
        return 0.0 if self.agg in ("count", "sum") else None


@dataclass(frozen=True)
class KeyedMap:
    """Per-key aggregates of the fills where ``where`` holds, kept per tile."""

    name: str
    keys: tuple[tuple[str, Expr], ...]
    values: tuple[Measure, ...]
    where: Expr | None = None


@dataclass(frozen=True)
class Sketch:
    """Log-bucket histogram of a non-negative per-fill value (see the module docstring)."""

    name: str
    expr: Expr
    relative_error: float = SKETCH_RELATIVE_ERROR
    quantiles: tuple[float, ...] = (0.5, 0.95)

    @property
    def gamma(self) -> float:
        """Bucket growth factor ``(1 + α) / (1 − α)``."""
        return (1.0 + self.relative_error) / (1.0 - self.relative_error)

    @property
    def inv_log_gamma(self) -> float:
        """``1 / ln γ``: the bucket of x is ``ceil(ln x · inv_log_gamma)``."""
        return 1.0 / math.log(self.gamma)

    @property
    def value_names(self) -> tuple[str, ...]:
        """Names of the quantile values, in the order of :attr:`quantiles` (``notional_q50``)."""
        return tuple(f"{self.name}_q{round(q * 100):02d}" for q in self.quantiles)

    def representative(self, bucket: int) -> float:
        """Return the value reported for ``bucket`` (0 for the zero bucket)."""
        if bucket <= ZERO_BUCKET:
            return 0.0
        g = self.gamma
        return 2.0 * g**bucket / (g + 1.0)

    def bucket(self, x: float) -> int:
        """Bucket of ``x`` (Python side; the engines compile :data:`ZERO_BUCKET` likewise)."""
        if x < SKETCH_MIN_VALUE:
            return ZERO_BUCKET
        return math.ceil(math.log(x) * self.inv_log_gamma)

    def quantiles_of(self, buckets: np.ndarray, counts: np.ndarray,
                     sizes: np.ndarray) -> np.ndarray:
        """Quantiles of many sketches laid end to end: one row per sketch, one column per q.

        Sketch ``i`` holds the next ``sizes[i]`` entries of ``buckets`` (ascending within
        the sketch) and ``counts`` (>= 0; an entry may count 0). The rank of ``q`` among a
        sketch's ``total`` values is ``floor(q * (total - 1))``; the answer is the first
        bucket whose cumulative count exceeds it, reported by its :meth:`representative`.
        NaN for a sketch that counts nothing.
        """
        n = len(sizes)
        out = np.full((n, len(self.quantiles)), np.nan)
        if n == 0 or len(buckets) == 0:
            return out
        cum = np.cumsum(counts.astype(np.int64))
        ext = np.concatenate([[0], cum])
        ends = np.cumsum(sizes)
        before = ext[ends - sizes]
        total = ext[ends] - before
        live = np.flatnonzero(total > 0)
        last = (total[live] - 1).astype(np.float64)
        for j, q in enumerate(self.quantiles):
            # the same float product as the SQL of the engines and the Python sketch
            rank = np.floor(q * last).astype(np.int64)
            at = np.searchsorted(cum, before[live] + rank, side="right")
            found, where = np.unique(buckets[at], return_inverse=True)
            out[live, j] = np.array([self.representative(b) for b in found.tolist()])[where]
        return out


ZERO_BUCKET = -(2**31)
SKETCH_MIN_VALUE = 1e-9


@dataclass(frozen=True)
class PairedLegs:
    """Per day: fills in key groups holding at least ``min_types`` distinct ``type_expr``."""

    name: str
    keys: tuple[tuple[str, Expr], ...]
    type_expr: Expr
    where: Expr
    min_types: int = 2


def _count(name: str, where: Expr | None = None, expr: Expr | None = None) -> Measure:
    return Measure(name, "count", expr, where)


def _sum(name: str, expr: Expr, where: Expr | None = None) -> Measure:
    return Measure(name, "sum", expr, where)


HOURS = tuple(range(24))

MEASURES: tuple[Measure, ...] = (
    _count("n"),
    Measure("first_us", "min", epoch_us),
    Measure("last_us", "max", epoch_us),
    _count("weekend", weekday(ts) >= 5),
    *(_count(f"h{h:02d}", hour_of_day == h) for h in HOURS),
    _sum("notional_total", notional),
    Measure("notional_max", "max", notional),
    _count("n_spot", kind == "spot"),
    _count("n_perp", kind == "perp"),
    _count("n_future", kind == "future"),
    _count("n_opt", is_opt),
    _count("n_call", is_opt & (option_type == "call")),
    _count("n_put_buy", is_opt & (option_type == "put") & is_buy),
    _sum("opt_notional", notional, is_opt),
    _sum("opt_buy_notional", notional, is_opt & is_buy),
    _sum("delta_sum", abs_delta, is_opt),
    _count("delta_n", is_opt, abs_delta),
    _count("n_deep_otm", is_opt & (abs_delta < DEEP_OTM_DELTA)),
    _sum("tenor_sum", tenor_days, is_opt),
    _count("tenor_n", is_opt, tenor_days),
    _count("n_short_dated", is_opt & (tenor_days <= SHORT_DATED_DAYS)),
    _sum("mny_sum", abs_log_moneyness, is_opt),
    _count("mny_n", is_opt, abs_log_moneyness),
    _sum("iv_sum", iv, is_opt),
    _count("iv_n", is_opt, iv),
    _count("n_lev", is_lev),
    _count("lev_n", is_lev, leverage),
    _sum("lev_sum", leverage, is_lev),
    Measure("lev_max", "max", leverage, is_lev),
    _count("n_high_lev", is_lev & (leverage >= HIGH_LEVERAGE)),
    _count("liq_known", None, is_liquidation),
    _count("liq_count", is_liquidation),
    _count("pe_known", None, position_effect),
    _count("n_close", is_close),
    _sum("fees_usd", fee),
    _sum("pnl_sum", pnl),
    _count("n_pnl_close", is_close, pnl),
    _count("n_win_close", is_close & (pnl > 0)),
    _count("n_maker", is_maker),
    _count("n_buy", is_buy),
)

INSTRUMENTS = KeyedMap(
    "instrument",
    keys=(("instrument", instrument), ("underlying", underlying)),
    values=(_count("fills"), _sum("notional", notional)),
)
NOTIONAL_SKETCH = Sketch("notional", notional)
STRADDLES = PairedLegs(
    "n_straddle",
    keys=(("expiry", expiry), ("strike", strike), ("side", side)),
    type_expr=option_type,
    where=is_opt,
)

MAPS: tuple[KeyedMap, ...] = (INSTRUMENTS,)
SKETCHES: tuple[Sketch, ...] = (NOTIONAL_SKETCH,)
PAIRS: tuple[PairedLegs, ...] = (STRADDLES,)


@dataclass(frozen=True)
class DayLevel:
    """A window value computed over the window's tiles (one row per active day).

    ``agg`` is ``count`` (active days), ``min``/``max`` of the day, ``sumsq`` (sum over
    days of the squared daily value of ``of``) or ``event_sum`` (sum of ``of`` over the
    market-event days).
    """

    name: str
    agg: Literal["count", "min_day", "max_day", "sumsq", "event_sum"]
    of: str | None = None


DAY_LEVEL: tuple[DayLevel, ...] = (
    DayLevel("days", "count"),
    DayLevel("first_day", "min_day"),
    DayLevel("last_day", "max_day"),
    DayLevel("pnl_day_sq", "sumsq", "pnl_sum"),
    DayLevel("ev_fills", "event_sum", "n"),
    DayLevel("ev_notional", "event_sum", "notional_total"),
)

WINDOW_CONTEXT = ("cutoff_us", "span_days", "ev_days", "events_known")
"""Window values that come from the cutoff and the market, not from the fills:
``cutoff_us`` (epoch microseconds of the cutoff), ``span_days`` (UTC days from the account's
first active day in the window through the cutoff's day, the partial day included),
``ev_days`` (market-event days among those) and ``events_known`` (1 when the store has
market events, else 0)."""

MAP_VALUES = ("top_notional", "instrument_breadth", "underlying_count")
"""Window values reduced from :data:`INSTRUMENTS`."""

SKETCH_VALUES = ("notional_q50", "notional_q95")
"""Window values read from :data:`NOTIONAL_SKETCH` (or exact quantiles when asked)."""


@dataclass(frozen=True)
class MeasureSet:
    """Everything a tile holds, for the engines."""

    scalars: tuple[Measure, ...] = MEASURES
    maps: tuple[KeyedMap, ...] = MAPS
    sketches: tuple[Sketch, ...] = SKETCHES
    pairs: tuple[PairedLegs, ...] = PAIRS
    day_level: tuple[DayLevel, ...] = DAY_LEVEL
    columns: tuple[str, ...] = field(default=())

    def read_columns(self) -> tuple[str, ...]:
        """Fill columns any measure reads."""
        cols: set[str] = {"account_id", "ts"}
        for m in self.scalars:
            for e in (m.expr, m.where):
                if e is not None:
                    cols |= e.columns()
        for km in self.maps:
            for _, e in km.keys:
                cols |= e.columns()
            for v in km.values:
                if v.expr is not None:
                    cols |= v.expr.columns()
        for s in self.sketches:
            cols |= s.expr.columns()
        for p in self.pairs:
            cols |= p.type_expr.columns() | p.where.columns()
            for _, e in p.keys:
                cols |= e.columns()
        return tuple(sorted(cols))


MEASURE_SET = MeasureSet()
