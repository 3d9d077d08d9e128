import pandas as pd
import pytest

from helpers.cli import run_cli
from traderseg.analysis.migration import migration
from traderseg.errors import DataError, SchemaError

NAMES = {0: "makers", 1: "punters", 2: "optioners"}


def _frame(rows):
    df = pd.DataFrame(rows, columns=["account_id", "segment", "lifecycle", "value_tier", "risk_score"])
    return df.assign(segment_name=df["segment"].map(NAMES))


JAN = _frame([
    ("a", 0, "active", "platinum", 20), ("b", 0, "active", "gold", 30),
    ("c", 1, "active", "silver", 75), ("d", 1, "at-risk", "bronze", 60),
    ("e", 2, "active", "platinum", 10), ("f", 2, "dormant", "bronze", 50),
    ("g", 1, "active", "bronze", 40),
])
FEB = _frame([
    ("a", 0, "active", "platinum", 20), ("b", 1, "active", "gold", 80),
    ("c", 1, "dormant", "silver", 90), ("d", 1, "churned", "bronze", 60),
    ("e", 0, "active", "gold", 10), ("g", 1, "active", "bronze", 40),
    ("h", 2, "new", "bronze", 72),
])


def test_counts_shares_and_stability_match_the_hand_built_example():
    rep = migration([("2024-01-01", JAN), ("2024-02-01", FEB)], high_risk_segments=["punters"])
    step = rep.steps[0]
    expected = pd.DataFrame(
        [[1, 1, 0, 0, 0],    # makers: a stays, b -> punters
         [0, 2, 0, 1, 0],    # punters: c, g stay, d churned
         [1, 0, 0, 0, 1],    # optioners: e -> makers, f gone
         [0, 0, 1, 0, 0]],   # new: h -> optioners
        index=["makers", "punters", "optioners", "new"],
        columns=["makers", "punters", "optioners", "churned", "gone"])
    pd.testing.assert_frame_equal(step.counts, expected, check_names=False, check_dtype=False)
    assert step.shares.loc["punters", "punters"] == pytest.approx(2 / 3)
    assert step.shares.loc["optioners", "gone"] == pytest.approx(0.5)
    s = rep.summary.iloc[0]
    assert (s["accounts_start"], s["accounts_end"], s["entered"], s["gone"], s["in_both"]) == (7, 7, 1, 1, 6)
    assert s["stayed"] == 4 and s["stability"] == pytest.approx(4 / 6)  # a, c, d, g keep their id


def test_flows_that_matter():
    rep = migration([("2024-01-01", JAN), ("2024-02-01", FEB)], high_risk_segments=[1])
    acc = rep.flow_accounts.groupby("flow")["account_id"].apply(sorted).to_dict()
    assert acc == {
        "gone": ["f"], "into_dormant": ["c"], "into_churned": ["d"],
        "into_high_risk_segment": ["b"], "into_high_risk_score": ["b", "h"],
        "out_of_top_value_tier": ["e"],
    }
    counts = rep.flows.set_index("flow")["accounts"]
    assert counts["into_high_risk_score"] == 2 and counts["gone"] == 1
    h = rep.flow_accounts.query("account_id == 'h'").iloc[0]
    assert (h["from_state"], h["to_state"]) == ("new", "optioners")


def test_three_periods_give_two_steps_and_optional_overlays_are_skipped(tmp_path):
    mar = FEB[FEB["account_id"] != "a"][["account_id", "segment", "segment_name"]]
    path = tmp_path / "mar.parquet"
    mar.to_parquet(path)
    rep = migration([("2024-01-01", JAN), ("2024-02-01", FEB), ("2024-03-01", path)])
    assert len(rep.steps) == 2
    assert rep.steps[1].counts.loc["makers", "gone"] == 1
    last = rep.flows[rep.flows["end"] == "2024-03-01"]
    # no lifecycle/risk/value columns in March: only the flows that can be computed
    assert set(last["flow"]) == {"gone"}
    # all of February's accounts present in March stayed in their segment
    assert rep.summary.iloc[1]["stability"] == 1.0


def test_bad_input():
    with pytest.raises(DataError, match="at least two"):
        migration([("2024-01-01", JAN)])
    with pytest.raises(DataError, match="time order"):
        migration([("2024-02-01", JAN), ("2024-01-01", FEB)])
    with pytest.raises(DataError, match="no accounts"):
        migration([("2024-01-01", JAN), ("2024-02-01", FEB.iloc[:0])])
    with pytest.raises(SchemaError, match="whales"):
        migration([("2024-01-01", JAN), ("2024-02-01", FEB)], high_risk_segments=["whales"])
    with pytest.raises(SchemaError, match="segment_name"):
        migration([("2024-01-01", JAN), ("2024-02-01", FEB.drop(columns="segment_name"))])
    with pytest.raises(DataError, match="distinct"):
        migration([("p", JAN), ("p", FEB)])


def test_lifecycle_stage_column_of_the_overlays_is_accepted():
    a = JAN.rename(columns={"lifecycle": "lifecycle_stage"})
    b = FEB.rename(columns={"lifecycle": "lifecycle_stage"})
    rep = migration([("2024-01-01", a), ("2024-02-01", b)])
    flows = rep.flows.set_index("flow")["accounts"]
    assert flows["into_churned"] == 1 and flows["into_dormant"] == 1
    assert rep.steps[0].counts.loc["punters", "churned"] == 1


def test_cli_takes_several_files_after_one_flag(tmp_path, capsys):
    JAN.to_parquet(tmp_path / "jan.parquet")
    FEB.to_parquet(tmp_path / "feb.parquet")
    out, flows = tmp_path / "m.parquet", tmp_path / "f.parquet"
    code, text, err = run_cli(["analyze", "migration", "--assignments", str(tmp_path / "jan.parquet"),
                               str(tmp_path / "feb.parquet"), "--high-risk", "punters", "--out", str(out),
                               "--flows-out", str(flows)], capsys)
    assert code == 0, err
    assert "jan -> feb" in text and "stability" in text
    long = pd.read_parquet(out).set_index(["from", "to"])
    assert long.loc[("optioners", "makers"), "accounts"] == 1
    assert long.loc[("punters", "punters"), "share"] == pytest.approx(2 / 3)
    f = pd.read_parquet(flows)
    assert sorted(f.loc[f["flow"] == "into_high_risk_score", "account_id"]) == ["b", "h"]
    code, _, err = run_cli(["analyze", "migration", "--assignments", str(tmp_path / "jan.parquet"),
                            str(tmp_path / "feb.parquet"), "--labels", "2024-01-01"], capsys)
    assert code == 2 and "--labels has 1 labels for 2 files" in err
