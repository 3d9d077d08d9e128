"""Segment quality on simulated venues: ARI vs baselines, and id stability across refits.

    python bench/segment_quality.py --seeds 7,1,2

For each seed: simulate a 3,000-account, 90-day venue, fit with automatic k as of day 60,
score against the archetypes beside the RFM and raw k-means baselines, then refit
(a) on a bootstrap resample of the accounts and (b) on the following month (as of day 90),
each matched to the first model, and report the share of accounts keeping the same id and
the share of ids keeping their name.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from traderseg.features.compute import compute_features
from traderseg.ingest import ingest
from traderseg.segment.evaluate import evaluate_segments
from traderseg.segment.workflow import fit_segments
from traderseg.simulate import simulate_venue

START = date(2024, 1, 1)


def _same_id(a: pd.DataFrame, b: pd.DataFrame) -> float:
    x = a.set_index("account_id")["segment"]
    y = b.set_index("account_id")["segment"]
    common = x.index.intersection(y.index)
    return float((x.loc[common] == y.loc[common]).mean())


def _names_kept(a: pd.DataFrame, b: pd.DataFrame) -> float:
    old = dict(zip(a["segment"], a["name"]))
    kept = [old[s] == n for s, n in zip(b["segment"], b["name"]) if s in old]
    return float(np.mean(kept)) if kept else float("nan")


def run(seed: int, work: Path) -> dict:
    sim = work / f"sim{seed}"
    simulate_venue(sim, accounts=3000, days=90, seed=seed, start=START)
    db = work / f"v{seed}.duckdb"
    ingest([sim], db)
    truth = pd.read_parquet(sim / "truth.parquet").set_index("account_id")["archetype"]
    as_of = pd.Timestamp(START + timedelta(days=60), tz="UTC")
    base = fit_segments(db, as_of, work / f"m{seed}")
    a = base.assignments.set_index("account_id")
    ev = evaluate_segments(a["segment"], truth, base.features)
    # (a) bootstrap resample of accounts, matched to the base model
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(base.features), len(base.features), replace=True)
    boot_feats = base.features.iloc[idx]
    boot_feats = boot_feats[~boot_feats.index.duplicated()]
    boot = fit_segments(db, as_of, work / f"b{seed}", features=boot_feats, random_state=seed + 1,
                        previous=base.directory)
    # (b) the following month
    month_as_of = as_of + pd.Timedelta(days=30)
    month = fit_segments(db, month_as_of, work / f"n{seed}", random_state=seed + 2,
                         previous=base.directory,
                         features=compute_features(db, month_as_of, ("30d", "all")))
    month_truth = truth.loc[month.features.index]
    ev_month = evaluate_segments(month.assignments.set_index("account_id")["segment"],
                                 month_truth, month.features)
    return {
        "seed": seed,
        "k": int(base.model.n_segments_),
        "ari": ev.ari, "nmi": ev.nmi,
        "rfm_ari": float(ev.baselines.loc["rfm", "ari"]),
        "raw_kmeans_ari": float(ev.baselines.loc["raw_kmeans", "ari"]),
        "min_purity": float(ev.per_archetype["purity"].min()),
        "names": dict(zip(ev.per_archetype["archetype"],
                          [a.loc[a["segment"] == s, "segment_name"].iloc[0]
                           for s in ev.per_archetype["majority_segment"]])),
        "bootstrap_same_id": _same_id(base.assignments, boot.assignments),
        "bootstrap_names_kept": _names_kept(base.segments, boot.segments),
        "next_month_same_id": _same_id(base.assignments, month.assignments),
        "next_month_names_kept": _names_kept(base.segments, month.segments),
        "next_month_ari": ev_month.ari,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="7,1,2")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for s in args.seeds.split(","):
            r = run(int(s), Path(tmp))
            rows.append(r)
            print(json.dumps(r), flush=True)
    df = pd.DataFrame(rows).drop(columns="names")
    print(df.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
