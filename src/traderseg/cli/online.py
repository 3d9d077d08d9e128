"""Commands of the real-time half: ``stream``, ``controls`` and the audit log reader."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from traderseg.cli import app, audit_app, console, err_console
from traderseg.cli.format import frame_table
from traderseg.cli.paths import PARQUET_OR_CSV, check_out_path, write_frame
from traderseg.errors import ConfigError, DataError
from traderseg.online import BATCH_SIZE

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d)?\s*$")
_UNIT_S = {None: 1.0, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str, what: str) -> float:
    """Seconds in ``30s``, ``15m``, ``6h``, ``1d`` (a bare number is seconds)."""
    m = _DURATION.match(text)
    if not m:
        raise ConfigError(f"{what}: {text!r} is not a duration (e.g. 30s, 15m, 6h, 1d)")
    return float(m.group(1)) * _UNIT_S[m.group(2)]


@app.command("stream")
def stream_command(
    source: str = typer.Option(..., "--source",
                               help="replay:PATH (file or folder), redis://HOST:PORT/STREAM, "
                               "or - for JSON lines on standard input."),
    db: Path = typer.Option(..., "--db", help="DuckDB store (fills, online state, controls)."),
    model: Path = typer.Option(..., "--model", help="Saved segment model (or registry)."),
    policy: Path = typer.Option(..., "--policy", help="Policy YAML file."),
    predictors: Path = typer.Option(None, "--predictors",
                                    help="Churn and liquidation-risk models (traderseg "
                                    "predict train); without them rules on predictions "
                                    "never match."),
    decide_every: str = typer.Option("15m", "--decide-every",
                                     help="Decision interval in data time (30s, 15m, 6h)."),
    speed: float = typer.Option(0.0, "--speed",
                                help="Replay: data seconds per wall second (0: as fast as "
                                "possible)."),
    consumer: str = typer.Option("consumer-1", "--consumer",
                                 help="Consumer name (checkpoint and Redis consumer)."),
    group: str = typer.Option("traderseg", "--group", help="Redis consumer group."),
    claim_idle: str = typer.Option("30s", "--claim-idle",
                                   help="Claim other consumers' pending entries idle longer "
                                   "than this."),
    batch_size: int = typer.Option(BATCH_SIZE, "--batch-size", min=1,
                                   help="Most fills to read at once (packed Redis entries "
                                   "hold several)."),
    checkpoint_every: str = typer.Option("1s", "--checkpoint-every",
                                         help="Longest wall time between checkpoints."),
    idle_stop: str = typer.Option(None, "--idle-stop",
                                  help="Stop after this long without a message (Redis)."),
    margin: float = typer.Option(0.10, "--margin",
                                 help="Membership lead a new segment needs (hysteresis)."),
    dwell: str = typer.Option("1d", "--dwell", help="How long the lead must last."),
    publish: str = typer.Option(None, "--publish",
                                help="redis://HOST:PORT: also write each account's controls "
                                "to Redis hashes."),
) -> None:
    """Consume fills into the store, online features, segments and controls."""
    from traderseg.online.run import run_stream

    stats = run_stream(
        source, db, model, policy, predictors=predictors,
        decide_every_s=parse_duration(decide_every, "--decide-every"), speed=speed,
        consumer=consumer, group=group,
        claim_idle_ms=int(parse_duration(claim_idle, "--claim-idle") * 1000),
        batch_size=batch_size,
        checkpoint_s=parse_duration(checkpoint_every, "--checkpoint-every"),
        idle_stop_s=None if idle_stop is None else parse_duration(idle_stop, "--idle-stop"),
        margin=margin, dwell_days=parse_duration(dwell, "--dwell") / 86400.0,
        publish=publish)
    err_console.print(
        f"{stats.read:,} messages: {stats.accepted:,} fills accepted, {stats.duplicates:,} "
        f"seen before, {stats.rejected:,} rejected (see `rejects`), {stats.late:,} late; "
        f"{stats.decisions:,} decisions over {stats.ticks:,} intervals, "
        f"{stats.audit_rows:,} control changes; {stats.checkpoints:,} checkpoints in "
        f"{stats.seconds:.1f} s ({stats.fills_per_s:,.0f} fills/s)", soft_wrap=True)
    if stats.rejected and not (stats.accepted or stats.duplicates):
        # as `ingest` does: a source none of whose messages is a fill is most likely the
        # wrong one (misnamed columns, another file)
        raise DataError(f"{source}: every message was rejected ({stats.rejected:,}); the "
                        "reasons are in the store's `rejects` table")


@app.command("controls")
def controls_command(
    db: Path = typer.Option(..., "--db", help="DuckDB store."),
    out: Path = typer.Option(None, "--out", help="Parquet (or .csv) file for every account."),
) -> None:
    """Export the current segment, risk profile and controls of every account."""
    check_out_path(out, "--out", writes=PARQUET_OR_CSV)
    from traderseg.online.tables import read_controls
    from traderseg.store import open_store

    con = open_store(db, read_only=True)
    try:
        frame = read_controls(con) if _has_table(con, "controls") else None
    finally:
        con.close()
    if frame is None or frame.empty:
        raise ConfigError(f"{db}: no controls yet (run `traderseg stream` first)")
    if out is None:
        counts = (frame.groupby(["segment_id", "segment_name"]).agg(
            accounts=("account_id", "size"), review=("review_flag", "sum"),
            max_leverage=("max_leverage", "median")).reset_index())
        console.print(frame_table(counts, f"controls of {len(frame):,} accounts"))
        return
    write_frame(frame, out, PARQUET_OR_CSV)
    err_console.print(f"wrote {len(frame):,} accounts to {out}")


@audit_app.callback()
def audit_command(
    ctx: typer.Context,
    db: Path = typer.Option(None, "--db", help="DuckDB store."),
    account: str = typer.Option(None, "--account", help="Only this account."),
    since: str = typer.Option(None, "--since", help="Only changes effective from this time."),
    out: Path = typer.Option(None, "--out", help="Parquet (or .csv) file for the rows."),
    limit: int = typer.Option(50, "--limit", min=1, help="Rows shown without --out."),
) -> None:
    """Read the control audit log (every change: old -> new, rule, versions, trigger)."""
    check_out_path(out, "--out", writes=PARQUET_OR_CSV)
    if ctx.invoked_subcommand is not None:
        return
    if db is None:
        raise ConfigError("--db is required to read the audit log")
    from traderseg.online.tables import read_audit
    from traderseg.store import as_utc, open_store

    since_ts = None if since is None else as_utc(since, "--since")
    con = open_store(db, read_only=True)
    try:
        if not _has_table(con, "control_audit"):
            raise ConfigError(f"{db}: no audit log yet (run `traderseg stream` first)")
        rows = read_audit(con, account=account, since=since_ts)
    finally:
        con.close()
    if out is not None:
        write_frame(rows, out, PARQUET_OR_CSV)
        err_console.print(f"wrote {len(rows):,} audit rows to {out}")
        return
    shown = rows.tail(limit)[["audit_id", "effective_at", "account_id", "control", "old_value",
                              "new_value", "rule", "policy_version", "fill_id", "actor"]]
    console.print(frame_table(shown, f"control changes ({len(rows):,}; last {len(shown)})"))


def _has_table(con: object, name: str) -> bool:
    row = con.execute(  # type: ignore[attr-defined]
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
    ).fetchone()
    return bool(row and row[0])
