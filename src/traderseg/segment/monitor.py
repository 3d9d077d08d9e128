"""Drift monitoring of a saved model against a rolling window of recent accounts.

Two checks, both against what the model saw at training time:

* **features**: for every segmentation column of the model, the population stability
  index (PSI, :func:`traderseg.segment.drift.psi`) of the window's accounts over the
  training bins kept in the model's ``reference_quantiles``;
* **segment shares**: the share of the window's accounts the model assigns to each
  segment against the segment's share of the training accounts (``size_share`` in the
  model's metadata), as an absolute change.

The window holds the accounts with at least one fill in ``[as_of - window_days, as_of)``
(``recency_days__all <= window_days``), their features computed as of ``as_of`` with the
model's own windows.

Thresholds (:class:`DriftThresholds`, all inclusive: a value *at* a threshold reaches it):
a column is ``warn`` from ``psi_warn`` (default 0.1) and ``alert`` from ``psi_alert``
(default 0.25), the credit-scoring levels of :mod:`traderseg.analysis.drift`; a segment is
``alert`` when its share moved by ``share_alert`` (default 0.10, ten points) or more.

Every ``warn`` and ``alert`` is appended to the store's ``drift_alerts`` table
(:data:`DRIFT_ALERTS`). The table is append-only and keyed by model version, as-of,
window, kind, subject and level, so running the same check again adds nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from traderseg.analysis.drift import PSI_MODERATE, PSI_SIGNIFICANT
from traderseg.errors import ConfigError, DataError
from traderseg.features.compute import compute_features, parse_as_of
from traderseg.schema import TS, Column, Table
from traderseg.segment.drift import psi
from traderseg.segment.persist import load_model, model_version
from traderseg.segment.workflow import DEFAULT_WINDOWS, assignments_frame
from traderseg.store import fill_bounds, open_store


def existing_store(source: str | Path, *, read_only: bool) -> duckdb.DuckDBPyConnection:
    """Open a store that must already exist (a missing path is not created empty)."""
    if not Path(source).exists():
        raise DataError(f"{source}: no such store (run `traderseg ingest` first)")
    return open_store(source, read_only=read_only)

logger = logging.getLogger(__name__)

DEFAULT_WINDOW_DAYS = 30
RECENCY_COLUMN = "recency_days__all"
LEVELS = ("ok", "warn", "alert")
KINDS = ("feature", "segment_share")
SHARE_ALERT = 0.10
"""A segment whose share of accounts moved by this much (ten points) has drifted."""
SHARE_DECIMALS = 12
"""Share changes are compared at this many decimals."""

DRIFT_ALERTS = Table(
    name="drift_alerts",
    key=("model_version", "as_of", "window_days", "kind", "subject", "level"),
    description="Append-only drift alerts of a model against a rolling window of accounts.",
    columns=(
        Column("model_version", pa.string(), True, "Version of the model checked."),
        Column("as_of", TS, True, "Cutoff of the window's features.", "UTC"),
        Column("window_days", pa.int64(), True, "Length of the rolling window.", "days"),
        Column("kind", pa.string(), True, "What drifted.", allowed=KINDS),
        Column("subject", pa.string(), True, "Feature column, or segment id."),
        Column("level", pa.string(), True, "Level reached.", allowed=LEVELS[1:]),
        Column("value", pa.float64(), True, "PSI, or absolute change of the segment share."),
        Column("threshold", pa.float64(), True, "Threshold the value reached."),
        Column("reference", pa.float64(), False, "Training share of the segment."),
        Column("current", pa.float64(), False, "Window share of the segment."),
        Column("accounts", pa.int64(), True, "Accounts in the window.", "count"),
        Column("recorded_at", TS, True, "Wall-clock time of the record.", "UTC"),
    ),
)


@dataclass(frozen=True)
class DriftThresholds:
    """Levels of the drift checks (a value equal to a threshold reaches it).

    Parameters
    ----------
    psi_warn : float
        PSI of a feature from which it is ``warn``.
    psi_alert : float
        PSI from which it is ``alert`` (at least ``psi_warn``).
    share_alert : float
        Absolute change of a segment's share of accounts from which it is ``alert``.
    """

    psi_warn: float = PSI_MODERATE
    psi_alert: float = PSI_SIGNIFICANT
    share_alert: float = SHARE_ALERT

    def check(self) -> DriftThresholds:
        """Return ``self`` when the thresholds make sense, else raise naming the option."""
        for name in ("psi_warn", "psi_alert", "share_alert"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and np.isfinite(value) and value > 0):
                raise ConfigError(f"{name.replace('_', '-')} must be a positive number, "
                                  f"got {value!r}")
        if self.psi_alert < self.psi_warn:
            raise ConfigError(f"psi-alert {self.psi_alert} is below psi-warn {self.psi_warn}")
        if self.share_alert > 1:
            raise ConfigError(f"share-alert {self.share_alert} is a share: at most 1")
        return self

    def feature_level(self, value: float) -> str:
        """Level of a feature's PSI.

        Examples
        --------
        >>> t = DriftThresholds()
        >>> t.feature_level(0.0999), t.feature_level(0.1), t.feature_level(0.25)
        ('ok', 'warn', 'alert')
        """
        if value >= self.psi_alert:
            return "alert"
        return "warn" if value >= self.psi_warn else "ok"

    def share_level(self, change: float) -> str:
        """Level of a segment's share change (absolute).

        Examples
        --------
        >>> DriftThresholds().share_level(0.0999), DriftThresholds().share_level(0.1)
        ('ok', 'alert')
        """
        return "alert" if abs(change) >= self.share_alert else "ok"


@dataclass(frozen=True)
class DriftReport:
    """What :func:`monitor_drift` found.

    Attributes
    ----------
    model_version : str
        Version of the model checked.
    as_of : datetime
        Cutoff of the window.
    window_days : int
        Length of the window.
    accounts : int
        Accounts in the window.
    features : pandas.DataFrame
        ``column, psi, level`` for every segmentation column, largest PSI first.
    shares : pandas.DataFrame
        ``segment, name, reference, current, change, level`` per segment.
    alerts : pandas.DataFrame
        The ``warn`` and ``alert`` rows, in the layout of :data:`DRIFT_ALERTS`.
    recorded : int
        Alert rows newly appended to the store (0 on a re-run).
    thresholds : DriftThresholds
        Thresholds used.
    """

    model_version: str
    as_of: datetime
    window_days: int
    accounts: int
    features: pd.DataFrame
    shares: pd.DataFrame
    alerts: pd.DataFrame
    recorded: int
    thresholds: DriftThresholds

    @property
    def level(self) -> str:
        """Worst level of any check."""
        levels = set(self.features["level"]) | set(self.shares["level"])
        return next((lv for lv in reversed(LEVELS) if lv in levels), "ok")


def default_as_of(con: duckdb.DuckDBPyConnection) -> datetime:
    """Return the cutoff taking every fill of the store: midnight (UTC) after its last day."""
    _, last = fill_bounds(con)
    return (last.normalize() + pd.Timedelta(days=1)).to_pydatetime()


def recent_accounts(features: pd.DataFrame, window_days: int) -> pd.DataFrame:
    """Rows of the accounts with a fill in the ``window_days`` before the cutoff.

    Examples
    --------
    >>> f = pd.DataFrame({"recency_days__all": [29.9, 30.0, 30.1]}, index=["a", "b", "c"])
    >>> recent_accounts(f, 30).index.tolist()
    ['a', 'b']
    """
    if RECENCY_COLUMN not in features.columns:
        raise DataError(f"the features lack {RECENCY_COLUMN!r}, which picks the window's "
                        "accounts; compute the 'all' window")
    return features[features[RECENCY_COLUMN] <= window_days]


def feature_psi(reference: dict[str, Any], window: pd.DataFrame,
                columns: list[str], thresholds: DriftThresholds) -> pd.DataFrame:
    """PSI and level of each of ``columns`` that has training bins in ``reference``."""
    rows = []
    for col in columns:
        ref = reference.get(col)
        if not isinstance(ref, dict) or "edges" not in ref or col not in window.columns:
            continue
        value = psi(ref, window[col])
        rows.append({"column": col, "psi": value, "level": thresholds.feature_level(value)})
    out = pd.DataFrame(rows, columns=["column", "psi", "level"])
    return out.sort_values(["psi", "column"], ascending=[False, True],
                           kind="stable").reset_index(drop=True)


def share_drift(meta: dict[str, Any], segments: pd.Series,
                thresholds: DriftThresholds) -> pd.DataFrame:
    """Training share vs window share of every segment (those of either side).

    Parameters
    ----------
    meta : dict
        Model metadata (its ``segments`` with ``id``, ``name``, ``size_share``).
    segments : pandas.Series
        Stable segment id of each window account.
    thresholds : DriftThresholds
        Where a change becomes an alert.

    Returns
    -------
    pandas.DataFrame
        ``segment, name, reference, current, change, level``, by segment id.
    """
    ref = {int(s["id"]): float(s.get("size_share") or 0.0) for s in meta.get("segments", [])}
    names = {int(s["id"]): str(s["name"]) for s in meta.get("segments", [])}
    cur = segment_shares(segments)
    rows = []
    for sid in sorted(set(ref) | set(cur)):
        r, c = ref.get(sid, 0.0), cur.get(sid, 0.0)
        # rounded so a change of exactly the threshold (0.6 - 0.5) is not lost to binary
        # floating point (0.0999...)
        change = round(c - r, SHARE_DECIMALS)
        rows.append({"segment": sid, "name": names.get(sid, f"segment {sid}"), "reference": r,
                     "current": c, "change": change, "level": thresholds.share_level(change)})
    return pd.DataFrame(rows, columns=["segment", "name", "reference", "current", "change",
                                       "level"])


def segment_shares(segments: pd.Series) -> dict[int, float]:
    """Share of the accounts in each segment id.

    Examples
    --------
    >>> segment_shares(pd.Series([3, 3, 1, 3]))
    {3: 0.75, 1: 0.25}
    """
    return {int(str(k)): float(v)
            for k, v in segments.astype(int).value_counts(normalize=True).items()}


def largest_share_change(reference: dict[int, float], current: dict[int, float]) -> float:
    """Largest absolute change of one segment's share (ids on either side; absent = 0).

    Examples
    --------
    >>> largest_share_change({0: 0.5, 1: 0.5}, {0: 0.4, 1: 0.3, 2: 0.3})
    0.3
    """
    ids = set(reference) | set(current)
    return max((round(abs(current.get(i, 0.0) - reference.get(i, 0.0)), SHARE_DECIMALS)
                for i in ids), default=0.0)


def monitor_drift(
    source: str | Path | duckdb.DuckDBPyConnection,
    model: str | Path,
    *,
    as_of: str | datetime | None = None,
    window_days: int = DEFAULT_WINDOW_DAYS,
    thresholds: DriftThresholds | None = None,
    record: bool = True,
    features: pd.DataFrame | None = None,
) -> DriftReport:
    """Check a model's features and segment shares against a rolling window of accounts.

    Parameters
    ----------
    source : str, Path or duckdb connection
        The store (opened for writing when ``record``).
    model : str or Path
        A saved model directory or a registry (its champion).
    as_of : str or datetime, optional
        End of the window; default midnight after the store's last fill day.
    window_days : int
        Length of the window in days.
    thresholds : DriftThresholds, optional
        Levels; the documented defaults when omitted.
    record : bool
        Append the alerts to ``drift_alerts``.
    features : pandas.DataFrame, optional
        Precomputed features as of ``as_of`` (with the model's windows).

    Returns
    -------
    DriftReport
        Per-feature PSI, per-segment share change, the alerts and how many were new.
    """
    limits = (thresholds or DriftThresholds()).check()
    if isinstance(window_days, bool) or not isinstance(window_days, int) or window_days < 1:
        raise ConfigError(f"window-days must be a whole number of days (>= 1), "
                          f"got {window_days!r}")
    con, owned = ((source, False) if isinstance(source, duckdb.DuckDBPyConnection)
                  else (existing_store(source, read_only=not record), True))
    try:
        seg_model, meta = load_model(model)
        version = model_version(meta)
        cutoff = parse_as_of(as_of) if as_of is not None else default_as_of(con)
        if features is None:
            windows = tuple(meta.get("windows") or DEFAULT_WINDOWS)
            features = compute_features(con, cutoff, windows)
        window = recent_accounts(features, window_days)
        if window.empty:
            raise DataError(f"no account has fills in the {window_days} days before "
                            f"{cutoff.isoformat()}: nothing to compare")
        cols = [str(c) for c in seg_model.feature_names_in_]
        feats = feature_psi(meta.get("reference_quantiles") or {}, window, cols, limits)
        assigned = assignments_frame(seg_model, window, {})
        shares = share_drift(meta, assigned["segment"], limits)
        alerts = _alert_rows(version, cutoff, window_days, len(window), feats, shares, limits)
        added = append_alerts(con, alerts) if record else 0
    finally:
        if owned:
            con.close()
    report = DriftReport(version, cutoff, window_days, len(window), feats, shares, alerts,
                         added, limits)
    if report.level != "ok":
        logger.warning("model %s drifted (%s) as of %s: %d feature(s) and %d segment(s) past "
                       "their thresholds", version, report.level, cutoff.isoformat(),
                       int((feats["level"] != "ok").sum()), int((shares["level"] != "ok").sum()))
    return report


def _alert_rows(version: str, cutoff: datetime, window_days: int, accounts: int,
                feats: pd.DataFrame, shares: pd.DataFrame,
                limits: DriftThresholds) -> pd.DataFrame:
    now = pd.Timestamp.now(tz="UTC")
    base = {"model_version": version, "as_of": pd.Timestamp(cutoff),
            "window_days": window_days, "accounts": accounts, "recorded_at": now}
    rows = []
    for r in feats[feats["level"] != "ok"].to_dict("records"):
        limit = limits.psi_alert if r["level"] == "alert" else limits.psi_warn
        rows.append({**base, "kind": "feature", "subject": r["column"], "level": r["level"],
                     "value": r["psi"], "threshold": limit, "reference": None,
                     "current": None})
    for r in shares[shares["level"] != "ok"].to_dict("records"):
        rows.append({**base, "kind": "segment_share", "subject": str(r["segment"]),
                     "level": r["level"], "value": abs(r["change"]),
                     "threshold": limits.share_alert, "reference": r["reference"],
                     "current": r["current"]})
    frame = pd.DataFrame(rows, columns=DRIFT_ALERTS.names)
    return frame.astype({"value": float, "threshold": float, "reference": float,
                         "current": float})


def append_alerts(con: duckdb.DuckDBPyConnection, alerts: pd.DataFrame) -> int:
    """Append alert rows not already in ``drift_alerts`` (by its key); return how many."""
    con.execute(DRIFT_ALERTS.duckdb_ddl())
    if alerts.empty:
        return 0
    key = " AND ".join(f"a.{k} = n.{k}" for k in DRIFT_ALERTS.key)
    cols = ", ".join(DRIFT_ALERTS.names)
    con.register("_new_alerts", alerts[DRIFT_ALERTS.names])
    try:
        before = _count(con)
        con.execute(f"INSERT INTO drift_alerts ({cols}) SELECT {cols} FROM _new_alerts n "
                    f"WHERE NOT EXISTS (SELECT 1 FROM drift_alerts a WHERE {key})")
        return _count(con) - before
    finally:
        con.unregister("_new_alerts")


def _count(con: duckdb.DuckDBPyConnection) -> int:
    row = con.execute("SELECT count(*) FROM drift_alerts").fetchone()
    return int(row[0]) if row else 0


def read_alerts(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every drift alert of the store, oldest first (empty when none was ever recorded)."""
    try:
        return con.execute("SELECT * FROM drift_alerts ORDER BY recorded_at, as_of, kind, "
                           "subject").df()
    except duckdb.CatalogException:
        return pd.DataFrame(columns=DRIFT_ALERTS.names)
