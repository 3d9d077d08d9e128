import numpy as np
import pandas as pd
import pytest

from traderseg.errors import SchemaError
from traderseg.online.decide import NO_SEGMENT, Hysteresis
from traderseg.segment.estimator import TraderSegmenter
from traderseg.segment.tracking import recent_features, track_assignments


def test_recent_features_reads_the_window_under_lifetime_names():
    f = pd.DataFrame({"fill_count__14d": [3.0, 0.0], "maker_share__14d": [0.5, np.nan],
                      "fill_count__all": [40.0, 9.0], "maker_share__all": [0.1, 0.2]},
                     index=pd.Index(["a", "b"], name="account_id"))
    r = recent_features(f)
    assert list(r.index) == ["a"]  # b did not trade in the window
    assert r.loc["a", "fill_count__all"] == 3.0
    assert r.loc["a", "maker_share__all"] == 0.5
    assert list(r.columns) == list(f.columns)
    assert r.loc["a", "fill_count__14d"] == 3.0
    with pytest.raises(SchemaError, match="fill_count__7d"):
        recent_features(f, "7d")


@pytest.fixture(scope="module")
def two_styles():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(np.vstack([rng.normal(0, 0.3, (100, 2)), rng.normal(5, 0.3, (100, 2))]),
                     columns=["x0", "x1"])
    m = TraderSegmenter(2, random_state=0).fit(X)
    low = int(m.segment_ids(m.predict(pd.DataFrame([[0.0, 0.0]], columns=["x0", "x1"])))[0])
    high = int(m.segment_ids(m.predict(pd.DataFrame([[5.0, 5.0]], columns=["x0", "x1"])))[0])
    assert low != high
    return m, low, high


def _frames(points):
    day = pd.Timestamp("2024-01-01", tz="UTC")
    return {day + pd.Timedelta(days=i): pd.DataFrame(
        [p for p in pts.values()], columns=["x0", "x1"],
        index=pd.Index(list(pts), name="account_id")) for i, pts in enumerate(points)}


def test_a_move_is_held_until_the_lead_lasts_the_dwell(two_styles):
    m, low, high = two_styles
    # "mover" changes style on day 1; "stayer" stays; "late" first trades on day 2
    frames = _frames([
        {"mover": (0, 0), "stayer": (0, 0)},
        {"mover": (5, 5), "stayer": (0, 0)},
        {"mover": (5, 5), "stayer": (0, 0), "late": (5, 5)},
        {"mover": (5, 5)},
    ])
    held, proposed = track_assignments(m, frames, Hysteresis(margin=0.1, dwell_days=1.0))
    assert list(proposed.loc["mover"]) == [low, high, high, high]
    # the lead begins on day 1 and has lasted exactly one day on day 2: moved then
    assert list(held.loc["mover"]) == [low, low, high, high]
    assert list(held.loc["stayer"]) == [low, low, low, low]  # absent on day 3: kept
    assert proposed.loc["stayer"].iloc[3] == NO_SEGMENT
    assert list(held.loc["late"]) == [NO_SEGMENT, NO_SEGMENT, high, high]
    # a dwell just over one day waits for day 3
    held2, _ = track_assignments(m, frames, Hysteresis(margin=0.1, dwell_days=1.01))
    assert list(held2.loc["mover"]) == [low, low, low, high]
    # without hysteresis the held segment is the proposal
    held0, _ = track_assignments(m, frames, Hysteresis(0, 0))
    assert list(held0.loc["mover"]) == [low, high, high, high]


def test_the_margin_is_inclusive_and_a_lead_below_it_never_moves(two_styles):
    m, low, high = two_styles
    # a point just past the midpoint, found by bisection: the high style leads by ~0.5
    def lead_at(t):
        p = m.predict_proba(pd.DataFrame([(t, t)], columns=["x0", "x1"]))[0]
        return float(p[m.segment_ids(np.arange(2)) == high][0] - p[m.segment_ids(
            np.arange(2)) == low][0])
    lo, hi = 0.0, 5.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if lead_at(mid) < 0.5 else (lo, mid)
    near = (hi, hi)
    lead = lead_at(hi)
    assert 0.4 < lead < 0.6
    frames = _frames([{"a": (0, 0)}, {"a": near}, {"a": near}])
    held, _ = track_assignments(m, frames, Hysteresis(margin=lead + 1e-9, dwell_days=0))
    assert list(held.loc["a"]) == [low, low, low]
    held, _ = track_assignments(m, frames, Hysteresis(margin=lead - 1e-9, dwell_days=0))
    assert list(held.loc["a"]) == [low, high, high]


def test_cutoffs_must_increase(two_styles):
    m, _, _ = two_styles
    frames = _frames([{"a": (0, 0)}, {"a": (0, 0)}])
    with pytest.raises(SchemaError, match="increasing"):
        track_assignments(m, dict(reversed(list(frames.items()))))
