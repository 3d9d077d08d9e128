"""Folding a table of fills at once equals folding them one by one."""

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers.fills import random_fills
from traderseg.errors import DataError
from traderseg.features import measures as M
from traderseg.features.online import AccountState, states_from_frame
from traderseg.features.online_fold import (
    COLUMNAR_FROM_ROWS,
    _sketch_buckets,
    columnar,
    fill_records,
    fold_record_slice,
    fold_table,
)

CUT = pd.Timestamp("2024-04-15T12:00:00+00:00")
WINDOWS = ("7d", "30d", "all")
US_DAY = 86_400_000_000


def _fills(n=1500, accounts=25, seed=3):
    f = random_fills(n=n, accounts=accounts, seed=seed)
    for c in ("ts", "expiry"):
        f[c] = f[c].dt.floor("us")
    return f[f["ts"] < CUT].sort_values("ts", kind="stable").reset_index(drop=True)


# every test runs both ways: by columns whatever the size, and row by row
BY_COLUMNS, BY_ROWS = 0, 10**9


@pytest.fixture(params=[BY_COLUMNS, BY_ROWS], ids=["columns", "rows"])
def way(request):
    return request.param


def _folded(fills, sizes=None, way=BY_COLUMNS):
    states: dict[str, AccountState] = {}
    if sizes is None:
        fold_table(states, fills, columnar_from=way)
        return states
    i = 0
    for k in sizes:
        fold_table(states, fills.iloc[i:i + k], columnar_from=way)
        i += k
    fold_table(states, fills.iloc[i:], columnar_from=way)
    return states


def test_one_batch_builds_the_same_states_bit_for_bit(way):
    fills = _fills()
    one_by_one = states_from_frame(fills)
    folded = _folded(fills, way=way)
    assert list(folded) == list(one_by_one)  # accounts in order of first fill
    for acct, ref in one_by_one.items():
        got = folded[acct]
        assert got.to_json() == ref.to_json(), acct  # types (int first_us), order, bits
        assert got.last_us == ref.last_us and type(got.last_us) is int
        for day, tile in ref.tiles.items():
            assert got.tiles[day].pairs == tile.pairs


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=400), max_size=6), st.integers(0, 3),
       st.sampled_from([BY_COLUMNS, 150]))
def test_batches_of_any_size_give_the_same_features(sizes, seed, threshold):
    fills = _fills(n=600, accounts=8, seed=seed)
    ref = states_from_frame(fills)
    got = _folded(fills, sizes, threshold)
    assert set(got) == set(ref)
    for acct, r in ref.items():
        a, b = r.get(CUT, WINDOWS, None), got[acct].get(CUT, WINDOWS, None)
        for k, v in a.items():
            assert b[k] == pytest.approx(v, rel=1e-9, abs=1e-9, nan_ok=True), (acct, k)


def test_hand_computed_tile(way):
    day = pd.Timestamp("2024-02-01", tz="UTC")
    rows = [
        # 09:00 perp buy at 25x, a maker
        dict(ts=day + pd.Timedelta(hours=9), kind="perp", side="buy", notional_usd=100.0,
             fee_usd=0.5, is_maker=True, leverage=25.0, instrument="BTC-PERP"),
        # 09:30 perp sell at exactly 20x (the high-leverage threshold counts), closes for +7
        dict(ts=day + pd.Timedelta(hours=9, minutes=30), kind="perp", side="sell",
             notional_usd=300.0, fee_usd=-0.1, is_maker=False, leverage=20.0,
             instrument="BTC-PERP", position_effect="close", realized_pnl_usd=7.0),
        # 23:59 spot buy, no leverage
        dict(ts=day + pd.Timedelta(hours=23, minutes=59), kind="spot", side="buy",
             notional_usd=50.0, fee_usd=0.05, is_maker=False, instrument="BTC-USDT"),
    ]
    fills = pd.DataFrame(rows).assign(account_id="a", underlying="BTC",
                                      fill_id=["x", "y", "z"])
    states: dict[str, AccountState] = {}
    touched = fold_table(states, pa.Table.from_pandas(fills, preserve_index=False),
                         columnar_from=way)
    d = int(day.value // 1000 // US_DAY)
    assert touched == {("a", d)}
    t = states["a"].tiles[d]
    s = dict(zip((m.name for m in M.MEASURES), t.s, strict=True))
    assert s["n"] == 3 and s["notional_total"] == 450.0 and s["notional_max"] == 300.0
    assert s["n_perp"] == 2 and s["n_spot"] == 1 and s["n_opt"] == 0
    assert s["h09"] == 2 and s["h23"] == 1 and s["h10"] == 0
    assert s["n_high_lev"] == 2  # 25x and exactly 20x
    assert s["lev_sum"] == 45.0 and s["lev_max"] == 25.0 and s["lev_n"] == 2
    assert s["n_close"] == 1 and s["n_win_close"] == 1 and s["pnl_sum"] == 7.0
    assert s["pe_known"] == 1 and s["n_maker"] == 1 and s["n_buy"] == 2
    assert s["fees_usd"] == pytest.approx(0.45)
    first = int(day.value // 1000) + 9 * 3_600_000_000
    assert s["first_us"] == first and type(s["first_us"]) is int
    assert s["last_us"] == first + (14 * 60 + 59) * 60_000_000
    assert t.maps == {("BTC-PERP", "BTC"): [2, 400.0], ("BTC-USDT", "BTC"): [1, 50.0]}
    sk = M.NOTIONAL_SKETCH
    assert t.sketch == {sk.bucket(100.0): 1, sk.bucket(300.0): 1, sk.bucket(50.0): 1}
    assert t.pairs == {}


def test_leverage_just_below_the_threshold_is_not_high(way):
    day = pd.Timestamp("2024-02-01", tz="UTC")
    fills = pd.DataFrame({"ts": [day], "kind": ["perp"], "side": ["buy"],
                          "notional_usd": [1.0], "fee_usd": [0.0], "is_maker": [False],
                          "leverage": [np.nextafter(M.HIGH_LEVERAGE, 0)],
                          "instrument": ["P"], "underlying": ["BTC"], "account_id": ["a"],
                          "fill_id": ["f"]})
    states: dict[str, AccountState] = {}
    fold_table(states, fills, columnar_from=way)
    tile = next(iter(states["a"].tiles.values()))
    names = [m.name for m in M.MEASURES]
    assert tile.s[names.index("n_high_lev")] == 0
    assert tile.s[names.index("lev_n")] == 1


def test_straddle_legs_and_option_measures_match_per_fill(way):
    fills = _fills(n=800, accounts=8, seed=11)
    opts = fills[fills["account_id"] == "acct005"]
    assert len(opts) and (opts["kind"] == "option").all()
    ref = states_from_frame(opts)["acct005"]
    got = _folded(opts, way=way)["acct005"]
    legs = sum(t.straddle_legs() for t in ref.tiles.values())
    assert legs > 0
    assert sum(t.straddle_legs() for t in got.tiles.values()) == legs


@pytest.mark.parametrize("k", [-3, 1, 57, 200, 512, 700])
def test_sketch_buckets_at_bucket_edges_equal_the_declaration(k):
    sk = M.NOTIONAL_SKETCH
    edge = sk.gamma ** k
    xs = np.array([edge, np.nextafter(edge, 0), np.nextafter(edge, np.inf), 0.0, 5e-10,
                   M.SKETCH_MIN_VALUE])
    assert _sketch_buckets(xs).tolist() == [sk.bucket(float(x)) for x in xs]


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=0.0, max_value=1e12, allow_nan=False))
def test_sketch_bucket_of_any_value_equals_the_declaration(x):
    assert _sketch_buckets(np.array([x]))[0] == M.NOTIONAL_SKETCH.bucket(x)


def test_missing_nullable_columns_are_null_and_missing_required_ones_refused(way):
    fills = _fills(n=200, accounts=4, seed=2)
    no_lev = fills.drop(columns=["leverage", "iv"])
    ref = states_from_frame(no_lev)
    got = _folded(no_lev, way=way)
    for a in ref:
        assert got[a].to_json() == ref[a].to_json()
    with pytest.raises(DataError, match="notional_usd"):
        fold_table({}, fills.drop(columns=["notional_usd"]), columnar_from=way)


def test_a_fill_in_compacted_history_is_refused_and_nothing_changes(way):
    fills = _fills(n=300, accounts=2, seed=4)
    acct = fills["account_id"].iloc[0]
    mine = fills[fills["account_id"] == acct]
    states = _folded(mine, way=way)
    last_day = max(states[acct].tiles)
    states[acct].compact(last_day)
    before = states[acct].to_json()
    late = mine.iloc[[0]].assign(fill_id="late")
    other = fills[fills["account_id"] != acct].iloc[[0]]
    with pytest.raises(DataError, match="compacted history"):
        fold_table(states, pd.concat([other, late]), columnar_from=way)
    assert states[acct].to_json() == before
    assert other["account_id"].iloc[0] not in states


def test_timestamps_as_integer_microseconds_and_any_arrow_unit(way):
    fills = _fills(n=200, accounts=3, seed=6)
    ref = states_from_frame(fills)
    epoch = pd.Timestamp("1970-01-01", tz="UTC")
    as_int = fills.assign(ts=(fills["ts"] - epoch) // pd.Timedelta("1us"),
                          expiry=((fills["expiry"] - epoch) // pd.Timedelta("1us")).astype("Int64"))
    ms = pa.Table.from_pandas(fills.assign(ts=fills["ts"].dt.floor("ms")), preserve_index=False)
    ms = ms.set_column(ms.schema.get_field_index("ts"), "ts",
                       ms.column("ts").cast(pa.timestamp("ms", tz="UTC")))
    ref_ms = states_from_frame(fills.assign(ts=fills["ts"].dt.floor("ms")))
    for variant, want in ((as_int, ref), (ms, ref_ms)):
        got = _folded(variant, way=way)
        for a in want:
            assert json.loads(got[a].to_json()) == json.loads(want[a].to_json())


def test_empty_table_touches_nothing():
    assert fold_table({}, _fills(n=50, accounts=2).iloc[:0]) == set()


def test_sum_order_is_row_order(way):
    # 1e16 + 1 - 1e16 in row order is 0 in floating point; a pairwise sum would give 1
    day = pd.Timestamp("2024-02-01", tz="UTC")
    fills = pd.DataFrame({"ts": [day] * 3, "kind": ["spot"] * 3, "side": ["buy"] * 3,
                          "notional_usd": [1.0] * 3, "fee_usd": [1e16, 1.0, -1e16],
                          "is_maker": [False] * 3, "instrument": ["S"] * 3,
                          "underlying": ["BTC"] * 3, "account_id": ["a"] * 3,
                          "fill_id": ["1", "2", "3"]})
    ref = states_from_frame(fills)["a"]
    got = _folded(fills, way=way)["a"]
    i = [m.name for m in M.MEASURES].index("fees_usd")
    assert next(iter(ref.tiles.values())).s[i] == 0.0
    assert next(iter(got.tiles.values())).s[i] == 0.0


def test_small_tables_fold_row_by_row_from_the_threshold_down():
    assert columnar(COLUMNAR_FROM_ROWS) and not columnar(COLUMNAR_FROM_ROWS - 1)
    assert columnar(5, columnar_from=5) and not columnar(4, columnar_from=5)


def test_columns_holding_only_nulls_of_no_type(way):
    # a batch without options: its option columns come from pandas as untyped NULLs
    fills = _fills(n=300, accounts=3, seed=8)
    fills = fills[fills["kind"] != "option"].copy()
    for c in ("option_type", "expiry", "strike", "delta", "iv", "underlying_price"):
        fills[c] = pd.Series([None] * len(fills), index=fills.index, dtype=object)
    table = pa.Table.from_pandas(fills, preserve_index=False)
    assert pa.types.is_null(table.schema.field("expiry").type)
    ref = states_from_frame(fills)
    states: dict[str, AccountState] = {}
    fold_table(states, table, columnar_from=way)
    for a in ref:
        assert states[a].to_json() == ref[a].to_json()


@settings(max_examples=10, deadline=None)
@given(st.lists(st.integers(0, 400), min_size=1, max_size=6), st.integers(0, 50))
def test_records_made_once_and_folded_in_slices_equal_per_fill(cuts, seed):
    """The consumer converts a batch once and folds its slices row by row."""
    fills = _fills(n=400, accounts=8, seed=seed)
    one_by_one = states_from_frame(fills)
    records = fill_records(pa.Table.from_pandas(fills, preserve_index=False))
    states: dict[str, AccountState] = {}
    touched = set()
    bounds = [0, *sorted(cuts), len(records)]
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        touched |= fold_record_slice(states, records[lo:hi])
    assert {a: s.to_json() for a, s in states.items()} == {
        a: s.to_json() for a, s in one_by_one.items()}
    us = fills["ts"].astype("int64") // 1000
    assert touched == set(zip(fills["account_id"], (us // US_DAY).tolist(), strict=True))


def test_a_record_slice_on_compacted_history_is_refused_and_nothing_changes():
    fills = _fills(n=300, accounts=2, seed=4)
    acct = fills["account_id"].iloc[0]
    mine = fills[fills["account_id"] == acct]
    states = _folded(mine)
    states[acct].compact(max(states[acct].tiles))
    before = states[acct].to_json()
    late = mine.iloc[[0]].assign(fill_id="late")
    other = fills[fills["account_id"] != acct].iloc[[0]]
    records = fill_records(pa.Table.from_pandas(pd.concat([other, late]), preserve_index=False))
    with pytest.raises(DataError, match="compacted history"):
        fold_record_slice(states, records)
    assert states[acct].to_json() == before
    assert other["account_id"].iloc[0] not in states


def test_records_refuse_fills_without_a_time_or_an_account():
    fills = _fills(n=20, accounts=2, seed=1)
    table = pa.Table.from_pandas(fills, preserve_index=False)
    no_acct = table.set_column(table.schema.get_field_index("account_id"), "account_id",
                               pa.array([None] + fills["account_id"].tolist()[1:], pa.string()))
    with pytest.raises(DataError, match="account_id is NULL"):
        fill_records(no_acct)
    with pytest.raises(DataError, match="ts is missing"):
        fill_records(table.drop_columns(["ts"]))
