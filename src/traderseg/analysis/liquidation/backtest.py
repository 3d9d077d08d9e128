"""Time-based backtest of the liquidation-risk classifier against a leverage-only rule.

Train on the rows of the earlier cutoffs, test on the last; each training cutoff's label
period must end before the test cutoff (``train + horizon <= test``). Compared on the same
test rows by AUC and top-decile lift (and Brier score for the model):

* ``model``: a calibrated gradient-boosting classifier (the estimator of
  :class:`~traderseg.analysis.churn.model.ChurnClassifier`, trained on the liquidation
  label);
* ``leverage_rule``: max leverage over the last 30 days
  (:func:`~traderseg.analysis.liquidation.dataset.leverage_rule_score`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from traderseg.analysis.churn.backtest import check_cutoffs
from traderseg.analysis.churn.metrics import calibration_table, score_metrics
from traderseg.analysis.churn.model import ChurnClassifier
from traderseg.analysis.liquidation.dataset import (
    ACTIVITY_DAYS,
    DEFAULT_WINDOWS,
    HORIZON_DAYS,
    leverage_rule_score,
    liquidation_dataset,
)
from traderseg.errors import DataError
from traderseg.store import store_connection

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LiquidationBacktest:
    """Result of :func:`liquidation_backtest`.

    Attributes
    ----------
    metrics : pandas.DataFrame
        Index: scorer (model, leverage_rule); columns auc, top_decile_lift, brier.
    calibration : pandas.DataFrame
        Model calibration by decile: ``bin``, ``n``, ``mean_predicted``, ``observed_rate``.
    predictions : pandas.DataFrame
        One row per test account: labels, model probability, leverage-rule score.
    train_cutoffs : list of pandas.Timestamp
        Training cutoffs.
    test_cutoff : pandas.Timestamp
        Test cutoff.
    horizon_days : float
        Label horizon.
    n_train : int
        Training rows.
    base_rate : float
        Observed liquidation rate of the test rows.
    """

    metrics: pd.DataFrame
    calibration: pd.DataFrame
    predictions: pd.DataFrame
    train_cutoffs: list[pd.Timestamp]
    test_cutoff: pd.Timestamp
    horizon_days: float
    n_train: int
    base_rate: float


def liquidation_backtest(
    db: str | Path | duckdb.DuckDBPyConnection,
    cutoffs: Sequence[Any],
    horizon_days: float = HORIZON_DAYS,
    *,
    activity_days: float = ACTIVITY_DAYS,
    windows: Sequence[str] = DEFAULT_WINDOWS,
    model: ChurnClassifier | None = None,
    n_threads: int | None = None,
    random_state: int | None = 0,
) -> LiquidationBacktest:
    """Train on earlier cutoffs, test on the last, against the leverage-only rule.

    Parameters
    ----------
    db : str, Path or duckdb connection
        The fills store.
    cutoffs : sequence of timestamp-like
        Increasing cutoffs; all but the last are training cutoffs.
    horizon_days : float
        Days after a cutoff a liquidation counts in (default 7).
    activity_days : float
        Look-back defining the population (default 30).
    windows : sequence of str
        Feature windows (must include ``30d``).
    model : estimator, optional
        Unfitted binary classifier with ``predict_proba`` (default: the calibrated boosted
        trees with ``random_state``).
    n_threads : int or None
        OpenMP threads of the default model.
    random_state : int or None
        Seed of the default model.

    Returns
    -------
    LiquidationBacktest
        Metrics, calibration and test predictions.

    Raises
    ------
    DataError
        Bad cutoffs, or training rows with a single class.
    """
    cuts = check_cutoffs(cutoffs, horizon_days)
    con, owned = store_connection(db)
    try:
        parts = [liquidation_dataset(con, c, horizon_days, activity_days=activity_days,
                                     windows=windows) for c in cuts]
    finally:
        if owned:
            con.close()
    X_train = pd.concat([p.features for p in parts[:-1]], axis=0)
    y_train = pd.concat([p.labels for p in parts[:-1]], axis=0)["liquidated"].astype(int)
    if y_train.nunique() < 2:
        raise DataError(f"the training cutoffs hold {int(y_train.sum())} liquidated account(s) "
                        f"of {len(y_train)}: both outcomes are needed to train")
    test = parts[-1]
    clf = model if model is not None else ChurnClassifier(
        n_threads=n_threads, random_state=random_state)
    clf.fit(X_train, y_train)
    p_model = clf.predict_proba(test.features)[:, 1]
    rule = leverage_rule_score(test.features).to_numpy()
    observed = test.labels["liquidated"].astype(int).to_numpy()
    metrics = pd.DataFrame({
        "model": score_metrics(observed, p_model, probability=True),
        "leverage_rule": score_metrics(observed, rule, probability=False),
    }).T.rename_axis("scorer")
    calibration = calibration_table(observed, p_model)
    predictions = test.labels.assign(cutoff=test.cutoff, p_liquidation=p_model,
                                     leverage_rule=rule).reset_index()
    logger.info("liquidation backtest: %d train rows, %d test rows, AUC model %.3f rule %.3f",
                len(X_train), len(observed), metrics.loc["model", "auc"],
                metrics.loc["leverage_rule", "auc"])
    return LiquidationBacktest(
        metrics=metrics, calibration=calibration, predictions=predictions,
        train_cutoffs=cuts[:-1], test_cutoff=cuts[-1], horizon_days=float(horizon_days),
        n_train=len(X_train), base_rate=float(np.mean(observed)),
    )
