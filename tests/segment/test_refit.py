"""Promotion gates, drift monitoring and champion/challenger refits on a small venue.

The drifted venue is the same store with two archetypes gone (every fill of the leveraged
perp takers and the spot holders deleted): the behaviour the champion learned changed.
"""

import math
import shutil

import duckdb
import numpy as np
import pandas as pd
import pytest

from helpers.cli import run_cli
from helpers.store import simulated_store
from traderseg.errors import ConfigError, DataError
from traderseg.segment.identity import IdentityMatch
from traderseg.segment.monitor import (
    DriftThresholds,
    feature_psi,
    monitor_drift,
    read_alerts,
    recent_accounts,
    share_drift,
)
from traderseg.segment.persist import read_metadata
from traderseg.segment.refit import (
    GATES,
    compare_models,
    evaluate_gates,
    gate_limits,
    read_decisions,
    refit,
)
from traderseg.segment.registry import ModelRegistry, resolve_model
from traderseg.segment.workflow import assign_accounts

AS_OF = "2024-02-08"
LATER = "2024-02-09"
GONE = ("retail_leveraged_perp", "spot_holder")


# ------------------------------------------------------------------ gates (no data)
def _passing():
    """Metrics passing every default gate with room to spare."""
    return {"id_retention": 1.0, "agreement": 1.0, "ari": 1.0, "silhouette_drop": 0.0,
            "membership_drop": 0.0, "share_shift": 0.0}


@pytest.mark.parametrize("gate", GATES, ids=lambda g: g.name)
def test_each_gate_passes_at_its_limit_and_fails_just_past_it(gate):
    limits = gate_limits()
    step = 1e-9 if gate.kind == "max" else -1e-9
    at = {**_passing(), gate.name: gate.default}
    past = {**_passing(), gate.name: gate.default + step}
    assert all(g["passed"] for g in evaluate_gates(at, limits).values())
    failed = [n for n, g in evaluate_gates(past, limits).items() if not g["passed"]]
    assert failed == [gate.name]


@pytest.mark.parametrize("gate", GATES, ids=lambda g: g.name)
def test_a_missing_metric_fails_its_gate(gate):
    out = evaluate_gates({**_passing(), gate.name: None}, gate_limits())
    assert [n for n, g in out.items() if not g["passed"]] == [gate.name]
    assert out[gate.name]["value"] is None


def test_gate_limits_override_and_refuse_unknown_gates():
    assert gate_limits({"agreement": 0.95})["agreement"] == 0.95
    with pytest.raises(ConfigError, match="unknown gate 'speed'"):
        gate_limits({"speed": 1.0})
    with pytest.raises(ConfigError, match="must be a number"):
        gate_limits({"ari": math.nan})


def test_compare_models_counts_accounts_whose_id_changed(fitted_pair):
    champion, features = fitted_pair
    challenger = pickle_copy(champion)
    # swap the stable ids of segments 0 and 1: those accounts disagree, ARI does not see it
    ids = challenger.segment_ids_.copy()
    ids[[0, 1]] = ids[[1, 0]]
    challenger.segment_ids_ = ids
    labels = champion.predict(features[list(champion.feature_names_in_)])
    moved = float(np.isin(labels, [0, 1]).mean())
    share0, share1 = float((labels == 0).mean()), float((labels == 1).mean())
    k = champion.n_segments_
    match = IdentityMatch(ids=ids, matched={j: int(ids[j]) for j in range(k - 1)},
                          new_ids=[], gone_ids=[], cost=pd.DataFrame())
    m = compare_models(champion, challenger, features, match)
    assert m["agreement"] == pytest.approx(1 - moved)
    assert m["ari"] == pytest.approx(1.0)
    assert m["id_retention"] == pytest.approx((k - 1) / k)
    assert m["silhouette_drop"] == pytest.approx(0.0)
    assert m["membership_drop"] == pytest.approx(0.0)
    # the two swapped segments trade their shares
    assert m["share_shift"] == pytest.approx(abs(share0 - share1))
    ref = {int(i): 1 / k for i in champion.segment_ids_}
    m = compare_models(champion, challenger, features, match, reference_shares=ref)
    expected = max(abs(float((labels == j).mean()) - 1 / k) for j in range(k))
    assert m["share_shift"] == pytest.approx(expected)


def pickle_copy(model):
    import copy

    return copy.deepcopy(model)


@pytest.fixture(scope="module")
def fitted_pair():
    from traderseg.segment.estimator import TraderSegmenter
    from traderseg.segment.synthetic import synthetic_features

    X, _ = synthetic_features(300, behaviours=["whale", "spot_holder", "hedger"],
                              windows=("all",), random_state=2)
    return TraderSegmenter(3, random_state=0).fit(X), X


# ------------------------------------------------------------------ drift rules (no data)
def test_drift_levels_are_inclusive_at_each_threshold():
    t = DriftThresholds(psi_warn=0.1, psi_alert=0.25, share_alert=0.1)
    assert [t.feature_level(v) for v in (0.0999999, 0.1, 0.2499999, 0.25)] == \
        ["ok", "warn", "warn", "alert"]
    assert [t.share_level(v) for v in (0.0999999, 0.1, -0.1, -0.0999999)] == \
        ["ok", "alert", "alert", "ok"]


def test_drift_thresholds_are_checked():
    with pytest.raises(ConfigError, match="psi-alert 0.1 is below psi-warn 0.2"):
        DriftThresholds(0.2, 0.1).check()
    with pytest.raises(ConfigError, match="share-alert must be a positive number"):
        DriftThresholds(share_alert=0).check()
    with pytest.raises(ConfigError, match="at most 1"):
        DriftThresholds(share_alert=1.5).check()


def test_the_window_holds_accounts_with_a_fill_within_its_days():
    f = pd.DataFrame({"recency_days__all": [0.0, 7.0, 7.000001]}, index=["a", "b", "c"])
    assert recent_accounts(f, 7).index.tolist() == ["a", "b"]
    with pytest.raises(DataError, match="recency_days__all"):
        recent_accounts(f.rename(columns={"recency_days__all": "x"}), 7)


def test_share_drift_by_hand():
    meta = {"segments": [{"id": 0, "name": "a", "size_share": 0.5},
                         {"id": 1, "name": "b", "size_share": 0.4},
                         {"id": 2, "name": "c", "size_share": 0.1}]}
    # window: 6 of 10 in segment 0, 4 in segment 1, none in 2
    out = share_drift(meta, pd.Series([0] * 6 + [1] * 4), DriftThresholds(share_alert=0.1))
    assert out["change"].round(12).tolist() == [0.1, 0.0, -0.1]
    assert out["level"].tolist() == ["alert", "ok", "alert"]


def test_feature_psi_by_hand():
    # training bins cut at 1..5 with shares 5/20/25/25/20/5 %; the window puts everyone
    # above the top edge: PSI = sum (a - e) ln(a / e) with a = 1e-4 floor except the last bin
    ref = {"x": {"edges": [1.0, 2.0, 3.0, 4.0, 5.0],
                 "shares": [0.05, 0.2, 0.25, 0.25, 0.2, 0.05]}}
    e = np.array([0.05, 0.2, 0.25, 0.25, 0.2, 0.05])
    a = np.array([1e-4] * 5 + [1.0])
    expected = float(np.sum((a - e) * np.log(a / e)))
    out = feature_psi(ref, pd.DataFrame({"x": [6.0] * 4}), ["x", "y"], DriftThresholds())
    assert out["column"].tolist() == ["x"]
    assert out["psi"].iloc[0] == pytest.approx(expected)
    assert out["level"].iloc[0] == "alert"


# ------------------------------------------------------------------ on a venue
@pytest.fixture(scope="module")
def venue(tmp_path_factory):
    root = tmp_path_factory.mktemp("venue")
    db = simulated_store(root, accounts=300, days=38, seed=5)
    drifted = root / "drifted.duckdb"
    shutil.copy(db, drifted)
    con = duckdb.connect(str(drifted))
    gone = ", ".join(f"'{a}'" for a in GONE)
    con.execute(f"DELETE FROM fills WHERE account_id IN (SELECT account_id FROM truth "
                f"WHERE archetype IN ({gone}))")
    con.close()
    return root, db, drifted


@pytest.fixture(scope="module")
def registry(venue):
    root, db, _ = venue
    reg = root / "registry"
    first = refit(db, reg, as_of=AS_OF, n_segments=7, random_state=0)
    return reg, first


def _decision_rows(db):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return read_decisions(con)
    finally:
        con.close()


def test_a_registry_without_a_champion_gets_the_first_fit(venue, registry):
    _, db, _ = venue
    reg, first = registry
    d = first.decision
    assert (d.verdict, d.champion, d.challenger, d.decision_id) == ("promoted", None, "v1", 1)
    assert ModelRegistry(reg).champion().version == "v1"
    rows = _decision_rows(db)
    assert rows["challenger"].tolist()[:1] == ["v1"]


def test_the_same_refit_again_changes_nothing(venue, registry):
    _, db, _ = venue
    reg, _ = registry
    before = (len(ModelRegistry(reg).versions()), len(ModelRegistry(reg).decisions()),
              len(_decision_rows(db)))
    again = refit(db, reg, as_of=AS_OF)
    assert again.reused and again.decision.decision_id == 1
    assert (len(ModelRegistry(reg).versions()), len(ModelRegistry(reg).decisions()),
            len(_decision_rows(db))) == before


@pytest.fixture(scope="module")
def same_data_refit(venue, registry):
    _, db, _ = venue
    reg, _ = registry
    return refit(db, reg, as_of=LATER)


def test_a_refit_on_the_same_venue_passes_and_keeps_ids_and_names(registry, same_data_refit):
    reg, first = registry
    r = same_data_refit
    assert r.decision.verdict == "promoted", r.failed_gates
    assert r.decision.champion == "v1" and r.champion.version == r.challenger.version == "v2"
    assert all(g["passed"] for g in r.decision.gates.values())
    old = {s["id"]: s["name"] for s in read_metadata(first.challenger.directory)["segments"]}
    new = {s["id"]: s["name"] for s in read_metadata(r.challenger.directory)["segments"]}
    assert new == old
    assert read_metadata(resolve_model(reg))["model_version"] == "v2"


def test_drift_on_the_same_venue_raises_no_alert(venue, same_data_refit):
    _, db, _ = venue
    report = monitor_drift(db, same_data_refit.champion.directory, as_of=LATER)
    assert report.level == "ok", report.features.head()
    assert report.recorded == 0 and report.alerts.empty
    assert report.accounts > 0 and len(report.features) > 0


def test_drift_on_the_changed_venue_alerts_once(venue, same_data_refit):
    _, _, drifted = venue
    model = same_data_refit.champion.directory
    report = monitor_drift(drifted, model, as_of=LATER)
    assert report.level == "alert"
    assert (report.features["level"] == "alert").any()
    # the biggest training segment (the leveraged perp takers) lost all its accounts
    shares = report.shares.set_index("segment")
    top = shares["reference"].idxmax()
    assert shares.loc[top, "current"] == pytest.approx(0.0, abs=0.02)
    assert shares.loc[top, "level"] == "alert"
    assert report.recorded == len(report.alerts) > 0
    again = monitor_drift(drifted, model, as_of=LATER)
    assert again.recorded == 0
    con = duckdb.connect(str(drifted), read_only=True)
    stored = read_alerts(con)
    con.close()
    assert len(stored) == len(report.alerts)
    assert set(stored["model_version"]) == {"v2"}


def test_a_refit_on_the_changed_venue_fails_a_gate_and_is_not_promoted(
        venue, registry, same_data_refit, capsys):
    _, _, drifted = venue
    reg, _ = registry
    code, out, _ = run_cli(["refit", "--db", str(drifted), "--model", str(reg),
                            "--as-of", LATER], capsys)
    assert code == 1, out
    registry_ = ModelRegistry(reg)
    last = registry_.decisions()[-1]
    assert last.verdict == "rejected" and last.champion == "v2" and last.challenger == "v3"
    failed = [n for n, g in last.gates.items() if not g["passed"]]
    assert "share_shift" in failed
    assert registry_.champion().version == "v2"
    rows = _decision_rows(drifted)
    assert rows["verdict"].tolist()[-1] == "rejected"
    assert set(rows["failed_gates"].tolist()[-1].split(",")) == set(failed)
    # the existing commands follow the champion, not the rejected challenger
    assert set(assign_accounts(drifted, reg, LATER)["segment"]) <= set(
        s["id"] for s in read_metadata(registry_.version("v2").directory)["segments"])
    # an admin can still promote it by hand, recorded in the store too
    code, out, _ = run_cli(["promote", "v3", "--model", str(reg), "--reason", "venue changed",
                            "--db", str(drifted)], capsys)
    assert code == 0
    assert registry_.champion().version == "v3"
    rows = _decision_rows(drifted)
    assert rows[["challenger", "verdict", "actor"]].iloc[-1].tolist() == \
        ["v3", "promoted", "admin"]


def test_drift_and_refit_cli_errors_are_one_line(venue, tmp_path, capsys):
    _, db, _ = venue
    reg = tmp_path / "reg"
    reg.mkdir()
    (reg / "registry.json").write_text("{")
    code, _, err = run_cli(["refit", "--db", str(db), "--model", str(reg)], capsys)
    assert code == 2 and "registry.json is not valid JSON" in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = run_cli(["refit", "--db", str(db), "--model", str(reg), "--gate",
                            "speed=1"], capsys)
    assert code == 2 and "--gate 'speed=1'" in err
    code, _, err = run_cli(["drift", "--db", str(db), "--model", str(reg)], capsys)
    assert code == 2 and "registry.json" in err
    code, _, err = run_cli(["drift", "--db", str(db), "--model", str(tmp_path),
                            "--psi-warn", "0.3"], capsys)
    assert code == 2 and "psi-alert 0.25 is below psi-warn 0.3" in err
    missing = tmp_path / "none.duckdb"
    for command in ("drift", "refit"):
        code, _, err = run_cli([command, "--db", str(missing), "--model", str(reg)], capsys)
        assert code == 2 and "no such store" in err
    assert not missing.exists()
