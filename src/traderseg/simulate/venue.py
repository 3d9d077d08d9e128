"""One block of accounts, simulated end to end: sign-up, trading, churn, transfers.

A block is the unit of randomness: its generator is seeded from ``(seed, block index)``,
so the result never depends on how blocks are grouped into output parts.

Lifecycle. About 60% of accounts exist before the window (signed up up to two years
earlier); the rest sign up at a uniform time inside it. Each account leaves (churns)
with a daily hazard ``h = base * (1 + loss_churn * min(loss / capital, 3)) *
(1 - 0.5 * min(gain / capital, 1))`` where ``loss`` and ``gain`` are the account's
running realised PnL (closing fills and option settlements) before that day. On its
churn day the account opens nothing more and closes its leveraged positions and the
options it meant to close early; kept spot and options left to expire stay.
``truth.churned_at`` is the time of the account's last fill (the start of the churn day
for an account that never traded); no fill of the account is later.

That is the ``easy`` level. At the other levels (:mod:`.difficulty`) accounts trade
through two legs (blends and migrations, :mod:`.mixing`) and churn follows precursors
visible in fills (:mod:`.churn`); what happens on the churn day is the same.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa

from traderseg.schema import ACCOUNTS, TRANSFERS, TRUTH
from traderseg.simulate.archetypes import (
    ARCHETYPE_NAMES,
    CHANNELS,
    REGIONS,
    AccountParams,
    draw_accounts,
)
from traderseg.simulate.calendar import DAY_US, HOUR_US, ExpiryCalendar
from traderseg.simulate.churn import CAUSES, draw_engagement, precursor_churn
from traderseg.simulate.difficulty import DIFFICULTIES, Difficulty
from traderseg.simulate.exits import ExitResolver
from traderseg.simulate.fees import vip_tier
from traderseg.simulate.fills import account_ids, build_fills
from traderseg.simulate.market import MarketPath
from traderseg.simulate.mixing import NO_ARCHETYPE, draw_legs
from traderseg.simulate.trips import NEVER, OPTION, SPOT, draw_trips

EXISTING_SHARE = 0.6
HISTORY_DAYS = 730


@dataclass(frozen=True)
class VenueContext:
    """What every block shares: the market, the calendar, the exit resolver."""

    seed: int
    market: MarketPath
    calendar: ExpiryCalendar
    resolver: ExitResolver
    mult: np.ndarray
    difficulty: Difficulty = DIFFICULTIES["easy"]


@dataclass
class BlockResult:
    """Tables of one block."""

    fills: pa.Table
    accounts: pa.Table
    truth: pa.Table
    transfers: pa.Table


def _churn_day(
    market: MarketPath,
    acc: np.ndarray,
    pnl_t: np.ndarray,
    pnl: np.ndarray,
    params: AccountParams,
    created_day: np.ndarray,
    e: np.ndarray,
) -> np.ndarray:
    """Churn day per account (``days`` = never), from running realised PnL."""
    return _pnl_churn(market, acc, pnl_t, pnl, params, created_day, e)[0]


def _pnl_churn(
    market: MarketPath,
    acc: np.ndarray,
    pnl_t: np.ndarray,
    pnl: np.ndarray,
    params: AccountParams,
    created_day: np.ndarray,
    e: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Churn day per account (``days`` = never) and cause, from running realised PnL."""
    n, days = len(params), market.days
    day = np.floor_divide(pnl_t - market.start_us, DAY_US)
    ok = (day >= 0) & (day < days)
    daily = np.bincount(acc[ok] * days + day[ok], weights=pnl[ok], minlength=n * days)
    cum = np.cumsum(daily.reshape(n, days), axis=1)
    before = np.concatenate([np.zeros((n, 1)), cum[:, :-1]], axis=1) / params.capital[:, None]
    loss = np.minimum(np.maximum(-before, 0.0), 3.0)
    gain = np.minimum(np.maximum(before, 0.0), 1.0)
    loss_term = params.loss_churn[:, None] * loss
    h = params.churn_hazard[:, None] * (1.0 + loss_term) * (1.0 - 0.5 * gain)
    h = np.where(np.arange(days)[None, :] > created_day[:, None], h, 0.0)
    over = np.cumsum(h, axis=1) >= e[:, None]
    churned = over.any(axis=1)
    day = np.where(churned, over.argmax(axis=1), days)
    by_loss = loss_term[np.arange(n), np.minimum(day, days - 1)] > 1.0
    cause = np.where(churned, np.where(by_loss, CAUSES.index("losses"), 0), -1)
    return day, cause


def simulate_block(ctx: VenueContext, block: int, first_account: int, n: int) -> BlockResult:
    """Simulate accounts ``first_account .. first_account + n - 1``.

    Parameters
    ----------
    ctx : VenueContext
        Shared market, calendar and resolver.
    block : int
        Block index (seeds the block's generator).
    first_account : int
        Global index of the block's first account.
    n : int
        Number of accounts in the block.

    Returns
    -------
    BlockResult
    """
    mk = ctx.market
    diff = ctx.difficulty
    rng = np.random.default_rng(np.random.SeedSequence(ctx.seed, spawn_key=(1, block)))
    params = draw_accounts(rng, n, spread=diff.spread)
    existing = rng.random(n) < EXISTING_SHARE
    back = (rng.uniform(1.0, HISTORY_DAYS, n) * DAY_US).astype(np.int64)
    inside = (rng.uniform(0.0, mk.days, n) * DAY_US).astype(np.int64)
    created = np.where(existing, mk.start_us - back, mk.start_us + inside)
    created_day = np.floor_divide(created - mk.start_us, DAY_US)
    churn_e = rng.exponential(1.0, n)
    weight = np.ones(n)
    second = np.full(n, NO_ARCHETYPE)
    migrated_day = np.full(n, -1)
    if diff.churn is None:  # easy: the original simulator
        trips = draw_trips(rng, params, created, mk, ctx.calendar, ctx.mult)
        first = ctx.resolver.resolve(trips, trips["exit_plan"])
        pnl_t = np.concatenate(
            [np.where(first.closed, first.t, NEVER), np.where(first.settled, first.settle_t, NEVER)]
        )
        pnl = np.concatenate([first.pnl, first.settle_pnl])
        churn_day, cause = _pnl_churn(
            mk, np.concatenate([trips["acc"], trips["acc"]]), pnl_t, pnl, params, created_day,
            churn_e,
        )
    else:
        spec = diff.churn
        xrng = np.random.default_rng(np.random.SeedSequence(ctx.seed, spawn_key=(2, block)))
        legs = draw_legs(xrng, params, created_day, mk.days, diff)
        params = replace(params, capital=legs.params.capital[:n])
        engagement = draw_engagement(xrng, n, mk.days, spec)
        noise = xrng.lognormal(0.0, spec.noise_sigma, n)
        fade = np.concatenate([engagement, engagement])
        trips = draw_trips(
            rng, legs.params, np.concatenate([created, created]), mk, ctx.calendar, ctx.mult,
            activity=legs.activity * fade, size=fade**spec.fade_size,
        )
        trips.cols["acc"] = trips.cols["acc"] % n
        first = ctx.resolver.resolve(trips, trips["exit_plan"])
        churn_day, cause = precursor_churn(
            mk, spec, trips["acc"][first.closed], first.t[first.closed],
            first.pnl[first.closed], first.liquidated[first.closed], params.capital,
            params.churn_hazard * spec.base_scale * noise, engagement, created_day, churn_e,
        )
        weight, second, migrated_day = legs.weight, legs.second, legs.migrated_day

    # leave on the churn day: nothing opened from then on, positions closed that day
    cd = churn_day[trips["acc"]]
    trips = trips.subset(trips["day"] < cd)
    cd = churn_day[trips["acc"]]
    churn_start = mk.start_us + cd * DAY_US
    kind = trips["kind"]
    plan = trips["exit_plan"]
    leaves = cd < mk.days
    must_close = (
        leaves
        & ~trips["to_expiry"]
        & (plan >= churn_start)
        & ((kind != SPOT) | (plan < mk.end_us) | trips["basis"])
    )
    # options close before they expire; everything else some time that day
    day_end = np.where(
        kind == OPTION, np.minimum(trips["expiry"], churn_start + DAY_US), churn_start + DAY_US
    )
    moved = churn_start + (trips["close_frac"] * (day_end - churn_start)).astype(np.int64)
    plan = np.where(must_close, moved, plan)
    ex = ctx.resolver.resolve(trips, plan)

    vip = vip_tier(
        params.opens_per_day * params.active_prob * 30.0 * 2.0 * params.size_usd, params.vip_floor
    )
    acc_ids = account_ids(first_account + np.arange(n))
    fills = build_fills(ctx.seed, first_account, trips, ex, vip)

    last_fill = np.full(n, np.iinfo(np.int64).min)
    np.maximum.at(last_fill, trips["acc"], trips["t"])
    if ex.closed.any():
        np.maximum.at(last_fill, trips["acc"][ex.closed], ex.t[ex.closed])
    churned = churn_day < mk.days
    churned_at = np.where(
        last_fill > np.iinfo(np.int64).min, last_fill, mk.start_us + churn_day * DAY_US
    )
    churned_at = np.maximum(churned_at, created)

    ts = pa.timestamp("us", tz="UTC")
    accounts = pa.table(
        {
            "account_id": acc_ids,
            "created_at": pa.array(created, ts),
            "region": pa.array(np.array(REGIONS)[params.region]),
            "kyc_tier": pa.array(params.kyc.astype(np.int64)),
            "channel": pa.array(np.array(CHANNELS)[params.channel]),
            "vip_tier": pa.array(vip),
        },
        schema=ACCOUNTS.arrow_schema(),
    )
    names = np.array(ARCHETYPE_NAMES)
    has_second = second != NO_ARCHETYPE
    # a migration after the account's last fill never happened
    migrated = (migrated_day >= 0) & (
        ~churned | (mk.start_us + migrated_day * DAY_US < churned_at)
    )
    blend = has_second & (migrated_day < 0)
    crash_at = np.full(n, np.iinfo(np.int64).max)
    if ex.by_crash.any():
        np.minimum.at(crash_at, trips["acc"][ex.by_crash], ex.t[ex.by_crash])
    truth = pa.table(
        {
            "account_id": acc_ids,
            "archetype": pa.array(names[params.arch]),
            "created_at": pa.array(created, ts),
            "churned_at": pa.array(churned_at, ts, mask=~churned),
            "archetype_weight": pa.array(np.where(blend, weight, 1.0)),
            "second_archetype": pa.array(names[np.where(blend, second, 0)], mask=~blend),
            "second_weight": pa.array(np.where(blend, 1.0 - weight, 0.0)),
            "migrated_to": pa.array(names[np.where(migrated, second, 0)], mask=~migrated),
            "migrated_at": pa.array(mk.start_us + migrated_day * DAY_US, ts, mask=~migrated),
            "churn_cause": pa.array(
                np.array(CAUSES)[np.maximum(cause, 0)], mask=~churned
            ),
            "crash_liquidated_at": pa.array(
                crash_at, ts, mask=crash_at == np.iinfo(np.int64).max
            ),
        },
        schema=TRUTH.arrow_schema(),
    )
    realised = np.bincount(trips["acc"], weights=ex.pnl, minlength=n)
    transfers = _transfers(
        rng, ctx, first_account, params.capital, created, churned, churned_at, realised
    )
    return BlockResult(fills=fills, accounts=accounts, truth=truth, transfers=transfers)


def _transfers(
    rng: np.random.Generator,
    ctx: VenueContext,
    first_account: int,
    capital: np.ndarray,
    created: np.ndarray,
    churned: np.ndarray,
    churned_at: np.ndarray,
    realised: np.ndarray,
) -> pa.Table:
    """Draw deposits and withdrawals of a block's accounts.

    A first deposit at sign-up, top-ups (more after losses), occasional withdrawals (more
    after gains) and a final withdrawal of what is left when the account leaves.
    """
    mk = ctx.market
    n = len(capital)
    stop = np.where(churned, churned_at, mk.end_us)
    lo = np.maximum(created, mk.start_us)
    months = np.maximum(stop - lo, 0) / (30.0 * DAY_US)
    rel = realised / capital
    n_dep = rng.poisson(months * 0.4 * (1.0 + 2.0 * np.clip(-rel, 0, 3)))
    n_wd = rng.poisson(months * 0.3 * (1.0 + 2.0 * np.clip(rel, 0, 3)))
    kinds = [
        (
            np.arange(n),
            0,
            created + (rng.uniform(60, 7200, n) * 1e6).astype(np.int64),
            capital * rng.lognormal(0.0, 0.3, n),
        ),
    ]
    for count, code, scale in ((n_dep, 0, 0.5), (n_wd, 1, 0.3)):
        acc = np.repeat(np.arange(n), count)
        span = np.maximum(stop - lo, 1)[acc]
        t = lo[acc] + (rng.random(len(acc)) * span).astype(np.int64)
        kinds.append((acc, code, t, capital[acc] * scale * rng.lognormal(0.0, 0.5, len(acc))))
    equity = capital * (1.0 + 0.5 * n_dep - 0.3 * n_wd) + realised
    leave = churned & (equity > 1.0)
    acc = np.flatnonzero(leave)
    t = np.minimum(
        churned_at[acc] + (rng.uniform(1, 48, len(acc)) * HOUR_US).astype(np.int64), mk.end_us - 1
    )
    kinds.append((acc, 1, t, equity[acc]))
    acc_all = np.concatenate([k[0] for k in kinds])
    direction = np.concatenate([np.full(len(k[2]), k[1]) for k in kinds])
    t_all = np.concatenate([k[2] for k in kinds])
    t_all = np.maximum(np.minimum(t_all, mk.end_us - 1), created[acc_all])
    amount = np.round(np.maximum(np.concatenate([k[3] for k in kinds]), 1.0), 2)
    order = np.lexsort((t_all, acc_all))
    acc_all, direction, t_all, amount = (
        acc_all[order],
        direction[order],
        t_all[order],
        amount[order],
    )
    seq = np.arange(len(acc_all)) - np.searchsorted(acc_all, acc_all)
    gid = first_account + acc_all
    return pa.table(
        {
            "transfer_id": pa.array(
                [f"{ctx.seed}-T{g}-{s}" for g, s in zip(gid.tolist(), seq.tolist(), strict=True)]
            ),
            "ts": pa.array(t_all, pa.timestamp("us", tz="UTC")),
            "account_id": account_ids(gid),
            "direction": pa.array(np.array(["deposit", "withdrawal"])[direction]),
            "amount_usd": pa.array(amount),
        },
        schema=TRANSFERS.arrow_schema(),
    )
