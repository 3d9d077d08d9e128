"""Difficulty levels: blends, migrations, churn with precursors, and what truth records."""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from traderseg.errors import ConfigError
from traderseg.settings import get_settings
from traderseg.simulate import simulate_venue
from traderseg.simulate.archetypes import ARCHETYPE_NAMES, ARCHETYPES, draw_accounts
from traderseg.simulate.churn import (
    CAUSES,
    FADE_THRESHOLD,
    LOSS_THRESHOLD,
    _trailing,
    precursor_churn,
)
from traderseg.simulate.difficulty import DIFFICULTIES, ChurnSpec, Difficulty, get_difficulty
from traderseg.simulate.market import build_market
from traderseg.simulate.mixing import MIGRATION_MIN_AGE_DAYS, draw_legs, regime_multiplier

from .conftest import open_venue

LEVELS = tuple(DIFFICULTIES)
DAY_US = 86_400_000_000


@pytest.fixture(scope="module", params=LEVELS)
def level_venue(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"venue-{request.param}")
    summary = simulate_venue(out, accounts=750, days=40, seed=4, difficulty=request.param)
    return request.param, summary, open_venue(out)


def test_weights_sum_to_one_and_blends_are_recorded(level_venue):
    level, _, con = level_venue
    rows = con.execute(
        "select archetype_weight, second_weight, second_archetype, archetype, migrated_to "
        "from truth"
    ).fetchall()
    w1 = np.array([r[0] for r in rows])
    w2 = np.array([r[1] for r in rows])
    np.testing.assert_allclose(w1 + w2, 1.0, rtol=0, atol=1e-12)
    assert (w1 >= 0.5).all() and (w1 <= 1.0).all()
    blends = [r for r in rows if r[2] is not None]
    for r in blends:
        assert r[2] != r[3] and r[2] in ARCHETYPE_NAMES and r[4] is None
        lo, hi = DIFFICULTIES[level].mix_weight
        assert lo <= r[0] <= hi
    pure = [r for r in rows if r[2] is None]
    assert all(r[0] == 1.0 and r[1] == 0.0 for r in pure)
    if level == "easy":
        assert not blends
    else:
        share = len(blends) / len(rows)
        assert abs(share - DIFFICULTIES[level].mix_share) < 0.08


def test_migrations_inside_the_window(level_venue):
    level, summary, con = level_venue
    start = summary.start.isoformat()
    rows = con.execute(
        f"""
        select archetype, migrated_to, migrated_at, created_at, churned_at,
               migrated_at >= timestamptz '{start}'
               and migrated_at < timestamptz '{start}' + interval {summary.days} day,
               migrated_at >= date_trunc('day', created_at) + interval {MIGRATION_MIN_AGE_DAYS} day
        from truth where migrated_at is not null
        """
    ).fetchall()
    if level == "easy":
        assert rows == []
        return
    assert len(rows) > 5
    for arch, to, at, _, churned, inside, old_enough in rows:
        assert inside and old_enough and to != arch
        assert churned is None or churned >= at  # a migration after leaving never happened
    assert con.execute(
        "select count(*) from truth where (migrated_to is null) <> (migrated_at is null)"
    ).fetchone() == (0,)


def test_churn_only_after_the_last_fill_and_has_a_cause(level_venue):
    _, _, con = level_venue
    late = con.execute(
        "select count(*) from fills f join truth t using (account_id) where f.ts > t.churned_at"
    ).fetchone()[0]
    assert late == 0
    bad = con.execute(
        "select count(*) from truth where (churned_at is null) <> (churn_cause is null)"
    ).fetchone()[0]
    assert bad == 0
    causes = {r[0] for r in con.execute("select distinct churn_cause from truth").fetchall()}
    assert causes - {None} <= set(CAUSES)


def test_migrants_trade_as_their_new_archetype(tmp_path):
    """A perp-only archetype that becomes an option seller writes options only afterwards."""
    out = tmp_path / "v"
    simulate_venue(out, accounts=1500, days=60, seed=8, difficulty="realistic")
    con = open_venue(out)
    row = con.execute(
        """
        select avg((f.kind = 'option')::int) filter (where f.ts < t.migrated_at) as before,
               avg((f.kind = 'option')::int) filter (where f.ts >= t.migrated_at) as after
        from fills f join truth t using (account_id)
        where t.archetype = 'retail_leveraged_perp' and t.migrated_to = 'option_premium_seller'
          and f.position_effect = 'open'
        """
    ).fetchone()
    assert row[0] is not None and row[1] is not None
    assert row[0] < 0.05 and row[1] > 0.5


@pytest.mark.parametrize("level", ["realistic", "hard"])
def test_same_seed_same_tables_and_chunking_changes_nothing(tmp_path, level):
    args = {"accounts": 520, "days": 12, "seed": 3, "difficulty": level}
    a = simulate_venue(tmp_path / "a", chunk_accounts=250, **args)
    b = simulate_venue(tmp_path / "b", chunk_accounts=250, **args)
    c = simulate_venue(tmp_path / "c", chunk_accounts=1000, **args)
    assert (a.parts, c.parts) == (3, 1) and a.difficulty == level
    fa = pq.read_table(a.out / "fills")
    assert fa.equals(pq.read_table(b.out / "fills")) and fa.equals(pq.read_table(c.out / "fills"))
    for name in ("accounts", "transfers", "truth"):
        t = pq.read_table(a.out / f"{name}.parquet")
        assert t.equals(pq.read_table(b.out / f"{name}.parquet"))
        assert t.equals(pq.read_table(c.out / f"{name}.parquet"))
    other = simulate_venue(tmp_path / "d", **(args | {"seed": 4}))
    assert not pq.read_table(other.out / "fills").equals(fa)


def test_easy_is_the_default_and_unknown_levels_are_refused(tmp_path):
    assert get_difficulty("easy") is DIFFICULTIES["easy"] and DIFFICULTIES["easy"].easy
    assert not DIFFICULTIES["realistic"].easy
    with pytest.raises(ConfigError, match="difficulty must be one of easy, realistic, hard"):
        simulate_venue(tmp_path / "x", accounts=5, days=2, difficulty="medium")
    a = simulate_venue(tmp_path / "a", accounts=260, days=6, seed=2)
    b = simulate_venue(tmp_path / "b", accounts=260, days=6, seed=2, difficulty="easy")
    assert pq.read_table(a.out / "fills").equals(pq.read_table(b.out / "fills"))


def test_unit_spread_draws_the_original_parameters():
    a = draw_accounts(np.random.default_rng(5), 300)
    b = draw_accounts(np.random.default_rng(5), 300, spread=1.0)
    for name in ("size_usd", "active_prob", "opens_per_day", "kind_cum", "churn_hazard"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    one = np.full(4000, 1)
    wide = draw_accounts(np.random.default_rng(5), 4000, spread=2.0, arch=one)
    narrow = draw_accounts(np.random.default_rng(5), 4000, spread=1.0, arch=one)
    # size: log-normal around the centre, log sd 0.5 times the spread
    assert np.log(narrow.size_usd).std() == pytest.approx(0.5, abs=0.03)
    assert np.log(wide.size_usd).std() == pytest.approx(1.0, abs=0.05)
    forced = draw_accounts(np.random.default_rng(5), 10, arch=np.full(10, 3))
    assert (forced.arch == 3).all()


# the archetype centres of the easy venue, as declared when the simulator was written:
# (weight, kind mix, opens per active day, active-day chance, median size USD, maker share,
#  leverage range, median holding hours)
CENTRES = {
    "hf_perp_maker": (0.05, (0, 1, 0, 0), 45, 0.92, 4_000, 0.9, (1, 3), 0.08),
    "retail_leveraged_perp": (0.34, (0.06, 0.94, 0, 0), 2.5, 0.35, 2_500, 0.12, (10, 50), 14),
    "perp_scalper": (0.10, (0, 1, 0, 0), 12, 0.7, 25_000, 0.35, (3, 10), 0.6),
    "lottery_option_buyer": (0.10, (0, 0.12, 0, 0.88), 2, 0.3, 10_000, 0.1, (5, 20), 10),
    "option_premium_seller": (0.06, (0, 0.2, 0, 0.8), 3, 0.5, 80_000, 0.6, (2, 4), 48),
    "volatility_trader": (0.06, (0, 0.05, 0, 0.95), 2, 0.45, 100_000, 0.45, (2, 5), 24),
    "hedger": (0.07, (0.45, 0, 0, 0.55), 1.2, 0.2, 60_000, 0.3, (1, 1), 2_000),
    "whale": (0.04, (0, 0.15, 0.85, 0), 1.5, 0.12, 2_000_000, 0.4, (1, 3), 360),
    "spot_holder": (0.18, (1, 0, 0, 0), 1, 0.08, 300, 0.2, (1, 1), 500),
}


def test_archetype_centres_are_pinned():
    assert ARCHETYPE_NAMES == tuple(CENTRES)
    for a in ARCHETYPES:
        got = (a.weight, a.kind_mix, a.opens_per_day, a.active_prob, a.size_usd,
               a.maker_share, a.leverage, a.hold_hours)
        assert got == CENTRES[a.name], a.name
    assert sum(a.weight for a in ARCHETYPES) == pytest.approx(1.0)
    (lottery,) = [a for a in ARCHETYPES if a.name == "lottery_option_buyer"]
    assert (lottery.call_share, lottery.option_buy_share) == (0.85, 0.93)
    assert lottery.abs_delta == (0.03, 0.12) and lottery.tenor_days == (0.5, 5)


# --- the churn hazard, by hand -------------------------------------------------------


def _spec(**kw) -> ChurnSpec:
    base = dict(base_scale=1.0, noise_sigma=0.0, loss_hazard=0.0, liq_hazard=0.0,
                window_days=3, lag_days=2, fade_share=0.0, fade_days=(10.0, 10.0),
                fade_hazard=0.0, fade_size=0.0)
    return ChurnSpec(**(base | kw))


@pytest.fixture(scope="module")
def market():
    return build_market(date(2024, 1, 1), 20, 0, get_settings().market_data_dir)


def _churn(market, spec, *, pnl=0.0, liq=False, day=0, e=0.25, engagement=None,
           created=-5, capital=1.0, base=0.0):
    t = np.array([market.start_us + day * DAY_US + 3_600_000_000])
    eng = np.ones((1, market.days)) if engagement is None else engagement
    d, c = precursor_churn(market, spec, np.array([0]), t, np.array([pnl]), np.array([liq]),
                           np.array([capital]), np.array([base]), eng, np.array([created]),
                           np.array([e]))
    return int(d[0]), int(c[0])


def test_trailing_window_with_lag_by_hand():
    x = np.array([[1.0, 2.0, 4.0, 8.0, 16.0, 32.0]])
    # window 3, lag 1: day d sums days d-3 .. d-1
    np.testing.assert_array_equal(_trailing(x, 3, 1), [[0, 1, 3, 7, 14, 28]])
    np.testing.assert_array_equal(_trailing(x, 1, 0), x)


def test_a_liquidation_raises_the_hazard_after_the_lag_for_the_window(market):
    spec = _spec(liq_hazard=0.125)
    # liquidated on day 0, lag 2, window 3: hazard 0.125 on days 2, 3, 4 only
    assert _churn(market, spec, liq=True, e=0.25) == (3, CAUSES.index("liquidations"))
    assert _churn(market, spec, liq=True, e=0.125) == (2, CAUSES.index("liquidations"))
    assert _churn(market, spec, liq=True, e=0.375) == (4, CAUSES.index("liquidations"))
    # just above what the window can add: never
    assert _churn(market, spec, liq=True, e=0.375 + 1e-9) == (market.days, -1)
    # a closing fill that is not a liquidation adds nothing
    assert _churn(market, spec, liq=False, e=0.1) == (market.days, -1)


def test_only_losses_beyond_the_threshold_count(market):
    spec = _spec(loss_hazard=1.0, window_days=30)
    at = _churn(market, spec, pnl=-LOSS_THRESHOLD, e=1e-9)
    assert at == (market.days, -1)  # a loss of exactly the threshold adds nothing
    d, cause = _churn(market, spec, pnl=-(LOSS_THRESHOLD + 0.25), e=0.5)
    assert (d, cause) == (3, CAUSES.index("losses"))  # 0.25 a day from day 2
    assert _churn(market, spec, pnl=+5.0, e=1e-9) == (market.days, -1)  # gains never
    # the loss is relative to capital, capped at 3 capitals
    assert _churn(market, spec, pnl=-(LOSS_THRESHOLD + 0.25) * 4, capital=4.0, e=0.5)[0] == 3
    assert _churn(market, spec, pnl=-100.0, e=2.8 * 3 - 1e-9)[0] == 4


def test_fading_counts_only_below_the_threshold(market):
    spec = _spec(fade_hazard=1.0, lag_days=0)
    eng = np.ones((1, market.days))
    eng[0, 5:] = FADE_THRESHOLD
    assert _churn(market, spec, engagement=eng, e=1e-9) == (market.days, -1)
    eng[0, 5:] = FADE_THRESHOLD * 0.5  # hazard 0.5 a day from day 5
    assert _churn(market, spec, engagement=eng, e=1.0) == (6, CAUSES.index("fading"))
    lagged = _spec(fade_hazard=1.0, lag_days=3)
    assert _churn(market, lagged, engagement=eng, e=1.0) == (9, CAUSES.index("fading"))


def test_no_churn_before_the_day_after_sign_up(market):
    spec = _spec()
    assert _churn(market, spec, base=0.5, created=4, e=0.5) == (5, CAUSES.index("baseline"))
    assert _churn(market, spec, base=0.5, created=-3, e=0.5) == (0, CAUSES.index("baseline"))


def test_regime_days():
    diff = Difficulty("x", regime=(0.5, 0.25, 0.4))
    m = regime_multiplier(8, diff)[0]
    np.testing.assert_array_equal(m, [1, 1, 1, 1, 0.4, 0.4, 1, 1])


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), level=st.sampled_from(["realistic", "hard"]),
       days=st.integers(10, 120))
def test_legs_are_consistent(seed, level, days):
    diff = DIFFICULTIES[level]
    rng = np.random.default_rng(seed)
    first = draw_accounts(rng, 200, spread=diff.spread)
    created = rng.integers(-100, days, 200)
    legs = draw_legs(rng, first, created, days, diff)
    n = len(first)
    assert legs.activity.shape == (2 * n, days) and (legs.activity >= 0).all()
    migrated = legs.migrated_day >= 0
    blend = (legs.second >= 0) & ~migrated
    # weights in range; blends and migrations exclusive
    assert ((legs.weight >= diff.mix_weight[0]) | ~blend).all()
    assert (legs.weight[~blend] == 1.0).all()
    assert (legs.second[blend] != first.arch[blend]).all()
    # migrations inside the window, a week after sign-up; before it only the first leg
    # trades, from it only the second
    m = legs.migrated_day[migrated]
    assert ((m >= 0) & (m < days)).all()
    assert (m >= created[migrated] + MIGRATION_MIN_AGE_DAYS).all()
    for i in np.flatnonzero(migrated):
        d = legs.migrated_day[i]
        assert (legs.activity[i, d:] == 0).all() and (legs.activity[n + i, :d] == 0).all()
    # pure accounts trade through their first leg only
    pure = ~blend & ~migrated
    assert (legs.activity[n:][pure] == 0).all()
    # account-level attributes are the first leg's
    np.testing.assert_array_equal(legs.params.region[n:], first.region)
