"""Discounted lifetime value: an activity model (BG/NBD, Pareto/NBD) times a value model.

The horizon is cut into steps of length ``step``; the purchases expected in each step,
E[Y(t_k)] - E[Y(t_(k-1))], are discounted at the step's end t_k by (1 + d)^(-t_k),
with d the discount rate per model time unit. Expectations are evaluated once per
distinct (x, t_x, T) history, so scoring a million customers measured in whole days
costs as much as their distinct histories.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike

from traderseg.analysis.clv._base import FloatArray, as_float_array, check_rfm, dedupe
from traderseg.analysis.clv.gammagamma import GammaGammaModel
from traderseg.errors import DataError


class ActivityModel(Protocol):
    """What the value computation needs from an activity model."""

    def conditional_expected_number_of_purchases_up_to_time(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """Return the expected purchases in (T, T + t] given the history."""
        ...


@dataclass(frozen=True)
class ExpectedPurchases:
    """Expected purchases over a horizon, per customer.

    Attributes
    ----------
    expected : numpy.ndarray
        Undiscounted expected purchases in (T, T + horizon].
    discounted : numpy.ndarray
        The same purchases, each weighted by the discount factor of its step.
    """

    expected: FloatArray
    discounted: FloatArray


def annual_to_period_rate(annual_rate: float, days_per_unit: float) -> float:
    """Convert an annual discount rate to the compounding rate per model time unit.

    Parameters
    ----------
    annual_rate : float
        Rate per 365-day year, e.g. 0.10.
    days_per_unit : float
        Days in one model time unit (1 for days, 7 for weeks).

    Returns
    -------
    float
        Rate d such that (1 + d)^(365 / days_per_unit) = 1 + annual_rate.

    Examples
    --------
    >>> round(annual_to_period_rate(0.10, 365.0), 12)
    0.1
    """
    if not annual_rate > -1:
        raise DataError(f"annual discount rate must be > -1, got {annual_rate}")
    return float((1.0 + annual_rate) ** (days_per_unit / 365.0) - 1.0)


def expected_discounted_purchases(
    model: ActivityModel,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    *,
    horizon: float,
    discount_rate: float,
    step: float = 1.0,
) -> ExpectedPurchases:
    """Return expected and discounted expected purchases over ``horizon`` per customer.

    Parameters
    ----------
    model : ActivityModel
        Fitted BG/NBD or Pareto/NBD model.
    frequency, recency, T : array-like
        Customer histories in the model's time unit.
    horizon : float
        Forecast horizon, in model time units.
    discount_rate : float
        Discount rate per model time unit (0 for none).
    step : float
        Length of a discounting step, in model time units; the last step is cut at the
        horizon.

    Returns
    -------
    ExpectedPurchases
        Undiscounted and discounted expected purchases.
    """
    if not horizon > 0:
        raise DataError(f"horizon must be > 0, got {horizon}")
    if not step > 0:
        raise DataError(f"step must be > 0, got {step}")
    if not discount_rate > -1:
        raise DataError(f"discount_rate must be > -1, got {discount_rate}")
    x, t_x, big_t = check_rfm(frequency, recency, T)
    (ux, ut, uT), _, inverse = dedupe(x, t_x, big_t)
    n_steps = int(np.ceil(horizon / step - 1e-12))
    times = np.minimum(step * np.arange(1, n_steps + 1), horizon)
    previous = np.zeros(len(ux))
    discounted = np.zeros(len(ux))
    for t_k in times:
        current = model.conditional_expected_number_of_purchases_up_to_time(t_k, ux, ut, uT)
        discounted += (current - previous) / (1.0 + discount_rate) ** t_k
        previous = current
    return ExpectedPurchases(expected=previous[inverse], discounted=discounted[inverse])


def customer_lifetime_value(
    activity_model: ActivityModel,
    value_model: GammaGammaModel,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    monetary_value: ArrayLike,
    *,
    horizon: float,
    discount_rate: float,
    step: float = 1.0,
) -> FloatArray:
    """Discounted lifetime value over ``horizon``: purchases times Gamma-Gamma value.

    Parameters
    ----------
    activity_model : ActivityModel
        Fitted BG/NBD or Pareto/NBD model.
    value_model : GammaGammaModel
        Fitted Gamma-Gamma model.
    frequency, recency, T : array-like
        Customer histories in the activity model's time unit.
    monetary_value : array-like
        Mean repeat-purchase value zbar (ignored for x = 0, which get the population mean).
    horizon : float
        Forecast horizon, in model time units.
    discount_rate : float
        Discount rate per model time unit.
    step : float
        Discounting step, in model time units.

    Returns
    -------
    numpy.ndarray
        Discounted expected value per customer.
    """
    purchases = expected_discounted_purchases(
        activity_model, frequency, recency, T,
        horizon=horizon, discount_rate=discount_rate, step=step,
    )
    value = value_model.conditional_expected_average_profit(
        as_float_array(frequency, "frequency"), as_float_array(monetary_value, "monetary_value")
    )
    return purchases.discounted * value
