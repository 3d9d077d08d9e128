"""Controls around a scripted crash: who tightened, when, and the cascade's accounts.

    python bench/bench_crash.py [--accounts 1000] [--days 30] [--out bench/out/crash]

Simulates a venue with a crash two days before its end, fits the segments on the first two
thirds, seeds the stream with the history before the day preceding the crash and replays
the rest through ``traderseg stream`` with ``examples/policy.yaml`` (decisions every 30
minutes of data time). Prints, per segment, how many accounts had their leverage cap
lowered before and after the crash began and how long after it; and, of the accounts the
cascade liquidated (the simulator's truth), how many already had a leverage cap below the
policy's default when the crash began.
"""

from __future__ import annotations

import argparse
import shutil
import time
from datetime import date, timedelta
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
POLICY = ROOT / "examples" / "policy.yaml"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--accounts", type=int, default=1000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "crash")
    args = ap.parse_args()

    from traderseg.ingest import ingest
    from traderseg.online.run import run_stream
    from traderseg.policy import load_policy
    from traderseg.segment.workflow import fit_segments
    from traderseg.simulate import simulate_venue
    from traderseg.simulate.crash import Crash
    from traderseg.store import connect

    out = args.out
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    start = date(2024, 1, 1)
    crash_day = start + timedelta(days=args.days - 2)
    simulate_venue(out / "venue", accounts=args.accounts, days=args.days, seed=5,
                   difficulty="realistic", crash=Crash(crash_day))
    db = out / "venue.duckdb"
    ingest([out / "venue"], db)
    fit_segments(db, str(start + timedelta(days=args.days * 2 // 3)), out / "model")
    begin = pd.Timestamp(crash_day - timedelta(days=1), tz="UTC")
    con = connect(db)
    replay = out / "replay.parquet"
    con.execute(f"COPY (SELECT * EXCLUDE (source) FROM fills WHERE ts >= ? ORDER BY ts) "
                f"TO '{replay}' (FORMAT parquet)", [begin.to_pydatetime()])
    con.execute("DELETE FROM fills WHERE ts >= ?", [begin.to_pydatetime()])
    crash_at = pd.Timestamp(con.execute(
        "SELECT min(event_start) FROM market WHERE event = 'crash'").fetchone()[0])
    con.close()
    t = time.perf_counter()
    st = run_stream(f"replay:{replay}", db, out / "model", POLICY, decide_every_s=1800.0)
    print(f"{st.accepted:,} fills replayed in {time.perf_counter() - t:.1f} s: "
          f"{st.decisions:,} decisions, {st.audit_rows:,} control changes; crash began "
          f"{crash_at:%Y-%m-%d %H:%M} UTC")
    default_cap = float(load_policy(POLICY).defaults["max_leverage"])
    con = connect(db, read_only=True)
    audit = con.execute("SELECT * FROM control_audit WHERE control = 'max_leverage'").df()
    seg = con.execute("SELECT account_id, segment_name FROM controls").df()
    truth = pd.read_parquet(out / "venue" / "truth.parquet")
    con.close()
    audit["effective_at"] = pd.to_datetime(audit["effective_at"], utc=True)
    audit["old"] = pd.to_numeric(audit["old_value"], errors="coerce")
    audit["new"] = pd.to_numeric(audit["new_value"], errors="coerce")
    lowered = audit[audit["old"].notna() & (audit["new"] < audit["old"])].merge(seg)
    lowered["after"] = lowered["effective_at"] >= crash_at
    lowered["minutes_after"] = (lowered["effective_at"] - crash_at).dt.total_seconds() / 60
    per = lowered.groupby("segment_name").agg(
        before=("after", lambda x: int((~x).sum())), after=("after", "sum"),
        accounts_after=("account_id", lambda x: x[lowered.loc[x.index, "after"]].nunique()),
        median_minutes_after=("minutes_after", lambda x: float(x[x >= 0].median())
                              if (x >= 0).any() else float("nan")))
    print("leverage caps lowered during the replay, by segment:")
    print(per.to_string())
    # the cap each account had when the crash began: its last value effective before it
    cap = audit[audit["effective_at"] < crash_at].sort_values("audit_id").groupby(
        "account_id")["new"].last()
    hit = truth.loc[truth["crash_liquidated_at"].notna(), "account_id"]
    caps = cap.reindex(hit)
    tighter = int((caps < default_cap).sum())
    known = int(caps.notna().sum())
    print(f"accounts liquidated in the cascade: {len(hit):,}; with a decision before the "
          f"crash: {known:,}; of those with a leverage cap below the default "
          f"({default_cap:g}x) when it began: {tighter:,}")


if __name__ == "__main__":
    main()
