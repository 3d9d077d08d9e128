from datetime import UTC, datetime

import pytest

from traderseg.ingest.instruments import parse_binance, parse_deribit

EXP = datetime(2024, 12, 27, 8, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "underlying", "kind", "settlement", "inverse", "expiry", "strike", "right"),
    [
        ("BTC-27DEC24-60000-C", "BTC", "option", "BTC", False, EXP, 60000.0, "call"),
        ("ETH-27DEC24-3500-P", "ETH", "option", "ETH", False, EXP, 3500.0, "put"),
        ("BTC-PERPETUAL", "BTC", "perp", "BTC", True, None, None, None),
        ("ETH-28MAR25", "ETH", "future", "ETH", True, datetime(2025, 3, 28, 8, tzinfo=UTC), None, None),
        ("BTC-5JAN24", "BTC", "future", "BTC", True, datetime(2024, 1, 5, 8, tzinfo=UTC), None, None),
        ("BTC_USDC-PERPETUAL", "BTC", "perp", "USDC", False, None, None, None),
        ("SOL_USDC-27DEC24", "SOL", "future", "USDC", False, EXP, None, None),
        ("XRP_USDC-27DEC24-0d625-C", "XRP", "option", "USDC", False, EXP, 0.625, "call"),
        ("BTC_USDC", "BTC", "spot", "USDC", False, None, None, None),
    ],
)
def test_deribit_names(name, underlying, kind, settlement, inverse, expiry, strike, right):
    inst = parse_deribit(name)
    assert inst is not None
    assert (inst.underlying, inst.kind, inst.settlement, inst.inverse) == (
        underlying, kind, settlement, inverse)
    assert (inst.expiry, inst.strike, inst.option_type) == (expiry, strike, right)


@pytest.mark.parametrize("name", ["BTC", "BTC-FS-27DEC24_PERP", "BTC-31FEB24", "BTC-27XYZ24",
                                  "BTC-27DEC24-60000-X", "", "btc perpetual"])
def test_deribit_unknown(name):
    assert parse_deribit(name) is None


def test_binance_symbols():
    perp = parse_binance("BTCUSDT")
    assert (perp.underlying, perp.kind, perp.expiry) == ("BTC", "perp", None)
    fut = parse_binance("ETHUSDT_250328")
    assert (fut.underlying, fut.kind, fut.expiry) == ("ETH", "future",
                                                      datetime(2025, 3, 28, 8, tzinfo=UTC))
    assert parse_binance("1000PEPEUSDC").underlying == "1000PEPE"
    assert parse_binance("BTCEUR") is None
    assert parse_binance("USDT") is None
    assert parse_binance("BTCUSDT_251399") is None
