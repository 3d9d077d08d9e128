"""Shared machinery of the lifetime-value models: input checks, deduplication, MLE fit.

Every model is fitted by maximum likelihood on log-parameters with
:func:`scipy.optimize.minimize`. The log-likelihood is evaluated once per *unique*
row of the data (e.g. unique (x, t_x, T) triplets), weighted by how often the row
occurs, so a million accounts measured in whole days cost as much as the few
thousand distinct histories they contain. Standard errors come from a central
finite-difference Hessian of the log-likelihood in log-parameter space, mapped to the
parameters by the delta method.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize
from sklearn.base import BaseEstimator

from traderseg.errors import DataError, NotFittedError

logger = logging.getLogger(__name__)

FloatArray = NDArray[np.float64]


def row_label(values: object, i: int) -> str:
    """Name row ``i`` by its customer id when ``values`` carries one (a pandas index)."""
    index = getattr(values, "index", None)
    if isinstance(index, pd.Index) and not isinstance(index, pd.RangeIndex) and i < len(index):
        return f"customer {index[i]!r}"
    return f"at row {i}"


def as_float_array(values: ArrayLike, name: str) -> FloatArray:
    """Return ``values`` as a 1-d float array, refusing NaN and infinite entries."""
    arr = np.atleast_1d(np.asarray(values, dtype=float))
    if arr.ndim != 1:
        raise DataError(f"{name} must be one-dimensional, got shape {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        raise DataError(f"{name} has {int(bad.sum())} NaN/infinite value(s); first "
                        f"{row_label(values, int(np.argmax(bad)))}")
    return arr


def check_rfm(
    frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Validate frequency, recency and age arrays of one set of customers.

    Parameters
    ----------
    frequency, recency, T : array-like
        Repeat occasions x (non-negative integers), time of the last occasion t_x and
        time observed T, in the same unit.

    Returns
    -------
    tuple of numpy.ndarray
        The three arrays as floats, broadcast to a common length.

    Raises
    ------
    DataError
        Empty input, NaNs, negative values, non-integer x, t_x > T, or x = 0 with t_x > 0.
    """
    ids = next((v for v in (frequency, recency, T) if isinstance(v, pd.Series)), None)
    x = as_float_array(frequency, "frequency")
    t_x = as_float_array(recency, "recency")
    big_t = as_float_array(T, "T")
    try:
        x, t_x, big_t = np.broadcast_arrays(x, t_x, big_t)
    except ValueError as exc:
        raise DataError(
            f"frequency, recency and T differ in length: {len(x)}, {len(t_x)}, {len(big_t)}"
        ) from exc
    if x.size == 0:
        raise DataError("no customers: frequency, recency and T are empty")
    _first_bad(x < 0, "frequency is negative", x, ids)
    _first_bad(x != np.round(x), "frequency is not a whole number", x, ids)
    _first_bad(t_x < 0, "recency is negative", t_x, ids)
    _first_bad(big_t < 0, "T is negative", big_t, ids)
    _first_bad(t_x > big_t * (1 + 1e-9) + 1e-12, "recency t_x is greater than T", t_x, ids)
    _first_bad((x == 0) & (t_x > 0), "recency is positive while frequency is 0", t_x, ids)
    return x.astype(float), t_x.astype(float), big_t.astype(float)


def _first_bad(mask: NDArray[np.bool_], reason: str, values: FloatArray,
               ids: object = None) -> None:
    if mask.any():
        i = int(np.argmax(mask))
        raise DataError(f"{reason} for {int(mask.sum())} customer(s); first "
                        f"{row_label(ids, i)} (value {values[i]!r})")


def unpack_summary(
    frequency: ArrayLike | pd.DataFrame, recency: ArrayLike | None, T: ArrayLike | None
) -> tuple[ArrayLike, ArrayLike, ArrayLike]:
    """Accept either three arrays or a summary frame with frequency, recency and T."""
    if isinstance(frequency, pd.DataFrame):
        summary = frequency
        missing = [c for c in ("frequency", "recency", "T") if c not in summary.columns]
        if missing:
            from traderseg.errors import SchemaError

            raise SchemaError(f"summary lacks column(s) {missing}")
        return summary["frequency"], summary["recency"], summary["T"]
    if recency is None or T is None:
        raise DataError("pass recency and T with frequency, or a summary DataFrame")
    return frequency, recency, T


def dedupe(*columns: FloatArray) -> tuple[list[FloatArray], FloatArray, NDArray[np.intp]]:
    """Collapse identical rows of ``columns``.

    Returns
    -------
    uniques : list of numpy.ndarray
        One array per input column, holding the distinct rows.
    counts : numpy.ndarray
        How many input rows each distinct row stands for.
    inverse : numpy.ndarray
        For each input row, the index of its distinct row.
    """
    stacked = np.column_stack(columns)
    uniq, inverse, counts = np.unique(stacked, axis=0, return_inverse=True, return_counts=True)
    return [uniq[:, j] for j in range(uniq.shape[1])], counts.astype(float), inverse.ravel()


def numerical_hessian(
    f: Callable[[FloatArray], float], z: FloatArray, h: float = 1e-4
) -> FloatArray:
    """Central finite-difference Hessian of scalar ``f`` at ``z``."""
    k = len(z)
    hess = np.empty((k, k))
    f0 = f(z)
    for i in range(k):
        ei = np.zeros(k)
        ei[i] = h
        hess[i, i] = (f(z + ei) - 2 * f0 + f(z - ei)) / h**2
        for j in range(i + 1, k):
            ej = np.zeros(k)
            ej[j] = h
            val = (f(z + ei + ej) - f(z + ei - ej) - f(z - ei + ej) + f(z - ei - ej)) / (4 * h * h)
            hess[i, j] = hess[j, i] = val
    return hess


def numerical_gradient(f: Callable[[FloatArray], float], z: FloatArray,
                       h: float = 1e-5) -> FloatArray:
    """Central finite-difference gradient of scalar ``f`` at ``z``."""
    grad = np.empty(len(z))
    for i in range(len(z)):
        e = np.zeros(len(z))
        e[i] = h
        grad[i] = (f(z + e) - f(z - e)) / (2 * h)
    return grad


def _newton_refine(
    f: Callable[[FloatArray], float], z: FloatArray, max_steps: int = 3
) -> tuple[FloatArray, FloatArray]:
    """Polish a quasi-Newton optimum with Newton steps on finite-difference derivatives.

    Gradient methods on a finite-difference gradient stop where the likelihood is flat
    to about 1e-8; a Newton step or two lands on the optimum to the precision of the
    published parameter values. A step is taken only when it lowers ``f``.
    """
    grad = numerical_gradient(f, z)
    for _ in range(max_steps):
        if np.max(np.abs(grad)) < 1e-9:
            break
        try:
            step = np.linalg.solve(numerical_hessian(f, z), grad)
        except np.linalg.LinAlgError:
            break
        if not np.all(np.isfinite(step)):
            break
        f0 = f(z)
        for _halving in range(8):
            if f(z - step) < f0:
                z = z - step
                break
            step = step / 2
        else:
            break
        grad = numerical_gradient(f, z)
    return z, grad


class MLEModel(BaseEstimator):
    """Base of the lifetime-value estimators: fit log-parameters by maximum likelihood.

    Parameters live in ``__init__`` only (``get_params``/``set_params``/``clone`` work
    as in scikit-learn). Subclasses define ``_param_names`` and ``_loglik(params, *data)``
    returning the per-row log-likelihood, and a ``fit`` that validates and deduplicates
    its data before calling ``_fit_weighted``.

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
        Fitted parameters, indexed by ``_param_names``.
    standard_errors_ : pandas.Series
        Standard errors of the parameters (NaN when ``compute_se`` is off).
    log_likelihood_ : float
        Log-likelihood at the optimum (without the penalty).
    n_customers_ : int
        Customers the model was fitted on.
    n_unique_ : int
        Distinct data rows the likelihood was evaluated on.
    gradient_norm_ : float
        Largest gradient component of the mean negative log-likelihood in
        log-parameters at the optimum.
    converged_ : bool
        Whether that gradient is below 1e-5.
    """

    _param_names: tuple[str, ...] = ()

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

    def _loglik(self, params: FloatArray, *data: FloatArray) -> FloatArray:
        raise NotImplementedError

    def _fit_weighted(
        self, data: Sequence[FloatArray], weights: FloatArray, x0: FloatArray
    ) -> None:
        """Maximise the weighted log-likelihood and store the learned attributes."""
        if self.penalizer < 0:
            raise DataError(f"penalizer must be >= 0, got {self.penalizer}")
        n = float(weights.sum())

        def objective(z: FloatArray) -> float:
            params = np.exp(z)
            ll = self._loglik(params, *data)
            value = -float(np.dot(weights, ll)) / n + self.penalizer * float(np.dot(z, z))
            return value if np.isfinite(value) else 1e100

        options: dict[str, Any] = {"maxiter": self.maxiter}
        if self.method == "Nelder-Mead":
            options.update(xatol=self.tol, fatol=self.tol * 1e-3, adaptive=True)
        result = minimize(objective, x0, method=self.method, tol=self.tol, options=options)
        z, grad = _newton_refine(objective, np.asarray(result.x, dtype=float))
        params = np.exp(z)
        if not np.all(np.isfinite(params)):
            raise DataError(f"{type(self).__name__} did not converge: {result.message}")
        self.params_ = pd.Series(params, index=list(self._param_names), dtype=float)
        self.log_likelihood_ = float(np.dot(weights, self._loglik(params, *data)))
        self.n_customers_ = int(round(n))
        self.n_unique_ = int(len(weights))
        self.gradient_norm_ = float(np.max(np.abs(grad)))
        self.converged_ = self.gradient_norm_ < 1e-5
        self.n_iter_ = int(getattr(result, "nit", 0) or 0)
        if not self.converged_:
            logger.warning("%s may not have converged: gradient %.2e (%s)", type(self).__name__,
                           self.gradient_norm_, result.message)
        self.standard_errors_ = self._standard_errors(objective, z, n)
        logger.info("%s fitted on %d customers (%d unique rows): %s, LL=%.2f",
                    type(self).__name__, self.n_customers_, self.n_unique_,
                    dict(self.params_.round(4)), self.log_likelihood_)

    def _standard_errors(self, objective: Callable[[FloatArray], float], z: FloatArray,
                         n: float) -> pd.Series:
        names = list(self._param_names)
        if not self.compute_se:
            return pd.Series(np.nan, index=names, dtype=float)
        hess = numerical_hessian(objective, z) * n
        try:
            var_z = np.diag(np.linalg.inv(hess))
        except np.linalg.LinAlgError:
            logger.warning("%s: Hessian is singular; no standard errors", type(self).__name__)
            return pd.Series(np.nan, index=names, dtype=float)
        if (var_z <= 0).any():
            logger.warning("%s: Hessian is not positive definite at the optimum (a parameter "
                           "sits on a flat ridge); its standard error is NaN", type(self).__name__)
        se_z = np.sqrt(np.where(var_z > 0, var_z, np.nan))
        return pd.Series(np.exp(z) * se_z, index=names, dtype=float)

    def _check_fitted(self) -> pd.Series:
        if not hasattr(self, "params_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit first")
        return self.params_

    def summary(self) -> pd.DataFrame:
        """Return the fitted parameters with their standard errors.

        Returns
        -------
        pandas.DataFrame
            Columns ``estimate`` and ``se``, one row per parameter.
        """
        params = self._check_fitted()
        return pd.DataFrame({"estimate": params, "se": self.standard_errors_})
