"""``traderseg audience build`` and ``traderseg campaign register|list|measure|rank``."""

from __future__ import annotations

from pathlib import Path

import typer

from traderseg.cli import app, console
from traderseg.cli.format import add_rows, compact, count, share, table
from traderseg.cli.paths import CSV, CSV_OR_PARQUET, check_out_file, write_frame
from traderseg.errors import ConfigError

audience_app = typer.Typer(help="Campaign audiences from a YAML selection.",
                           no_args_is_help=True)
campaign_app = typer.Typer(help="Campaigns: registry, randomized holdout, uplift, ranking.",
                           no_args_is_help=True)
app.add_typer(audience_app, name="audience")
app.add_typer(campaign_app, name="campaign")


@audience_app.command("build")
def audience_build_command(
    spec: Path = typer.Argument(..., help="Audience spec (YAML)."),
    db: Path = typer.Option(..., "--db", help="DuckDB store."),
    model: Path = typer.Option(..., "--model", help="Saved segment model directory."),
    out: Path = typer.Option(..., "--out", help="Audience CSV to write (and OUT.json beside)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace --out if it exists."),
) -> None:
    """Select the accounts a spec describes; record cutoff, model and policy versions."""
    from traderseg.growth.audience import build_audience, load_audience_spec, write_audience

    check_out_file(out, "--out", overwrite=overwrite, writes=CSV)
    parsed = load_audience_spec(spec)
    with console.status("assigning accounts and selecting"):
        audience = build_audience(db, model, spec)
    side = write_audience(audience, out)
    prov = audience.provenance
    t = table(f"audience {parsed.name}: {count(prov['accounts_selected'])} of "
              f"{count(prov['accounts_considered'])} accounts", ["criterion", "removed"],
              [False, True])
    add_rows(t, [(k, count(v)) for k, v in prov["removed_by"].items()])
    console.print(t)
    console.print(f"as of {prov['as_of']}, model {prov['model_version']}, policy "
                  f"{prov['policy_version']}")
    for note in prov["notes"]:
        console.print(f"note: {note}")
    console.print(f"wrote {out} and {side}")


@campaign_app.command("register")
def campaign_register_command(
    db: Path = typer.Option(..., "--db", help="DuckDB store (the registry is kept there)."),
    audience: Path = typer.Option(..., "--audience", help="Audience CSV from `audience build`."),
    campaign_id: str = typer.Option(..., "--id", help="Campaign id."),
    treatment: str = typer.Option(..., "--treatment", help="What treated accounts receive."),
    start: str = typer.Option(..., "--start", help="Start of the campaign window (UTC)."),
    end: str = typer.Option(..., "--end", help="End (exclusive) of the window (UTC)."),
    holdout: float = typer.Option(0.1, "--holdout", help="Share of each segment held out."),
) -> None:
    """Register a campaign and draw its stratified holdout (re-running changes nothing)."""
    from traderseg.growth.audience import read_audience
    from traderseg.growth.campaigns import read_members, register_campaign
    from traderseg.store import open_store

    members, prov = read_audience(audience)
    if "segment_id" not in members.columns:
        raise ConfigError(f"{audience}: no segment_id column (the holdout is stratified by it)")
    con = open_store(db, must_exist=True)
    try:
        c = register_campaign(con, campaign_id, members, treatment=treatment, start=start,
                              end=end, provenance=prov, holdout_share=holdout)
        arms = read_members(con, c.campaign_id)["arm"].value_counts()
    finally:
        con.close()
    console.print(f"campaign {c.campaign_id}: {count(c.members)} accounts, "
                  f"{count(arms.get('treatment', 0))} treated, "
                  f"{count(arms.get('holdout', 0))} held out ({share(c.holdout_share)} of each "
                  f"segment), window {c.window_start.isoformat()} to {c.window_end.isoformat()}")


@campaign_app.command("list")
def campaign_list_command(
    db: Path = typer.Option(..., "--db", help="DuckDB store."),
) -> None:
    """List the registered campaigns."""
    from traderseg.growth.campaigns import list_campaigns
    from traderseg.store import open_store

    con = open_store(db, read_only=True)
    try:
        df = list_campaigns(con)
    finally:
        con.close()
    t = table(f"{len(df)} campaigns", ["id", "audience", "treatment", "start", "end",
                                        "members", "holdout"],
              [False, False, False, False, False, True, True])
    add_rows(t, [(str(r["campaign_id"]), str(r["audience"]), str(r["treatment"]),
                  str(r["window_start"]), str(r["window_end"]), count(float(r["members"])),
                  share(float(r["holdout_share"]))) for r in df.to_dict("records")])
    console.print(t)


@campaign_app.command("measure")
def campaign_measure_command(
    db: Path = typer.Option(..., "--db", help="DuckDB store."),
    campaign_id: str = typer.Option(..., "--id", help="Campaign id."),
    by: str = typer.Option("segment", "--by",
                           help="Groups of the per-group rows: segment, or archetype (the "
                                "truth table of a simulated venue)."),
    out: Path = typer.Option(None, "--out", help="CSV or Parquet of every row."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace --out if it exists."),
) -> None:
    """Uplift in fees, volume and retention with intervals (difference in means, CUPED)."""
    from traderseg.growth.uplift import OVERALL, measure_campaign
    from traderseg.store import open_store

    if by not in ("segment", "archetype"):
        raise ConfigError(f"--by {by!r}: use segment or archetype")
    if out is not None:
        check_out_file(out, "--out", overwrite=overwrite, writes=CSV_OR_PARQUET)
    con = open_store(db, read_only=True)
    try:
        groups = None
        if by == "archetype":
            truth = con.execute("SELECT account_id, archetype FROM truth").df()
            if truth.empty:
                raise ConfigError("--by archetype: the store has no truth table rows")
            groups = dict(zip(truth["account_id"].astype(str), truth["archetype"], strict=True))
        res = measure_campaign(con, campaign_id, groups=groups)
    finally:
        con.close()
    for group, part in res.groupby("group", sort=False):
        title = f"campaign {campaign_id}: " + ("all members (post-stratified by segment)"
                                               if group == OVERALL else f"{by} {group}")
        t = table(title, ["metric", "estimator", "treated", "held out", "uplift", "95% interval",
                          "relative", "sig."], [False, False, True, True, True, True, True, False])
        add_rows(t, [(str(r["metric"]), str(r["estimator"]), count(r["n_treatment"]),
                      count(r["n_holdout"]), compact(r["uplift"]),
                      f"[{compact(r['ci_low'])}, {compact(r['ci_high'])}]",
                      share(r["relative_uplift"]), "*" if r["significant"] else "")
                     for r in part.to_dict("records")])
        console.print(t)
        for note in sorted(set(part["note"]) - {""}):
            console.print(f"note: {note}")
    if out is not None:
        write_frame(res, out, CSV_OR_PARQUET)
        console.print(f"wrote {out}")


@campaign_app.command("rank")
def campaign_rank_command(
    db: Path = typer.Option(..., "--db", help="DuckDB store."),
    campaign_id: str = typer.Option(..., "--id", help="A measured campaign."),
    out: Path = typer.Option(..., "--out", help="CSV of accounts by predicted uplift."),
    metric: str = typer.Option("fees_usd", "--metric", help="fees_usd, volume_usd or retained."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace --out if it exists."),
) -> None:
    """Rank accounts for the next campaign (T-learner), scored by Qini/AUUC out of fold."""
    from traderseg.growth.ranking import rank_campaign
    from traderseg.store import open_store

    check_out_file(out, "--out", overwrite=overwrite, writes=CSV_OR_PARQUET)
    con = open_store(db, read_only=True)
    try:
        with console.status("fitting the uplift models"):
            ranking = rank_campaign(con, campaign_id, metric=metric)
    finally:
        con.close()
    ev = ranking.evaluation
    console.print(f"out-of-fold ranking of {count(ev['accounts'])} members on {metric}: Qini "
                  f"coefficient {compact(ev['qini_coefficient'])}, AUUC {compact(ev['auuc'])} "
                  f"(random {compact(ev['auuc_random'])})")
    write_frame(ranking.scores, out, CSV_OR_PARQUET)
    console.print(f"wrote {out}")
