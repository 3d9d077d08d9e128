"""Log of the Gaussian hypergeometric function 2F1(A, b; A + 1; z) for the Pareto/NBD model.

:func:`scipy.special.hyp2f1` is accurate where it returns a finite value, but returns NaN
or overflows for large parameters (hundreds of active days) or z close to 1. Those rows
are computed from the integral representation instead:

    2F1(A, b; A + 1; z) = (1 - z)^(-b) * integral_0^inf exp(-y) h(y) dy,
    h(y) = ((1 - z) / (1 - z exp(-y / A)))^b,

integrated in log space over log y by composite Gauss-Legendre quadrature, whose range
adapts to the scale A (1 - z) / (z b) on which h falls from 1 to (1 - z)^b.
"""

from __future__ import annotations

import numpy as np
from scipy.special import hyp2f1, logsumexp

from traderseg.analysis.clv._base import FloatArray

_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(16)
_PANELS = 10
_Y_MAX = 50.0


def _panel_rule() -> tuple[FloatArray, FloatArray]:
    edges = np.linspace(0.0, 1.0, _PANELS + 1)
    half = (edges[1:] - edges[:-1]) / 2
    mid = (edges[1:] + edges[:-1]) / 2
    nodes = (mid[:, None] + half[:, None] * _NODES[None, :]).ravel()
    weights = (half[:, None] * _WEIGHTS[None, :]).ravel()
    return nodes, weights


_U, _W = _panel_rule()


def log_hyp2f1_quadrature(big_a: FloatArray, b: FloatArray, z: FloatArray) -> FloatArray:
    """Log of 2F1(A, b; A+1; z) by quadrature (0 < z < 1, A > 0, b > 0).

    Parameters
    ----------
    big_a, b, z : numpy.ndarray
        Parameters, one per row.

    Returns
    -------
    numpy.ndarray
        log 2F1(A, b; A + 1; z).
    """
    a_col, b_col, z_col = (np.asarray(v, dtype=float)[:, None] for v in (big_a, b, z))
    scale = a_col * (1.0 - z_col) / (z_col * b_col)
    lo = np.log(1e-9 * np.minimum(scale, 1.0))
    hi = np.log(_Y_MAX)
    s = lo + (hi - lo) * _U[None, :]
    y = np.exp(s)
    log_h = -b_col * (np.log1p(-z_col * np.exp(-y / a_col)) - np.log1p(-z_col))
    log_e = logsumexp(s - y + log_h, b=_W[None, :] * (hi - lo), axis=1)
    return -b_col[:, 0] * np.log1p(-z_col[:, 0]) + log_e


def log_hyp2f1_shifted(big_a: FloatArray, b: FloatArray, z: FloatArray) -> FloatArray:
    """Log of 2F1(A, b; A+1; z) for 0 <= z < 1: scipy where finite, quadrature elsewhere.

    Parameters
    ----------
    big_a, b, z : numpy.ndarray
        Parameters (broadcast to a common shape).

    Returns
    -------
    numpy.ndarray
        log 2F1(A, b; A + 1; z).

    Examples
    --------
    >>> round(float(np.exp(log_hyp2f1_shifted(np.array([1.0]), np.array([1.0]),
    ...                                        np.array([0.5]))[0])), 10)  # -log(1-z)/z
    1.3862943611
    """
    big_a, b, z = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (big_a, b, z)))
    with np.errstate(all="ignore"):
        out = np.log(hyp2f1(big_a, b, big_a + 1.0, z))
    redo = ~np.isfinite(out) & (z > 0)
    if redo.any():
        out = np.array(out, dtype=float, copy=True)
        out[redo] = log_hyp2f1_quadrature(big_a[redo], b[redo], z[redo])
    return np.where(z == 0, 0.0, out)
