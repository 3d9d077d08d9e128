"""Agreement of a segmentation with known archetypes, against two baselines.

:func:`evaluate_segments` reports the adjusted Rand index and normalised mutual
information of the assignments against the truth, each archetype's majority segment and
its purity (share of the archetype's accounts in that segment), and computes in the same
call the same two scores for:

* ``rfm``: recency / frequency / monetary tercile codes (``recency_days__all``,
  ``fill_count__all``, ``fees_usd__all``; up to 27 cells), the segmentation a CRM team
  would build by hand;
* ``raw_kmeans``: k-means at the same k on the raw, unscaled feature values (missing
  option / PnL features set to 0), i.e. without the hint-driven preprocessing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from traderseg.errors import DataError, SchemaError

RFM_COLUMNS = ("recency_days__all", "fill_count__all", "fees_usd__all")


@dataclass(frozen=True)
class Evaluation:
    """Scores of a segmentation and its baselines.

    Attributes
    ----------
    ari, nmi : float
        Scores of the segmentation.
    per_archetype : pandas.DataFrame
        ``archetype, accounts, majority_segment, purity``.
    baselines : pandas.DataFrame
        Rows ``rfm`` and ``raw_kmeans``; columns ``ari, nmi, n_segments``.
    """

    ari: float
    nmi: float
    per_archetype: pd.DataFrame
    baselines: pd.DataFrame

    def summary(self) -> dict[str, Any]:
        """Plain-dict version (for metadata and JSON output)."""
        return {
            "ari": self.ari, "nmi": self.nmi,
            "baselines": self.baselines.to_dict(orient="index"),
            "per_archetype": self.per_archetype.to_dict(orient="records"),
        }


def rfm_codes(features: pd.DataFrame) -> pd.Series:
    """Recency / frequency / monetary tercile code of each account (e.g. ``"R1F3M2"``).

    Terciles are taken on ranks (ties broken by order), ``R3`` = most recent.

    Parameters
    ----------
    features : pandas.DataFrame
        Needs :data:`RFM_COLUMNS`.

    Returns
    -------
    pandas.Series
        Code per account.

    Examples
    --------
    >>> f = pd.DataFrame({"recency_days__all": [1, 50, 200], "fill_count__all": [9, 5, 1],
    ...                   "fees_usd__all": [10.0, 5.0, 1.0]})
    >>> rfm_codes(f).tolist()
    ['R3F3M3', 'R2F2M2', 'R1F1M1']
    """
    missing = [c for c in RFM_COLUMNS if c not in features.columns]
    if missing:
        raise SchemaError(f"RFM baseline needs columns {missing}")
    parts = []
    for letter, col, sign in zip("RFM", RFM_COLUMNS, (-1, 1, 1), strict=True):
        ranks = (sign * features[col].astype(float)).rank(method="first")
        tercile = np.ceil(3 * ranks / len(features)).clip(1, 3).astype(int)
        parts.append(letter + tercile.astype(str))
    return pd.Series(parts[0] + parts[1] + parts[2], index=features.index, name="rfm")


def evaluate_segments(
    assignments: Any,
    truth: pd.Series,
    features: pd.DataFrame,
    *,
    random_state: int | None = 0,
) -> Evaluation:
    """Score a segmentation against true archetypes, with the RFM and raw k-means baselines.

    Parameters
    ----------
    assignments : array-like or pandas.Series
        Segment per account, aligned with ``features`` rows.
    truth : pandas.Series
        True archetype per account (index ``account_id``).
    features : pandas.DataFrame
        The feature frame (for the baselines).
    random_state : int, optional
        Seed of the raw k-means baseline.

    Returns
    -------
    Evaluation
        Scores, per-archetype purity and baselines.
    """
    seg = pd.Series(np.asarray(assignments), index=features.index, name="segment")
    if len(seg) != len(features):
        raise DataError(f"{len(seg)} assignments for {len(features)} accounts")
    missing = features.index.difference(truth.index)
    if len(missing):
        raise DataError(f"{len(missing)} accounts have no truth label (first: {list(missing[:3])})")
    y = truth.loc[features.index].astype(str)
    table = pd.crosstab(y, seg)
    per = pd.DataFrame({
        "archetype": table.index,
        "accounts": table.sum(axis=1).to_numpy(),
        "majority_segment": table.idxmax(axis=1).to_numpy(),
        "purity": (table.max(axis=1) / table.sum(axis=1)).to_numpy(),
    })
    k = int(seg.nunique())
    rfm = rfm_codes(features)
    raw = features.astype(float).fillna(0.0).to_numpy()
    raw_labels = KMeans(n_clusters=k, n_init=3, random_state=random_state).fit_predict(raw)
    base = pd.DataFrame(
        {
            "ari": [adjusted_rand_score(y, rfm), adjusted_rand_score(y, raw_labels)],
            "nmi": [normalized_mutual_info_score(y, rfm),
                    normalized_mutual_info_score(y, raw_labels)],
            "n_segments": [int(rfm.nunique()), k],
        },
        index=pd.Index(["rfm", "raw_kmeans"], name="baseline"),
    )
    return Evaluation(
        ari=float(adjusted_rand_score(y, seg)), nmi=float(normalized_mutual_info_score(y, seg)),
        per_archetype=per, baselines=base,
    )
