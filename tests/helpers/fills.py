"""Random canonical fills for feature tests (small, seeded, covering every column)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def random_fills(n: int = 3000, accounts: int = 40, seed: int = 0,
                 start: str = "2024-01-01", days: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp(start, tz="UTC")
    ts = t0 + pd.to_timedelta(rng.uniform(0, days * 86400, n).round(6), unit="s")
    kind = rng.choice(["spot", "perp", "future", "option"], n, p=[0.2, 0.4, 0.1, 0.3])
    acct = rng.integers(0, accounts, n)
    # a few accounts never trade options, one trades only options
    kind = np.where(acct < 5, np.where(kind == "option", "perp", kind), kind)
    kind = np.where(acct == 5, "option", kind)
    is_opt = kind == "option"
    und = rng.choice(["BTC", "ETH"], n)
    spot = np.where(und == "BTC", 40000.0, 2500.0) * np.exp(rng.normal(0, 0.05, n))
    opt_type = np.where(rng.random(n) < 0.5, "call", "put")
    strike = np.round(spot * np.exp(rng.normal(0, 0.2, n)), -2)
    # a few deterministic straddle legs: same day/expiry/strike/side for calls and puts
    expiry = (ts.floor("D") + pd.to_timedelta(rng.choice([1, 2, 7, 30, 90], n), unit="D")
              + pd.Timedelta(hours=8))
    delta = np.where(opt_type == "call", rng.uniform(0.01, 0.99, n), -rng.uniform(0.01, 0.99, n))
    side = rng.choice(["buy", "sell"], n)
    qty = rng.lognormal(0, 1, n)
    lev = np.where(np.isin(kind, ["perp", "future"]), rng.choice([1, 2, 5, 10, 25, 50], n), np.nan)
    lev = np.where(rng.random(n) < 0.1, np.nan, lev)
    close = rng.random(n) < 0.4
    pnl = np.where(close, rng.normal(0, 100, n), np.nan)
    df = pd.DataFrame({
        "fill_id": [f"f{i}" for i in range(n)],
        "ts": ts,
        "account_id": [f"acct{a:03d}" for a in acct],
        "instrument": [f"{u}-{k}" if k != "option" else f"{u}-{e:%d%b%y}-{int(s)}-{o[0].upper()}"
                       for u, k, e, s, o in zip(und, kind, expiry, strike, opt_type)],
        "underlying": und,
        "kind": kind,
        "side": side,
        "qty": qty,
        "price": spot,
        "notional_usd": qty * spot,
        "fee_usd": qty * spot * rng.choice([-0.0001, 0.0002, 0.0005], n),
        "is_maker": rng.random(n) < 0.4,
        "leverage": lev,
        "position_effect": np.where(close, "close", "open"),
        "realized_pnl_usd": pnl,
        "is_liquidation": rng.random(n) < 0.03,
        "option_type": np.where(is_opt, opt_type, None),
        "strike": np.where(is_opt, strike, np.nan),
        "expiry": expiry.where(is_opt | (kind == "future")),
        "underlying_price": np.where(is_opt, spot, np.nan),
        "iv": np.where(is_opt, rng.uniform(0.3, 1.2, n), np.nan),
        "delta": np.where(is_opt, delta, np.nan),
    })
    # unknown is not zero: one account's source carries no leverage, another's no
    # liquidation flag, some fills no open/close effect; venues put PnL 0 on opening fills
    df.loc[df["account_id"] == "acct007", "leverage"] = np.nan
    df["is_liquidation"] = df["is_liquidation"].astype(object)
    df.loc[df["account_id"] == "acct006", "is_liquidation"] = None
    df.loc[rng.random(len(df)) < 0.05, "position_effect"] = None
    opening = (df["position_effect"] == "open") & (rng.random(len(df)) < 0.5)
    df.loc[opening, "realized_pnl_usd"] = 0.0
    # straddles for acct005: duplicate some option fills as the opposite type
    legs = df[(df["account_id"] == "acct005")].head(30).copy()
    legs["fill_id"] = legs["fill_id"] + "x"
    legs["option_type"] = np.where(legs["option_type"] == "call", "put", "call")
    legs["delta"] = -legs["delta"]
    return pd.concat([df, legs], ignore_index=True)


def market_with_events(start: str = "2024-01-01", days: int = 150) -> pd.DataFrame:
    ts = pd.date_range(start, periods=days, freq="D", tz="UTC")
    ev = np.full(days, None, dtype=object)
    ev[[10, 11, 40, 77, 100]] = ["crash", "crash", "rally", "vol_spike", "crash"]
    return pd.DataFrame({"ts": ts, "underlying": "BTC", "price": 40000.0, "high": None,
                         "low": None, "iv_index": 60.0, "event": ev})
