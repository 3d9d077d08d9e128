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

from traderseg.ingest.adapters import base
from traderseg.ingest.adapters.base import F64, Adapter, Context, floats, read_as, strings, text
from traderseg.ingest.instruments import parse_binance
from traderseg.ingest.validate import Problems
from traderseg.schema import FILLS, TS

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
        sym = text(raw, "symbol")
        inst = base.parse_instruments(strings(sym), parse_binance, problems,
                                      " (not a USDⓈ-M symbol)")
        under = base.instrument_values(inst, "underlying")
        qty = base.to_numpy(read_as(raw, "qty", F64, problems, "qty"))
        price = base.to_numpy(read_as(raw, "price", F64, problems, "price"))
        quote = base.to_numpy(read_as(raw, "quoteQty", F64, problems, "notional_usd"))
        commission = base.to_numpy(read_as(raw, "commission", F64, problems, "fee_usd"))
        asset = strings(pc.utf8_upper(text(raw, "commissionAsset")))
        fee = base.fees_in_usd(commission, asset, under, price, ctx, problems)
        side = text(raw, "side")
        pos = strings(pc.utf8_upper(text(raw, "positionSide")))
        effect = [_EFFECT.get((p, s)) for p, s in zip(pos.tolist(),
                                                       strings(pc.utf8_upper(side)).tolist(),
                                                       strict=True)]
        acct = base.account_ids(raw, self.account_columns, ctx)
        return base.build(FILLS, raw.num_rows, {
            "fill_id": base.prefixed_ids("binance", acct, sym, text(raw, "id")),
            "ts": read_as(raw, "time", TS, problems, "ts", unit="ms"),
            "account_id": acct,
            "instrument": sym,
            "underlying": pa.array(under, pa.string()),
            "kind": pa.array(base.instrument_values(inst, "kind"), pa.string()),
            "side": pc.utf8_lower(side),
            "qty": floats(qty),
            "price": floats(price),
            "notional_usd": floats(np.where(np.isnan(quote), qty * price, quote)),
            "fee_usd": floats(fee),
            "is_maker": read_as(raw, "maker", pa.bool_(), problems, "is_maker"),
            "position_effect": pa.array(effect, pa.string()),
            "realized_pnl_usd": read_as(raw, "realizedPnl", F64, problems, "realized_pnl_usd"),
            "expiry": base.expiries(inst),
        })


