"""Benchmark of champion/challenger refits: wall time and gate metrics, same vs drifted data.

One simulated venue (default 3,000 accounts over 60 days). The champion is the first fit
of a fresh registry at ``--as-of``; the refit is then measured on

* ``same``: the same venue one day later (the champion's behaviour, a day more of fills);
* ``drifted``: a copy of the store without the fills of two archetypes (the leveraged perp
  takers and the spot holders), so the population the champion learned has changed.

Each repeat starts from a copy of the registry holding only the champion, so every run
really refits (a re-run on the same registry would return the recorded decision). The
drift check (:func:`~traderseg.segment.monitor.monitor_drift`) is timed beside it. Prints
medians over repeats and each run's gate metrics. Usage::

    python bench/bench_refit.py                        # 3,000 accounts, 3 repeats
    python bench/bench_refit.py --accounts 1000 --repeats 1
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import duckdb

GONE = ("retail_leveraged_perp", "spot_holder")
METRICS = ("id_retention", "agreement", "ari", "silhouette_drop", "membership_drop",
           "share_shift")


def _drifted_copy(db: Path, out: Path) -> Path:
    shutil.copy(db, out)
    con = duckdb.connect(str(out))
    gone = ", ".join(f"'{a}'" for a in GONE)
    con.execute(f"DELETE FROM fills WHERE account_id IN (SELECT account_id FROM truth "
                f"WHERE archetype IN ({gone}))")
    con.close()
    return out


def main() -> None:
    from traderseg.ingest import ingest
    from traderseg.segment.monitor import monitor_drift
    from traderseg.segment.refit import refit
    from traderseg.simulate import simulate_venue

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=3_000)
    ap.add_argument("--days", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--segments", default="auto", help="k of the first fit, or auto")
    args = ap.parse_args()
    start = date(2024, 1, 1)
    as_of = start + timedelta(days=args.days - 2)
    later = as_of + timedelta(days=1)
    with tempfile.TemporaryDirectory(prefix="traderseg-refit-bench-") as tmp:
        root = Path(tmp)
        simulate_venue(root / "sim", accounts=args.accounts, days=args.days, seed=7,
                       start=start)
        db = root / "venue.duckdb"
        ingest([root / "sim"], db)
        drifted = _drifted_copy(db, root / "drifted.duckdb")
        k = args.segments if args.segments == "auto" else int(args.segments)
        t0 = time.perf_counter()
        first = refit(db, root / "registry", as_of=as_of.isoformat(), n_segments=k)
        first_s = time.perf_counter() - t0
        print(f"venue: {args.accounts:,} accounts, {args.days} days; first fit "
              f"{first.decision.metrics['challenger_segments']} segments in {first_s:.1f} s")
        for name, store in (("same", db), ("drifted", drifted)):
            times, drift_times, runs = [], [], []
            for i in range(args.repeats):
                reg = shutil.copytree(root / "registry", root / f"reg-{name}-{i}")
                t0 = time.perf_counter()
                r = refit(store, reg, as_of=later.isoformat())
                times.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                report = monitor_drift(store, root / "registry", as_of=later.isoformat(),
                                       record=False)
                drift_times.append(time.perf_counter() - t0)
                runs.append((r, report))
            r, report = runs[-1]
            m = r.decision.metrics
            print(f"\n{name}: refit median {statistics.median(times):.1f} s "
                  f"(runs {', '.join(f'{t:.1f}' for t in times)}); drift check median "
                  f"{statistics.median(drift_times):.1f} s")
            print(f"  verdict {r.decision.verdict}; failed gates: "
                  f"{', '.join(r.failed_gates) or 'none'}")
            print("  " + ", ".join(f"{k}={m[k]:.3f}" if m[k] is not None else f"{k}=n/a"
                                   for k in METRICS))
            print(f"  {m['accounts']:,} accounts compared; segments {m['champion_segments']} -> "
                  f"{m['challenger_segments']}, "
                  f"new ids {m['new_ids']}, gone ids {m['gone_ids']}")
            worst = report.features.iloc[0]
            print(f"  drift: level {report.level}, {report.accounts:,} window accounts, "
                  f"largest PSI {worst['column']} {worst['psi']:.3f}, largest share change "
                  f"{report.shares['change'].abs().max():.3f}")


if __name__ == "__main__":
    main()
