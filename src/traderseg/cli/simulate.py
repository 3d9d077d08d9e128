"""``traderseg simulate``: write a synthetic venue as canonical Parquet tables.

With ``--live`` it then writes the fills from ``--history-until`` on, in time order and at
``--rate`` fills/s, to a Redis stream, a JSONL file or stdout (:mod:`traderseg.simulate.live`).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from pathlib import Path
from types import FrameType

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from traderseg.cli import app, console, err_console
from traderseg.cli.args import parse_as_of
from traderseg.errors import ConfigError
from traderseg.simulate import DEFAULT_START, simulate_venue
from traderseg.simulate.crash import (
    DEFAULT_CRASH_HOURS,
    DEFAULT_CRASH_SIZE,
    DEFAULT_CRASH_START_HOUR,
    Crash,
)
from traderseg.simulate.difficulty import DIFFICULTIES, get_difficulty


def _parse_day(value: str, option: str) -> date:
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise ConfigError(f"{option} must be YYYY-MM-DD, got {value!r}") from None


def _check_past(first: date, days: int) -> None:
    """Refuse a venue that ends after now: ingest and the stream reject fills in the future."""
    end = datetime.combine(first + timedelta(days=days), dt_time(), UTC)
    if end > datetime.now(UTC):
        raise ConfigError(
            f"--start {first.isoformat()} with --days {days}: the venue would end on "
            f"{end.date().isoformat()}, after now, and ingest and stream reject fills in "
            "the future; start earlier or simulate fewer days")


@contextmanager
def _stop_on_signals() -> Iterator[list[bool]]:
    """Turn Ctrl-C and SIGTERM into a flag the live writer looks at between batches."""
    flag = [False]

    def handler(signum: int, frame: FrameType | None) -> None:
        flag[0] = True

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _progress(out: Console, total: int) -> Progress:
    return Progress(TextColumn("simulating"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("accounts"), TimeElapsedColumn(), console=out, transient=True)


@app.command("simulate")
def simulate(
    out: Path = typer.Option(..., "--out", help="Output folder for the Parquet tables."),
    accounts: int = typer.Option(3_000, "--accounts", help="Number of accounts."),
    days: int = typer.Option(60, "--days", help="Length of the window in days."),
    seed: int = typer.Option(0, "--seed", min=0,
                             help="Seed; the same seed writes identical files."),
    start: str | None = typer.Option(
        None, "--start", help="First day, YYYY-MM-DD (default 2024-01-01, inside the real history)."
    ),
    chunk_accounts: int = typer.Option(
        2_000, "--chunk-accounts", help="Accounts per fills part (memory bound)."
    ),
    difficulty: str = typer.Option(
        "easy",
        "--difficulty",
        help=f"How hard the venue is to read: {'|'.join(DIFFICULTIES)} (easy: pure, well "
        "separated archetypes; realistic and hard: blends, migrations, thin accounts, a "
        "regime change, churn with visible precursors).",
    ),
    crash_at: str | None = typer.Option(
        None, "--crash-at", help="Script a crash on this day, YYYY-MM-DD: every underlying "
        "drops by --crash-size over --crash-hours from --crash-hour UTC, liquidating the "
        "leveraged longs the drop takes through their maintenance margin."),
    crash_size: float = typer.Option(DEFAULT_CRASH_SIZE, "--crash-size",
                                     help="Fall of the crash, a fraction of the price."),
    crash_hour: float = typer.Option(DEFAULT_CRASH_START_HOUR, "--crash-hour",
                                     help="UTC hour the crash's drop starts."),
    crash_hours: float = typer.Option(DEFAULT_CRASH_HOURS, "--crash-hours",
                                      help="Length of the crash's drop in hours."),
    live: bool = typer.Option(False, "--live", help="Then write the fills from "
                              "--history-until on, in time order, to --to at --rate."),
    to: str | None = typer.Option(None, "--to", help="Live target: redis://HOST:PORT/STREAM, "
                                  "a JSONL file (appended), or - for stdout."),
    rate: float = typer.Option(0.0, "--rate", min=0.0,
                               help="Live fills per second (0: as fast as possible)."),
    history_until: str | None = typer.Option(
        None, "--history-until", help="Live start: the fills before it, the accounts, "
        "transfers and market bars known by then go to OUT/history (and to --db); the "
        "rest are written live. Default: all fills are live."),
    db: Path | None = typer.Option(None, "--db", help="Ingest OUT/history into this store "
                                   "(needs --history-until)."),
    maxlen: int | None = typer.Option(None, "--maxlen", min=1,
                                      help="Keep about this many stream entries (XADD MAXLEN ~)."),
    pack: int | None = typer.Option(None, "--pack", min=1,
                                    help="Fills per Redis entry (default 1: an entry a fill). "
                                    "More writes packed entries, each a field of JSON lines."),
) -> None:
    """Simulate a crypto derivatives venue with known trader archetypes.

    Writes fills/part-*.parquet, accounts, market, transfers and truth under OUT. With
    --live, then writes the live part of the fills to --to; Ctrl-C or SIGTERM stops it
    cleanly, and the same command run again goes on after the last fill the target holds.
    """
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: is a file; give a folder for the tables")
    first = _parse_day(start, "--start") if start is not None else DEFAULT_START
    _check_past(first, days)
    level = get_difficulty(difficulty)
    crash = None
    if crash_at is not None:
        crash = Crash(_parse_day(crash_at, "--crash-at"), size=crash_size,
                      start_hour=crash_hour, hours=crash_hours)
        crash.check(first, days)
    if not live:
        for name, value in (("--to", to), ("--history-until", history_until), ("--db", db),
                            ("--maxlen", maxlen), ("--pack", pack)):
            if value is not None:
                raise ConfigError(f"{name} applies to --live only")
        _simulate(out, accounts, days, seed, first, chunk_accounts, level.name, crash)
        return
    _live(out, accounts, days, seed, first, level.name, crash, to, rate, history_until, db,
          maxlen, pack)


def _simulate(out: Path, accounts: int, days: int, seed: int, first: date, chunk_accounts: int,
              difficulty: str, crash: Crash | None) -> None:
    with _progress(console, accounts) as bar:
        task = bar.add_task("simulate", total=accounts)
        summary = simulate_venue(
            out, accounts=accounts, days=days, seed=seed, start=first,
            chunk_accounts=chunk_accounts, difficulty=difficulty, crash=crash,
            progress=lambda done, total: bar.update(task, completed=done),
        )
    console.print(
        f"wrote {summary.fills:,} fills in {summary.parts} part(s), {summary.accounts:,} accounts, "
        f"{summary.transfers:,} transfers over {summary.days} days from {summary.start} "
        f"to {summary.out} ({summary.difficulty}) in {summary.seconds:.1f}s "
        f"({summary.fills_per_second:,.0f} fills/s)"
    )
    if summary.synthetic_days:
        console.print(
            f"{summary.synthetic_days} day(s) past the real market history use a jump-diffusion"
        )
    if crash is not None:
        minutes = round(crash.start_hour * 60)
        console.print(f"crash on {crash.day} from {minutes // 60:02d}:{minutes % 60:02d} UTC "
                      f"for {crash.hours:g} h: -{crash.size:.0%} "
                      "(see market.event_start, truth.crash_liquidated_at)")
    for name, count in summary.archetypes.items():
        console.print(f"  {name:<24} {count:>7,}")


def _live(out: Path, accounts: int, days: int, seed: int, first: date, difficulty: str,
          crash: Crash | None, to: str | None, rate: float, history_until: str | None,
          db: Path | None, maxlen: int | None, pack: int | None) -> None:
    from traderseg.ingest import ingest
    from traderseg.simulate.live import live_fills, open_sink, prepare_live, write_live

    if to is None:
        raise ConfigError("--live needs --to: redis://HOST:PORT/STREAM, a JSONL file, or -")
    if db is not None and history_until is None:
        raise ConfigError("--db needs --history-until: the store takes the history before it")
    until = parse_as_of(history_until, "--history-until") if history_until else None
    sink = open_sink(to, maxlen=maxlen, pack=pack)
    # stdout may carry the fills: every message goes to stderr
    with _progress(err_console, accounts) as bar:
        task = bar.add_task("simulate", total=accounts)
        plan = prepare_live(out, accounts=accounts, days=days, seed=seed, start=first,
                            difficulty=difficulty, crash=crash, history_until=until,
                            progress=lambda done, total: bar.update(task, completed=done))
    err_console.print(f"{'simulated' if plan.simulated else 'found the simulation in'} {out}",
                      soft_wrap=True, markup=False)
    if plan.history is not None:
        err_console.print(f"history before {until}: {plan.history}", soft_wrap=True,
                          markup=False)
        if db is not None:
            report = ingest([plan.history], db)
            err_console.print(f"stored {report.total('stored'):,} rows of the history in {db} "
                              f"({report.total('already_present'):,} already there)",
                              soft_wrap=True, markup=False)
    fills = live_fills(out, since=plan.live_start)
    pace = f"{rate:,.0f} fills/s" if rate else "full speed"
    err_console.print(f"writing live fills to {sink.name} at {pace}; Ctrl-C stops",
                      soft_wrap=True, markup=False)
    try:
        with _stop_on_signals() as stop:
            result = write_live(fills, sink, rate=rate, should_stop=lambda: stop[0])
    finally:
        sink.close()
    skipped = f", {result.skipped:,} already there" if result.skipped else ""
    err_console.print(
        f"{'stopped: ' if result.stopped else ''}wrote {result.written:,} fills to {sink.name} "
        f"in {result.seconds:.1f}s ({result.fills_per_second:,.0f} fills/s){skipped}",
        soft_wrap=True, markup=False)
