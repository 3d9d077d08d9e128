"""The campaign registry in the store, and the deterministic randomized holdout.

``campaigns`` holds one row per campaign: its id, the audience it was drawn from (name,
model and policy versions, cutoff), what the treatment is, the campaign window
``[window_start, window_end)``, the holdout share and the stratum column. ``campaign_members`` holds
one row per (campaign, account): the stratum (segment), the account's hash draw and its
arm, ``treatment`` or ``holdout``.

The holdout (:func:`assign_arms`) is randomized but reproducible: each account draws
``u = sha256("<campaign_id>:<account_id>")`` read as a number in ``[0, 1)``; within each
stratum (segment) the ``round_half_up(share * n)`` accounts with the smallest draws are
held out (ties broken by account id). The share is therefore exact per segment, the same
account always lands in the same arm of a campaign, and draws of different campaigns are
independent. A stratum of ``n`` accounts with ``share * n < 0.5`` gets no holdout (and
cannot be measured on its own).

Registering is idempotent: registering the same campaign again with the same parameters
and audience changes nothing; with different ones it is an error.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from traderseg.errors import DataError
from traderseg.schema import TS, Column, Table
from traderseg.store import as_utc

ARMS = ("treatment", "holdout")
DEFAULT_HOLDOUT = 0.1
STRATUM = "segment_id"

CAMPAIGNS = Table(
    name="campaigns",
    key=("campaign_id",),
    description="Registered campaigns: audience, treatment, window and holdout.",
    columns=(
        Column("campaign_id", pa.string(), True, "Campaign id (letters, digits, - and _)."),
        Column("treatment", pa.string(), True, "What treated accounts receive (a fee rebate...)."),
        Column("audience", pa.string(), True, "Name of the audience spec the members came from."),
        Column("audience_as_of", TS, True, "Cutoff of the audience's decision inputs.", "UTC"),
        Column("model_version", pa.string(), True, "Segment model version of the audience."),
        Column("policy_version", pa.string(), True, "Policy version of the audience."),
        Column("window_start", TS, True, "First instant of the campaign window.", "UTC"),
        Column("window_end", TS, True, "End (exclusive) of the campaign window.", "UTC"),
        Column("holdout_share", pa.float64(), True, "Share of each stratum held out.", "fraction"),
        Column("stratum", pa.string(), True, "Member column the holdout is stratified by."),
        Column("members", pa.int64(), True, "Accounts in the campaign."),
        Column("registered_at", TS, True, "Wall-clock time of the first registration.", "UTC"),
    ),
)

CAMPAIGN_MEMBERS = Table(
    name="campaign_members",
    key=("campaign_id", "account_id"),
    description="Accounts of each campaign with their stratum, hash draw and arm.",
    columns=(
        Column("campaign_id", pa.string(), True, "Campaign."),
        Column("account_id", pa.string(), True, "Account."),
        Column("segment_id", pa.int64(), True, "Stratum: the account's segment in the audience."),
        Column("draw", pa.float64(), True, "sha256 of campaign and account id, in [0, 1)."),
        Column("arm", pa.string(), True, "Arm of the account.", allowed=ARMS),
    ),
)


@dataclass(frozen=True)
class Campaign:
    """A registered campaign (a row of ``campaigns``)."""

    campaign_id: str
    treatment: str
    audience: str
    audience_as_of: pd.Timestamp
    model_version: str
    policy_version: str
    window_start: pd.Timestamp
    window_end: pd.Timestamp
    holdout_share: float
    stratum: str
    members: int
    registered_at: pd.Timestamp

    @property
    def days(self) -> float:
        """Length of the campaign window in days."""
        return (self.window_end - self.window_start) / pd.Timedelta(days=1)


def ensure_campaign_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create ``campaigns`` and ``campaign_members`` when missing."""
    con.execute(CAMPAIGNS.duckdb_ddl(primary_key=True))
    con.execute(CAMPAIGN_MEMBERS.duckdb_ddl(primary_key=True))


def hash_draw(campaign_id: str, account_ids: pd.Series | list[str]) -> np.ndarray:
    """Each account's draw in ``[0, 1)``: sha256 of ``"<campaign_id>:<account_id>"``.

    Examples
    --------
    >>> d = hash_draw("c1", ["a", "b"])
    >>> bool(((d >= 0) & (d < 1)).all()), bool((d == hash_draw("c1", ["a", "b"])).all())
    (True, True)
    """
    out = np.empty(len(account_ids))
    for i, a in enumerate(account_ids):
        digest = hashlib.sha256(f"{campaign_id}:{a}".encode()).digest()
        out[i] = int.from_bytes(digest[:8], "big") / 2.0**64
    return out


def holdout_size(n: int, share: float) -> int:
    """Accounts held out of a stratum of ``n``: ``share * n`` rounded half up.

    Examples
    --------
    >>> holdout_size(10, 0.1), holdout_size(4, 0.1), holdout_size(15, 0.1)
    (1, 0, 2)
    """
    return int(np.floor(share * n + 0.5))


def assign_arms(campaign_id: str, members: pd.DataFrame,
                holdout_share: float = DEFAULT_HOLDOUT) -> pd.DataFrame:
    """Draw each member's arm, stratified by segment.

    Parameters
    ----------
    campaign_id : str
        Campaign id (seeds the draws).
    members : pandas.DataFrame
        ``account_id`` and ``segment_id`` of the audience.
    holdout_share : float
        Share of each segment held out, in ``(0, 1)``.

    Returns
    -------
    pandas.DataFrame
        The layout of ``campaign_members``, sorted by account id.
    """
    if not 0.0 < holdout_share < 1.0:
        raise DataError(f"holdout share must be between 0 and 1 (exclusive), got {holdout_share}")
    for col in ("account_id", STRATUM):
        if col not in members.columns:
            raise DataError(f"campaign members need column {col!r}; got {list(members.columns)}")
    if members["account_id"].duplicated().any():
        dup = members.loc[members["account_id"].duplicated(), "account_id"].iloc[0]
        raise DataError(f"account {dup!r} is listed twice in the campaign's audience")
    frame = pd.DataFrame({
        "campaign_id": campaign_id,
        "account_id": members["account_id"].astype(str).to_numpy(),
        "segment_id": pd.to_numeric(members[STRATUM]).astype("int64").to_numpy(),
    })
    frame["draw"] = hash_draw(campaign_id, frame["account_id"].tolist())
    frame = frame.sort_values(["segment_id", "draw", "account_id"]).reset_index(drop=True)
    rank = frame.groupby("segment_id").cumcount().to_numpy()
    size = frame.groupby("segment_id")["account_id"].transform("size").to_numpy()
    held = rank < np.array([holdout_size(int(n), holdout_share) for n in size])
    frame["arm"] = np.where(held, "holdout", "treatment")
    return frame.sort_values("account_id").reset_index(drop=True)[CAMPAIGN_MEMBERS.names]


def register_campaign(
    con: duckdb.DuckDBPyConnection,
    campaign_id: str,
    members: pd.DataFrame,
    *,
    treatment: str,
    start: Any,
    end: Any,
    provenance: dict[str, Any] | None = None,
    holdout_share: float = DEFAULT_HOLDOUT,
) -> Campaign:
    """Register a campaign and draw its arms (idempotent).

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Writable store connection.
    campaign_id : str
        New campaign id.
    members : pandas.DataFrame
        The audience (``account_id``, ``segment_id``).
    treatment : str
        What treated accounts receive.
    start, end : timestamp-like
        Campaign window ``[start, end)``, UTC.
    provenance : dict, optional
        The audience's provenance (``audience``, ``as_of``, ``model_version``,
        ``policy_version``).
    holdout_share : float
        Share of each segment held out.

    Returns
    -------
    Campaign

    Raises
    ------
    DataError
        An empty audience, a window that ends before it starts, or an id registered with
        other parameters.
    """
    if not campaign_id or not all(ch.isalnum() or ch in "-_" for ch in campaign_id):
        raise DataError(f"campaign id {campaign_id!r}: use letters, digits, - and _")
    t0, t1 = as_utc(start, "campaign start"), as_utc(end, "campaign end")
    if not t1 > t0:
        raise DataError(f"campaign {campaign_id}: end {t1.isoformat()} is not after start "
                        f"{t0.isoformat()}")
    if members.empty:
        raise DataError(f"campaign {campaign_id}: the audience is empty")
    prov = provenance or {}
    arms = assign_arms(campaign_id, members, holdout_share)
    row = {
        "campaign_id": campaign_id, "treatment": str(treatment),
        "audience": str(prov.get("audience", "(unnamed)")),
        "audience_as_of": as_utc(prov.get("as_of", t0), "audience as_of"),
        "model_version": str(prov.get("model_version", "unknown")),
        "policy_version": str(prov.get("policy_version", "unknown")),
        "window_start": t0, "window_end": t1, "holdout_share": float(holdout_share),
        "stratum": STRATUM,
        "members": int(len(arms)), "registered_at": pd.Timestamp.now(tz="UTC"),
    }
    ensure_campaign_tables(con)
    existing = find_campaign(con, campaign_id)
    if existing is not None:
        same = all(getattr(existing, k) == row[k] for k in row if k != "registered_at")
        stored = read_members(con, campaign_id)
        same = same and stored["account_id"].tolist() == arms["account_id"].tolist()
        if not same:
            raise DataError(f"campaign {campaign_id} is already registered with other "
                            "parameters or members; choose a new id")
        return existing
    con.execute("BEGIN TRANSACTION")
    try:
        con.register("_campaign_row", pd.DataFrame([row])[CAMPAIGNS.names])
        con.execute(f"INSERT INTO {CAMPAIGNS.name} SELECT * FROM _campaign_row")
        con.register("_campaign_members", arms)
        con.execute(f"INSERT INTO {CAMPAIGN_MEMBERS.name} SELECT * FROM _campaign_members")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    finally:
        for name in ("_campaign_row", "_campaign_members"):
            con.unregister(name)
    found = find_campaign(con, campaign_id)
    assert found is not None
    return found


def _table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    row = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
                      [name]).fetchone()
    return bool(row and row[0])


def find_campaign(con: duckdb.DuckDBPyConnection, campaign_id: str) -> Campaign | None:
    """Return the registered campaign ``campaign_id`` (None when there is none)."""
    if not _table_exists(con, CAMPAIGNS.name):
        return None
    df = con.execute(f"SELECT * FROM {CAMPAIGNS.name} WHERE campaign_id = ?",
                     [campaign_id]).df()
    if df.empty:
        return None
    rec: dict[str, Any] = {str(k): v for k, v in df.iloc[0].to_dict().items()}
    for k in ("audience_as_of", "window_start", "window_end", "registered_at"):
        rec[k] = as_utc(rec[k], k)
    rec["members"] = int(rec["members"])
    rec["holdout_share"] = float(rec["holdout_share"])
    return Campaign(**rec)


def get_campaign(con: duckdb.DuckDBPyConnection, campaign_id: str) -> Campaign:
    """Return the registered campaign ``campaign_id`` (DataError naming the known ones)."""
    found = find_campaign(con, campaign_id)
    if found is None:
        known = list_campaigns(con)["campaign_id"].tolist()
        raise DataError(f"no campaign {campaign_id!r} in the store; registered: "
                        f"{', '.join(known) if known else 'none'}")
    return found


def list_campaigns(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """All registered campaigns, oldest registration first."""
    if not _table_exists(con, CAMPAIGNS.name):
        return pd.DataFrame(columns=CAMPAIGNS.names)
    return con.execute(f"SELECT * FROM {CAMPAIGNS.name} ORDER BY registered_at, "
                       "campaign_id").df()


def read_members(con: duckdb.DuckDBPyConnection, campaign_id: str) -> pd.DataFrame:
    """Members of a campaign with their arms, sorted by account id."""
    if not _table_exists(con, CAMPAIGN_MEMBERS.name):
        return pd.DataFrame(columns=CAMPAIGN_MEMBERS.names)
    return con.execute(f"SELECT * FROM {CAMPAIGN_MEMBERS.name} WHERE campaign_id = ? "
                       "ORDER BY account_id", [campaign_id]).df()
