"""Pareto/NBD model of repeat activity (Schmittlein, Morrison & Colombo 1987).

While alive, a customer purchases as a Poisson process with rate lambda ~ Gamma(r, alpha);
the lifetime is exponential with rate mu ~ Gamma(s, beta). The likelihood involves
Gaussian hypergeometric functions of the form 2F1(r+s+x, b; r+s+x+1; z), evaluated in log
space by :func:`~traderseg.analysis.clv._hypergeom.log_hyp2f1_shifted` (robust to hundreds
of purchases) and combined with log-sum-exp.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, gammaln

from traderseg.analysis.clv._activity import RepeatPurchaseModel
from traderseg.analysis.clv._base import FloatArray
from traderseg.analysis.clv._hypergeom import log_hyp2f1_shifted


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


class ParetoNBDModel(RepeatPurchaseModel):
    """Pareto/NBD model of purchase counts with unobserved drop-out.

    Takes the parameters and sets the fitted attributes of
    :class:`~traderseg.analysis.clv._base.MLEModel`; ``params_`` holds ``r``, ``alpha``,
    ``s``, ``beta``.

    Examples
    --------
    >>> m = ParetoNBDModel().fit([0, 2, 5, 1], [0.0, 20.0, 30.0, 5.0], [39.0, 39.0, 38.0, 30.0])
    >>> bool(m.conditional_probability_alive(0, 0.0, 0.0)[0] == 1.0)
    True
    """

    _param_names = ("r", "alpha", "s", "beta")

    def _start(self, mean_x: float, mean_T: float) -> FloatArray:
        scale = max(mean_T / max(mean_x, 0.1), 1e-3)
        return np.log([1.0, scale, 1.0, max(mean_T, 1e-3)])

    def _loglik(self, params: FloatArray, *data: FloatArray) -> FloatArray:
        r, alpha, s, beta = params
        x, t_x, big_t = data
        base = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        term_alive = -(r + x) * np.log(alpha + big_t) - s * np.log(beta + big_t)
        term_dead = np.log(s) - np.log(r + s + x) + _log_a0(params, x, t_x, big_t)
        return base + np.logaddexp(term_alive, term_dead)

    def _p_alive(self, x: FloatArray, t_x: FloatArray, big_t: FloatArray) -> FloatArray:
        params = self._check_fitted().to_numpy()
        r, alpha, s, beta = params
        log_ratio = (
            np.log(s) - np.log(r + s + x) + (r + x) * np.log(alpha + big_t)
            + s * np.log(beta + big_t) + _log_a0(params, x, t_x, big_t)
        )
        return expit(-log_ratio)

    def _conditional_expected(
        self, tt: FloatArray, x: FloatArray, t_x: FloatArray, big_t: FloatArray
    ) -> FloatArray:
        r, alpha, s, beta = self._check_fitted().to_numpy()
        alive = self._p_alive(x, t_x, big_t)
        if abs(s - 1) < 1e-9:
            horizon = np.log((beta + big_t + tt) / (beta + big_t))
            return (r + x) * (beta + big_t) / (alpha + big_t) * horizon * alive
        lead = (r + x) * (beta + big_t) / ((alpha + big_t) * (s - 1))
        return lead * (1 - ((beta + big_t) / (beta + big_t + tt)) ** (s - 1)) * alive

    def _expected(self, tt: FloatArray) -> FloatArray:
        r, alpha, s, beta = self._check_fitted().to_numpy()
        if abs(s - 1) < 1e-9:
            return r * beta / alpha * np.log((beta + tt) / beta)
        return r * beta / (alpha * (s - 1)) * (1 - (beta / (beta + tt)) ** (s - 1))
