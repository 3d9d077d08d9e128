"""Readable names, descriptions and profiles of segments.

For every segment the median of each feature column is compared with the population:
``z = (segment median - population median) / population std``, computed on the
hint-transformed values (``log1p`` for amounts, so a whale does not make every other
z-score vanish). The name comes from an ordered rule set on the segment's medians over
the naming window (``all`` when present) and those z-scores (:func:`base_name`); the
first rule that applies wins. Names are deterministic: the same frame and labels give
the same names. Two segments never share a name: colliding segments each get a qualifier
from the feature that best separates them from the others with that name ("active perp
scalpers, larger trade size"); a numeral is the last resort.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from traderseg.errors import DataError
from traderseg.features.catalog import get_feature, split_column
from traderseg.segment.estimator import OUTLIER_LABEL

logger = logging.getLogger(__name__)

LABELS: dict[str, str] = {
    "fill_count": "activity", "active_days": "active days",
    "fills_per_active_day": "fills per day", "recency_days": "days since last trade",
    "tenure_days": "tenure", "active_day_share": "share of days active",
    "mean_gap_days": "gap between trading days", "hour_entropy": "spread over the day",
    "weekend_share": "weekend trading", "notional_total": "volume",
    "notional_mean": "trade size", "notional_median": "trade size",
    "notional_p95": "large trades", "notional_max": "largest trade",
    "top_instrument_share": "concentration", "underlying_count": "underlyings",
    "spot_share": "spot share", "perp_share": "perp share", "future_share": "futures share",
    "option_share": "option share", "instrument_breadth": "instrument breadth",
    "call_share": "call share", "long_premium_share": "premium bought",
    "mean_abs_delta": "option delta", "deep_otm_share": "deep-OTM share",
    "mean_days_to_expiry": "option tenor", "short_dated_share": "short-dated share",
    "mean_abs_log_moneyness": "moneyness distance", "mean_iv": "implied vol paid",
    "straddle_share": "straddle share", "put_buy_share": "put buying",
    "leverage_mean": "leverage", "leverage_max": "peak leverage",
    "high_leverage_share": "high-leverage share", "liquidation_count": "liquidations",
    "liquidation_share": "liquidation share", "close_share": "closing share",
    "fees_usd": "fees paid", "fee_bps": "fee rate", "realized_pnl_usd": "realised PnL",
    "win_rate": "win rate", "pnl_std_usd": "PnL volatility", "maker_share": "maker share",
    "buy_share": "buy share", "event_activity_ratio": "event-day activity",
    "event_notional_share": "event-day volume",
}
"""Short words for each feature, used in qualifiers and descriptions."""

_QUALIFIER_WORDS = {True: "higher", False: "lower"}


@dataclass(frozen=True)
class SegmentProfile:
    """Name, description and key figures of one segment."""

    label: int
    name: str
    description: str
    size: int
    size_share: float
    revenue_share: float
    top_features: list[dict[str, Any]] = field(default_factory=list)


def _transformed(frame: pd.DataFrame) -> pd.DataFrame:
    out: dict[str, np.ndarray] = {}
    for col in frame.columns:
        values = frame[col].to_numpy(dtype=float)
        try:
            hint = get_feature(col).transform
        except KeyError:
            hint = "standard"
        if hint == "log":
            values = np.log1p(np.clip(values, 0, None))
        elif hint == "signed_log":
            values = np.sign(values) * np.log1p(np.abs(values))
        out[col] = values
    return pd.DataFrame(out, index=frame.index)


def _naming_window(columns: list[str]) -> str:
    windows = {split_column(c)[1] for c in columns}
    if "all" in windows:
        return "all"
    days = sorted((float(w.rstrip("d")), w) for w in windows if w.rstrip("d").isdigit())
    return days[-1][1] if days else sorted(windows)[0]


def base_name(med: dict[str, float], z: dict[str, float]) -> str:
    """Apply the rule set to one segment.

    Parameters
    ----------
    med : dict
        Feature stem -> segment median (naming window); missing stems count as unknown.
    z : dict
        Feature stem -> z-score of the segment median against the population.

    Returns
    -------
    str
        Trader-language name.

    Examples
    --------
    >>> base_name({"perp_share": 0.9, "maker_share": 0.8}, {"fills_per_active_day": 2.0})
    'high-frequency perp makers'
    >>> base_name({"option_share": 0.9, "long_premium_share": 0.1}, {})
    'option premium sellers'
    """

    def m(stem: str) -> float:
        v = med.get(stem, np.nan)
        return float(v) if v is not None else np.nan

    def zz(stem: str) -> float:
        v = z.get(stem, np.nan)
        return float(v) if v is not None and np.isfinite(v) else 0.0

    if m("option_share") >= 0.5:
        if m("straddle_share") >= 0.35:
            return "straddle / volatility traders"
        if m("long_premium_share") <= 0.35:
            return "option premium sellers"
        if m("put_buy_share") >= 0.5:
            return "protective put hedgers"
        if m("long_premium_share") >= 0.65 and m("deep_otm_share") >= 0.4:
            kind = "call" if m("call_share") >= 0.6 else "option"
            dated = "short-dated " if m("short_dated_share") >= 0.4 else ""
            return f"{dated}OTM {kind} buyers"
        return "option traders"
    if m("option_share") >= 0.1 and m("put_buy_share") >= 0.5:
        return "protective put hedgers"
    if zz("notional_median") >= 1.5:
        return "large-block basis traders" if m("future_share") >= 0.2 else "large-block traders"
    if m("spot_share") >= 0.5:
        occasional = m("active_day_share") <= 0.15 or zz("active_day_share") <= -0.5
        return "occasional spot holders" if occasional else "active spot traders"
    if m("perp_share") >= 0.5:
        if m("maker_share") >= 0.5:
            busy = zz("fills_per_active_day") >= 1 or zz("fill_count") >= 1
            return "high-frequency perp makers" if busy else "perp liquidity makers"
        if m("high_leverage_share") >= 0.3 or m("leverage_mean") >= 15:
            prone = zz("liquidation_share") >= 1 or m("liquidation_count") >= 1
            return "high-leverage perp takers" + (", liquidation-prone" if prone else "")
        if zz("fills_per_active_day") >= 0.5 or zz("active_day_share") >= 0.5:
            return "active perp scalpers"
        return "perp traders"
    if m("future_share") >= 0.5:
        return "dated futures traders"
    if z:
        stem = max(sorted(z), key=lambda s: abs(zz(s)))
        return f"{_QUALIFIER_WORDS[zz(stem) > 0]} {LABELS.get(stem, stem)} traders"
    return "mixed traders"


def _disambiguate(names: dict[int, str], zs: dict[int, dict[str, float]]) -> dict[int, str]:
    out = dict(names)
    for name in sorted(set(names.values())):
        group = sorted(lab for lab, n in names.items() if n == name)
        if len(group) < 2:
            continue
        stems = sorted(set().union(*(zs[g].keys() for g in group)))
        mean = {s: np.nanmean([zs[g].get(s, np.nan) for g in group]) for s in stems}
        taken: set[str] = set()
        for g in group:
            ranked = sorted(
                stems, key=lambda s: (-abs(np.nan_to_num(zs[g].get(s, np.nan) - mean[s])), s)
            )
            for s in ranked:
                diff = np.nan_to_num(zs[g].get(s, np.nan) - mean[s])
                qual = f"{_QUALIFIER_WORDS[diff > 0]} {LABELS.get(s, s)}"
                if qual not in taken and diff != 0:
                    taken.add(qual)
                    out[g] = f"{name}, {qual}"
                    break
    seen: dict[str, int] = {}
    for lab in sorted(out):
        n = out[lab]
        seen[n] = seen.get(n, 0) + 1
        if seen[n] > 1:
            out[lab] = f"{n} ({seen[n]})"
    return out


def profile_zscores(features: pd.DataFrame, labels: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each segment's median of every feature, raw and as a z-score against the population.

    The z-score is ``(segment median - population median) / population std`` on the
    hint-transformed values (``log1p`` for amounts), as the names use it; a feature with
    no spread in the population has a NaN z-score.

    Parameters
    ----------
    features : pandas.DataFrame
        The feature frame the labels belong to.
    labels : array-like of int
        Segment label (or id) per row.

    Returns
    -------
    z : pandas.DataFrame
        One row per label (sorted), one column per feature.
    medians : pandas.DataFrame
        The segments' raw medians, same shape.

    Examples
    --------
    >>> f = pd.DataFrame({"maker_share": [0.0, 0.2, 0.8, 1.0]})
    >>> z, med = profile_zscores(f, [0, 0, 1, 1])
    >>> round(float(z.loc[1, "maker_share"]), 3), float(med.loc[0, "maker_share"])
    (0.97, 0.1)
    """
    labels = np.asarray(labels)
    if labels.shape[0] != features.shape[0]:
        raise DataError(f"{labels.shape[0]} labels for {features.shape[0]} feature rows")
    T = _transformed(features)
    pop_med = T.median()
    pop_std = T.std(ddof=0).replace(0, np.nan)
    order = sorted(np.unique(labels))
    z = pd.DataFrame([(T[labels == lab].median() - pop_med) / pop_std for lab in order],
                     index=pd.Index([int(v) for v in order], name="segment"))
    med = pd.DataFrame([features[labels == lab].median() for lab in order], index=z.index)
    return z, med


def name_segments(features: pd.DataFrame, labels: Any, *, n_top: int = 5) -> list[SegmentProfile]:
    """Name, describe and profile every segment.

    Parameters
    ----------
    features : pandas.DataFrame
        The feature frame the labels belong to (index ``account_id``).
    labels : array-like of int
        Segment label per row (``-1``: outliers).
    n_top : int
        Number of distinguishing features reported per segment.

    Returns
    -------
    list of SegmentProfile
        One per label, in label order (outliers first when present).
    """
    labels = np.asarray(labels)
    if labels.shape[0] != features.shape[0]:
        raise DataError(f"{labels.shape[0]} labels for {features.shape[0]} feature rows")
    if features.shape[0] == 0:
        raise DataError("cannot name segments of an empty feature frame")
    z_all, med_all = profile_zscores(features, labels)
    raw_pop = features.median()
    window = _naming_window(list(features.columns))
    fee_col = next((c for c in (f"fees_usd__{window}", "fees_usd__all") if c in features), None)
    total_fees = float(features[fee_col].sum()) if fee_col else np.nan
    names: dict[int, str] = {}
    zs: dict[int, dict[str, float]] = {}
    data: dict[int, tuple[pd.Series, pd.Series]] = {}
    for lab in z_all.index:
        z, med = z_all.loc[lab], med_all.loc[lab]
        data[int(lab)] = (z, med)
        zw = {split_column(c)[0]: float(v) for c, v in z.items() if split_column(c)[1] == window}
        mw = {split_column(c)[0]: float(v) for c, v in med.items() if split_column(c)[1] == window}
        zs[int(lab)] = zw
        names[int(lab)] = "outliers" if lab == OUTLIER_LABEL else base_name(mw, zw)
    names = _disambiguate(names, zs)
    profiles = []
    n = labels.shape[0]
    for lab, (z, med) in data.items():
        rows = labels == lab
        in_window = [c for c in z.index if split_column(c)[1] == window]
        zt = z[in_window] if in_window else z
        top = zt.dropna().abs().sort_values(ascending=False, kind="stable").index[:n_top]
        top_features = [
            {"feature": c, "z": float(z[c]), "segment_median": float(med[c]),
             "population_median": float(raw_pop[c])}
            for c in top
        ]
        revenue = (
            float(features.loc[rows, fee_col].sum()) / total_fees
            if fee_col and total_fees > 0 else float("nan")
        )
        profiles.append(SegmentProfile(
            label=lab, name=names[lab],
            description=_describe(names[lab], int(rows.sum()), rows.mean(), revenue, top_features),
            size=int(rows.sum()), size_share=float(rows.sum() / n), revenue_share=revenue,
            top_features=top_features,
        ))
    return profiles


def _describe(name: str, size: int, share: float, revenue: float, top: list[dict]) -> str:
    money = f" and pay {revenue:.1%} of the venue's fee revenue" if np.isfinite(revenue) else ""
    parts = []
    for t in top:
        stem, window = split_column(t["feature"])
        word = _QUALIFIER_WORDS[t["z"] > 0]
        parts.append(
            f"{word} {LABELS.get(stem, stem)} ({window}: {t['segment_median']:.3g} vs "
            f"{t['population_median']:.3g})"
        )
    stand_out = ("; they stand out by " + ", ".join(parts)) if parts else ""
    return (
        f"{name[0].upper()}{name[1:]}: {size:,} accounts ({share:.1%} of the population)"
        f"{money}{stand_out}."
    )


def profiles_frame(profiles: list[SegmentProfile]) -> pd.DataFrame:
    """Tabulate profiles (one row per segment) for reports and the CLI.

    Parameters
    ----------
    profiles : list of SegmentProfile
        Output of :func:`name_segments`.

    Returns
    -------
    pandas.DataFrame
        Columns ``label, name, size, size_share, revenue_share, top_features,
        description``.
    """
    return pd.DataFrame([
        {"label": p.label, "name": p.name, "size": p.size, "size_share": p.size_share,
         "revenue_share": p.revenue_share,
         "top_features": ", ".join(t["feature"] for t in p.top_features),
         "description": p.description}
        for p in profiles
    ])
