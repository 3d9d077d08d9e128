"""Make the policy test helpers importable (``policy_helpers``)."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))


import pytest  # noqa: E402

FIT_AS_OF = "2024-02-15"
PREDICT_AS_OF = "2024-03-01"


@pytest.fixture(scope="session")
def venue(tmp_path_factory):
    """A small simulated venue (as `make demo` makes, smaller) with a model fitted mid-way."""
    from datetime import date

    from traderseg.ingest import ingest
    from traderseg.segment.workflow import fit_segments
    from traderseg.simulate import simulate_venue

    root = tmp_path_factory.mktemp("policy-venue")
    simulate_venue(root / "sim", accounts=500, days=75, seed=5, start=date(2024, 1, 1),
                   difficulty="realistic")
    db = root / "venue.duckdb"
    ingest([root / "sim"], db)
    fit_segments(db, FIT_AS_OF, root / "model", random_state=0)
    return root, db, root / "model"


@pytest.fixture(scope="session")
def predictors(venue):
    from traderseg.policy.predict import train_predictors

    root, db, _ = venue
    return train_predictors(db, PREDICT_AS_OF, root / "predictors", n_threads=1,
                            churn_lags_days=(30,), liquidation_lags_days=(7,), max_iter=40,
                            windows=("30d",))
