"""The policy file: shape, value types, FILE:LINE errors."""

from __future__ import annotations

import pytest
from policy_helpers import DEFAULTS, make_policy, policy_text

from traderseg.errors import ConfigError, TradersegError
from traderseg.policy import load_policy, parse_policy

GOOD = """\
version: 7
model_version: abc123
defaults:
  max_leverage: 50
  position_limit_usd: 1000000
  margin_multiplier: 1
  allowed_products: [spot, perp, future, option]
  option_writing: true
  review_flag: false
  marketing_eligible: true
rules:
  - name: wild
    description: high risk score
    when:
      risk_score: {min: 70}
      segment: [3, option premium sellers]
    set:
      max_leverage: 10
      review_flag: true
    review_reason: risk score 70+
  - name: no-kyc
    when: {kyc_tier: 0}
    set: {allowed_products: "spot,perp"}
"""


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as exc:
        parse_policy(text, "p.yaml")
    msg = str(exc.value)
    assert "\n" not in msg and isinstance(exc.value, TradersegError)
    return msg


def test_a_good_file_parses_with_its_versions_and_rules():
    p = parse_policy(GOOD, "p.yaml")
    assert p.version == "7" and p.model_version == "abc123"
    assert [r.name for r in p.rules] == ["wild", "no-kyc"]
    assert p.rules[0].when.segment == [3, "option premium sellers"]
    # a single value is a list of one; product text is canonical
    assert p.rules[1].when.kyc_tier == [0]
    assert p.rules[1].set.allowed_products == "spot,perp"
    assert p.line("rules", 1, "name") == 21


@pytest.mark.parametrize("old, new, where", [
    ("version: 7\n", "", "p.yaml:1: version: required key missing"),
    ("  marketing_eligible: true\n", "", "p.yaml:3: defaults.marketing_eligible: required key missing"),
    ("      max_leverage: 10\n", "      max_levrage: 10\n", "p.yaml:18: rules[0].set.max_levrage: unknown key"),
    ("  max_leverage: 50\n", "  max_leverage: 0\n", "p.yaml:4: defaults.max_leverage: Input should be greater than 0"),
    ("      max_leverage: 10\n", "      max_leverage: -1\n", "p.yaml:18: rules[0].set.max_leverage"),
    ("  margin_multiplier: 1\n", "  margin_multiplier: 0.5\n", "p.yaml:6: defaults.margin_multiplier"),
    ("  position_limit_usd: 1000000\n", "  position_limit_usd: -5\n", "p.yaml:5: defaults.position_limit_usd"),
    ('"spot,perp"', '"spot,swaps"', "p.yaml:23: rules[1].set.allowed_products: unknown instrument kind(s) ['swaps']"),
    ("  option_writing: true\n", "  option_writing: yes please\n", "p.yaml:8: defaults.option_writing"),
    ("{min: 70}", "{min: 70, max: 70}", "p.yaml:15: rules[0].when.risk_score: min (70) must be below max (70)"),
    ("{min: 70}", "{min: 170}", "p.yaml:14: rules[0].when: risk_score: bound 170 outside 0..100"),
    ("{min: 70}", "{mni: 70}", "p.yaml:15: rules[0].when.risk_score.mni: unknown key"),
    ("{min: 70}", "{}", "p.yaml:15: rules[0].when.risk_score: give min and/or max"),
    ("{kyc_tier: 0}", "{lifecycle_stage: [asleep]}", "p.yaml:22: rules[1].when: lifecycle_stage: unknown value(s) ['asleep']"),
    ("{kyc_tier: 0}", "{region: []}", "p.yaml:22: rules[1].when.region: an empty list matches nothing"),
    ("{kyc_tier: 0}", "{colour: red}", "p.yaml:22: rules[1].when.colour: unknown key"),
    ('{allowed_products: "spot,perp"}', "{}", "p.yaml:23: rules[1].set: give at least one control"),
    ("      review_flag: true\n", "", "p.yaml:19: rules[0].review_reason: only for a rule that sets review_flag: true"),
    ("  - name: no-kyc\n", "  - name: wild\n", "p.yaml:21: rules[1].name: rule name 'wild' is used twice"),
    ("  - name: no-kyc\n", "  - name: default\n", "p.yaml:21: rules[1].name: rule name 'default' is reserved"),
    ("version: 7\n", "version: 7\nowner: risk\n", "p.yaml:2: owner: unknown key"),
    ("[3, option", "[true, option", "p.yaml:16: rules[0].when.segment"),
])
def test_errors_name_the_line_the_key_and_the_reason(old, new, where):
    assert old in GOOD
    assert where in error_of(GOOD.replace(old, new, 1))


def test_not_yaml_and_not_a_mapping():
    assert error_of("version: [1,\n") .startswith("p.yaml:2: not valid YAML")
    assert error_of("") == ("p.yaml:1: a policy is a mapping with version, defaults and rules; "
                            "this file is empty")
    assert "this file is a list" in error_of("- 1\n")


def test_load_policy_reads_files_and_names_missing_ones(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text(GOOD)
    assert load_policy(f).source == str(f)
    with pytest.raises(ConfigError, match="policy file not found"):
        load_policy(tmp_path / "missing.yaml")
    f.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="cannot read the policy"):
        load_policy(f)


def test_every_control_needs_a_default():
    for name in DEFAULTS:
        partial = {k: v for k, v in DEFAULTS.items() if k != name}
        with pytest.raises(ConfigError, match=f"defaults.{name}: required key missing"):
            make_policy([], defaults=partial)


def test_text_and_hash_are_kept():
    text = policy_text([])
    p = parse_policy(text)
    assert p.text == text and len(p.sha256) == 64
    assert parse_policy(text + "\n").sha256 != p.sha256
