"""API keys: shown once, stored as a slow hash, found by id, refused when revoked."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from traderseg.errors import DataError
from traderseg.online.overrides import check_control_value
from traderseg.policy.controls import CONTROLS
from traderseg.service.access import PUBLIC, allowed
from traderseg.service.keys import KeyStore


def test_the_file_holds_no_key_only_its_hash(tmp_path):
    store = KeyStore(tmp_path / "keys.json")
    key, token = store.create("risk", "alpha")
    text = (tmp_path / "keys.json").read_text()
    secret = token.split("_", 2)[2]
    assert secret not in text and token not in text
    record = json.loads(text)["keys"][0]
    assert record["key_id"] == key.key_id and len(record["hash"]) == 64
    assert oct((tmp_path / "keys.json").stat().st_mode & 0o777) == "0o600"
    assert store.verify(token) == key


def test_wrong_secret_unknown_id_and_revoked_key_are_refused(tmp_path):
    store = KeyStore(tmp_path / "keys.json")
    key, token = store.create("admin", "alpha")
    assert store.verify(token[:-2] + "zz") is None
    assert store.verify(token.replace(key.key_id, "0" * 12)) is None
    assert store.verify("tsk_short") is None
    assert store.verify(token) is not None  # remembered after this first check
    # revoked by another process (another KeyStore on the same file)
    KeyStore(tmp_path / "keys.json").revoke(key.key_id)
    assert store.verify(token) is None and not store.is_active(key.key_id)


def test_the_quick_check_vouches_only_for_a_token_verified_before(tmp_path):
    store = KeyStore(tmp_path / "keys.json")
    key, token = store.create("risk", "alpha")
    assert store.verify_known(token) is None  # never verified: the slow check must run
    assert store.verify(token) == key
    assert store.verify_known(token) == key
    wrong = token[:-2] + "zz"
    assert store.verify_known(wrong) is None and store.verify(wrong) is None
    KeyStore(tmp_path / "keys.json").revoke(key.key_id)
    assert store.verify_known(token) is None


def test_an_unknown_role_or_odd_venue_is_refused(tmp_path):
    store = KeyStore(tmp_path / "keys.json")
    with pytest.raises(DataError, match="unknown role 'trader'"):
        store.create("trader", "alpha")
    with pytest.raises(DataError, match="venue"):
        store.create("risk", "../etc")


def test_public_and_fail_closed_rules():
    assert allowed(None, "health") and PUBLIC
    assert not allowed("admin", "no_such_route")
    assert allowed("risk", "change_controls") and not allowed("growth", "change_controls")
    assert not allowed(None, "account")


NUMERIC = [c for c in CONTROLS if c.minimum is not None]


@pytest.mark.parametrize("ctl", NUMERIC, ids=lambda c: c.name)
def test_numeric_controls_take_their_minimum_but_not_below(ctl):
    assert check_control_value(ctl.name, ctl.minimum) == ctl.minimum
    with pytest.raises(DataError, match="below the lowest"):
        check_control_value(ctl.name, ctl.minimum - 1e-9)


@settings(max_examples=50, deadline=None)
@given(kinds=st.lists(st.sampled_from(["spot", "perp", "future", "option"]), max_size=6))
def test_products_come_back_canonical_whatever_the_order(kinds):
    text = check_control_value("allowed_products", ", ".join(kinds).upper())
    assert text == ",".join(k for k in ("spot", "perp", "future", "option") if k in kinds)


def test_a_key_file_that_is_a_folder_or_lacks_fields_is_one_line(tmp_path):
    from traderseg.errors import ConfigError

    with pytest.raises(ConfigError, match="is a directory, not a key file"):
        KeyStore(tmp_path).create("risk", "alpha")
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"version": 1, "keys": [{"key_id": "k1"}]}))
    with pytest.raises(ConfigError, match="key 'k1' lacks role, venue, created_at, salt, hash"):
        KeyStore(path).create("risk", "alpha")
    # a whole record is read as it was written
    path.unlink()
    store = KeyStore(path)
    key, _ = store.create("risk", "alpha")
    assert KeyStore(path).revoke(key.key_id).key_id == key.key_id
