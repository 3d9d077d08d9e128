"""Sign-ups spread over the window; losers leave faster than winners."""

from __future__ import annotations

from datetime import date

import numpy as np

from traderseg.settings import get_settings
from traderseg.simulate.archetypes import draw_accounts
from traderseg.simulate.market import build_market
from traderseg.simulate.venue import _churn_day


def test_losses_speed_up_churn():
    market = build_market(date(2024, 1, 1), 60, 0, get_settings().market_data_dir)
    n = 2_000
    params = draw_accounts(np.random.default_rng(0), n)
    created_day = np.full(n, -10)
    e = np.random.default_rng(1).exponential(1.0, n)
    acc = np.arange(n)
    t = np.full(n, market.start_us + 3_600_000_000)  # realised on day 0
    flat = _churn_day(market, acc, t, np.zeros(n), params, created_day, e)
    lose = _churn_day(market, acc, t, -2.0 * params.capital, params, created_day, e)
    win = _churn_day(market, acc, t, 2.0 * params.capital, params, created_day, e)
    assert (lose <= flat).all() and (flat <= win).all()
    assert (lose < flat).mean() > 0.2
    assert (lose < market.days).mean() > (win < market.days).mean() + 0.1
    late = _churn_day(market, acc, t, np.zeros(n), params, np.full(n, 5), e)
    assert (late > 5).all()  # nobody leaves before the day after signing up


def test_signups_and_churn_in_truth(venue):
    _, con = venue
    inside, before, churned = con.execute(
        """
        select count(*) filter (where created_at >= '2024-01-01'),
               count(*) filter (where created_at < '2024-01-01'),
               count(churned_at)
        from truth
        """
    ).fetchone()
    assert inside > 100 and before > 200 and churned > 10
    leavers = dict(
        con.execute(
            "select archetype, avg((churned_at is not null)::int) from truth group by 1"
        ).fetchall()
    )
    assert leavers["retail_leveraged_perp"] > leavers["hf_perp_maker"]
    assert leavers["retail_leveraged_perp"] > leavers["whale"]
