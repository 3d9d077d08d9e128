"""Small simulated venues shared by the simulator tests (written once per session)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest

from traderseg.simulate import simulate_venue

TABLES = ("accounts", "market", "transfers", "truth")


def open_venue(out: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    con.execute(f"create view fills as select * from read_parquet('{out}/fills/*.parquet')")
    for t in TABLES:
        con.execute(f"create view {t} as select * from read_parquet('{out}/{t}.parquet')")
    return con


@pytest.fixture(scope="session")
def venue(tmp_path_factory):
    """600 accounts, 28 days from 2024-01-01, two fills parts."""
    out = tmp_path_factory.mktemp("venue")
    summary = simulate_venue(out, accounts=600, days=28, seed=11, chunk_accounts=300)
    return summary, open_venue(out)


@pytest.fixture(scope="session")
def crash_venue(tmp_path_factory):
    """A window over the March 2020 crash (no DVOL yet: implied vol from the proxy)."""
    out = tmp_path_factory.mktemp("crash")
    summary = simulate_venue(out, accounts=500, days=30, seed=5, start=date(2020, 3, 1))
    return summary, open_venue(out)
