"""From a fills store to saved, named segments and per-account assignments.

This is the layer the CLI (and later the service) calls: it strings together the
feature catalogue, the segmenter, naming, stable identity across refits, overlays and
persistence. Each step stays usable on its own from its module.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from traderseg.errors import DataError
from traderseg.features.catalog import split_column
from traderseg.features.compute import compute_features, parse_as_of
from traderseg.segment.drift import reference_quantiles, shifted_features
from traderseg.segment.estimator import TraderSegmenter
from traderseg.segment.identity import (
    IdentityMatch,
    apply_identity,
    carry_names,
    match_segments,
)
from traderseg.segment.naming import name_segments
from traderseg.segment.overlays import overlays
from traderseg.segment.persist import load_model, save_model, trained_as_of
from traderseg.segment.preprocess import segmentation_columns

logger = logging.getLogger(__name__)

DEFAULT_WINDOWS = ("30d", "all")
# Fewer accounts than this make segments that describe individuals, not behaviours.
MIN_ACCOUNTS = 36
STABILITY_FLOOR = 0.75


@dataclass
class FitResult:
    """What :func:`fit_segments` produced.

    Attributes
    ----------
    model : TraderSegmenter
        The fitted segmenter (with stable ``segment_ids_``).
    segments : pandas.DataFrame
        One row per segment: ``segment`` (stable id), ``name``, ``size``, ``size_share``,
        ``revenue_share``, ``description``, ``top_features``.
    assignments : pandas.DataFrame
        Training accounts' assignments (see :func:`assignments_frame`).
    features : pandas.DataFrame
        The feature frame the model was fitted on (all windows).
    directory : Path
        Where the model was saved.
    warnings : list of str
        What makes the fit doubtful (few accounts, a k below the stability floor); also
        logged.
    identity : IdentityMatch or None
        How the segments were matched to the ``previous`` model's ids (``None`` without
        one).
    """

    model: TraderSegmenter
    segments: pd.DataFrame
    assignments: pd.DataFrame
    features: pd.DataFrame
    directory: Path
    warnings: list[str] = field(default_factory=list)
    identity: IdentityMatch | None = None


def fit_segments(
    source: Any,
    as_of: str | datetime,
    out: str | Path,
    *,
    windows: tuple[str, ...] = DEFAULT_WINDOWS,
    n_segments: int | str = "auto",
    method: str | None = None,
    random_state: int | None = 0,
    previous: str | Path | None = None,
    features: pd.DataFrame | None = None,
    params: dict[str, Any] | None = None,
) -> FitResult:
    """Fit named segments on the store as of a cutoff and save the model.

    Parameters
    ----------
    source : str, Path or duckdb connection
        The fills store.
    as_of : str or datetime
        Cutoff of the training features.
    out : str or Path
        Model directory to write.
    windows : tuple of str
        Feature windows to compute (the segmenter picks its columns among them; the
        ``30d`` window feeds the lifecycle overlay).
    n_segments : int or "auto"
        Number of segments, or chosen from the data.
    method : str, optional
        Segmenter method; ``None`` keeps the estimator's default.
    random_state : int, optional
        Seed.
    previous : str or Path, optional
        A previously saved model: segments matching its segments keep their ids and
        names; genuinely new behaviour gets new ids.
    features : pandas.DataFrame, optional
        Precomputed features (as of the same cutoff) instead of reading the store.
    params : dict, optional
        Every parameter of the segmenter (a saved model's ``params``, so a refit trains
        the same way); ``n_segments``, ``method`` and ``random_state`` then come from it.

    Returns
    -------
    FitResult
        Model, segment table, assignments and features.
    """
    cutoff = parse_as_of(as_of)
    feats = compute_features(source, cutoff, windows) if features is None else features
    cols = segmentation_columns(feats)
    X = feats[cols]
    if params is not None:
        model = TraderSegmenter().set_params(**_estimator_params(params))
    else:
        given: dict[str, Any] = {"random_state": random_state}
        if method is not None:
            given["method"] = method
        model = TraderSegmenter(n_segments, **given)
    notes = _fit_warnings_before(len(X))
    model.fit(X)
    notes += _fit_warnings_after(model)
    for note in notes:
        logger.warning(note)
    # names and profiles read every feature of the segmentation window (liquidations,
    # fees...), not only the columns the segments were built on
    window = split_column(cols[0])[1]
    naming = feats[[c for c in feats.columns if split_column(c)[1] == window]]
    profiles = {p.label: p for p in name_segments(naming, model.labels_)}
    label_names = {lab: p.name for lab, p in profiles.items()}
    if previous is not None:
        prev_model, prev_meta = load_model(previous)
        prev_names = {int(s["id"]): str(s["name"]) for s in prev_meta.get("segments", [])}
        prev_cols = list(prev_model.feature_names_in_)
        missing = [c for c in prev_cols if c not in feats.columns]
        if missing:
            raise DataError(f"previous model needs feature columns missing here: {missing[:5]}")
        prev_X = feats[prev_cols].loc[:, prev_cols]
        # the previous model's segments of today's accounts: member overlap backs the
        # centre distance where behaviour drifted more than the distance threshold allows
        prev_ids = pd.Series(prev_model.segment_ids(prev_model.predict(prev_X)),
                             index=prev_X.index)
        match = match_segments(prev_model, model, prev_X, previous_assignments=prev_ids)
        apply_identity(model, match)
        names_by_id = carry_names(match, prev_names, label_names)
    else:
        match = None
        names_by_id = {int(model.segment_ids_[lab]): name for lab, name in label_names.items()
                       if lab >= 0}
        if -1 in label_names:
            names_by_id[-1] = label_names[-1]
    rows = []
    for lab, p in sorted(profiles.items()):
        sid = -1 if lab < 0 else int(model.segment_ids_[lab])
        rows.append({
            "label": int(lab), "id": sid, "name": names_by_id[sid],
            "description": p.description.replace(p.name, names_by_id[sid], 1)
            if p.description.lower().startswith(p.name.lower()) else p.description,
            "size": p.size, "size_share": p.size_share, "revenue_share": p.revenue_share,
            "top_features": p.top_features,
        })
    assignments = assignments_frame(model, feats, names_by_id)
    metrics = {
        "accounts": int(len(X)),
        "columns": len(cols),
        "membership_mean": float(assignments["membership"].mean()),
    }
    directory = save_model(model, out, as_of=cutoff.isoformat(), windows=list(windows),
                           metrics=metrics, segments=rows, reference=reference_quantiles(naming))
    segments = pd.DataFrame(rows).rename(columns={"id": "segment"})
    return FitResult(model, segments, assignments, feats, Path(directory), notes, match)


def _estimator_params(params: dict[str, Any]) -> dict[str, Any]:
    """Segmenter parameters from saved metadata (JSON lists back to tuples), checked."""
    known = TraderSegmenter().get_params()
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise DataError(f"model parameters unknown to this segmenter: {unknown}")
    out = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
    # saved before coverage weighting existed: trained without it
    out.setdefault("weight_by_coverage", False)
    return out


def _fit_warnings_before(n_accounts: int) -> list[str]:
    if n_accounts < MIN_ACCOUNTS:
        return [f"only {n_accounts} accounts to fit on (fewer than {MIN_ACCOUNTS}): segments "
                "of so few accounts describe individuals rather than behaviours"]
    return []


def _fit_warnings_after(model: TraderSegmenter) -> list[str]:
    sel = getattr(model, "selection_", None)
    if sel is None or not len(sel) or "chosen" not in sel.columns:
        return []
    chosen = sel[sel["chosen"].astype(bool)]
    if chosen.empty:
        return []
    stab = float(chosen["stability"].iloc[0])
    k = int(chosen["k"].iloc[0])
    if stab == stab and stab < STABILITY_FLOOR:
        return [f"the chosen k={k} has bootstrap stability {stab:.2f}, below the floor "
                f"{STABILITY_FLOOR}: refits on resampled accounts disagree, so the segments "
                "may not be reproducible"]
    return []


def assignments_frame(
    model: TraderSegmenter, features: pd.DataFrame, names_by_id: dict[int, str]
) -> pd.DataFrame:
    """Segment, membership, runner-up and overlays of every account in ``features``.

    :func:`segment_frame` beside :func:`~traderseg.segment.overlays.overlays`.

    Parameters
    ----------
    model : TraderSegmenter
        Fitted segmenter.
    features : pandas.DataFrame
        Feature frame with the model's columns (and the overlay columns).
    names_by_id : dict
        Stable id -> segment name.

    Returns
    -------
    pandas.DataFrame
        ``account_id, segment, segment_name, membership, runner_up, runner_up_name,
        runner_up_membership``, then ``lifecycle_stage, value_tier, risk_score`` and the
        risk components.
    """
    seg = segment_frame(model, features, names_by_id)
    return pd.concat([seg, overlays(features).reset_index(drop=True)], axis=1)


def segment_frame(
    model: TraderSegmenter, features: pd.DataFrame, names_by_id: dict[int, str]
) -> pd.DataFrame:
    """Segment, membership and runner-up of each account: row by row, no overlays.

    Each row depends on that account's features alone, so a frame split in parts (Spark
    partitions) gives the same rows as the whole.

    Returns
    -------
    pandas.DataFrame
        ``account_id, segment, segment_name, membership, runner_up, runner_up_name,
        runner_up_membership``.
    """
    needed = [str(c) for c in model.feature_names_in_]
    missing = [c for c in needed if c not in features.columns]
    if missing:
        raise DataError(f"the model needs {len(missing)} feature column(s) the features lack: "
                        f"{', '.join(missing[:5])}; was it fitted with other windows or another "
                        "catalogue?")
    X = features[needed]
    labels, proba = model.predict_with_proba(X)
    ids = model.segment_ids(labels)
    order = np.argsort(-proba, axis=1)
    second = order[:, 1] if proba.shape[1] > 1 else order[:, 0]
    seg_ids = np.asarray(model.segment_ids_)
    out = pd.DataFrame(
        {
            "account_id": features.index.astype(str),
            "segment": ids.astype(int),
            "segment_name": [names_by_id.get(int(i), f"segment {i}") for i in ids],
            "membership": proba[np.arange(len(X)), order[:, 0]],
            "runner_up": seg_ids[second].astype(int),
            "runner_up_name": [names_by_id.get(int(i), f"segment {i}") for i in seg_ids[second]],
            "runner_up_membership": proba[np.arange(len(X)), second],
        }
    )
    return out


def _model_and_features(
    source: Any, model_dir: str | Path, as_of: str | datetime | None
) -> tuple[TraderSegmenter, dict[str, Any], datetime, pd.DataFrame]:
    """Load a saved model and compute the features it needs as of ``as_of`` (or its own)."""
    model, meta = load_model(model_dir)
    cutoff = parse_as_of(as_of if as_of is not None else trained_as_of(meta))
    windows = tuple(meta.get("windows") or DEFAULT_WINDOWS)
    return model, meta, cutoff, compute_features(source, cutoff, windows)


def _names_from_metadata(meta: dict[str, Any]) -> dict[int, str]:
    return {int(s["id"]): str(s["name"]) for s in meta.get("segments", [])}


def assign_accounts(
    source: Any, model_dir: str | Path, as_of: str | datetime | None = None
) -> pd.DataFrame:
    """Assign every account of the store with a saved model.

    Parameters
    ----------
    source : str, Path or duckdb connection
        The fills store.
    model_dir : str or Path
        Saved model directory.
    as_of : str or datetime, optional
        Cutoff of the features; defaults to the model's training cutoff.

    Returns
    -------
    pandas.DataFrame
        See :func:`assignments_frame`; plus an ``as_of`` column.
    """
    model, meta, cutoff, feats = _model_and_features(source, model_dir, as_of)
    frame = assignments_frame(model, feats, _names_from_metadata(meta))
    frame["as_of"] = pd.Timestamp(cutoff)
    shift = population_shift(meta, feats)
    frame.attrs["shifted_features"] = shift
    return frame


def population_shift(meta: dict[str, Any], features: pd.DataFrame) -> list[tuple[str, float]]:
    """Most shifted model columns against the training population (PSI above the limit).

    Logs a warning naming them: assignments of accounts far from what the model was
    trained on are names learned elsewhere.
    """
    reference = meta.get("reference_quantiles") or {}
    shift = shifted_features(reference, features)
    if shift:
        logger.warning(
            "the accounts differ strongly from the population the model was trained on; "
            "most shifted features: %s. Segment names may not fit them: refit on this store",
            ", ".join(f"{c} (PSI {v:.2f})" for c, v in shift))
    return shift


def explain_account(
    source: Any, model_dir: str | Path, account_id: str, as_of: str | datetime | None = None
) -> dict[str, Any]:
    """Why an account is in its segment: its values on the segment's distinctive features.

    Parameters
    ----------
    source : str, Path or duckdb connection
        The fills store.
    model_dir : str or Path
        Saved model directory.
    account_id : str
        Account to explain.
    as_of : str or datetime, optional
        Cutoff; defaults to the model's training cutoff.

    Returns
    -------
    dict
        ``account_id, segment, segment_name, membership, description, why`` (rows of
        feature, account value, segment median, population median), ``runner_up`` and
        the overlays.
    """
    model, meta, cutoff, feats = _model_and_features(source, model_dir, as_of)
    if account_id not in feats.index:
        raise DataError(f"unknown account {account_id!r}: the store has no fills of it before "
                        f"{cutoff.isoformat()}")
    frame = assignments_frame(model, feats, _names_from_metadata(meta)).set_index("account_id")
    row = {str(k): v for k, v in frame.loc[account_id].to_dict().items()}
    seg: dict[str, Any] = next(
        (s for s in meta.get("segments", []) if int(s["id"]) == int(row["segment"])), {}
    )
    why = [
        {
            "feature": t["feature"],
            "account": float(feats[t["feature"]].loc[account_id]),
            "segment_median": t["segment_median"],
            "population_median": t["population_median"],
        }
        for t in seg.get("top_features", [])
        if t["feature"] in feats.columns
    ]
    return {
        "account_id": account_id,
        "as_of": cutoff.isoformat(),
        "segment": int(row["segment"]),
        "segment_name": row["segment_name"],
        "membership": float(row["membership"]),
        "description": seg.get("description", ""),
        "why": why,
        "runner_up": {"segment": int(row["runner_up"]), "name": row["runner_up_name"],
                      "membership": float(row["runner_up_membership"])},
        "overlays": {k: (v.item() if hasattr(v, "item") else v)
                     for k, v in row.items()
                     if k not in {"segment", "segment_name", "membership", "runner_up",
                                  "runner_up_name", "runner_up_membership"}},
    }
