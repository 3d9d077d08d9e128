"""The controls table and the append-only audit log."""

from __future__ import annotations

import json

import duckdb
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from traderseg.errors import StoreError
from traderseg.online.tables import (
    AUDIT_TABLE,
    CONTROLS_TABLE,
    audit_changes,
    ensure_online_tables,
    read_audit,
    read_controls,
    write_decisions,
)
from traderseg.policy.controls import CONTROL_NAMES

T0 = pd.Timestamp("2024-01-01", tz="UTC")


def row(account="a", *, lev=20.0, review=False, at=T0, fill="f1", rule="r1"):
    return {
        "account_id": account, "segment_id": 1, "segment_name": "s", "membership": 0.9,
        "lifecycle_stage": "active", "value_tier": "top", "risk_score": 50.0, "kyc_tier": 1,
        "region": "EU", "churn_probability": 0.1, "liquidation_risk": 0.2,
        "max_leverage": lev, "position_limit_usd": 1e6, "margin_multiplier": 1.0,
        "allowed_products": "spot,perp", "option_writing": True, "review_flag": review,
        "marketing_eligible": True, "review_reason": None,
        "rules": json.dumps({"max_leverage": rule}), "policy_version": "p1",
        "model_version": "m1", "as_of": at, "fill_id": fill, "updated_at": pd.NaT,
    }


def test_first_decision_audits_every_control_with_no_old_value():
    con = duckdb.connect()
    assert write_decisions(con, pd.DataFrame([row()]), actor="stream") == len(CONTROL_NAMES)
    log = read_audit(con)
    assert log["old_value"].isna().all()
    assert log.loc[log["control"] == "max_leverage", "rule"].item() == "r1"
    assert log.loc[log["control"] == "review_flag", "rule"].item() == "default"
    assert list(read_controls(con).columns) == CONTROLS_TABLE.names


def test_the_same_decision_again_adds_nothing():
    con = duckdb.connect()
    write_decisions(con, pd.DataFrame([row()]), actor="stream")
    assert write_decisions(con, pd.DataFrame([row(fill="f2")]), actor="stream") == 0
    assert len(read_audit(con)) == len(CONTROL_NAMES)


def test_successive_rows_of_one_account_audit_each_change_in_order():
    con = duckdb.connect()
    write_decisions(con, pd.DataFrame([row()]), actor="stream")
    t1, t2 = T0 + pd.Timedelta(hours=1), T0 + pd.Timedelta(hours=2)
    rows = pd.DataFrame([row(lev=10.0, at=t1, fill="f2"),
                         row(lev=10.0, review=True, at=t2, fill="f3"),
                         row("b", at=t2)])
    n = write_decisions(con, rows, actor="key:k1")
    log = read_audit(con)
    new = log[log["audit_id"] > len(CONTROL_NAMES)]
    assert n == len(new) == 2 + len(CONTROL_NAMES)
    a = new[new["account_id"] == "a"]
    assert a[["control", "old_value", "new_value", "fill_id"]].values.tolist() == [
        ["max_leverage", "20.0", "10.0", "f2"], ["review_flag", "false", "true", "f3"]]
    assert (new["actor"] == "key:k1").all()
    assert new["audit_id"].is_monotonic_increasing
    current = read_controls(con).set_index("account_id")
    assert current.loc["a", "max_leverage"] == 10.0 and bool(current.loc["a", "review_flag"])


def test_audit_changes_compares_with_the_stored_row_first():
    old = pd.DataFrame([row(lev=20.0)])
    new = pd.DataFrame([row(lev=20.0, fill="f9"), row(lev=5.0, fill="f10")])
    ch = audit_changes(old, new, actor="stream", recorded_at=T0)
    assert ch[["control", "old_value", "new_value", "fill_id"]].values.tolist() == [
        ["max_leverage", "20.0", "5.0", "f10"]]


def test_controls_of_some_accounts_are_read_in_account_order():
    con = duckdb.connect()
    ids = ["c", "o'neil", "a", "b,d"]
    write_decisions(con, pd.DataFrame([row(a, lev=float(i + 1)) for i, a in enumerate(ids)]),
                    actor="stream")
    got = read_controls(con, ["b,d", "o'neil", "nobody", "c"])
    assert got["account_id"].tolist() == ["b,d", "c", "o'neil"]
    assert got["max_leverage"].tolist() == [4.0, 1.0, 2.0]
    assert read_controls(con, []).empty
    # no live prediction: NaN is stored as NULL and read back as missing
    write_decisions(con, pd.DataFrame([row("e") | {"churn_probability": float("nan")}]),
                    actor="stream")
    assert con.execute("SELECT churn_probability IS NULL FROM controls "
                       "WHERE account_id = 'e'").fetchone() == (True,)


def test_missing_tables_read_as_empty():
    con = duckdb.connect()
    assert read_controls(con).empty and read_audit(con).empty


def _one_by_one(old: pd.DataFrame, new: pd.DataFrame) -> list[tuple]:
    """The audit rows written the plain way: each row against the account's last one."""
    from traderseg.online.tables import control_text

    last = {r["account_id"]: r for r in old.to_dict("records")}
    out = []
    for r in new.to_dict("records"):
        before = last.get(r["account_id"])
        rules = json.loads(r["rules"])
        for name in CONTROL_NAMES:
            t = control_text(name, r[name])
            b = None if before is None else control_text(name, before[name])
            if before is None or b != t:
                out.append((r["account_id"], name, b, t, rules.get(name, "default"),
                            r["fill_id"], r["as_of"]))
        last[r["account_id"]] = r
    return out


_levs = st.sampled_from([5.0, 10.0, 20.0, float("nan")])


@settings(max_examples=60, deadline=None)
@given(stored=st.lists(st.tuples(st.sampled_from("abc"), _levs, st.booleans()), max_size=3,
                       unique_by=lambda t: t[0]),
       rows=st.lists(st.tuples(st.sampled_from("abcd"), _levs, st.booleans(),
                               st.sampled_from(["r1", "r2"])), max_size=12))
def test_audit_rows_equal_comparing_each_row_with_the_one_before(stored, rows):
    old = pd.DataFrame([row(a, lev=lev, review=rev) for a, lev, rev in stored],
                       columns=CONTROLS_TABLE.names)
    new = pd.DataFrame([row(a, lev=lev, review=rev, rule=rule, fill=f"f{i}",
                            at=T0 + pd.Timedelta(minutes=i))
                        for i, (a, lev, rev, rule) in enumerate(rows)],
                       columns=CONTROLS_TABLE.names)
    got = audit_changes(old, new, actor="stream", recorded_at=T0)
    want = _one_by_one(old, new)
    assert [(r.account_id, r.control, r.old_value, r.new_value, r.rule, r.fill_id,
             r.effective_at) for r in got.itertuples()] == want


@pytest.mark.parametrize(("columns", "message"), [
    (["account_id VARCHAR", "segment_id VARCHAR"],
     "table controls lacks segment_name, membership, lifecycle_stage, value_tier and 19 more"),
    ([f"{c} VARCHAR" for c in reversed(CONTROLS_TABLE.names)], "in another order"),
    ([f"{c} VARCHAR" for c in CONTROLS_TABLE.names] + ["note VARCHAR"], "has note besides"),
])
def test_online_tables_of_another_shape_are_refused_naming_the_store(tmp_path, columns,
                                                                     message):
    db = tmp_path / "s.duckdb"
    con = duckdb.connect(str(db))
    con.execute(f"CREATE TABLE controls ({', '.join(columns)})")
    with pytest.raises(StoreError, match=message) as err:
        ensure_online_tables(con)
    assert str(err.value).startswith(f"{db}: table controls ")
    con.close()


def test_online_tables_of_the_right_shape_are_kept(tmp_path):
    con = duckdb.connect(str(tmp_path / "s.duckdb"))
    ensure_online_tables(con)
    write_decisions(con, pd.DataFrame([row()]), actor="stream")
    ensure_online_tables(con)  # again: nothing to create, nothing refused
    assert len(read_controls(con)) == 1
    # the audit log is checked as well
    con.execute("ALTER TABLE control_audit DROP COLUMN actor")
    with pytest.raises(StoreError, match=f"table {AUDIT_TABLE.name} lacks actor"):
        ensure_online_tables(con)
    con.close()


def test_a_shape_message_names_four_columns_then_counts_the_rest(tmp_path):
    """Four missing columns are all named; a fifth is counted ("and 1 more")."""
    con = duckdb.connect(str(tmp_path / "s.duckdb"))
    names = AUDIT_TABLE.names
    con.execute(f"CREATE TABLE control_audit ({', '.join(f'{c} VARCHAR' for c in names[:-4])})")
    with pytest.raises(StoreError) as four:
        ensure_online_tables(con)
    assert f"lacks {', '.join(names[-4:])} (" in str(four.value)
    con.execute(f"ALTER TABLE control_audit DROP COLUMN {names[-5]}")
    with pytest.raises(StoreError) as five:
        ensure_online_tables(con)
    assert f"lacks {', '.join(names[-5:-1])} and 1 more (" in str(five.value)
    con.close()
