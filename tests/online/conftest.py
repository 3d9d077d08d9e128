"""A small simulated venue, a fitted model and a policy for the stream tests."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

POLICY = """\
version: "stream-test-1"
defaults:
  max_leverage: 50
  position_limit_usd: 1000000
  margin_multiplier: 1.0
  allowed_products: [spot, perp, future, option]
  option_writing: true
  review_flag: false
  marketing_eligible: true
rules:
  - name: high-risk
    when: {risk_score: {min: 40}}
    set: {max_leverage: 10, margin_multiplier: 1.5, option_writing: false, review_flag: true}
    review_reason: high risk score
  - name: very-high-risk
    when: {risk_score: {min: 60}}
    set: {max_leverage: 5, allowed_products: [spot, perp]}
  - name: new-accounts
    when: {lifecycle_stage: [new]}
    set: {position_limit_usd: 100000}
"""

@dataclass(frozen=True)
class Venue:
    fills: Path  # folder of fill parts
    empty_store: Path  # accounts and market, no fills
    model: Path
    policy: Path

    def store(self, tmp: Path, name: str = "s.duckdb") -> Path:
        out = tmp / name
        shutil.copy(self.empty_store, out)
        return out


@pytest.fixture(scope="session")
def venue(tmp_path_factory) -> Venue:
    from traderseg.ingest import ingest
    from traderseg.segment.workflow import fit_segments
    from traderseg.simulate import simulate_venue

    root = tmp_path_factory.mktemp("venue")
    sim = root / "sim"
    simulate_venue(sim, accounts=150, days=6, seed=3)
    ingest([sim], root / "history.duckdb")
    fit_segments(root / "history.duckdb", "2024-01-05", root / "model", n_segments=4)
    ingest([p for p in sim.iterdir() if p.name not in ("fills", "truth.parquet")],
           root / "empty.duckdb")
    policy = root / "policy.yaml"
    policy.write_text(POLICY)
    return Venue(sim / "fills", root / "empty.duckdb", root / "model", policy)
