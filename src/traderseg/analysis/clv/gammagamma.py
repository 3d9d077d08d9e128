"""Gamma-Gamma model of the value per purchase (Fader, Hardie & Lee 2005, JMR 42(4)).

The value of each repeat purchase of a customer is Gamma(p, nu) with nu ~ Gamma(q, gamma)
across customers. The model conditions on the mean repeat value zbar of customers with
x >= 1 repeat purchases, so it needs x > 0 and zbar > 0: customers without repeat
purchases carry no value information (they are excluded and counted in
``n_excluded_``), and a non-positive mean value is an error, never silently dropped.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.special import gammaln

from traderseg.analysis.clv._base import (
    FloatArray,
    MLEModel,
    as_float_array,
    dedupe,
    row_label,
)
from traderseg.errors import DataError, SchemaError

logger = logging.getLogger(__name__)


def _check_value_inputs(
    frequency: ArrayLike, monetary_value: ArrayLike
) -> tuple[FloatArray, FloatArray]:
    x = as_float_array(frequency, "frequency")
    m = as_float_array(monetary_value, "monetary_value")
    if len(x) != len(m):
        raise DataError(f"frequency and monetary_value differ in length: {len(x)} vs {len(m)}")
    if len(x) == 0:
        raise DataError("no customers: frequency and monetary_value are empty")
    if (x < 0).any() or (x != np.round(x)).any():
        i = int(np.argmax((x < 0) | (x != np.round(x))))
        raise DataError(f"frequency must be a non-negative whole number; row {i} has {x[i]!r}")
    return x, m


class GammaGammaModel(MLEModel):
    """Gamma-Gamma model of the mean value of a customer's repeat purchases.

    Takes the parameters and sets the fitted attributes of
    :class:`~traderseg.analysis.clv._base.MLEModel`; ``params_`` holds ``p``, ``q``,
    ``gamma``. Fitted attributes particular to this model:

    Attributes
    ----------
    n_customers_ : int
        Customers with x > 0 the model was fitted on.
    n_unique_ : int
        Distinct (x, zbar) pairs the likelihood was evaluated on.
    n_excluded_ : int
        Customers passed with x = 0, excluded because they carry no repeat value.

    Examples
    --------
    >>> m = GammaGammaModel().fit([1, 2, 3, 1, 0], [10.0, 12.0, 30.0, 8.0, 0.0])
    >>> m.n_customers_, m.n_excluded_
    (4, 1)
    """

    _param_names = ("p", "q", "gamma")

    def fit(
        self,
        frequency: ArrayLike | pd.DataFrame,
        monetary_value: ArrayLike | None = None,
    ) -> GammaGammaModel:
        """Fit the model by maximum likelihood on the customers with x > 0.

        Parameters
        ----------
        frequency : array-like or pandas.DataFrame
            Repeat purchases x per customer, or a summary frame with ``frequency`` and
            ``monetary_value`` columns.
        monetary_value : array-like, optional
            Mean value zbar of each customer's repeat purchases.

        Returns
        -------
        GammaGammaModel
            The fitted model.

        Raises
        ------
        DataError
            No customer with x > 0, or a customer with x > 0 and zbar <= 0.
        """
        if isinstance(frequency, pd.DataFrame):
            missing = [c for c in ("frequency", "monetary_value") if c not in frequency.columns]
            if missing:
                raise SchemaError(f"summary lacks column(s) {missing}")
            frequency, monetary_value = frequency["frequency"], frequency["monetary_value"]
        if monetary_value is None:
            raise DataError("pass monetary_value with frequency, or a summary DataFrame")
        x, m = _check_value_inputs(frequency, monetary_value)
        repeat = x > 0
        bad = repeat & (m <= 0)
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(
                f"Gamma-Gamma needs a positive mean value: {int(bad.sum())} customer(s) with x > 0 "
                f"have monetary_value <= 0; first {row_label(monetary_value, i)} ({m[i]!r}). "
                "Model them apart."
            )
        n_excluded = int((~repeat).sum())
        if n_excluded:
            logger.info("Gamma-Gamma: %d customer(s) with x = 0 excluded", n_excluded)
        if not repeat.any():
            raise DataError("Gamma-Gamma needs customers with x > 0; none were given")
        (ux, um), counts, _ = dedupe(x[repeat], m[repeat])
        mean_m = float(np.dot(counts, um) / counts.sum())
        x0 = np.log([1.0, 2.0, mean_m])
        self._fit_weighted((ux, um), counts, x0)
        self.n_excluded_ = n_excluded
        return self

    def _loglik(self, params: FloatArray, *data: FloatArray) -> FloatArray:
        p, q, gamma = params
        x, m = data
        px = p * x
        return (
            gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(gamma)
            + (px - 1) * np.log(m) + px * np.log(x) - (px + q) * np.log(gamma + x * m)
        )

    def conditional_expected_average_profit(
        self, frequency: ArrayLike, monetary_value: ArrayLike
    ) -> FloatArray:
        """Return the expected value per future purchase given x repeat purchases, mean zbar.

        For x = 0 this is the population mean p * gamma / (q - 1).

        Parameters
        ----------
        frequency : array-like
            Repeat purchases x.
        monetary_value : array-like
            Mean repeat value zbar (ignored where x = 0).

        Returns
        -------
        numpy.ndarray
            E[Z | x, zbar] = p (gamma + x zbar) / (p x + q - 1).
        """
        values, finite = self.expected_average_profit_where_finite(frequency, monetary_value)
        if not finite.all():
            q = float(self.params_["q"])
            i = int(np.argmin(finite))
            raise DataError(f"expected value is infinite for {row_label(frequency, i)} "
                            f"(fitted q={q:.4f}: p x + q - 1 <= 0); use "
                            "expected_average_profit_where_finite and value these apart")
        return values

    def expected_average_profit_where_finite(
        self, frequency: ArrayLike, monetary_value: ArrayLike
    ) -> tuple[FloatArray, np.ndarray]:
        """Return E[Z | x, zbar] where it is finite, NaN elsewhere, and the finite mask.

        The posterior mean of a customer's value is p (gamma + x zbar) / (p x + q - 1); it
        is finite only when p x + q - 1 > 0. With q <= 1 (heavy-tailed values, as fee
        revenue often is) the population mean (x = 0) does not exist, and customers with
        few repeat purchases have none either.

        Raises
        ------
        DataError
            A customer with x > 0 and a mean value <= 0 (the model is not defined there,
            as in :meth:`fit`); the message names the customer.
        """
        p, q, gamma = self._check_fitted().to_numpy()
        x, m = _check_value_inputs(frequency, monetary_value)
        bad = (x > 0) & (m <= 0)
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(
                f"Gamma-Gamma needs a positive mean value: {int(bad.sum())} customer(s) with "
                f"x > 0 have monetary_value <= 0; first {row_label(monetary_value, i)} ({m[i]!r})")
        m = np.where(x > 0, m, 0.0)
        denom = p * x + q - 1
        finite = denom > 0
        out = np.full(len(x), np.nan)
        out[finite] = p * (gamma + x[finite] * m[finite]) / denom[finite]
        return out, finite
