import numpy as np
import pandas as pd
import pytest

from traderseg.analysis.events import segment_activity
from traderseg.errors import ConfigError, DataError, SchemaError
from traderseg.store import connect


def _fills(n=300, seed=7):
    rng = np.random.default_rng(seed)
    kind = rng.choice(["spot", "perp", "future", "option"], n)
    is_opt = kind == "option"
    ts = pd.Timestamp("2024-03-01", tz="UTC") + pd.to_timedelta(
        rng.integers(0, 10 * 86_400_000_000, n), unit="us"
    )
    qty = rng.uniform(0.1, 5, n)
    upx = rng.uniform(50_000, 70_000, n)
    delta = np.where(rng.random(n) < 0.5, rng.uniform(0, 1, n), rng.uniform(-1, 0, n))
    price = np.where(is_opt, rng.uniform(100, 3000, n), upx)
    f = pd.DataFrame({
        "fill_id": [f"f{i}" for i in range(n)],
        "ts": ts.astype("datetime64[us, UTC]"),
        "account_id": rng.choice([f"a{i}" for i in range(9)], n),
        "instrument": "BTC-X",
        "underlying": rng.choice(["BTC", "ETH"], n, p=[0.8, 0.2]),
        "kind": kind,
        "side": rng.choice(["buy", "sell"], n),
        "qty": qty,
        "price": price,
        "notional_usd": qty * upx,
        "fee_usd": 0.1,
        "is_maker": False,
        "delta": np.where(is_opt, delta, np.nan),
        "underlying_price": np.where(is_opt, upx, np.nan),
    })
    return f


ASSIGN = pd.DataFrame({
    "account_id": [f"a{i}" for i in range(8)] + ["nobody"],  # a8 has no segment
    "segment": ["hedgers", "hedgers", "whales", "whales", "whales", "lottery", "lottery",
                "lottery", "idle"],
})


def _expected(f, assign, freq):
    """Plain pandas: one row per (segment, bucket) that saw fills."""
    seg = f["account_id"].map(dict(zip(assign.account_id, assign.segment, strict=True)))
    sign = np.where(f["side"] == "buy", 1.0, -1.0)
    exposure = np.where(
        f["kind"] == "option", f["qty"] * f["delta"] * f["underlying_price"], f["notional_usd"]
    )
    d = pd.DataFrame({
        "segment": seg.fillna("unassigned"),
        "ts": f["ts"].dt.floor(freq),
        "account_id": f["account_id"],
        "notional_usd": f["notional_usd"],
        "buy": np.where(sign > 0, f["notional_usd"], 0.0),
        "sell": np.where(sign < 0, f["notional_usd"], 0.0),
        "net": sign * exposure,
    })
    g = d.groupby(["segment", "ts"])
    return pd.DataFrame({
        "fills": g.size(),
        "notional_usd": g["notional_usd"].sum(),
        "active_accounts": g["account_id"].nunique(),
        "buy_notional_usd": g["buy"].sum(),
        "sell_notional_usd": g["sell"].sum(),
        "net_delta_usd": g["net"].sum(),
    })


@pytest.fixture()
def store(tmp_path):
    con = connect(tmp_path / "s.duckdb")
    f = _fills()
    con.register("f_in", f)
    con.execute(f"INSERT INTO fills BY NAME SELECT {', '.join(f.columns)} FROM f_in")
    con.unregister("f_in")
    yield con, f
    con.close()


@pytest.mark.parametrize("freq", ["1D", "6h"])
def test_store_aggregation_matches_pandas(store, freq):
    con, f = store
    got = segment_activity(con, ASSIGN, freq)
    exp = _expected(f, ASSIGN, freq)
    active = got[got["fills"] > 0].set_index(["segment", "ts"])
    assert set(active.index) == set(exp.index)
    active = active.loc[exp.index]
    for col in exp.columns:
        np.testing.assert_allclose(active[col].to_numpy(float), exp[col].to_numpy(float), rtol=1e-9)
    # Every segment (including one that never traded) has every bucket, zeros where idle.
    buckets = pd.date_range(exp.index.get_level_values("ts").min(),
                            exp.index.get_level_values("ts").max(), freq=freq)
    segments = {"hedgers", "whales", "lottery", "idle", "unassigned"}
    assert set(got["segment"]) == segments
    assert len(got) == len(segments) * len(buckets)
    idle = got[got["fills"] == 0]
    assert (idle[["notional_usd", "active_accounts", "net_delta_usd"]] == 0).all().all()


def test_underlying_filter_and_frame_input_agree_with_pandas(store):
    con, f = store
    got = segment_activity(con, ASSIGN, underlying="ETH")
    exp = _expected(f[f.underlying == "ETH"], ASSIGN, "1D")
    active = got[got["fills"] > 0].set_index(["segment", "ts"]).loc[exp.index]
    np.testing.assert_allclose(active["net_delta_usd"], exp["net_delta_usd"], rtol=1e-9)
    from_frame = segment_activity(f, ASSIGN)
    pd.testing.assert_frame_equal(from_frame, segment_activity(con, ASSIGN))


def test_unassigned_fills_are_counted_or_refused(store):
    con, f = store
    got = segment_activity(con, ASSIGN)
    n_a8 = int((f.account_id == "a8").sum())
    assert got.loc[got.segment == "unassigned", "fills"].sum() == n_a8
    with pytest.raises(DataError, match=rf"{n_a8} fill\(s\).*'a8'"):
        segment_activity(con, ASSIGN, unassigned=None)


def test_bad_fills_and_assignments_are_refused():
    f = _fills(40)
    opt = f.index[f.kind == "option"][0]
    with pytest.raises(DataError, match=f"delta.*{f.loc[opt, 'fill_id']}"):
        segment_activity(f.assign(delta=np.nan), ASSIGN)
    with pytest.raises(DataError, match="side.*'f3'"):
        segment_activity(f.assign(side=np.where(f.index == 3, "long", f.side)), ASSIGN)
    with pytest.raises(DataError, match="kind"):
        segment_activity(f.assign(kind="swap"), ASSIGN)
    with pytest.raises(SchemaError, match="delta"):
        segment_activity(f.drop(columns="delta"), ASSIGN)
    with pytest.raises(DataError, match="no fills on SOL"):
        segment_activity(f, ASSIGN, underlying="SOL")
    with pytest.raises(SchemaError, match="more than one row"):
        segment_activity(f, pd.concat([ASSIGN, ASSIGN.iloc[:1]]))
    with pytest.raises(SchemaError, match="segment"):
        segment_activity(f, ASSIGN.rename(columns={"segment": "cluster"}))
    with pytest.raises(ConfigError, match="freq"):
        segment_activity(f, ASSIGN, "monthly")


def test_store_without_fills_table_is_a_clear_error():
    import duckdb

    with pytest.raises(SchemaError, match="fills"):
        segment_activity(duckdb.connect(), ASSIGN)
