"""Deribit trade history: ``private/get_user_trades_by_currency`` / ``_by_instrument`` items.

Accepted as JSON (the API response, or its ``result.trades`` list), JSON lines, or CSV /
Parquet with the API field names. Unit conversions (see ``docs/ingest.md``):

* ``amount`` is USD for inverse perpetuals and futures (``BTC-PERPETUAL``, ``ETH-28MAR25``)
  and the coin for options, linear (``_USDC``) instruments and spot. ``qty`` keeps
  ``amount`` as written; ``notional_usd`` is ``amount`` for inverse contracts,
  ``amount * price`` for linear contracts and spot, and ``amount * index_price`` (the
  underlying notional) for options.
* ``price`` stays in the instrument's quote: USD for futures, the coin for coin-settled
  options (so the USD premium is ``price * index_price * amount``).
* ``fee`` is in ``fee_currency``: USD-like coins count 1, the underlying coin is valued at
  ``index_price``. ``profit_loss`` is in the settlement currency, converted the same way.
* ``iv`` is in percent and becomes a fraction; ``delta`` is not in the trade history and is
  derived with Black's formula from ``iv``, strike, time to expiry and
  ``underlying_price`` (the forward Deribit quotes the volatility against).
* ``liquidity`` ``M`` is maker; ``liquidation`` (``M``, ``T`` or ``MT``) marks a forced
  trade, and it is this account's liquidation when it names this fill's own liquidity.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from traderseg.ingest.adapters import base
from traderseg.ingest.adapters.base import F64, Adapter, Context, floats, read_as, strings, text
from traderseg.ingest.coerce import present
from traderseg.ingest.greeks import SECONDS_PER_YEAR, black_delta
from traderseg.ingest.instruments import Instrument, parse_deribit
from traderseg.ingest.validate import Problems
from traderseg.schema import FILLS, TS


class DeribitAdapter(Adapter):
    """Deribit user trades to canonical fills (``fill_id`` = ``deribit:<account>:<trade_id>``)."""

    name = "deribit"
    table = FILLS
    required = ("trade_id", "timestamp", "instrument_name", "direction", "amount", "price",
                "index_price", "fee", "liquidity")
    account_columns = ("account_id", "user_id")

    def convert(self, raw: pa.Table, ctx: Context, problems: Problems) -> pa.Table:
        """Return canonical fills for a batch of Deribit trades."""
        names = text(raw, "instrument_name")
        inst = base.parse_instruments(strings(names), parse_deribit, problems)
        kind = base.instrument_values(inst, "kind")
        is_opt = kind == "option"
        ts = read_as(raw, "timestamp", TS, problems, "ts", unit="ms")
        amount = base.to_numpy(read_as(raw, "amount", F64, problems, "qty"))
        price = base.to_numpy(read_as(raw, "price", F64, problems, "price"))
        index = base.to_numpy(read_as(raw, "index_price", F64, problems))
        problems.add(np.isnan(index) & present(names), "index_price",
                     "missing index_price (needed to value the fill in USD)")
        under = base.instrument_values(inst, "underlying")
        settle = base.instrument_values(inst, "settlement")
        inverse = np.array([bool(i and i.inverse) for i in inst])
        notional = np.where(inverse, amount, np.where(is_opt, amount * index, amount * price))

        fee = base.to_numpy(read_as(raw, "fee", F64, problems, "fee_usd"))
        fee_cur = strings(pc.utf8_upper(text(raw, "fee_currency")))
        fee_cur = np.where(_is_none(fee_cur), settle, fee_cur)
        fee_usd = base.fees_in_usd(fee, fee_cur, under, index, ctx, problems)

        pnl = base.to_numpy(read_as(raw, "profit_loss", F64, problems, "realized_pnl_usd"))
        pnl_rate = base.usd_rate(settle, under, index, ctx)

        liq = text(raw, "liquidity")
        liq_np = strings(pc.utf8_upper(liq))
        problems.add(present(liq) & ~np.isin(liq_np, ["M", "T"]), "is_maker",
                     "liquidity must be M (maker) or T (taker)")
        forced = np.array([bool(x and own and own in x) for x, own in
                           zip(strings(pc.utf8_upper(text(raw, "liquidation"))), liq_np,
                               strict=True)])

        iv = base.to_numpy(read_as(raw, "iv", F64, problems, "iv")) / 100.0
        upx = base.to_numpy(read_as(raw, "underlying_price", F64, problems, "underlying_price"))
        upx = np.where(is_opt & ~np.isnan(upx), upx, index)
        strike = np.array([i.strike if i and i.strike else np.nan for i in inst])
        expiry = base.expiries(inst)
        delta = _delta(ts, expiry, upx, strike, iv, inst, is_opt)
        acct = base.account_ids(raw, self.account_columns, ctx)
        return base.build(FILLS, raw.num_rows, {
            "fill_id": base.prefixed_ids("deribit", acct, text(raw, "trade_id")),
            "ts": ts,
            "account_id": acct,
            "instrument": names,
            "underlying": pa.array(under, pa.string()),
            "kind": pa.array(kind, pa.string()),
            "side": pc.utf8_lower(text(raw, "direction")),
            "qty": floats(amount),
            "price": floats(price),
            "notional_usd": floats(notional),
            "fee_usd": floats(fee_usd),
            "is_maker": pa.array(np.where(present(liq), liq_np == "M", None), pa.bool_()),
            "realized_pnl_usd": floats(_times(pnl, pnl_rate)),
            "is_liquidation": pa.array(forced),
            "option_type": pa.array(base.instrument_values(inst, "option_type"), pa.string()),
            "strike": floats(np.where(is_opt, strike, np.nan)),
            "expiry": expiry,
            "underlying_price": floats(upx),
            "iv": floats(np.where(is_opt, iv, np.nan)),
            "delta": floats(delta),
        })


def _times(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise product; inf * 0 is NaN without a warning (validation rejects it)."""
    with np.errstate(invalid="ignore", over="ignore"):
        return a * b


def _is_none(values: np.ndarray) -> np.ndarray:
    """Mask of ``None`` entries of an object array."""
    return np.array([v is None for v in values.tolist()], dtype=bool)


def _delta(ts: pa.Array, expiry: pa.Array, upx: np.ndarray, strike: np.ndarray, iv: np.ndarray,
           inst: list[Instrument | None], is_opt: np.ndarray) -> np.ndarray:
    t_us = _micros(ts)
    e_us = _micros(expiry)
    years = (e_us - t_us) / 1e6 / SECONDS_PER_YEAR
    is_call = np.array([bool(i and i.option_type == "call") for i in inst])
    delta = black_delta(upx, strike, years, iv, is_call)
    return np.where(is_opt, delta, np.nan)


def _micros(arr: pa.Array) -> np.ndarray:
    ints = pc.cast(pc.cast(arr, pa.timestamp("us")), pa.int64())
    return np.asarray(pc.fill_null(pc.cast(ints, F64), np.nan).to_numpy(zero_copy_only=False),
                      dtype=float)
