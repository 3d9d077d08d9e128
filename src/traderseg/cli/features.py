"""``traderseg features``: compute the catalogue as of a cutoff, or describe it."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from traderseg.cli import app, console
from traderseg.cli.args import parse_as_of, parse_windows
from traderseg.cli.paths import check_out_file
from traderseg.errors import SchemaError
from traderseg.features.catalog import CATALOG, CATALOG_VERSION, LIFETIME_ONLY


def describe_table() -> Table:
    """Rich table listing every feature of the catalogue."""
    table = Table(title=f"feature catalogue v{CATALOG_VERSION} ({len(CATALOG)} features)")
    for col in ("name", "family", "unit", "transform", "windowed", "description"):
        table.add_column(col, overflow="fold")
    for f in CATALOG:
        windowed = "lifetime" if f.name in LIFETIME_ONLY else "yes"
        table.add_row(f.name, f.family, f.unit, f.transform, windowed, f.text)
    return table


@app.command("features")
def features_command(
    db: Path = typer.Option(None, "--db", help="DuckDB fills store."),
    as_of: str = typer.Option(
        None, "--as-of", help="Cutoff (UTC); fills at or after it are ignored."
    ),
    windows: str = typer.Option("7d,30d,90d,all", "--windows", help="Comma-separated windows."),
    out: Path = typer.Option(None, "--out", help="Parquet file to write (one row per account)."),
    exact_quantiles: bool = typer.Option(
        False, "--exact-quantiles",
        help="Exact per-account notional quantiles from the fills instead of the sketch.",
    ),
    tiles: bool = typer.Option(
        True, "--tiles/--no-tiles", help="Use the store's daily tiles when they are current."
    ),
    rebuild_tiles: bool = typer.Option(
        False, "--rebuild-tiles", help="Rebuild the store's daily tiles from the fills first."
    ),
    engine: str = typer.Option(
        "duckdb", "--engine", help="duckdb (default) or spark (PySpark local[2] session)."
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
    if rebuild_tiles:
        from traderseg.features import tiles as tile_store
        from traderseg.store import connect

        con = connect(db)
        try:
            with console.status("rebuilding the daily tiles"):
                n = tile_store.rebuild(con)
        finally:
            con.close()
        console.print(f"rebuilt {n:,} daily tiles")
    if engine == "spark":
        from traderseg.features.spark import compute_features_spark

        with console.status(f"computing {len(CATALOG)} features x {len(wins)} windows on Spark"):
            df = compute_features_spark(db, cutoff, wins, exact_quantiles=exact_quantiles)
        source = "the fills, on Spark"
    elif engine == "duckdb":
        with console.status(f"computing {len(CATALOG)} features x {len(wins)} windows"):
            df = compute_features(db, cutoff, wins, exact_quantiles=exact_quantiles,
                                  tiles="auto" if tiles else "never")
        if df.attrs["source"] == "tiles":
            source = "the store's daily tiles"
        elif tiles:
            source = f"the fills ({df.attrs['tiles_status']}; --rebuild-tiles to rebuild them)"
        else:
            source = "the fills"
    else:
        raise SchemaError(f"--engine {engine!r}: expected duckdb or spark")
    out.parent.mkdir(parents=True, exist_ok=True)
    df.reset_index().to_parquet(out, index=False)
    console.print(
        f"wrote {len(df):,} accounts x {df.shape[1]} features as of {as_of} to {out} "
        f"(from {source})"
    )
