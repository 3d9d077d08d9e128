"""The catalogue's compiled SQL, reused across cutoffs (features.sqlcache)."""

import json
from datetime import UTC, datetime, timedelta

import ibis
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers.fills import market_with_events, random_fills
from helpers.store import fills_store
from traderseg.features import sqlcache, tiles
from traderseg.features.compute import compute_features, features_expr

NOON = datetime(2024, 3, 30, 12, 0, tzinfo=UTC)  # day 19812 since 1970-01-01


def _sql(day_of_cutoff: int, year: int, month: int, day: int, us: str, k: int = 7) -> str:
    return (f"SELECT * FROM t WHERE d >= {day_of_cutoff - 7} AND d < {day_of_cutoff + 1} "
            f"AND ts < MAKE_TIMESTAMPTZ({year}, {month}, {day}, 12, 0, 0.0, 'UTC') "
            f"AND ts >= MAKE_TIMESTAMPTZ({year}, {month}, {day}, 0, 0, 0.0, 'UTC') "
            f"AND x = {us} AND k = {k} AND name = 'd 19812'")


def test_a_template_renders_every_literal_at_a_new_cutoff():
    # 2024-03-30 12:00 is day 19812 and 1,711,800,000,000,000 microseconds
    at_c = _sql(19812, 2024, 3, 30, "1711800000000000.0")
    at_c3 = _sql(19815, 2024, 4, 2, "1712059200000000.0")
    t = sqlcache.derive(at_c, NOON, at_c3, NOON + timedelta(days=3))
    assert t is not None
    assert [s.kind for s in t.slots] == ["day", "day", "cutoff", "day_start", "us"]
    assert [s.offset for s in t.slots] == [-7, 1, 0, 0, 0]
    # 2024-12-31 12:00 is day 20088 and 1,735,646,400,000,000 microseconds
    assert t.render(datetime(2024, 12, 31, 12, tzinfo=UTC)) == _sql(
        20088, 2024, 12, 31, "1735646400000000.0")
    # a quoted string holding a day number is never a literal to move
    assert "'d 19812'" in t.render(datetime(2025, 1, 1, 12, tzinfo=UTC))
    assert sqlcache.Template.from_json(t.to_json()) == t


def test_no_template_when_anything_else_differs():
    at_c = _sql(19812, 2024, 3, 30, "1711800000000000.0")
    later = NOON + timedelta(days=3)
    # another constant changed
    assert sqlcache.derive(at_c, NOON, _sql(19815, 2024, 4, 2, "1712059200000000.0", k=8),
                           later) is None
    # a day number moved by one day more than the cutoffs: not the cutoff's
    assert sqlcache.derive(at_c, NOON, _sql(19816, 2024, 4, 2, "1712059200000000.0"),
                           later) is None
    # the same cutoff twice, or cutoffs not whole days apart
    assert sqlcache.derive(at_c, NOON, at_c, NOON) is None
    assert sqlcache.derive(at_c, NOON, _sql(19815, 2024, 4, 2, "1712059200000000.0"),
                           later + timedelta(seconds=1)) is None
    # the text between tokens differs
    assert sqlcache.derive(at_c, NOON, _sql(19815, 2024, 4, 2, "1712059200000000.0")
                           .replace(" AND k", "  AND k"), later) is None


def test_the_key_holds_the_time_of_day_not_the_date():
    k = sqlcache.cache_key("x", cutoff=NOON)
    assert sqlcache.cache_key("x", cutoff=NOON + timedelta(days=40)) == k
    assert sqlcache.cache_key("x", cutoff=NOON + timedelta(microseconds=1)) != k
    assert sqlcache.cache_key("x", cutoff=NOON.replace(hour=0)) != k
    assert sqlcache.cache_key("y", cutoff=NOON) != k


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("sqlcache") / "s.duckdb"
    fills = random_fills(n=1500, accounts=20, seed=12)
    con = fills_store(fills, path)
    con.register("m", market_with_events())
    con.execute("INSERT INTO market BY NAME SELECT * FROM m")
    tiles.rebuild(con)
    yield con
    con.close()


@settings(max_examples=6, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(days=st.lists(st.integers(20, 110), min_size=3, max_size=3, unique=True),
       seconds=st.sampled_from([0, 1, 43_200, 86_399]),
       micros=st.sampled_from([0, 5, 250_000]),
       windows=st.sampled_from([("all",), ("7d", "all"), ("30d", "2w")]),
       from_tiles=st.booleans(), exact=st.booleans(), events=st.booleans())
def test_template_of_two_cutoffs_equals_the_compiled_sql_at_a_third(
        store, days, seconds, micros, windows, from_tiles, exact, events):
    backend = ibis.duckdb.from_connection(store)
    fills = backend.table("fills")

    def compiled(cut: datetime) -> str:
        t = tiles.tile_tables(backend, cut) if from_tiles else None
        ev = [datetime(2024, 1, 5).date(), datetime(2024, 1, 9).date()] if events else []
        expr = features_expr(fills, cut, windows, tiles=t, event_days=ev,
                             exact_quantiles=exact)
        return str(ibis.to_sql(expr, dialect="duckdb", pretty=False))

    c1, c2, c3 = (datetime(2024, 1, 1, tzinfo=UTC)
                  + timedelta(days=d, seconds=seconds, microseconds=micros) for d in days)
    t = sqlcache.derive(compiled(c1), c1, compiled(c2), c2)
    assert t is not None
    assert t.render(c3) == compiled(c3)


def test_compute_features_compiles_once_per_key_and_then_renders(store, tmp_path,
                                                                 monkeypatch):
    monkeypatch.setenv("TRADERSEG_SQL_CACHE_DIR", str(tmp_path / "cache"))
    sqlcache.clear_memory()
    compiles = []
    real = ibis.to_sql

    def counting(*args, **kwargs):
        compiles.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(ibis, "to_sql", counting)
    # market events on Jan 11, Jan 12, Feb 10, Mar 18 and Apr 10: the same ones before each
    cuts = ["2024-03-20T06:00", "2024-03-20T06:00", "2024-03-25T06:00", "2024-04-02T06:00"]
    frames = [compute_features(store, c, ("7d", "all"), tiles="require") for c in cuts]
    assert len(compiles) == 2  # the first cutoff, then the second one; the rest render
    assert len(list((tmp_path / "cache").glob("*.json"))) == 1
    # a new process (memory cleared) renders from the folder
    sqlcache.clear_memory()
    again = compute_features(store, "2024-04-02T06:00", ("7d", "all"), tiles="require")
    assert len(compiles) == 2
    # an event between the cutoffs makes another key
    compute_features(store, "2024-04-12T06:00", ("7d", "all"), tiles="require")
    assert len(compiles) == 3
    # the results equal a computation with the cache off
    monkeypatch.setenv("TRADERSEG_SQL_CACHE", "false")
    sqlcache.clear_memory()
    for cut, got in zip(cuts, frames, strict=True):
        pd.testing.assert_frame_equal(
            got, compute_features(store, cut, ("7d", "all"), tiles="require"))
    pd.testing.assert_frame_equal(again, frames[-1])
    sqlcache.clear_memory()


def test_a_damaged_cache_file_is_ignored(store, tmp_path, monkeypatch):
    monkeypatch.setenv("TRADERSEG_SQL_CACHE_DIR", str(tmp_path))
    sqlcache.clear_memory()
    first = compute_features(store, "2024-03-01T07:00", ("all",), tiles="never")
    (path,) = tmp_path.glob("*.json")
    good = path.read_text()
    entry = json.loads(good)
    tampered = json.loads(entry["entry"])
    tampered["pending"]["sql"] = "SELECT 1 AS account_id"
    for bad in ("{not json",
                # content changed, digest not
                json.dumps({**entry, "entry": json.dumps(tampered)}),
                # another key's file under this name
                json.dumps({**entry, "key": "0" * 32})):
        path.write_text(bad)
        sqlcache.clear_memory()
        pd.testing.assert_frame_equal(
            compute_features(store, "2024-03-01T07:00", ("all",), tiles="never"), first)
    sqlcache.clear_memory()


def test_the_tile_sql_is_compiled_once_across_runs(store, tmp_path, monkeypatch):
    monkeypatch.setenv("TRADERSEG_SQL_CACHE_DIR", str(tmp_path))
    sqlcache.clear_memory()
    compiles = []
    real = ibis.to_sql
    monkeypatch.setattr(ibis, "to_sql", lambda *a, **k: compiles.append(1) or real(*a, **k))
    first = tiles._tile_sql(store, "fills")
    n = len(compiles)
    assert n == len(first) > 0  # one compile per tile part, the first time only
    # a new run: nothing in memory, the folder holds the text
    sqlcache.clear_memory()
    assert tiles._tile_sql(store, "fills") == first
    assert len(compiles) == n
    sqlcache.clear_memory()


@pytest.mark.parametrize("micros", [0, 5, 100_000, 999_999])
def test_timestamps_render_as_ibis_compiles_them(micros):
    # a few microseconds render as 5e-06 seconds: the template must follow that form too
    t = ibis.table({"ts": "timestamp('UTC')", "d": "int64"}, name="f")

    def compiled(cut: datetime) -> str:
        day0 = datetime(cut.year, cut.month, cut.day, tzinfo=UTC)
        return str(ibis.to_sql(t.filter(t.ts < cut, t.ts >= day0 - timedelta(days=30)),
                               dialect="duckdb", pretty=False))

    c1 = datetime(2024, 3, 30, 12, 0, 0, micros, tzinfo=UTC)
    c2, c3 = c1 + timedelta(days=1), c1 + timedelta(days=400)
    template = sqlcache.derive(compiled(c1), c1, compiled(c2), c2)
    assert template is not None
    assert [s.kind for s in template.slots] == ["cutoff", "day_start"]
    assert template.slots[1].offset == -30
    assert template.render(c3) == compiled(c3)


def test_stored_tile_types_are_part_of_the_key(tmp_path, monkeypatch):
    monkeypatch.setenv("TRADERSEG_SQL_CACHE_DIR", str(tmp_path / "cache"))
    sqlcache.clear_memory()
    con = fills_store(random_fills(n=400, accounts=6, seed=5), tmp_path / "s.duckdb")
    tiles.rebuild(con)
    for cut in ("2024-03-01", "2024-03-02"):  # a template is made
        compute_features(con, cut, ("all",), tiles="require")
    before = sqlcache.counts["compiled"]
    compute_features(con, "2024-03-03", ("all",), tiles="require")
    assert sqlcache.counts["compiled"] == before  # rendered
    # a store whose tiles hold another type (an older layout kept counts as HUGEINT)
    con.execute("ALTER TABLE tiles_day ALTER n TYPE HUGEINT")
    got = compute_features(con, "2024-03-04", ("all",), tiles="require")
    assert sqlcache.counts["compiled"] == before + 1  # another key: compiled, not rendered
    monkeypatch.setenv("TRADERSEG_SQL_CACHE", "false")
    sqlcache.clear_memory()
    pd.testing.assert_frame_equal(got, compute_features(con, "2024-03-04", ("all",),
                                                        tiles="require"))
    con.close()
    sqlcache.clear_memory()


def test_entries_unused_for_thirty_days_are_deleted_at_the_next_write(store, tmp_path,
                                                                      monkeypatch):
    import os
    import time

    monkeypatch.setenv("TRADERSEG_SQL_CACHE_DIR", str(tmp_path))
    sqlcache.clear_memory()
    now = time.time()
    day = 86_400
    stale, kept = tmp_path / ("a" * 32 + ".json"), tmp_path / ("b" * 32 + ".json")
    for path, age in ((stale, 30 * day + 60), (kept, 30 * day - 60)):
        path.write_text("{}")
        os.utime(path, (now - age, now - age))
    compute_features(store, "2024-03-05T09:00", ("all",), tiles="never")  # writes an entry
    assert not stale.exists() and kept.exists()
    # reading an entry counts as a use
    (mine,) = set(tmp_path.glob("*.json")) - {kept}
    os.utime(mine, (now - 40 * day, now - 40 * day))
    sqlcache.clear_memory()
    compute_features(store, "2024-03-05T09:00", ("all",), tiles="never")
    assert mine.stat().st_mtime > now - day
    sqlcache.clear_memory()


def test_prune_keeps_an_entry_used_exactly_thirty_days_ago(tmp_path):
    import os

    now = 2_000_000_000.0
    at_limit, past = tmp_path / "a.json", tmp_path / "b.json"
    limit = sqlcache.UNUSED_DAYS * 86_400
    for path, age in ((at_limit, limit), (past, limit + 1)):
        path.write_text("{}")
        os.utime(path, (now - age, now - age))
    sqlcache._prune(tmp_path, now)
    assert at_limit.exists() and not past.exists()


_WARM_RUN = """
import sys
from traderseg.features.compute import compute_features
df = compute_features(sys.argv[1], "2024-03-20T06:00", ("7d", "all"), tiles=sys.argv[2])
print(len(df), df.attrs["source"], "ibis" in sys.modules, "sqlglot" in sys.modules)
"""


@pytest.mark.parametrize("mode", ["require", "never"])
def test_a_run_that_finds_its_sql_cached_does_not_load_ibis(tmp_path, mode):
    """Features from cached SQL run on DuckDB alone; the first run of a key compiles."""
    import subprocess
    import sys

    path = tmp_path / "s.duckdb"
    con = fills_store(random_fills(n=600, accounts=12, seed=5), path)
    tiles.rebuild(con)
    con.close()
    env = {**__import__("os").environ, "TRADERSEG_SQL_CACHE_DIR": str(tmp_path / "cache")}
    runs = [subprocess.run([sys.executable, "-c", _WARM_RUN, str(path), mode], env=env,
                           capture_output=True, text=True, check=True).stdout.split()
            for _ in range(2)]
    source = "tiles" if mode == "require" else "fills"
    assert runs[0][1:] == [source, "True", "True"]  # compiled
    assert runs[1][1:] == [source, "False", "False"]  # the cached text, no compiler loaded
    assert runs[0][0] == runs[1][0] and int(runs[0][0]) > 0


def test_fills_registered_on_a_connection_are_found(tmp_path, monkeypatch):
    """A DataFrame registered as ``fills`` (a temporary view) is a source like a table."""
    import duckdb

    monkeypatch.setenv("TRADERSEG_SQL_CACHE", "false")
    fills = random_fills(n=300, accounts=6, seed=8)
    stored = fills_store(fills, tmp_path / "s.duckdb")
    want = compute_features(stored, "2024-03-20", ("30d", "all"), tiles="never")
    stored.close()
    con = duckdb.connect()
    con.register("fills", fills)
    got = compute_features(con, "2024-03-20", ("30d", "all"))
    assert got.attrs["source"] == "fills"
    pd.testing.assert_frame_equal(got, want)


_INGEST_RUN = """
import sys
from traderseg.ingest import ingest
rep = ingest(sys.argv[1], sys.argv[2])
print(sum(s.stored for s in rep.sources), "ibis" in sys.modules, "sqlglot" in sys.modules)
"""


def test_an_ingest_that_finds_its_tile_sql_cached_does_not_load_ibis(tmp_path):
    """Day after day: the first ingest builds the tiles, the second refreshes them (both
    compile), the third finds both texts kept and runs DuckDB alone; tiles stay current."""
    import subprocess
    import sys

    import pyarrow as pa
    import pyarrow.parquet as pq

    fills = random_fills(n=600, accounts=12, seed=6).sort_values("ts")
    days = fills["ts"].dt.floor("D")
    cuts = sorted(days.unique())
    parts = [fills[days < cuts[5]], fills[(days >= cuts[5]) & (days < cuts[9])],
             fills[days >= cuts[9]]]
    env = {**__import__("os").environ, "TRADERSEG_SQL_CACHE_DIR": str(tmp_path / "cache")}
    runs = []
    for i, part in enumerate(parts):
        path = tmp_path / f"part{i}.parquet"
        pq.write_table(pa.Table.from_pandas(part, preserve_index=False), path)
        out = subprocess.run([sys.executable, "-c", _INGEST_RUN, str(path),
                              str(tmp_path / "s.duckdb")], env=env, capture_output=True,
                             text=True, check=True).stdout.split()
        runs.append(out)
    assert [int(r[0]) for r in runs] == [len(p) for p in parts]
    assert [r[1:] for r in runs] == [["True", "True"], ["True", "True"], ["False", "False"]]
    from traderseg.store import connect

    con = connect(tmp_path / "s.duckdb", read_only=True)
    assert tiles.status(con) == (True, "current")
    con.close()


@pytest.mark.parametrize("cut, want", [
    # events on Jan 11, Jan 12, Feb 10, Mar 18 and Apr 10 (bars at midnight UTC)
    ("2024-01-11T00:00:00", []),  # the bar at the cutoff is not before it
    ("2024-01-11T00:00:00.000001", ["2024-01-11"]),
    ("2024-03-18T12:00", ["2024-01-11", "2024-01-12", "2024-02-10", "2024-03-18"]),
])
def test_event_days_read_with_sql_equal_the_ibis_reading(store, cut, want):
    """The DuckDB path's event days (plain SQL) and the other engines' (Ibis) agree."""
    from traderseg.features.compute import _event_days_duckdb, event_days_of, parse_as_of

    at = parse_as_of(cut)
    days = [str(d) for d in _event_days_duckdb(store, at)]
    assert days == want
    market = ibis.duckdb.from_connection(store).table("market")
    assert [str(d) for d in event_days_of(market, at)] == want


def test_no_market_events_is_none_not_an_empty_list(tmp_path):
    from traderseg.features.compute import _event_days_duckdb, parse_as_of

    con = fills_store(random_fills(n=50, accounts=2, seed=1), tmp_path / "s.duckdb")
    assert _event_days_duckdb(con, parse_as_of("2024-06-01")) is None
    con.close()
