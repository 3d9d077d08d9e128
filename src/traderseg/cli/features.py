"""``traderseg features``: compute the catalogue as of a cutoff, or describe it."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from traderseg.cli import app, console
from traderseg.cli.args import parse_as_of, parse_windows
from traderseg.cli.paths import check_out_file
from traderseg.errors import SchemaError
from traderseg.features.catalog import CATALOG, CATALOG_VERSION
from traderseg.features.compute import LIFETIME_ONLY


def describe_table() -> Table:
    """Rich table listing every feature of the catalogue."""
    table = Table(title=f"feature catalogue v{CATALOG_VERSION} ({len(CATALOG)} features)")
    for col in ("name", "family", "unit", "transform", "windowed", "description"):
        table.add_column(col, overflow="fold")
    for f in CATALOG:
        windowed = "lifetime" if f.name in LIFETIME_ONLY else "yes"
        table.add_row(f.name, f.family, f.unit, f.transform, windowed, f.description)
    return table


@app.command("features")
def features_command(
    db: Path = typer.Option(None, "--db", help="DuckDB fills store."),
    as_of: str = typer.Option(
        None, "--as-of", help="Cutoff (UTC); fills at or after it are ignored."
    ),
    windows: str = typer.Option("7d,30d,90d,all", "--windows", help="Comma-separated windows."),
    out: Path = typer.Option(None, "--out", help="Parquet file to write (one row per account)."),
    approx_quantiles: bool = typer.Option(
        False, "--approx-quantiles", help="Approximate instead of exact per-account quantiles."
    ),
    describe: bool = typer.Option(False, "--describe", help="List the catalogue and exit."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace --out if it exists."),
) -> None:
    """Compute per-account behavioural features as of a cutoff, or list the catalogue."""
    if describe:
        console.print(describe_table())
        return
    if db is None or as_of is None or out is None:
        raise SchemaError("features needs --db, --as-of and --out (or --describe)")
    from traderseg.features.compute import compute_features
    from traderseg.store import open_store

    wins = parse_windows(windows)
    cutoff = parse_as_of(as_of)
    check_out_file(out, "--out", overwrite=overwrite)
    open_store(db, read_only=True).close()
    with console.status(f"computing {len(CATALOG)} features x {len(wins)} windows"):
        df = compute_features(db, cutoff, wins, exact_quantiles=not approx_quantiles)
    df.reset_index().to_parquet(out, index=False)
    console.print(
        f"wrote {len(df):,} accounts x {df.shape[1]} features as of {as_of} to {out}"
    )
