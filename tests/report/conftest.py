"""A small simulated venue, a model fitted mid-way and the report at the end."""

from datetime import date

import pytest

from traderseg.ingest import ingest
from traderseg.report import build_report
from traderseg.segment.workflow import fit_segments
from traderseg.simulate import simulate_venue

FIT_AS_OF = "2024-02-15"
REPORT_AS_OF = "2024-03-16"


@pytest.fixture(scope="session")
def venue(tmp_path_factory):
    root = tmp_path_factory.mktemp("report-venue")
    simulate_venue(root / "sim", accounts=500, days=75, seed=5, start=date(2024, 1, 1))
    db = root / "venue.duckdb"
    ingest([root / "sim"], db)
    fit_segments(db, FIT_AS_OF, root / "model", random_state=0)
    return root, db, root / "model"


@pytest.fixture(scope="session")
def built(venue):
    root, db, model = venue
    return build_report(db, model, root / "report.html", as_of=REPORT_AS_OF)
