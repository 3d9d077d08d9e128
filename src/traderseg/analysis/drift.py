"""Drift between two feature frames: population stability index (PSI) per column.

For a numeric column the reference values are cut at their deciles (the distinct
interior quantiles ``1/bins .. (bins-1)/bins``, linear interpolation); bins are closed
on the right, ``(-inf, e1], (e1, e2], ..., (ek, inf)``, so a value exactly at an edge
falls in the lower bin. Values are first rounded to 36 significant bits (about 11
digits), so a share computed as exactly 0.5 in one run and as 0.5000000000000001 in
another (floating-point sums in a different order) falls in the same bin. Missing values
(NaN: an option feature of an account without options) form a bin of their own, so a
change in how many accounts have the feature at all is drift too. A categorical column
(segment ids, lifecycle stages) has one bin per value.

With ``r_i`` and ``c_i`` the reference and current shares of bin ``i``, each floored at
:data:`EPSILON` so an empty bin stays finite,

    PSI = sum_i (c_i - r_i) * ln(c_i / r_i).

Levels follow the usual credit-scoring rule: below 0.1 ``stable``, from 0.1 to below
0.25 ``moderate``, 0.25 and above ``significant``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from traderseg.errors import DataError, SchemaError

logger = logging.getLogger(__name__)

EPSILON = 1e-4
PSI_MODERATE = 0.1
PSI_SIGNIFICANT = 0.25
LEVELS = ("stable", "moderate", "significant")
DRIFT_COLUMNS = [
    "column", "psi", "level", "reference_median", "current_median",
    "reference_missing", "current_missing",
]


def drift_level(psi: float) -> str:
    """Level of a PSI value: ``stable`` (< 0.1), ``moderate`` (< 0.25), ``significant``.

    Examples
    --------
    >>> drift_level(0.099), drift_level(0.1), drift_level(0.25)
    ('stable', 'moderate', 'significant')
    """
    if not np.isfinite(psi):
        raise DataError(f"PSI must be a finite number, got {psi!r}")
    if psi < PSI_MODERATE:
        return LEVELS[0]
    return LEVELS[1] if psi < PSI_SIGNIFICANT else LEVELS[2]


def _psi_from_counts(ref: np.ndarray, cur: np.ndarray) -> float:
    r = np.maximum(ref / ref.sum(), EPSILON)
    c = np.maximum(cur / cur.sum(), EPSILON)
    return float(np.sum((c - r) * np.log(c / r)))


def _snap(x: np.ndarray) -> np.ndarray:
    """Round to 36 significant bits: last-bit noise of a sum does not move a bin."""
    mantissa, exponent = np.frexp(x)
    return np.ldexp(np.round(mantissa * 2.0**36) / 2.0**36, exponent)


def _nonempty(values: np.ndarray | pd.Series, name: str, what: str) -> None:
    if len(values) == 0:
        raise DataError(f"{name}: the {what} sample is empty")


def numeric_psi(
    reference: Sequence[float] | np.ndarray | pd.Series,
    current: Sequence[float] | np.ndarray | pd.Series,
    *,
    bins: int = 10,
    name: str = "values",
) -> float:
    """PSI of a numeric sample against a reference, on the reference's quantile bins.

    Parameters
    ----------
    reference, current : array-like of float
        The two samples; NaN values form their own bin.
    bins : int
        Number of quantile bins of the reference (fewer when quantiles coincide).
    name : str
        What the values are, for error messages.

    Returns
    -------
    float
        The PSI (0 when the two samples fall in the bins in the same shares).

    Examples
    --------
    >>> ref = [0.0] * 50 + [1.0] * 50
    >>> round(numeric_psi(ref, [0.0] * 80 + [1.0] * 20), 4)
    0.4159
    """
    if not isinstance(bins, int | np.integer) or bins < 2:
        raise SchemaError(f"bins must be an integer of at least 2, got {bins!r}")
    r = _snap(np.asarray(reference, dtype="float64"))
    c = _snap(np.asarray(current, dtype="float64"))
    _nonempty(r, name, "reference")
    _nonempty(c, name, "current")
    present = r[~np.isnan(r)]
    if present.size:
        qs = np.arange(1, bins) / bins
        edges = np.unique(np.quantile(present, qs))
    else:
        edges = np.array([], dtype="float64")
    n_bins = edges.size + 2  # value bins, then the NaN bin

    def counts(x: np.ndarray) -> np.ndarray:
        idx = np.where(np.isnan(x), n_bins - 1, np.searchsorted(edges, x, side="left"))
        return np.bincount(idx.astype(np.int64), minlength=n_bins).astype("float64")

    return _psi_from_counts(counts(r), counts(c))


def categorical_psi(
    reference: Sequence[object] | pd.Series,
    current: Sequence[object] | pd.Series,
    *,
    name: str = "values",
) -> float:
    """PSI of a categorical sample against a reference, one bin per value.

    Parameters
    ----------
    reference, current : array-like
        The two samples; missing values form their own category.
    name : str
        What the values are, for error messages.

    Returns
    -------
    float
        The PSI.

    Examples
    --------
    >>> round(categorical_psi(["a", "a", "b", "b"], ["a", "a", "a", "b"]), 4)
    0.2747
    """
    r = pd.Series(reference, dtype="object").fillna("(missing)").astype(str)
    c = pd.Series(current, dtype="object").fillna("(missing)").astype(str)
    _nonempty(r, name, "reference")
    _nonempty(c, name, "current")
    cats = sorted(set(r) | set(c))
    rc = r.value_counts().reindex(cats, fill_value=0).to_numpy(dtype="float64")
    cc = c.value_counts().reindex(cats, fill_value=0).to_numpy(dtype="float64")
    return _psi_from_counts(rc, cc)


def feature_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: Sequence[str] | None = None,
    *,
    bins: int = 10,
) -> pd.DataFrame:
    """PSI of every feature column between a reference and a current feature frame.

    Parameters
    ----------
    reference, current : pandas.DataFrame
        Feature frames (one row per account), e.g. as of the training cutoff and now.
    columns : sequence of str, optional
        Columns to compare; default every column the two frames share.
    bins : int
        Quantile bins per numeric column.

    Returns
    -------
    pandas.DataFrame
        One row per column, largest PSI first: ``column``, ``psi``, ``level``, the
        medians of both frames and the share of missing values in each.

    Raises
    ------
    SchemaError
        A requested column is missing from either frame.
    DataError
        Either frame has no rows.
    """
    if columns is None:
        columns = [c for c in reference.columns if c in current.columns]
    cols = list(columns)
    for frame, which in ((reference, "reference"), (current, "current")):
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise SchemaError(f"the {which} features lack column(s) {missing[:5]}")
        if frame.empty:
            raise DataError(f"the {which} feature frame has no rows")
    rows = []
    for col in cols:
        r, c = reference[col], current[col]
        if pd.api.types.is_numeric_dtype(r) and pd.api.types.is_numeric_dtype(c):
            value = numeric_psi(r.to_numpy(float), c.to_numpy(float), bins=bins, name=col)
            r_med, c_med = float(r.median()), float(c.median())
        else:
            value = categorical_psi(r, c, name=col)
            r_med = c_med = np.nan
        rows.append({
            "column": col, "psi": value, "level": drift_level(value),
            "reference_median": r_med, "current_median": c_med,
            "reference_missing": float(r.isna().mean()), "current_missing": float(c.isna().mean()),
        })
    out = pd.DataFrame(rows, columns=DRIFT_COLUMNS)
    n_sig = int((out["level"] == "significant").sum())
    if n_sig:
        logger.info("%d of %d columns drifted significantly (PSI >= %.2f)", n_sig, len(out),
                    PSI_SIGNIFICANT)
    return out.sort_values(["psi", "column"], ascending=[False, True],
                           kind="stable").reset_index(drop=True)
