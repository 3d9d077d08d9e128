"""Labelled rows for churn and next-period volume, one per account, as of a cutoff.

For a cutoff ``c``, a horizon of ``h`` days and an activity look-back of ``a`` days:

* population: accounts with at least one fill in ``[c - a days, c)``;
* ``churned``: the account has no fill in ``[c, c + h days)`` (``grace_days`` = 0, the
  default: inactive over the horizon), or, with a grace period of ``g`` days, no fill in
  ``[c + h days, c + h + g days)``: the account *stopped within the horizon*, whether it
  still traded in the first days of it or not. The first label mixes dormant accounts
  with leavers; the second asks who quits, the question the truth answers;
* ``next_notional``: notional traded in ``[c, c + h days)``; ``prev_notional``: in
  ``[c - h days, c)`` (the "same as last period" baseline);
* ``true_churned`` (simulated stores with a ``truth`` table): the account's true churn
  time is before ``c + h days``. An account that had already stopped for good before the
  cutoff (but traded in the look-back) counts as truly churned as well: it is.
  ``true_alive`` says the account had not truly churned before ``c``, and
  ``true_churned_in_horizon`` that its true churn time falls in ``[c, c + h days)``:
  among truly alive accounts, the harder question of who quits next.

Features come from the catalogue as of ``c`` (fills strictly before ``c``), so nothing
after the cutoff leaks into them. The labels need the store to cover the whole horizon.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import pandas as pd

from traderseg.errors import DataError
from traderseg.features.compute import compute_features
from traderseg.store import check_covered, fill_bounds

logger = logging.getLogger(__name__)

DEFAULT_WINDOWS = ("7d", "30d", "90d")

_LABEL_SQL = """
SELECT account_id,
       COUNT(*) FILTER (WHERE ts >= $c AND ts < $end) AS next_fills,
       COUNT(*) FILTER (WHERE ts >= $end AND ts < $grace_end) AS grace_fills,
       COALESCE(SUM(notional_usd) FILTER (WHERE ts >= $c AND ts < $end), 0) AS next_notional,
       COALESCE(SUM(notional_usd) FILTER (WHERE ts >= $prev AND ts < $c), 0) AS prev_notional
FROM fills
WHERE ts >= LEAST($look, $prev) AND ts < GREATEST($end, $grace_end)
GROUP BY account_id
HAVING COUNT(*) FILTER (WHERE ts >= $look AND ts < $c) > 0
ORDER BY account_id
"""


@dataclass(frozen=True)
class ChurnDataset:
    """Rows of one cutoff.

    Attributes
    ----------
    cutoff : pandas.Timestamp
        The cutoff (UTC).
    features : pandas.DataFrame
        Catalogue features as of the cutoff, indexed by account_id (population only).
    labels : pandas.DataFrame
        Same index: ``churned`` (bool), ``next_notional``, ``prev_notional`` and, with a
        truth table, ``true_churned``, ``true_alive`` and ``true_churned_in_horizon`` (bool).
    """

    cutoff: pd.Timestamp
    features: pd.DataFrame
    labels: pd.DataFrame


def has_truth(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the store has a non-empty simulator ``truth`` table.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Store connection.

    Returns
    -------
    bool
        True when ground truth is available.
    """
    try:
        row = con.execute("SELECT COUNT(*) FROM truth").fetchone()
    except duckdb.CatalogException:
        return False
    return bool(row and row[0])


def churn_dataset(
    con: duckdb.DuckDBPyConnection,
    cutoff: pd.Timestamp,
    horizon_days: float = 30.0,
    *,
    activity_days: float = 90.0,
    windows: Sequence[str] = DEFAULT_WINDOWS,
    grace_days: float = 0.0,
) -> ChurnDataset:
    """Build the labelled population of one cutoff.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Store connection.
    cutoff : pandas.Timestamp
        Cutoff, UTC.
    horizon_days : float
        Days after the cutoff an account must stay inactive to count as churned.
    activity_days : float
        Look-back defining the population (active accounts).
    windows : sequence of str
        Feature windows.
    grace_days : float
        0: ``churned`` means inactive over the horizon; > 0: no fill in the
        ``grace_days`` after the horizon (the account stopped within it).

    Returns
    -------
    ChurnDataset
        Features and labels.

    Raises
    ------
    DataError
        The cutoff is before the first fill or the horizon runs past the data, or no
        account was active in the look-back.
    """
    if horizon_days <= 0 or activity_days <= 0:
        raise DataError("horizon_days and activity_days must be > 0")
    if grace_days < 0:
        raise DataError(f"grace_days must be >= 0, got {grace_days:g}")
    first, _ = fill_bounds(con)
    if cutoff <= first:
        raise DataError(f"cutoff outside the data: {cutoff.isoformat()} is not after the first "
                        f"fill ({first.isoformat()})")
    end = cutoff + pd.Timedelta(days=horizon_days)
    grace_end = end + pd.Timedelta(days=grace_days)
    check_covered(con, grace_end)
    params = {
        "c": cutoff.to_pydatetime(),
        "end": end.to_pydatetime(),
        "grace_end": grace_end.to_pydatetime(),
        "prev": (cutoff - pd.Timedelta(days=horizon_days)).to_pydatetime(),
        "look": (cutoff - pd.Timedelta(days=activity_days)).to_pydatetime(),
    }
    labels = con.execute(_LABEL_SQL, params).df().set_index("account_id")
    if labels.empty:
        raise DataError(f"no account traded in the {activity_days:g} days before "
                        f"{cutoff.isoformat()}")
    grace_fills = labels.pop("grace_fills")
    next_fills = labels.pop("next_fills")
    labels["churned"] = (grace_fills == 0) if grace_days > 0 else (next_fills == 0)
    labels = labels.astype({"next_notional": "float64", "prev_notional": "float64"})
    if has_truth(con):
        truth = con.execute(
            "SELECT account_id, COALESCE(churned_at < $end, false) AS true_churned, "
            "COALESCE(churned_at >= $c AND churned_at < $end, false) AS true_churned_in_horizon, "
            "COALESCE(churned_at >= $c, true) AS true_alive "
            "FROM truth", {"c": cutoff.to_pydatetime(), "end": end.to_pydatetime()},
        ).df().set_index("account_id")
        missing = labels.index.difference(truth.index)
        if len(missing):
            raise DataError(f"{len(missing)} active account(s) are missing from the truth "
                            f"table, e.g. {missing[0]!r}")
        for col in ("true_churned", "true_churned_in_horizon", "true_alive"):
            labels[col] = truth[col].reindex(labels.index).astype(bool)
    features = compute_features(con, cutoff.to_pydatetime(), windows)
    features = features.reindex(labels.index)
    logger.info("cutoff %s: %d active accounts, churn rate %.3f", cutoff.isoformat(),
                len(labels), labels["churned"].mean())
    return ChurnDataset(cutoff, features, labels)
