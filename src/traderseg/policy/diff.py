"""Backtest of a policy change: which accounts would change which controls, and their fees.

:func:`policy_diff` evaluates the old and the new policy on the same decision inputs and
lists every (account, control) whose value would change, with its direction (``tighter``:
the new value is the more restrictive one; ``looser``; ``changed``: neither, e.g. another
set of allowed products) and the venue revenue (fees, net of rebates) each account
generated in the 30 days before the evaluation time.

Inputs, two sources:

* **current state**: the input columns of the ``controls`` table (what the stream
  decided on), evaluated as of the latest fill of the store;
* **history**: decision inputs rebuilt from the fills at earlier cutoffs
  (:func:`~traderseg.policy.inputs.decision_inputs`, with the saved segment model and,
  when given, the predictor bundle), by default the starts of the last three calendar
  months inside the data. The audit log is not used: it records controls, not the inputs
  that decided them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from traderseg.errors import DataError
from traderseg.online.tables import control_text, read_controls
from traderseg.policy.controls import CONTROL_NAMES, most_restrictive
from traderseg.policy.engine import INPUT_COLUMNS, Policy
from traderseg.policy.inputs import decision_inputs
from traderseg.policy.predict import Predictors
from traderseg.store import fill_bounds

FEE_DAYS = 30
CHANGE_COLUMNS = ("account_id", "control", "old_value", "new_value", "direction",
                  "old_rule", "new_rule")


@dataclass(frozen=True)
class DiffResult:
    """Changes of one evaluation.

    Attributes
    ----------
    source : str
        ``current`` or ``history``.
    as_of : pandas.Timestamp
        Time of the inputs (fees are summed over the 30 days before it).
    accounts : int
        Accounts evaluated.
    changes : pandas.DataFrame
        One row per changed (account, control): :data:`CHANGE_COLUMNS` and ``fees_30d_usd``.
    summary : pandas.DataFrame
        Per control: ``accounts`` changed, ``tighter``, ``looser``, ``changed``,
        ``fees_30d_usd`` of those accounts.
    """

    source: str
    as_of: pd.Timestamp
    accounts: int
    changes: pd.DataFrame
    summary: pd.DataFrame

    @property
    def changed_accounts(self) -> int:
        """Accounts with at least one changed control."""
        return int(self.changes["account_id"].nunique())


def direction(control: str, old: Any, new: Any) -> str:
    """``tighter``, ``looser`` or ``changed`` for a control moving from ``old`` to ``new``.

    Examples
    --------
    >>> direction("max_leverage", 20.0, 10.0), direction("marketing_eligible", False, True)
    ('tighter', 'looser')
    >>> direction("allowed_products", "spot,perp", "spot,option")
    'changed'
    """
    value, _ = most_restrictive(control, [old, new])
    same = control_text(control, value)
    if same == control_text(control, new):
        return "tighter"
    if same == control_text(control, old):
        return "looser"
    return "changed"


def compare(old: Policy, new: Policy, inputs: pd.DataFrame) -> pd.DataFrame:
    """Return the changed (account, control) pairs between two policies on the same inputs.

    Parameters
    ----------
    old, new : Policy
        The live policy and the proposed one.
    inputs : pandas.DataFrame
        ``account_id`` and the input columns.

    Returns
    -------
    pandas.DataFrame
        :data:`CHANGE_COLUMNS`, ordered by account then control order.
    """
    a = old.evaluate(inputs)
    b = new.evaluate(inputs)
    ids = inputs["account_id"].astype(str).to_numpy()
    rules_a = a["rules"].map(_loads)
    rules_b = b["rules"].map(_loads)
    rows = []
    for name in CONTROL_NAMES:
        ta = a[name].map(lambda v, n=name: control_text(n, v))
        tb = b[name].map(lambda v, n=name: control_text(n, v))
        for k in (ta != tb).to_numpy().nonzero()[0]:
            rows.append((ids[k], name, ta.iloc[k], tb.iloc[k],
                         direction(name, a[name].iloc[k], b[name].iloc[k]),
                         rules_a.iloc[k][name], rules_b.iloc[k][name]))
    out = pd.DataFrame(rows, columns=list(CHANGE_COLUMNS))
    rank = out["control"].map({c: i for i, c in enumerate(CONTROL_NAMES)})
    out = out.assign(_rank=rank).sort_values(["account_id", "_rank"], kind="stable")
    return out.drop(columns="_rank").reset_index(drop=True)


def _loads(text: str) -> dict[str, str]:
    return dict(json.loads(text))


def fees_before(con: duckdb.DuckDBPyConnection, end: pd.Timestamp,
                days: int = FEE_DAYS) -> pd.Series:
    """Fees (net of rebates) per account in ``[end - days, end)``."""
    df = con.execute(
        "SELECT account_id, sum(fee_usd) AS fees FROM fills WHERE ts >= ? AND ts < ? "
        "GROUP BY account_id",
        [(end - pd.Timedelta(days=days)).to_pydatetime(), end.to_pydatetime()]).df()
    return df.set_index("account_id")["fees"].astype(float)


def _result(con: duckdb.DuckDBPyConnection, source: str, as_of: pd.Timestamp,
            old: Policy, new: Policy, inputs: pd.DataFrame) -> DiffResult:
    changes = compare(old, new, inputs)
    fees = fees_before(con, as_of)
    changes["fees_30d_usd"] = changes["account_id"].map(fees).fillna(0.0).astype(float)
    rows = []
    for name in CONTROL_NAMES:
        part = changes[changes["control"] == name]
        counts = part["direction"].value_counts()
        rows.append({"control": name, "accounts": len(part),
                     **{d: int(counts.get(d, 0)) for d in ("tighter", "looser", "changed")},
                     "fees_30d_usd": float(part["fees_30d_usd"].sum())})
    summary = pd.DataFrame(rows).set_index("control")
    return DiffResult(source=source, as_of=as_of, accounts=len(inputs), changes=changes,
                      summary=summary)


def month_starts(con: duckdb.DuckDBPyConnection, n: int) -> list[pd.Timestamp]:
    """Return the last ``n`` month starts strictly inside the store's fills, oldest first."""
    first, last = fill_bounds(con)
    start = (first + pd.offsets.MonthBegin(1)).normalize()
    cuts = list(pd.date_range(start, last, freq="MS", tz="UTC"))
    cuts = [c for c in cuts if first < c <= last]
    return cuts[-n:] if n > 0 else []


def policy_diff(
    con: duckdb.DuckDBPyConnection,
    old: Policy,
    new: Policy,
    *,
    model_dir: str | Path | None = None,
    predictors: Predictors | None = None,
    history: int | Sequence[Any] = 3,
) -> list[DiffResult]:
    """Evaluate a policy change on the current state and on history.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Store connection.
    old, new : Policy
        Live and proposed policies.
    model_dir : str or Path, optional
        Saved segment model, needed for history (and for the current state when the
        ``controls`` table is empty).
    predictors : Predictors, optional
        Predictor bundle for the rebuilt inputs.
    history : int or sequence of timestamp-like
        Number of past month starts, or explicit cutoffs (0 or empty: no history).

    Returns
    -------
    list of DiffResult
        ``current`` first, then each history cutoff, oldest first.

    Raises
    ------
    DataError
        No current state and no model to rebuild it, or history without a model.
    """
    _, last = fill_bounds(con)
    now = last + pd.Timedelta(microseconds=1)
    current = read_controls(con)
    results = []
    if len(current):
        inputs = current[["account_id", *INPUT_COLUMNS]]
        results.append(_result(con, "current", now, old, new, inputs))
    elif model_dir is not None:
        inputs = decision_inputs(con, model_dir, now, predictors=predictors)
        results.append(_result(con, "current", now, old, new, inputs))
    else:
        raise DataError("the store's controls table is empty: no current state to evaluate; "
                        "give the segment model (--model) to rebuild the inputs from the fills")
    cuts = (month_starts(con, history) if isinstance(history, int)
            else [pd.Timestamp(c, tz="UTC") if pd.Timestamp(c).tzinfo is None
                  else pd.Timestamp(c) for c in history])
    if cuts and model_dir is None:
        raise DataError("history needs the segment model (--model) to rebuild the decision "
                        "inputs at past cutoffs; pass --history 0 to skip it")
    for c in cuts:
        inputs = decision_inputs(con, model_dir, c, predictors=predictors)  # type: ignore[arg-type]
        results.append(_result(con, "history", c, old, new, inputs))
    return results
