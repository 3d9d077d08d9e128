"""Instrument names of the venues, parsed into underlying, kind, expiry, strike and right.

Deribit names (see its API documentation, "Instrument naming"):

============================  ========  ===================================================
name                          kind      notes
============================  ========  ===================================================
``BTC-PERPETUAL``             perp      inverse: amount in USD, settled in BTC
``BTC_USDC-PERPETUAL``        perp      linear: amount in BTC, settled in USDC
``ETH-28MAR25``               future    inverse; expires 08:00 UTC on the date
``BTC-27DEC24-60000-C``       option    coin-settled; price in BTC; strike in USD
``XRP_USDC-30AUG24-0d625-P``  option    linear (USDC); ``d`` is the decimal point
``BTC_USDC``                  spot      base_quote
============================  ========  ===================================================

Binance USDⓈ-M symbols: ``BTCUSDT`` (perpetual), ``BTCUSDT_250328`` (quarterly delivery,
expires 08:00 UTC on 2025-03-28).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

STABLE_QUOTES = ("USDT", "USDC", "BUSD", "FDUSD", "USD")
EXPIRY_HOUR_UTC = 8

_MONTHS = {m: i for i, m in enumerate(
    ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), 1)}
_ASSET = r"[A-Z0-9]+"
_DERIBIT = re.compile(
    rf"^(?P<base>{_ASSET})(?:_(?P<quote>{_ASSET}))?"
    r"(?:-(?:(?P<perp>PERPETUAL)|(?P<day>\d{1,2})(?P<mon>[A-Z]{3})(?P<yy>\d{2})"
    r"(?:-(?P<strike>\d+(?:D\d+)?)-(?P<right>[CP]))?))?$"
)
_BINANCE = re.compile(
    rf"^(?P<base>{_ASSET}?)(?P<quote>{'|'.join(STABLE_QUOTES)})(?:_(?P<date>\d{{6}}))?$"
)


@dataclass(frozen=True)
class Instrument:
    """A parsed instrument.

    Attributes
    ----------
    name : str
        Venue instrument name as written.
    underlying : str
        Underlying asset, upper case.
    kind : str
        ``spot``, ``perp``, ``future`` or ``option``.
    settlement : str
        Currency the instrument settles (and usually pays fees and PnL) in.
    inverse : bool
        True when the size is in USD and settlement is in the coin (Deribit BTC/ETH
        perpetuals and futures).
    expiry : datetime or None
        Expiry of futures and options, UTC.
    strike : float or None
        Option strike in the quote currency (USD).
    option_type : str or None
        ``call`` or ``put`` for options.
    """

    name: str
    underlying: str
    kind: str
    settlement: str
    inverse: bool = False
    expiry: datetime | None = None
    strike: float | None = None
    option_type: str | None = None


def _expiry(day: int, mon: str, yy: int) -> datetime | None:
    month = _MONTHS.get(mon)
    if month is None:
        return None
    try:
        return datetime(2000 + yy, month, day, EXPIRY_HOUR_UTC, tzinfo=UTC)
    except ValueError:
        return None


def parse_deribit(name: str) -> Instrument | None:
    """Parse a Deribit instrument name; ``None`` when it is not one.

    Examples
    --------
    >>> parse_deribit("BTC-27DEC24-60000-C").strike
    60000.0
    >>> parse_deribit("ETH-PERPETUAL").inverse
    True
    >>> parse_deribit("BTC-FS-27DEC24_PERP") is None
    True
    """
    m = _DERIBIT.match(name.strip().upper())
    if m is None:
        return None
    base, quote = m["base"], m["quote"]
    settlement = quote or base
    linear = quote is not None
    if m["perp"]:
        return Instrument(name, base, "perp", settlement, inverse=not linear)
    if m["day"] is None:
        return Instrument(name, base, "spot", quote, inverse=False) if linear else None
    expiry = _expiry(int(m["day"]), m["mon"], int(m["yy"]))
    if expiry is None:
        return None
    if m["strike"] is None:
        return Instrument(name, base, "future", settlement, inverse=not linear, expiry=expiry)
    strike = float(m["strike"].replace("D", "."))
    right = "call" if m["right"] == "C" else "put"
    return Instrument(name, base, "option", settlement, inverse=False, expiry=expiry,
                      strike=strike, option_type=right)


def parse_binance(symbol: str) -> Instrument | None:
    """Parse a Binance USDⓈ-M futures symbol; ``None`` when it is not one.

    Examples
    --------
    >>> parse_binance("BTCUSDT_250328").kind
    'future'
    >>> parse_binance("1000PEPEUSDT").underlying
    '1000PEPE'
    """
    m = _BINANCE.match(symbol.strip().upper())
    if m is None or not m["base"]:
        return None
    if m["date"] is None:
        return Instrument(symbol, m["base"], "perp", m["quote"])
    d = m["date"]
    try:
        expiry = datetime(2000 + int(d[:2]), int(d[2:4]), int(d[4:]), EXPIRY_HOUR_UTC, tzinfo=UTC)
    except ValueError:
        return None
    return Instrument(symbol, m["base"], "future", m["quote"], expiry=expiry)
