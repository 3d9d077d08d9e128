"""``traderseg analyze profitability|drivers|migration`` and ``traderseg churn``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import typer
from rich.markup import escape
from rich.table import Table

from traderseg.cli import analyze_app, app, console, err_console
from traderseg.cli.format import add_rows, count, frame_table, number, share, table, usd
from traderseg.cli.paths import check_out_path
from traderseg.errors import ConfigError


def _write(df: pd.DataFrame, out: Path | None, what: str) -> None:
    if out is None:
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(out, index=False)
    console.print(f"wrote {len(df):,} rows of {what} to {out}")


# Columns of the profitability tables: header, formatter (by unit).
_PROFIT_COLUMNS: dict[str, tuple[str, Callable[[float], str]]] = {
    "accounts": ("accts", count),
    "revenue_usd": ("revenue", usd),
    "revenue_share": ("share", share),
    "revenue_per_account": ("per\nacct", usd),
    "revenue_bps": ("bps", lambda v: number(v, 2)),
    "pnl_usd": ("trader\nPnL", usd),
    "losing_share": ("losing", lambda v: share(v, 0)),
    "top10_share": ("top\n10%", lambda v: share(v, 0)),
    "gini": ("gini", lambda v: number(v, 2)),
}


def profit_table(df: pd.DataFrame, title: str) -> Table:
    """Profitability per group, one number per unit-formatted, right-aligned cell.

    ``revenue`` is the venue's net fee revenue, ``share`` its share of the venue's total,
    ``per acct`` per account, ``bps`` per notional traded, ``trader PnL`` the traders'
    realized PnL, ``losing`` the share of accounts with a loss, ``top 10%`` the revenue
    share of the group's top decile of accounts, ``gini`` its concentration.
    """
    out = table(title, ["group", *(h for h, _ in _PROFIT_COLUMNS.values())],
                [False] + [True] * len(_PROFIT_COLUMNS))
    rows = [(escape(str(r["group"])), *(fmt(float(r[c])) if r[c] == r[c] else "–"
                                         for c, (_, fmt) in _PROFIT_COLUMNS.items()))
            for r in df.to_dict("records")]
    return add_rows(out, rows)


def _long(matrix: pd.DataFrame, name: str) -> pd.DataFrame:
    wide = matrix.rename_axis(index="from", columns="to").reset_index()
    return wide.melt(id_vars="from", var_name="to", value_name=name)


def _split(text: str | None) -> list[str]:
    return [p.strip() for p in (text or "").split(",") if p.strip()]


@analyze_app.command("profitability")
def profitability_command(
    db: Path = typer.Option(..., "--db", help="DuckDB fills store."),
    assignments: Path = typer.Option(..., "--assignments", help="Segment assignments (Parquet)."),
    freq: str = typer.Option(None, "--freq", help="Also by period: day, week, month, quarter."),
    start: str = typer.Option(None, "--start", help="First fill time included (UTC)."),
    end: str = typer.Option(None, "--end", help="Fills before this time (UTC) are included."),
    out: Path = typer.Option(None, "--out", help="Parquet file for every breakdown (long)."),
) -> None:
    """Venue revenue (net fees), trader PnL and revenue concentration per segment."""
    check_out_path(out, "--out", makes_folder=True)
    from traderseg.analysis.profitability import profitability

    rep = profitability(db, assignments, start=start, end=end, freq=freq)
    seg = rep.by_segment.assign(group=[
        name if pd.isna(i) else f"{i} {name}"
        for i, name in zip(rep.by_segment["segment"], rep.by_segment["segment_name"],
                           strict=True)])
    console.print(profit_table(seg, f"per segment: venue revenue (net fees) "
                               f"{rep.venue_revenue:,.2f} USD"))
    for name, by in rep.by_overlay.items():
        console.print(profit_table(by.rename(columns={name: "group"}),
                                   f"per {name.replace('_', ' ')}"))
    overall = rep.overall
    console.print(f"all accounts: top 1% earn {overall['top1_share']:.1%} of revenue, top 10% "
                  f"{overall['top10_share']:.1%}, Gini {overall['gini']:.3f}")
    if rep.by_period is not None:
        per = rep.by_period.groupby("period")[["accounts", "revenue_usd", "pnl_usd"]].sum()
        console.print(frame_table(per, f"per {freq}", index=True))
    parts = [rep.by_segment.assign(breakdown="segment", group=rep.by_segment["segment_name"])]
    parts.append(rep.overall.to_frame().T.assign(breakdown="overall", group="all"))
    for name, by in rep.by_overlay.items():
        parts.append(by.rename(columns={name: "group"}).assign(breakdown=name))
    if rep.by_period is not None:
        parts.append(rep.by_period.assign(breakdown="period", group=rep.by_period["segment_name"]))
    long = pd.concat(parts, ignore_index=True)
    cols = ["breakdown", "group", "period", "segment", "segment_name"]
    long = long.reindex(columns=[*cols, *(c for c in long.columns if c not in cols)])
    long["segment"] = long["segment"].astype("Int64")
    for c in ("accounts", "fills"):
        long[c] = long[c].astype("int64")
    _write(long, out, "profitability")


@analyze_app.command("drivers")
def drivers_command(
    db: Path = typer.Option(..., "--db", help="DuckDB fills store."),
    as_of: str = typer.Option(..., "--as-of", help="Cutoff (UTC) of the features."),
    assignments: Path = typer.Option(..., "--assignments", help="Segment assignments (Parquet)."),
    target: str = typer.Option("revenue", "--target", help="revenue or next_volume."),
    window: str = typer.Option("30d", "--window", help="Feature window, e.g. 30d."),
    features: str = typer.Option(None, "--features", help="Comma-separated feature names."),
    horizon_days: float = typer.Option(30.0, "--horizon-days", help="next_volume horizon."),
    out: Path = typer.Option(None, "--out", help="Parquet file for the coefficient table."),
) -> None:
    """OLS of revenue (or next-period volume) on behaviour and segment, HC3 errors."""
    check_out_path(out, "--out", makes_folder=True)
    from traderseg.analysis.drivers import DEFAULT_DRIVERS, revenue_drivers

    feats = _split(features) or list(DEFAULT_DRIVERS)
    res = revenue_drivers(db, as_of, assignments, target=target,  # type: ignore[arg-type]
                          window=window, features=feats, horizon_days=horizon_days)
    console.print(frame_table(res.table.rename_axis("term"), f"drivers of {res.target}",
                              index=True))
    console.print(f"R^2 {res.r_squared:.3f} (adjusted {res.adj_r_squared:.3f}), "
                  f"{res.n_obs:,} accounts, condition number {res.condition_number:.1f}; "
                  f"segments relative to {res.reference_segment!r}; 95% CIs")
    for col, why in res.dropped.items():
        console.print(f"dropped {col}: {why}")
    _write(res.table.rename_axis("term").reset_index(), out, "coefficients")


@analyze_app.command("migration")
def migration_command(
    files: list[Path] = typer.Argument(None, help="More assignment files, in time order."),
    assignments: list[Path] = typer.Option(
        None, "--assignments", help="Assignment files (Parquet), earliest first."),
    labels: str = typer.Option(None, "--labels", help="Comma-separated cutoff per file."),
    high_risk: str = typer.Option(None, "--high-risk", help="High-risk segment ids or names."),
    risk_threshold: float = typer.Option(70.0, "--risk-threshold", help="High risk_score."),
    out: Path = typer.Option(None, "--out", help="Parquet file for the transitions (long)."),
    flows_out: Path = typer.Option(None, "--flows-out", help="Parquet file of flow accounts."),
) -> None:
    """Transition matrices, stability and key flows between consecutive assignments."""
    check_out_path(out, "--out", makes_folder=True)
    check_out_path(flows_out, "--flows-out", makes_folder=True)
    from traderseg.analysis.migration import migration

    paths = [*(assignments or []), *(files or [])]
    names = _split(labels) or [p.stem for p in paths]
    if len(names) != len(paths):
        raise ConfigError(f"--labels has {len(names)} labels for {len(paths)} files")
    rep = migration(list(zip(names, paths, strict=True)), high_risk_segments=_split(high_risk),
                    risk_threshold=risk_threshold)
    long = []
    for step in rep.steps:
        console.print(frame_table(step.counts.rename_axis("from"),
                                  f"accounts {step.start} -> {step.end}", index=True))
        counts = _long(step.counts, "accounts")
        shares = _long(step.shares, "share")
        long.append(counts.merge(shares, on=["from", "to"])
                    .assign(start=str(step.start), end=str(step.end)))
    console.print(frame_table(rep.summary, "stability"))
    console.print(frame_table(rep.flows, "flows"))
    if long:
        table = pd.concat(long, ignore_index=True)
        table[["from", "to"]] = table[["from", "to"]].astype(str)
        _write(table, out, "transitions")
    flows = rep.flow_accounts.astype({"start": str, "end": str})
    _write(flows, flows_out, "flow accounts")


@app.command("churn")
def churn_command(
    db: Path = typer.Option(..., "--db", help="DuckDB fills store."),
    cutoffs: str = typer.Option(..., "--cutoffs", help="Comma-separated cutoffs; last = test."),
    horizon_days: float = typer.Option(30.0, "--horizon-days", help="Inactivity = churn."),
    activity_days: float = typer.Option(90.0, "--activity-days", help="Active look-back."),
    threads: int = typer.Option(None, "--threads", min=1, help="Threads of the tree models."),
    out: Path = typer.Option(None, "--out", help="Parquet file for the test predictions."),
    grace_days: float = typer.Option(
        0.0, "--grace-days",
        help="0: churn = no fill over the horizon; > 0: the account stopped within the "
        "horizon (no fill in this many days after it).",
    ),
) -> None:
    """Backtest churn and next-period volume models against BG/NBD and recency."""
    check_out_path(out, "--out", makes_folder=True)
    from traderseg.analysis.churn import churn_backtest
    from traderseg.analysis.churn.metrics import baseline_verdict

    with err_console.status("building the training set and backtesting"):
        bt = churn_backtest(db, _split(cutoffs), horizon_days, activity_days=activity_days,
                            n_threads=threads, grace_days=grace_days)
    console.print(frame_table(
        bt.metrics, f"churn within {bt.horizon_days:g} days of {bt.test_cutoff.date()} "
        f"(base rate {bt.base_rate:.1%}, {len(bt.predictions):,} accounts; "
        f"trained on {bt.n_train:,} rows)", index=True))
    cal = bt.calibration[bt.calibration["scorer"] == "model"].drop(columns="scorer")
    console.print(frame_table(cal, "calibration of the model by decile"))
    console.print(frame_table(bt.volume, "next-period log notional", index=True))
    console.print(baseline_verdict(bt.metrics)[1], soft_wrap=True)
    vol = bt.volume["r2"].astype(float)
    if "model" in vol.index and len(vol) > 1:
        other = vol.drop(index="model")
        word = "beats" if vol["model"] > other.max() else "does not beat"
        console.print(f"next-period volume: the model {word} {other.idxmax()} "
                      f"(R^2 {vol['model']:.3f} vs {other.max():.3f})", soft_wrap=True)
    _write(bt.predictions, out, "churn predictions")
