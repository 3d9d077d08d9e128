from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from traderseg.store import connect

DATA = Path(__file__).parent / "data"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    con = connect(tmp_path / "store.duckdb")
    yield con
    con.close()


def fills_by_id(con: duckdb.DuckDBPyConnection) -> dict[str, dict]:
    rows = con.execute("SELECT * FROM fills").to_arrow_table().to_pylist()
    return {r["fill_id"]: r for r in rows}


def rejects(con: duckdb.DuckDBPyConnection) -> list[dict]:
    return con.execute("SELECT * FROM rejects ORDER BY source, line").to_arrow_table().to_pylist()


def balanced(report) -> bool:
    return all(s.read == s.stored + s.rejected + s.already_present for s in report.sources)
