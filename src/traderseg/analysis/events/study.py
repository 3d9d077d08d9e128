"""Event studies: abnormal segment activity in the days around market events.

For each event day ``t0``, segment and relative day ``k`` in the event window, the
abnormal activity is the transformed activity on ``t0 + k`` minus its mean over the
estimation window (days ``t0 + e0 .. t0 + e1``, before the event). Abnormal values and
their cumulative sums are then averaged across events with a confidence interval across
events. Events whose windows fall outside the activity data are excluded and reported.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from traderseg.errors import ConfigError, DataError, SchemaError

logger = logging.getLogger(__name__)

TRANSFORMS = ("log", "ratio", "diff")
METHODS = ("t", "bootstrap")
STUDY_COLUMNS = [
    "segment", "rel_day", "n_events", "mean_abnormal", "ci_low", "ci_high", "t_stat",
    "p_value", "car", "car_ci_low", "car_ci_high",
]


def abnormal_by_event(
    activity: pd.DataFrame,
    events: pd.DataFrame,
    window: tuple[int, int] = (-5, 5),
    estimation: tuple[int, int] = (-60, -10),
    metric: str = "notional_usd",
    *,
    transform: str = "log",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Abnormal activity of every segment around every usable event.

    Parameters
    ----------
    activity : pandas.DataFrame
        Daily activity with ``segment``, ``ts`` (UTC midnight) and ``metric``, as from
        :func:`traderseg.analysis.events.segment_activity`. A day missing for a segment
        inside the covered span counts as zero activity.
    events : pandas.DataFrame
        Events with a ``ts`` column; several events on one day count once.
    window, estimation : tuple of int
        First and last relative day (inclusive) of the event and estimation windows.
        The estimation window must end before the event window starts.
    metric : str
        Activity column to study.
    transform : {"log", "ratio", "diff"}
        ``log``: ``log(1 + x)`` minus its estimation mean (zero-activity days stay
        defined); ``ratio``: ``x / mean - 1``; ``diff``: ``x - mean`` (for signed
        metrics such as net delta).

    Returns
    -------
    abnormal : pandas.DataFrame
        Long frame ``event_ts``, ``segment``, ``rel_day``, ``abnormal``.
    excluded : pandas.DataFrame
        ``event_ts`` and ``reason`` of the events left out.
    """
    cube = _abnormal_cube(activity, events, window, estimation, metric, transform)
    n_ev, n_rel, n_seg = cube.values.shape
    long = pd.DataFrame({
        "event_ts": cube.events.repeat(n_rel * n_seg),
        "segment": np.tile(np.asarray(cube.segments, dtype=object), n_ev * n_rel),
        "rel_day": np.tile(np.repeat(cube.rel, n_seg), n_ev),
        "abnormal": cube.values.reshape(-1),
    })
    return long, cube.excluded


@dataclass(frozen=True)
class _Cube:
    events: pd.DatetimeIndex
    rel: np.ndarray
    segments: list[Any]
    values: np.ndarray  # events x relative days x segments
    excluded: pd.DataFrame


def _abnormal_cube(
    activity: pd.DataFrame,
    events: pd.DataFrame,
    window: tuple[int, int],
    estimation: tuple[int, int],
    metric: str,
    transform: str,
) -> _Cube:
    _check_windows(window, estimation)
    if transform not in TRANSFORMS:
        raise ConfigError(f"transform must be one of {TRANSFORMS}, got {transform!r}")
    panel = _panel(activity, metric)
    if transform == "log" and (panel.to_numpy() < 0).any():
        raise DataError(f"{metric!r} has negative values; use transform='diff' for it")
    days = _event_days(events)
    lo, hi = min(estimation[0], window[0]), max(estimation[1], window[1])
    first, last = panel.index[0], panel.index[-1]
    need, have = hi - lo + 1, len(panel)
    if need > have:
        raise DataError(
            f"the estimation and event windows span {need} days but the activity covers "
            f"only {have} days ({first.date()} .. {last.date()})"
        )
    kept, excluded = [], []
    day = pd.Timedelta(days=1)
    for t0 in days:
        if t0 + lo * day < first or t0 + hi * day > last:
            span = f"{(t0 + lo * day).date()} .. {(t0 + hi * day).date()}"
            excluded.append((t0, f"needs {span}, activity covers {first.date()} .. {last.date()}"))
        else:
            kept.append(t0)
    if excluded:
        logger.info("%d of %d event days excluded: windows fall off the activity data",
                    len(excluded), len(days))
    if not kept:
        raise DataError(f"none of the {len(days)} event days has its full window inside the data")
    values = panel.to_numpy(dtype="float64")
    kept_index = pd.DatetimeIndex(kept)
    pos = panel.index.get_indexer(kept_index)
    rel = np.arange(window[0], window[1] + 1)
    est = np.arange(estimation[0], estimation[1] + 1)
    ab = _abnormal(values[pos[:, None] + rel[None, :]], values[pos[:, None] + est[None, :]],
                   transform)
    return _Cube(
        events=kept_index,
        rel=rel,
        segments=list(panel.columns),
        values=ab,
        excluded=pd.DataFrame(excluded, columns=["event_ts", "reason"]),
    )


def event_study(
    activity: pd.DataFrame,
    events: pd.DataFrame,
    window: tuple[int, int] = (-5, 5),
    estimation: tuple[int, int] = (-60, -10),
    metric: str = "notional_usd",
    *,
    transform: str = "log",
    confidence: float = 0.95,
    method: str = "t",
    n_boot: int = 2000,
    random_state: int | None = None,
) -> pd.DataFrame:
    """Average abnormal activity per segment and relative day, with confidence intervals.

    Parameters
    ----------
    activity, events, window, estimation, metric, transform
        As in :func:`abnormal_by_event`.
    confidence : float
        Level of the intervals, across events.
    method : {"t", "bootstrap"}
        ``t``: Student-t interval on the mean across events; ``bootstrap``: percentile
        interval from resampling events (``n_boot`` draws, ``random_state`` seed).
    n_boot : int
        Bootstrap draws.
    random_state : int, optional
        Seed of the bootstrap.

    Returns
    -------
    pandas.DataFrame
        Per ``segment`` and ``rel_day``: ``n_events``, ``mean_abnormal``, ``ci_low``,
        ``ci_high``, ``t_stat``, ``p_value`` (two-sided, mean zero), ``car`` (mean
        cumulative abnormal value from the window start) with ``car_ci_low`` and
        ``car_ci_high``. ``attrs`` holds ``n_events``, ``n_excluded``, ``excluded``
        (event day and reason), ``n_duplicate_days`` and the settings used.

    Raises
    ------
    ConfigError
        Windows, transform, method or confidence out of range.
    SchemaError
        Activity or events lack a needed column.
    DataError
        Empty inputs, windows longer than the data, or no usable event.

    Notes
    -----
    Overlapping events are kept: an estimation window may contain an earlier event.
    Intervals treat events as independent draws, which clustered events are not quite.
    """
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must be in (0, 1), got {confidence!r}")
    if method not in METHODS:
        raise ConfigError(f"method must be one of {METHODS}, got {method!r}")
    if method == "bootstrap" and n_boot < 100:
        raise ConfigError(f"n_boot must be at least 100, got {n_boot!r}")
    cube = _abnormal_cube(activity, events, window, estimation, metric, transform)
    ab, rel, segments = cube.values, cube.rel, cube.segments
    car = np.cumsum(ab, axis=1)
    rows = _summaries(ab, car, confidence, method, n_boot, random_state)
    out = pd.DataFrame({
        "segment": np.tile(np.asarray(segments, dtype=object), len(rel)),
        "rel_day": np.repeat(rel, len(segments)),
        **{k: v.reshape(-1) for k, v in rows.items()},
    })
    out = out.sort_values(["segment", "rel_day"], kind="stable").reset_index(drop=True)
    out["n_events"] = out["n_events"].astype(np.int64)
    out.attrs.update(_attrs(ab.shape[0], cube.excluded, _n_duplicates(events), window,
                            estimation, metric, transform, method, confidence))
    return out[STUDY_COLUMNS]


def _check_windows(window: tuple[int, int], estimation: tuple[int, int]) -> None:
    for name, w in (("window", window), ("estimation", estimation)):
        if len(w) != 2 or not all(isinstance(v, int | np.integer) for v in w) or w[0] > w[1]:
            raise ConfigError(f"{name} must be two integers (first <= last), got {w!r}")
    if estimation[1] >= window[0]:
        raise ConfigError(
            f"estimation window {estimation} must end before the event window {window} starts"
        )


def _panel(activity: pd.DataFrame, metric: str) -> pd.DataFrame:
    if not isinstance(activity, pd.DataFrame):
        raise SchemaError(f"activity must be a pandas DataFrame, got {type(activity).__name__}")
    missing = [c for c in ("segment", "ts", metric) if c not in activity.columns]
    if missing:
        raise SchemaError(f"activity is missing column(s): {', '.join(missing)}")
    if activity.empty:
        raise DataError("activity is empty")
    ts = pd.to_datetime(activity["ts"], utc=True)
    if (ts != ts.dt.floor("D")).any():
        raise DataError("event studies need daily activity (ts at 00:00 UTC, freq='1D')")
    values = pd.to_numeric(activity[metric], errors="coerce")
    bad = values.isna() | ~np.isfinite(values)
    if bad.any():
        row = activity.index[bad][0]
        raise DataError(f"activity row {row}: {metric!r} is not a finite number")
    frame = pd.DataFrame({"segment": activity["segment"].to_numpy(), "ts": ts, "v": values})
    if frame.duplicated(["segment", "ts"]).any():
        raise DataError("activity has more than one row for a (segment, ts) pair")
    panel = frame.pivot(index="ts", columns="segment", values="v")
    days = pd.date_range(panel.index.min(), panel.index.max(), freq="D")
    return panel.reindex(days).fillna(0.0)


def _event_days(events: pd.DataFrame) -> list[pd.Timestamp]:
    if not isinstance(events, pd.DataFrame) or "ts" not in events.columns:
        raise SchemaError("events must be a DataFrame with a 'ts' column")
    if events.empty:
        raise DataError("no events to study")
    days = pd.to_datetime(events["ts"], utc=True).dt.floor("D")
    return sorted(pd.unique(days))


def _n_duplicates(events: pd.DataFrame) -> int:
    days = pd.to_datetime(events["ts"], utc=True).dt.floor("D")
    return int(days.duplicated().sum())


def _abnormal(win_x: np.ndarray, est_x: np.ndarray, transform: str) -> np.ndarray:
    if transform == "log":
        return np.log1p(win_x) - np.log1p(est_x).mean(axis=1, keepdims=True)
    base = est_x.mean(axis=1, keepdims=True)
    if transform == "diff":
        return win_x - base
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = win_x / base - 1
    ratio[np.broadcast_to(base == 0, ratio.shape)] = np.nan
    return ratio


def _summaries(
    ab: np.ndarray, car: np.ndarray, confidence: float, method: str, n_boot: int,
    random_state: int | None,
) -> dict[str, np.ndarray]:
    n = np.sum(~np.isnan(ab), axis=0)
    mean, lo, hi, t_stat, p = _t_interval(ab, confidence)
    car_mean, car_lo, car_hi, _, _ = _t_interval(car, confidence)
    if method == "bootstrap":
        rng = np.random.default_rng(random_state)
        idx = rng.integers(0, ab.shape[0], size=(n_boot, ab.shape[0]))
        lo, hi = _percentile_interval(ab, idx, confidence)
        car_lo, car_hi = _percentile_interval(car, idx, confidence)
    return {
        "n_events": n, "mean_abnormal": mean, "ci_low": lo, "ci_high": hi, "t_stat": t_stat,
        "p_value": p, "car": car_mean, "car_ci_low": car_lo, "car_ci_high": car_hi,
    }


def _percentile_interval(
    x: np.ndarray, idx: np.ndarray, confidence: float, chunk: int = 250
) -> tuple[np.ndarray, np.ndarray]:
    means = np.concatenate(
        [np.nanmean(x[idx[i : i + chunk]], axis=1) for i in range(0, len(idx), chunk)]
    )
    alpha = (1 - confidence) / 2
    lo, hi = np.nanquantile(means, [alpha, 1 - alpha], axis=0)
    return lo, hi


def _t_interval(x: np.ndarray, confidence: float) -> tuple[np.ndarray, ...]:
    n = np.sum(~np.isnan(x), axis=0).astype("float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.nanmean(x, axis=0) if x.shape[0] else np.full(x.shape[1:], np.nan)
        sd = np.sqrt(np.nansum((x - mean) ** 2, axis=0) / (n - 1))
        se = np.where(n > 1, sd / np.sqrt(n), np.nan)
        crit = stats.t.ppf(0.5 + confidence / 2, np.where(n > 1, n - 1, np.nan))
        t_stat = np.where(se > 0, mean / se, np.nan)
        p = np.where(np.isfinite(t_stat), 2 * stats.t.sf(np.abs(t_stat), n - 1), np.nan)
    return mean, mean - crit * se, mean + crit * se, t_stat, p


def _attrs(
    n_events: int, excluded: pd.DataFrame, n_dup: int, window: tuple[int, int],
    estimation: tuple[int, int], metric: str, transform: str, method: str, confidence: float,
) -> dict[str, Any]:
    return {
        "n_events": n_events,
        "n_excluded": len(excluded),
        "excluded": [
            {"event_ts": str(r.event_ts), "reason": r.reason} for r in excluded.itertuples()
        ],
        "n_duplicate_days": n_dup,
        "window": list(window),
        "estimation": list(estimation),
        "metric": metric,
        "transform": transform,
        "method": method,
        "confidence": confidence,
    }
