"""The account book: everything known of every account as of a cutoff, ready for lookups.

A service answers "what is this account?" many times a second; recomputing features and
assignments per request would cost a scan of the store each time. :func:`build_book` does
that work once per cutoff: the features of the model's windows, the assignment with its
membership, the overlays (lifecycle stage, value tier, risk profile with its components),
the lifetime value and churn probability, and the drift of the model's columns against
the training population. Lookups are then a row read (:meth:`AccountBook.account`).

Controls are *not* in the book: they change in real time and live in the store's
``controls`` table (:mod:`traderseg.online.tables`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from traderseg.analysis.clv import venue_clv
from traderseg.analysis.drift import drift_level
from traderseg.errors import DataError, TradersegError
from traderseg.features.catalog import get_feature, split_column
from traderseg.features.compute import compute_features, parse_as_of
from traderseg.segment.drift import psi
from traderseg.segment.overlays import RISK_WEIGHTS
from traderseg.segment.persist import load_model, model_version
from traderseg.segment.workflow import DEFAULT_WINDOWS, assignments_frame
from traderseg.store import fill_bounds

logger = logging.getLogger(__name__)

CLV_HORIZON_DAYS = 90.0
"""Horizon of the lifetime value the book holds (days, discounted)."""
RISK_COMPONENTS: tuple[str, ...] = tuple(RISK_WEIGHTS)
"""Risk profile components, in the order of :data:`traderseg.segment.overlays.RISK_WEIGHTS`."""
AUDIENCE_COLUMNS: tuple[str, ...] = (
    "account_id", "segment", "segment_name", "lifecycle_stage", "value_tier", "risk_score",
    "churn_probability", "clv_usd",
)
"""Columns of an audience export, in order."""


@dataclass
class AccountBook:
    """Per-account state of one store as of a cutoff.

    Attributes
    ----------
    as_of : pandas.Timestamp
        Cutoff of the features (UTC); fills at or after it are not counted.
    model_version : str
        Version of the segment model that assigned the accounts.
    metadata : dict
        The model's saved metadata (segments with names and descriptions, metrics).
    accounts : pandas.DataFrame
        Indexed by ``account_id``: ``segment``, ``segment_name``, ``membership``,
        ``runner_up``, ``runner_up_name``, ``runner_up_membership``, ``lifecycle_stage``,
        ``value_tier``, ``risk_score``, the risk components, ``clv_usd`` and
        ``churn_probability`` (NaN when the lifetime-value models could not be fitted).
    features : pandas.DataFrame
        Indexed by ``account_id``: every feature column of the model's windows.
    drift : pandas.DataFrame
        ``column``, ``psi``, ``level``: each model column against its training bins,
        most shifted first.
    notes : list of str
        What could not be computed, and why.
    """

    as_of: pd.Timestamp
    model_version: str
    metadata: dict[str, Any]
    accounts: pd.DataFrame
    features: pd.DataFrame
    drift: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.accounts)

    def __contains__(self, account_id: object) -> bool:
        return account_id in self.accounts.index

    @property
    def segment_names(self) -> dict[int, str]:
        """Stable segment id -> name, from the model."""
        return {int(s["id"]): str(s["name"]) for s in self.metadata.get("segments", [])}

    def segments(self) -> pd.DataFrame:
        """One row per segment of the model: id, name, description, accounts now, shares.

        Returns
        -------
        pandas.DataFrame
            ``segment, name, description, accounts, size_share, mean_risk_score,
            mean_clv_usd, mean_churn_probability``, by segment id.
        """
        acc = self.accounts
        grouped = acc.groupby("segment")
        counts = grouped.size()
        rows = []
        for s in sorted(self.metadata.get("segments", []), key=lambda s: int(s["id"])):
            sid = int(s["id"])
            n = int(counts.get(sid, 0))
            members = acc[acc["segment"] == sid] if n else acc.iloc[:0]
            rows.append({
                "segment": sid, "name": str(s["name"]),
                "description": str(s.get("description", "")),
                "accounts": n, "size_share": n / len(acc) if len(acc) else 0.0,
                "mean_risk_score": _mean(members["risk_score"]),
                "mean_clv_usd": _mean(members["clv_usd"]),
                "mean_churn_probability": _mean(members["churn_probability"]),
            })
        return pd.DataFrame(rows)

    def account(self, account_id: str) -> dict[str, Any] | None:
        """Everything the book holds on one account, or ``None`` when it is not in it.

        Returns
        -------
        dict or None
            The row of :attr:`accounts` (NaN as ``None``), ``risk_components`` as a dict,
            and ``features`` as ``{column: value}``.
        """
        columns, positions = self._rows
        i = positions.get(account_id)
        if i is None:
            return None
        row: dict[str, Any] = {c: _plain(values[i]) for c, values in columns.items()}
        row["risk_components"] = {c: row.pop(c) for c in RISK_COMPONENTS}
        names, matrix, rows = self._feature_rows
        values = matrix[rows[account_id]].tolist()
        row["features"] = {c: _plain(v) for c, v in zip(names, values, strict=True)}
        row["account_id"] = account_id
        return row

    @cached_property
    def _rows(self) -> tuple[dict[str, np.ndarray], dict[str, int]]:
        """Column arrays of :attr:`accounts` and each account's position, for lookups."""
        columns = {str(c): self.accounts[c].to_numpy(dtype=object) for c in self.accounts}
        return columns, {str(a): i for i, a in enumerate(self.accounts.index)}

    @cached_property
    def _feature_rows(self) -> tuple[list[str], np.ndarray, dict[str, int]]:
        """Feature names, values as one float matrix and each account's row, for lookups."""
        names = [str(c) for c in self.features.columns]
        matrix = self.features.to_numpy(dtype=float, na_value=np.nan)
        return names, matrix, {str(a): i for i, a in enumerate(self.features.index)}

    def why(self, account_id: str) -> list[dict[str, Any]]:
        """Return the account's values on its segment's distinctive features, beside the medians.

        Returns
        -------
        list of dict
            ``feature, unit, account, segment_median, population_median`` per distinctive
            feature of the account's segment (as saved with the model); empty for an
            account not in the book.
        """
        if account_id not in self.accounts.index:
            return []
        sid = int(self.accounts["segment"].loc[account_id])
        segments = self.metadata.get("segments", [])
        seg: dict[str, Any] = next((s for s in segments if int(s["id"]) == sid), {})
        return [
            {"feature": t["feature"], "unit": feature_unit(t["feature"]),
             "account": _plain(self.features.at[account_id, t["feature"]]),
             "segment_median": t["segment_median"],
             "population_median": t["population_median"]}
            for t in seg.get("top_features", []) if t["feature"] in self.features.columns
        ]

    def members(self, segment: int, *, offset: int = 0, limit: int = 100) -> pd.DataFrame:
        """Return a page of a segment's accounts, by account id (``account_id`` as a column)."""
        members = self.accounts[self.accounts["segment"] == segment]
        return members.sort_index().iloc[offset:offset + limit].reset_index()

    def audience(self, *, segments: Sequence[int] | None = None,
                 lifecycle: Sequence[str] | None = None,
                 value_tiers: Sequence[str] | None = None,
                 min_churn: float | None = None,
                 exclude: Sequence[str] = ()) -> pd.DataFrame:
        """Accounts matching every given filter, in :data:`AUDIENCE_COLUMNS`, by account id.

        Parameters
        ----------
        segments, lifecycle, value_tiers : sequence, optional
            Keep accounts in one of these segment ids / stages / tiers.
        min_churn : float, optional
            Keep accounts whose churn probability is at least this.
        exclude : sequence of str
            Accounts left out whatever the filters (those not eligible for marketing).
        """
        acc = self.accounts
        keep = np.ones(len(acc), dtype=bool)
        if segments is not None:
            keep &= acc["segment"].isin(list(segments)).to_numpy()
        if lifecycle is not None:
            keep &= acc["lifecycle_stage"].isin(list(lifecycle)).to_numpy()
        if value_tiers is not None:
            keep &= acc["value_tier"].isin(list(value_tiers)).to_numpy()
        if min_churn is not None:
            keep &= (acc["churn_probability"] >= min_churn).to_numpy()
        if len(exclude):
            keep &= ~acc.index.isin(list(exclude))
        out = acc[keep].sort_index().reset_index()
        return out[list(AUDIENCE_COLUMNS)]


def iter_csv(frame: pd.DataFrame, chunk_rows: int = 20_000) -> Iterator[str]:
    """Yield ``frame`` as CSV text, the header first, then ``chunk_rows`` rows at a time."""
    yield ",".join(frame.columns) + "\n"
    for start in range(0, len(frame), chunk_rows):
        yield frame.iloc[start:start + chunk_rows].to_csv(index=False, header=False,
                                                          lineterminator="\n")


def _mean(values: pd.Series) -> float | None:
    v = pd.to_numeric(values, errors="coerce").dropna()
    return float(v.mean()) if len(v) else None


def _plain(value: Any) -> Any:
    """Python scalar of a frame cell; NaN and NA as ``None``."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@cache
def feature_unit(column: str) -> str:
    """Return the unit of a feature column, from the catalogue."""
    return get_feature(split_column(column)[0]).unit


def default_as_of(con: duckdb.DuckDBPyConnection) -> datetime:
    """Return the start of the UTC day after the store's last fill: the book of "now"."""
    _, last = fill_bounds(con)
    return parse_as_of(last.normalize() + timedelta(days=1))


def build_book(con: duckdb.DuckDBPyConnection, model_dir: str | Path,
               as_of: str | datetime | None = None) -> AccountBook:
    """Compute the account book of a store with a saved model.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        The store.
    model_dir : str or Path
        Saved segment model.
    as_of : str or datetime, optional
        Cutoff; by default :func:`default_as_of` (every fill of the store counts).

    Returns
    -------
    AccountBook
        The book; accounts without a fill before the cutoff are not in it.
    """
    model, meta = load_model(model_dir)
    cutoff = parse_as_of(as_of) if as_of is not None else default_as_of(con)
    windows = tuple(meta.get("windows") or DEFAULT_WINDOWS)
    feats = compute_features(con, cutoff, windows)
    if not len(feats):
        raise DataError(f"the store has no account with fills before {cutoff.isoformat()}")
    names = {int(s["id"]): str(s["name"]) for s in meta.get("segments", [])}
    assign = assignments_frame(model, feats, names).set_index("account_id")
    notes: list[str] = []
    clv = _clv(con, cutoff, notes).reindex(assign.index)
    assign["clv_usd"] = clv["clv"].to_numpy(float)
    assign["churn_probability"] = 1.0 - clv["p_alive"].to_numpy(float)
    feats.index = feats.index.astype(str)
    assign.index.name = "account_id"
    feats.index.name = "account_id"
    return AccountBook(as_of=pd.Timestamp(cutoff), model_version=model_version(meta),
                       metadata=meta, accounts=assign, features=feats,
                       drift=_drift(meta, feats), notes=notes)


def _clv(con: duckdb.DuckDBPyConnection, cutoff: datetime, notes: list[str]) -> pd.DataFrame:
    """Per-account ``clv`` and ``p_alive``; NaN (with a note) when the models cannot fit."""
    try:
        res = venue_clv(con, cutoff, horizon_days=CLV_HORIZON_DAYS)
    except (TradersegError, ValueError, FloatingPointError, np.linalg.LinAlgError) as exc:
        note = f"lifetime value and churn probability unavailable: {exc}"
        logger.warning(note)
        notes.append(note)
        return pd.DataFrame({"clv": [], "p_alive": []}, dtype=float)
    out = res.accounts[["clv", "p_alive"]].copy()
    out.index = out.index.astype(str)
    return out


def _drift(meta: dict[str, Any], feats: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for col, ref in (meta.get("reference_quantiles") or {}).items():
        if col in feats.columns and isinstance(ref, dict) and "edges" in ref:
            value = psi(ref, feats[col])
            rows.append({"column": col, "psi": value, "level": drift_level(value)})
    out = pd.DataFrame(rows, columns=["column", "psi", "level"])
    return out.sort_values("psi", ascending=False, kind="stable").reset_index(drop=True)
