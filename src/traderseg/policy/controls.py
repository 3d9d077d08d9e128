"""The risk controls a policy sets, each declared once with how rules combine on it.

A policy's rules may set the same control for one account several times; the *most
restrictive* value wins. What "restrictive" means is part of each control's declaration:
a lower leverage cap, a lower position limit, a higher margin multiplier, fewer allowed
products, no option writing, a review flag raised, marketing eligibility withdrawn.
The store's ``controls`` and ``control_audit`` tables, the policy schema and the service
all derive from :data:`CONTROLS`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from traderseg.schema import KINDS

# How values set by several rules reduce to the one that applies.
COMBINE_RULES = ("min", "max", "intersect", "all", "any")


@dataclass(frozen=True)
class Control:
    """One control a policy sets per account.

    Parameters
    ----------
    name : str
        Column name in ``controls`` and key in the policy file.
    type : pyarrow.DataType
        Arrow type of the value.
    combine : str
        How several rules' values reduce to the most restrictive one: ``min`` (caps),
        ``max`` (multipliers), ``intersect`` (sets of allowed products), ``all``
        (permissions: one rule withdrawing it withdraws it) or ``any`` (flags).
    unit : str
        Unit of the value.
    description : str
        What the control does.
    minimum : float, optional
        Lowest value a numeric control may take (a leverage cap below 1x or a margin
        multiplier below 1 would loosen the venue's own terms).
    """

    name: str
    type: pa.DataType
    combine: str
    unit: str
    description: str
    minimum: float | None = None


CONTROLS: tuple[Control, ...] = (
    Control("max_leverage", pa.float64(), "min", "x",
            "Highest leverage the account may open new positions at.", minimum=1.0),
    Control("position_limit_usd", pa.float64(), "min", "USD",
            "Largest gross open position the account may hold.", minimum=0.0),
    Control("margin_multiplier", pa.float64(), "max", "",
            "Multiplier on the venue's initial margin (1 = standard, 1.5 = 50% more).",
            minimum=1.0),
    Control("allowed_products", pa.string(), "intersect", "",
            "Instrument kinds the account may open, a comma-separated subset of "
            + ", ".join(KINDS) + "."),
    Control("option_writing", pa.bool_(), "all", "",
            "Whether the account may write (sell to open) options."),
    Control("review_flag", pa.bool_(), "any", "",
            "The account is queued for a manual review (the reason is kept beside it)."),
    Control("marketing_eligible", pa.bool_(), "all", "",
            "Whether campaigns may target the account."),
)
CONTROL_NAMES: tuple[str, ...] = tuple(c.name for c in CONTROLS)
_BY_NAME = {c.name: c for c in CONTROLS}


def control(name: str) -> Control:
    """Return the control called ``name`` (KeyError naming the known ones otherwise)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown control {name!r}; known: {', '.join(CONTROL_NAMES)}") from None


def parse_products(value: str | Iterable[str]) -> frozenset[str]:
    """Read an allowed-products value (comma text or an iterable of kinds) into a set."""
    items = value.split(",") if isinstance(value, str) else list(value)
    return frozenset(s.strip().lower() for s in items if s.strip())


def format_products(kinds: Iterable[str]) -> str:
    """Write a set of kinds in the canonical order of :data:`traderseg.schema.KINDS`."""
    chosen = set(kinds)
    return ",".join(k for k in KINDS if k in chosen)


def most_restrictive(name: str, values: Sequence[Any]) -> tuple[Any, int]:
    """Reduce the values several rules set for control ``name`` to the one that applies.

    Parameters
    ----------
    name : str
        Control name.
    values : sequence
        Values in rule order (the default first, when it takes part).

    Returns
    -------
    tuple
        ``(value, index)``: the most restrictive value and the index of the first value
        that decides it (the winning rule). For ``intersect`` the index is that of the
        first value equal to the intersection, or of the last value that narrowed it.
    """
    if not values:
        raise ValueError(f"{name}: no value to combine")
    how = control(name).combine
    if how == "min":
        best = min(range(len(values)), key=lambda i: (values[i], i))
        return values[best], best
    if how == "max":
        best = max(range(len(values)), key=lambda i: (values[i], -i))
        return values[best], best
    if how == "all":
        for i, v in enumerate(values):
            if not v:
                return False, i
        return True, 0
    if how == "any":
        for i, v in enumerate(values):
            if v:
                return True, i
        return False, 0
    # intersect
    sets = [parse_products(v) for v in values]
    acc = sets[0]
    winner = 0
    for i, s in enumerate(sets[1:], start=1):
        narrowed = acc & s
        if narrowed != acc:
            winner = i
        acc = narrowed
    return format_products(acc), winner
