"""``traderseg audit fairness`` and ``traderseg review-queue``: compliance over the store."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from traderseg.cli import app, audit_app, console
from traderseg.cli.args import parse_as_of
from traderseg.cli.format import add_rows, count, number, share, table
from traderseg.cli.paths import CSV, check_out_file

if TYPE_CHECKING:
    import pandas as pd


@audit_app.command("fairness")
def fairness_command(
    db: Path = typer.Option(..., "--db", help="DuckDB store."),
    model: Path = typer.Option(..., "--model", help="Saved segment model directory."),
    out: Path = typer.Option(..., "--out", help="Parquet of the disparity rows "
                             "(OUT with .rates.parquet beside for the group rates)."),
    policy: Path = typer.Option(None, "--policy", help="Policy file to decide the controls "
                                "(default: the store's controls table)."),
    as_of: str = typer.Option(None, "--as-of", help="Cutoff; default the model's."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace --out if it exists."),
) -> None:
    """Audit segments, controls and targeting across region and KYC tier.

    Rates and disparity ratios with bootstrap intervals, and whether the attribute still
    predicts the outcome once behaviour is accounted for (the flag).
    """
    from traderseg.compliance.fairness import fairness_audit
    from traderseg.growth.inputs import decision_inputs
    from traderseg.policy import load_policy

    check_out_file(out, "--out", overwrite=overwrite)
    rates_out = rates_path(out)
    check_out_file(rates_out, "--out (rates)", overwrite=overwrite)
    pol = load_policy(policy) if policy is not None else None
    with console.status("deciding and auditing"):
        inputs = decision_inputs(db, model, parse_as_of(as_of) if as_of else None, policy=pol)
        audit = fairness_audit(inputs.frame)
    d = audit.disparity
    shown = d[d["kind"] != "segment"]
    t = table(f"fairness of {count(len(inputs.frame))} accounts (policy "
              f"{inputs.policy_version})", ["attribute", "outcome", "groups", "ratio",
                                             "95% interval", "effect", "p (Holm)", "flag"],
              [False, False, True, True, True, True, True, False])
    add_rows(t, [(str(r["attribute"]), str(r["outcome"]), str(r["groups"]),
                  number(r["ratio"]), f"[{number(r['ratio_ci_low'])}, "
                  f"{number(r['ratio_ci_high'])}]", share(r["conditional_effect"]),
                  number(r["conditional_p_holm"], 3), "FLAG" if r["flagged"] else "")
                 for r in shown.to_dict("records")])
    console.print(t)
    for line in _unaudited(shown, inputs.policy_version):
        console.print(line, soft_wrap=True)
    seg = d[(d["kind"] == "segment") & d["disparity_flag"]]
    console.print(f"{len(seg)} (attribute, segment) pairs fail the four-fifths rule on "
                  "membership (segments are behaviour: no conditional test)")
    d.to_parquet(out, index=False)
    audit.rates.to_parquet(rates_out, index=False)
    console.print(f"{int(d['flagged'].sum())} flagged; wrote {out} and {rates_out}")


def _unaudited(shown: pd.DataFrame, policy_version: str) -> list[str]:
    """Say which outcomes could not be audited (no account with a known value), and why."""
    from traderseg.growth.inputs import NO_POLICY

    empty = shown[shown["groups"] == 0]
    lines = []
    controls = empty["kind"] == "control"
    if controls.any() and policy_version == NO_POLICY:
        lines.append("controls not audited: the store holds no controls and no --policy was "
                     "given")
        empty = empty[~controls]
    names = list(dict.fromkeys(empty["outcome"].astype(str)))
    if names:
        lines.append(f"not audited, no account with a known value: {', '.join(names)}")
    return lines


def rates_path(out: Path) -> Path:
    """Where the group rates go beside the disparity file."""
    return out.with_name(out.name.removesuffix(".parquet") + ".rates.parquet")


@app.command("review-queue")
def review_queue_command(
    db: Path = typer.Option(..., "--db", help="DuckDB store."),
    model: Path = typer.Option(..., "--model", help="Saved segment model directory."),
    out: Path = typer.Option(..., "--out", help="CSV of the accounts to review."),
    policy: Path = typer.Option(None, "--policy", help="Policy file for the review flags "
                                "(default: the store's controls table)."),
    as_of: str = typer.Option(None, "--as-of", help="Cutoff; default the model's."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace --out if it exists."),
) -> None:
    """Due-diligence tiers (standard / enhanced) and the review queue export."""
    from traderseg.compliance.diligence import RULES, diligence_report
    from traderseg.growth.inputs import decision_inputs
    from traderseg.policy import load_policy
    from traderseg.store import open_store

    check_out_file(out, "--out", overwrite=overwrite, writes=CSV)
    pol = load_policy(policy) if policy is not None else None
    con = open_store(db, read_only=True)
    try:
        with console.status("profiling accounts"):
            inputs = decision_inputs(con, model, parse_as_of(as_of) if as_of else None,
                                     policy=pol)
            tiers, queue = diligence_report(con, inputs.frame, inputs.as_of)
    finally:
        con.close()
    t = table(f"due diligence of {count(len(tiers))} accounts as of {inputs.as_of.date()}",
              ["rule", "enhanced when", "accounts"], [False, False, True])
    add_rows(t, [(r.name, r.description, count(int(tiers[r.name].sum()))) for r in RULES])
    console.print(t)
    queue.to_csv(out, index=False, lineterminator="\n")
    console.print(f"{count(int((tiers['tier'] == 'enhanced').sum()))} enhanced; "
                  f"{count(len(queue))} accounts in the review queue; wrote {out}")
