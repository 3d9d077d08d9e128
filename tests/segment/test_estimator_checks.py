"""scikit-learn conformance of the segmenter and the preprocessor on plain arrays."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from traderseg.segment.estimator import TraderSegmenter
from traderseg.segment.preprocess import FeaturePreprocessor

_SMALL = dict(search_sample=500, silhouette_sample=200, n_bootstrap=3, k_range=(2, 5))


@parametrize_with_checks(
    [
        TraderSegmenter(random_state=0, **_SMALL),
        TraderSegmenter(method="gmm", random_state=0, **_SMALL),
        TraderSegmenter(3, random_state=0),
        FeaturePreprocessor(),
    ]
)
def test_sklearn_conformance(estimator, check):
    check(estimator)
