"""Lifetime value of the venue's fee revenue per trader, from the fills store.

Activity is counted in *active days*: an account's purchase occasion is a UTC calendar
day with at least one fill, and the model time unit is the day. For fills strictly
before ``as_of``:

* x = active days after the first one; t_x = days from the first to the last active
  day; T = days from the first active day to the last calendar day before ``as_of``
  (the calibration end, inclusive, as in the CDNOW convention);
* the value of an active day is the account's net fee revenue that day,
  ``sum(fee_usd)`` (negative fees are maker rebates).

A BG/NBD model of active days is fitted on every account. The Gamma-Gamma model needs a
positive value, so revenue per active day is valued by ``value_basis``:

* ``gamma_gamma``: x > 0 and a positive mean repeat-day revenue; Gamma-Gamma conditional
  expectation;
* ``population``: x = 0 and a positive first-day revenue; the Gamma-Gamma population
  mean p * gamma / (q - 1);
* ``own_mean``: net rebate earners (mean repeat-day revenue <= 0, or for x = 0 a
  first-day revenue <= 0); their own mean daily net revenue, flagged ``rebate_earner``.
  Their expected revenue and CLV are negative or zero: the venue pays them;
* ``own_mean_heavy_tail``: accounts whose Gamma-Gamma posterior mean is infinite (fee
  revenue is heavy-tailed: with a fitted q <= 1 the population mean does not exist, nor
  the posterior mean of accounts with few repeat days); their own observed mean, stated in
  :attr:`VenueCLV.notes`.

The scoring is :func:`score_summary`, shared with the generic (customer, time, value) path.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import duckdb
import numpy as np
import pandas as pd

from traderseg.analysis.clv.bgnbd import BGNBDModel
from traderseg.analysis.clv.gammagamma import GammaGammaModel
from traderseg.analysis.clv.paretonbd import ParetoNBDModel
from traderseg.analysis.clv.value import annual_to_period_rate, expected_discounted_purchases
from traderseg.errors import DataError, SchemaError
from traderseg.store import as_utc

logger = logging.getLogger(__name__)

UNASSIGNED = "unassigned"

_SUMMARY_SQL = """
WITH days AS (
  SELECT account_id,
         CAST(ts AT TIME ZONE 'UTC' AS DATE) AS day,
         SUM(fee_usd) AS revenue
  FROM fills
  WHERE ts < CAST($as_of AS TIMESTAMPTZ)
  GROUP BY ALL
), ranked AS (
  SELECT *, row_number() OVER (PARTITION BY account_id ORDER BY day) AS k FROM days
)
SELECT account_id,
       COUNT(*) - 1 AS frequency,
       CAST(date_diff('day', MIN(day), MAX(day)) AS DOUBLE) AS recency,
       CAST(date_diff('day', MIN(day), $cal_end) AS DOUBLE) AS "T",
       COALESCE(AVG(revenue) FILTER (WHERE k > 1), 0.0) AS monetary_value,
       MAX(revenue) FILTER (WHERE k = 1) AS first_value,
       SUM(revenue) AS revenue_to_date
FROM ranked
GROUP BY account_id
ORDER BY account_id
"""


@dataclass(frozen=True)
class VenueCLV:
    """Result of :func:`venue_clv`.

    Attributes
    ----------
    accounts : pandas.DataFrame
        One row per account active before ``as_of``: frequency, recency, T (days),
        monetary_value (mean repeat-day revenue), first_value, revenue_to_date, p_alive,
        expected_active_days, value_per_active_day, value_basis, rebate_earner,
        expected_revenue, clv, and segment when assignments were given.
    segments : pandas.DataFrame or None
        Per-segment totals and means (None without assignments).
    activity_model : BGNBDModel or ParetoNBDModel
        The fitted activity model (time unit: day).
    value_model : GammaGammaModel
        The fitted Gamma-Gamma model on positive-revenue accounts.
    as_of : pandas.Timestamp
        Cut-off (UTC); fills at or after it are not used.
    horizon_days : float
        Forecast horizon.
    discount_rate_annual : float
        Annual discount rate used for the CLV.
    notes : tuple of str
        How accounts the models cannot value were valued (a heavy-tailed revenue with
        Gamma-Gamma q <= 1 falls back to each account's own mean), for the output.
    """

    accounts: pd.DataFrame
    segments: pd.DataFrame | None
    activity_model: BGNBDModel | ParetoNBDModel
    value_model: GammaGammaModel
    as_of: pd.Timestamp
    horizon_days: float
    discount_rate_annual: float
    notes: tuple[str, ...] = ()


def account_day_summary(con: duckdb.DuckDBPyConnection, as_of: object) -> pd.DataFrame:
    """Per-account active-day summary of the fills before ``as_of`` (DuckDB aggregation).

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Store connection (see :func:`traderseg.store.connect`).
    as_of : timestamp-like
        Cut-off; naive values are read as UTC.

    Returns
    -------
    pandas.DataFrame
        Indexed by account_id with frequency, recency, T, monetary_value, first_value and
        revenue_to_date.

    Raises
    ------
    DataError
        No fills before ``as_of``, ``as_of`` after the last day the store covers, or
        missing/non-finite fees.
    """
    ts = as_utc(as_of, "as_of")
    try:
        bounds = con.execute(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE fee_usd IS NULL OR NOT isfinite(fee_usd)"
            " OR account_id IS NULL) FROM fills WHERE ts < CAST($as_of AS TIMESTAMPTZ)",
            {"as_of": ts.isoformat()},
        ).fetchone()
        last = con.execute(
            "SELECT CAST(CAST(MAX(ts) AT TIME ZONE 'UTC' AS DATE) AS VARCHAR) FROM fills"
        ).fetchone()
    except duckdb.CatalogException as exc:
        raise SchemaError(f"the store has no usable fills table: {exc}") from exc
    if bounds is None or last is None:  # pragma: no cover - aggregates always return a row
        raise DataError("the fills table could not be read")
    n_before, n_bad = bounds
    if not n_before:
        raise DataError(f"no fills before as_of {ts.isoformat()}")
    if n_bad:
        raise DataError(f"{n_bad} fill(s) before as_of have a missing/non-finite fee_usd or "
                        "a missing account_id")
    cal_end = (ts - pd.Timedelta(microseconds=1)).normalize()
    last_day = pd.Timestamp(last[0], tz="UTC")
    if cal_end > last_day:
        raise DataError(
            f"as_of {ts.isoformat()} is after the last day the store covers "
            f"({last_day.date()}); inactivity after that day cannot be observed"
        )
    summary = con.execute(
        _SUMMARY_SQL, {"as_of": ts.isoformat(), "cal_end": cal_end.date()}
    ).df()
    return summary.set_index("account_id")


def _check_assignments(assignments: pd.DataFrame) -> pd.Series:
    missing = [c for c in ("account_id", "segment") if c not in assignments.columns]
    if missing:
        raise SchemaError(f"assignments lack column(s) {missing}; present: "
                          f"{list(assignments.columns)}")
    null = assignments[["account_id", "segment"]].isna().any(axis=1).to_numpy()
    if null.any():
        raise DataError(f"assignments have {int(null.sum())} row(s) with a missing account_id "
                        f"or segment; first at row {int(np.argmax(null))}")
    dup = assignments["account_id"].duplicated().to_numpy()
    if dup.any():
        first = assignments["account_id"].iloc[int(np.argmax(dup))]
        raise DataError(f"assignments list account {first!r} more than once")
    return assignments.set_index(assignments["account_id"].astype(str))["segment"].astype(str)


def venue_clv(
    con: duckdb.DuckDBPyConnection,
    as_of: object,
    horizon_days: float = 90.0,
    discount_rate_annual: float = 0.10,
    assignments: pd.DataFrame | None = None,
    *,
    activity: Literal["bgnbd", "paretonbd"] = "bgnbd",
    step_days: float = 1.0,
) -> VenueCLV:
    """Fit activity and revenue models on the fills store and score every account.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Store connection with a ``fills`` table.
    as_of : timestamp-like
        Cut-off (UTC); only fills strictly before it are used.
    horizon_days : float
        Forecast horizon in days.
    discount_rate_annual : float
        Annual discount rate of the CLV, compounded daily.
    assignments : pandas.DataFrame, optional
        Columns ``account_id`` and ``segment``; adds a per-segment summary. Active
        accounts missing from it are grouped as ``"unassigned"``.
    activity : {"bgnbd", "paretonbd"}
        Activity model.
    step_days : float
        Discounting step in days.

    Returns
    -------
    VenueCLV
        Per-account scores, per-segment summary and the fitted models.
    """
    if not horizon_days > 0:
        raise DataError(f"horizon_days must be > 0, got {horizon_days}")
    summary = account_day_summary(con, as_of)
    seg = _check_assignments(assignments) if assignments is not None else None
    scored = score_summary(summary, horizon_days, discount_rate_annual, activity=activity,
                           step_days=step_days)
    out = scored.accounts
    segments = None
    if seg is not None:
        out["segment"] = seg.reindex(out.index.astype(str)).fillna(UNASSIGNED).to_numpy()
        n_unassigned = int((out["segment"] == UNASSIGNED).sum())
        if n_unassigned:
            logger.warning("%d active account(s) have no segment; grouped as %r",
                           n_unassigned, UNASSIGNED)
        n_idle = int((~seg.index.isin(out.index.astype(str))).sum())
        if n_idle:
            logger.info("%d assigned account(s) have no fills before as_of", n_idle)
        segments = segment_summary(out)
    return VenueCLV(out, segments, scored.activity_model, scored.value_model,
                    as_utc(as_of, "as_of"), float(horizon_days), float(discount_rate_annual),
                    scored.notes)


@dataclass(frozen=True)
class ScoredSummary:
    """Per-customer scores of :func:`score_summary` with the fitted models and notes."""

    accounts: pd.DataFrame
    activity_model: BGNBDModel | ParetoNBDModel
    value_model: GammaGammaModel
    notes: tuple[str, ...]


def score_summary(
    summary: pd.DataFrame,
    horizon: float,
    discount_rate_annual: float,
    *,
    activity: Literal["bgnbd", "paretonbd"] = "bgnbd",
    step_days: float = 1.0,
    period_days: float = 1.0,
) -> ScoredSummary:
    """Fit activity and value models on a recency-frequency summary and score CLV.

    The value of a future period is valued per customer by ``value_basis``:

    * ``gamma_gamma``: x > 0, a positive mean repeat value and a finite Gamma-Gamma
      posterior mean (p x + q - 1 > 0);
    * ``population``: x = 0 with a positive first value, valued at the Gamma-Gamma
      population mean p gamma / (q - 1) when q > 1;
    * ``own_mean``: net rebate earners / refunders (mean repeat value <= 0, or x = 0 and a
      first value <= 0), valued at their own mean, flagged ``rebate_earner``;
    * ``own_mean_heavy_tail``: customers the Gamma-Gamma model cannot value because its
      posterior mean is infinite (q <= 1: heavy-tailed values), valued at their own
      observed mean value per period; the returned notes say how many.

    Parameters
    ----------
    summary : pandas.DataFrame
        Indexed by customer, with ``frequency``, ``recency``, ``T`` (in periods),
        ``monetary_value`` (mean repeat value) and ``first_value``.
    horizon : float
        Forecast horizon, in periods.
    discount_rate_annual : float
        Annual discount rate of the CLV.
    activity : {"bgnbd", "paretonbd"}
        Activity model.
    step_days : float
        Discounting step, in periods.
    period_days : float
        Length of a period in days (1 for active days, 7 for weeks).

    Returns
    -------
    ScoredSummary
        ``accounts`` adds p_alive, expected_active_days, value_per_active_day,
        value_basis, rebate_earner, expected_revenue and clv to ``summary``.
    """
    model: BGNBDModel | ParetoNBDModel = BGNBDModel() if activity == "bgnbd" else ParetoNBDModel()
    x, t_x, big_t = summary["frequency"], summary["recency"], summary["T"]
    model.fit(x, t_x, big_t)

    xs = x.to_numpy(dtype=float)
    zbar = summary["monetary_value"].to_numpy(dtype=float)
    first = summary["first_value"].to_numpy(dtype=float)
    repeat = xs > 0
    positive = np.where(repeat, zbar > 0, first > 0)
    gg_rows = repeat & (zbar > 0)
    if not gg_rows.any():
        raise DataError("no customer has repeat periods with a positive value; "
                        "the Gamma-Gamma model cannot be fitted")
    gg = GammaGammaModel().fit(xs[gg_rows], zbar[gg_rows])
    value, finite = gg.expected_average_profit_where_finite(
        pd.Series(np.where(positive, xs, 0.0), index=summary.index),
        pd.Series(np.where(gg_rows, zbar, 0.0), index=summary.index))
    own = np.where(repeat, zbar, first)
    heavy = positive & ~finite
    basis = np.select([~positive, heavy, repeat], ["own_mean", "own_mean_heavy_tail",
                                                   "gamma_gamma"], "population")
    value_per_period = np.where(positive & finite, value, own)
    notes: list[str] = []
    q = float(gg.params_["q"])
    if heavy.any():
        notes.append(
            f"Gamma-Gamma q = {q:.3g} <= 1 for {int(heavy.sum()):,} customer(s) with few "
            f"repeat periods: values are heavy-tailed and their expected value is infinite, "
            f"so they are valued at their own observed mean (value_basis own_mean_heavy_tail)")
    logger.info("CLV: %d customers: %s; Gamma-Gamma q=%.3g", len(summary),
                ", ".join(f"{k} {v}" for k, v in pd.Series(basis).value_counts().items()), q)

    rate = annual_to_period_rate(discount_rate_annual, period_days)
    purchases = expected_discounted_purchases(
        model, x, t_x, big_t, horizon=horizon, discount_rate=rate, step=step_days
    )
    out = summary.copy()
    out["p_alive"] = model.conditional_probability_alive(x, t_x, big_t)
    out["expected_active_days"] = purchases.expected
    out["value_per_active_day"] = value_per_period
    out["value_basis"] = basis
    out["rebate_earner"] = ~positive
    out["expected_revenue"] = purchases.expected * value_per_period
    out["clv"] = purchases.discounted * value_per_period
    return ScoredSummary(out, model, gg, tuple(notes))


def segment_summary(accounts: pd.DataFrame) -> pd.DataFrame:
    """Totals and means of the CLV scores per segment.

    Parameters
    ----------
    accounts : pandas.DataFrame
        The ``accounts`` frame of :class:`VenueCLV`, with a ``segment`` column.

    Returns
    -------
    pandas.DataFrame
        One row per segment (sorted by total CLV, largest first).
    """
    if "segment" not in accounts.columns:
        raise SchemaError("accounts have no segment column")
    g = accounts.groupby("segment", sort=False)
    table = pd.DataFrame(
        {
            "accounts": g.size(),
            "mean_p_alive": g["p_alive"].mean(),
            "expected_active_days": g["expected_active_days"].sum(),
            "revenue_to_date": g["revenue_to_date"].sum(),
            "expected_revenue": g["expected_revenue"].sum(),
            "clv": g["clv"].sum(),
            "mean_clv": g["clv"].mean(),
            "rebate_earners": g["rebate_earner"].sum().astype(np.int64),
        }
    )
    return table.sort_values("clv", ascending=False)
