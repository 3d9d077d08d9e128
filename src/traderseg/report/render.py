"""Turn the collected report data into one self-contained HTML file.

Pictures are inline SVG (text stays text: searchable, selectable, crisp when zoomed;
dense scatter layers are embedded as PNG inside the SVG). Every id inside a picture is
renumbered under the picture's own id, so the pictures cannot capture each other's clip
paths or glyphs and the same data always gives the same file. The page loads nothing: no
script, font, style sheet or image from anywhere, so it opens the same offline, from a
mail attachment or a file share. All text from the data (segment names, descriptions,
groups) is escaped by the template.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import jinja2
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from markupsafe import Markup
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from traderseg import __version__
from traderseg.analysis.drift import PSI_MODERATE, PSI_SIGNIFICANT
from traderseg.analysis.migration import RISK_THRESHOLD
from traderseg.features.compute import parse_as_of
from traderseg.report import charts
from traderseg.report.collect import ReportData, Section
from traderseg.segment.overlays import LIFECYCLE_STAGES

_ID = re.compile(r'\bid="([^"]+)"')
_REF = re.compile(r'(url\(#|xlink:href="#|href="#)([^")]+)')


def svg_markup(fig: Figure, key: str) -> Markup:
    """Serialise a figure to inline SVG with every id prefixed by ``key``, and close it."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buf.getvalue()
    text = text[text.index("<svg"):]  # drop the XML prolog and doctype: invalid inside HTML
    # matplotlib hashes some ids from object reprs (memory addresses): number them instead,
    # in order of appearance, so the same figure always gives the same markup
    ids: dict[str, str] = {}
    for m in _ID.finditer(text):
        ids.setdefault(m.group(1), f"{key}-{len(ids)}")
    text = _ID.sub(lambda m: f'id="{ids[m.group(1)]}"', text)
    text = _REF.sub(lambda m: m.group(1) + ids.get(m.group(2), f"{key}-{m.group(2)}"), text)
    return Markup(text)


@dataclass
class Figureish:
    """One picture of the page: its anchor, caption and markup."""

    key: str
    caption: str
    svg: Markup


def _figure(key: str, caption: str, draw: Callable[[], Axes | Figure]) -> Figureish:
    with plt.rc_context(cast(Any, charts.STYLE)):
        made = draw()
        fig = made if isinstance(made, Figure) else made.figure
        return Figureish(key, caption, svg_markup(fig, key))  # type: ignore[arg-type]


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
    return lambda s: f"{int(s)} · {names.get(int(s), s)}"


def build_context(data: ReportData, *, title: str | None = None) -> dict[str, Any]:
    """Everything the template needs, pictures drawn.

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
        "figures": {}, "tables": {}, "notes": {},
    }
    figs: dict[str, Figureish] = ctx["figures"]
    tabs: dict[str, Any] = ctx["tables"]
    notes: dict[str, Any] = ctx["notes"]
    seg = data.segments.assign(label=data.segments["segment"].map(label))

    def add(key: str, caption: str, draw: Callable[[], Axes | Figure]) -> None:
        figs[key] = _figure(key, caption, draw)

    add("fig-sizes", "Share of accounts and share of net fee revenue per segment.",
        lambda: charts.segment_size_revenue(data.segments, colours))
    tabs["segments"] = table(seg, [
        ("label", "segment", "text"), ("accounts", "accounts", "int"),
        ("size_share", "share", "pct"), ("revenue_usd", "revenue USD", "usd"),
        ("revenue_share", "revenue share", "pct"),
        ("revenue_per_account", "revenue / account", "usd"),
        ("revenue_bps", "revenue bps", "bps"), ("pnl_usd", "trader PnL USD", "usd"),
        ("losing_share", "losing accounts", "pct"), ("gini", "Gini", "num")])
    notes["descriptions"] = [(label(r["segment"]), r["description"])
                             for r in data.segments.to_dict("records")]
    by_period = s["revenue"].data.get("by_period")
    if by_period is not None and len(by_period):
        add("fig-weekly", "Net fee revenue per week, by segment (rebates below zero).",
            lambda: charts.revenue_by_week(by_period, names, colours))
    if not s["selection"].unavailable:
        sel = s["selection"].data["table"]
        add("fig-k", "Evidence for the number of segments: silhouette (separation) and "
            "bootstrap stability of each candidate k.", lambda: charts.k_selection(sel))
        tabs["selection"] = table(sel.assign(chosen=sel["chosen"].map({True: "✔", False: ""})), [
            ("k", "k", "int"), ("silhouette", "silhouette", "num"), ("bic", "BIC", "num"),
            ("stability", "stability", "num"), ("score", "score", "num"),
            ("chosen", "chosen", "text")])
    _profile_and_map(data, names, colours, add, notes)
    _options(s["options"], names, colours, add, tabs, label)
    ov = s["overlays"].data["assignments"]
    add("fig-risk", "Risk score (0-100) of each segment's accounts: box = middle half, "
        "line = median, whiskers = 1.5 IQR.",
        lambda: charts.risk_by_segment(ov, names, colours, RISK_THRESHOLD))
    add("fig-lifecycle", "Lifecycle stage of each segment's accounts.",
        lambda: charts.overlay_mix(ov, "lifecycle_stage", LIFECYCLE_STAGES,
                                   charts.LIFECYCLE_COLOURS, names))
    add("fig-tiers", "Value tier of each segment's accounts (by rank of fee revenue).",
        lambda: charts.overlay_mix(ov, "value_tier", charts.TIER_NAMES, charts.TIER_COLOURS,
                                   names))
    _migration(s["migration"], add, tabs, notes)
    _events(s["events"], names, colours, add, tabs, notes)
    _drift(data, s["drift"], names, colours, add, tabs, notes)
    _bias(s["bias"], names, colours, add, tabs, notes)
    return ctx


Adder = Callable[[str, str, Callable[[], Axes | Figure]], None]


def _profile_and_map(data: ReportData, names: Mapping[int, str], colours: Mapping[int, str],
                     add: Adder, notes: dict[str, Any]) -> None:
    prof, mp = data.sections["profile"], data.sections["map"]
    if not prof.unavailable:
        z, med = prof.data["z"], prof.data["median"]
        add("fig-profile", "Profile of each segment: colour is how far its median sits from "
            "the population's (z-score of the transformed feature), the number is the median.",
            lambda: charts.profile_heatmap(z, med, names))
    if not mp.unavailable:
        d = mp.data
        notes["map"] = {"shown": len(d["points"]), "accounts": d["n_accounts"],
                        "explained": sum(d["explained"])}
        add("fig-map", "Accounts on the first two principal components of the space the "
            "segments were fitted in; numbered discs are the segment centres.",
            lambda: charts.account_map(d["points"], d["centres"], d["explained"], names,
                                       colours))


def _options(section: Section, names: Mapping[int, str], colours: Mapping[int, str],
             add: Adder, tabs: dict[str, Any], label: Callable[[Any], str]) -> None:
    if section.unavailable:
        return
    per, accts = section.data["per_segment"], section.data["accounts"]
    add("fig-options", "Options behaviour per segment: medians over the accounts that traded "
        "options.", lambda: charts.option_mix(per, names))
    n_all = section.data["n_option_accounts"]
    drawn = "Each option trader" if len(accts) == n_all else (
        f"{len(accts):,} of the {n_all:,} option traders (a seeded sample)")
    add("fig-tenor", f"{drawn}: mean |delta| against mean days to expiry; dot size grows "
        "with the share of premium bought.",
        lambda: charts.option_tenor_delta(accts, names, colours))
    frame = per.reset_index().assign(label=lambda f: f["segment"].map(label))
    tabs["options"] = table(frame, [
        ("label", "segment", "text"), ("option_accounts", "option traders", "int"),
        ("option_share", "option share", "pct"), ("call_share", "calls", "pct"),
        ("long_premium_share", "premium bought", "pct"), ("put_buy_share", "puts bought", "pct"),
        ("deep_otm_share", "deep OTM", "pct"), ("short_dated_share", "≤3 days", "pct"),
        ("straddle_share", "straddles", "pct"), ("mean_abs_delta", "mean |Δ|", "num"),
        ("mean_days_to_expiry", "mean tenor (days)", "num")])


def _migration(section: Section, add: Adder, tabs: dict[str, Any],
               notes: dict[str, Any]) -> None:
    if section.unavailable:
        return
    step = section.data["step"]
    add("fig-migration", "Where the accounts of each segment went: counts in the cells, "
        "colour = share of the row; 'new' accounts had no fills before the comparison "
        "cutoff, 'gone' ones none before the report cutoff.",
        lambda: charts.migration_heatmap(step.shares, step.counts))
    summary = section.data["summary"].iloc[0]
    notes["migration"] = {k: summary[k] for k in ("accounts_start", "accounts_end", "entered",
                                                  "gone", "in_both", "stayed", "stability")}
    flows = section.data["flows"]
    tabs["flows"] = table(flows.assign(flow=flows["flow"].str.replace("_", " ")), [
        ("flow", "flow", "text"), ("accounts", "accounts", "int")])


def _events(section: Section, names: Mapping[int, str], colours: Mapping[int, str],
            add: Adder, tabs: dict[str, Any], notes: dict[str, Any]) -> None:
    if section.unavailable:
        return
    d = section.data
    if len(d["market"]):
        add("fig-market", "Real daily prices over the venue's period, with the events "
            "detected (crashes and drawdowns ▼, rallies and vol spikes ▲).",
            lambda: charts.market_events(d["market"], d["events"]))
    ev = d["events"]
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
        add("fig-study", "Cumulative abnormal activity (log notional against the segment's "
            "own pre-event mean) from the start of the event window, mean over events with "
            "its 95% band.", lambda: charts.event_study_grid(study, names, colours))
        last = study[study["rel_day"] == study["rel_day"].max()]
        last = last.assign(label=[f"{s} · {names.get(int(s), s)}" if str(s).isdigit() else s
                                  for s in last["segment"]])
        tabs["study"] = table(last, [
            ("label", "segment", "text"), ("n_events", "events", "int"),
            ("car", "CAR", "num"), ("car_ci_low", "95% low", "num"),
            ("car_ci_high", "95% high", "num")])


def _drift(data: ReportData, section: Section, names: Mapping[int, str],
           colours: Mapping[int, str], add: Adder, tabs: dict[str, Any],
           notes: dict[str, Any]) -> None:
    if section.unavailable:
        return
    d = section.data
    table_ = d["features"]
    add("fig-drift", "Population stability index of each feature the model reads, between "
        "the comparison and the report cutoff.", lambda: charts.drift_bars(table_))
    labels = (f"{data.compare_as_of:%Y-%m-%d}", f"{data.as_of:%Y-%m-%d}")
    add("fig-shares", "Share of accounts per segment at the two cutoffs.",
        lambda: charts.segment_shares(d["segment_shares"], names, colours, labels))
    notes["drift"] = {
        "segment_psi": d["segment_psi"], "segment_level": d["segment_level"],
        "membership": d["membership"], "moderate": PSI_MODERATE,
        "significant": PSI_SIGNIFICANT,
        "counts": table_["level"].value_counts().to_dict(),
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
    add("fig-bias-rates", "Share of each group receiving each outcome (hatched: group too "
        "small to test).", lambda: charts.bias_rates(audit.rates, outcomes, desc))
    ids = {v: k for k, v in names.items()}
    add("fig-bias-mix", "Segment mix of each group; the last bar of each panel is all "
        "accounts.", lambda: charts.bias_composition(audit.composition, ids, colours))
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
    notes["bias"] = {"flagged": int(audit.disparity["flagged"].sum()),
                     "pairs": len(audit.disparity)}


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
