"""``traderseg analyze events`` and ``traderseg analyze event-study``."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import typer
from rich.table import Table

from traderseg.cli import analyze_app, console, err_console
from traderseg.cli.paths import check_out_file, check_out_path
from traderseg.errors import ConfigError


def parse_window(text: str, name: str) -> tuple[int, int]:
    """Parse ``"-5,5"`` into ``(-5, 5)``."""
    try:
        first, last = (int(p) for p in text.split(","))
    except ValueError as exc:
        raise ConfigError(f"{name} must be two integers like -5,5; got {text!r}") from exc
    return first, last


def _market(market_db: Path | None, real: bool, underlying: str) -> pd.DataFrame:
    from traderseg.analysis.events import load_market

    if (market_db is None) == (not real):
        raise ConfigError("give exactly one of --market-db FILE or --real")
    return load_market(market_db, underlyings=[underlying])


def events_table(events: pd.DataFrame, title: str) -> Table:
    """Rich table of detected events."""
    table = Table(title=title)
    for col in ("date", "kind", "magnitude", "return %", "IV change", "description"):
        table.add_column(col, overflow="fold")
    for r in events.to_dict("records"):
        ivc = "" if pd.isna(r["iv_change"]) else f"{r['iv_change']:+.1f}"
        table.add_row(
            str(r["ts"].date()), r["kind"], f"{r['magnitude']:+.1f}", _pct(r["return"]), ivc,
            r["description"],
        )
    return table


def _pct(log_return: float) -> str:
    return "" if pd.isna(log_return) else f"{100 * (math.exp(log_return) - 1):+.1f}"


@analyze_app.command("events")
def events_command(
    market_db: Path = typer.Option(None, "--market-db", help="Store whose market table is used."),
    real: bool = typer.Option(False, "--real", help="Use the real daily series shipped."),
    underlying: str = typer.Option("BTC", "--underlying", help="Underlying to scan."),
    return_z: float = typer.Option(3.0, help="Return threshold in trailing standard deviations."),
    iv_jump: float = typer.Option(0.3, help="Implied-vol jump over its trailing mean (0.3=30%)."),
    drawdown: float = typer.Option(0.2, help="Drawdown from the running peak (0.2=20%)."),
    out: Path = typer.Option(None, "--out", help="Parquet file to write the events to."),
) -> None:
    """Detect crashes, rallies, implied-vol spikes and drawdowns in a market series."""
    check_out_path(out, "--out", makes_folder=True)
    from traderseg.analysis.events import detect_events

    market = _market(market_db, real, underlying)
    events = detect_events(market, return_z=return_z, iv_jump=iv_jump, drawdown=drawdown)
    source = "real series" if real else str(market_db)
    console.print(events_table(events, f"{len(events)} {underlying} events ({source})"))
    counts = events.groupby(events["ts"].dt.year)["kind"].value_counts().unstack(fill_value=0)
    if not counts.empty:
        console.print(counts.to_string())
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        events.to_parquet(out, index=False)
        console.print(f"wrote {len(events)} events to {out}")


def study_table(study: pd.DataFrame, title: str) -> Table:
    """Rich table: one row per relative day, one column per segment (mean and CI)."""
    table = Table(title=title)
    table.add_column("day", justify="right")
    segments = list(dict.fromkeys(study["segment"]))
    for seg in segments:
        table.add_column(str(seg), justify="right", overflow="fold")
    by = study.set_index(["rel_day", "segment"])
    for day in sorted(study["rel_day"].unique()):
        cells = []
        for seg in segments:
            r = by.loc[(day, seg)]
            mark = "*" if r["ci_low"] > 0 or r["ci_high"] < 0 else ""
            cells.append(
                f"{r['mean_abnormal']:+.2f}{mark} [{r['ci_low']:+.2f}, {r['ci_high']:+.2f}]"
            )
        table.add_row(f"{day:+d}", *cells)
    last = study["rel_day"].max()
    cars = [study[(study["segment"] == s) & (study["rel_day"] == last)].iloc[0] for s in segments]
    table.add_row("CAR", *[f"{c['car']:+.2f} [{c['car_ci_low']:+.2f}, {c['car_ci_high']:+.2f}]"
                           for c in cars])
    return table


@analyze_app.command("event-study")
def event_study_command(
    db: Path = typer.Option(..., "--db", help="DuckDB fills store."),
    assignments: Path = typer.Option(
        ..., "--assignments", help="Parquet with account_id and the segment column."
    ),
    out: Path = typer.Option(..., "--out", help="Parquet file to write the study to."),
    events_from: str = typer.Option(
        "real", "--events-from", help="Detect events on the real series or the store's market."
    ),
    underlying: str = typer.Option("BTC", "--underlying", help="Underlying of the events."),
    kinds: str = typer.Option(
        "crash,rally,vol_spike,drawdown", "--kinds", help="Comma-separated event kinds."
    ),
    window: str = typer.Option("-5,5", "--window", help="Event window, relative days."),
    estimation: str = typer.Option(
        "-60,-10", "--estimation", help="Estimation window, relative days."
    ),
    metric: str = typer.Option("notional_usd", "--metric", help="Activity column to study."),
    transform: str = typer.Option("log", "--transform", help="log, ratio or diff."),
    segment_col: str = typer.Option("segment", "--segment-col", help="Segment column."),
) -> None:
    """Abnormal activity of each segment around market events, with 95% intervals."""
    from traderseg.analysis.events.workflow import study_segment_events

    if events_from not in ("real", "store"):
        raise ConfigError(f"--events-from must be 'real' or 'store', got {events_from!r}")
    check_out_file(out, "--out", overwrite=True)
    with err_console.status("detecting events and aggregating fills per segment and day"):
        result = study_segment_events(
            db, assignments, events_from=events_from,  # type: ignore[arg-type]
            underlying=underlying, kinds=[k.strip() for k in kinds.split(",") if k.strip()],
            window=parse_window(window, "--window"),
            estimation=parse_window(estimation, "--estimation"),
            metric=metric, transform=transform, segment_col=segment_col)
    study = result.study
    console.print(
        f"{len(result.used)} of {len(result.events)} {underlying} events fall between the "
        f"first and last day of fills ({result.first_day.date()} .. {result.last_day.date()})"
    )
    a = study.attrs
    title = (
        f"abnormal {metric} ({transform}) around {a['n_events']} {underlying} event days; "
        f"{a['n_excluded']} excluded (window off the data); * = 95% CI excludes 0"
    )
    console.print(study_table(study, title))
    study.to_parquet(out, index=False)
    console.print(f"wrote {len(study)} rows to {out}")
