"""Fee schedule of the simulated venue.

Linear products (spot, perps, futures) pay a share of notional that depends on the VIP
tier and on whether the fill provided liquidity; top tiers earn a maker rebate (negative
fee). Options pay 0.03% of the underlying notional, capped at 12.5% of the premium, for
makers and takers alike (Deribit's rule).
"""

from __future__ import annotations

import numpy as np

# Index = VIP tier 0..5.
TAKER_RATE = np.array([0.0005, 0.00045, 0.0004, 0.00035, 0.0003, 0.0003])
MAKER_RATE = np.array([0.0002, 0.00015, 0.0001, 0.0, -0.00005, -0.0001])
OPTION_RATE = 0.0003
OPTION_CAP = 0.125
# 30-day traded notional (USD) needed for tiers 1..5.
VIP_THRESHOLDS = np.array([1e6, 5e6, 25e6, 100e6, 500e6])


def vip_tier(monthly_notional: np.ndarray, floor: np.ndarray) -> np.ndarray:
    """Fee tier from expected 30-day notional, never below the account's programme floor."""
    tier = np.searchsorted(VIP_THRESHOLDS, monthly_notional, side="right")
    return np.maximum(tier, floor).astype(np.int64)


def fee_usd(
    is_option: np.ndarray,
    is_maker: np.ndarray,
    vip: np.ndarray,
    notional_usd: np.ndarray,
    premium_usd: np.ndarray,
) -> np.ndarray:
    """Fee of each fill in USD (negative = rebate).

    Parameters
    ----------
    is_option, is_maker : numpy.ndarray of bool
        Option fill; fill provided liquidity.
    vip : numpy.ndarray of int
        Account fee tier.
    notional_usd : numpy.ndarray
        Notional (options: underlying notional).
    premium_usd : numpy.ndarray
        Premium paid or received (options only; ignored otherwise).

    Returns
    -------
    numpy.ndarray
    """
    linear = np.where(is_maker, MAKER_RATE[vip], TAKER_RATE[vip]) * notional_usd
    option = np.minimum(OPTION_RATE * notional_usd, OPTION_CAP * premium_usd)
    return np.round(np.where(is_option, option, linear), 6)
