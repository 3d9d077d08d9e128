"""Invariants of the ingest, as properties over generated files (hypothesis).

For any mix of good and bad rows, duplicates and odd values: every row read is stored,
rejected or already present; the store holds exactly what the report says; a second
ingest of the same file stores nothing and adds no reject; and the order of the rows does
not change what is stored.
"""

from __future__ import annotations

import csv
import io

import hypothesis.strategies as st
from hypothesis import HealthCheck, given, settings

from traderseg.ingest import ingest
from traderseg.store import connect

from .conftest import NOW

HEADER = ["fill_id", "ts", "account_id", "instrument", "underlying", "kind", "side", "qty",
          "price", "notional_usd", "fee_usd", "is_maker"]

_value = {
    "fill_id": st.sampled_from(["f1", "f2", "f3", "f4", "f5", ""]),
    "ts": st.sampled_from(["2024-03-01T10:00:00Z", "1709287200000", "2030-01-01T00:00:00Z",
                           "2008-01-01", "not a time", "", "1709287200"]),
    "account_id": st.sampled_from(["a", "b", ""]),
    "instrument": st.just("BTC-PERPETUAL"),
    "underlying": st.sampled_from(["BTC", "btc", ""]),
    "kind": st.sampled_from(["perp", "PERP", "swap", "option", ""]),
    "side": st.sampled_from(["buy", "Sell", "long"]),
    "qty": st.sampled_from(["1", "0", "-2", "1e3", "inf", "x"]),
    "price": st.sampled_from(["100", "0.5", "NaN", ""]),
    "notional_usd": st.sampled_from(["100", "0", "-1"]),
    "fee_usd": st.sampled_from(["0.1", "-0.05", "0"]),
    "is_maker": st.sampled_from(["true", "false", "yes", "2"]),
}
rows = st.lists(st.fixed_dictionaries(_value), min_size=0, max_size=25)


def _csv(records) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=HEADER, lineterminator="\n")
    w.writeheader()
    w.writerows(records)
    return buf.getvalue()


def _count(con, table):
    return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=rows)
def test_counts_are_conserved_and_reingest_adds_nothing(tmp_path_factory, records):
    path = tmp_path_factory.mktemp("p") / "fills.csv"
    path.write_text(_csv(records))
    con = connect(":memory:")
    s = ingest(path, con, now=NOW).sources[0]
    assert s.read == len(records)
    assert s.read == s.stored + s.rejected + s.already_present
    assert (_count(con, "fills"), _count(con, "rejects")) == (s.stored, s.rejected)
    again = ingest(path, con, now=NOW).sources[0]
    assert (again.stored, again.already_present, again.rejected) == (0, s.stored, s.rejected)
    assert (_count(con, "fills"), _count(con, "rejects")) == (s.stored, s.rejected)
    con.close()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=rows, data=st.data())
def test_row_order_does_not_change_the_stored_ids(tmp_path_factory, records, data):
    # unique ids, so that "first occurrence wins" cannot depend on the order
    unique = [dict(r, fill_id=f"id{i}") for i, r in enumerate(records)]
    shuffled = data.draw(st.permutations(unique))
    stored = []
    for recs in (unique, shuffled):
        path = tmp_path_factory.mktemp("o") / "fills.csv"
        path.write_text(_csv(recs))
        con = connect(":memory:")
        ingest(path, con, now=NOW)
        stored.append(sorted(r[0] for r in con.execute("SELECT fill_id FROM fills").fetchall()))
        con.close()
    assert stored[0] == stored[1]
