import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from traderseg.errors import ConfigError, DataError, NotFittedError, SchemaError
from traderseg.segment.estimator import TraderSegmenter
from traderseg.segment.selection import choose_k
from traderseg.segment.synthetic import synthetic_features

from .conftest import FAST


def test_auto_k_recovers_synthetic_behaviours(frame, fitted):
    X, y = frame
    # 9 behaviours of 200 accounts each; at this size a split of one behaviour (retail
    # traders with and without liquidations) is as defensible as 9
    assert 8 <= fitted.n_segments_ <= 10
    assert adjusted_rand_score(y, fitted.labels_) > 0.9
    np.testing.assert_array_equal(fitted.predict(X), fitted.labels_)
    # labels ordered by size, largest first
    sizes = np.bincount(fitted.labels_)
    assert (np.diff(sizes) <= 0).all()


def test_selection_evidence_is_kept_and_rule_is_reproducible(fitted):
    table = fitted.selection_
    assert list(table["k"]) == list(range(6, 12))
    assert table["silhouette"].between(-1, 1).all()
    assert table["stability"].between(-1, 1).all()
    assert table["bic"].notna().all()
    assert int(table.loc[table["chosen"], "k"].iloc[0]) == fitted.n_segments_
    k, _ = choose_k(table[["k", "silhouette", "bic", "stability"]])
    assert k == fitted.n_segments_


def test_predict_proba_and_transform(frame, fitted):
    X, _ = frame
    p = fitted.predict_proba(X.iloc[:100])
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    d = fitted.transform(X.iloc[:100])
    np.testing.assert_array_equal(p.argmax(axis=1), d.argmin(axis=1))
    np.testing.assert_array_equal(d.argmin(axis=1), fitted.predict(X.iloc[:100]))


@pytest.mark.parametrize("method", ["kmeans", "gmm", "hdbscan"])
def test_predict_with_proba_is_predict_and_predict_proba(method):
    X, _ = synthetic_features(600, behaviours=["whale", "spot_holder", "hf_perp_maker"],
                              windows=("all",), random_state=4)
    kw = {"min_cluster_size": 30} if method == "hdbscan" else {}
    seg = TraderSegmenter("auto" if method == "hdbscan" else 3, method=method, random_state=0,
                          **kw).fit(X)
    labels, proba = seg.predict_with_proba(X.iloc[:150])
    np.testing.assert_array_equal(labels, seg.predict(X.iloc[:150]))
    np.testing.assert_array_equal(proba, seg.predict_proba(X.iloc[:150]))


def test_gmm_soft_membership():
    X, y = synthetic_features(900, behaviours=["whale", "spot_holder", "hedger", "hf_perp_maker"],
                              windows=("all",), random_state=2)
    seg = TraderSegmenter(4, method="gmm", random_state=0).fit(X)
    p = seg.predict_proba(X)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    np.testing.assert_array_equal(p.argmax(axis=1), seg.labels_)
    assert adjusted_rand_score(y, seg.labels_) > 0.9


def test_hdbscan_outliers_are_their_own_segment():
    X, y = synthetic_features(1200, behaviours=["whale", "spot_holder", "hf_perp_maker"],
                              windows=("all",), random_state=3)
    far = X.iloc[:3].copy()
    far.index = ["odd_1", "odd_2", "odd_3"]
    far["notional_median__all"] = 1e12
    far["fill_count__all"] = 1e7
    far["fees_usd__all"] = -1e9
    Xa = pd.concat([X, far])
    seg = TraderSegmenter(method="hdbscan", min_cluster_size=30).fit(Xa)
    assert seg.n_segments_ >= 2
    assert (seg.labels_[-3:] == -1).all()
    assert seg.cluster_centers_.shape[0] == seg.n_segments_
    inside = seg.labels_[:-3] >= 0
    table = pd.crosstab(seg.labels_[:-3][inside], y[inside].to_numpy())
    assert (table.max(axis=1) / table.sum(axis=1)).min() > 0.95  # each dense segment is pure
    np.testing.assert_array_equal(seg.predict(Xa), seg.labels_)


def test_bad_inputs_raise_clear_errors(frame, fitted):
    X, _ = frame
    with pytest.raises(SchemaError, match="missing columns"):
        fitted.predict(X.drop(columns=["fill_count__all"]))
    with pytest.raises(DataError, match="1 sample"):
        TraderSegmenter(3).fit(X.iloc[:1])
    with pytest.raises(DataError, match="more than the 5 accounts"):
        TraderSegmenter(8).fit(X.iloc[:5])
    with pytest.raises(ConfigError, match="method"):
        TraderSegmenter(method="dbscan").fit(X)
    with pytest.raises(NotFittedError):
        TraderSegmenter().predict(X)
    Xn = X.iloc[:50].copy()
    Xn.iloc[2, Xn.columns.get_loc("maker_share__all")] = np.nan
    with pytest.raises(DataError, match="'maker_share__all' has 1 NaN"):
        fitted.predict(Xn)


def test_deterministic_with_seed(frame):
    X = frame[0].iloc[:500]
    small = dict(FAST, k_range=(3, 5))
    a = TraderSegmenter(random_state=5, **small).fit(X)
    b = TraderSegmenter(random_state=5, **small).fit(X)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    assert a.selection_.equals(b.selection_)
