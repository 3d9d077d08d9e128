"""``traderseg report``: the self-contained HTML report."""

from __future__ import annotations

from pathlib import Path

import typer

from traderseg.cli import app, console
from traderseg.cli.paths import HTML, check_out_path
from traderseg.errors import DataError


@app.command("report")
def report_command(
    db: Path = typer.Option(..., "--db", help="DuckDB fills store."),
    model: Path = typer.Option(..., "--model",
                               help="Saved model directory or registry (its champion)."),
    out: Path = typer.Option(Path("report.html"), "--out", help="HTML file to write."),
    as_of: str = typer.Option(None, "--as-of", help="Report cutoff (UTC); default the model's."),
    compare: str = typer.Option(
        None, "--compare-as-of",
        help="Earlier cutoff for migration and drift; default the model's training cutoff "
        "when earlier, else 30 days before --as-of."),
    assignments: Path = typer.Option(
        None, "--assignments",
        help="Parquet assignments to show instead of the model's at --as-of."),
    previous: Path = typer.Option(
        None, "--previous", help="Earlier Parquet assignments that migration starts from."),
    title: str = typer.Option(None, "--title", help="Page title."),
) -> None:
    """Write the HTML report, one file that works offline.

    Segments with revenue and PnL, profiles, map of accounts, options behaviour, leverage
    and risk, concentration, migration, market events, lifetime value and churn, drift and
    the bias audit.
    """
    check_out_path(out, "--out", makes_folder=True, writes=HTML)
    from traderseg.report import build_report

    if not db.exists():
        raise DataError(f"--db {db}: store not found")
    for flag, path in (("--assignments", assignments), ("--previous", previous)):
        if path is not None and not path.is_file():
            raise DataError(f"{flag} {path}: file not found")
    with console.status("running the analyses and drawing the report"):
        built = build_report(db, model, out, as_of=as_of, compare_as_of=compare, title=title,
                             assignments=assignments, previous=previous)
    for section, why in built.unavailable.items():
        console.print(f"[yellow]section {section} left out:[/] {why}")
    size = built.path.stat().st_size
    console.print(f"wrote {built.path} ({size / 1e6:.1f} MB)")
    console.print(str(built.path.resolve()))
