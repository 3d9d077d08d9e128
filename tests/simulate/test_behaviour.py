"""Archetypes trade as declared, react to market events, and pay the declared fees."""

from __future__ import annotations

import numpy as np
import pytest

# Independent statement of the fee schedule (share of notional), VIP tier 0..5.
TAKER = [0.0005, 0.00045, 0.0004, 0.00035, 0.0003, 0.0003]
MAKER = [0.0002, 0.00015, 0.0001, 0.0, -0.00005, -0.0001]


@pytest.fixture(scope="module")
def by_arch(venue):
    _, con = venue
    df = con.execute(
        """
        select archetype,
               count(*) / count(distinct account_id) as fills_per_account,
               avg(is_maker::int) as maker_share,
               avg(leverage) as leverage,
               avg((kind = 'perp')::int) as perp_share,
               avg((kind = 'option')::int) as option_share,
               avg((kind = 'spot')::int) as spot_share,
               avg((kind = 'future')::int) as future_share,
               median(notional_usd) as notional_median,
               sum(is_liquidation::int) as liquidations,
               avg(case when kind = 'option' then abs(delta) end) as abs_delta,
               avg(case when kind = 'option' then (epoch(expiry) - epoch(ts)) / 86400 end) as tenor,
               avg(case when kind = 'option' then (option_type = 'call')::int end) as call_share,
               avg(case when kind = 'option' and position_effect = 'open'
                        then (side = 'buy')::int end) as option_buy_share,
               avg(case when kind = 'option' and position_effect = 'open'
                        then (side = 'buy' and option_type = 'put')::int end) as put_buy_share,
               avg(case when kind = 'spot' then (side = 'buy')::int end) as spot_buy_share,
               sum(realized_pnl_usd) - sum(fee_usd) as net_pnl
        from fills join truth using (account_id)
        group by archetype
        """
    ).df()
    return df.set_index("archetype")


def test_hf_perp_maker(by_arch):
    hf = by_arch.loc["hf_perp_maker"]
    assert hf.maker_share > 0.8
    assert hf.perp_share == 1.0
    assert hf.leverage < 4
    assert hf.fills_per_account > 3 * by_arch.drop("hf_perp_maker").fills_per_account.max()
    assert hf.notional_median < by_arch.loc["perp_scalper"].notional_median


def test_retail_leveraged_perp(by_arch):
    r = by_arch.loc["retail_leveraged_perp"]
    assert r.leverage >= 10 and r.perp_share > 0.85 and r.maker_share < 0.25
    assert r.liquidations > 50
    assert r.liquidations == by_arch.liquidations.max()
    assert r.net_pnl < 0


def test_perp_scalper(by_arch):
    s = by_arch.loc["perp_scalper"]
    assert 3 <= s.leverage <= 10 and s.perp_share == 1.0
    assert 0.2 < s.maker_share < 0.5
    assert s.fills_per_account > 3 * by_arch.loc["retail_leveraged_perp"].fills_per_account


def test_lottery_option_buyer(by_arch):
    lot = by_arch.loc["lottery_option_buyer"]
    assert lot.option_share > 0.6
    assert lot.abs_delta < 0.15 and lot.tenor < 7
    assert lot.call_share > 0.7 and lot.option_buy_share > 0.8


def test_option_premium_seller(by_arch):
    s = by_arch.loc["option_premium_seller"]
    assert s.option_buy_share < 0.2
    assert 7 <= s.tenor <= 60
    assert 0.1 < s.abs_delta < 0.35
    assert s.perp_share > 0.1  # hedges


def test_volatility_trader_trades_straddles(venue):
    _, con = venue
    paired, total = con.execute(
        """
        with o as (
            select f.*, ts::date as d from fills f join truth using (account_id)
            where archetype = 'volatility_trader' and kind = 'option' and position_effect = 'open'
        )
        select count(*) filter (where exists (
                   select 1 from o o2 where o2.account_id = o.account_id and o2.d = o.d
                   and o2.expiry = o.expiry and o2.strike = o.strike and o2.side = o.side
                   and o2.option_type <> o.option_type)),
               count(*)
        from o
        """
    ).fetchone()
    assert paired / total > 0.6
    absd = con.execute(
        "select avg(abs(delta)) from fills join truth using (account_id) "
        "where archetype = 'volatility_trader' and kind = 'option'"
    ).fetchone()[0]
    assert 0.35 < absd < 0.65


def test_hedger_and_spot_holder(by_arch):
    h = by_arch.loc["hedger"]
    assert h.put_buy_share > 0.8 and h.tenor > 25
    assert h.spot_share > 0.2 and h.spot_buy_share > 0.9
    sh = by_arch.loc["spot_holder"]
    assert sh.spot_share == 1.0 and sh.spot_buy_share > 0.9
    assert sh.fills_per_account < 0.2 * by_arch.loc["retail_leveraged_perp"].fills_per_account


def test_whale_basis_trades(by_arch):
    w = by_arch.loc["whale"]
    assert w.notional_median > 20 * by_arch.drop("whale").notional_median.max()
    assert w.future_share > 0.3 and w.spot_share > 0.3


def test_every_archetype_has_accounts(venue):
    _, con = venue
    shares = dict(con.execute("select archetype, count(*) / 600 from truth group by 1").fetchall())
    assert min(shares.values()) >= 0.02
    assert shares["retail_leveraged_perp"] == max(shares.values())


def test_liquidations_are_forced_closes(venue):
    _, con = venue
    row = con.execute(
        """
        select count(*), sum((position_effect <> 'close')::int), sum(is_maker::int),
               sum((kind not in ('perp', 'future'))::int), sum((realized_pnl_usd >= 0)::int)
        from fills where is_liquidation
        """
    ).fetchone()
    assert row[0] > 0 and row[1:] == (0, 0, 0, 0)


def test_fees_follow_the_schedule(venue):
    _, con = venue
    df = con.execute(
        """
        select f.kind, f.is_maker, a.vip_tier, f.notional_usd, f.fee_usd, f.qty * f.price as premium
        from fills f join accounts a using (account_id)
        """
    ).df()
    lin = df[df.kind != "option"]
    rate = np.where(lin.is_maker, np.take(MAKER, lin.vip_tier), np.take(TAKER, lin.vip_tier))
    np.testing.assert_allclose(lin.fee_usd, rate * lin.notional_usd, atol=1e-5)
    opt = df[df.kind == "option"]
    want = np.minimum(0.0003 * opt.notional_usd, 0.125 * opt.premium)
    np.testing.assert_allclose(opt.fee_usd, want, atol=1e-5)
    rebates = df[df.fee_usd < 0]
    assert len(rebates) > 0
    assert rebates.is_maker.all() and (rebates.vip_tier >= 4).all()
    assert (rebates.kind != "option").all()


def test_crash_marked_and_reacted_to(crash_venue):
    _, con = crash_venue
    events = dict(
        con.execute(
            "select strftime(ts, '%Y-%m-%d'), event from market "
            "where underlying = 'BTC' and event is not null"
        ).fetchall()
    )
    assert events.get("2020-03-12") == "crash"
    close = con.execute(
        "select price from market where underlying = 'BTC' and strftime(ts, '%Y-%m-%d') = '2020-03-12'"
    ).fetchone()[0]
    assert close == pytest.approx(4800.0)  # the real Binance close
    liq = dict(
        con.execute(
            "select strftime(ts, '%Y-%m-%d'), count(*) from fills where is_liquidation group by 1"
        ).fetchall()
    )
    assert liq["2020-03-12"] > 3 * np.median(list(liq.values()))
    ratio = con.execute(
        """
        with ev as (
            select ts::date as d,
                   event is not null or lag(event) over (order by ts) is not null as e
            from market where underlying = 'BTC'
        ),
        c as (
            select archetype, ts::date as d, count(*) as n
            from fills join truth using (account_id)
            where position_effect = 'open' group by all
        )
        select archetype, avg(n) filter (where e) / avg(n) filter (where not e)
        from c join ev using (d) group by 1
        """
    ).fetchall()
    ratio = dict(ratio)
    assert ratio["hedger"] > 1.5 and ratio["volatility_trader"] > 1.5
    assert ratio["hedger"] > ratio["whale"]
