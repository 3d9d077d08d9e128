"""Policy.evaluate: hand-computed fixtures per combine rule, band boundaries, missing inputs,
and properties against a row-by-row reference built on most_restrictive."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from policy_helpers import DEFAULTS, make_policy

from traderseg.errors import SchemaError
from traderseg.policy import CONTROL_NAMES, INPUT_COLUMNS, most_restrictive
from traderseg.schema import KINDS

RULES = [
    {"name": "risky", "description": "risk score 60+", "when": {"risk_score": {"min": 60}},
     "set": {"max_leverage": 20, "margin_multiplier": 1.25,
             "allowed_products": ["spot", "perp", "future"], "review_flag": True}},
    {"name": "liq", "when": {"liquidation_risk": {"min": 0.1, "max": 0.3}},
     "set": {"max_leverage": 10, "margin_multiplier": 1.5, "review_flag": True},
     "review_reason": "liquidation risk 10-30%"},
    {"name": "eu", "when": {"region": ["EU"]},
     "set": {"max_leverage": 20, "allowed_products": ["spot", "perp", "option"],
             "marketing_eligible": False}},
    {"name": "same-as-default", "when": {"kyc_tier": [0, 1]},
     "set": {"max_leverage": 50, "allowed_products": list(KINDS), "option_writing": False,
             "marketing_eligible": True}},
    {"name": "writers", "when": {"segment": [6, "option premium sellers"]},
     "set": {"position_limit_usd": 250_000, "option_writing": False}},
]


def frame(**cols):
    n = max(len(v) for v in cols.values())
    base = {c: [np.nan] * n for c in INPUT_COLUMNS}
    base.update({"segment_name": [None] * n, "region": [None] * n, "lifecycle_stage": [None] * n,
                 "value_tier": [None] * n})
    base.update(cols)
    return pd.DataFrame(base, index=[f"a{i}" for i in range(n)])


def reasons(out):
    return [None if pd.isna(v) else v for v in out["review_reason"]]


def winners(out):
    return [json.loads(t) for t in out["rules"]]


def test_each_combine_rule_by_hand():
    p = make_policy(RULES)
    x = frame(risk_score=[70.0, 70.0, 10.0, 10.0, np.nan],
              liquidation_risk=[0.2, np.nan, np.nan, np.nan, 0.2],
              region=["EU", "EU", None, "EU", None],
              kyc_tier=[1, 2, 0, 3, np.nan],
              segment_id=[6, 1, 2, 3, 4],
              segment_name=["x", "y", "option premium sellers", "z", "w"])
    out = p.evaluate(x)
    w = winners(out)
    # min: 50 default; risky 20, liq 10, eu 20 -> lowest wins; among equal 20s the first
    assert out["max_leverage"].tolist() == [10.0, 20.0, 50.0, 20.0, 10.0]
    assert [r["max_leverage"] for r in w] == ["liq", "risky", "default", "eu", "liq"]
    # max: margin 1 default; risky 1.25, liq 1.5
    assert out["margin_multiplier"].tolist() == [1.5, 1.25, 1.0, 1.0, 1.5]
    assert [r["margin_multiplier"] for r in w] == ["liq", "risky", "default", "default", "liq"]
    # intersect: risky drops option, eu drops future: spot,perp; the last narrowing rule wins
    assert out["allowed_products"].tolist() == [
        "spot,perp", "spot,perp", "spot,perp,future,option", "spot,perp,option",
        "spot,perp,future,option"]
    assert [r["allowed_products"] for r in w] == ["eu", "eu", "default", "eu", "default"]
    # all: option writing withdrawn by kyc 0/1 (row 0, 2) or by the writers segment (id 6,
    # or by name); the first withdrawing rule wins
    assert out["option_writing"].tolist() == [False, True, False, True, True]
    assert [r["option_writing"] for r in w][:3] == ["same-as-default", "default",
                                                     "same-as-default"]
    assert out["position_limit_usd"].tolist() == [250_000.0, 1e6, 250_000.0, 1e6, 1e6]
    assert [r["position_limit_usd"] for r in w][2] == "writers"
    # any: the first raising rule wins; reasons of every raising rule, in rule order
    assert out["review_flag"].tolist() == [True, True, False, False, True]
    assert [r["review_flag"] for r in w] == ["risky", "risky", "default", "default", "liq"]
    assert reasons(out) == [
        "risk score 60+; liquidation risk 10-30%", "risk score 60+", None, None,
        "liquidation risk 10-30%"]
    # all: marketing withdrawn by eu; a rule setting true never loosens it
    assert out["marketing_eligible"].tolist() == [False, False, True, False, True]
    assert out["policy_version"].unique().tolist() == ["1"]
    assert list(out.index) == list(x.index)
    assert list(out.columns) == [*CONTROL_NAMES, "review_reason", "rules", "policy_version"]


@pytest.mark.parametrize("value, matches", [
    (59.999, False), (60.0, True), (100.0, True), (np.nan, False)])
def test_band_min_is_inclusive(value, matches):
    out = make_policy(RULES[:1]).evaluate(frame(risk_score=[value]))
    assert out["max_leverage"].iloc[0] == (20.0 if matches else 50.0)


@pytest.mark.parametrize("value, matches", [
    (0.0999, False), (0.1, True), (0.2999, True), (0.3, False), (np.nan, False)])
def test_band_max_is_exclusive(value, matches):
    out = make_policy([RULES[1]]).evaluate(frame(liquidation_risk=[value]))
    assert out["max_leverage"].iloc[0] == (10.0 if matches else 50.0)


def test_missing_inputs_match_no_condition():
    rules = [{"name": n, "when": w, "set": {"max_leverage": 5}} for n, w in [
        ("r", {"region": ["EU"]}), ("k", {"kyc_tier": [0]}), ("s", {"segment": [0, "x"]}),
        ("l", {"lifecycle_stage": ["new"]}), ("v", {"value_tier": ["gold"]}),
        ("m", {"membership": {"max": 0.5}}), ("c", {"churn_probability": {"max": 1}})]]
    x = frame(region=[None, "EU"], kyc_tier=pd.array([pd.NA, 3], dtype="Int64"),
              segment_id=[np.nan, 9], segment_name=[None, "y"], lifecycle_stage=[None, "new"])
    out = make_policy(rules).evaluate(x)
    assert out["max_leverage"].tolist() == [50.0, 5.0]
    assert json.loads(out["rules"].iloc[1])["max_leverage"] == "r"


def test_a_rule_without_conditions_matches_everyone_and_categoricals_work():
    p = make_policy([{"name": "all", "set": {"max_leverage": 30}},
                     {"name": "gold", "when": {"value_tier": "gold"}, "set": {"max_leverage": 40,
                                                                               "review_flag": True}}])
    x = frame(value_tier=pd.Categorical(["gold", "bronze"]))
    out = p.evaluate(x)
    assert out["max_leverage"].tolist() == [30.0, 30.0]
    assert reasons(out) == ["gold", None]


def test_inputs_a_rule_needs_must_be_there():
    with pytest.raises(SchemaError, match="liquidation_risk"):
        make_policy([RULES[1]]).evaluate(pd.DataFrame({"risk_score": [1.0]}))
    # columns no rule reads may be absent
    out = make_policy([RULES[0]]).evaluate(pd.DataFrame({"risk_score": [1.0]}))
    assert out["max_leverage"].tolist() == [50.0]


def test_default_review_flag_carries_the_default_reason():
    d = {**DEFAULTS, "review_flag": True, "review_reason": "new venue: review everyone"}
    out = make_policy([RULES[1]], defaults=d).evaluate(frame(liquidation_risk=[0.2, 0.5]))
    assert reasons(out) == [
        "new venue: review everyone; liquidation risk 10-30%", "new venue: review everyone"]
    assert [r["review_flag"] for r in winners(out)] == ["default", "default"]


def test_empty_input():
    out = make_policy(RULES).evaluate(frame(risk_score=[]).iloc[:0])
    assert len(out) == 0 and list(out.columns)[:len(CONTROL_NAMES)] == list(CONTROL_NAMES)


# -- properties --------------------------------------------------------------------------

_values = {
    "max_leverage": st.sampled_from([5.0, 10.0, 20.0, 50.0, 100.0]),
    "position_limit_usd": st.sampled_from([0.0, 1e5, 1e6, 5e6]),
    "margin_multiplier": st.sampled_from([1.0, 1.25, 1.5, 2.0]),
    "allowed_products": st.lists(st.sampled_from(KINDS), min_size=0, max_size=4, unique=True),
    "option_writing": st.booleans(),
    "review_flag": st.booleans(),
    "marketing_eligible": st.booleans(),
}
_when = st.fixed_dictionaries({}, optional={
    "risk_score": st.sampled_from([{"min": 30}, {"max": 60}, {"min": 20, "max": 80}]),
    "liquidation_risk": st.sampled_from([{"min": 0.2}, {"max": 0.5}]),
    "region": st.sampled_from([["EU"], ["EU", "APAC"]]),
    "kyc_tier": st.sampled_from([[0], [1, 2]]),
    "segment": st.sampled_from([[1], ["b"], [2, "a"]]),
})


@st.composite
def rules(draw, min_size=0, max_size=5):
    n = draw(st.integers(min_size, max_size))
    out = []
    for i in range(n):
        sets = draw(st.fixed_dictionaries({}, optional=_values).filter(bool))
        out.append({"name": f"r{i}", "when": draw(_when), "set": sets})
    return out


@st.composite
def inputs(draw):
    n = draw(st.integers(1, 12))
    return frame(
        risk_score=draw(st.lists(st.sampled_from([0.0, 20.0, 30.0, 59.9, 60.0, 80.0, np.nan]),
                                 min_size=n, max_size=n)),
        liquidation_risk=draw(st.lists(st.sampled_from([0.0, 0.2, 0.5, 0.9, np.nan]),
                                       min_size=n, max_size=n)),
        region=draw(st.lists(st.sampled_from(["EU", "APAC", None]), min_size=n, max_size=n)),
        kyc_tier=draw(st.lists(st.sampled_from([0, 1, 2, 3]), min_size=n, max_size=n)),
        segment_id=draw(st.lists(st.sampled_from([0, 1, 2]), min_size=n, max_size=n)),
        segment_name=draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=n, max_size=n)),
    )


def _reference(policy, x):
    """Row by row: which rules match, then most_restrictive over [default, their values]."""
    from traderseg.policy.engine import _match

    masks = [_match(r, x) for r in policy.rules]
    defaults = policy.defaults
    rows = []
    for k in range(len(x)):
        row, win = {}, {}
        for name in CONTROL_NAMES:
            vals = [defaults[name]]
            who = ["default"]
            for r, m in zip(policy.rules, masks):
                v = getattr(r.set, name)
                if m[k] and v is not None:
                    vals.append(v)
                    who.append(r.name)
            value, i = most_restrictive(name, vals)
            row[name], win[name] = value, who[i]
        rows.append((row, win))
    return rows


@settings(max_examples=60, deadline=None)
@given(rules(), inputs())
def test_vectorised_equals_row_by_row_most_restrictive(rs, x):
    p = make_policy(rs)
    out = p.evaluate(x)
    for k, (row, win) in enumerate(_reference(p, x)):
        for name in CONTROL_NAMES:
            assert out[name].iloc[k] == row[name], (name, k)
        assert json.loads(out["rules"].iloc[k]) == win


def _restrictive_or_equal(name, before, after):
    value, _ = most_restrictive(name, [before, after])
    return value == after


@settings(max_examples=60, deadline=None)
@given(rules(), rules(min_size=1, max_size=1), inputs(), st.booleans())
def test_adding_a_rule_never_loosens_a_control(rs, extra, x, at_front):
    extra = [{**extra[0], "name": "extra"}]
    before = make_policy(rs).evaluate(x)
    after = make_policy(extra + rs if at_front else rs + extra).evaluate(x)
    for name in CONTROL_NAMES:
        for b, a in zip(before[name], after[name]):
            assert _restrictive_or_equal(name, b, a), (name, b, a)


@settings(max_examples=60, deadline=None)
@given(rules(min_size=2), inputs(), st.randoms(use_true_random=False))
def test_rule_order_changes_only_the_recorded_winner(rs, x, rnd):
    shuffled = list(rs)
    rnd.shuffle(shuffled)
    a = make_policy(rs).evaluate(x)
    b = make_policy(shuffled).evaluate(x)
    pd.testing.assert_frame_equal(a[list(CONTROL_NAMES)], b[list(CONTROL_NAMES)])
    # a winner that changed names a rule whose value is the same as the other winner's
    by_name = {r["name"]: r for r in rs}
    for ja, jb in zip(a["rules"], b["rules"]):
        wa, wb = json.loads(ja), json.loads(jb)
        for name in CONTROL_NAMES:
            if wa[name] != wb[name] and "default" not in (wa[name], wb[name]):
                assert name == "allowed_products" or (
                    by_name[wa[name]]["set"][name] == by_name[wb[name]]["set"][name])


@settings(max_examples=40, deadline=None)
@given(rules(), inputs(), st.randoms(use_true_random=False))
def test_row_order_does_not_matter(rs, x, rnd):
    order = list(range(len(x)))
    rnd.shuffle(order)
    p = make_policy(rs)
    pd.testing.assert_frame_equal(p.evaluate(x).iloc[order], p.evaluate(x.iloc[order]))
