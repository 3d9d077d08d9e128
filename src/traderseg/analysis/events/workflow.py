"""The whole event study from a store: detect events, aggregate segments, measure.

This is what ``traderseg analyze event-study`` runs; the steps stay usable on their own
(:func:`~traderseg.analysis.events.detect_events`,
:func:`~traderseg.analysis.events.segment_activity`,
:func:`~traderseg.analysis.events.event_study`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from traderseg.analysis.events.activity import segment_activity
from traderseg.analysis.events.detect import detect_events
from traderseg.analysis.events.market import load_market
from traderseg.analysis.events.study import event_study
from traderseg.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

DEFAULT_KINDS = ("crash", "rally", "vol_spike", "drawdown")


@dataclass(frozen=True)
class SegmentEventStudy:
    """Result of :func:`study_segment_events`.

    Attributes
    ----------
    study : pandas.DataFrame
        One row per (relative day, segment), see :func:`event_study`; ``attrs`` carry
        ``n_events`` and ``n_excluded``.
    events : pandas.DataFrame
        Every detected event of the market series.
    used : pandas.DataFrame
        The events that fall between the first and last day of fills.
    first_day, last_day : pandas.Timestamp
        Days of the first and last fill.
    """

    study: pd.DataFrame
    events: pd.DataFrame
    used: pd.DataFrame
    first_day: pd.Timestamp
    last_day: pd.Timestamp


def study_segment_events(
    db: Any,
    assignments: pd.DataFrame | str | Path,
    *,
    events_from: Literal["real", "store"] = "real",
    underlying: str = "BTC",
    kinds: Sequence[str] = DEFAULT_KINDS,
    window: tuple[int, int] = (-5, 5),
    estimation: tuple[int, int] = (-60, -10),
    metric: str = "notional_usd",
    transform: str = "log",
    segment_col: str = "segment",
) -> SegmentEventStudy:
    """Abnormal activity of each segment around the market events of the fills' period.

    Parameters
    ----------
    db : str, Path or duckdb connection
        The fills store.
    assignments : pandas.DataFrame, str or Path
        Frame or Parquet file with ``account_id`` and ``segment_col``.
    events_from : {"real", "store"}
        Detect events on the real daily series shipped with the package, or on the
        store's ``market`` table.
    underlying : str
        Underlying whose market series gives the events.
    kinds : sequence of str
        Event kinds to keep.
    window, estimation : tuple of int
        Event and estimation windows, in days relative to the event.
    metric : str
        Activity column to study (e.g. ``notional_usd``, ``fills``).
    transform : str
        ``log``, ``ratio`` or ``diff``.
    segment_col : str
        Column of ``assignments`` holding the segment.

    Returns
    -------
    SegmentEventStudy
        The study and the events it used.

    Raises
    ------
    DataError
        No detected event falls inside the period the fills cover.
    """
    if events_from not in ("real", "store"):
        raise ConfigError(f"events_from must be 'real' or 'store', got {events_from!r}")
    if not isinstance(assignments, pd.DataFrame):
        from traderseg.store import read_parquet_file

        assignments = read_parquet_file(assignments, "assignments file")
    market = load_market(None if events_from == "real" else db, underlyings=[underlying])
    events = detect_events(market, kinds=list(kinds))
    activity = segment_activity(db, assignments, "1D", segment_col=segment_col)
    first, last = activity["ts"].min(), activity["ts"].max()
    used = events[(events["ts"] >= first) & (events["ts"] <= last)]
    logger.info("%d of %d %s events fall between %s and %s", len(used), len(events), underlying,
                first.date(), last.date())
    if used.empty:
        raise DataError(f"no detected {underlying} event falls inside the period the fills "
                        f"cover ({first.date()} .. {last.date()})")
    study = event_study(activity, used, window, estimation, metric, transform=transform)
    return SegmentEventStudy(study, events, used, first, last)
