"""Every table conforms to its canonical schema and to the data contract's rules."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from traderseg.schema import ACCOUNTS, FILLS, MARKET, TRANSFERS, TRUTH
from traderseg.simulate import ARCHETYPE_NAMES

SCHEMAS = {"accounts": ACCOUNTS, "market": MARKET, "transfers": TRANSFERS, "truth": TRUTH}


def _same_schema(got, want):
    assert got.names == want.names
    for g, w in zip(got, want, strict=True):
        assert g.type == w.type, g.name
        assert g.nullable == w.nullable, g.name


def test_files_match_arrow_schemas(venue):
    summary, _ = venue
    parts = sorted((summary.out / "fills").glob("part-*.parquet"))
    assert [p.name for p in parts] == ["part-00000.parquet", "part-00001.parquet"]
    for p in parts:
        _same_schema(pq.read_schema(p), FILLS.arrow_schema())
    for name, table in SCHEMAS.items():
        _same_schema(pq.read_schema(summary.out / f"{name}.parquet"), table.arrow_schema())


@pytest.mark.parametrize("table", [FILLS, ACCOUNTS, MARKET, TRANSFERS, TRUTH])
def test_required_columns_are_never_null(venue, table):
    _, con = venue
    for col in table.required:
        nulls = con.execute(f"select count(*) from {table.name} where {col} is null").fetchone()[0]
        assert nulls == 0, col


@pytest.mark.parametrize("table", [FILLS, MARKET, TRANSFERS])
def test_label_columns_hold_allowed_values(venue, table):
    _, con = venue
    for c in table.columns:
        if c.allowed:
            bad = con.execute(
                f"select count(*) from {table.name} where {c.name} is not null "
                f"and {c.name} not in ({', '.join(repr(a) for a in c.allowed)})"
            ).fetchone()[0]
            assert bad == 0, c.name


def test_fill_values_follow_the_contract(venue):
    summary, con = venue
    row = con.execute(
        """
        select count(*), count(distinct fill_id),
               sum((qty <= 0)::int), sum((price <= 0)::int), sum((notional_usd < 0)::int),
               sum((leverage < 1)::int),
               sum((kind in ('perp', 'future') and leverage is null)::int),
               sum((kind in ('spot', 'option') and leverage is not null)::int),
               sum((position_effect = 'open' and realized_pnl_usd is not null)::int),
               sum((position_effect = 'close' and realized_pnl_usd is null)::int),
               sum((kind = 'option' and (strike is null or iv is null or delta is null
                    or option_type is null or expiry is null))::int),
               sum((kind <> 'option' and (strike is not null or iv is not null))::int),
               sum((kind = 'future' and expiry is null)::int),
               sum((expiry is not null and expiry <= ts)::int)
        from fills
        """
    ).fetchone()
    assert row[0] == summary.fills > 10_000
    assert row[1] == row[0]
    assert row[2:] == (0,) * (len(row) - 2)


def test_fills_inside_window_and_account_life(venue):
    summary, con = venue
    lo, hi = con.execute(
        "select min(ts)::date::varchar, max(ts)::date::varchar from fills"
    ).fetchone()
    assert lo >= "2024-01-01" and hi <= "2024-01-28"
    early = con.execute(
        "select count(*) from fills f join accounts a using (account_id) where f.ts < a.created_at"
    ).fetchone()[0]
    assert early == 0
    late = con.execute(
        "select count(*) from fills f join truth t using (account_id) "
        "where t.churned_at is not null and f.ts > t.churned_at"
    ).fetchone()[0]
    assert late == 0
    orphans = con.execute(
        "select count(*) from fills where account_id not in (select account_id from accounts)"
    ).fetchone()[0]
    assert orphans == 0


def test_accounts_truth_and_transfers(venue):
    summary, con = venue
    n, ids, regions, kyc_bad, vip_bad = con.execute(
        "select count(*), count(distinct account_id), list(distinct region), "
        "sum((kyc_tier not between 0 and 3)::int), sum((vip_tier not between 0 and 5)::int) "
        "from accounts"
    ).fetchone()
    assert n == ids == summary.accounts == 600
    assert set(regions) == {"EU", "APAC", "LATAM", "NA", "MEA"}
    assert kyc_bad == vip_bad == 0
    names = {r[0] for r in con.execute("select distinct archetype from truth").fetchall()}
    assert names == set(ARCHETYPE_NAMES)
    same = con.execute(
        "select count(*) from truth t join accounts a using (account_id) "
        "where t.created_at = a.created_at and (t.churned_at is null or t.churned_at >= t.created_at)"
    ).fetchone()[0]
    assert same == 600
    tr = con.execute(
        "select count(*), count(distinct transfer_id), sum((amount_usd <= 0)::int), "
        "count(distinct account_id) filter (where direction = 'deposit') from transfers"
    ).fetchone()
    assert tr[0] == tr[1] == summary.transfers
    assert tr[2] == 0
    assert tr[3] == 600  # every account made its first deposit


def test_market_rows(venue):
    summary, con = venue
    rows = con.execute(
        "select underlying, count(*), sum((price not between low and high)::int), min(iv_index) "
        "from market group by 1 order by 1"
    ).fetchall()
    assert [(r[0], r[1], r[2]) for r in rows] == [("BTC", 28, 0), ("ETH", 28, 0)]
    assert all(r[3] > 10 for r in rows)  # percent, like DVOL
