"""``traderseg drift | refit | models | promote | register``: the model registry's life cycle."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape

from traderseg.cli import app, console
from traderseg.cli.args import parse_as_of, parse_segments
from traderseg.cli.format import add_rows, table
from traderseg.errors import ConfigError
from traderseg.segment.monitor import DEFAULT_WINDOW_DAYS, DriftThresholds
from traderseg.segment.refit import GATE_NAMES, GATES

_DEFAULTS = DriftThresholds()
_GATE_HELP = "; ".join(f"{g.name} ({'>=' if g.kind == 'min' else '<='} {g.default:g}): "
                       f"{g.description}" for g in GATES)


def parse_gates(items: list[str]) -> dict[str, float]:
    """Parse ``--gate NAME=VALUE`` options into gate limits.

    Examples
    --------
    >>> parse_gates(["agreement=0.9", "ari=0.5"])
    {'agreement': 0.9, 'ari': 0.5}
    """
    out: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or name not in GATE_NAMES:
            raise ConfigError(f"--gate {item!r}: expected NAME=VALUE with NAME one of "
                              f"{', '.join(GATE_NAMES)}")
        try:
            out[name] = float(value)
        except ValueError:
            raise ConfigError(f"--gate {item!r}: {value.strip()!r} is not a number") from None
    return out


@app.command("drift")
def drift_command(
    db: Path = typer.Option(..., "--db", help="DuckDB fills store (alerts are written to it)."),
    model: Path = typer.Option(..., "--model", help="Saved model directory or registry "
                               "(its champion)."),
    as_of: str = typer.Option(None, "--as-of", help="End of the window; default midnight "
                              "after the store's last fill day."),
    window_days: int = typer.Option(DEFAULT_WINDOW_DAYS, "--window-days",
                                    help="Accounts with a fill in this many days before "
                                    "--as-of."),
    psi_warn: float = typer.Option(_DEFAULTS.psi_warn, "--psi-warn",
                                   help="PSI of a feature from which it warns."),
    psi_alert: float = typer.Option(_DEFAULTS.psi_alert, "--psi-alert",
                                    help="PSI of a feature from which it alerts."),
    share_alert: float = typer.Option(_DEFAULTS.share_alert, "--share-alert",
                                      help="Change of a segment's share of accounts from "
                                      "which it alerts."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """Drift of a model's features (PSI) and segment shares against recent accounts.

    Alerts (thresholds inclusive) are appended to the store's drift_alerts table; the same
    check run again adds nothing. Exits 1 when anything alerts.
    """
    from traderseg.segment.monitor import monitor_drift

    limits = DriftThresholds(psi_warn, psi_alert, share_alert)
    report = monitor_drift(db, model, as_of=parse_as_of(as_of) if as_of else None,
                           window_days=window_days, thresholds=limits)
    if as_json:
        console.print_json(json.dumps({
            "model_version": report.model_version, "as_of": report.as_of.isoformat(),
            "window_days": report.window_days, "accounts": report.accounts,
            "level": report.level, "recorded": report.recorded,
            "features": report.features.to_dict("records"),
            "shares": report.shares.to_dict("records")}, default=str))
    else:
        console.print(f"model {report.model_version}: {report.accounts:,} accounts with fills "
                      f"in the {report.window_days} days before {report.as_of.isoformat()}")
        feats = table("feature drift (PSI against training)", ["feature", "PSI", "level"],
                      [False, True, False])
        add_rows(feats, [(r["column"], f"{r['psi']:.3f}", r["level"])
                         for r in report.features.to_dict("records")])
        console.print(feats)
        shares = table("segment shares", ["id", "name", "training", "window", "change",
                                          "level"], [True, False, True, True, True, False])
        add_rows(shares, [(str(r["segment"]), escape(r["name"]), f"{r['reference']:.1%}",
                           f"{r['current']:.1%}", f"{r['change']:+.1%}", r["level"])
                          for r in report.shares.to_dict("records")])
        console.print(shares)
        console.print(f"drift level: [bold]{report.level}[/]; {report.recorded} new alert(s) "
                      "recorded in drift_alerts")
    if report.level == "alert":
        raise typer.Exit(1)


@app.command("refit")
def refit_command(
    db: Path = typer.Option(..., "--db", help="DuckDB fills store."),
    model: Path = typer.Option(..., "--model", help="Model registry (created when missing)."),
    as_of: str = typer.Option(None, "--as-of", help="Training cutoff; default midnight after "
                              "the store's last fill day."),
    gate: list[str] = typer.Option([], "--gate", help=f"NAME=LIMIT, repeatable. Gates: "
                                   f"{_GATE_HELP}."),
    n_segments: str = typer.Option("auto", "--segments",
                                   help="First fit only: number of segments or 'auto'."),
    method: str = typer.Option(None, "--method", help="First fit only: kmeans, gmm or "
                               "hdbscan."),
    seed: int = typer.Option(0, "--seed", min=0, help="First fit only: random seed."),
) -> None:
    """Train a challenger on current data and promote it only when every gate passes.

    The challenger uses the champion's method, parameters and windows; its segments keep
    the champion's ids and names where they match. A value exactly at a gate's limit
    passes. The decision is recorded in the registry and the store's model_decisions
    table. A registry without a champion gets its first fit as champion. Exits 1 when the
    challenger is rejected.
    """
    from traderseg.segment.refit import refit

    limits = parse_gates(gate)
    with console.status("fitting the challenger and comparing it with the champion"):
        result = refit(db, model, as_of=parse_as_of(as_of) if as_of else None, gates=limits,
                       n_segments=parse_segments(n_segments), method=method,
                       random_state=seed)
    d = result.decision
    if result.reused:
        console.print(f"already decided (decision {d.decision_id}): nothing changed")
    if d.gates:
        t = table(f"{d.challenger} against {d.champion}", ["gate", "value", "limit", "result"],
                  [False, True, True, False])
        add_rows(t, [(name, "n/a" if g["value"] is None else f"{g['value']:.3f}",
                      f"{'>=' if g['kind'] == 'min' else '<='} {g['limit']:g}",
                      "pass" if g["passed"] else "FAIL") for name, g in d.gates.items()])
        console.print(t)
    console.print(f"{d.challenger} {d.verdict}: {escape(d.reason)}; champion "
                  f"{result.champion.version}")
    if not d.promoted:
        raise typer.Exit(1)


@app.command("models")
def models_command(
    model: Path = typer.Option(..., "--model", help="Model registry."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """List a registry's versions, its champion and every decision."""
    from traderseg.segment.registry import ModelRegistry

    reg = ModelRegistry(model)
    reg.registry_id()  # a missing or damaged registry is an error here
    versions, decisions, champion = reg.versions(), reg.decisions(), reg.champion()
    if as_json:
        console.print_json(json.dumps({
            "champion": champion.version if champion else None,
            "versions": [{**v.__dict__, "directory": str(v.directory)} for v in versions],
            "decisions": [d.to_dict() for d in decisions]}, default=str))
        return
    vt = table(f"versions of {model}", ["version", "trained as of", "registered", "from",
                                        "champion"], [False] * 5)
    add_rows(vt, [(v.version, str(v.as_of or "")[:19], v.registered_at[:19], v.note,
                   "*" if champion and v.version == champion.version else "")
                  for v in versions])
    console.print(vt)
    dt = table("decisions", ["#", "decided", "challenger", "champion", "verdict", "reason"],
               [True, False, False, False, False, False])
    add_rows(dt, [(str(d.decision_id), d.decided_at[:19], d.challenger, d.champion or "",
                   d.verdict, escape(d.reason)) for d in decisions])
    console.print(dt)


@app.command("promote")
def promote_command(
    version: str = typer.Argument(..., help="Registered version to make the champion."),
    model: Path = typer.Option(..., "--model", help="Model registry."),
    reason: str = typer.Option("manual promotion", "--reason", help="Why (recorded)."),
    db: Path = typer.Option(None, "--db", help="Also record the decision in this store's "
                            "model_decisions table."),
) -> None:
    """Make a registered version the champion by hand, recording who and why."""
    from traderseg.segment.refit import append_decision
    from traderseg.segment.registry import Decision, ModelRegistry
    from traderseg.store import open_store

    reg = ModelRegistry(model)
    reg.version(version)
    con = open_store(db, must_exist=True) if db is not None else None
    try:
        d = reg.promote(version, Decision(challenger=version, verdict="promoted",
                                          reason=reason, actor="admin"))
        if con is not None:
            append_decision(con, reg.registry_id(), d)
    finally:
        if con is not None:
            con.close()
    console.print(f"{version} is the champion of {model} (decision {d.decision_id})")


@app.command("register")
def register_command(
    directory: Path = typer.Argument(..., help="Saved model directory to add."),
    model: Path = typer.Option(..., "--model", help="Model registry (created when missing)."),
) -> None:
    """Add a saved model to a registry as a new version (not promoted)."""
    from traderseg.segment.registry import ModelRegistry

    v = ModelRegistry(model).register(directory)
    console.print(f"{directory} registered as {v.version} in {model}")
