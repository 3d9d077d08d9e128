"""The ``/v1`` API: each handler checks its input, calls the library and shapes the answer."""

from __future__ import annotations

import re
import shutil
import tempfile
from datetime import datetime
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, Depends, File, Form, HTTPException, Path, Query, Request, UploadFile
from fastapi.responses import StreamingResponse

from traderseg.errors import DataError, TradersegError
from traderseg.ingest import FORMATS, ingest
from traderseg.online.book import iter_csv
from traderseg.online.overrides import override_controls
from traderseg.online.tables import read_audit
from traderseg.policy import check_policy, current_policy, parse_policy, save_policy
from traderseg.segment.overlays import LIFECYCLE_STAGES, VALUE_TIERS
from traderseg.segment.registry import Decision, ModelRegistry, is_registry
from traderseg.service.auth import Caller, api_caller
from traderseg.service.schemas import (
    Account,
    AuditEntry,
    AuditPage,
    ControlChangeModel,
    ControlChangeResult,
    ControlsOut,
    IngestedFile,
    IngestResult,
    Member,
    MembersPage,
    Models,
    PolicyIn,
    PolicyOut,
    PolicySaved,
    Problem,
    Promoted,
    PromoteIn,
    RejectGroup,
    Segment,
    Segments,
    WhoAmI,
)
from traderseg.service.state import VenueState
from traderseg.service.views import account_view, controls_of, model_versions, not_found

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "The body could not be parsed."},
    401: {"model": Problem, "description": "No API key, or one that does not verify."},
    403: {"model": Problem, "description": "The key's role may not use this route."},
    422: {"model": Problem, "description": "The input cannot be used (the reason is given)."},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "Not in this key's venue."}}
TIERS = (*(name for name, _ in VALUE_TIERS), "bronze")
AccountId = Annotated[str, Path(min_length=1, max_length=200, description="Venue account id.")]
CallerDep = Annotated[Caller, Depends(api_caller)]

router = APIRouter(prefix="/v1", responses=ERRORS)


@router.get("/me", name="whoami", response_model=WhoAmI)
async def whoami(caller: CallerDep) -> WhoAmI:
    """Show the key this request is made with: id, role and venue."""
    k = caller.key
    return WhoAmI(key_id=k.key_id, role=k.role, venue=k.venue)


@router.get("/accounts/{account_id}", name="account", response_model=Account,
            responses=NOT_FOUND)
async def account(account_id: AccountId, caller: CallerDep) -> Account:
    """Look up one account.

    Segment, membership, lifecycle, value tier, risk profile, controls, lifetime value,
    churn probability and features (with units).
    """
    return account_view(caller.venue, account_id, with_controls=caller.may("read_controls"))


def _known(venue: VenueState, account_id: str) -> None:
    if account_id not in venue.book and controls_of(venue, account_id) is None:
        raise not_found(account_id)


@router.get("/accounts/{account_id}/controls", name="read_controls", response_model=ControlsOut,
            responses=NOT_FOUND)
async def read_controls(account_id: AccountId, caller: CallerDep) -> ControlsOut:
    """Read the current controls of one account and the rules and versions that set them."""
    values = controls_of(caller.venue, account_id)
    if values is None:
        _known(caller.venue, account_id)
        raise HTTPException(404, f"account {account_id!r} has no controls yet: no policy "
                            "decision has run on it")
    return ControlsOut(account_id=account_id, controls=values)


@router.put("/accounts/{account_id}/controls", name="change_controls",
            response_model=ControlChangeResult, responses=NOT_FOUND)
def change_controls(account_id: AccountId, change: ControlChangeModel,
                    caller: CallerDep) -> ControlChangeResult:
    """Set some controls of one account by hand; every change is audited with the key's id."""
    venue = caller.venue
    _known(venue, account_id)
    values = change.model_dump(exclude_none=True)
    reason = str(values.pop("reason"))
    with venue.writing():
        cur = venue.cursor()
        try:
            rows = override_controls(cur, account_id, values, actor=caller.key.actor,
                                     reason=reason)
        finally:
            cur.close()
    now = controls_of(venue, account_id)
    if now is None:  # the override succeeded, so only a concurrent removal gets here
        raise not_found(account_id)
    return ControlChangeResult(account_id=account_id, audit_rows=rows, actor=caller.key.actor,
                               controls=now)


@router.get("/segments", name="segments", response_model=Segments)
async def segments(caller: CallerDep) -> Segments:
    """List the segments: id, name, description and current size of each."""
    book = caller.venue.book
    rows = [Segment(id=int(r["segment"]), **{k: r[k] for k in (
        "name", "description", "accounts", "size_share", "mean_risk_score", "mean_clv_usd",
        "mean_churn_probability")}) for r in book.segments().to_dict("records")]
    return Segments(as_of=book.as_of.to_pydatetime(), model_version=book.model_version,
                    segments=rows)


@router.get("/segments/{segment_id}/members", name="segment_members",
            response_model=MembersPage, responses=NOT_FOUND)
def segment_members(
    caller: CallerDep,
    segment_id: Annotated[int, Path(ge=-1, le=1_000_000, description="Stable segment id.")],
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> MembersPage:
    """Page through a segment's accounts, ordered by account id."""
    book = caller.venue.book
    if segment_id not in book.segment_names:
        raise HTTPException(404, f"no segment {segment_id} in the model")
    total = int((book.accounts["segment"] == segment_id).sum())
    page = book.members(segment_id, offset=offset, limit=limit)
    members = [Member(account_id=str(r["account_id"]), membership=_f(r["membership"]),
                      lifecycle_stage=r["lifecycle_stage"], value_tier=r["value_tier"],
                      risk_score=_f(r["risk_score"])) for r in page.to_dict("records")]
    return MembersPage(segment=segment_id, total=total, offset=offset, limit=limit,
                       members=members)


def _f(value: Any) -> float | None:
    return None if value is None or value != value else float(value)


def _not_marketable(venue: VenueState) -> list[str]:
    """Accounts whose ``marketing_eligible`` control is withdrawn."""
    cur = venue.cursor()
    try:
        rows = cur.execute("SELECT account_id FROM controls WHERE NOT marketing_eligible")
        return [str(r[0]) for r in rows.fetchall()]
    finally:
        cur.close()


@router.get("/audiences/export", name="export_audience", response_class=StreamingResponse,
            responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}},
                             "description": "The audience, one account a line."}})
def export_audience(
    caller: CallerDep,
    segment: Annotated[list[int] | None, Query(description="Segment ids to keep.")] = None,
    lifecycle: Annotated[list[Literal[LIFECYCLE_STAGES]] | None,  # type: ignore[valid-type]
                         Query(description="Lifecycle stages to keep.")] = None,
    value_tier: Annotated[list[Literal[TIERS]] | None,  # type: ignore[valid-type]
                          Query(description="Value tiers to keep.")] = None,
    min_churn: Annotated[float | None, Query(ge=0, le=1,
                                             description="Lowest churn probability.")] = None,
) -> StreamingResponse:
    """Export an audience: the accounts matching every filter, as CSV streamed in chunks.

    Accounts whose marketing eligibility is withdrawn are never in it.
    """
    venue = caller.venue
    frame = venue.book.audience(segments=segment, lifecycle=lifecycle, value_tiers=value_tier,
                                min_churn=min_churn, exclude=_not_marketable(venue))
    stamp = venue.book.as_of.strftime("%Y%m%d")
    return StreamingResponse(iter_csv(frame), media_type="text/csv", headers={
        "Content-Disposition": f'attachment; filename="audience-{stamp}.csv"'})


@router.get("/audit", name="audit_log", response_model=AuditPage)
def audit_log(
    caller: CallerDep,
    account_id: Annotated[str | None, Query(max_length=200)] = None,
    since: Annotated[datetime | None, Query(description="Changes effective from (UTC).")] = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditPage:
    """Read the control audit log, oldest first, for one account and/or from a time."""
    cur = caller.venue.cursor()
    try:
        rows = read_audit(cur, account=account_id,
                          since=pd.Timestamp(since) if since is not None else None)
    finally:
        cur.close()
    page = rows.iloc[offset:offset + limit]
    entries = [AuditEntry.model_validate({k: (None if v is None or v != v else v)
                                          for k, v in r.items()})
               for r in page.to_dict("records")]
    return AuditPage(total=len(rows), offset=offset, limit=limit, entries=entries)


@router.get("/policy", name="read_policy", response_model=PolicyOut, responses=NOT_FOUND)
def read_policy(caller: CallerDep) -> PolicyOut:
    """Read the venue's active risk-control policy."""
    cur = caller.venue.cursor()
    try:
        policy = current_policy(cur)
    finally:
        cur.close()
    if policy is None:
        raise HTTPException(404, "no policy has been saved in this venue yet")
    return PolicyOut(version=policy.version, model_version=policy.model_version,
                     sha256=policy.sha256, text=policy.text)


@router.put("/policy", name="change_policy", response_model=PolicySaved)
def change_policy(body: PolicyIn, caller: CallerDep) -> PolicySaved:
    """Check a policy against the serving model and make it the active one (audited).

    The controls follow it at the next decision on each account (stream or batch).
    """
    venue = caller.venue
    policy = parse_policy(body.text, "request")
    check_policy(policy, venue.book.metadata)
    with venue.writing():
        cur = venue.cursor()
        try:
            changed = save_policy(cur, policy, actor=caller.key.actor)
        finally:
            cur.close()
    return PolicySaved(version=policy.version, changed=changed, actor=caller.key.actor)


@router.get("/models", name="models", response_model=Models)
def models(caller: CallerDep) -> Models:
    """List the segment model versions of the venue (the one serving marked)."""
    return Models(models=model_versions(caller.venue))


@router.post("/models/{version}/promote", name="promote_model", response_model=Promoted,
             responses={404: {"model": Problem, "description": "No such version."},
                        409: {"model": Problem,
                              "description": "The venue's model is not a registry."}})
def promote_model(
    version: Annotated[str, Path(min_length=1, max_length=40)], body: PromoteIn,
    caller: CallerDep,
) -> Promoted:
    """Make a registered version the champion (recorded with the key as actor) and serve it."""
    venue = caller.venue
    if not is_registry(venue.config.model):
        raise HTTPException(409, "the venue is served from one saved model, not a registry")
    reg = ModelRegistry(venue.config.model)
    if version not in {v.version for v in reg.versions()}:
        raise HTTPException(404, f"no model version {version!r} in the registry")
    with venue.writing():
        decision = reg.promote(version, Decision(challenger=version, verdict="promoted",
                                                 reason=body.reason, actor=caller.key.actor))
        venue.rebuild()
    return Promoted(version=version, decision_id=decision.decision_id, actor=caller.key.actor,
                    serving=venue.book.model_version)


_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


@router.post("/ingest", name="ingest_file", response_model=IngestResult, responses={
    413: {"model": Problem, "description": "The file is larger than allowed."}})
def ingest_file(
    request: Request,
    caller: CallerDep,
    file: Annotated[UploadFile, File(description="CSV, Parquet or JSON export.")],
    format: Annotated[Literal[FORMATS], Form()] = "canonical",  # type: ignore[valid-type]
    table: Annotated[str | None, Form(max_length=40,
                                      description="Canonical table (default: from the "
                                      "file's name).")] = None,
    account_id: Annotated[str | None, Form(max_length=200, description=(
        "Account of an export without an account column."))] = None,
) -> IngestResult:
    """Load an uploaded file into the venue's store.

    The same validation, rejects and deduplication as ``traderseg ingest``; the account
    book is rebuilt when fills were added.
    """
    venue = caller.venue
    limit = request.app.state.service.settings.max_upload_mb * 1024 * 1024
    name = _SAFE_NAME.sub("_", FilePath(file.filename or "upload").name).lstrip(".") or "upload"
    with tempfile.TemporaryDirectory(prefix="traderseg-upload-") as tmp:
        path = FilePath(tmp) / name
        size = 0
        with path.open("wb") as out:
            while chunk := file.file.read(1024 * 1024):
                size += len(chunk)
                if size > limit:
                    raise HTTPException(413, f"{name}: larger than {limit // 2**20} MB")
                out.write(chunk)
        with venue.writing():
            cur = venue.cursor()
            try:
                report = ingest(path, cur, format=format, table=table or None,
                                account_id=account_id or None)
            except TradersegError as exc:
                # name the file as uploaded, not where it was kept for the run
                raise type(exc)(str(exc).replace(str(path), name)) from None
            finally:
                cur.close()
            if report.total("stored"):
                venue.rebuild()
        shutil.rmtree(tmp, ignore_errors=True)
    files = [IngestedFile(
        file=name, table=s.table, read=s.read, stored=s.stored, rejected=s.rejected,
        already_present=s.already_present,
        top_rejects=[RejectGroup(field=g.field, reason=g.reason, count=g.count,
                                 first_line=g.first_line) for g in s.top_rejects])
        for s in report.sources]
    empty = [s for s in report.sources if s.all_rejected]
    if empty:
        top = empty[0].top_rejects[0] if empty[0].top_rejects else None
        why = f" (most common: {top.field}: {top.reason})" if top else ""
        raise DataError(f"every row of {name} was rejected{why}; the rejects are in the "
                        "store's rejects table")
    return IngestResult(run_id=report.run_id, format=format, files=files,
                        accounts=len(venue.book))
