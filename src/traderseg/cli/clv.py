"""``traderseg clv``: lifetime value of the venue's fee revenue per account and segment."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import typer
from rich.table import Table

from traderseg.analysis.clv.venue import VenueCLV, segment_summary, venue_clv
from traderseg.cli import app, console
from traderseg.errors import ConfigError, DataError, SchemaError
from traderseg.store import connect

_MODELS = ("bgnbd", "paretonbd")


def _read_assignments(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise ConfigError(f"--assignments {path}: file not found")
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise SchemaError(f"--assignments {path}: not a readable Parquet file ({exc})") from exc


def _segment_table(result: VenueCLV) -> Table:
    accounts = result.accounts
    if result.segments is not None:
        segments = result.segments
    else:
        segments = segment_summary(accounts.assign(segment="all"))
    days = f"{result.horizon_days:g}"
    table = Table(title=f"lifetime value of fee revenue as of {result.as_of:%Y-%m-%d %H:%M} UTC, "
                        f"next {days} days")
    for name in ("segment", "accounts", "mean P(alive)", f"active days ({days}d)",
                 "revenue to date", f"exp. revenue ({days}d)", "CLV (discounted)", "mean CLV",
                 "rebate earners"):
        table.add_column(name, justify="left" if name == "segment" else "right")
    for seg, row in segments.iterrows():
        table.add_row(str(seg), f"{int(row['accounts']):,}", f"{row['mean_p_alive']:.2f}",
                      f"{row['expected_active_days']:,.0f}", f"{row['revenue_to_date']:,.0f}",
                      f"{row['expected_revenue']:,.0f}", f"{row['clv']:,.0f}",
                      f"{row['mean_clv']:,.2f}", f"{int(row['rebate_earners']):,}")
    return table


@app.command("clv")
def clv_command(
    db: Path = typer.Option(..., "--db", help="DuckDB store file with the fills."),
    as_of: str = typer.Option(..., "--as-of", help="Cut-off time (UTC), e.g. 2024-06-01."),
    out: Path = typer.Option(..., "--out", help="Parquet file for the per-account scores."),
    horizon_days: float = typer.Option(90.0, "--horizon-days", help="Forecast horizon in days."),
    discount_rate: float = typer.Option(0.10, "--discount-rate",
                                        help="Annual discount rate of the CLV."),
    assignments: Path | None = typer.Option(
        None, "--assignments", help="Parquet file with account_id and segment columns."),
    model: str = typer.Option("bgnbd", "--model", help=f"Activity model: {', '.join(_MODELS)}."),
) -> None:
    """Fit BG/NBD (or Pareto/NBD) and Gamma-Gamma on active days and fee revenue; score CLV."""
    if model not in _MODELS:
        raise ConfigError(f"--model {model!r}: expected one of {', '.join(_MODELS)}")
    if not db.exists():
        raise DataError(f"--db {db}: store not found")
    assigned = _read_assignments(assignments) if assignments is not None else None
    con = connect(db, read_only=True)
    try:
        result = venue_clv(con, as_of, horizon_days, discount_rate, assigned,
                           activity="paretonbd" if model == "paretonbd" else "bgnbd")
    finally:
        con.close()
    result.accounts.reset_index().to_parquet(out, index=False)
    console.print(_segment_table(result))
    params = ", ".join(f"{k}={v:.4g}" for k, v in result.activity_model.params_.items())
    gg = ", ".join(f"{k}={v:.4g}" for k, v in result.value_model.params_.items())
    console.print(f"activity model {model}: {params}; Gamma-Gamma: {gg}")
    console.print(f"{len(result.accounts):,} accounts scored -> {out}")
