"""Days and windows as every engine counts them, without the engines.

Day numbers are days since 1970-01-01 in UTC. A window ``Nd`` (or ``Nw``) as of a cutoff
``c`` covers ``[start_of_day(c) - N days, c)``: exactly N days at a midnight cutoff, N whole
days plus the partial cutoff day otherwise; ``all`` is the account's whole history before
``c``. This module imports no engine, so code that only runs cached SQL or reads online
state does not load Ibis.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from traderseg.features import measures as M
from traderseg.features.catalog import CATALOG, Feature, column_name
from traderseg.features.expr import Expr, where

EPOCH = date(1970, 1, 1)


def window_start(cutoff: datetime, window_days: int | None) -> datetime | None:
    """Start of a window of ``window_days`` whole days before ``cutoff`` (None: all)."""
    if window_days is None:
        return None
    day0 = datetime(cutoff.year, cutoff.month, cutoff.day, tzinfo=cutoff.tzinfo)
    return day0 - timedelta(days=window_days)


def window_start_days(cutoff: datetime, lengths: Any) -> list[int]:
    """Sorted distinct day numbers where windows of ``lengths`` days start (None: all)."""
    return sorted({day_number(s.date()) for n in lengths
                   if (s := window_start(cutoff, n)) is not None})


def day_number(d: date) -> int:
    """Days since 1970-01-01."""
    return (d - EPOCH).days


def cutoff_micros(cutoff: datetime) -> int:
    """Microseconds since the epoch of an aware cutoff (exact)."""
    delta = cutoff - datetime(1970, 1, 1, tzinfo=cutoff.tzinfo)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def cutoff_end_day(cutoff: datetime) -> int:
    """Day number just past the cutoff's day (the cutoff's own day at midnight)."""
    return math.ceil(cutoff.timestamp() / M.SECONDS_PER_DAY)


def feature_columns(windows: Sequence[str]) -> list[str]:
    """Names of the feature columns for ``windows``, in order."""
    cols = [column_name(f.name, "all") for f in CATALOG if f.lifetime_only]
    for w in windows:
        cols += [column_name(f.name, w) for f in CATALOG if not f.lifetime_only]
    return cols


def effective_formula(feature: Feature) -> Expr:
    """Return the feature's formula, with its idle value (or NULL) when the window has no fill."""
    return where(ibis_n_positive(), feature.formula, feature.idle)


def ibis_n_positive() -> Expr:
    """``n > 0`` over the window values."""
    from traderseg.features.catalog import window_value

    return window_value("n") > 0
