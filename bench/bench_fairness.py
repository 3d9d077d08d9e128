"""Fairness audit on clean and biased simulated venues, and its false-positive rate.

Usage::

    python bench/bench_fairness.py --workdir work/fairness-bench [--seeds 1,2,3,4,5,6] \\
        [--accounts 800]

For each seed: simulate a venue (60 days from 2024-01-01), fit segments as of day 45 and
audit the controls decided by two policies (``tests/compliance/data``): the clean one
(the example policy, whose only attribute rules read the KYC tier) and the biased one
(the same plus a proxy rule capping and reviewing one region). Prints, per seed, the
(attribute, outcome) pairs flagged under each policy with their effect and Holm-adjusted
p-value; then the share of seeds where the clean policy gets a region flag (false
positives: it has no region rule) and where the biased one gets its two region flags
(the injected rule found).
"""

from __future__ import annotations

import argparse
import time
from datetime import date
from pathlib import Path

from traderseg.compliance.fairness import fairness_audit
from traderseg.growth.inputs import decision_inputs
from traderseg.ingest import ingest
from traderseg.policy import load_policy
from traderseg.segment.workflow import fit_segments
from traderseg.simulate import simulate_venue

DATA = Path(__file__).resolve().parents[1] / "tests" / "compliance" / "data"
INJECTED = {("region", "max_leverage_restricted"), ("region", "review_flag_restricted")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--seeds", default="1,2,3,4,5,6")
    ap.add_argument("--accounts", type=int, default=800)
    args = ap.parse_args()
    policies = {n: load_policy(DATA / f"{n}_policy.yaml") for n in ("clean", "biased")}
    false_pos, found = 0, 0
    seeds = [int(s) for s in args.seeds.split(",")]
    for seed in seeds:
        t0 = time.perf_counter()
        work = args.workdir / f"seed-{seed}"
        db, model = work / "venue.duckdb", work / "model"
        if not db.exists():
            simulate_venue(work / "sim", accounts=args.accounts, days=60, seed=seed,
                           start=date(2024, 1, 1))
            ingest([work / "sim"], db)
        if not model.exists():
            fit_segments(db, "2024-02-15", model, random_state=0)
        flags = {}
        for name, pol in policies.items():
            frame = decision_inputs(db, model, policy=pol).frame
            d = fairness_audit(frame, random_state=seed).disparity
            f = d[d["flagged"]]
            flags[name] = set(zip(f["attribute"], f["outcome"], strict=True))
            shown = ", ".join(f"{r.attribute}/{r.outcome} (effect {r.conditional_effect:.2f}, "
                              f"p {r.conditional_p_holm:.3f})" for r in f.itertuples())
            print(f"seed {seed} {name}: {len(f)} flagged: {shown or 'none'}")
        false_pos += any(a == "region" for a, _ in flags["clean"])
        found += INJECTED <= flags["biased"]
        print(f"seed {seed}: {time.perf_counter() - t0:.0f} s")
    n = len(seeds)
    print(f"\nclean policy with a region flag (false positive): {false_pos} of {n} seeds")
    print(f"biased policy with both injected region flags: {found} of {n} seeds")


if __name__ == "__main__":
    main()
