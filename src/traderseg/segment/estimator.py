"""The segmenter: an sklearn-style clustering estimator over the feature frame."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin
from sklearn.cluster import HDBSCAN, KMeans
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import NearestNeighbors
from sklearn.utils.validation import check_is_fitted

from traderseg.errors import ConfigError, DataError, NotFittedError
from traderseg.segment.preprocess import FeaturePreprocessor
from traderseg.segment.selection import choose_k, evaluate_k_range, fit_partition

logger = logging.getLogger(__name__)

METHODS = ("kmeans", "gmm", "hdbscan")
OUTLIER_LABEL = -1
"""Label of HDBSCAN outliers; their segment is named ``"outliers"``."""

_DEFAULT_FIT_ROWS = {"kmeans": None, "gmm": 200_000, "hdbscan": 20_000}


class TraderSegmenter(ClusterMixin, TransformerMixin, BaseEstimator):
    """Segment accounts by behaviour from their feature frame.

    Parameters
    ----------
    n_segments : int or "auto", default="auto"
        Number of segments; ``"auto"`` chooses it in ``k_range`` by the rule of
        :func:`traderseg.segment.selection.choose_k` (ignored by ``hdbscan``).
    method : {"kmeans", "gmm", "hdbscan"}, default="kmeans"
        ``kmeans``: k-means on the preprocessed matrix (the search runs on a subsample,
        then one full Lloyd fit warm-started from the sample's centres). ``gmm``:
        Gaussian mixture with soft membership. ``hdbscan``: density clusters; accounts
        in no dense region get label ``-1`` ("outliers").
    k_range : tuple of int, default=(4, 14)
        Inclusive range of candidate k for ``"auto"`` (capped below the number of rows).
    random_state : int, optional
        Seed.
    weight_by_family : bool, default=True
        Passed to :class:`~traderseg.segment.preprocess.FeaturePreprocessor`.
    weight_by_coverage : bool, default=True
        Passed to :class:`~traderseg.segment.preprocess.FeaturePreprocessor` (models saved
        before the parameter existed load with ``False``, as they were trained).
    covariance_type : str, default="diag"
        Mixture covariance for ``gmm``.
    search_sample, silhouette_sample, n_bootstrap : int
        Sizes of the k-search (see :mod:`traderseg.segment.selection`).
    stability_floor : float, default=0.75
        Minimum bootstrap stability for a k to be eligible.
    max_fit_rows : int, optional
        Rows used for the final fit; default all rows for ``kmeans``, 200k for ``gmm``,
        20k for ``hdbscan`` (the rest are assigned by ``predict``).
    min_cluster_size : int, optional
        HDBSCAN minimum cluster size (default ``max(5, rows // 50)``).

    Attributes
    ----------
    preprocessor_ : FeaturePreprocessor
        Fitted preprocessing.
    labels_ : ndarray of int
        Segment of each training account, ``0`` the largest; ``-1`` HDBSCAN outliers.
    cluster_centers_ : ndarray of shape (n_segments_, n_output_columns)
        Centres in the preprocessed space.
    n_segments_ : int
        Number of segments (outliers excluded).
    selection_ : pandas.DataFrame
        Evidence per candidate k (empty when k was given or for ``hdbscan``).
    segment_ids_ : ndarray of int
        Stable id of each label (identity across refits; defaults to the label).
    temperature_ : float
        Softmax temperature of ``predict_proba`` for ``kmeans`` / ``hdbscan``.

    Examples
    --------
    >>> from traderseg.segment.synthetic import synthetic_features
    >>> X, y = synthetic_features(600, behaviours=["whale", "spot_holder", "hedger"],
    ...                           windows=("all",), random_state=0)
    >>> seg = TraderSegmenter(3, random_state=0).fit(X)
    >>> seg.n_segments_, seg.predict(X.iloc[:5]).shape
    (3, (5,))
    """

    def __init__(
        self,
        n_segments: int | str = "auto",
        *,
        method: str = "kmeans",
        k_range: tuple[int, int] = (4, 14),
        random_state: int | None = None,
        weight_by_family: bool = True,
        weight_by_coverage: bool = True,
        covariance_type: str = "diag",
        search_sample: int = 10_000,
        silhouette_sample: int = 3_000,
        n_bootstrap: int = 5,
        stability_floor: float = 0.75,
        max_fit_rows: int | None = None,
        min_cluster_size: int | None = None,
    ) -> None:
        self.n_segments = n_segments
        self.method = method
        self.k_range = k_range
        self.random_state = random_state
        self.weight_by_family = weight_by_family
        self.weight_by_coverage = weight_by_coverage
        self.covariance_type = covariance_type
        self.search_sample = search_sample
        self.silhouette_sample = silhouette_sample
        self.n_bootstrap = n_bootstrap
        self.stability_floor = stability_floor
        self.max_fit_rows = max_fit_rows
        self.min_cluster_size = min_cluster_size

    # -- public API --------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> TraderSegmenter:
        """Fit the preprocessing and the segments.

        Parameters
        ----------
        X : pandas.DataFrame or array-like of shape (n_accounts, n_features)
            Feature frame indexed by ``account_id``, or a plain numeric array.
        y : None
            Ignored.

        Returns
        -------
        TraderSegmenter
            The fitted segmenter.
        """
        self._check_params()
        self.preprocessor_ = FeaturePreprocessor(weight_by_family=self.weight_by_family,
                                                 weight_by_coverage=self.weight_by_coverage)
        Z = self.preprocessor_.fit_transform(X)
        self.n_features_in_ = self.preprocessor_.n_features_in_
        if hasattr(self.preprocessor_, "feature_names_in_"):
            self.feature_names_in_ = self.preprocessor_.feature_names_in_
        rng = np.random.default_rng(self.random_state)
        self.selection_ = pd.DataFrame(
            columns=["k", "silhouette", "bic", "stability", "n_sample", "eligible", "score",
                     "chosen"]
        )
        if self.method == "hdbscan":
            labels = self._fit_hdbscan(Z, rng)
        else:
            labels = self._fit_partition(Z, rng)
        self._finish(Z, labels)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Segment label of each account.

        Parameters
        ----------
        X : pandas.DataFrame or array-like
            Same columns as in ``fit``.

        Returns
        -------
        ndarray of int
            Labels (``-1``: HDBSCAN outliers).
        """
        _check_fitted(self)
        return self._predict(self.preprocessor_.transform(X))

    def transform(self, X: Any) -> np.ndarray:
        """Euclidean distance of each account to each segment centre.

        Parameters
        ----------
        X : pandas.DataFrame or array-like
            Same columns as in ``fit``.

        Returns
        -------
        ndarray of shape (n_accounts, n_segments_)
            Distances in the preprocessed space.
        """
        _check_fitted(self)
        return np.sqrt(self._sq_dist(self.preprocessor_.transform(X)))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Soft membership of each account in each segment.

        For ``gmm`` the mixture's posterior. For ``kmeans`` and ``hdbscan`` a softmax of
        negative squared distances to the centres, ``exp(-d2 / temperature_)``
        normalised per row, with ``temperature_`` the median squared distance of the
        training accounts to their own centre: an account as far from its centre as a
        typical member keeps clear majority when the next centre is much farther.

        Parameters
        ----------
        X : pandas.DataFrame or array-like
            Same columns as in ``fit``.

        Returns
        -------
        ndarray of shape (n_accounts, n_segments_)
            Rows sum to one; column ``j`` is label ``j``.
        """
        _check_fitted(self)
        return self._proba(self.preprocessor_.transform(X))

    def predict_with_proba(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`predict` and :meth:`predict_proba` of the same accounts at once.

        The accounts are preprocessed once instead of twice.

        Parameters
        ----------
        X : pandas.DataFrame or array-like
            Same columns as in ``fit``.

        Returns
        -------
        tuple of ndarray
            The labels and the membership matrix.
        """
        _check_fitted(self)
        Z = self.preprocessor_.transform(X)
        return self._predict(Z), self._proba(Z)

    def _proba(self, Z: np.ndarray) -> np.ndarray:
        if self.method == "gmm":
            return self.model_.predict_proba(Z)[:, self.order_]
        d2 = self._sq_dist(Z)
        logits = -(d2 - d2.min(axis=1, keepdims=True)) / self.temperature_
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def segment_ids(self, labels: np.ndarray) -> np.ndarray:
        """Map labels to stable segment ids (outliers stay ``-1``).

        Parameters
        ----------
        labels : ndarray of int
            Labels from ``predict`` or ``labels_``.

        Returns
        -------
        ndarray of int
            Stable ids.
        """
        _check_fitted(self)
        labels = np.asarray(labels)
        out = np.full(labels.shape, OUTLIER_LABEL, dtype=np.int64)
        inside = labels >= 0
        out[inside] = self.segment_ids_[labels[inside]]
        return out

    def __getstate__(self) -> dict[str, Any]:
        """State for serialisation; the evidence table is kept as plain lists."""
        state = dict(super().__getstate__())
        table = state.get("selection_")
        if isinstance(table, pd.DataFrame):
            state["selection_"] = {
                "columns": [str(c) for c in table.columns],
                "rows": [[_plain(v) for v in row] for row in table.itertuples(index=False)],
            }
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`__getstate__`."""
        table = state.get("selection_")
        if isinstance(table, dict):
            state = dict(state)
            state["selection_"] = pd.DataFrame(table["rows"], columns=table["columns"])
        super().__setstate__(state)

    # -- fitting -----------------------------------------------------------------
    def _check_params(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.n_segments != "auto" and (
            not isinstance(self.n_segments, int | np.integer) or self.n_segments < 1
        ):
            raise ConfigError(
                f"n_segments must be 'auto' or a positive int, got {self.n_segments!r}"
            )
        lo, hi = self.k_range
        if not (2 <= lo <= hi):
            raise ConfigError(f"k_range must satisfy 2 <= low <= high, got {self.k_range!r}")

    def _fit_rows(self, Z: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        limit = self.max_fit_rows or _DEFAULT_FIT_ROWS[self.method]
        if limit is None or Z.shape[0] <= limit:
            return Z
        return Z[np.sort(rng.choice(Z.shape[0], limit, replace=False))]

    def _fit_partition(self, Z: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        n = Z.shape[0]
        seed = int(rng.integers(2**31 - 1))
        init = None
        if self.n_segments == "auto":
            lo, hi = self.k_range
            ks = list(range(min(lo, n - 1), min(hi, n - 1) + 1))
            if not ks or ks[-1] < 2:
                raise DataError(f"automatic k needs at least 3 accounts, got {n}")
            table, centers = evaluate_k_range(
                Z, ks, method=self.method, random_state=seed,
                search_sample=self.search_sample, silhouette_sample=self.silhouette_sample,
                n_bootstrap=self.n_bootstrap, covariance_type=self.covariance_type,
            )
            k, self.selection_ = choose_k(table, stability_floor=self.stability_floor)
            init = centers[k]
            logger.info("chose k=%d from %s", k, ks)
        else:
            k = int(self.n_segments)
            if k > n:
                raise DataError(f"n_segments={k} is more than the {n} accounts")
        rows = self._fit_rows(Z, rng)
        if init is None:
            sample = rows
            if rows.shape[0] > self.search_sample:
                sample = rows[rng.choice(rows.shape[0], self.search_sample, replace=False)]
            init = _centres(fit_partition(sample, k, method=self.method, seed=seed, n_init=10,
                                          covariance_type=self.covariance_type))
        self.model_ = fit_partition(
            rows, k, method=self.method, seed=seed, n_init=3,
            covariance_type=self.covariance_type, init=init,
        )
        return self.model_.predict(Z)

    def _fit_hdbscan(self, Z: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        rows = self._fit_rows(Z, rng)
        mcs = self.min_cluster_size or max(5, rows.shape[0] // 50)
        if rows.shape[0] < 2 * mcs:
            mcs = max(2, rows.shape[0] // 2)
        model = HDBSCAN(min_cluster_size=mcs, copy=True).fit(rows)
        if (model.labels_ < 0).all():
            raise DataError(
                f"HDBSCAN found no dense segment among {rows.shape[0]} accounts "
                f"(min_cluster_size={mcs}); lower min_cluster_size or use kmeans"
            )
        self.model_ = NearestNeighbors(n_neighbors=1).fit(rows)
        self.neighbour_labels_ = model.labels_.astype(np.int64)
        return self._hdbscan_predict(Z)

    def _finish(self, Z: np.ndarray, raw: np.ndarray) -> None:
        """Relabel by size (0 = largest), set centres, temperature and ids."""
        inside = raw[raw >= 0]
        present = np.unique(inside)
        sizes = np.array([(inside == c).sum() for c in present])
        ranked = present[np.lexsort((present, -sizes))]
        n_raw = int(raw.max()) + 1 if raw.size else 0
        if self.method == "gmm":
            n_raw = self.model_.n_components
            missing = np.setdiff1d(np.arange(n_raw), ranked)
            ranked = np.concatenate([ranked, missing])
        relabel = np.full(max(n_raw, 1), OUTLIER_LABEL, dtype=np.int64)
        relabel[ranked] = np.arange(ranked.size)
        self.relabel_ = relabel
        self.order_ = ranked
        labels = np.where(raw >= 0, relabel[np.maximum(raw, 0)], OUTLIER_LABEL)
        if self.method == "hdbscan":
            self.neighbour_labels_ = np.where(
                self.neighbour_labels_ >= 0,
                relabel[np.maximum(self.neighbour_labels_, 0)], OUTLIER_LABEL,
            )
        self.labels_ = labels.astype(np.int64)
        k = ranked.size
        centres = _centres(self.model_) if self.method != "hdbscan" else None
        if centres is not None:
            self.cluster_centers_ = centres[ranked]
        else:
            self.cluster_centers_ = np.vstack([Z[labels == j].mean(axis=0) for j in range(k)])
        self.n_segments_ = k
        self.segment_ids_ = np.arange(k, dtype=np.int64)
        own = self._sq_dist(Z)[labels >= 0, labels[labels >= 0]]
        med = float(np.median(own)) if own.size else 0.0
        self.temperature_ = med if med > 0 else 1.0

    # -- prediction --------------------------------------------------------------
    def _sq_dist(self, Z: np.ndarray) -> np.ndarray:
        C = self.cluster_centers_
        d2 = (Z**2).sum(axis=1)[:, None] - 2 * Z @ C.T + (C**2).sum(axis=1)[None, :]
        return np.maximum(d2, 0.0)

    def _hdbscan_predict(self, Z: np.ndarray) -> np.ndarray:
        _, idx = self.model_.kneighbors(Z, n_neighbors=1)
        return self.neighbour_labels_[idx[:, 0]]

    def _predict(self, Z: np.ndarray) -> np.ndarray:
        if self.method == "hdbscan":
            return self._hdbscan_predict(Z).astype(np.int64)
        if self.method == "gmm":
            return self.relabel_[self.model_.predict(Z)].astype(np.int64)
        return np.argmin(self._sq_dist(Z), axis=1).astype(np.int64)


class SegmenterNotFittedError(NotFittedError, SklearnNotFittedError):
    """Not fitted: a traderseg error that scikit-learn tooling also recognises."""


def _check_fitted(est: BaseEstimator) -> None:
    try:
        check_is_fitted(est, "labels_")
    except SklearnNotFittedError as exc:
        raise SegmenterNotFittedError(
            f"this {type(est).__name__} is not fitted yet; call fit with a feature frame first"
        ) from exc


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


def _centres(model: KMeans | GaussianMixture) -> np.ndarray:
    return model.means_ if isinstance(model, GaussianMixture) else model.cluster_centers_
