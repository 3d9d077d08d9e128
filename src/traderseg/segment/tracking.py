"""Following accounts from segment to segment as their style changes.

The segments are built on lifetime features (:func:`~traderseg.segment.preprocess.
segmentation_columns`): an account's habitual style. An account that changes style, a
retail perp trader who turns option seller, takes months to move there, because its
lifetime averages move slowly. Tracking reads a trailing window instead:

* :func:`recent_features`: the features of the trailing :data:`TRACKING_WINDOW` under the
  lifetime names the segmenter reads, for the accounts that traded in it, so a model fitted
  on them (a *tracking model*, with as many segments as the main model) sees the account's
  current style;
* :func:`track_assignments`: assigns every account at each of a series of cutoffs and
  applies the same :class:`~traderseg.online.decide.Hysteresis` as the stream (a change
  only after the new segment's membership leads by ``margin`` for ``dwell_days``), so a
  move is confirmed within days while noise near a boundary does not flap.

Why 14 days: 14 days after a move, less than half of a 30-day window shows the new style.
``bench/segment_quality.py`` measures recall and flap rate for any ``--track-window``
(docs/benchmarks.md has the figures); a shorter window reacts sooner and holds fewer fills
for the accounts that trade rarely.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from traderseg.errors import SchemaError
from traderseg.features.catalog import split_column
from traderseg.online.decide import NO_SEGMENT, Hysteresis, step_assignment
from traderseg.segment.estimator import TraderSegmenter

TRACKING_WINDOW = "14d"
"""Trailing window a tracking model reads."""


def recent_features(features: pd.DataFrame, window: str = TRACKING_WINDOW) -> pd.DataFrame:
    """Return the trailing window's features under the lifetime (``all``) names.

    Parameters
    ----------
    features : pandas.DataFrame
        Catalogue features with ``{feature}__{window}`` columns.
    window : str
        Trailing window to read.

    Returns
    -------
    pandas.DataFrame
        The accounts with a fill in ``window``, every column kept, except that each
        ``{feature}__all`` with a ``{feature}__{window}`` column holds the window's
        value (the lifecycle overlay's recency and tenure included: within the window).

    Raises
    ------
    SchemaError
        When the frame has no ``fill_count__{window}`` column.
    """
    count = f"fill_count__{window}"
    if count not in features.columns:
        raise SchemaError(f"no {count!r} column: compute the features with the {window} window")
    f = features[features[count] > 0].copy()
    for c in list(f.columns):
        stem, w = split_column(str(c))
        if w == window and f"{stem}__all" in f.columns:
            f[f"{stem}__all"] = f[c]
    return f


def track_assignments(
    model: TraderSegmenter,
    frames: Mapping[pd.Timestamp, pd.DataFrame],
    hysteresis: Hysteresis | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Assign accounts at each cutoff, with and without hysteresis.

    Parameters
    ----------
    model : TraderSegmenter
        A tracking model (fitted on :func:`recent_features`).
    frames : mapping of timestamp to DataFrame
        The :func:`recent_features` of each cutoff, in increasing cutoff order.
    hysteresis : Hysteresis, optional
        Margin and dwell (default ``Hysteresis()``).

    Returns
    -------
    held, proposed : pandas.DataFrame
        Accounts by cutoff: the segment id after hysteresis, and the model's first
        choice. An account not in a cutoff's frame keeps its held segment (and has no
        proposal there); before its first frame both are :data:`NO_SEGMENT`.
    """
    h = hysteresis or Hysteresis()
    cuts = list(frames)
    if any(b <= a for a, b in zip(cuts, cuts[1:], strict=False)):
        raise SchemaError("tracking cutoffs must be increasing")
    accounts = pd.Index(sorted(set().union(*(f.index for f in frames.values()))),
                        name="account_id")
    n = len(accounts)
    current = np.full(n, NO_SEGMENT, dtype=np.int64)
    candidate = np.full(n, NO_SEGMENT, dtype=np.int64)
    since = np.zeros(n, dtype=np.int64)
    held = np.full((n, len(cuts)), NO_SEGMENT, dtype=np.int64)
    proposed = np.full((n, len(cuts)), NO_SEGMENT, dtype=np.int64)
    cols = list(model.feature_names_in_)
    ids = model.segment_ids(np.arange(model.n_segments_)).astype(np.int64)
    label_of = {int(s): j for j, s in enumerate(ids)}
    for j, cut in enumerate(cuts):
        f = frames[cut]
        if len(f):
            rows = accounts.get_indexer(f.index)
            proba = model.predict_proba(f[cols])
            lab = proba.argmax(axis=1)
            prop = ids[lab]
            cur_lab = np.array([label_of.get(int(s), -1) for s in current[rows]])
            cur_p = np.where(cur_lab >= 0, proba[np.arange(len(f)), np.maximum(cur_lab, 0)], 0.0)
            lead = proba[np.arange(len(f)), lab] - cur_p
            at_us = int(pd.Timestamp(cut).value // 1000)
            c, d, t = step_assignment(h, current[rows], candidate[rows], since[rows],
                                      prop, lead, at_us)
            current[rows], candidate[rows], since[rows] = c, d, t
            proposed[rows, j] = prop
        held[:, j] = current
    names = pd.Index(cuts, name="as_of")
    return (pd.DataFrame(held, index=accounts, columns=names),
            pd.DataFrame(proposed, index=accounts, columns=names))


__all__ = ["TRACKING_WINDOW", "recent_features", "track_assignments"]
