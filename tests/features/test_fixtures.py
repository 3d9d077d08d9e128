"""Every feature against its hand-computed value, on each execution of the catalogue."""

import math

import pandas as pd
import pytest

from helpers.feature_fixtures import (
    AS_OF,
    DAY,
    EVENT_DAYS,
    EXACT_QUANTILES,
    FILLS,
    FIXTURES,
    WINDOWS,
    D,
)
from helpers.store import fills_store
from traderseg.features import tiles
from traderseg.features.catalog import CATALOG
from traderseg.features.compute import compute_features
from traderseg.features.measures import SKETCH_RELATIVE_ERROR
from traderseg.features.online import states_from_frame

SKETCHED = {"notional_median", "notional_p95"}


def _market() -> pd.DataFrame:
    days = pd.date_range(D - 12 * DAY, D, freq="D")
    return pd.DataFrame({"ts": days, "underlying": "BTC", "price": 100.0, "iv_index": 50.0,
                         "event": ["crash" if d.date() in EVENT_DAYS else None for d in days]})


def _store(path=":memory:"):
    con = fills_store(FILLS, path)
    con.register("m", _market())
    con.execute("INSERT INTO market (ts, underlying, price, iv_index, event) "
                "SELECT ts, underlying, price, iv_index, event FROM m")
    con.unregister("m")
    return con


@pytest.fixture(scope="module")
def results():
    con = _store()
    out = {"fills": compute_features(con, AS_OF, WINDOWS, tiles="never")}
    tiles.rebuild(con)
    out["tiles"] = compute_features(con, AS_OF, WINDOWS, tiles="require")
    states = states_from_frame(FILLS[FILLS["ts"] < AS_OF])
    out["online"] = pd.DataFrame.from_dict(
        {a: s.get(AS_OF, WINDOWS, EVENT_DAYS) for a, s in states.items()}, orient="index")
    out["exact"] = compute_features(con, AS_OF, WINDOWS, tiles="never", exact_quantiles=True)
    return out


def test_every_feature_has_a_hand_computed_fixture():
    missing = sorted({f.name for f in CATALOG} - set(FIXTURES))
    assert not missing, f"features without a fixture in helpers/feature_fixtures.py: {missing}"


@pytest.mark.parametrize("path", ["fills", "tiles", "online"])
@pytest.mark.parametrize("feature", sorted(FIXTURES))
def test_feature_equals_its_hand_computed_value(results, path, feature):
    frame = results[path]
    for account, window, expected in FIXTURES[feature]:
        col = f"{feature}__{window}"
        got = float(frame.loc[account, col])
        where = f"{path}: {col} of {account}"
        if math.isnan(expected):
            assert math.isnan(got), f"{where}: {got} instead of NaN"
        elif feature in SKETCHED:
            assert got == pytest.approx(expected, rel=SKETCH_RELATIVE_ERROR), where
        else:
            assert got == pytest.approx(expected, rel=1e-12, abs=1e-12), where


def test_exact_quantiles_interpolate(results):
    for feature, expected in EXACT_QUANTILES.items():
        assert results["exact"].loc["size", f"{feature}__all"] == pytest.approx(expected)


def test_window_edges_and_the_cutoff(results):
    # inside 7d: the fill exactly at the window start and the one just before the cutoff;
    # outside: the fill a microsecond before the window start; never: at or after the cutoff
    f = results["fills"]
    assert f.loc["edge", "fill_count__7d"] == 2
    assert f.loc["edge", "fill_count__all"] == 3
    assert f.loc["edge", "recency_days__all"] == pytest.approx(1e-6 / 86400, abs=1e-15)


def test_events_unknown_without_market_events():
    con = fills_store(FILLS)
    f = compute_features(con, AS_OF, ("all",))
    assert f["event_activity_ratio__all"].isna().all()
    assert f["event_notional_share__all"].isna().all()
    states = states_from_frame(FILLS[FILLS["ts"] < AS_OF])
    online = states["daily"].get(AS_OF, ("all",), None)
    assert math.isnan(online["event_activity_ratio__all"])
