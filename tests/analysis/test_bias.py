import numpy as np
import pandas as pd
import pytest
from scipy import stats

from traderseg.analysis.bias import MISSING_GROUP, bias_audit, cramers_v
from traderseg.errors import DataError, SchemaError


def _venue(groups):
    """groups: list of (region, accounts, high-risk accounts)."""
    rows, accounts = [], []
    n = 0
    for region, size, risky in groups:
        for i in range(size):
            aid = f"a{n:05d}"
            rows.append({"account_id": aid, "segment": i % 2, "segment_name": ["makers", "punters"][i % 2],
                         "risk_score": 80.0 if i < risky else 10.0, "value_tier": "bronze",
                         "lifecycle_stage": "active"})
            accounts.append({"account_id": aid, "region": region})
            n += 1
    return pd.DataFrame(rows), pd.DataFrame(accounts)


def test_disparity_worked_by_hand_and_small_groups_left_out():
    a, acc = _venue([("A", 40, 10), ("B", 40, 2), ("C", 29, 29)])
    audit = bias_audit(a, acc, attributes=["region"])
    row = audit.disparity.set_index("outcome").loc["high_risk"]
    # C (29 accounts, all high risk) is below min_group=30: listed, not tested
    assert (row["lowest_group"], row["highest_group"]) == ("B", "A")
    assert row["lowest_rate"] == pytest.approx(2 / 40) and row["highest_rate"] == pytest.approx(10 / 40)
    assert row["ratio"] == pytest.approx(0.2) and row["difference"] == pytest.approx(0.2)
    _, p, _, _ = stats.chi2_contingency([[30, 10], [38, 2]], correction=False)
    assert row["p_value"] == pytest.approx(p) and p < 0.05
    assert bool(row["flagged"])
    rates = audit.rates.set_index("group")
    assert rates.loc["C", "high_risk"] == 1.0 and not rates.loc["C", "tested"]
    assert rates.loc["A", "tested"]


def test_a_group_of_exactly_min_group_accounts_is_tested():
    a, acc = _venue([("A", 40, 10), ("B", 40, 2), ("C", 30, 30)])
    row = bias_audit(a, acc, attributes=["region"]).disparity.set_index("outcome").loc["high_risk"]
    assert row["highest_group"] == "C" and row["highest_rate"] == 1.0


def test_a_ratio_of_exactly_four_fifths_is_not_flagged():
    a, acc = _venue([("A", 1000, 500), ("B", 1000, 400)])
    row = bias_audit(a, acc, attributes=["region"]).disparity.set_index("outcome").loc["high_risk"]
    assert row["ratio"] == 0.8 and row["p_value"] < 0.05
    assert not bool(row["flagged"])
    a, acc = _venue([("A", 1000, 500), ("B", 1000, 399)])
    row = bias_audit(a, acc, attributes=["region"]).disparity.set_index("outcome").loc["high_risk"]
    assert row["ratio"] < 0.8 and bool(row["flagged"])


def test_a_large_ratio_gap_without_significance_is_not_flagged():
    a, acc = _venue([("A", 30, 2), ("B", 30, 1)])
    row = bias_audit(a, acc, attributes=["region"]).disparity.set_index("outcome").loc["high_risk"]
    assert row["ratio"] == pytest.approx(0.5) and row["p_value"] > 0.05
    assert not bool(row["flagged"])


def test_composition_association_and_missing_attributes():
    a, acc = _venue([("A", 40, 0), ("B", 40, 0)])
    acc.loc[acc.index[:5], "region"] = None
    audit = bias_audit(a, acc, attributes=["region"])
    comp = audit.composition["region"]
    assert MISSING_GROUP in comp.index and "all" in comp.index
    np.testing.assert_allclose(comp.sum(axis=1), 1.0)
    assoc = audit.association.iloc[0]
    assert assoc["groups"] == 2  # (missing) has 5 accounts: not tested
    # the same alternating segment mix in every group: no association
    assert assoc["cramers_v"] == pytest.approx(0.0, abs=0.05)
    # no one is high risk anywhere: the ratio is undefined and nothing is flagged
    row = audit.disparity.set_index("outcome").loc["high_risk"]
    assert np.isnan(row["ratio"]) and not bool(row["flagged"])


def test_cramers_v_worked_by_hand():
    chi2, p, dof, v = cramers_v(np.array([[30, 10], [10, 30]]))
    # expected 20 in every cell: chi2 = 4 * 10^2 / 20 = 20; V = sqrt(20 / 80)
    assert (chi2, dof) == (pytest.approx(20.0), 1) and v == pytest.approx(0.5)
    assert np.isnan(cramers_v(np.array([[5, 5]]))[0])


def test_bad_inputs_are_named():
    a, acc = _venue([("A", 40, 0)])
    with pytest.raises(SchemaError, match="none of the attributes"):
        bias_audit(a, acc, attributes=["kyc_tier"])
    with pytest.raises(DataError, match="none of the assigned accounts"):
        bias_audit(a, acc.assign(account_id="zzz"), attributes=["region"])
