"""Venue adapters on sample rows written from each venue's documented format."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import pytest
from scipy.stats import norm

from traderseg.errors import ConfigError
from traderseg.ingest import ingest

from .conftest import DATA, NOW, balanced, fills_by_id, rejects


def _trades(name: str) -> list[dict]:
    doc = json.loads((DATA / name).read_text())
    return doc["result"]["trades"] if isinstance(doc, dict) else doc


def _black_delta(f, k, t, vol, call):
    d1 = (math.log(f / k) + 0.5 * vol * vol * t) / (vol * math.sqrt(t))
    return norm.cdf(d1) if call else norm.cdf(d1) - 1.0


def test_deribit_units_and_delta(store):
    rep = ingest(DATA / "deribit_trades.json", store, format="deribit", account_id="d1", now=NOW)
    assert balanced(rep)
    src = {t["trade_id"]: t for t in _trades("deribit_trades.json")}
    got = fills_by_id(store)
    assert len(got) == rep.sources[0].stored == len(src)

    opt = got["deribit:d1:ETH-2696097"]
    t = src["ETH-2696097"]
    assert (opt["kind"], opt["option_type"], opt["strike"]) == ("option", "call", 130.0)
    assert opt["expiry"] == datetime(2020, 5, 29, 8, tzinfo=UTC)
    assert opt["ts"] == datetime.fromtimestamp(t["timestamp"] / 1000, UTC)
    assert opt["price"] == t["price"]  # premium stays in ETH
    assert opt["notional_usd"] == pytest.approx(t["amount"] * t["index_price"])
    assert opt["fee_usd"] == pytest.approx(t["fee"] * t["index_price"])
    assert opt["iv"] == pytest.approx(t["iv"] / 100)
    assert opt["underlying_price"] == t["underlying_price"]
    years = (opt["expiry"] - opt["ts"]).total_seconds() / (365 * 86400)
    assert opt["delta"] == pytest.approx(
        _black_delta(t["underlying_price"], 130.0, years, t["iv"] / 100, True), rel=1e-9)
    assert opt["is_maker"] is True and opt["side"] == "buy"

    put = got["deribit:d1:XRP_USDC-42"]
    t = src["XRP_USDC-42"]
    assert (put["underlying"], put["option_type"], put["strike"]) == ("XRP", "put", 0.625)
    years = (put["expiry"] - put["ts"]).total_seconds() / (365 * 86400)
    want = _black_delta(t["underlying_price"], 0.625, years, 0.70, False)
    assert -1 < want < 0 and put["delta"] == pytest.approx(want, rel=1e-9)
    assert put["fee_usd"] == pytest.approx(0.3)  # USDC fee

    perp = got["deribit:d1:BTC-1001"]
    t = src["BTC-1001"]
    assert perp["notional_usd"] == t["amount"]  # inverse: amount is USD
    assert perp["fee_usd"] == pytest.approx(t["fee"] * t["index_price"])
    assert perp["realized_pnl_usd"] == pytest.approx(t["profit_loss"] * t["index_price"])
    assert perp["is_liquidation"] is True  # liquidation "T" and this fill was the taker
    assert perp["strike"] is None and perp["delta"] is None

    fut = got["deribit:d1:ETH-88001"]
    assert fut["kind"] == "future" and fut["expiry"] == datetime(2025, 3, 28, 8, tzinfo=UTC)
    assert fut["fee_usd"] < 0  # maker rebate stays negative
    assert fut["is_liquidation"] is False  # the taker side was liquidated, not this maker

    lin = got["deribit:d1:SOL_USDC-5501"]
    assert lin["notional_usd"] == pytest.approx(10 * 180.0)  # linear: amount in SOL
    spot = got["deribit:d1:BTC_USDC-301"]
    assert (spot["kind"], spot["notional_usd"]) == ("spot", pytest.approx(0.01 * 64000.0))


def test_deribit_bad_rows(store):
    rep = ingest(DATA / "deribit_bad.jsonl", store, format="deribit", account_id="d1", now=NOW)
    s = rep.sources[0]
    assert (s.read, s.stored, s.rejected, s.already_present) == (5, 1, 4, 0)
    by_line = {r["line"]: r for r in rejects(store)}
    assert by_line[2]["field"] == "instrument" and "BTC-FS-27DEC24_PERP" in by_line[2]["reason"]
    assert by_line[3]["field"] == "fee_usd" and "DOGE" in by_line[3]["reason"]
    assert by_line[4]["field"] == "is_maker"
    assert by_line[5]["field"] == "*" and "truncated" in by_line[5]["reason"]
    assert json.loads(by_line[2]["raw"])["trade_id"] == "BTC-2002"


def test_deribit_needs_account(store):
    with pytest.raises(ConfigError, match="account-id"):
        ingest(DATA / "deribit_trades.json", store, format="deribit", now=NOW)
    assert store.execute("SELECT count(*) FROM fills").fetchone()[0] == 0


def test_binance(store):
    rep = ingest(DATA / "binance_usertrades.json", store, format="binance", account_id="b1",
                 now=NOW)
    s = rep.sources[0]
    assert (s.read, s.stored, s.rejected) == (4, 3, 1)
    [rej] = rejects(store)
    assert rej["line"] == 4 and "BNB" in rej["reason"]
    src = {str(t["id"]): t for t in _trades("binance_usertrades.json")}
    got = fills_by_id(store)
    one_way = got["binance:b1:BTCUSDT:698759"]
    t = src["698759"]
    assert (one_way["kind"], one_way["side"], one_way["is_maker"]) == ("perp", "sell", True)
    assert one_way["position_effect"] is None  # one-way mode: unknown
    assert one_way["qty"] == float(t["qty"]) and one_way["notional_usd"] == float(t["quoteQty"])
    assert one_way["fee_usd"] == float(t["commission"])
    assert one_way["realized_pnl_usd"] == float(t["realizedPnl"])
    assert got["binance:b1:ETHUSDT:1200301"]["position_effect"] == "close"  # LONG + SELL
    fut = got["binance:b1:BTCUSDT_250328:4411"]
    assert fut["kind"] == "future" and fut["position_effect"] == "close"  # SHORT + BUY
    assert fut["expiry"] == datetime(2025, 3, 28, 8, tzinfo=UTC)


def test_binance_fee_in_bnb_with_price(store):
    ingest(DATA / "binance_usertrades.json", store, format="binance", account_id="b1",
           asset_prices={"BNB": 600.0}, now=NOW)
    got = fills_by_id(store)["binance:b1:BTCUSDT:698760"]
    assert got["fee_usd"] == pytest.approx(0.001 * 600.0)
    assert got["position_effect"] == "open"  # LONG + BUY


def test_hyperliquid(store):
    me = "0x1111111111111111111111111111111111111111"
    rep = ingest(DATA / "hyperliquid_fills.json", store, format="hyperliquid", account_id=me,
                 now=NOW)
    assert rep.sources[0].stored == 6 and balanced(rep)
    got = {r["instrument"] + ":" + r["fill_id"].rsplit(":", 1)[1]: r for r in
           fills_by_id(store).values()}
    btc = got["BTC:118906512037719"]
    assert (btc["kind"], btc["side"], btc["is_maker"], btc["position_effect"]) == (
        "perp", "buy", True, "open")
    assert btc["notional_usd"] == pytest.approx(0.1 * 60000.0)
    assert btc["fee_usd"] == pytest.approx(0.6)  # builder fee not added
    eth = got["ETH:118906512037720"]
    assert (eth["side"], eth["is_maker"], eth["position_effect"]) == ("sell", False, "close")
    assert eth["realized_pnl_usd"] == pytest.approx(25.5)
    purr = got["PURR/USDC:118906512037721"]
    assert (purr["kind"], purr["underlying"]) == ("spot", "PURR")
    assert purr["fee_usd"] == pytest.approx(0.35 * 0.2)  # fee paid in PURR
    assert got["@107:118906512037722"]["kind"] == "spot"
    assert got["SOL:118906512037723"]["is_liquidation"] is True  # we were liquidated
    assert got["SOL:118906512037724"]["is_liquidation"] is False  # we were the liquidator
