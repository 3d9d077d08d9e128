"""Shared fit and predictions of the activity models (BG/NBD, Pareto/NBD).

Both models are fitted on (x, t_x, T) histories with optional customer weights and
answer the same questions. The public methods here validate their inputs once and hand
clean float arrays to the private methods each model defines: ``_start`` (initial
log-parameters), ``_p_alive``, ``_conditional_expected`` and ``_expected``.
"""

from __future__ import annotations

import logging
from typing import Self

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from traderseg.analysis.clv._base import (
    FloatArray,
    MLEModel,
    as_float_array,
    check_rfm,
    dedupe,
    unpack_summary,
)
from traderseg.errors import DataError

logger = logging.getLogger(__name__)


class RepeatPurchaseModel(MLEModel):
    """Base of the models of repeat activity with unobserved drop-out.

    Takes the parameters of :class:`~traderseg.analysis.clv._base.MLEModel`; the
    likelihood is evaluated on the distinct (x, t_x, T) triplets, so ``n_unique_``
    counts those.
    """

    def fit(
        self,
        frequency: ArrayLike | pd.DataFrame,
        recency: ArrayLike | None = None,
        T: ArrayLike | None = None,
        weights: ArrayLike | None = None,
    ) -> Self:
        """Fit the model by maximum likelihood.

        Parameters
        ----------
        frequency : array-like or pandas.DataFrame
            Repeat purchases x per customer, or a summary frame with ``frequency``,
            ``recency`` and ``T`` columns (see :func:`~traderseg.analysis.clv.data.rfm_summary`).
        recency : array-like, optional
            Time of the last purchase t_x (same unit as T).
        T : array-like, optional
            Time between the first purchase and the end of calibration.
        weights : array-like, optional
            How many customers each row stands for (default 1).

        Returns
        -------
        RepeatPurchaseModel
            The fitted model.
        """
        x, t_x, big_t = check_rfm(*unpack_summary(frequency, recency, T))
        (ux, ut, uT), counts, inverse = dedupe(x, t_x, big_t)
        if weights is not None:
            w = as_float_array(weights, "weights")
            if len(w) != len(x) or (w < 0).any():
                raise DataError("weights must be non-negative, one per customer")
            counts = np.bincount(inverse, weights=w, minlength=len(ux)).astype(float)
        mean_x = float(np.dot(counts, ux) / counts.sum())
        mean_T = float(np.dot(counts, uT) / counts.sum())
        self._fit_weighted((ux, ut, uT), counts, self._start(mean_x, mean_T))
        if not (x > 0).any():
            # with no repeat activity the likelihood has no maximum in the interior: the
            # optimiser stops somewhere along a ridge, whatever its gradient says
            self.converged_ = False
            logger.warning("%s: no customer has repeat activity (every x = 0); the fit is not "
                           "identified and is reported as not converged", type(self).__name__)
        return self

    def conditional_probability_alive(
        self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """Probability that a customer with history (x, t_x, T) is still alive at T.

        Parameters
        ----------
        frequency, recency, T : array-like
            Customer histories.

        Returns
        -------
        numpy.ndarray
            P(alive).
        """
        x, t_x, big_t = check_rfm(frequency, recency, T)
        return self._p_alive(x, t_x, big_t)

    def conditional_expected_number_of_purchases_up_to_time(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """Return the expected purchases in (T, T + t] given the history (x, t_x, T).

        Parameters
        ----------
        t : array-like
            Length of the forecast period (scalar or one per customer).
        frequency, recency, T : array-like
            Customer histories.

        Returns
        -------
        numpy.ndarray
            E[Y(t) | x, t_x, T].
        """
        x, t_x, big_t = check_rfm(frequency, recency, T)
        tt = as_float_array(t, "t")
        if (tt < 0).any():
            raise DataError("t must be >= 0")
        return self._conditional_expected(tt, x, t_x, big_t)

    def expected_number_of_purchases_up_to_time(self, t: ArrayLike) -> FloatArray:
        """Return the expected repeat purchases in (0, t] of a customer from the population.

        Parameters
        ----------
        t : array-like
            Times since the first purchase.

        Returns
        -------
        numpy.ndarray
            E[X(t)].
        """
        return self._expected(as_float_array(t, "t"))

    def _start(self, mean_x: float, mean_T: float) -> FloatArray:
        """Return the initial log-parameters from the weighted mean frequency and age."""
        raise NotImplementedError

    def _p_alive(self, x: FloatArray, t_x: FloatArray, big_t: FloatArray) -> FloatArray:
        raise NotImplementedError

    def _conditional_expected(
        self, tt: FloatArray, x: FloatArray, t_x: FloatArray, big_t: FloatArray
    ) -> FloatArray:
        raise NotImplementedError

    def _expected(self, tt: FloatArray) -> FloatArray:
        raise NotImplementedError
