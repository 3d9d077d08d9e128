"""Option delta derived at ingest (venue trade histories do not report it)."""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr

SECONDS_PER_YEAR = 365.0 * 24 * 3600


def black_delta(
    forward: np.ndarray,
    strike: np.ndarray,
    years: np.ndarray,
    vol: np.ndarray,
    is_call: np.ndarray,
) -> np.ndarray:
    """Black (1976) delta with zero rates, from the buyer's view.

    Deribit quotes option implied volatility against the underlying (forward) price of the
    expiry, so with zero rates Black's formula gives the delta it shows on screen.

    Parameters
    ----------
    forward, strike : numpy.ndarray
        Underlying (forward) price and strike, same currency.
    years : numpy.ndarray
        Time to expiry in years (> 0).
    vol : numpy.ndarray
        Implied volatility as a fraction (0.6 = 60%).
    is_call : numpy.ndarray
        True for calls, False for puts.

    Returns
    -------
    numpy.ndarray
        Delta in [0, 1] for calls and [-1, 0] for puts; NaN where an input is missing or
        not positive.

    Examples
    --------
    >>> float(black_delta(np.array([100.0]), np.array([100.0]), np.array([1.0]),
    ...                   np.array([0.2]), np.array([True]))[0].round(4))
    0.5398
    """
    f, k, t, v = (np.asarray(a, dtype=float) for a in (forward, strike, years, vol))
    ok = (f > 0) & (k > 0) & (t > 0) & (v > 0)
    safe = np.where(ok, 1.0, np.nan)
    sd = np.where(ok, v * np.sqrt(np.where(ok, t, 1.0)), 1.0)
    d1 = (np.log(np.where(ok, f / np.where(ok, k, 1.0), 1.0)) + 0.5 * sd**2) / sd
    call = ndtr(d1)
    return np.where(np.asarray(is_call, dtype=bool), call, call - 1.0) * safe
