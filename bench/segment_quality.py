"""Segment quality on simulated venues: ARI vs baselines, migrations, id stability.

    python bench/segment_quality.py --difficulty realistic,hard --seeds 7,1,2

For each difficulty and seed: simulate a 3,000-account, 90-day venue, fit with automatic k
as of day 60, and report

* ARI and NMI against each account's dominant archetype at the cutoff (the archetype it
  migrated to when the migration came before the cutoff), beside the RFM and raw k-means
  baselines;
* migrations: a tracking model (:mod:`traderseg.segment.tracking`), fitted as of day 60
  on the features of a trailing window (``--track-window``, the library's 14 days by
  default; read under the lifetime names) with as many segments as the main model
  (``--track-k same``) or its own automatic k (``--track-k auto``),
  assigns every account trading in that window every day from day 28 to day 90, with the
  stream's hysteresis (``--margin``, ``--dwell-days``). Recall: share of the
  accounts migrating on day ``m`` (28 < m <= 76, still trading 14 days later) whose
  segment on some day in ``m+1 .. m+14`` differs from their segment on day ``m - 1``.
  Flap rate: share of the account-days of the other accounts on which the segment
  changes. Both are also given without hysteresis (``raw``);
* (with ``--stability``) a refit on a bootstrap resample and on the following month,
  matched to the first model: share of accounts keeping their id and of ids keeping
  their name.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from traderseg.features.compute import compute_features
from traderseg.ingest import ingest
from traderseg.online.decide import NO_SEGMENT, Hysteresis
from traderseg.segment.evaluate import evaluate_segments
from traderseg.segment.tracking import TRACKING_WINDOW, recent_features, track_assignments
from traderseg.segment.workflow import fit_segments
from traderseg.simulate import simulate_venue

START = date(2024, 1, 1)
DAYS = 90
FIT_DAY = 60
TRACK_FROM = 28
WITHIN_DAYS = 14


def _same_id(a: pd.DataFrame, b: pd.DataFrame) -> float:
    x = a.set_index("account_id")["segment"]
    y = b.set_index("account_id")["segment"]
    common = x.index.intersection(y.index)
    return float((x.loc[common] == y.loc[common]).mean())


def _names_kept(a: pd.DataFrame, b: pd.DataFrame) -> float:
    old = dict(zip(a["segment"], a["name"]))
    kept = [old[s] == n for s, n in zip(b["segment"], b["name"]) if s in old]
    return float(np.mean(kept)) if kept else float("nan")


def label_at(truth: pd.DataFrame, when: pd.Timestamp) -> pd.Series:
    """Dominant archetype of each account at ``when`` (after a migration, the new one)."""
    moved = truth["migrated_at"].notna() & (truth["migrated_at"] < when)
    return truth["archetype"].where(~moved, truth["migrated_to"])


def migration_scores(seg: np.ndarray, days: np.ndarray, truth: pd.DataFrame,
                     accounts: pd.Index) -> dict[str, float]:
    """Recall of migrations within :data:`WITHIN_DAYS` and flap rate of the others."""
    t = truth.reindex(accounts)
    start = pd.Timestamp(START, tz="UTC")
    mday = ((t["migrated_at"] - start).dt.days).to_numpy()
    end = ((t["churned_at"] - start).dt.days).fillna(10**6).to_numpy()
    col = {int(d): j for j, d in enumerate(days)}
    seen, n_mig = 0, 0
    migrant = np.isfinite(mday)
    for i in np.flatnonzero(migrant):
        m = int(mday[i])
        if m - 1 not in col or m + WITHIN_DAYS not in col or end[i] < m + WITHIN_DAYS:
            continue
        before = seg[i, col[m - 1]]
        if before == NO_SEGMENT:
            continue
        n_mig += 1
        after = seg[i, col[m + 1]: col[m + WITHIN_DAYS] + 1]
        seen += bool(((after != before) & (after != NO_SEGMENT)).any())
    rest = seg[~migrant]
    prev, now = rest[:, :-1], rest[:, 1:]
    valid = (prev != NO_SEGMENT) & (now != NO_SEGMENT)
    flips = int(((prev != now) & valid).sum())
    return {"migrants": n_mig, "recall": seen / n_mig if n_mig else float("nan"),
            "flap_rate": flips / max(int(valid.sum()), 1)}


def track(db: Path, model: Any, truth: pd.DataFrame, window: str,
          hysteresis: Hysteresis) -> dict[str, Any]:
    days = np.arange(TRACK_FROM, DAYS + 1)
    frames = {}
    for d in days:
        cut = pd.Timestamp(START + timedelta(days=int(d)), tz="UTC")
        frames[cut] = recent_features(compute_features(db, cut.to_pydatetime(), (window, "all")),
                                      window)
    held, raw = track_assignments(model, frames, hysteresis)
    out = {f"raw_{k}": v for k, v in migration_scores(
        raw.to_numpy(), days, truth, raw.index).items()}
    out.update(migration_scores(held.to_numpy(), days, truth, held.index))
    return out


def run(seed: int, difficulty: str, work: Path, hysteresis: Hysteresis, stability: bool,
        window: str, track_k: str = "same") -> dict[str, Any]:
    began = time.perf_counter()
    sim = work / f"sim-{difficulty}-{seed}"
    simulate_venue(sim, accounts=3000, days=DAYS, seed=seed, start=START, difficulty=difficulty)
    db = work / f"v-{difficulty}-{seed}.duckdb"
    ingest([sim], db)
    truth = pd.read_parquet(sim / "truth.parquet").set_index("account_id")
    as_of = pd.Timestamp(START + timedelta(days=FIT_DAY), tz="UTC")
    base = fit_segments(db, as_of, work / f"m-{difficulty}-{seed}")
    a = base.assignments.set_index("account_id")
    ev = evaluate_segments(a["segment"], label_at(truth, as_of), base.features)
    pure = truth["second_archetype"].isna() & truth["migrated_to"].isna()
    mask = pure.reindex(base.features.index).fillna(False).to_numpy(dtype=bool)
    ev_pure = evaluate_segments(a["segment"].reindex(base.features.index)[mask],
                                label_at(truth, as_of), base.features[mask])
    recent = base.features if window == "30d" else compute_features(
        db, as_of, (window, "30d", "all"))
    tracker = fit_segments(db, as_of, work / f"t-{difficulty}-{seed}",
                           features=recent_features(recent, window),
                           n_segments=int(base.model.n_segments_) if track_k == "same"
                           else "auto")
    print(f"fitted in {time.perf_counter() - began:.0f}s: ARI {ev.ari:.3f}", flush=True)
    row: dict[str, Any] = {
        "difficulty": difficulty, "seed": seed,
        "k": int(base.model.n_segments_),
        "ari": ev.ari, "nmi": ev.nmi,
        "rfm_ari": float(ev.baselines.loc["rfm", "ari"]),
        "raw_kmeans_ari": float(ev.baselines.loc["raw_kmeans", "ari"]),
        "rfm_nmi": float(ev.baselines.loc["rfm", "nmi"]),
        "raw_kmeans_nmi": float(ev.baselines.loc["raw_kmeans", "nmi"]),
        "pure_ari": ev_pure.ari,
        "min_purity": float(ev.per_archetype["purity"].min()),
        "tracking_k": int(tracker.model.n_segments_),
        **track(db, tracker.model, truth, window, hysteresis),
    }
    if stability:
        rng = np.random.default_rng(seed)
        pick = rng.choice(len(base.features), len(base.features), replace=True)
        boot_feats = base.features.iloc[pick]
        boot_feats = boot_feats[~boot_feats.index.duplicated()]
        boot = fit_segments(db, as_of, work / f"b-{difficulty}-{seed}", features=boot_feats,
                            random_state=seed + 1, previous=base.directory)
        month_as_of = as_of + pd.Timedelta(days=30)
        month = fit_segments(db, month_as_of, work / f"n-{difficulty}-{seed}",
                             random_state=seed + 2, previous=base.directory,
                             features=compute_features(db, month_as_of, ("30d", "all")))
        row.update({
            "bootstrap_same_id": _same_id(base.assignments, boot.assignments),
            "bootstrap_names_kept": _names_kept(base.segments, boot.segments),
            "next_month_same_id": _same_id(base.assignments, month.assignments),
            "next_month_names_kept": _names_kept(base.segments, month.segments),
        })
    row["seconds"] = time.perf_counter() - began
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="7,1,2")
    ap.add_argument("--difficulty", default="realistic",
                    help="comma-separated levels: easy, realistic, hard")
    ap.add_argument("--margin", type=float, default=Hysteresis().margin,
                    help="membership lead a segment change needs")
    ap.add_argument("--dwell-days", type=float, default=Hysteresis().dwell_days,
                    help="days the lead must last")
    ap.add_argument("--track-window", default=TRACKING_WINDOW,
                    help="trailing window of the tracking")
    ap.add_argument("--track-k", choices=("same", "auto"), default="same",
                    help="segments of the tracking model: the main model's k, or its own")
    ap.add_argument("--stability", action="store_true",
                    help="also refit on a bootstrap resample and on the next month")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for level in args.difficulty.split(","):
            for s in args.seeds.split(","):
                r = run(int(s), level, Path(tmp), Hysteresis(args.margin, args.dwell_days),
                        args.stability, args.track_window, args.track_k)
                rows.append(r)
                print(json.dumps(r), flush=True)
    df = pd.DataFrame(rows)
    pd.set_option("display.width", 250)
    print(df.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    num = df.drop(columns=["seed"]).groupby("difficulty").median(numeric_only=True)
    print("\nmedians over seeds")
    print(num.T.to_string(float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
