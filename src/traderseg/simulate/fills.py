"""Turn trips and their exits into canonical fill rows (an Arrow table).

Units: ``qty`` is in coins of the underlying for every kind (one option contract is one
coin); ``price`` is USD per coin (spot, perps, futures) or USD premium per contract
(options); ``notional_usd`` is ``qty * price`` for linear products and
``qty * underlying_price`` for options. ``underlying_price`` is the index at fill time
and is filled for every kind. ``fill_id`` is ``{seed}-{account number}-{n}`` where ``n``
counts the account's fills in time order.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from traderseg.schema import FILLS
from traderseg.simulate.calendar import future_name, option_name
from traderseg.simulate.exits import Exits
from traderseg.simulate.fees import fee_usd
from traderseg.simulate.market import UNDERLYINGS
from traderseg.simulate.trips import FUTURE, OPTION, PERP, SPOT, Trips

_KINDS = pa.array(["spot", "perp", "future", "option"])
_SIDES = pa.array(["sell", "buy"])
_EFFECTS = pa.array(["open", "close"])
_TYPES = pa.array(["put", "call"])


def account_ids(numbers: np.ndarray) -> pa.Array:
    """Account ids ``acct-0000042`` for global account numbers."""
    digits = pc.utf8_lpad(pa.array(numbers, pa.int64()).cast(pa.string()), 7, "0")
    return pc.binary_join_element_wise("acct", digits, "-")


def _instrument_names(
    und: np.ndarray, kind: np.ndarray, expiry: np.ndarray, strike: np.ndarray, is_call: np.ndarray
) -> pa.Array:
    exp_day = np.where(kind >= FUTURE, expiry // 86_400_000_000, 0)
    k10 = np.where(kind == OPTION, np.round(np.nan_to_num(strike) * 10), 0).astype(np.int64)
    call = (is_call & (kind == OPTION)).astype(np.int64)
    key = (((exp_day * (1 << 31) + k10) * 2 + call) * 4 + kind) * 2 + und
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    names = []
    for i in first.tolist():
        u = UNDERLYINGS[und[i]]
        if kind[i] == SPOT:
            names.append(f"{u}-USDT")
        elif kind[i] == PERP:
            names.append(f"{u}-PERPETUAL")
        elif kind[i] == FUTURE:
            names.append(future_name(u, int(expiry[i])))
        else:
            names.append(option_name(u, int(expiry[i]), float(strike[i]), bool(is_call[i])))
    return pa.array(names, pa.string()).take(pa.array(inverse.ravel()))


def build_fills(
    seed: int, first_account: int, trips: Trips, ex: Exits, vip: np.ndarray
) -> pa.Table:
    """Fill table of a block: every opening fill, then every closing fill, in time order.

    Parameters
    ----------
    seed : int
        Simulation seed (prefix of ``fill_id``).
    first_account : int
        Global number of the block's first account.
    trips : Trips
        The block's trips after churn.
    ex : Exits
        Their exits.
    vip : numpy.ndarray
        Fee tier per account of the block.

    Returns
    -------
    pyarrow.Table
        Conforming to ``FILLS.arrow_schema()``.
    """
    c = trips.cols
    cl = ex.closed
    both = np.concatenate

    def pair(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return both([a, b[cl]])

    acc = pair(c["acc"], c["acc"])
    kind = pair(c["kind"], c["kind"])
    und = pair(c["und"], c["und"])
    ts = pair(c["t"], ex.t)
    direction = both([c["dir"], -c["dir"][cl]])
    qty = pair(c["qty"], c["qty"])
    price = pair(c["price"], ex.price)
    s = pair(c["s"], ex.s)
    maker = pair(c["maker"], ex.maker)
    is_close = both([np.zeros(len(trips), dtype=bool), np.ones(int(cl.sum()), dtype=bool)])
    opt = kind == OPTION
    notional = qty * np.where(opt, s, price)
    fee = fee_usd(opt, maker, vip[acc], notional, qty * price)
    order = np.lexsort((is_close, ts, acc))
    acc, kind, und, ts, direction = acc[order], kind[order], und[order], ts[order], direction[order]
    qty, price, s, maker, is_close = (
        qty[order],
        price[order],
        s[order],
        maker[order],
        is_close[order],
    )
    notional, fee, opt = notional[order], fee[order], opt[order]
    lev = pair(c["lev"], c["lev"])[order]
    pnl = both([np.zeros(len(trips)), ex.pnl[cl]])[order]
    liq = both([np.zeros(len(trips), dtype=bool), ex.liquidated[cl]])[order]
    is_call = pair(c["is_call"], c["is_call"])[order]
    strike = pair(c["strike"], c["strike"])[order]
    expiry = pair(c["expiry"], c["expiry"])[order]
    iv = pair(c["iv"], ex.iv)[order]
    delta = pair(c["delta"], ex.delta)[order]
    seq = np.arange(len(acc)) - np.searchsorted(acc, acc)
    gacc = first_account + acc
    fill_id = pc.binary_join_element_wise(
        str(seed), pa.array(gacc).cast(pa.string()), pa.array(seq).cast(pa.string()), "-"
    )
    has_exp = (kind == OPTION) | (kind == FUTURE)
    lin_lev = np.isfinite(lev)
    tstype = pa.timestamp("us", tz="UTC")
    cols = {
        "fill_id": fill_id,
        "ts": pa.array(ts, tstype),
        "account_id": account_ids(gacc),
        "instrument": _instrument_names(und, kind, expiry, strike, is_call),
        "underlying": pa.array(UNDERLYINGS).take(pa.array(und)),
        "kind": _KINDS.take(pa.array(kind)),
        "side": _SIDES.take(pa.array((direction > 0).astype(np.int64))),
        "qty": pa.array(qty),
        "price": pa.array(price),
        "notional_usd": pa.array(notional),
        "fee_usd": pa.array(fee),
        "is_maker": pa.array(maker),
        "leverage": pa.array(lev, mask=~lin_lev),
        "position_effect": _EFFECTS.take(pa.array(is_close.astype(np.int64))),
        "realized_pnl_usd": pa.array(pnl, mask=~is_close),
        "is_liquidation": pa.array(liq),
        "option_type": _TYPES.take(pa.array(is_call.astype(np.int64), mask=~opt)),
        "strike": pa.array(strike, mask=~opt),
        "expiry": pa.array(expiry, tstype, mask=~has_exp),
        "underlying_price": pa.array(s),
        "iv": pa.array(iv, mask=~opt),
        "delta": pa.array(delta, mask=~opt),
    }
    return pa.table(cols, schema=FILLS.arrow_schema())
