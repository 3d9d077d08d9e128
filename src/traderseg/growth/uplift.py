"""Measured uplift of a campaign: difference in means and CUPED, overall and per segment.

Outcomes per account (:data:`METRICS`), over the campaign window ``[start, end)`` and,
as the CUPED covariate, over the pre-period of the same length just before ``start``:

* ``fees_usd``: venue revenue, the sum of ``fee_usd`` (rebates negative);
* ``volume_usd``: the sum of ``notional_usd``;
* ``retained``: 1 when the account has a fill in the period, else 0.

Members without fills count as 0 (they are in the audience; doing nothing is an outcome).

Estimators, for treatment ``T`` and holdout ``C``:

* **difference in means** ``mean(Y_T) - mean(Y_C)`` with the Welch standard error
  ``sqrt(s_T^2 / n_T + s_C^2 / n_C)`` and a Welch-Satterthwaite t interval;
* **CUPED** (Deng et al. 2013): ``Y' = Y - theta * (X - mean(X))`` with the pre-period
  value ``X`` and ``theta = cov(Y, X) / var(X)`` on both arms pooled (0 when ``X`` does not
  vary), then the difference in means of ``Y'``. The pre-period is before the treatment, so
  the estimate stays unbiased while the variance shrinks by the share of it ``X``
  explains.

Overall figures are post-stratified by segment (the holdout's stratum): each segment's
estimate weighted by its share of the members, variances by the squared shares, normal
interval; a segment with fewer than :data:`MIN_ARM` accounts in an arm cannot be estimated
and is left out (named in ``note``). A row is ``significant`` when its interval excludes 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd
from scipy import stats

from traderseg.errors import DataError
from traderseg.growth.campaigns import Campaign, get_campaign, read_members

METRICS: dict[str, str] = {
    "fees_usd": "venue revenue (sum of fee_usd)",
    "volume_usd": "traded notional (sum of notional_usd)",
    "retained": "share of accounts with a fill in the period",
}
ESTIMATORS = ("difference_in_means", "cuped")
MIN_ARM = 2
"""Fewest accounts per arm for an estimate (a variance needs two)."""
LEVEL = 0.95
OVERALL = "all"
UPLIFT_COLUMNS = ("group", "metric", "estimator", "n_treatment", "n_holdout",
                  "mean_treatment", "mean_holdout", "uplift", "ci_low", "ci_high", "p_value",
                  "relative_uplift", "significant", "note")


@dataclass(frozen=True)
class Estimate:
    """An uplift estimate with its standard error and interval."""

    uplift: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float


NAN_ESTIMATE = Estimate(np.nan, np.nan, np.nan, np.nan, np.nan)


def difference_in_means(y: np.ndarray, treated: np.ndarray, level: float = LEVEL) -> Estimate:
    """Welch difference in means of ``y`` between treated and held-out accounts.

    Examples
    --------
    >>> e = difference_in_means(np.array([3.0, 5, 1, 1]), np.array([True, True, False, False]))
    >>> e.uplift, round(e.se, 4)
    (3.0, 1.0)
    """
    yt, yc = y[treated], y[~treated]
    nt, nc = len(yt), len(yc)
    if nt < MIN_ARM or nc < MIN_ARM:
        return NAN_ESTIMATE
    vt, vc = yt.var(ddof=1) / nt, yc.var(ddof=1) / nc
    diff = float(yt.mean() - yc.mean())
    se = float(np.sqrt(vt + vc))
    if se == 0.0:
        return Estimate(diff, 0.0, diff, diff, 1.0 if diff == 0 else 0.0)
    df = (vt + vc) ** 2 / (vt**2 / (nt - 1) + vc**2 / (nc - 1)) if vt + vc > 0 else nt + nc - 2
    q = float(stats.t.ppf(0.5 + level / 2, df))
    p = float(2 * stats.t.sf(abs(diff) / se, df))
    return Estimate(diff, se, diff - q * se, diff + q * se, p)


def cuped_adjust(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Return ``y - theta * (x - mean(x))`` with ``theta = cov(y, x) / var(x)``.

    Examples
    --------
    >>> cuped_adjust(np.array([2.0, 4.0, 6.0]), np.array([1.0, 2.0, 3.0])).tolist()
    [4.0, 4.0, 4.0]
    """
    vx = float(np.var(x))
    if vx == 0.0 or len(x) < 2:
        return y.astype(float)
    theta = float(np.mean((x - x.mean()) * (y - y.mean())) / vx)
    return y - theta * (x - x.mean())


def cuped(y: np.ndarray, x: np.ndarray, treated: np.ndarray, level: float = LEVEL) -> Estimate:
    """CUPED estimate: difference in means of ``y`` adjusted by the pre-period ``x``."""
    return difference_in_means(cuped_adjust(y, x), treated, level)


def post_stratify(parts: list[tuple[float, Estimate]], level: float = LEVEL) -> Estimate:
    """Combine per-stratum estimates weighted by stratum size (normal interval)."""
    parts = [(w, e) for w, e in parts if np.isfinite(e.uplift) and np.isfinite(e.se)]
    if not parts:
        return NAN_ESTIMATE
    total = sum(w for w, _ in parts)
    est = sum(w * e.uplift for w, e in parts) / total
    se = float(np.sqrt(sum((w / total) ** 2 * e.se**2 for w, e in parts)))
    if se == 0.0:
        return Estimate(est, 0.0, est, est, 1.0 if est == 0 else 0.0)
    q = float(stats.norm.ppf(0.5 + level / 2))
    return Estimate(est, se, est - q * se, est + q * se, float(2 * stats.norm.sf(abs(est) / se)))


_OUTCOMES_SQL = """
SELECT m.account_id, m.segment_id, m.arm,
       coalesce(sum(f.fee_usd) FILTER (WHERE f.ts >= $start), 0) AS fees_usd,
       coalesce(sum(f.notional_usd) FILTER (WHERE f.ts >= $start), 0) AS volume_usd,
       CAST(count(f.ts) FILTER (WHERE f.ts >= $start) > 0 AS DOUBLE) AS retained,
       coalesce(sum(f.fee_usd) FILTER (WHERE f.ts < $start), 0) AS fees_usd__pre,
       coalesce(sum(f.notional_usd) FILTER (WHERE f.ts < $start), 0) AS volume_usd__pre,
       CAST(count(f.ts) FILTER (WHERE f.ts < $start) > 0 AS DOUBLE) AS retained__pre
FROM _members m
LEFT JOIN fills f ON f.account_id = m.account_id AND f.ts >= $pre AND f.ts < $end
GROUP BY m.account_id, m.segment_id, m.arm
ORDER BY m.account_id
"""


def campaign_outcomes(con: duckdb.DuckDBPyConnection, campaign: Campaign) -> pd.DataFrame:
    """Per member: arm, segment, each metric over the window and over the pre-period.

    Raises
    ------
    DataError
        The store's fills end before the campaign window does.
    """
    members = read_members(con, campaign.campaign_id)
    last = con.execute("SELECT max(ts) FROM fills").fetchone()
    t0, t1 = campaign.window_start, campaign.window_end
    if last is None or last[0] is None or pd.Timestamp(last[0]) < t1 - pd.Timedelta(days=1):
        raise DataError(f"campaign {campaign.campaign_id}: the store's fills end before the "
                        f"campaign window does ({t1.isoformat()}); measure after it")
    con.register("_members", members[["account_id", "segment_id", "arm"]])
    try:
        params = {"pre": (t0 - (t1 - t0)).to_pydatetime(), "start": t0.to_pydatetime(),
                  "end": t1.to_pydatetime()}
        return con.execute(_OUTCOMES_SQL, params).df()
    finally:
        con.unregister("_members")


def _row(group: str, metric: str, estimator: str, y: np.ndarray, treated: np.ndarray,
         est: Estimate, note: str) -> dict[str, object]:
    nt, nc = int(treated.sum()), int((~treated).sum())
    mc = float(y[~treated].mean()) if nc else np.nan
    if nt < MIN_ARM or nc < MIN_ARM:
        empty = [a for a, n in (("treatment", nt), ("holdout", nc)) if n < MIN_ARM]
        note = "; ".join(filter(None, [note, f"fewer than {MIN_ARM} accounts in the "
                                              f"{' and '.join(empty)} arm"]))
    return {
        "group": group, "metric": metric, "estimator": estimator, "n_treatment": nt,
        "n_holdout": nc, "mean_treatment": float(y[treated].mean()) if nt else np.nan,
        "mean_holdout": mc, "uplift": est.uplift, "ci_low": est.ci_low,
        "ci_high": est.ci_high, "p_value": est.p_value,
        "relative_uplift": est.uplift / mc if mc and np.isfinite(mc) else np.nan,
        "significant": bool(np.isfinite(est.ci_low) and (est.ci_low > 0 or est.ci_high < 0)),
        "note": note,
    }


def measure_outcomes(outcomes: pd.DataFrame, *, groups: Mapping[str, str] | None = None,
                     level: float = LEVEL) -> pd.DataFrame:
    """Uplift of every metric, overall (post-stratified) and per group.

    Parameters
    ----------
    outcomes : pandas.DataFrame
        :func:`campaign_outcomes`.
    groups : mapping, optional
        Account id -> group label for the per-group rows (default: the segment).
    level : float
        Confidence level of the intervals.

    Returns
    -------
    pandas.DataFrame
        :data:`UPLIFT_COLUMNS`; one row per group x metric x estimator, ``all`` first.
    """
    if outcomes.empty:
        raise DataError("the campaign has no members to measure")
    treated_all = (outcomes["arm"] == "treatment").to_numpy()
    label = (outcomes["account_id"].map(groups) if groups is not None
             else outcomes["segment_id"]).astype(str).to_numpy()
    strata = outcomes["segment_id"].to_numpy()
    rows: list[dict[str, object]] = []
    for metric in METRICS:
        y_all = outcomes[metric].to_numpy(float)
        x_all = outcomes[f"{metric}__pre"].to_numpy(float)
        for estimator in ESTIMATORS:
            parts, left_out = [], []
            for s in np.unique(strata):
                m = strata == s
                t = treated_all[m]
                e = (difference_in_means(y_all[m], t, level) if estimator == ESTIMATORS[0]
                     else cuped(y_all[m], x_all[m], t, level))
                if np.isfinite(e.uplift):
                    parts.append((float(m.sum()), e))
                else:
                    left_out.append(str(s))
            note = (f"segments left out (an arm under {MIN_ARM}): {', '.join(left_out)}"
                    if left_out else "")
            rows.append(_row(OVERALL, metric, estimator, y_all, treated_all,
                             post_stratify(parts, level), note))
        for g in sorted(set(label), key=_natural):
            m = label == g
            y, x, t = (outcomes[metric].to_numpy(float)[m],
                       outcomes[f"{metric}__pre"].to_numpy(float)[m], treated_all[m])
            rows.append(_row(g, metric, ESTIMATORS[0], y, t, difference_in_means(y, t, level),
                             ""))
            rows.append(_row(g, metric, ESTIMATORS[1], y, t, cuped(y, x, t, level), ""))
    out = pd.DataFrame(rows, columns=list(UPLIFT_COLUMNS))
    order = {OVERALL: 0}
    out["_o"] = out["group"].map(lambda g: order.get(g, 1))
    return out.sort_values(["_o"], kind="stable").drop(columns="_o").reset_index(drop=True)


def _natural(value: str) -> tuple[int, float | str]:
    try:
        return (0, float(value))
    except ValueError:
        return (1, value)


def measure_campaign(con: duckdb.DuckDBPyConnection, campaign_id: str, *,
                     groups: Mapping[str, str] | None = None,
                     level: float = LEVEL) -> pd.DataFrame:
    """Measure a registered campaign after its window (see the module docstring)."""
    campaign = get_campaign(con, campaign_id)
    return measure_outcomes(campaign_outcomes(con, campaign), groups=groups, level=level)
