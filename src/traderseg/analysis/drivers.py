"""Revenue drivers: OLS of per-account revenue or next-period volume on behaviour.

:func:`fit_ols` is the regression core: it cleans the design (drops constant, duplicate
and linearly dependent columns, saying why), fits ordinary least squares with
heteroskedasticity-robust HC3 standard errors (statsmodels) and reports coefficients with
t-based confidence intervals, VIFs and the condition number of the scaled design.

:func:`revenue_drivers` builds the design from the fills store: features as of the cutoff
over one window, transformed by the catalogue's hints (``log`` -> log1p, ``signed_log``
-> sign * log1p|x|, shares and bounded values as they are), plus segment dummies (the
largest segment is the reference level; accounts without an assignment get their own
``unassigned`` dummy). The population is the accounts with at least one fill in the
window. Targets:

* ``revenue``: the account's net fees in the window (``fees_usd``), signed-log;
* ``next_volume``: log1p of the notional traded in ``[as_of, as_of + horizon)`` read
  from the store, regressed on the features as of ``as_of`` (no look-ahead).

Option-only features (NaN for accounts without option fills) are imputed with the mean
of the defined values plus a ``{column}__missing`` indicator.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import duckdb
import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy.linalg import qr
from statsmodels.stats.outliers_influence import variance_inflation_factor

from traderseg.analysis.profitability import UNASSIGNED
from traderseg.errors import DataError, SchemaError
from traderseg.features.catalog import column_name, get_feature
from traderseg.features.compute import LIFETIME_ONLY, compute_features, parse_window
from traderseg.store import as_utc, check_covered, read_assignments, store_connection

logger = logging.getLogger(__name__)

DEFAULT_DRIVERS = (
    "fill_count", "active_day_share", "notional_mean", "option_share", "perp_share",
    "maker_share", "leverage_mean", "close_share", "recency_days", "tenure_days",
)
# features that define the revenue target and cannot explain it
_TARGET_FEATURES = ("fees_usd", "fee_bps")
TABLE_COLUMNS = ("coef", "std_err", "ci_low", "ci_high", "t", "p_value", "vif")


@dataclass(frozen=True)
class DriversResult:
    """Result of :func:`fit_ols` / :func:`revenue_drivers`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per term (``const`` first): coef, std_err (HC3), ci_low, ci_high, t,
        p_value, vif (NaN for the constant).
    r_squared, adj_r_squared : float
        Fit of the regression.
    n_obs : int
        Accounts in the regression.
    condition_number : float
        Condition number of the design with unit-norm columns (> 30 signals collinearity).
    dropped : dict of str to str
        Columns removed from the design and why.
    target : str
        What was regressed.
    design : pandas.DataFrame
        The regressors actually used (without the constant) and the ``target`` column,
        indexed like the input.
    reference_segment : str or None
        Segment left out of the dummies (coefficients are relative to it).
    """

    table: pd.DataFrame
    r_squared: float
    adj_r_squared: float
    n_obs: int
    condition_number: float
    dropped: dict[str, str]
    target: str
    design: pd.DataFrame
    reference_segment: str | None = None


def clean_design(X: pd.DataFrame, *, tol: float = 1e-10) -> tuple[pd.DataFrame, dict[str, str]]:
    """Drop constant, duplicate and linearly dependent columns of a design matrix.

    Parameters
    ----------
    X : pandas.DataFrame
        Regressors without the constant; finite values only.
    tol : float
        Relative tolerance for the rank decision (pivoted QR of the centred, unit-norm
        columns).

    Returns
    -------
    tuple of (pandas.DataFrame, dict)
        The kept columns, and the reason each dropped column was dropped.
    """
    dropped: dict[str, str] = {}
    keep: list[str] = []
    seen: dict[bytes, str] = {}
    for col in X.columns:
        values = X[col].to_numpy(dtype=float)
        if np.ptp(values) == 0:
            dropped[col] = "constant"
            continue
        key = values.tobytes()
        if key in seen:
            dropped[col] = f"duplicate of {seen[key]}"
            continue
        seen[key] = col
        keep.append(col)
    if not keep:
        return X[keep], dropped
    Z = X[keep].to_numpy(dtype=float)
    Z = Z - Z.mean(axis=0)
    Z = Z / np.linalg.norm(Z, axis=0)
    _, r, piv = qr(Z, mode="economic", pivoting=True)
    diag = np.abs(np.diag(r))
    rank = int((diag > tol * diag[0]).sum())
    for j in sorted(piv[rank:]):
        dropped[keep[j]] = "linear combination of other columns"
    kept = [keep[j] for j in sorted(piv[:rank])]
    return X[kept], dropped


def fit_ols(
    X: pd.DataFrame,
    y: pd.Series,
    *,
    alpha: float = 0.05,
    min_residual_df: int = 10,
    target: str = "y",
) -> DriversResult:
    """OLS with HC3 standard errors, confidence intervals and collinearity checks.

    Parameters
    ----------
    X : pandas.DataFrame
        Regressors (a constant is added).
    y : pandas.Series
        Response, aligned with ``X``.
    alpha : float
        1 - confidence level of the intervals.
    min_residual_df : int
        Fewest residual degrees of freedom accepted (accounts - regressors - 1).
    target : str
        Name of the response, for the result.

    Returns
    -------
    DriversResult
        Coefficient table, fit statistics and what was dropped.

    Raises
    ------
    DataError
        Non-finite values, or too few accounts for the number of regressors.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"x": rng.normal(size=200)})
    >>> y = 1.0 + 2.0 * X["x"] + rng.normal(scale=0.1, size=200)
    >>> res = fit_ols(X, y)
    >>> bool(abs(res.table.loc["x", "coef"] - 2.0) < 0.05)
    True
    """
    if len(X) != len(y) or not X.index.equals(y.index):
        raise DataError("X and y must have the same index")
    bad = ~np.isfinite(X.to_numpy(dtype=float))
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DataError(f"regressor {X.columns[col]!r} is not finite for row {X.index[row]!r}")
    ybad = ~np.isfinite(y.to_numpy(dtype=float))
    if ybad.any():
        raise DataError(f"target is not finite for row {y.index[int(np.argmax(ybad))]!r}")
    Xc, dropped = clean_design(X)
    for col, why in dropped.items():
        logger.info("dropping regressor %s: %s", col, why)
    k = Xc.shape[1]
    need = k + 1 + min_residual_df
    if len(Xc) < need:
        raise DataError(f"too few accounts: {len(Xc)} for {k} regressors and a constant; "
                        f"need at least {need} (min_residual_df={min_residual_df})")
    design = sm.add_constant(Xc.astype(float), has_constant="add")
    res = sm.OLS(y.astype(float), design).fit(cov_type="HC3", use_t=True)
    ci = res.conf_int(alpha=alpha)
    exog = design.to_numpy()
    vif = [np.nan] + [float(variance_inflation_factor(exog, j)) for j in range(1, k + 1)]
    table = pd.DataFrame({
        "coef": res.params, "std_err": res.bse, "ci_low": ci[0], "ci_high": ci[1],
        "t": res.tvalues, "p_value": res.pvalues, "vif": vif,
    })
    scaled = exog / np.linalg.norm(exog, axis=0)
    return DriversResult(
        table=table, r_squared=float(res.rsquared), adj_r_squared=float(res.rsquared_adj),
        n_obs=int(res.nobs), condition_number=float(np.linalg.cond(scaled)),
        dropped=dropped, target=target, design=Xc.assign(target=y.astype(float)),
    )


def transform_features(df: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """Apply the catalogue's transform hints and impute option-only gaps.

    Parameters
    ----------
    df : pandas.DataFrame
        Catalogue columns (``{feature}__{window}``).

    Returns
    -------
    tuple of (pandas.DataFrame, dict)
        Transformed columns (NaNs replaced by the column mean with a
        ``{column}__missing`` 0/1 indicator added next to it), and the columns left out
        because no account has a value, with the reason.
    """
    out = {}
    dropped = {}
    for col in df.columns:
        hint = get_feature(col).transform
        x = df[col].astype(float)
        if hint == "log":
            if (x < 0).any():
                raise DataError(f"feature {col} is negative for account {x.idxmin()!r}; "
                                "its log transform needs values >= 0")
            x = pd.Series(np.log1p(x), index=df.index)
        elif hint == "signed_log":
            x = pd.Series(np.sign(x) * np.log1p(x.abs()), index=df.index)
        missing = x.isna()
        if missing.all():
            dropped[col] = "undefined for every account"
        elif missing.any():
            out[col] = x.fillna(x.mean())
            out[f"{col}__missing"] = missing.astype(float)
        else:
            out[col] = x
    return pd.DataFrame(out, index=df.index), dropped


def segment_dummies(index: pd.Index, assignments: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """0/1 segment columns for ``index``, the largest segment left out as reference.

    Parameters
    ----------
    index : pandas.Index
        Account ids.
    assignments : pandas.DataFrame
        Checked assignments (see :func:`~traderseg.store.read_assignments`).

    Returns
    -------
    tuple of (pandas.DataFrame, str)
        Columns ``segment[<name>]``, and the name of the reference segment.
    """
    names = assignments.set_index("account_id")["segment_name"].astype(str)
    seg = names.reindex(index).fillna(UNASSIGNED)
    counts = seg.value_counts()
    ref = str(sorted(counts[counts == counts.max()].index)[0])
    levels = sorted(set(seg) - {ref})
    dummies = pd.DataFrame({f"segment[{lv}]": (seg == lv).astype(float) for lv in levels},
                           index=index)
    return dummies, ref


def _next_volume(con: duckdb.DuckDBPyConnection, as_of: pd.Timestamp,
                 horizon_days: float) -> pd.Series:
    end = as_of + pd.Timedelta(days=horizon_days)
    check_covered(con, end)
    vol = con.execute(
        "SELECT account_id, SUM(notional_usd) AS v FROM fills "
        "WHERE ts >= $a AND ts < $b GROUP BY account_id",
        {"a": as_of.to_pydatetime(), "b": end.to_pydatetime()},
    ).df()
    return vol.set_index("account_id")["v"].astype(float)


def revenue_drivers(
    db: str | Path | duckdb.DuckDBPyConnection,
    as_of: Any,
    assignments: pd.DataFrame | str | Path,
    *,
    target: Literal["revenue", "next_volume"] = "revenue",
    window: str = "30d",
    features: Sequence[str] = DEFAULT_DRIVERS,
    horizon_days: float = 30.0,
    alpha: float = 0.05,
) -> DriversResult:
    """Regress per-account revenue (or next-period volume) on behaviour and segment.

    Parameters
    ----------
    db : str, Path or duckdb connection
        The fills store.
    as_of : timestamp-like
        Cutoff; features use fills strictly before it.
    assignments : pandas.DataFrame, str or Path
        Segment assignments.
    target : {"revenue", "next_volume"}
        Net fees in the window, or log notional in ``[as_of, as_of + horizon_days)``.
    window : str
        Feature window, e.g. ``"30d"`` (``recency_days``/``tenure_days`` are lifetime).
    features : sequence of str
        Catalogue feature names (stems).
    horizon_days : float
        Forecast horizon of ``next_volume``.
    alpha : float
        1 - confidence level.

    Returns
    -------
    DriversResult
        The regression.

    Raises
    ------
    SchemaError
        Unknown target, window or feature, a feature that defines the target, or a horizon
        that is not > 0.
    DataError
        Cutoff outside the data, or too few accounts.
    """
    if target not in ("revenue", "next_volume"):
        raise SchemaError(f"target must be 'revenue' or 'next_volume', not {target!r}")
    if window == "all" or parse_window(window) is None:
        raise SchemaError(f"window must be a finite window such as '30d', not {window!r}")
    if not horizon_days > 0:  # NaN too
        raise SchemaError(f"horizon_days must be > 0, not {horizon_days:g}")
    unknown = []
    for f in features:
        try:
            get_feature(f)
        except KeyError:
            unknown.append(f)
    if unknown:
        raise SchemaError(f"unknown feature(s) {unknown}; see `traderseg features --describe`")
    if target == "revenue" and set(features) & set(_TARGET_FEATURES):
        raise SchemaError(f"feature(s) {sorted(set(features) & set(_TARGET_FEATURES))} define "
                          "the revenue target and cannot be regressors")
    asg = read_assignments(assignments)
    cutoff = as_utc(as_of, "as_of")
    con, owned = store_connection(db)
    try:
        feats = compute_features(con, cutoff.to_pydatetime(), (window,))
        nxt = _next_volume(con, cutoff, horizon_days) if target == "next_volume" else None
    finally:
        if owned:
            con.close()
    active = feats[column_name("fill_count", window)] > 0
    feats = feats[active]
    logger.info("%d of %d accounts traded in the %s window before %s",
                len(feats), len(active), window, cutoff)
    cols = [column_name(f, "all" if f in LIFETIME_ONLY else window) for f in features]
    X, undefined = transform_features(feats[cols])
    dummies, ref = segment_dummies(X.index, asg)
    X = pd.concat([X, dummies], axis=1)
    if nxt is None:
        fees = feats[column_name("fees_usd", window)]
        y = np.sign(fees) * np.log1p(fees.abs())
        name = f"signed_log(fees_usd__{window})"
    else:
        y = np.log1p(nxt.reindex(X.index).fillna(0.0))
        name = f"log1p(notional_usd in next {horizon_days:g}d)"
    res = fit_ols(X, y.rename(name), alpha=alpha, target=name)
    return replace(res, reference_segment=ref, dropped={**undefined, **res.dropped})
