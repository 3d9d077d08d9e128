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
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from traderseg.ingest.adapters import base
from traderseg.ingest.adapters.base import F64, Adapter, Context, floats, read_as, strings, text
from traderseg.ingest.coerce import present
from traderseg.ingest.validate import Problems
from traderseg.schema import FILLS, TS

_SIDES = {"B": "buy", "A": "sell"}


class HyperliquidAdapter(Adapter):
    """Hyperliquid user fills to canonical fills."""

    name = "hyperliquid"
    table = FILLS
    required = ("coin", "px", "sz", "side", "time", "fee", "tid", "crossed")
    account_columns = ("account_id", "user")

    def convert(self, raw: pa.Table, ctx: Context, problems: Problems) -> pa.Table:
        """Return canonical fills for a batch of Hyperliquid fills."""
        coin = text(raw, "coin")
        kind, under = _markets(strings(coin), problems)
        qty = base.to_numpy(read_as(raw, "sz", F64, problems, "qty"))
        price = base.to_numpy(read_as(raw, "px", F64, problems, "price"))
        fee = base.to_numpy(read_as(raw, "fee", F64, problems, "fee_usd"))
        token = strings(pc.utf8_upper(pc.fill_null(text(raw, "feeToken"), "USDC")))
        side = text(raw, "side")
        side_np = strings(pc.utf8_upper(side))
        problems.add(present(side) & ~np.isin(side_np, list(_SIDES)), "side",
                     "side must be B (buy) or A (sell)")
        crossed = read_as(raw, "crossed", pa.bool_(), problems, "is_maker")
        acct = base.account_ids(raw, self.account_columns, ctx)
        return base.build(FILLS, raw.num_rows, {
            "fill_id": base.prefixed_ids("hyperliquid", acct, text(raw, "tid")),
            "ts": read_as(raw, "time", TS, problems, "ts", unit="ms"),
            "account_id": acct,
            "instrument": coin,
            "underlying": pa.array(under, pa.string()),
            "kind": pa.array(kind, pa.string()),
            "side": pa.array([_SIDES.get(s, s) for s in side_np.tolist()], pa.string()),
            "qty": floats(qty),
            "price": floats(price),
            "notional_usd": floats(qty * price),
            "fee_usd": floats(base.fees_in_usd(fee, token, under, price, ctx, problems)),
            "is_maker": pc.invert(crossed),
            "position_effect": pa.array(_effects(strings(text(raw, "dir"))), pa.string()),
            "realized_pnl_usd": read_as(raw, "closedPnl", F64, problems, "realized_pnl_usd"),
            "is_liquidation": pa.array(_liquidated(raw, strings(acct), problems)),
        })


# Perp coins (``BTC``, ``kPEPE``, ``xyz:TSLA`` of a builder-deployed dex), spot pairs by
# index (``@107``) or by name (``PURR/USDC``).
_PERP = re.compile(r"^(?:[A-Za-z0-9]+:)?(?P<base>[A-Za-z0-9]+)$")
_SPOT_INDEX = re.compile(r"^@\d+$")
_SPOT_PAIR = re.compile(r"^(?P<base>[A-Za-z0-9]+)/[A-Za-z0-9]+$")


def _markets(coins: np.ndarray, problems: Problems) -> tuple[np.ndarray, np.ndarray]:
    kind = np.full(len(coins), None, dtype=object)
    under = np.full(len(coins), None, dtype=object)
    unknown = np.zeros(len(coins), dtype=bool)
    for i, c in enumerate(coins.tolist()):
        if c is None:
            continue
        if _SPOT_INDEX.match(c):
            kind[i], under[i] = "spot", c
        elif m := _SPOT_PAIR.match(c):
            kind[i], under[i] = "spot", m["base"].upper()
        elif m := _PERP.match(c):
            kind[i], under[i] = "perp", m["base"].upper()
        else:
            unknown[i] = True
    if unknown.any():
        problems.add(unknown, "instrument", np.array(
            [f"unknown coin {c!r} (expected BTC, dex:COIN, @INDEX or BASE/QUOTE)"
             for c in coins.tolist()], dtype=object))
    return kind, under


def _effects(dirs: np.ndarray) -> list[str | None]:
    out: list[str | None] = []
    for d in dirs.tolist():
        low = (d or "").lower()
        out.append("open" if low.startswith("open") else "close" if low.startswith("close")
                   else None)
    return out


_NOT_LIQUIDATED = {"false", "no", "n", "f", "0", "null", "none", "0.0"}
_LIQUIDATED = {"true", "yes", "y", "t", "1"}


def _liquidated(raw: pa.Table, accounts: np.ndarray, problems: Problems) -> np.ndarray:
    """Whether each fill liquidated this account.

    The API sends a ``liquidation`` object on liquidation fills only. Exports that flatten
    it to a flag are read as one: ``false`` / ``no`` / ``0`` / empty are not liquidations,
    ``true`` / ``yes`` / ``1`` are; anything else rejects the row.
    """
    liq = strings(base.column(raw, "liquidation"))
    out = np.zeros(len(liq), dtype=bool)
    bad = np.zeros(len(liq), dtype=bool)
    for i, entry in enumerate(liq.tolist()):
        flag = str(entry).strip().lower() if entry is not None else ""
        if flag in _NOT_LIQUIDATED or not flag:
            continue
        if flag in _LIQUIDATED:
            out[i] = True
            continue
        try:
            obj = json.loads(entry)
        except (json.JSONDecodeError, RecursionError):
            obj = None
        if not isinstance(obj, dict):
            bad[i] = True
            continue
        who = obj.get("liquidatedUser")
        me = accounts[i]
        out[i] = who is None or me is None or str(who).lower() == str(me).lower()
    problems.add(bad, "is_liquidation",
                 "liquidation must be an object with liquidatedUser, or true/false")
    return out
