"""Hint-driven preprocessing of the per-account feature frame.

Each column is transformed by the catalogue's hint for its feature, robust-scaled, and
weighted by feature family before any distance is computed:

* ``log``: ``log1p(x)``; a negative value is an error (the hint promises ``x >= 0``).
* ``signed_log``: ``sign(x) * log1p(|x|)`` (fees, PnL: amounts of either sign).
* ``share``: clipped to ``[0, 1]``.
* ``bounded``: clipped to the feature's known range (:data:`KNOWN_RANGES`), otherwise to
  the 0.5%-99.5% quantile range seen in ``fit``.
* ``standard``: left as is. Columns without a catalogue entry (including plain arrays
  without column names) are ``standard`` and each forms its own family.

Missing values. Only features declared with ``needs`` may be missing (``"option"``: no
option fills; ``"leverage"``: no perp or future fill with a leverage; ``"pnl"``: no
closing fills). They are imputed with the median of the transformed column over the
accounts that have it, which is the robust-scaling centre, so an account without options
sits at ``0`` on every options axis and does not pull any option behaviour. How much of
the account a subset covers is read from the shares of :data:`COVERAGE_COLUMNS`
(``option_share``; ``perp_share + future_share``; ``close_share``), which are features of
their own; when one of them is not in the frame an explicit ``has_{needs}__{window}`` 0/1
column is added and the coverage is that indicator. A NaN anywhere else is an error
naming the column and the count.

Coverage weighting. With ``weight_by_coverage=True`` a subset feature's scaled value is
multiplied by the subset's coverage (clipped to ``[0, 1]``): an account whose options
are a fifth of its fills sits a fifth of the way out along the options axes, not all the
way. Without it a perp trader who buys a few calls lands as far out on every options
axis as a full-time option buyer, and a blend of two styles is pulled to whichever style
has the subset; with it a blend sits between its styles in proportion to its fills.

Scaling. Centre is the median; scale is the interquartile range, or the standard
deviation when the IQR is zero (sparse shares such as ``liquidation_share``). Columns
with no spread are dropped (listed in ``dropped_columns_``, logged as a warning); if no
column is left the fit fails. Scaled values are clipped to ``[-clip, clip]`` so a few
extreme accounts cannot own a centroid.

Family weighting. With ``weight_by_family=True`` every retained column of a family with
``m`` retained columns is multiplied by ``1 / sqrt(m)``: each family then contributes the
same total variance to a Euclidean distance, so the ten options columns (or many windows
of the same family) do not outvote the two execution columns.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.impute import SimpleImputer
from sklearn.utils.validation import check_is_fitted, validate_data

from traderseg.errors import DataError, SchemaError
from traderseg.features.catalog import get_feature, split_column

logger = logging.getLogger(__name__)

KNOWN_RANGES: dict[str, tuple[float, float]] = {
    "hour_entropy": (0.0, 1.0),
    "mean_abs_delta": (0.0, 1.0),
    "mean_iv": (0.0, 5.0),
}
"""Known value ranges of ``bounded`` features."""

COVERAGE_COLUMNS: dict[str, tuple[str, ...]] = {
    "option": ("option_share",),
    "leverage": ("perp_share", "future_share"),
    "pnl": ("close_share",),
}
"""Features whose sum (same window) is the share of an account's fills a ``needs`` subset
covers: 0 exactly when the subset's features are missing."""


@dataclass(frozen=True)
class ColumnSpec:
    """How one input column is treated (derived from the catalogue)."""

    name: str
    family: str
    transform: str
    needs: str | None
    window: str


def column_specs(names: list[str]) -> list[ColumnSpec]:
    """Return the treatment of each column name (unknown names are ``standard``).

    Parameters
    ----------
    names : list of str
        Column names.

    Returns
    -------
    list of ColumnSpec
        One spec per name, in order.

    Examples
    --------
    >>> column_specs(["fill_count__30d", "x0"])[0].transform
    'log'
    """
    specs = []
    for name in names:
        stem, window = split_column(name)
        try:
            feat = get_feature(stem)
        except KeyError:
            specs.append(ColumnSpec(name, f"untyped:{name}", "standard", None, window))
            continue
        specs.append(ColumnSpec(name, feat.family, feat.transform, feat.needs, window))
    return specs


def _as_input(est: BaseEstimator, X: Any, *, reset: bool) -> np.ndarray:
    if not reset and isinstance(X, pd.DataFrame) and hasattr(est, "feature_names_in_"):
        fitted = list(est.feature_names_in_)
        got = [str(c) for c in X.columns]
        missing = [c for c in fitted if c not in got]
        extra = [c for c in got if c not in fitted]
        if missing or extra or got != fitted:
            raise SchemaError(
                "The feature names should match those that were passed during fit: "
                f"missing columns {missing[:10]}{'...' if len(missing) > 10 else ''}, "
                f"unexpected columns {extra[:10]}{'...' if len(extra) > 10 else ''}"
                + ("" if missing or extra else "; same columns in a different order")
            )
    try:
        return validate_data(
            est, X, reset=reset, dtype=np.float64, ensure_all_finite="allow-nan",
            ensure_min_samples=2 if reset else 1,
        )
    except SchemaError:
        raise
    except ValueError as exc:
        raise DataError(str(exc)) from exc


class FeaturePreprocessor(TransformerMixin, BaseEstimator):
    """Transform a feature frame into a weighted, robust-scaled numeric matrix.

    Parameters
    ----------
    weight_by_family : bool, default=True
        Weight columns by ``1 / sqrt(m)`` for a family of ``m`` retained columns.
    weight_by_coverage : bool, default=True
        Multiply each subset feature by the share of the account's fills the subset
        covers (see the module docstring).
    clip : float, default=8.0
        Scaled values are clipped to ``[-clip, clip]``.

    Attributes
    ----------
    feature_names_in_ : ndarray of str
        Input columns (only when fitted on a frame with string column names).
    n_features_in_ : int
        Number of input columns.
    specs_ : list of ColumnSpec
        Treatment of each input column.
    impute_values_ : dict
        Transformed-space fill value per ``needs`` column.
    indicators_ : list of tuple
        Added ``(name, source column)`` indicator columns.
    coverage_ : list of tuple
        ``(needs, window, coverage input columns)`` per subset present; the columns are
        empty when the coverage is the added indicator.
    center_, scale_, weights_ : ndarray
        Per output column, before dropping constant columns.
    dropped_columns_ : list of str
        Columns dropped for having no spread.
    keep_ : ndarray of bool
        Which candidate output columns are kept.

    Examples
    --------
    >>> from traderseg.segment.synthetic import synthetic_features
    >>> X, _ = synthetic_features(200, windows=("all",), random_state=0)
    >>> Z = FeaturePreprocessor().fit_transform(X)
    >>> Z.shape[0], bool(np.isfinite(Z).all())
    (200, True)
    """

    def __init__(self, *, weight_by_family: bool = True, weight_by_coverage: bool = True,
                 clip: float = 8.0) -> None:
        self.weight_by_family = weight_by_family
        self.weight_by_coverage = weight_by_coverage
        self.clip = clip

    def fit(self, X: Any, y: Any = None) -> FeaturePreprocessor:
        """Learn imputation values, scaling and weights from ``X``.

        Parameters
        ----------
        X : pandas.DataFrame or array-like of shape (n_accounts, n_features)
            Feature frame (columns ``{feature}__{window}``) or a plain numeric array.
        y : None
            Ignored.

        Returns
        -------
        FeaturePreprocessor
            The fitted transformer.
        """
        A = _as_input(self, X, reset=True)
        names = (
            [str(c) for c in self.feature_names_in_]
            if hasattr(self, "feature_names_in_")
            else [f"x{i}" for i in range(A.shape[1])]
        )
        self.specs_ = column_specs(names)
        self._check_values(A)
        T = self._hint(A, fitting=True)
        # subset features (``needs``) take the median of the accounts that have them, in
        # the transformed space; a subset no account has is filled with 0
        self.needs_index_ = [j for j, spec in enumerate(self.specs_) if spec.needs is not None]
        self.imputer_ = None
        if self.needs_index_:
            self.imputer_ = SimpleImputer(strategy="median", keep_empty_features=True)
            self.imputer_.fit(T[:, self.needs_index_])
        stats = [] if self.imputer_ is None else list(self.imputer_.statistics_)
        self.impute_values_ = {
            self.specs_[j].name: float(0.0 if np.isnan(v) else v)
            for j, v in zip(self.needs_index_, stats, strict=True)
        }
        self.indicators_ = self._plan_indicators(names)
        T = self._complete(A, T)
        center = np.median(T, axis=0)
        q75, q25 = np.percentile(T, [75, 25], axis=0)
        scale = q75 - q25
        std = T.std(axis=0)
        scale = np.where(scale > 0, scale, std)
        tol = 1e-12 * np.maximum(1.0, np.abs(center))
        keep = scale > tol
        out_names = names + [name for name, _ in self.indicators_]
        self.dropped_columns_ = [n for n, k in zip(out_names, keep, strict=True) if not k]
        if self.dropped_columns_:
            logger.warning("dropped %d constant columns: %s", len(self.dropped_columns_),
                           ", ".join(self.dropped_columns_))
        if not keep.any():
            raise DataError(
                f"every one of the {len(out_names)} feature columns is constant over the "
                f"{A.shape[0]} accounts; nothing to segment on"
            )
        families = [s.family for s in self.specs_] + [
            self.specs_[names.index(src)].family for _, src in self.indicators_
        ]
        weights = np.ones(len(out_names))
        if self.weight_by_family:
            kept_fams = pd.Series([f for f, k in zip(families, keep, strict=True) if k])
            counts = kept_fams.value_counts()
            weights = np.array([1 / np.sqrt(counts.get(f, 1)) for f in families])
        self.center_ = center
        self.scale_ = np.where(keep, scale, 1.0)
        self.weights_ = weights
        self.keep_ = keep
        self.families_ = families
        self.output_names_ = np.asarray(
            [n for n, k in zip(out_names, keep, strict=True) if k], dtype=object
        )
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Apply the fitted preprocessing.

        Parameters
        ----------
        X : pandas.DataFrame or array-like
            Same columns as in ``fit``.

        Returns
        -------
        ndarray of shape (n_accounts, n_output_columns)
            Weighted, robust-scaled matrix.
        """
        check_is_fitted(self, "keep_")
        A = _as_input(self, X, reset=False)
        self._check_values(A)
        return self._transform(A)

    def _transform(self, A: np.ndarray) -> np.ndarray:
        T = self._complete(A, self._hint(A, fitting=False))
        Z = (T - self.center_) / self.scale_
        np.clip(Z, -self.clip, self.clip, out=Z)
        Z *= self.weights_
        if getattr(self, "weight_by_coverage", False):
            self._weigh_by_coverage(A, Z)
        return Z[:, self.keep_]

    def _weigh_by_coverage(self, A: np.ndarray, Z: np.ndarray) -> None:
        idx = {s.name: j for j, s in enumerate(self.specs_)}
        for needs, window, sources in self.coverage_:
            cols = [j for j, s in enumerate(self.specs_)
                    if s.needs == needs and s.window == window]
            if sources:
                cover = np.clip(np.nansum(A[:, [idx[c] for c in sources]], axis=1), 0.0, 1.0)
            else:
                cover = (~np.isnan(A[:, cols[0]])).astype(np.float64)
            Z[:, cols] *= cover[:, None]

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Names of the output columns (retained inputs, then added indicators)."""
        check_is_fitted(self, "keep_")
        return self.output_names_.copy()

    # -- internals ---------------------------------------------------------------
    def _check_values(self, A: np.ndarray) -> None:
        nan = np.isnan(A)
        problems = []
        for j, spec in enumerate(self.specs_):
            if spec.needs is None and nan[:, j].any():
                problems.append(f"{spec.name!r} has {int(nan[:, j].sum())} NaN values")
            if spec.transform == "log":
                neg = int((A[:, j] < 0).sum())
                if neg:
                    problems.append(f"{spec.name!r} has {neg} negative values (log feature)")
        if problems:
            raise DataError(
                "bad feature values: " + "; ".join(problems)
                + " (only features declared with `needs` may be NaN; NaN elsewhere means "
                "the feature step failed for those accounts)"
            )

    def _hint(self, A: np.ndarray, *, fitting: bool) -> np.ndarray:
        T = A.copy()
        if fitting:
            self.bounds_ = {}
        for j, spec in enumerate(self.specs_):
            col = T[:, j]
            if spec.transform == "log":
                T[:, j] = np.log1p(col)
            elif spec.transform == "signed_log":
                T[:, j] = np.sign(col) * np.log1p(np.abs(col))
            elif spec.transform == "share":
                T[:, j] = np.clip(col, 0.0, 1.0)
            elif spec.transform == "bounded":
                if fitting:
                    stem = split_column(spec.name)[0]
                    if stem in KNOWN_RANGES:
                        self.bounds_[spec.name] = KNOWN_RANGES[stem]
                    else:
                        lo, hi = np.nanpercentile(col, [0.5, 99.5])
                        self.bounds_[spec.name] = (float(lo), float(hi))
                lo, hi = self.bounds_[spec.name]
                T[:, j] = np.clip(col, lo, hi)
        return T

    def _plan_indicators(self, names: list[str]) -> list[tuple[str, str]]:
        planned: list[tuple[str, str]] = []
        self.coverage_: list[tuple[str, str, tuple[str, ...]]] = []
        seen: set[tuple[str, str]] = set()
        for spec in self.specs_:
            if spec.needs is None or (spec.needs, spec.window) in seen:
                continue
            seen.add((spec.needs, spec.window))
            sources = tuple(f"{c}__{spec.window}" for c in COVERAGE_COLUMNS.get(spec.needs, ()))
            if sources and all(c in names for c in sources):
                self.coverage_.append((spec.needs, spec.window, sources))
            else:
                planned.append((f"has_{spec.needs}__{spec.window}", spec.name))
                self.coverage_.append((spec.needs, spec.window, ()))
        return planned

    def _complete(self, A: np.ndarray, T: np.ndarray) -> np.ndarray:
        if self.imputer_ is not None:
            T[:, self.needs_index_] = self.imputer_.transform(T[:, self.needs_index_])
        if not self.indicators_:
            return T
        idx = {s.name: j for j, s in enumerate(self.specs_)}
        extra = np.column_stack(
            [(~np.isnan(A[:, idx[src]])).astype(np.float64) for _, src in self.indicators_]
        )
        return np.hstack([T, extra])


SEGMENTATION_FEATURES: tuple[str, ...] = (
    # activity: how often and how intensely, not for how long
    "fills_per_active_day", "active_day_share", "hour_entropy",
    # size and concentration
    "notional_median", "top_instrument_share",
    # instrument mix
    "spot_share", "perp_share", "future_share", "option_share",
    # options behaviour
    "call_share", "long_premium_share", "mean_abs_delta", "mean_days_to_expiry",
    "straddle_share", "put_buy_share",
    # leverage
    "leverage_mean",
    # execution
    "maker_share", "buy_share",
)
"""Behavioural features the segments are built on: one column per behavioural axis.

Left out, on purpose:

* outcomes rather than behaviour: the profit family (fees, fee rate, realised PnL, win
  rate, PnL volatility) and liquidations (count, share). They mix how an account trades
  with how the market moved and with its fee tier; they are reported per segment by the
  profitability analysis and used by the names ("liquidation-prone"), not clustered on;
* lifecycle: recency and tenure are the lifecycle overlay's job, not a trading style;
* event sensitivity: it depends on which events happened to fall in the window;
* near-duplicates of a kept axis: notional mean / p95 / max / total (size, or size times
  activity), fill count, active days and mean gap (functions of fills per active day,
  active-day share and the window), leverage max and high-leverage share (thresholded
  copies of mean leverage, bimodal inside one behaviour), deep-OTM, short-dated and
  moneyness shares (thresholded copies of delta and tenor), instrument and underlying
  counts (grow with activity), mean IV paid (set by the market).

Duplicated axes count twice in any distance or likelihood, and thresholded copies of a
continuous axis put point masses at 0 and 1 that a mixture model splits a single
behaviour on; one column per axis avoids both.
"""


def segmentation_columns(features: pd.DataFrame) -> list[str]:
    """Pick the behavioural columns of a feature frame to segment on.

    The window is the lifetime ``all`` window when present (the habitual style of the
    account; short windows feed drift, lifecycle and churn), otherwise the longest
    ``{n}d`` window. The features are :data:`SEGMENTATION_FEATURES` (see there for what
    is left out and why), in that order.

    Parameters
    ----------
    features : pandas.DataFrame
        Feature frame with ``{feature}__{window}`` columns.

    Returns
    -------
    list of str
        Column names, a subset of ``features.columns``.

    Raises
    ------
    SchemaError
        When the chosen window lacks some of the behavioural features.

    Examples
    --------
    >>> cols = [f"{s}__{w}" for s in SEGMENTATION_FEATURES for w in ("30d", "all")]
    >>> frame = pd.DataFrame(columns=cols + ["realized_pnl_usd__all"])
    >>> picked = segmentation_columns(frame)
    >>> len(picked), picked[0]
    (18, 'fills_per_active_day__all')
    """
    windows = {split_column(str(c))[1] for c in features.columns}
    if "all" in windows:
        window = "all"
    else:
        days = sorted((int(w[:-1]), w) for w in windows if w.endswith("d") and w[:-1].isdigit())
        if not days:
            raise SchemaError(
                "no 'all' or '{n}d' window among the feature columns "
                f"(windows: {sorted(windows)})"
            )
        window = days[-1][1]
    wanted = [f"{stem}__{window}" for stem in SEGMENTATION_FEATURES]
    missing = [c for c in wanted if c not in features.columns]
    if missing:
        raise SchemaError(
            f"the feature frame lacks behavioural columns needed for segmentation in window "
            f"{window!r}: {missing}"
        )
    return wanted
