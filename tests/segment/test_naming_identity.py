import numpy as np
import pandas as pd
import pytest

from traderseg.errors import DataError
from traderseg.segment.estimator import TraderSegmenter
from traderseg.segment.identity import (
    apply_identity,
    carry_names,
    match_segments,
    migration_matrix,
)
from traderseg.segment.naming import name_segments
from traderseg.segment.synthetic import synthetic_features

EXPECTED = {
    "hf_perp_maker": "high-frequency perp makers",
    "retail_leveraged_perp": "high-leverage perp takers",
    "perp_scalper": "active perp scalpers",
    "lottery_option_buyer": "short-dated OTM call buyers",
    "option_premium_seller": "option premium sellers",
    "volatility_trader": "straddle / volatility traders",
    "hedger": "protective put hedgers",
    "whale": "large-block basis traders",
    "spot_holder": "occasional spot holders",
}


@pytest.fixture(scope="module")
def nine():
    X, y = synthetic_features(1800, windows=("30d", "all"), random_state=4)
    return X, y, TraderSegmenter(9, random_state=0).fit(X)


def test_names_are_sensible_unique_and_deterministic(nine):
    X, y, seg = nine
    profiles = name_segments(X, seg.labels_)
    names = [p.name for p in profiles]
    assert len(set(names)) == len(names)
    majority = pd.crosstab(seg.labels_, y.to_numpy()).idxmax(axis=1)
    for p in profiles:
        assert p.name.startswith(EXPECTED[majority[p.label]])
    assert [p.name for p in name_segments(X, seg.labels_)] == names
    assert [p.description for p in name_segments(X, seg.labels_)] == [
        p.description for p in profiles
    ]
    # revenue share and size from an independent computation
    fees = X["fees_usd__all"]
    for p in profiles:
        rows = seg.labels_ == p.label
        assert p.size == rows.sum()
        assert p.revenue_share == pytest.approx(fees[rows].sum() / fees.sum())
    assert sum(p.revenue_share for p in profiles) == pytest.approx(1.0)


def test_split_behaviour_gets_qualified_distinct_names(nine):
    X, y, seg = nine
    labels = seg.labels_.copy()
    # split the whales in two by trade size: both halves are whales
    whale_label = pd.crosstab(labels, y.to_numpy())["whale"].idxmax()
    rows = np.flatnonzero(labels == whale_label)
    big = X["notional_median__all"].to_numpy()[rows] > np.median(X["notional_median__all"].to_numpy()[rows])
    labels[rows[big]] = labels.max() + 1
    names = [p.name for p in name_segments(X, labels)]
    assert len(set(names)) == len(names)
    whales = [n for n in names if n.startswith("large-block")]
    assert len(whales) == 2 and all("," in n for n in whales)
    assert not any(n.endswith(")") and n[-2].isdigit() for n in names)


def test_ids_survive_bootstrap_refit(nine):
    X, _, old = nine
    old_ids = old.segment_ids(old.labels_)
    rng = np.random.default_rng(1)
    Xb = X.iloc[rng.integers(0, len(X), len(X))]
    Xb = Xb[~Xb.index.duplicated()]
    new = TraderSegmenter(9, random_state=7).fit(Xb)
    match = match_segments(old, new, Xb)
    apply_identity(new, match)
    assert match.new_ids == [] and match.gone_ids == []
    assert (new.segment_ids(new.predict(X)) == old_ids).mean() >= 0.9


def test_ids_survive_shifted_period(nine):
    X, _, old = nine
    X2, _ = synthetic_features(1800, windows=("30d", "all"), random_state=9, shift=0.3)
    new = TraderSegmenter(9, random_state=3).fit(X2)
    apply_identity(new, match_segments(old, new, X2))
    # the same accounts, judged by each model, keep their id
    assert (new.segment_ids(new.predict(X)) == old.segment_ids(old.predict(X))).mean() >= 0.9


def test_genuinely_new_behaviour_gets_a_new_id(nine):
    X, y, _ = nine
    keep = (y != "volatility_trader").to_numpy()
    old = TraderSegmenter(8, random_state=0).fit(X[keep])
    new = TraderSegmenter(9, random_state=0).fit(X)
    match = match_segments(old, new, X)
    assert len(match.new_ids) == 1 and match.new_ids[0] == 8
    new_label = int(np.flatnonzero(match.ids == 8)[0])
    members = y.to_numpy()[new.labels_ == new_label]
    assert (members == "volatility_trader").mean() > 0.9
    old_names = {i: f"old name {i}" for i in range(8)}
    names = carry_names(match, old_names, {new_label: "old name 0"})
    assert names[8] == "old name 0 (new behaviour)"
    assert all(names[i] == old_names[i] for i in range(8))


def test_migration_matrix_counts_against_hand_count():
    old = pd.Series([0, 0, 1, 1, 2], index=list("abcde"))
    new = pd.Series([0, 1, 1, 5, 5], index=list("abcfg"))
    mm = migration_matrix(old, new)
    assert mm.counts.loc[0, 0] == 1 and mm.counts.loc[0, 1] == 1
    assert mm.counts.loc[1, 1] == 1 and mm.counts.loc[1, "gone"] == 1
    assert mm.counts.loc[2, "gone"] == 1
    assert mm.counts.loc["new", 5] == 2
    assert mm.counts.to_numpy().sum() == 7  # 3 stayed + 2 gone + 2 new
    np.testing.assert_allclose(mm.shares.loc[0].to_numpy().sum(), 1.0)
    assert mm.shares.loc[1, "gone"] == 0.5
    with pytest.raises(DataError, match="more than once"):
        migration_matrix(pd.Series([0, 1], index=["a", "a"]), new)
