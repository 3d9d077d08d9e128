"""Paths and numbers given on the command line are checked first, each mistake one line:
an output that is a directory or in a missing folder, input files that are not what they
should be, a mistyped store path, negative seeds and thread counts."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from helpers.cli import run_cli

# each command with its required options (dummy values: the output is checked first)
COMMANDS = [
    ["analyze", "profitability", "--db", "s.duckdb", "--assignments", "a.parquet"],
    ["analyze", "drivers", "--db", "s.duckdb", "--as-of", "2024-01-01", "--assignments",
     "a.parquet"],
    ["analyze", "migration", "a.parquet", "b.parquet"],
    ["analyze", "events", "--real"],
    ["churn", "--db", "s.duckdb", "--cutoffs", "2024-01-01"],
    ["liquidation", "--db", "s.duckdb", "--cutoffs", "2024-01-01"],
    ["controls", "--db", "s.duckdb"],
    ["audit", "--db", "s.duckdb"],
    ["policy", "diff", "old.yaml", "new.yaml", "--db", "s.duckdb"],
    ["report", "--db", "s.duckdb", "--model", "m"],
]


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_an_output_that_is_a_directory_is_refused_first(argv, tmp_path, capsys):
    code, out, err = run_cli([*argv, "--out", str(tmp_path)], capsys)
    assert code == 2
    assert f"--out {tmp_path}: is a directory; give a file name" in err
    assert "Traceback" not in out + err


# the reports and analyses make a missing folder when they write; the exports do not
MAKE_FOLDERS = {"analyze", "churn", "report"}


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_an_output_in_a_missing_folder_is_refused_first_unless_made(argv, tmp_path, capsys):
    target = tmp_path / "nope" / "x.parquet"
    code, _, err = run_cli([*argv, "--out", str(target)], capsys)
    refused = f"folder {tmp_path / 'nope'} does not exist" in err
    assert refused == (argv[0] not in MAKE_FOLDERS), err
    if refused:
        assert code == 2


def test_the_flows_output_of_migration_is_checked_too(tmp_path, capsys):
    code, _, err = run_cli(["analyze", "migration", "a.parquet", "b.parquet", "--flows-out",
                            str(tmp_path)], capsys)
    assert code == 2 and f"--flows-out {tmp_path}: is a directory" in err


def test_an_output_under_a_file_is_refused(tmp_path, capsys):
    f = tmp_path / "f.txt"
    f.write_text("x")
    code, _, err = run_cli(["controls", "--db", "s.duckdb", "--out", str(f / "x.parquet")],
                           capsys)
    assert code == 2 and f"folder {f} is not a folder" in err


def test_an_audit_limit_below_one_is_a_usage_error(tmp_path, capsys):
    code, _, err = run_cli(["audit", "--db", "s.duckdb", "--limit", "0"], capsys)
    assert code == 2 and "--limit" in err


def _evaluate(tmp_path, capsys, **files):
    argv = ["evaluate"]
    for opt, path in files.items():
        argv += [f"--{opt}", str(path)]
    code, out, err = run_cli(argv, capsys)
    assert "Traceback" not in out + err
    return code, err


def test_evaluate_refuses_unreadable_or_incomplete_inputs(tmp_path, capsys):
    good = tmp_path / "a.parquet"
    pd.DataFrame({"account_id": ["a", "b"], "segment": [0, 1]}).to_parquet(good)
    truth = tmp_path / "t.parquet"
    pd.DataFrame({"account_id": ["a", "b"], "archetype": ["x", "y"]}).to_parquet(truth)
    text = tmp_path / "text.parquet"
    text.write_text("not parquet")
    code, err = _evaluate(tmp_path, capsys, truth=tmp_path / "nope.parquet", assignments=good)
    assert code == 2 and f"--truth {tmp_path / 'nope.parquet'}: file not found" in err
    code, err = _evaluate(tmp_path, capsys, truth=truth, assignments=text)
    assert code == 2 and f"--assignments {text}: not a readable Parquet file" in err
    noseg = tmp_path / "noseg.parquet"
    pd.DataFrame({"account_id": ["a"]}).to_parquet(noseg)
    code, err = _evaluate(tmp_path, capsys, truth=truth, assignments=noseg)
    assert code == 2 and "missing column 'segment'" in err
    empty = tmp_path / "empty.parquet"
    pd.DataFrame({"account_id": pd.Series([], dtype=str),
                  "segment": pd.Series([], dtype="int64")}).to_parquet(empty)
    code, err = _evaluate(tmp_path, capsys, truth=truth, assignments=empty)
    assert code == 2 and "no account with a segment" in err
    code, err = _evaluate(tmp_path, capsys, truth=truth, assignments=good, features=text)
    assert code == 2 and f"--features {text}: not a readable Parquet file" in err
    asof = tmp_path / "asof.parquet"
    pd.DataFrame({"account_id": ["a"], "segment": [0],
                  "as_of": [pd.Timestamp("2024-01-02", tz="UTC")]}).to_parquet(asof)
    code, err = _evaluate(tmp_path, capsys, truth=truth, assignments=asof, db=text)
    assert code == 2 and f"{text}: is not a DuckDB store file" in err


@pytest.mark.parametrize("argv", [
    ["promote", "v1", "--model", "REG", "--db", "DB"],
    ["campaign", "register", "--db", "DB", "--audience", "AUD", "--id", "c1", "--treatment",
     "x", "--start", "2024-01-01", "--end", "2024-02-01"],
], ids=["promote", "campaign register"])
def test_commands_recording_into_a_store_never_create_one(argv, tmp_path, capsys):
    from pathlib import Path

    policy = Path(__file__).resolve().parents[1] / "examples" / "policy.yaml"
    aud = tmp_path / "aud.csv"
    aud.write_text("account_id,segment\na,1\n")
    reg = tmp_path / "reg"
    db = tmp_path / "mistyped.duckdb"
    sub = {"DB": str(db), "POLICY": str(policy), "AUD": str(aud), "REG": str(reg)}
    code, out, err = run_cli([sub.get(a, a) for a in argv], capsys)
    assert code == 2 and "Traceback" not in out + err
    assert not db.exists()


@pytest.mark.parametrize("argv", [
    ["fit", "--db", "s.duckdb", "--as-of", "2024-01-02", "--out", "m", "--seed", "-1"],
    ["refit", "--db", "s.duckdb", "--model", "m", "--seed", "-1"],
    ["simulate", "--out", "x", "--seed", "-1"],
    ["churn", "--db", "s.duckdb", "--cutoffs", "2024-01-01", "--threads", "0"],
    ["liquidation", "--db", "s.duckdb", "--cutoffs", "2024-01-01", "--threads", "-2"],
    ["predict", "train", "--db", "s.duckdb", "--as-of", "2024-01-02", "--out", "p",
     "--threads", "0"],
], ids=lambda a: " ".join(a[:2]))
def test_a_negative_seed_or_no_thread_is_a_usage_error(argv, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(argv, capsys)
    assert code == 2 and "Traceback" not in out + err
    assert ("--seed" in err) or ("--threads" in err)
    assert not (tmp_path / "m").exists() and not (tmp_path / "x").exists()


def test_a_store_without_tables_is_still_refused_cleanly(tmp_path, capsys):
    db = tmp_path / "empty.duckdb"
    duckdb.connect(str(db)).close()
    code, out, err = run_cli(["evaluate", "--truth", str(db), "--assignments", str(db)], capsys)
    assert code == 2 and "Traceback" not in out + err


def test_inputs_that_are_folders_and_a_simulation_into_a_file(tmp_path, capsys):
    f = tmp_path / "f.txt"
    f.write_text("x")
    code, out, err = run_cli(["simulate", "--out", str(f), "--accounts", "5", "--days", "2"],
                             capsys)
    assert code == 2 and f"--out {f}: is a file" in err and "Traceback" not in out + err
    db = tmp_path / "s.duckdb"
    duckdb.connect(str(db)).close()
    code, out, err = run_cli(["campaign", "register", "--db", str(db), "--audience",
                              str(tmp_path), "--id", "c1", "--treatment", "x", "--start",
                              "2024-01-01", "--end", "2024-02-01"], capsys)
    assert code == 2 and f"{tmp_path}: is a directory, not an audience file" in err
    csv = tmp_path / "fills.csv"
    csv.write_text("a,b\n1,2\n")
    code, out, err = run_cli(["ingest", str(csv), "--db", str(tmp_path / "i.duckdb"),
                              "--mapping", str(tmp_path)], capsys)
    assert code == 2 and f"mapping file {tmp_path} is a directory" in err
    code, out, err = run_cli(["keys", "list", "--keys", str(tmp_path)], capsys)
    assert code == 2 and "is a directory, not a key file" in err


def test_a_store_without_fills_says_so_in_one_line(tmp_path, capsys):
    db = tmp_path / "empty.duckdb"
    duckdb.connect(str(db)).close()
    code, out, err = run_cli(["churn", "--db", str(db), "--cutoffs", "2024-01-01,2024-02-01"],
                             capsys)
    assert code == 2 and "Traceback" not in out + err
    assert err.strip() == f"error: {db}: no 'fills' table; run `traderseg ingest` first"


# an output named for another format than the one the command writes
@pytest.mark.parametrize("argv, wrong, right", [
    (["features", "--db", "s.duckdb", "--as-of", "2024-01-01"], "f.csv", "f.parquet"),
    (["churn", "--db", "s.duckdb", "--cutoffs", "2024-01-01"], "c.xlsx", "c.pq"),
    (["report", "--db", "s.duckdb", "--model", "m"], "r.parquet", "r.html"),
    (["controls", "--db", "s.duckdb"], "c.xlsx", "c.csv"),
    (["review-queue", "--db", "s.duckdb", "--model", "m"], "q.parquet", "q.csv"),
], ids=lambda a: a[0] if isinstance(a, list) else a)
def test_an_output_named_for_another_format_is_refused_first(argv, wrong, right, tmp_path,
                                                             capsys):
    code, out, err = run_cli([*argv, "--out", str(tmp_path / wrong)], capsys)
    assert code == 2 and "Traceback" not in out + err
    assert f"--out {tmp_path / wrong}: the name is of a" in err
    # the name the command writes passes this check (the dummy store then fails)
    code, out, err = run_cli([*argv, "--out", str(tmp_path / right)], capsys)
    assert code == 2 and "the name is of a" not in err


def test_format_names_are_read_case_blind_and_a_name_without_suffix_passes(tmp_path):
    from traderseg.cli.paths import CSV, CSV_OR_PARQUET, check_format
    from traderseg.errors import ConfigError

    check_format(tmp_path / "x", "--out")
    check_format(tmp_path / "x.PQ", "--out")
    check_format(tmp_path / "x.CSV", "--out", CSV_OR_PARQUET)
    with pytest.raises(ConfigError, match=r"a Parquet file, but this writes CSV \(\.csv\)"):
        check_format(tmp_path / "x.parquet", "--out", CSV)


@pytest.mark.parametrize("name, writes, parquet", [
    ("x.PQ", "CSV_OR_PARQUET", True), ("x.Parquet", "CSV_OR_PARQUET", True),
    ("x.csv", "PARQUET_OR_CSV", False), ("x", "CSV_OR_PARQUET", False),
    ("x", "PARQUET_OR_CSV", True),
])
def test_csv_or_parquet_outputs_follow_the_name_then_the_default(name, writes, parquet,
                                                                 tmp_path):
    import traderseg.cli.paths as P

    out = tmp_path / name
    P.write_frame(pd.DataFrame({"a": [1, 2]}), out, getattr(P, writes))
    assert out.read_bytes()[:4] == b"PAR1" if parquet else out.read_text() == "a\n1\n2\n"


def test_drivers_refuse_a_horizon_that_is_not_positive(tmp_path, capsys):
    base = ["analyze", "drivers", "--db", str(tmp_path / "s.duckdb"), "--as-of", "2024-01-01",
            "--assignments", str(tmp_path / "a.parquet"), "--target", "next_volume"]
    for bad in ("0", "-3", "nan"):
        code, out, err = run_cli([*base, "--horizon-days", bad], capsys)
        assert code == 2 and "horizon_days must be > 0" in err and "Traceback" not in out + err
    # the smallest positive horizon passes the check (the missing files fail next)
    code, _, err = run_cli([*base, "--horizon-days", "1e-9"], capsys)
    assert code == 2 and "horizon_days" not in err


def test_a_simulated_venue_must_end_by_now(tmp_path, capsys):
    from datetime import UTC, datetime, timedelta

    from traderseg.cli.simulate import _check_past
    from traderseg.errors import ConfigError

    code, out, err = run_cli(["simulate", "--out", str(tmp_path / "v"), "--start",
                              "2099-01-01", "--days", "3"], capsys)
    assert code == 2 and "the venue would end on 2099-01-04, after now" in err
    assert not (tmp_path / "v").exists()
    today = datetime.now(UTC).date()
    _check_past(today - timedelta(days=3), 3)  # ends at today's midnight: not after now
    with pytest.raises(ConfigError, match="after now"):
        _check_past(today - timedelta(days=2), 3)  # ends at tomorrow's midnight


@pytest.mark.parametrize("gate, ok", [
    ("ari=-5", False), ("ari=-1", True), ("ari=1.0001", False), ("agreement=1", True),
    ("agreement=-0.01", False), ("silhouette_drop=-2", True), ("silhouette_drop=2.5", False),
    ("share_shift=inf", False),
])
def test_refit_gate_limits_must_lie_in_the_range_of_their_value(gate, ok, tmp_path, capsys):
    from traderseg.cli.models import parse_gates
    from traderseg.errors import ConfigError
    from traderseg.segment.refit import gate_limits

    if ok:
        gate_limits(parse_gates([gate]))
        return
    with pytest.raises(ConfigError, match="the limit must be"):
        gate_limits(parse_gates([gate]))
    code, out, err = run_cli(["refit", "--db", str(tmp_path / "s.duckdb"), "--model",
                              str(tmp_path / "reg"), "--gate", gate], capsys)
    assert code == 2 and "the limit must be" in err and "Traceback" not in out + err
    assert not (tmp_path / "reg").exists()


def test_serve_refuses_a_venue_name_no_key_can_hold(tmp_path, capsys):
    code, _, err = run_cli(["serve", "--db", str(tmp_path / "s.duckdb"), "--model", "m",
                            "--venue", "two words"], capsys)
    assert code == 2 and "venue 'two words': use letters, digits" in err


def test_serve_refuses_an_address_it_cannot_listen_on_before_opening_anything(tmp_path,
                                                                              capsys):
    import socket

    db = tmp_path / "s.duckdb"
    db.write_bytes(b"")  # exists; never opened, the address is checked first
    base = ["serve", "--db", str(db), "--model", str(tmp_path / "m"), "--keys",
            str(tmp_path / "k.json")]
    code, _, err = run_cli([*base, "--host", "no-such-host.invalid"], capsys)
    assert code == 2 and "--host no-such-host.invalid: not an address of this machine" in err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, _, err = run_cli([*base, "--port", str(port)], capsys)
    assert code == 2 and f"--port {port}: cannot listen there" in err


def test_empty_assignments_are_refused_not_read_as_everyone_unassigned(tmp_path, capsys):
    from helpers.store import simulated_store

    db = simulated_store(tmp_path, accounts=20, days=5, seed=3)
    empty = tmp_path / "empty.parquet"
    pd.DataFrame({"account_id": pd.Series([], dtype=str), "segment": pd.Series([], dtype=int),
                  "segment_name": pd.Series([], dtype=str)}).to_parquet(empty)
    for argv, words in (
            (["analyze", "profitability", "--db", str(db), "--assignments", str(empty)],
             f"assignments file {empty}: no accounts"),
            (["analyze", "drivers", "--db", str(db), "--as-of", "2024-01-04", "--assignments",
              str(empty)], f"assignments file {empty}: no accounts"),
            (["analyze", "migration", str(empty), str(empty), "--labels", "jan,feb"],
             "period jan: no accounts"),
            (["clv", "--db", str(db), "--as-of", "2024-01-04", "--assignments", str(empty),
              "--out", str(tmp_path / "c.parquet")], f"--assignments {empty}: no accounts")):
        code, out, err = run_cli(argv, capsys)
        assert code == 2 and words in err and "Traceback" not in out + err, (argv, err)
