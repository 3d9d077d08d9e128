import duckdb
import ibis
import pandas as pd
import pytest

from baselines import duckdb_sql_features, pandas_features
from helpers.fills import market_with_events, random_fills
from traderseg.errors import DataError, SchemaError
from traderseg.features.catalog import CATALOG, get_feature
from traderseg.features.compute import compute_features, feature_columns, features_expr
from traderseg.store import connect

AS_OF = "2024-04-15T12:00:00+00:00"


def _load(con, fills, market=None):
    con.register("src", fills)
    cols = ", ".join(fills.columns)
    con.execute(f"INSERT INTO fills ({cols}) SELECT {cols} FROM src")
    con.unregister("src")
    if market is not None:
        con.register("m", market)
        con.execute("INSERT INTO market (ts, underlying, price, iv_index, event) "
                    "SELECT ts, underlying, price, iv_index, event FROM m")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("store") / "fills.duckdb"
    con = connect(path)
    fills = random_fills()
    market = market_with_events()
    _load(con, fills, market)
    con.close()
    return path, fills, market


def _event_days(market):
    return set(market.loc[market["event"].notna(), "ts"].dt.date)


def test_catalogue_has_every_family_and_forty_features():
    assert len(CATALOG) >= 40
    assert {f.family for f in CATALOG} == {
        "activity", "size", "mix", "options", "risk", "profit", "execution", "events"}
    assert len({f.name for f in CATALOG}) == len(CATALOG)
    assert get_feature("option_share__30d").transform == "share"


@pytest.mark.parametrize("windows", [("all",), ("30d", "all"), ("7d",)])
def test_matches_independent_pandas_pipeline(store, windows):
    path, fills, market = store
    ours = compute_features(path, AS_OF, windows, exact_quantiles=True)
    ref = pandas_features(fills, AS_OF, windows, _event_days(market))
    assert list(ours.columns) == feature_columns(windows)
    ref = ref.reindex(index=ours.index, columns=ours.columns)
    assert ours.index.equals(ref.index)
    pd.testing.assert_frame_equal(ours, ref, check_exact=False, rtol=1e-9, atol=1e-9,
                                  check_names=False)


def test_matches_hand_written_sql(store):
    path, _, _ = store
    ours = compute_features(path, AS_OF, ("30d",), exact_quantiles=True)
    con = duckdb.connect(str(path), read_only=True)
    con.execute("SET TimeZone='UTC'")
    sql = con.sql(duckdb_sql_features(con, pd.Timestamp(AS_OF), "30d", exact=True)).df()
    sql = sql.set_index("account_id")
    sql.columns = [f"{c}__30d" for c in sql.columns]
    ours = ours[[c for c in ours.columns if c.endswith("__30d")]]
    sql = sql.reindex(index=ours.index, columns=ours.columns).astype("float64")
    idle = ours["fill_count__30d"] == 0   # SQL has no row for idle accounts
    pd.testing.assert_frame_equal(ours[~idle], sql[~idle], rtol=1e-9, atol=1e-9,
                                  check_names=False)


def test_option_features_are_missing_without_options_and_defined_with(store):
    path, fills, _ = store
    df = compute_features(path, AS_OF, ("all",))
    no_opt = df["option_share__all"] == 0
    assert no_opt.any() and (~no_opt).any()
    for f in CATALOG:
        if f.needs == "option":
            assert df.loc[no_opt, f"{f.name}__all"].isna().all(), f.name
            assert df.loc[~no_opt, f"{f.name}__all"].notna().all(), f.name
    assert df.loc["acct005", "straddle_share__all"] > 0
    assert df.loc["acct005", "option_share__all"] == 1.0


def test_as_of_never_sees_later_fills(tmp_path):
    fills = random_fills(seed=3)
    cut = pd.Timestamp(AS_OF)
    before = fills[fills["ts"] < cut]
    a = connect(tmp_path / "a.duckdb")
    _load(a, before, market_with_events())
    # the second store also holds later fills, wild values, a fill exactly at the cutoff,
    # new accounts, and later market events
    later = fills[fills["ts"] >= cut].copy()
    later["notional_usd"] *= 1000
    later["kind"] = "option"
    at_cut = before.head(5).copy()
    at_cut["fill_id"] += "c"
    at_cut["ts"] = cut
    newcomer = before.head(3).copy()
    newcomer["fill_id"] += "n"
    newcomer["account_id"] = "late_account"
    newcomer["ts"] = cut + pd.Timedelta(days=1)
    market = market_with_events(days=200)
    market.loc[120:, "event"] = "crash"
    b = connect(tmp_path / "b.duckdb")
    _load(b, pd.concat([before, later, at_cut, newcomer]), market)
    fa = compute_features(a, cut, ("7d", "30d", "all"))
    fb = compute_features(b, cut, ("7d", "30d", "all"))
    pd.testing.assert_frame_equal(fa, fb)
    assert "late_account" not in fb.index


def test_idle_accounts_in_a_window(store):
    path, fills, _ = store
    df = compute_features(path, AS_OF, ("7d", "all"))
    idle = df["fill_count__7d"] == 0
    last = fills[fills["ts"] < pd.Timestamp(AS_OF)].groupby("account_id")["ts"].max()
    expect_idle = last < pd.Timestamp(AS_OF) - pd.Timedelta(days=7)
    assert (idle == expect_idle.reindex(df.index)).all()
    if idle.any():
        assert (df.loc[idle, "fees_usd__7d"] == 0).all()
        assert df.loc[idle, "maker_share__7d"].isna().all()


def test_event_ratio_reads_market_events(tmp_path):
    # one account trades 10x more on event days: its ratio must be well above 1
    days = pd.date_range("2024-01-01", periods=60, freq="D", tz="UTC")
    market = pd.DataFrame({"ts": days, "underlying": "BTC", "price": 1.0, "iv_index": 50.0,
                           "event": [("crash" if i % 10 == 0 else None) for i in range(60)]})
    rows = []
    for i, d in enumerate(days):
        k = 10 if i % 10 == 0 else 1
        for j in range(k):
            rows.append((f"e{i}-{j}", d + pd.Timedelta(hours=3), "x"))
            rows.append((f"c{i}-{j}", d + pd.Timedelta(hours=3), "y") if j == 0 else None)
    rows = [r for r in rows if r]
    fills = pd.DataFrame(rows, columns=["fill_id", "ts", "account_id"]).assign(
        instrument="BTC-PERPETUAL", underlying="BTC", kind="perp", side="buy", qty=1.0,
        price=1.0, notional_usd=1.0, fee_usd=0.0, is_maker=False)
    con = connect(tmp_path / "e.duckdb")
    _load(con, fills, market)
    df = compute_features(con, "2024-03-01", ("all",))
    assert df.loc["x", "event_activity_ratio__all"] > 5
    assert df.loc["y", "event_activity_ratio__all"] == pytest.approx(1.0)


def test_bad_arguments(store, tmp_path):
    path, _, _ = store
    with pytest.raises(SchemaError, match="window"):
        compute_features(path, AS_OF, ("30x",))
    with pytest.raises(SchemaError, match="as_of"):
        compute_features(path, "not a date", ("all",))
    with pytest.raises(DataError, match="no fills before"):
        compute_features(path, "2000-01-01", ("all",))
    with pytest.raises(DataError, match="does not exist"):
        compute_features(tmp_path / "missing.duckdb", AS_OF)


@pytest.mark.parametrize("dialect", ["duckdb"])
def test_catalogue_compiles_for_each_supported_dialect(dialect):
    schema = ibis.schema({
        "fill_id": "string", "ts": "timestamp('UTC')", "account_id": "string",
        "instrument": "string", "underlying": "string", "kind": "string", "side": "string",
        "qty": "float64", "price": "float64", "notional_usd": "float64", "fee_usd": "float64",
        "is_maker": "boolean", "leverage": "float64", "position_effect": "string",
        "realized_pnl_usd": "float64", "is_liquidation": "boolean", "option_type": "string",
        "strike": "float64", "expiry": "timestamp('UTC')", "underlying_price": "float64",
        "iv": "float64", "delta": "float64"})
    fills = ibis.table(schema, name="fills")
    expr = features_expr(fills, AS_OF, ("30d", "all"), event_days=[pd.Timestamp("2024-04-01").date()])
    sql = ibis.to_sql(expr, dialect=dialect)
    for col in feature_columns(("30d", "all")):
        assert col in sql
    assert "MAKE_TIMESTAMPTZ(2024, 4, 15, 12" in sql  # the cutoff is a literal of the query
