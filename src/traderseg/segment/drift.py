"""How far the accounts a model is applied to are from the population it was trained on.

At fit time the quantiles of every model column, and the share of training accounts in
each bin they cut, are kept in the model's metadata; when the model assigns accounts, each
column's population stability index (PSI) over those bins says how much its distribution
moved. Above :data:`PSI_WARN` for a column the assignment is not trustworthy (the model
calls accounts by names learned elsewhere): it warns and names the most shifted columns.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from traderseg.analysis.drift import PSI_SIGNIFICANT

logger = logging.getLogger(__name__)

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
PSI_WARN = PSI_SIGNIFICANT
"""A column this far from training makes an assignment doubtful (the usual "significant")."""
_EPS = 1e-4


def _finite(values: Any) -> np.ndarray:
    v = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)
    return v[np.isfinite(v)]


def bin_shares(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Share of ``values`` in each of the ``len(edges) + 1`` bins the edges cut.

    A value equal to an edge belongs to the bin above it.
    """
    bins = np.searchsorted(edges, values, side="right")
    return np.bincount(bins, minlength=len(edges) + 1).astype(float) / max(len(values), 1)


def reference_quantiles(X: pd.DataFrame) -> dict[str, dict[str, list[float]]]:
    """Per column: training quantiles (``edges``) and the training share in each bin."""
    out: dict[str, dict[str, list[float]]] = {}
    for col in X.columns:
        v = _finite(X[col])
        if len(v) == 0:
            continue
        edges = np.quantile(v, QUANTILES)
        out[str(col)] = {"edges": [float(e) for e in edges],
                         "shares": [float(s) for s in bin_shares(edges, v)]}
    return out


def psi(reference: dict[str, list[float]], values: Any) -> float:
    """Return the population stability index of ``values`` against training bins.

    NaN values are left out; 0 when nothing is left.

    Examples
    --------
    >>> ref = {"edges": [1.0, 2.0, 3.0, 4.0, 5.0], "shares": [0.05, 0.2, 0.25, 0.25, 0.2, 0.05]}
    >>> same = [0.5] + [1.5] * 4 + [2.5] * 5 + [3.5] * 5 + [4.5] * 4 + [5.5]
    >>> psi(ref, same)
    0.0
    >>> round(psi(ref, [6.0] * 10), 1)  # everyone above the training 95th percentile
    10.1
    """
    v = _finite(values)
    if len(v) == 0:
        return 0.0
    edges = np.asarray(reference["edges"], dtype=float)
    expected = np.clip(np.asarray(reference["shares"], dtype=float), _EPS, None)
    actual = np.clip(bin_shares(edges, v), _EPS, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def shifted_features(reference: dict[str, Any], X: pd.DataFrame,
                     top: int = 3) -> list[tuple[str, float]]:
    """Columns whose PSI is above :data:`PSI_WARN`, most shifted first (at most ``top``)."""
    scores = []
    for col, ref in reference.items():
        if col in X.columns and isinstance(ref, dict) and "edges" in ref and "shares" in ref:
            scores.append((col, psi(ref, X[col])))
    scores.sort(key=lambda s: -s[1])
    return [s for s in scores if s[1] > PSI_WARN][:top]
