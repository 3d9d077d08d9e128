"""The market path follows the real series and continues past it with a seeded model."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from traderseg.errors import ConfigError
from traderseg.settings import get_settings
from traderseg.simulate import simulate_venue
from traderseg.simulate.market import build_market

DATA = get_settings().market_data_dir


def test_window_inside_history_uses_real_bars():
    m = build_market(date(2024, 1, 1), 10, 0, DATA)
    real = pd.read_csv(DATA / "BTCUSDT_1d.csv", index_col="timestamp")
    np.testing.assert_allclose(m.close[0], real.loc["2024-01-01":"2024-01-10", "close"].to_numpy())
    dvol = pd.read_csv(DATA / "DVOL_BTC_1d.csv", index_col="date")["dvol"]
    day = "2024-01-05"
    if day in dvol.index:
        assert m.iv[0, 4] == pytest.approx(dvol[day] / 100)
    assert m.synthetic_days == 0
    assert (m.iv[1] > m.iv[0]).all()  # ETH is scaled above BTC


def test_continues_past_history_deterministically():
    last = pd.read_csv(DATA / "BTCUSDT_1d.csv")["timestamp"].iloc[-1]
    start = (pd.Timestamp(last) - pd.Timedelta(days=9)).date()
    a = build_market(start, 40, 7, DATA)
    b = build_market(start, 40, 7, DATA)
    c = build_market(start, 40, 8, DATA)
    assert a.synthetic_days == 30
    np.testing.assert_array_equal(a.close, b.close)
    assert not np.array_equal(a.close[:, 10:], c.close[:, 10:])
    np.testing.assert_array_equal(a.close[:, :10], c.close[:, :10])
    assert (a.low <= np.minimum(a.open, a.close)).all()
    assert (a.high >= np.maximum(a.open, a.close)).all()
    assert np.isfinite(a.iv).all() and (a.iv > 0).all()
    # daily moves of the continuation have the size of real ones (not frozen, not wild)
    r = np.diff(np.log(a.close[0, 9:]))
    assert 0.003 < r.std() < 0.15


def test_too_early_start_is_refused():
    with pytest.raises(ConfigError, match="earliest start"):
        build_market(date(2017, 8, 20), 5, 0, DATA)
    with pytest.raises(ConfigError):
        build_market(date(2024, 1, 1), 0, 0, DATA)


def test_intraday_prices_stay_in_the_bar():
    m = build_market(date(2022, 11, 1), 15, 0, DATA)
    rng = np.random.default_rng(0)
    n = 5_000
    und, day, u = rng.integers(0, 2, n), rng.integers(0, 15, n), rng.random(n)
    s = m.price_at(und, day, u, rng.standard_normal(n) * 3)
    assert ((s >= m.low[und, day]) & (s <= m.high[und, day])).all()
    # at the day's end the bridge is pinned to the close
    end = m.price_at(und, day, np.ones(n), rng.standard_normal(n))
    np.testing.assert_allclose(end, m.close[und, day])
    crash = m.event_names(0)
    assert "crash" in crash  # the FTX collapse, 2022-11-08/09


def test_venue_runs_past_the_real_history(tmp_path):
    last = pd.Timestamp(pd.read_csv(DATA / "BTCUSDT_1d.csv")["timestamp"].iloc[-1], tz="UTC")
    start = (last - pd.Timedelta(days=4)).date()
    s = simulate_venue(tmp_path, accounts=80, days=15, seed=1, start=start)
    assert s.synthetic_days == 10

    ts = pq.read_table(tmp_path / "fills").column("ts").to_pandas()
    assert (ts > last + pd.Timedelta(days=1)).sum() > 100
