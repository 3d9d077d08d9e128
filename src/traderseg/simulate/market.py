"""Market path of the simulated venue, driven by the real daily BTC and ETH series.

The window's daily bars are the real Binance BTCUSDT / ETHUSDT candles. Where the window
runs past the end of the real history, the path continues with a jump-diffusion whose
parameters are estimated from the real daily log returns (joint for BTC and ETH, seeded).

Implied volatility:

* BTC: the Deribit DVOL index, linearly interpolated across its gaps. Days outside the
  DVOL history (before 2021-03-24, after its last value, or synthetic days) use a proxy:
  the 30-day realised volatility up to and including the day times the median DVOL /
  realised-vol ratio measured where both exist, capped at 160% and smoothed with a 5-day
  exponential average.
* ETH: BTC's implied volatility times the median ratio of ETH to BTC 30-day realised
  volatility over the whole real history (about 1.2-1.3).

Events are marked per underlying and day: ``crash`` / ``rally`` when the close-to-close
log return exceeds :data:`EVENT_SIGMAS` times the trailing 30-day standard deviation of
daily returns (the day itself excluded), otherwise ``vol_spike`` when the implied
volatility rose by at least :data:`VOL_SPIKE_JUMP` (relative) since the previous day.

Intraday prices come from a Brownian bridge in log price between the day's open and close
with the day's implied daily volatility, clipped to the day's low and high.

A scripted crash (:class:`traderseg.simulate.crash.Crash`) scales the bars from its day on,
marks its day ``crash`` for every underlying and pins the day's intraday path to a linear
drop (see :mod:`traderseg.simulate.crash`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from traderseg.errors import ConfigError, DataError
from traderseg.simulate.crash import Crash, CrashPath, bridge, build_crash, scale_bars

logger = logging.getLogger(__name__)

UNDERLYINGS: tuple[str, ...] = ("BTC", "ETH")
DAY_US = 86_400_000_000
EVENT_SIGMAS = 2.75
VOL_SPIKE_JUMP = 0.12
TRAILING_DAYS = 30
IV_PROXY_CAP = 1.6  # highest implied vol the proxy may give (DVOL never closed above ~1.6)
EVENT_CODES: tuple[str, ...] = ("", "crash", "rally", "vol_spike")
_EPOCH = date(1970, 1, 1)


@dataclass(frozen=True)
class MarketPath:
    """Daily market path of the window, arrays shaped ``(n_underlyings, days)``.

    Attributes
    ----------
    start : datetime.date
        First day of the window.
    days : int
        Number of days.
    open, high, low, close : numpy.ndarray
        Daily bars in USD.
    iv : numpy.ndarray
        30-day at-the-money implied volatility, annualised fraction.
    event : numpy.ndarray
        Event code per day (index into :data:`EVENT_CODES`; 0 = none).
    basis : numpy.ndarray
        Annualised future basis (continuous rate) used to price dated futures.
    synthetic_days : int
        Days of the window not covered by the real history.
    crash : CrashPath, optional
        The scripted crash, if any.
    """

    start: date
    days: int
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    iv: np.ndarray
    event: np.ndarray
    basis: np.ndarray
    synthetic_days: int
    crash: CrashPath | None = None

    @property
    def start_us(self) -> int:
        """Window start as microseconds since the epoch (UTC)."""
        return (self.start - _EPOCH).days * DAY_US

    @property
    def end_us(self) -> int:
        """Window end (exclusive) as microseconds since the epoch (UTC)."""
        return self.start_us + self.days * DAY_US

    @property
    def sigma_day(self) -> np.ndarray:
        """Daily volatility used by the intraday bridge."""
        return self.iv / np.sqrt(365.0)

    def price_at(
        self, und: np.ndarray, day: np.ndarray, u: np.ndarray, z: np.ndarray
    ) -> np.ndarray:
        """Index price at time-of-day ``u`` (fraction of the day) on ``day``.

        A draw from the Brownian-bridge marginal between the day's open and close, clipped
        to the day's range; ``z`` are standard normal draws. On a crash day the bridge runs
        between the crash's pins (:mod:`traderseg.simulate.crash`).
        """
        lo, lc = np.log(self.open[und, day]), np.log(self.close[und, day])
        sd = self.sigma_day[und, day] * np.sqrt(u * (1.0 - u))
        s = np.exp(lo + u * (lc - lo) + sd * z)
        s = np.clip(s, self.low[und, day], self.high[und, day])
        return self._on_crash_day(s, und, day, None, None, u, z)

    def price_after(
        self,
        und: np.ndarray,
        day: np.ndarray,
        u1: np.ndarray,
        s1: np.ndarray,
        u2: np.ndarray,
        z: np.ndarray,
    ) -> np.ndarray:
        """Index price at ``u2`` on ``day`` given the price ``s1`` at ``u1 <= u2`` that day.

        The conditional law of the bridge, so short holding periods move little.
        """
        lc = np.log(self.close[und, day])
        l1 = np.log(s1)
        rest = np.maximum(1.0 - u1, 1e-9)
        frac = (u2 - u1) / rest
        sd = self.sigma_day[und, day] * np.sqrt(np.maximum((u2 - u1) * (1.0 - u2) / rest, 0.0))
        s = np.exp(l1 + frac * (lc - l1) + sd * z)
        s = np.clip(s, self.low[und, day], self.high[und, day])
        return self._on_crash_day(s, und, day, u1, s1, u2, z)

    def _on_crash_day(
        self,
        s: np.ndarray,
        und: np.ndarray,
        day: np.ndarray,
        u1: np.ndarray | None,
        s1: np.ndarray | None,
        u: np.ndarray,
        z: np.ndarray,
    ) -> np.ndarray:
        """Replace the prices of the crash day by draws between the crash's pins.

        Before the drop: a bridge from the open to the anchor; during it: the linear drop;
        after it: a bridge from the bottom to the close. With a known earlier price ``s1``
        at ``u1`` in the same stretch, the bridge starts from it instead.
        """
        cr = self.crash
        if cr is None:
            return s
        shape = np.shape(s)
        day_b, und_b, u_b, z_b = (np.broadcast_to(a, shape) for a in (day, und, u, z))
        on = day_b == cr.day
        if not on.any():
            return s
        out = np.array(s, dtype=float, copy=True)
        un, uu, zz = und_b[on], u_b[on], z_b[on]
        d = cr.day
        keep = 1.0 - cr.size
        sig = self.sigma_day[un, d]
        lopen, lanchor = np.log(self.open[un, d]), np.log(cr.anchor[un])
        lbottom, lclose = np.log(cr.bottom[un]), np.log(self.close[un, d])
        pre, post = uu < cr.u0, uu > cr.u1
        la = np.where(pre, lopen, lbottom)
        ua = np.where(pre, 0.0, cr.u1)
        lb = np.where(pre, lanchor, lclose)
        ub = np.where(pre, cr.u0, 1.0)
        if u1 is not None and s1 is not None:
            v1 = np.broadcast_to(u1, shape)[on]
            same = (pre & (v1 < cr.u0)) | (post & (v1 > cr.u1))
            la = np.where(same, np.log(np.broadcast_to(s1, shape)[on]), la)
            ua = np.where(same, v1, ua)
        drawn = np.exp(bridge(la, ua, lb, ub, uu, sig, zz))
        lo_pre, hi = self.low[un, d] / keep, self.high[un, d]
        drawn = np.where(pre, np.clip(drawn, lo_pre, hi),
                         np.clip(drawn, self.low[un, d], hi * keep))
        during = ~pre & ~post
        drawn[during] = cr.level_at(un[during], uu[during])
        out[on] = drawn
        return out

    def event_names(self, und: int) -> list[str | None]:
        """Event labels of underlying ``und`` per day (``None`` when calm)."""
        return [EVENT_CODES[c] or None for c in self.event[und]]


def load_daily(data_dir: Path) -> pd.DataFrame:
    """Read the real daily series into one frame indexed by date.

    Parameters
    ----------
    data_dir : Path
        Folder with ``BTCUSDT_1d.csv``, ``ETHUSDT_1d.csv`` and ``DVOL_BTC_1d.csv``.

    Returns
    -------
    pandas.DataFrame
        Columns ``{BTC,ETH}_{open,high,low,close}`` and ``dvol`` (NaN where missing),
        indexed by consecutive calendar dates.
    """
    frames = []
    for und in UNDERLYINGS:
        path = data_dir / f"{und}USDT_1d.csv"
        if not path.exists():
            raise ConfigError(f"market data file missing: {path.name} in {data_dir}")
        df = pd.read_csv(path)
        missing = {"timestamp", "open", "high", "low", "close"} - set(df.columns)
        if missing:
            raise DataError(f"{path.name}: missing columns {sorted(missing)}")
        df.index = pd.to_datetime(df["timestamp"]).dt.date
        frames.append(df[["open", "high", "low", "close"]].add_prefix(f"{und}_"))
    out = pd.concat(frames, axis=1, join="inner").sort_index()
    full = pd.date_range(out.index[0], out.index[-1], freq="D").date
    if len(full) != len(out) or out.isna().any().any():
        raise DataError("real BTC/ETH daily series must cover consecutive days without gaps")
    dvol_path = data_dir / "DVOL_BTC_1d.csv"
    if not dvol_path.exists():
        raise ConfigError(f"market data file missing: DVOL_BTC_1d.csv in {data_dir}")
    dv = pd.read_csv(dvol_path)
    dv.index = pd.to_datetime(dv["date"]).dt.date
    out["dvol"] = dv["dvol"].reindex(out.index)
    return out


def _jump_diffusion(logret: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``n`` joint daily log returns from a jump-diffusion fitted to ``logret``.

    ``logret`` is ``(days, 2)``. Jumps are days beyond 4 robust standard deviations;
    the diffusion uses the remaining days' mean and covariance; a jump day draws each
    underlying's jump from its own jump-size distribution with a common normal draw.
    """
    med = np.median(logret, axis=0)
    robust = 1.4826 * np.median(np.abs(logret - med), axis=0)
    is_jump = (np.abs(logret - med) > 4.0 * robust).any(axis=1)
    calm = logret[~is_jump]
    mu, cov = calm.mean(axis=0), np.cov(calm.T)
    jumps = logret[is_jump]
    lam = is_jump.mean()
    jmu, jsd = jumps.mean(axis=0), jumps.std(axis=0)
    out = rng.multivariate_normal(mu, cov, size=n)
    hit = rng.random(n) < lam
    common = rng.standard_normal(n)
    out[hit] += jmu + jsd * common[hit, None]
    return out


def build_market(
    start: date, days: int, seed: int, data_dir: Path, crash: Crash | None = None
) -> MarketPath:
    """Build the market path of a simulation window.

    Parameters
    ----------
    start : datetime.date
        First day of the window; needs 31 days of real history before it.
    days : int
        Window length in days (>= 1).
    seed : int
        Seed of the synthetic continuation (used only past the real history).
    data_dir : Path
        Folder with the real series (see :func:`load_daily`).
    crash : Crash, optional
        A scripted crash inside the window (:mod:`traderseg.simulate.crash`).

    Returns
    -------
    MarketPath
    """
    if days < 1:
        raise ConfigError(f"days must be >= 1, got {days}")
    crash_index = crash.check(start, days) if crash is not None else None
    real = load_daily(data_dir)
    first, last = real.index[0], real.index[-1]
    if start < first + timedelta(days=TRAILING_DAYS + 1):
        raise ConfigError(
            f"start {start} needs {TRAILING_DAYS + 1} days of history; earliest start is "
            f"{first + timedelta(days=TRAILING_DAYS + 1)}"
        )
    end = start + timedelta(days=days - 1)
    opens = real[[f"{u}_open" for u in UNDERLYINGS]].to_numpy().T
    highs = real[[f"{u}_high" for u in UNDERLYINGS]].to_numpy().T
    lows = real[[f"{u}_low" for u in UNDERLYINGS]].to_numpy().T
    closes = real[[f"{u}_close" for u in UNDERLYINGS]].to_numpy().T
    dvol = real["dvol"].to_numpy()
    n_ext = max(0, (end - last).days)
    if n_ext:
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,)))
        real_ret = np.diff(np.log(closes), axis=1).T
        ret = _jump_diffusion(real_ret, n_ext, rng).T
        c = closes[:, -1:] * np.exp(np.cumsum(ret, axis=1))
        o = np.concatenate([closes[:, -1:], c[:, :-1]], axis=1)
        sd = real_ret.std(axis=0)[:, None]
        wick = np.abs(rng.standard_normal((2, 2, n_ext))) * 0.5 * sd
        opens = np.concatenate([opens, o], axis=1)
        highs = np.concatenate([highs, np.maximum(o, c) * np.exp(wick[0])], axis=1)
        lows = np.concatenate([lows, np.minimum(o, c) * np.exp(-wick[1])], axis=1)
        closes = np.concatenate([closes, c], axis=1)
        dvol = np.concatenate([dvol, np.full(n_ext, np.nan)])
        logger.info("market: %d synthetic days after %s", n_ext, last)
    lo = (start - first).days
    path = None
    if crash is not None and crash_index is not None:
        at = lo + crash_index
        start_us = (start - _EPOCH).days * DAY_US
        path = build_crash(crash, crash_index, start_us, opens[:, at], closes[:, at],
                           lows[:, at], highs[:, at])
        opens, highs, lows, closes = (a.astype(float, copy=True)
                                      for a in (opens, highs, lows, closes))
        scale_bars(at, crash.size, opens, highs, lows, closes)
    ret = np.diff(np.log(closes), axis=1, prepend=np.nan)
    trail = pd.DataFrame(ret.T).rolling(TRAILING_DAYS).std().shift(1).to_numpy().T
    # realised vol including the day itself: the implied-vol proxy reacts on the day
    rv = pd.DataFrame(ret.T).rolling(TRAILING_DAYS).std().to_numpy().T * np.sqrt(365.0)
    dv = pd.Series(dvol).interpolate(limit_area="inside").to_numpy() / 100.0
    both = np.isfinite(dv) & np.isfinite(rv[0])
    ratio = float(np.median(dv[both] / rv[0, both])) if both.any() else 1.1
    proxy = pd.Series(np.minimum(ratio * rv[0], IV_PROXY_CAP)).bfill().ewm(span=5).mean().to_numpy()
    iv_btc = np.where(np.isfinite(dv), dv, proxy)
    ok = np.isfinite(rv).all(axis=0)
    eth_scale = float(np.median(rv[1, ok] / rv[0, ok]))
    iv = np.vstack([iv_btc, iv_btc * eth_scale])
    event = np.zeros_like(closes, dtype=np.int8)
    dlog_iv = np.diff(iv, axis=1, prepend=np.nan) / np.roll(iv, 1, axis=1)
    event[dlog_iv >= VOL_SPIKE_JUMP] = 3
    event[ret > EVENT_SIGMAS * trail] = 2
    event[ret < -EVENT_SIGMAS * trail] = 1
    if path is not None:
        event[:, lo + path.day] = EVENT_CODES.index("crash")
    r30 = np.log(closes / np.roll(closes, TRAILING_DAYS, axis=1))
    basis = np.clip(0.06 + 0.3 * r30, 0.0, 0.3)
    sl = slice(lo, lo + days)
    return MarketPath(
        start=start,
        days=days,
        open=opens[:, sl].copy(),
        high=highs[:, sl].copy(),
        low=lows[:, sl].copy(),
        close=closes[:, sl].copy(),
        iv=iv[:, sl].copy(),
        event=event[:, sl].copy(),
        basis=basis[:, sl].copy(),
        synthetic_days=max(0, (end - max(last, start - timedelta(days=1))).days),
        crash=path,
    )
