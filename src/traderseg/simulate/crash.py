"""A scripted crash: a sharp intraday drop on a chosen day, and the liquidations it forces.

:class:`Crash` says when and how much: on ``day`` every underlying falls by ``size`` (a
fraction of its price) over ``hours`` hours from ``start_hour`` UTC. The market path
(:func:`traderseg.simulate.market.build_market`) takes it in as follows:

* the bars from the crash on are scaled by ``1 - size``: on the crash day the low and
  the close, on every later day the whole bar (the later daily returns are the real ones);
* the crash day is marked ``crash`` for every underlying, with the time the drop starts;
* the crash day's intraday index runs through four pins: the open at 00:00, the anchor
  ``P0 = open * (close0 / open) ** u0`` at the start of the drop (``close0`` the close
  before scaling, ``u0`` the start as a fraction of the day), ``P0 * (1 - size)`` at the
  end of the drop, and the close at 24:00; Brownian bridges join the pins before and after
  the drop, and during it the index falls linearly and without noise,
  ``P(u) = P0 * (1 - size * (u - u0) / (u1 - u0))``.

Liquidation cascade. A leveraged long is liquidated when the index falls to its
liquidation level (:func:`traderseg.simulate.exits.liquidation_level`); during the drop the
index falls through each level exactly once, at ``u = u0 + (u1 - u0) * (1 - level / P0) /
size``, so the positions it takes through their maintenance margin are liquidated in time
order, the most leveraged (the highest level for the same entry) first. A position is
liquidated by the drop when it is open at that time and its level is at or above the
bottom ``P0 * (1 - size)`` (at the bottom exactly counts). Shorts gain in a crash.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from traderseg.errors import ConfigError

DAY_US = 86_400_000_000
NEVER = np.iinfo(np.int64).max // 4  # same sentinel as the trips' "kept past any horizon"
DEFAULT_CRASH_SIZE = 0.25
DEFAULT_CRASH_START_HOUR = 13.0
DEFAULT_CRASH_HOURS = 3.0
MAX_CRASH_SIZE = 0.9


@dataclass(frozen=True)
class Crash:
    """When and how deep the scripted crash is.

    Parameters
    ----------
    day : datetime.date
        UTC day of the crash (inside the simulated window).
    size : float
        Fall of every underlying during the drop, a fraction of its price (0 to 0.9).
    start_hour : float
        UTC hour the drop starts.
    hours : float
        Length of the drop in hours; it ends the same day.
    """

    day: date
    size: float = DEFAULT_CRASH_SIZE
    start_hour: float = DEFAULT_CRASH_START_HOUR
    hours: float = DEFAULT_CRASH_HOURS

    def check(self, start: date, days: int) -> int:
        """Validate against the window ``start .. start + days - 1``; return the day index.

        Raises
        ------
        ConfigError
            Naming the field that is out of range.
        """
        if not 0.0 < self.size <= MAX_CRASH_SIZE:
            raise ConfigError(f"crash size must be above 0 and at most {MAX_CRASH_SIZE}, "
                              f"got {self.size}")
        if not self.hours > 0.0:
            raise ConfigError(f"crash length must be above 0 hours, got {self.hours}")
        if not (0.0 <= self.start_hour and self.start_hour + self.hours <= 24.0):
            raise ConfigError(f"crash from hour {self.start_hour} for {self.hours} h must start "
                              "and end within its UTC day")
        index = (self.day - start).days
        if not 0 <= index < days:
            raise ConfigError(f"crash day {self.day} is outside the simulated window "
                              f"{start} + {days} days")
        return index


@dataclass(frozen=True)
class CrashPath:
    """The crash as the market path holds it (day index, pins per underlying).

    Attributes
    ----------
    day : int
        Index of the crash day in the window.
    u0, u1 : float
        Start and end of the drop as fractions of the day.
    size : float
        Relative fall during the drop.
    anchor : numpy.ndarray
        Index at the start of the drop per underlying (``P0``).
    start_us : int
        Start of the drop, epoch microseconds (UTC).
    """

    day: int
    u0: float
    u1: float
    size: float
    anchor: np.ndarray
    start_us: int

    @property
    def end_us(self) -> int:
        """End of the drop, epoch microseconds (UTC)."""
        return self.start_us + round((self.u1 - self.u0) * DAY_US)

    @property
    def bottom(self) -> np.ndarray:
        """Index at the end of the drop per underlying."""
        return self.anchor * (1.0 - self.size)

    def level_at(self, und: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Index during the drop at day fractions ``u0 <= u <= u1`` (linear, no noise)."""
        frac = (u - self.u0) / (self.u1 - self.u0)
        return self.anchor[und] * (1.0 - self.size * frac)

    def time_through(self, und: np.ndarray, level: np.ndarray) -> np.ndarray:
        """Epoch microseconds at which the drop reaches ``level`` (from above).

        Levels at or above the anchor give the start of the drop; levels below the bottom
        are never reached and give :data:`NEVER`.
        """
        p0 = self.anchor[und]
        frac = np.clip((1.0 - level / p0) / self.size, 0.0, 1.0)
        t = self.start_us + np.round(frac * (self.end_us - self.start_us)).astype(np.int64)
        return np.where(level >= self.bottom[und], t, NEVER)


def build_crash(crash: Crash, index: int, start_us: int, opens: np.ndarray,
                closes: np.ndarray, lows: np.ndarray, highs: np.ndarray) -> CrashPath:
    """Pins of the crash day from its bars before scaling (arrays ``(n_underlyings,)``)."""
    u0 = crash.start_hour / 24.0
    u1 = (crash.start_hour + crash.hours) / 24.0
    anchor = np.clip(opens * (closes / opens) ** u0, lows, highs)
    return CrashPath(day=index, u0=u0, u1=u1, size=crash.size, anchor=anchor,
                     start_us=start_us + index * DAY_US + round(u0 * DAY_US))


def scale_bars(day: int, size: float, opens: np.ndarray, highs: np.ndarray, lows: np.ndarray,
               closes: np.ndarray) -> None:
    """Scale the bars from the crash on by ``1 - size`` in place (columns = days).

    The crash day keeps its open and high (reached before the drop); its low and close
    and every later bar are scaled.
    """
    keep = 1.0 - size
    closes[:, day:] *= keep
    lows[:, day:] *= keep
    opens[:, day + 1:] *= keep
    highs[:, day + 1:] *= keep


def cascade_times(path: CrashPath, und: np.ndarray, long: np.ndarray, level: np.ndarray,
                  t_entry: np.ndarray, t_exit: np.ndarray) -> np.ndarray:
    """Liquidation time of each position by the drop (:data:`NEVER` when it survives).

    Parameters
    ----------
    path : CrashPath
        The crash.
    und : numpy.ndarray
        Underlying index of each position.
    long : numpy.ndarray
        Whether the position is long (only longs lose in a crash).
    level : numpy.ndarray
        Index level at which the position is liquidated.
    t_entry, t_exit : numpy.ndarray
        Opening time and planned closing time, epoch microseconds.

    Returns
    -------
    numpy.ndarray
        Epoch microseconds of the liquidation, or :data:`NEVER`.
    """
    t = path.time_through(und, level)
    t = np.where(t < NEVER, np.maximum(t, t_entry + 1), NEVER)
    hit = long & (t < NEVER) & (t_entry < path.end_us) & (t < t_exit)
    return np.where(hit, t, NEVER)


def bridge(la: np.ndarray, ua: np.ndarray | float, lb: np.ndarray, ub: np.ndarray | float,
           u: np.ndarray, sigma: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Log price of a Brownian bridge from ``(ua, la)`` to ``(ub, lb)`` at ``u``."""
    span = np.maximum(np.asarray(ub) - np.asarray(ua), 1e-12)
    frac = (u - ua) / span
    sd = sigma * np.sqrt(np.maximum((u - ua) * (ub - u) / span, 0.0))
    return la + frac * (lb - la) + sd * z
