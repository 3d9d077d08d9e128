"""Rejects a user can see: grouped reasons, gates on the reject share, raw rows, stable reasons."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from helpers.cli import run_cli
from traderseg.errors import ConfigError, DataError
from traderseg.ingest import ingest

from .conftest import NOW, fills_by_id, rejects

HEADER = ("fill_id,ts,account_id,instrument,underlying,kind,side,qty,price,notional_usd,"
          "fee_usd,is_maker,venue_note")


def _row(fid, kind="perp", ts="2024-03-01T10:00:00Z", qty="1"):
    return f"{fid},{ts},a1,BTC-PERPETUAL,BTC,{kind},buy,{qty},60000,60000,0.5,true,n-{fid}"


def _csv(tmp_path, rows, name="fills.csv"):
    path = tmp_path / name
    path.write_text(HEADER + "\n" + "\n".join(rows) + "\n")
    return path


def test_top_rejects_group_reasons_with_counts_and_first_line(store, tmp_path):
    # lines: 2 ok, 3 dup, 4 swap, 5 dup, 6 swap2, 7 dup, 8 qty<0
    rows = [_row("h"), _row("h"), _row("x1", kind="swap"), _row("h"), _row("x2", kind="SWAP!"),
            _row("h"), _row("x3", qty="-1")]
    rep = ingest(_csv(tmp_path, rows), store, now=NOW)
    top = rep.sources[0].top_rejects
    assert [(g.field, g.count, g.first_line) for g in top] == [
        ("fill_id", 3, 3), ("kind", 2, 4), ("qty", 1, 8)]
    assert top[0].reason == "duplicate fill_id h in this source (first at line 2)"
    assert top[1].reason.startswith("'swap' is not one of")


def test_duplicate_reject_keeps_the_source_row(store, tmp_path):
    ingest(_csv(tmp_path, [_row("h"), _row("h", qty="2")]), store, now=NOW)
    (rej,) = rejects(store)
    raw = json.loads(rej["raw"])
    # the row as the file wrote it: text values and the column the store does not keep
    assert raw["qty"] == "2" and raw["venue_note"] == "n-h" and "line_no" not in raw


def test_duplicate_reject_keeps_the_source_record_for_json(store, tmp_path):
    recs = [json.loads(json.dumps({"fill_id": "h", "ts": 1709287200000 + i, "account_id": "a",
                                   "instrument": "X", "underlying": "btc", "kind": "perp",
                                   "side": "buy", "qty": 1 + i, "price": 1, "notional_usd": 1,
                                   "fee_usd": 0, "is_maker": True, "extra": {"k": i}}))
            for i in range(2)]
    path = tmp_path / "fills.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    ingest(path, store, now=NOW)
    (rej,) = rejects(store)
    assert json.loads(rej["raw"]) == recs[1]


def test_future_reason_does_not_change_between_runs(store, tmp_path):
    path = _csv(tmp_path, [_row("ok"), _row("late", ts="2030-01-01T00:00:00Z")])
    ingest(path, store, now=NOW)
    ingest(path, store, now=NOW + timedelta(days=3))
    assert len(rejects(store)) == 1


def test_table_inferred_from_columns(store, tmp_path):
    path = _csv(tmp_path, [_row("a"), _row("b")], name="export-2024.csv")
    rep = ingest(path, store, now=NOW)
    assert rep.sources[0].table == "fills" and rep.sources[0].stored == 2
    acc = tmp_path / "customers.csv"
    acc.write_text("account_id,created_at,region\nu1,2024-01-01T00:00:00Z,EU\n")
    assert ingest(acc, store, now=NOW).sources[0].table == "accounts"


def test_table_not_inferred_from_ambiguous_columns(store, tmp_path):
    path = tmp_path / "export.csv"
    path.write_text("account_id,id\na,1\n")
    with pytest.raises(ConfigError, match="from its name or its columns"):
        ingest(path, store, now=NOW)


def test_every_row_rejected_exits_non_zero(tmp_path, capsys):
    path = _csv(tmp_path, [_row("a", kind="swap"), _row("b", kind="swap")])
    code, out, err = run_cli(["ingest", str(path), "--db", str(tmp_path / "s.duckdb")], capsys)
    assert code == 2
    assert "every row was rejected in 1 file(s)" in err
    assert "kind" in out and "first at line 2" in out  # the reasons are shown before


def test_some_rows_rejected_exits_zero(tmp_path, capsys):
    path = _csv(tmp_path, [_row("a"), _row("b", kind="swap")])
    code, _, _ = run_cli(["ingest", str(path), "--db", str(tmp_path / "s.duckdb")], capsys)
    assert code == 0


def test_max_reject_share_boundary(store, tmp_path):
    # 1 of 4 rejected = 25%: at the limit passes, just below it fails and stores nothing
    path = _csv(tmp_path, [_row("a"), _row("b"), _row("c"), _row("d", kind="swap")])
    with pytest.raises(DataError, match=r"1 of 4 rows rejected \(25.0%.*most common: kind"):
        ingest(path, store, now=NOW, max_reject_share=0.249)
    assert fills_by_id(store) == {} and rejects(store) == []
    rep = ingest(path, store, now=NOW, max_reject_share=0.25)
    assert rep.sources[0].stored == 3


def test_max_reject_share_cli(tmp_path, capsys):
    path = _csv(tmp_path, [_row("a"), _row("d", kind="swap")])
    code, _, err = run_cli(["ingest", str(path), "--db", str(tmp_path / "s.duckdb"),
                            "--max-reject-share", "0.1"], capsys)
    assert code == 2 and "above --max-reject-share 10.0%" in err
    assert len(err.strip().splitlines()) == 1


def test_max_reject_share_out_of_range(store, tmp_path):
    with pytest.raises(ConfigError, match="between 0 and 1"):
        ingest(_csv(tmp_path, [_row("a")]), store, max_reject_share=1.5)


def test_stable_reasons_keep_rejects_idempotent_with_the_real_clock(store, tmp_path):
    path = _csv(tmp_path, [_row("late", ts="2999-01-01T00:00:00Z")])
    ingest(path, store)
    ingest(path, store, now=datetime.now(UTC) + timedelta(seconds=5))
    assert len(rejects(store)) == 1
