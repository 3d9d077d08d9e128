"""File-level faults: one line naming the file and the fault, exit code 2, nothing stored.

Row-level faults of the same families (a time out of range, an odd coin) are rejects.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import UTC, datetime

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from helpers.cli import run_cli
from traderseg.errors import DataError
from traderseg.ingest import ingest
from traderseg.store import connect, open_store

from .conftest import DATA, NOW, fills_by_id, rejects

HEADER = ("fill_id,ts,account_id,instrument,underlying,kind,side,qty,price,notional_usd,"
          "fee_usd,is_maker")
ROW = "f1,2024-03-01T10:00:00Z,a1,BTC-PERPETUAL,BTC,perp,buy,1,60000,60000,0.5,true"


def _fills_table(**override) -> pa.Table:
    cols = {"fill_id": ["f1", "f2"], "ts": pa.array([1_709_287_200_000_000] * 2,
                                                    pa.timestamp("us", tz="UTC")),
            "account_id": ["a", "a"], "instrument": ["BTC-PERPETUAL"] * 2,
            "underlying": ["BTC"] * 2, "kind": ["perp"] * 2, "side": ["buy", "sell"],
            "qty": [1.0, 2.0], "price": [60000.0] * 2, "notional_usd": [60000.0] * 2,
            "fee_usd": [0.5, -0.1], "is_maker": [True, False]}
    cols.update(override)
    return pa.table(cols)


def _cli_fails(args, capsys, *words):
    code, out, err = run_cli(args, capsys)
    assert code == 2, (out, err)
    assert "Traceback" not in out + err
    line = err.strip()
    assert line.startswith("error:") and "\n" not in line, err
    for w in words:
        assert w in line, line
    return line


def _store_is_empty(db):
    if not db.exists():
        return True
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("SELECT count(*) FROM fills").fetchone()[0] == 0
    finally:
        con.close()


@pytest.mark.parametrize("encoding, words", [
    ("latin-1", ["not UTF-8 text", "byte 0xe9 at line 2"]),
    ("utf-16", ["UTF-16"]),
    ("utf-32", ["UTF-32"]),
])
def test_text_not_utf8_is_refused_whole(tmp_path, capsys, encoding, words):
    path = tmp_path / "fills.csv"
    path.write_bytes(f"{HEADER}\n{ROW.replace('a1', 'café')}\n".encode(encoding))
    db = tmp_path / "s.duckdb"
    _cli_fails(["ingest", str(path), "--db", str(db)], capsys, str(path), *words)
    assert _store_is_empty(db)


def test_duplicated_csv_column(tmp_path, capsys):
    path = tmp_path / "fills.csv"
    path.write_text(f"{HEADER},qty\n{ROW},3\n")
    _cli_fails(["ingest", str(path), "--db", str(tmp_path / "s.duckdb")], capsys,
               "column 'qty' appears twice (columns 8 and 13)")


def test_duplicated_parquet_column(tmp_path, capsys):
    t = _fills_table()
    t = pa.Table.from_arrays(list(t.columns) + [t.column("qty")], names=t.column_names + ["qty"])
    path = tmp_path / "fills.parquet"
    pq.write_table(t, path)
    _cli_fails(["ingest", str(path), "--db", str(tmp_path / "s.duckdb")], capsys,
               "'qty' appears twice")


@pytest.mark.parametrize("text, line", [
    (f'{HEADER}\n{ROW}\n"f2,2024-03-01T10:00:00Z,a1\n{ROW.replace("f1", "f3")}\n', 3),
    (f'"fill_id,{HEADER[8:]}\n{ROW}\n', 1),
])
def test_unbalanced_quote(tmp_path, capsys, text, line):
    path = tmp_path / "fills.csv"
    path.write_text(text)
    db = tmp_path / "s.duckdb"
    msg = _cli_fails(["ingest", str(path), "--db", str(db)], capsys, "unbalanced quote")
    if line > 1:
        assert f"line {line}" in msg
    assert _store_is_empty(db)


def test_quoted_values_with_doubled_quotes_are_fine(store, tmp_path):
    path = tmp_path / "fills.csv"
    path.write_text(f'{HEADER}\n"f""1",2024-03-01T10:00:00Z,a1,BTC-PERPETUAL,BTC,perp,buy,1,'
                    '60000,60000,0.5,true\n')
    rep = ingest(path, store, now=NOW)
    assert rep.sources[0].stored == 1 and set(fills_by_id(store)) == {'f"1'}


@pytest.mark.parametrize("content, words", [
    (b"", "Parquet file size is 0 bytes"),
    (b"PAR1\x00\x00PAR", "not a readable Parquet file"),
])
def test_empty_or_corrupt_parquet(tmp_path, capsys, content, words):
    path = tmp_path / "fills.parquet"
    path.write_bytes(content)
    _cli_fails(["ingest", str(path), "--db", str(tmp_path / "s.duckdb")], capsys, str(path),
               words)


def test_truncated_parquet(tmp_path, capsys):
    path = tmp_path / "fills.parquet"
    pq.write_table(_fills_table(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    _cli_fails(["ingest", str(path), "--db", str(tmp_path / "s.duckdb")], capsys,
               "not a readable Parquet file")


def test_integer_timestamps_in_the_wrong_unit(tmp_path, capsys):
    trades = json.loads((DATA / "binance_usertrades.json").read_text())
    for t in trades:
        t["time"] = t["time"] // 1000  # seconds where the API sends milliseconds
    path = tmp_path / "trades.json"
    path.write_text(json.dumps(trades))
    _cli_fails(["ingest", str(path), "--db", str(tmp_path / "s.duckdb"), "--format", "binance",
                "--account-id", "b1", "--asset-price", "BNB=600"], capsys,
               str(path), "column 'time' holds epoch seconds, not milliseconds")


def test_one_row_in_the_wrong_unit_is_a_reject_not_a_file_error(store, tmp_path):
    trades = json.loads((DATA / "binance_usertrades.json").read_text())
    trades[0]["time"] = trades[0]["time"] // 1000
    path = tmp_path / "trades.json"
    path.write_text(json.dumps(trades))
    rep = ingest(path, store, format="binance", account_id="b1", asset_prices={"BNB": 600},
                 now=NOW)
    s = rep.sources[0]
    assert (s.read, s.rejected) == (4, 1)
    assert rejects(store)[0]["field"] == "ts"


def test_nanosecond_timestamps_are_exact(store, tmp_path):
    # Parquet timestamp[ns] and nanosecond integers: floored to the microsecond, no error
    ns = 1_709_287_200_123_456_789
    t = _fills_table(ts=pa.array([ns, ns + 1_000], pa.timestamp("ns")))
    path = tmp_path / "fills.parquet"
    pq.write_table(t, path)
    csv = tmp_path / "fills-ns.csv"
    csv.write_text(f"{HEADER}\n" + ROW.replace("f1", "g1").replace("2024-03-01T10:00:00Z",
                                                                    str(ns)) + "\n")
    rep = ingest([path, csv], store, now=NOW)
    assert [s.stored for s in rep.sources] == [2, 1]
    got = fills_by_id(store)
    want = datetime(2024, 3, 1, 10, 0, 0, 123456, tzinfo=UTC)
    assert got["f1"]["ts"] == want and got["g1"]["ts"] == want
    assert got["f2"]["ts"] == datetime(2024, 3, 1, 10, 0, 0, 123457, tzinfo=UTC)


def test_years_out_of_range_are_rejects(store, tmp_path):
    far = 300_000_000_000  # seconds: year 11476
    t = _fills_table(ts=pa.array([far, 1_709_287_200], pa.timestamp("s")))
    path = tmp_path / "fills.parquet"
    pq.write_table(t, path)
    csv = tmp_path / "fills-x.csv"
    csv.write_text(f"{HEADER}\n" + ROW.replace("f1", "g1").replace(
        "2024-03-01T10:00:00Z", "10000-01-01T00:00:00Z") + "\n")
    rep = ingest([path, csv], store, now=NOW)
    assert [(s.stored, s.rejected) for s in rep.sources] == [(1, 1), (0, 1)]
    assert {r["field"] for r in rejects(store)} == {"ts"}
    assert all(r["raw"] for r in rejects(store))


def test_nested_required_column(tmp_path, capsys):
    t = _fills_table(qty=pa.array([{"v": 1.0}, {"v": 2.0}]))
    path = tmp_path / "fills.parquet"
    pq.write_table(t, path)
    _cli_fails(["ingest", str(path), "--db", str(tmp_path / "s.duckdb")], capsys,
               "column 'qty' holds nested values")


def test_deeply_nested_json(tmp_path, capsys):
    path = tmp_path / "trades.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    _cli_fails(["ingest", str(path), "--db", str(tmp_path / "s.duckdb"), "--format", "binance",
                "--account-id", "b"], capsys, "nested too deeply")


def test_deeply_nested_json_line_is_a_reject(store, tmp_path):
    good = json.loads((DATA / "binance_usertrades.json").read_text())[0]
    path = tmp_path / "trades.jsonl"
    path.write_text(json.dumps(good) + "\n" + "[" * 5000 + "]" * 5000 + "\n")
    rep = ingest(path, store, format="binance", account_id="b1", now=NOW)
    assert (rep.sources[0].read, rep.sources[0].rejected) == (2, 1)
    assert "nested too deeply" in rejects(store)[0]["reason"]


# ------------------------------------------------------------------------- the store path

def test_db_that_is_a_directory(tmp_path, capsys):
    _cli_fails(["ingest", str(DATA / "fills_bad.csv"), "--db", str(tmp_path), "-t", "fills"],
               capsys, "is a directory")


@pytest.mark.parametrize("name, content, words", [
    ("fills.parquet", None, "is a Parquet file, not a DuckDB store"),
    ("fills.csv", b"a,b\n1,2\n", "is not a DuckDB store file"),
])
def test_db_that_is_another_file_is_left_alone(tmp_path, capsys, name, content, words):
    db = tmp_path / name
    if content is None:
        pq.write_table(_fills_table(), db)
    else:
        db.write_bytes(content)
    before = db.read_bytes()
    _cli_fails(["ingest", str(DATA / "fills_bad.csv"), "--db", str(db), "-t", "fills"], capsys,
               words)
    assert db.read_bytes() == before


def test_db_in_memory_is_refused(capsys):
    _cli_fails(["ingest", str(DATA / "fills_bad.csv"), "--db", ":memory:", "-t", "fills"],
               capsys, "in-memory store would be discarded")


def test_second_writer_is_told_who_holds_the_store(tmp_path):
    db = tmp_path / "s.duckdb"
    connect(db).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, duckdb
            con = duckdb.connect({str(db)!r})
            print("ready", flush=True)
            sys.stdin.readline()
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(DataError, match=f"the store is in use by process {holder.pid}"):
            open_store(db)
    finally:
        holder.communicate("\n", timeout=30)


# ----------------------------------------------------------------- smaller faults, rows

def _hyperliquid(tmp_path, **changes):
    fills = json.loads((DATA / "hyperliquid_fills.json").read_text())
    for i, change in changes.items():
        fills[int(i[1:])].update(change)
    path = tmp_path / "fills.json"
    path.write_text(json.dumps(fills))
    return path


@pytest.mark.parametrize("coin", ["xyz:", "/USDC", "@", "BTC PERP", "a:b:c"])
def test_odd_hyperliquid_coin_is_rejected_not_stored_without_underlying(store, tmp_path, coin):
    path = _hyperliquid(tmp_path, r0={"coin": coin})
    ingest(path, store, format="hyperliquid", account_id="0xabc", now=NOW)
    assert all(r["underlying"] for r in fills_by_id(store).values())
    bad = [r for r in rejects(store) if r["line"] == 1]
    assert bad and bad[0]["field"] == "instrument" and "unknown coin" in bad[0]["reason"]


@pytest.mark.parametrize("flag, expected", [
    (False, False), ("no", False), (0, False), ("false", False), ("", False),
    (True, True), ("yes", True), (1, True),
    ({"liquidatedUser": "0xABC", "markPx": "1"}, True),
    ({"liquidatedUser": "0xother", "markPx": "1"}, False),
])
def test_hyperliquid_liquidation_flags(store, tmp_path, flag, expected):
    path = _hyperliquid(tmp_path, r0={"liquidation": flag})
    ingest(path, store, format="hyperliquid", account_id="0xabc", now=NOW)
    first = min(fills_by_id(store).values(), key=lambda r: r["ts"])
    assert first["is_liquidation"] is expected


def test_hyperliquid_liquidation_gibberish_is_a_reject(store, tmp_path):
    path = _hyperliquid(tmp_path, r0={"liquidation": "maybe"})
    ingest(path, store, format="hyperliquid", account_id="0xabc", now=NOW)
    assert [(r["line"], r["field"]) for r in rejects(store)] == [(1, "is_liquidation")]


@pytest.mark.parametrize("price", ["BNB=-600", "BNB=0", "BNB=nan", "BNB=inf"])
def test_asset_price_must_be_positive(tmp_path, capsys, price):
    _cli_fails(["ingest", str(DATA / "binance_usertrades.json"), "--db",
                str(tmp_path / "s.duckdb"), "--format", "binance", "--account-id", "b1",
                "--asset-price", price], capsys, "must be a positive number")


def test_mapping_upper_cases_underlying(store, tmp_path):
    mapping = tmp_path / "m.yaml"
    mapping.write_text((DATA / "generic_mapping.yaml").read_text().replace(
        "underlying: {const: BTC}", "underlying: Coin"))
    src = tmp_path / "trades.csv"
    src.write_text("TradeNo,Time,Wallet,Market,Dir,SizeMilli,Px,Fee,Liq,Coin\n"
                   "T-1,2024-05-01 12:00:00,w1,btc-perp,B,1500,62000.5,0.93,M,btc\n")
    ingest(src, store, mapping=mapping, now=NOW)
    assert fills_by_id(store)["T-1"]["underlying"] == "BTC"
