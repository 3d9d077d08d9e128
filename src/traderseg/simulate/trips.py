"""Opening trades of a block of accounts: when, what, how much, and at what price.

Every opening trade starts a *trip*: a position that is later closed by one fill of the
same quantity (or kept past the window, or, for options, left to expire). Trips are
generated day by account as whole arrays; the straddle and basis-trade second legs are
copies of their first leg with the instrument changed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from traderseg.simulate.archetypes import EVENT_RESPONSE, REGION_PEAK_HOUR, AccountParams
from traderseg.simulate.calendar import DAY_US, HOUR_US, ExpiryCalendar, round_strike, strike_step
from traderseg.simulate.market import MarketPath
from traderseg.simulate.options import (
    YEAR_DAYS,
    atm_vol,
    bs_delta,
    bs_price,
    smile_iv,
    strike_for_delta,
)

SPOT, PERP, FUTURE, OPTION = 0, 1, 2, 3
NEVER = np.iinfo(np.int64).max // 4
MAX_OPENS_PER_DAY = 100
HALF_SPREAD = np.array([0.0005, 0.0001, 0.0002, 0.0])  # linear products, per kind
OPTION_IV_SPREAD = 0.02  # relative to mid implied volatility
LEG_GAP_US = 2_000_000  # second legs follow within two seconds


@dataclass
class Trips:
    """Columns of the trips of a block (one entry per opening fill)."""

    cols: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.cols["acc"])

    def __getitem__(self, name: str) -> np.ndarray:
        return self.cols[name]

    def subset(self, mask: np.ndarray) -> Trips:
        """Trips selected by a boolean mask or an index array."""
        return Trips({k: v[mask] for k, v in self.cols.items()})


def event_multiplier(market: MarketPath) -> np.ndarray:
    """Activity multiplier per archetype and day, shape ``(n_archetypes, days)``.

    The day's event is BTC's when it has one, else ETH's; the response is applied on the
    event day and half of it the day after.
    """
    ev = np.where(market.event[0] > 0, market.event[0], market.event[1])
    today = EVENT_RESPONSE[:, ev]
    after = np.ones_like(today)
    after[:, 1:] = 1.0 + 0.5 * (today[:, :-1] - 1.0)
    return np.maximum(today, after)


def _time_of_day(
    rng: np.random.Generator, acc: dict[str, np.ndarray], region: np.ndarray
) -> np.ndarray:
    n = len(region)
    human = (REGION_PEAK_HOUR[region] + rng.normal(0.0, 3.5, n)) / 24.0 % 1.0
    return np.where(rng.random(n) < acc["bot_share"], rng.random(n), human)


def draw_trips(
    rng: np.random.Generator,
    params: AccountParams,
    created_us: np.ndarray,
    market: MarketPath,
    cal: ExpiryCalendar,
    mult: np.ndarray,
    *,
    activity: np.ndarray | None = None,
    size: np.ndarray | None = None,
) -> Trips:
    """Draw the opening trades of a block of accounts over the whole window.

    Parameters
    ----------
    rng : numpy.random.Generator
        The block's generator.
    params : AccountParams
        Parameters of the block's accounts.
    created_us : numpy.ndarray
        Sign-up time of each account, epoch microseconds.
    market : MarketPath
        Market path of the window.
    cal : ExpiryCalendar
        Listed expiries.
    mult : numpy.ndarray
        Event activity multiplier per archetype and day (:func:`event_multiplier`).
    activity : numpy.ndarray, optional
        Further activity multiplier per account and day, shape ``(n, days)`` (blend
        weights, migrations, thin accounts, regimes, fading interest); it scales both the
        chance of trading on a day and the number of opens, like ``mult``.
    size : numpy.ndarray, optional
        Multiplier of the notional of opens per account and day, shape ``(n, days)``.

    Returns
    -------
    Trips
    """
    n, days = len(params), market.days
    created_day = np.floor_divide(created_us - market.start_us, DAY_US)
    m = mult[params.arch]
    if activity is not None:
        m = m * activity
    alive = np.arange(days)[None, :] >= created_day[:, None]
    p = np.clip(params.active_prob[:, None] * m, 0.0, 0.97)
    active = (rng.random((n, days)) < p) & alive
    k = np.maximum(rng.poisson(params.opens_per_day[:, None] * m), 1)
    k = np.where(active, np.minimum(k, MAX_OPENS_PER_DAY), 0).ravel()
    cell = np.repeat(np.arange(n * days), k)
    ai, day = cell // days, cell % days
    a = params.take(ai)
    no = len(ai)

    u = _time_of_day(rng, a, a["region"])
    cu = np.clip((created_us[ai] - market.start_us - day * DAY_US) / DAY_US, 0.0, 1.0)
    u = np.minimum(cu + (1.0 - cu) * u, 0.9999)
    kind = (rng.random(no)[:, None] > a["kind_cum"][:, :-1]).sum(axis=1)
    und = (rng.random(no) >= a["btc_share"]).astype(np.int64)
    direction = np.where(rng.random(no) < a["long_share"], 1, -1)
    direction[kind == SPOT] = 1
    notional = a["size_usd"] * rng.lognormal(0.0, 0.6, no)
    if size is not None:
        notional = notional * size[ai, day]
    maker = rng.random(no) < a["maker_share"]
    lev = np.round(np.clip(a["leverage"] * rng.lognormal(0.0, 0.15, no), 1.0, 100.0), 1)
    is_call = rng.random(no) < a["call_share"]
    ev = np.where(market.event[0, day] > 0, market.event[0, day], market.event[1, day])
    buy_p = np.where(ev == 3, np.minimum(a["option_buy_share"] + 0.3, 0.95), a["option_buy_share"])
    direction = np.where(kind == OPTION, np.where(rng.random(no) < buy_p, 1, -1), direction)
    abs_delta = np.clip(a["abs_delta"] * rng.lognormal(0.0, 0.25, no), 0.02, 0.6)
    tenor = np.clip(a["tenor_days"] * rng.lognormal(0.0, 0.4, no), 0.1, 365.0)
    straddle = (kind == OPTION) & (rng.random(no) < a["straddle_share"])
    basis = (kind == FUTURE) & a["basis_pairs"]
    direction[basis] = -1
    lev[basis] = 1.0  # the short future of a basis trade is fully collateralised by the spot leg
    hold_h = np.exp(a["hold_log_mu"] + a["hold_spread"] * rng.standard_normal(no))
    keep_spot = rng.random(no) >= a["spot_close_share"]
    close_opt = rng.random(no) < a["option_close_share"]
    close_frac = rng.uniform(0.2, 0.8, no)
    z_entry = rng.standard_normal(no)
    t = market.start_us + day * DAY_US + np.round(u * DAY_US).astype(np.int64)
    s = market.price_at(und, day, u, z_entry)

    cols: dict[str, np.ndarray] = {
        "acc": ai,
        "day": day,
        "t": t,
        "u": u,
        "und": und,
        "kind": kind,
        "dir": direction,
        "maker": maker,
        "lev": np.where((kind == PERP) | (kind == FUTURE), lev, np.nan),
        "is_call": is_call,
        "s": s,
        "notional": notional,
        "tenor": tenor,
        "abs_delta": abs_delta,
        "straddle": straddle,
        "basis": basis,
        "hold_h": hold_h,
        "keep_spot": keep_spot,
        "close_opt": close_opt,
        "close_frac": close_frac,
        "leg": np.zeros(no, dtype=np.int8),
        "slip": np.where(maker, 0.0, a["slippage"]),
    }
    cols["z_exit"] = rng.standard_normal(no)
    cols["a_ext"] = np.abs(rng.standard_normal(no))
    cols["a_ext2"] = np.abs(rng.standard_normal(no))
    cols["v_liq"] = rng.random(no)
    cols["maker_exit"] = rng.random(no) < a["maker_share"]
    cols["z_settle"] = rng.standard_normal(no)
    trips = Trips(cols)
    _price_entries(trips, market, cal)
    return _add_second_legs(trips)


def _price_entries(trips: Trips, market: MarketPath, cal: ExpiryCalendar) -> None:
    c = trips.cols
    kind, s, und, day, t = c["kind"], c["s"], c["und"], c["day"], c["t"]
    opt, fut = kind == OPTION, kind == FUTURE
    expiry = np.zeros(len(t), dtype=np.int64)
    if fut.any():
        expiry[fut] = cal.choose(t[fut], np.maximum(c["tenor"][fut], 30.0), only="quarterly")
    if opt.any():
        expiry[opt] = cal.choose(t[opt], c["tenor"][opt])
    t_years = np.where(expiry > 0, (expiry - t) / (DAY_US * YEAR_DAYS), np.nan)
    # linear products: index (spot, perp) or basis-adjusted (future), across the spread
    fwd = np.where(fut, s * np.exp(market.basis[und, day] * np.nan_to_num(t_years)), s)
    sign = np.where(c["maker"], -1.0, 1.0) * c["dir"]
    price = fwd * (1.0 + sign * HALF_SPREAD[kind] + c["dir"] * c["slip"])
    # options: strike from the aimed delta, snapped to the grid; priced on the smile
    iv = np.full(len(t), np.nan)
    delta = np.full(len(t), np.nan)
    strike = np.full(len(t), np.nan)
    if opt.any():
        so, to, call = s[opt], t_years[opt], c["is_call"][opt]
        atm = atm_vol(market.iv[und[opt], day[opt]], to)
        k_raw = strike_for_delta(so, to, atm, c["abs_delta"][opt], call)
        k_raw = np.where(c["straddle"][opt], so, k_raw)
        step = strike_step(so, to * YEAR_DAYS)
        k = round_strike(k_raw, so, step, ~c["straddle"][opt])
        mid = smile_iv(market.iv[und[opt], day[opt]], so, k, to)
        at_ask = (c["dir"][opt] > 0) != c["maker"][opt]
        ivo = mid * (1.0 + np.where(at_ask, OPTION_IV_SPREAD, -OPTION_IV_SPREAD))
        price[opt] = bs_price(so, k, to, ivo, call)
        iv[opt], strike[opt] = ivo, k
        delta[opt] = bs_delta(so, k, to, ivo, call)
    lot = np.where(opt, np.where(und == 0, 0.1, 1.0), np.where(und == 0, 1e-4, 1e-3))
    qty = np.maximum(np.round(c["notional"] / np.where(opt, s, price) / lot), 1.0) * lot
    c.update(expiry=expiry, price=price, iv=iv, delta=delta, strike=strike, qty=qty)
    # planned exit time (epoch us); NEVER = kept past any horizon
    hold = (c["hold_h"] * HOUR_US).astype(np.int64)
    exit_plan = t + np.maximum(hold, 60_000_000)
    exit_plan = np.where(
        fut, np.minimum(exit_plan, t + ((expiry - t) * 0.9).astype(np.int64)), exit_plan
    )
    exit_plan = np.where((kind == SPOT) & c["keep_spot"], NEVER, exit_plan)
    opt_exit = t + ((expiry - t) * c["close_frac"]).astype(np.int64)
    exit_plan = np.where(opt, np.where(c["close_opt"], opt_exit, expiry), exit_plan)
    c["exit_plan"] = exit_plan
    c["to_expiry"] = opt & ~c["close_opt"]


def _add_second_legs(trips: Trips) -> Trips:
    c = trips.cols
    idx = np.flatnonzero(c["straddle"] | c["basis"])
    if len(idx) == 0:
        return trips
    legs = {k: v[idx].copy() for k, v in c.items()}
    gap = 1_000 + (c["v_liq"][idx] * LEG_GAP_US).astype(np.int64)
    legs["t"] = legs["t"] + gap
    legs["leg"][:] = 1
    st = legs["straddle"]
    # straddle: the other option type on the same strike and expiry, same side and size
    legs["is_call"] = np.where(st, ~legs["is_call"], legs["is_call"])
    so, k, ivo = legs["s"][st], legs["strike"][st], legs["iv"][st]
    to = (legs["expiry"][st] - legs["t"][st]) / (DAY_US * YEAR_DAYS)
    legs["price"][st] = bs_price(so, k, to, ivo, legs["is_call"][st])
    legs["delta"][st] = bs_delta(so, k, to, ivo, legs["is_call"][st])
    # basis trade: long spot against the short future, same quantity, held as long
    b = legs["basis"]
    legs["kind"][b] = SPOT
    legs["dir"][b] = 1
    legs["lev"][b] = np.nan
    legs["expiry"][b] = 0
    sb = legs["s"][b]
    legs["price"][b] = sb * (1.0 + np.where(legs["maker"][b], -1.0, 1.0) * HALF_SPREAD[SPOT])
    return Trips({k: np.concatenate([c[k], legs[k]]) for k in c})
