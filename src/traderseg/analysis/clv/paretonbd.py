"""Pareto/NBD model of repeat activity (Schmittlein, Morrison & Colombo 1987).

While alive, a customer purchases as a Poisson process with rate lambda ~ Gamma(r, alpha);
the lifetime is exponential with rate mu ~ Gamma(s, beta). The likelihood involves
Gaussian hypergeometric functions of the form 2F1(r+s+x, b; r+s+x+1; z), evaluated in log
space by :func:`~traderseg.analysis.clv._hypergeom.log_hyp2f1_shifted` (robust to hundreds
of purchases) and combined with log-sum-exp.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.special import expit, gammaln

from traderseg.analysis.clv._base import (
    FloatArray,
    MLEModel,
    as_float_array,
    check_rfm,
    dedupe,
    unpack_summary,
)
from traderseg.analysis.clv._hypergeom import log_hyp2f1_shifted
from traderseg.errors import DataError


def _log_a0(
    params: FloatArray, x: FloatArray, t_x: FloatArray, big_t: FloatArray
) -> FloatArray:
    """Log of the A0 term of the Pareto/NBD likelihood (difference of two 2F1 terms)."""
    r, alpha, s, beta = params
    big_a = r + s + x
    if alpha >= beta:
        b = s + 1.0
        shift, top = alpha, alpha - beta
    else:
        b = r + x
        shift, top = beta, beta - alpha
    b_row = np.broadcast_to(b, x.shape)
    hi = log_hyp2f1_shifted(big_a, b_row, top / (shift + t_x)) - big_a * np.log(shift + t_x)
    lo = log_hyp2f1_shifted(big_a, b_row, top / (shift + big_t)) - big_a * np.log(shift + big_t)
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = hi + np.log(-np.expm1(np.minimum(lo - hi, 0.0)))
    return diff


class ParetoNBDModel(MLEModel):
    """Pareto/NBD model of purchase counts with unobserved drop-out.

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
        Fitted ``r``, ``alpha``, ``s``, ``beta``.
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
    >>> m = ParetoNBDModel().fit([0, 2, 5, 1], [0.0, 20.0, 30.0, 5.0], [39.0, 39.0, 38.0, 30.0])
    >>> bool(m.conditional_probability_alive(0, 0.0, 0.0)[0] == 1.0)
    True
    """

    _param_names = ("r", "alpha", "s", "beta")

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
    ) -> ParetoNBDModel:
        """Fit the model by maximum likelihood.

        Parameters
        ----------
        frequency : array-like or pandas.DataFrame
            Repeat purchases x per customer, or a summary frame with ``frequency``,
            ``recency`` and ``T`` columns.
        recency : array-like, optional
            Time of the last purchase t_x (same unit as T).
        T : array-like, optional
            Time between the first purchase and the end of calibration.
        weights : array-like, optional
            How many customers each row stands for (default 1).

        Returns
        -------
        ParetoNBDModel
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
        scale = max(mean_T / max(mean_x, 0.1), 1e-3)
        x0 = np.log([1.0, scale, 1.0, max(mean_T, 1e-3)])
        self._fit_weighted((ux, ut, uT), counts, x0)
        return self

    def _loglik(self, params: FloatArray, *data: FloatArray) -> FloatArray:
        r, alpha, s, beta = params
        x, t_x, big_t = data
        base = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        term_alive = -(r + x) * np.log(alpha + big_t) - s * np.log(beta + big_t)
        term_dead = np.log(s) - np.log(r + s + x) + _log_a0(params, x, t_x, big_t)
        return base + np.logaddexp(term_alive, term_dead)

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
        params = self._check_fitted().to_numpy()
        r, _, s, beta = params
        alpha = params[1]
        log_ratio = (
            np.log(s) - np.log(r + s + x) + (r + x) * np.log(alpha + big_t)
            + s * np.log(beta + big_t) + _log_a0(params, x, t_x, big_t)
        )
        return expit(-log_ratio)

    def conditional_expected_number_of_purchases_up_to_time(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """Return the expected purchases in (T, T + t] given the history (x, t_x, T).

        Parameters
        ----------
        t : array-like
            Length of the forecast period.
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
        r, alpha, s, beta = self._check_fitted().to_numpy()
        alive = self.conditional_probability_alive(x, t_x, big_t)
        if abs(s - 1) < 1e-9:
            horizon = np.log((beta + big_t + tt) / (beta + big_t))
            return (r + x) * (beta + big_t) / (alpha + big_t) * horizon * alive
        lead = (r + x) * (beta + big_t) / ((alpha + big_t) * (s - 1))
        return lead * (1 - ((beta + big_t) / (beta + big_t + tt)) ** (s - 1)) * alive

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
        r, alpha, s, beta = self._check_fitted().to_numpy()
        if abs(s - 1) < 1e-9:
            return r * beta / alpha * np.log((beta + tt) / beta)
        return r * beta / (alpha * (s - 1)) * (1 - (beta / (beta + tt)) ** (s - 1))
