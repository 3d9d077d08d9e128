"""Bad input: every bad row is a reject with a reason, counts always balance."""

from __future__ import annotations

import pytest

from traderseg.errors import ConfigError, SchemaError
from traderseg.ingest import ingest

from .conftest import DATA, NOW, fills_by_id, rejects

EXPECTED = {  # line -> (field, words in the reason)
    4: ("ts", "timestamp"),
    5: ("qty", "> 0"),
    6: ("ts", "future"),
    7: ("ts", "2009"),
    8: ("strike", "without strike"),
    9: ("kind", "swap"),
    10: ("fill_id", "duplicate fill_id ok-1 in this source (first at line 2)"),
    11: ("price", "number"),
    13: ("*", "truncated"),
}


def test_bad_csv_rows(store):
    rep = ingest(DATA / "fills_bad.csv", store, table="fills", now=NOW)
    s = rep.sources[0]
    assert (s.read, s.stored, s.rejected, s.already_present) == (12, 3, 9, 0)
    got = {r["line"]: r for r in rejects(store)}
    assert set(got) == set(EXPECTED)
    for line, (field, words) in EXPECTED.items():
        assert got[line]["field"] == field
        assert words in got[line]["reason"]
        assert got[line]["raw"]
    assert set(fills_by_id(store)) == {"ok-1", "ok-2", "ok-3"}
    kept = fills_by_id(store)["ok-1"]
    assert kept["ts"].minute == 0  # the first occurrence is the one kept


def test_reingest_is_idempotent(store):
    ingest(DATA / "fills_bad.csv", store, table="fills", now=NOW)
    rep = ingest(DATA / "fills_bad.csv", store, table="fills", now=NOW)
    s = rep.sources[0]
    assert (s.read, s.stored, s.rejected, s.already_present) == (12, 0, 9, 3)
    assert store.execute("SELECT count(*) FROM fills").fetchone()[0] == 3
    assert store.execute("SELECT count(*) FROM rejects").fetchone()[0] == 9
    runs = store.execute("SELECT rows_read, rows_stored, rows_rejected, rows_already_present "
                         "FROM ingest_runs ORDER BY started_at").fetchall()
    assert runs == [(12, 3, 9, 0), (12, 0, 9, 3)]


def test_missing_column_refuses_whole_file_before_storing(store):
    with pytest.raises(SchemaError, match="price"):
        ingest([DATA / "fills_bad.csv", DATA / "fills_missing_price.csv"], store,
               table="fills", now=NOW)
    assert store.execute("SELECT count(*) FROM fills").fetchone()[0] == 0
    assert store.execute("SELECT count(*) FROM ingest_runs").fetchone()[0] == 0


def test_future_check_uses_real_clock(store, tmp_path):
    path = tmp_path / "fills.csv"
    path.write_text(
        "fill_id,ts,account_id,instrument,underlying,kind,side,qty,price,notional_usd,fee_usd,"
        "is_maker\nf1,2999-01-01T00:00:00Z,a,BTC-PERPETUAL,BTC,perp,buy,1,1,1,0,true\n")
    rep = ingest(path, store)
    assert rep.sources[0].rejected == 1
    assert "future" in rejects(store)[0]["reason"]


def test_unknown_table_name(store, tmp_path):
    path = tmp_path / "trades.csv"
    path.write_text("a\n1\n")
    with pytest.raises(ConfigError, match="--table"):
        ingest(path, store)


def test_unknown_format(store):
    with pytest.raises(ConfigError, match="format"):
        ingest(DATA / "fills_bad.csv", store, format="bitmex")
