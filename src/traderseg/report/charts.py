"""The report's charts as Plotly figures, apart from the analyses that feed them.

Each function takes plain data frames (the outputs of :mod:`traderseg.report.collect`,
or of the analyses directly) and returns a :class:`plotly.graph_objects.Figure`; none
reads the store or writes files, so the report page and the dashboard draw the same
pictures. A segment keeps one colour in every chart (:func:`segment_colours`); every
hover names the quantity and its unit. Text from the data (segment names, groups) is
HTML-escaped before it reaches a figure, as Plotly renders a subset of HTML in labels.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from traderseg.analysis.drift import PSI_MODERATE, PSI_SIGNIFICANT
from traderseg.features.catalog import get_feature, split_column
from traderseg.segment.naming import LABELS

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39",
           "#7b4173", "#3182bd", "#e6550d", "#31a354", "#756bb1", "#636363")
OUTLIER_COLOUR = "#9a9a9a"
LEVEL_COLOURS = {"stable": "#4c9a6a", "moderate": "#e0a526", "significant": "#c8412f"}
EVENT_COLOURS = {"crash": "#c8412f", "rally": "#2f8f4e", "vol_spike": "#7b4fc8",
                 "drawdown": "#d9822b"}
LIFECYCLE_COLOURS = {"new": "#8fc1e3", "active": "#2b7bba", "at-risk": "#f2b447",
                     "dormant": "#d9822b", "churned": "#9e2a2b"}
TIER_COLOURS = {"platinum": "#5b5f97", "gold": "#d4a72c", "silver": "#a8b3bd",
                "bronze": "#b87840"}
FONT = {"family": "system-ui, -apple-system, Segoe UI, Roboto, DejaVu Sans, sans-serif",
        "size": 12}


def esc(text: object) -> str:
    """HTML-escape a text from the data for a figure label."""
    return html.escape(str(text), quote=False)


def segment_colours(ids: Sequence[int]) -> dict[int, str]:
    """One colour per segment id, stable for a given set of ids (outliers, -1, grey)."""
    inside = sorted(i for i in set(ids) if i >= 0)
    out = {sid: PALETTE[k % len(PALETTE)] for k, sid in enumerate(inside)}
    out[-1] = OUTLIER_COLOUR
    return out


def seg_label(sid: object, names: Mapping[int, str]) -> str:
    """``"3 · short-dated call buyers"`` (escaped)."""
    try:
        number = float(str(sid))
    except ValueError:
        return esc(sid)
    if not number.is_integer():
        return esc(sid)
    key = int(number)
    return f"{key} · {esc(names.get(key, key))}"


def feature_label(column: str) -> str:
    """Readable label of a feature column: its short words, then the window."""
    stem, window = split_column(column)
    return f"{LABELS.get(stem, stem.replace('_', ' '))} ({window})"


def feature_unit(column: str) -> str:
    """Return the catalogue's unit of a feature column ('' when not in the catalogue)."""
    try:
        return str(get_feature(split_column(column)[0]).unit)
    except KeyError:  # a column the catalogue does not declare (older model)
        return ""


def _layout(fig: go.Figure, *, height: int, title: str | None = None,
            legend: bool = True) -> go.Figure:
    fig.update_layout(
        height=height, autosize=True, template="plotly_white", font=FONT,
        margin={"l": 10, "r": 30, "t": 60 if title else 44, "b": 10},
        title={"text": title, "x": 0, "font": {"size": 14}} if title else None,
        showlegend=legend,
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0},
        hoverlabel={"namelength": -1},
    )
    fig.update_yaxes(automargin=True)
    fig.update_xaxes(automargin=True)
    return fig


def segment_sizes(segments: pd.DataFrame, names: Mapping[int, str]) -> go.Figure:
    """Share of accounts, of venue revenue and of traders' PnL per segment (three panels).

    ``segments`` has ``segment``, ``size_share``, ``revenue_share``, ``pnl_share``,
    ``accounts``, ``revenue_usd`` and ``pnl_usd``.
    """
    seg = segments.iloc[::-1]
    labels = [seg_label(s, names) for s in seg["segment"]]
    fig = make_subplots(rows=1, cols=3, shared_yaxes=True, horizontal_spacing=0.03,
                        subplot_titles=("accounts", "venue revenue (net fees)",
                                        "traders' PnL (signed)"))
    panels = (("size_share", "accounts", "accounts", "#7f8c9b"),
              ("revenue_share", "revenue_usd", "revenue USD", "#2b7bba"),
              ("pnl_share", "pnl_usd", "PnL USD", "#d9822b"))
    for k, (share, amount, unit, colour) in enumerate(panels, start=1):
        fig.add_trace(go.Bar(
            y=labels, x=100 * seg[share], orientation="h", marker_color=colour,
            name=unit, customdata=seg[amount],
            hovertemplate="%{y}<br>%{x:.1f}% · %{customdata:,.0f} " + unit + "<extra></extra>",
            text=[f"{100 * v:.1f}%" for v in seg[share]], textposition="auto",
            cliponaxis=False), row=1, col=k)
        fig.update_xaxes(ticksuffix="%", row=1, col=k)
    return _layout(fig, height=60 + 34 * len(seg), legend=False)


def revenue_by_week(by_period: pd.DataFrame, names: Mapping[int, str],
                    colours: Mapping[int, str]) -> go.Figure:
    """Net fee revenue per week, stacked by segment (rebates below zero)."""
    per = by_period.dropna(subset=["segment"]).copy()
    per["segment"] = per["segment"].astype(int)
    wide = per.pivot_table(index="period", columns="segment", values="revenue_usd",
                           aggfunc="sum").fillna(0.0).sort_index()
    fig = go.Figure()
    for sid in wide.columns:
        fig.add_trace(go.Bar(x=[pd.Timestamp(p).strftime("%Y-%m-%d") for p in wide.index],
                             y=wide[sid], name=seg_label(sid, names),
                             marker_color=colours.get(int(sid), OUTLIER_COLOUR),
                             hovertemplate="week of %{x}<br>%{y:,.0f} USD<extra>%{fullData.name}"
                             "</extra>"))
    fig.update_layout(barmode="relative", yaxis_title="net fees, USD", xaxis_title="week starting")
    return _layout(fig, height=380)


def k_selection(selection: pd.DataFrame) -> go.Figure:
    """Silhouette and bootstrap stability of each candidate number of segments."""
    s = selection.sort_values("k")
    fig = go.Figure()
    for col, dash in (("silhouette", "solid"), ("stability", "dash")):
        fig.add_trace(go.Scatter(x=s["k"], y=s[col], mode="lines+markers", name=col,
                                 line={"dash": dash},
                                 hovertemplate="k = %{x}<br>" + col + " %{y:.3f}<extra></extra>"))
    for k in s.loc[s["chosen"].astype(bool), "k"]:
        fig.add_vline(x=int(k), line_dash="dot", annotation_text=f"chosen k = {int(k)}")
    fig.update_layout(xaxis_title="number of segments k", yaxis_title="score (unitless)")
    return _layout(fig, height=300)


def profile_heatmap(z: pd.DataFrame, median: pd.DataFrame, names: Mapping[int, str]) -> go.Figure:
    """Segments x features: colour = standardised median (z), hover = median with its unit."""
    cols = [str(c) for c in z.columns]
    units = [feature_unit(c) for c in cols]
    med = median[cols].to_numpy(float)
    custom = np.dstack([med, np.broadcast_to(np.array(units, dtype=object), med.shape)])
    fig = go.Figure(go.Heatmap(
        z=np.clip(z.to_numpy(float), -3, 3), x=[feature_label(c) for c in cols],
        y=[seg_label(s, names) for s in z.index], customdata=custom, zmid=0, zmin=-3, zmax=3,
        colorscale="RdBu_r", colorbar={"title": {"text": "z"}, "thickness": 12},
        hovertemplate="%{y}<br>%{x}<br>median %{customdata[0]:.3g} %{customdata[1]}"
        "<br>z = %{z:.2f}<extra></extra>", xgap=1, ygap=1))
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(tickangle=-45)
    return _layout(fig, height=260 + 30 * len(z), legend=False)


def account_map(points: pd.DataFrame, centres: pd.DataFrame, explained: Sequence[float],
                names: Mapping[int, str], colours: Mapping[int, str]) -> go.Figure:
    """Accounts (a sample) on the first two principal components; crosses are centres."""
    fig = go.Figure()
    for sid in sorted(points["segment"].unique().tolist()):
        g = points[points["segment"] == sid]
        fig.add_trace(go.Scatter(
            x=g["x"].round(3), y=g["y"].round(3), mode="markers", name=seg_label(sid, names),
            marker={"size": 4, "opacity": 0.5, "color": colours.get(int(sid), OUTLIER_COLOUR)},
            hovertemplate="PC1 %{x:.2f}, PC2 %{y:.2f} (standardised units)<extra>"
            "%{fullData.name}</extra>"))
    fig.add_trace(go.Scatter(
        x=centres["x"], y=centres["y"], mode="markers+text", name="segment centres",
        text=[str(s) for s in centres["segment"]], textposition="top center",
        marker={"symbol": "x", "size": 12, "color": "black"},
        hovertemplate="centre of segment %{text}<extra></extra>"))
    fig.update_layout(xaxis_title=f"component 1 ({explained[0]:.0%} of variance)",
                      yaxis_title=f"component 2 ({explained[1]:.0%} of variance)")
    return _layout(fig, height=520)


def option_moneyness_tenor(accounts: pd.DataFrame, names: Mapping[int, str],
                           colours: Mapping[int, str]) -> go.Figure:
    """Each option trader (a sample): mean |log moneyness| against mean days to expiry."""
    a = accounts.dropna(subset=["mean_abs_log_moneyness", "mean_days_to_expiry"])
    fig = go.Figure()
    for sid in sorted(a["segment"].unique().tolist()):
        g = a[a["segment"] == sid]
        fig.add_trace(go.Scatter(
            x=g["mean_abs_log_moneyness"].round(4), y=g["mean_days_to_expiry"].clip(lower=0.05)
            .round(3), mode="markers", name=seg_label(sid, names),
            marker={"size": 5, "opacity": 0.6, "color": colours.get(int(sid), OUTLIER_COLOUR)},
            hovertemplate="|ln(K/S)| %{x:.3f}<br>tenor %{y:.1f} days<extra>%{fullData.name}"
            "</extra>"))
    fig.update_yaxes(type="log", title="mean days to expiry (log scale)",
                     tickvals=[0.1, 0.3, 1, 3, 10, 30, 100, 300],
                     ticktext=["0.1", "0.3", "1", "3", "10", "30", "100", "300"])
    fig.update_xaxes(title="mean |ln(strike / underlying)| (0 = at the money)")
    return _layout(fig, height=440)


def delta_distribution(hist: pd.DataFrame, names: Mapping[int, str],
                       colours: Mapping[int, str]) -> go.Figure:
    """Share of each segment's option fills per |delta| bin (lines, one per segment).

    ``hist`` has ``segment``, ``bin_low`` (bin start, |delta|) and ``fills``.
    """
    fig = go.Figure()
    for sid in sorted(hist["segment"].unique().tolist()):
        g = hist[hist["segment"] == sid].sort_values("bin_low")
        share = g["fills"] / g["fills"].sum()
        fig.add_trace(go.Scatter(
            x=g["bin_low"], y=100 * share, mode="lines+markers", name=seg_label(sid, names),
            line={"color": colours.get(int(sid), OUTLIER_COLOUR), "shape": "hv"},
            customdata=g["fills"],
            hovertemplate="|Δ| from %{x:.2f}<br>%{y:.1f}% of option fills (%{customdata:,})"
            "<extra>%{fullData.name}</extra>"))
    fig.add_vline(x=0.15, line_dash="dot", annotation_text="deep OTM below 0.15")
    fig.update_layout(xaxis_title="|delta| of the option fill", yaxis_title="% of option fills")
    fig.update_xaxes(range=[0, 1])
    return _layout(fig, height=380)


def premium_flow(premium: pd.DataFrame, names: Mapping[int, str]) -> go.Figure:
    """Option premium bought (paid) against written (received) per segment, USD.

    ``premium`` has ``segment``, ``bought_usd`` and ``written_usd``.
    """
    p = premium.iloc[::-1]
    labels = [seg_label(s, names) for s in p["segment"]]
    fig = go.Figure()
    for col, label, colour, sign in (("bought_usd", "premium bought", "#2b7bba", 1),
                                     ("written_usd", "premium written", "#c8412f", -1)):
        fig.add_trace(go.Bar(y=labels, x=sign * p[col], orientation="h", name=label,
                             marker_color=colour, customdata=p[col],
                             hovertemplate="%{y}<br>" + label
                             + " %{customdata:,.0f} USD<extra></extra>"))
    fig.update_layout(barmode="relative",
                      xaxis_title="USD premium on opening fills (written to the left)")
    return _layout(fig, height=90 + 30 * len(p))


def leverage_liquidations(risk: pd.DataFrame, names: Mapping[int, str],
                          colours: Mapping[int, str]) -> go.Figure:
    """Median and 90th-percentile leverage, and share of accounts liquidated, per segment.

    ``risk`` has ``segment``, ``leverage_median``, ``leverage_p90``, ``liquidated_share``
    and ``liquidations``.
    """
    r = risk.iloc[::-1]
    labels = [seg_label(s, names) for s in r["segment"]]
    cols = [colours.get(int(s), OUTLIER_COLOUR) for s in r["segment"]]
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.04,
                        subplot_titles=("leverage of the accounts (x)",
                                        "% of accounts liquidated at least once"))
    fig.add_trace(go.Bar(y=labels, x=r["leverage_median"], orientation="h", marker_color=cols,
                         name="median leverage", hovertemplate="%{y}<br>median %{x:.1f}x"
                         "<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Scatter(y=labels, x=r["leverage_p90"], mode="markers", name="90th pct",
                             marker={"symbol": "line-ns-open", "size": 14, "color": "black"},
                             hovertemplate="%{y}<br>90th percentile %{x:.1f}x<extra></extra>"),
                  row=1, col=1)
    fig.add_trace(go.Bar(y=labels, x=100 * r["liquidated_share"], orientation="h",
                         marker_color=cols, name="liquidated", customdata=r["liquidations"],
                         hovertemplate="%{y}<br>%{x:.1f}% of accounts · %{customdata:,} "
                         "liquidation fills<extra></extra>"), row=1, col=2)
    fig.update_xaxes(ticksuffix="x", row=1, col=1)
    fig.update_xaxes(ticksuffix="%", row=1, col=2)
    return _layout(fig, height=80 + 32 * len(r), legend=False)


def lorenz(curves: pd.DataFrame, ginis: Mapping[str, float]) -> go.Figure:
    """Lorenz curves of revenue per account (venue and segments), Gini in the legend.

    ``curves`` has ``group``, ``population_share`` and ``amount_share``.
    """
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 100], y=[0, 100], mode="lines", name="equal shares",
                             line={"color": "#999", "dash": "dot"}, hoverinfo="skip"))
    for group in dict.fromkeys(curves["group"]):
        g = curves[curves["group"] == group]
        venue = group == "venue"
        fig.add_trace(go.Scatter(
            x=100 * g["population_share"], y=100 * g["amount_share"], mode="lines",
            name=f"{esc(group)} (Gini {ginis.get(group, float('nan')):.2f})",
            line={"width": 3 if venue else 1.2, "color": "black" if venue else None},
            opacity=1.0 if venue else 0.7,
            hovertemplate="poorest %{x:.0f}% of accounts earn %{y:.1f}% of the revenue"
            "<extra>%{fullData.name}</extra>"))
    fig.update_layout(xaxis_title="% of accounts, lowest revenue first",
                      yaxis_title="% of net fee revenue (rebates as 0)")
    fig.update_xaxes(ticksuffix="%", range=[0, 100])
    fig.update_yaxes(ticksuffix="%", range=[0, 100])
    return _layout(fig, height=440)


def overlay_mix(assignments: pd.DataFrame, column: str, order: Sequence[str],
                palette: Mapping[str, str], names: Mapping[int, str]) -> go.Figure:
    """Per segment, the share of its accounts in each value of an overlay (100% bars)."""
    counts = pd.crosstab(assignments["segment"], assignments[column].astype(str))
    counts = counts.reindex(columns=[c for c in order if c in counts.columns], fill_value=0)
    shares = counts.div(counts.sum(axis=1), axis=0).iloc[::-1]
    labels = [seg_label(s, names) for s in shares.index]
    fig = go.Figure()
    for col in shares.columns:
        fig.add_trace(go.Bar(y=labels, x=100 * shares[col], orientation="h", name=esc(col),
                             marker_color=palette.get(col, OUTLIER_COLOUR),
                             hovertemplate="%{y}<br>%{x:.1f}% of the segment's accounts"
                             "<extra>%{fullData.name}</extra>"))
    fig.update_layout(barmode="stack", xaxis_title="% of the segment's accounts")
    fig.update_xaxes(range=[0, 100], ticksuffix="%")
    return _layout(fig, height=90 + 28 * len(shares))


def risk_by_segment(assignments: pd.DataFrame, names: Mapping[int, str],
                    colours: Mapping[int, str], threshold: float) -> go.Figure:
    """Show the 0-100 risk score per segment: box of the middle half, whiskers, median."""
    fig = go.Figure()
    for sid in sorted(assignments["segment"].unique().tolist(), reverse=True):
        v = assignments.loc[assignments["segment"] == sid, "risk_score"].astype(float)
        q = v.quantile([0.05, 0.25, 0.5, 0.75, 0.95]).to_numpy()
        lab = seg_label(sid, names)
        fig.add_trace(go.Box(y=[lab], lowerfence=[q[0]], q1=[q[1]], median=[q[2]], q3=[q[3]],
                             upperfence=[q[4]], orientation="h", name=lab, showlegend=False,
                             marker_color=colours.get(int(sid), OUTLIER_COLOUR),
                             hoverinfo="x+name"))
    fig.add_vline(x=threshold, line_dash="dash", line_color="#c8412f",
                  annotation_text=f"high risk ≥ {threshold:g}")
    fig.update_xaxes(range=[0, 100], title="risk score (0-100; whiskers 5th-95th percentile)")
    return _layout(fig, height=90 + 30 * assignments["segment"].nunique(), legend=False)


def migration_sankey(counts: pd.DataFrame, labels: tuple[str, str]) -> go.Figure:
    """Flows of accounts from the earlier state (rows) to the later state (columns)."""
    src = [f"{esc(r)}" for r in counts.index]
    dst = [f"{esc(c)}" for c in counts.columns]
    nodes = [f"{s} ({labels[0]})" for s in src] + [f"{d} ({labels[1]})" for d in dst]
    m = counts.to_numpy()
    i, j = np.nonzero(m)
    fig = go.Figure(go.Sankey(
        node={"label": nodes, "pad": 12, "thickness": 14,
              "hovertemplate": "%{label}<br>%{value:,} accounts<extra></extra>"},
        link={"source": i.tolist(), "target": (j + len(src)).tolist(),
              "value": m[i, j].tolist(),
              "hovertemplate": "%{source.label} → %{target.label}<br>%{value:,} accounts"
              "<extra></extra>"}))
    return _layout(fig, height=max(420, 34 * max(len(src), len(dst))), legend=False)


def market_events(market: pd.DataFrame, events: pd.DataFrame) -> go.Figure:
    """Price of each underlying (rebased to 100) over the period, with detected events."""
    fig = go.Figure()
    for u, g in market.groupby("underlying", sort=True):
        g = g.sort_values("ts")
        rebased = 100 * g["price"] / g["price"].iloc[0]
        fig.add_trace(go.Scatter(x=g["ts"], y=rebased.round(3), mode="lines", name=f"{u}",
                                 hovertemplate="%{x|%Y-%m-%d}<br>%{y:.1f} (first day = 100)"
                                 "<extra>%{fullData.name}</extra>"))
        level = pd.Series(rebased.to_numpy(), index=g["ts"].to_numpy())
        for kind, eg in events[events["underlying"] == u].groupby("kind"):
            down = kind in ("crash", "drawdown")
            fig.add_trace(go.Scatter(
                x=eg["ts"], y=level.reindex(eg["ts"].to_numpy()).to_numpy(), mode="markers",
                name=f"{u} {str(kind).replace('_', ' ')}",
                marker={"symbol": "triangle-down" if down else "triangle-up", "size": 11,
                        "color": EVENT_COLOURS.get(str(kind), "#333")},
                text=[esc(d) for d in eg.get("description", eg["kind"])],
                hovertemplate="%{x|%Y-%m-%d}<br>%{text}<extra>%{fullData.name}</extra>"))
    fig.update_layout(yaxis_title="price, first day = 100")
    return _layout(fig, height=340)


def event_study(study: pd.DataFrame, names: Mapping[int, str],
                colours: Mapping[int, str]) -> go.Figure:
    """Small multiples: each segment's mean cumulative abnormal activity with its 95% band."""
    segs = sorted({int(s) for s in study["segment"] if str(s).lstrip("-").isdigit()})
    cols = 3
    rows = max(1, int(np.ceil(len(segs) / cols)))
    fig = make_subplots(rows=rows, cols=cols, shared_xaxes=True, shared_yaxes=True,
                        subplot_titles=[seg_label(s, names) for s in segs],
                        vertical_spacing=0.12 if rows > 1 else 0.0, horizontal_spacing=0.04)
    for k, sid in enumerate(segs):
        r, c = k // cols + 1, k % cols + 1
        g = study[study["segment"].astype(str) == str(sid)].sort_values("rel_day")
        colour = colours.get(sid, OUTLIER_COLOUR)
        x = g["rel_day"].tolist()
        fig.add_trace(go.Scatter(x=x + x[::-1], y=g["car_ci_high"].tolist()
                                 + g["car_ci_low"].tolist()[::-1], fill="toself",
                                 fillcolor=colour, opacity=0.2, line={"width": 0},
                                 hoverinfo="skip", showlegend=False), row=r, col=c)
        fig.add_trace(go.Scatter(x=x, y=g["car"], mode="lines", line={"color": colour},
                                 showlegend=False, customdata=g[["car_ci_low", "car_ci_high"]],
                                 hovertemplate="day %{x}<br>CAR %{y:.3f} (log notional)<br>"
                                 "95%: %{customdata[0]:.3f} to %{customdata[1]:.3f}"
                                 "<extra></extra>"), row=r, col=c)
        fig.add_hline(y=0, line_width=0.6, line_color="#555", row=r, col=c)
    fig.update_xaxes(title_text="days from event", row=rows)
    fig.update_yaxes(title_text="CAR, log notional", col=1)
    fig.update_annotations(font_size=11)
    return _layout(fig, height=90 + 200 * rows, legend=False)


def clv_churn(per_segment: pd.DataFrame, names: Mapping[int, str],
              colours: Mapping[int, str]) -> go.Figure:
    """Mean lifetime value per account and mean churn probability per segment.

    ``per_segment`` has ``segment``, ``mean_clv`` (USD) and ``churn_probability``.
    """
    p = per_segment.iloc[::-1]
    labels = [seg_label(s, names) for s in p["segment"]]
    cols = [colours.get(int(s), OUTLIER_COLOUR) if str(s).lstrip("-").isdigit()
            else OUTLIER_COLOUR for s in p["segment"]]
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.04,
                        subplot_titles=("lifetime value per account, USD (discounted)",
                                        "churn probability (1 − P(alive))"))
    fig.add_trace(go.Bar(y=labels, x=p["mean_clv"], orientation="h", marker_color=cols,
                         hovertemplate="%{y}<br>%{x:,.2f} USD per account<extra></extra>"),
                  row=1, col=1)
    fig.add_trace(go.Bar(y=labels, x=100 * p["churn_probability"], orientation="h",
                         marker_color=cols, hovertemplate="%{y}<br>%{x:.1f}% likely churned"
                         "<extra></extra>"), row=1, col=2)
    fig.update_xaxes(ticksuffix="%", range=[0, 100], row=1, col=2)
    return _layout(fig, height=80 + 32 * len(p), legend=False)


def drift_bars(drift: pd.DataFrame) -> go.Figure:
    """PSI of each feature between the two cutoffs, against the 0.1 and 0.25 lines."""
    d = drift.iloc[::-1]
    fig = go.Figure(go.Bar(
        y=[feature_label(c) for c in d["column"]], x=d["psi"], orientation="h",
        marker_color=[LEVEL_COLOURS.get(v, OUTLIER_COLOUR) for v in d["level"]],
        text=d["level"], hovertemplate="%{y}<br>PSI %{x:.3f} (%{text})<extra></extra>"))
    fig.update_traces(textposition="none")
    for x, lab in ((PSI_MODERATE, "moderate"), (PSI_SIGNIFICANT, "significant")):
        fig.add_vline(x=x, line_dash="dash", line_color=LEVEL_COLOURS[lab],
                      annotation_text=f"{lab} ({x:g})")
    fig.update_xaxes(title="population stability index (PSI, unitless)")
    return _layout(fig, height=90 + 22 * len(d), legend=False)


def segment_shares(shares: pd.DataFrame, names: Mapping[int, str],
                   labels: tuple[str, str]) -> go.Figure:
    """Share of accounts per segment at the two cutoffs."""
    s = shares.iloc[::-1]
    y = [seg_label(i, names) for i in s.index]
    fig = go.Figure()
    for col, lab, colour in (("reference", labels[0], "#b0b7c3"),
                             ("current", labels[1], "#2b7bba")):
        fig.add_trace(go.Bar(y=y, x=100 * s[col], orientation="h", name=lab,
                             marker_color=colour, hovertemplate="%{y}<br>%{x:.1f}% of accounts"
                             "<extra>" + lab + "</extra>"))
    fig.update_layout(barmode="group", xaxis_title="% of accounts")
    return _layout(fig, height=100 + 40 * len(s))


def bias_rates(rates: pd.DataFrame, outcomes: Sequence[str],
               descriptions: Mapping[str, str]) -> go.Figure:
    """Outcome rate per group, one panel per attribute (groups too small to test faded)."""
    attrs = list(dict.fromkeys(rates["attribute"]))
    fig = make_subplots(rows=len(attrs), cols=1, vertical_spacing=0.12,
                        subplot_titles=[esc(a).replace("_", " ") for a in attrs])
    palette = ("#c8412f", "#d4a72c", "#2b7bba", "#4c9a6a", "#7b4fc8")
    for r, attr in enumerate(attrs, start=1):
        g = rates[rates["attribute"] == attr]
        x = [f"{esc(grp)} ({n:,})" for grp, n in zip(g["group"], g["accounts"], strict=True)]
        for k, o in enumerate(outcomes):
            fig.add_trace(go.Bar(
                x=x, y=100 * g[o], name=esc(descriptions.get(o, o)), legendgroup=o,
                showlegend=r == 1, marker_color=palette[k % len(palette)],
                marker_opacity=[1.0 if t else 0.35 for t in g["tested"]],
                hovertemplate="%{x}<br>%{y:.1f}% of the group<extra>%{fullData.name}</extra>"),
                row=r, col=1)
        fig.update_yaxes(ticksuffix="%", row=r, col=1)
    fig.update_layout(barmode="group")
    return _layout(fig, height=120 + 230 * len(attrs))


def bias_composition(composition: Mapping[str, pd.DataFrame], names_to_ids: Mapping[str, int],
                     colours: Mapping[int, str]) -> go.Figure:
    """Segment mix of each group (100% bars), one panel per attribute; last bar = all."""
    attrs = list(composition)
    fig = make_subplots(rows=len(attrs), cols=1, vertical_spacing=0.1,
                        subplot_titles=[esc(a).replace("_", " ") for a in attrs])
    for r, attr in enumerate(attrs, start=1):
        shares = composition[attr].iloc[::-1]
        for col in shares.columns:
            fig.add_trace(go.Bar(
                y=[esc(i) for i in shares.index], x=100 * shares[col], orientation="h",
                name=esc(col), legendgroup=str(col), showlegend=r == 1,
                marker_color=colours.get(names_to_ids.get(str(col), -1), OUTLIER_COLOUR),
                hovertemplate="%{y}<br>%{x:.1f}% of the group<extra>%{fullData.name}</extra>"),
                row=r, col=1)
        fig.update_xaxes(range=[0, 100], ticksuffix="%", row=r, col=1)
    fig.update_layout(barmode="stack")
    rows = sum(len(c) for c in composition.values())
    return _layout(fig, height=160 + 26 * rows + 40 * len(attrs))
