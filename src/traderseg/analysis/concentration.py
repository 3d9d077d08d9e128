"""Concentration of an amount across accounts: the Lorenz curve and its Gini coefficient.

Both follow the convention of :mod:`traderseg.analysis.profitability`: negative amounts
(rebate earners, losing traders) count as zero, as the Lorenz curve of amounts of mixed
sign is not defined.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from traderseg.errors import DataError

logger = logging.getLogger(__name__)


def _clean(values: ArrayLike) -> np.ndarray:
    x = np.asarray(values, dtype="float64").ravel()
    if x.size == 0:
        raise DataError("no amounts: a Lorenz curve needs at least one account")
    if not np.isfinite(x).all():
        raise DataError(f"{int((~np.isfinite(x)).sum())} amount(s) are missing or infinite")
    return np.sort(np.clip(x, 0.0, None))


def gini(values: ArrayLike) -> float:
    """Gini coefficient of the amounts (negative ones counted as zero).

    Parameters
    ----------
    values : array-like
        One amount per account.

    Returns
    -------
    float
        ``2 * sum(i * x_(i)) / (n * sum(x)) - (n + 1) / n`` over the ascending amounts
        ``x_(1..n)``; NaN when no amount is positive.

    Examples
    --------
    >>> gini([0, 0, 1, 3])
    0.625
    """
    x = _clean(values)
    total = x.sum()
    if total <= 0:
        return float("nan")
    n = x.size
    ranks = np.arange(1, n + 1, dtype="float64")
    return float(2.0 * (ranks * x).sum() / (n * total) - (n + 1.0) / n)


def lorenz_curve(values: ArrayLike, *, points: int = 101) -> pd.DataFrame:
    """Compute the Lorenz curve, at most ``points`` points (bounded size for a chart).

    Parameters
    ----------
    values : array-like
        One amount per account.
    points : int
        Most points returned (at least 2); beyond, the curve is read at evenly spaced
        population shares (exact at each of them, linear in between).

    Returns
    -------
    pandas.DataFrame
        ``population_share`` (share of accounts, poorest first) and ``amount_share``
        (their share of the total), from (0, 0) to (1, 1). Empty shares when no amount
        is positive.

    Examples
    --------
    >>> lorenz_curve([0, 0, 1, 3])["amount_share"].tolist()
    [0.0, 0.0, 0.0, 0.25, 1.0]
    """
    if points < 2:
        raise DataError(f"a Lorenz curve needs at least 2 points, got {points}")
    x = _clean(values)
    total = x.sum()
    pop = np.arange(x.size + 1, dtype="float64") / x.size
    if total <= 0:
        return pd.DataFrame({"population_share": [0.0, 1.0], "amount_share": [np.nan, np.nan]})
    share = np.concatenate([[0.0], np.cumsum(x) / total])
    share[-1] = 1.0
    if pop.size > points:
        grid = np.linspace(0.0, 1.0, points)
        share = np.interp(grid, pop, share)
        pop = grid
    return pd.DataFrame({"population_share": pop, "amount_share": share})
