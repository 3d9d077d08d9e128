"""Turn the collected report data into one self-contained HTML file.

Charts are Plotly figures (:mod:`traderseg.report.charts`) serialised as JSON into the
page, drawn by plotly.js, which is inlined once; nothing else is loaded, so the file
opens the same offline, from a mail attachment or a file share, and makes no request.
Each chart has a short summary above it with its headline number. All text from the data
(segment names, descriptions, groups) is escaped: by the template in the page, by the
chart functions inside the figures, and ``</`` never appears raw inside a script block.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

import jinja2
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from markupsafe import Markup
from plotly.offline import get_plotlyjs

from traderseg import __version__
from traderseg.analysis.drift import PSI_MODERATE, PSI_SIGNIFICANT
from traderseg.analysis.migration import RISK_THRESHOLD
from traderseg.features.compute import parse_as_of
from traderseg.report import charts
from traderseg.report.collect import ReportData, Section
from traderseg.segment.overlays import LIFECYCLE_STAGES, VALUE_TIERS


def figure_json(fig: go.Figure) -> Markup:
    """Serialise a figure to JSON that is safe inside an HTML ``<script>`` block."""
    text = fig.to_json(validate=False, pretty=False, remove_uids=True)
    # inside <script>, only "</" can end the block early: escape it (and the comment
    # openers that change how the HTML parser reads the block)
    text = text.replace("</", "<\\/").replace("<!--", "<\\u0021--")
    return Markup(text)


@cache
def plotly_js() -> Markup:
    """Return the plotly.js bundle shipped with the plotly package, for inlining."""
    return Markup(get_plotlyjs())


@dataclass
class Figureish:
    """One chart of the page: its anchor, the summary above it and the figure's JSON."""

    key: str
    summary: str
    json: Markup


def fmt(value: Any, kind: str = "num") -> str:
    """Format a cell: ``num``, ``int``, ``pct``, ``usd``, ``bps``, ``p`` or ``text``.

    Examples
    --------
    >>> fmt(0.1234, "pct"), fmt(1234567.0, "usd"), fmt(float("nan"))
    ('12.3%', '1.23M', '–')
    """
    if value is None or (isinstance(value, float | np.floating) and not np.isfinite(value)):
        return "–"
    if value is pd.NA or value is pd.NaT:
        return "–"
    if kind == "text":
        return str(value)
    x = float(value)
    if kind == "int":
        return f"{int(round(x)):,}"
    if kind == "pct":
        return f"{100 * x:.1f}%"
    if kind == "p":
        return "<0.001" if x < 0.001 else f"{x:.3f}"
    if kind == "usd":
        a = abs(x)
        for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
            if a >= div:
                return f"{x / div:.2f}{suffix}"
        return f"{x:.2f}"
    if kind == "bps":
        return f"{x:.2f}"
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:,.0f}"


def table(frame: pd.DataFrame, columns: Sequence[tuple[str, str, str]]) -> dict[str, Any]:
    """Lay out a frame for the template: headers, and rows of formatted cells.

    Parameters
    ----------
    frame : pandas.DataFrame
        The data.
    columns : sequence of (column, header, kind)
        Which columns, their header and their :func:`fmt` kind.

    Returns
    -------
    dict
        ``{"headers": [...], "rows": [[(text, is_number), ...], ...]}``.
    """
    heads = [h for _, h, _ in columns]
    rows = [[(fmt(r[c], k), k != "text") for c, _, k in columns]
            for r in frame.to_dict("records")]
    return {"headers": heads, "rows": rows}


def _seg_label(names: Mapping[int, str]) -> Callable[[Any], str]:
    """Label a segment id ("3 · name"); a row read back as a float (3.0) is still id 3."""
    def label(s: Any) -> str:
        try:
            number = float(str(s))
        except ValueError:
            return str(s)
        if not number.is_integer():
            return str(s)
        return f"{int(number)} · {names.get(int(number), int(number))}"
    return label


Adder = Callable[[str, str, Callable[[], go.Figure]], None]
TIER_NAMES = [name for name, _ in VALUE_TIERS] + ["bronze"]


def build_context(data: ReportData, *, title: str | None = None) -> dict[str, Any]:
    """Everything the template needs, charts built.

    Parameters
    ----------
    data : ReportData
        Output of :func:`traderseg.report.collect.collect_report`.
    title : str, optional
        Page title.

    Returns
    -------
    dict
        Template context.
    """
    names = data.names
    colours = charts.segment_colours(sorted(names))
    label = _seg_label(names)
    s = data.sections
    ctx: dict[str, Any] = {
        "title": title or f"Trader segments as of {data.as_of:%Y-%m-%d}",
        "as_of": f"{data.as_of:%Y-%m-%d %H:%M} UTC",
        "compare_as_of": f"{data.compare_as_of:%Y-%m-%d %H:%M} UTC",
        "trained_as_of": f"{parse_as_of(data.meta['as_of']):%Y-%m-%d %H:%M} UTC",
        "model": {"dir": str(data.model_dir), "method": data.meta.get("method"),
                  "k": data.meta.get("n_segments"),
                  "catalog": data.meta.get("catalog_version"),
                  "columns": len(data.meta.get("feature_columns", []))},
        "version": __version__,
        "venue": data.venue, "fmt": fmt,
        "unavailable": {k: v.unavailable for k, v in s.items() if v.unavailable},
        "figures": {}, "tables": {}, "notes": {}, "plotly_js": plotly_js(),
        "sampled": [],
    }
    figs: dict[str, Figureish] = ctx["figures"]
    tabs: dict[str, Any] = ctx["tables"]
    notes: dict[str, Any] = ctx["notes"]
    seg = data.segments.assign(label=data.segments["segment"].map(label))

    def add(key: str, summary: str, draw: Callable[[], go.Figure]) -> None:
        figs[key] = Figureish(key, summary, figure_json(draw()))

    top = data.segments.sort_values("revenue_share", ascending=False).iloc[0]
    add("fig-sizes", f"{len(data.segments)} segments over {fmt(data.venue['accounts'], 'int')} "
        f"accounts. The largest source of revenue, {label(top['segment'])}, holds "
        f"{fmt(top['size_share'], 'pct')} of the accounts and pays "
        f"{fmt(top['revenue_share'], 'pct')} of the net fees; the right panel is each "
        "segment's share of the traders' gross |PnL|, signed (losses to the left).",
        lambda: charts.segment_sizes(data.segments, names))
    tabs["segments"] = table(seg, [
        ("label", "segment", "text"), ("accounts", "accounts", "int"),
        ("size_share", "share", "pct"), ("revenue_usd", "revenue USD", "usd"),
        ("revenue_share", "revenue share", "pct"),
        ("revenue_per_account", "revenue / account", "usd"),
        ("revenue_bps", "revenue bps", "bps"), ("pnl_usd", "trader PnL USD", "usd"),
        ("pnl_share", "PnL share", "pct"),
        ("losing_share", "losing accounts", "pct"), ("gini", "Gini", "num")])
    notes["descriptions"] = [(label(r["segment"]), r["description"])
                             for r in data.segments.to_dict("records")]
    by_period = s["revenue"].data.get("by_period")
    if by_period is not None and len(by_period):
        weeks = by_period.groupby("period")["revenue_usd"].sum()
        add("fig-weekly", f"Net fee revenue per week, stacked by segment (rebates below zero): "
            f"{fmt(float(weeks.median()), 'usd')} USD in the median week of {len(weeks)}.",
            lambda: charts.revenue_by_week(by_period, names, colours))
    if not s["selection"].unavailable:
        sel = s["selection"].data["table"]
        chosen = sel[sel["chosen"].astype(bool)]
        k = int(chosen["k"].iloc[0]) if len(chosen) else data.meta.get("n_segments")
        add("fig-k", f"k = {k} was chosen from {len(sel)} candidates on silhouette "
            "(separation) and bootstrap stability.", lambda: charts.k_selection(sel))
        tabs["selection"] = table(sel.assign(chosen=sel["chosen"].map({True: "✔", False: ""})), [
            ("k", "k", "int"), ("silhouette", "silhouette", "num"), ("bic", "BIC", "num"),
            ("stability", "stability", "num"), ("score", "score", "num"),
            ("chosen", "chosen", "text")])
    _profile_and_map(data, names, colours, add, notes, ctx["sampled"])
    _options(data, names, colours, add, tabs, label, ctx["sampled"])
    _risk(data, names, colours, add)
    _concentration(data, add)
    _migration(s["migration"], data, add, tabs, notes)
    _events(s["events"], names, colours, add, tabs, notes)
    _clv(s["clv"], names, colours, add, tabs, label)
    _drift(data, s["drift"], names, add, tabs, notes)
    _bias(s["bias"], names, colours, add, tabs, notes)
    _fairness(s["fairness"], tabs, notes)
    return ctx


def _profile_and_map(data: ReportData, names: Mapping[int, str], colours: Mapping[int, str],
                     add: Adder, notes: dict[str, Any], sampled: list[str]) -> None:
    prof, mp = data.sections["profile"], data.sections["map"]
    if not prof.unavailable:
        z, med = prof.data["z"], prof.data["median"]
        flat = z.abs().stack()
        (sid, col), val = flat.idxmax(), float(flat.max())
        add("fig-profile", f"Each segment's median on the {z.shape[1]} features the model "
            "reads, standardised against the population (z-score; red higher, blue lower; "
            "the hover gives the median in its unit). The most distinctive cell: "
            f"{charts.feature_label(str(col))} in segment {int(sid)}, z = "
            f"{float(z.loc[sid, col]):+.1f} (|z| {val:.1f}).",
            lambda: charts.profile_heatmap(z, med, names))
    if not mp.unavailable:
        d = mp.data
        shown, total = len(d["points"]), d["n_accounts"]
        notes["map"] = {"shown": shown, "accounts": total, "explained": sum(d["explained"])}
        if shown < total:
            sampled.append(f"map of accounts: {shown:,} of {total:,} accounts (seeded sample)")
        add("fig-map", f"{fmt(shown, 'int')} of {fmt(total, 'int')} accounts"
            f"{' (a seeded sample)' if shown < total else ''} on the first two principal "
            "components (scikit-learn PCA) of the space the segments were fitted in; they hold "
            f"{fmt(sum(d['explained']), 'pct')} of the variance. Crosses are segment centres.",
            lambda: charts.account_map(d["points"], d["centres"], d["explained"], names,
                                       colours))


def _options(data: ReportData, names: Mapping[int, str], colours: Mapping[int, str],
             add: Adder, tabs: dict[str, Any], label: Callable[[Any], str],
             sampled: list[str]) -> None:
    section, fills = data.sections["options"], data.sections["option_fills"]
    if not section.unavailable:
        per, accts = section.data["per_segment"], section.data["accounts"]
        n_all = section.data["n_option_accounts"]
        if len(accts) < n_all:
            sampled.append(f"moneyness vs tenor: {len(accts):,} of {n_all:,} option traders "
                           "(seeded sample)")
        shortest = per["mean_days_to_expiry"].idxmin() if "mean_days_to_expiry" in per else None
        add("fig-tenor", f"{fmt(len(accts), 'int')} of the {fmt(n_all, 'int')} option traders"
            f"{' (a seeded sample)' if len(accts) < n_all else ''}: how far from the money "
            "and how far from expiry they trade. Shortest-dated: "
            + (f"{label(shortest)}, median tenor "
               f"{fmt(float(per.loc[shortest, 'mean_days_to_expiry']))} days."
               if shortest is not None else "–"),
            lambda: charts.option_moneyness_tenor(accts, names, colours))
        frame = per.reset_index().assign(label=lambda f: f["segment"].map(label))
        tabs["options"] = table(frame, [
            ("label", "segment", "text"), ("option_accounts", "option traders", "int"),
            ("option_share", "option share", "pct"), ("call_share", "calls", "pct"),
            ("long_premium_share", "premium bought", "pct"),
            ("put_buy_share", "puts bought", "pct"), ("deep_otm_share", "deep OTM", "pct"),
            ("short_dated_share", "≤3 days", "pct"), ("straddle_share", "straddles", "pct"),
            ("mean_abs_delta", "mean |Δ|", "num"),
            ("mean_days_to_expiry", "mean tenor (days)", "num")])
    if not fills.unavailable:
        hist, prem = fills.data["delta_hist"], fills.data["premium"]
        total = int(hist["fills"].sum())
        deep = float(hist.loc[hist["bin_low"] < 0.15 - 1e-9, "fills"].sum() / total) \
            if total else float("nan")
        add("fig-delta", f"|delta| of all {fmt(total, 'int')} option fills, as a share of "
            f"each segment's: {fmt(deep, 'pct')} of them are deep out of the money "
            "(|Δ| < 0.15).", lambda: charts.delta_distribution(hist, names, colours))
        bought, written = float(prem["bought_usd"].sum()), float(prem["written_usd"].sum())
        writer = prem.sort_values("written_usd", ascending=False).iloc[0]
        add("fig-premium", f"Option premium on opening fills: {fmt(bought, 'usd')} USD bought, "
            f"{fmt(written, 'usd')} USD written; the largest writer is "
            f"{label(int(writer['segment']))} ({fmt(float(writer['written_usd']), 'usd')} USD).",
            lambda: charts.premium_flow(prem, names))


def _risk(data: ReportData, names: Mapping[int, str], colours: Mapping[int, str],
          add: Adder) -> None:
    lev = data.sections["leverage"]
    if not lev.unavailable:
        t = lev.data["table"]
        hi = t.sort_values("leverage_median", ascending=False).iloc[0]
        liq = t.sort_values("liquidated_share", ascending=False).iloc[0]
        add("fig-leverage", f"Leverage ({lev.data['window']} window, accounts where the source "
            f"gives it) and liquidations per segment. Highest median leverage: "
            f"{charts.seg_label(hi['segment'], names)} at {float(hi['leverage_median']):.1f}x; "
            f"most often liquidated: {charts.seg_label(liq['segment'], names)}, "
            f"{fmt(float(liq['liquidated_share']), 'pct')} of its accounts.",
            lambda: charts.leverage_liquidations(t, names, colours))
    ov = data.sections["overlays"].data["assignments"]
    high = float((ov["risk_score"] >= RISK_THRESHOLD).mean())
    add("fig-risk", f"Risk score (0-100) of each segment's accounts: box = middle half, line "
        f"= median, whiskers = 5th to 95th percentile; {fmt(high, 'pct')} of all accounts are "
        f"at or above {RISK_THRESHOLD:g}.",
        lambda: charts.risk_by_segment(ov, names, colours, RISK_THRESHOLD))
    stages = ov["lifecycle_stage"].astype(str).value_counts(normalize=True)
    add("fig-lifecycle", "Lifecycle stage of each segment's accounts; "
        f"{fmt(float(stages.get('active', 0.0)), 'pct')} of all accounts are active.",
        lambda: charts.overlay_mix(ov, "lifecycle_stage", LIFECYCLE_STAGES,
                                   charts.LIFECYCLE_COLOURS, names))
    add("fig-tiers", "Value tier of each segment's accounts (by rank of fee revenue: top 1% "
        "platinum, next 9% gold, next 40% silver).",
        lambda: charts.overlay_mix(ov, "value_tier", TIER_NAMES, charts.TIER_COLOURS, names))


def _concentration(data: ReportData, add: Adder) -> None:
    con = data.sections["concentration"]
    if con.unavailable:
        return
    d = con.data
    g = d["gini"]["venue"]
    add("fig-lorenz", f"How concentrated the venue's revenue is: the top 10% of the "
        f"{fmt(d['accounts'], 'int')} accounts pay {fmt(d['top10_share'], 'pct')} of the net "
        f"fees, Gini {g:.2f} (0 = equal, 1 = one account pays all; rebates count as 0). "
        "One curve per segment beside the venue's.",
        lambda: charts.lorenz(d["curves"], d["gini"]))


def _migration(section: Section, data: ReportData, add: Adder, tabs: dict[str, Any],
               notes: dict[str, Any]) -> None:
    if section.unavailable:
        return
    step = section.data["step"]
    summary = section.data["summary"].iloc[0]
    notes["migration"] = {k: summary[k] for k in ("accounts_start", "accounts_end", "entered",
                                                  "gone", "in_both", "stayed", "stability")}
    notes["migration"]["from_file"] = section.data["from_file"]
    labels = (f"{data.compare_as_of:%Y-%m-%d}", f"{data.as_of:%Y-%m-%d}")
    add("fig-migration", f"Where the accounts went between {labels[0]} and {labels[1]}: "
        f"{fmt(summary['stability'], 'pct')} of the {fmt(summary['in_both'], 'int')} accounts "
        "present at both kept their segment; 'new' accounts had no fills before the first "
        "date, 'gone' ones none before the second.",
        lambda: charts.migration_sankey(step.counts, labels))
    flows = section.data["flows"]
    tabs["flows"] = table(flows.assign(flow=flows["flow"].str.replace("_", " ")), [
        ("flow", "flow", "text"), ("accounts", "accounts", "int")])


def _events(section: Section, names: Mapping[int, str], colours: Mapping[int, str],
            add: Adder, tabs: dict[str, Any], notes: dict[str, Any]) -> None:
    if section.unavailable:
        return
    d = section.data
    ev = d["events"]
    if len(d["market"]):
        add("fig-market", f"Real daily prices over the venue's period with the {len(ev)} "
            "events detected (crashes and drawdowns ▼, rallies and vol spikes ▲).",
            lambda: charts.market_events(d["market"], ev))
    tabs["events"] = table(ev.assign(day=ev["ts"].dt.strftime("%Y-%m-%d"),
                                     kind=ev["kind"].str.replace("_", " ")), [
        ("day", "day", "text"), ("underlying", "underlying", "text"),
        ("kind", "kind", "text"), ("description", "what happened", "text")])
    study = d["study"]
    notes["study_unavailable"] = d["study_unavailable"]
    if study is not None:
        a = study.attrs
        notes["study"] = {"events": a["n_events"], "excluded": a["n_excluded"],
                          "window": a["window"], "estimation": a["estimation"]}
        last = study[study["rel_day"] == study["rel_day"].max()]
        sig = last[(last["car_ci_low"] > 0) | (last["car_ci_high"] < 0)]
        add("fig-study", f"Cumulative abnormal activity (log notional against the segment's own "
            f"pre-event mean) over {a['n_events']} event(s), mean with its 95% band: "
            f"{len(sig)} of {len(last)} segments end the window with a band clear of zero.",
            lambda: charts.event_study(study, names, colours))
        last = last.assign(label=[charts.seg_label(s, {}) if not str(s).isdigit()
                                  else f"{s} · {names.get(int(s), s)}" for s in last["segment"]])
        tabs["study"] = table(last, [
            ("label", "segment", "text"), ("n_events", "events", "int"),
            ("car", "CAR", "num"), ("car_ci_low", "95% low", "num"),
            ("car_ci_high", "95% high", "num")])


def _clv(section: Section, names: Mapping[int, str], colours: Mapping[int, str], add: Adder,
         tabs: dict[str, Any], label: Callable[[Any], str]) -> None:
    if section.unavailable:
        return
    d = section.data
    t = d["table"]
    best = t.sort_values("mean_clv", ascending=False).iloc[0]
    add("fig-clv", f"Expected discounted net fees over the next {d['horizon_days']:.0f} days "
        f"(BG/NBD on active days, Gamma-Gamma on revenue per active day, "
        f"{fmt(d['discount'], 'pct')} a year): {fmt(d['total_clv'], 'usd')} USD for the "
        f"{fmt(d['accounts'], 'int')} active accounts; the most valuable account on average is "
        f"in {label(best['segment'])} ({fmt(float(best['mean_clv']), 'usd')} USD).",
        lambda: charts.clv_churn(t, names, colours))
    tabs["clv"] = table(t.assign(label=t["segment"].map(label)), [
        ("label", "segment", "text"), ("accounts", "accounts", "int"),
        ("mean_clv", "CLV / account USD", "usd"), ("clv", "CLV USD", "usd"),
        ("churn_probability", "churn probability", "pct"),
        ("rebate_earners", "rebate earners", "int")])


def _drift(data: ReportData, section: Section, names: Mapping[int, str], add: Adder,
           tabs: dict[str, Any], notes: dict[str, Any]) -> None:
    if section.unavailable:
        return
    d = section.data
    table_ = d["features"]
    counts = table_["level"].value_counts().to_dict()
    worst = table_.sort_values("psi", ascending=False).iloc[0]
    add("fig-drift", f"Population stability index of the {len(table_)} features the model "
        f"reads: {counts.get('significant', 0)} significant (≥ {PSI_SIGNIFICANT:g}), "
        f"{counts.get('moderate', 0)} moderate (≥ {PSI_MODERATE:g}); the largest is "
        f"{charts.feature_label(str(worst['column']))}, PSI {float(worst['psi']):.2f}.",
        lambda: charts.drift_bars(table_))
    labels = (f"{data.compare_as_of:%Y-%m-%d}", f"{data.as_of:%Y-%m-%d}")
    add("fig-shares", f"Share of accounts per segment at the two cutoffs: segment-mix PSI "
        f"{d['segment_psi']:.3f} ({d['segment_level']}).",
        lambda: charts.segment_shares(d["segment_shares"], names, labels))
    notes["drift"] = {
        "segment_psi": d["segment_psi"], "segment_level": d["segment_level"],
        "membership": d["membership"], "moderate": PSI_MODERATE,
        "significant": PSI_SIGNIFICANT, "counts": counts,
    }
    tabs["drift"] = table(table_.assign(label=table_["column"].map(charts.feature_label)), [
        ("label", "feature", "text"), ("psi", "PSI", "num"), ("level", "level", "text"),
        ("reference_median", f"median {labels[0]}", "num"),
        ("current_median", f"median {labels[1]}", "num"),
        ("current_missing", "missing now", "pct")])


def _bias(section: Section, names: Mapping[int, str], colours: Mapping[int, str],
          add: Adder, tabs: dict[str, Any], notes: dict[str, Any]) -> None:
    if section.unavailable:
        return
    audit = section.data["audit"]
    outcomes = [o.name for o in audit.outcomes]
    desc = {o.name: o.description for o in audit.outcomes}
    flagged = int(audit.disparity["flagged"].sum())
    add("fig-bias-rates", f"Share of each group receiving each outcome (faded: group too small "
        f"to test); {flagged} of {len(audit.disparity)} attribute/outcome pairs flagged.",
        lambda: charts.bias_rates(audit.rates, outcomes, desc))
    ids = {v: k for k, v in names.items()}
    strongest = audit.association.sort_values("cramers_v", ascending=False).iloc[0] \
        if len(audit.association) else None
    add("fig-bias-mix", "Segment mix of each group; the last bar of each panel is all "
        "accounts." + (f" Strongest association: {strongest['attribute']}, Cramér's V "
                       f"{float(strongest['cramers_v']):.2f}." if strongest is not None else ""),
        lambda: charts.bias_composition(audit.composition, ids, colours))
    tabs["association"] = table(audit.association, [
        ("attribute", "attribute", "text"), ("groups", "groups tested", "int"),
        ("accounts", "accounts", "int"), ("chi2", "chi²", "num"), ("dof", "dof", "int"),
        ("p_value", "p-value", "p"), ("cramers_v", "Cramér's V", "num")])
    dis = audit.disparity.assign(
        flag=audit.disparity["flagged"].map({True: "⚑ flagged", False: ""}),
        outcome=audit.disparity["outcome"].map(desc))
    tabs["disparity"] = table(dis, [
        ("attribute", "attribute", "text"), ("outcome", "outcome", "text"),
        ("lowest_group", "lowest group", "text"), ("lowest_rate", "rate", "pct"),
        ("highest_group", "highest group", "text"), ("highest_rate", "rate", "pct"),
        ("ratio", "ratio", "num"), ("p_value", "p-value", "p"), ("flag", "", "text")])
    notes["bias"] = {"flagged": flagged, "pairs": len(audit.disparity)}


def _fairness(section: Section, tabs: dict[str, Any], notes: dict[str, Any]) -> None:
    if section.unavailable:
        return
    d = section.data["audit"].disparity
    d = d[d["kind"] != "segment"].assign(
        flag=lambda x: x["flagged"].map({True: "⚑ flagged", False: ""}))
    tabs["fairness"] = table(d, [
        ("attribute", "attribute", "text"), ("description", "outcome", "text"),
        ("groups", "groups", "int"), ("lowest_group", "lowest group", "text"),
        ("highest_group", "highest group", "text"), ("ratio", "ratio", "num"),
        ("ratio_ci_high", "ratio, upper 95%", "num"),
        ("conditional_effect", "gap beyond behaviour", "pct"),
        ("conditional_p_holm", "p (Holm)", "p"), ("flag", "", "text")])
    notes["fairness"] = {"flagged": int(d["flagged"].sum()), "pairs": len(d),
                         "policy": section.data["policy"]}


_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("traderseg.report", "templates"),
    autoescape=jinja2.select_autoescape(default=True),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render_html(data: ReportData, *, title: str | None = None,
                generated_at: datetime | None = None) -> str:
    """Render the report page.

    Parameters
    ----------
    data : ReportData
        Output of :func:`traderseg.report.collect.collect_report`.
    title : str, optional
        Page title.
    generated_at : datetime, optional
        Time printed in the footer; ``None`` prints none (reproducible output).

    Returns
    -------
    str
        The HTML document.
    """
    ctx = build_context(data, title=title)
    ctx["generated_at"] = f"{generated_at:%Y-%m-%d %H:%M} UTC" if generated_at else None
    return _ENV.get_template("report.html.j2").render(**ctx)
