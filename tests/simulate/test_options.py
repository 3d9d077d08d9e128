"""Option fills are priced, named and listed consistently; the pricing helpers are sound."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime
from statistics import NormalDist

import numpy as np
import pytest

from traderseg.simulate.calendar import (
    ExpiryCalendar,
    expiry_us,
    future_name,
    is_last_friday,
    option_name,
    strike_step,
)
from traderseg.simulate.options import bs_delta, bs_price, smile_iv, strike_for_delta

N = NormalDist()
MONTHS = "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split()


def _bs(s, k, t, v, call):
    """Textbook Black-Scholes with zero rates, one option at a time."""
    d1 = (np.log(s / k) + 0.5 * v * v * t) / (v * np.sqrt(t))
    d2 = d1 - v * np.sqrt(t)
    if call:
        return s * N.cdf(d1) - k * N.cdf(d2)
    return k * N.cdf(-d2) - s * N.cdf(-d1)


@pytest.fixture(scope="module")
def options(venue):
    _, con = venue
    return con.execute(
        """
        select instrument, underlying, side, option_type, strike, epoch_us(expiry) as exp_us,
               epoch_us(ts) as ts_us, underlying_price, iv, delta, price, qty, notional_usd,
               position_effect
        from fills where kind = 'option'
        """
    ).df()


def test_there_are_many_option_fills(options):
    assert len(options) > 2_000
    assert set(options.option_type) == {"call", "put"}


def test_delta_signs(options):
    calls, puts = options[options.option_type == "call"], options[options.option_type == "put"]
    assert calls.delta.between(0, 1).all()
    assert puts.delta.between(-1, 0).all()


def test_price_is_black_scholes_of_the_fill_fields(options):
    sample = options.sample(1_500, random_state=0)
    t = (sample.exp_us - sample.ts_us) / (365 * 86_400e6)
    want = np.array(
        [
            _bs(s, k, tt, v, c == "call")
            for s, k, tt, v, c in zip(
                sample.underlying_price,
                sample.strike,
                t,
                sample.iv,
                sample.option_type,
                strict=True,
            )
        ]
    )
    err = np.abs(sample.price.to_numpy() - want)
    assert (err <= 1e-6 * want + 1e-9 * sample.underlying_price.to_numpy()).all()
    d1 = (np.log(sample.underlying_price / sample.strike) + 0.5 * sample.iv**2 * t) / (
        sample.iv * np.sqrt(t)
    )
    nd1 = np.array([N.cdf(x) for x in d1])
    want_delta = np.where(sample.option_type == "call", nd1, nd1 - 1)
    np.testing.assert_allclose(sample.delta, want_delta, atol=1e-9)


def test_option_amounts(options):
    np.testing.assert_allclose(options.notional_usd, options.qty * options.underlying_price)
    assert (options.price > 0).all()
    assert options.iv.between(0.05, 3.5).all()
    # premium below the underlying for calls, below the strike for puts
    assert (
        options.price
        < np.where(options.option_type == "call", options.underlying_price, options.strike)
    ).all()


def test_names_encode_the_fields(options):
    for row in options.drop_duplicates("instrument").itertuples():
        d = datetime.fromtimestamp(row.exp_us / 1e6, tz=UTC)
        strike = (
            f"{row.strike:.0f}"
            if float(row.strike).is_integer()
            else f"{row.strike:g}".replace(".", "d")
        )
        want = f"{row.underlying}-{d.day}{MONTHS[d.month - 1]}{d.strftime('%y')}-{strike}-"
        assert row.instrument == want + ("C" if row.option_type == "call" else "P")


def test_expiries_are_on_the_listing_calendar(options, venue):
    _, con = venue
    futures = con.execute(
        "select distinct epoch_us(expiry), epoch_us(ts) from fills where kind = 'future'"
    ).fetchall()
    rows = list(options[["exp_us", "ts_us"]].drop_duplicates().itertuples(index=False))
    for exp_us, ts_us in rows + [(e, t) for e, t in futures]:
        d = datetime.fromtimestamp(exp_us / 1e6, tz=UTC)
        assert (d.hour, d.minute, d.second, d.microsecond) == (8, 0, 0, 0)
        tenor = (exp_us - ts_us) / 86_400e6
        assert tenor > 1 / 24
        last_day = calendar.monthrange(d.year, d.month)[1]
        if tenor > 4:
            assert d.weekday() == 4, d
        if tenor > 35:
            assert d.day + 7 > last_day, d
        if tenor > 120:
            assert d.month in (3, 6, 9, 12), d
    for exp_us, _ in futures:
        d = datetime.fromtimestamp(exp_us / 1e6, tz=UTC)
        assert d.month in (3, 6, 9, 12) and d.weekday() == 4
        assert d.day + 7 > calendar.monthrange(d.year, d.month)[1]


def test_calendar_helpers():
    assert is_last_friday(date(2024, 12, 27)) and not is_last_friday(date(2024, 12, 20))
    assert is_last_friday(date(2024, 3, 29))
    e = expiry_us(date(2024, 12, 27))
    assert option_name("BTC", e, 60000.0, True) == "BTC-27DEC24-60000-C"
    assert future_name("BTC", expiry_us(date(2024, 1, 5))) == "BTC-5JAN24"
    cal = ExpiryCalendar.for_window(date(2024, 1, 1), 10)
    t = np.array([expiry_us(date(2024, 1, 2)) - 30 * 60_000_000])  # 07:30 on 2 Jan
    # half an hour before an expiry it is no longer tradable: the next daily is taken
    assert cal.choose(t, np.array([0.01]))[0] == expiry_us(date(2024, 1, 3))
    q = cal.choose(t, np.array([60.0]), only="quarterly")[0]
    assert q == expiry_us(date(2024, 3, 29))


def test_strike_grid_steps():
    steps = strike_step(
        np.array([60_000.0, 60_000.0, 60_000.0, 3_000.0]), np.array([1, 14, 90, 14])
    )
    np.testing.assert_array_equal(steps, [500, 1000, 2500, 50])


def test_pricing_helpers_put_call_parity_and_delta():
    rng = np.random.default_rng(0)
    s = rng.uniform(1_000, 90_000, 200)
    k = s * rng.uniform(0.6, 1.5, 200)
    t = rng.uniform(0.001, 1.0, 200)
    v = smile_iv(rng.uniform(0.3, 1.2, 200), s, k, t)
    call, put = bs_price(s, k, t, v, True), bs_price(s, k, t, v, False)
    assert (np.abs((call - put) - (s - k)) < 1e-6 * s).all()
    h = s * 1e-5
    fd = (bs_price(s + h, k, t, v, True) - bs_price(s - h, k, t, v, True)) / (2 * h)
    np.testing.assert_allclose(bs_delta(s, k, t, v, True), fd, atol=1e-5)
    target = rng.uniform(0.05, 0.5, 200)
    kk = strike_for_delta(s, t, v, target, False)
    np.testing.assert_allclose(-bs_delta(s, kk, t, v, False), target, atol=1e-9)
