"""Lorenz curve and Gini, by hand."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from traderseg.analysis.concentration import gini, lorenz_curve
from traderseg.errors import DataError


def test_gini_by_hand():
    # ascending 0, 0, 1, 3: 2 * (3*1 + 4*3) / (4 * 4) - 5/4 = 30/16 - 20/16
    assert gini([3, 0, 1, 0]) == pytest.approx(0.625)
    assert gini([5, 5, 5]) == pytest.approx(0.0)
    assert gini([0, 0, 0, 7]) == pytest.approx(0.75)  # (n - 1) / n


def test_negative_amounts_count_as_zero():
    assert gini([-4, 0, 1, 3]) == pytest.approx(gini([0, 0, 1, 3]))
    assert math.isnan(gini([-1.0, 0.0]))  # nothing positive: undefined


def test_lorenz_by_hand_and_its_point_cap():
    c = lorenz_curve([3, 0, 1, 0])
    assert c["population_share"].tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert c["amount_share"].tolist() == [0.0, 0.0, 0.0, 0.25, 1.0]
    # n + 1 = 5 points at a cap of 5: exact; at a cap of 4: resampled
    assert len(lorenz_curve([3, 0, 1, 0], points=5)) == 5
    small = lorenz_curve([3, 0, 1, 0], points=4)
    assert len(small) == 4 and small["amount_share"].iloc[-1] == 1.0


def test_bad_amounts_are_refused():
    with pytest.raises(DataError, match="at least one account"):
        gini([])
    with pytest.raises(DataError, match="missing or infinite"):
        lorenz_curve([1.0, float("nan")])
    with pytest.raises(DataError, match="at least 2 points"):
        lorenz_curve([1.0], points=1)


@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=300),
       st.integers(2, 50))
def test_lorenz_is_a_convex_path_from_origin_to_one(values, points):
    c = lorenz_curve(values, points=points)
    if not any(v > 0 for v in values):
        return
    y = c["amount_share"].to_numpy()
    assert len(c) <= max(points, 2) and y[0] == 0.0 and y[-1] == 1.0
    assert (np.diff(y) >= -1e-12).all()
    assert (y <= c["population_share"].to_numpy() + 1e-9).all()  # below the diagonal
    g = gini(values)
    assert -1e-9 <= g <= 1.0
