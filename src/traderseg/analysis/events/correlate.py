"""Correlation of each segment's daily activity with same-day market moves."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from traderseg.analysis.events.detect import daily_signals
from traderseg.errors import ConfigError, DataError, SchemaError

logger = logging.getLogger(__name__)

MARKET_VARIABLES = ("return", "abs_return", "iv_change")
CORRELATION_COLUMNS = ["segment", "metric", "market_var", "n", "r", "p_value", "method"]


def activity_correlations(
    activity: pd.DataFrame,
    market: pd.DataFrame,
    *,
    underlying: str | None = None,
    metrics: Sequence[str] = ("notional_usd", "net_delta_usd"),
    method: str = "spearman",
) -> pd.DataFrame:
    """Correlate segment activity with same-day returns, absolute returns and IV changes.

    Parameters
    ----------
    activity : pandas.DataFrame
        Daily activity per segment (``segment``, ``ts`` and the ``metrics`` columns).
    market : pandas.DataFrame
        Canonical market frame; reduced to daily log returns, their absolute value and
        the one-day change of the implied-vol index.
    underlying : str, optional
        Underlying whose moves are used; required when ``market`` holds several.
    metrics : sequence of str
        Activity columns to correlate.
    method : {"spearman", "pearson"}
        Rank (robust to the heavy tails of notional) or linear correlation.

    Returns
    -------
    pandas.DataFrame
        ``segment``, ``metric``, ``market_var`` (return, abs_return, iv_change), ``n``
        (days where both values exist; days without an IV print or after a missing bar
        drop out), ``r``, ``p_value`` (two-sided, from :mod:`scipy.stats`) and
        ``method``. ``r`` and ``p_value`` are NaN when ``n < 3`` or a series is constant.
    """
    if method not in ("spearman", "pearson"):
        raise ConfigError(f"method must be 'spearman' or 'pearson', got {method!r}")
    if not isinstance(activity, pd.DataFrame):
        raise SchemaError(f"activity must be a pandas DataFrame, got {type(activity).__name__}")
    missing = [c for c in ("segment", "ts", *metrics) if c not in activity.columns]
    if missing:
        raise SchemaError(f"activity is missing column(s): {', '.join(missing)}")
    if activity.empty:
        raise DataError("activity is empty")
    moves = _market_moves(market, underlying)
    act = activity[["segment", "ts", *metrics]].copy()
    act["ts"] = pd.to_datetime(act["ts"], utc=True).astype("datetime64[us, UTC]")
    joined = act.merge(moves, on="ts", how="left")
    rows = []
    for segment, g in joined.groupby("segment", sort=True):
        for metric in metrics:
            for var in MARKET_VARIABLES:
                rows.append((segment, metric, var, *_correlate(g[metric], g[var], method)))
    out = pd.DataFrame(rows, columns=CORRELATION_COLUMNS[:-1])
    out["method"] = method
    out["n"] = out["n"].astype(np.int64)
    return out


def _market_moves(market: pd.DataFrame, underlying: str | None) -> pd.DataFrame:
    signals = daily_signals(market)
    names = sorted(signals["underlying"].unique())
    if underlying is None:
        if len(names) > 1:
            raise ConfigError(f"market holds {names}; say which underlying to use")
        underlying = names[0]
    if underlying not in names:
        raise DataError(f"market has no bars for {underlying!r} (has {names})")
    s = signals[signals["underlying"] == underlying]
    return pd.DataFrame({
        "ts": s["ts"].to_numpy(),
        "return": s["return"].to_numpy(),
        "abs_return": s["return"].abs().to_numpy(),
        "iv_change": s["iv_change"].to_numpy(),
    }).astype({"ts": "datetime64[us, UTC]"})


def _correlate(x: pd.Series, y: pd.Series, method: str) -> tuple[int, float, float]:
    ok = x.notna().to_numpy() & y.notna().to_numpy()
    a = x.to_numpy(dtype="float64")[ok]
    b = y.to_numpy(dtype="float64")[ok]
    n = int(ok.sum())
    if n < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return n, np.nan, np.nan
    res = stats.spearmanr(a, b) if method == "spearman" else stats.pearsonr(a, b)
    return n, float(res.statistic), float(res.pvalue)
