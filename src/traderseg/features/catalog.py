"""The feature catalogue: every behavioural feature declared once.

A :class:`Feature` is a plain frozen declaration: name, family, unit, transform hint,
the formula that computes it from a window's merged measures
(:mod:`traderseg.features.measures`), its value for an account idle in the window, the
parameters it uses and a description rendered from them. Declaring is separate from
computing: the engines (:mod:`traderseg.features.batch` for Ibis on DuckDB or Spark, the
tiles kept in the store, :mod:`traderseg.features.online`) compile the same formulas.
Computed columns are named ``{feature}__{window}`` (``fill_count__30d``,
``option_share__all``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from traderseg.features import measures as M
from traderseg.features.expr import Expr, col, greatest, lit, ln, share, sqrt, where

Family = Literal[
    "activity", "size", "mix", "options", "risk", "profit", "execution", "events"
]
Transform = Literal["log", "signed_log", "share", "bounded", "standard"]

CATALOG_VERSION = "2"
WINDOW_SEP = "__"


@dataclass(frozen=True)
class Feature:
    """Declaration of one behavioural feature.

    Parameters
    ----------
    name : str
        Column stem; the computed column is ``{name}__{window}``.
    family : str
        Family (activity, size, mix, options, risk, profit, execution, events).
    description : str
        What the value means, for people.
    unit : str
        Unit of the value (count, days, USD, share, x, fraction...).
    transform : str
        Modelling hint: ``log`` (non-negative amounts, log1p), ``signed_log``
        (amounts of either sign), ``share`` (in [0, 1]), ``bounded`` (known finite range),
        ``standard`` (standardise as is).
    formula : Expr
        Value from the window's merged measures (see :func:`window_value`).
    needs : str, optional
        Subset the feature is defined on: ``"option"`` means the value is missing (NaN)
        for accounts without option fills in the window; ``"pnl"`` likewise for accounts
        without closing fills carrying a PnL; ``"leverage"`` without leveraged fills
        carrying a leverage; ``"liquidation"`` without fills carrying the liquidation
        flag; ``"events"`` when the store has no market events. Modelling code imputes
        these explicitly.
    idle : float or None
        Value for an account with no fill in the window (None: NaN).
    params : mapping
        Parameters of the formula, substituted into ``description`` (``{delta}``).
    lifetime_only : bool
        Computed over the whole history only (``{name}__all``).
    """

    name: str
    family: Family
    description: str
    unit: str
    transform: Transform
    formula: Expr
    needs: str | None = None
    idle: float | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    lifetime_only: bool = False

    @property
    def text(self) -> str:
        """The description with its parameters filled in."""
        return self.description.format(**self.params)


def column_name(feature: str, window: str) -> str:
    """Name of the computed column for ``feature`` over ``window``."""
    return f"{feature}{WINDOW_SEP}{window}"


def split_column(column: str) -> tuple[str, str]:
    """Split a computed column name into ``(feature, window)``."""
    feature, sep, window = column.rpartition(WINDOW_SEP)
    if not sep:
        return column, "all"
    return feature, window



def window_value(name: str, *, nullable: bool = True) -> Expr:
    """Refer to a merged window value (a measure, a day-level value or context) in a formula."""
    return col(name, nullable=nullable)


v = window_value
n = v("n")
_LOG24 = math.log(24.0)
_hour_c_ln_c = sum(
    (where(v(f"h{h:02d}") > 0, v(f"h{h:02d}") * ln(v(f"h{h:02d}")), 0.0) for h in M.HOURS),
    start=lit(0.0),
)
_rate = n / v("span_days")
_calm_days = greatest(v("span_days") - v("ev_days"), 0.0)
_ev_ratio = ((v("ev_fills") + _rate) / (v("ev_days") + 1.0)) / (
    (n - v("ev_fills") + _rate) / (_calm_days + 1.0)
)
_days = v("days")
_pnl_var = (v("pnl_day_sq") - v("pnl_sum") * v("pnl_sum") / _days) / (_days - 1.0)

_F = Feature
_deep = {"delta": M.DEEP_OTM_DELTA}
_short = {"days": M.SHORT_DATED_DAYS}
_high = {"leverage": M.HIGH_LEVERAGE}

CATALOG: tuple[Feature, ...] = (
    # activity
    _F("fill_count", "activity", "Number of fills in the window.", "count", "log", n, idle=0.0),
    _F("active_days", "activity", "Distinct UTC days with at least one fill.", "days", "log", _days, idle=0.0),
    _F("fills_per_active_day", "activity", "Fills per active day.", "count/day", "log", share(n, _days)),
    _F("recency_days", "activity", "Days from the last fill to the cutoff.", "days", "log",
       (v("cutoff_us") - v("last_us")) / M.MICROS_PER_DAY, lifetime_only=True),
    _F("tenure_days", "activity", "Days from the first fill (ever) to the cutoff.", "days", "log",
       (v("cutoff_us") - v("first_us")) / M.MICROS_PER_DAY, lifetime_only=True),
    _F("active_day_share", "activity", "Active days over the UTC days from the first active day in the window through the cutoff's day (a partial cutoff day counts as a day).", "share", "share",
       share(_days, v("span_days"))),
    _F("mean_gap_days", "activity", "Mean number of days between consecutive active days (NaN with fewer than two).", "days", "log",
       where(_days > 1, (v("last_day") - v("first_day")) / (_days - 1.0))),
    _F("hour_entropy", "activity", "Normalised entropy of the hour-of-day distribution of fills (0 = one hour, 1 = uniform).", "fraction", "bounded",
       where(n > 1, (ln(n) - _hour_c_ln_c / n) / _LOG24, 0.0)),
    _F("weekend_share", "activity", "Share of fills on Saturday or Sunday (UTC).", "share", "share", share(v("weekend"), n)),
    # size
    _F("notional_total", "size", "Total traded notional.", "USD", "log", v("notional_total"), idle=0.0),
    _F("notional_mean", "size", "Mean notional per fill.", "USD", "log", share(v("notional_total"), n)),
    _F("notional_median", "size", "Median notional per fill (sketch within {error:.0%} of the exact order statistic, or exact when asked).", "USD", "log",
       v("notional_q50", nullable=True), params={"error": M.SKETCH_RELATIVE_ERROR}),
    _F("notional_p95", "size", "95th percentile of notional per fill (sketch within {error:.0%}, or exact when asked).", "USD", "log",
       v("notional_q95", nullable=True), params={"error": M.SKETCH_RELATIVE_ERROR}),
    _F("notional_max", "size", "Largest single-fill notional.", "USD", "log", v("notional_max", nullable=True)),
    _F("top_instrument_share", "size", "Share of notional in the account's most traded instrument (concentration).", "share", "share",
       share(v("top_notional"), v("notional_total"))),
    _F("underlying_count", "size", "Distinct underlyings traded.", "count", "log", v("underlying_count"), idle=0.0),
    # instrument mix
    _F("spot_share", "mix", "Share of fills in spot.", "share", "share", share(v("n_spot"), n)),
    _F("perp_share", "mix", "Share of fills in perpetual swaps.", "share", "share", share(v("n_perp"), n)),
    _F("future_share", "mix", "Share of fills in dated futures.", "share", "share", share(v("n_future"), n)),
    _F("option_share", "mix", "Share of fills in options.", "share", "share", share(v("n_opt"), n)),
    _F("instrument_breadth", "mix", "Distinct instruments traded.", "count", "log", v("instrument_breadth"), idle=0.0),
    # options behaviour
    _F("call_share", "options", "Share of option fills that are calls.", "share", "share", share(v("n_call"), v("n_opt")), "option"),
    _F("long_premium_share", "options", "Share of option notional bought (paying premium) rather than written.", "share", "share",
       share(v("opt_buy_notional"), v("opt_notional")), "option"),
    _F("mean_abs_delta", "options", "Mean |delta| of option fills.", "fraction", "bounded", share(v("delta_sum"), v("delta_n")), "option"),
    _F("deep_otm_share", "options", "Share of option fills (with a delta) whose |delta| is below {delta}.", "share", "share",
       share(v("n_deep_otm"), v("delta_n")), "option", params=_deep),
    _F("mean_days_to_expiry", "options", "Mean tenor of option fills.", "days", "log", share(v("tenor_sum"), v("tenor_n")), "option"),
    _F("short_dated_share", "options", "Share of option fills expiring within {days:g} days (inclusive).", "share", "share",
       share(v("n_short_dated"), v("tenor_n")), "option", params=_short),
    _F("mean_abs_log_moneyness", "options", "Mean |ln(strike / underlying price)| of option fills.", "fraction", "log",
       share(v("mny_sum"), v("mny_n")), "option"),
    _F("mean_iv", "options", "Mean implied volatility of option fills.", "fraction", "bounded", share(v("iv_sum"), v("iv_n")), "option"),
    _F("straddle_share", "options", "Share of option fills that have an opposite-type fill on the same expiry and strike, same side, same UTC day.", "share", "share",
       share(v("n_straddle"), v("n_opt")), "option"),
    _F("put_buy_share", "options", "Share of option fills that buy puts (protection).", "share", "share", share(v("n_put_buy"), v("n_opt")), "option"),
    # leverage and risk
    _F("leverage_mean", "risk", "Mean leverage of perp/future fills that carry one (NaN when none does).", "x", "log",
       share(v("lev_sum"), v("lev_n")), "leverage"),
    _F("leverage_max", "risk", "Largest leverage of perp/future fills (NaN when none carries one).", "x", "log",
       v("lev_max", nullable=True), "leverage"),
    _F("high_leverage_share", "risk", "Share of perp/future fills with a leverage that are at {leverage:g}x or more.", "share", "share",
       share(v("n_high_lev"), v("lev_n")), "leverage", params=_high),
    _F("leverage_known_share", "risk", "Share of perp/future fills that carry a leverage (availability of the leverage features).", "share", "share",
       share(v("lev_n"), v("n_lev"))),
    _F("liquidation_count", "risk", "Fills that were forced liquidations (NaN when no fill carries the flag).", "count", "log",
       where(v("liq_known") > 0, v("liq_count")), "liquidation", idle=0.0),
    _F("liquidation_share", "risk", "Share of fills carrying the flag that were forced liquidations.", "share", "share",
       share(v("liq_count"), v("liq_known")), "liquidation"),
    _F("liquidation_known_share", "risk", "Share of fills that carry the liquidation flag (availability).", "share", "share",
       share(v("liq_known"), n)),
    _F("close_share", "risk", "Share of fills, among those with an open/close effect, that close exposure.", "share", "share",
       share(v("n_close"), v("pe_known"))),
    # profitability
    _F("fees_usd", "profit", "Fees paid to the venue net of rebates (venue revenue).", "USD", "signed_log", v("fees_usd"), idle=0.0),
    _F("fee_bps", "profit", "Net fees over notional.", "bps", "standard", share(v("fees_usd") * 1e4, v("notional_total"))),
    _F("realized_pnl_usd", "profit", "Realised PnL of the account.", "USD", "signed_log", v("pnl_sum"), idle=0.0),
    _F("win_rate", "profit", "Share of closing fills with a realised PnL whose PnL is positive.", "share", "share",
       share(v("n_win_close"), v("n_pnl_close")), "pnl"),
    _F("pnl_std_usd", "profit", "Sample standard deviation of realised PnL per active day (0 with one active day).", "USD", "log",
       where(_days > 1, sqrt(greatest(_pnl_var, 0.0)), 0.0), idle=0.0),
    # execution
    _F("maker_share", "execution", "Share of fills that provided liquidity.", "share", "share", share(v("n_maker"), n)),
    _F("buy_share", "execution", "Share of fills that buy.", "share", "share", share(v("n_buy"), n)),
    # market-event sensitivity
    _F("event_activity_ratio", "events", "Fills per day on market-event days over fills per day on calm days, with one pseudo-day at the account's own rate on each side (1 = indifferent).", "ratio", "log",
       where(v("events_known") > 0, _ev_ratio), "events"),
    _F("event_notional_share", "events", "Share of notional traded on market-event days.", "share", "share",
       where(v("events_known") > 0, share(v("ev_notional"), v("notional_total"))), "events"),
)

LIFETIME_ONLY = tuple(f.name for f in CATALOG if f.lifetime_only)

_BY_NAME = {f.name: f for f in CATALOG}


def get_feature(name: str) -> Feature:
    """Return the declaration of feature ``name`` (a stem or a ``{name}__{window}`` column)."""
    stem, _ = split_column(name)
    try:
        return _BY_NAME[stem]
    except KeyError:
        raise KeyError(f"unknown feature {stem!r}") from None


def catalog_markdown() -> str:
    """Render the catalogue as Markdown (the table in ``docs/features.md``)."""
    lines = [
        "| feature | family | unit | transform | needs | description |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for f in CATALOG:
        lines.append(
            f"| `{f.name}` | {f.family} | {f.unit} | {f.transform} | {f.needs or ''} "
            f"| {f.text} |"
        )
    return "\n".join(lines)
