"""The policy store: every policy version saved in the DuckDB store, and which one is active.

``policy_versions`` holds one row per version: its YAML text, the text's hash, the model
version it was written for, when and by whom it was saved. A version is immutable: saving
the same version with other text is an error, saving it with the same text changes
nothing. ``policy_activations`` is append-only: each row makes a version the active one
from that time; :func:`current_policy` reads the latest. Saving the active version again
appends nothing, so re-running is idempotent; saving an older version again rolls back to
it (a new activation).
"""

from __future__ import annotations

import duckdb
import pandas as pd
import pyarrow as pa

from traderseg.errors import ConfigError
from traderseg.policy.engine import Policy, parse_policy
from traderseg.schema import TS, Column, Table

POLICY_VERSIONS_TABLE = Table(
    name="policy_versions",
    key=("policy_version",),
    description="Every saved policy version with its text.",
    columns=(
        Column("policy_version", pa.string(), True, "Version declared in the file."),
        Column("sha256", pa.string(), True, "SHA-256 of the text."),
        Column("model_version", pa.string(), False, "Model version the policy was written for."),
        Column("text", pa.string(), True, "The YAML text."),
        Column("saved_at", TS, True, "When it was first saved.", "UTC"),
        Column("actor", pa.string(), True, "Who saved it."),
    ),
)
POLICY_ACTIVATIONS_TABLE = Table(
    name="policy_activations",
    key=("activation_id",),
    description="Append-only log of which policy version is active from when.",
    columns=(
        Column("activation_id", pa.int64(), True, "Increasing id."),
        Column("policy_version", pa.string(), True, "Version made active."),
        Column("activated_at", TS, True, "Wall-clock time of the activation.", "UTC"),
        Column("actor", pa.string(), True, "Who activated it."),
    ),
)
POLICY_TABLES = (POLICY_VERSIONS_TABLE, POLICY_ACTIVATIONS_TABLE)


def ensure_policy_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the policy tables when missing."""
    con.execute(POLICY_VERSIONS_TABLE.duckdb_ddl(primary_key=True))
    con.execute(POLICY_ACTIVATIONS_TABLE.duckdb_ddl())


def save_policy(con: duckdb.DuckDBPyConnection, policy: Policy, actor: str) -> bool:
    """Save ``policy`` and make it the active one.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Store connection.
    policy : Policy
        The policy to activate.
    actor : str
        Who saves it (``cli``, ``stream``, ``key:<id>``).

    Returns
    -------
    bool
        Whether anything changed (False: it was already the active version).

    Raises
    ------
    ConfigError
        The store holds this version with different text.
    """
    ensure_policy_tables(con)
    now = pd.Timestamp.now(tz="UTC").to_pydatetime()
    row = con.execute("SELECT sha256 FROM policy_versions WHERE policy_version = ?",
                      [policy.version]).fetchone()
    if row is not None and row[0] != policy.sha256:
        raise ConfigError(
            f"{policy.source}: policy version {policy.version!r} is already saved with "
            "different text; give the changed policy a new version")
    active = _active_version(con)
    if row is not None and active == policy.version:
        return False
    if row is None:
        con.execute("INSERT INTO policy_versions VALUES (?, ?, ?, ?, ?, ?)",
                    [policy.version, policy.sha256, policy.model_version, policy.text, now,
                     actor])
    next_id = con.execute(
        "SELECT coalesce(max(activation_id), 0) + 1 FROM policy_activations").fetchone()
    con.execute("INSERT INTO policy_activations VALUES (?, ?, ?, ?)",
                [int(next_id[0]) if next_id else 1, policy.version, now, actor])
    return True


def _active_version(con: duckdb.DuckDBPyConnection) -> str | None:
    row = con.execute("SELECT policy_version FROM policy_activations "
                      "ORDER BY activation_id DESC LIMIT 1").fetchone()
    return None if row is None else str(row[0])


def current_policy(con: duckdb.DuckDBPyConnection) -> Policy | None:
    """Return the active policy of the store (None when none was saved)."""
    ensure_policy_tables(con)
    version = _active_version(con)
    if version is None:
        return None
    return policy_version(con, version)


def policy_version(con: duckdb.DuckDBPyConnection, version: str) -> Policy:
    """Return a saved policy version (ConfigError naming it when unknown)."""
    ensure_policy_tables(con)
    row = con.execute("SELECT text FROM policy_versions WHERE policy_version = ?",
                      [str(version)]).fetchone()
    if row is None:
        raise ConfigError(f"policy version {version!r} is not in the store")
    return parse_policy(str(row[0]), f"policy_versions[{version}]")


def policy_history(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Activations, oldest first, with each version's hash and model version."""
    ensure_policy_tables(con)
    return con.execute(
        "SELECT a.activation_id, a.policy_version, a.activated_at, a.actor, v.sha256, "
        "v.model_version FROM policy_activations a JOIN policy_versions v USING "
        "(policy_version) ORDER BY a.activation_id").df()
