"""Campaign audiences: a declarative YAML selection over the decision inputs.

An audience spec names the accounts a campaign may reach::

    name: winback-scalpers            # letters, digits, - and _
    description: lapsing perp scalpers worth winning back
    as_of: 2024-03-01                 # optional; default the model's training cutoff
    select:
      segments: [3, high-frequency perp scalpers]   # ids or names of the model
      lifecycle_stages: [at-risk, dormant]
      value_tiers: [gold, platinum]
      lifetime_value: {min: 50}       # USD of venue revenue over the CLV horizon
      churn_probability: {min: 0.3, max: 0.9}
      marketing_eligible: true        # the default

Every key of ``select`` is optional; the criteria combine with AND, and a list matches
any of its values. A range keeps accounts with ``min <= value < max`` (either bound may
be left out; ``min`` inclusive and ``max`` exclusive as in the policy's bands); an
account whose value is unknown is not selected by a range.
``marketing_eligible: true`` (the default) keeps only accounts the policy made eligible:
an account without a controls row is *not* eligible (it counts in the provenance as
``unknown_eligibility``); ``false`` selects the ineligible ones (a suppression list) and
``null`` ignores eligibility.

The file written is a CSV sorted by account id, and beside it ``<out>.json`` with what
makes it reproducible: the spec (and the SHA-256 of its text), the cutoff, the model and
policy versions, the store's fill count and last fill time, and the counts removed by
each criterion. Nothing in either file depends on the wall clock, so building the same
spec on the same store and model writes the same bytes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import duckdb
import numpy as np
import pandas as pd
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from traderseg import __version__
from traderseg.errors import ConfigError, DataError
from traderseg.growth.inputs import DecisionInputs, decision_inputs
from traderseg.growth.spec import load_spec
from traderseg.policy.schema import VALUE_TIER_NAMES
from traderseg.segment.overlays import LIFECYCLE_STAGES
from traderseg.store import store_connection

AUDIENCE_COLUMNS = ("account_id", "segment_id", "segment_name", "lifecycle_stage",
                    "value_tier", "lifetime_value", "churn_probability", "marketing_eligible")
"""Columns of an audience file (``lifetime_value`` only when the spec selects on it)."""


def _one_of(value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{value!r} is not one of {', '.join(allowed)}")
    return value


def _stage(value: str) -> str:
    return _one_of(value, LIFECYCLE_STAGES)


def _tier(value: str) -> str:
    return _one_of(value, VALUE_TIER_NAMES)


class Range(BaseModel):
    """Bounds on a number, ``min`` inclusive and ``max`` exclusive; either may be left out."""

    model_config = ConfigDict(extra="forbid")
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min >= self.max:
            raise ValueError(f"min {self.min:g} is not below max {self.max:g}")
        return self

    def mask(self, values: np.ndarray) -> np.ndarray:
        """Return True where ``min <= value < max`` (False for unknown values)."""
        keep = ~np.isnan(values)
        if self.min is not None:
            keep &= values >= self.min
        if self.max is not None:
            keep &= values < self.max
        return keep


class Selection(BaseModel):
    """The criteria of an audience (AND of the keys given)."""

    model_config = ConfigDict(extra="forbid")
    segments: list[int | str] | None = Field(default=None, min_length=1)
    lifecycle_stages: list[Annotated[str, AfterValidator(_stage)]] | None = Field(
        default=None, min_length=1)
    value_tiers: list[Annotated[str, AfterValidator(_tier)]] | None = Field(
        default=None, min_length=1)
    lifetime_value: Range | None = None
    churn_probability: Range | None = None
    marketing_eligible: bool | None = True

    @field_validator("churn_probability")
    @classmethod
    def _probability(cls, v: Range | None) -> Range | None:
        for bound in (v.min, v.max) if v is not None else ():
            if bound is not None and not 0.0 <= bound <= 1.0:
                raise ValueError(f"{bound:g} is not a probability (0 to 1)")
        return v




class AudienceSpec(BaseModel):
    """An audience file: a name, an optional cutoff and a selection."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$", max_length=64)
    description: str = ""
    as_of: datetime | None = None
    select: Selection

    @property
    def uses_lifetime_value(self) -> bool:
        """Whether the selection needs the lifetime-value fit."""
        s = self.select
        return s.lifetime_value is not None or s.churn_probability is not None


def load_audience_spec(path: str | Path) -> AudienceSpec:
    """Read and validate an audience spec (errors name ``FILE:LINE`` and the key)."""
    return load_spec(path, AudienceSpec)


@dataclass(frozen=True)
class Audience:
    """An audience built from a spec.

    Attributes
    ----------
    members : pandas.DataFrame
        :data:`AUDIENCE_COLUMNS` of the selected accounts, sorted by account id.
    provenance : dict
        What the sidecar JSON records (see the module docstring).
    """

    members: pd.DataFrame
    provenance: dict[str, Any]


def segment_ids(wanted: list[int | str], frame: pd.DataFrame, where: str) -> set[int]:
    """Resolve segment ids or names against the assigned segments of the model."""
    names = frame.groupby("segment_id")["segment_name"].first()
    by_name = {str(n).lower(): int(str(i)) for i, n in names.items()}
    out: set[int] = set()
    for w in wanted:
        if isinstance(w, int) and not isinstance(w, bool):
            if w not in names.index:
                raise ConfigError(f"{where}: select.segments: no segment {w} among the "
                                  f"accounts; ids: {', '.join(map(str, names.index))}")
            out.add(int(w))
        elif str(w).lower() in by_name:
            out.add(by_name[str(w).lower()])
        else:
            raise ConfigError(f"{where}: select.segments: no segment named {w!r}; names: "
                              f"{', '.join(map(str, names))}")
    return out


def select_accounts(frame: pd.DataFrame, spec: AudienceSpec,
                    where: str = "audience") -> tuple[pd.DataFrame, dict[str, int]]:
    """Apply a spec's selection to decision inputs.

    Parameters
    ----------
    frame : pandas.DataFrame
        Decision inputs (:func:`traderseg.growth.inputs.decision_inputs`).
    spec : AudienceSpec
        The spec.
    where : str
        Name of the spec, for errors.

    Returns
    -------
    tuple
        The selected rows, and the number of accounts each criterion removed (in order).
    """
    s = spec.select
    keep = np.ones(len(frame), dtype=bool)
    removed: dict[str, int] = {}

    def apply(name: str, mask: np.ndarray) -> None:
        nonlocal keep
        removed[name] = int((keep & ~mask).sum())
        keep &= mask

    if s.segments is not None:
        ids = segment_ids(s.segments, frame, where)
        apply("segments", frame["segment_id"].isin(ids).to_numpy())
    if s.lifecycle_stages is not None:
        apply("lifecycle_stages",
              frame["lifecycle_stage"].astype(str).isin(s.lifecycle_stages).to_numpy())
    if s.value_tiers is not None:
        apply("value_tiers", frame["value_tier"].astype(str).isin(s.value_tiers).to_numpy())
    for key in ("lifetime_value", "churn_probability"):
        rng: Range | None = getattr(s, key)
        if rng is not None:
            if key not in frame.columns:
                raise DataError(f"{where}: select.{key}: the inputs carry no {key}")
            apply(key, rng.mask(pd.to_numeric(frame[key], errors="coerce").to_numpy(float)))
    if s.marketing_eligible is not None:
        elig = frame["marketing_eligible"]
        known = elig.notna().to_numpy()
        removed["unknown_eligibility"] = int((keep & ~known).sum())
        value = elig.where(elig.notna(), not s.marketing_eligible).astype(bool).to_numpy()
        apply("marketing_eligible", known & (value == s.marketing_eligible))
        removed["marketing_eligible"] -= removed["unknown_eligibility"]
    return frame.loc[keep], removed


def _store_state(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    row = con.execute("SELECT count(*), max(ts) FROM fills").fetchone()
    n, last = (row if row is not None else (0, None))
    return {"fills": int(n), "last_fill": None if last is None else pd.Timestamp(last).isoformat()}


def build_audience(
    db: str | Path | duckdb.DuckDBPyConnection,
    model_dir: str | Path,
    spec: AudienceSpec | str | Path,
    *,
    inputs: DecisionInputs | None = None,
) -> Audience:
    """Build the audience a spec describes.

    Parameters
    ----------
    db : str, Path or duckdb connection
        The store.
    model_dir : str or Path
        Saved segment model.
    spec : AudienceSpec, str or Path
        The spec or its YAML file.
    inputs : DecisionInputs, optional
        Precomputed decision inputs (as of the spec's cutoff) instead of the store's.

    Returns
    -------
    Audience
    """
    spec_text = None
    where = "audience"
    if not isinstance(spec, AudienceSpec):
        where = str(spec)
        spec_text = Path(spec).read_bytes()
        spec = load_audience_spec(spec)
    con, close = store_connection(db)
    try:
        if inputs is None:
            inputs = decision_inputs(con, model_dir, spec.as_of,
                                     lifetime_value=spec.uses_lifetime_value)
        state = _store_state(con)
    finally:
        if close:
            con.close()
    chosen, removed = select_accounts(inputs.frame, spec, where)
    cols = [c for c in AUDIENCE_COLUMNS if c in chosen.columns]
    members = chosen[cols].sort_values("account_id").reset_index(drop=True)
    provenance = {
        "audience": spec.name,
        "description": spec.description,
        "spec": spec.model_dump(mode="json"),
        "spec_sha256": hashlib.sha256(spec_text).hexdigest() if spec_text is not None else None,
        "as_of": inputs.as_of.isoformat(),
        "model_version": inputs.model_version,
        "policy_version": inputs.policy_version,
        "store": state,
        "library_version": __version__,
        "accounts_considered": int(len(inputs.frame)),
        "accounts_selected": int(len(members)),
        "removed_by": removed,
        "notes": list(inputs.notes),
    }
    return Audience(members, provenance)


def sidecar_path(out: str | Path) -> Path:
    """Path of the provenance JSON written beside an audience file."""
    p = Path(out)
    return p.with_name(p.name + ".json")


def write_audience(audience: Audience, out: str | Path) -> Path:
    """Write the audience CSV and its provenance JSON; return the JSON's path."""
    p = Path(out)
    if not p.parent.exists():
        raise DataError(f"{p}: folder {p.parent} does not exist")
    audience.members.to_csv(p, index=False, float_format="%.6g", lineterminator="\n")
    side = sidecar_path(p)
    side.write_text(json.dumps(audience.provenance, indent=2, sort_keys=True) + "\n",
                    encoding="utf-8")
    return side


def read_audience(path: str | Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read an audience CSV and its provenance (empty when the JSON is missing)."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: no such audience file")
    if p.is_dir():
        raise DataError(f"{p}: is a directory, not an audience file")
    try:
        members = pd.read_csv(p, dtype={"account_id": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{p}: not an audience CSV ({' '.join(str(exc).split())})") from None
    if "account_id" not in members.columns:
        raise DataError(f"{p}: no account_id column; columns: {list(members.columns)}")
    side = sidecar_path(p)
    try:
        prov = json.loads(side.read_text(encoding="utf-8")) if side.exists() else {}
    except json.JSONDecodeError as exc:
        raise DataError(f"{side}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    return members, prov
