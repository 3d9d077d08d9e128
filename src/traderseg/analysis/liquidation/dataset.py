"""Labelled rows for liquidation risk, one per account, as of a cutoff.

For a cutoff ``c``, a horizon of ``h`` days (7 by default) and an activity look-back of
``a`` days (30 by default):

* population: accounts with at least one fill in ``[c - a days, c)``;
* ``liquidated``: the account has a fill flagged ``is_liquidation`` in ``[c, c + h days)``.

Features come from the catalogue as of ``c`` (fills strictly before ``c``). The label
needs fills that carry the liquidation flag: a store whose fills never carry it cannot
be labelled (a :class:`~traderseg.errors.DataError`, not a column of zeros).

The baseline, :func:`leverage_rule_score`, is the rule a risk desk uses without a model:
the highest leverage of the account's fills in the 30 days before the cutoff
(``leverage_max__30d``), 0 for an account without leveraged fills.
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
HORIZON_DAYS = 7.0
ACTIVITY_DAYS = 30.0
LEVERAGE_RULE_COLUMN = "leverage_max__30d"

_LABEL_SQL = """
SELECT account_id,
       COUNT(*) FILTER (WHERE ts >= $c AND ts < $end AND is_liquidation) AS liquidations
FROM fills
WHERE ts >= $look AND ts < $end
GROUP BY account_id
HAVING COUNT(*) FILTER (WHERE ts >= $look AND ts < $c) > 0
ORDER BY account_id
"""


@dataclass(frozen=True)
class LiquidationDataset:
    """Rows of one cutoff.

    Attributes
    ----------
    cutoff : pandas.Timestamp
        The cutoff (UTC).
    features : pandas.DataFrame
        Catalogue features as of the cutoff, indexed by account_id.
    labels : pandas.DataFrame
        Same index: ``liquidated`` (bool) and ``liquidations`` (count in the horizon).
    """

    cutoff: pd.Timestamp
    features: pd.DataFrame
    labels: pd.DataFrame


def has_liquidation_flag(con: duckdb.DuckDBPyConnection, end: pd.Timestamp) -> bool:
    """Whether any fill before ``end`` carries the liquidation flag."""
    row = con.execute("SELECT COUNT(*) FROM fills WHERE is_liquidation IS NOT NULL AND ts < ?",
                      [end.to_pydatetime()]).fetchone()
    return bool(row and row[0])


def liquidation_dataset(
    con: duckdb.DuckDBPyConnection,
    cutoff: pd.Timestamp,
    horizon_days: float = HORIZON_DAYS,
    *,
    activity_days: float = ACTIVITY_DAYS,
    windows: Sequence[str] = DEFAULT_WINDOWS,
) -> LiquidationDataset:
    """Build the labelled population of one cutoff.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Store connection.
    cutoff : pandas.Timestamp
        Cutoff, UTC.
    horizon_days : float
        Days after the cutoff a liquidation counts in.
    activity_days : float
        Look-back defining the population.
    windows : sequence of str
        Feature windows (``30d`` is needed by the leverage rule).

    Returns
    -------
    LiquidationDataset
        Features and labels.

    Raises
    ------
    DataError
        Bad horizon, cutoff outside the data, horizon past the data, no liquidation flag
        in the store, or no active account.
    """
    if horizon_days <= 0 or activity_days <= 0:
        raise DataError("horizon_days and activity_days must be > 0")
    first, _ = fill_bounds(con)
    if cutoff <= first:
        raise DataError(f"cutoff outside the data: {cutoff.isoformat()} is not after the first "
                        f"fill ({first.isoformat()})")
    end = cutoff + pd.Timedelta(days=horizon_days)
    check_covered(con, end)
    if not has_liquidation_flag(con, end):
        raise DataError("no fill carries the liquidation flag (is_liquidation): liquidations "
                        "cannot be labelled from this store")
    params = {"c": cutoff.to_pydatetime(), "end": end.to_pydatetime(),
              "look": (cutoff - pd.Timedelta(days=activity_days)).to_pydatetime()}
    labels = con.execute(_LABEL_SQL, params).df().set_index("account_id")
    if labels.empty:
        raise DataError(f"no account traded in the {activity_days:g} days before "
                        f"{cutoff.isoformat()}")
    labels["liquidations"] = labels["liquidations"].astype("int64")
    labels["liquidated"] = labels["liquidations"] > 0
    features = compute_features(con, cutoff.to_pydatetime(), windows).reindex(labels.index)
    logger.info("cutoff %s: %d active accounts, liquidated rate %.3f", cutoff.isoformat(),
                len(labels), labels["liquidated"].mean())
    return LiquidationDataset(cutoff, features, labels)


def leverage_rule_score(features: pd.DataFrame) -> pd.Series:
    """Score of the leverage-only rule: max leverage over 30 days, 0 when none.

    Parameters
    ----------
    features : pandas.DataFrame
        Needs ``leverage_max__30d``.

    Returns
    -------
    pandas.Series
        Score per account (a ranking, not a probability).

    Examples
    --------
    >>> leverage_rule_score(pd.DataFrame({"leverage_max__30d": [20.0, None]})).tolist()
    [20.0, 0.0]
    """
    if LEVERAGE_RULE_COLUMN not in features.columns:
        raise DataError(f"the leverage rule needs the {LEVERAGE_RULE_COLUMN} feature (window "
                        "30d)")
    return features[LEVERAGE_RULE_COLUMN].astype(float).fillna(0.0).rename("leverage_rule")
