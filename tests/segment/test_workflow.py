"""The store-to-segments workflow and its CLI, on a small simulated venue."""

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from helpers.store import simulated_store
from traderseg.cli import _load_commands, app
from traderseg.errors import DataError
from traderseg.segment.persist import read_metadata
from traderseg.segment.workflow import assign_accounts, explain_account, fit_segments

AS_OF = "2024-02-15"
_load_commands()
runner = CliRunner()


@pytest.fixture(scope="module")
def venue(tmp_path_factory):
    root = tmp_path_factory.mktemp("venue")
    db = simulated_store(root, accounts=500, days=45, seed=3)
    return root, db


@pytest.fixture(scope="module")
def fitted(venue):
    root, db = venue
    return fit_segments(db, AS_OF, root / "model", n_segments=9, random_state=0)


def test_fit_names_every_segment_once_and_assigns_every_account(venue, fitted):
    _, db = venue
    segs = fitted.segments
    assert segs["name"].is_unique
    assert segs["size"].sum() == len(fitted.features)
    a = fitted.assignments
    assert set(a["account_id"]) == set(fitted.features.index)
    assert set(a["segment"]) <= set(segs["segment"])
    assert ((a["membership"] > 0) & (a["membership"] <= 1)).all()
    assert (a["runner_up"] != a["segment"]).all()
    assert set(a["lifecycle_stage"]) <= {"new", "active", "at-risk", "dormant", "churned"}
    assert a["risk_score"].between(0, 100).all()


def test_saved_model_assigns_exactly_as_fitted(venue, fitted):
    _, db = venue
    again = assign_accounts(db, fitted.directory)
    merged = fitted.assignments.merge(again, on="account_id", suffixes=("", "_again"))
    assert len(merged) == len(fitted.assignments)
    assert (merged["segment"] == merged["segment_again"]).all()
    assert (merged["segment_name"] == merged["segment_name_again"]).all()
    meta = read_metadata(fitted.directory)
    assert meta["as_of"].startswith(AS_OF)
    assert {s["name"] for s in meta["segments"]} == set(fitted.segments["name"])


def test_refit_with_previous_keeps_ids_and_names(venue, fitted, tmp_path):
    _, db = venue
    refit = fit_segments(db, AS_OF, tmp_path / "refit", n_segments=9, random_state=11,
                         previous=fitted.directory, features=fitted.features)
    old = fitted.assignments.set_index("account_id")["segment"]
    new = refit.assignments.set_index("account_id")["segment"]
    assert (old == new.loc[old.index]).mean() >= 0.9
    old_names = dict(zip(fitted.segments["segment"], fitted.segments["name"]))
    for sid, name in zip(refit.segments["segment"], refit.segments["name"]):
        if sid in old_names:
            assert name == old_names[sid]


def test_explain_gives_reasons_and_the_nearest_alternative(venue, fitted):
    _, db = venue
    acct = fitted.assignments["account_id"].iloc[0]
    info = explain_account(db, fitted.directory, acct)
    assert info["segment"] == int(fitted.assignments.iloc[0]["segment"])
    assert info["why"] and all("account" in w for w in info["why"])
    assert info["runner_up"]["segment"] != info["segment"]
    with pytest.raises(DataError, match="no fills"):
        explain_account(db, fitted.directory, "no-such-account")


def test_cli_fit_segments_assign_explain_evaluate(venue, tmp_path):
    root, db = venue
    model = tmp_path / "m"
    r = runner.invoke(app, ["fit", "--db", str(db), "--as-of", AS_OF, "--out", str(model),
                            "--segments", "8"])
    assert r.exit_code == 0, r.output
    assert "segments as of" in r.output
    r = runner.invoke(app, ["segments", "--model", str(model)])
    assert r.exit_code == 0 and "revenue" in r.output
    out = tmp_path / "a.parquet"
    r = runner.invoke(app, ["assign", "--db", str(db), "--model", str(model), "--out", str(out)])
    assert r.exit_code == 0, r.output
    a = pd.read_parquet(out)
    acct = a["account_id"].iloc[0]
    r = runner.invoke(app, ["explain", acct, "--db", str(db), "--model", str(model), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["account_id"] == acct
    r = runner.invoke(app, ["evaluate", "--truth", str(root / "sim" / "truth.parquet"),
                            "--assignments", str(out), "--db", str(db)])
    assert r.exit_code == 0, r.output
    assert "ARI" in r.output and "rfm" in r.output
