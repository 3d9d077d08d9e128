"""Black-Scholes pricing with a volatility smile and term structure.

Conventions used by the simulator:

* zero rates and no carry, so the forward equals the index price;
* time in years of 365 days, measured from the fill time to the 08:00 UTC expiry;
* one contract is one coin of the underlying, and the price is in USD per contract
  (Deribit quotes in coin; ``price_usd = price_coin * underlying_price``);
* ``delta`` is the buyer's delta per contract: calls in [0, 1], puts in [-1, 0].

The implied volatility of a strike ``K`` at tenor ``T`` is::

    atm(T) = atm30 * (T / 30d) ** (-slope),  slope = 0.08 * tanh((atm30 - 0.6) / 0.2)
    x      = ln(K / S) / (atm(T) * sqrt(T))          (clipped to [-5, 5])
    iv     = atm(T) * (1 - 0.04 x + 0.025 x^2)       (clipped to [0.1, 3])

so the term structure is upward sloping in calm markets and inverted when volatility is
high, puts carry a skew and both wings a smile.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr, ndtri

YEAR_DAYS = 365.0
_T30 = 30.0 / YEAR_DAYS


def atm_vol(atm30: np.ndarray, t_years: np.ndarray) -> np.ndarray:
    """At-the-money volatility at tenor ``t_years`` given the 30-day level ``atm30``."""
    slope = 0.08 * np.tanh((atm30 - 0.6) / 0.2)
    t = np.maximum(t_years, 1.0 / (YEAR_DAYS * 24.0))
    return np.clip(atm30 * (t / _T30) ** (-slope), 0.15, 2.5)


def smile_iv(
    atm30: np.ndarray, spot: np.ndarray, strike: np.ndarray, t_years: np.ndarray
) -> np.ndarray:
    """Implied volatility of ``strike`` on the smile (see the module docstring)."""
    atm = atm_vol(atm30, t_years)
    x = np.clip(np.log(strike / spot) / (atm * np.sqrt(t_years)), -5.0, 5.0)
    return np.clip(atm * (1.0 - 0.04 * x + 0.025 * x * x), 0.1, 3.0)


def _d1(spot: np.ndarray, strike: np.ndarray, t: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    sd = sigma * np.sqrt(t)
    return (np.log(spot / strike) + 0.5 * sd * sd) / sd


def bs_price(
    spot: np.ndarray,
    strike: np.ndarray,
    t_years: np.ndarray,
    sigma: np.ndarray,
    is_call: np.ndarray,
) -> np.ndarray:
    """Black-Scholes price (zero rates) in the unit of ``spot`` per contract."""
    d1 = _d1(spot, strike, t_years, sigma)
    d2 = d1 - sigma * np.sqrt(t_years)
    call = spot * ndtr(d1) - strike * ndtr(d2)
    put = strike * ndtr(-d2) - spot * ndtr(-d1)
    return np.where(is_call, call, put)


def bs_delta(
    spot: np.ndarray,
    strike: np.ndarray,
    t_years: np.ndarray,
    sigma: np.ndarray,
    is_call: np.ndarray,
) -> np.ndarray:
    """Buyer's delta per contract: ``N(d1)`` for calls, ``N(d1) - 1`` for puts."""
    nd1 = ndtr(_d1(spot, strike, t_years, sigma))
    return np.where(is_call, nd1, nd1 - 1.0)


def bs_vega(
    spot: np.ndarray, strike: np.ndarray, t_years: np.ndarray, sigma: np.ndarray
) -> np.ndarray:
    """Vega per contract: price change for a change of 1.0 in volatility."""
    d1 = _d1(spot, strike, t_years, sigma)
    return spot * np.exp(-0.5 * d1 * d1) / np.sqrt(2.0 * np.pi) * np.sqrt(t_years)


def strike_for_delta(
    spot: np.ndarray,
    t_years: np.ndarray,
    sigma: np.ndarray,
    abs_delta: np.ndarray,
    is_call: np.ndarray,
) -> np.ndarray:
    """Strike whose Black-Scholes delta at volatility ``sigma`` has magnitude ``abs_delta``."""
    nd1 = np.where(is_call, abs_delta, 1.0 - abs_delta)
    d1 = ndtri(np.clip(nd1, 1e-6, 1.0 - 1e-6))
    sd = sigma * np.sqrt(t_years)
    return spot * np.exp(-d1 * sd + 0.5 * sd * sd)
