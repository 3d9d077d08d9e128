"""Time-based backtest of churn and next-period volume, with baselines in the same run.

Train on the rows of the earlier cutoffs, test on the last one; never mix time. Each
training cutoff's label period must end before the test cutoff (``train + horizon <=
test``), otherwise the training labels would see the test period. Compared on the same
test rows:

* ``model``: :class:`~traderseg.analysis.churn.model.ChurnClassifier` probabilities;
* ``bgnbd``: 1 - P(alive) of a BG/NBD model of active days fitted on every account with
  fills before the test cutoff (:mod:`traderseg.analysis.clv`);
* ``recency``: days since the last fill (a ranking rule, no probability).

Next-period volume: :class:`~traderseg.analysis.churn.model.VolumeRegressor` on
log1p notional against "same as last period" (log1p notional of the ``h`` days before
the cutoff), by R^2 on the test rows.
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
from sklearn.metrics import mean_absolute_error, r2_score, roc_auc_score

from traderseg.analysis.churn.dataset import DEFAULT_WINDOWS, ChurnDataset, churn_dataset
from traderseg.analysis.churn.metrics import calibration_table, score_metrics
from traderseg.analysis.churn.model import ChurnClassifier, VolumeRegressor
from traderseg.analysis.clv import BGNBDModel
from traderseg.errors import DataError
from traderseg.store import as_utc, store_connection

logger = logging.getLogger(__name__)

SCORERS = ("model", "bgnbd", "recency")

# Active-day summary in the BG/NBD convention (time unit: day): x = active days after the
# first, t_x = first to last active day, T = first active day to the calibration end (the
# last calendar day before the cutoff, inclusive).
_ACTIVE_DAYS_SQL = """
WITH days AS (
  SELECT DISTINCT account_id, CAST(ts AS DATE) AS day FROM fills WHERE ts < $cutoff
)
SELECT account_id,
       COUNT(*) - 1 AS frequency,
       CAST(date_diff('day', MIN(day), MAX(day)) AS DOUBLE) AS recency,
       CAST(date_diff('day', MIN(day), CAST($cal_end AS DATE)) AS DOUBLE) AS "T"
FROM days GROUP BY account_id
"""


@dataclass(frozen=True)
class ChurnBacktest:
    """Result of :func:`churn_backtest`.

    Attributes
    ----------
    metrics : pandas.DataFrame
        Index: scorer (model, bgnbd, recency); columns auc, brier, top_decile_lift and,
        with a truth table, auc_truth (AUC against "truly churned by the end of the
        horizon") and auc_truth_alive (among accounts truly alive at the cutoff, AUC
        against a true churn time within the horizon).
    calibration : pandas.DataFrame
        ``scorer``, ``bin`` (decile, 1 = lowest), ``n``, ``mean_predicted``,
        ``observed_rate`` for the probabilistic scorers.
    volume : pandas.DataFrame
        Index: model, same_as_last_period; columns r2, mae (log1p notional scale).
    predictions : pandas.DataFrame
        One row per test account: labels, each scorer's churn score, predicted and
        actual log1p next notional.
    train_cutoffs : list of pandas.Timestamp
        Cutoffs the models were trained on.
    test_cutoff : pandas.Timestamp
        Cutoff of the test rows.
    horizon_days : float
        Churn horizon.
    n_train : int
        Training rows.
    base_rate : float
        Observed churn rate of the test rows.
    """

    metrics: pd.DataFrame
    calibration: pd.DataFrame
    volume: pd.DataFrame
    predictions: pd.DataFrame
    train_cutoffs: list[pd.Timestamp]
    test_cutoff: pd.Timestamp
    horizon_days: float
    n_train: int
    base_rate: float


def check_cutoffs(cutoffs: Sequence[Any], horizon_days: float) -> list[pd.Timestamp]:
    """Parse cutoffs and enforce the time order of a backtest.

    Parameters
    ----------
    cutoffs : sequence of timestamp-like
        Training cutoffs then the test cutoff (last).
    horizon_days : float
        Churn horizon.

    Returns
    -------
    list of pandas.Timestamp
        Parsed UTC cutoffs.

    Raises
    ------
    DataError
        Fewer than two cutoffs, cutoffs not increasing, or a training label period that
        reaches past the test cutoff.
    """
    cuts = [as_utc(c, f"cutoff {i}") for i, c in enumerate(cutoffs)]
    if len(cuts) < 2:
        raise DataError("a backtest needs at least two cutoffs: training cutoff(s), then the "
                        "test cutoff")
    for i in range(1, len(cuts)):
        if cuts[i] <= cuts[i - 1]:
            raise DataError(f"cutoffs must increase (train first, test last): cutoff {i} "
                            f"({cuts[i].isoformat()}) is not after cutoff {i - 1} "
                            f"({cuts[i - 1].isoformat()})")
    test = cuts[-1]
    horizon = pd.Timedelta(days=horizon_days)
    for i, c in enumerate(cuts[:-1]):
        if c + horizon > test:
            raise DataError(f"training cutoff {i} ({c.isoformat()}) + {horizon_days:g} days "
                            f"reaches past the test cutoff ({test.isoformat()}): its labels "
                            "would see the test period")
    return cuts


def bgnbd_churn_score(con: duckdb.DuckDBPyConnection, cutoff: pd.Timestamp,
                      accounts: pd.Index) -> pd.Series:
    """1 - P(alive) from a BG/NBD model fitted as of ``cutoff``.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Store connection.
    cutoff : pandas.Timestamp
        Cutoff; the model sees fills strictly before it.
    accounts : pandas.Index
        Accounts to score.

    Returns
    -------
    pandas.Series
        Churn score per account.
    """
    cal_end = (cutoff - pd.Timedelta(microseconds=1)).normalize()
    summary = con.execute(_ACTIVE_DAYS_SQL, {"cutoff": cutoff.to_pydatetime(),
                                             "cal_end": cal_end.date()}).df()
    summary = summary.set_index("account_id").astype(float)
    model = BGNBDModel(compute_se=False).fit(summary[["frequency", "recency", "T"]])
    rows = summary.reindex(accounts)
    p_alive = model.conditional_probability_alive(
        rows["frequency"].to_numpy(), rows["recency"].to_numpy(), rows["T"].to_numpy())
    return pd.Series(1.0 - p_alive, index=accounts, name="bgnbd")


def _auc(y: pd.Series, score: np.ndarray) -> float:
    truth = y.astype(int).to_numpy()
    return float(roc_auc_score(truth, score)) if len(np.unique(truth)) == 2 else float("nan")


def _stack(parts: list[ChurnDataset]) -> tuple[pd.DataFrame, pd.DataFrame]:
    X = pd.concat([p.features for p in parts], axis=0)
    y = pd.concat([p.labels for p in parts], axis=0)
    return X, y


def churn_backtest(
    db: str | Path | duckdb.DuckDBPyConnection,
    cutoffs: Sequence[Any],
    horizon_days: float = 30.0,
    *,
    activity_days: float = 90.0,
    windows: Sequence[str] = DEFAULT_WINDOWS,
    model: ChurnClassifier | None = None,
    volume_model: VolumeRegressor | None = None,
    n_threads: int | None = None,
    random_state: int | None = 0,
    grace_days: float = 0.0,
) -> ChurnBacktest:
    """Train on earlier cutoffs, test on the last, against BG/NBD and recency baselines.

    Parameters
    ----------
    db : str, Path or duckdb connection
        The fills store.
    cutoffs : sequence of timestamp-like
        Increasing cutoffs; all but the last are training cutoffs.
    horizon_days : float
        Inactivity period that defines churn (default 30 days).
    activity_days : float
        Look-back defining the active population (default 90 days).
    windows : sequence of str
        Feature windows.
    model, volume_model : estimators, optional
        Unfitted estimators to use (defaults: :class:`ChurnClassifier` with trend
        inputs, :class:`VolumeRegressor`, both with ``random_state``).
    n_threads : int or None
        OpenMP threads of the default estimators (``None``: all cores).
    random_state : int or None
        Seed of the default estimators.
    grace_days : float
        0: churn is inactivity over the horizon; > 0: the account stopped within the
        horizon (no fill in the ``grace_days`` after it), see
        :func:`~traderseg.analysis.churn.dataset.churn_dataset`. A training cutoff's label
        period then ends ``horizon_days + grace_days`` after it.

    Returns
    -------
    ChurnBacktest
        Metrics, calibration, volume R^2 and the test predictions.
    """
    cuts = check_cutoffs(cutoffs, horizon_days + grace_days)
    con, owned = store_connection(db)
    try:
        parts = [churn_dataset(con, c, horizon_days, activity_days=activity_days,
                               windows=windows, grace_days=grace_days) for c in cuts]
        test = parts[-1]
        bgnbd = bgnbd_churn_score(con, test.cutoff, test.labels.index)
    finally:
        if owned:
            con.close()
    X_train, y_train = _stack(parts[:-1])
    X_test, y_test = test.features, test.labels
    clf = model if model is not None else ChurnClassifier(
        n_threads=n_threads, random_state=random_state, trends=True)
    clf.fit(X_train, y_train["churned"].astype(int))
    p_model = clf.predict_proba(X_test)[:, 1]
    scores = {
        "model": p_model,
        "bgnbd": bgnbd.to_numpy(),
        "recency": X_test["recency_days__all"].to_numpy(dtype=float),
    }
    observed = y_test["churned"].astype(int).to_numpy()
    rows = {}
    calib = []
    for name, score in scores.items():
        prob = name != "recency"
        rows[name] = score_metrics(observed, score, probability=prob)
        if "true_churned" in y_test.columns:
            alive = y_test["true_alive"].to_numpy(dtype=bool)
            rows[name]["auc_truth"] = _auc(y_test["true_churned"], score)
            rows[name]["auc_truth_alive"] = _auc(
                y_test["true_churned_in_horizon"][alive], score[alive])
        if prob:
            calib.append(calibration_table(observed, score).assign(scorer=name))
    metrics = pd.DataFrame(rows).T.rename_axis("scorer")
    calibration = pd.concat(calib, ignore_index=True)[
        ["scorer", "bin", "n", "mean_predicted", "observed_rate"]]
    reg = volume_model if volume_model is not None else VolumeRegressor(
        n_threads=n_threads, random_state=random_state)
    reg.fit(X_train, np.log1p(y_train["next_notional"].to_numpy()))
    vol_pred = reg.predict(X_test)
    vol_true = np.log1p(y_test["next_notional"].to_numpy())
    vol_last = np.log1p(y_test["prev_notional"].to_numpy())
    volume = pd.DataFrame({
        "r2": [r2_score(vol_true, vol_pred), r2_score(vol_true, vol_last)],
        "mae": [mean_absolute_error(vol_true, vol_pred), mean_absolute_error(vol_true, vol_last)],
    }, index=pd.Index(["model", "same_as_last_period"], name="predictor"))
    predictions = y_test.assign(
        cutoff=test.cutoff, p_churn=p_model, bgnbd_p_churn=scores["bgnbd"],
        recency_days=scores["recency"], log_next_notional=vol_true,
        predicted_log_next_notional=vol_pred,
    ).reset_index()
    logger.info("backtest: %d train rows, %d test rows, AUC model %.3f bgnbd %.3f recency %.3f",
                len(X_train), len(X_test), metrics.loc["model", "auc"],
                metrics.loc["bgnbd", "auc"], metrics.loc["recency", "auc"])
    return ChurnBacktest(
        metrics=metrics, calibration=calibration, volume=volume, predictions=predictions,
        train_cutoffs=cuts[:-1], test_cutoff=cuts[-1], horizon_days=float(horizon_days),
        n_train=len(X_train), base_rate=float(observed.mean()),
    )
