"""Deribit-style expiry calendar, instrument names and strike grid.

Every expiry is at 08:00 UTC. What is listed at a time ``t``:

* dailies: every day, up to :data:`LISTING_HORIZON_DAYS` ``["daily"]`` days ahead;
* weeklies: Fridays, up to 5 weeks ahead;
* monthlies: the last Friday of each month, up to 4 months ahead;
* quarterlies: the last Friday of March, June, September and December, up to 13 months
  ahead (dated futures are listed on quarterlies only).

An expiry is tradable until one hour before it. Names follow Deribit: ``BTC-27DEC24``
(future), ``BTC-27DEC24-60000-C`` (option), ``BTC-PERPETUAL``, and ``BTC-USDT`` for spot.
"""

from __future__ import annotations

import calendar as _cal
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np

DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000
EXPIRY_HOUR = 8
MIN_TENOR_US = HOUR_US
LISTING_HORIZON_DAYS: dict[str, int] = {"daily": 4, "weekly": 35, "monthly": 120, "quarterly": 395}
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_NICE_STEPS = np.array([1.0, 2.0, 2.5, 5.0, 10.0])
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def is_last_friday(d: date) -> bool:
    """Whether ``d`` is the last Friday of its month."""
    return d.weekday() == 4 and d.day + 7 > _cal.monthrange(d.year, d.month)[1]


def is_quarterly(d: date) -> bool:
    """Whether ``d`` is a quarterly expiry day (last Friday of Mar, Jun, Sep, Dec)."""
    return d.month % 3 == 0 and is_last_friday(d)


def expiry_us(d: date) -> int:
    """Microseconds since the epoch of the 08:00 UTC expiry on day ``d``."""
    dt = datetime(d.year, d.month, d.day, EXPIRY_HOUR, tzinfo=UTC)
    return int((dt - _EPOCH) / timedelta(microseconds=1))


def expiry_code(expiry: int) -> str:
    """Deribit date code of an expiry given in epoch microseconds (``5JAN24``)."""
    d = (_EPOCH + timedelta(microseconds=int(expiry))).date()
    return f"{d.day}{MONTHS[d.month - 1]}{d.year % 100:02d}"


def option_name(underlying: str, expiry: int, strike: float, is_call: bool) -> str:
    """Deribit option name, e.g. ``BTC-27DEC24-60000-C``."""
    k = f"{strike:.0f}" if float(strike).is_integer() else f"{strike:g}".replace(".", "d")
    return f"{underlying}-{expiry_code(expiry)}-{k}-{'C' if is_call else 'P'}"


def future_name(underlying: str, expiry: int) -> str:
    """Deribit dated-future name, e.g. ``BTC-27DEC24``."""
    return f"{underlying}-{expiry_code(expiry)}"


@dataclass(frozen=True)
class ExpiryCalendar:
    """Expiries listed around a window, by class, as sorted epoch microseconds."""

    classes: dict[str, np.ndarray]

    @classmethod
    def for_window(cls, start: date, days: int) -> ExpiryCalendar:
        """Build the calendar covering ``days`` days from ``start`` plus listing horizons."""
        last = start + timedelta(days=days + max(LISTING_HORIZON_DAYS.values()) + 1)
        all_days = [start + timedelta(days=i) for i in range((last - start).days + 1)]
        sel = {
            "daily": all_days,
            "weekly": [d for d in all_days if d.weekday() == 4],
            "monthly": [d for d in all_days if is_last_friday(d)],
            "quarterly": [d for d in all_days if is_quarterly(d)],
        }
        return cls({k: np.array([expiry_us(d) for d in v], dtype=np.int64) for k, v in sel.items()})

    def choose(
        self, t: np.ndarray, tenor_days: np.ndarray, *, only: str | None = None
    ) -> np.ndarray:
        """Pick the listed expiry closest (in log tenor) to ``t + tenor_days`` for each ``t``.

        Parameters
        ----------
        t : numpy.ndarray
            Trade times, epoch microseconds.
        tenor_days : numpy.ndarray
            Wanted time to expiry in days (> 0).
        only : str, optional
            Restrict to one class (``"quarterly"`` for dated futures).

        Returns
        -------
        numpy.ndarray
            Expiries, epoch microseconds, each at least one hour after ``t``.
        """
        target = t + (tenor_days * DAY_US).astype(np.int64)
        best = np.zeros(len(t), dtype=np.int64)
        best_cost = np.full(len(t), np.inf)
        names = [only] if only else list(self.classes)
        for name in names:
            e = self.classes[name]
            lo = np.searchsorted(e, t + MIN_TENOR_US, side="left")
            hi = np.searchsorted(e, t + LISTING_HORIZON_DAYS[name] * DAY_US, side="right")
            pos = np.searchsorted(e, target)
            for cand in (pos - 1, pos):
                cand = np.minimum(np.maximum(cand, lo), hi - 1)
                ok = (cand >= lo) & (cand < hi)
                idx = np.clip(cand, 0, len(e) - 1)
                exp = e[idx]
                cost = np.where(ok, np.abs(np.log(np.maximum(exp - t, 1) / (target - t))), np.inf)
                better = cost < best_cost
                best = np.where(better, exp, best)
                best_cost = np.where(better, cost, best_cost)
        if not np.isfinite(best_cost).all():
            raise ValueError("no listed expiry for some trade times")
        return best


def strike_step(spot: np.ndarray, tenor_days: np.ndarray) -> np.ndarray:
    """Strike spacing: about 0.8% of spot for dailies, 1.6% to 5 weeks, 4% beyond.

    Rounded (in log) to the nearest of 1, 2, 2.5, 5 times a power of ten, and at least 1.
    """
    frac = np.where(tenor_days <= 4, 0.008, np.where(tenor_days <= 35, 0.016, 0.04))
    raw = spot * frac
    p10 = 10.0 ** np.floor(np.log10(raw))
    cand = p10[:, None] * _NICE_STEPS[None, :]
    pick = np.argmin(np.abs(np.log(cand / raw[:, None])), axis=1)
    return np.maximum(cand[np.arange(len(raw)), pick], 1.0)


def round_strike(
    k: np.ndarray, spot: np.ndarray, step: np.ndarray, toward_spot: np.ndarray
) -> np.ndarray:
    """Snap strikes to the grid: toward the spot where asked, else to the nearest line."""
    q = k / step
    snapped = np.where(toward_spot, np.where(k > spot, np.floor(q), np.ceil(q)), np.round(q))
    return np.maximum(snapped, 1.0) * step
