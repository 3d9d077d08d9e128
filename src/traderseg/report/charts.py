"""The report's pictures, drawn with matplotlib.

Each function draws one picture from the frames of :mod:`traderseg.report.collect`;
single-panel ones take ``ax=None`` and return the axes, multi-panel ones take
``fig=None`` and return the figure. A segment keeps one colour in every picture
(:func:`segment_colours`). Nothing here reads the store or writes files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # no display: the figures only ever become SVG

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.colors import TwoSlopeNorm  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from traderseg.analysis.drift import PSI_MODERATE, PSI_SIGNIFICANT  # noqa: E402
from traderseg.features.catalog import split_column  # noqa: E402
from traderseg.segment.naming import LABELS  # noqa: E402
from traderseg.segment.overlays import LIFECYCLE_STAGES, VALUE_TIERS  # noqa: E402

STYLE = {
    "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "axes.spines.top": False,
    "axes.spines.right": False, "legend.frameon": False, "svg.fonttype": "none",
    "figure.dpi": 100, "savefig.dpi": 150, "svg.hashsalt": "traderseg",
}
LEVEL_COLOURS = {"stable": "#4c9a6a", "moderate": "#e0a526", "significant": "#c8412f"}
EVENT_COLOURS = {"crash": "#c8412f", "rally": "#2f8f4e", "vol_spike": "#7b4fc8",
                 "drawdown": "#d9822b"}
LIFECYCLE_COLOURS = dict(zip(LIFECYCLE_STAGES,
                             ("#8fc1e3", "#2b7bba", "#f2b447", "#d9822b", "#9e2a2b"),
                             strict=True))
TIER_NAMES = [name for name, _ in VALUE_TIERS] + ["bronze"]
TIER_COLOURS = dict(zip(TIER_NAMES, ("#5b5f97", "#d4a72c", "#a8b3bd", "#b87840"),
                        strict=True))


def _ax(ax: Axes | None, size: tuple[float, float]) -> Axes:
    if ax is not None:
        return ax
    _, new = plt.subplots(figsize=size, layout="constrained")
    return new


def _groups(frame: pd.DataFrame) -> list[tuple[int, pd.DataFrame]]:
    """Split the frame into its rows per segment id, in id order."""
    return [(int(sid), frame[frame["segment"] == sid])
            for sid in sorted(frame["segment"].unique().tolist())]


def segment_colours(ids: Sequence[int]) -> dict[int, str]:
    """One colour per segment id, stable for a given set of ids (outliers grey)."""
    palette = plt.get_cmap("tab10" if len(ids) <= 10 else "tab20").colors  # type: ignore[attr-defined]
    inside = sorted(i for i in set(ids) if i >= 0)
    out = {sid: matplotlib.colors.to_hex(palette[k % len(palette)])
           for k, sid in enumerate(inside)}
    out[-1] = "#9a9a9a"
    return out


def feature_label(column: str) -> str:
    """Readable label of a feature column: its short words, then the window."""
    stem, window = split_column(column)
    return f"{LABELS.get(stem, stem.replace('_', ' '))} ({window})"


def segment_size_revenue(segments: pd.DataFrame, colours: Mapping[int, str],
                         ax: Axes | None = None) -> Axes:
    """Share of accounts beside share of venue revenue, one pair of bars per segment."""
    ax = _ax(ax, (8.0, 0.45 * len(segments) + 1.2))
    seg = segments.iloc[::-1]
    y = np.arange(len(seg))
    h = 0.38
    ax.barh(y + h / 2, seg["size_share"] * 100, h, color="#c9ced6", label="share of accounts")
    ax.barh(y - h / 2, seg["revenue_share"] * 100, h,
            color=[colours[int(s)] for s in seg["segment"]], label="share of venue revenue")
    ax.set_yticks(y, [f"{int(s)} · {n}" for s, n in zip(seg["segment"], seg["name"],
                                                         strict=True)])
    ax.axvline(0, color="#555", lw=0.6)
    ax.set_xlabel("% of all accounts / % of net fee revenue")
    for yy, v in zip(y - h / 2, seg["revenue_share"] * 100, strict=True):
        # a rebate segment's label stays right of zero, clear of the segment names
        ax.text(max(v, 0.0), yy, f" {v:.1f}%", va="center", ha="left", fontsize=8)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return ax


def revenue_by_week(by_period: pd.DataFrame, names: Mapping[int, str],
                    colours: Mapping[int, str], ax: Axes | None = None) -> Axes:
    """Net fee revenue per week, stacked by segment."""
    ax = _ax(ax, (8.0, 3.2))
    per = by_period.dropna(subset=["segment"]).copy()
    per["segment"] = per["segment"].astype(int)
    wide = per.pivot_table(index="period", columns="segment", values="revenue_usd",
                           aggfunc="sum").fillna(0.0).sort_index()
    x = np.arange(len(wide))
    pos = np.zeros(len(wide))
    neg = np.zeros(len(wide))
    for sid in wide.columns:
        v = wide[sid].to_numpy() / 1e3
        base = np.where(v >= 0, pos, neg)
        ax.bar(x, v, 0.8, bottom=base, color=colours[int(sid)],
               label=f"{sid} · {names.get(int(sid), sid)}")
        pos += np.where(v >= 0, v, 0)
        neg += np.where(v < 0, v, 0)
    ax.set_xticks(x, [pd.Timestamp(p).strftime("%d %b") for p in wide.index], rotation=0)
    ax.set_ylabel("net fees, thousand USD")
    ax.set_xlabel("week starting")
    ax.axhline(0, color="#555", lw=0.6)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7)
    return ax


def k_selection(selection: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Silhouette and bootstrap stability of each candidate number of segments."""
    ax = _ax(ax, (6.0, 2.8))
    s = selection.sort_values("k")
    ax.plot(s["k"], s["silhouette"], "o-", color="#2b7bba", label="silhouette")
    ax.plot(s["k"], s["stability"], "s--", color="#d9822b", label="bootstrap stability")
    chosen = s[s["chosen"].astype(bool)]
    for k in chosen["k"]:
        ax.axvline(k, color="#555", lw=0.8, ls=":")
        ax.text(k, ax.get_ylim()[1], f" chosen k = {int(k)}", va="top", fontsize=8)
    ax.set_xlabel("number of segments k")
    ax.set_ylabel("score")
    ax.set_xticks(s["k"])
    ax.legend(loc="lower left")
    return ax


def profile_heatmap(z: pd.DataFrame, median: pd.DataFrame, names: Mapping[int, str],
                    ax: Axes | None = None) -> Axes:
    """Segments x features: colour = z-score of the segment median, text = the median."""
    ax = _ax(ax, (0.55 * z.shape[1] + 3.5, 0.42 * z.shape[0] + 2.4))
    vals = z.to_numpy(float)
    lim = 2.5
    im = ax.imshow(np.clip(np.nan_to_num(vals), -lim, lim), cmap="RdBu_r",
                   norm=TwoSlopeNorm(0, -lim, lim), aspect="auto")
    ax.set_xticks(range(z.shape[1]), [feature_label(c) for c in z.columns], rotation=50,
                  ha="right", rotation_mode="anchor")
    ax.set_yticks(range(z.shape[0]), [f"{int(s)} · {names.get(int(s), s)}" for s in z.index])
    med = median.to_numpy(float)
    for i in range(z.shape[0]):
        for j in range(z.shape[1]):
            v = med[i, j]
            if np.isfinite(v):
                dark = abs(np.nan_to_num(vals[i, j])) > 1.6
                ax.text(j, i, _short(v), ha="center", va="center", fontsize=6.5,
                        color="white" if dark else "#222")
    ax.spines[:].set_visible(False)
    bar = ax.figure.colorbar(im, ax=ax, shrink=0.6, pad=0.01)
    bar.set_label("segment median vs population (z)")
    return ax


def _short(v: float) -> str:
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:.1f}M"
    if a >= 1e3:
        return f"{v / 1e3:.1f}k"
    if a >= 10:
        return f"{v:.0f}"
    return f"{v:.2f}"


def account_map(points: pd.DataFrame, centres: pd.DataFrame, explained: Sequence[float],
                names: Mapping[int, str], colours: Mapping[int, str],
                ax: Axes | None = None) -> Axes:
    """Accounts on the first two principal components of the model's space."""
    ax = _ax(ax, (8.0, 5.6))
    for sid, g in _groups(points):
        ax.scatter(g["x"], g["y"], s=5, alpha=0.45, color=colours[sid], linewidths=0,
                   label=f"{sid} · {names.get(int(sid), sid)}", rasterized=True)
    for sid, x, y in zip(centres["segment"].tolist(), centres["x"].tolist(),
                         centres["y"].tolist(), strict=True):
        ax.scatter(x, y, s=180, color=colours[int(sid)], edgecolors="black",
                   linewidths=1.0, zorder=3)
        ax.text(x, y, str(sid), ha="center", va="center", fontsize=8,
                fontweight="bold", color="white", zorder=4)
    ax.set_xlabel(f"component 1 ({explained[0]:.0%} of variance)")
    ax.set_ylabel(f"component 2 ({explained[1]:.0%} of variance)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), markerscale=3, fontsize=7)
    return ax


_OPTION_LABELS = {
    "option_share": "option share of fills", "call_share": "calls", "long_premium_share":
    "premium bought", "put_buy_share": "puts bought", "deep_otm_share": "deep OTM (|Δ|<0.15)",
    "short_dated_share": "expiring ≤3 days", "straddle_share": "straddle legs",
    "mean_abs_delta": "mean |Δ|",
}


def option_mix(per_segment: pd.DataFrame, names: Mapping[int, str],
               ax: Axes | None = None) -> Axes:
    """Per segment (accounts with options): median option shares, as a table of colour."""
    cols = [c for c in _OPTION_LABELS if c in per_segment.columns]
    data = per_segment[cols]
    ax = _ax(ax, (0.75 * len(cols) + 3.5, 0.42 * len(data) + 1.9))
    im = ax.imshow(data.to_numpy(float), cmap="Purples", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(cols)), [_OPTION_LABELS[c] for c in cols], rotation=35,
                  ha="right", rotation_mode="anchor")
    ax.set_yticks(range(len(data)), [
        f"{int(s)} · {names.get(int(s), s)} ({int(n)} acc.)"
        for s, n in zip(data.index.tolist(), per_segment["option_accounts"].tolist(),
                        strict=True)])
    vals = data.to_numpy(float)
    for i in range(vals.shape[0]):
        for j in range(vals.shape[1]):
            if np.isfinite(vals[i, j]):
                ax.text(j, i, f"{vals[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if vals[i, j] > 0.6 else "#222")
    ax.spines[:].set_visible(False)
    ax.figure.colorbar(im, ax=ax, shrink=0.6, pad=0.01).set_label("median share")
    return ax


def option_tenor_delta(accounts: pd.DataFrame, names: Mapping[int, str],
                       colours: Mapping[int, str], ax: Axes | None = None) -> Axes:
    """Each option trader's mean |delta| against mean tenor: lottery tickets bottom left."""
    ax = _ax(ax, (8.0, 4.6))
    a = accounts.dropna(subset=["mean_abs_delta", "mean_days_to_expiry"])
    for sid, g in _groups(a):
        ax.scatter(g["mean_abs_delta"], g["mean_days_to_expiry"].clip(lower=0.05),
                   s=10 + 40 * g["long_premium_share"].fillna(0.5), alpha=0.55,
                   color=colours[sid], linewidths=0, rasterized=True,
                   label=f"{sid} · {names.get(int(sid), sid)}")
    ax.set_yscale("log")
    ax.set_xlim(0, 1)
    ax.axvline(0.15, color="#777", lw=0.7, ls=":")
    ax.text(0.15, ax.get_ylim()[1], " deep OTM", va="top", fontsize=7, color="#555")
    ax.set_xlabel("mean |delta| of option fills")
    ax.set_ylabel("mean days to expiry (log)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), markerscale=1.2, fontsize=7)
    return ax


def overlay_mix(assignments: pd.DataFrame, column: str, order: Sequence[str],
                palette: Mapping[str, str], names: Mapping[int, str],
                ax: Axes | None = None) -> Axes:
    """Per segment, the share of its accounts in each value of an overlay (100% bars)."""
    counts = pd.crosstab(assignments["segment"], assignments[column].astype(str))
    counts = counts.reindex(columns=[c for c in order if c in counts.columns], fill_value=0)
    shares = counts.div(counts.sum(axis=1), axis=0).iloc[::-1]
    ax = _ax(ax, (8.0, 0.36 * len(shares) + 1.3))
    left = np.zeros(len(shares))
    y = np.arange(len(shares))
    for col in shares.columns:
        v = shares[col].to_numpy()
        ax.barh(y, v * 100, 0.7, left=left * 100, color=palette[col], label=col)
        left += v
    ax.set_yticks(y, [f"{int(s)} · {names.get(int(s), s)}" for s in shares.index])
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of the segment's accounts")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7)
    return ax


def risk_by_segment(assignments: pd.DataFrame, names: Mapping[int, str],
                    colours: Mapping[int, str], threshold: float,
                    ax: Axes | None = None) -> Axes:
    """Distribution of the 0-100 risk score in each segment (box plots)."""
    ids = sorted(int(s) for s in assignments["segment"].unique())[::-1]
    data = [assignments.loc[assignments["segment"] == s, "risk_score"].to_numpy() for s in ids]
    ax = _ax(ax, (8.0, 0.36 * len(ids) + 1.3))
    box = ax.boxplot(data, orientation="horizontal", patch_artist=True, widths=0.6,
                     showfliers=False, medianprops={"color": "black"})
    for patch, sid in zip(box["boxes"], ids, strict=True):
        patch.set_facecolor(colours[sid])
        patch.set_alpha(0.8)
    ax.set_yticks(range(1, len(ids) + 1), [f"{s} · {names.get(s, s)}" for s in ids])
    ax.axvline(threshold, color="#c8412f", lw=0.8, ls="--")
    ax.text(threshold, len(ids) + 0.6, f" high risk ≥ {threshold:g}", fontsize=7,
            color="#c8412f", va="bottom")
    ax.set_xlim(0, 100)
    ax.set_xlabel("risk score (0-100)")
    return ax


def migration_heatmap(shares: pd.DataFrame, counts: pd.DataFrame,
                      ax: Axes | None = None) -> Axes:
    """Transition matrix: rows from the earlier state, columns to the later state."""
    ax = _ax(ax, (0.7 * shares.shape[1] + 4.0, 0.45 * shares.shape[0] + 2.2))
    vals = shares.to_numpy(float)
    im = ax.imshow(vals, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(shares.shape[1]), [str(c) for c in shares.columns], rotation=40,
                  ha="right", rotation_mode="anchor")
    ax.set_yticks(range(shares.shape[0]), [str(r) for r in shares.index])
    ax.set_xlabel("state at the report cutoff")
    ax.set_ylabel("state at the comparison cutoff")
    n = counts.to_numpy()
    for i in range(vals.shape[0]):
        for j in range(vals.shape[1]):
            if n[i, j]:
                ax.text(j, i, f"{int(n[i, j]):,}", ha="center", va="center", fontsize=7,
                        color="white" if vals[i, j] > 0.55 else "#222")
    ax.spines[:].set_visible(False)
    ax.figure.colorbar(im, ax=ax, shrink=0.6, pad=0.01).set_label("share of the row")
    return ax


def market_events(market: pd.DataFrame, events: pd.DataFrame,
                  ax: Axes | None = None) -> Axes:
    """Price of each underlying (rebased to 100) over the period, with detected events."""
    ax = _ax(ax, (8.0, 3.0))
    for u, g in market.groupby("underlying", sort=True):
        g = g.sort_values("ts")
        rebased = 100 * g["price"] / g["price"].iloc[0]
        ax.plot(g["ts"], rebased, lw=1.3, label=f"{u} (rebased)")
        ev = events[events["underlying"] == u]
        level = pd.Series(rebased.to_numpy(), index=g["ts"].to_numpy())
        for kind, eg in ev.groupby("kind"):
            y = level.reindex(eg["ts"].to_numpy()).to_numpy()
            ax.scatter(eg["ts"], y, s=50, marker="v" if kind in ("crash", "drawdown") else "^",
                       color=EVENT_COLOURS.get(str(kind), "#333"), zorder=3,
                       label=f"{u} {str(kind).replace('_', ' ')}")
    ax.set_ylabel("price, first day = 100")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7)
    ax.figure.autofmt_xdate()
    return ax


def event_study_grid(study: pd.DataFrame, names: Mapping[int, str],
                     colours: Mapping[int, str], fig: Figure | None = None) -> Figure:
    """Small multiples: each segment's mean cumulative abnormal activity, 95% band."""
    segs = sorted({int(s) for s in study["segment"] if str(s).lstrip("-").isdigit()})
    cols = 3
    rows = int(np.ceil(len(segs) / cols))
    if fig is None:
        fig = plt.figure(figsize=(8.0, 2.1 * rows + 0.4), layout="constrained")
    axes = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False)
    for k, ax in enumerate(axes.ravel()):
        if k >= len(segs):
            ax.set_visible(False)
            continue
        sid = segs[k]
        g = study[study["segment"].astype(str) == str(sid)].sort_values("rel_day")
        ax.fill_between(g["rel_day"], g["car_ci_low"], g["car_ci_high"],
                        color=colours[sid], alpha=0.2, linewidth=0)
        ax.plot(g["rel_day"], g["car"], color=colours[sid], lw=1.6)
        ax.axhline(0, color="#555", lw=0.6)
        ax.axvline(0, color="#555", lw=0.6, ls=":")
        ax.set_title(f"{sid} · {names.get(sid, sid)}", fontsize=8)
    for ax in axes[-1]:
        ax.set_xlabel("days from event")
    for ax in axes[:, 0]:
        ax.set_ylabel("cum. abnormal\nlog notional")
    return fig


def drift_bars(drift: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """PSI of each feature between the two cutoffs, against the 0.1 and 0.25 lines."""
    d = drift.iloc[::-1]
    ax = _ax(ax, (8.0, 0.28 * len(d) + 1.3))
    y = np.arange(len(d))
    ax.barh(y, d["psi"], 0.7, color=[LEVEL_COLOURS[v] for v in d["level"]])
    ax.set_yticks(y, [feature_label(c) for c in d["column"]])
    top = max(float(d["psi"].max()) * 1.1, PSI_SIGNIFICANT * 1.15)
    for x, lab in ((PSI_MODERATE, "moderate"), (PSI_SIGNIFICANT, "significant")):
        ax.axvline(x, color=LEVEL_COLOURS[lab], lw=0.9, ls="--")
        ax.text(x, len(d) - 0.4, f" {lab} ({x:g})", fontsize=7, color=LEVEL_COLOURS[lab],
                va="bottom")
    ax.set_xlim(0, top)
    ax.set_xlabel("population stability index (PSI)")
    return ax


def segment_shares(shares: pd.DataFrame, names: Mapping[int, str],
                   colours: Mapping[int, str], labels: tuple[str, str],
                   ax: Axes | None = None) -> Axes:
    """Share of accounts per segment at the two cutoffs."""
    s = shares.iloc[::-1]
    ax = _ax(ax, (8.0, 0.42 * len(s) + 1.2))
    y = np.arange(len(s))
    h = 0.38
    ax.barh(y + h / 2, s["reference"] * 100, h, color="#c9ced6", label=labels[0])
    ax.barh(y - h / 2, s["current"] * 100, h, color=[colours[int(i)] for i in s.index],
            label=labels[1])
    ax.set_yticks(y, [f"{int(i)} · {names.get(int(i), i)}" for i in s.index])
    ax.set_xlabel("% of accounts")
    ax.legend(loc="lower right")
    return ax


def bias_rates(rates: pd.DataFrame, outcomes: Sequence[str], descriptions: Mapping[str, str],
               fig: Figure | None = None) -> Figure:
    """Outcome rate per group, one panel per attribute (untested small groups hatched)."""
    attrs = list(dict.fromkeys(rates["attribute"]))
    if fig is None:
        fig = plt.figure(figsize=(8.0, 2.2 * len(attrs) + 0.6), layout="constrained")
    axes = fig.subplots(len(attrs), 1, squeeze=False)[:, 0]
    palette = ["#c8412f", "#d4a72c", "#2b7bba", "#4c9a6a", "#7b4fc8"]
    for ax, attr in zip(axes, attrs, strict=True):
        r = rates[rates["attribute"] == attr].reset_index(drop=True)
        x = np.arange(len(r))
        w = 0.8 / max(len(outcomes), 1)
        for k, o in enumerate(outcomes):
            bars = ax.bar(x + (k - (len(outcomes) - 1) / 2) * w, r[o] * 100, w,
                          color=palette[k % len(palette)], label=descriptions.get(o, o))
            for b, ok in zip(bars, r["tested"], strict=True):
                if not ok:
                    b.set_hatch("///")
                    b.set_alpha(0.5)
        ax.set_xticks(x, [f"{g}\n({n:,})" for g, n in zip(r["group"], r["accounts"],
                                                         strict=True)], fontsize=7)
        ax.set_title(attr.replace("_", " "), loc="left")
        ax.set_ylabel("% of group")
    axes[0].legend(loc="lower left", bbox_to_anchor=(0.0, 1.12), ncols=len(outcomes),
                   fontsize=7)
    return fig


def bias_composition(composition: Mapping[str, pd.DataFrame], names_to_ids: Mapping[str, int],
                     colours: Mapping[int, str], fig: Figure | None = None) -> Figure:
    """Segment mix of each group (100% bars), one panel per attribute; last bar = all."""
    attrs = list(composition)
    if fig is None:
        fig = plt.figure(figsize=(8.0, 1.9 * len(attrs) + 0.8), layout="constrained")
    axes = fig.subplots(len(attrs), 1, squeeze=False)[:, 0]
    for ax, attr in zip(axes, attrs, strict=True):
        shares = composition[attr]
        left = np.zeros(len(shares))
        y = np.arange(len(shares))[::-1]
        for col in shares.columns:
            v = shares[col].to_numpy()
            ax.barh(y, v * 100, 0.75, left=left * 100,
                    color=colours.get(names_to_ids.get(str(col), -1), "#999"), label=str(col))
            left += v
        ax.set_yticks(y, [str(i) for i in shares.index], fontsize=7)
        ax.set_xlim(0, 100)
        ax.set_title(attr.replace("_", " "), loc="left")
    axes[-1].set_xlabel("% of the group's accounts")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", fontsize=7)
    return fig
