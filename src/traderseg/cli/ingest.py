"""``traderseg ingest``: load venue exports or simulator output into the store."""

from __future__ import annotations

from pathlib import Path

import typer

from traderseg.cli import app, console, err_console
from traderseg.cli import format as fmt
from traderseg.errors import ConfigError, DataError
from traderseg.ingest import FORMATS, ingest


def _asset_prices(values: list[str]) -> dict[str, float]:
    prices: dict[str, float] = {}
    for item in values:
        asset, sep, price = item.partition("=")
        try:
            prices[asset.strip().upper()] = float(price)
        except ValueError:
            sep = ""
        if not sep or not asset.strip():
            raise ConfigError(f"--asset-price {item!r}: expected ASSET=PRICE, e.g. BNB=600")
    return prices


@app.command("ingest")
def ingest_command(
    paths: list[Path] = typer.Argument(..., help="Files or directories to load."),
    db: Path = typer.Option(..., "--db", help="DuckDB store file (created if missing)."),
    format: str = typer.Option("canonical", "--format", "-f",
                               help=f"Source format: {', '.join(FORMATS)}."),
    mapping: Path | None = typer.Option(None, "--mapping", "-m",
                                        help="YAML column mapping for a generic import."),
    table: str | None = typer.Option(None, "--table", "-t",
                                     help="Canonical table (default: from file/folder name)."),
    account_id: str | None = typer.Option(None, "--account-id",
                                          help="Account of an export without account column."),
    asset_price: list[str] = typer.Option([], "--asset-price",
                                          help="USD price of a fee asset, e.g. BNB=600."),
    max_reject_share: float | None = typer.Option(
        None, "--max-reject-share", min=0.0, max=1.0,
        help="Fail (exit 2, file not stored) when a file's share of rejected rows is above this."),
) -> None:
    """Validate source files and load them into the store; bad rows go to ``rejects``.

    Exits with code 2 when a file is refused, when every row of a file was rejected, or
    when a file's reject share is above ``--max-reject-share``.
    """
    prices = _asset_prices(asset_price)
    with err_console.status("checking the sources") as status:
        def progress(i: int, n: int, path: Path) -> None:
            status.update(f"loading file {i} of {n}: {path.name}")

        report = ingest(paths, db, format=format, mapping=mapping, table=table,
                        account_id=account_id, asset_prices=prices,
                        max_reject_share=max_reject_share, on_source=progress)
    out = fmt.table(f"ingest run {report.run_id}",
                ["file", "table", "read", "stored", "rejected", "already\npresent"],
                [False, False, True, True, True, True])
    rows: list[tuple[str, ...]] = [
        (Path(s.source).name, s.table, f"{s.read:,}", f"{s.stored:,}", f"{s.rejected:,}",
         f"{s.already_present:,}") for s in report.sources]
    if len(report.sources) > 1:
        rows.append(("total", "", *(f"{report.total(k):,}" for k in
                                    ("read", "stored", "rejected", "already_present"))))
    fmt.add_rows(out, rows)
    console.print(out)
    for s in report.sources:
        if s.top_rejects:
            console.print(f"rejects of {s.source} (most common first):", soft_wrap=True,
                          markup=False)
            for g in s.top_rejects:
                console.print(f"  {g.count:>9,}  {g.field:<16} first at line {g.first_line}: "
                              f"{g.reason}", soft_wrap=True, markup=False)
    if report.total("rejected"):
        console.print(f"{report.total('rejected'):,} rejected rows: see the rejects table in {db}",
                      soft_wrap=True, markup=False)
    empty = [s for s in report.sources if s.all_rejected]
    if empty:
        names = ", ".join(s.source for s in empty)
        raise DataError(f"every row was rejected in {len(empty)} file(s): {names}")
