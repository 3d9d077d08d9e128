"""Audience specs: FILE:LINE errors, the selection rules and their boundaries."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from traderseg.errors import ConfigError
from traderseg.growth.audience import AudienceSpec, Range, load_audience_spec, select_accounts


def write(tmp_path, text, name="a.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


GOOD = """name: winback
select:
  segments: [1, scalpers]
  value_tiers: [gold, platinum]
  churn_probability: {min: 0.3, max: 0.9}
"""


def test_good_spec_loads(tmp_path):
    spec = load_audience_spec(write(tmp_path, GOOD))
    assert spec.name == "winback"
    assert spec.select.segments == [1, "scalpers"]
    assert spec.select.marketing_eligible is True


@pytest.mark.parametrize("text, where, what", [
    ("name: a\nselect:\n  colour: red\n", ":3:", "select.colour: unknown key"),
    ("name: a\nselect:\n  value_tiers:\n    - gold\n    - tin\n", ":5:", "select.value_tiers[1]"),
    ("name: a\nselect:\n  lifecycle_stages: [asleep]\n", ":3:", "'asleep' is not one of"),
    ("name: a\nselect:\n  churn_probability: {min: 0.2, max: 0.2}\n", ":3:", "not below max"),
    ("name: a\nselect:\n  churn_probability: {min: 1.5}\n", ":3:", "not a probability"),
    ("name: a\nselect:\n  lifetime_value: {}\n", ":3:", "give min, max or both"),
    ("name: bad name\nselect: {}\n", ":1:", "name:"),
    ("select: {}\n", ":1:", "name: Field required"),
    ("name: a\nname: b\nselect: {}\n", ":2:", "given twice"),
    ("name: a\nselect: [\n", ":", "not valid YAML"),
    ("- a\n- b\n", ":1:", "must hold a mapping"),
])
def test_bad_specs_name_file_line_and_key(tmp_path, text, where, what):
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_audience_spec(p)
    msg = str(err.value)
    assert msg.startswith(str(p)) and where in msg and what in msg
    assert "\n" not in msg


def test_missing_spec_file(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_audience_spec(tmp_path / "none.yaml")


def test_range_min_inclusive_max_exclusive():
    r = Range(min=10, max=20)
    got = r.mask(np.array([9.999, 10.0, 19.999, 20.0, np.nan]))
    assert got.tolist() == [False, True, True, False, False]


def frame():
    return pd.DataFrame({
        "account_id": ["a", "b", "c", "d", "e", "f"],
        "segment_id": [1, 1, 2, 2, 3, 1],
        "segment_name": ["scalpers", "scalpers", "holders", "holders", "whales", "scalpers"],
        "lifecycle_stage": ["active", "at-risk", "active", "dormant", "active", "active"],
        "value_tier": ["gold", "bronze", "gold", "gold", "platinum", "gold"],
        "churn_probability": [0.5, 0.5, 0.3, 0.9, 0.6, np.nan],
        "marketing_eligible": [True, True, None, True, False, True],
    })


def spec(**select):
    return AudienceSpec.model_validate({"name": "t", "select": select})


def test_selection_by_hand():
    # segments 1 (by id) and "holders" (by name): a b c d f; gold/platinum: a c d f;
    # churn in [0.3, 0.9): a (0.5), c (0.3) -- d (0.9) is at the exclusive max, f unknown;
    # eligible: a (c has no controls row)
    got, removed = select_accounts(frame(), spec(segments=[1, "Holders"],
                                                 value_tiers=["gold", "platinum"],
                                                 churn_probability={"min": 0.3, "max": 0.9}))
    assert got["account_id"].tolist() == ["a"]
    assert removed == {"segments": 1, "value_tiers": 1, "churn_probability": 2,
                       "unknown_eligibility": 1, "marketing_eligible": 0}


def test_suppression_list_and_ignoring_eligibility():
    got, _ = select_accounts(frame(), spec(marketing_eligible=False))
    assert got["account_id"].tolist() == ["e"]
    got, _ = select_accounts(frame(), spec(marketing_eligible=None))
    assert len(got) == 6


def test_unknown_segment_is_a_config_error():
    with pytest.raises(ConfigError, match="no segment named 'nobody'"):
        select_accounts(frame(), spec(segments=["nobody"]), "a.yaml")
    with pytest.raises(ConfigError, match="no segment 9"):
        select_accounts(frame(), spec(segments=[9]), "a.yaml")
