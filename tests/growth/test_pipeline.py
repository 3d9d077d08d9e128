"""On a simulated venue through the CLI: audience, campaign with a true effect, measure,
rank, fairness audit of a clean and a biased policy, review queue."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from helpers.cli import run_cli
from helpers.store import simulated_store
from traderseg.segment.workflow import fit_segments
from traderseg.simulate.campaigns import FEE_REBATE, apply_campaign_effect, true_effects
from traderseg.store import connect

DATA = Path(__file__).resolve().parents[1] / "compliance" / "data"
AS_OF = "2024-02-01"


@pytest.fixture(scope="module")
def venue(tmp_path_factory):
    root = tmp_path_factory.mktemp("growth")
    db = simulated_store(root, accounts=500, days=60, seed=4, name="store.duckdb")
    fit_segments(db, AS_OF, root / "model", n_segments=9, random_state=0)
    return root, db, root / "model"


def test_audience_campaign_measure_rank(venue, capsys, tmp_path):
    root, db, model = venue
    spec = tmp_path / "all.yaml"
    spec.write_text(f"name: everyone\nas_of: {AS_OF}\nselect:\n  marketing_eligible: null\n")
    out = tmp_path / "aud.csv"
    code, text, err = run_cli(["audience", "build", str(spec), "--db", str(db), "--model",
                               str(model), "--out", str(out)], capsys)
    assert code == 0, err
    first = out.read_bytes()
    prov = json.loads((tmp_path / "aud.csv.json").read_text())
    assert prov["as_of"].startswith(AS_OF) and prov["model_version"] and prov["spec_sha256"]
    # reproducible: the same spec on the same store and model writes the same bytes
    code, _, _ = run_cli(["audience", "build", str(spec), "--db", str(db), "--model",
                          str(model), "--out", str(out), "--overwrite"], capsys)
    assert code == 0 and out.read_bytes() == first
    work = tmp_path / "c.duckdb"
    work.write_bytes(db.read_bytes())
    reg = ["campaign", "register", "--db", str(work), "--audience", str(out), "--id", "rb",
           "--treatment", "fee rebate 20%", "--start", AS_OF, "--end", "2024-03-01",
           "--holdout", "0.5"]
    assert run_cli(reg, capsys)[0] == 0
    assert run_cli(reg, capsys)[0] == 0          # idempotent
    con = connect(work)
    apply_campaign_effect(con, "rb", FEE_REBATE, seed=1)
    truth = true_effects(con, "rb", FEE_REBATE)
    con.close()
    res_path = tmp_path / "uplift.csv"
    code, text, err = run_cli(["campaign", "measure", "--db", str(work), "--id", "rb", "--by",
                               "archetype", "--out", str(res_path)], capsys)
    assert code == 0, err
    res = pd.read_csv(res_path)
    cup = res[(res["estimator"] == "cuped") & (res["metric"] == "volume_usd")].set_index("group")
    tv = truth[truth["metric"] == "volume_usd"].set_index("group")["true_uplift"]
    # the interval of the archetype with the largest effect holds its true effect, and the
    # spot holders' (no effect) holds 0
    s = cup.loc["perp_scalper"]
    assert s["ci_low"] <= tv["perp_scalper"] <= s["ci_high"]
    h = cup.loc["spot_holder"]
    assert h["ci_low"] <= 0 <= h["ci_high"]
    code, text, err = run_cli(["campaign", "rank", "--db", str(work), "--id", "rb", "--out",
                               str(tmp_path / "rank.csv"), "--metric", "volume_usd"], capsys)
    assert code == 0, err
    ranked = pd.read_csv(tmp_path / "rank.csv")
    assert ranked["rank"].tolist() == list(range(1, len(ranked) + 1))


def test_an_audience_on_lifetime_value_without_stored_predictions(venue, capsys, tmp_path):
    """Churn probabilities missing from the store come from the lifetime-value fit."""
    root, db, model = venue
    spec = tmp_path / "ltv.yaml"
    spec.write_text(f"name: valuable\nas_of: {AS_OF}\nselect:\n  lifetime_value: {{min: 1}}\n"
                    "  marketing_eligible: null\n")
    out = tmp_path / "ltv.csv"
    code, _, err = run_cli(["audience", "build", str(spec), "--db", str(db), "--model",
                            str(model), "--out", str(out)], capsys)
    assert code == 0, err
    aud = pd.read_csv(out)
    assert len(aud) and (aud["lifetime_value"] >= 1).all()
    assert aud["churn_probability"].between(0, 1).all()


def test_fairness_flags_the_proxy_rule_only(venue, capsys, tmp_path):
    _, db, model = venue
    flagged = {}
    for name in ("clean", "biased"):
        out = tmp_path / f"{name}.parquet"
        code, text, err = run_cli(["audit", "fairness", "--db", str(db), "--model", str(model),
                                   "--policy", str(DATA / f"{name}_policy.yaml"), "--out",
                                   str(out)], capsys)
        assert code == 0, err
        d = pd.read_parquet(out)
        flagged[name] = set(map(tuple, d.loc[d["flagged"], ["attribute", "outcome"]].values))
        assert (tmp_path / f"{name}.rates.parquet").exists()
    assert not {f for f in flagged["clean"] if f[0] == "region"}
    assert ("region", "max_leverage_restricted") in flagged["biased"]
    assert ("region", "review_flag_restricted") in flagged["biased"]


def test_fairness_says_what_it_could_not_audit(venue, capsys, tmp_path):
    _, db, model = venue
    con = duckdb.connect(str(db), read_only=True)
    try:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables")
                  .fetchall()}
    finally:
        con.close()
    assert "controls" not in tables  # no controls and no --policy: nothing to audit on them
    code, text, err = run_cli(["audit", "fairness", "--db", str(db), "--model", str(model),
                               "--out", str(tmp_path / "f.parquet")], capsys)
    assert code == 0, err
    assert "controls not audited: the store holds no controls and no --policy was given" in text
    code, text, err = run_cli(["audit", "fairness", "--db", str(db), "--model", str(model),
                               "--policy", str(DATA / "clean_policy.yaml"), "--out",
                               str(tmp_path / "g.parquet")], capsys)
    assert code == 0, err
    assert "controls not audited" not in text


def test_unaudited_lines_by_hand():
    from traderseg.cli.compliance import _unaudited

    shown = pd.DataFrame({"kind": ["control", "control", "targeting", "targeting"],
                          "outcome": ["a_restricted", "a_restricted", "churn_targeted",
                                      "value_targeted"],
                          "groups": [0, 0, 0, 1]})
    assert _unaudited(shown, "none") == [
        "controls not audited: the store holds no controls and no --policy was given",
        "not audited, no account with a known value: churn_targeted"]
    assert _unaudited(shown, "2024.1") == [
        "not audited, no account with a known value: a_restricted, churn_targeted"]
    assert _unaudited(shown.assign(groups=1), "none") == []


def test_review_queue_export(venue, capsys, tmp_path):
    _, db, model = venue
    out = tmp_path / "queue.csv"
    code, text, err = run_cli(["review-queue", "--db", str(db), "--model", str(model),
                               "--policy", str(DATA / "clean_policy.yaml"), "--out", str(out)],
                              capsys)
    assert code == 0, err
    q = pd.read_csv(out)
    assert len(q) and set(q["tier"]) <= {"standard", "enhanced"}
    assert "enhanced" in text


def test_cli_errors_are_one_line(venue, capsys, tmp_path):
    _, db, model = venue
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nselect:\n  value_tiers: [tin]\n")
    code, _, err = run_cli(["audience", "build", str(bad), "--db", str(db), "--model",
                            str(model), "--out", str(tmp_path / "a.csv")], capsys)
    assert code == 2 and "bad.yaml:3: select.value_tiers[0]" in err
    code, _, err = run_cli(["campaign", "measure", "--db", str(db), "--id", "nope"], capsys)
    assert code == 2 and "no campaign 'nope'" in err and len(err.strip().splitlines()) == 1


def test_report_shows_the_fairness_of_stored_decisions(venue, tmp_path):
    from traderseg.online.tables import write_decisions
    from traderseg.policy import INPUT_COLUMNS, load_policy
    from traderseg.policy.inputs import decision_inputs
    from traderseg.report import build_report
    from traderseg.segment.persist import model_version, read_metadata

    _, db, model = venue
    work = tmp_path / "decided.duckdb"
    work.write_bytes(db.read_bytes())
    con = connect(work)
    inputs = decision_inputs(con, model, pd.Timestamp(AS_OF, tz="UTC"))
    decided = load_policy(DATA / "biased_policy.yaml").evaluate(inputs[list(INPUT_COLUMNS)])
    rows = pd.concat([inputs, decided], axis=1).assign(
        model_version=model_version(read_metadata(model)),
        as_of=pd.Timestamp(AS_OF, tz="UTC"), fill_id=None, updated_at=pd.Timestamp.now(tz="UTC"))
    write_decisions(con, rows, actor="batch")
    con.close()
    built = build_report(work, model, tmp_path / "r.html", as_of=AS_OF)
    html = built.path.read_text()
    assert "fairness" not in built.unavailable
    assert 'id="fairness"' in html and "attribute/outcome pairs flagged" in html
