"""The stream consumer against the batch computation over the same fills."""

from __future__ import annotations

import gc
import io
import json
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers.stream import (
    DECIDE_EVERY_S,
    assert_same_decisions,
    audit_of,
    batch_reference,
    controls_of,
    engine_for,
    perp_fill,
    run_replay,
)
from helpers.stream import ListSource as _Batches
from traderseg.errors import DataError, StoreError
from traderseg.features.compute import compute_features
from traderseg.features.measures import SKETCH_RELATIVE_ERROR
from traderseg.online import state as S
from traderseg.online.consumer import (
    FULL_COLLECTION_EVERY,
    StreamConfig,
    StreamConsumer,
    StreamStats,
    tick_end,
)
from traderseg.online.sources import JsonlSource, ReplaySource
from traderseg.online.state import load
from traderseg.store import connect


@pytest.fixture(scope="module")
def streamed(venue, tmp_path_factory):
    """One uninterrupted replay and the batch reference over the same store."""
    db = venue.store(tmp_path_factory.mktemp("ref"))
    stats = run_replay(db, venue, DECIDE_EVERY_S)
    con = connect(db)
    latest, audit = batch_reference(con, venue, DECIDE_EVERY_S)
    yield db, con, stats, latest, audit
    con.close()


def test_interval_ends_are_exclusive():
    day = 86_400_000_000
    assert tick_end(0, day) == day
    assert tick_end(day - 1, day) == day
    assert tick_end(day, day) == 2 * day  # a fill at the end opens the next interval


def test_replay_decisions_equal_the_batch_computation(streamed):
    db, con, stats, latest, audit = streamed
    assert stats.accepted > 1000 and stats.rejected == 0 and stats.duplicates == 0
    assert stats.decisions == len(latest) or stats.decisions > len(latest)
    assert_same_decisions(con, latest, audit)
    stored = con.execute("SELECT count(*) FROM fills").fetchone()[0]
    assert stored == stats.accepted


def test_online_features_equal_batch_features_at_the_end(streamed, venue):
    db, con, stats, _, _ = streamed
    loaded = load(con, "replay:fills")
    last = con.execute("SELECT max(ts) FROM fills").fetchone()[0]
    cutoff = pd.Timestamp(last) + pd.Timedelta(microseconds=1)
    eng = engine_for(con, venue)
    batch = compute_features(con, cutoff.to_pydatetime(), eng.windows)
    from traderseg.online.consumer import _event_times

    events = _event_times(con)
    evs = None if events is None else sorted({d for t, d in events
                                               if t < cutoff.value // 1000})
    online = pd.DataFrame.from_records(
        [loaded.states[a].get(cutoff, eng.windows, evs) for a in batch.index],
        index=batch.index)[batch.columns]
    assert len(online) == len(loaded.states) == len(batch)
    sketch = [c for c in batch.columns if c.startswith(("notional_median", "notional_p95"))]
    exact = [c for c in batch.columns if c not in sketch]
    pd.testing.assert_frame_equal(online[exact], batch[exact], check_exact=False, rtol=1e-9,
                                  atol=1e-9, check_dtype=False)
    # the sketch columns equal the batch sketch, and the exact quantiles within the bound
    pd.testing.assert_frame_equal(online[sketch], batch[sketch], check_exact=False,
                                  rtol=1e-12, check_dtype=False)
    # the sketch's bound: within its relative error of the order statistic at rank
    # floor(q (n - 1)) (the venue spans less than 30 days: both windows hold every fill)
    notional = con.execute("SELECT account_id, notional_usd FROM fills").df()
    for q, stem in ((0.5, "notional_median"), (0.95, "notional_p95")):
        rank = notional.groupby("account_id")["notional_usd"].apply(
            lambda x, q=q: float(np.sort(x.to_numpy())[int(np.floor(q * (len(x) - 1)))]))
        for w in eng.windows:
            got = online[f"{stem}__{w}"].reindex(rank.index)
            rel = ((got - rank).abs() / rank).to_numpy()
            assert np.nanmax(rel) <= SKETCH_RELATIVE_ERROR + 1e-12, (stem, w)


def test_decision_rows_carry_the_stored_kyc_tier_as_an_integer(streamed, venue):
    _, con, _, _, _ = streamed
    from traderseg.online.decide import empty_assignments

    eng = engine_for(con, venue)
    last = con.execute("SELECT max(ts) FROM fills").fetchone()[0]
    cutoff = pd.Timestamp(last) + pd.Timedelta(microseconds=1)
    feats = compute_features(con, cutoff.to_pydatetime(), eng.windows)[eng.feature_columns]
    # three stored accounts and one the accounts table does not know
    feats = pd.concat([feats.iloc[:3], feats.iloc[:1].set_axis(["not-in-accounts"])])
    rows = eng.decide(feats, empty_assignments(), cutoff).rows
    stored = dict(con.execute("SELECT account_id, kyc_tier FROM accounts").fetchall())
    got = dict(zip(rows["account_id"], rows["kyc_tier"], strict=True))
    for a in feats.index[:3]:
        assert got[a] == stored[a] and (stored[a] is None or type(got[a]) is int)
    assert got["not-in-accounts"] is None


def test_a_consumer_stopped_midway_resumes_to_the_same_decisions(streamed, venue, tmp_path):
    _, _, _, latest, audit = streamed
    db = venue.store(tmp_path)
    con = connect(db)
    eng = engine_for(con, venue)
    cfg = StreamConfig(decide_every_s=DECIDE_EVERY_S, batch_size=700, checkpoint_fills=500)
    first = StreamConsumer(con, ReplaySource(venue.fills), eng, cfg, source_label="replay:fills")
    first.run(max_messages=2100, close_at_end=False)
    assert 0 < con.execute("SELECT count(*) FROM fills").fetchone()[0] < first.stats.read + 1
    second = StreamConsumer(con, ReplaySource(venue.fills), engine_for(con, venue), cfg,
                            source_label="replay:fills")
    second.run()
    assert_same_decisions(con, latest, audit)
    con.close()


def test_fills_seen_twice_change_nothing(streamed, venue):
    db, con, stats, latest, audit = streamed
    before = audit_of(con)
    again = StreamConsumer(con, ReplaySource(venue.fills), engine_for(con, venue),
                           StreamConfig(decide_every_s=DECIDE_EVERY_S),
                           source_label="replay:the same fills again")
    st = again.run()
    assert st.accepted == 0 and st.duplicates == stats.accepted and st.decisions == 0
    pd.testing.assert_frame_equal(audit_of(con), before)
    assert_same_decisions(con, latest, audit)


def test_bad_messages_go_to_rejects_and_the_stream_goes_on(venue, tmp_path):
    db = venue.store(tmp_path)
    con = connect(db)
    good = {"fill_id": "x1", "ts": "2024-01-02T10:00:00Z", "account_id": "acct-000001",
            "instrument": "BTC-PERP", "underlying": "BTC", "kind": "perp", "side": "buy",
            "qty": "1", "price": "40000", "notional_usd": "40000", "fee_usd": "2",
            "is_maker": "false"}
    lines = [
        json.dumps(good),
        "{not json",
        json.dumps([1, 2]),
        json.dumps(dict(good, fill_id="x2", qty="-1")),
        json.dumps(dict(good, fill_id="x3", kind="swap")),
        json.dumps({k: v for k, v in good.items() if k != "price"} | {"fill_id": "x4"}),
        json.dumps(dict(good, fill_id="x5", ts="yesterday")),
        json.dumps(good),  # the same fill again: a re-delivery, not a reject
        json.dumps(dict(good, fill_id="x6", ts="2024-01-02T11:00:00Z")),
    ]
    src = JsonlSource(io.StringIO("\n".join(lines) + "\n"), name="stdin")
    st = StreamConsumer(con, src, engine_for(con, venue),
                        StreamConfig(decide_every_s=DECIDE_EVERY_S),
                        source_label="stdin").run()
    assert (st.read, st.accepted, st.rejected, st.duplicates) == (9, 2, 6, 1)
    rej = con.execute("SELECT source, line, field, reason FROM rejects ORDER BY line").fetchall()
    assert [(s, n, f) for s, n, f, _ in rej] == [
        ("stdin", 2, "*"), ("stdin", 3, "*"), ("stdin", 4, "qty"), ("stdin", 5, "kind"),
        ("stdin", 6, "price"), ("stdin", 7, "ts")]
    assert "must be > 0" in rej[2][3] and "swap" in rej[3][3]
    assert sorted(r[0] for r in con.execute("SELECT fill_id FROM fills").fetchall()) == ["x1", "x6"]
    assert len(controls_of(con)) == 1
    con.close()


def test_replay_of_a_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        ReplaySource(tmp_path / "nope")


class _Watching(JsonlSource):
    """A source that records the collector's thresholds each time it is read."""

    def __init__(self, *args, fail=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.seen: list[tuple[int, ...]] = []
        self.fail = fail

    def read(self, max_messages, block_ms):
        self.seen.append(gc.get_threshold())
        if self.fail:
            raise RuntimeError("source broke")
        return super().read(max_messages, block_ms)


@pytest.mark.parametrize("fail", [False, True])
def test_full_collections_are_rarer_while_running_and_restored_after(venue, tmp_path, fail):
    db = venue.store(tmp_path)
    con = connect(db)
    before = gc.get_threshold()
    gc.set_threshold(before[0], before[1], 7)
    try:
        src = _Watching(io.StringIO(""), name="stdin", fail=fail)
        consumer = StreamConsumer(con, src, engine_for(con, venue),
                                  StreamConfig(decide_every_s=DECIDE_EVERY_S),
                                  source_label="stdin")
        if fail:
            with pytest.raises(RuntimeError, match="source broke"):
                consumer.run()
        else:
            consumer.run()
        assert src.seen and all(t == (before[0], before[1], FULL_COLLECTION_EVERY)
                                for t in src.seen)
        assert gc.get_threshold() == (before[0], before[1], 7)
        # a threshold already above the consumer's is kept
        gc.set_threshold(before[0], before[1], FULL_COLLECTION_EVERY + 1)
        src = _Watching(io.StringIO(""), name="stdin")
        StreamConsumer(con, src, engine_for(con, venue),
                       StreamConfig(decide_every_s=DECIDE_EVERY_S),
                       source_label="stdin").run()
        assert src.seen[0][2] == FULL_COLLECTION_EVERY + 1
    finally:
        gc.set_threshold(*before)
        con.close()


def _fill(fid: str, hour: int) -> dict:
    return perp_fill(fid, f"2024-01-02T{hour:02d}:00:00Z")


def _consumer(con, venue, source, **cfg):
    return StreamConsumer(con, source, engine_for(con, venue),
                          StreamConfig(decide_every_s=DECIDE_EVERY_S, checkpoint_s=0.0, **cfg),
                          source_label="mem")


def test_the_store_is_asked_about_a_fill_not_later_than_every_stored_one(venue, tmp_path):
    """A redelivered fill at the latest stored time is a duplicate; later ones skip the store."""
    con = connect(venue.store(tmp_path))
    _consumer(con, venue, _Batches([[_fill("m1", 10), _fill("m2", 11)]])).run()
    queries = []
    again = _consumer(con, venue, _Batches([[_fill("m2", 11)], [_fill("m3", 12)],
                                            [_fill("m3", 12), _fill("m4", 13)]]))
    real = again.con

    class Counting:  # the consumer's connection, counting the store's duplicate probes
        def __getattr__(self, name):
            return getattr(real, name)

        def execute(self, sql, *args):
            if "_stream_probe" in sql:
                queries.append(sql)
            return real.execute(sql, *args)

    again.con = Counting()
    st = again.run()
    # m2, at the latest stored time (11:00), is probed and found; m3 is later than every
    # fill stored or seen: no probe; m3 again is seen pending, m4 is later than all
    assert (st.accepted, st.duplicates) == (2, 2)
    assert len(queries) == 1
    assert con.execute("SELECT count(*) FROM fills").fetchone()[0] == 4
    con.close()


def test_a_commit_runs_while_the_next_fills_are_read_and_a_fill_in_it_is_seen(
        venue, tmp_path, monkeypatch):
    db = venue.store(tmp_path)
    con = connect(db)
    first = [_fill("m1", 10), _fill("m2", 11)]
    # the second batch repeats m2 while the first commit still runs, then brings m3
    src = _Batches([first, [_fill("m2", 11), _fill("m3", 12)]])
    writes = []
    real = S.write_state

    def slow_write(*args, **kwargs):
        if not writes:  # the first commit waits until the consumer has read again (the
            # second read may come before this thread gets here: that counts as well)
            deadline = time.monotonic() + 10
            while src.count < 2:
                assert time.monotonic() < deadline, "the consumer waited for the commit"
                time.sleep(0.005)
        writes.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(S, "write_state", slow_write)
    st = _consumer(con, venue, src).run()
    assert (st.accepted, st.duplicates) == (2 + 1, 1)
    assert sorted(r[0] for r in con.execute("SELECT fill_id FROM fills").fetchall()) == [
        "m1", "m2", "m3"]
    assert st.checkpoints == len(writes) >= 2
    con.close()


@pytest.mark.parametrize("where", ["store", "after"])
def test_a_failed_background_commit_stops_the_run_and_nothing_is_lost(
        venue, tmp_path, monkeypatch, where):
    db = venue.store(tmp_path)
    con = connect(db)
    before = con.execute("SELECT count(*) FROM fills").fetchone()[0]
    fills = [_fill(f"m{i}", 10 + i) for i in range(3)]

    def broken(*args, **kwargs):
        raise OSError("disk gone")

    if where == "store":  # inside the transaction: it is rolled back
        monkeypatch.setattr(S, "write_state", broken)
    consumer = _consumer(con, venue, _Batches([fills]))
    if where == "after":  # after the commit (acknowledgement, publication)
        consumer.publish = broken
    # a failed store is one line naming the store; a failure after it is what it was
    expected = StoreError if where == "store" else OSError
    with pytest.raises(expected, match="disk gone") as err:
        consumer.run()
    if where == "store":
        assert str(err.value).startswith(f"{db}: checkpoint not committed (disk gone)")
    stored = con.execute("SELECT count(*) FROM fills").fetchone()[0] - before
    assert stored == (0 if where == "store" else 3)
    monkeypatch.undo()
    # a new consumer takes the fills again (a redelivery): each is stored once
    st = _consumer(con, venue, _Batches([fills])).run()
    assert con.execute("SELECT count(*) FROM fills").fetchone()[0] - before == 3
    assert st.accepted + st.duplicates == 3
    con.close()


def test_a_store_that_refuses_a_checkpoint_stops_the_run_and_nothing_is_lost(venue, tmp_path):
    """A real DuckDB failure inside the checkpoint's transaction (a state table gone)."""
    db = venue.store(tmp_path)
    con = connect(db)
    before = con.execute("SELECT count(*) FROM fills").fetchone()[0]
    fills = [_fill(f"m{i}", 10 + i) for i in range(3)]
    consumer = _consumer(con, venue, _Batches([fills]))
    con.execute("DROP TABLE online_stale")  # after start: the commit's state rows fail
    with pytest.raises(StoreError, match="checkpoint not committed .*online_stale"):
        consumer.run()
    assert con.execute("SELECT count(*) FROM fills").fetchone()[0] == before
    S.ensure_state_tables(con)
    st = _consumer(con, venue, _Batches([fills])).run()
    assert (st.accepted, st.duplicates) == (3, 0)
    assert con.execute("SELECT count(*) FROM fills").fetchone()[0] - before == 3
    con.close()


def test_a_store_with_online_tables_of_another_shape_is_one_line_and_exit_2(venue, tmp_path):
    db = venue.store(tmp_path)
    con = connect(db)
    con.execute("CREATE TABLE controls (account_id VARCHAR PRIMARY KEY, segment_id VARCHAR)")
    con.close()
    r = subprocess.run(
        [sys.executable, "-m", "traderseg", "stream", "--source", f"replay:{venue.fills}",
         "--db", str(db), "--model", str(venue.model), "--policy", str(venue.policy)],
        capture_output=True, text=True, timeout=300)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr
    assert lines[0].startswith(f"error: {db}: table controls lacks segment_name")


def test_a_replay_whose_every_message_is_rejected_exits_2(venue, tmp_path, capsys):
    from helpers.cli import run_cli

    db = venue.store(tmp_path)
    bad = tmp_path / "fills.csv"  # a misnamed quantity column: every row lacks `qty`
    bad.write_text("fill_id,ts,account_id,instrument,underlying,kind,side,quantity,price,"
                   "notional_usd,fee_usd\n" + "".join(
                       f"f{i},2024-01-02T00:00:0{i}Z,acct-000001,BTC-PERP,BTC,perp,buy,1,"
                       "40000,40000,2\n" for i in range(3)))
    argv = ["stream", "--source", f"replay:{bad}", "--db", str(db), "--model",
            str(venue.model), "--policy", str(venue.policy)]
    code, out, err = run_cli(argv, capsys)
    assert code == 2 and "Traceback" not in out + err
    assert f"replay:{bad}: every message was rejected (3)" in err
    con = connect(db)
    assert con.execute("SELECT count(*) FROM rejects").fetchone()[0] >= 3
    con.close()
    # an empty replay path is refused before anything (it is not the current folder)
    argv[2] = "replay:"
    code, _, err = run_cli(argv, capsys)
    assert code == 2 and "give the file or folder to replay" in err


# -- interval bookkeeping of a batch, against the fill-by-fill rule ---------------------------
def _reference_fold(cp, open_key, open_fills, times, accts, ids, tick, events):
    """The rule, fill by fill: close the open interval at the first fill at or after its end;
    a fill before the last decided end is late and counts in the next interval; an account's
    trigger is its largest (time, fill id) in the open interval."""
    for i, ts in enumerate(times):
        if cp.open_tick is not None and ts >= cp.open_tick:
            events.append(("close", i, cp.open_tick, dict(open_fills)))
            cp.last_tick, cp.open_tick = cp.open_tick, None
            open_key.clear()
            open_fills.clear()
        if cp.open_tick is None:
            if cp.last_tick is not None and ts < cp.last_tick:
                cp.late += 1
                cp.open_tick = cp.last_tick + tick
            else:
                cp.open_tick = tick_end(ts, tick)
        elif cp.last_tick is not None and ts < cp.last_tick:
            cp.late += 1
        key = (ts, ids[i])
        if open_key.get(accts[i], key) <= key:
            open_key[accts[i]] = key
            open_fills[accts[i]] = ids[i]


class _Bookkeeping(StreamConsumer):
    """A consumer with nothing but its interval bookkeeping: folds and closes are recorded."""

    def __init__(self, tick_s: float) -> None:  # noqa: D107 - no store, no engine
        self.cfg = StreamConfig(decide_every_s=tick_s)
        self.cp = S.Checkpoint("t")
        self.open_key, self.open_fills = {}, {}
        self.p_closers_ms, self.p_count = [], 0
        self.stats = StreamStats()
        self.events: list = []

    def _fold_slice(self, fills):
        self.events.append(("fold", fills.num_rows))

    def _close_open_tick(self):
        self.events.append(("close", self.cp.open_tick, dict(self.open_fills)))
        self.cp.last_tick, self.cp.open_tick = self.cp.open_tick, None
        self.open_fills, self.open_key = {}, {}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.tuples(st.integers(0, 40), st.sampled_from("abc"),
                                   st.integers(0, 5)), min_size=1, max_size=30),
                min_size=1, max_size=4))
def test_a_batch_closes_intervals_and_counts_late_fills_as_fill_by_fill(batches):
    from unittest import mock

    import traderseg.online.consumer as C

    # every slice folded by columns, so the folds are recorded (not folded into states);
    # an interval's latest fills found by sorting columns, then row by row
    for by_columns_from in (0, 10**9):
        with mock.patch.object(C, "columnar", lambda rows: True), \
                mock.patch.object(C, "NOTE_BY_COLUMNS_FROM", by_columns_from):
            _check_bookkeeping(batches)


def _check_bookkeeping(batches):
    import pyarrow as pa

    tick_s = 10.0
    tick = int(tick_s * 1_000_000)
    got = _Bookkeeping(tick_s)
    want_cp = S.Checkpoint("t")
    want_key: dict = {}
    want_fills: dict = {}
    want_events: list = []
    n = 0
    for b, rows in enumerate(batches):
        rows = sorted(rows)  # a batch is folded in time order
        times = [t * 1_000_000 for t, _, _ in rows]
        accts = [a for _, a, _ in rows]
        ids = [f"f{b}-{k}-{x}" for k, (_, _, x) in enumerate(rows)]
        order = sorted(range(len(rows)), key=lambda i: times[i])
        times, accts, ids = ([v[i] for i in order] for v in (times, accts, ids))
        table = pa.table({"account_id": accts, "fill_id": ids,
                          "ts": pa.array(times, pa.timestamp("us", tz="UTC"))})
        before = len(got.events)
        got._fold(table)
        # the folds of a batch cover it in order; a close comes where the folds have reached
        # (its closing fill is the next to fold), recorded here with the fill's position
        cursor = 0
        for k in range(before, len(got.events)):
            ev = got.events[k]
            if ev[0] == "fold":
                cursor += ev[1]
            else:
                got.events[k] = ("close", n + cursor, ev[1], ev[2])
        assert cursor == len(rows)
        _reference_fold(want_cp, want_key, want_fills, times, accts, ids, tick,
                        events := [])
        want_events += [(k, n + i, t, f) for k, i, t, f in events]
        n += len(rows)
    closes = [e for e in got.events if e[0] == "close"]
    assert closes == want_events
    assert (got.cp.open_tick, got.cp.last_tick, got.cp.late) == (
        want_cp.open_tick, want_cp.last_tick, want_cp.late)
    assert got.stats.late == want_cp.late and got.p_count == n
    assert got.open_key == want_key and got.open_fills == want_fills
