"""Migration between segment assignments at consecutive cutoffs, and the flows that matter.

For each pair of consecutive assignments the transition matrix (counts and row shares)
comes from :func:`traderseg.segment.identity.migration_matrix`, with ``"new"`` for
accounts that entered and ``"gone"`` for accounts that left the assignments. Accounts
whose lifecycle stage is ``churned`` are shown in a ``"churned"`` state rather than in
their (stale) behavioural segment. Rows and columns are labelled with segment names.

Flows listed per step (an account absent at the earlier cutoff counts as "not X" there;
a flow on an overlay is listed only when both assignments carry that overlay):

* ``into_dormant`` / ``into_churned``: lifecycle stage became dormant / churned;
* ``gone``: the account left the assignments;
* ``into_high_risk_segment``: moved into one of the ``high_risk_segments``;
* ``into_high_risk_score``: ``risk_score`` rose to ``risk_threshold`` or above;
* ``out_of_top_value_tier``: was in the top value tier, is no longer (or left).

Stability is the share of accounts present at both cutoffs that kept their segment id.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from traderseg.errors import DataError, SchemaError
from traderseg.segment.identity import migration_matrix
from traderseg.segment.overlays import VALUE_TIERS
from traderseg.store import read_assignments

logger = logging.getLogger(__name__)

CHURNED = "churned"
RISK_THRESHOLD = 70.0
TOP_VALUE_TIER = VALUE_TIERS[0][0]


@dataclass(frozen=True)
class MigrationStep:
    """Migration between two consecutive assignments.

    Attributes
    ----------
    start, end : object
        Labels (cutoffs) of the earlier and later assignment.
    counts : pandas.DataFrame
        Accounts from each earlier state (rows, plus ``new``) to each later state
        (columns, plus ``gone``).
    shares : pandas.DataFrame
        ``counts`` as row shares.
    """

    start: Any
    end: Any
    counts: pd.DataFrame
    shares: pd.DataFrame


@dataclass(frozen=True)
class MigrationReport:
    """Result of :func:`migration`.

    Attributes
    ----------
    steps : list of MigrationStep
        One per consecutive pair.
    summary : pandas.DataFrame
        Per step: ``start``, ``end``, ``accounts_start``, ``accounts_end``, ``entered``,
        ``gone``, ``in_both``, ``stayed``, ``stability``.
    flows : pandas.DataFrame
        Per step and flow: ``start``, ``end``, ``flow``, ``accounts``.
    flow_accounts : pandas.DataFrame
        The accounts behind each flow: ``start``, ``end``, ``flow``, ``account_id``,
        ``from_state``, ``to_state``.
    """

    steps: list[MigrationStep]
    summary: pd.DataFrame
    flows: pd.DataFrame
    flow_accounts: pd.DataFrame


def _labels(frames: Sequence[pd.DataFrame]) -> dict[int, str]:
    """Display label per segment id: its (latest) name, made unique with the id if needed."""
    names: dict[int, str] = {}
    for f in frames:
        for seg, name in zip(f["segment"], f["segment_name"], strict=True):
            names[int(seg)] = str(name)
    counts = pd.Series(list(names.values())).value_counts()
    return {s: (n if counts[n] == 1 and n not in ("new", "gone", CHURNED) else f"{s}: {n}")
            for s, n in names.items()}


def _check_order(labels: Sequence[Any]) -> None:
    if len(set(map(str, labels))) != len(labels):
        raise DataError(f"period labels must be distinct: {list(labels)}")
    try:
        ts = [pd.Timestamp(x) for x in labels]
    except (TypeError, ValueError):
        return  # free-form labels: the given order is the time order
    for i in range(1, len(ts)):
        if ts[i] <= ts[i - 1]:
            raise DataError(f"periods must be in time order: {labels[i]} is not after "
                            f"{labels[i - 1]}")


def _states(a: pd.DataFrame, names: dict[int, str]) -> pd.Series:
    s = a.set_index("account_id")["segment"].map(names).astype(object)
    if "lifecycle" in a.columns:
        churned = (a["lifecycle"].astype(str) == CHURNED).to_numpy()
        s[churned] = CHURNED
    return s


def _order(keys: Sequence[Any], seg_order: list[str], last: str) -> list[Any]:
    present = set(keys)
    out = [k for k in seg_order if k in present]
    out += [k for k in keys if k not in out and k not in (CHURNED, last)]
    return out + [k for k in (CHURNED, last) if k in present]


def _flows(a: pd.DataFrame, b: pd.DataFrame, high_risk: set[str], risk_threshold: float,
           top_tier: str) -> dict[str, pd.Index]:
    """Accounts of each flow; an overlay flow needs the overlay at both cutoffs."""
    ia, ib = a.set_index("account_id"), b.set_index("account_id")
    out: dict[str, pd.Index] = {"gone": ia.index.difference(ib.index)}

    def into(now: pd.Series, was: pd.Series) -> pd.Index:
        was = was.reindex(ib.index, fill_value=False).astype(bool)
        return ib.index[(now & ~was).to_numpy()]

    if "lifecycle" in ia.columns and "lifecycle" in ib.columns:
        for stage in ("dormant", CHURNED):
            out[f"into_{stage}"] = into(ib["lifecycle"].astype(str) == stage,
                                        ia["lifecycle"].astype(str) == stage)
    if high_risk:
        def hit(f: pd.DataFrame) -> pd.Series:
            return f["segment"].astype(str).isin(high_risk) | f["segment_name"].isin(high_risk)
        out["into_high_risk_segment"] = into(hit(ib), hit(ia))
    if "risk_score" in ia.columns and "risk_score" in ib.columns:
        out["into_high_risk_score"] = into(ib["risk_score"] >= risk_threshold,
                                           ia["risk_score"] >= risk_threshold)
    if "value_tier" in ia.columns and "value_tier" in ib.columns:
        was = ia["value_tier"].astype(str) == top_tier
        now = (ib["value_tier"].astype(str) == top_tier).reindex(ia.index, fill_value=False)
        out["out_of_top_value_tier"] = ia.index[(was & ~now.astype(bool)).to_numpy()]
    return out


def migration(
    periods: Sequence[tuple[Any, pd.DataFrame | str | Path]],
    *,
    high_risk_segments: Sequence[int | str] = (),
    risk_threshold: float = RISK_THRESHOLD,
    top_value_tier: str = TOP_VALUE_TIER,
) -> MigrationReport:
    """Transition matrices, stability and flows over a sequence of assignments.

    Parameters
    ----------
    periods : sequence of (label, assignments)
        Assignments in time order, each with its cutoff (or any label); frames or
        Parquet paths (see :func:`~traderseg.store.read_assignments`).
    high_risk_segments : sequence of int or str
        Segment ids or names counted as high risk.
    risk_threshold : float
        ``risk_score`` at or above which an account is high risk.
    top_value_tier : str
        Name of the top value tier.

    Returns
    -------
    MigrationReport
        Matrices per step, stability summary and flows.

    Raises
    ------
    DataError
        Fewer than two periods, periods out of order, an empty assignment.

    Examples
    --------
    >>> a = pd.DataFrame({"account_id": ["x", "y"], "segment": [0, 1],
    ...                   "segment_name": ["makers", "punters"]})
    >>> b = pd.DataFrame({"account_id": ["x", "z"], "segment": [1, 1],
    ...                   "segment_name": ["makers", "punters"]})
    >>> rep = migration([("2024-01-01", a), ("2024-02-01", b)])
    >>> int(rep.steps[0].counts.loc["makers", "punters"]), float(rep.summary["stability"][0])
    (1, 0.0)
    """
    if len(periods) < 2:
        raise DataError("migration needs at least two periods")
    labels = [p[0] for p in periods]
    _check_order(labels)
    frames = []
    for label, a in periods:
        frames.append(read_assignments(a, what=f"period {label}"))
    if risk_threshold < 0 or not np.isfinite(risk_threshold):
        raise SchemaError(f"risk_threshold must be a finite value >= 0, not {risk_threshold}")
    names = _labels(frames)
    seg_order = [names[s] for s in sorted(names)]
    high = {str(h) for h in high_risk_segments}
    known = {str(s) for s in names} | {str(n) for f in frames for n in f["segment_name"]}
    if high - known:
        raise SchemaError(f"high-risk segment(s) {sorted(high - known)} appear in no assignment")
    steps, summary, flows, flow_rows = [], [], [], []
    for (la, a), (lb, b) in zip(zip(labels, frames, strict=True),
                                zip(labels[1:], frames[1:], strict=True), strict=False):
        mm = migration_matrix(_states(a, names), _states(b, names))
        rows = _order(list(mm.counts.index), seg_order, "new")
        cols = _order(list(mm.counts.columns), seg_order, "gone")
        steps.append(MigrationStep(la, lb, mm.counts.loc[rows, cols], mm.shares.loc[rows, cols]))
        sa, sb = a.set_index("account_id")["segment"], b.set_index("account_id")["segment"]
        both = sa.index.intersection(sb.index)
        stayed = int((sa.loc[both] == sb.loc[both]).sum())
        summary.append({
            "start": la, "end": lb, "accounts_start": len(sa), "accounts_end": len(sb),
            "entered": len(sb.index.difference(sa.index)),
            "gone": len(sa.index.difference(sb.index)), "in_both": len(both),
            "stayed": stayed, "stability": stayed / len(both) if len(both) else np.nan,
        })
        state_a, state_b = _states(a, names), _states(b, names)
        for flow, ids in _flows(a, b, high, risk_threshold, top_value_tier).items():
            flows.append({"start": la, "end": lb, "flow": flow, "accounts": len(ids)})
            flow_rows.append(pd.DataFrame({
                "start": la, "end": lb, "flow": flow, "account_id": ids,
                "from_state": state_a.reindex(ids).fillna("new").to_numpy(),
                "to_state": state_b.reindex(ids).fillna("gone").to_numpy(),
            }))
    flow_accounts = pd.concat(flow_rows, ignore_index=True)
    return MigrationReport(steps, pd.DataFrame(summary), pd.DataFrame(flows), flow_accounts)
