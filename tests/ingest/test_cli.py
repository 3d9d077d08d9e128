from __future__ import annotations

import duckdb
from typer.testing import CliRunner

import traderseg.cli.ingest  # noqa: F401  (registers the command)
from traderseg.cli import app

from .conftest import DATA


def test_cli_ingest_reports_counts(tmp_path):
    db = tmp_path / "s.duckdb"
    runner = CliRunner()
    args = ["ingest", str(DATA / "binance_usertrades.json"), "--db", str(db), "--format",
            "binance", "--account-id", "b1"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "rejected" in res.output
    res2 = runner.invoke(app, [*args, "--asset-price", "BNB=600"])
    assert res2.exit_code == 0, res2.output
    con = duckdb.connect(str(db))
    assert con.execute("SELECT count(*) FROM fills").fetchone()[0] == 4
    runs = con.execute("SELECT rows_read, rows_stored, rows_rejected, rows_already_present "
                       "FROM ingest_runs ORDER BY started_at").fetchall()
    assert runs == [(4, 3, 1, 0), (4, 1, 0, 3)]


def test_cli_help():
    res = CliRunner().invoke(app, ["ingest", "--help"])
    assert res.exit_code == 0 and "--mapping" in res.output
