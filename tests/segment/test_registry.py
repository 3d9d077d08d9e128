"""The model registry: versions, champion, decisions, damaged files, registry as --model."""

import json
import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers.cli import run_cli
from traderseg.errors import DataError
from traderseg.segment.estimator import TraderSegmenter
from traderseg.segment.persist import load_model, model_version, read_metadata, save_model
from traderseg.segment.registry import (
    REGISTRY_FILE,
    Decision,
    ModelRegistry,
    is_registry,
    resolve_model,
)
from traderseg.segment.synthetic import synthetic_features


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    X, _ = synthetic_features(240, behaviours=["whale", "spot_holder", "hedger"],
                              windows=("all",), random_state=0)
    root = tmp_path_factory.mktemp("models")
    dirs = []
    for seed, k in ((0, 3), (1, 2)):
        model = TraderSegmenter(k, random_state=seed).fit(X)
        segs = [{"id": i, "name": f"segment {i}", "size": 240 // k, "size_share": 1 / k,
                 "revenue_share": 1 / k, "description": ""} for i in range(k)]
        dirs.append(save_model(model, root / f"m{seed}", as_of="2024-02-01T00:00:00+00:00",
                               segments=segs))
    return X, dirs


def test_register_stamps_the_version_and_promote_makes_it_the_resolved_model(saved, tmp_path):
    X, (first, second) = saved
    reg = ModelRegistry(tmp_path / "reg")
    assert not is_registry(reg.root)
    v1 = reg.register(first)
    assert v1.version == "v1" and v1.directory == reg.root / "versions" / "v1"
    assert model_version(read_metadata(v1.directory)) == "v1"
    assert reg.champion() is None
    with pytest.raises(DataError, match="no champion yet"):
        resolve_model(reg.root)
    d = reg.promote("v1")
    assert (d.decision_id, d.verdict, d.champion, d.actor) == (1, "promoted", None, "admin")
    assert resolve_model(reg.root) == v1.directory
    model, meta = load_model(reg.root)  # a registry given where a model directory goes
    assert meta["model_version"] == "v1"
    original, _ = load_model(first)
    assert np.array_equal(model.predict(X), original.predict(X))
    v2 = reg.register(second, parent="v1")
    reg.record(Decision(challenger="v2", verdict="rejected", reason="test"))
    assert [x.version for x in reg.versions()] == ["v1", "v2"]
    assert reg.champion().version == "v1"
    assert reg.decisions()[-1].champion == "v1"  # filled in from the registry
    assert v2.parent == "v1"
    # a plain model directory resolves to itself
    assert resolve_model(first) == first


def test_the_same_model_registered_twice_keeps_its_version(saved, tmp_path):
    _, (first, _) = saved
    reg = ModelRegistry(tmp_path / "reg")
    assert reg.register(first).version == reg.register(first).version == "v1"
    assert len(reg.versions()) == 1


def test_writes_leave_no_temporary_files(saved, tmp_path):
    _, (first, second) = saved
    reg = ModelRegistry(tmp_path / "reg")
    reg.register(first)
    reg.register(second)
    reg.promote("v2")
    names = sorted(p.name for p in reg.root.iterdir())
    assert names == [".lock", REGISTRY_FILE, "versions"]
    assert sorted(p.name for p in (reg.root / "versions").iterdir()) == ["v1", "v2"]


def test_promotion_needs_a_registered_version_and_a_promoted_decision(saved, tmp_path):
    _, (first, _) = saved
    reg = ModelRegistry(tmp_path / "reg")
    reg.register(first)
    with pytest.raises(DataError, match="no version 'v9'.*registered: v1"):
        reg.promote("v9")
    with pytest.raises(DataError, match="'promoted' decision"):
        reg.promote("v1", Decision(challenger="v1", verdict="rejected"))
    with pytest.raises(DataError, match="use promote"):
        reg.record(Decision(challenger="v1", verdict="promoted"))
    with pytest.raises(DataError, match="is a registry"):
        reg.register(reg.root)


@pytest.mark.parametrize(("damage", "message"), [
    (lambda doc: "{not json", "not valid JSON"),
    (lambda doc: json.dumps([1, 2]), "expected a JSON object"),
    (lambda doc: json.dumps({**doc, "format": 99}), "unknown registry format 99"),
    (lambda doc: json.dumps({**doc, "champion": "v7"}), "champion 'v7' is not a registered"),
    (lambda doc: json.dumps({**doc, "versions": "v1"}), "'versions' must be a list"),
    (lambda doc: json.dumps({k: v for k, v in doc.items() if k != "decisions"}),
     "missing key 'decisions'"),
    (lambda doc: json.dumps({**doc, "versions": [{"version": "../x"}]}),
     r"versions\[0\] must be an object"),
    (lambda doc: json.dumps({**doc, "decisions": [{**doc["decisions"][0], "verdict": "maybe"}]}),
     r"decisions\[0\].verdict"),
])
def test_a_damaged_registry_is_a_one_line_error(saved, tmp_path, damage, message, capsys):
    _, (first, _) = saved
    reg = ModelRegistry(tmp_path / "reg")
    reg.register(first)
    reg.promote("v1")
    doc = json.loads(reg.path.read_text())
    reg.path.write_text(damage(doc))
    with pytest.raises(DataError, match=message):
        reg.versions()
    with pytest.raises(DataError, match=message):
        load_model(reg.root)
    code, out, err = run_cli(["models", "--model", str(reg.root)], capsys)
    assert code == 2
    assert "registry.json" in err and len(err.strip().splitlines()) == 1


def test_a_version_whose_folder_is_gone_is_named(saved, tmp_path):
    _, (first, _) = saved
    reg = ModelRegistry(tmp_path / "reg")
    reg.register(first)
    shutil.rmtree(reg.root / "versions" / "v1")
    with pytest.raises(DataError, match="version 'v1' has no folder versions/v1"):
        reg.champion()


def test_a_missing_registry_is_an_error_for_reading_commands(tmp_path, capsys):
    with pytest.raises(DataError, match="is not a model registry"):
        ModelRegistry(tmp_path / "none").registry_id()
    code, _, err = run_cli(["models", "--model", str(tmp_path / "none")], capsys)
    assert code == 2 and "not a model registry" in err
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="is a file, not a model registry"):
        ModelRegistry(tmp_path / "file").versions()


def test_a_model_directory_is_not_taken_for_a_registry(saved):
    _, (first, _) = saved
    with pytest.raises(DataError, match="is a saved model directory, not a registry"):
        ModelRegistry(first).register(first)
    assert not is_registry(first)


def test_cli_register_promote_and_list(saved, tmp_path, capsys):
    _, (first, second) = saved
    root = str(tmp_path / "reg")
    assert run_cli(["register", str(first), "--model", root], capsys)[0] == 0
    assert run_cli(["register", str(second), "--model", root], capsys)[0] == 0
    code, out, _ = run_cli(["promote", "v2", "--model", root, "--reason", "by hand"], capsys)
    assert code == 0 and "v2 is the champion" in out
    code, out, _ = run_cli(["models", "--model", root, "--json"], capsys)
    doc = json.loads(out)
    assert doc["champion"] == "v2"
    assert [v["version"] for v in doc["versions"]] == ["v1", "v2"]
    assert doc["decisions"][0]["reason"] == "by hand"
    code, out, _ = run_cli(["segments", "--model", root], capsys)  # registry as --model
    assert code == 0 and "segment 1" in out
    code, _, err = run_cli(["promote", "v5", "--model", root], capsys)
    assert code == 2 and "no version 'v5'" in err


@pytest.fixture(scope="module")
def two_versions(saved, tmp_path_factory):
    _, (first, second) = saved
    reg = ModelRegistry(tmp_path_factory.mktemp("two") / "reg")
    reg.register(first)
    reg.register(second)
    return reg


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(st.tuples(st.sampled_from(["v1", "v2"]), st.booleans()), max_size=8))
def test_the_champion_is_the_last_promoted_version(two_versions, tmp_path_factory, ops):
    reg = ModelRegistry(shutil.copytree(two_versions.root,
                                        tmp_path_factory.mktemp("prop") / "reg"))
    expected = None
    for version, promote in ops:
        if promote:
            reg.promote(version)
            expected = version
        else:
            reg.record(Decision(challenger=version, verdict="rejected"))
    champion = reg.champion()
    assert (champion.version if champion else None) == expected
    decisions = reg.decisions()
    assert [d.decision_id for d in decisions] == list(range(1, len(ops) + 1))
    assert [d.verdict == "promoted" for d in decisions] == [p for _, p in ops]
