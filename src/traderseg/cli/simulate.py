"""``traderseg simulate``: write a synthetic venue as canonical Parquet tables."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from traderseg.cli import app, console
from traderseg.errors import ConfigError
from traderseg.simulate import DEFAULT_START, simulate_venue
from traderseg.simulate.difficulty import DIFFICULTIES, get_difficulty


def _parse_start(value: str | None) -> date:
    if value is None:
        return DEFAULT_START
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise ConfigError(f"--start must be YYYY-MM-DD, got {value!r}") from None


@app.command("simulate")
def simulate(
    out: Path = typer.Option(..., "--out", help="Output folder for the Parquet tables."),
    accounts: int = typer.Option(3_000, "--accounts", help="Number of accounts."),
    days: int = typer.Option(60, "--days", help="Length of the window in days."),
    seed: int = typer.Option(0, "--seed", help="Seed; the same seed writes identical files."),
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
) -> None:
    """Simulate a crypto derivatives venue with known trader archetypes.

    Writes fills/part-*.parquet, accounts, market, transfers and truth under OUT.
    """
    first = _parse_start(start)
    level = get_difficulty(difficulty)
    with Progress(
        TextColumn("simulating"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("accounts"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("simulate", total=accounts)
        summary = simulate_venue(
            out,
            accounts=accounts,
            days=days,
            seed=seed,
            start=first,
            chunk_accounts=chunk_accounts,
            difficulty=level,
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
    for name, count in summary.archetypes.items():
        console.print(f"  {name:<24} {count:>7,}")
