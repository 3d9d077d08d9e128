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
from traderseg.ingest.coerce import as_string, present
from traderseg.ingest.greeks import SECONDS_PER_YEAR, black_delta
from traderseg.ingest.instruments import Instrument, parse_deribit
from traderseg.ingest.validate import Problems
from traderseg.schema import FILLS, TS

F64 = pa.float64()


class DeribitAdapter(Adapter):
    """Deribit user trades to canonical fills (``fill_id`` = ``deribit:<account>:<trade_id>``)."""

    name = "deribit"
    table = FILLS
    required = ("trade_id", "timestamp", "instrument_name", "direction", "amount", "price",
                "index_price", "fee", "liquidity")
    account_columns = ("account_id", "user_id")

    def convert(self, raw: pa.Table, ctx: Context, problems: Problems) -> pa.Table:
        """Return canonical fills for a batch of Deribit trades."""
        n = raw.num_rows
        names, _ = as_string(column(raw, "instrument_name"))
        inst = _instruments(strings(names), problems)
        kind = np.array([i.kind if i else None for i in inst], dtype=object)
        is_opt = kind == "option"
        ts = read_as(raw, "timestamp", TS, problems, "ts", unit="ms")
        amount = to_numpy(read_as(raw, "amount", F64, problems, "qty"))
        price = to_numpy(read_as(raw, "price", F64, problems, "price"))
        index = to_numpy(read_as(raw, "index_price", F64, problems))
        problems.add(np.isnan(index) & present(names), "index_price",
                     "missing index_price (needed to value the fill in USD)")
        under = np.array([i.underlying if i else None for i in inst], dtype=object)
        settle = np.array([i.settlement if i else None for i in inst], dtype=object)
        inverse = np.array([bool(i and i.inverse) for i in inst])
        notional = np.where(inverse, amount, np.where(is_opt, amount * index, amount * price))

        fee = to_numpy(read_as(raw, "fee", F64, problems, "fee_usd"))
        fee_cur, _ = as_string(column(raw, "fee_currency"))
        fee_cur_np = strings(pc.utf8_upper(fee_cur))
        fee_cur_np = np.where(_is_none(fee_cur_np), settle, fee_cur_np)
        fee_rate = usd_rate(fee_cur_np, under, index, ctx)
        unconvertible(problems, "fee_usd", fee_rate, np.where(fee == 0, np.nan, fee), fee_cur_np)

        pnl = to_numpy(read_as(raw, "profit_loss", F64, problems, "realized_pnl_usd"))
        pnl_rate = usd_rate(settle, under, index, ctx)

        liq, _ = as_string(column(raw, "liquidity"))
        liq_np = strings(pc.utf8_upper(liq))
        problems.add(present(liq) & ~np.isin(liq_np, ["M", "T"]), "is_maker",
                     "liquidity must be M (maker) or T (taker)")
        liquidation, _ = as_string(column(raw, "liquidation"))
        forced = np.array([bool(x and own and own in x) for x, own in
                           zip(strings(pc.utf8_upper(liquidation)), liq_np, strict=True)])

        side, _ = as_string(column(raw, "direction"))
        iv = to_numpy(read_as(raw, "iv", F64, problems, "iv")) / 100.0
        upx = to_numpy(read_as(raw, "underlying_price", F64, problems, "underlying_price"))
        upx = np.where(is_opt & ~np.isnan(upx), upx, index)
        strike = np.array([i.strike if i and i.strike else np.nan for i in inst])
        expiry = _expiries(inst)
        delta = _delta(ts, expiry, upx, strike, iv, inst, is_opt)
        acct = account_ids(raw, self.account_columns, ctx)
        trade_id, _ = as_string(column(raw, "trade_id"))
        right = np.array([i.option_type if i else None for i in inst], dtype=object)
        return build(FILLS, n, {
            "fill_id": prefixed_ids("deribit", acct, trade_id),
            "ts": ts,
            "account_id": acct,
            "instrument": names,
            "underlying": pa.array(under, pa.string()),
            "kind": pa.array(kind, pa.string()),
            "side": pc.utf8_lower(side),
            "qty": _arr(amount),
            "price": _arr(price),
            "notional_usd": _arr(notional),
            "fee_usd": _arr(fee_usd(fee, fee_rate)),
            "is_maker": pa.array(np.where(present(liq), liq_np == "M", None), pa.bool_()),
            "realized_pnl_usd": _arr(pnl * pnl_rate),
            "is_liquidation": pa.array(forced),
            "option_type": pa.array(right, pa.string()),
            "strike": _arr(np.where(is_opt, strike, np.nan)),
            "expiry": expiry,
            "underlying_price": _arr(upx),
            "iv": _arr(np.where(is_opt, iv, np.nan)),
            "delta": _arr(delta),
        })


def _is_none(values: np.ndarray) -> np.ndarray:
    """Mask of ``None`` entries of an object array."""
    return np.array([v is None for v in values.tolist()], dtype=bool)


def _arr(values: np.ndarray) -> pa.Array:
    return pa.array(values, F64, from_pandas=True)


def _instruments(names: np.ndarray, problems: Problems) -> list[Instrument | None]:
    cache: dict[str, Instrument | None] = {}
    out: list[Instrument | None] = []
    for name in names.tolist():
        if name is None:
            out.append(None)
            continue
        if name not in cache:
            cache[name] = parse_deribit(name)
        out.append(cache[name])
    unknown = np.array([n is not None and i is None for n, i in zip(names.tolist(), out,
                                                                    strict=True)])
    if unknown.any():
        reasons = np.array([f"unknown instrument {n!r}" for n in names.tolist()], dtype=object)
        problems.add(unknown, "instrument", reasons)
    return out


def _expiries(inst: list[Instrument | None]) -> pa.Array:
    return pa.array([i.expiry if i else None for i in inst], TS)


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
