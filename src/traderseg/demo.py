"""End-to-end demonstration: simulate a venue, ingest, segment, evaluate, write the report.

Run with ``make demo`` or ``python -m traderseg.demo --out demo-out``.
"""

from __future__ import annotations

import argparse
import shutil
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
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
    from traderseg.simulate.crash import Crash

    crash_day = start + timedelta(days=days - 2)  # a scripted crash the live replay shows
    summary = simulate_venue(out / "venue", accounts=accounts, days=days, seed=seed, start=start,
                             difficulty=difficulty, crash=Crash(crash_day))
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
    console.print(Rule(f"6. live: the days around the crash of {crash_day} replayed through "
                       "the stream with examples/policy.yaml"))
    live_replay(db, result.directory, out, crash_day)
    console.print(f"done in {time.perf_counter() - t0:.0f}s; files in {out}")
    return {"ari": ev.ari, "nmi": ev.nmi,
            **{f"{b}_ari": float(r["ari"]) for b, r in ev.baselines.iterrows()}}


EXAMPLE_POLICY = Path(__file__).resolve().parents[2] / "examples" / "policy.yaml"


def live_replay(db: Path, model: Path, out: Path, crash_day: date) -> None:
    """Replay the fills from the day before the crash into a copy of the store's history.

    The copy keeps the fills before the replay's start (the stream seeds its online state
    from them); the rest go through ``traderseg stream`` as a file replay, and the audit
    log shows which segments' controls tightened around the crash.
    """
    from traderseg.analysis.events.market import query_frame
    from traderseg.online.run import run_stream
    from traderseg.store import connect

    begin = pd.Timestamp(crash_day - timedelta(days=1), tz="UTC")
    live_db = out / "live.duckdb"
    shutil.copy(db, live_db)
    con = connect(live_db)
    replay = out / "replay.parquet"
    con.execute(f"COPY (SELECT * EXCLUDE (source) FROM fills WHERE ts >= ? ORDER BY ts) "
                f"TO '{replay}' (FORMAT parquet)", [begin.to_pydatetime()])
    con.execute("DELETE FROM fills WHERE ts >= ?", [begin.to_pydatetime()])
    start_row = con.execute("SELECT min(event_start) FROM market WHERE event = 'crash'"
                            ).fetchone()
    con.close()
    stats = run_stream(f"replay:{replay}", live_db, model, EXAMPLE_POLICY,
                       decide_every_s=1800.0)
    console.print(f"{stats.accepted:,} fills replayed in {stats.seconds:.1f} s "
                  f"({stats.fills_per_s:,.0f} fills/s): {stats.decisions:,} decisions, "
                  f"{stats.audit_rows:,} control changes")
    con = connect(live_db, read_only=True)
    crash_at = pd.Timestamp(start_row[0]) if start_row and start_row[0] is not None else None
    # by way of Arrow: DuckDB's own conversion of time-zone-aware columns warns of pandas 4
    changes = query_frame(con, """
        SELECT c.segment_name, a.effective_at, a.account_id
        FROM control_audit a JOIN controls c USING (account_id)
        WHERE a.control = 'max_leverage' AND a.old_value IS NOT NULL
          AND TRY_CAST(a.new_value AS DOUBLE) < TRY_CAST(a.old_value AS DOUBLE)
        """)
    con.close()
    if crash_at is None or changes.empty:
        console.print("no leverage cap tightened during the replay")
        return
    changes["when"] = np.where(pd.to_datetime(changes["effective_at"], utc=True) < crash_at,
                               "before the crash", "after the crash")
    table = (changes.groupby(["segment_name", "when"])["account_id"].nunique()
             .unstack(fill_value=0).reset_index())
    console.print(f"crash started {crash_at:%Y-%m-%d %H:%M} UTC; accounts whose leverage cap "
                  "was lowered, by segment:")
    console.print(table.to_string(index=False))


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
