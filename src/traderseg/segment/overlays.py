"""Overlays beside the behavioural segment: lifecycle stage, value tier, risk profile.

Lifecycle stage (:func:`lifecycle_stage`), first rule that applies, on the ``all``
window (days since the last fill ``r``, days since the first fill ``t``) and the activity
trend (fills per day over the trend window vs over the account's tenure):

1. ``churned``: ``r >= 90``;
2. ``dormant``: ``r >= 30``;
3. ``new``: ``t <= 30``;
4. ``at-risk``: ``r >= 14``, or the trend-window rate is below half the lifetime rate;
5. ``active``: everything else.

Value tier (:func:`value_tier`), by rank of venue revenue (``fees_usd``, net of rebates):
the top 1% of accounts are ``platinum``, the next 9% ``gold``, the next 40% ``silver``,
the rest ``bronze``; ties are broken by account id, and an account with no positive
revenue is ``bronze`` whatever its rank.

Risk profile (:func:`risk_profile`), components each 0-100:

* ``leverage``: ``60 * clip(ln(leverage_mean) / ln(50), 0, 1) + 40 * high_leverage_share``
  (1x scores 0, 50x and above with every fill at 20x+ scores 100);
* ``liquidations``: ``100 * (1 - exp(-liquidation_count / 2))`` (1 liquidation 39,
  3 liquidations 78);
* ``short_option``: written premium ``option_share * (1 - long_premium_share)``, scaled
  so that writing options on half of all fills scores 100;
* ``concentration``: ``100 * top_instrument_share``;
* ``pnl_volatility``: ``100 * clip(log10(1 + pnl_std_usd) / 6, 0, 1)`` (a daily PnL
  standard deviation of 1M USD or more scores 100, 1k USD scores 50).

``risk_score`` is their weighted mean with :data:`RISK_WEIGHTS`.

Unknown is not zero: an account without leveraged fills scores 0 on ``leverage``, but one
whose leveraged fills carry no leverage (``leverage_known_share`` 0) has no leverage
component (NaN), and one whose fills carry no liquidation flag has no ``liquidations``
component; the score is then the weighted mean of the known components.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from traderseg.errors import DataError, SchemaError

LIFECYCLE_STAGES = ("new", "active", "at-risk", "dormant", "churned")
# the lifecycle rules' default thresholds (days; the trend's share of the lifetime rate)
NEW_DAYS, AT_RISK_DAYS, DORMANT_DAYS, CHURNED_DAYS, TREND_DROP = 30.0, 14.0, 30.0, 90.0, 0.5
VALUE_TIERS: tuple[tuple[str, float], ...] = (("platinum", 0.01), ("gold", 0.09), ("silver", 0.40))
"""Tier name and the share of accounts it takes, from the top; the rest are ``bronze``."""
RISK_WEIGHTS: dict[str, float] = {
    "leverage": 0.30, "liquidations": 0.25, "short_option": 0.20,
    "concentration": 0.10, "pnl_volatility": 0.15,
}
RISK_STEMS = ("leverage_mean", "high_leverage_share", "liquidation_count", "option_share",
              "long_premium_share", "top_instrument_share", "pnl_std_usd")
"""Features the risk profile reads (of its window)."""
RISK_KNOWN_STEM = "leverage_known_share"
"""Read when present: tells an account without leveraged fills from one lacking leverage."""
VALUE_COLUMN = "fees_usd__all"
"""The revenue column the value tier ranks by default."""


def _require(frame: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise SchemaError(f"{what} needs feature columns {missing}, missing from the frame")


def _no_nan(frame: pd.DataFrame, columns: list[str], what: str) -> None:
    for c in columns:
        bad = frame[c].isna()
        if bad.any():
            raise DataError(
                f"{what}: column {c!r} is missing for {int(bad.sum())} accounts "
                f"(first: {list(frame.index[bad][:3])})"
            )


def _window_days(window: str) -> float:
    if not (window.endswith("d") and window[:-1].isdigit()):
        raise SchemaError(f"trend window must look like '30d', got {window!r}")
    return float(window[:-1])


def lifecycle_stage(
    features: pd.DataFrame,
    *,
    trend_window: str = "30d",
    new_days: float = NEW_DAYS,
    at_risk_days: float = AT_RISK_DAYS,
    dormant_days: float = DORMANT_DAYS,
    churned_days: float = CHURNED_DAYS,
    trend_drop: float = TREND_DROP,
) -> pd.Series:
    """Lifecycle stage of each account by the documented rules.

    Parameters
    ----------
    features : pandas.DataFrame
        Needs ``recency_days__all``, ``tenure_days__all``, ``fill_count__all`` and
        ``fill_count__{trend_window}``.
    trend_window : str
        Recent window compared with the lifetime rate.
    new_days, at_risk_days, dormant_days, churned_days, trend_drop : float
        Thresholds of the rules.

    Returns
    -------
    pandas.Series
        Categorical stage per account.

    Examples
    --------
    >>> f = pd.DataFrame({"recency_days__all": [1, 100], "tenure_days__all": [10, 400],
    ...                   "fill_count__all": [5, 50], "fill_count__30d": [5, 0]})
    >>> lifecycle_stage(f).tolist()
    ['new', 'churned']
    """
    stage = _stages(features, trend_window, new_days, at_risk_days, dormant_days,
                    churned_days, trend_drop)
    return pd.Series(pd.Categorical(stage, categories=LIFECYCLE_STAGES),
                     index=features.index, name="lifecycle_stage")


def _stages(features: pd.DataFrame, trend_window: str = "30d", new_days: float = NEW_DAYS,
            at_risk_days: float = AT_RISK_DAYS, dormant_days: float = DORMANT_DAYS,
            churned_days: float = CHURNED_DAYS, trend_drop: float = TREND_DROP) -> np.ndarray:
    """Apply the rules of :func:`lifecycle_stage`; return the stage names (objects)."""
    days = _window_days(trend_window)
    cols = _lifecycle_columns(trend_window)
    _require(features, cols, "lifecycle stage")
    _no_nan(features, cols, "lifecycle stage")
    r = features["recency_days__all"].to_numpy(float)
    t = features["tenure_days__all"].to_numpy(float)
    life_rate = features["fill_count__all"].to_numpy(float) / np.maximum(t, 1.0)
    recent_rate = features[f"fill_count__{trend_window}"].to_numpy(float) / min(days, 1e9)
    conditions = [r >= churned_days, r >= dormant_days, t <= new_days,
                  (r >= at_risk_days) | (recent_rate < trend_drop * life_rate)]
    stage = np.full(len(r), "active", dtype=object)
    for cond, name in zip(reversed(conditions), ("at-risk", "new", "dormant", "churned"),
                          strict=True):
        stage[cond] = name  # the first rule that applies is written last
    return stage


def _lifecycle_columns(trend_window: str) -> list[str]:
    return ["recency_days__all", "tenure_days__all", "fill_count__all",
            f"fill_count__{trend_window}"]


def value_tier(features: pd.DataFrame, *, column: str = VALUE_COLUMN,
               by: np.ndarray | None = None) -> pd.Series:
    """Value tier by rank of venue revenue.

    Parameters
    ----------
    features : pandas.DataFrame
        Needs ``column``.
    column : str
        Revenue column.
    by : numpy.ndarray, optional
        A group key per row (e.g. the cutoff of each row of several decisions): accounts
        are then ranked within their group, as if each group were tiered on its own.

    Returns
    -------
    pandas.Series
        Categorical tier per account (``platinum``, ``gold``, ``silver``, ``bronze``).

    Examples
    --------
    >>> f = pd.DataFrame({"fees_usd__all": np.arange(100.0)},
    ...                  index=[f"a{i:03d}" for i in range(100)])
    >>> value_tier(f).value_counts().to_dict()
    {'bronze': 50, 'silver': 40, 'gold': 9, 'platinum': 1}
    """
    tiers = _tiers(features, column, by)
    cats = [name for name, _ in VALUE_TIERS] + ["bronze"]
    return pd.Series(pd.Categorical(tiers, categories=cats), index=features.index,
                     name="value_tier")


def _tiers(features: pd.DataFrame, column: str = VALUE_COLUMN,
           by: np.ndarray | None = None) -> np.ndarray:
    """Rank as :func:`value_tier` does; return the tier names (objects)."""
    _require(features, [column], "value tier")
    _no_nan(features, [column], "value tier")
    fees = features[column].to_numpy(float)
    n = len(fees)
    ids = np.asarray(features.index.astype(str), dtype=object)
    group = np.zeros(n, dtype=np.int64) if by is None else pd.factorize(np.asarray(by))[0]
    # by group, then revenue from the top, then account id
    order = np.lexsort((ids, -fees, group))
    rank = np.empty(n, dtype=np.int64)
    sizes = np.bincount(group, minlength=int(group.max(initial=-1)) + 1)
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    rank[order] = np.arange(n) - starts[group[order]]
    tiers = np.full(n, "bronze", dtype=object)
    for name, lower, upper in tier_bounds(sizes[group]):
        tiers[(rank >= lower) & (rank < upper)] = name
    tiers[fees <= 0] = "bronze"
    return tiers


def risk_profile(features: pd.DataFrame, *, window: str = "all") -> pd.DataFrame:
    """Risk components (0-100) and the weighted risk score of each account.

    Parameters
    ----------
    features : pandas.DataFrame
        Needs the ``leverage_mean``, ``high_leverage_share``, ``liquidation_count``,
        ``option_share``, ``long_premium_share``, ``top_instrument_share`` and
        ``pnl_std_usd`` columns of ``window``.
    window : str
        Window of the features.

    Returns
    -------
    pandas.DataFrame
        Columns ``leverage, liquidations, short_option, concentration, pnl_volatility,
        risk_score``.

    Examples
    --------
    >>> f = pd.DataFrame({"leverage_mean__all": [1.0], "high_leverage_share__all": [0.0],
    ...   "liquidation_count__all": [0.0], "option_share__all": [0.0],
    ...   "long_premium_share__all": [np.nan], "top_instrument_share__all": [0.0],
    ...   "pnl_std_usd__all": [0.0]})
    >>> float(risk_profile(f)["risk_score"].iloc[0])
    0.0
    """
    return pd.DataFrame(_risks(features, window), index=features.index)


def _risks(features: pd.DataFrame, window: str = "all") -> dict[str, np.ndarray]:
    """Return the components and score of :func:`risk_profile` as arrays."""
    cols = {s: f"{s}__{window}" for s in RISK_STEMS}
    _require(features, list(cols.values()), "risk profile")
    may_be_unknown = ("long_premium_share", "leverage_mean", "high_leverage_share",
                      "liquidation_count")
    _no_nan(features, [c for s, c in cols.items() if s not in may_be_unknown], "risk profile")
    f = {s: features[c].to_numpy(float) for s, c in cols.items()}
    known_col = f"{RISK_KNOWN_STEM}__{window}"
    known = (features[known_col].to_numpy(float) if known_col in features.columns
             else np.full(len(features), np.nan))
    # NaN leverage: no leveraged fill (no leverage risk) unless leveraged fills lack it
    no_leveraged = np.isnan(known)
    lev = 60 * np.clip(np.log(np.maximum(f["leverage_mean"], 1.0)) / np.log(50), 0, 1)
    lev += 40 * np.clip(f["high_leverage_share"], 0, 1)
    lev = np.where(np.isnan(f["leverage_mean"]) & no_leveraged, 0.0, lev)
    liq = 100 * (1 - np.exp(-np.maximum(f["liquidation_count"], 0) / 2))
    bought = np.nan_to_num(f["long_premium_share"], nan=1.0)
    long_share = np.where(f["option_share"] > 0, bought, 1.0)
    written = np.clip(f["option_share"], 0, 1) * (1 - np.clip(long_share, 0, 1))
    short = 100 * np.clip(written / 0.5, 0, 1)
    conc = 100 * np.clip(f["top_instrument_share"], 0, 1)
    pnl = 100 * np.clip(np.log10(1 + np.maximum(f["pnl_std_usd"], 0)) / 6, 0, 1)
    out = {"leverage": lev, "liquidations": liq, "short_option": short,
           "concentration": conc, "pnl_volatility": pnl}
    # the weighted mean of the known components, summed in the order of RISK_WEIGHTS
    total = np.zeros(len(lev))
    weight = np.zeros(len(lev))
    for name, w in RISK_WEIGHTS.items():
        x = out[name]
        known = ~np.isnan(x)
        total += np.where(known, x * w, 0.0)
        weight += np.where(known, w, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["risk_score"] = total / weight  # no known component: NaN
    return out


def tier_bounds(size: Any) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Rank range ``[lower, upper)`` of each tier among ``size`` accounts ranked from the top.

    ``upper`` is the tier's cumulative share of ``size`` rounded half to even (NumPy's
    rounding); ``size`` may be an array (one group size per row). Accounts ranked at or
    after the last ``upper`` are ``bronze``.

    Examples
    --------
    >>> [(name, int(lo), int(hi)) for name, lo, hi in tier_bounds(150)]
    [('platinum', 0, 2), ('gold', 2, 15), ('silver', 15, 75)]
    """
    size = np.asarray(size, dtype=float)
    out = []
    lower = np.zeros(size.shape, dtype=np.int64)
    cumulative = 0.0
    for name, share in VALUE_TIERS:
        cumulative += share
        upper = np.round(cumulative * size).astype(np.int64)
        out.append((name, lower, upper))
        lower = upper
    return out


def overlay_columns(trend_window: str = "30d") -> list[str]:
    """Feature columns :func:`overlays` reads (``leverage_known_share__all`` if present)."""
    cols = [*_lifecycle_columns(trend_window), VALUE_COLUMN,
            *(f"{s}__all" for s in (*RISK_STEMS, RISK_KNOWN_STEM))]
    return list(dict.fromkeys(cols))


def overlays(features: pd.DataFrame, *, trend_window: str = "30d",
             by: np.ndarray | None = None) -> pd.DataFrame:
    """Lifecycle stage, value tier and risk profile side by side.

    Parameters
    ----------
    features : pandas.DataFrame
        Feature frame (see the three functions for the columns needed).
    trend_window : str
        Passed to :func:`lifecycle_stage`.
    by : numpy.ndarray, optional
        Passed to :func:`value_tier` (rows ranked within their group).

    Returns
    -------
    pandas.DataFrame
        ``lifecycle_stage``, ``value_tier`` and the risk columns per account.
    """
    return pd.concat(
        [lifecycle_stage(features, trend_window=trend_window), value_tier(features, by=by),
         risk_profile(features)],
        axis=1,
    )


def overlay_arrays(features: pd.DataFrame, *, trend_window: str = "30d",
                   by: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """:func:`overlays` as arrays, in row order: what decisions read, without the frames.

    ``lifecycle_stage`` and ``value_tier`` are object arrays of the names; the rules are
    the same functions :func:`overlays` runs.
    """
    return {"lifecycle_stage": _stages(features, trend_window),
            "value_tier": _tiers(features, by=by), **_risks(features)}
