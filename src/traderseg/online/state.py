"""The stream's state in the store: per-account feature state, assignment, checkpoints.

Everything a consumer needs to resume is written in the same DuckDB transaction as the
fills it accepted and the decisions it took, so a crash at any point leaves the store at a
checkpoint: the fills, the online state, the decisions and the source position agree.

- ``online_tiles``: one row per (account, UTC day) with the day's measure states
  (:class:`traderseg.features.online.DayTile` as JSON), written when the day is over (the
  consumer's decisions have passed its end; a few per checkpoint) or the run ends.
- ``online_stale``: the (account, day) tiles the consumer has changed since their row in
  ``online_tiles`` was written. A checkpoint records their keys, not their contents: a
  tile is the fold of its account's fills of its day, which the same checkpoint stores,
  so :func:`load` folds those fills again instead. Today's tiles change with every fill;
  serialising each at every checkpoint cost the consumer more than folding its fills.
- ``online_accounts``: per account the compacted history, the last fill time, the segment
  assignment state (segment, leading candidate, since when) and, when the account traded
  in the decision interval still open, that interval's end and its last fill.
- ``stream_checkpoints``: per source its position, the consumer that wrote it last, the open
  and last closed decision interval and running counts. A store has one writer at a time,
  so a consumer taking over a source (another process, or a Redis consumer claiming a dead
  one's entries) continues from the same row.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from traderseg.features.expr import US_PER_DAY
from traderseg.features.online import AccountState, DayTile
from traderseg.features.online_fold import fold_table
from traderseg.schema import FILLS

DDL = (
    """CREATE TABLE IF NOT EXISTS online_tiles (
      account_id VARCHAR NOT NULL, day BIGINT NOT NULL, tile VARCHAR NOT NULL,
      PRIMARY KEY (account_id, day))""",
    """CREATE TABLE IF NOT EXISTS online_stale (
      account_id VARCHAR NOT NULL, day BIGINT NOT NULL, PRIMARY KEY (account_id, day))""",
    """CREATE TABLE IF NOT EXISTS online_accounts (
      account_id VARCHAR PRIMARY KEY, last_us BIGINT, base VARCHAR, old_days VARCHAR,
      segment BIGINT, candidate BIGINT, since BIGINT,
      open_tick BIGINT, open_fill_id VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS stream_checkpoints (
      source VARCHAR PRIMARY KEY, consumer VARCHAR NOT NULL, position VARCHAR,
      open_tick BIGINT, last_tick BIGINT, fills BIGINT NOT NULL, duplicates BIGINT NOT NULL,
      rejects BIGINT NOT NULL, late BIGINT NOT NULL, decisions BIGINT NOT NULL,
      updated_at TIMESTAMPTZ NOT NULL)""",
)


def ensure_state_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the stream's state tables when missing."""
    for ddl in DDL:
        con.execute(ddl)


@dataclass
class Checkpoint:
    """A consumer's position and counts."""

    source: str
    position: str | None = None
    open_tick: int | None = None
    last_tick: int | None = None
    fills: int = 0
    duplicates: int = 0
    rejects: int = 0
    late: int = 0
    decisions: int = 0


@dataclass
class Loaded:
    """What a consumer resumes from."""

    checkpoint: Checkpoint | None
    states: dict[str, AccountState]
    assignment: dict[str, tuple[int, int, int]]
    open_fills: dict[str, str] = field(default_factory=dict)
    stale: set[tuple[str, int]] = field(default_factory=set)  # tiles whose row is out of date


def load(con: duckdb.DuckDBPyConnection, source: str) -> Loaded:
    """Read the source's checkpoint and every account's online state.

    The tiles listed in ``online_stale`` are folded again from the stored fills of their
    account and day (see the module docstring); they stay listed until written.
    """
    ensure_state_tables(con)
    row = con.execute("SELECT source, position, open_tick, last_tick, fills, duplicates, "
                      "rejects, late, decisions FROM stream_checkpoints WHERE source = ?",
                      [source]).fetchone()
    cp = None if row is None else Checkpoint(
        str(row[0]), row[1], None if row[2] is None else int(row[2]),
        None if row[3] is None else int(row[3]), *[int(x) for x in row[4:]])
    states: dict[str, AccountState] = {}
    for acct, day, tile in con.execute("SELECT account_id, day, tile FROM online_tiles"
                                       ).fetchall():
        st = states.get(acct)
        if st is None:
            st = states[acct] = AccountState()
        st.tiles[int(day)] = DayTile.from_json(json.loads(tile))
    assignment: dict[str, tuple[int, int, int]] = {}
    open_fills: dict[str, str] = {}
    for acct, last_us, base, old, seg, cand, since, open_tick, open_fill in con.execute(
            "SELECT * FROM online_accounts").fetchall():
        st = states.get(acct)
        if st is None:
            st = states[acct] = AccountState()
        st.last_us = None if last_us is None else int(last_us)
        if base is not None:
            st.base = DayTile.from_json(json.loads(base))
            st.old_days = {int(r[0]): (r[1], r[2], r[3]) for r in json.loads(old or "[]")}
            st.folded_through = max(st.old_days, default=-1)
        if seg is not None:
            assignment[acct] = (int(seg), int(cand), int(since))
        if cp is not None and open_tick is not None and open_tick == cp.open_tick:
            open_fills[acct] = str(open_fill)
    stale = {(str(a), int(d)) for a, d in con.execute(
        "SELECT account_id, day FROM online_stale").fetchall()}
    if stale:
        _refold(con, states, stale)
    return Loaded(cp, states, assignment, open_fills, stale)


def _refold(con: duckdb.DuckDBPyConnection, states: dict[str, AccountState],
            stale: set[tuple[str, int]]) -> None:
    """Rebuild the ``stale`` tiles from the stored fills of their account and day."""
    first = min(d for _, d in stale)
    reader = con.execute(
        f"SELECT {', '.join('f.' + c for c in FILLS.names)} FROM fills f "
        "SEMI JOIN online_stale s ON f.account_id = s.account_id "
        f"AND epoch_us(f.ts) // {US_PER_DAY} = s.day "
        "WHERE f.ts >= to_timestamp(?) ORDER BY f.ts, f.fill_id",
        [first * 86_400]).fetch_record_batch(200_000)
    fresh: dict[str, AccountState] = {}
    for rb in reader:
        fold_table(fresh, pa.Table.from_batches([rb]))
    for acct, day in stale:
        got = fresh.get(acct)
        tile = None if got is None else got.tiles.get(day)
        st = states.get(acct)
        if tile is None:  # the store holds no fill of the day: the day has no tile
            if st is not None:
                st.tiles.pop(day, None)
            continue
        if st is None:
            st = states[acct] = AccountState()
        st.tiles[day] = tile


@dataclass(frozen=True)
class StateRows:
    """The touched state of a checkpoint, serialised (see :func:`state_rows`)."""

    tiles: pa.Table | None  # tiles written now (their keys leave ``online_stale``)
    accounts: pa.Table | None
    stale: pa.Table | None = None  # keys of tiles changed and not written
    dropped: pa.Table | None = None  # keys to write whose day has no tile: rows removed


def state_rows(cp: Checkpoint, states: dict[str, AccountState],
               write_tiles: Iterable[tuple[str, int]], dirty_accounts: Iterable[str],
               assignment: dict[str, tuple[int, int, int]],
               open_fills: dict[str, str],
               stale_tiles: Iterable[tuple[str, int]] = ()) -> StateRows:
    """Serialise the tiles to write and the touched accounts as they are now.

    ``stale_tiles`` are the keys of tiles changed and not written (``online_stale``). The
    rows hold no reference to the states, which later fills change: they can be written
    after the consumer has moved on (:func:`write_state`).
    """
    tiles = []
    dropped = []
    for a, d in write_tiles:
        st = states.get(a)
        if st is not None and d in st.tiles:
            tiles.append((a, d, json.dumps(st.tiles[d].to_json())))
        else:  # no fill of the day is stored (see _refold): no row, and no longer listed
            dropped.append((a, d))
    stale_table = _keys(list(stale_tiles))
    dropped_table = _keys(dropped)
    tile_table = None
    if tiles:
        a_, d_, t_ = zip(*tiles, strict=True)
        tile_table = pa.table({"account_id": pa.array(a_, pa.string()),
                               "day": pa.array(d_, pa.int64()),
                               "tile": pa.array(t_, pa.string())})
    rows: list[tuple[Any, ...]] = []
    for a in dirty_accounts:
        st = states[a]
        seg = assignment.get(a)
        base = None if st.base is None else json.dumps(st.base.to_json())
        old = None if st.base is None else json.dumps([[d, *v] for d, v in st.old_days.items()])
        rows.append((a, st.last_us, base, old, *(seg if seg else (None, None, None)),
                     cp.open_tick if a in open_fills else None, open_fills.get(a)))
    account_table = None
    if rows:
        cols = list(zip(*rows, strict=True))
        account_table = pa.table(
            {name: pa.array(col, typ) for (name, typ), col in zip(_ACCOUNT_COLUMNS, cols,
                                                                  strict=True)})
    return StateRows(tile_table, account_table, stale_table, dropped_table)


def _keys(keys: list[tuple[str, int]]) -> pa.Table | None:
    if not keys:
        return None
    a_s, d_s = zip(*keys, strict=True)
    return pa.table({"account_id": pa.array(a_s, pa.string()), "day": pa.array(d_s, pa.int64())})


def write_state(con: duckdb.DuckDBPyConnection, consumer: str, cp: Checkpoint,
                rows: StateRows) -> None:
    """Write serialised state and the checkpoint (inside the caller's transaction)."""
    if rows.stale is not None:
        _upsert(con, "online_stale", rows.stale)
    if rows.tiles is not None:
        _upsert(con, "online_tiles", rows.tiles)
        _delete_keys(con, "online_stale", rows.tiles)
    if rows.dropped is not None:
        _delete_keys(con, "online_tiles", rows.dropped)
        _delete_keys(con, "online_stale", rows.dropped)
    if rows.accounts is not None:
        _upsert(con, "online_accounts", rows.accounts)
    con.execute(
        "INSERT OR REPLACE INTO stream_checkpoints VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now())",
        [cp.source, consumer, cp.position, cp.open_tick, cp.last_tick, cp.fills,
         cp.duplicates, cp.rejects, cp.late, cp.decisions])


_ACCOUNT_COLUMNS = (
    ("account_id", pa.string()), ("last_us", pa.int64()), ("base", pa.string()),
    ("old_days", pa.string()), ("segment", pa.int64()), ("candidate", pa.int64()),
    ("since", pa.int64()), ("open_tick", pa.int64()), ("open_fill_id", pa.string()))


def _delete_keys(con: duckdb.DuckDBPyConnection, table: str, keys: pa.Table) -> None:
    """Delete the rows of ``table`` whose (account_id, day) is among ``keys``."""
    con.register("_online_keys", keys)
    try:
        con.execute(f"DELETE FROM {table} t WHERE EXISTS (SELECT 1 FROM _online_keys k "
                    "WHERE k.account_id = t.account_id AND k.day = t.day)")
    finally:
        con.unregister("_online_keys")


def _upsert(con: duckdb.DuckDBPyConnection, table: str, rows: pa.Table) -> None:
    """Insert or replace ``rows`` (an Arrow table in the table's column order) by key."""
    con.register("_online_rows", rows)
    try:
        con.execute(f"INSERT OR REPLACE INTO {table} SELECT * FROM _online_rows")
    finally:
        con.unregister("_online_rows")


def read_checkpoints(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every consumer's checkpoint."""
    ensure_state_tables(con)
    return con.execute("SELECT * FROM stream_checkpoints ORDER BY source").df()
