"""End-to-end demonstration: simulate a venue, ingest, segment, evaluate, write the report.

Run with ``make demo`` or ``python -m traderseg.demo --out demo-out``.
"""

from __future__ import annotations

import argparse
import shutil
import time
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.rule import Rule

console = Console()


def run_demo(
    out: Path, *, accounts: int = 3000, days: int = 90, fit_days: int = 60, seed: int = 7,
    start: date = date(2024, 1, 1), difficulty: str = "realistic",
) -> dict[str, float]:
    """Run the whole pipeline into ``out`` and print what it found.

    The segments are fitted as of day ``fit_days``; the report is made at the end of the
    simulated period with that model, so it shows what changed since the fit.

    Parameters
    ----------
    out : Path
        Working folder (replaced).
    accounts, days, seed : int
        Size, length and seed of the simulated venue.
    fit_days : int
        Day of the training cutoff (at most ``days``).
    start : datetime.date
        First simulated day.
    difficulty : str
        Simulator level (``easy``, ``realistic``, ``hard``); scores are against each
        account's dominant archetype.

    Returns
    -------
    dict
        ARI and NMI of the segments against the simulator's archetypes, and baselines.
    """
    from traderseg.cli.segment import print_evaluation, segments_table
    from traderseg.ingest import ingest
    from traderseg.report import build_report
    from traderseg.segment.evaluate import evaluate_segments
    from traderseg.segment.workflow import fit_segments
    from traderseg.simulate import simulate_venue

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    t0 = time.perf_counter()
    console.print(Rule(f"1. simulate {accounts:,} accounts over {days} days (seed {seed}, "
                       f"{difficulty})"))
    summary = simulate_venue(out / "venue", accounts=accounts, days=days, seed=seed, start=start,
                             difficulty=difficulty)
    console.print(f"{summary.fills:,} fills written")
    console.print(Rule("2. ingest into a DuckDB store"))
    db = out / "venue.duckdb"
    report = ingest([out / "venue"], db)
    console.print(
        f"stored {report.total('stored'):,} rows, rejected {report.total('rejected'):,}"
    )
    as_of = pd.Timestamp(start + timedelta(days=min(fit_days, days)), tz="UTC")
    console.print(Rule(f"3. features and segments as of {as_of.date()}"))
    result = fit_segments(db, as_of, out / "model")
    sel = result.model.selection_
    if len(sel):
        chosen = sel.loc[sel["chosen"]].iloc[0]
        console.print(
            f"k = {int(chosen['k'])} chosen from k in {int(sel['k'].min())}..{int(sel['k'].max())} "
            f"(silhouette {chosen['silhouette']:.3f}, bootstrap stability "
            f"{chosen['stability']:.3f})"
        )
    console.print(segments_table(result.segments, f"{len(result.segments)} named segments"))
    overl = result.assignments
    console.print(
        "lifecycle: " + ", ".join(f"{k} {v:,}" for k, v in
                                   overl["lifecycle_stage"].value_counts().items())
    )
    console.print(
        "value tiers: " + ", ".join(f"{k} {v:,}" for k, v in
                                     overl["value_tier"].value_counts().items())
    )
    console.print(Rule("4. evaluation against the simulator's archetypes"))
    truth = pd.read_parquet(out / "venue" / "truth.parquet").set_index("account_id")["archetype"]
    a = result.assignments.set_index("account_id")
    ev = evaluate_segments(a["segment"], truth, result.features)
    print_evaluation(ev, a)
    result.assignments.to_parquet(out / "assignments.parquet", index=False)
    end = pd.Timestamp(start + timedelta(days=days), tz="UTC")
    console.print(Rule(f"5. report as of {end.date()} with the model of {as_of.date()}"))
    built = build_report(db, result.directory, out / "report.html", as_of=end)
    for section, why in built.unavailable.items():
        console.print(f"section {section} left out: {why}")
    console.print(f"report: {built.path.resolve()}")
    console.print(f"done in {time.perf_counter() - t0:.0f}s; files in {out}")
    return {"ari": ev.ari, "nmi": ev.nmi,
            **{f"{b}_ari": float(r["ari"]) for b, r in ev.baselines.iterrows()}}


def main() -> None:
    """Parse arguments and run the demo."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--out", type=Path, default=Path("demo-out"))
    ap.add_argument("--accounts", type=int, default=3000)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--fit-days", type=int, default=60)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--difficulty", default="realistic", choices=("easy", "realistic", "hard"))
    args = ap.parse_args()
    run_demo(args.out, accounts=args.accounts, days=args.days, fit_days=args.fit_days,
             seed=args.seed, difficulty=args.difficulty)


if __name__ == "__main__":
    main()
