"""BG/NBD model of repeat activity (Fader, Hardie & Lee 2005, Marketing Science 24(2)).

While alive, a customer makes repeat purchases as a Poisson process with rate
lambda ~ Gamma(r, alpha); after each purchase they drop out with probability
p ~ Beta(a, b). Given (x, t_x, T) the likelihood has a closed form; the conditional
expectations use the Gaussian hypergeometric function.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, gammaln, hyp2f1

from traderseg.analysis.clv._activity import RepeatPurchaseModel
from traderseg.analysis.clv._base import FloatArray
from traderseg.errors import DataError


class BGNBDModel(RepeatPurchaseModel):
    """Beta-geometric / negative-binomial distribution model of purchase counts.

    Takes the parameters and sets the fitted attributes of
    :class:`~traderseg.analysis.clv._base.MLEModel`; ``params_`` holds ``r``, ``alpha``,
    ``a``, ``b``.

    Notes
    -----
    ``conditional_probability_alive`` is 1 for customers without repeat purchases.

    Examples
    --------
    >>> m = BGNBDModel().fit([0, 2, 5, 1], [0.0, 20.0, 30.0, 5.0], [39.0, 39.0, 38.0, 30.0])
    >>> bool(m.conditional_probability_alive(0, 0.0, 39.0)[0] == 1.0)
    True
    """

    _param_names = ("r", "alpha", "a", "b")

    def _start(self, mean_x: float, mean_T: float) -> FloatArray:
        return np.log([1.0, max(mean_T / max(mean_x, 0.1), 1e-3), 1.0, 1.0])

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

    def _p_alive(self, x: FloatArray, t_x: FloatArray, big_t: FloatArray) -> FloatArray:
        return expit(-self._log_odds_dead(x, t_x, big_t))

    def _conditional_expected(
        self, tt: FloatArray, x: FloatArray, t_x: FloatArray, big_t: FloatArray
    ) -> FloatArray:
        r, alpha, a, b = self._check_fitted().to_numpy()
        if abs(a - 1) < 1e-9:
            raise DataError("the closed-form expectation is undefined at a = 1")
        z = tt / (alpha + big_t + tt)
        lead = (a + b + x - 1) / (a - 1)
        ratio = np.exp((r + x) * (np.log(alpha + big_t) - np.log(alpha + big_t + tt)))
        numer = lead * (1 - ratio * hyp2f1(r + x, b + x, a + b + x - 1, z))
        return numer * expit(-self._log_odds_dead(x, t_x, big_t))

    def _expected(self, tt: FloatArray) -> FloatArray:
        r, alpha, a, b = self._check_fitted().to_numpy()
        ratio = (alpha / (alpha + tt)) ** r
        return (a + b - 1) / (a - 1) * (1 - ratio * hyp2f1(r, b, a + b - 1, tt / (alpha + tt)))
