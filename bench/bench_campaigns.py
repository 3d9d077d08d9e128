"""Uplift recovery and the null campaign's false-positive rate on a simulated venue.

Usage::

    python bench/bench_campaigns.py --workdir work/campaign-bench [--accounts 2000] \\
        [--null-seeds 20]

Simulates a venue (``--accounts`` accounts, 90 days from 2024-01-01), fits segments as of
day 60, builds the audience of every account as of then, and:

1. registers a campaign over days 60-90 with half of each segment held out, plays the
   reference fee rebate (:data:`traderseg.simulate.campaigns.FEE_REBATE`) on the treated
   accounts and prints, per archetype and metric, the true effect against the measured
   uplift (difference in means and CUPED) with its 95% interval and whether the interval
   holds the truth;
2. registers ``--null-seeds`` campaigns with no effect (each its own id, so its own
   random holdout) on an untouched copy of the store and counts how often the overall
   uplift is flagged (interval excluding 0) per metric and estimator: the false-positive
   rate, to compare with the nominal 5%.
"""

from __future__ import annotations

import argparse
import shutil
import time
from datetime import date
from pathlib import Path

import pandas as pd

from traderseg.growth.audience import AudienceSpec, build_audience
from traderseg.growth.campaigns import register_campaign
from traderseg.growth.uplift import measure_campaign
from traderseg.ingest import ingest
from traderseg.segment.workflow import fit_segments
from traderseg.simulate import simulate_venue
from traderseg.simulate.campaigns import FEE_REBATE, apply_campaign_effect, true_effects
from traderseg.store import connect

START, FIT, END = date(2024, 1, 1), "2024-03-01", "2024-03-31"


def prepare(work: Path, accounts: int) -> tuple[Path, Path]:
    db, model = work / "venue.duckdb", work / "model"
    if not db.exists():
        simulate_venue(work / "sim", accounts=accounts, days=90, seed=7, start=START)
        ingest([work / "sim"], db)
    if not model.exists():
        fit_segments(db, FIT, model, random_state=0)
    return db, model


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--accounts", type=int, default=2000)
    ap.add_argument("--null-seeds", type=int, default=20)
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    db, model = prepare(args.workdir, args.accounts)
    spec = AudienceSpec.model_validate({"name": "everyone", "as_of": FIT,
                                        "select": {"marketing_eligible": None}})
    aud = build_audience(db, model, spec)
    print(f"venue ready in {time.perf_counter() - t0:.0f} s; audience {len(aud.members)}")

    treated_db = args.workdir / "treated.duckdb"
    shutil.copy(db, treated_db)
    con = connect(treated_db)
    register_campaign(con, "rebate", aud.members, treatment="fee rebate 20%", start=FIT,
                      end=END, provenance=aud.provenance, holdout_share=0.5)
    apply_campaign_effect(con, "rebate", FEE_REBATE, seed=1)
    arche = dict(con.execute("SELECT account_id, archetype FROM truth").fetchall())
    measured = measure_campaign(con, "rebate", groups=arche)
    truth = true_effects(con, "rebate", FEE_REBATE)
    con.close()
    both = measured.merge(truth, on=["group", "metric"], how="left")
    both["covered"] = (both["ci_low"] <= both["true_uplift"]) & (
        both["true_uplift"] <= both["ci_high"])
    pd.set_option("display.width", 200)
    pd.set_option("display.max_rows", 200)
    cols = ["group", "metric", "estimator", "lift", "true_uplift", "uplift", "ci_low",
            "ci_high", "covered", "significant"]
    print("\nuplift recovery (fee rebate): true vs measured per archetype")
    print(both[cols].to_string(index=False, float_format=lambda v: f"{v:,.4g}"))
    for est, part in both.groupby("estimator"):
        print(f"{est}: intervals holding the true effect {int(part['covered'].sum())} of "
              f"{len(part)}")

    con = connect(db)
    flags = []
    for seed in range(args.null_seeds):
        cid = f"null-{seed}"
        register_campaign(con, cid, aud.members, treatment="nothing", start=FIT, end=END,
                          provenance=aud.provenance, holdout_share=0.5)
        res = measure_campaign(con, cid)
        flags.append(res[res["group"] == "all"][["metric", "estimator", "significant"]])
    con.close()
    fp = pd.concat(flags).groupby(["metric", "estimator"])["significant"].agg(["sum", "count"])
    fp["false_positive_rate"] = fp["sum"] / fp["count"]
    print(f"\nnull campaign over {args.null_seeds} holdout draws: overall uplift flagged")
    print(fp.to_string())
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
