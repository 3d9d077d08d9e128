"""BG/NBD model of repeat activity (Fader, Hardie & Lee 2005, Marketing Science 24(2)).

While alive, a customer makes repeat purchases as a Poisson process with rate
lambda ~ Gamma(r, alpha); after each purchase they drop out with probability
p ~ Beta(a, b). Given (x, t_x, T) the likelihood has a closed form; the conditional
expectations use the Gaussian hypergeometric function.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.special import expit, gammaln, hyp2f1

from traderseg.analysis.clv._base import (
    FloatArray,
    MLEModel,
    as_float_array,
    check_rfm,
    dedupe,
    unpack_summary,
)
from traderseg.errors import DataError


class BGNBDModel(MLEModel):
    """Beta-geometric / negative-binomial distribution model of purchase counts.

    Parameters
    ----------
    penalizer : float
        L2 penalty on the log-parameters (per customer); 0 gives the plain MLE.
    method : str
        :func:`scipy.optimize.minimize` method.
    maxiter : int
        Iteration cap of the optimiser.
    tol : float
        Convergence tolerance of the optimiser.
    compute_se : bool
        Whether to compute standard errors from the Hessian after fitting.

    Attributes
    ----------
    params_ : pandas.Series
        Fitted ``r``, ``alpha``, ``a``, ``b``.
    standard_errors_ : pandas.Series
        Standard errors of the parameters.
    log_likelihood_ : float
        Log-likelihood at the optimum (without the penalty).
    n_customers_ : int
        Customers the model was fitted on.
    n_unique_ : int
        Distinct (x, t_x, T) triplets the likelihood was evaluated on.

    Examples
    --------
    >>> m = BGNBDModel().fit([0, 2, 5, 1], [0.0, 20.0, 30.0, 5.0], [39.0, 39.0, 38.0, 30.0])
    >>> bool(m.conditional_probability_alive(0, 0.0, 39.0)[0] == 1.0)
    True
    """

    _param_names = ("r", "alpha", "a", "b")

    def __init__(
        self,
        penalizer: float = 0.0,
        *,
        method: str = "L-BFGS-B",
        maxiter: int = 2000,
        tol: float = 1e-10,
        compute_se: bool = True,
    ) -> None:
        self.penalizer = penalizer
        self.method = method
        self.maxiter = maxiter
        self.tol = tol
        self.compute_se = compute_se

    def fit(
        self,
        frequency: ArrayLike | pd.DataFrame,
        recency: ArrayLike | None = None,
        T: ArrayLike | None = None,
        weights: ArrayLike | None = None,
    ) -> BGNBDModel:
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
        BGNBDModel
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
        x0 = np.log([1.0, max(mean_T / max(mean_x, 0.1), 1e-3), 1.0, 1.0])
        self._fit_weighted((ux, ut, uT), counts, x0)
        return self

    def _loglik(self, params: FloatArray, *data: FloatArray) -> FloatArray:
        r, alpha, a, b = params
        x, t_x, big_t = data
        # B(a, b + x) / B(a, b) written with gammaln: two array calls instead of betaln's three
        base = (gammaln(r + x) + gammaln(b + x) - gammaln(a + b + x)
                + gammaln(a + b) - gammaln(b) - gammaln(r) + r * np.log(alpha))
        term_alive = -(r + x) * np.log(alpha + big_t)
        with np.errstate(divide="ignore", invalid="ignore"):
            term_drop = (
                np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + t_x)
            )
        term_drop = np.where(x > 0, term_drop, -np.inf)
        return base + np.logaddexp(term_alive, term_drop)

    def _log_odds_dead(self, x: FloatArray, t_x: FloatArray, big_t: FloatArray) -> FloatArray:
        r, alpha, a, b = self._check_fitted().to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            val = (np.log(a) - np.log(np.maximum(b + x - 1, 1e-300))
                   + (r + x) * (np.log(alpha + big_t) - np.log(alpha + t_x)))
        return np.where(x > 0, val, -np.inf)

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
            P(alive); 1 for customers without repeat purchases.
        """
        x, t_x, big_t = check_rfm(frequency, recency, T)
        return expit(-self._log_odds_dead(x, t_x, big_t))

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
        r, alpha, a, b = self._check_fitted().to_numpy()
        if abs(a - 1) < 1e-9:
            raise DataError("the closed-form expectation is undefined at a = 1")
        z = tt / (alpha + big_t + tt)
        lead = (a + b + x - 1) / (a - 1)
        ratio = np.exp((r + x) * (np.log(alpha + big_t) - np.log(alpha + big_t + tt)))
        numer = lead * (1 - ratio * hyp2f1(r + x, b + x, a + b + x - 1, z))
        return numer * expit(-self._log_odds_dead(x, t_x, big_t))

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
        tt = as_float_array(t, "t")
        r, alpha, a, b = self._check_fitted().to_numpy()
        ratio = (alpha / (alpha + tt)) ** r
        return (a + b - 1) / (a - 1) * (1 - ratio * hyp2f1(r, b, a + b - 1, tt / (alpha + tt)))
