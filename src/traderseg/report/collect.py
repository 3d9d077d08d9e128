"""Gather everything the report shows, as plain frames: no plotting, no HTML here.

:func:`collect_report` reads the fills store and a saved model and runs the library's
analyses as of a cutoff (the *report cutoff*) and an earlier *comparison cutoff*:

* the venue in figures, the segments with their profitability (over the fills before the
  report cutoff, and per week), the evidence behind the number of segments;
* the profile of each segment (z-scores of its medians, :func:`profile_zscores`), a 2-D
  map of the accounts (the first two principal components of the model's preprocessed
  space, where the segments were found), the options behaviour, the overlays;
* migration and feature drift between the comparison cutoff and the report cutoff;
* market events detected on the real daily series of the underlyings traded, and the
  event study of segment activity around them;
* the bias audit of segments and overlays across the account attributes.

The comparison cutoff defaults to the model's training cutoff when the report is made
later than that (what changed since the model was fitted), otherwise to 30 days before
the report cutoff. A section whose analysis cannot run on this data (no account
attributes, no event with its whole window inside the fills...) is kept with the reason,
and the rest of the report goes on; any other error stops the build.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
from sklearn.decomposition import PCA

from traderseg.analysis.bias import BiasAudit, bias_audit
from traderseg.analysis.clv import venue_clv
from traderseg.analysis.concentration import gini, lorenz_curve
from traderseg.analysis.drift import categorical_psi, drift_level, feature_drift
from traderseg.analysis.events import detect_events, event_study, load_market
from traderseg.analysis.events.activity import segment_activity
from traderseg.analysis.events.market import query_frame
from traderseg.analysis.migration import MigrationReport, migration
from traderseg.analysis.profitability import ProfitabilityReport, profitability
from traderseg.errors import DataError, TradersegError
from traderseg.features.catalog import split_column
from traderseg.features.compute import compute_features, parse_as_of
from traderseg.segment.estimator import TraderSegmenter
from traderseg.segment.naming import profile_zscores
from traderseg.segment.persist import load_model, trained_as_of
from traderseg.segment.workflow import DEFAULT_WINDOWS, assignments_frame
from traderseg.store import fill_bounds, read_assignments, store_connection

logger = logging.getLogger(__name__)


MAP_POINTS = 5000
"""Accounts drawn on the map and the option scatter at most (a seeded sample beyond)."""
LORENZ_POINTS = 101
"""Points of each Lorenz curve (read at evenly spaced population shares beyond)."""
DELTA_BIN = 0.05
"""Width of the |delta| bins of the option fills."""
COMPARE_DAYS = 30
EVENT_WINDOW = (-5, 5)
EVENT_ESTIMATION = (-30, -6)
OPTION_METRICS = (
    "call_share", "long_premium_share", "put_buy_share", "deep_otm_share",
    "short_dated_share", "straddle_share", "mean_abs_delta", "mean_days_to_expiry",
    "mean_abs_log_moneyness",
)


@dataclass
class Section:
    """The data of one report section, or why it could not be computed."""

    data: dict[str, Any] = field(default_factory=dict)
    unavailable: str | None = None


@dataclass
class ReportData:
    """Everything :func:`collect_report` gathered.

    Attributes
    ----------
    as_of, compare_as_of : datetime
        Report and comparison cutoffs (UTC).
    model_dir : Path
        The model the report is about.
    meta : dict
        The model's metadata.
    names : dict of int to str
        Segment id -> name.
    venue : dict
        Headline figures: accounts, fills, first and last fill, notional, revenue, PnL.
    segments : pandas.DataFrame
        One row per segment: ``segment``, ``name``, ``description``, ``accounts``,
        ``size_share`` and the profitability metrics.
    assignments : pandas.DataFrame
        Assignments at the report cutoff (with overlays).
    features : pandas.DataFrame
        Features at the report cutoff.
    sections : dict of str to Section
        ``selection, profile, map, options, overlays, revenue, migration, events,
        drift, bias``.
    """

    as_of: datetime
    compare_as_of: datetime
    model_dir: Path
    meta: dict[str, Any]
    names: dict[int, str]
    venue: dict[str, Any]
    segments: pd.DataFrame
    assignments: pd.DataFrame
    features: pd.DataFrame
    sections: dict[str, Section]


def _attempt(name: str, build: Callable[[], dict[str, Any]]) -> Section:
    """Run one section; a domain error makes it unavailable with the reason."""
    try:
        return Section(build())
    except TradersegError as exc:
        logger.warning("report section %s unavailable: %s", name, exc)
        return Section(unavailable=str(exc))


def collect_report(
    db: str | Path | duckdb.DuckDBPyConnection,
    model_dir: str | Path,
    *,
    as_of: str | datetime | None = None,
    compare_as_of: str | datetime | None = None,
    event_window: tuple[int, int] = EVENT_WINDOW,
    event_estimation: tuple[int, int] = EVENT_ESTIMATION,
    random_state: int = 0,
    assignments: pd.DataFrame | str | Path | None = None,
    previous: pd.DataFrame | str | Path | None = None,
) -> ReportData:
    """Run the analyses the report shows.

    Parameters
    ----------
    db : str, Path or duckdb connection
        The fills store.
    model_dir : str or Path
        A model saved by :func:`traderseg.segment.workflow.fit_segments`.
    as_of : str or datetime, optional
        Report cutoff; default the model's training cutoff.
    compare_as_of : str or datetime, optional
        Earlier cutoff for migration and drift (see the module notes for the default).
    event_window, event_estimation : tuple of int
        Event and estimation windows of the event study, in days around the event.
    random_state : int
        Seed of the map's sample.
    assignments : pandas.DataFrame, str or Path, optional
        Segments at the report cutoff to show instead of the model's predictions (a frame
        or Parquet file with ``account_id``, ``segment``, ``segment_name``); the overlays
        still come from the features. Accounts in it without fills before the cutoff are
        left out and counted in ``venue["assignments_left_out"]``.
    previous : pandas.DataFrame, str or Path, optional
        Earlier assignments to migrate from, instead of the model's predictions at the
        comparison cutoff.

    Returns
    -------
    ReportData
        The gathered frames.

    Raises
    ------
    DataError
        The comparison cutoff is not before the report cutoff, or no account has fills
        before the report cutoff.
    """
    model, meta = load_model(model_dir)
    names = {int(s["id"]): str(s["name"]) for s in meta.get("segments", [])}
    cutoff = parse_as_of(as_of if as_of is not None else trained_as_of(meta))
    trained = parse_as_of(meta["as_of"]) if isinstance(meta.get("as_of"), str) else None
    if compare_as_of is not None:
        earlier = parse_as_of(compare_as_of)
    else:
        earlier = (trained if trained is not None and trained < cutoff
                   else cutoff - timedelta(days=COMPARE_DAYS))
    if earlier >= cutoff:
        raise DataError(f"the comparison cutoff {earlier.isoformat()} is not before the report "
                        f"cutoff {cutoff.isoformat()}")
    windows = tuple(meta.get("windows") or DEFAULT_WINDOWS)
    con, owned = store_connection(db)
    try:
        feats = compute_features(con, cutoff, windows)
        if feats.empty:
            raise DataError(f"no account has fills before {cutoff.isoformat()}")
        assign = assignments_frame(model, feats, names)
        left_out = 0
        if assignments is not None:
            assign, left_out = _replace_segments(assign, read_assignments(assignments))
        prof = profitability(con, assign, end=cutoff, freq="week")
        venue = _venue(con, prof, cutoff, len(feats))
        venue["assignments_left_out"] = left_out
        segments = _segments(meta, assign, prof)
        sections = {
            "selection": Section({"table": model.selection_.copy()}) if len(model.selection_)
            else Section(unavailable="the number of segments was fixed, not chosen"),
            "profile": _attempt("profile", lambda: _profile(model, feats, assign)),
            "map": _attempt("map", lambda: _map(model, feats, assign, random_state)),
            "options": _attempt("options",
                                lambda: _options(model, feats, assign, random_state)),
            "overlays": Section({"assignments": assign}),
            "revenue": Section({"by_period": prof.by_period}),
            "option_fills": _attempt("option_fills", lambda: _option_fills(con, assign, cutoff)),
            "leverage": _attempt("leverage", lambda: _leverage(model, feats, assign)),
            "concentration": _attempt("concentration",
                                      lambda: _concentration(con, assign, cutoff, names)),
            "clv": _clv(con, assign, cutoff),
        }
        earlier_parts = _attempt(
            "comparison", lambda: _earlier(con, model, names, windows, earlier))
        for key, build in (
            ("migration", lambda: _migration(earlier_parts, assign, earlier, cutoff,
                                             previous)),
            ("drift", lambda: _drift(earlier_parts, model, feats, assign)),
        ):
            sections[key] = _attempt(key, build)
        sections["events"] = _attempt(
            "events", lambda: _events(con, assign, venue, cutoff, event_window,
                                      event_estimation))
        sections["bias"] = _attempt("bias", lambda: _bias(con, assign))
        sections["fairness"] = _attempt("fairness", lambda: _fairness(con, model_dir, cutoff))
    finally:
        if owned:
            con.close()
    return ReportData(cutoff, earlier, Path(model_dir), meta, names, venue, segments, assign,
                      feats, sections)


def _venue(con: duckdb.DuckDBPyConnection, prof: ProfitabilityReport, cutoff: datetime,
           accounts: int) -> dict[str, Any]:
    first, _ = fill_bounds(con)
    last = query_frame(con, "SELECT MAX(ts) AS last FROM fills WHERE ts < $c",
                       {"c": cutoff})["last"].iloc[0]
    overall = prof.overall
    return {
        "accounts": accounts, "fills": int(overall["fills"]),
        "first_fill": pd.Timestamp(first), "last_fill": pd.Timestamp(last),
        "notional_usd": float(overall["notional_usd"]),
        "revenue_usd": float(prof.venue_revenue), "pnl_usd": float(overall["pnl_usd"]),
        "top10_share": float(overall["top10_share"]), "gini": float(overall["gini"]),
    }


def _segments(meta: dict[str, Any], assign: pd.DataFrame,
              prof: ProfitabilityReport) -> pd.DataFrame:
    described = {int(s["id"]): s for s in meta.get("segments", [])}
    by = prof.by_segment.dropna(subset=["segment"]).copy()
    by["segment"] = by["segment"].astype("int64")
    sizes = assign["segment"].value_counts()
    rows = []
    for r in by.to_dict("records"):
        sid = int(r["segment"])
        rows.append({
            "segment": sid, "name": r["segment_name"],
            "description": str(described.get(sid, {}).get("description", "")),
            "size_share": float(sizes.get(sid, 0) / len(assign)),
            **{k: r[k] for k in ("accounts", "fills", "notional_usd", "revenue_usd",
                                 "revenue_share", "revenue_per_account", "revenue_bps",
                                 "pnl_usd", "losing_share", "top10_share", "gini")},
        })
    out = pd.DataFrame(rows)
    gross = out["pnl_usd"].abs().sum()
    # PnL has both signs: each segment's share of the gross |PnL|, keeping its sign
    out["pnl_share"] = out["pnl_usd"] / gross if gross > 0 else np.nan
    return out.sort_values(["accounts", "segment"], ascending=[False, True],
                           ignore_index=True)


def _model_window(model: TraderSegmenter) -> str:
    return split_column(str(model.feature_names_in_[0]))[1]


def _profile(model: TraderSegmenter, feats: pd.DataFrame,
             assign: pd.DataFrame) -> dict[str, Any]:
    cols = [str(c) for c in model.feature_names_in_]
    z, med = profile_zscores(feats[cols], assign["segment"].to_numpy())
    return {"z": z, "median": med, "window": _model_window(model)}


def _map(model: TraderSegmenter, feats: pd.DataFrame, assign: pd.DataFrame,
         random_state: int) -> dict[str, Any]:
    Z = model.preprocessor_.transform(feats[list(model.feature_names_in_)])
    if Z.shape[0] < 3:
        raise DataError(f"a map needs at least 3 accounts, got {Z.shape[0]}")
    pca = PCA(n_components=2, random_state=random_state).fit(Z)
    rows = _sample(Z.shape[0], random_state)
    xy = pca.transform(Z[rows])
    points = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1],
                           "segment": assign["segment"].to_numpy()[rows]})
    centres = pca.transform(model.cluster_centers_)
    ids = [int(i) for i in model.segment_ids_]
    return {"points": points, "n_accounts": int(Z.shape[0]),
            "centres": pd.DataFrame({"segment": ids, "x": centres[:, 0], "y": centres[:, 1]}),
            "explained": [float(v) for v in pca.explained_variance_ratio_]}


def _sample(n: int, random_state: int) -> np.ndarray:
    """Row positions to draw: all of them, or a seeded sample of :data:`MAP_POINTS`."""
    rows = np.arange(n)
    if n > MAP_POINTS:
        rows = np.sort(np.random.default_rng(random_state).choice(rows, MAP_POINTS,
                                                                   replace=False))
    return rows


def _options(model: TraderSegmenter, feats: pd.DataFrame, assign: pd.DataFrame,
             random_state: int) -> dict[str, Any]:
    w = _model_window(model)
    share = feats[f"option_share__{w}"].to_numpy(float)
    seg = assign["segment"].to_numpy()
    has = share > 0
    if not has.any():
        raise DataError("no account traded options before the report cutoff")
    cols = {m: f"{m}__{w}" for m in OPTION_METRICS if f"{m}__{w}" in feats.columns}
    opt = feats.loc[has, list(cols.values())].rename(columns={v: k for k, v in cols.items()})
    opt["segment"] = seg[has]
    per = opt.groupby("segment").median()
    per.insert(0, "option_accounts", opt.groupby("segment").size())
    per.insert(1, "option_share", pd.Series(share, index=seg).groupby(level=0).mean())
    shown = opt.iloc[_sample(len(opt), random_state)].reset_index(drop=True)
    return {"per_segment": per, "accounts": shown, "n_option_accounts": len(opt), "window": w}


def _earlier(con: duckdb.DuckDBPyConnection, model: TraderSegmenter, names: dict[int, str],
             windows: tuple[str, ...], earlier: datetime) -> dict[str, Any]:
    first, _ = fill_bounds(con)
    if pd.Timestamp(earlier) <= first:
        raise DataError(f"the comparison cutoff {earlier.date()} is not after the first fill "
                        f"({first.date()}): nothing to compare with")
    feats = compute_features(con, earlier, windows)
    return {"features": feats, "assignments": assignments_frame(model, feats, names)}


def _need(section: Section) -> dict[str, Any]:
    if section.unavailable is not None:
        raise DataError(section.unavailable)
    return section.data


def _migration(earlier: Section, assign: pd.DataFrame, start: datetime, end: datetime,
               previous: pd.DataFrame | str | Path | None) -> dict[str, Any]:
    before = (read_assignments(previous) if previous is not None
              else _need(earlier)["assignments"])
    rep: MigrationReport = migration([(start.date(), before), (end.date(), assign)])
    return {"step": rep.steps[0], "summary": rep.summary, "flows": rep.flows,
            "from_file": previous is not None}


def _drift(earlier: Section, model: TraderSegmenter, feats: pd.DataFrame,
           assign: pd.DataFrame) -> dict[str, Any]:
    part = _need(earlier)
    cols = [str(c) for c in model.feature_names_in_]
    table = feature_drift(part["features"], feats, cols)
    before = part["assignments"]["segment"]
    seg_psi = categorical_psi(before, assign["segment"], name="segment")
    shares = pd.DataFrame({
        "reference": before.value_counts(normalize=True),
        "current": assign["segment"].value_counts(normalize=True),
    }).fillna(0.0).sort_index()
    return {"features": table, "segment_psi": seg_psi, "segment_level": drift_level(seg_psi),
            "segment_shares": shares,
            "membership": (float(part["assignments"]["membership"].mean()),
                           float(assign["membership"].mean()))}


def _events(con: duckdb.DuckDBPyConnection, assign: pd.DataFrame, venue: dict[str, Any],
            cutoff: datetime, window: tuple[int, int],
            estimation: tuple[int, int]) -> dict[str, Any]:
    traded = query_frame(con, "SELECT DISTINCT upper(underlying) AS u FROM fills")["u"]
    market = load_market()
    market = market[market["underlying"].isin(set(traded))]
    if market.empty:
        raise DataError(f"the real market series cover none of the underlyings traded "
                        f"({', '.join(sorted(traded))})")
    events = detect_events(market)
    first = venue["first_fill"].floor("D")
    last = venue["last_fill"].floor("D")
    inside = events[(events["ts"] >= first) & (events["ts"] <= last)].reset_index(drop=True)
    period = market[(market["ts"] >= first) & (market["ts"] <= last)]
    out: dict[str, Any] = {"events": inside, "market": period, "study": None,
                           "study_unavailable": None}
    if inside.empty:
        out["study_unavailable"] = (f"no market event was detected between {first.date()} and "
                                    f"{last.date()}")
        return out
    activity = segment_activity(con, assign[["account_id", "segment"]], "1D")
    activity = activity[activity["ts"] < pd.Timestamp(cutoff)]
    try:
        out["study"] = event_study(activity, inside, window, estimation)
    except DataError as exc:
        out["study_unavailable"] = str(exc)
    return out


def _bias(con: duckdb.DuckDBPyConnection, assign: pd.DataFrame) -> dict[str, Any]:
    accounts = query_frame(con, "SELECT * FROM accounts")
    if accounts.empty:
        raise DataError("the store's accounts table is empty: no attributes to audit")
    audit: BiasAudit = bias_audit(assign, accounts)
    return {"audit": audit}


def _fairness(con: duckdb.DuckDBPyConnection, model_dir: str | Path,
              cutoff: datetime) -> dict[str, Any]:
    """Audit the fairness of the controls the store holds (the policy's decisions)."""
    from traderseg.compliance.fairness import fairness_audit
    from traderseg.growth.inputs import decision_inputs, read_store_controls

    if read_store_controls(con).empty:
        raise DataError("the store holds no controls (no policy decision yet) to audit")
    inputs = decision_inputs(con, model_dir, cutoff)
    return {"audit": fairness_audit(inputs.frame), "policy": inputs.policy_version}


def _replace_segments(computed: pd.DataFrame, given: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Put the given segments over the computed overlays; count the accounts left out."""
    keep = computed.drop(columns=["segment", "segment_name"])
    out = keep.merge(given[["account_id", "segment", "segment_name"]], on="account_id",
                     how="inner")
    left_out = len(given) - len(out)
    if left_out:
        logger.warning("%d account(s) of the assignments have no fills before the report "
                       "cutoff; left out", left_out)
    if out.empty:
        raise DataError("none of the accounts in the assignments has fills before the "
                        "report cutoff")
    return out, left_out


_OPTION_FILLS_SQL = """
SELECT a.segment,
       -- a |delta| on a bin edge starts that bin (0.15 / 0.05 is 2.9999... in floats)
       LEAST(FLOOR(ABS(f.delta) / $bin + 1e-9), $top) * $bin AS bin_low,
       COUNT(*) AS fills
FROM fills f JOIN asg a ON f.account_id = a.account_id
WHERE f.kind = 'option' AND f.ts < $cutoff AND f.delta IS NOT NULL
GROUP BY ALL ORDER BY ALL
"""
_PREMIUM_SQL = """
SELECT a.segment,
       SUM(CASE WHEN f.side = 'buy' THEN f.qty * f.price ELSE 0 END) AS bought_usd,
       SUM(CASE WHEN f.side = 'sell' THEN f.qty * f.price ELSE 0 END) AS written_usd,
       COUNT(*) AS opening_fills
FROM fills f JOIN asg a ON f.account_id = a.account_id
WHERE f.kind = 'option' AND f.ts < $cutoff AND COALESCE(f.position_effect, 'open') = 'open'
GROUP BY ALL ORDER BY ALL
"""


def _with_assignments(con: duckdb.DuckDBPyConnection, assign: pd.DataFrame, sql: str,
                      params: dict[str, Any]) -> pd.DataFrame:
    asg = assign[["account_id", "segment"]]  # noqa: F841  (read by DuckDB by name)
    cur = con.cursor()
    try:
        cur.register("asg", asg)
        return cur.execute(sql, params).df()
    finally:
        cur.close()


def _option_fills(con: duckdb.DuckDBPyConnection, assign: pd.DataFrame,
                  cutoff: datetime) -> dict[str, Any]:
    """|delta| histogram of option fills and premium bought vs written, per segment.

    Premium is ``qty * price`` (USD per contract) of opening fills (all option fills when
    the source carries no ``position_effect``): bought on buys, written on sells.
    """
    top = int(round(1.0 / DELTA_BIN)) - 1  # |delta| = 1 falls in the last bin
    hist = _with_assignments(con, assign, _OPTION_FILLS_SQL,
                             {"bin": DELTA_BIN, "top": top, "cutoff": cutoff})
    premium = _with_assignments(con, assign, _PREMIUM_SQL, {"cutoff": cutoff})
    if premium.empty:
        raise DataError("no option fill before the report cutoff")
    hist["bin_low"] = hist["bin_low"].astype(float).round(6)
    for frame in (hist, premium):
        frame["segment"] = frame["segment"].astype("int64")
    premium = premium.sort_values("segment", ignore_index=True)
    return {"delta_hist": hist, "premium": premium}


def _leverage(model: TraderSegmenter, feats: pd.DataFrame,
              assign: pd.DataFrame) -> dict[str, Any]:
    """Leverage quantiles and share of accounts liquidated, over accounts where known."""
    w = _model_window(model)
    lev_col, liq_col = f"leverage_mean__{w}", f"liquidation_count__{w}"
    if lev_col not in feats.columns or liq_col not in feats.columns:
        raise DataError(f"the features have no {lev_col} or {liq_col}")
    frame = pd.DataFrame({"segment": assign["segment"].to_numpy(),
                          "leverage": feats[lev_col].to_numpy(float),
                          "liquidations": feats[liq_col].to_numpy(float)})
    if frame["leverage"].notna().sum() == 0 and frame["liquidations"].notna().sum() == 0:
        raise DataError("the source carries neither leverage nor a liquidation flag")
    g = frame.groupby("segment")
    known_liq = g["liquidations"].count()
    table = pd.DataFrame({
        "leverage_median": g["leverage"].median(),
        "leverage_p90": g["leverage"].quantile(0.9),
        "leverage_known": g["leverage"].count(),
        "liquidated_share": g["liquidations"].apply(lambda s: float((s.dropna() > 0).mean())
                                                    if s.notna().any() else np.nan),
        "liquidations": g["liquidations"].sum(min_count=1).fillna(0).astype("int64"),
        "liquidation_known": known_liq,
    }).reset_index()
    table["segment"] = table["segment"].astype("int64")
    return {"table": table, "window": w}


_REVENUE_SQL = """
SELECT account_id, SUM(fee_usd) AS revenue_usd
FROM fills WHERE ts < $cutoff GROUP BY account_id
"""


def _concentration(con: duckdb.DuckDBPyConnection, assign: pd.DataFrame, cutoff: datetime,
                   names: dict[int, str]) -> dict[str, Any]:
    """Lorenz curves and Gini of revenue per account, for the venue and each segment."""
    rev = query_frame(con, _REVENUE_SQL, {"cutoff": cutoff})
    rev["account_id"] = rev["account_id"].astype(str)
    rev = rev.merge(assign[["account_id", "segment"]], on="account_id", how="left")
    curves, ginis = [], {}
    groups: list[tuple[str, pd.Series]] = [("venue", rev["revenue_usd"])]
    for sid, g in rev.dropna(subset=["segment"]).groupby("segment"):
        key = int(float(str(sid)))
        groups.append((f"{key} · {names.get(key, key)}", g["revenue_usd"]))
    for label, values in groups:
        curves.append(lorenz_curve(values.to_numpy(float), points=LORENZ_POINTS)
                      .assign(group=label))
        ginis[label] = gini(values.to_numpy(float))
    pos = np.sort(np.clip(rev["revenue_usd"].to_numpy(float), 0, None))[::-1]
    top = max(1, int(np.ceil(0.1 * len(pos))))
    return {"curves": pd.concat(curves, ignore_index=True), "gini": ginis,
            "top10_share": float(pos[:top].sum() / pos.sum()) if pos.sum() > 0 else np.nan,
            "accounts": len(rev)}


CLV_HORIZON_DAYS = 90.0


def _clv(con: duckdb.DuckDBPyConnection, assign: pd.DataFrame, cutoff: datetime) -> Section:
    """Lifetime value and churn probability per segment, or why they cannot be had.

    The numerical fits can fail on odd data in ways other than a domain error (a
    singular Hessian, an overflow): the section then says so and the report goes on.
    """
    try:
        res = venue_clv(con, cutoff, horizon_days=CLV_HORIZON_DAYS,
                        assignments=assign[["account_id", "segment"]])
    except (TradersegError, ValueError, FloatingPointError, np.linalg.LinAlgError) as exc:
        logger.warning("report section clv unavailable: %s", exc)
        return Section(unavailable=f"the lifetime-value models could not be fitted on "
                       f"this data ({exc})")
    seg = res.segments
    if seg is None:  # only without assignments, which are always given here
        return Section(unavailable="no segments to summarise the lifetime value by")
    table = seg.reset_index().rename(columns={"index": "segment"})
    table["churn_probability"] = 1.0 - table["mean_p_alive"]
    order = pd.to_numeric(table["segment"], errors="coerce")
    table = table.assign(_o=order.fillna(1e9)).sort_values("_o").drop(columns="_o")
    return Section({"table": table.reset_index(drop=True), "horizon_days": res.horizon_days,
                    "discount": res.discount_rate_annual, "accounts": len(res.accounts),
                    "total_clv": float(res.accounts["clv"].sum())})
