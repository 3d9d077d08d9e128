"""The catalogue on Spark (local[2]) equals DuckDB and the hand-computed values."""

import math

import numpy as np
import pandas as pd
import pytest

pyspark = pytest.importorskip("pyspark", reason="the Spark engine needs the spark extra")

from helpers.feature_fixtures import AS_OF, DAY, EVENT_DAYS, FILLS, FIXTURES, WINDOWS, D  # noqa: E402
from helpers.fills import market_with_events, random_fills  # noqa: E402
from helpers.store import fills_store  # noqa: E402
from traderseg.features.compute import compute_features  # noqa: E402
from traderseg.features.measures import SKETCH_RELATIVE_ERROR  # noqa: E402
from traderseg.features.spark import compute_features_spark, spark_session  # noqa: E402


@pytest.fixture(scope="module")
def session():
    # a session time zone far from UTC: day and hour buckets must not move
    s = spark_session(time_zone="America/New_York")
    yield s
    s.stop()


def _write(tmp_path, fills, market):
    folder = tmp_path / "spark-src"
    folder.mkdir()
    fills.to_parquet(folder / "fills.parquet", index=False)
    if market is not None:
        market.to_parquet(folder / "market.parquet", index=False)
    return folder


def _market_fixture():
    days = pd.date_range(D - 12 * DAY, D, freq="D")
    return pd.DataFrame({"ts": days, "underlying": "BTC", "price": 100.0, "high": 100.0,
                         "low": 100.0, "iv_index": 50.0,
                         "event": ["crash" if d.date() in EVENT_DAYS else None for d in days]})


def test_the_session_draws_no_progress_bars(session):
    # stage progress bars would print around a command's output and its one-line error
    assert session.conf.get("spark.ui.showConsoleProgress") == "false"


def test_spark_equals_duckdb_and_the_hand_values(session, tmp_path):
    fills = FILLS.copy()
    fills["is_liquidation"] = fills["is_liquidation"].astype("boolean")
    market = _market_fixture()
    spark = compute_features_spark(_write(tmp_path, fills, market), AS_OF, WINDOWS,
                                   session=session)
    con = fills_store(FILLS)
    con.register("m", market)
    con.execute("INSERT INTO market (ts, underlying, price, high, low, iv_index, event) "
                "SELECT ts, underlying, price, high, low, iv_index, event FROM m")
    duck = compute_features(con, AS_OF, WINDOWS, tiles="never")
    assert list(spark.index) == list(duck.index)
    np.testing.assert_allclose(spark.to_numpy(), duck.to_numpy(), rtol=1e-12, atol=1e-12)
    for feature, checks in FIXTURES.items():
        for account, window, expected in checks:
            got = spark.loc[account, f"{feature}__{window}"]
            if math.isnan(expected):
                assert math.isnan(got), (feature, account)
            else:
                tol = SKETCH_RELATIVE_ERROR if feature.startswith("notional_") else 1e-12
                assert got == pytest.approx(expected, rel=tol, abs=1e-12), (feature, account)


def test_spark_equals_duckdb_on_random_fills(session, tmp_path):
    # read from a DuckDB store, as `traderseg features --engine spark` does
    db = tmp_path / "store.duckdb"
    con = fills_store(random_fills(n=1500, accounts=25, seed=11), db)
    con.register("m", market_with_events())
    con.execute("INSERT INTO market (ts, underlying, price, iv_index, event) "
                "SELECT ts, underlying, price, iv_index, event FROM m")
    cut = "2024-04-15T12:00:00+00:00"
    duck = compute_features(con, cut, ("7d", "30d", "all"), tiles="never", exact_quantiles=True)
    con.close()
    spark = compute_features_spark(db, cut, ("7d", "30d", "all"), session=session,
                                   exact_quantiles=True)
    pd.testing.assert_frame_equal(spark, duck, rtol=1e-9, atol=1e-9, check_names=False)
