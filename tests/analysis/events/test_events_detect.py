import csv
import math

import numpy as np
import pandas as pd
import pytest

from traderseg.analysis.events import daily_signals, detect_events, load_market
from traderseg.errors import ConfigError, DataError
from traderseg.settings import get_settings

DAY = pd.Timedelta(days=1)


@pytest.fixture(scope="module")
def btc():
    return load_market(underlyings=["BTC"])


@pytest.fixture(scope="module")
def btc_events(btc):
    return detect_events(btc)


def _closes():
    with open(get_settings().market_data_dir / "BTCUSDT_1d.csv", newline="") as fh:
        return {r["timestamp"]: float(r["close"]) for r in csv.DictReader(fh)}


def _near(events, day, kinds):
    t = pd.Timestamp(day, tz="UTC")
    hit = events[events.kind.isin(kinds) & ((events.ts - t).abs() <= DAY)]
    return hit


@pytest.mark.parametrize(
    ("day", "kinds"),
    [
        ("2020-03-12", ["crash"]),  # COVID crash
        ("2021-05-19", ["crash"]),  # May 2021 crash
        ("2022-11-09", ["crash"]),  # FTX collapse: the price
        ("2022-11-09", ["vol_spike"]),  # FTX collapse: implied vol
    ],
)
def test_known_real_events_are_found_within_a_day(btc_events, day, kinds):
    assert len(_near(btc_events, day, kinds)) == 1


def test_crash_magnitude_matches_an_independent_z_score(btc_events):
    closes = _closes()
    days = sorted(closes)
    i = days.index("2020-03-12")
    logs = [math.log(closes[days[j]] / closes[days[j - 1]]) for j in range(i - 30, i + 1)]
    trailing, today = logs[:-1], logs[-1]
    mean = sum(trailing) / 30
    sd = math.sqrt(sum((x - mean) ** 2 for x in trailing) / 29)
    ev = _near(btc_events, "2020-03-12", ["crash"]).iloc[0]
    assert ev["ts"] == pd.Timestamp("2020-03-12", tz="UTC")
    assert ev["magnitude"] == pytest.approx(today / sd, rel=1e-9)
    assert ev["return"] == pytest.approx(today, rel=1e-12)
    assert "fell 39.5%" in ev["description"]


def test_a_calm_stretch_is_not_flagged(btc, btc_events):
    # July to mid-August 2023: among BTC's quietest weeks on record.
    start, end = pd.Timestamp("2023-06-25", tz="UTC"), pd.Timestamp("2023-08-15", tz="UTC")
    closes = _closes()
    days = [d for d in sorted(closes) if "2023-06-24" <= d <= "2023-08-15"]
    moves = [abs(closes[b] / closes[a] - 1) for a, b in zip(days, days[1:], strict=False)]
    assert max(moves) < 0.04
    assert btc_events[(btc_events.ts >= start) & (btc_events.ts <= end)].empty


def test_btc_defaults_find_a_few_events_per_year(btc_events):
    per_year = btc_events.groupby(btc_events.ts.dt.year).size()
    assert per_year.between(3, 20).all()
    assert set(btc_events.kind) == {"crash", "rally", "vol_spike", "drawdown"}
    assert (btc_events.loc[btc_events.kind == "crash", "magnitude"] <= -3).all()
    assert (btc_events.loc[btc_events.kind == "vol_spike", "magnitude"] >= 30).all()


@pytest.mark.parametrize("cut", ["2020-03-12", "2021-05-20", "2022-11-09", "2024-08-05"])
def test_daily_signals_do_not_look_ahead(btc, cut):
    t = pd.Timestamp(cut, tz="UTC")
    full = daily_signals(btc)
    part = daily_signals(btc[btc.ts <= t])
    pd.testing.assert_frame_equal(part, full[full.ts <= t].reset_index(drop=True))


def test_events_do_not_look_ahead(btc, btc_events):
    # On days with no flag within the merge gap, the events up to that day must not
    # depend on anything after it.
    raw = detect_events(btc, min_gap_days=0)
    flagged = set(raw.ts)
    quiet = [
        d for d in pd.date_range("2019-01-01", "2025-06-30", freq="97D", tz="UTC")
        if not any(d + k * DAY in flagged for k in range(-3, 4))
    ]
    assert len(quiet) >= 10
    for d in quiet[::3]:
        part = detect_events(btc[btc.ts <= d])
        pd.testing.assert_frame_equal(part, btc_events[btc_events.ts <= d].reset_index(drop=True))


def _market(prices, iv=None, start="2024-01-01"):
    ts = pd.date_range(start, periods=len(prices), freq="D", tz="UTC")
    m = pd.DataFrame({"ts": ts, "underlying": "BTC", "price": prices})
    m["iv_index"] = np.nan if iv is None else iv
    return m


def _quiet_prices(n, seed=3):
    rng = np.random.default_rng(seed)
    return 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))


def test_flags_on_nearby_days_merge_into_the_strongest():
    p = _quiet_prices(80)
    p[50:] *= 0.92  # -8 % on day 50
    p[52:] *= 0.60  # -40 % two days later: same event, by far the stronger day
    p[70:] *= 0.40  # far enough to be its own event (and large against the new volatility)
    ev = detect_events(_market(p), kinds=["crash"], min_gap_days=3)
    days = pd.date_range("2024-01-01", periods=80, freq="D", tz="UTC")
    assert list(ev.ts) == [days[52], days[70]]
    assert ev.iloc[0]["start"] == days[50] and ev.iloc[0]["flagged_days"] == 2
    ev = detect_events(_market(p), kinds=["crash"], min_gap_days=1)
    assert list(ev.ts) == [days[50], days[52], days[70]]


def test_drawdown_fires_on_the_crossing_and_rearms_after_recovery():
    p = np.r_[np.linspace(100, 125, 40), np.linspace(124, 95, 30), np.linspace(96, 120, 30),
              np.linspace(119, 90, 30)]
    ev = detect_events(_market(p), kinds=["drawdown"], drawdown=0.2)
    dd = p / np.maximum.accumulate(p) - 1
    first = int(np.argmax(dd <= -0.2))
    rearm = first + int(np.argmax(dd[first:] > -0.1))
    second = rearm + int(np.argmax(dd[rearm:] <= -0.2))
    days = pd.date_range("2024-01-01", periods=len(p), freq="D", tz="UTC")
    assert list(ev.ts) == [days[first], days[second]]
    assert ev["magnitude"].tolist() == pytest.approx([100 * dd[first], 100 * dd[second]])


def test_vol_spikes_handle_missing_implied_vol_days_explicitly():
    n = 90
    iv = np.full(n, 50.0)
    iv[60] = 80.0  # jump the day after a print: flagged
    iv[74] = np.nan  # missing day just before a jump
    iv[75] = 80.0  # flagged (the trailing mean uses the days present) but no 1-day change
    iv[84] = np.nan  # missing on the very day: never flagged
    m = _market(_quiet_prices(n), iv)
    ev = detect_events(m, kinds=["vol_spike"], min_gap_days=0)
    days = pd.date_range("2024-01-01", periods=n, freq="D", tz="UTC")
    assert list(ev.ts) == [days[60], days[75]]
    assert ev.iloc[0]["iv_change"] == 30.0 and np.isnan(ev.iloc[1]["iv_change"])
    # With too few prints in the trailing window there is no reference level: no flag.
    sparse = iv.copy()
    sparse[30:60] = np.nan
    sparse[45] = 50.0
    ev = detect_events(_market(_quiet_prices(n), sparse), kinds=["vol_spike"], min_gap_days=0)
    assert days[60] not in set(ev.ts)
    sig = daily_signals(_market(_quiet_prices(n), sparse)).set_index("ts")
    assert np.isnan(sig.loc[days[60], "iv_ref"])


def test_bad_parameters_and_short_series_are_refused():
    m = _market(_quiet_prices(60))
    with pytest.raises(ConfigError, match="return_z"):
        detect_events(m, return_z=0)
    with pytest.raises(ConfigError, match="kind"):
        detect_events(m, kinds=["meltdown"])
    with pytest.raises(ConfigError, match="drawdown"):
        detect_events(m, drawdown=1.5)
    with pytest.raises(ConfigError, match="vol_window"):
        detect_events(m, vol_window=1)
    with pytest.raises(DataError, match="too few for vol_window=30"):
        detect_events(m.iloc[:15])
    with pytest.raises(DataError, match="empty"):
        detect_events(m.iloc[:0])


def test_intraday_bars_are_reduced_to_daily_closes():
    m = _market(_quiet_prices(60))
    extra = m.assign(ts=m.ts + pd.Timedelta(hours=12), price=m.price * 1.001)
    both = pd.concat([m, extra]).sort_values("ts")
    sig = daily_signals(both)
    assert len(sig) == 60
    np.testing.assert_allclose(sig["price"], extra["price"])
