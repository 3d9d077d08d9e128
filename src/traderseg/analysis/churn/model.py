"""Estimators for churn probability and next-period volume.

Choice of model: histogram gradient boosting. It handles the catalogue's missing values
natively (option features are NaN for accounts that never traded options), needs no
scaling of heavy-tailed amounts, captures interactions (recent inactivity *and* short
tenure) and fits tens of thousands of rows in seconds. Boosted trees rank well but
their raw probabilities are not calibrated, and churn lists are read as probabilities,
so the classifier is wrapped in cross-validated calibration: isotonic regression when
there are enough rows (``calibration="auto"``: at least 1,000), Platt scaling otherwise.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.utils import Tags
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_X_y
from threadpoolctl import threadpool_limits

from traderseg.analysis.churn.trends import add_trends
from traderseg.errors import DataError, NotFittedError

logger = logging.getLogger(__name__)

ISOTONIC_MIN_ROWS = 1000
# Columns with fewer defined values carry no usable signal, and a column left without any
# value in a calibration fold would stop the tree binning; they are left out at fit time.
MIN_DEFINED = 10


class ModelNotFittedError(NotFittedError, SklearnNotFittedError):
    """A churn or volume model was used before ``fit`` (a traderseg and sklearn error)."""


def _threads(n_threads: int | None) -> Any:
    """Context limiting OpenMP threads (``None``: leave the library default)."""
    return threadpool_limits(limits=n_threads, user_api="openmp")


def _usable(Xa: NDArray[np.float64]) -> NDArray[np.bool_]:
    need = min(MIN_DEFINED, len(Xa))
    usable = np.asarray(np.isfinite(Xa).sum(axis=0) >= need)
    if not usable.any():
        raise DataError(f"no feature has {need} or more defined values")
    return usable


def _check_rows(n: int) -> None:
    if n < 2:
        raise DataError(f"a model needs at least 2 rows; got n_samples = {n}")


def _check_predict_input(est: Any, X: ArrayLike, fitted: str,
                         design: Any = None) -> NDArray[np.float64]:
    if not hasattr(est, fitted):
        raise ModelNotFittedError(f"{type(est).__name__} is not fitted; call fit first")
    _check_columns(est, X)
    Xa = check_array(X, ensure_all_finite="allow-nan", dtype=np.float64)
    if Xa.shape[1] != est.n_features_in_:
        raise DataError(f"X has {Xa.shape[1]} features, but {type(est).__name__} is "
                        f"expecting {est.n_features_in_} features as input")
    if design is not None:
        full = design(X)
        if full is not X:
            Xa = check_array(full, ensure_all_finite="allow-nan", dtype=np.float64)
    return np.asarray(Xa[:, est.features_used_], dtype=np.float64)


def _names(X: Any) -> NDArray[np.object_] | None:
    cols = getattr(X, "columns", None)
    return None if cols is None else np.asarray([str(c) for c in cols], dtype=object)


def _check_columns(est: Any, X: Any) -> None:
    names = _names(X)
    fitted = getattr(est, "feature_names_in_", None)
    if names is not None and fitted is not None and not np.array_equal(names, fitted):
        raise DataError("feature columns differ from those the model was fitted on "
                        f"(first differences: {sorted(set(names) ^ set(fitted))[:5]})")


class _BoostedTrees(BaseEstimator):
    """Plumbing shared by the boosted-tree estimators: tags, tree settings, fit checks.

    Subclasses declare the boosting parameters below in their own ``__init__`` (as
    scikit-learn reads parameters from each class's signature).
    """

    learning_rate: float
    max_iter: int
    max_leaf_nodes: int
    min_samples_leaf: int
    l2_regularization: float
    n_threads: int | None
    random_state: int | None

    def __sklearn_tags__(self) -> Tags:
        """Accept missing values."""
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    def _tree_params(self) -> dict[str, Any]:
        return {
            "learning_rate": self.learning_rate, "max_iter": self.max_iter,
            "max_leaf_nodes": self.max_leaf_nodes, "min_samples_leaf": self.min_samples_leaf,
            "l2_regularization": self.l2_regularization, "random_state": self.random_state,
        }

    def _remember_input(self, Xa: NDArray[np.float64], names: NDArray[np.object_] | None) -> None:
        self.n_features_in_ = Xa.shape[1]
        if names is not None:
            self.feature_names_in_ = names


class ChurnClassifier(ClassifierMixin, _BoostedTrees):
    """Calibrated gradient-boosting classifier of churn.

    Parameters
    ----------
    learning_rate : float
        Boosting learning rate.
    max_iter : int
        Boosting iterations.
    max_leaf_nodes : int
        Leaves per tree.
    min_samples_leaf : int
        Fewest rows per leaf.
    l2_regularization : float
        L2 penalty on leaf values.
    calibration : {"auto", "isotonic", "sigmoid"}
        Calibration method (see the module notes).
    cv : int
        Folds of the calibration.
    n_threads : int or None
        OpenMP threads of the trees (``None``: all cores). On small data or a busy
        machine, 1 is often fastest.
    random_state : int or None
        Seed.
    trends : bool
        Also feed the trees the trend columns of
        :func:`~traderseg.analysis.churn.trends.add_trends`, derived from the input frame
        at fit and at every prediction (needs a DataFrame of catalogue features).

    Attributes
    ----------
    classes_ : numpy.ndarray
        The two labels.
    trend_columns_ : list of str
        Trend columns derived (empty without ``trends``).
    calibrated_ : sklearn.calibration.CalibratedClassifierCV
        The fitted, calibrated ensemble.
    calibration_method_ : str
        Calibration method used.
    features_used_ : numpy.ndarray of bool
        Columns with at least ``MIN_DEFINED`` defined values, the ones the trees use.
    n_iter_ : int
        Boosting iterations of the longest member of the calibrated ensemble.
    n_features_in_ : int
        Features seen in ``fit``.
    feature_names_in_ : numpy.ndarray
        Column names seen in ``fit`` (DataFrame input only).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(400, 3))
    >>> y = (X[:, 0] + rng.normal(scale=0.5, size=400) > 0).astype(int)
    >>> clf = ChurnClassifier(max_iter=50, random_state=0).fit(X, y)
    >>> clf.predict_proba(X).shape
    (400, 2)
    """

    def __init__(
        self,
        *,
        learning_rate: float = 0.05,
        max_iter: int = 300,
        max_leaf_nodes: int = 15,
        min_samples_leaf: int = 40,
        l2_regularization: float = 1.0,
        calibration: str = "auto",
        cv: int = 3,
        n_threads: int | None = None,
        random_state: int | None = None,
        trends: bool = False,
    ) -> None:
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.calibration = calibration
        self.cv = cv
        self.n_threads = n_threads
        self.random_state = random_state
        self.trends = trends

    def _design(self, X: Any) -> Any:
        """Return the input, with the trend columns appended when ``trends`` is on."""
        if not getattr(self, "trends", False):
            return X
        if not isinstance(X, pd.DataFrame):
            raise DataError("trends=True needs a DataFrame of catalogue features "
                            "({feature}__{window} columns)")
        return add_trends(X)

    def __sklearn_tags__(self) -> Tags:
        """Binary classifier that accepts missing values."""
        tags = super().__sklearn_tags__()
        if tags.classifier_tags is not None:
            tags.classifier_tags.multi_class = False
        return tags

    def fit(self, X: ArrayLike, y: ArrayLike) -> ChurnClassifier:
        """Fit the boosted trees and their calibration.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features; NaN allowed.
        y : array-like of shape (n_samples,)
            1/True = churned.

        Returns
        -------
        ChurnClassifier
            The fitted estimator.
        """
        names = _names(X)
        design = self._design(X)
        self.trend_columns_ = ([] if design is X else
                               [str(c) for c in design.columns[len(np.asarray(names)):]])
        Xa, ya = check_X_y(design, y, ensure_all_finite="allow-nan", dtype=np.float64)
        check_classification_targets(ya)
        self.classes_ = np.unique(ya)
        if len(self.classes_) == 1:
            raise DataError("churn labels must have two classes; got one class "
                            f"({self.classes_[0]!r})")
        if len(self.classes_) > 2:
            raise DataError("Only binary classification is supported: churn labels must have "
                            f"two classes; got {len(self.classes_)}")
        _check_rows(len(ya))
        rarer = int(np.unique(ya, return_counts=True)[1].min())
        if rarer < self.cv:  # each calibration fold must hold both classes
            raise DataError(f"the rarer class has {rarer} row(s) of {len(ya)}; a calibration "
                            f"over {self.cv} folds needs at least {self.cv} of each class")
        method = self.calibration
        if method == "auto":
            method = "isotonic" if len(ya) >= ISOTONIC_MIN_ROWS else "sigmoid"
        if method not in ("isotonic", "sigmoid"):
            raise DataError(f"calibration must be 'auto', 'isotonic' or 'sigmoid', not {method!r}")
        self.features_used_ = _usable(Xa)
        trees = HistGradientBoostingClassifier(**self._tree_params())
        with _threads(self.n_threads):
            self.calibrated_ = CalibratedClassifierCV(trees, method=method, cv=self.cv).fit(
                Xa[:, self.features_used_], ya)
        self.calibration_method_ = method
        self.n_iter_ = max(c.estimator.n_iter_ for c in self.calibrated_.calibrated_classifiers_)
        self._remember_input(Xa[:, :Xa.shape[1] - len(self.trend_columns_)], names)
        return self

    def predict_proba(self, X: ArrayLike) -> NDArray[np.float64]:
        """Calibrated class probabilities (column 1: churn).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features.

        Returns
        -------
        numpy.ndarray of shape (n_samples, 2)
            Probabilities of each class in ``classes_`` order.
        """
        Xa = _check_predict_input(self, X, "calibrated_", self._design)
        with _threads(self.n_threads):
            return np.asarray(self.calibrated_.predict_proba(Xa), dtype=np.float64)

    def predict(self, X: ArrayLike) -> NDArray[Any]:
        """Most likely class.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features.

        Returns
        -------
        numpy.ndarray
            Predicted labels.
        """
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]


class VolumeRegressor(RegressorMixin, _BoostedTrees):
    """Gradient-boosting regression of next-period log notional.

    Fit on ``log1p(notional)`` targets; predictions are on that scale.

    Parameters
    ----------
    learning_rate : float
        Boosting learning rate.
    max_iter : int
        Boosting iterations.
    max_leaf_nodes : int
        Leaves per tree.
    min_samples_leaf : int
        Fewest rows per leaf.
    l2_regularization : float
        L2 penalty on leaf values.
    n_threads : int or None
        OpenMP threads of the trees (``None``: all cores).
    random_state : int or None
        Seed.

    Attributes
    ----------
    model_ : sklearn.ensemble.HistGradientBoostingRegressor
        The fitted trees.
    features_used_ : numpy.ndarray of bool
        Columns with at least ``MIN_DEFINED`` defined values, the ones the trees use.
    n_iter_ : int
        Boosting iterations.
    n_features_in_ : int
        Features seen in ``fit``.
    """

    def __init__(
        self,
        *,
        learning_rate: float = 0.05,
        max_iter: int = 300,
        max_leaf_nodes: int = 15,
        min_samples_leaf: int = 40,
        l2_regularization: float = 1.0,
        n_threads: int | None = None,
        random_state: int | None = None,
    ) -> None:
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.n_threads = n_threads
        self.random_state = random_state

    def fit(self, X: ArrayLike, y: ArrayLike) -> VolumeRegressor:
        """Fit on features and log1p notional.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features; NaN allowed.
        y : array-like of shape (n_samples,)
            Target on the log scale.

        Returns
        -------
        VolumeRegressor
            The fitted estimator.
        """
        names = _names(X)
        Xa, ya = check_X_y(X, y, ensure_all_finite="allow-nan", dtype=np.float64,
                           y_numeric=True)
        _check_rows(len(ya))
        self.features_used_ = _usable(Xa)
        trees = HistGradientBoostingRegressor(**self._tree_params())
        with _threads(self.n_threads):
            self.model_ = trees.fit(Xa[:, self.features_used_], ya)
        self.n_iter_ = self.model_.n_iter_
        self._remember_input(Xa, names)
        return self

    def predict(self, X: ArrayLike) -> NDArray[np.float64]:
        """Predicted log1p notional of the next period.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features.

        Returns
        -------
        numpy.ndarray
            Predictions.
        """
        Xa = _check_predict_input(self, X, "model_")
        with _threads(self.n_threads):
            pred = self.model_.predict(Xa)
        return np.asarray(pred, dtype=np.float64)
