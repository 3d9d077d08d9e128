"""The stream's state in the store: tiles written when their day is over, the rest folded again."""

from __future__ import annotations

import collections
import math

import pytest

from helpers.stream import (
    DECIDE_EVERY_S,
    ListSource,
    assert_same_decisions,
    batch_reference,
    engine_for,
    perp_fill,
)
from traderseg.features.online import AccountState, DayTile
from traderseg.online import state as S
from traderseg.online.consumer import US_PER_DAY, StreamConfig, StreamConsumer
from traderseg.online.sources import ReplaySource
from traderseg.schema import FILLS
from traderseg.store import connect

LABEL = "replay:fills"


class _Crash(Exception):
    """Raised from a checkpoint's callback: the process ends there, the commit stored."""


def _reference(con) -> dict[str, AccountState]:
    """Every stored fill folded one by one (the definition of the online state)."""
    states: dict[str, AccountState] = {}
    cur = con.execute(f"SELECT {', '.join(FILLS.names)} FROM fills ORDER BY ts, fill_id")
    names = [d[0] for d in cur.description]
    for row in cur.fetchall():
        fill = dict(zip(names, row, strict=True))
        states.setdefault(fill["account_id"], AccountState()).update(fill)
    return states


def _same_number(a, b) -> bool:
    if a is None or b is None:
        return a is b
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def _same_tile(a: DayTile, b: DayTile) -> bool:
    return (all(_same_number(x, y) for x, y in zip(a.s, b.s, strict=True))
            and a.maps.keys() == b.maps.keys()
            and all(a.maps[k][0] == b.maps[k][0] and _same_number(a.maps[k][1], b.maps[k][1])
                    for k in a.maps)
            and a.sketch == b.sketch and a.pairs == b.pairs and a.straddles == b.straddles)


def _assert_tiles_equal(got: dict[str, AccountState], want: dict[str, AccountState]) -> None:
    assert got.keys() == want.keys()
    for acct, st in want.items():
        assert got[acct].tiles.keys() == st.tiles.keys(), acct
        for day, tile in st.tiles.items():
            assert _same_tile(got[acct].tiles[day], tile), (acct, day)
        assert got[acct].last_us == st.last_us


def _consumer(con, venue, **cfg) -> StreamConsumer:
    config = StreamConfig(decide_every_s=DECIDE_EVERY_S, batch_size=300, checkpoint_fills=300,
                          **cfg)
    return StreamConsumer(con, ReplaySource(venue.fills), engine_for(con, venue), config,
                          source_label=LABEL)


def test_a_crash_leaves_changed_tiles_listed_and_a_restart_folds_their_fills_again(
        venue, tmp_path):
    con = connect(venue.store(tmp_path))
    first = _consumer(con, venue, tiles_per_checkpoint=40)

    def crash(stats):
        if stats.checkpoints == 3:
            raise _Crash

    first.on_checkpoint = crash
    with pytest.raises(_Crash):
        first.run()
    stale = set(con.execute("SELECT account_id, day FROM online_stale").fetchall())
    written = set(con.execute("SELECT account_id, day FROM online_tiles").fetchall())
    # some tiles of ended days were written, some changed tiles only listed (at most 40 of
    # the ended days' tiles a checkpoint)
    assert stale and written and not stale & written
    assert len(written) <= 40 * 3
    # only tiles of days the stored decisions had passed were written
    last_tick = S.load(con, LABEL).checkpoint.last_tick
    assert max(d for _, d in written) < last_tick // US_PER_DAY

    # what a restart loads equals every stored fill folded again, the listed tiles too
    _assert_tiles_equal(S.load(con, LABEL).states, _reference(con))

    second = _consumer(con, venue)
    second.run()
    # the run's last checkpoint writes every tile: nothing is left to fold again
    assert con.execute("SELECT count(*) FROM online_stale").fetchone()[0] == 0
    loaded = S.load(con, LABEL)
    assert not loaded.stale
    _assert_tiles_equal(loaded.states, _reference(con))
    latest, audit = batch_reference(con, venue, DECIDE_EVERY_S)
    assert_same_decisions(con, latest, audit)
    con.close()


def _picker(budget: int, last_tick: int, stale: set[tuple[str, int]]) -> StreamConsumer:
    c = StreamConsumer.__new__(StreamConsumer)  # the choice needs no store, source or engine
    c.cfg = StreamConfig(tiles_per_checkpoint=budget)
    c.cp = S.Checkpoint("x", last_tick=last_tick)
    c.stale, c.stale_days = set(), collections.Counter()
    c._mark_stale(set(stale))
    return c


def test_tiles_are_written_once_the_decisions_have_passed_their_day_a_few_at_a_time():
    day = 100
    stale = {("a", day - 1), ("b", day), ("c", day), ("d", day + 1)}
    # the decisions reached the end of ``day``: its tiles and the earlier ones may go
    c = _picker(10, (day + 1) * US_PER_DAY, stale)
    assert c._tiles_to_write(False) == {("a", day - 1), ("b", day), ("c", day)}
    assert c.stale == {("d", day + 1)}
    # one microsecond before the day's end: the day is not over
    c = _picker(10, (day + 1) * US_PER_DAY - 1, stale)
    assert c._tiles_to_write(False) == {("a", day - 1)}
    # at most the budget a checkpoint; the rest stay listed for the next ones
    c = _picker(2, (day + 1) * US_PER_DAY, stale)
    out = c._tiles_to_write(False)
    assert len(out) == 2 and out | c.stale == stale and not out & c.stale
    assert len(c._tiles_to_write(False)) == 1
    assert c.stale == {("d", day + 1)} and c.stale_days == {day + 1: 1}
    # no decision yet, or no budget: none; the run's last checkpoint: all
    assert _picker(10, None, stale)._tiles_to_write(False) == set()
    assert _picker(0, (day + 5) * US_PER_DAY, stale)._tiles_to_write(False) == set()
    c = _picker(0, None, stale)
    assert c._tiles_to_write(True) == stale and c.stale == set() and not c.stale_days


def _listed(con) -> set[tuple[str, int]]:
    return set(con.execute("SELECT account_id, day FROM online_stale").fetchall())


def test_a_late_fill_lists_a_written_tile_again_and_a_restart_folds_it_in(venue, tmp_path):
    con = connect(venue.store(tmp_path))
    acct = "acct-000001"
    day = 19_724  # 2024-01-02
    first = StreamConsumer(con, ListSource([
        [perp_fill("m1", "2024-01-02T10:00:00Z"), perp_fill("m2", "2024-01-02T11:00:00Z")],
        [perp_fill("m3", "2024-01-03T10:00:00Z")]]), engine_for(con, venue),
        StreamConfig(decide_every_s=DECIDE_EVERY_S), source_label="mem")
    first.run()  # its last checkpoint writes every tile
    assert not _listed(con)
    written = con.execute("SELECT tile FROM online_tiles WHERE account_id = ? AND day = ?",
                          [acct, day]).fetchone()[0]
    # a late fill of 2024-01-02 changes that day's written tile: listed again; the process
    # ends after that checkpoint
    late = StreamConsumer(con, ListSource([[perp_fill("m4", "2024-01-02T12:00:00Z")]]),
                          engine_for(con, venue),
                          StreamConfig(decide_every_s=DECIDE_EVERY_S, checkpoint_s=0.0,
                                       tiles_per_checkpoint=0), source_label="mem")

    def crash(stats):
        raise _Crash

    late.on_checkpoint = crash
    with pytest.raises(_Crash):
        late.run()
    assert late.stats.late == 1
    assert (acct, day) in _listed(con)
    assert con.execute("SELECT tile FROM online_tiles WHERE account_id = ? AND day = ?",
                       [acct, day]).fetchone()[0] == written  # the row is as it was
    loaded = S.load(con, "mem")
    assert loaded.states[acct].tiles[day].s[0] == 3  # m1, m2 and the late m4
    _assert_tiles_equal(loaded.states, _reference(con))
    con.close()


def test_a_listed_tile_without_stored_fills_is_dropped_at_the_next_checkpoint(venue, tmp_path):
    con = connect(venue.store(tmp_path))
    StreamConsumer(con, ListSource([[perp_fill("m1", "2024-01-02T10:00:00Z")]]),
                   engine_for(con, venue), StreamConfig(decide_every_s=DECIDE_EVERY_S),
                   source_label="mem").run()
    # a listed key whose fills are gone (deleted from the store by hand)
    con.execute("INSERT INTO online_stale VALUES ('acct-000001', 19000), ('ghost', 19000)")
    con.execute("INSERT INTO online_tiles SELECT account_id, 19000, tile FROM online_tiles")
    loaded = S.load(con, "mem")
    assert "ghost" not in loaded.states and 19000 not in loaded.states["acct-000001"].tiles
    StreamConsumer(con, ListSource([]), engine_for(con, venue),
                   StreamConfig(decide_every_s=DECIDE_EVERY_S), source_label="mem").run()
    assert not _listed(con)
    assert con.execute("SELECT count(*) FROM online_tiles WHERE day = 19000").fetchone()[0] == 0
    _assert_tiles_equal(S.load(con, "mem").states, _reference(con))
    con.close()


def test_a_negative_tile_budget_is_refused():
    from traderseg.errors import ConfigError

    with pytest.raises(ConfigError, match="tiles per checkpoint must be >= 0, got -1"):
        StreamConfig(tiles_per_checkpoint=-1)
    assert StreamConfig(tiles_per_checkpoint=0).tiles_per_checkpoint == 0
