import pytest

from traderseg.segment.estimator import TraderSegmenter
from traderseg.segment.synthetic import synthetic_features

FAST = dict(search_sample=1500, silhouette_sample=800, n_bootstrap=3, k_range=(6, 11))


@pytest.fixture(scope="session")
def frame():
    return synthetic_features(1800, windows=("30d", "all"), random_state=11)


@pytest.fixture(scope="session")
def fitted(frame):
    X, _ = frame
    return TraderSegmenter(random_state=0, **FAST).fit(X)
