"""Profitability per segment: the venue's revenue and the traders' PnL, with concentration.

Venue revenue is the fee income net of maker rebates, ``sum(fee_usd)`` (rebates are
negative fees). Funding payments would belong to revenue too, but the canonical fills
contract carries no funding column, so here revenue = net fees. Trader PnL is the
realised PnL of closing fills (``realized_pnl_usd``; fills without it count as 0).

Everything is aggregated in DuckDB over the fills store, joined to the segment
assignments registered as a relation; only the per-group result comes back to pandas.
Money is summed as ``DECIMAL(38, 12)`` so the per-group totals add up *exactly* to the
venue total; every account with fills in the range is counted, those without an
assignment in an explicit ``"unassigned"`` group.

Concentration within a group: ``top1_share`` / ``top10_share`` are the share of the
group's net revenue earned from its top 1% / 10% of accounts by revenue (at least one
account; with rebates the net total can be small and a share can exceed 1), and ``gini``
is the Gini coefficient of per-account revenue with rebate earners counted as zero
(the Gini of negative amounts is not defined).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from traderseg.errors import DataError, SchemaError
from traderseg.segment.overlays import LIFECYCLE_STAGES, VALUE_TIERS
from traderseg.store import (
    ASSIGNMENT_COLUMNS,
    as_utc,
    fill_bounds,
    read_assignments,
    store_connection,
)

logger = logging.getLogger(__name__)

UNASSIGNED = "unassigned"
MISSING_OVERLAY = "(none)"
OVERLAYS = ("lifecycle", "value_tier")
FREQS = ("day", "week", "month", "quarter", "year")
_MONEY = "DECIMAL(38, 12)"

METRIC_COLUMNS = (
    "accounts", "fills", "notional_usd", "revenue_usd", "revenue_share",
    "revenue_per_account", "revenue_bps", "pnl_usd", "losing_share",
    "top1_share", "top10_share", "gini",
)


@dataclass(frozen=True)
class ProfitabilityReport:
    """Result of :func:`profitability`.

    Attributes
    ----------
    by_segment : pandas.DataFrame
        One row per segment plus ``"unassigned"``: ``segment`` (nullable int),
        ``segment_name`` and :data:`METRIC_COLUMNS`.
    by_overlay : dict of str to pandas.DataFrame
        Per overlay (lifecycle, value tier) present in the assignments: one row per
        overlay value (``"unassigned"`` for accounts without an assignment,
        ``"(none)"`` for an assignment without the overlay value).
    overall : pandas.Series
        The metrics over every account.
    by_period : pandas.DataFrame or None
        ``period`` (start of the week/month...), segment columns and the metrics, when a
        ``freq`` was asked for; ``revenue_share`` is the share of that period's revenue.
    venue_revenue : decimal.Decimal
        ``sum(fee_usd)`` over the fills of the range, exactly.
    start, end : pandas.Timestamp or None
        The time range ``[start, end)`` analysed (None: unbounded).
    """

    by_segment: pd.DataFrame
    by_overlay: dict[str, pd.DataFrame]
    overall: pd.Series
    by_period: pd.DataFrame | None
    venue_revenue: Decimal
    start: pd.Timestamp | None
    end: pd.Timestamp | None


def _metrics_sql(period: str, group_cols: Sequence[str], group_exprs: Sequence[str]) -> str:
    """Build the SQL of the per-group metrics over per-account (and per-period) aggregates."""
    key_sel = ", ".join(f"{e} AS {c}" for c, e in zip(group_cols, group_exprs, strict=True))
    keys = ", ".join(["period", *group_cols])
    part = f"PARTITION BY {keys}"
    return f"""
WITH acct AS (
  SELECT {period} AS period, account_id,
         COUNT(*) AS fills,
         SUM(CAST(notional_usd AS {_MONEY})) AS notional_usd,
         SUM(CAST(fee_usd AS {_MONEY})) AS revenue_usd,
         SUM(CAST(COALESCE(realized_pnl_usd, 0) AS {_MONEY})) AS pnl_usd
  FROM fills
  WHERE ts >= $start AND ts < $end
  GROUP BY ALL
), lab AS (
  SELECT acct.*, {key_sel}
  FROM acct LEFT JOIN asg ON acct.account_id = asg.account_id
), ranked AS (
  SELECT *,
         row_number() OVER ({part} ORDER BY GREATEST(revenue_usd, 0), account_id) AS up_rank,
         row_number() OVER ({part} ORDER BY revenue_usd DESC, account_id) AS down_rank,
         COUNT(*) OVER ({part}) AS n
  FROM lab
)
SELECT {keys},
       COUNT(*) AS accounts,
       SUM(fills) AS fills,
       SUM(notional_usd) AS notional_usd,
       SUM(revenue_usd) AS revenue_usd,
       SUM(pnl_usd) AS pnl_usd,
       AVG(CASE WHEN pnl_usd < 0 THEN 1.0 ELSE 0.0 END) AS losing_share,
       SUM(revenue_usd) FILTER (WHERE down_rank <= CEIL(0.01 * n)) AS top1_revenue,
       SUM(revenue_usd) FILTER (WHERE down_rank <= CEIL(0.10 * n)) AS top10_revenue,
       SUM(CAST(up_rank AS DOUBLE) * CAST(GREATEST(revenue_usd, 0) AS DOUBLE)) AS rank_weighted,
       SUM(CAST(GREATEST(revenue_usd, 0) AS DOUBLE)) AS positive_revenue
FROM ranked
GROUP BY {keys}
ORDER BY {keys}
"""


def _finish(raw: pd.DataFrame, group_cols: Sequence[str]) -> pd.DataFrame:
    """Turn the exact aggregates into the published float metrics."""
    out = raw[["period", *group_cols, "accounts", "fills"]].copy()
    rev = raw["revenue_usd"]
    for col in ("notional_usd", "revenue_usd", "pnl_usd"):
        out[col] = raw[col].map(float).astype("float64")
    period_total = rev.groupby(raw["period"], dropna=False).transform(
        lambda s: sum(s, Decimal(0)))
    out["revenue_share"] = [float(r / t) if t != 0 else np.nan
                            for r, t in zip(rev, period_total, strict=True)]
    out["revenue_per_account"] = out["revenue_usd"] / out["accounts"]
    notional = out["notional_usd"].where(out["notional_usd"] > 0)
    out["revenue_bps"] = 1e4 * out["revenue_usd"] / notional
    out["pnl_usd"] = out["pnl_usd"]
    out["losing_share"] = raw["losing_share"].astype("float64")
    for q in ("top1", "top10"):
        out[f"{q}_share"] = [float(a / r) if r != 0 else np.nan
                             for a, r in zip(raw[f"{q}_revenue"], rev, strict=True)]
    n = raw["accounts"].astype("float64")
    pos = raw["positive_revenue"].astype("float64")
    gini = 2.0 * raw["rank_weighted"].astype("float64") / (n * pos) - (n + 1.0) / n
    out["gini"] = gini.where(pos > 0)
    out["accounts"] = out["accounts"].astype("int64")
    out["fills"] = out["fills"].astype("int64")
    return out[["period", *group_cols, *METRIC_COLUMNS]]


def _run(con: duckdb.DuckDBPyConnection, params: dict[str, Any], period: str,
         group_cols: Sequence[str], group_exprs: Sequence[str]) -> tuple[pd.DataFrame, Decimal]:
    """Per-group metrics, and the exact sum of the groups' revenue."""
    sql = _metrics_sql(period, group_cols, group_exprs)
    # through Arrow so the DECIMAL sums arrive as exact decimal.Decimal values
    raw = con.execute(sql, params).to_arrow_table().to_pandas()
    return _finish(raw, group_cols), sum(raw["revenue_usd"], Decimal(0))


def _segment_groups() -> tuple[list[str], list[str]]:
    return (["segment", "segment_name"],
            ["asg.segment", f"COALESCE(asg.segment_name, '{UNASSIGNED}')"])


def _overlay_groups(name: str) -> tuple[list[str], list[str]]:
    expr = (f"CASE WHEN asg.account_id IS NULL THEN '{UNASSIGNED}' "
            f"ELSE COALESCE(CAST(asg.{name} AS VARCHAR), '{MISSING_OVERLAY}') END")
    return [name], [expr]


def _range(con: duckdb.DuckDBPyConnection, start: Any, end: Any
           ) -> tuple[pd.Timestamp | None, pd.Timestamp | None, dict[str, Any]]:
    lo = as_utc(start, "start") if start is not None else None
    hi = as_utc(end, "end") if end is not None else None
    if lo is not None and hi is not None and lo >= hi:
        raise DataError(f"empty period: start {lo.isoformat()} is not before end {hi.isoformat()}")
    first, last = fill_bounds(con)
    params = {
        "start": (lo if lo is not None else first).to_pydatetime(),
        "end": (hi if hi is not None else last + pd.Timedelta(microseconds=1)).to_pydatetime(),
    }
    return lo, hi, params


# Overlays whose groups have a natural order (top tier first, lifecycle from new to churned).
OVERLAY_ORDER: dict[str, tuple[str, ...]] = {
    "value_tier": (*(name for name, _ in VALUE_TIERS), "bronze"),
    "lifecycle_stage": LIFECYCLE_STAGES,
    "lifecycle": LIFECYCLE_STAGES,
}


def _in_order(table: pd.DataFrame, name: str) -> pd.DataFrame:
    """Rows of an overlay table in the overlay's natural order (unknown groups last)."""
    order = OVERLAY_ORDER.get(name)
    if order is None or name not in table.columns:
        return table
    rank = {g: i for i, g in enumerate(order)}
    key = table[name].map(lambda g: rank.get(str(g), len(order)))
    return table.assign(_rank=key).sort_values(["_rank", name]).drop(columns="_rank") \
        .reset_index(drop=True)


def profitability(
    db: str | Path | duckdb.DuckDBPyConnection,
    assignments: pd.DataFrame | str | Path,
    *,
    start: Any = None,
    end: Any = None,
    freq: str | None = None,
    overlays: Sequence[str] | None = None,
) -> ProfitabilityReport:
    """Revenue, PnL and concentration per segment, per overlay and per period.

    Parameters
    ----------
    db : str, Path or duckdb connection
        The fills store.
    assignments : pandas.DataFrame, str or Path
        Segment assignments (see :func:`read_assignments`).
    start, end : timestamp-like, optional
        Analyse fills with ``start <= ts < end`` (UTC); default: every fill.
    freq : str, optional
        Also break the figures down by ``day``, ``week``, ``month``, ``quarter`` or
        ``year`` (UTC calendar periods; weeks start on Monday).
    overlays : sequence of str, optional
        Overlay columns to report on; default: those of ``lifecycle`` and ``value_tier``
        present in the assignments.

    Returns
    -------
    ProfitabilityReport
        Per-segment, per-overlay, overall and per-period tables.

    Raises
    ------
    DataError
        No fills in the range, an empty range, or bad assignments.
    SchemaError
        Unknown overlay or ``freq``.
    """
    asg = read_assignments(assignments)
    if freq is not None and freq not in FREQS:
        raise SchemaError(f"freq {freq!r} is not one of {FREQS}")
    if overlays is None:
        overlays = [c for c in OVERLAYS if c in asg.columns]
    unknown = [c for c in overlays if c not in asg.columns or c in ASSIGNMENT_COLUMNS]
    if unknown:
        raise SchemaError(f"overlay column(s) {unknown} are not in the assignments "
                          f"(columns: {list(asg.columns)})")
    con, owned = store_connection(db)
    try:
        con.register("asg", asg)
        try:
            lo, hi, params = _range(con, start, end)
            n_fills, venue = con.execute(
                f"SELECT COUNT(*), SUM(CAST(fee_usd AS {_MONEY})) FROM fills "
                "WHERE ts >= $start AND ts < $end", params).fetchone() or (0, None)
            if not n_fills:
                raise DataError(f"empty period: no fills in [{params['start']}, {params['end']})")
            cols, exprs = _segment_groups()
            by_segment, seg_total = _run(con, params, "NULL", cols, exprs)
            totals = {"segment": seg_total}
            overall = _run(con, params, "NULL", [], [])[0].drop(columns="period").iloc[0]
            by_overlay = {}
            for name in overlays:
                ocols, oexprs = _overlay_groups(name)
                by_overlay[name], totals[name] = _run(con, params, "NULL", ocols, oexprs)
                by_overlay[name] = by_overlay[name].drop(columns="period")
            by_period = None
            if freq is not None:
                period = f"date_trunc('{freq}', ts)"
                by_period, totals["period"] = _run(con, params, period, cols, exprs)
                by_period["period"] = pd.to_datetime(by_period["period"], utc=True)
        finally:
            con.unregister("asg")
    finally:
        if owned:
            con.close()
    off = {k: v for k, v in totals.items() if v != venue}
    if off:  # a join that duplicated or lost fills would show here
        raise DataError(f"revenue does not reconcile with the venue total {venue}: {off}")
    by_overlay = {name: _in_order(table, name) for name, table in by_overlay.items()}
    by_segment = by_segment.drop(columns="period")
    by_segment["segment"] = by_segment["segment"].astype("Int64")
    if by_period is not None:
        by_period["segment"] = by_period["segment"].astype("Int64")
    n_unassigned = int(by_segment.loc[by_segment["segment"].isna(), "accounts"].sum())
    if n_unassigned:
        logger.info("%d account(s) with fills have no assignment; reported as %r",
                    n_unassigned, UNASSIGNED)
    return ProfitabilityReport(by_segment, by_overlay, overall, by_period, Decimal(venue),
                               lo, hi)
