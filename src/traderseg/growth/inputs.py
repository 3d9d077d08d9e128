"""Per-account decision inputs: what audiences select on and the fairness audit reads.

One row per account of the store as of a cutoff, from four sources:

* the policy's decision inputs (:func:`traderseg.policy.inputs.decision_inputs`): segment
  and membership from the saved model, lifecycle stage, value tier, risk score, region and
  KYC tier, predictions from a predictor bundle when one is given;
* the ``controls`` table, when the store has one: the policy's current controls
  (marketing eligibility, review flag, caps) with the policy version, and, without a
  predictor bundle, the predictions it holds (churn probability, liquidation risk);
* lifetime value, when asked for: BG/NBD + Gamma-Gamma of the venue's revenue
  (:func:`traderseg.analysis.clv.venue.venue_clv`); where the controls carry no churn
  probability it is ``1 - p_alive`` of the same fit.

The columns named like those of ``controls`` mean the same thing; the decision inputs are
the policy engine's :data:`traderseg.policy.INPUT_COLUMNS`. Given a policy, the controls
are that policy evaluated on these inputs instead of the stored ones.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from traderseg.online.tables import CONTROLS_TABLE
from traderseg.policy import CONTROL_NAMES, INPUT_COLUMNS, Policy
from traderseg.policy.predict import Predictors
from traderseg.segment.persist import model_version, read_metadata, trained_as_of
from traderseg.store import as_utc, store_connection

logger = logging.getLogger(__name__)

ATTRIBUTE_COLUMNS = ("region", "kyc_tier")
"""Who an account is (from ``accounts``), as opposed to how it trades."""
PREDICTION_COLUMNS = ("churn_probability", "liquidation_risk")
NO_POLICY = "none"
"""Policy version recorded when the store holds no controls."""


@dataclass
class DecisionInputs:
    """Result of :func:`decision_inputs`.

    Attributes
    ----------
    frame : pandas.DataFrame
        One row per account: ``account_id``, :data:`DECISION_INPUTS`, the controls found
        (NaN where an account has none), ``lifetime_value`` when asked for.
    as_of : pandas.Timestamp
        Cutoff of the features.
    model_version : str
        Version of the segment model.
    policy_version : str
        Policy version(s) of the controls read (comma-separated), or ``none``.
    notes : list of str
        Where values came from (fallbacks), for the output.
    """

    frame: pd.DataFrame
    as_of: pd.Timestamp
    model_version: str
    policy_version: str
    notes: list[str] = field(default_factory=list)


def has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether the store has a table called ``name``."""
    row = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
                      [name]).fetchone()
    return bool(row and row[0])


def read_store_controls(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Read the store's ``controls`` rows (an empty frame when it has no such table)."""
    if not has_table(con, CONTROLS_TABLE.name):
        return pd.DataFrame(columns=list(CONTROLS_TABLE.names))
    return con.execute(f"SELECT * FROM {CONTROLS_TABLE.name} ORDER BY account_id").df()


def decision_inputs(
    db: str | Path | duckdb.DuckDBPyConnection,
    model_dir: str | Path,
    as_of: str | datetime | pd.Timestamp | None = None,
    *,
    lifetime_value: bool = False,
    policy: Policy | None = None,
    predictors: Predictors | None = None,
) -> DecisionInputs:
    """Gather the decision inputs and current controls of every account.

    Parameters
    ----------
    db : str, Path or duckdb connection
        The store.
    model_dir : str or Path
        Saved segment model.
    as_of : timestamp-like, optional
        Cutoff; default the model's.
    lifetime_value : bool
        Also fit lifetime value (and the churn fallback) as of the cutoff.
    policy : Policy, optional
        Decide the controls with this policy on the inputs instead of reading the
        store's ``controls`` table.
    predictors : Predictors, optional
        Churn and liquidation-risk predictors; without them the predictions are those of
        the store's ``controls`` table (NaN for accounts it lacks).

    Returns
    -------
    DecisionInputs
    """
    from traderseg.policy.inputs import decision_inputs as policy_inputs

    con, close = store_connection(db)
    try:
        meta = read_metadata(model_dir)
        cutoff = as_utc(as_of if as_of is not None else trained_as_of(meta), "as_of")
        frame = policy_inputs(con, model_dir, cutoff, predictors=predictors)
        notes: list[str] = []
        stored = read_store_controls(con).astype({"account_id": str})
        if predictors is None:
            # no predictor bundle: the predictions the stream keeps in `controls`
            known = stored.set_index("account_id")
            for col in PREDICTION_COLUMNS:
                frame[col] = frame["account_id"].map(known[col]).astype(float)
        if policy is not None:
            decided = policy.evaluate(frame[list(INPUT_COLUMNS)].reset_index(drop=True))
            decided.insert(0, "account_id", frame["account_id"].to_numpy())
            controls = decided
        else:
            controls = stored
        if len(controls):
            keep = ["account_id", *(c for c in (*CONTROL_NAMES, "review_reason",
                                                "policy_version") if c in controls.columns)]
            frame = frame.merge(controls[keep], on="account_id", how="left")
            missing = int(frame["policy_version"].isna().sum())
            if missing:
                notes.append(f"{missing} account(s) have no controls row")
            versions = sorted(set(frame["policy_version"].dropna().astype(str)))
            policy_version = ",".join(versions) if versions else NO_POLICY
        else:
            notes.append("the store holds no controls: controls are unknown")
            policy_version = NO_POLICY
        for col in (*PREDICTION_COLUMNS, *CONTROL_NAMES):
            if col not in frame.columns:
                frame[col] = np.nan
        if lifetime_value:
            _add_lifetime_value(con, frame, cutoff, notes)
        return DecisionInputs(frame.reset_index(drop=True), cutoff, model_version(meta),
                              policy_version, notes)
    finally:
        if close:
            con.close()


def _add_lifetime_value(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame,
                        cutoff: pd.Timestamp, notes: list[str]) -> None:
    from traderseg.analysis.clv.venue import venue_clv

    clv = venue_clv(con, cutoff).accounts
    clv.index = clv.index.astype(str)
    ids = frame["account_id"].astype(str)
    frame["lifetime_value"] = ids.map(clv["clv"]).to_numpy(float)
    p_alive = ids.map(clv["p_alive"]).to_numpy(float)
    churn = pd.to_numeric(frame["churn_probability"], errors="coerce").to_numpy(float, copy=True)
    fill = np.isnan(churn) & ~np.isnan(p_alive)
    if fill.any():
        churn[fill] = 1.0 - p_alive[fill]
        frame["churn_probability"] = churn
        notes.append(f"churn probability of {int(fill.sum())} account(s) is 1 - p_alive of "
                     "the lifetime-value fit (no prediction in the controls)")


def column_summary(frame: pd.DataFrame, columns: tuple[str, ...]) -> dict[str, Any]:
    """Count of known values per column, for provenance records."""
    return {c: int(frame[c].notna().sum()) for c in columns if c in frame.columns}
