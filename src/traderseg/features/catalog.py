"""The feature catalogue: every behavioural feature declared once.

A :class:`Feature` is a plain frozen declaration (name, family, description, unit,
transform hint). Declaring is separate from computing: :mod:`traderseg.features.compute`
compiles the catalogue to Ibis expressions. Computed columns are named
``{feature}__{window}`` (for example ``fill_count__30d``, ``option_share__all``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Family = Literal[
    "activity", "size", "mix", "options", "risk", "profit", "execution", "events"
]
Transform = Literal["log", "signed_log", "share", "bounded", "standard"]

CATALOG_VERSION = "1"
WINDOW_SEP = "__"


@dataclass(frozen=True)
class Feature:
    """Declaration of one behavioural feature.

    Parameters
    ----------
    name : str
        Column stem; the computed column is ``{name}__{window}``.
    family : str
        Family (activity, size, mix, options, risk, profit, execution, events).
    description : str
        What the value means, for people.
    unit : str
        Unit of the value (count, days, USD, share, x, fraction...).
    transform : str
        Modelling hint: ``log`` (non-negative amounts, log1p), ``signed_log``
        (amounts of either sign), ``share`` (in [0, 1]), ``bounded`` (known finite range),
        ``standard`` (standardise as is).
    needs : str, optional
        Subset the feature is defined on: ``"option"`` means the value is missing (NaN)
        for accounts without option fills in the window; ``"pnl"`` likewise for accounts
        without closing fills. Modelling code imputes these explicitly.
    """

    name: str
    family: Family
    description: str
    unit: str
    transform: Transform
    needs: str | None = None


def column_name(feature: str, window: str) -> str:
    """Name of the computed column for ``feature`` over ``window``."""
    return f"{feature}{WINDOW_SEP}{window}"


def split_column(column: str) -> tuple[str, str]:
    """Split a computed column name into ``(feature, window)``."""
    feature, sep, window = column.rpartition(WINDOW_SEP)
    if not sep:
        return column, "all"
    return feature, window
