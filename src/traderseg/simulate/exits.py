"""Closing side of trips: exit prices, liquidations, expiries and realised PnL.

The position tracker works per trip: each opening fill is a lot that is closed in full
by one fill (or kept open, or expires). Realised PnL of a closing fill is
``direction * qty * (exit price - entry price)`` in USD, gross of fees, where
``direction`` is +1 for a long (or a bought option) and -1 for a short (or a written one).

Leveraged trips (perps, futures) are liquidated when the index moves against them by
``0.9 / leverage`` of the entry price before the planned exit (:func:`liquidation_level`:
the position's margin is down to its maintenance share, a tenth of the initial margin,
:data:`MAINTENANCE_SHARE`); the liquidation fill is
a taker fill at the liquidation price, flagged ``is_liquidation``. Whether the threshold
was crossed is decided from the intraday extremes implied by the daily bars: full
low/high for days strictly between entry and exit, and bridge-style extremes after the
entry and before the exit on the first and last day.

A scripted crash (:mod:`traderseg.simulate.crash`) liquidates the longs its drop takes
through their level at the time the drop reaches it; on the crash day a long it spares can
only be liquidated after the drop, and a short only before it.

Options left to expire produce no fill; their settlement against the index at 08:00 UTC
counts in the running PnL that drives churn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from traderseg.simulate.calendar import DAY_US
from traderseg.simulate.crash import CrashPath, cascade_times
from traderseg.simulate.market import MarketPath
from traderseg.simulate.options import YEAR_DAYS, bs_delta, bs_price, smile_iv
from traderseg.simulate.trips import (
    FUTURE,
    HALF_SPREAD,
    NEVER,
    OPTION,
    OPTION_IV_SPREAD,
    PERP,
    Trips,
)

MAINTENANCE_SHARE = 0.1  # maintenance margin as a share of the initial margin
LIQUIDATION_FRACTION = 1.0 - MAINTENANCE_SHARE  # of the initial margin lost at liquidation


def liquidation_level(
    entry: np.ndarray, direction: np.ndarray, leverage: np.ndarray,
    fraction: float = LIQUIDATION_FRACTION,
) -> np.ndarray:
    """Price at which a leveraged position is liquidated.

    ``entry * (1 - direction * fraction / leverage)``: a long (``direction`` +1) at 10x is
    liquidated 9% below its entry, when its margin (a tenth of the notional) is down to
    the maintenance share; a short (-1) as far above it.

    Examples
    --------
    >>> float(liquidation_level(np.array(100.0), np.array(1), np.array(10.0))[()])
    91.0
    """
    return entry * (1.0 - direction * fraction / leverage)


@dataclass
class Exits:
    """How each trip ends (arrays aligned with the trips)."""

    closed: np.ndarray
    t: np.ndarray
    s: np.ndarray
    price: np.ndarray
    iv: np.ndarray
    delta: np.ndarray
    maker: np.ndarray
    liquidated: np.ndarray
    by_crash: np.ndarray
    pnl: np.ndarray
    settled: np.ndarray
    settle_t: np.ndarray
    settle_pnl: np.ndarray


def _sparse_table(a: np.ndarray, fn: np.ufunc) -> np.ndarray:
    levels = [a]
    w = 1
    while 2 * w <= a.shape[1]:
        prev = levels[-1]
        nxt = prev.copy()
        nxt[:, : a.shape[1] - w] = fn(prev[:, : a.shape[1] - w], prev[:, w:])
        levels.append(nxt)
        w *= 2
    return np.stack(levels)


def _range_query(
    tab: np.ndarray, fn: np.ufunc, und: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> np.ndarray:
    """``fn`` over days ``lo..hi`` inclusive (requires ``lo <= hi``)."""
    k = np.floor(np.log2(hi - lo + 1)).astype(np.int64)
    return fn(tab[k, und, lo], tab[k, und, hi - (1 << k) + 1])


class ExitResolver:
    """Resolve exits of trips against one market path (range tables built once)."""

    def __init__(self, market: MarketPath) -> None:
        self.market = market
        self._low = _sparse_table(market.low, np.minimum)
        self._high = _sparse_table(market.high, np.maximum)

    def resolve(self, trips: Trips, exit_plan: np.ndarray) -> Exits:
        """End every trip given its planned exit time (epoch us, or ``NEVER``).

        Parameters
        ----------
        trips : Trips
            Trips with entry prices and pre-drawn random numbers.
        exit_plan : numpy.ndarray
            Planned exit time of each trip.

        Returns
        -------
        Exits
        """
        mk, c = self.market, trips.cols
        n = len(trips)
        und, kind, d0, u1, s1 = c["und"], c["kind"], c["day"], c["u"], c["s"]
        opt = kind == OPTION
        end_us = mk.end_us
        in_window = exit_plan < end_us
        closed = in_window & ~c["to_expiry"]
        plan = np.where(in_window, exit_plan, end_us - 1)
        d1 = np.floor_divide(plan - mk.start_us, DAY_US)
        u2 = (plan - mk.start_us - d1 * DAY_US) / DAY_US
        same = d1 == d0
        s2 = np.where(
            same,
            mk.price_after(und, d0, u1, s1, np.maximum(u2, u1), c["z_exit"]),
            mk.price_at(und, d1, u2, c["z_exit"]),
        )
        t_out = plan.copy()
        liquidated = np.zeros(n, dtype=bool)
        by_crash = np.zeros(n, dtype=bool)
        lev = c["lev"]
        levered = ((kind == PERP) | (kind == FUTURE)) & np.isfinite(lev)
        lev_or_1 = np.where(levered, lev, 1.0)
        liq_px = liquidation_level(c["price"], c["dir"], lev_or_1)
        if levered.any():
            liquidated, t_liq, by_crash = self._liquidations(trips, levered, d1, u2, s2, plan)
            t_out = np.where(liquidated, t_liq, t_out)
            closed |= liquidated
        # exit prices
        dir_close = -c["dir"]
        maker = c["maker_exit"] & ~liquidated
        sign = np.where(maker, -1.0, 1.0) * dir_close
        fwd = np.where(
            kind == FUTURE,
            s2
            * np.exp(mk.basis[und, d1] * np.maximum(c["expiry"] - t_out, 0) / (DAY_US * YEAR_DAYS)),
            s2,
        )
        slip = np.where(maker, 0.0, c["slip"]) * dir_close
        price = np.where(liquidated, liq_px, fwd * (1.0 + sign * HALF_SPREAD[kind] + slip))
        s2 = np.where(liquidated, liquidation_level(s1, c["dir"], lev_or_1), s2)
        iv = np.full(n, np.nan)
        delta = np.full(n, np.nan)
        oc = opt & closed
        if oc.any():
            so, k, call = s2[oc], c["strike"][oc], c["is_call"][oc]
            to = (c["expiry"][oc] - t_out[oc]) / (DAY_US * YEAR_DAYS)
            mid = smile_iv(mk.iv[und[oc], d1[oc]], so, k, to)
            at_ask = (dir_close[oc] > 0) != maker[oc]
            ivo = mid * (1.0 + np.where(at_ask, OPTION_IV_SPREAD, -OPTION_IV_SPREAD))
            price[oc] = bs_price(so, k, to, ivo, call)
            iv[oc] = ivo
            delta[oc] = bs_delta(so, k, to, ivo, call)
        pnl = np.where(closed, c["dir"] * c["qty"] * (price - c["price"]), 0.0)
        # options held to expiry inside the window settle at intrinsic value
        exp = c["expiry"]
        settled = c["to_expiry"] & (exp < end_us)
        de = np.clip(np.floor_divide(exp - mk.start_us, DAY_US), 0, mk.days - 1)
        s_exp = mk.price_at(und, de, np.full(n, 1.0 / 3.0), c["z_settle"])
        payoff = np.where(
            c["is_call"], np.maximum(s_exp - c["strike"], 0), np.maximum(c["strike"] - s_exp, 0)
        )
        settle_pnl = np.where(
            settled, c["dir"] * c["qty"] * (np.nan_to_num(payoff) - c["price"]), 0.0
        )
        return Exits(
            closed=closed,
            t=t_out,
            s=s2,
            price=price,
            iv=iv,
            delta=delta,
            maker=maker,
            liquidated=liquidated,
            by_crash=by_crash,
            pnl=pnl,
            settled=settled,
            settle_t=exp,
            settle_pnl=settle_pnl,
        )

    def _liquidations(
        self, trips: Trips, levered: np.ndarray, d1: np.ndarray, u2: np.ndarray, s2: np.ndarray,
        plan: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        mk, c = self.market, trips.cols
        idx = np.flatnonzero(levered)
        und, d0, u1, s1 = c["und"][idx], c["day"][idx], c["u"][idx], c["s"][idx]
        e1, uu2, ss2 = d1[idx], u2[idx], s2[idx]
        long = c["dir"][idx] > 0
        thr = liquidation_level(s1, c["dir"][idx], c["lev"][idx])
        sig = mk.sigma_day[und, d0]
        a1, a2 = c["a_ext"][idx], c["a_ext2"][idx]
        same = e1 == d0
        span1 = np.where(same, np.maximum(uu2 - u1, 0.0), 1.0 - u1)
        end1 = np.where(same, ss2, mk.close[und, d0])
        lo1 = np.maximum(mk.low[und, d0], np.minimum(s1, end1) * np.exp(-a1 * sig * np.sqrt(span1)))
        hi1 = np.minimum(mk.high[und, d0], np.maximum(s1, end1) * np.exp(a1 * sig * np.sqrt(span1)))
        hit1 = np.where(long, lo1 <= thr, hi1 >= thr)
        sig2 = mk.sigma_day[und, e1]
        lo2 = np.maximum(
            mk.low[und, e1], np.minimum(mk.open[und, e1], ss2) * np.exp(-a2 * sig2 * np.sqrt(uu2))
        )
        hi2 = np.minimum(
            mk.high[und, e1], np.maximum(mk.open[und, e1], ss2) * np.exp(a2 * sig2 * np.sqrt(uu2))
        )
        hit2 = ~same & np.where(long, lo2 <= thr, hi2 >= thr)
        mid = e1 - d0 >= 2
        lo_m = np.full(len(idx), np.inf)
        hi_m = np.full(len(idx), -np.inf)
        if mid.any():
            lo_m[mid] = _range_query(self._low, np.minimum, und[mid], d0[mid] + 1, e1[mid] - 1)
            hi_m[mid] = _range_query(self._high, np.maximum, und[mid], d0[mid] + 1, e1[mid] - 1)
        hit_m = np.where(long, lo_m <= thr, hi_m >= thr)
        # first day the threshold is crossed
        hit_day = np.where(hit1, d0, -1)
        todo = np.flatnonzero(~hit1 & hit_m)
        k = 1
        while len(todo):
            d = d0[todo] + k
            h = np.where(
                long[todo], mk.low[und[todo], d] <= thr[todo], mk.high[und[todo], d] >= thr[todo]
            )
            hit_day[todo[h]] = d[h]
            todo = todo[~h]
            k += 1
        last = (hit_day < 0) & hit2
        hit_day = np.where(last, e1, hit_day)
        hit = hit_day >= 0
        v = c["v_liq"][idx]
        lo_u = np.where(hit_day == d0, u1, 0.0)
        hi_u = np.where(hit_day == e1, uu2, 1.0)
        u_liq = lo_u + (np.maximum(hi_u, lo_u) - lo_u) * v
        t_liq = (
            mk.start_us
            + np.maximum(hit_day, 0) * DAY_US
            + np.round(u_liq * DAY_US).astype(np.int64)
        )
        t_liq = np.maximum(t_liq, c["t"][idx] + 1)
        crash = np.zeros(len(idx), dtype=bool)
        if mk.crash is not None:
            hit, t_liq, crash = self._crash(mk.crash, idx, trips, long, thr, hit, hit_day,
                                            t_liq, plan[idx])
        liquidated = np.zeros(len(trips), dtype=bool)
        by_crash = np.zeros(len(trips), dtype=bool)
        t_all = np.full(len(trips), NEVER, dtype=np.int64)
        liquidated[idx] = hit
        by_crash[idx] = crash
        t_all[idx] = np.where(hit, t_liq, NEVER)
        return liquidated, t_all, by_crash

    def _crash(
        self, cr: CrashPath, idx: np.ndarray, trips: Trips, long: np.ndarray, thr: np.ndarray,
        hit: np.ndarray, hit_day: np.ndarray, t_liq: np.ndarray, plan: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Liquidations with the scripted crash: the drop's cascade wins on the crash day."""
        mk, c = self.market, trips.cols
        t_entry = c["t"][idx]
        earlier = hit & (hit_day < cr.day)
        tc = cascade_times(cr, c["und"][idx], long, thr, t_entry, plan)
        crash = ~earlier & (tc < NEVER)
        # the bar of the crash day holds the drop: a long it spared is hit after it, a
        # short (whose level is above) before it
        on_day = hit & (hit_day == cr.day) & ~crash
        day0 = mk.start_us + cr.day * DAY_US
        lo = np.where(long, np.maximum(cr.end_us, t_entry + 1), np.maximum(day0, t_entry + 1))
        hi = np.where(long, np.minimum(day0 + DAY_US, plan), np.minimum(cr.start_us, plan))
        retimed = lo + ((hi - lo) * c["v_liq"][idx]).astype(np.int64)
        keep_day = on_day & (hi > lo)
        t_new = np.where(crash, tc, np.where(keep_day, retimed, t_liq))
        hit_new = earlier | crash | keep_day | (hit & (hit_day > cr.day))
        return hit_new, t_new, crash
