"""``traderseg policy check|diff|activate``, ``liquidation`` and ``predict train``."""

from __future__ import annotations

from pathlib import Path

import typer

from traderseg.cli import app, console, err_console
from traderseg.cli.args import parse_as_of
from traderseg.cli.format import add_rows, count, frame_table, table, usd
from traderseg.cli.paths import check_out_path
from traderseg.errors import ConfigError

policy_app = typer.Typer(help="Risk-control policies: check, backtest a change, activate.",
                         no_args_is_help=True)
app.add_typer(policy_app, name="policy")
predict_app = typer.Typer(help="Churn and liquidation-risk predictors the policy reads.",
                          no_args_is_help=True)
app.add_typer(predict_app, name="predict")


def _cutoffs(text: str) -> list[str]:
    items = [p.strip() for p in text.split(",") if p.strip()]
    if len(items) < 2:
        raise ConfigError(f"--cutoffs {text!r}: give two or more comma-separated cutoffs "
                          "(training cutoffs, then the test cutoff)")
    for i, item in enumerate(items):
        parse_as_of(item, f"--cutoffs item {i + 1}")
    return items


@policy_app.command("check")
def check_command(
    file: Path = typer.Argument(..., help="Policy YAML file."),
    model: Path = typer.Option(None, "--model", help="Saved segment model to check against."),
) -> None:
    """Validate a policy file, and against a saved model when given."""
    from traderseg.policy import check_policy, load_policy

    policy = load_policy(file)
    against = ""
    if model is not None:
        from traderseg.segment.persist import model_version, read_checked_metadata

        meta = read_checked_metadata(model)
        check_policy(policy, meta)
        against = f" against model {model_version(meta)}"
    console.print(f"{file}: policy {policy.version} is valid{against} "
                  f"({len(policy.rules)} rules)", soft_wrap=True)


@policy_app.command("diff")
def diff_command(
    old: Path = typer.Argument(..., help="Live policy YAML file."),
    new: Path = typer.Argument(..., help="Proposed policy YAML file."),
    db: Path = typer.Option(..., "--db", help="DuckDB store (fills and controls)."),
    model: Path = typer.Option(None, "--model",
                               help="Segment model, to rebuild inputs for history."),
    predictors: Path = typer.Option(None, "--predictors", help="Predictor bundle (history)."),
    history: int = typer.Option(3, "--history", help="Past month starts to replay (0: none)."),
    out: Path = typer.Option(None, "--out", help="Parquet file for every changed control."),
) -> None:
    """Show which accounts a policy change would move, and the fees they generated."""
    check_out_path(out, "--out")
    import pandas as pd

    from traderseg.policy import load_policy
    from traderseg.policy.diff import policy_diff
    from traderseg.policy.predict import load_predictors
    from traderseg.store import open_store

    if history < 0:
        raise ConfigError(f"--history {history}: give 0 or more month starts")
    a, b = load_policy(old), load_policy(new)
    if model is not None:  # refused before any work, whether or not the diff reads it
        from traderseg.segment.persist import read_checked_metadata

        read_checked_metadata(model)
    bundle = load_predictors(predictors) if predictors is not None else None
    con = open_store(db, read_only=True)
    try:
        with err_console.status("evaluating both policies"):
            results = policy_diff(con, a, b, model_dir=model, predictors=bundle,
                                  history=history)
    finally:
        con.close()
    out_t = table(f"policy {a.version} -> {b.version}",
                  ["inputs", "as of", "accounts", "changed", "fees 30d"],
                  [False, False, True, True, True])
    rows = [(r.source, r.as_of.isoformat(timespec="seconds"), count(r.accounts),
             count(r.changed_accounts),
             usd(float(r.changes.drop_duplicates("account_id")["fees_30d_usd"].sum())))
            for r in results]
    console.print(add_rows(out_t, rows))
    for r in results:
        if r.changed_accounts:
            console.print(frame_table(r.summary[r.summary["accounts"] > 0],
                                      f"{r.source} {r.as_of.date()}: changes by control",
                                      index=True))
    if out is not None:
        frames = [r.changes.assign(source=r.source, as_of=r.as_of) for r in results]
        pd.concat(frames, ignore_index=True).to_parquet(out, index=False)
        console.print(f"wrote the changes to {out}")


@policy_app.command("activate")
def activate_command(
    file: Path = typer.Argument(..., help="Policy YAML file."),
    db: Path = typer.Option(..., "--db", help="DuckDB store."),
    model: Path = typer.Option(None, "--model", help="Check against this model first."),
) -> None:
    """Save a policy version in the store and make it the active one."""
    from traderseg.policy import check_policy, load_policy, save_policy
    from traderseg.store import open_store

    policy = load_policy(file)
    if model is not None:
        from traderseg.segment.persist import read_checked_metadata

        check_policy(policy, read_checked_metadata(model))
    con = open_store(db)
    try:
        changed = save_policy(con, policy, "cli")
    finally:
        con.close()
    word = "is now active" if changed else "was already active"
    console.print(f"policy {policy.version} {word} in {db}")


@app.command("liquidation")
def liquidation_command(
    db: Path = typer.Option(..., "--db", help="DuckDB fills store."),
    cutoffs: str = typer.Option(..., "--cutoffs", help="Comma-separated cutoffs; last = test."),
    horizon_days: float = typer.Option(7.0, "--horizon-days",
                                       help="A liquidation within this many days."),
    activity_days: float = typer.Option(30.0, "--activity-days", help="Active look-back."),
    threads: int = typer.Option(None, "--threads", min=1, help="Threads of the tree model."),
    out: Path = typer.Option(None, "--out", help="Parquet file for the test predictions."),
) -> None:
    """Backtest the liquidation-risk model against a leverage-only rule."""
    check_out_path(out, "--out")
    from traderseg.analysis.liquidation import liquidation_backtest

    with err_console.status("building the training set and backtesting"):
        bt = liquidation_backtest(db, _cutoffs(cutoffs), horizon_days,
                                  activity_days=activity_days, n_threads=threads)
    console.print(frame_table(
        bt.metrics, f"liquidated within {bt.horizon_days:g} days of {bt.test_cutoff.date()} "
        f"(base rate {bt.base_rate:.1%}, {len(bt.predictions):,} accounts; trained on "
        f"{bt.n_train:,} rows)", index=True))
    console.print(frame_table(bt.calibration, "calibration of the model by decile"))
    auc = bt.metrics["auc"].astype(float)
    word = "beats" if auc["model"] > auc["leverage_rule"] else "does not beat"
    console.print(f"the model {word} the leverage-only rule (AUC {auc['model']:.3f} vs "
                  f"{auc['leverage_rule']:.3f})", soft_wrap=True)
    if out is not None:
        bt.predictions.to_parquet(out, index=False)
        console.print(f"wrote {len(bt.predictions):,} predictions to {out}")


@predict_app.command("train")
def predict_train_command(
    db: Path = typer.Option(..., "--db", help="DuckDB fills store."),
    as_of: str = typer.Option(..., "--as-of", help="Data time: no label reaches past it."),
    out: Path = typer.Option(..., "--out", help="Bundle directory to write."),
    threads: int = typer.Option(None, "--threads", min=1, help="Threads of the tree models."),
) -> None:
    """Train and save the churn and liquidation-risk predictors."""
    from traderseg.policy.predict import train_predictors

    when = parse_as_of(as_of)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: is a file; give a directory")
    with err_console.status("training the churn and liquidation classifiers"):
        bundle = train_predictors(db, when, out, n_threads=threads)
    info = bundle.metadata["training"]
    for name, t in info.items():
        console.print(f"{name}: {t['rows']:,} rows at {len(t['cutoffs'])} cutoff(s), base rate "
                      f"{t['base_rate']:.1%}", soft_wrap=True)
    console.print(f"predictors {bundle.version} written to {out}")
