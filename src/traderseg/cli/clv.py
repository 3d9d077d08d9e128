"""``traderseg clv``: lifetime value of the venue's fee revenue, or of any transaction table.

Two inputs: the fills store (``--db``: value = the venue's net fee revenue per active day)
or any (customer, time, value) table (``--transactions FILE --customer COL --time COL
--value COL``: value = the net value per day). See ``docs/clv.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pandas as pd
import typer
from rich.table import Table

from traderseg.analysis.clv.data import rfm_summary
from traderseg.analysis.clv.venue import (
    ScoredSummary,
    VenueCLV,
    score_summary,
    segment_summary,
    venue_clv,
)
from traderseg.cli import app, console, err_console
from traderseg.cli.args import parse_as_of
from traderseg.cli.format import add_rows, count, share, table, usd
from traderseg.cli.paths import check_out_file
from traderseg.errors import ConfigError, DataError, SchemaError
from traderseg.store import open_store, read_parquet_file

_MODELS = ("bgnbd", "paretonbd")
_LEGEND = ("expected value and CLV (discounted at {rate:.0%} a year) over the horizon, "
           "alive = mean P(alive)")


def _segment_table(segments: pd.DataFrame, title: str,
                   names: dict[str, str] | None = None) -> Table:
    out = table(title, ["segment", "accounts", "alive", "value\nto date", "expected\nvalue",
                        "CLV", "mean\nCLV", "rebate\nearners"], [False] + [True] * 7)
    names = names or {}
    rows = [(f"{seg} {names[str(seg)]}" if str(seg) in names else str(seg),
             count(row["accounts"]), share(row["mean_p_alive"], 0), usd(row["revenue_to_date"]),
             usd(row["expected_revenue"]), usd(row["clv"]), usd(row["mean_clv"]),
             count(row["rebate_earners"])) for seg, row in segments.iterrows()]
    return add_rows(out, rows)


def _segment_names(assigned: pd.DataFrame | None) -> dict[str, str]:
    if assigned is None or "segment_name" not in assigned.columns:
        return {}
    pairs = assigned[["segment", "segment_name"]].dropna().drop_duplicates("segment")
    return {str(k): str(v) for k, v in zip(pairs["segment"], pairs["segment_name"], strict=True)}


def _print_fit(model: str, scored: ScoredSummary | VenueCLV, n: int, out: Path) -> None:
    params = ", ".join(f"{k}={v:.4g}" for k, v in scored.activity_model.params_.items())
    gg = ", ".join(f"{k}={v:.4g}" for k, v in scored.value_model.params_.items())
    console.print(f"activity model {model}: {params}", soft_wrap=True)
    console.print(f"Gamma-Gamma: {gg}", soft_wrap=True)
    basis = scored.accounts["value_basis"].value_counts()
    console.print("valued by: " + ", ".join(f"{k} {v:,}" for k, v in basis.items()),
                  soft_wrap=True)
    for note in scored.notes:
        console.print(f"note: {note}", soft_wrap=True, markup=False)
    console.print(f"{n:,} scored -> {out}", soft_wrap=True, markup=False)


def _read_transactions(path: Path, customer: str, time: str, value: str) -> pd.DataFrame:
    if not path.is_file():
        raise ConfigError(f"--transactions {path}: file not found")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, dtype={customer: str})
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"--transactions {path}: cannot read it ({exc})") from None
    missing = [c for c in (customer, time, value) if c not in frame.columns]
    if missing:
        raise SchemaError(f"--transactions {path}: no column(s) {', '.join(missing)}; found "
                          f"{', '.join(map(str, frame.columns))}")
    times = pd.to_datetime(frame[time], utc=True, errors="coerce", format="mixed")
    bad = times.isna() & frame[time].notna()
    if bad.any():
        i = int(bad.to_numpy().argmax())
        raise DataError(f"--transactions {path}: {time!r} of customer "
                        f"{frame[customer].iloc[i]!r} is not a time: {frame[time].iloc[i]!r}")
    values = pd.to_numeric(frame[value], errors="coerce")
    bad = values.isna() & frame[value].notna()
    if bad.any():
        i = int(bad.to_numpy().argmax())
        raise DataError(f"--transactions {path}: {value!r} of customer "
                        f"{frame[customer].iloc[i]!r} is not a number: {frame[value].iloc[i]!r}")
    return pd.DataFrame({"customer": frame[customer].astype(str), "time": times,
                         "value": values})


@app.command("clv")
def clv_command(
    as_of: str = typer.Option(..., "--as-of", help="Cut-off time (UTC), e.g. 2024-06-01."),
    out: Path = typer.Option(..., "--out", help="Parquet file for the per-account scores."),
    db: Path | None = typer.Option(None, "--db", help="DuckDB store file with the fills."),
    transactions: Path | None = typer.Option(
        None, "--transactions", help="CSV / Parquet of (customer, time, value) rows instead."),
    customer: str = typer.Option("customer_id", "--customer", help="Customer column."),
    time: str = typer.Option("time", "--time", help="Time column (ISO text or datetimes)."),
    value: str = typer.Option("value", "--value",
                              help="Value column (negative = return / cancellation)."),
    drop_nonpositive: bool = typer.Option(
        False, "--drop-nonpositive",
        help="Drop days whose net value is <= 0 (default: keep them as net-negative days)."),
    horizon_days: float = typer.Option(90.0, "--horizon-days", help="Forecast horizon in days."),
    discount_rate: float = typer.Option(0.10, "--discount-rate",
                                        help="Annual discount rate of the CLV."),
    assignments: Path | None = typer.Option(
        None, "--assignments", help="Parquet file with account_id and segment columns."),
    model: str = typer.Option("bgnbd", "--model", help=f"Activity model: {', '.join(_MODELS)}."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace --out if it exists."),
) -> None:
    """Fit BG/NBD (or Pareto/NBD) and Gamma-Gamma on active days and their value; score CLV."""
    if model not in _MODELS:
        raise ConfigError(f"--model {model!r}: expected one of {', '.join(_MODELS)}")
    if (db is None) == (transactions is None):
        raise ConfigError("give either --db (the fills store) or --transactions FILE")
    if not horizon_days > 0:
        raise ConfigError(f"--horizon-days must be > 0, not {horizon_days}")
    check_out_file(out, "--out", overwrite=overwrite)
    activity: Literal["bgnbd", "paretonbd"] = "paretonbd" if model == "paretonbd" else "bgnbd"
    cut = pd.Timestamp(parse_as_of(as_of))
    days = f"{horizon_days:g}"
    if transactions is not None:
        tx = _read_transactions(transactions, customer, time, value)
        cal_end = (cut - pd.Timedelta(microseconds=1)).normalize()
        summary = rfm_summary(tx[tx["time"] < cut], "customer", "time", "value", cal_end,
                              freq="D", nonpositive="drop" if drop_nonpositive else "keep")
        summary = summary.rename(columns={"value_to_date": "revenue_to_date"})
        with err_console.status("fitting the activity and value models"):
            scored = score_summary(summary, horizon_days, discount_rate, activity=activity)
        scored.accounts.reset_index().to_parquet(out, index=False)
        title = (f"lifetime value of {transactions.name} as of {cut:%Y-%m-%d %H:%M} UTC, "
                 f"next {days} days: {_LEGEND.format(rate=discount_rate)}")
        console.print(_segment_table(segment_summary(scored.accounts.assign(segment="all")),
                                     title))
        a = summary.attrs
        console.print(f"customer-days {a['periods']:,}; with a net value <= 0: "
                      f"{a['nonpositive_periods']:,} "
                      f"({'dropped' if drop_nonpositive else 'kept'})", soft_wrap=True)
        _print_fit(model, scored, len(scored.accounts), out)
        return
    assert db is not None
    assigned = (read_parquet_file(assignments, "--assignments") if assignments is not None
                else None)
    if assigned is not None and assigned.empty:
        raise DataError(f"--assignments {assignments}: no accounts")
    con = open_store(db, read_only=True)
    try:
        with err_console.status("summarising active days and fitting the models"):
            result = venue_clv(con, cut, horizon_days, discount_rate, assigned,
                               activity=activity)
    finally:
        con.close()
    result.accounts.reset_index().to_parquet(out, index=False)
    segments = result.segments if result.segments is not None else segment_summary(
        result.accounts.assign(segment="all"))
    title = (f"lifetime value of fee revenue as of {result.as_of:%Y-%m-%d %H:%M} UTC, "
             f"next {days} days: {_LEGEND.format(rate=discount_rate)}")
    console.print(_segment_table(segments, title, _segment_names(assigned)))
    _print_fit(model, result, len(result.accounts), out)
