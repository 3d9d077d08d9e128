"""Manual overrides of an account's controls, written through the audited decision path.

A person (a risk officer through the service) may set some controls of one account by
hand. The new values are checked against each control's declaration in
:data:`traderseg.policy.controls.CONTROLS` (type, lowest value, known product kinds), the
rule of each changed control becomes ``override: <reason>``, and the row goes through
:func:`traderseg.online.tables.write_decisions` so every change lands in the audit log
with its actor. Setting a control to the value it already has records nothing.

The next policy decision on the account (a fill through the stream, a batch run)
replaces the override with what the policy says: an override is a correction of the
current decision, not a rule.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import duckdb
import pandas as pd

from traderseg.errors import DataError
from traderseg.online.tables import control_text, read_controls, write_decisions
from traderseg.policy.controls import CONTROL_NAMES, control, format_products, parse_products
from traderseg.schema import KINDS

OVERRIDE_RULE = "override"
"""Prefix of the rule recorded for a control set by hand."""
MAX_REASON = 500
"""Longest reason kept with an override (characters)."""


def check_control_value(name: str, value: Any) -> Any:
    """Return ``value`` as control ``name`` holds it, or raise naming what is wrong.

    Raises
    ------
    DataError
        Unknown control, a value of the wrong type, below the control's minimum, or an
        unknown product kind.
    """
    if name not in CONTROL_NAMES:
        raise DataError(f"unknown control {name!r}; known: {', '.join(CONTROL_NAMES)}")
    decl = control(name)
    kind = str(decl.type)
    if kind == "bool":
        if not isinstance(value, bool):
            raise DataError(f"control {name}: expected true or false, got {value!r}")
        return value
    if kind == "string":
        if not isinstance(value, str):
            raise DataError(f"control {name}: expected a comma-separated list of kinds, "
                            f"got {value!r}")
        kinds = parse_products(value)
        unknown = sorted(kinds - set(KINDS))
        if unknown:
            raise DataError(f"control {name}: unknown kind(s) {', '.join(unknown)}; known: "
                            f"{', '.join(KINDS)}")
        return format_products(kinds)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DataError(f"control {name}: expected a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise DataError(f"control {name}: {value!r} is not a finite number")
    if decl.minimum is not None and number < decl.minimum:
        raise DataError(f"control {name}: {number:g} is below the lowest allowed value "
                        f"{decl.minimum:g}")
    return number


def override_controls(con: duckdb.DuckDBPyConnection, account_id: str,
                      changes: Mapping[str, Any], *, actor: str, reason: str) -> int:
    """Set some controls of one account by hand and audit every change.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        The store.
    account_id : str
        Account; it must already have controls (a decision has run on it).
    changes : mapping
        Control name -> new value; at least one.
    actor : str
        Who changes it, ``key:<id>`` for a service key.
    reason : str
        Why, kept in the rule of each changed control.

    Returns
    -------
    int
        Audit rows appended (0 when every value was already in place).

    Raises
    ------
    DataError
        No change given, an empty or too long reason, a bad value, or an account without
        controls.
    """
    if not changes:
        raise DataError("no control to change: give at least one control and its value")
    text = " ".join(str(reason).split())
    if not text:
        raise DataError("a reason is required for a manual change of controls")
    if len(text) > MAX_REASON:
        raise DataError(f"the reason is {len(text)} characters long; at most {MAX_REASON}")
    values = {name: check_control_value(name, v) for name, v in changes.items()}
    current = read_controls(con, [account_id])
    if current.empty:
        raise DataError(f"account {account_id!r} has no controls yet: no policy decision has "
                        "run on it")
    row = current.iloc[0].to_dict()
    rules = json.loads(row["rules"]) if isinstance(row["rules"], str) else dict(row["rules"])
    changed = {n: v for n, v in values.items() if control_text(n, row[n]) != control_text(n, v)}
    if not changed:
        return 0
    for name, value in changed.items():
        row[name] = value
        rules[name] = f"{OVERRIDE_RULE}: {text}"
    row["rules"] = json.dumps(rules, sort_keys=True)
    row["as_of"] = pd.Timestamp.now(tz="UTC")
    row["fill_id"] = None
    return write_decisions(con, pd.DataFrame([row]), actor=actor)
