"""Stable segment ids across refits, and migration between assignments.

A refit labels its segments by size, so label 3 today need not be label 3 last month.
:func:`match_segments` maps the new model's segments onto the previous model's ids:

1. the accounts ``X`` are put through the *previous* model's preprocessing and grouped
   by their *new* segment; each group's mean is the new segment's centre in the previous
   space, comparable with the previous centres;
2. the distance of each new centre to each previous centre is divided by that previous
   segment's radius, ``relative_threshold`` times the distance to its nearest other
   previous centre (so "close" is judged against how far apart the old segments were);
3. optionally, with the previous assignments of the same accounts, the Jaccard overlap of
   members is subtracted from that cost;
4. the Hungarian algorithm finds the cheapest one-to-one assignment; a pair is accepted
   when its normalised distance is at most 1 or the overlap is at least ``min_overlap``.

New segments left unmatched are genuinely new behaviour and get fresh ids (never
reusing one); previous ids left unmatched are gone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from traderseg.errors import DataError
from traderseg.segment.estimator import TraderSegmenter, _check_fitted

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IdentityMatch:
    """Result of matching a new model's segments to a previous model's ids.

    Attributes
    ----------
    ids : ndarray of int
        Stable id of each new label.
    matched : dict
        New label -> previous id, for the accepted pairs.
    new_ids : list of int
        Ids created for unmatched new segments.
    gone_ids : list of int
        Previous ids with no successor.
    cost : pandas.DataFrame
        Normalised distance (rows: new labels, columns: previous ids).
    """

    ids: np.ndarray
    matched: dict[int, int]
    new_ids: list[int]
    gone_ids: list[int]
    cost: pd.DataFrame


def match_segments(
    previous: TraderSegmenter,
    current: TraderSegmenter,
    X: pd.DataFrame,
    *,
    relative_threshold: float = 0.5,
    previous_assignments: pd.Series | None = None,
    min_overlap: float = 0.5,
) -> IdentityMatch:
    """Match ``current``'s segments to ``previous``'s stable ids.

    Parameters
    ----------
    previous, current : TraderSegmenter
        Fitted models; ``X`` must have the columns both were fitted on.
    X : pandas.DataFrame
        Accounts to compare on (typically ``current``'s training frame).
    relative_threshold : float
        Radius of a previous segment as a fraction of the distance to its nearest other
        previous centre.
    previous_assignments : pandas.Series, optional
        Previous stable id per account (index ``account_id``), to use overlap too.
    min_overlap : float
        Jaccard overlap that accepts a pair even beyond the distance threshold.

    Returns
    -------
    IdentityMatch
        The mapping; apply it with :func:`apply_identity`.
    """
    _check_fitted(previous)
    _check_fitted(current)
    if len(X) == 0:
        raise DataError("cannot match segments on an empty feature frame")
    Z_old = previous.preprocessor_.transform(X)
    new_labels = current.predict(X)
    k_new = current.n_segments_
    old_ids = np.asarray(previous.segment_ids_)
    old_c = previous.cluster_centers_
    new_c = np.full((k_new, old_c.shape[1]), np.nan)
    for j in range(k_new):
        rows = new_labels == j
        if rows.any():
            new_c[j] = Z_old[rows].mean(axis=0)
    dist = cdist(np.nan_to_num(new_c, nan=np.inf), old_c)
    dist[np.isnan(new_c).any(axis=1)] = np.inf
    if old_c.shape[0] > 1:
        between = cdist(old_c, old_c)
        np.fill_diagonal(between, np.inf)
        radius = relative_threshold * between.min(axis=0)
    else:
        radius = np.full(1, np.inf)
    norm = dist / np.maximum(radius, 1e-12)[None, :]
    overlap = np.zeros_like(norm)
    if previous_assignments is not None:
        overlap = _jaccard(new_labels, X.index, previous_assignments, k_new, old_ids)
    cost = np.where(np.isfinite(norm), norm, 1e6) - overlap
    rows, cols = linear_sum_assignment(cost)
    matched: dict[int, int] = {}
    for r, c in zip(rows, cols, strict=True):
        if norm[r, c] <= 1.0 or overlap[r, c] >= min_overlap:
            matched[int(r)] = int(old_ids[c])
    next_id = max(int(old_ids.max()) + 1, int(getattr(previous, "next_segment_id_", 0)))
    ids = np.empty(k_new, dtype=np.int64)
    new_ids = []
    for j in range(k_new):
        if j in matched:
            ids[j] = matched[j]
        else:
            ids[j] = next_id
            new_ids.append(next_id)
            next_id += 1
    gone = sorted(int(i) for i in set(old_ids.tolist()) - set(matched.values()))
    logger.info("matched %d segments, %d new, %d gone", len(matched), len(new_ids), len(gone))
    return IdentityMatch(
        ids=ids, matched=matched, new_ids=new_ids, gone_ids=gone,
        cost=pd.DataFrame(norm, index=pd.Index(range(k_new), name="new_label"),
                          columns=pd.Index(old_ids, name="previous_id")),
    )


def _jaccard(
    new_labels: np.ndarray, index: pd.Index, prev: pd.Series, k_new: int, old_ids: np.ndarray
) -> np.ndarray:
    shared = index.intersection(prev.index)
    if shared.empty:
        return np.zeros((k_new, old_ids.size))
    pos = index.get_indexer(shared)
    a = new_labels[pos]
    b = prev.loc[shared].to_numpy()
    out = np.zeros((k_new, old_ids.size))
    for i in range(k_new):
        in_a = a == i
        for j, oid in enumerate(old_ids):
            in_b = b == oid
            union = (in_a | in_b).sum()
            out[i, j] = (in_a & in_b).sum() / union if union else 0.0
    return out


def apply_identity(current: TraderSegmenter, match: IdentityMatch) -> TraderSegmenter:
    """Give ``current`` the stable ids of ``match`` (sets ``segment_ids_``).

    Parameters
    ----------
    current : TraderSegmenter
        The model that was matched.
    match : IdentityMatch
        Output of :func:`match_segments`.

    Returns
    -------
    TraderSegmenter
        ``current``, updated in place.
    """
    if match.ids.shape[0] != current.n_segments_:
        raise DataError(
            f"match has {match.ids.shape[0]} ids for a model with {current.n_segments_} segments"
        )
    current.segment_ids_ = match.ids.copy()
    current.next_segment_id_ = int(max(match.ids.max() + 1, *(match.gone_ids or [0])))
    return current


def carry_names(
    match: IdentityMatch, previous_names: dict[int, str], current_names: dict[int, str]
) -> dict[int, str]:
    """Names by stable id: matched ids keep their previous name, new ids get the new one.

    Parameters
    ----------
    match : IdentityMatch
        Output of :func:`match_segments`.
    previous_names : dict
        Previous stable id -> name.
    current_names : dict
        New label -> name (from :func:`traderseg.segment.naming.name_segments`).

    Returns
    -------
    dict
        Stable id -> name, all distinct.
    """
    out: dict[int, str] = {}
    for label, sid in enumerate(match.ids):
        if label in match.matched and int(sid) in previous_names:
            out[int(sid)] = previous_names[int(sid)]
    for label, sid in enumerate(match.ids):
        if int(sid) in out:
            continue
        name = current_names.get(label, f"segment {sid}")
        if name in out.values():
            name = f"{name} (new behaviour)"
        out[int(sid)] = name
    return out


@dataclass(frozen=True)
class MigrationMatrix:
    """Movement of accounts between two assignments.

    Attributes
    ----------
    counts : pandas.DataFrame
        Rows: previous segment, plus ``"new"`` (accounts only in the later assignment).
        Columns: later segment, plus ``"gone"`` (accounts only in the earlier one).
    shares : pandas.DataFrame
        ``counts`` divided by row totals (each row sums to 1 where it has accounts).
    """

    counts: pd.DataFrame
    shares: pd.DataFrame


def migration_matrix(old: pd.Series, new: pd.Series) -> MigrationMatrix:
    """Cross-tabulate two assignments of accounts to segments.

    Parameters
    ----------
    old, new : pandas.Series
        Segment per account (index ``account_id``), earlier and later.

    Returns
    -------
    MigrationMatrix
        Counts and row shares, with ``"new"`` / ``"gone"`` for entering and leaving.

    Examples
    --------
    >>> old = pd.Series([0, 0, 1], index=["a", "b", "c"])
    >>> new = pd.Series([0, 1, 1], index=["a", "b", "d"])
    >>> counts = migration_matrix(old, new).counts
    >>> int(counts.loc[0, 1]), int(counts.loc[1, "gone"]), int(counts.loc["new", 1])
    (1, 1, 1)
    """
    for name, s in (("old", old), ("new", new)):
        if s.index.has_duplicates:
            dup = s.index[s.index.duplicated()][:5].tolist()
            raise DataError(f"{name} assignment lists accounts more than once: {dup}")
        if s.isna().any():
            n_missing = int(s.isna().sum())
            raise DataError(f"{name} assignment has {n_missing} accounts without a segment")
    both = pd.concat([old.rename("old"), new.rename("new")], axis=1, join="outer")
    row_keys: list[Any] = sorted(pd.unique(old)) + ["new"]
    col_keys: list[Any] = sorted(pd.unique(new)) + ["gone"]
    r = both["old"].astype(object).where(both["old"].notna(), "new")
    c = both["new"].astype(object).where(both["new"].notna(), "gone")
    counts = pd.crosstab(r, c).reindex(index=row_keys, columns=col_keys, fill_value=0)
    counts.index.name, counts.columns.name = "from", "to"
    totals = counts.sum(axis=1).replace(0, np.nan)
    shares = counts.div(totals, axis=0).fillna(0.0)
    return MigrationMatrix(counts=counts.astype(np.int64), shares=shares)
