"""Arguments and model files: one-line errors; warnings on doubtful fits and on a store
far from the training population."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from helpers.cli import run_cli
from helpers.store import simulated_store
from traderseg.ingest import ingest
from traderseg.segment import workflow
from traderseg.segment.persist import METADATA_FILE, MODEL_FILE
from traderseg.segment.synthetic import synthetic_features
from traderseg.segment.workflow import assign_accounts, fit_segments
from traderseg.store import connect

AS_OF = "2024-02-10"


@pytest.fixture(scope="module")
def venue(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    db = simulated_store(root, accounts=300, days=40, seed=5)
    fit_segments(db, AS_OF, root / "model", n_segments=6, random_state=0)
    return root, db, root / "model"


def _fails(args, capsys, *words):
    code, out, err = run_cli(args, capsys)
    assert code == 2, (out, err)
    line = err.strip()
    assert "Traceback" not in out + err and "\n" not in line, err
    for w in words:
        assert w in line, line
    return line


@pytest.mark.parametrize("windows, words", [
    ("7d,7d", "'7d' is given twice"),
    ("1000000d", "must be 1 to 3650 days"),
    ("0d", "must be 1 to 3650 days"),
    ("3651d", "must be 1 to 3650 days"),
    ("7x", "'7x' is not a window"),
    (",", "give windows"),
])
def test_malformed_windows(tmp_path, capsys, windows, words):
    _fails(["features", "--db", str(tmp_path / "s.duckdb"), "--as-of", AS_OF, "--windows",
            windows, "--out", str(tmp_path / "f.parquet")], capsys, words)


def test_window_at_the_limit_is_accepted():
    from traderseg.cli.args import parse_windows

    assert parse_windows("3650d,1d,all") == ("3650d", "1d", "all")


@pytest.mark.parametrize("as_of, words", [
    ("1900-01-01", "out of range"), ("2100-01-01", "out of range"),
    ("yesterday-ish", "not a date or time"), ("99999-01-01", "not a date"),
])
def test_as_of_out_of_range(tmp_path, capsys, as_of, words):
    _fails(["features", "--db", str(tmp_path / "s.duckdb"), "--as-of", as_of,
            "--out", str(tmp_path / "f.parquet")], capsys, words)


def test_as_of_range_boundaries():
    from traderseg.cli.args import parse_as_of

    assert parse_as_of("2009-01-03").year == 2009
    assert parse_as_of("2099-12-31T23:59:59").year == 2099


@pytest.mark.parametrize("value, words", [("ten", "expected a whole number"), ("1", "at least 2")])
def test_segments_option(venue, tmp_path, capsys, value, words):
    _, db, _ = venue
    _fails(["fit", "--db", str(db), "--as-of", AS_OF, "--out", str(tmp_path / "m"),
            "--segments", value], capsys, words)


def test_out_directory_or_existing_file(venue, tmp_path, capsys):
    _, db, model = venue
    _fails(["assign", "--db", str(db), "--model", str(model), "--out", str(tmp_path)], capsys,
           "is a directory")
    existing = tmp_path / "a.parquet"
    existing.write_text("keep me")
    _fails(["assign", "--db", str(db), "--model", str(model), "--out", str(existing)], capsys,
           "file exists; pass --overwrite")
    assert existing.read_text() == "keep me"
    _fails(["fit", "--db", str(db), "--as-of", AS_OF, "--out", str(existing)], capsys,
           "is a file; a model is saved as a directory")


def test_fit_replaces_a_saved_model_only_with_overwrite(venue, tmp_path, capsys):
    _, db, model = venue
    dst = _copy_model(model, tmp_path)
    before = (dst / MODEL_FILE).read_bytes()
    argv = ["fit", "--db", str(db), "--as-of", AS_OF, "--out", str(dst), "--segments", "4"]
    _fails(argv, capsys, "holds a saved model; pass --overwrite")
    assert (dst / MODEL_FILE).read_bytes() == before
    other = tmp_path / "notes"
    other.mkdir()
    (other / "todo.txt").write_text("keep")
    _fails([*argv[:-3], str(other)], capsys, "the folder holds other files")
    assert sorted(p.name for p in other.iterdir()) == ["todo.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out, err = run_cli([*argv[:-3], str(empty), "--segments", "4"], capsys)
    assert code == 0, err
    code, out, err = run_cli([*argv, "--overwrite"], capsys)
    assert code == 0, err
    assert json.loads((dst / METADATA_FILE).read_text())["n_segments"] == 4


def _copy_model(model, tmp_path):
    dst = tmp_path / "m"
    dst.mkdir()
    for name in (MODEL_FILE, METADATA_FILE):
        (dst / name).write_bytes((model / name).read_bytes())
    return dst


def _rehash(dst):
    import hashlib

    meta = json.loads((dst / METADATA_FILE).read_text())
    meta["model_sha256"] = hashlib.sha256((dst / MODEL_FILE).read_bytes()).hexdigest()
    (dst / METADATA_FILE).write_text(json.dumps(meta))


def test_segments_verifies_the_model_hash(venue, tmp_path, capsys):
    _, _, model = venue
    dst = _copy_model(model, tmp_path)
    blob = bytearray((dst / MODEL_FILE).read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    (dst / MODEL_FILE).write_bytes(bytes(blob))
    _fails(["segments", "--model", str(dst)], capsys, "does not match the hash")


def test_bad_zip_with_a_matching_hash(venue, tmp_path, capsys):
    _, _, model = venue
    dst = _copy_model(model, tmp_path)
    (dst / MODEL_FILE).write_bytes(b"PK\x03\x04 not really a zip")
    _rehash(dst)
    _fails(["segments", "--model", str(dst)], capsys, "not a readable skops model file")


@pytest.mark.parametrize("key, value, words", [
    ("as_of", 5, "'as_of' must be a str"),
    ("as_of", "garbage", "'as_of' must be a date or time such as 2024-03-01, not 'garbage'"),
    ("segments", "all of them", "'segments' must be a list"),
    ("windows", [30], "'windows' must list strings"),
    ("segments", [{"id": "one", "name": "x"}], "segments[0].id must be a whole number"),
])
def test_wrong_metadata_types(venue, tmp_path, capsys, key, value, words):
    _, _, model = venue
    dst = _copy_model(model, tmp_path)
    meta = json.loads((dst / METADATA_FILE).read_text())
    meta[key] = value
    (dst / METADATA_FILE).write_text(json.dumps(meta))
    _fails(["segments", "--model", str(dst)], capsys, words)


def test_a_model_saved_without_a_cutoff_needs_as_of(venue, tmp_path, capsys):
    _, db, model = venue
    dst = _copy_model(model, tmp_path)
    meta = json.loads((dst / METADATA_FILE).read_text())
    meta["as_of"] = None  # what save_model(as_of=None) writes
    (dst / METADATA_FILE).write_text(json.dumps(meta))
    out = tmp_path / "a.parquet"
    _fails(["assign", "--db", str(db), "--model", str(dst), "--out", str(out)], capsys,
           "the model records no training cutoff (as_of); give the cutoff (--as-of)")
    code, _, err = run_cli(["assign", "--db", str(db), "--model", str(dst), "--out", str(out),
                            "--as-of", AS_OF], capsys)
    assert code == 0, err


def test_policy_check_refuses_a_model_the_other_commands_could_not_load(venue, tmp_path,
                                                                        capsys):
    _, _, model = venue
    policy = str(Path(__file__).parents[2] / "examples" / "policy.yaml")
    dst = _copy_model(model, tmp_path)
    blob = bytearray((dst / MODEL_FILE).read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    (dst / MODEL_FILE).write_bytes(bytes(blob))
    for argv in (["policy", "check", policy, "--model", str(dst)],
                 ["policy", "activate", policy, "--db", str(tmp_path / "s.duckdb"), "--model",
                  str(dst)],
                 ["policy", "diff", policy, policy, "--db", str(tmp_path / "s.duckdb"),
                  "--model", str(dst)]):
        _fails(argv, capsys, str(dst / MODEL_FILE), "does not match the hash")
    (dst / MODEL_FILE).unlink()
    _fails(["policy", "check", policy, "--model", str(dst)], capsys,
           f"{dst / MODEL_FILE} not found")
    assert not (tmp_path / "s.duckdb").exists()


def test_model_columns_missing_from_the_features(venue, tmp_path, capsys):
    _, db, model = venue
    dst = _copy_model(model, tmp_path)
    meta = json.loads((dst / METADATA_FILE).read_text())
    meta["windows"] = ["all"]  # the model was fitted on 30d columns too
    (dst / METADATA_FILE).write_text(json.dumps(meta))
    _fails(["assign", "--db", str(db), "--model", str(dst), "--out", str(tmp_path / "a.pq")],
           capsys, "missing")


def test_explain_unknown_account(venue, capsys):
    _, db, model = venue
    _fails(["explain", "nobody-here", "--db", str(db), "--model", str(model)], capsys,
           "unknown account 'nobody-here'")


def test_shifted_store_warns_naming_features(venue, tmp_path, caplog):
    root, db, model = venue
    assert assign_accounts(db, model).attrs["shifted_features"] == []
    shifted = tmp_path / "shifted.duckdb"
    ingest([root / "sim"], shifted)
    con = connect(shifted)
    # every fill a maker fill paying a hundred times the fees: a population the model
    # never saw (yet a maker share of 1 alone would name them "perp makers")
    con.execute("UPDATE fills SET fee_usd = abs(fee_usd) * 100 + 1, is_maker = true")
    con.close()
    with caplog.at_level(logging.WARNING, logger="traderseg.segment.workflow"):
        frame = assign_accounts(shifted, model)
    names = [c for c, _ in frame.attrs["shifted_features"]]
    assert names and any("fee" in c or "maker" in c for c in names)
    assert "most shifted features" in caplog.text and names[0] in caplog.text


def test_few_accounts_warn():
    X, _ = synthetic_features(30, windows=("30d", "all"), random_state=1)
    assert workflow._fit_warnings_before(len(X)) and "only 30 accounts" in \
        workflow._fit_warnings_before(30)[0]
    assert workflow._fit_warnings_before(workflow.MIN_ACCOUNTS) == []
    assert workflow._fit_warnings_before(workflow.MIN_ACCOUNTS - 1) != []


@pytest.mark.parametrize("stability, warns", [(0.75, False), (0.7499, True), (0.2, True)])
def test_chosen_k_below_stability_floor_warns(stability, warns):
    sel = pd.DataFrame({"k": [3, 4], "stability": [0.9, stability], "chosen": [False, True]})
    notes = workflow._fit_warnings_after(SimpleNamespace(selection_=sel))
    assert bool(notes) is warns
    if warns:
        assert "k=4" in notes[0]
