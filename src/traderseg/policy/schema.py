"""The policy file: versioned YAML validated by pydantic models, errors naming FILE:LINE.

A policy file has the keys

* ``version`` (required): the policy's version, recorded with every decision;
* ``model_version`` (optional): the segment model it was written for
  (:func:`traderseg.segment.persist.model_version`);
* ``description`` (optional);
* ``defaults`` (required): a value for every control of
  :data:`~traderseg.policy.controls.CONTROLS`, and optionally ``review_reason``;
* ``rules``: an ordered list of ``{name, description?, when, set, review_reason?}``.

``when`` holds the conditions, all of which must hold (an empty ``when`` matches every
account): ``segment`` (stable ids and/or names), ``lifecycle_stage``, ``value_tier``,
``kyc_tier``, ``region`` (lists; a single value is a list of one), and bands
``{min, max}`` on ``risk_score``, ``membership``, ``churn_probability`` and
``liquidation_risk``: ``min`` inclusive, ``max`` exclusive. A condition on an input the
account lacks (NaN or None) does not match.

``set`` holds the controls the rule sets, each validated by the control's type. Unknown
keys are errors. Every error is a :class:`~traderseg.errors.ConfigError` on one line,
``FILE:LINE: key.path: reason``, the line found from the YAML node marks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)

from traderseg.errors import ConfigError
from traderseg.policy.controls import CONTROL_NAMES, format_products
from traderseg.schema import KINDS
from traderseg.segment.overlays import LIFECYCLE_STAGES, VALUE_TIERS

VALUE_TIER_NAMES: tuple[str, ...] = tuple(name for name, _ in VALUE_TIERS) + ("bronze",)

# Band conditions: input column -> the closed range its values can take (for validation).
BAND_INPUTS: dict[str, tuple[float, float]] = {
    "risk_score": (0.0, 100.0),
    "membership": (0.0, 1.0),
    "churn_probability": (0.0, 1.0),
    "liquidation_risk": (0.0, 1.0),
}
# Set conditions: input column -> the values allowed (None: any value of the type).
SET_INPUTS: dict[str, tuple[Any, ...] | None] = {
    "lifecycle_stage": LIFECYCLE_STAGES,
    "value_tier": VALUE_TIER_NAMES,
    "kyc_tier": None,
    "region": None,
}


def _products(value: Any) -> str:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ValueError("give a list of instrument kinds")
    kinds = [str(k).strip().lower() for k in items if str(k).strip()]
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ValueError(f"unknown instrument kind(s) {unknown}; known: {', '.join(KINDS)}")
    return format_products(kinds)


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


# The value type of each control in a policy file. Keyed by control name; the import-time
# check below makes a control added to CONTROLS without a type here an error.
_Leverage = Annotated[float, Field(gt=0, allow_inf_nan=False)]
_Limit = Annotated[float, Field(ge=0, allow_inf_nan=False)]
_Multiplier = Annotated[float, Field(ge=1, allow_inf_nan=False)]
CONTROL_VALUE_TYPES: dict[str, Any] = {
    "max_leverage": _Leverage,
    "position_limit_usd": _Limit,
    "margin_multiplier": _Multiplier,
    "allowed_products": Annotated[str, Field()],
    "option_writing": StrictBool,
    "review_flag": StrictBool,
    "marketing_eligible": StrictBool,
}
if set(CONTROL_VALUE_TYPES) != set(CONTROL_NAMES):  # pragma: no cover - a declaration error
    raise RuntimeError("policy value types and CONTROLS disagree: "
                       f"{sorted(set(CONTROL_VALUE_TYPES) ^ set(CONTROL_NAMES))}")

_STRICT = ConfigDict(extra="forbid", frozen=True)


class _ControlsBase(BaseModel):
    model_config = _STRICT

    @field_validator("allowed_products", mode="before", check_fields=False)
    @classmethod
    def _kinds(cls, value: Any) -> Any:
        return None if value is None else _products(value)


SetControls = create_model(  # type: ignore[call-overload]
    "SetControls", __base__=_ControlsBase,
    **{name: (CONTROL_VALUE_TYPES[name] | None, None) for name in CONTROL_NAMES},
)
"""Controls a rule sets (each optional, at least one)."""

DefaultControls = create_model(  # type: ignore[call-overload]
    "DefaultControls", __base__=_ControlsBase,
    review_reason=(str | None, None),
    **{name: (CONTROL_VALUE_TYPES[name], ...) for name in CONTROL_NAMES},
)
"""The default of every control (all required), and the reason of a default review flag."""


class Band(BaseModel):
    """A range condition: ``min <= value < max`` (either bound may be omitted)."""

    model_config = _STRICT

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _bounds(self) -> Band:
        if self.min is None and self.max is None:
            raise ValueError("give min and/or max")
        for v in (self.min, self.max):
            if v is not None:
                _finite(v)
        if self.min is not None and self.max is not None and not self.min < self.max:
            raise ValueError(f"min ({self.min:g}) must be below max ({self.max:g})")
        return self


def _as_list(value: Any) -> Any:
    return value if value is None or isinstance(value, list) else [value]


class When(BaseModel):
    """The conditions of a rule; all must hold."""

    model_config = _STRICT

    segment: list[int | str] | None = None
    lifecycle_stage: list[str] | None = None
    value_tier: list[str] | None = None
    kyc_tier: list[int] | None = None
    region: list[str] | None = None
    risk_score: Band | None = None
    membership: Band | None = None
    churn_probability: Band | None = None
    liquidation_risk: Band | None = None

    @field_validator("segment", "lifecycle_stage", "value_tier", "kyc_tier", "region",
                     mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        value = _as_list(value)
        if value is not None and not value:
            raise ValueError("an empty list matches nothing; leave the condition out")
        return value

    @field_validator("segment", mode="before")
    @classmethod
    def _segment_entries(cls, value: Any) -> Any:
        for v in _as_list(value) or []:
            if isinstance(v, bool) or not isinstance(v, int | str):
                raise ValueError(f"{v!r}: a segment is a stable id (whole number) or a name")
        return value

    @model_validator(mode="after")
    def _allowed(self) -> When:
        for key, allowed in SET_INPUTS.items():
            values = getattr(self, key)
            if allowed is not None and values is not None:
                bad = [v for v in values if v not in allowed]
                if bad:
                    raise ValueError(f"{key}: unknown value(s) {bad}; known: "
                                     f"{', '.join(map(str, allowed))}")
        for key, (lo, hi) in BAND_INPUTS.items():
            band = getattr(self, key)
            if band is None:
                continue
            for bound in (band.min, band.max):
                if bound is not None and not lo <= bound <= hi:
                    raise ValueError(f"{key}: bound {bound:g} outside {lo:g}..{hi:g}")
        return self


class Rule(BaseModel):
    """One rule: where it applies and the controls it sets."""

    model_config = _STRICT

    name: Annotated[str, Field(min_length=1)]
    description: str | None = None
    when: When = When()
    set: SetControls  # type: ignore[valid-type]
    review_reason: str | None = None

    @field_validator("set", mode="after")
    @classmethod
    def _sets_something(cls, value: Any) -> Any:
        if not value.model_dump(exclude_none=True):
            raise ValueError("give at least one control")
        return value

    @field_validator("review_reason", mode="after")
    @classmethod
    def _reason_with_flag(cls, value: str | None, info: ValidationInfo) -> str | None:
        ctl = info.data.get("set")
        if value is not None and ctl is not None and ctl.review_flag is not True:
            raise ValueError("only for a rule that sets review_flag: true")
        return value


class PolicyDocument(BaseModel):
    """The whole file."""

    model_config = _STRICT

    version: Annotated[str, Field(min_length=1)]
    model_version: str | None = None
    description: str | None = None
    defaults: DefaultControls  # type: ignore[valid-type]
    rules: list[Rule] = []

    @field_validator("version", "model_version", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        # `version: 3` or `version: 2.1` in YAML are numbers; versions are text
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        return value

    @model_validator(mode="after")
    def _unique_names(self) -> PolicyDocument:
        seen: set[str] = set()
        for i, rule in enumerate(self.rules):
            if rule.name in seen or rule.name == "default":
                why = "is reserved" if rule.name == "default" else "is used twice"
                raise _RuleError(i, f"rule name {rule.name!r} {why}")
            seen.add(rule.name)
        return self


class _RuleError(ValueError):
    """A whole-document check that points at one rule."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index


# ---------------------------------------------------------------------------------------------
# YAML with line marks


def _lines(node: yaml.Node, path: tuple[Any, ...], out: dict[tuple[Any, ...], int]) -> None:
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            sub = (*path, key.value)
            out[sub] = key.start_mark.line + 1
            _lines(value, sub, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _lines(item, (*path, i), out)


def line_of(lines: Mapping[tuple[Any, ...], int], path: tuple[Any, ...]) -> int:
    """Return the line of ``path`` in the file, or of its closest ancestor present."""
    for n in range(len(path), -1, -1):
        if path[:n] in lines:
            return lines[path[:n]]
    return 1


def _dotted(path: tuple[Any, ...]) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top)"


def _error_path(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Drop pydantic's type tags (``int``, ``str``, ``function-after[...]``) from a loc."""
    return tuple(p for p in loc if isinstance(p, int) or not (
        p in ("int", "str", "float", "bool") or "[" in str(p)))


def parse_document(text: str, source: str) -> tuple[PolicyDocument, dict[tuple[Any, ...], int]]:
    """Parse and validate policy text.

    Parameters
    ----------
    text : str
        YAML text.
    source : str
        File name for the messages.

    Returns
    -------
    tuple
        The validated document and the line of every key path.

    Raises
    ------
    ConfigError
        ``SOURCE:LINE: key.path: reason``.
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{source}:{line}: not valid YAML: {problem}") from None
    lines: dict[tuple[Any, ...], int] = {}
    if root is not None:
        _lines(root, (), lines)
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise ConfigError(f"{source}:1: a policy is a mapping with version, defaults and "
                          f"rules; this file is {kind}")
    try:
        doc = PolicyDocument.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        path = _error_path(tuple(err["loc"]))
        ctx = err.get("ctx") or {}
        inner = ctx.get("error")
        if isinstance(inner, _RuleError):
            path = ("rules", inner.index, "name")
            msg = str(inner)
        elif err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "required key missing"
        else:
            msg = str(err["msg"]).removeprefix("Value error, ")
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ConfigError(f"{source}:{line_of(lines, path)}: {_dotted(path)}: {msg}{more}"
                          ) from None
    return doc, lines
