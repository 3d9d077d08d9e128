"""Bias audit of segments and the overlays controls follow, across account groups.

Segments are built from trading behaviour only, but behaviour can stand in for who an
account is. The audit looks at each account attribute (region, KYC tier, acquisition
channel by default) in two ways:

* **Association with the segments.** The groups x segments table of counts, its
  chi-square test of independence and Cramér's V, ``sqrt(chi2 / (n * (min(r, c) - 1)))``
  (0: the segment mix is the same in every group; 1: the group fixes the segment).
* **Outcome rates per group.** For each outcome an account can receive (by default a
  high risk score, ``risk_score >= 70``, which tightens controls; the top value tiers,
  platinum or gold, which opens marketing; a lapsing lifecycle stage, at-risk, dormant or
  churned, which draws retention campaigns) the rate in each group, the difference
  between the highest and lowest rate, their ratio ``lowest / highest`` (the
  demographic-parity ratio), and the chi-square p-value of groups x outcome.

An outcome is **flagged** for an attribute when the ratio is below the four-fifths rule
(``ratio < 0.8``) *and* the difference is significant (``p < 0.05``). Only groups with at
least ``min_group`` accounts (30) enter the tests, ratios and flags; smaller groups are
still listed with their rates. Accounts without a value of the attribute form the group
``"(missing)"``. A flag is evidence to look at, not a verdict: a group can trade
differently for legitimate reasons.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from traderseg.analysis.migration import RISK_THRESHOLD
from traderseg.analysis.profitability import read_assignments
from traderseg.errors import DataError, SchemaError

logger = logging.getLogger(__name__)

ATTRIBUTES = ("region", "kyc_tier", "channel")
MISSING_GROUP = "(missing)"
FOUR_FIFTHS = 0.8
ALPHA = 0.05
MIN_GROUP = 30


@dataclass(frozen=True)
class Outcome:
    """Something an account receives from its segment or overlays.

    Attributes
    ----------
    name : str
        Short name (a column of the rates table).
    description : str
        What it means, for people.
    needs : str
        Assignment column the rule reads.
    rule : callable
        Assignments frame -> boolean array, True where the account receives it.
    """

    name: str
    description: str
    needs: str
    rule: Callable[[pd.DataFrame], np.ndarray]


DEFAULT_OUTCOMES: tuple[Outcome, ...] = (
    Outcome("high_risk", f"risk score of {RISK_THRESHOLD:g} or more (tighter controls)",
            "risk_score", lambda a: (a["risk_score"] >= RISK_THRESHOLD).to_numpy()),
    Outcome("top_value", "platinum or gold value tier (marketing offers)", "value_tier",
            lambda a: a["value_tier"].astype(str).isin(["platinum", "gold"]).to_numpy()),
    Outcome("lapsing", "at-risk, dormant or churned (retention campaigns)", "lifecycle",
            lambda a: a["lifecycle"].astype(str).isin(["at-risk", "dormant", "churned"])
            .to_numpy()),
)


@dataclass(frozen=True)
class BiasAudit:
    """Result of :func:`bias_audit`.

    Attributes
    ----------
    composition : dict of str to pandas.DataFrame
        Per attribute, groups (rows) x segment names (columns) as row shares, with a
        last row ``"all"``.
    association : pandas.DataFrame
        Per attribute: ``groups`` tested, ``accounts``, ``chi2``, ``dof``, ``p_value``,
        ``cramers_v``.
    rates : pandas.DataFrame
        Per attribute and group: ``accounts``, ``tested`` (group large enough) and one
        rate column per outcome.
    disparity : pandas.DataFrame
        Per attribute and outcome: lowest and highest group with their rates,
        ``difference``, ``ratio``, ``p_value`` and ``flagged``.
    outcomes : tuple of Outcome
        The outcomes audited.
    """

    composition: dict[str, pd.DataFrame]
    association: pd.DataFrame
    rates: pd.DataFrame
    disparity: pd.DataFrame
    outcomes: tuple[Outcome, ...]


def cramers_v(table: pd.DataFrame | np.ndarray) -> tuple[float, float, int, float]:
    """Chi-square test of independence of a contingency table, and Cramér's V.

    Rows and columns that are all zero are dropped first.

    Parameters
    ----------
    table : pandas.DataFrame or numpy.ndarray
        Counts.

    Returns
    -------
    tuple
        ``(chi2, p_value, dof, cramers_v)``; NaN when fewer than two rows or columns
        are left.

    Examples
    --------
    >>> chi2, p, dof, v = cramers_v(np.array([[30, 10], [10, 30]]))
    >>> round(chi2, 3), dof, round(v, 3)
    (20.0, 1, 0.5)
    """
    t = np.asarray(table, dtype="float64")
    t = t[t.sum(axis=1) > 0][:, t.sum(axis=0) > 0]
    if t.shape[0] < 2 or t.shape[1] < 2:
        return np.nan, np.nan, 0, np.nan
    chi2, p, dof, _ = stats.chi2_contingency(t, correction=False)
    v = float(np.sqrt(chi2 / (t.sum() * (min(t.shape) - 1))))
    return float(chi2), float(p), int(dof), v


def _groups(accounts: pd.DataFrame, attribute: str, index: pd.Index) -> pd.Series:
    col = accounts.set_index("account_id")[attribute].reindex(index)
    return col.astype("object").where(col.notna(), MISSING_GROUP).astype(str)


def bias_audit(
    assignments: pd.DataFrame,
    accounts: pd.DataFrame,
    *,
    attributes: Sequence[str] = ATTRIBUTES,
    outcomes: Sequence[Outcome] = DEFAULT_OUTCOMES,
    min_group: int = MIN_GROUP,
    alpha: float = ALPHA,
    ratio_floor: float = FOUR_FIFTHS,
) -> BiasAudit:
    """Audit segments and overlay outcomes across groups of accounts.

    Parameters
    ----------
    assignments : pandas.DataFrame
        Segment assignments with overlays (see
        :func:`~traderseg.analysis.profitability.read_assignments`).
    accounts : pandas.DataFrame
        ``account_id`` and the attribute columns (the store's ``accounts`` table).
    attributes : sequence of str
        Attribute columns to audit; those absent from ``accounts`` are skipped.
    outcomes : sequence of Outcome
        Outcomes to audit; those whose column the assignments lack are skipped.
    min_group : int
        Smallest group that enters tests, ratios and flags.
    alpha : float
        Significance level of the flags.
    ratio_floor : float
        A ratio below it (with ``p < alpha``) is flagged.

    Returns
    -------
    BiasAudit
        Composition, association, rates and disparities.

    Raises
    ------
    SchemaError
        ``accounts`` has no ``account_id`` or none of the attributes.
    DataError
        No assigned account is in ``accounts``.
    """
    if min_group < 1:
        raise SchemaError(f"min_group must be at least 1, got {min_group!r}")
    if not 0 < alpha < 1 or not 0 < ratio_floor <= 1:
        raise SchemaError(f"alpha must be in (0, 1) and ratio_floor in (0, 1], got "
                          f"{alpha!r} and {ratio_floor!r}")
    a = read_assignments(assignments).set_index("account_id")
    if "account_id" not in accounts.columns:
        raise SchemaError("accounts lack column 'account_id'")
    attrs = [c for c in attributes if c in accounts.columns]
    if not attrs:
        raise SchemaError(f"accounts have none of the attributes {list(attributes)}")
    known = a.index.isin(accounts["account_id"].astype(str))
    if not known.any():
        raise DataError("none of the assigned accounts is in the accounts table")
    if not known.all():
        logger.info("%d assigned account(s) are not in the accounts table; their attributes "
                    "count as %r", int((~known).sum()), MISSING_GROUP)
    accounts = accounts.assign(account_id=accounts["account_id"].astype(str))
    usable = tuple(o for o in outcomes if o.needs in a.columns)
    hits = pd.DataFrame({o.name: o.rule(a) for o in usable}, index=a.index)
    composition, association, rate_rows, disparity = {}, [], [], []
    for attr in attrs:
        g = _groups(accounts, attr, a.index)
        counts = pd.crosstab(g, a["segment_name"])
        sizes = counts.sum(axis=1)
        tested = sizes.index[sizes >= min_group]
        shares = counts.div(sizes, axis=0)
        shares.loc["all"] = counts.sum() / counts.to_numpy().sum()
        composition[attr] = shares
        chi2, p, dof, v = cramers_v(counts.loc[tested])
        association.append({"attribute": attr, "groups": len(tested),
                            "accounts": int(sizes.loc[tested].sum()), "chi2": chi2,
                            "dof": dof, "p_value": p, "cramers_v": v})
        rates = hits.groupby(g).mean() if usable else pd.DataFrame(index=sizes.index)
        for grp in sizes.index:
            rate_rows.append({"attribute": attr, "group": grp, "accounts": int(sizes[grp]),
                              "tested": bool(grp in tested),
                              **{o.name: float(rates.loc[grp, o.name]) for o in usable}})
        for o in usable:
            disparity.append(_disparity(attr, o, g, hits[o.name], tested, alpha, ratio_floor))
    dis = pd.DataFrame(disparity, columns=[
        "attribute", "outcome", "lowest_group", "lowest_rate", "highest_group",
        "highest_rate", "difference", "ratio", "p_value", "flagged"])
    n_flag = int(dis["flagged"].sum()) if len(dis) else 0
    if n_flag:
        logger.info("bias audit: %d attribute/outcome pair(s) flagged", n_flag)
    return BiasAudit(composition, pd.DataFrame(association), pd.DataFrame(rate_rows), dis,
                     usable)


def _disparity(attr: str, outcome: Outcome, groups: pd.Series, hit: pd.Series,
               tested: pd.Index, alpha: float, ratio_floor: float) -> dict[str, object]:
    inside = groups.isin(tested).to_numpy()
    g, h = groups[inside], hit[inside]
    row: dict[str, object] = {"attribute": attr, "outcome": outcome.name}
    if g.nunique() < 2:
        return {**row, "lowest_group": None, "lowest_rate": np.nan, "highest_group": None,
                "highest_rate": np.nan, "difference": np.nan, "ratio": np.nan,
                "p_value": np.nan, "flagged": False}
    rates = h.groupby(g).mean().sort_index()
    values = rates.to_numpy(dtype="float64")
    lo, hi = int(np.argmin(values)), int(np.argmax(values))  # first of ties, by group
    ratio = float(values[lo] / values[hi]) if values[hi] > 0 else np.nan
    _, p, _, _ = cramers_v(pd.crosstab(g, h))
    flagged = bool(np.isfinite(ratio) and ratio < ratio_floor and np.isfinite(p) and p < alpha)
    return {**row, "lowest_group": rates.index[lo], "lowest_rate": float(values[lo]),
            "highest_group": rates.index[hi], "highest_rate": float(values[hi]),
            "difference": float(values[hi] - values[lo]), "ratio": ratio, "p_value": p,
            "flagged": flagged}
