"""Churn and next-period volume: labels as of a cutoff, calibrated models, time-based backtest.

:mod:`.dataset` builds one labelled row per account active before a cutoff,
:mod:`.model` holds the estimators, :mod:`.metrics` the scoring helpers and
:mod:`.backtest` the train-on-earlier, test-on-later evaluation with its baselines.
"""

from traderseg.analysis.churn.backtest import ChurnBacktest, churn_backtest
from traderseg.analysis.churn.dataset import ChurnDataset, churn_dataset
from traderseg.analysis.churn.metrics import calibration_table, top_decile_lift
from traderseg.analysis.churn.model import ChurnClassifier, VolumeRegressor

__all__ = [
    "ChurnBacktest",
    "ChurnClassifier",
    "ChurnDataset",
    "VolumeRegressor",
    "calibration_table",
    "churn_backtest",
    "churn_dataset",
    "top_decile_lift",
]
