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
import numpy as np
import pandas as pd
import pyarrow as pa

from traderseg.errors import StoreError
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


def _exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    row = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
                      [name]).fetchone()
    return bool(row and row[0])


def _few(verb: str, names: list[str], tail: str = "") -> str:
    """``verb`` and up to four of ``names`` (empty when there are none)."""
    if not names:
        return ""
    more = f" and {len(names) - 4} more" if len(names) > 4 else ""
    return f"{verb} {', '.join(names[:4])}{more}{tail}"


def _create_online_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(CONTROLS_TABLE.duckdb_ddl(primary_key=True))
    con.execute(AUDIT_TABLE.duckdb_ddl())


def ensure_online_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create ``controls`` and ``control_audit`` when missing; refuse them of another shape.

    Raises
    ------
    StoreError
        A table of that name exists with other columns (a store written by another
        version, or a table made by hand): naming the store, the table and the difference.
    """
    _create_online_tables(con)
    found: dict[str, list[str]] = {}
    for table, column in con.execute(
            "SELECT table_name, column_name FROM duckdb_columns() "
            "WHERE database_name = current_database() AND schema_name = 'main' "
            "AND table_name IN (?, ?) ORDER BY table_name, column_index",
            [CONTROLS_TABLE.name, AUDIT_TABLE.name]).fetchall():
        found.setdefault(table, []).append(column)
    for t in ONLINE_TABLES:
        have = found.get(t.name, [])
        if have != t.names:
            from traderseg.store import store_name

            missing = [c for c in t.names if c not in have]
            extra = [c for c in have if c not in t.names]
            what = "has its columns in another order"
            if missing or extra:
                what = "; ".join(p for p in (_few("lacks", missing),
                                            _few("has", extra, " besides")) if p)
            raise StoreError(
                f"{store_name(con)}: table {t.name} {what}"
                f" (written by another version or by hand): move it aside or use another store")


def control_text(name: str, value: Any) -> str | None:
    """Return the audit log's text of a control value (``None`` for a missing one)."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, bool) or hasattr(value, "dtype") and str(value.dtype) == "bool":
        return "true" if bool(value) else "false"
    if isinstance(value, float):
        return repr(float(value))
    return str(value)


def _texts(name: str, values: pd.Series) -> np.ndarray:
    """:func:`control_text` of every value of a column (computed once per distinct value)."""
    codes, uniq = pd.factorize(values)
    table = np.array([control_text(name, v) for v in uniq] + [None], dtype=object)
    return table[codes]


def read_controls(con: duckdb.DuckDBPyConnection,
                  accounts: Sequence[str] | None = None) -> pd.DataFrame:
    """Read the current controls (all accounts, or those in ``accounts``), ordered by account."""
    if not _exists(con, "controls"):
        return pd.DataFrame({c: pd.Series(dtype=object) for c in CONTROLS_TABLE.names})
    if accounts is None:
        return con.execute("SELECT * FROM controls ORDER BY account_id").df()
    return con.execute("SELECT * FROM controls WHERE account_id IN "
                       "(SELECT unnest(?::VARCHAR[])) ORDER BY account_id",
                       [list(map(str, accounts))]).df()


def audit_changes(old: pd.DataFrame, new: pd.DataFrame, *, actor: str,
                  recorded_at: pd.Timestamp) -> pd.DataFrame:
    """Return the audit rows for moving accounts from ``old`` to ``new`` controls.

    Parameters
    ----------
    old : pandas.DataFrame
        Current rows of ``controls`` for (some of) the accounts in ``new``; accounts absent
        from it have no controls yet (their changes have a null ``old_value``).
    new : pandas.DataFrame
        New rows in the layout of ``controls``, in the order they apply; an account may
        have several (each is compared with the one before it).
    actor : str
        ``stream``, ``batch`` or ``key:<id>``.
    recorded_at : pandas.Timestamp
        Wall-clock time of the record.

    Returns
    -------
    pandas.DataFrame
        One row per changed control, in the order of ``new`` then of the controls, without
        ``audit_id`` (assigned on append).
    """
    cols = [c for c in AUDIT_TABLE.names if c != "audit_id"]
    if new.empty:
        return pd.DataFrame(columns=cols)
    new = new.reset_index(drop=True)
    acct = new["account_id"].astype(str).to_numpy(dtype=object)
    n = len(acct)
    # the row before each row of the same account in ``new`` (-1: none)
    prev_row = np.full(n, -1, dtype=np.int64)
    last: dict[str, int] = {}
    for i, a in enumerate(acct):
        j = last.get(a)
        if j is not None:
            prev_row[i] = j
        last[a] = i
    later = prev_row >= 0
    if len(old):
        pos = pd.Index(old["account_id"].astype(str)).get_indexer(pd.Index(acct))
        from_db = ~later & (pos >= 0)
    else:
        pos = np.full(n, -1, dtype=np.int64)
        from_db = np.zeros(n, dtype=bool)
    had = later | from_db
    codes, uniq = pd.factorize(new["rules"].map(
        lambda r: r if isinstance(r, str) else json.dumps(dict(r), sort_keys=True)))
    rules = [json.loads(r) for r in uniq]
    rows_, ks, olds, news, rule = [], [], [], [], []
    for k, name in enumerate(CONTROL_NAMES):
        # each distinct value is written out once: a stream's checkpoint repeats few of them
        cur = _texts(name, new[name])
        before = np.full(n, None, dtype=object)
        before[later] = cur[prev_row[later]]
        if from_db.any():
            before[from_db] = _texts(name, old[name])[pos[from_db]]
        idx = np.flatnonzero(~had | (before != cur))
        if len(idx) == 0:
            continue
        rows_.append(idx)
        ks.append(np.full(len(idx), k))
        olds.append(before[idx])
        news.append(cur[idx])
        rule += [str(rules[c].get(name, "default")) for c in codes[idx]]
    if not rows_:
        return pd.DataFrame(columns=cols)
    row = np.concatenate(rows_)
    order = np.lexsort((np.concatenate(ks), row))
    row = row[order]
    out = pd.DataFrame({
        "account_id": acct[row],
        "control": np.array(CONTROL_NAMES, dtype=object)[np.concatenate(ks)[order]],
        "old_value": np.concatenate(olds)[order],
        "new_value": np.concatenate(news)[order],
        "rule": np.array(rule, dtype=object)[order],
        "policy_version": new["policy_version"].astype(str).to_numpy()[row],
        "model_version": new["model_version"].astype(str).to_numpy()[row],
        "fill_id": new["fill_id"].to_numpy()[row],
        "effective_at": pd.to_datetime(new["as_of"], utc=True).to_numpy()[row],
        "recorded_at": recorded_at,
        "actor": actor,
    })
    out["effective_at"] = pd.to_datetime(out["effective_at"], utc=True)
    for c in ("old_value", "new_value"):
        out[c] = out[c].astype(object).where(out[c].notna(), None)
    return out[cols]


def write_decisions(con: duckdb.DuckDBPyConnection, new: pd.DataFrame, *,
                    actor: str) -> int:
    """Upsert ``new`` rows into ``controls`` and append their changes to the audit log.

    ``new`` may hold several rows of one account in the order they apply (a stream's
    successive decisions): every change is audited and the last row stays current. Runs
    in the caller's transaction when one is open (the stream checkpoints its position in
    the same one). The tables are created when missing; their shape is checked once by
    whoever opens the store for writing decisions (:func:`ensure_online_tables`: the stream
    and the service at start), not at every write.

    Returns
    -------
    int
        Number of audit rows appended.
    """
    _create_online_tables(con)
    if new.empty:
        return 0
    new = new[CONTROLS_TABLE.names].copy().reset_index(drop=True)
    now = pd.Timestamp.now(tz="UTC")
    new["updated_at"] = now
    old = read_controls(con, new["account_id"].drop_duplicates().tolist())
    changes = audit_changes(old, new, actor=actor, recorded_at=now)
    latest = new.drop_duplicates("account_id", keep="last")
    # as Arrow: DuckDB scans it without inspecting pandas' object columns (NaN is NULL
    # either way)
    con.register("_new_controls", pa.Table.from_pandas(latest, preserve_index=False))
    try:
        con.execute("INSERT OR REPLACE INTO controls SELECT * FROM _new_controls")
    finally:
        con.unregister("_new_controls")
    if len(changes):
        start = con.execute("SELECT coalesce(max(audit_id), 0) FROM control_audit").fetchone()
        base = int(start[0]) if start else 0
        changes.insert(0, "audit_id", np.arange(base + 1, base + 1 + len(changes)))
        con.register("_new_audit", pa.Table.from_pandas(changes, preserve_index=False))
        try:
            con.execute("INSERT INTO control_audit SELECT * FROM _new_audit")
        finally:
            con.unregister("_new_audit")
    return len(changes)


def read_audit(con: duckdb.DuckDBPyConnection, *, account: str | None = None,
               since: pd.Timestamp | None = None) -> pd.DataFrame:
    """Audit rows, oldest first, for one account and/or from a time (``effective_at``)."""
    if not _exists(con, "control_audit"):
        return pd.DataFrame({c: pd.Series(dtype=object) for c in AUDIT_TABLE.names})
    where: list[str] = []
    params: list[Any] = []
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
