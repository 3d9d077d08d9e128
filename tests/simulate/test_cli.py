"""``traderseg simulate`` writes the tables and reports what it did."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from traderseg.cli import main


def test_simulate_command(tmp_path, capsys):
    out = tmp_path / "v"
    with pytest.raises(SystemExit) as done:
        main(
            [
            "simulate",
            "--accounts",
            "60",
            "--days",
            "5",
            "--seed",
            "2",
            "--out",
            str(out),
            "--start",
            "2023-06-01",
            ]
        )
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert "fills" in text and "retail_leveraged_perp" in text
    truth = pq.read_table(out / "truth.parquet")
    assert truth.num_rows == 60
    ts = pq.read_table(out / "market.parquet").column("ts").to_pylist()
    assert str(ts[0].date()) == "2023-06-01" and len(ts) == 10


def test_bad_start_is_a_clean_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["simulate", "--out", str(tmp_path / "x"), "--start", "01/06/2023"])
    assert exc.value.code == 2
    assert "YYYY-MM-DD" in capsys.readouterr().err


def test_help_text(capsys):
    with pytest.raises(SystemExit) as done:
        main(["simulate", "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert "archetypes" in text and "--accounts" in text


def test_difficulty_option(tmp_path, capsys):
    out = tmp_path / "v"
    with pytest.raises(SystemExit) as done:
        main(["simulate", "--accounts", "40", "--days", "4", "--out", str(out),
              "--difficulty", "hard"])
    assert done.value.code == 0
    assert "(hard)" in capsys.readouterr().out
    assert "migrated_at" in pq.read_table(out / "truth.parquet").column_names


def test_unknown_difficulty_is_a_clean_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["simulate", "--out", str(tmp_path / "x"), "--difficulty", "medium"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "difficulty must be one of easy, realistic, hard" in err and "Traceback" not in err
