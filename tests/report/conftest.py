"""A small simulated venue, a model fitted mid-way and the report at the end."""


import pytest

from helpers.store import simulated_store
from traderseg.report import build_report
from traderseg.segment.workflow import fit_segments

FIT_AS_OF = "2024-02-15"
REPORT_AS_OF = "2024-03-16"


@pytest.fixture(scope="session")
def venue(tmp_path_factory):
    root = tmp_path_factory.mktemp("report-venue")
    db = simulated_store(root, accounts=500, days=75, seed=5)
    fit_segments(db, FIT_AS_OF, root / "model", random_state=0)
    return root, db, root / "model"


@pytest.fixture(scope="session")
def built(venue):
    root, db, model = venue
    return build_report(db, model, root / "report.html", as_of=REPORT_AS_OF)
