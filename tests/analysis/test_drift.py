import numpy as np
import pandas as pd
import pytest

from traderseg.analysis.drift import (
    EPSILON,
    categorical_psi,
    drift_level,
    feature_drift,
    numeric_psi,
)
from traderseg.errors import DataError, SchemaError


def _psi(r, c):
    r = np.maximum(np.asarray(r, float), EPSILON)
    c = np.maximum(np.asarray(c, float), EPSILON)
    return float(np.sum((c - r) * np.log(c / r)))


def test_psi_of_a_shift_between_two_values_worked_by_hand():
    ref = [0.0] * 50 + [1.0] * 50
    cur = [0.0] * 80 + [1.0] * 20
    # deciles of the reference: 0 (10%..40%), 0.5 (50%), 1 (60%..90%): bins <=0, (0,0.5],
    # (0.5,1], >1 and NaN; reference 50/0/50/0/0, current 80/0/20/0/0
    expected = 0.3 * np.log(0.8 / 0.5) + (-0.3) * np.log(0.2 / 0.5)
    assert numeric_psi(ref, cur) == pytest.approx(expected)
    assert expected == pytest.approx(0.4159, abs=1e-4)


def test_identical_samples_have_zero_psi():
    x = np.random.default_rng(0).lognormal(size=500)
    assert numeric_psi(x, x) == pytest.approx(0.0)
    assert numeric_psi(x, x[::-1].copy()) == pytest.approx(0.0)


def test_a_value_exactly_at_an_edge_falls_in_the_lower_bin():
    # bins=2: one edge, the reference median 3.0; bins (-inf, 3], (3, inf), NaN
    got = numeric_psi([1.0, 2.0, 3.0, 4.0, 5.0], [3.0, 3.0, 3.0, 1.0], bins=2)
    assert got == pytest.approx(_psi([3 / 5, 2 / 5, 0], [1, 0, 0]))
    # were 3.0 put in the upper bin: reference 2/5, 3/5 and current 1/4, 3/4
    assert got != pytest.approx(_psi([2 / 5, 3 / 5, 0], [1 / 4, 3 / 4, 0]))


def test_last_bit_noise_does_not_move_a_value_across_an_edge():
    ref = [0.25] * 50 + [0.5] * 50
    noisy = np.nextafter(np.array([0.25] * 50 + [0.5] * 50), 1.0)  # one ulp above
    assert numeric_psi(ref, noisy) == pytest.approx(0.0)
    assert numeric_psi(noisy, ref) == pytest.approx(0.0)


def test_missing_values_are_a_bin_of_their_own():
    ref = [1.0, 2.0, 3.0, 4.0]
    cur = [1.0, 2.0, np.nan, np.nan]
    # bins=2: edge 2.5; reference 2/2/0, current 2/0/2 (NaN bin)
    assert numeric_psi(ref, cur, bins=2) == pytest.approx(_psi([0.5, 0.5, 0], [0.5, 0, 0.5]))


def test_categorical_psi_worked_by_hand():
    got = categorical_psi(["a", "a", "b", "b"], ["a", "a", "a", "b", "c", "c", "c", "c"])
    # reference a .5 b .5 c 0; current a 3/8 b 1/8 c 1/2
    assert got == pytest.approx(_psi([0.5, 0.5, 0], [3 / 8, 1 / 8, 0.5]))


@pytest.mark.parametrize("psi,level", [
    (0.0, "stable"), (0.0999, "stable"), (0.1, "moderate"), (0.2499, "moderate"),
    (0.25, "significant"), (3.0, "significant"),
])
def test_levels_at_their_thresholds(psi, level):
    assert drift_level(psi) == level


def test_feature_drift_sorts_by_psi_and_reports_medians_and_missing():
    ref = pd.DataFrame({"a": np.arange(100.0), "b": np.arange(100.0), "c": ["x"] * 100})
    cur = pd.DataFrame({"a": np.arange(100.0), "b": np.arange(100.0) + 50,
                        "c": ["x"] * 50 + ["y"] * 50})
    cur.loc[:9, "a"] = np.nan
    out = feature_drift(ref, cur)
    assert list(out["column"]) == ["c", "b", "a"]
    assert out.set_index("column").loc["a", "current_missing"] == pytest.approx(0.1)
    assert out.set_index("column").loc["b", "current_median"] == pytest.approx(99.5)
    assert (out["level"] == "significant").sum() >= 2


def test_feature_drift_errors_name_the_problem():
    ref = pd.DataFrame({"a": [1.0, 2.0]})
    with pytest.raises(SchemaError, match="current features lack"):
        feature_drift(ref, pd.DataFrame({"b": [1.0]}), ["a"])
    with pytest.raises(DataError, match="current feature frame has no rows"):
        feature_drift(ref, ref.iloc[:0], ["a"])
    with pytest.raises(SchemaError, match="bins"):
        numeric_psi([1.0], [1.0], bins=1)
