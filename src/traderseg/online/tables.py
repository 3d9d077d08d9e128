"""The decision tables of the store: current controls per account and their audit log.

``controls`` holds one row per account: the segment it is assigned to, its risk profile
and predictions, every control of :data:`traderseg.policy.controls.CONTROLS`, the rule that
set each one, and the policy and model versions that decided it. It is replaced row by
row as decisions change.

``control_audit`` is append-only: every change of a control is one row (account, control,
old -> new value, rule, policy and model version, triggering fill, times, actor). Rows are
never updated or deleted; a change is only recorded when the value differs from the
account's current one, so re-running a decision over the same data adds nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from traderseg.policy.controls import CONTROL_NAMES, CONTROLS
from traderseg.schema import TS, Column, Table

CONTROLS_TABLE = Table(
    name="controls",
    key=("account_id",),
    description="Current segment, risk profile, predictions and controls of every account.",
    columns=(
        Column("account_id", pa.string(), True, "Venue account."),
        Column("segment_id", pa.int64(), True, "Stable segment id of the exported model."),
        Column("segment_name", pa.string(), True, "Segment name."),
        Column("membership", pa.float64(), False, "Membership probability of the segment."),
        Column("lifecycle_stage", pa.string(), False, "Lifecycle stage (new, active, ...)."),
        Column("value_tier", pa.string(), False, "Value tier by fees paid."),
        Column("risk_score", pa.float64(), False, "Risk score, 0 (calm) to 100 (wild)."),
        Column("kyc_tier", pa.int64(), False, "KYC tier from `accounts`."),
        Column("region", pa.string(), False, "Region from `accounts`."),
        Column("churn_probability", pa.float64(), False, "Predicted churn probability."),
        Column("liquidation_risk", pa.float64(), False,
               "Predicted probability of a liquidation in the next 7 days."),
        *(Column(c.name, c.type, True, c.description, c.unit) for c in CONTROLS),
        Column("review_reason", pa.string(), False, "Why the review flag is raised."),
        Column("rules", pa.string(), True, "JSON object: control -> name of the rule that set it."),
        Column("policy_version", pa.string(), True, "Version of the policy that decided."),
        Column("model_version", pa.string(), True, "Version of the segment model."),
        Column("as_of", TS, True, "Data time of the decision (the triggering fill's time, or the batch cutoff).", "UTC"),
        Column("fill_id", pa.string(), False, "Fill that triggered the decision (null for a batch decision)."),
        Column("updated_at", TS, True, "Wall-clock time the row was written.", "UTC"),
    ),
)

AUDIT_TABLE = Table(
    name="control_audit",
    key=("audit_id",),
    description="Append-only log of every control change.",
    columns=(
        Column("audit_id", pa.int64(), True, "Increasing id of the change."),
        Column("account_id", pa.string(), True, "Account whose control changed."),
        Column("control", pa.string(), True, "Control name.", allowed=CONTROL_NAMES),
        Column("old_value", pa.string(), False, "Value before (null: the account had no controls yet)."),
        Column("new_value", pa.string(), True, "Value after."),
        Column("rule", pa.string(), True, "Rule that set the new value."),
        Column("policy_version", pa.string(), True, "Policy version."),
        Column("model_version", pa.string(), True, "Segment model version."),
        Column("fill_id", pa.string(), False, "Triggering fill (null for batch or manual changes)."),
        Column("effective_at", TS, True, "Data time from which the new value applies.", "UTC"),
        Column("recorded_at", TS, True, "Wall-clock time of the record.", "UTC"),
        Column("actor", pa.string(), True, "Who changed it: `stream`, `batch`, or `key:<id>` for a service key."),
    ),
)

ONLINE_TABLES = (CONTROLS_TABLE, AUDIT_TABLE)


def ensure_online_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create ``controls`` and ``control_audit`` when missing."""
    con.execute(CONTROLS_TABLE.duckdb_ddl(primary_key=True))
    con.execute(AUDIT_TABLE.duckdb_ddl())


def control_text(name: str, value: Any) -> str | None:
    """Return the audit log's text of a control value (``None`` for a missing one)."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, bool) or hasattr(value, "dtype") and str(value.dtype) == "bool":
        return "true" if bool(value) else "false"
    if isinstance(value, float):
        return repr(float(value))
    return str(value)


def read_controls(con: duckdb.DuckDBPyConnection,
                  accounts: Sequence[str] | None = None) -> pd.DataFrame:
    """Read the current controls (all accounts, or those in ``accounts``), ordered by account."""
    ensure_online_tables(con)
    if accounts is None:
        return con.execute("SELECT * FROM controls ORDER BY account_id").df()
    ids = pd.DataFrame({"account_id": list(map(str, accounts))})
    con.register("_wanted_accounts", ids)
    try:
        return con.execute("SELECT c.* FROM controls c JOIN _wanted_accounts w USING "
                           "(account_id) ORDER BY account_id").df()
    finally:
        con.unregister("_wanted_accounts")


def audit_changes(old: pd.DataFrame, new: pd.DataFrame, *, actor: str,
                  recorded_at: pd.Timestamp) -> pd.DataFrame:
    """Return the audit rows for moving accounts from ``old`` to ``new`` controls.

    Parameters
    ----------
    old : pandas.DataFrame
        Current rows of ``controls`` for (some of) the accounts in ``new``; accounts absent
        from it have no controls yet (their changes have a null ``old_value``).
    new : pandas.DataFrame
        New rows in the layout of ``controls``.
    actor : str
        ``stream``, ``batch`` or ``key:<id>``.
    recorded_at : pandas.Timestamp
        Wall-clock time of the record.

    Returns
    -------
    pandas.DataFrame
        One row per changed control, without ``audit_id`` (assigned on append).
    """
    prev = old.set_index("account_id") if len(old) else None
    rows: list[dict[str, Any]] = []
    for rec in new.to_dict("records"):
        acct = str(rec["account_id"])
        before = prev.loc[acct] if prev is not None and acct in prev.index else None
        rules = json.loads(rec["rules"]) if isinstance(rec["rules"], str) else dict(rec["rules"])
        for name in CONTROL_NAMES:
            new_text = control_text(name, rec[name])
            old_text = None if before is None else control_text(name, before[name])
            if before is not None and old_text == new_text:
                continue
            rows.append({
                "account_id": acct, "control": name, "old_value": old_text,
                "new_value": new_text, "rule": str(rules.get(name, "default")),
                "policy_version": str(rec["policy_version"]),
                "model_version": str(rec["model_version"]),
                "fill_id": rec.get("fill_id"), "effective_at": rec["as_of"],
                "recorded_at": recorded_at, "actor": actor,
            })
    cols = [c for c in AUDIT_TABLE.names if c != "audit_id"]
    return pd.DataFrame(rows, columns=cols)


def write_decisions(con: duckdb.DuckDBPyConnection, new: pd.DataFrame, *,
                    actor: str) -> int:
    """Upsert ``new`` rows into ``controls`` and append their changes to the audit log.

    Runs in the caller's transaction when one is open (the stream checkpoints its
    position in the same one), else in its own.

    Returns
    -------
    int
        Number of audit rows appended.
    """
    ensure_online_tables(con)
    if new.empty:
        return 0
    new = new[CONTROLS_TABLE.names].copy()
    new["updated_at"] = pd.Timestamp.now(tz="UTC")
    old = read_controls(con, new["account_id"].tolist())
    changes = audit_changes(old, new, actor=actor, recorded_at=new["updated_at"].iloc[0])
    con.register("_new_controls", new)
    try:
        con.execute("INSERT OR REPLACE INTO controls SELECT * FROM _new_controls")
    finally:
        con.unregister("_new_controls")
    if len(changes):
        start = con.execute("SELECT coalesce(max(audit_id), 0) FROM control_audit").fetchone()
        changes.insert(0, "audit_id", range(int(start[0]) + 1, int(start[0]) + 1 + len(changes)))
        con.register("_new_audit", changes)
        try:
            con.execute("INSERT INTO control_audit SELECT * FROM _new_audit")
        finally:
            con.unregister("_new_audit")
    return len(changes)


def read_audit(con: duckdb.DuckDBPyConnection, *, account: str | None = None,
               since: pd.Timestamp | None = None) -> pd.DataFrame:
    """Audit rows, oldest first, for one account and/or from a time (``effective_at``)."""
    ensure_online_tables(con)
    where, params = [], []
    if account is not None:
        where.append("account_id = ?")
        params.append(str(account))
    if since is not None:
        where.append("effective_at >= ?")
        params.append(pd.Timestamp(since).to_pydatetime())
    sql = "SELECT * FROM control_audit"
    if where:
        sql += " WHERE " + " AND ".join(where)
    return con.execute(sql + " ORDER BY audit_id", params).df()
