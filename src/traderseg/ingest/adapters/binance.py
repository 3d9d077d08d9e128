"""Binance USDⓈ-M futures trade history: ``GET /fapi/v1/userTrades`` items.

Fields used: ``symbol``, ``id``, ``side`` (BUY/SELL), ``positionSide`` (BOTH/LONG/SHORT),
``price``, ``qty`` (base asset), ``quoteQty`` (quote asset), ``commission``,
``commissionAsset``, ``realizedPnl`` (quote asset), ``maker``, ``time`` (ms).

* ``BTCUSDT`` is a perpetual, ``BTCUSDT_250328`` a delivery future expiring at 08:00 UTC.
* USDT, USDC, BUSD and FDUSD amounts count one US dollar each (``notional_usd`` is
  ``quoteQty``, or ``qty * price`` when absent).
* Commission in the base asset is valued at the fill price; in another asset (BNB) at the
  price given with ``--asset-price BNB=...``, else the row is rejected with that reason.
* ``position_effect`` is only known in hedge mode: LONG+BUY and SHORT+SELL open, LONG+SELL
  and SHORT+BUY close. In one-way mode (``BOTH``) it is left null.
* ``fill_id`` is ``binance:<account>:<symbol>:<id>`` (trade ids are unique per symbol).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from traderseg.ingest.adapters.base import (
    Adapter,
    Context,
    account_ids,
    build,
    column,
    fee_usd,
    prefixed_ids,
    read_as,
    strings,
    to_numpy,
    unconvertible,
    usd_rate,
)
from traderseg.ingest.coerce import as_string
from traderseg.ingest.instruments import Instrument, parse_binance
from traderseg.ingest.validate import Problems
from traderseg.schema import FILLS, TS

F64 = pa.float64()
_EFFECT = {("LONG", "BUY"): "open", ("LONG", "SELL"): "close",
           ("SHORT", "SELL"): "open", ("SHORT", "BUY"): "close"}


class BinanceAdapter(Adapter):
    """Binance USDⓈ-M user trades to canonical fills."""

    name = "binance"
    table = FILLS
    required = ("symbol", "id", "side", "price", "qty", "commission", "commissionAsset",
                "maker", "time")
    account_columns = ("account_id", "accountId")

    def convert(self, raw: pa.Table, ctx: Context, problems: Problems) -> pa.Table:
        """Return canonical fills for a batch of Binance trades."""
        n = raw.num_rows
        sym, _ = as_string(column(raw, "symbol"))
        inst = _symbols(strings(sym), problems)
        kind = np.array([i.kind if i else None for i in inst], dtype=object)
        under = np.array([i.underlying if i else None for i in inst], dtype=object)
        qty = to_numpy(read_as(raw, "qty", F64, problems, "qty"))
        price = to_numpy(read_as(raw, "price", F64, problems, "price"))
        quote = to_numpy(read_as(raw, "quoteQty", F64, problems, "notional_usd"))
        notional = np.where(np.isnan(quote), qty * price, quote)
        commission = to_numpy(read_as(raw, "commission", F64, problems, "fee_usd"))
        asset, _ = as_string(column(raw, "commissionAsset"))
        asset_np = strings(pc.utf8_upper(asset))
        rate = usd_rate(asset_np, under, price, ctx)
        unconvertible(problems, "fee_usd", rate, np.where(commission == 0, np.nan, commission),
                      asset_np)
        side, _ = as_string(column(raw, "side"))
        side_np = strings(pc.utf8_upper(side))
        pos, _ = as_string(column(raw, "positionSide"))
        effect = [_EFFECT.get((p, s)) for p, s in zip(strings(pc.utf8_upper(pos)).tolist(),
                                                       side_np.tolist(), strict=True)]
        acct = account_ids(raw, self.account_columns, ctx)
        trade_id, _ = as_string(column(raw, "id"))
        return build(FILLS, n, {
            "fill_id": prefixed_ids("binance", acct, sym, trade_id),
            "ts": read_as(raw, "time", TS, problems, "ts", unit="ms"),
            "account_id": acct,
            "instrument": sym,
            "underlying": pa.array(under, pa.string()),
            "kind": pa.array(kind, pa.string()),
            "side": pc.utf8_lower(side),
            "qty": pa.array(qty, F64, from_pandas=True),
            "price": pa.array(price, F64, from_pandas=True),
            "notional_usd": pa.array(notional, F64, from_pandas=True),
            "fee_usd": pa.array(fee_usd(commission, rate), F64, from_pandas=True),
            "is_maker": read_as(raw, "maker", pa.bool_(), problems, "is_maker"),
            "position_effect": pa.array(effect, pa.string()),
            "realized_pnl_usd": read_as(raw, "realizedPnl", F64, problems, "realized_pnl_usd"),
            "expiry": pa.array([i.expiry if i else None for i in inst], TS),
        })


def _symbols(names: np.ndarray, problems: Problems) -> list[Instrument | None]:
    cache: dict[str, Instrument | None] = {}
    out: list[Instrument | None] = []
    for name in names.tolist():
        if name is not None and name not in cache:
            cache[name] = parse_binance(name)
        out.append(cache.get(name) if name is not None else None)
    unknown = np.array([n is not None and i is None for n, i in zip(names.tolist(), out,
                                                                    strict=True)])
    if unknown.any():
        problems.add(unknown, "instrument", np.array(
            [f"unknown instrument {n!r} (not a USDⓈ-M symbol)" for n in names.tolist()],
            dtype=object))
    return out


