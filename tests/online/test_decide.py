"""Hysteresis of segment assignment: hand-computed steps, boundaries and properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from traderseg.errors import ConfigError
from traderseg.online.decide import NO_SEGMENT, Hysteresis, step_assignment

DAY = 86_400_000_000


def step(h, cur, cand, since, prop, lead, at):
    out = step_assignment(h, np.array([cur]), np.array([cand]), np.array([since]),
                          np.array([prop]), np.array([lead], dtype=float), at)
    return tuple(int(x[0]) for x in out)


def test_a_new_account_takes_the_proposal():
    assert step(Hysteresis(0.1, 1.0), NO_SEGMENT, NO_SEGMENT, 0, 3, 0.0, 5) == (3, NO_SEGMENT, 0)


def test_a_lead_below_the_margin_keeps_the_segment_and_starts_nothing():
    assert step(Hysteresis(0.25, 1.0), 1, NO_SEGMENT, 0, 2, 0.2499, DAY) == (1, NO_SEGMENT, 0)


def test_a_lead_of_exactly_the_margin_starts_the_dwell():
    # margin 0.25 is a power of two: 0.25 >= 0.25 holds exactly
    assert step(Hysteresis(0.25, 1.0), 1, NO_SEGMENT, 0, 2, 0.25, DAY) == (1, 2, DAY)


def test_the_switch_happens_at_exactly_the_dwell_and_not_before():
    h = Hysteresis(0.1, 1.0)
    assert step(h, 1, 2, DAY, 2, 0.3, 2 * DAY - 1) == (1, 2, DAY)
    assert step(h, 1, 2, DAY, 2, 0.3, 2 * DAY) == (2, NO_SEGMENT, 0)


def test_a_lapsed_lead_starts_over():
    h = Hysteresis(0.1, 1.0)
    # the lead lapses (below margin): candidate forgotten
    assert step(h, 1, 2, DAY, 2, 0.05, 1.5 * DAY) == (1, NO_SEGMENT, 0)
    # another segment takes the lead: its dwell starts now
    assert step(h, 1, 2, DAY, 3, 0.3, 1.5 * DAY) == (1, 3, int(1.5 * DAY))


def test_back_to_the_current_segment_clears_the_candidate():
    assert step(Hysteresis(0.1, 1.0), 1, 2, DAY, 1, 0.0, 2 * DAY) == (1, NO_SEGMENT, 0)


def test_zero_dwell_switches_at_the_first_lead():
    assert step(Hysteresis(0.1, 0.0), 1, NO_SEGMENT, 0, 2, 0.1, DAY) == (2, NO_SEGMENT, 0)


@pytest.mark.parametrize("margin,dwell", [(-0.1, 1.0), (1.5, 1.0), (0.1, -1.0)])
def test_bad_parameters_are_refused(margin, dwell):
    with pytest.raises(ConfigError):
        Hysteresis(margin, dwell)


@given(st.lists(st.tuples(st.integers(0, 4), st.floats(0, 1)), min_size=1, max_size=30))
def test_without_hysteresis_the_assignment_is_the_proposal(evals):
    h = Hysteresis(0.0, 0.0)
    cur, cand, since = NO_SEGMENT, NO_SEGMENT, 0
    for k, (prop, lead) in enumerate(evals):
        cur, cand, since = step(h, cur, cand, since, prop, lead, k * DAY)
        assert cur == prop


@given(st.lists(st.tuples(st.integers(0, 4), st.floats(0, 1)), min_size=1, max_size=40),
       st.floats(0.0, 0.5), st.floats(0.0, 3.0))
def test_hysteresis_never_changes_more_often_than_the_model(evals, margin, dwell):
    h = Hysteresis(margin, dwell)
    cur, cand, since = NO_SEGMENT, NO_SEGMENT, 0
    changes = raw_changes = 0
    prev_prop = None
    for k, (prop, lead) in enumerate(evals):
        before = cur
        cur, cand, since = step(h, cur, cand, since, prop, lead, k * DAY // 2)
        changes += before not in (NO_SEGMENT, cur)
        raw_changes += prev_prop is not None and prev_prop != prop
        prev_prop = prop
        # a change only ever goes to the model's proposal
        assert before in (NO_SEGMENT, cur) or cur == prop
    assert changes <= raw_changes
