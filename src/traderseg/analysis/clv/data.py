"""Data preparation for lifetime-value models: transactions to a recency-frequency summary.

A *purchase occasion* is a calendar day (UTC) on which a customer transacted: several
transactions of one customer on the same day count once, with their values summed. The
time unit of the summary is the day (``freq="D"``) or the week of seven days
(``freq="W"``); occasions are days in both cases, only the unit changes.

For each customer whose first occasion falls on or before ``calibration_end`` (a date,
inclusive):

* ``frequency`` (x): number of occasions after the first one in the calibration period
  (repeat occasions);
* ``recency`` (t_x): time from the first occasion to the last one, 0 when x = 0;
* ``T``: time from the first occasion to ``calibration_end``;
* ``monetary_value`` (zbar): mean value of the *repeat* occasions, 0 when x = 0 (the
  convention of the Gamma-Gamma model, which conditions on repeat purchases only);
* ``first_value``: value of the first occasion.

Returns and cancellations are negative values: a day's value is the *net* of its
transactions, and a day whose net value is not positive (everything returned, or a refund
on its own) is a non-positive period. ``nonpositive="keep"`` (default) keeps it as an
occasion with its net value; ``"drop"`` removes it before summarising, so it is neither an
occasion nor a value. Either way the counts are reported in ``summary.attrs``:
``periods`` (customer-days), ``nonpositive_periods`` and ``dropped_periods``.

With ``observation_end`` the holdout period (``calibration_end``, ``observation_end``]
is summarised too: ``frequency_holdout`` (occasions in the holdout),
``monetary_value_holdout`` (their mean value, 0 when none) and ``duration_holdout``.
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import pandas as pd

from traderseg.errors import DataError, SchemaError

logger = logging.getLogger(__name__)

_UNIT_DAYS = {"D": 1.0, "W": 7.0}

SUMMARY_COLUMNS = ("frequency", "recency", "T", "monetary_value", "first_value")
HOLDOUT_COLUMNS = ("frequency_holdout", "monetary_value_holdout", "duration_holdout")


def unit_days(freq: str) -> float:
    """Return the length in days of the time unit ``freq`` ("D" or "W").

    Parameters
    ----------
    freq : str
        Time unit code.

    Returns
    -------
    float
        Days per unit.
    """
    try:
        return _UNIT_DAYS[freq]
    except KeyError:
        raise DataError(f"freq must be one of {sorted(_UNIT_DAYS)}, got {freq!r}") from None


def _as_day(value: object, name: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name} is not a date: {value!r}") from exc
    if ts is pd.NaT:
        raise DataError(f"{name} is missing")
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.normalize()


def _check_transactions(
    transactions: pd.DataFrame, customer_col: str, time_col: str, value_col: str
) -> pd.DataFrame:
    if not isinstance(transactions, pd.DataFrame):
        raise SchemaError(f"transactions must be a pandas DataFrame, got {type(transactions)}")
    missing = [c for c in (customer_col, time_col, value_col) if c not in transactions.columns]
    if missing:
        raise SchemaError(
            f"transactions lack column(s) {missing}; present: {list(transactions.columns)}"
        )
    if len(transactions) == 0:
        raise DataError("transactions are empty")
    for col in (customer_col, time_col, value_col):
        null = transactions[col].isna().to_numpy()
        if null.any():
            row = transactions.index[int(np.argmax(null))]
            raise DataError(
                f"column {col!r} has {int(null.sum())} missing value(s); first at row {row!r}"
            )
    times = transactions[time_col]
    if not pd.api.types.is_datetime64_any_dtype(times):
        raise SchemaError(f"column {time_col!r} must hold datetimes, got dtype {times.dtype}")
    values = transactions[value_col]
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        raise SchemaError(f"column {value_col!r} must be numeric, got dtype {values.dtype}")
    finite = np.isfinite(values.to_numpy(dtype=float))
    if not finite.all():
        row = transactions.index[int(np.argmin(finite))]
        raise DataError(f"column {value_col!r} has a non-finite value at row {row!r}")
    if times.dt.tz is not None:
        times = times.dt.tz_convert("UTC").dt.tz_localize(None)
    return pd.DataFrame(
        {
            "customer": transactions[customer_col].to_numpy(),
            "day": times.dt.normalize().to_numpy(),
            "value": values.to_numpy(dtype=float),
        }
    )


def rfm_summary(
    transactions: pd.DataFrame,
    customer_col: str,
    time_col: str,
    value_col: str,
    calibration_end: object,
    freq: Literal["D", "W"] = "W",
    observation_end: object | None = None,
    *,
    nonpositive: Literal["keep", "drop"] = "keep",
) -> pd.DataFrame:
    """Summarise transactions into frequency, recency, T and monetary value per customer.

    Parameters
    ----------
    transactions : pandas.DataFrame
        One row per transaction.
    customer_col, time_col, value_col : str
        Columns holding the customer id, the transaction time (datetime) and its value.
    calibration_end : date-like
        Last day (inclusive) of the calibration period; must lie within the days spanned
        by the transactions.
    freq : {"W", "D"}
        Time unit of ``recency``, ``T`` and ``duration_holdout``.
    observation_end : date-like, optional
        Last day (inclusive) of the holdout period; adds the holdout columns.
    nonpositive : {"keep", "drop"}
        What to do with days whose net value is <= 0 (returns, cancellations).

    Returns
    -------
    pandas.DataFrame
        Indexed by customer id (sorted), with the columns described in the module
        docstring. Customers whose first occasion is after ``calibration_end`` are not
        part of the calibration summary; their number is logged.

    Raises
    ------
    SchemaError
        A column is missing or has the wrong type.
    DataError
        Empty input, missing or non-finite values, or a calibration end outside the data.

    Examples
    --------
    >>> tx = pd.DataFrame({"id": [1, 1, 1, 2],
    ...                    "ts": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-01-08",
    ...                                          "2024-01-03"]),
    ...                    "usd": [5.0, 5.0, 4.0, 1.0]})
    >>> s = rfm_summary(tx, "id", "ts", "usd", "2024-01-08", freq="D")
    >>> s[["frequency", "recency", "T", "monetary_value"]].to_dict("list")
    {'frequency': [1, 0], 'recency': [7.0, 0.0], 'T': [7.0, 5.0], 'monetary_value': [4.0, 0.0]}
    """
    days_per_unit = unit_days(freq)
    tx = _check_transactions(transactions, customer_col, time_col, value_col)
    cal_end = _as_day(calibration_end, "calibration_end")
    first_day, last_day = tx["day"].min(), tx["day"].max()
    if not first_day <= cal_end <= last_day:
        raise DataError(
            f"calibration_end {cal_end.date()} is outside the transactions' range "
            f"{first_day.date()} .. {last_day.date()}"
        )
    obs_end = None
    if observation_end is not None:
        obs_end = _as_day(observation_end, "observation_end")
        if obs_end <= cal_end:
            raise DataError(
                f"observation_end {obs_end.date()} must be after calibration_end {cal_end.date()}"
            )

    if nonpositive not in ("keep", "drop"):
        raise DataError(f"nonpositive must be 'keep' or 'drop', got {nonpositive!r}")
    occ = tx.groupby(["customer", "day"], sort=True, as_index=False)["value"].sum()
    n_periods = len(occ)
    nonpos = occ["value"].to_numpy() <= 0
    n_nonpos = int(nonpos.sum())
    if nonpositive == "drop":
        occ = occ[~nonpos]
        if occ.empty:
            raise DataError("every day has a net value <= 0; nothing is left to summarise")
    if n_nonpos:
        logger.info("%d of %d customer-days have a net value <= 0 (returns, cancellations); "
                    "%s", n_nonpos, n_periods, "dropped" if nonpositive == "drop" else "kept")
    cal = occ[occ["day"] <= cal_end]
    summary = _calibration_summary(cal, cal_end, days_per_unit)
    summary.index.name = customer_col
    late = occ.loc[occ["day"] > cal_end, "customer"].unique()
    n_late = int(len(set(late) - set(summary.index)))
    if n_late:
        logger.info("%d customer(s) start after calibration_end and are not summarised", n_late)
    if obs_end is not None:
        hold = occ[(occ["day"] > cal_end) & (occ["day"] <= obs_end)]
        grouped = hold.groupby("customer")["value"]
        summary["frequency_holdout"] = (
            grouped.size().reindex(summary.index, fill_value=0).astype(np.int64)
        )
        summary["monetary_value_holdout"] = grouped.mean().reindex(summary.index, fill_value=0.0)
        summary["duration_holdout"] = (obs_end - cal_end).days / days_per_unit
    summary.attrs.update(periods=n_periods, nonpositive_periods=n_nonpos,
                         dropped_periods=n_nonpos if nonpositive == "drop" else 0)
    return summary


def _calibration_summary(
    cal: pd.DataFrame, cal_end: pd.Timestamp, days_per_unit: float
) -> pd.DataFrame:
    """Summarise calibration occasions (sorted by customer then day)."""
    grouped = cal.groupby("customer", sort=True)
    first = grouped["day"].min()
    last = grouped["day"].max()
    n_occ = grouped.size()
    first_value = grouped["value"].first()
    x = (n_occ - 1).astype(np.int64)
    repeats = cal[grouped.cumcount().to_numpy() > 0]
    zbar = repeats.groupby("customer")["value"].mean().reindex(x.index, fill_value=0.0)
    return pd.DataFrame(
        {
            "frequency": x,
            "recency": (last - first).dt.days / days_per_unit,
            "T": (cal_end - first).dt.days / days_per_unit,
            "monetary_value": zbar,
            "first_value": first_value,
            "value_to_date": grouped["value"].sum(),
        }
    )
