"""Batch, tiles and online agree; tiles follow ingest; invariants hold on random stores."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers.fills import market_with_events, random_fills
from helpers.store import fills_store
from traderseg.features import tiles
from traderseg.features.compute import compute_features
from traderseg.features.online import (
    VALUE_NAMES,
    AccountState,
    combine,
    light_windows,
    quantile_windows,
    read_parts,
    read_plan,
    records_from_frame,
    states_from_frame,
    values_frame,
)
from traderseg.features.windows import day_number
from traderseg.ingest import ingest
from traderseg.store import connect

CUT = pd.Timestamp("2024-04-15T12:00:00+00:00")
WINDOWS = ("7d", "30d", "all")


def _online(fills: pd.DataFrame, cut, windows, event_days) -> pd.DataFrame:
    states = states_from_frame(fills[fills["ts"] < cut])
    rows = {a: s.get(cut, windows, event_days) for a, s in states.items()}
    return pd.DataFrame.from_dict(rows, orient="index").sort_index()


def _event_days(market):
    return sorted(set(market.loc[market["event"].notna(), "ts"].dt.date))


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    b = b.reindex(index=a.index, columns=a.columns)
    pd.testing.assert_frame_equal(a, b, rtol=1e-9, atol=1e-9, check_names=False)


def _tile_tables(con) -> dict[str, pd.DataFrame]:
    out = {}
    for table in tiles.table_names().values():
        df = con.sql(f"SELECT * FROM {table}").df()
        out[table] = df.sort_values(list(df.columns[:3])).reset_index(drop=True)
    return out


def test_tiles_follow_ingest_and_equal_a_rebuild(tmp_path):
    fills = random_fills(n=2500, accounts=30, seed=4)
    for c in ("ts", "expiry"):  # the canonical files hold microseconds
        fills[c] = fills[c].dt.floor("us")
    market = market_with_events()
    # two exports; the second one also adds fills to days the first one covered
    first = fills[fills["ts"] < "2024-03-01"]
    late = fills[fills["ts"] >= "2024-03-01"]
    overlap = first.sample(40, random_state=1).copy()
    overlap["fill_id"] = overlap["fill_id"] + "-late"
    second = pd.concat([late, overlap])
    for name, part in (("fills-a", first), ("fills-b", second)):
        part.to_parquet(tmp_path / f"{name}.parquet", index=False)
    market.to_parquet(tmp_path / "market.parquet", index=False)
    db = tmp_path / "store.duckdb"
    ingest([tmp_path / "fills-a.parquet", tmp_path / "market.parquet"], db)
    con = connect(db)
    assert tiles.status(con) == (True, "current")
    con.close()
    ingest([tmp_path / "fills-b.parquet"], db)
    ingest([tmp_path / "fills-b.parquet"], db)  # re-ingest: nothing new, tiles still current
    con = connect(db)
    assert tiles.status(con) == (True, "current")
    incremental = _tile_tables(con)
    tiles.rebuild(con)
    rebuilt = _tile_tables(con)
    for table, frame in rebuilt.items():
        pd.testing.assert_frame_equal(incremental[table], frame, check_dtype=False)
    from_tiles = compute_features(con, CUT, WINDOWS, tiles="require")
    from_fills = compute_features(con, CUT, WINDOWS, tiles="never")
    assert from_tiles.attrs["source"] == "tiles" and from_fills.attrs["source"] == "fills"
    _same(from_fills, from_tiles)
    # the same cutoff at midnight: no partial day
    _same(compute_features(con, CUT.floor("D"), WINDOWS, tiles="never"),
          compute_features(con, CUT.floor("D"), WINDOWS, tiles="require"))


def test_tiles_store_counts_as_bigint_not_hugeint(tmp_path):
    # an integer SUM in DuckDB gives HUGEINT, which made every merge of the tiles ~20x slower
    con = fills_store(random_fills(n=300, accounts=5, seed=2), tmp_path / "s.duckdb")
    tiles.rebuild(con)
    for table in tiles.table_names().values():
        types = {r[0]: r[1] for r in con.execute(f"DESCRIBE {table}").fetchall()}
        assert "HUGEINT" not in types.values(), (table, types)
    assert con.execute("SELECT typeof(n) FROM tiles_day LIMIT 1").fetchone()[0] == "BIGINT"


def test_tiles_not_current_when_fills_arrive_outside_ingest(tmp_path):
    con = fills_store(random_fills(n=300, accounts=5, seed=2), tmp_path / "s.duckdb")
    tiles.rebuild(con)
    assert tiles.status(con)[0]
    con.execute("INSERT INTO fills SELECT * REPLACE (fill_id || 'x' AS fill_id) FROM fills "
                "LIMIT 3")
    ok, why = tiles.status(con)
    assert not ok and "cover 300 fills, the store holds 303" in why
    with pytest.raises(Exception, match="not current"):
        compute_features(con, CUT, ("all",), tiles="require")


def test_batch_tiles_and_online_agree_on_random_fills():
    fills = random_fills(n=3000, accounts=40, seed=9)
    market = market_with_events()
    con = fills_store(fills)
    con.register("m", market)
    con.execute("INSERT INTO market (ts, underlying, price, iv_index, event) "
                "SELECT ts, underlying, price, iv_index, event FROM m")
    batch = compute_features(con, CUT, WINDOWS, tiles="never")
    tiles.rebuild(con)
    _same(batch, compute_features(con, CUT, WINDOWS, tiles="require"))
    _same(batch, _online(fills, CUT, WINDOWS, _event_days(market)))


def test_online_merge_snapshot_and_compaction():
    fills = random_fills(n=800, accounts=3, seed=5)
    fills = fills[fills["ts"] < CUT].sort_values("ts")
    acct = fills[fills["account_id"] == fills["account_id"].iloc[0]]
    whole = states_from_frame(acct)[acct["account_id"].iloc[0]]
    expect = whole.get(CUT, WINDOWS, None)
    # two partitions of the same account merged
    half = len(acct) // 2
    a = states_from_frame(acct.iloc[::2]).popitem()[1]
    b = states_from_frame(acct.iloc[1::2]).popitem()[1]
    merged = a.merge(b).get(CUT, WINDOWS, None)
    # a JSON snapshot restored
    restored = AccountState.from_json(whole.to_json()).get(CUT, WINDOWS, None)
    # old days folded into the lifetime tile: windows within the kept days are unchanged
    compact = AccountState.from_json(whole.to_json())
    compact.compact(int((CUT.floor("D") - pd.Timestamp("1970-01-01", tz="UTC")).days) - 30)
    compacted = compact.get(CUT, ("7d", "30d", "all"), None)
    assert half > 0 and len(compact.tiles) <= 31
    for got in (merged, restored, compacted):
        for k, v in expect.items():
            assert got[k] == pytest.approx(v, rel=1e-9, abs=1e-9, nan_ok=True), k


def test_online_refuses_a_cutoff_before_its_fills():
    fills = random_fills(n=50, accounts=1, seed=1)
    st_ = states_from_frame(fills).popitem()[1]
    with pytest.raises(Exception, match="at or after the cutoff"):
        st_.get(fills["ts"].min(), ("all",))


# -- properties ------------------------------------------------------------------------

_kinds = st.sampled_from(["spot", "perp", "future", "option"])


@st.composite
def _fills(draw):
    n = draw(st.integers(1, 40))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    base = random_fills(n=n, accounts=draw(st.integers(1, 4)), seed=int(rng.integers(1e9)),
                        start="2024-04-01", days=20)
    return base


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fills=_fills(), cut_hours=st.integers(0, 20 * 24), seed=st.integers(0, 1000))
def test_order_later_fills_and_engines_do_not_change_features(fills, cut_hours, seed):
    cut = pd.Timestamp("2024-04-01", tz="UTC") + pd.Timedelta(hours=cut_hours)
    before = fills[fills["ts"] < cut]
    if before.empty:
        return
    windows = ("1d", "7d", "all")
    base = compute_features(fills_store(before), cut, windows, tiles="never")
    # row order
    shuffled = before.sample(frac=1.0, random_state=seed)
    _same(base, compute_features(fills_store(shuffled), cut, windows, tiles="never"))
    # fills at or after the cutoff, with wild values
    later = fills[fills["ts"] >= cut].copy()
    at_cut = before.head(2).copy()
    at_cut["fill_id"] = at_cut["fill_id"] + "c"
    at_cut["ts"] = cut
    later["notional_usd"] *= 1e6
    con = fills_store(pd.concat([shuffled, later, at_cut]))
    _same(base, compute_features(con, cut, windows, tiles="never"))
    # tiles (whole days plus the partial cutoff day) and the online state
    tiles.rebuild(con)
    _same(base, compute_features(con, cut, windows, tiles="require"))
    _same(base, _online(shuffled, cut, windows, None))


def test_tiles_not_current_when_fills_change_in_place(tmp_path):
    con = fills_store(random_fills(n=300, accounts=5, seed=2), tmp_path / "s.duckdb")
    tiles.rebuild(con)
    assert tiles.status(con)[0]
    con.execute("UPDATE fills SET fee_usd = fee_usd * 100 WHERE fill_id = 'f7'")
    ok, why = tiles.status(con)
    assert not ok and "changed after the tiles were built" in why
    # features then come from the fills, and match them
    auto = compute_features(con, CUT, ("all",), tiles="auto")
    assert auto.attrs["source"] == "fills"
    assert "changed after the tiles were built" in auto.attrs["tiles_status"]
    _same(compute_features(con, CUT, ("all",), tiles="never"), auto)


def test_online_refuses_fills_in_the_compacted_history():
    fills = random_fills(n=200, accounts=1, seed=3).sort_values("ts")
    st_ = states_from_frame(fills).popitem()[1]
    last_day = int((fills["ts"].max() - pd.Timestamp("1970-01-01", tz="UTC")).days)
    st_.compact(last_day)  # every day before the last one is folded
    old = fills.iloc[[0]].copy()
    old["fill_id"] = "late-old"
    with pytest.raises(Exception, match="compacted history"):
        st_.update(next(iter(records_from_frame(old))))
    # the day after the compacted ones still takes fills, and a snapshot keeps the bound
    restored = AccountState.from_json(st_.to_json())
    assert restored.folded_through == st_.folded_through == max(st_.old_days)
    assert st_.folded_through < last_day


def test_fingerprints_combine_over_disjoint_rows(tmp_path):
    assert tiles.combine_fingerprints("3:5", "2:6") == "5:3"  # counts add, hashes xor
    fills = random_fills(n=400, accounts=6, seed=3)
    con = fills_store(fills, tmp_path / "s.duckdb")
    con.execute("CREATE TABLE part_a AS SELECT * FROM fills WHERE fill_id < 'f2'")
    con.execute("CREATE TABLE part_b AS SELECT * FROM fills WHERE fill_id >= 'f2'")
    whole = tiles.fingerprint(con)
    assert whole.startswith(f"{len(fills)}:")
    assert tiles.fingerprint(con, "part_a") != whole
    assert tiles.combine_fingerprints(tiles.fingerprint(con, "part_a"),
                                      tiles.fingerprint(con, "part_b")) == whole


def test_ingest_of_partly_known_fills_keeps_the_tiles_current(tmp_path):
    fills = random_fills(n=600, accounts=8, seed=6)
    for c in ("ts", "expiry"):
        fills[c] = fills[c].dt.floor("us")
    fills.iloc[:400].to_parquet(tmp_path / "first.parquet", index=False)
    # the second file repeats 100 stored fills beside 200 new ones: the digest is rescanned
    fills.iloc[300:].to_parquet(tmp_path / "second.parquet", index=False)
    db = tmp_path / "store.duckdb"
    ingest([tmp_path / "first.parquet"], db)
    ingest([tmp_path / "second.parquet"], db)
    con = connect(db)
    assert tiles.status(con) == (True, "current")
    meta = con.execute(f"SELECT fills_rows, fingerprint FROM {tiles.META}").fetchone()
    assert meta == (len(fills), tiles.fingerprint(con))


def test_each_refresh_path_equals_a_rebuild(tmp_path):
    """New account-days tile from the added rows alone; known ones re-read the store."""
    fills = random_fills(n=900, accounts=10, seed=8)
    for c in ("ts", "expiry"):
        fills[c] = fills[c].dt.floor("us")
    early = fills[fills["ts"] < "2024-02-15"]
    late = fills[fills["ts"] >= "2024-02-15"]
    again = early.sample(25, random_state=2).copy()  # more fills on days already tiled
    again["fill_id"] = again["fill_id"] + "-more"
    beyond = late.sample(20, random_state=3).copy()  # days no tile holds yet
    beyond["ts"] = beyond["ts"] + pd.Timedelta(days=40)
    beyond["fill_id"] = beyond["fill_id"] + "-beyond"
    mixed = pd.concat([beyond, early.sample(10, random_state=4).assign(
        fill_id=lambda f: f["fill_id"] + "-mixed")])
    known = pd.concat([late.iloc[:30], late.iloc[:5].assign(  # partly stored already
        fill_id=lambda f: f["fill_id"] + "-new")])
    parts = {"a": early.iloc[:-5], "b": late, "c": again, "d": early.iloc[-5:],
             "e": mixed, "f": known}
    db = tmp_path / "store.duckdb"
    for name, part in parts.items():
        path = tmp_path / f"fills-{name}.parquet"
        part.to_parquet(path, index=False)
        ingest([path], db)
        con = connect(db)
        assert tiles.status(con) == (True, "current"), name
        incremental = _tile_tables(con)
        tiles.rebuild(con)
        for table, frame in _tile_tables(con).items():
            pd.testing.assert_frame_equal(incremental[table], frame, check_dtype=False,
                                          obj=f"{table} after {name}")
        con.close()
    con = connect(db, read_only=True)
    assert con.execute("SELECT count(*) FROM tiles_day").fetchone()[0] > 0
    con.close()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fills=_fills(), cut_hours=st.integers(1, 21 * 24),
       events=st.none() | st.sets(st.integers(-3, 22), max_size=4))
def test_many_accounts_read_at_once_equal_one_at_a_time(fills, cut_hours, events):
    """The stream's read of many accounts (values over arrays) equals each account's own.

    The window values must be equal bit for bit: a missing minimum or maximum stays
    missing (NaN) where the newest day or the older days have none.
    """
    cut = pd.Timestamp("2024-04-01", tz="UTC") + pd.Timedelta(hours=cut_hours)
    before = fills[fills["ts"] < cut]
    if before.empty:
        return
    windows = ("1d", "7d", "all")
    states = states_from_frame(before)
    first_day = day_number(pd.Timestamp("2024-04-01").date())
    evs = None if events is None else {first_day + d for d in events}
    accounts = sorted(states)
    at = cut.to_pydatetime()
    plan = read_plan(at, windows, evs)
    block = combine(read_parts(states, accounts, plan))
    for i, a in enumerate(accounts):
        one = states[a].window_values(at, windows, evs)
        for w, arr in block.items():
            expect = [np.nan if one[w][k] is None else float(one[w][k]) for k in VALUE_NAMES]
            np.testing.assert_array_equal(arr[i], np.array(expect), err_msg=f"{a} {w}")
    ev_dates = None if evs is None else [
        (pd.Timestamp("1970-01-01") + pd.Timedelta(days=d)).date() for d in evs]
    got = values_frame([block], windows, accounts)
    want = pd.DataFrame.from_dict({a: states[a].get(cut, windows, ev_dates) for a in accounts},
                                  orient="index")
    _same(want, got)


def test_the_windows_whose_columns_read_a_quantile():
    # notional_median and notional_p95 read the sketch; fill_count and notional_mean do not
    wins = ("7d", "30d")
    assert quantile_windows(wins) == {"7d", "30d", "all"}
    assert quantile_windows(wins, []) == set()
    assert quantile_windows(wins, ["fill_count__30d", "notional_mean__all"]) == set()
    assert quantile_windows(wins, ["notional_median__all", "fill_count__30d"]) == {"all"}
    assert quantile_windows(wins, ["notional_p95__7d", "notional_median__90d"]) == {"7d"}


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fills=_fills(), cut_hours=st.integers(1, 21 * 24),
       picks=st.sets(st.integers(0, 10_000), min_size=1, max_size=12))
def test_some_columns_equal_those_of_the_whole_frame(fills, cut_hours, picks):
    """Values for some columns only (the formulas of those, the quantiles of the windows
    that read them) are the whole frame's columns, bit for bit."""
    cut = pd.Timestamp("2024-04-01", tz="UTC") + pd.Timedelta(hours=cut_hours)
    before = fills[fills["ts"] < cut]
    if before.empty:
        return
    windows = ("7d", "all")
    states = states_from_frame(before)
    accounts = sorted(states)
    plan = read_plan(cut.to_pydatetime(), windows, None)
    whole = values_frame([combine(read_parts(states, accounts, plan))], windows, accounts)
    cols = [whole.columns[k % len(whole.columns)] for k in sorted(picks)]
    # read as the stream reads: windows that need neither map nor sketch read without them
    light_plan = read_plan(cut.to_pydatetime(), windows, None, cols)
    assert light_plan.light == light_windows(windows, cols)
    block = combine(read_parts(states, accounts, light_plan), quantile_windows(windows, cols))
    got = values_frame([block], windows, accounts, cols)
    assert list(got.columns) == [c for c in whole.columns if c in set(cols)]
    _same(whole[got.columns], got)
    # a window whose quantiles nobody asked for has none
    if "notional_median__7d" not in cols and "notional_p95__7d" not in cols:
        q = [VALUE_NAMES.index("notional_q50"), VALUE_NAMES.index("notional_q95")]
        assert np.isnan(block["7d"][:, q]).all()
    # a light window's map values and quantiles are missing, the rest equal a full read's
    full = combine(read_parts(states, accounts, plan))
    maps = [VALUE_NAMES.index(k) for k in ("top_notional", "instrument_breadth",
                                           "underlying_count", "notional_q50", "notional_q95")]
    rest = [j for j in range(len(VALUE_NAMES)) if j not in maps]
    for w in light_plan.light:
        assert np.isnan(block[w][:, maps]).all()
        np.testing.assert_array_equal(block[w][:, rest], full[w][:, rest])


def test_the_windows_read_without_map_or_sketch():
    # top_instrument_share reads the map's largest notional, instrument_breadth its keys,
    # notional_median the sketch; fill_count and notional_mean read scalars alone
    wins = ("7d", "30d")
    assert light_windows(wins, []) == {"7d", "30d", "all"}
    assert light_windows(wins, ["fill_count__30d", "notional_mean__all"]) == {
        "7d", "30d", "all"}
    assert light_windows(wins, ["top_instrument_share__7d", "fill_count__30d"]) == {
        "30d", "all"}
    assert light_windows(wins, ["instrument_breadth__all", "notional_median__30d"]) == {"7d"}
    assert read_plan(pd.Timestamp("2024-04-02", tz="UTC").to_pydatetime(), wins,
                     None).light == frozenset()


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fills=_fills(), step_hours=st.integers(5, 30), compact=st.booleans())
def test_reads_kept_across_days_equal_a_read_from_nothing(fills, step_hours, compact):
    """A state read again and again as its fills arrive (the lifetime merge then grows one
    day at a time) reads exactly as a state built at once from the same fills."""
    fills = fills.sort_values(["ts", "fill_id"], kind="stable")
    windows = ("7d", "all")
    live: dict[str, AccountState] = {}
    start = pd.Timestamp("2024-04-01", tz="UTC")
    done = 0
    for h in range(step_hours, 21 * 24 + step_hours, step_hours):
        cut = start + pd.Timedelta(hours=h)
        new = fills[(fills["ts"] < cut)].iloc[done:]
        done += len(new)
        for rec in records_from_frame(new):
            live.setdefault(rec["account_id"], AccountState()).update(rec)
        if compact and h == 10 * 24:
            for s_ in live.values():
                s_.compact(day_number(cut.date()) - 8)
        fresh = states_from_frame(fills[fills["ts"] < cut])
        if compact and h >= 10 * 24:
            for a, s_ in fresh.items():
                s_.compact(min(live[a].folded_through + 1, day_number(cut.date()) - 8))
        at = cut.to_pydatetime()
        # the stream's light reads (scalars merged day by day, kept apart from the full
        # merges) equal a full read from nothing, the map values and quantiles aside
        accts = sorted(live)
        light = combine(read_parts(live, accts, read_plan(at, windows, None,
                                                          ["fill_count__7d"])))
        full = combine(read_parts(fresh, accts, read_plan(at, windows, None)))
        rest = [j for j, k in enumerate(VALUE_NAMES)
                if k not in ("top_notional", "instrument_breadth", "underlying_count",
                             "notional_q50", "notional_q95")]
        for w in ("7d", "all"):  # fill_count__7d reads neither map nor sketch anywhere
            np.testing.assert_array_equal(light[w][:, rest], full[w][:, rest])
        for a, s_ in live.items():
            got = s_.window_values(at, windows, None)
            want = fresh[a].window_values(at, windows, None)
            assert got == want or all(
                (x == y) or (x != x and y != y) for w in want for x, y in
                zip(got[w].values(), want[w].values(), strict=True)), (a, cut)


def test_sketch_quantiles_of_reads_by_hand():
    """Ranks floor(q * (total - 1)); the answer is the first bucket whose cumulative count
    is *above* the rank (a count equal to the rank is not enough)."""
    from traderseg.features.measures import MEASURE_SET, ZERO_BUCKET
    from traderseg.features.online import sketch_quantiles

    g = MEASURE_SET.sketches[0].gamma
    assert MEASURE_SET.sketches[0].quantiles == (0.5, 0.95)

    def value(b):
        return 2.0 * g**b / (g + 1.0)

    def arr(*xs):
        return np.array(xs, dtype=np.int64)

    got = sketch_quantiles([
        # buckets 10, 11, 12 once each (older 10, newest 11 and 12): ranks 1 and 1;
        # cumulative counts 1, 2, 3, so both answer 11 (10 if a count equal to the rank won)
        (arr(10), arr(1), {12: 1, 11: 1}),
        (arr(), arr(), None),  # nothing: NaN
        # 5 twice, 20 once older and once newest: total 4, ranks 1 and 2; cumulative 2, 4:
        # the median is 5 and p95 is 20 (5 if a count equal to the rank won)
        (arr(5, 20), arr(2, 1), {20: 1}),
        (arr(ZERO_BUCKET), arr(3), None),  # the zero bucket reports 0
    ])
    want = np.array([[value(11), value(11)], [np.nan, np.nan], [value(5), value(20)],
                     [0.0, 0.0]])
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_quantiles_of_skips_buckets_that_count_nothing():
    """Sketches laid end to end; an entry counting 0 is never an answer, even first."""
    from traderseg.features.measures import MEASURE_SET

    sk = MEASURE_SET.sketches[0]
    got = sk.quantiles_of(
        np.array([3, 4, 7, 1, 2, 5], dtype=np.int64),
        np.array([0, 2, 1, 1, 0, 4], dtype=np.int64),
        np.array([3, 2, 0, 1], dtype=np.int64))
    # 1) 4, 4, 7: ranks 1 and 1 -> 4 (3 counts nothing); 2) one value in bucket 1: rank 0;
    # 3) empty: NaN; 4) four values in bucket 5
    want = np.array([[sk.representative(4)] * 2, [sk.representative(1)] * 2,
                     [np.nan, np.nan], [sk.representative(5)] * 2])
    np.testing.assert_array_equal(got, want)


_bucket = st.integers(min_value=-40, max_value=40)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.dictionaries(_bucket, st.integers(0, 4), max_size=6),
                          st.dictionaries(_bucket, st.integers(1, 4), max_size=4),
                          st.booleans()),
                min_size=1, max_size=8))
def test_sketch_quantiles_equal_ranks_in_the_expanded_values(reads):
    """Many reads at once, each the quantile of its buckets written out one value per count
    and sorted: the older part and the newest day's merge whatever buckets they share. A
    read may share the older arrays of the read before it (one account's reads of a day);
    an older bucket may count nothing."""
    from traderseg.features.measures import MEASURE_SET
    from traderseg.features.online import sketch_quantiles

    sk = MEASURE_SET.sketches[0]
    parts = []
    want = np.full((len(reads), len(sk.quantiles)), np.nan)
    for i, (older, newest, share) in enumerate(reads):
        if share and i:
            older = parts[-1][3]
            ob_arr, oc_arr = parts[-1][0], parts[-1][1]
        else:
            ob = sorted(older)
            ob_arr = np.array(ob, dtype=np.int64)
            oc_arr = np.array([older[b] for b in ob], dtype=np.int64)
        parts.append((ob_arr, oc_arr, newest or None, older))
        values = sorted([b for b, c in older.items() for _ in range(c)]
                        + [b for b, c in newest.items() for _ in range(c)])
        for j, q in enumerate(sk.quantiles):
            if values:
                want[i, j] = sk.representative(values[int(np.floor(q * (len(values) - 1)))])
    parts = [p[:3] for p in parts]
    np.testing.assert_array_equal(sketch_quantiles(parts), want)
