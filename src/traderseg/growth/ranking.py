"""Rank accounts for the next campaign by predicted uplift, and score the ranking.

:class:`TLearner` is the two-model learner: one regressor of the outcome on the treated
accounts, one on the held-out accounts, the predicted uplift being their difference.
:func:`rank_campaign` trains it on a measured campaign (features as of the campaign
start, outcome over the window), scores every member *out of fold* (each fold's
accounts by models that never saw them), evaluates that ranking with the Qini curve and
the area under the uplift curve, then refits on all members and scores them on their
features as of the campaign end: the order to target next time.

Curves, with accounts sorted by decreasing score and the first ``k`` targeted
(``Y_T(k)``, ``N_T(k)``: outcome sum and count of treated accounts among them, ``C`` the
held-out ones):

* Qini ``Q(k) = Y_T(k) - Y_C(k) * N_T(k) / N_C(k)`` (0 while ``N_C(k) = 0``);
* uplift gain ``G(k) = (Y_T(k) / N_T(k) - Y_C(k) / N_C(k)) * k`` (0 while an arm is
  empty);
* ``qini_coefficient = mean_k (Q(k) - k / N * Q(N)) / N``: how far the Qini curve lies
  above the random line, in outcome per account (0 for a ranking no better than chance);
* ``auuc = mean_k G(k) / N`` beside ``auuc_random = mean_k (k / N) G(N) / N``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from traderseg.errors import DataError
from traderseg.growth.campaigns import get_campaign
from traderseg.growth.uplift import METRICS, MIN_ARM, campaign_outcomes

N_FOLDS = 5
FEATURE_WINDOWS = ("30d", "all")


class TLearner(RegressorMixin, BaseEstimator):
    """Two-model uplift learner: ``mu_treated(x) - mu_holdout(x)``.

    Parameters
    ----------
    estimator : regressor, optional
        Base regressor cloned for each arm (default: gradient-boosted trees).
    random_state : int, optional
        Seed of the default regressor.

    Examples
    --------
    >>> X = np.arange(40.0).reshape(-1, 1)
    >>> t = np.arange(40) % 2 == 0
    >>> y = np.where(t, 2 * X[:, 0], X[:, 0])
    >>> from sklearn.linear_model import LinearRegression
    >>> m = TLearner(LinearRegression()).fit(X, y, treated=t)
    >>> np.round(m.predict(np.array([[10.0]])), 6).tolist()
    [10.0]
    """

    def __init__(self, estimator: Any = None, *, random_state: int | None = None) -> None:
        self.estimator = estimator
        self.random_state = random_state

    def _base(self) -> Any:
        if self.estimator is not None:
            return clone(self.estimator)
        return HistGradientBoostingRegressor(max_iter=100, learning_rate=0.1,
                                             min_samples_leaf=10,
                                             random_state=self.random_state)

    def fit(self, X: Any, y: Any, treated: Any) -> TLearner:
        """Fit one regressor per arm; ``treated`` is a boolean array."""
        t = np.asarray(treated, dtype=bool)
        y = np.asarray(y, dtype=float)
        if t.sum() < MIN_ARM or (~t).sum() < MIN_ARM:
            raise DataError(f"the uplift model needs at least {MIN_ARM} accounts in each arm "
                            f"(treatment {int(t.sum())}, holdout {int((~t).sum())})")
        Xa = X.iloc if hasattr(X, "iloc") else X
        # one thread: the trees are small, and OpenMP threads only contend on a busy machine
        with threadpool_limits(1):
            self.treated_model_ = self._base().fit(Xa[t], y[t])
            self.holdout_model_ = self._base().fit(Xa[~t], y[~t])
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predicted uplift of each row."""
        check_is_fitted(self, "treated_model_")
        with threadpool_limits(1):
            return np.asarray(self.treated_model_.predict(X) - self.holdout_model_.predict(X))


def _cumulative(score: np.ndarray, y: np.ndarray, treated: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    order = np.lexsort((np.arange(len(score)), -score))
    t = treated[order]
    yo = y[order]
    return (np.cumsum(np.where(t, yo, 0.0)), np.cumsum(t), np.cumsum(np.where(t, 0.0, yo)),
            np.cumsum(~t))


def qini_curve(score: np.ndarray, y: np.ndarray, treated: np.ndarray) -> np.ndarray:
    """``Q(k)`` for ``k = 1..N`` (see the module docstring).

    Examples
    --------
    >>> qini_curve(np.array([3.0, 2, 1, 0]), np.array([1.0, 0, 0, 0]),
    ...            np.array([True, False, True, False])).tolist()
    [0.0, 1.0, 1.0, 1.0]
    """
    yt, nt, yc, nc = _cumulative(np.asarray(score, float), np.asarray(y, float),
                                 np.asarray(treated, bool))
    with np.errstate(divide="ignore", invalid="ignore"):
        q = yt - yc * nt / nc
    return np.where(nc > 0, q, 0.0)


def uplift_gain(score: np.ndarray, y: np.ndarray, treated: np.ndarray) -> np.ndarray:
    """``G(k)`` for ``k = 1..N`` (see the module docstring)."""
    yt, nt, yc, nc = _cumulative(np.asarray(score, float), np.asarray(y, float),
                                 np.asarray(treated, bool))
    k = np.arange(1, len(yt) + 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        g = (yt / nt - yc / nc) * k
    return np.where((nt > 0) & (nc > 0), g, 0.0)


def ranking_scores(score: np.ndarray, y: np.ndarray, treated: np.ndarray) -> dict[str, float]:
    """Qini coefficient, AUUC and the random AUUC of a ranking (module docstring)."""
    n = len(score)
    if n == 0:
        raise DataError("no accounts to evaluate the ranking on")
    k = np.arange(1, n + 1) / n
    q = qini_curve(score, y, treated)
    g = uplift_gain(score, y, treated)
    return {
        "qini_coefficient": float(np.mean(q - k * q[-1]) / n),
        "auuc": float(np.mean(g) / n),
        "auuc_random": float(np.mean(k * g[-1]) / n),
        "accounts": float(n),
    }


@dataclass(frozen=True)
class CampaignRanking:
    """Result of :func:`rank_campaign`.

    Attributes
    ----------
    scores : pandas.DataFrame
        ``account_id, segment_id, uplift_score, rank`` (1 = target first) from the model
        refitted on all members, on features as of the campaign end.
    evaluation : dict
        Out-of-fold ``qini_coefficient``, ``auuc``, ``auuc_random`` on the campaign.
    metric : str
        Outcome the model predicts.
    """

    scores: pd.DataFrame
    evaluation: dict[str, float]
    metric: str


def _features(con: duckdb.DuckDBPyConnection, as_of: pd.Timestamp,
              accounts: pd.Series) -> pd.DataFrame:
    from traderseg.features.compute import compute_features

    feats = compute_features(con, as_of.to_pydatetime(), FEATURE_WINDOWS)
    feats = feats.select_dtypes(include=["number", "bool"]).astype(float)
    return feats.reindex(accounts.astype(str).to_numpy())


def rank_campaign(con: duckdb.DuckDBPyConnection, campaign_id: str, *,
                  metric: str = "fees_usd", random_state: int = 0) -> CampaignRanking:
    """Train the T-learner on a measured campaign and rank its members for the next one.

    Raises
    ------
    DataError
        An unknown metric, or an arm too small for the folds.
    """
    if metric not in METRICS:
        raise DataError(f"unknown metric {metric!r}; known: {', '.join(METRICS)}")
    campaign = get_campaign(con, campaign_id)
    out = campaign_outcomes(con, campaign)
    treated = (out["arm"] == "treatment").to_numpy()
    n_hold = int((~treated).sum())
    if n_hold < N_FOLDS or int(treated.sum()) < N_FOLDS:
        raise DataError(f"campaign {campaign_id}: {n_hold} held-out and {int(treated.sum())} "
                        f"treated accounts; the out-of-fold evaluation needs {N_FOLDS} in each")
    X = _features(con, campaign.window_start, out["account_id"])
    X[f"{metric}__pre"] = out[f"{metric}__pre"].to_numpy()
    y = out[metric].to_numpy(float)
    oof = np.empty(len(y))
    folds = StratifiedKFold(N_FOLDS, shuffle=True, random_state=random_state)
    for train, test in folds.split(X, treated):
        m = TLearner(random_state=random_state).fit(X.iloc[train], y[train], treated[train])
        oof[test] = m.predict(X.iloc[test])
    evaluation = ranking_scores(oof, y, treated)
    model = TLearner(random_state=random_state).fit(X, y, treated)
    X_next = _features(con, campaign.window_end, out["account_id"])
    X_next[f"{metric}__pre"] = out[metric].to_numpy()
    score = model.predict(X_next[X.columns])
    scores = pd.DataFrame({"account_id": out["account_id"], "segment_id": out["segment_id"],
                           "uplift_score": score})
    scores = scores.sort_values(["uplift_score", "account_id"], ascending=[False, True])
    scores["rank"] = np.arange(1, len(scores) + 1)
    return CampaignRanking(scores.reset_index(drop=True), evaluation, metric)
