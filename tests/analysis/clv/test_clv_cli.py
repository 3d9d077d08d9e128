"""The ``traderseg clv`` command."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

import traderseg.cli.clv  # noqa: F401  (registers the command)
from traderseg.cli import app, main


def test_clv_command_writes_scores_and_prints_segments(venue_store, tmp_path):
    con, _, db = venue_store
    con.close()
    assignments = tmp_path / "seg.parquet"
    pd.DataFrame({"account_id": [f"acc{i:03d}" for i in range(80)],
                  "segment": ["makers" if i % 10 == 0 else "takers" for i in range(80)]}
                 ).to_parquet(assignments)
    out = tmp_path / "clv.parquet"
    result = CliRunner().invoke(app, ["clv", "--db", str(db), "--as-of", "2024-03-20",
                                      "--assignments", str(assignments), "--out", str(out)],
                                terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "makers" in result.output and "takers" in result.output
    scores = pd.read_parquet(out)
    assert {"account_id", "p_alive", "clv", "segment"} <= set(scores.columns)
    assert (scores.loc[scores["segment"] == "makers", "clv"] <= 0).all()


def test_clv_command_reports_domain_errors(venue_store, capsys):
    con, _, db = venue_store
    con.close()
    with pytest.raises(SystemExit) as exc:
        main(["clv", "--db", str(db), "--as-of", "2030-01-01", "--out", "x.parquet"])
    assert exc.value.code == 2
    assert "after the last day" in capsys.readouterr().err


def test_clv_command_has_help():
    result = CliRunner().invoke(app, ["clv", "--help"])
    assert result.exit_code == 0 and "--horizon-days" in result.output
