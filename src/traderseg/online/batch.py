"""The batch reference of the stream's decisions, computed from the store.

For every decision interval (see :mod:`traderseg.online.consumer`) in which some account
traded, the features of those accounts are computed by the batch engine
(:func:`traderseg.features.compute.compute_features`) as of the interval's end and passed
to the same :meth:`DecisionEngine.decide` the stream uses. The stream's decisions must
equal these exactly; the tests compare them after consumers killed at random points.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pandas as pd

from traderseg.features.compute import compute_features
from traderseg.online.decide import DecisionEngine, empty_assignments

US_PER_S = 1_000_000


@dataclass
class BatchDecisions:
    """Every interval's decisions and each account's latest one."""

    history: pd.DataFrame
    latest: pd.DataFrame  # one row per account, layout of ``controls``
    assignment: pd.DataFrame


def interval_triggers(con: duckdb.DuckDBPyConnection, tick_us: int) -> pd.DataFrame:
    """Per (interval end, account): the latest fill (ties: the largest fill id)."""
    return con.execute(
        f"""
        SELECT (epoch_us(ts) // {tick_us} + 1) * {tick_us} AS tick, account_id,
               arg_max(fill_id, (epoch_us(ts), fill_id)) AS fill_id
        FROM fills GROUP BY ALL ORDER BY tick, account_id
        """).df()


def decide_batch(con: duckdb.DuckDBPyConnection, engine: DecisionEngine, *,
                 decide_every_s: float) -> BatchDecisions:
    """Decide every interval of the store's fills with batch features.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        The store.
    engine : DecisionEngine
        Model, policy and predictions (the stream's).
    decide_every_s : float
        Decision interval in seconds of data time.
    """
    tick_us = int(round(decide_every_s * US_PER_S))
    triggers = interval_triggers(con, tick_us)
    state = empty_assignments()
    parts = []
    for tick, group in triggers.groupby("tick", sort=True):
        at = pd.Timestamp(int(tick) * 1000, tz="UTC")  # type: ignore[arg-type]
        feats = compute_features(con, at.to_pydatetime(), engine.windows)
        accts = group["account_id"].astype(str).tolist()
        feats = feats.loc[accts]
        d = engine.decide(feats, state, at, dict(zip(accts, group["fill_id"], strict=True)))
        state = pd.concat([state.drop(index=d.state.index, errors="ignore"), d.state])
        parts.append(d.rows)
    history = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    latest = (history.drop_duplicates("account_id", keep="last")
              .sort_values("account_id").reset_index(drop=True)) if len(history) else history
    return BatchDecisions(history, latest, state.sort_index())
