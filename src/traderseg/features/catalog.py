"""The feature catalogue: every behavioural feature declared once.

A :class:`Feature` is a plain frozen declaration (name, family, description, unit,
transform hint). Declaring is separate from computing: :mod:`traderseg.features.compute`
compiles the catalogue to Ibis expressions. Computed columns are named
``{feature}__{window}`` (for example ``fill_count__30d``, ``option_share__all``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Family = Literal[
    "activity", "size", "mix", "options", "risk", "profit", "execution", "events"
]
Transform = Literal["log", "signed_log", "share", "bounded", "standard"]

CATALOG_VERSION = "1"
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
    needs : str, optional
        Subset the feature is defined on: ``"option"`` means the value is missing (NaN)
        for accounts without option fills in the window; ``"pnl"`` likewise for accounts
        without closing fills. Modelling code imputes these explicitly.
    """

    name: str
    family: Family
    description: str
    unit: str
    transform: Transform
    needs: str | None = None


def column_name(feature: str, window: str) -> str:
    """Name of the computed column for ``feature`` over ``window``."""
    return f"{feature}{WINDOW_SEP}{window}"


def split_column(column: str) -> tuple[str, str]:
    """Split a computed column name into ``(feature, window)``."""
    feature, sep, window = column.rpartition(WINDOW_SEP)
    if not sep:
        return column, "all"
    return feature, window


_F = Feature

CATALOG: tuple[Feature, ...] = (
    # activity
    _F("fill_count", "activity", "Number of fills in the window.", "count", "log"),
    _F("active_days", "activity", "Distinct UTC days with at least one fill.", "days", "log"),
    _F("fills_per_active_day", "activity", "Fills per active day.", "count/day", "log"),
    _F("recency_days", "activity", "Days from the last fill to the cutoff.", "days", "log"),
    _F("tenure_days", "activity", "Days from the first fill (ever) to the cutoff.", "days", "log"),
    _F("active_day_share", "activity", "Active days over the days the account could trade in the window.", "share", "share"),
    _F("mean_gap_days", "activity", "Days from the first fill in the window to the cutoff per active day (mean spacing of activity).", "days", "log"),
    _F("hour_entropy", "activity", "Normalised entropy of the hour-of-day distribution of fills (0 = one hour, 1 = uniform).", "fraction", "bounded"),
    _F("weekend_share", "activity", "Share of fills on Saturday or Sunday (UTC).", "share", "share"),
    # size
    _F("notional_total", "size", "Total traded notional.", "USD", "log"),
    _F("notional_mean", "size", "Mean notional per fill.", "USD", "log"),
    _F("notional_median", "size", "Median notional per fill.", "USD", "log"),
    _F("notional_p95", "size", "95th percentile of notional per fill.", "USD", "log"),
    _F("notional_max", "size", "Largest single-fill notional.", "USD", "log"),
    _F("top_instrument_share", "size", "Share of notional in the account's most traded instrument (concentration).", "share", "share"),
    _F("underlying_count", "size", "Distinct underlyings traded.", "count", "log"),
    # instrument mix
    _F("spot_share", "mix", "Share of fills in spot.", "share", "share"),
    _F("perp_share", "mix", "Share of fills in perpetual swaps.", "share", "share"),
    _F("future_share", "mix", "Share of fills in dated futures.", "share", "share"),
    _F("option_share", "mix", "Share of fills in options.", "share", "share"),
    _F("instrument_breadth", "mix", "Distinct instruments traded.", "count", "log"),
    # options behaviour
    _F("call_share", "options", "Share of option fills that are calls.", "share", "share", "option"),
    _F("long_premium_share", "options", "Share of option notional bought (paying premium) rather than written.", "share", "share", "option"),
    _F("mean_abs_delta", "options", "Mean |delta| of option fills.", "fraction", "bounded", "option"),
    _F("deep_otm_share", "options", "Share of option fills with |delta| below 0.15.", "share", "share", "option"),
    _F("mean_days_to_expiry", "options", "Mean tenor of option fills.", "days", "log", "option"),
    _F("short_dated_share", "options", "Share of option fills expiring within 3 days.", "share", "share", "option"),
    _F("mean_abs_log_moneyness", "options", "Mean |ln(strike / underlying price)| of option fills.", "fraction", "log", "option"),
    _F("mean_iv", "options", "Mean implied volatility of option fills.", "fraction", "bounded", "option"),
    _F("straddle_share", "options", "Share of option fills that have an opposite-type fill on the same expiry and strike, same side, same day.", "share", "share", "option"),
    _F("put_buy_share", "options", "Share of option fills that buy puts (protection).", "share", "share", "option"),
    # leverage and risk
    _F("leverage_mean", "risk", "Mean leverage of leveraged (perp/future) fills; 1 when none.", "x", "log"),
    _F("leverage_max", "risk", "Largest leverage used.", "x", "log"),
    _F("high_leverage_share", "risk", "Share of perp/future fills at leverage 20x or more.", "share", "share"),
    _F("liquidation_count", "risk", "Fills that were forced liquidations.", "count", "log"),
    _F("liquidation_share", "risk", "Share of fills that were forced liquidations.", "share", "share"),
    _F("close_share", "risk", "Share of fills that close exposure (reduce-only style).", "share", "share"),
    # profitability
    _F("fees_usd", "profit", "Fees paid to the venue net of rebates (venue revenue).", "USD", "signed_log"),
    _F("fee_bps", "profit", "Net fees over notional.", "bps", "standard"),
    _F("realized_pnl_usd", "profit", "Realised PnL of the account.", "USD", "signed_log"),
    _F("win_rate", "profit", "Share of closing fills with positive realised PnL.", "share", "share", "pnl"),
    _F("pnl_std_usd", "profit", "Standard deviation of daily realised PnL.", "USD", "log"),
    # execution
    _F("maker_share", "execution", "Share of fills that provided liquidity.", "share", "share"),
    _F("buy_share", "execution", "Share of fills that buy.", "share", "share"),
    # market-event sensitivity
    _F("event_activity_ratio", "events", "Fills per day on market-event days over fills per day on calm days (1 = indifferent).", "ratio", "log"),
    _F("event_notional_share", "events", "Share of notional traded on market-event days.", "share", "share"),
)

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
            f"| {f.description} |"
        )
    return "\n".join(lines)
