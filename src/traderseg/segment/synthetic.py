"""Synthetic per-account feature frames drawn from well-defined trading behaviours.

The frames use the feature catalogue's column names (``{feature}__{window}``) and obey
its contracts (shares in [0, 1], option features NaN without option fills, ``win_rate``
NaN without closing fills), so the segmentation code can be exercised, tested and
benchmarked without the venue simulator. Each behaviour is a small set of distribution
parameters; accounts are drawn independently.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from traderseg.errors import ConfigError


@dataclass(frozen=True)
class Behaviour:
    """Distribution parameters of one synthetic trading behaviour.

    Shares are ``(mean, concentration)`` pairs of a Beta distribution; amounts are
    ``(log-mean, log-sd)`` pairs of a log-normal. ``mix`` is the Dirichlet mean of the
    spot / perp / future / option fill shares.
    """

    fills: tuple[float, float]
    active_day_share: tuple[float, float]
    notional: tuple[float, float]
    mix: tuple[float, float, float, float]
    maker: tuple[float, float]
    leverage: tuple[float, float]
    high_leverage: tuple[float, float]
    liquidation_rate: float
    call: tuple[float, float] = (0.5, 4.0)
    long_premium: tuple[float, float] = (0.5, 4.0)
    deep_otm: tuple[float, float] = (0.2, 4.0)
    short_dated: tuple[float, float] = (0.2, 4.0)
    straddle: tuple[float, float] = (0.05, 10.0)
    put_buy: tuple[float, float] = (0.2, 4.0)
    tenor_days: tuple[float, float] = (3.0, 0.5)
    fee_bps: float = 4.0
    win: tuple[float, float] = (0.5, 10.0)


BEHAVIOURS: dict[str, Behaviour] = {
    "hf_perp_maker": Behaviour(
        fills=(8.5, 0.5), active_day_share=(0.9, 20), notional=(8.5, 0.5),
        mix=(0.02, 0.95, 0.02, 0.01), maker=(0.85, 20), leverage=(1.2, 0.3),
        high_leverage=(0.05, 20), liquidation_rate=0.0, fee_bps=-1.0,
    ),
    "retail_leveraged_perp": Behaviour(
        fills=(4.0, 0.7), active_day_share=(0.3, 6), notional=(6.5, 0.7),
        mix=(0.05, 0.9, 0.04, 0.01), maker=(0.1, 10), leverage=(3.3, 0.3),
        high_leverage=(0.7, 8), liquidation_rate=0.04, fee_bps=5.0, win=(0.4, 10),
    ),
    "perp_scalper": Behaviour(
        fills=(6.5, 0.5), active_day_share=(0.7, 10), notional=(7.5, 0.5),
        mix=(0.03, 0.93, 0.03, 0.01), maker=(0.3, 10), leverage=(2.0, 0.3),
        high_leverage=(0.1, 10), liquidation_rate=0.002, fee_bps=4.5, win=(0.55, 20),
    ),
    "lottery_option_buyer": Behaviour(
        fills=(3.5, 0.6), active_day_share=(0.2, 6), notional=(5.0, 0.7),
        mix=(0.05, 0.05, 0.0, 0.9), maker=(0.05, 10), leverage=(0.0, 0.01),
        high_leverage=(0.01, 50), liquidation_rate=0.0, call=(0.85, 10),
        long_premium=(0.95, 20), deep_otm=(0.75, 10), short_dated=(0.7, 10),
        put_buy=(0.1, 10), tenor_days=(1.0, 0.4), fee_bps=12.0, win=(0.2, 10),
    ),
    "option_premium_seller": Behaviour(
        fills=(5.0, 0.5), active_day_share=(0.5, 8), notional=(8.5, 0.5),
        mix=(0.05, 0.1, 0.0, 0.85), maker=(0.6, 10), leverage=(0.0, 0.01),
        high_leverage=(0.01, 50), liquidation_rate=0.001, call=(0.5, 8),
        long_premium=(0.1, 15), deep_otm=(0.5, 8), short_dated=(0.3, 8),
        put_buy=(0.05, 20), tenor_days=(2.5, 0.4), fee_bps=3.0, win=(0.75, 20),
    ),
    "volatility_trader": Behaviour(
        fills=(5.0, 0.5), active_day_share=(0.4, 8), notional=(8.0, 0.5),
        mix=(0.05, 0.15, 0.0, 0.8), maker=(0.3, 8), leverage=(0.0, 0.01),
        high_leverage=(0.01, 50), liquidation_rate=0.0, call=(0.5, 40),
        long_premium=(0.6, 8), deep_otm=(0.15, 10), short_dated=(0.2, 8),
        straddle=(0.6, 10), put_buy=(0.3, 10), tenor_days=(3.3, 0.3), fee_bps=4.0,
    ),
    "hedger": Behaviour(
        fills=(3.5, 0.5), active_day_share=(0.25, 8), notional=(9.0, 0.6),
        mix=(0.45, 0.2, 0.05, 0.3), maker=(0.2, 8), leverage=(0.5, 0.3),
        high_leverage=(0.01, 50), liquidation_rate=0.0, call=(0.1, 10),
        long_premium=(0.9, 15), deep_otm=(0.2, 8), short_dated=(0.1, 10),
        put_buy=(0.85, 15), tenor_days=(3.5, 0.4), fee_bps=3.5,
    ),
    "whale": Behaviour(
        fills=(4.5, 0.5), active_day_share=(0.3, 8), notional=(12.5, 0.5),
        mix=(0.1, 0.45, 0.4, 0.05), maker=(0.4, 8), leverage=(1.0, 0.3),
        high_leverage=(0.02, 30), liquidation_rate=0.0, fee_bps=2.0,
    ),
    "spot_holder": Behaviour(
        fills=(1.5, 0.6), active_day_share=(0.05, 10), notional=(7.0, 0.8),
        mix=(0.95, 0.03, 0.01, 0.01), maker=(0.2, 6), leverage=(0.0, 0.01),
        high_leverage=(0.01, 50), liquidation_rate=0.0, fee_bps=8.0, win=(0.5, 4),
    ),
}


def _beta(rng: np.random.Generator, spec: tuple[float, float], n: int) -> np.ndarray:
    mean, conc = spec
    mean = min(max(mean, 1e-3), 1 - 1e-3)
    return rng.beta(mean * conc, (1 - mean) * conc, size=n)


def _draw(rng: np.random.Generator, b: Behaviour, n: int) -> dict[str, np.ndarray]:
    fills = np.maximum(1, np.round(rng.lognormal(*b.fills, size=n)))
    tenure = rng.uniform(20, 700, size=n)
    day_share = _beta(rng, b.active_day_share, n)
    active_days = np.clip(np.round(day_share * tenure), 1, None)
    active_days = np.minimum(active_days, fills)
    recency = np.minimum(rng.exponential(2.0 / max(day_share.mean(), 0.02), size=n), tenure)
    notional_median = rng.lognormal(*b.notional, size=n)
    mix = rng.dirichlet(np.asarray(b.mix) * 40 + 0.05, size=n)
    has_option = mix[:, 3] > 0.02
    mix[~has_option, 3] = 0.0
    mix /= mix.sum(axis=1, keepdims=True)
    leverage = np.maximum(1.0, rng.lognormal(*b.leverage, size=n))
    liq_share = np.clip(rng.exponential(b.liquidation_rate, size=n), 0, 1)
    liq_count = np.round(liq_share * fills)
    close_share = _beta(rng, (0.45, 10), n)
    fee_bps = b.fee_bps + rng.normal(0, 0.5, size=n)
    notional_total = notional_median * fills * rng.lognormal(0.1, 0.1, size=n)
    fees = notional_total * fee_bps / 1e4
    pnl_std = notional_median * rng.lognormal(-3.0, 0.5, size=n) * np.sqrt(leverage)
    cols: dict[str, np.ndarray] = {
        "fill_count": fills,
        "active_days": active_days,
        "fills_per_active_day": fills / active_days,
        "recency_days": recency,
        "tenure_days": tenure,
        "active_day_share": active_days / tenure,
        "mean_gap_days": tenure / active_days * rng.lognormal(0, 0.2, size=n),
        "hour_entropy": _beta(rng, (0.6, 10), n),
        "weekend_share": _beta(rng, (0.28, 20), n),
        "notional_total": notional_total,
        "notional_mean": notional_median * rng.lognormal(0.2, 0.1, size=n),
        "notional_median": notional_median,
        "notional_p95": notional_median * rng.lognormal(1.0, 0.2, size=n),
        "notional_max": notional_median * rng.lognormal(1.5, 0.3, size=n),
        "top_instrument_share": _beta(rng, (0.6, 6), n),
        "underlying_count": 1 + rng.poisson(0.8, size=n),
        "spot_share": mix[:, 0],
        "perp_share": mix[:, 1],
        "future_share": mix[:, 2],
        "option_share": mix[:, 3],
        "instrument_breadth": 1 + rng.poisson(2 + 10 * mix[:, 3], size=n),
        "call_share": _beta(rng, b.call, n),
        "long_premium_share": _beta(rng, b.long_premium, n),
        "mean_abs_delta": _beta(rng, (0.45 - 0.35 * b.deep_otm[0], 10), n),
        "deep_otm_share": _beta(rng, b.deep_otm, n),
        "mean_days_to_expiry": rng.lognormal(*b.tenor_days, size=n),
        "short_dated_share": _beta(rng, b.short_dated, n),
        "mean_abs_log_moneyness": rng.lognormal(np.log(0.05 + 0.3 * b.deep_otm[0]), 0.3, n),
        "mean_iv": _beta(rng, (0.55, 30), n),
        "straddle_share": _beta(rng, b.straddle, n),
        "put_buy_share": _beta(rng, b.put_buy, n),
        "leverage_mean": leverage,
        "leverage_max": leverage * np.maximum(1.0, rng.lognormal(0.3, 0.2, size=n)),
        "high_leverage_share": _beta(rng, b.high_leverage, n),
        "liquidation_count": liq_count,
        "liquidation_share": liq_count / fills,
        "close_share": close_share,
        "fees_usd": fees,
        "fee_bps": fee_bps,
        "realized_pnl_usd": rng.normal(0, 1, size=n) * pnl_std * np.sqrt(active_days),
        "win_rate": _beta(rng, b.win, n),
        "pnl_std_usd": pnl_std,
        "maker_share": _beta(rng, b.maker, n),
        "buy_share": _beta(rng, (0.5, 20), n),
        "event_activity_ratio": rng.lognormal(0.0, 0.3, size=n),
        "event_notional_share": _beta(rng, (0.1, 20), n),
    }
    for name in (
        "call_share", "long_premium_share", "mean_abs_delta", "deep_otm_share",
        "mean_days_to_expiry", "short_dated_share", "mean_abs_log_moneyness", "mean_iv",
        "straddle_share", "put_buy_share",
    ):
        cols[name] = np.where(has_option, cols[name], np.nan)
    closes = np.round(close_share * fills)
    cols["win_rate"] = np.where(closes > 0, cols["win_rate"], np.nan)
    return cols


def synthetic_features(
    n_accounts: int,
    *,
    behaviours: list[str] | tuple[str, ...] | None = None,
    weights: list[float] | None = None,
    windows: tuple[str, ...] = ("30d", "all"),
    shift: float = 0.0,
    random_state: int | None = None,
) -> tuple[pd.DataFrame, pd.Series]:
    """Draw a synthetic per-account feature frame and its true behaviour labels.

    Parameters
    ----------
    n_accounts : int
        Number of accounts to draw.
    behaviours : sequence of str, optional
        Keys of :data:`BEHAVIOURS` to draw from (default: all of them).
    weights : list of float, optional
        Mixing weights of the behaviours (default: equal).
    windows : tuple of str
        Windows to emit. ``"all"`` carries the drawn values; any other window is a
        noisy copy with counts and amounts scaled down by the window's share of tenure.
    shift : float
        Multiplicative drift applied to amounts and activity (``exp(shift)``), to mimic a
        later period with the same behaviours.
    random_state : int, optional
        Seed.

    Returns
    -------
    features : pandas.DataFrame
        Index ``account_id``, columns ``{feature}__{window}``.
    truth : pandas.Series
        True behaviour per account.

    Examples
    --------
    >>> X, y = synthetic_features(50, random_state=0)
    >>> X.shape[0], y.nunique() > 1
    (50, True)
    """
    names = list(BEHAVIOURS) if behaviours is None else list(behaviours)
    unknown = [b for b in names if b not in BEHAVIOURS]
    if unknown:
        raise ConfigError(f"unknown synthetic behaviours {unknown}; known: {list(BEHAVIOURS)}")
    rng = np.random.default_rng(random_state)
    p = np.full(len(names), 1 / len(names)) if weights is None else np.asarray(weights, float)
    p = p / p.sum()
    which = rng.choice(len(names), size=n_accounts, p=p)
    parts: dict[str, np.ndarray] = {}
    for i, name in enumerate(names):
        idx = np.flatnonzero(which == i)
        if idx.size == 0:
            continue
        for col, values in _draw(rng, BEHAVIOURS[name], idx.size).items():
            parts.setdefault(col, np.full(n_accounts, np.nan))[idx] = values
    if shift:
        for col in ("fill_count", "notional_total", "notional_mean", "notional_median",
                    "notional_p95", "notional_max", "fees_usd", "pnl_std_usd"):
            parts[col] = parts[col] * np.exp(shift)
    frame: dict[str, np.ndarray] = {}
    for window in windows:
        for col, values in parts.items():
            if window == "all":
                frame[f"{col}__{window}"] = values
            else:
                frame[f"{col}__{window}"] = _window_copy(rng, col, values, window, parts)
    index = pd.Index([f"acct_{i:07d}" for i in range(n_accounts)], name="account_id")
    truth = pd.Series(np.asarray(names, dtype=object)[which], index=index, name="archetype")
    return pd.DataFrame(frame, index=index), truth


_SCALED = {"fill_count", "active_days", "notional_total", "fees_usd", "realized_pnl_usd",
           "liquidation_count"}


def _window_copy(
    rng: np.random.Generator, col: str, values: np.ndarray, window: str, parts: dict
) -> np.ndarray:
    days = float(window.rstrip("d")) if window.endswith("d") else 30.0
    frac = np.clip(days / parts["tenure_days"], 0, 1)
    if col in _SCALED:
        out = values * frac * rng.lognormal(0, 0.2, size=values.size)
        if col in {"fill_count", "active_days", "liquidation_count"}:
            out = np.round(out)
        return out
    if col == "tenure_days":
        return np.minimum(values, days)
    if col == "recency_days":
        return np.minimum(values, days)
    return values
