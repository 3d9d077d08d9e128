"""``traderseg fit | segments | assign | explain | evaluate``: segments from the store."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import typer
from rich.markup import escape
from rich.table import Table

from traderseg.cli import app, console
from traderseg.cli.args import parse_as_of, parse_segments
from traderseg.cli.format import add_rows, count, table
from traderseg.cli.paths import check_out_dataset, check_out_file
from traderseg.errors import ConfigError, DataError, SchemaError


def _check_store(db: Path) -> None:
    """Refuse a --db that is not an existing store, before features are computed."""
    from traderseg.store import open_store

    open_store(db, read_only=True).close()


def segments_table(segments: pd.DataFrame, title: str) -> Table:
    """Table of segments, one line each: id, name, size, share of accounts and of revenue."""
    out = table(title, ["id", "name", "accounts", "share", "revenue"],
                [True, False, True, True, True])
    rows = [(str(s["segment"]), str(s["name"]), count(s["size"]), _pct(s["size_share"]),
             _pct(s["revenue_share"]))
            for s in segments.sort_values("size", ascending=False).to_dict("records")]
    return add_rows(out, rows)


def print_descriptions(segments: pd.DataFrame) -> None:
    """Print each segment's description under its id and name, wrapped to the terminal."""
    for s in segments.sort_values("size", ascending=False).to_dict("records"):
        console.print(f"\n[bold]{s['segment']} {escape(str(s['name']))}[/]")
        console.print(escape(str(s["description"])))


def _pct(value: Any) -> str:
    """Percent, or ``n/a`` for a missing value (e.g. no positive venue revenue)."""
    return "n/a" if value is None or value != value else f"{float(value):.1%}"


@app.command("fit")
def fit_command(
    db: Path = typer.Option(..., "--db", help="DuckDB fills store."),
    as_of: str = typer.Option(..., "--as-of", help="Cutoff (UTC) of the training features."),
    out: Path = typer.Option(..., "--out", help="Model directory to write."),
    n_segments: str = typer.Option("auto", "--segments", help="Number of segments or 'auto'."),
    method: str = typer.Option(None, "--method", help="kmeans, gmm or hdbscan."),
    previous: Path = typer.Option(
        None, "--previous", help="Earlier model: matching segments keep their ids and names."
    ),
    seed: int = typer.Option(0, "--seed", min=0, help="Random seed."),
    overwrite: bool = typer.Option(False, "--overwrite",
                                   help="Replace the model --out holds."),
) -> None:
    """Fit named behavioural segments as of a cutoff and save the model.

    --out is a new or empty folder, or one holding a saved model with --overwrite.
    """
    from traderseg.segment.persist import METADATA_FILE, MODEL_FILE
    from traderseg.segment.workflow import fit_segments

    k = parse_segments(n_segments)
    cutoff = parse_as_of(as_of)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: is a file; a model is saved as a directory")
    names = {p.name for p in out.iterdir()} if out.is_dir() else set()
    if names:
        if not names & {METADATA_FILE, MODEL_FILE}:
            raise ConfigError(f"--out {out}: the folder holds other files; give a new or "
                              "empty folder for the model")
        if not overwrite:
            raise ConfigError(f"--out {out}: holds a saved model; pass --overwrite to "
                              "replace it")
    _check_store(db)
    with console.status("computing features and choosing the number of segments"):
        result = fit_segments(db, cutoff, out, n_segments=k, method=method,
                              random_state=seed, previous=previous)
    sel = result.model.selection_
    if len(sel):
        ev = Table(title="choice of k (evidence)")
        for c in ("k", "silhouette", "bic", "stability", "score", "chosen"):
            ev.add_column(c, justify="right")
        for r in sel.to_dict("records"):
            ev.add_row(str(r["k"]), f"{r['silhouette']:.3f}", f"{r['bic']:,.0f}",
                       f"{r['stability']:.3f}", "" if r["score"] != r["score"] else
                       f"{r['score']:.3f}", "*" if r["chosen"] else "")
        console.print(ev)
    console.print(segments_table(result.segments, f"{len(result.segments)} segments as of {as_of}"))
    console.print(f"model saved to {result.directory}")


@app.command("segments")
def segments_command(
    model: Path = typer.Option(..., "--model",
                               help="Saved model directory or registry (its champion)."),
    long: bool = typer.Option(False, "--long", help="Also print each segment's description."),
) -> None:
    """List the segments of a saved model (its file checked against its hash first).

    One line per segment; ``--long`` adds each segment's description below the table.
    """
    from traderseg.segment.persist import load_model

    _, meta = load_model(model)
    segs = pd.DataFrame(meta.get("segments", [])).rename(columns={"id": "segment"})
    if segs.empty:
        raise SchemaError(f"{model}: the model carries no segment descriptions")
    console.print(segments_table(segs, f"segments of {model} (as of {meta.get('as_of')})"))
    if long:
        print_descriptions(segs)


@app.command("assign")
def assign_command(
    db: Path = typer.Option(..., "--db", help="DuckDB fills store."),
    model: Path = typer.Option(..., "--model",
                               help="Saved model directory or registry (its champion)."),
    out: Path = typer.Option(..., "--out", help="Parquet file of assignments."),
    as_of: str = typer.Option(None, "--as-of", help="Cutoff; default the model's."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace --out if it exists."),
    engine: str = typer.Option(
        "duckdb", "--engine",
        help="duckdb (default) or spark: features and scoring in a PySpark local[2] session; "
             "--out is then a Parquet folder written by Spark."),
) -> None:
    """Assign every account to a segment, with membership and overlays.

    Warns, naming the most shifted features, when the store's accounts differ strongly
    from the population the model was trained on (not on Spark).
    """
    cutoff = parse_as_of(as_of) if as_of is not None else None
    if engine not in ("duckdb", "spark"):
        raise SchemaError(f"--engine {engine!r}: expected duckdb or spark")
    if engine == "spark":
        check_out_dataset(out, "--out", overwrite=overwrite)
    else:
        check_out_file(out, "--out", overwrite=overwrite)
    _check_store(db)
    if engine == "spark":
        from traderseg.segment.spark import write_assignments_spark

        if out.is_dir():  # --overwrite given (checked above): Spark writes a folder
            shutil.rmtree(out)
        elif out.exists():
            out.unlink()
        with console.status("computing features and assigning on Spark"):
            counts = write_assignments_spark(db, model, out, cutoff)
    else:
        from traderseg.segment.workflow import assign_accounts

        with console.status("computing features and assigning"):
            frame = assign_accounts(db, model, cutoff)
        frame.to_parquet(out, index=False)
        counts = frame.groupby(["segment", "segment_name"]).size().reset_index(name="accounts")
    total = int(counts["accounts"].sum())
    t = Table(title=f"{total:,} accounts assigned")
    for c in ("segment", "name", "accounts"):
        t.add_column(c)
    for r in counts.to_dict("records"):
        t.add_row(str(r["segment"]), str(r["segment_name"]), f"{int(r['accounts']):,}")
    console.print(t)
    console.print(f"wrote {out}")


@app.command("explain")
def explain_command(
    account_id: str = typer.Argument(..., help="Account to explain."),
    db: Path = typer.Option(..., "--db", help="DuckDB fills store."),
    model: Path = typer.Option(..., "--model",
                               help="Saved model directory or registry (its champion)."),
    as_of: str = typer.Option(None, "--as-of", help="Cutoff; default the model's."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """Explain an account's segment: why, overlays and the nearest alternative."""
    from traderseg.segment.workflow import explain_account

    _check_store(db)
    info = explain_account(db, model, account_id,
                           parse_as_of(as_of) if as_of is not None else None)
    if as_json:
        console.print_json(json.dumps(info, default=str))
        return
    console.print(
        f"[bold]{account_id}[/] is in segment {info['segment']} "
        f"[bold]{info['segment_name']}[/] (membership {info['membership']:.2f}) "
        f"as of {info['as_of']}"
    )
    why = Table(title="why: the segment's distinctive features")
    for c in ("feature", "account", "segment median", "population median"):
        why.add_column(c, justify="right" if c != "feature" else "left")
    for w in info["why"]:
        why.add_row(w["feature"], f"{w['account']:.4g}", f"{w['segment_median']:.4g}",
                    f"{w['population_median']:.4g}")
    console.print(why)
    ov = Table(title="overlays")
    ov.add_column("overlay")
    ov.add_column("value", justify="right")
    for k, v in info["overlays"].items():
        ov.add_row(k, f"{v:.1f}" if isinstance(v, float) else str(v))
    console.print(ov)
    r = info["runner_up"]
    console.print(f"nearest alternative: segment {r['segment']} {r['name']} "
                  f"(membership {r['membership']:.2f})")


@app.command("evaluate")
def evaluate_command(
    truth: Path = typer.Option(..., "--truth", help="Parquet with account_id, archetype."),
    assignments: Path = typer.Option(..., "--assignments", help="Parquet from `assign`."),
    features: Path = typer.Option(
        None, "--features", help="Feature Parquet for the baselines (default: --db as of the "
        "assignments' cutoff)."
    ),
    db: Path = typer.Option(None, "--db", help="Fills store (for the baselines' features)."),
) -> None:
    """Score assignments against true archetypes, beside RFM and raw k-means baselines."""
    from traderseg.segment.evaluate import evaluate_segments
    from traderseg.store import read_parquet_file

    a = read_parquet_file(assignments, "--assignments")
    t = read_parquet_file(truth, "--truth")
    for frame, option, path, cols in ((a, "--assignments", assignments, ("account_id", "segment")),
                                      (t, "--truth", truth, ("account_id", "archetype"))):
        for col in cols:
            if col not in frame.columns:
                raise SchemaError(f"{option} {path}: missing column {col!r}")
    a = a.dropna(subset=["segment"]).set_index("account_id")
    if a.empty:
        raise DataError(f"--assignments {assignments}: no account with a segment")
    if features is not None:
        feats = read_parquet_file(features, "--features")
        if "account_id" not in feats.columns:
            raise SchemaError(f"--features {features}: missing column 'account_id'")
        feats = feats.set_index("account_id")
    elif db is not None and "as_of" in a.columns:
        from traderseg.features.compute import compute_features

        feats = compute_features(db, a["as_of"].iloc[0], ("30d", "all"))
    else:
        raise SchemaError("evaluate needs --features, or --db with assignments carrying as_of")
    feats = feats.loc[feats.index.intersection(a.index)]
    ev = evaluate_segments(a.loc[feats.index, "segment"], t.set_index("account_id")["archetype"],
                           feats)
    print_evaluation(ev, a.loc[feats.index])


def print_evaluation(ev: object, assignments: pd.DataFrame) -> None:
    """Print scores, baselines and each archetype's majority segment with its name."""
    scores = Table(title="segments vs true archetypes")
    for c in ("method", "ARI", "NMI", "segments"):
        scores.add_column(c, justify="right" if c != "method" else "left")
    scores.add_row("traderseg", f"{ev.ari:.3f}", f"{ev.nmi:.3f}",  # type: ignore[attr-defined]
                   str(assignments["segment"].nunique()))
    for name, r in ev.baselines.iterrows():  # type: ignore[attr-defined]
        scores.add_row(f"baseline: {name}", f"{r['ari']:.3f}", f"{r['nmi']:.3f}",
                       str(int(r["n_segments"])))
    console.print(scores)
    names = assignments.groupby("segment")["segment_name"].first()
    per = Table(title="each archetype's majority segment")
    for c in ("archetype", "accounts", "segment", "name", "purity"):
        per.add_column(c)
    for r in ev.per_archetype.itertuples():  # type: ignore[attr-defined]
        per.add_row(r.archetype, f"{r.accounts:,}", str(r.majority_segment),
                    names.get(r.majority_segment, "?"), f"{r.purity:.1%}")
    console.print(per)
