"""Policy versions in the store, and checks of a policy against a model's metadata."""

from __future__ import annotations

import duckdb
import pytest
from policy_helpers import make_policy, policy_text

from traderseg.errors import ConfigError
from traderseg.policy import check_policy, current_policy, parse_policy, policy_history, save_policy

META = {"model_sha256": "0123456789abcdef", "segments": [
    {"id": 0, "name": "perp traders"}, {"id": 4, "name": "option premium sellers"}]}


def rule(seg):
    return [{"name": "seg", "when": {"segment": seg}, "set": {"max_leverage": 5}}]


def test_save_activate_and_roll_back_idempotently():
    con = duckdb.connect()
    assert current_policy(con) is None
    one, two = make_policy([], version="1"), make_policy(rule([0]), version="2")
    assert save_policy(con, one, "cli") is True
    assert save_policy(con, one, "cli") is False          # already active: nothing added
    assert save_policy(con, two, "key:7") is True
    assert current_policy(con).version == "2"
    assert current_policy(con).text == two.text
    assert save_policy(con, one, "cli") is True           # roll back: a new activation
    hist = policy_history(con)
    assert hist["policy_version"].tolist() == ["1", "2", "1"]
    assert hist["actor"].tolist() == ["cli", "key:7", "cli"]
    assert con.execute("SELECT count(*) FROM policy_versions").fetchone()[0] == 2


def test_same_version_with_other_text_is_refused():
    con = duckdb.connect()
    save_policy(con, make_policy([], version="3"), "cli")
    changed = make_policy(rule([0]), version="3")
    with pytest.raises(ConfigError, match="version '3' is already saved with different text"):
        save_policy(con, changed, "cli")
    assert current_policy(con).rules == []


def test_known_segments_by_id_and_name_pass():
    check_policy(make_policy(rule([0, "option premium sellers"])), META)
    check_policy(make_policy(rule([4]), model_version="0123456789ab"), META)


def test_unknown_segment_names_the_rule_and_line():
    text = policy_text(rule([0, "option sellers"]))
    p = parse_policy(text, "p.yaml")
    line = text.splitlines().index("    - option sellers") + 1
    with pytest.raises(ConfigError) as exc:
        check_policy(p, META)
    assert str(exc.value).startswith(f"p.yaml:{line}: rule 'seg': unknown segment name "
                                     "'option sellers'")
    assert "'option premium sellers', 'perp traders'" in str(exc.value)
    with pytest.raises(ConfigError, match="unknown segment id 3; model 0123456789ab has 0, 4"):
        check_policy(make_policy(rule([3])), META)


def test_a_policy_for_another_model_version_is_refused():
    text = policy_text([], model_version="fedcba987654")
    p = parse_policy(text, "p.yaml")
    with pytest.raises(ConfigError, match=r"p.yaml:2: model_version: the policy was written for "
                       r"model 'fedcba987654', but the model is '0123456789ab'"):
        check_policy(p, META)
    # a registry version wins over the hash
    check_policy(parse_policy(policy_text([], model_version="v3")), {**META, "model_version": "v3"})
