"""Decision inputs of a batch: what a policy reads, rebuilt from the fills as of a cutoff.

The stream keeps the inputs current in the ``controls`` table; this module rebuilds
them from the store at any cutoff, for a batch decision or to replay a policy on history
(:mod:`traderseg.policy.diff`): segment and membership from a saved model, lifecycle
stage, value tier and risk score from the overlays, KYC tier and region from
``accounts``, churn probability and liquidation risk from a predictor bundle (NaN without
one: rules on predictions then do not match).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from traderseg.features.compute import compute_features
from traderseg.policy.engine import INPUT_COLUMNS
from traderseg.policy.predict import PREDICTIONS, Predictors
from traderseg.segment.persist import load_model
from traderseg.segment.workflow import assignments_frame


def decision_inputs(
    con: duckdb.DuckDBPyConnection,
    model_dir: str | Path,
    as_of: Any,
    *,
    predictors: Predictors | None = None,
    features: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Rebuild the decision inputs of every account with fills before ``as_of``.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Store connection.
    model_dir : str or Path
        Saved segment model.
    as_of : timestamp-like
        Cutoff (UTC); fills at or after it are not seen.
    predictors : Predictors, optional
        Churn and liquidation classifiers; without them both predictions are NaN.
    features : pandas.DataFrame, optional
        Features already computed as of ``as_of`` with every window needed.

    Returns
    -------
    pandas.DataFrame
        ``account_id`` then :data:`~traderseg.policy.engine.INPUT_COLUMNS`, one row per
        account, ordered by account.
    """
    model, meta = load_model(model_dir)
    names = {int(s["id"]): str(s["name"]) for s in meta.get("segments", [])}
    windows = list(dict.fromkeys([*(meta.get("windows") or ["30d", "all"]), "all", "30d"]))
    if predictors is not None:
        windows = list(dict.fromkeys([*windows, *predictors.metadata.get("windows", [])]))
    cutoff = pd.Timestamp(as_of)
    feats = features if features is not None else compute_features(
        con, cutoff.to_pydatetime(), windows)
    feats = feats.sort_index()
    frame = assignments_frame(model, feats, names)
    out = pd.DataFrame({
        "account_id": frame["account_id"].astype(str),
        "segment_id": frame["segment"].astype("int64"),
        "segment_name": frame["segment_name"].astype(str),
        "membership": frame["membership"].astype(float),
        "lifecycle_stage": frame["lifecycle_stage"].astype(str),
        "value_tier": frame["value_tier"].astype(str),
        "risk_score": frame["risk_score"].astype(float),
    })
    acc = _accounts(con)
    out["kyc_tier"] = out["account_id"].map(acc["kyc_tier"]).astype("Int64")
    out["region"] = out["account_id"].map(acc["region"]).astype(object)
    if predictors is not None:
        scores = predictors.score(feats)
        for name in PREDICTIONS:
            out[name] = scores[name].to_numpy(float)
    else:
        for name in PREDICTIONS:
            out[name] = np.nan
    return out[["account_id", *INPUT_COLUMNS]].reset_index(drop=True)


def _accounts(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    try:
        acc = con.execute("SELECT account_id, kyc_tier, region FROM accounts").df()
    except duckdb.CatalogException:
        acc = pd.DataFrame(columns=["account_id", "kyc_tier", "region"])
    return acc.set_index("account_id")
