"""Hyperliquid fills: items of the ``userFills`` / ``userFillsByTime`` info requests.

Fields used: ``coin``, ``px``, ``sz``, ``side`` (``B`` buy, ``A`` sell), ``time`` (ms),
``dir``, ``closedPnl``, ``crossed`` (true = taker), ``fee``, ``feeToken``, ``tid``,
``liquidation`` (object, only on liquidation fills).

* Perpetuals are named by coin (``BTC``; builder-deployed ``dex:COIN`` too); spot pairs are
  ``@<index>`` or ``BASE/QUOTE`` and become ``kind = spot``. An ``@<index>`` pair cannot be
  resolved without the spot metadata, so its underlying stays ``@<index>``.
* Prices, fees and PnL are in USDC, counted as US dollars; a spot fee paid in the base token
  is valued at the fill price. ``builderFee`` goes to the front-end builder, not the venue,
  and is not added to ``fee_usd``.
* ``position_effect``: ``Open ...`` is open, ``Close ...`` is close; flips
  (``Long > Short``) and spot ``Buy`` / ``Sell`` are left null.
* ``is_liquidation`` is true when the fill carries a ``liquidation`` object whose
  ``liquidatedUser`` is this account (or is not given); the liquidator's side of the same
  trade is not a liquidation of its own.
* ``fill_id`` is ``hyperliquid:<account>:<tid>``; the account is the wallet address from a
  ``user`` / ``account_id`` column or ``--account-id``.
"""

from __future__ import annotations

import json

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
from traderseg.ingest.validate import Problems
from traderseg.schema import FILLS, TS

F64 = pa.float64()
_SIDES = {"B": "buy", "A": "sell"}


class HyperliquidAdapter(Adapter):
    """Hyperliquid user fills to canonical fills."""

    name = "hyperliquid"
    table = FILLS
    required = ("coin", "px", "sz", "side", "time", "fee", "tid", "crossed")
    account_columns = ("account_id", "user")

    def convert(self, raw: pa.Table, ctx: Context, problems: Problems) -> pa.Table:
        """Return canonical fills for a batch of Hyperliquid fills."""
        n = raw.num_rows
        coin, _ = as_string(column(raw, "coin"))
        coin_np = strings(coin)
        kind, under = _markets(coin_np)
        qty = to_numpy(read_as(raw, "sz", F64, problems, "qty"))
        price = to_numpy(read_as(raw, "px", F64, problems, "price"))
        fee = to_numpy(read_as(raw, "fee", F64, problems, "fee_usd"))
        token, _ = as_string(column(raw, "feeToken"))
        token_np = strings(pc.utf8_upper(pc.fill_null(token, "USDC")))
        rate = usd_rate(token_np, under, price, ctx)
        unconvertible(problems, "fee_usd", rate, np.where(fee == 0, np.nan, fee), token_np)
        side, _ = as_string(column(raw, "side"))
        side_np = strings(pc.utf8_upper(side))
        problems.add(present(side) & ~np.isin(side_np, list(_SIDES)), "side",
                     "side must be B (buy) or A (sell)")
        crossed = read_as(raw, "crossed", pa.bool_(), problems, "is_maker")
        acct = account_ids(raw, self.account_columns, ctx)
        direction, _ = as_string(column(raw, "dir"))
        tid, _ = as_string(column(raw, "tid"))
        return build(FILLS, n, {
            "fill_id": prefixed_ids("hyperliquid", acct, tid),
            "ts": read_as(raw, "time", TS, problems, "ts", unit="ms"),
            "account_id": acct,
            "instrument": coin,
            "underlying": pa.array(under, pa.string()),
            "kind": pa.array(kind, pa.string()),
            "side": pa.array([_SIDES.get(s, s) for s in side_np.tolist()], pa.string()),
            "qty": pa.array(qty, F64, from_pandas=True),
            "price": pa.array(price, F64, from_pandas=True),
            "notional_usd": pa.array(qty * price, F64, from_pandas=True),
            "fee_usd": pa.array(fee_usd(fee, rate), F64, from_pandas=True),
            "is_maker": pc.invert(crossed),
            "position_effect": pa.array(_effects(strings(direction)), pa.string()),
            "realized_pnl_usd": read_as(raw, "closedPnl", F64, problems, "realized_pnl_usd"),
            "is_liquidation": pa.array(_liquidated(raw, strings(acct))),
        })


def _markets(coins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    kind = np.full(len(coins), None, dtype=object)
    under = np.full(len(coins), None, dtype=object)
    for i, c in enumerate(coins.tolist()):
        if c is None:
            continue
        if c.startswith("@"):
            kind[i], under[i] = "spot", c
        elif "/" in c:
            kind[i], under[i] = "spot", c.split("/", 1)[0].upper()
        else:
            kind[i], under[i] = "perp", c.split(":", 1)[-1].upper()
    return kind, under


def _effects(dirs: np.ndarray) -> list[str | None]:
    out: list[str | None] = []
    for d in dirs.tolist():
        low = (d or "").lower()
        out.append("open" if low.startswith("open") else "close" if low.startswith("close")
                   else None)
    return out


def _liquidated(raw: pa.Table, accounts: np.ndarray) -> np.ndarray:
    liq = strings(column(raw, "liquidation"))
    out = np.zeros(len(liq), dtype=bool)
    for i, text in enumerate(liq.tolist()):
        if not text or text == "null":
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError:
            obj = {}
        who = obj.get("liquidatedUser") if isinstance(obj, dict) else None
        me = accounts[i]
        out[i] = who is None or me is None or str(who).lower() == str(me).lower()
    return out
