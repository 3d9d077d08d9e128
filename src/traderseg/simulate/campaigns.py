"""Campaigns on a simulated venue, with a known true effect per archetype.

:func:`apply_campaign_effect` plays a registered campaign on a store that holds a
simulated venue: during the window ``[start, end)`` each *treated* member of archetype
``a`` trades ``1 + lift[a]`` times as much (each of its fills in the window is repeated
``floor(lift)`` times, plus once more with probability ``frac(lift)``, a second later and
under a new fill id), and a fee rebate returns ``rebate`` of the fee of every fee-paying
fill (originals and repeats); maker rebates (negative fees) are left as they are.
Held-out members are untouched. The draws are seeded by the campaign id and the seed,
fill by fill, so replaying gives the same fills; applying a campaign twice is refused
(it is recorded in ``simulated_campaign_effects``).

:data:`FEE_REBATE` is the reference campaign: a 20% fee rebate that lifts the activity
of fee-sensitive, high-turnover archetypes (perp scalpers most) and leaves spot holders,
hedgers and whales as they are. :data:`NO_EFFECT` changes nothing (the null campaign).

The true effect is known per archetype (:func:`true_effects`): for an account with
window volume ``V``, fees paid ``F+`` (positive fees) and ``F-`` (maker rebates),
treatment adds ``lift * V`` of volume and ``(1 + lift) * (F- + (1 - rebate) * F+) -
(F- + F+)`` of fees, in expectation, and does not change whether it trades. The true
average effect of an archetype is the mean of these over all its members (treated and
held out, from their untreated fills), the quantity the measured uplift estimates.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd

from traderseg.errors import DataError
from traderseg.growth.campaigns import Campaign, get_campaign, read_members

EFFECTS_TABLE = "simulated_campaign_effects"
REPEAT_SUFFIX = "~"
"""Repeated fills get ids ``<fill_id>~<campaign_id>~<n>``."""


@dataclass(frozen=True)
class CampaignEffect:
    """The true effect of a simulated campaign.

    Parameters
    ----------
    name : str
        Name of the effect.
    lift : dict
        Archetype -> relative lift of activity of treated accounts (0: none).
    rebate : float
        Share of positive fees returned to treated accounts in the window.
    """

    name: str
    lift: Mapping[str, float] = field(default_factory=dict)
    rebate: float = 0.0

    def lift_of(self, archetype: str) -> float:
        """Lift of an archetype (0 when not listed)."""
        return float(self.lift.get(archetype, 0.0))


FEE_REBATE = CampaignEffect(
    "fee_rebate",
    {"perp_scalper": 0.6, "hf_perp_maker": 0.25, "retail_leveraged_perp": 0.3,
     "lottery_option_buyer": 0.1, "spot_holder": 0.0, "hedger": 0.0, "whale": 0.0},
    rebate=0.2,
)
NO_EFFECT = CampaignEffect("no_effect", {}, 0.0)


def _uniform(key: str, ids: pd.Series) -> np.ndarray:
    out = np.empty(len(ids))
    for i, f in enumerate(ids.astype(str)):
        d = hashlib.sha256(f"{key}:{f}".encode()).digest()
        out[i] = int.from_bytes(d[:8], "big") / 2.0**64
    return out


def _archetypes(con: duckdb.DuckDBPyConnection) -> pd.Series:
    df = con.execute("SELECT account_id, archetype FROM truth").df()
    if df.empty:
        raise DataError("the store has no truth table rows: campaign effects need a simulated "
                        "venue's archetypes")
    return df.set_index("account_id")["archetype"].astype(str)


def _window_fills(con: duckdb.DuckDBPyConnection, campaign: Campaign,
                  accounts: pd.Series) -> pd.DataFrame:
    con.register("_treated", pd.DataFrame({"account_id": accounts.astype(str)}))
    try:
        return con.execute(
            "SELECT f.* EXCLUDE (source) FROM fills f JOIN _treated USING (account_id) "
            "WHERE f.ts >= ? AND f.ts < ? ORDER BY f.fill_id",
            [campaign.window_start.to_pydatetime(), campaign.window_end.to_pydatetime()]).df()
    finally:
        con.unregister("_treated")


def apply_campaign_effect(con: duckdb.DuckDBPyConnection, campaign_id: str,
                          effect: CampaignEffect, *, seed: int = 0) -> int:
    """Play a registered campaign's effect on the store's simulated fills.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Writable store with the simulated venue and the campaign registered.
    campaign_id : str
        The campaign.
    effect : CampaignEffect
        Its true effect.
    seed : int
        Seed of the repeat draws.

    Returns
    -------
    int
        Fills added.

    Raises
    ------
    DataError
        The campaign's effect was already applied, or the store has no archetypes.
    """
    campaign = get_campaign(con, campaign_id)
    con.execute(f"CREATE TABLE IF NOT EXISTS {EFFECTS_TABLE} (campaign_id VARCHAR PRIMARY "
                "KEY, effect VARCHAR NOT NULL, seed BIGINT NOT NULL, fills_added BIGINT)")
    done = con.execute(f"SELECT effect FROM {EFFECTS_TABLE} WHERE campaign_id = ?",
                       [campaign_id]).fetchone()
    if done is not None:
        raise DataError(f"campaign {campaign_id}: effect {done[0]!r} was already applied")
    members = read_members(con, campaign_id)
    treated = members.loc[members["arm"] == "treatment", "account_id"]
    arche = _archetypes(con)
    fills = _window_fills(con, campaign, treated)
    lift = fills["account_id"].map(arche).map(effect.lift_of).fillna(0.0).to_numpy(float)
    u = _uniform(f"{seed}:{campaign_id}", fills["fill_id"])
    copies = (np.floor(lift) + (u < lift - np.floor(lift))).astype(int)
    rep = fills.loc[fills.index.repeat(copies)].copy()
    n_th = rep.groupby(level=0).cumcount().to_numpy() + 1
    rep["fill_id"] = [f"{f}{REPEAT_SUFFIX}{campaign_id}{REPEAT_SUFFIX}{k}"
                      for f, k in zip(rep["fill_id"], n_th, strict=True)]
    end = pd.Timestamp(campaign.window_end)
    limit = end - pd.Timedelta(microseconds=1)
    moved = rep["ts"] + pd.to_timedelta(n_th, unit="s")
    rep["ts"] = moved.where(moved < limit, limit)
    rep["source"] = f"campaign:{campaign_id}"
    con.execute("BEGIN TRANSACTION")
    try:
        if len(rep):
            con.register("_repeats", rep)
            cols = ", ".join(rep.columns)
            con.execute(f"INSERT INTO fills ({cols}) SELECT {cols} FROM _repeats")
            con.unregister("_repeats")
        if effect.rebate:
            con.register("_treated", pd.DataFrame({"account_id": treated.astype(str)}))
            con.execute(
                "UPDATE fills SET fee_usd = fee_usd * ? WHERE fee_usd > 0 AND ts >= ? AND "
                "ts < ? AND account_id IN (SELECT account_id FROM _treated)",
                [1.0 - effect.rebate, campaign.window_start.to_pydatetime(),
                 campaign.window_end.to_pydatetime()])
            con.unregister("_treated")
        con.execute(f"INSERT INTO {EFFECTS_TABLE} VALUES (?, ?, ?, ?)",
                    [campaign_id, effect.name, seed, len(rep)])
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    _refresh_tiles(con)
    return int(len(rep))


def _refresh_tiles(con: duckdb.DuckDBPyConnection) -> None:
    """Rebuild the daily tiles when the store keeps them (fills changed in place)."""
    from traderseg.features import tiles
    from traderseg.growth.inputs import has_table

    if all(has_table(con, t) for t in tiles.table_names().values()):
        tiles.rebuild(con)


def true_effects(con: duckdb.DuckDBPyConnection, campaign_id: str,
                 effect: CampaignEffect) -> pd.DataFrame:
    """Return the true average effect per archetype (and ``all``) of a campaign on its members.

    Computed from the members' untreated fills in the window (the original fills of
    treated members before the rebate, see the module docstring).

    Returns
    -------
    pandas.DataFrame
        ``group, metric, accounts, true_uplift, lift`` for metrics ``fees_usd``,
        ``volume_usd`` and ``retained``.
    """
    campaign = get_campaign(con, campaign_id)
    members = read_members(con, campaign_id)
    arche = _archetypes(con)
    f = _window_fills(con, campaign, members["account_id"])
    f = f[~f["fill_id"].astype(str).str.contains(REPEAT_SUFFIX + campaign_id + REPEAT_SUFFIX,
                                                 regex=False)]
    treated = set(members.loc[members["arm"] == "treatment", "account_id"])
    fee = f["fee_usd"].to_numpy(float)
    # undo the rebate on treated accounts' fee-paying fills to get the untreated fees
    undo = f["account_id"].isin(treated).to_numpy() & (fee > 0) & (effect.rebate < 1)
    fee = np.where(undo, fee / (1.0 - effect.rebate), fee)
    per = pd.DataFrame({"account_id": f["account_id"], "v": f["notional_usd"],
                        "fpos": np.where(fee > 0, fee, 0.0), "fneg": np.where(fee > 0, 0.0, fee)})
    agg = per.groupby("account_id")[["v", "fpos", "fneg"]].sum()
    agg = agg.reindex(members["account_id"]).fillna(0.0)
    a = members["account_id"].map(arche).fillna("(unknown)").to_numpy()
    lift = np.array([effect.lift_of(x) for x in a])
    fees_eff = (1 + lift) * (agg["fneg"].to_numpy() + (1 - effect.rebate) * agg["fpos"]
                             .to_numpy()) - (agg["fneg"].to_numpy() + agg["fpos"].to_numpy())
    eff = pd.DataFrame({"group": a, "fees_usd": fees_eff,
                        "volume_usd": lift * agg["v"].to_numpy(), "retained": 0.0, "lift": lift})
    rows = []
    for g, part in [("all", eff), *sorted(eff.groupby("group"))]:
        for metric in ("fees_usd", "volume_usd", "retained"):
            rows.append({"group": g, "metric": metric, "accounts": len(part),
                         "true_uplift": float(part[metric].mean()),
                         "lift": float(part["lift"].mean())})
    return pd.DataFrame(rows)
