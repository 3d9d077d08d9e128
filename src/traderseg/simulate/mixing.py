"""Who trades like what, and when: blends, migrations, thin accounts, regimes, fading.

An account of a level other than ``easy`` trades through two *legs*, each a full set of
archetype parameters (:func:`~traderseg.simulate.archetypes.draw_accounts`), and an
activity multiplier per leg and day decides how much of its trading each leg does:

* **pure** account: the first leg trades, the second never;
* **blend** (share ``mix_share``): the dominant archetype has weight ``w`` drawn in
  ``mix_weight``, the second (any other archetype, by the archetype weights) ``1 - w``.
  Weights are shares of the account's opening trades: the second leg's activity is
  scaled so that its expected opens are ``(1 - w) / w`` times the first leg's;
* **migration** (share ``migrate_share`` of accounts whose archetype has a plausible next
  one in :data:`MIGRATIONS`): the first leg trades before the migration day, the second
  (the new archetype) from that day on. Blends do not migrate;
* **thin** accounts (share ``thin_share``): both legs' activity times ``thin_activity``;
* **regime**: every account's activity is multiplied by the regime multiplier on the
  regime's days;
* **fading interest** (:mod:`.churn`): activity times the account's engagement, size
  times engagement to the power ``fade_size``.

A leg's activity multiplier scales both the chance of trading on a day and the number
of opens on an active day (:func:`~traderseg.simulate.trips.draw_trips`), so expected
opens scale with its square.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

from traderseg.simulate.archetypes import ARCHETYPE_NAMES, ARCHETYPES, AccountParams, draw_accounts
from traderseg.simulate.difficulty import Difficulty

# plausible next archetypes of a migrating account
MIGRATIONS: dict[str, tuple[str, ...]] = {
    "retail_leveraged_perp": ("option_premium_seller", "perp_scalper", "lottery_option_buyer"),
    "spot_holder": ("retail_leveraged_perp", "hedger"),
    "lottery_option_buyer": ("retail_leveraged_perp", "option_premium_seller"),
    "perp_scalper": ("hf_perp_maker", "volatility_trader"),
    "hedger": ("option_premium_seller",),
    "option_premium_seller": ("volatility_trader",),
    "volatility_trader": ("option_premium_seller",),
}
# migrations happen between these shares of the window, at least this many days after
# sign-up
MIGRATION_SPAN = (0.15, 0.85)
MIGRATION_MIN_AGE_DAYS = 7
NO_ARCHETYPE = -1


@dataclass(frozen=True)
class Legs:
    """Two legs per account of a block, and what the truth table records.

    Attributes
    ----------
    params : AccountParams
        ``2 n`` entries: the first legs, then the second legs.
    activity : numpy.ndarray
        Activity multiplier, shape ``(2 n, days)`` (before fading).
    weight : numpy.ndarray
        Weight of the dominant (first) archetype per account, in ``[0.5, 1]``.
    second : numpy.ndarray
        Second archetype index per account (blend partner or migration target), or
        :data:`NO_ARCHETYPE`.
    migrated_day : numpy.ndarray
        Migration day per account (index into the window), ``-1`` if none.
    """

    params: AccountParams
    activity: np.ndarray
    weight: np.ndarray
    second: np.ndarray
    migrated_day: np.ndarray


def _concat(a: AccountParams, b: AccountParams) -> AccountParams:
    return AccountParams(
        **{f.name: np.concatenate([getattr(a, f.name), getattr(b, f.name)]) for f in fields(a)}
    )


def _expected_opens(p: AccountParams) -> np.ndarray:
    return np.minimum(p.active_prob, 0.97) * np.maximum(p.opens_per_day, 1.0)


def draw_legs(
    rng: np.random.Generator,
    first: AccountParams,
    created_day: np.ndarray,
    days: int,
    diff: Difficulty,
) -> Legs:
    """Draw blends, migrations and thin accounts for a block.

    Parameters
    ----------
    rng : numpy.random.Generator
        The block's second generator (only used at levels other than ``easy``).
    first : AccountParams
        The accounts' first legs (account-level attributes are taken from them).
    created_day : numpy.ndarray
        Sign-up day per account (index into the window; negative before it).
    days : int
        Window length.
    diff : Difficulty
        The level.

    Returns
    -------
    Legs
    """
    n = len(first)
    n_arch = len(ARCHETYPES)
    w_arch = np.array([a.weight for a in ARCHETYPES])
    blend = rng.random(n) < diff.mix_share
    weight = np.where(blend, rng.uniform(diff.mix_weight[0], diff.mix_weight[1], n), 1.0)
    # blend partner: any other archetype, by the archetype weights
    p = np.broadcast_to(w_arch, (n, n_arch)).copy()
    p[np.arange(n), first.arch] = 0.0
    cum = np.cumsum(p / p.sum(axis=1, keepdims=True), axis=1)
    partner = np.minimum((rng.random(n)[:, None] > cum).sum(axis=1), n_arch - 1)
    # migration target among the plausible next archetypes
    names = np.array(ARCHETYPE_NAMES)
    can = np.array([names[a] in MIGRATIONS for a in first.arch], dtype=bool)
    lo = np.maximum(int(MIGRATION_SPAN[0] * days), created_day + MIGRATION_MIN_AGE_DAYS)
    hi = int(MIGRATION_SPAN[1] * days)
    u_target, u_day = rng.random(n), rng.random(n)
    migrate = ~blend & can & (rng.random(n) < diff.migrate_share) & (lo < hi)
    target = np.full(n, NO_ARCHETYPE)
    for i in np.flatnonzero(migrate):
        options = MIGRATIONS[names[first.arch[i]]]
        target[i] = ARCHETYPE_NAMES.index(options[int(u_target[i] * len(options))])
    mday = np.where(migrate, lo + np.floor(u_day * (hi - lo)).astype(np.int64), -1)
    thin = rng.random(n) < diff.thin_share
    second_arch = np.where(migrate, target, np.where(blend, partner, first.arch))
    second = draw_accounts(rng, n, spread=diff.spread, arch=second_arch)
    # account-level attributes come from the first leg
    keep = ("region", "kyc", "channel", "vip_floor", "churn_hazard")
    second = replace(second, **{k: getattr(first, k) for k in keep})
    capital = np.where(
        migrate,
        np.maximum(first.capital, second.capital),
        np.where(blend, weight * first.capital + (1 - weight) * second.capital, first.capital),
    )
    first = replace(first, capital=capital)
    second = replace(second, capital=capital)

    d = np.arange(days)[None, :]
    act1 = np.ones((n, days))
    ratio = (1.0 - weight) / weight * _expected_opens(first) / _expected_opens(second)
    act2 = np.where(blend[:, None], np.sqrt(ratio)[:, None], 0.0) * np.ones((1, days))
    moved = migrate[:, None] & (d >= mday[:, None])
    act1 = np.where(moved, 0.0, act1)
    act2 = np.where(moved, 1.0, act2)
    scale = np.where(thin, diff.thin_activity, 1.0)[:, None] * regime_multiplier(days, diff)
    activity = np.concatenate([act1 * scale, act2 * scale])
    return Legs(
        params=_concat(first, second),
        activity=activity,
        weight=weight,
        second=np.where(migrate | blend, second_arch, NO_ARCHETYPE),
        migrated_day=mday,
    )


def regime_multiplier(days: int, diff: Difficulty) -> np.ndarray:
    """Activity multiplier of the regime per day, shape ``(1, days)``.

    The regime covers days ``floor(start * days)`` to ``floor((start + length) * days)``
    (exclusive) of the window.
    """
    start, length, mult = diff.regime
    d = np.arange(days)
    on = (d >= int(start * days)) & (d < int((start + length) * days))
    return np.where(on, mult, 1.0)[None, :]
