"""The scripted crash: prices drop by the size on the day, and the cascade it forces.

Hand-built market: flat at 100 on day 0, a crash on day 1 from 12:00 for 4 hours of
size 0.225 (100 -> 77.5), flat at 77.5 on day 2. Liquidation level of a long opened at
100 with leverage L: 100 * (1 - 0.9 / L). The drop is linear: it reaches level x at
12:00 + 4 h * (1 - x / 100) / 0.225.

* A, 10x: level 91, reached at 12:00 + 4 h * 0.09 / 0.225 = 12:00 + 1.6 h = 13:36.
* B, 4x: level 100 * (1 - 0.225) = 77.5 = the bottom exactly: liquidated, at 16:00.
* C, 3.9x: level 100 * (1 - 0.9 / 3.9) = 76.92 < 77.5: survives.
* D, a 50x short: gains; survives.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from traderseg.errors import ConfigError
from traderseg.settings import get_settings
from traderseg.simulate import simulate_venue
from traderseg.simulate.crash import NEVER, Crash, build_crash, cascade_times, scale_bars
from traderseg.simulate.exits import ExitResolver, liquidation_level
from traderseg.simulate.market import EVENT_CODES, MarketPath, build_market
from traderseg.simulate.trips import PERP, Trips

DATA = get_settings().market_data_dir
START = date(2024, 1, 1)
DAY = 86_400_000_000
HOUR = 3_600_000_000
T0 = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp()) * 1_000_000
CRASH = Crash(date(2024, 1, 2), size=0.225, start_hour=12.0, hours=4.0)


def _flat_market() -> MarketPath:
    bars = [np.full((2, 3), 100.0) for _ in range(4)]
    opens, highs, lows, closes = bars
    path = build_crash(CRASH, 1, T0, opens[:, 1], closes[:, 1], lows[:, 1], highs[:, 1])
    scale_bars(1, CRASH.size, opens, highs, lows, closes)
    return MarketPath(start=START, days=3, open=opens, high=highs, low=lows, close=closes,
                      iv=np.full((2, 3), 1e-9), event=np.zeros((2, 3), dtype=np.int8),
                      basis=np.zeros((2, 3)), synthetic_days=0, crash=path)


def _trips(lev: list[float], direction: list[int]) -> Trips:
    n = len(lev)
    z = np.zeros(n)
    t = np.full(n, T0 + 12 * HOUR)  # opened on day 0 at noon, at 100
    cols = {
        "acc": np.arange(n), "day": np.zeros(n, dtype=np.int64), "t": t, "u": np.full(n, 0.5),
        "und": np.zeros(n, dtype=np.int64), "kind": np.full(n, PERP),
        "dir": np.array(direction), "maker": np.zeros(n, dtype=bool), "lev": np.array(lev),
        "is_call": np.zeros(n, dtype=bool), "s": np.full(n, 100.0), "price": np.full(n, 100.0),
        "qty": np.ones(n), "expiry": np.zeros(n, dtype=np.int64), "strike": np.full(n, np.nan),
        "iv": np.full(n, np.nan), "delta": np.full(n, np.nan), "to_expiry": np.zeros(n, bool),
        "z_exit": z, "a_ext": z, "a_ext2": z, "v_liq": np.full(n, 0.5), "z_settle": z,
        "maker_exit": np.zeros(n, dtype=bool), "slip": z,
    }
    return Trips(cols)


def test_three_accounts_cascade_in_order_of_leverage_with_the_bottom_counting():
    market = _flat_market()
    trips = _trips([10.0, 4.0, 3.9, 50.0], [1, 1, 1, -1])
    plan = np.full(4, T0 + 2 * DAY + 12 * HOUR)  # planned to close on day 2 at noon
    ex = ExitResolver(market).resolve(trips, plan)
    assert ex.liquidated.tolist() == [True, True, False, False]
    assert ex.by_crash.tolist() == [True, True, False, False]
    day1 = T0 + DAY
    assert ex.t[0] == day1 + 13 * HOUR + 36 * 60_000_000  # 13:36
    assert ex.t[1] == day1 + 16 * HOUR  # at the bottom, the end of the drop
    # the liquidation fill is at the position's level; the index is there too
    np.testing.assert_allclose(ex.price[:2], [91.0, 77.5])
    np.testing.assert_allclose(ex.s[:2], [91.0, 77.5])
    np.testing.assert_allclose(ex.pnl[:2], [-9.0, -22.5])
    # the survivors close as planned on day 2, at the post-crash price
    np.testing.assert_array_equal(ex.t[2:], plan[2:])


def test_a_position_closed_before_the_drop_reaches_its_level_is_not_liquidated():
    market = _flat_market()
    trips = _trips([10.0, 10.0], [1, 1])
    day1 = T0 + DAY
    # 13:35 is a minute before the drop reaches 91; 13:37 a minute after
    ex = ExitResolver(market).resolve(trips, np.array([day1 + 13 * HOUR + 35 * 60_000_000,
                                                       day1 + 13 * HOUR + 37 * 60_000_000]))
    assert ex.liquidated.tolist() == [False, True]


def test_cascade_times_by_hand():
    path = _flat_market().crash
    assert path is not None
    und = np.zeros(4, dtype=np.int64)
    level = liquidation_level(np.array([100.0, 100.0, 88.75, 100.0]), np.ones(4),
                              np.array([20.0, 4.0, 10.0, 10.0]))
    entry = np.array([T0, T0, T0 + DAY + 14 * HOUR, T0])
    exit_ = np.full(4, T0 + 3 * DAY)
    t = cascade_times(path, und, np.array([True, True, True, False]), level, entry, exit_)
    day1 = T0 + DAY
    # 20x: level 95.5 -> 4 h * 0.045 / 0.225 = 0.8 h after 12:00
    assert t[0] == day1 + 12 * HOUR + 48 * 60_000_000
    assert t[1] == day1 + 16 * HOUR
    # opened at 14:00, half-way down the drop, at its level 100 * (1 - 0.225 / 2) = 88.75;
    # 10x: level 88.75 * 0.91 = 80.7625, reached 4 h * 0.192375 / 0.225 = 3.42 h after 12:00
    assert t[2] == day1 + 12 * HOUR + round(3.42 * HOUR)
    assert t[3] == NEVER  # a short


def test_prices_drop_by_the_size_on_the_day():
    base = build_market(START, 10, 0, DATA)
    crash = Crash(date(2024, 1, 5), size=0.25, start_hour=13.0, hours=3.0)
    m = build_market(START, 10, 0, DATA, crash)
    d = 4
    np.testing.assert_allclose(m.close[:, d:], base.close[:, d:] * 0.75)
    np.testing.assert_allclose(m.open[:, d + 1:], base.open[:, d + 1:] * 0.75)
    np.testing.assert_array_equal(m.open[:, : d + 1], base.open[:, : d + 1])
    np.testing.assert_array_equal(m.close[:, :d], base.close[:, :d])
    assert [m.event_names(u)[d] for u in (0, 1)] == ["crash", "crash"]
    assert m.event[0, d] == EVENT_CODES.index("crash")
    cr = m.crash
    assert cr is not None and cr.day == d
    assert cr.start_us == m.start_us + d * DAY + 13 * HOUR
    assert cr.end_us == m.start_us + d * DAY + 16 * HOUR
    n = 400
    und = np.repeat([0, 1], n // 2)
    day = np.full(n, d)
    z = np.random.default_rng(0).standard_normal(n)
    # during the drop: the linear path, no noise; from the anchor to 0.75 of it
    for u, frac in ((13 / 24, 0.0), (14.5 / 24, 0.5), (16 / 24, 1.0)):
        s = m.price_at(und, day, np.full(n, u), z)
        np.testing.assert_allclose(s, cr.anchor[und] * (1 - 0.25 * frac))
    # before the drop within the day's unscaled range, after it within the scaled one
    pre = m.price_at(und, day, np.full(n, 0.3), z * 3)
    assert ((pre >= m.low[und, d] / 0.75 - 1e-9) & (pre <= m.high[und, d])).all()
    post = m.price_at(und, day, np.full(n, 0.9), z * 3)
    assert ((post >= m.low[und, d] - 1e-9) & (post <= m.high[und, d] * 0.75 + 1e-9)).all()
    np.testing.assert_allclose(m.price_at(und, day, np.ones(n), z), m.close[und, d])


@pytest.mark.parametrize("kw, match", [
    ({"size": 0.0}, "size"), ({"size": 0.95}, "size"), ({"hours": 0.0}, "length"),
    ({"start_hour": 22.0, "hours": 3.0}, "within its UTC day"),
    ({"day": date(2024, 2, 1)}, "outside the simulated window"),
])
def test_bad_crash_is_refused(kw, match):
    args = {"day": date(2024, 1, 5), **kw}
    with pytest.raises(ConfigError, match=match):
        build_market(START, 10, 0, DATA, Crash(**args))


@pytest.fixture(scope="module")
def crashed(tmp_path_factory):
    out = tmp_path_factory.mktemp("crashed")
    crash = Crash(date(2024, 1, 5), size=0.3, start_hour=12.0, hours=3.0)
    simulate_venue(out, accounts=300, days=8, seed=4, crash=crash)
    return out, crash


def test_the_cascade_is_recoverable_from_the_output(crashed):
    out, crash = crashed
    market = pq.read_table(out / "market.parquet").to_pandas()
    marked = market[market["event_start"].notna()]
    assert sorted(marked["underlying"]) == ["BTC", "ETH"]
    assert (marked["event"] == "crash").all()
    start = marked["event_start"].iloc[0]
    assert start == pd.Timestamp("2024-01-05 12:00", tz="UTC")
    end = start + pd.Timedelta(hours=3)
    fills = pq.read_table(out / "fills").to_pandas()
    truth = pq.read_table(out / "truth.parquet").to_pandas()
    hit = truth.dropna(subset=["crash_liquidated_at"])
    assert len(hit) >= 5
    first_liq = (fills[fills["is_liquidation"] & (fills["ts"] >= start) & (fills["ts"] <= end)]
                 .groupby("account_id")["ts"].min())
    # every truth entry is the account's first liquidation in the drop, a long's close
    assert set(hit["account_id"]) <= set(first_liq.index)
    for acc, when in zip(hit["account_id"], hit["crash_liquidated_at"]):
        assert first_liq[acc] <= when <= end
    liq = fills[fills["is_liquidation"] & (fills["ts"] >= start) & (fills["ts"] <= end)]
    assert (liq["side"] == "sell").mean() > 0.9  # longs being closed
    # in time order the index at which they go falls: the drop reaches lower levels later
    for _, g in liq[liq["side"] == "sell"].sort_values("ts").groupby("underlying"):
        assert (np.diff(g["underlying_price"].to_numpy()) <= 1e-6).all()
    # the cascade takes the leveraged: its accounts' leverage is above the venue's
    lev_hit = fills[fills["account_id"].isin(hit["account_id"])]["leverage"].mean()
    assert lev_hit > fills["leverage"].mean()


def test_no_crash_no_crash_columns(tmp_path):
    simulate_venue(tmp_path, accounts=30, days=3, seed=1)
    assert pq.read_table(tmp_path / "truth.parquet").column("crash_liquidated_at").null_count == 30
    assert pq.read_table(tmp_path / "market.parquet").column("event_start").null_count == 6
