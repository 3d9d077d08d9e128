"""From the library's frames to the API's models; shared by the API and the dashboard."""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd
from fastapi import HTTPException

from traderseg.online.book import CLV_HORIZON_DAYS, feature_unit
from traderseg.online.tables import CONTROLS_TABLE
from traderseg.segment.persist import model_version, read_metadata
from traderseg.segment.registry import ModelRegistry, is_registry
from traderseg.service.schemas import (
    Account,
    ControlValues,
    ControlValuesModel,
    FeatureValue,
    ModelVersion,
    RiskProfile,
    SegmentRef,
)
from traderseg.service.state import VenueState

NOT_HERE = "no account {account!r} in this venue"
"""The one answer for an account this key cannot see, whether or not it exists elsewhere."""


def not_found(account_id: str) -> HTTPException:
    """Return the 404 of an unknown account (never says whether another venue has it)."""
    return HTTPException(404, NOT_HERE.format(account=account_id))


def _num(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def controls_of(venue: VenueState, account_id: str) -> ControlValuesModel | None:
    """Return the current controls of one account, or ``None`` before any decision on it."""
    row = venue.control_row(account_id)
    return None if row is None else control_values(row)


def control_values(row: dict[str, Any]) -> ControlValuesModel:
    """Return a ``controls`` row as the API's model."""
    data = {k: row.get(k) for k in CONTROLS_TABLE.names}
    data = {k: (None if isinstance(v, float) and v != v else v) for k, v in data.items()}
    if isinstance(data["rules"], str):
        data["rules"] = json.loads(data["rules"])
    for ts in ("as_of", "updated_at"):
        data[ts] = pd.Timestamp(data[ts]).to_pydatetime()  # type: ignore[arg-type]
    model: ControlValuesModel = ControlValues.model_validate(data)
    return model


def account_view(venue: VenueState, account_id: str, *, with_controls: bool) -> Account:
    """Return the account lookup of ``account_id`` in ``venue`` (404 when it is not there)."""
    book = venue.book
    row = book.account(account_id)
    if row is None:
        raise not_found(account_id)
    features = [FeatureValue(column=c, value=_num(v), unit=feature_unit(c))
                for c, v in row["features"].items()]
    return Account(
        account_id=account_id,
        as_of=book.as_of.to_pydatetime(),
        model_version=book.model_version,
        segment=SegmentRef(id=int(row["segment"]), name=str(row["segment_name"]),
                           membership=_num(row["membership"])),
        runner_up=SegmentRef(id=int(row["runner_up"]), name=str(row["runner_up_name"]),
                             membership=_num(row["runner_up_membership"])),
        lifecycle_stage=row.get("lifecycle_stage"),
        value_tier=row.get("value_tier"),
        risk=RiskProfile(score=_num(row.get("risk_score")),
                         components={k: _num(v) for k, v in row["risk_components"].items()}),
        lifetime_value_usd=_num(row.get("clv_usd")),
        lifetime_value_horizon_days=CLV_HORIZON_DAYS,
        churn_probability=_num(row.get("churn_probability")),
        controls=controls_of(venue, account_id) if with_controls else None,
        features=features,
    )


def model_versions(venue: VenueState) -> list[ModelVersion]:
    """Return the venue's model versions: a registry's, or the one saved model it serves."""
    root = venue.config.model
    serving = venue.book.model_version
    if not is_registry(root):
        return [serving_model(venue)]
    reg = ModelRegistry(root)
    champion = reg.champion()
    out = []
    for v in reg.versions():
        meta = read_metadata(v.directory)
        out.append(ModelVersion(version=v.version, as_of=v.as_of, method=meta.get("method"),
                                n_segments=meta.get("n_segments"),
                                catalog_version=str(meta.get("catalog_version")),
                                serving=v.version == serving,
                                champion=champion is not None and v.version == champion.version,
                                registered_at=v.registered_at, note=v.note,
                                metrics=dict(meta.get("metrics") or {})))
    return out


def serving_model(venue: VenueState) -> ModelVersion:
    """Return the model the venue's accounts are assigned with."""
    meta = venue.book.metadata
    return ModelVersion(version=model_version(meta), as_of=meta.get("as_of"),
                        method=meta.get("method"), n_segments=meta.get("n_segments"),
                        catalog_version=str(meta.get("catalog_version")),
                        serving=True, champion=False, metrics=dict(meta.get("metrics") or {}))
