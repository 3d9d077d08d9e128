"""Mapping files for real exports: ids from several columns and the line, time zones,
case-insensitive enumerations, instrument patterns; the worked examples of docs/ingest.md run
as written."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from traderseg.errors import ConfigError
from traderseg.ingest import ingest
from traderseg.ingest.mapping import parse_mapping
from traderseg.ingest.patterns import parse_patterns

from .conftest import NOW, fills_by_id, rejects

DOC = Path(__file__).resolve().parents[2] / "docs" / "ingest.md"


def _example(name: str) -> str:
    m = re.search(rf"<!-- example: {name} -->\n```\w+\n(.*?)```", DOC.read_text(), re.S)
    assert m, name
    return m.group(1)


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_worked_example_dex_export(store, tmp_path):
    src = _write(tmp_path, "trades.csv", _example("dex-csv"))
    mapping = _write(tmp_path, "dex.yaml", _example("dex-mapping"))
    rep = ingest(src, store, mapping=mapping, now=NOW)
    assert (rep.sources[0].stored, rep.sources[0].rejected) == (3, 0)
    got = fills_by_id(store)
    assert set(got) == {"0xaa:0x1:2", "0xaa:0x1:3", "0xbb:0x2:4"}
    first = got["0xaa:0x1:2"]
    # 17:30 in Kolkata (UTC+5:30) is 12:00 UTC
    assert first["ts"] == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert (first["underlying"], first["kind"], first["side"], first["is_maker"]) == (
        "ETH", "perp", "buy", True)
    assert first["notional_usd"] == 6000.0
    pepe = got["0xbb:0x2:4"]
    assert (pepe["underlying"], pepe["side"], pepe["ts"]) == (
        "KPEPE", "sell", datetime(2024, 5, 1, 12, 1, 10, tzinfo=UTC))


def test_hash_alone_rejects_the_second_fill_of_a_transaction(store, tmp_path):
    src = _write(tmp_path, "trades.csv", _example("dex-csv"))
    mapping = _write(tmp_path, "dex.yaml", _example("dex-mapping").replace(
        "{columns: [tx_hash, wallet], line: true}", "tx_hash"))
    rep = ingest(src, store, mapping=mapping, now=NOW)
    assert (rep.sources[0].stored, rep.sources[0].rejected) == (2, 1)


def test_worked_example_broker_statement(store, tmp_path):
    src = _write(tmp_path, "statement.csv", _example("broker-csv"))
    mapping = _write(tmp_path, "broker.yaml", _example("broker-mapping"))
    rep = ingest(src, store, mapping=mapping, now=NOW)
    assert (rep.sources[0].stored, rep.sources[0].rejected) == (4, 1)
    got = fills_by_id(store)
    r1 = got["R1"]
    assert (r1["kind"], r1["option_type"], r1["strike"], r1["underlying"]) == (
        "option", "call", 60000.0, "BTC")
    assert r1["expiry"] == datetime(2024, 12, 27, 8, tzinfo=UTC)
    assert r1["ts"] == datetime(2024, 11, 27, 8, 15, tzinfo=UTC)  # Berlin UTC+1 in winter
    assert got["R3"]["ts"] == datetime(2025, 3, 31, 8, 0, tzinfo=UTC)  # UTC+2 in summer
    assert (got["R2"]["kind"], got["R3"]["kind"], got["R4"]["kind"]) == ("perp",) * 3
    assert got["R4"]["underlying"] == "ETH" and got["R4"]["side"] == "sell"
    (rej,) = rejects(store)
    assert rej["field"] == "instrument" and "BTC-FS-27DEC24" in rej["reason"]
    assert "tried deribit, binance, perp_suffix" in rej["reason"]


def test_explicit_column_wins_over_a_derived_one(store, tmp_path):
    src = _write(tmp_path, "statement.csv", _example("broker-csv"))
    mapping = _write(tmp_path, "broker.yaml", _example("broker-mapping").replace(
        "  account_id: Client\n", "  account_id: Client\n  underlying: {const: XBT}\n"))
    ingest(src, store, mapping=mapping, now=NOW)
    assert {r["underlying"] for r in fills_by_id(store).values()} == {"XBT"}


@pytest.mark.parametrize("name, expected", [
    ("BTC-27DEC24-60000-C", ("option", "BTC", "call", 60000.0)),
    ("BTC-PERPETUAL", ("perp", "BTC", None, None)),
    ("BTCUSDT", ("perp", "BTC", None, None)),
    ("ETH-PERP", ("perp", "ETH", None, None)),
    ("kPEPE", ("perp", "KPEPE", None, None)),
    ("btc-usdt-swap", ("perp", "BTC", None, None)),
])
def test_builtin_patterns(name, expected):
    p = parse_patterns({"patterns": ["deribit", "binance", "perp_suffix", "hyperliquid"]}, "m")
    inst = p.parse(name)
    assert (inst.kind, inst.underlying, inst.option_type, inst.strike) == expected


def test_regex_pattern_fields():
    p = parse_patterns({"patterns": [{"regex": r"^(?P<underlying>\w+)-(?P<expiry>\d{6})-"
                                               r"(?P<strike>[\dd]+)-(?P<option_type>call|put)$",
                                      "kind": "option"}]}, "m")
    inst = p.parse("sol-250328-1d5-PUT")
    assert (inst.underlying, inst.strike, inst.option_type, inst.expiry) == (
        "SOL", 1.5, "put", datetime(2025, 3, 28, 8, tzinfo=UTC))
    assert p.parse("sol-250399-1-put") is None  # no 99th day: no match, not a crash


@pytest.mark.parametrize("doc, words", [
    ({"patterns": ["okx"]}, "patterns[0]: unknown pattern 'okx'"),
    ({"patterns": [{"regex": "(?P<coin>.*)", "kind": "perp"}]}, "unknown group(s) coin"),
    ({"patterns": [{"regex": "(?P<underlying>.*"}]}, "not a valid regular expression"),
    ({"patterns": [{"regex": "(?P<underlying>.*)"}]}, "give kind"),
    ({"patterns": [{"regex": "(?P<underlying>.*)", "kind": "swap"}]}, "'swap' is not one of"),
    ({"patterns": []}, "give a list"),
    ({"column": "x", "patterns": ["deribit"], "extra": 1}, "unknown key(s) extra"),
])
def test_pattern_config_errors(doc, words):
    with pytest.raises(ConfigError) as exc:
        parse_patterns(doc, "m.yaml: instruments")
    assert words in str(exc.value)


BASE = {"fill_id": "id", "ts": "t", "account_id": "a", "instrument": "i", "underlying": "u",
        "kind": {"const": "perp"}, "side": "s", "qty": "q", "price": "p", "notional_usd": "n",
        "fee_usd": "f", "is_maker": {"const": True}}


@pytest.mark.parametrize("change, words", [
    ({"ts": {"column": "t", "tz": "Mars/Olympus"}}, "unknown time zone 'Mars/Olympus'"),
    ({"qty": {"column": "q", "tz": "UTC"}}, "only timestamp columns take a time zone"),
    ({"qty": {"columns": ["a", "b"]}}, "only text columns (ids) can use 'columns'"),
    ({"fill_id": {"columns": "a"}}, "columns: must be a list"),
    ({"fill_id": {"column": "a", "const": "b"}}, "exactly one of 'column', 'columns' or 'const'"),
    ({"fill_id": {"column": "a", "line": "yes"}}, "line: must be true or false"),
    ({"side": {"column": "s", "map": {"B": "buy", "b": "sell"}}}, "differ only by case"),
    ({"side": {"column": "s", "map": {"B": "long"}}}, "'long' is not one of buy, sell"),
])
def test_column_entry_errors(change, words):
    with pytest.raises(ConfigError) as exc:
        parse_mapping({"columns": {**BASE, **change}}, "m.yaml")
    assert words in str(exc.value)


def test_wall_clock_at_a_dst_gap_is_a_reject(store, tmp_path):
    # 2025-03-30 02:30 does not exist in Berlin (clocks jump from 02:00 to 03:00)
    src = _write(tmp_path, "t.csv", "id,t,a,i,s,q,p,n,f\n"
                                    "x1,2025-03-30 01:59:59,a,BTC-PERP,buy,1,1,1,0\n"
                                    "x2,2025-03-30 02:30:00,a,BTC-PERP,buy,1,1,1,0\n"
                                    "x3,2025-03-30T02:30:00Z,a,BTC-PERP,buy,1,1,1,0\n")
    doc = {**BASE, "ts": {"column": "t", "tz": "Europe/Berlin"}, "underlying": {"const": "BTC"}}
    import yaml
    mapping = _write(tmp_path, "m.yaml", yaml.safe_dump({"columns": doc}))
    ingest(src, store, mapping=mapping, now=NOW)
    got = fills_by_id(store)
    assert got["x1"]["ts"] == datetime(2025, 3, 30, 0, 59, 59, tzinfo=UTC)
    assert got["x3"]["ts"] == datetime(2025, 3, 30, 2, 30, tzinfo=UTC)  # has an offset: as is
    assert [(r["line"], r["field"]) for r in rejects(store)] == [(3, "ts")]


def test_canonical_enumerations_any_case(store, tmp_path):
    src = _write(tmp_path, "fills.csv",
                 "fill_id,ts,account_id,instrument,underlying,kind,side,qty,price,notional_usd,"
                 "fee_usd,is_maker\nf1,2024-03-01T10:00:00Z,a,X,BTC,PERP,BUY,1,1,1,0,true\n"
                 "f2,2024-03-01T10:00:00Z,a,X,BTC,Perp,Sell,1,1,1,0,true\n")
    ingest(src, store, now=NOW)
    assert {(r["kind"], r["side"]) for r in fills_by_id(store).values()} == {
        ("perp", "buy"), ("perp", "sell")}
