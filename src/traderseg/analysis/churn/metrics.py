"""Scoring helpers for churn scores: calibration by decile, lift, AUC and Brier score."""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.metrics import brier_score_loss, roc_auc_score

from traderseg.errors import DataError


def _arrays(y: ArrayLike, score: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    ya = np.asarray(y, dtype=float)
    sa = np.asarray(score, dtype=float)
    if ya.shape != sa.shape or ya.ndim != 1:
        raise DataError("labels and scores must be 1-d and of the same length")
    if not np.isfinite(sa).all():
        raise DataError(f"{int((~np.isfinite(sa)).sum())} score(s) are not finite")
    return ya, sa


def _deciles(score: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin index (0 = lowest scores) of equal-count bins; ties broken by position."""
    order = np.argsort(score, kind="stable")
    bins = np.empty(len(score), dtype=int)
    for k, idx in enumerate(np.array_split(order, n_bins)):
        bins[idx] = k
    return bins


def calibration_table(y: ArrayLike, prob: ArrayLike, n_bins: int = 10) -> pd.DataFrame:
    """Mean predicted probability against the observed rate, by equal-count bins.

    Parameters
    ----------
    y : array-like
        0/1 outcomes.
    prob : array-like
        Predicted probabilities.
    n_bins : int
        Bins (deciles by default), from the lowest to the highest predictions.

    Returns
    -------
    pandas.DataFrame
        ``bin`` (1 = lowest), ``n``, ``mean_predicted``, ``observed_rate``.
    """
    ya, pa = _arrays(y, prob)
    if len(ya) < n_bins:
        raise DataError(f"{len(ya)} rows are too few for {n_bins} calibration bins")
    bins = _deciles(pa, n_bins)
    df = pd.DataFrame({"bin": bins + 1, "p": pa, "y": ya})
    out = df.groupby("bin").agg(n=("y", "size"), mean_predicted=("p", "mean"),
                                observed_rate=("y", "mean"))
    return out.reset_index()


def top_decile_lift(y: ArrayLike, score: ArrayLike, share: float = 0.1) -> float:
    """Outcome rate among the top ``share`` of scores over the overall rate.

    Parameters
    ----------
    y : array-like
        0/1 outcomes.
    score : array-like
        Scores, higher = more likely.
    share : float
        Top share of rows (at least one row); ties at the boundary are broken by position.

    Returns
    -------
    float
        Lift (1 = no better than random); NaN when no row has the outcome.
    """
    ya, sa = _arrays(y, score)
    base = ya.mean()
    if base == 0:
        return float("nan")
    k = max(1, int(np.ceil(share * len(ya))))
    top = np.argsort(-sa, kind="stable")[:k]
    return float(ya[top].mean() / base)


def score_metrics(y: ArrayLike, score: ArrayLike, *, probability: bool) -> dict[str, float]:
    """AUC, top-decile lift and (for probabilities) Brier score of one scorer.

    Parameters
    ----------
    y : array-like
        0/1 outcomes.
    score : array-like
        Scores, higher = more likely to churn.
    probability : bool
        Whether the scores are probabilities (Brier score reported) or a ranking only.

    Returns
    -------
    dict
        ``auc``, ``brier`` (NaN for rankings), ``top_decile_lift``.
    """
    ya, sa = _arrays(y, score)
    if len(np.unique(ya)) < 2:
        raise DataError("the test period has a single class (all churned or none); "
                        "AUC is undefined - choose another cutoff or horizon")
    return {
        "auc": float(roc_auc_score(ya, sa)),
        "brier": float(brier_score_loss(ya, sa)) if probability else float("nan"),
        "top_decile_lift": top_decile_lift(ya, sa),
    }


def baseline_verdict(metrics: pd.DataFrame, *, scorer: str = "model") -> tuple[bool, str]:
    """Whether ``scorer`` ranks churners better (higher AUC) than every baseline row.

    Parameters
    ----------
    metrics : pandas.DataFrame
        Indexed by scorer with an ``auc`` column (see ``ChurnBacktest.metrics``).
    scorer : str
        The row of the model; every other row is a baseline.

    Returns
    -------
    tuple of (bool, str)
        The verdict and a sentence saying it with the figures.

    Examples
    --------
    >>> m = pd.DataFrame({"auc": [0.80, 0.75, 0.70]}, index=["model", "bgnbd", "recency"])
    >>> baseline_verdict(m)[1]
    'the model beats its baselines: AUC 0.800 vs 0.750 for bgnbd, the best baseline'
    """
    if scorer not in metrics.index or len(metrics) < 2:
        raise DataError(f"metrics need a {scorer!r} row and at least one baseline")
    auc = metrics["auc"].astype(float)
    base = auc.drop(index=scorer)
    best = str(base.idxmax())
    ours, theirs = float(auc[scorer]), float(base.max())
    beats = ours > theirs
    verb = "beats its baselines" if beats else "does not beat its best baseline"
    return beats, (f"the {scorer} {verb}: AUC {ours:.3f} vs {theirs:.3f} for {best}, "
                   "the best baseline")
