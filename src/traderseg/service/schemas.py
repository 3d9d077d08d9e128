"""Request and response models of the API (``/v1``).

The control fields are generated from :data:`traderseg.policy.controls.CONTROLS`: a new
control appears in the lookups, the override request and the OpenAPI schema without an
edit here.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from traderseg.ingest import FORMATS
from traderseg.online.overrides import MAX_REASON
from traderseg.policy.controls import CONTROLS
from traderseg.service.keys import ROLES

_PY = {"double": float, "bool": bool, "string": str}


def _py(control_type: Any) -> type:
    return _PY[str(control_type)]


class Problem(BaseModel):
    """An error: what is wrong, on one line."""

    detail: str


class Health(BaseModel):
    """Liveness."""

    status: str = "ok"


class Readiness(BaseModel):
    """Readiness: every venue's store open and its account book built."""

    ready: bool
    venues: int


class WhoAmI(BaseModel):
    """The key a request is made with."""

    key_id: str
    role: str = Field(json_schema_extra={"enum": list(ROLES)})
    venue: str


class SegmentRef(BaseModel):
    """A segment by stable id and name, with the account's membership probability."""

    id: int
    name: str
    membership: float | None = None


class RiskProfile(BaseModel):
    """The 0-100 risk score and its components (``None``: unknown on this data)."""

    score: float | None
    components: dict[str, float | None]


class FeatureValue(BaseModel):
    """One feature of the account, with its unit."""

    column: str
    value: float | None
    unit: str


_control_fields: dict[str, Any] = {
    c.name: (_py(c.type), Field(description=f"{c.description} ({c.unit})" if c.unit
                                 else c.description))
    for c in CONTROLS
}
ControlValues = create_model(
    "ControlValues",
    __doc__="Current controls of an account and the decision behind them.",
    **_control_fields,
    review_reason=(str | None, None),
    rules=(dict[str, str], Field(description="Control -> rule that set it.")),
    policy_version=(str, ...),
    model_version=(str, ...),
    as_of=(datetime, Field(description="Data time of the decision (UTC).")),
    updated_at=(datetime, ...),
)
_change_fields: dict[str, Any] = {
    c.name: (_py(c.type) | None,
             Field(None, description=c.description, ge=c.minimum))
    for c in CONTROLS
}
ControlChange = create_model(
    "ControlChange",
    __config__=ConfigDict(extra="forbid"),
    __doc__="Controls to set by hand on one account (at least one), and why.",
    reason=(str, Field(min_length=1, max_length=MAX_REASON,
                       description="Why; kept in the audit log as the rule.")),
    **_change_fields,
)
if TYPE_CHECKING:  # the generated classes, as mypy can name them
    ControlValuesModel = BaseModel
    ControlChangeModel = BaseModel
else:
    ControlValuesModel = ControlValues
    ControlChangeModel = ControlChange


class ControlsOut(BaseModel):
    """An account's controls."""

    account_id: str
    controls: ControlValuesModel


class ControlChangeResult(BaseModel):
    """What a manual change did."""

    account_id: str
    audit_rows: int = Field(description="Changes recorded (0: every value already in place).")
    actor: str
    controls: ControlValuesModel


class Account(BaseModel):
    """Everything known of one account."""

    account_id: str
    as_of: datetime = Field(description="Cutoff of the features and assignment (UTC).")
    model_version: str
    segment: SegmentRef
    runner_up: SegmentRef
    lifecycle_stage: str | None
    value_tier: str | None
    risk: RiskProfile
    lifetime_value_usd: float | None = Field(
        description="Discounted venue revenue expected over the horizon (USD).")
    lifetime_value_horizon_days: float
    churn_probability: float | None = Field(description="1 - P(alive) from the activity model.")
    controls: ControlValuesModel | None = Field(
        description="Current controls; null for roles that may not read controls, or before "
        "any decision on the account.")
    features: list[FeatureValue]


class Segment(BaseModel):
    """One segment of the model with its current size."""

    id: int
    name: str
    description: str
    accounts: int
    size_share: float
    mean_risk_score: float | None
    mean_clv_usd: float | None
    mean_churn_probability: float | None


class Segments(BaseModel):
    """The segment catalogue."""

    as_of: datetime
    model_version: str
    segments: list[Segment]


class Member(BaseModel):
    """An account of a segment."""

    account_id: str
    membership: float | None
    lifecycle_stage: str | None
    value_tier: str | None
    risk_score: float | None


class MembersPage(BaseModel):
    """A page of a segment's accounts, by account id."""

    segment: int
    total: int
    offset: int
    limit: int
    members: list[Member]


class AuditEntry(BaseModel):
    """One change of one control."""

    audit_id: int
    account_id: str
    control: str
    old_value: str | None
    new_value: str
    rule: str
    policy_version: str
    model_version: str
    fill_id: str | None
    effective_at: datetime
    recorded_at: datetime
    actor: str


class AuditPage(BaseModel):
    """A page of the audit log, oldest first."""

    total: int
    offset: int
    limit: int
    entries: list[AuditEntry]


class ModelVersion(BaseModel):
    """A segment model the service knows."""

    version: str
    as_of: str | None
    method: str | None
    n_segments: int | None
    catalog_version: str | None
    serving: bool = Field(description="Whether the service assigns accounts with it.")
    champion: bool = Field(False, description="Whether it is the registry's champion.")
    registered_at: str | None = None
    note: str | None = None
    metrics: dict[str, Any]


class Models(BaseModel):
    """Model versions."""

    models: list[ModelVersion]


class RejectGroup(BaseModel):
    """The most common kind of rejected row of a file."""

    field: str
    reason: str
    count: int
    first_line: int


class IngestedFile(BaseModel):
    """Counts of one uploaded file; read = stored + rejected + already present."""

    file: str
    table: str
    read: int
    stored: int
    rejected: int
    already_present: int
    top_rejects: list[RejectGroup]


class IngestResult(BaseModel):
    """An ingest run of an uploaded file."""

    run_id: str
    format: str = Field(json_schema_extra={"enum": list(FORMATS)})
    files: list[IngestedFile]
    accounts: int = Field(description="Accounts in the account book after the run.")


class PolicyOut(BaseModel):
    """The active policy of the venue."""

    version: str
    model_version: str | None
    sha256: str
    text: str = Field(description="The YAML text.")


class PolicyIn(BaseModel):
    """A policy to make active."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=1_000_000, description="The YAML text.")


class PolicySaved(BaseModel):
    """What saving a policy did."""

    version: str
    changed: bool = Field(description="False: it was already the active version.")
    actor: str


class PromoteIn(BaseModel):
    """Why a version is promoted by hand."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500)


class Promoted(BaseModel):
    """A promotion, as recorded in the registry."""

    version: str
    decision_id: int | None
    actor: str
    serving: str = Field(description="Version the service now assigns accounts with.")
