"""Profitability by hand on accounts that break naive formulas: a rebate earner, a closing
fill with zero PnL, and an account that never closed (PnL unknown, not a loss)."""

from __future__ import annotations

import pandas as pd
import pytest

from helpers.store import fills_store
from traderseg.analysis.profitability import profitability


def _fill(fid, acct, fee, pnl, effect, minute):
    return {"fill_id": fid, "ts": pd.Timestamp("2024-03-01 10:00", tz="UTC")
            + pd.Timedelta(minutes=minute), "account_id": acct, "instrument": "BTC-PERPETUAL",
            "underlying": "BTC", "kind": "perp", "side": "buy", "qty": 1.0, "price": 1000.0,
            "notional_usd": 1000.0, "fee_usd": fee, "is_maker": fee < 0,
            "position_effect": effect, "realized_pnl_usd": pnl}


@pytest.fixture
def report():
    fills = pd.DataFrame([
        _fill("r1", "rebate", -2.0, 10.0, "close", 0),   # earns a rebate, wins
        _fill("z1", "zero", 1.0, 0.0, "close", 1),       # closes flat: not a loser
        _fill("n1", "open", 2.0, None, "open", 2),       # never closes: PnL unknown
        _fill("n2", "open", 2.0, None, "open", 3),
        _fill("b1", "loser", 10.0, -20.0, "close", 4),
    ])
    asg = pd.DataFrame({"account_id": ["rebate", "zero", "open", "loser"],
                        "segment": [0, 0, 0, 1], "segment_name": ["a", "a", "a", "b"]})
    con = fills_store(fills)
    rep = profitability(con, asg)
    con.close()
    return rep


def test_segment_with_rebate_zero_pnl_and_no_close(report):
    seg = report.by_segment.set_index("segment")
    a = seg.loc[0]
    assert (a["accounts"], a["fills"]) == (3, 4)
    assert a["revenue_usd"] == pytest.approx(3.0)           # -2 + 1 + 2 + 2
    assert a["revenue_share"] == pytest.approx(3 / 13)
    assert a["revenue_per_account"] == pytest.approx(1.0)
    assert a["revenue_bps"] == pytest.approx(1e4 * 3 / 4000)
    assert a["pnl_usd"] == pytest.approx(10.0)
    assert a["losing_share"] == 0.0   # zero PnL and unknown PnL are not losses (< 0, not <=)
    # Gini of revenues clipped at 0: [0, 1, 4] -> mean abs difference 16 / (2 * 9 * 5/3)
    assert a["gini"] == pytest.approx(8 / 15)
    # the top account (4) earns more than the segment nets (3): the rebate offsets it
    assert a["top10_share"] == pytest.approx(4 / 3)


def test_single_loser_segment_and_overall(report):
    b = report.by_segment.set_index("segment").loc[1]
    assert (b["losing_share"], b["gini"], b["revenue_share"]) == (1.0, 0.0, pytest.approx(10 / 13))
    assert float(report.venue_revenue) == pytest.approx(13.0)
    assert report.overall["losing_share"] == pytest.approx(0.25)
    assert report.overall["accounts"] == 4
