"""Trend inputs of the churn model: how an account's recent trading compares with its past.

Gradient-boosted trees split on one column at a time, so a ratio of two columns ("trades
a third as often this week as over the quarter") is something they can only approximate
with many splits. Traders who are about to leave show it in such ratios: activity and
size fade, losses pile up against the size they usually trade. This module derives those
ratios from catalogue features already in the frame, one definition each:

* **rate trends** (:data:`RATE_FEATURES`: fills, active days, notional traded), per pair
  of windows ``(short, long)`` in :data:`WINDOW_PAIRS`::

      log1p(x[short] / days(short)) - log1p(x[long] / days(long))

  0 when the account keeps its pace, negative when it slows down (an idle short window
  gives ``-log1p(rate over the long window)``);
* **level trends** (:data:`LEVEL_FEATURES`: median notional, mean leverage), per pair:
  ``log1p(x[short]) - log1p(x[long])``, NaN when either is missing (no fill, or no
  leveraged fill, in the short window);
* **loss to size** (:data:`LOSS_WINDOWS`): realised PnL of the window over the account's
  median notional of the longest window of the frame's pairs, NaN without one.

A column is derived only when its inputs are in the frame; the names are
``trend_{feature}__{short}_{long}`` and ``pnl_to_size__{window}``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from traderseg.errors import DataError
from traderseg.features.catalog import split_column
from traderseg.features.compute import window_days

RATE_FEATURES: tuple[str, ...] = ("fill_count", "active_days", "notional_total")
"""Amounts per window whose per-day rate is compared across windows."""

LEVEL_FEATURES: tuple[str, ...] = ("notional_median", "leverage_mean")
"""Per-fill levels compared across windows."""

WINDOW_PAIRS: tuple[tuple[str, str], ...] = (("7d", "30d"), ("30d", "90d"))
"""``(short, long)`` windows compared."""

LOSS_WINDOWS: tuple[str, ...] = ("7d", "30d")
"""Windows whose realised PnL is measured against the account's usual size."""


def trend_columns(columns: list[str]) -> list[str]:
    """Names of the trend columns :func:`add_trends` derives from these columns.

    Parameters
    ----------
    columns : list of str
        Feature frame columns.

    Returns
    -------
    list of str
        Trend column names, in the order they are added.

    Examples
    --------
    >>> trend_columns(["fill_count__7d", "fill_count__30d", "fill_count__90d"])
    ['trend_fill_count__7d_30d', 'trend_fill_count__30d_90d']
    """
    return list(_plan(set(columns)))


def add_trends(features: pd.DataFrame) -> pd.DataFrame:
    """Return ``features`` with the trend columns appended.

    Parameters
    ----------
    features : pandas.DataFrame
        Catalogue features (``{feature}__{window}`` columns).

    Returns
    -------
    pandas.DataFrame
        A new frame: the input columns, then :func:`trend_columns`.

    Raises
    ------
    DataError
        When a trend input holds a negative amount (a count or notional below 0).
    """
    plan = _plan(set(map(str, features.columns)))
    if not plan:
        return features.copy()
    new = {}
    for name, (kind, a, b) in plan.items():
        x = features[a].to_numpy(dtype=np.float64)
        if kind == "rate":
            y = features[b].to_numpy(dtype=np.float64)
            for col, v in ((a, x), (b, y)):
                if (v < 0).any():
                    raise DataError(f"{col}: {int((v < 0).sum())} negative values; "
                                    "a trend needs amounts of 0 or more")
            days_a, days_b = (_days(split_column(c)[1]) for c in (a, b))
            new[name] = np.log1p(x / days_a) - np.log1p(y / days_b)
        elif kind == "level":
            y = features[b].to_numpy(dtype=np.float64)
            with np.errstate(invalid="ignore"):
                new[name] = np.log1p(np.maximum(x, 0)) - np.log1p(np.maximum(y, 0))
        else:
            size = features[b].to_numpy(dtype=np.float64)
            with np.errstate(invalid="ignore", divide="ignore"):
                new[name] = np.where(size > 0, x / size, np.nan)
    return pd.concat([features, pd.DataFrame(new, index=features.index)], axis=1)


def _plan(cols: set[str]) -> dict[str, tuple[str, str, str]]:
    plan: dict[str, tuple[str, str, str]] = {}
    for kind, feats in (("rate", RATE_FEATURES), ("level", LEVEL_FEATURES)):
        for feat in feats:
            for short, long in WINDOW_PAIRS:
                a, b = f"{feat}__{short}", f"{feat}__{long}"
                if a in cols and b in cols:
                    plan[f"trend_{feat}__{short}_{long}"] = (kind, a, b)
    longs = [long for _, long in WINDOW_PAIRS if f"notional_median__{long}" in cols]
    if longs:
        size = f"notional_median__{max(longs, key=_days)}"
        for w in LOSS_WINDOWS:
            if f"realized_pnl_usd__{w}" in cols:
                plan[f"pnl_to_size__{w}"] = ("loss", f"realized_pnl_usd__{w}", size)
    return plan


def _days(window: str) -> int:
    days = window_days(window)
    assert days is not None  # the pairs are windows of whole days
    return days
