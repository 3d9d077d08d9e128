"""``traderseg report``: the self-contained HTML report."""

from __future__ import annotations

from pathlib import Path

import typer

from traderseg.cli import app, console
from traderseg.errors import DataError


@app.command("report")
def report_command(
    db: Path = typer.Option(..., "--db", help="DuckDB fills store."),
    model: Path = typer.Option(..., "--model", help="Saved model directory."),
    out: Path = typer.Option(Path("report.html"), "--out", help="HTML file to write."),
    as_of: str = typer.Option(None, "--as-of", help="Report cutoff (UTC); default the model's."),
    compare: str = typer.Option(
        None, "--compare-as-of",
        help="Earlier cutoff for migration and drift; default the model's training cutoff "
        "when earlier, else 30 days before --as-of."),
    title: str = typer.Option(None, "--title", help="Page title."),
) -> None:
    """Write the HTML report, one file that works offline.

    Segments and revenue, profiles, map of accounts, options behaviour, risk, migration,
    market events, drift and the bias audit.
    """
    from traderseg.report import build_report

    if not db.exists():
        raise DataError(f"--db {db}: store not found")
    with console.status("running the analyses and drawing the report"):
        built = build_report(db, model, out, as_of=as_of, compare_as_of=compare, title=title)
    for section, why in built.unavailable.items():
        console.print(f"[yellow]section {section} left out:[/] {why}")
    size = built.path.stat().st_size
    console.print(f"wrote {built.path} ({size / 1e6:.1f} MB)")
