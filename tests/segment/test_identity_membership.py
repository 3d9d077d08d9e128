"""Identity matching when one behaviour is replaced (same k), member overlap, and soft
membership that carries information."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from traderseg.segment.estimator import TraderSegmenter
from traderseg.segment.identity import _jaccard, match_segments
from traderseg.segment.synthetic import BEHAVIOURS, synthetic_features

ALL = sorted(BEHAVIOURS)


@pytest.fixture(scope="module")
def replaced():
    """Eight behaviours before; after, the same k with one behaviour swapped for another."""
    gone, new = "volatility_trader", "hedger"
    before = [b for b in ALL if b != new]
    after = [b for b in ALL if b != gone]
    X_old, y_old = synthetic_features(1600, behaviours=before, random_state=2)
    X_new, y_new = synthetic_features(1600, behaviours=after, random_state=5)
    old = TraderSegmenter(8, random_state=0).fit(X_old)
    cur = TraderSegmenter(8, random_state=0).fit(X_new)
    return old, cur, X_old, y_old, X_new, y_new, gone, new


def _majority(model, X, y):
    labels = model.predict(X)
    return {lab: pd.Series(y.to_numpy()[labels == lab]).mode()[0]
            for lab in range(model.n_segments_)}


def test_same_k_with_one_behaviour_replaced(replaced):
    old, cur, X_old, y_old, X_new, y_new, gone, new = replaced
    match = match_segments(old, cur, X_new)
    old_of = {old.segment_ids_[lab]: b for lab, b in _majority(old, X_old, y_old).items()}
    new_of = _majority(cur, X_new, y_new)
    # the new behaviour is not given the id of the behaviour that left
    assert len(match.new_ids) == 1 and match.new_ids[0] == 8
    new_label = int(np.flatnonzero(match.ids == 8)[0])
    assert new_of[new_label] == new
    gone_id = next(i for i, b in old_of.items() if b == gone)
    assert match.gone_ids == [gone_id]
    # the seven behaviours present both times keep their ids
    for lab, prev_id in match.matched.items():
        assert new_of[lab] == old_of[prev_id]
    assert len(match.matched) == 7


def test_jaccard_overlap_by_hand():
    # new labels of 6 accounts vs their previous ids; 'f' has no previous id
    index = pd.Index(list("abcdef"))
    new_labels = np.array([0, 0, 1, 1, 1, 0])
    prev = pd.Series([10, 10, 10, 11, 11], index=list("abcde"))
    out = _jaccard(new_labels, index, prev, 2, np.array([10, 11]))
    # label 0 on shared {a, b}; id 10 = {a, b, c}: |{a,b}| / |{a,b,c}| = 2/3
    # label 1 = {c, d, e}; id 11 = {d, e}: 2/3; label 1 vs 10: {c} / {a,b,c,d,e} = 1/5
    np.testing.assert_allclose(out, [[2 / 3, 0.0], [1 / 5, 2 / 3]])


def test_overlap_accepts_a_drifted_segment(replaced):
    old, cur, X_old, _, X_new, _, _, _ = replaced
    strict = match_segments(old, cur, X_new, relative_threshold=1e-6)
    assert strict.matched == {}  # no centre is that close: everything would be new
    prev = pd.Series(old.segment_ids(old.predict(X_new)), index=X_new.index)
    backed = match_segments(old, cur, X_new, relative_threshold=1e-6,
                            previous_assignments=prev, min_overlap=0.5)
    assert len(backed.matched) >= 6  # members overlap, so the ids are kept


def test_soft_membership_carries_information(replaced):
    old, _, X_old, _, _, _, _, _ = replaced
    Z = old.preprocessor_.transform(X_old)
    d2 = ((Z[:, None, :] - old.cluster_centers_[None, :, :]) ** 2).sum(axis=2)
    own = d2[np.arange(len(Z)), old.labels_]
    # the temperature is the median squared distance of members to their own centre
    assert old.temperature_ == pytest.approx(float(np.median(own)), rel=1e-9)
    proba = old.predict_proba(X_old)
    top = proba.max(axis=1)
    # a typical member is clearly in its segment: far from uniform (1/k), not all one-hot
    assert np.median(top) > 0.8
    assert (top < 0.99).mean() > 0.02
    # by hand for one account: softmax of -d2 / T
    i = int(np.argsort(top)[len(top) // 2])
    want = np.exp(-(d2[i] - d2[i].min()) / np.median(own))
    np.testing.assert_allclose(proba[i], want / want.sum(), rtol=1e-9)
