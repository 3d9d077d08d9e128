"""Detect market events (crashes, rallies, implied-vol spikes, drawdowns) in daily bars.

Every signal on day ``t`` uses bars up to and including ``t`` only: the volatility a
return is scaled by and the implied-vol level a jump is measured against both end the day
before, and the drawdown peak is a running maximum. :func:`daily_signals` exposes the
per-day numbers; :func:`detect_events` flags days and merges nearby flags of one kind.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from traderseg.analysis.events.market import validate_market
from traderseg.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

EVENT_KINDS = ("crash", "rally", "vol_spike", "drawdown")
EVENT_COLUMNS = [
    "underlying", "ts", "kind", "magnitude", "return", "iv_change", "description",
    "start", "flagged_days",
]
DAY = pd.Timedelta(days=1)


def min_observations(window: int) -> int:
    """Fewest observations a trailing window of ``window`` days needs (two thirds)."""
    return max(2, -(-2 * window // 3))


def daily_signals(
    market: pd.DataFrame, *, vol_window: int = 30, peak_window: int | None = None
) -> pd.DataFrame:
    """Per-day signals behind event detection, computed without look-ahead.

    Parameters
    ----------
    market : pandas.DataFrame
        Canonical market frame (see :func:`traderseg.analysis.events.load_market`).
        Several bars on one day are reduced to a daily bar (last price, last implied vol).
    vol_window : int
        Trailing window, in calendar days, of the return volatility and the implied-vol
        reference level. Both end the day before the bar they are compared with.
    peak_window : int, optional
        Trailing window, in days, of the drawdown peak; ``None`` uses the whole history.

    Returns
    -------
    pandas.DataFrame
        One row per underlying and day: ``price``, ``return`` (log return over one day;
        NaN after a missing day), ``vol`` (trailing standard deviation of returns),
        ``return_z``, ``iv_index``, ``iv_ref`` (trailing mean implied vol over the days
        it was printed), ``iv_jump`` (``iv_index / iv_ref - 1``), ``iv_change`` (one-day
        change; NaN when either day is missing), ``peak`` and ``drawdown``.
    """
    _check_window(vol_window, "vol_window")
    if peak_window is not None:
        _check_window(peak_window, "peak_window")
    daily = _to_daily(validate_market(market))
    parts = [
        _signals_one(g, vol_window, peak_window) for _, g in daily.groupby("underlying", sort=True)
    ]
    return pd.concat(parts, ignore_index=True)


def detect_events(
    market: pd.DataFrame,
    *,
    return_z: float = 3.0,
    vol_window: int = 30,
    iv_jump: float = 0.3,
    drawdown: float = 0.2,
    min_gap_days: int = 3,
    peak_window: int | None = None,
    kinds: Sequence[str] = EVENT_KINDS,
) -> pd.DataFrame:
    """Find crashes, rallies, implied-vol spikes and drawdowns per underlying.

    Parameters
    ----------
    market : pandas.DataFrame
        Canonical market frame.
    return_z : float
        A day is a crash (rally) when its log return is at most ``-return_z`` (at least
        ``return_z``) times the trailing ``vol_window``-day volatility.
    vol_window : int
        Trailing window in days for the volatility and the implied-vol reference level.
    iv_jump : float
        A day is a vol spike when the implied-vol index is at least ``1 + iv_jump`` times
        its trailing mean (0.3: 30 % above). Days without a print are never flagged, and
        the trailing mean needs prints on two thirds of its window.
    drawdown : float
        A drawdown event is the day the price first falls ``drawdown`` (0.2: 20 %) below
        its running peak; it re-arms once the price is back within ``drawdown / 2``.
    min_gap_days : int
        Flags of one kind whose days are at most this far apart are merged into one
        event, dated on the strongest day (``start`` keeps the first flagged day).
    peak_window : int, optional
        Trailing window of the drawdown peak; ``None`` uses the whole history.
    kinds : sequence of str
        Kinds to report, from ``crash``, ``rally``, ``vol_spike``, ``drawdown``.

    Returns
    -------
    pandas.DataFrame
        Columns ``underlying``, ``ts``, ``kind``, ``magnitude`` (z-score for crash and
        rally, percent for vol_spike and drawdown), ``return`` (log return that day),
        ``iv_change`` (index points), ``description``, ``start`` and ``flagged_days``.

    Raises
    ------
    ConfigError
        A threshold or window is out of range, or a kind is unknown.
    DataError
        The market is empty or an underlying has fewer bars than the window needs.

    Examples
    --------
    >>> from traderseg.analysis.events import load_market
    >>> ev = detect_events(load_market(underlyings=["BTC"]))
    >>> str(ev.loc[ev.kind == "crash", "ts"].min().date())
    '2017-09-14'
    """
    _check_params(return_z, iv_jump, drawdown, min_gap_days, kinds)
    signals = daily_signals(market, vol_window=vol_window, peak_window=peak_window)
    for u, g in signals.groupby("underlying"):
        if int(g["vol"].notna().sum()) == 0:
            raise DataError(
                f"{u}: {len(g)} daily bars are too few for vol_window={vol_window} "
                f"(needs at least {min_observations(vol_window) + 1} days of returns)"
            )
    flags = _flag_days(signals, return_z, iv_jump, drawdown, set(kinds))
    events = _merge(flags, min_gap_days)
    if events.empty:
        return pd.DataFrame({c: pd.Series(dtype=_dtype(c)) for c in EVENT_COLUMNS})
    events["description"] = events.apply(_describe, axis=1)
    logger.info("detected %d events (%s)", len(events), events["kind"].value_counts().to_dict())
    return events[EVENT_COLUMNS].reset_index(drop=True)


def _check_window(value: int, name: str) -> None:
    if not isinstance(value, int | np.integer) or value < 2:
        raise ConfigError(f"{name} must be an integer of at least 2 days, got {value!r}")


def _check_params(
    return_z: float, iv_jump: float, drawdown: float, min_gap_days: int, kinds: Sequence[str]
) -> None:
    if not return_z > 0:
        raise ConfigError(f"return_z must be positive, got {return_z!r}")
    if not iv_jump > 0:
        raise ConfigError(f"iv_jump must be positive, got {iv_jump!r}")
    if not 0 < drawdown < 1:
        raise ConfigError(f"drawdown must be a fraction in (0, 1), got {drawdown!r}")
    if not isinstance(min_gap_days, int | np.integer) or min_gap_days < 0:
        raise ConfigError(f"min_gap_days must be a non-negative integer, got {min_gap_days!r}")
    unknown = sorted(set(kinds) - set(EVENT_KINDS))
    if unknown:
        raise ConfigError(f"unknown event kind(s) {unknown}; choose from {list(EVENT_KINDS)}")


def _to_daily(market: pd.DataFrame) -> pd.DataFrame:
    market = market.assign(ts=market["ts"].dt.floor("D"))
    if not market.duplicated(["underlying", "ts"]).any():
        return market
    logger.info("market has intraday bars; reducing to daily bars (last price of each day)")
    return (
        market.groupby(["underlying", "ts"], sort=True)
        .agg(price=("price", "last"), high=("high", "max"), low=("low", "min"),
             iv_index=("iv_index", "last"))
        .reset_index()
    )


def _signals_one(g: pd.DataFrame, vol_window: int, peak_window: int | None) -> pd.DataFrame:
    g = g.set_index("ts")
    days = pd.date_range(g.index.min(), g.index.max(), freq="D")
    # The calendar holds every day so that windows are in days; days without a bar are
    # NaN here and are removed again before returning.
    cal = g[["price", "iv_index"]].reindex(days)
    logp = np.log(cal["price"])
    out = pd.DataFrame(index=days)
    out["price"] = cal["price"]
    out["return"] = logp.diff()
    need = min_observations(vol_window)
    out["vol"] = out["return"].rolling(vol_window, min_periods=need).std().shift(1)
    out["return_z"] = out["return"] / out["vol"]
    out["iv_index"] = cal["iv_index"]
    out["iv_ref"] = cal["iv_index"].rolling(vol_window, min_periods=need).mean().shift(1)
    out["iv_jump"] = out["iv_index"] / out["iv_ref"] - 1
    out["iv_change"] = cal["iv_index"].diff()
    if peak_window is None:
        out["peak"] = cal["price"].cummax()
    else:
        out["peak"] = cal["price"].rolling(peak_window, min_periods=1).max()
    out["drawdown"] = out["price"] / out["peak"] - 1
    out = out.loc[g.index]
    out.insert(0, "underlying", g["underlying"].iloc[0])
    return out.rename_axis("ts").reset_index()


def _flag_days(
    s: pd.DataFrame, return_z: float, iv_jump: float, drawdown: float, kinds: set[str]
) -> pd.DataFrame:
    base = ["underlying", "ts", "return", "iv_change", "vol", "iv_index", "iv_ref", "drawdown"]

    def pick(mask: pd.Series | np.ndarray, kind: str, magnitude: pd.Series) -> pd.DataFrame:
        rows = s.loc[mask, base].copy()
        rows["kind"] = kind
        rows["magnitude"] = magnitude[mask].to_numpy()
        return rows

    parts = []
    if "crash" in kinds:
        parts.append(pick(s["return_z"] <= -return_z, "crash", s["return_z"]))
    if "rally" in kinds:
        parts.append(pick(s["return_z"] >= return_z, "rally", s["return_z"]))
    if "vol_spike" in kinds:
        parts.append(pick(s["iv_jump"] >= iv_jump, "vol_spike", 100 * s["iv_jump"]))
    if "drawdown" in kinds:
        hit = np.concatenate(
            [_drawdown_crossings(g["drawdown"].to_numpy(), drawdown) for _, g in
             s.groupby("underlying", sort=False)]
        )
        parts.append(pick(hit, "drawdown", 100 * s["drawdown"]))
    parts = [p for p in parts if not p.empty]
    if not parts:
        return pd.DataFrame(columns=[*base, "kind", "magnitude"])
    return pd.concat(parts, ignore_index=True)


def _drawdown_crossings(dd: np.ndarray, threshold: float) -> np.ndarray:
    hit = np.zeros(len(dd), dtype=bool)
    armed = True
    for i, value in enumerate(dd):
        if armed and value <= -threshold:
            hit[i] = True
            armed = False
        elif not armed and value > -threshold / 2:
            armed = True
    return hit


def _merge(flags: pd.DataFrame, min_gap_days: int) -> pd.DataFrame:
    if flags.empty:
        return flags.assign(start=pd.Series(dtype="datetime64[us, UTC]"), flagged_days=0)
    flags = flags.sort_values(["underlying", "kind", "ts"], kind="stable").reset_index(drop=True)
    gap = flags.groupby(["underlying", "kind"])["ts"].diff()
    new = gap.isna() | (gap > min_gap_days * DAY)
    flags["cluster"] = new.cumsum()
    strength = flags["magnitude"].abs()
    best = strength.groupby(flags["cluster"]).idxmax()
    grouped = flags.groupby("cluster")
    events = flags.loc[best.to_numpy()].copy()
    events["start"] = grouped["ts"].min().to_numpy()
    events["flagged_days"] = grouped.size().to_numpy()
    return events.sort_values(["underlying", "ts", "kind"], kind="stable")


def _describe(row: pd.Series) -> str:
    u, kind = row["underlying"], row["kind"]
    move = 100 * (np.exp(row["return"]) - 1) if pd.notna(row["return"]) else np.nan
    span = f" ({int(row['flagged_days'])} flagged days)" if row["flagged_days"] > 1 else ""
    if kind in ("crash", "rally"):
        verb = "fell" if kind == "crash" else "rose"
        return (
            f"{u} {verb} {abs(move):.1f}% in a day, {row['magnitude']:+.1f} sd of its "
            f"trailing daily volatility ({100 * row['vol']:.1f}%){span}"
        )
    if kind == "vol_spike":
        return (
            f"{u} implied vol at {row['iv_index']:.1f}, {row['magnitude']:.0f}% above its "
            f"trailing mean {row['iv_ref']:.1f}{span}"
        )
    return f"{u} closed {abs(row['magnitude']):.1f}% below its running peak{span}"


def _dtype(column: str) -> str:
    if column in ("ts", "start"):
        return "datetime64[us, UTC]"
    if column == "flagged_days":
        return "int64"
    if column in ("underlying", "kind", "description"):
        return "object"
    return "float64"
