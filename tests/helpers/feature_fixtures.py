"""Hand-computed fixtures: a few fills per account and the value every feature must take.

Each expected value below is worked out by hand in the comment beside it. ``FIXTURES``
maps every catalogue feature to its checks ``(account, window, expected)``; a test fails
when a feature of the catalogue has none. All fixtures share one store and one cutoff,
AS_OF, in the middle of a UTC day, so the partial cutoff day is exercised everywhere.
"""

from __future__ import annotations

import math

import pandas as pd

AS_OF = pd.Timestamp("2024-03-10 12:00", tz="UTC")  # a Sunday, mid-day
D = AS_OF.floor("D")  # start of the cutoff's day
DAY = pd.Timedelta(days=1)
US = pd.Timedelta(microseconds=1)
SKETCH = "sketch"  # marks values that come from the quantile sketch (within its bound)

_DEFAULTS = {
    "instrument": "BTC-PERPETUAL", "underlying": "BTC", "kind": "perp", "side": "buy",
    "qty": 1.0, "price": 1000.0, "notional_usd": 1000.0, "fee_usd": 1.0, "is_maker": False,
    "leverage": 10.0, "position_effect": "open", "realized_pnl_usd": None,
    "is_liquidation": False, "option_type": None, "strike": None, "expiry": None,
    "underlying_price": None, "iv": None, "delta": None,
}
_ROWS: list[dict] = []


def _fill(account: str, ts: pd.Timestamp, **kw: object) -> None:
    row = {"fill_id": f"{account}-{len(_ROWS)}", "ts": ts, "account_id": account, **_DEFAULTS}
    row.update(kw)
    _ROWS.append(row)


def _option(account: str, ts: pd.Timestamp, right: str, side: str, delta: float,
            notional: float, tenor: pd.Timedelta, strike: float, iv: float) -> None:
    _fill(account, ts, instrument=f"BTC-OPT-{strike:g}-{right}", kind="option", side=side,
          notional_usd=notional, leverage=None, option_type=right, strike=strike,
          expiry=ts + tenor, underlying_price=100.0, iv=iv, delta=delta)


# -- activity: three fills on days D-10, D-2 and D (one hour before the cutoff)
_fill("act", D - 10 * DAY + pd.Timedelta(hours=12))  # exactly AS_OF - 10 days
_fill("act", D - 2 * DAY + pd.Timedelta(hours=3))
_fill("act", AS_OF - pd.Timedelta(hours=1))
# two fills on D-1, one on D-3
_fill("fpad", D - 1 * DAY + pd.Timedelta(hours=1))
_fill("fpad", D - 1 * DAY + pd.Timedelta(hours=2))
_fill("fpad", D - 3 * DAY + pd.Timedelta(hours=2))
# hours: two fills at 01:xx, two at 05:xx
for h, m in ((1, 0), (1, 30), (5, 0), (5, 30)):
    _fill("hours", D - 4 * DAY + pd.Timedelta(hours=h, minutes=m))
_fill("single", D - 4 * DAY)
# weekend: Saturday 2024-03-09 and Monday 2024-03-04
_fill("wkend", pd.Timestamp("2024-03-09 10:00", tz="UTC"))
_fill("wkend", pd.Timestamp("2024-03-04 10:00", tz="UTC"))
# window edges for the 7d window [D - 7 days, AS_OF)
_fill("edge", D - 7 * DAY)  # exactly at the window start: inside
_fill("edge", D - 7 * DAY - US)  # one microsecond before: outside the 7d window
_fill("edge", AS_OF - US)  # on the cutoff day, just before the cutoff: inside
_fill("edge", AS_OF)  # exactly at the cutoff: never counts
_fill("edge", AS_OF + DAY)  # after the cutoff: never counts

# -- size and mix
_fill("size", D - 2 * DAY, instrument="A", notional_usd=100.0, fee_usd=1.0)
_fill("size", D - 2 * DAY, instrument="A", notional_usd=200.0, fee_usd=2.0)
_fill("size", D - 2 * DAY, instrument="B", underlying="ETH", notional_usd=700.0, fee_usd=-0.5)
_fill("mix", D - 2 * DAY, kind="spot", leverage=None, is_maker=True)
_fill("mix", D - 2 * DAY, kind="perp")
_fill("mix", D - 2 * DAY, kind="perp", side="sell")
_fill("mix", D - 2 * DAY, kind="future")

# -- options: five fills on day D-2 at 10:00
_T = D - 2 * DAY + pd.Timedelta(hours=10)
_option("opt", _T, "call", "buy", 0.10, 1000.0, 3 * DAY, 110.0, 0.5)  # f1: tenor exactly 3 d
_option("opt", _T, "call", "sell", 0.15, 3000.0, 3 * DAY + pd.Timedelta(seconds=1), 100.0, 0.7)
_option("opt", _T, "put", "buy", -0.50, 1000.0, 10 * DAY, 90.0, 0.6)  # f3
_option("opt", _T, "put", "buy", -0.05, 500.0, 3 * DAY, 110.0, 0.4)  # f4: f1's straddle leg
_option("opt", _T, "put", "sell", -0.20, 500.0, 3 * DAY, 110.0, 0.8)  # f5: other side

# -- leverage and risk
_fill("lev", D - 2 * DAY, leverage=10.0)
_fill("lev", D - 2 * DAY, leverage=20.0)  # exactly the threshold: high
_fill("lev", D - 2 * DAY, leverage=19.999)  # just under: not high
_fill("lev", D - 2 * DAY, kind="spot", leverage=None)
_fill("nolev", D - 2 * DAY, leverage=None)
_fill("nolev", D - 2 * DAY, leverage=None)
_fill("spotonly", D - 2 * DAY, kind="spot", leverage=None)
_fill("liq", D - 2 * DAY, is_liquidation=True)
_fill("liq", D - 2 * DAY, is_liquidation=False)
_fill("liq", D - 2 * DAY, is_liquidation=False)
_fill("liq", D - 2 * DAY, is_liquidation=None)
_fill("noflag", D - 2 * DAY, is_liquidation=None)
_fill("close", D - 2 * DAY, position_effect="close")
_fill("close", D - 2 * DAY, position_effect="close")
_fill("close", D - 2 * DAY, position_effect="open")
_fill("close", D - 2 * DAY, position_effect=None)

# -- profit: daily PnL 50, -20, 10 on days D-5, D-4, D-3
_fill("pnl", D - 5 * DAY, position_effect="open", realized_pnl_usd=0.0)  # opening: PnL 0
_fill("pnl", D - 5 * DAY, position_effect="close", realized_pnl_usd=50.0)
_fill("pnl", D - 4 * DAY, position_effect="close", realized_pnl_usd=-20.0)
_fill("pnl", D - 3 * DAY, position_effect="close", realized_pnl_usd=10.0)
_fill("pnl", D - 3 * DAY, position_effect="close", realized_pnl_usd=None)
_fill("pnl", D - 3 * DAY, position_effect="close", realized_pnl_usd=0.0)  # break-even: no win

# -- market events: the market marks an event on D-1 (see EVENT_DAYS)
for k in range(3, -1, -1):  # a daily trader, D-3 .. D (06:00, before the cutoff)
    _fill("daily", D - k * DAY + pd.Timedelta(hours=6))
for _ in range(3):
    _fill("evfan", D - DAY + pd.Timedelta(hours=4))  # three fills on the event day
_fill("evfan", D - 3 * DAY + pd.Timedelta(hours=4))  # one on a calm day

EVENT_DAYS = [(D - DAY).date()]
FILLS = pd.DataFrame(_ROWS)

_ln11, _ln09 = math.log(1.1), abs(math.log(0.9))
_pnl = [50.0, -20.0, 10.0]
_pnl_mean = sum(_pnl) / 3

FIXTURES: dict[str, list[tuple[str, str, float]]] = {
    "fill_count": [("act", "7d", 2), ("act", "all", 3), ("edge", "7d", 2), ("edge", "all", 3)],
    # days D-10, D-2, D; the 7d window holds D-2 and D
    "active_days": [("act", "all", 3), ("act", "7d", 2)],
    "fills_per_active_day": [("fpad", "all", 3 / 2)],
    "recency_days": [("act", "all", 1 / 24)],  # last fill one hour before the cutoff
    "tenure_days": [("act", "all", 10.0)],  # first fill exactly 10 days before
    # span: D-10 .. D (the partial cutoff day counts) = 11 days; 7d: D-2 .. D = 3 days
    "active_day_share": [("act", "all", 3 / 11), ("act", "7d", 2 / 3), ("daily", "all", 1.0)],
    # gaps between active days: (D - (D-10)) / 2 = 5; 7d: (D - (D-2)) / 1 = 2
    "mean_gap_days": [("act", "all", 5.0), ("act", "7d", 2.0), ("single", "all", math.nan)],
    # counts 2, 2: (ln 4 - (2 ln 2 + 2 ln 2) / 4) / ln 24 = ln 2 / ln 24
    "hour_entropy": [("hours", "all", math.log(2) / math.log(24)), ("single", "all", 0.0)],
    "weekend_share": [("wkend", "all", 0.5)],
    "notional_total": [("size", "all", 1000.0)],
    "notional_mean": [("size", "all", 1000.0 / 3)],
    # order statistic at rank floor(0.5 * 2) = 1: 200 (exact interpolated median: 200 too)
    "notional_median": [("size", "all", 200.0)],
    # sketch: rank floor(0.95 * 2) = 1 -> 200; exact interpolated: 200 + 0.9 * 500 = 650
    "notional_p95": [("size", "all", 200.0)],
    "notional_max": [("size", "all", 700.0)],
    "top_instrument_share": [("size", "all", 0.7)],  # A: 300, B: 700 of 1000
    "underlying_count": [("size", "all", 2)],
    "spot_share": [("mix", "all", 0.25)],
    "perp_share": [("mix", "all", 0.5)],
    "future_share": [("mix", "all", 0.25)],
    "option_share": [("mix", "all", 0.0), ("opt", "all", 1.0)],
    "instrument_breadth": [("size", "all", 2)],
    "call_share": [("opt", "all", 2 / 5), ("mix", "all", math.nan)],
    "long_premium_share": [("opt", "all", 2500 / 6000)],  # f1 + f3 + f4 bought of 6000
    "mean_abs_delta": [("opt", "all", (0.10 + 0.15 + 0.50 + 0.05 + 0.20) / 5)],
    "deep_otm_share": [("opt", "all", 2 / 5)],  # f1 (0.10) and f4 (0.05); f2 at 0.15 is not
    "mean_days_to_expiry": [("opt", "all", (3 + 3 + 1 / 86400 + 10 + 3 + 3) / 5)],
    "short_dated_share": [("opt", "all", 3 / 5)],  # f1, f4, f5 at exactly 3 days; f2 is 3 d 1 s
    "mean_abs_log_moneyness": [("opt", "all", (3 * _ln11 + 0 + _ln09) / 5)],
    "mean_iv": [("opt", "all", (0.5 + 0.7 + 0.6 + 0.4 + 0.8) / 5)],
    "straddle_share": [("opt", "all", 2 / 5)],  # f1 + f4 (same day/expiry/strike/side)
    "put_buy_share": [("opt", "all", 2 / 5)],  # f3, f4
    "leverage_mean": [("lev", "all", (10 + 20 + 19.999) / 3), ("nolev", "all", math.nan),
                      ("spotonly", "all", math.nan)],
    "leverage_max": [("lev", "all", 20.0), ("nolev", "all", math.nan)],
    "high_leverage_share": [("lev", "all", 1 / 3), ("nolev", "all", math.nan)],
    "leverage_known_share": [("lev", "all", 1.0), ("nolev", "all", 0.0),
                             ("spotonly", "all", math.nan)],
    "liquidation_count": [("liq", "all", 1), ("noflag", "all", math.nan)],
    "liquidation_share": [("liq", "all", 1 / 3), ("noflag", "all", math.nan)],
    "liquidation_known_share": [("liq", "all", 3 / 4), ("noflag", "all", 0.0)],
    "close_share": [("close", "all", 2 / 3)],  # 2 closes among 3 fills with an effect
    "fees_usd": [("size", "all", 2.5)],
    "fee_bps": [("size", "all", 25.0)],  # 2.5 / 1000 * 1e4
    "realized_pnl_usd": [("pnl", "all", 40.0)],
    # closing fills with a PnL: 50, -20, 10, 0 -> 2 winners of 4 (the opening PnL 0 is not
    # a closing fill; the break-even close is one, and no win)
    "win_rate": [("pnl", "all", 2 / 4)],
    "pnl_std_usd": [("pnl", "all", math.sqrt(sum((p - _pnl_mean) ** 2 for p in _pnl) / 2)),
                    ("single", "all", 0.0)],
    "maker_share": [("mix", "all", 0.25)],
    "buy_share": [("mix", "all", 0.75)],
    # daily trader D-3..D, event on D-1: ((1 + 1) / (1 + 1)) / ((3 + 1) / (3 + 1)) = 1
    # evfan: n 4, span 4, r 1: ((3 + 1) / 2) / ((1 + 1) / (3 + 1)) = 4
    "event_activity_ratio": [("daily", "all", 1.0), ("evfan", "all", 4.0)],
    "event_notional_share": [("evfan", "all", 0.75), ("daily", "all", 0.25)],
}
EXACT_QUANTILES = {"notional_median": 200.0, "notional_p95": 650.0}
WINDOWS = ("7d", "all")
