"""The stream consumer: validate -> store -> online features -> assign -> policy -> state.

Fills are folded into each account's online state in time order. Decisions are taken at
the end of fixed intervals of data time (``decide_every``, aligned on the UTC epoch): when
the first fill at or after an interval's end arrives (or the source ends), every account
that traded in the interval is decided with its features *as of the interval's end* — so
the decisions depend only on the fills, not on how they were batched, delivered or
replayed, and the batch reference (:func:`traderseg.online.batch.decide_batch`) computes
the same ones from the store. A fill older than an interval already decided is *late*: it
counts from the next decision on (counted, never lost).

Each checkpoint commits in one DuckDB transaction the fills accepted since the last one,
their rejects, the touched online state, the decisions (``controls`` and the audit log)
and the source position; only then are the messages acknowledged. The commit runs in a
background thread while the next fills are read and folded (one commit at a time, in
order). A consumer killed at any point resumes from its last checkpoint: re-delivered
fills are recognised by their id and change nothing.
"""

from __future__ import annotations

import gc
import logging
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from itertools import islice
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from traderseg.errors import ConfigError, StoreError
from traderseg.features.online import (
    AccountState,
    Parts,
    combine,
    quantile_windows,
    read_parts,
    read_plan,
    values_frame,
)
from traderseg.features.online_fold import (
    columnar,
    fill_records,
    fold_record_slice,
    fold_table,
    micros,
)
from traderseg.features.windows import day_number
from traderseg.online import BATCH_SIZE
from traderseg.online import state as S
from traderseg.online.decide import DecisionEngine, empty_assignments
from traderseg.online.messages import validate_messages, validate_raw
from traderseg.online.sources import Batch, Source
from traderseg.online.tables import ensure_online_tables, write_decisions
from traderseg.schema import FILLS
from traderseg.store import store_name

logger = logging.getLogger(__name__)
US_PER_S = 1_000_000
US_PER_DAY = 86_400 * US_PER_S
NOTE_BY_COLUMNS_FROM = 256
"""Fills of an interval from which its latest fill per account is found by sorting columns."""


@dataclass(frozen=True)
class StreamConfig:
    """How the consumer batches, decides and checkpoints.

    Parameters
    ----------
    consumer : str
        Name of this consumer (recorded with the checkpoint; its Redis consumer name).
    decide_every_s : float
        Length of the decision interval in seconds of data time.
    batch_size : int
        About how many fills to read at once (packed Redis entries hold several).
    checkpoint_s : float
        Longest wall time between checkpoints.
    checkpoint_fills : int
        Most accepted fills between checkpoints.
    block_ms : int
        How long a read waits for new messages (Redis).
    idle_stop_s : float, optional
        Stop after this long without a message (None: run until stopped).
    tiles_per_checkpoint : int
        Most day tiles a checkpoint writes out (see :mod:`traderseg.online.state`): tiles
        of days the decisions have passed, written a few at a time so that no checkpoint
        stalls the stream when a day ends; the last checkpoint of a run writes them all.
    """

    consumer: str = "consumer-1"
    decide_every_s: float = 900.0
    batch_size: int = BATCH_SIZE
    checkpoint_s: float = 1.0
    checkpoint_fills: int = 100_000
    block_ms: int = 200
    idle_stop_s: float | None = None
    tiles_per_checkpoint: int = 128
    record_latency: bool = False  # keep XADD-to-decision and -commit times (Redis; benchmarks)

    def __post_init__(self) -> None:
        if self.decide_every_s <= 0:
            raise ConfigError(f"decision interval must be > 0 s, got {self.decide_every_s:g}")
        if self.batch_size < 1 or self.checkpoint_fills < 1:
            raise ConfigError("batch size and fills per checkpoint must be >= 1")
        if self.tiles_per_checkpoint < 0:
            raise ConfigError(f"tiles per checkpoint must be >= 0, got "
                              f"{self.tiles_per_checkpoint}")

    @property
    def tick_us(self) -> int:
        """Decision interval in microseconds."""
        return int(round(self.decide_every_s * US_PER_S))


def tick_end(ts_us: int, tick_us: int) -> int:
    """End of the decision interval holding ``ts_us`` (intervals are [start, end))."""
    return (ts_us // tick_us + 1) * tick_us


@dataclass
class StreamStats:
    """What a run did."""

    read: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    late: int = 0
    decisions: int = 0
    audit_rows: int = 0
    checkpoints: int = 0
    ticks: int = 0
    seconds: float = 0.0
    decide_seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)  # XADD to commit, Redis only
    # XADD of the fill that closed an interval to the interval's decisions, Redis only
    decision_latencies_ms: list[float] = field(default_factory=list)

    @property
    def fills_per_s(self) -> float:
        """Accepted fills per wall second."""
        return self.accepted / self.seconds if self.seconds > 0 else float("nan")


class StreamConsumer:
    """Consume a source into the store, the online state and the decisions.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        The store (opened for writing).
    source : Source
        Where fills come from.
    engine : DecisionEngine
        Model, policy and predictions.
    config : StreamConfig
        Batching, decision interval and checkpoints.
    publish : callable, optional
        Called with each checkpoint's decision rows after the commit (e.g. writing them to
        Redis hashes), in the background commit's thread.
    on_checkpoint : callable, optional
        Called after each commit with the stats, in the background commit's thread (tests
        kill the process from here).
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, source: Source, engine: DecisionEngine,
                 config: StreamConfig | None = None, *,
                 publish: Callable[[pd.DataFrame], None] | None = None,
                 on_checkpoint: Callable[[StreamStats], None] | None = None,
                 source_label: str | None = None) -> None:
        self.con = con
        self.source = source
        self.engine = engine
        self.cfg = config or StreamConfig()
        self.publish = publish
        self.on_checkpoint = on_checkpoint
        self.label = source_label or source.name
        self._store_label = store_name(con)
        ensure_online_tables(con)
        S.ensure_state_tables(con)
        loaded = S.load(con, self.label)
        self.cp = loaded.checkpoint or S.Checkpoint(self.label)
        self.states: dict[str, AccountState] = loaded.states
        self.assignment = loaded.assignment
        self.open_fills = loaded.open_fills  # accounts traded in the open interval -> last fill
        # tiles changed since their row was written (online_stale), and how many per day
        self.stale: set[tuple[str, int]] = set()
        self.stale_days: Counter[int] = Counter()
        self._mark_stale(loaded.stale)
        self.open_key: dict[str, tuple[int, str]] = {}
        if self.open_fills:
            self._reload_open_keys()
        self.events = _event_times(con)
        # the features the decisions read, and the windows whose quantiles those read
        self._columns = engine.feature_columns
        self._quantile_windows = quantile_windows(engine.windows, self._columns)
        self.stats = StreamStats()
        self.inflight_ids: set[str] = set()  # fills of the commit running in the background
        # the latest fill time stored, in the background commit or pending: a fill after it
        # is not in the store (a re-delivered fill keeps its time)
        latest = con.execute("SELECT epoch_us(max(ts)) FROM fills").fetchone()
        self.latest_us: int | None = None if latest is None or latest[0] is None else int(
            latest[0])
        self._writer: threading.Thread | None = None
        self._writer_error: BaseException | None = None
        self._reset_pending()
        self._stop = False
        if loaded.checkpoint is None and not self.states:
            self._bootstrap()

    def _bootstrap(self) -> None:
        """Seed the online state from the fills already in the store (its first run).

        A stream started on a store with history continues it: the features of its first
        decisions count the stored fills as the batch computation does.
        """
        n = self.con.execute("SELECT count(*) FROM fills").fetchone()
        if not n or not n[0]:
            return
        reader = self.con.execute(
            f"SELECT {', '.join(FILLS.names)} FROM fills ORDER BY ts, fill_id"
        ).fetch_record_batch(200_000)
        count = 0
        for rb in reader:
            self._fold_slice(pa.Table.from_batches([rb]))
            count += rb.num_rows
        self.cp.last_tick = None
        logger.info("online state seeded from %d stored fills of %d accounts", count,
                    len(self.states))

    # -- pending work between checkpoints --------------------------------------------------
    def _reset_pending(self) -> None:
        self.p_fills: list[pa.Table] = []
        self.p_ids: set[str] = set()
        self.p_rejects: list[tuple[str, str, str, str | None]] = []
        self.p_decisions: list[pd.DataFrame] = []
        self.p_ticks: list[tuple[pd.Timestamp, list[str], dict[str, str]]] = []
        self.p_reads: Parts = {}  # what the states gave at each interval end, in order
        self.p_batches: list[Batch] = []
        self.p_tiles: set[tuple[str, int]] = set()
        self.p_accounts: set[str] = set()
        self.p_closers_ms: list[float] = []  # XADD times of the fills closing intervals
        self.p_count = 0
        self.p_started = time.monotonic()

    def stop(self) -> None:
        """Ask the loop to stop at the next checkpoint."""
        self._stop = True

    def run(self, *, max_messages: int | None = None, close_at_end: bool = True) -> StreamStats:
        """Consume until the source ends, ``stop`` is called or the idle limit passes.

        Parameters
        ----------
        max_messages : int, optional
            Stop after about this many messages.
        close_at_end : bool
            Decide the open interval when a finite source ends or the idle limit passes.
        """
        started = time.monotonic()
        self.source.resume(self.cp.position)
        idle_since = time.monotonic()
        previous = _install_term_handler(self.stop)
        collector = _rare_full_collections()
        try:
            while not self._stop:
                batch = self.source.read(self.cfg.batch_size, self.cfg.block_ms)
                if batch is None:  # a finite source ended
                    if close_at_end:
                        self._close_open_tick()
                    break
                if batch.size:
                    idle_since = time.monotonic()
                    self._process(batch)
                    if self.p_ticks:  # the intervals this batch closed are decided now
                        self._decide_pending()
                elif (self.cfg.idle_stop_s is not None
                      and time.monotonic() - idle_since >= self.cfg.idle_stop_s):
                    # an idle stop ends the stream as the end of a finite source does
                    if close_at_end:
                        self._close_open_tick()
                    break
                if batch.size or batch.ack:
                    self.p_batches.append(batch)
                    self.cp.position = batch.position or self.cp.position
                if ((self.p_count >= self.cfg.checkpoint_fills
                     or time.monotonic() - self.p_started >= self.cfg.checkpoint_s)
                        and self._writer_idle()):
                    self._submit()  # committed in the background while reading goes on
                if max_messages is not None and self.stats.read >= max_messages:
                    break
            self.checkpoint()
        finally:
            self._wait_writer(raise_error=False)  # never leave a commit running
            gc.set_threshold(*collector)
            _restore_term_handler(previous)
            self.stats.seconds = time.monotonic() - started
        return self.stats

    # -- one batch -------------------------------------------------------------------------
    def _process(self, batch: Batch) -> None:
        self.stats.read += batch.size
        if batch.table is not None:
            lines = batch.lines
            v = validate_raw(batch.table, batch.refs, datetime.now(UTC),
                             raws=None if lines is None else lines.__getitem__)
        else:
            v = validate_messages(batch.messages, datetime.now(UTC))
        self.p_rejects.extend(v.rejects)
        self.stats.rejected += len(v.rejects)
        self.cp.rejects += len(v.rejects)
        fills = v.fills
        if fills.num_rows == 0:
            return
        xadd = _xadd_ms(v.refs) if self.cfg.record_latency and batch.ack else None
        keep = self._new_fills(fills)
        fills = fills.filter(pa.array(keep))
        if fills.num_rows == 0:
            return
        order = np.argsort(fills.column("ts").cast(pa.int64()).to_numpy(), kind="stable")
        fills = fills.take(pa.array(order))
        self.p_fills.append(fills)
        self._fold(fills, None if xadd is None else xadd[keep][order])

    def _new_fills(self, fills: pa.Table) -> np.ndarray:
        """Mark the fills not seen before, returning the mask of the new ones.

        Seen before: in this batch, since the checkpoint, in the commit running in the
        background, or in the store. The new ones' ids join those seen since the checkpoint.
        The store is asked only when some fill is not later than every fill stored, in
        flight or pending: on a live stream, whose fills come in time order, it is not.
        """
        ids = fills.column("fill_id").to_pylist()
        keep = np.ones(len(ids), dtype=bool)
        batch_ids = set(ids)
        if (len(batch_ids) < len(ids) or not self.p_ids.isdisjoint(batch_ids)
                or not self.inflight_ids.isdisjoint(batch_ids)):
            # some fill is seen again: mark each (the common case needs the set checks only)
            seen: set[str] = set()
            for i, f in enumerate(ids):
                if f in seen or f in self.p_ids or f in self.inflight_ids:
                    keep[i] = False
                seen.add(f)
        cand = fills.filter(pa.array(keep)) if not keep.all() else fills
        if cand.num_rows and self._maybe_stored(cand.column("ts")):
            ts = cand.column("ts")
            lo, hi = pa.compute.min(ts).as_py(), pa.compute.max(ts).as_py()
            probe = pa.table({"fill_id": cand.column("fill_id")})
            self.con.register("_stream_probe", probe)
            try:
                # a re-delivered fill has the same time: the time range lets DuckDB skip
                # the row groups of other days instead of scanning every fill id
                stored = {r[0] for r in self.con.execute(
                    "SELECT f.fill_id FROM fills f SEMI JOIN _stream_probe p USING (fill_id) "
                    "WHERE f.ts BETWEEN ? AND ?", [lo, hi]).fetchall()}
            finally:
                self.con.unregister("_stream_probe")
            if stored:
                idx = np.flatnonzero(keep)
                for j, f in enumerate(cand.column("fill_id").to_pylist()):
                    if f in stored:
                        keep[idx[j]] = False
        dup = int((~keep).sum())
        self.stats.duplicates += dup
        self.cp.duplicates += dup
        if keep.all():
            self.p_ids |= batch_ids
        else:
            self.p_ids.update(f for f, k in zip(ids, keep.tolist(), strict=True) if k)
        return keep

    def _maybe_stored(self, ts: pa.ChunkedArray) -> bool:
        """Whether fills at times ``ts`` may be stored already; they join the times seen."""
        span = pa.compute.min_max(ts.cast(pa.int64()))
        lo, hi = span["min"].as_py(), span["max"].as_py()
        latest = self.latest_us
        self.latest_us = hi if latest is None else max(latest, hi)
        return latest is not None and lo <= latest

    def _fold(self, fills: pa.Table, xadd_ms: np.ndarray | None = None) -> None:
        """Fold a batch in time order, closing each interval as the first fill after it comes.

        ``fills`` are in time order. The rows between two interval ends are folded at once
        (:func:`fold_table`; the batch converted to records once when its slices are folded
        row by row); the interval bookkeeping goes from one interval end to the next
        (:meth:`_note_open`). ``xadd_ms`` (benchmarks) holds each row's XADD time: that of
        a row closing an interval is kept until its decisions.
        """
        tick = self.cfg.tick_us
        times = micros(fills.column("ts")).to_numpy()
        n = len(times)
        records: list[dict[str, Any]] = []  # the rows as records, made once when needed
        rows: list[tuple[str, int, str]] = []  # (account, time, fill id), made once when needed

        def fold(lo: int, hi: int) -> None:
            if columnar(hi - lo):
                self._fold_slice(fills.slice(lo, hi - lo))
            elif hi > lo:
                if not records:
                    records.extend(fill_records(fills))
                self._note(fold_record_slice(self.states, records[lo:hi]))

        start = pos = 0
        while pos < n:
            cp = self.cp
            if cp.open_tick is not None and times[pos] >= cp.open_tick:
                fold(start, pos)  # the fill at ``pos`` closes the open interval
                start = pos
                self._close_open_tick()
                if xadd_ms is not None:
                    self.p_closers_ms.append(float(xadd_ms[pos]))
            if cp.last_tick is not None and times[pos] < cp.last_tick:
                # late: before the last decided interval's end (a prefix, the batch being
                # in time order); they count in the next interval
                end = int(np.searchsorted(times, cp.last_tick, side="left"))
                self.stats.late += end - pos
                cp.late += end - pos
                if cp.open_tick is None:
                    cp.open_tick = cp.last_tick + tick
            elif cp.open_tick is None:
                cp.open_tick = tick_end(int(times[pos]), tick)
            # the fills up to the open interval's end belong to it
            end = int(np.searchsorted(times, cp.open_tick, side="left"))
            if end - pos > NOTE_BY_COLUMNS_FROM:
                self._note_open(fills, pos, end)
            else:  # a few fills: a loop over them costs less than sorting them
                if not rows:
                    rows.extend(zip(fills.column("account_id").to_pylist(), times.tolist(),
                                    fills.column("fill_id").to_pylist(), strict=True))
                self._note_rows(rows[pos:end])
            pos = end
        fold(start, n)
        self.p_count += n
        self.stats.accepted += n
        self.cp.fills += n

    def _note_rows(self, rows: list[tuple[str, int, str]]) -> None:
        """:meth:`_note_open` of a few rows, one by one."""
        keys, fills_of = self.open_key, self.open_fills
        for acct, t, f in rows:
            key = (t, f)
            if keys.get(acct, key) <= key:
                keys[acct] = key
                fills_of[acct] = f

    def _note_open(self, fills: pa.Table, lo: int, hi: int) -> None:
        """Keep, per account, its latest fill among rows ``lo:hi`` of the open interval.

        The latest is the largest (time, fill id): the trigger of the account's decision.
        """
        if hi <= lo:
            return
        part = fills.slice(lo, hi - lo).select(["account_id", "ts", "fill_id"])
        order = pa.compute.sort_indices(part, sort_keys=[
            ("account_id", "ascending"), ("ts", "ascending"), ("fill_id", "ascending")])
        part = part.take(order)
        accts = part.column("account_id").to_numpy(zero_copy_only=False)
        last = np.flatnonzero(np.append(accts[1:] != accts[:-1], True))
        us = micros(part.column("ts")).to_numpy()[last].tolist()
        ids = part.column("fill_id").take(pa.array(last)).to_pylist()
        self._note_rows(list(zip(accts[last].tolist(), us, ids, strict=True)))

    def _fold_slice(self, fills: pa.Table) -> None:
        """Fold fills into the online state and note the tiles and accounts touched."""
        if fills.num_rows:
            self._note(fold_table(self.states, fills))

    def _note(self, touched: set[tuple[str, int]]) -> None:
        self.p_tiles |= touched
        self.p_accounts.update(a for a, _ in touched)

    def _close_open_tick(self) -> None:
        """Decide every account that traded in the open interval, as of its end."""
        if self.cp.open_tick is None:
            return
        at_us = self.cp.open_tick
        if self.open_fills:
            t0 = time.monotonic()
            at = pd.Timestamp(at_us * 1000, tz="UTC")
            accts = sorted(self.open_fills)
            evs = self._event_days(at_us)
            plan = read_plan(at.to_pydatetime(), self.engine.windows, evs, self._columns)
            # the states' parts now; they are combined, and the formulas, the model and the
            # policy run, over arrays at the checkpoint, for every interval since the last
            read_parts(self.states, accts, plan, into=self.p_reads)
            self.p_ticks.append((at, accts, dict(self.open_fills)))
            self.p_accounts.update(accts)
            self.stats.decide_seconds += time.monotonic() - t0
        self.stats.ticks += 1
        self.cp.last_tick = at_us
        self.cp.open_tick = None
        self.open_fills = {}
        self.open_key = {}

    def _reload_open_keys(self) -> None:
        ids = pa.table({"fill_id": list(self.open_fills.values())})
        self.con.register("_open_fills", ids)
        try:
            for acct, us, fid in self.con.execute(
                    "SELECT account_id, epoch_us(ts), fill_id FROM fills "
                    "SEMI JOIN _open_fills USING (fill_id)").fetchall():
                self.open_key[acct] = (int(us), str(fid))
        finally:
            self.con.unregister("_open_fills")

    def _decide_pending(self) -> None:
        """Run the engine over the intervals closed since the last checkpoint."""
        t0 = time.monotonic()
        every = [a for _, accts_, _ in self.p_ticks for a in accts_]
        feats = values_frame([combine(self.p_reads, self._quantile_windows)],
                             self.engine.windows, every, self._columns)
        accts = sorted(set(every))
        prev = pd.DataFrame.from_dict(
            {a: self.assignment[a] for a in accts if a in self.assignment},
            orient="index", columns=["segment", "candidate", "since"])
        if prev.empty:
            prev = empty_assignments()
        d = self.engine.decide_stacked([at for at, _, _ in self.p_ticks], feats,
                                       [len(a) for _, a, _ in self.p_ticks],
                                       [ids for _, _, ids in self.p_ticks], prev)
        for a, (seg, cand, since) in zip(d.state.index, d.state.itertuples(index=False),
                                         strict=True):
            self.assignment[a] = (int(seg), int(cand), int(since))
        self.p_decisions.append(d.rows)
        self.stats.decisions += len(d.rows)
        self.cp.decisions += len(d.rows)
        self.p_ticks = []
        self.p_reads = {}
        if self.p_closers_ms:
            now_ms = time.time() * 1000.0
            self.stats.decision_latencies_ms.extend(now_ms - x for x in self.p_closers_ms)
            self.p_closers_ms = []
        self.stats.decide_seconds += time.monotonic() - t0

    def _event_days(self, at_us: int) -> set[int] | None:
        """Day numbers of the market events known before ``at_us`` (None: no events known)."""
        if self.events is None:
            return None
        return {day_number(d) for t, d in self.events if t < at_us}

    # -- checkpoint ------------------------------------------------------------------------
    def checkpoint(self) -> None:
        """Commit the pending fills, rejects, state, decisions and position; then ack.

        Waits until they are stored (the loop of :meth:`run` does not: see :meth:`_submit`),
        and writes out every changed tile, so the next start folds no fills again.
        """
        self._wait_writer()
        self._submit(every_tile=True)
        self._wait_writer()

    def _tiles_to_write(self, every_tile: bool) -> set[tuple[str, int]]:
        """Pick the changed tiles this checkpoint writes out (they leave ``self.stale``).

        Those of days that ended before the last decided interval did, at most
        ``tiles_per_checkpoint`` (all with ``every_tile``). A late fill may change such a
        tile again: it is then stale again.
        """
        if every_tile:
            out = self.stale
            self.stale = set()
            self.stale_days.clear()
            return out
        last = self.cp.last_tick
        budget = self.cfg.tiles_per_checkpoint
        if last is None or budget == 0:
            return set()
        before = last // US_PER_DAY
        if not any(d < before for d in self.stale_days):  # today's tiles alone: no scan
            return set()
        out = set(islice((k for k in self.stale if k[1] < before), budget))
        self.stale -= out
        for _, d in out:
            self.stale_days[d] -= 1
            if not self.stale_days[d]:
                del self.stale_days[d]
        return out

    def _mark_stale(self, keys: set[tuple[str, int]]) -> None:
        """Note ``keys`` (not stale yet) as changed since their row was written."""
        self.stale |= keys
        self.stale_days.update(d for _, d in keys)

    def _submit(self, *, every_tile: bool = False) -> None:
        """Hand the pending work to a background commit (the previous one has finished).

        The work is taken as it is now — the fills, rejects and decisions since the last
        checkpoint, the touched state serialised, a copy of the position and counts — and
        committed in one transaction on a cursor of its own, then acknowledged and
        published, while this thread reads and folds the next fills. Until that commit
        ends, the ids of its fills count as seen (:meth:`_new_fills`). At most one commit
        runs at a time, in order, so the store goes from checkpoint to checkpoint as
        before; DuckDB runs the statements without holding the interpreter.
        """
        if self.p_ticks:
            self._decide_pending()
        if not (self.p_fills or self.p_rejects or self.p_decisions or self.p_batches
                or self.p_accounts or (every_tile and self.stale)):
            self.p_started = time.monotonic()
            return
        fills = None
        if self.p_fills:
            fills = pa.concat_tables(self.p_fills)
            fills = fills.append_column(
                "source", pa.array([f"stream:{self.label}"] * fills.num_rows, pa.string()))
        job = _Commit(
            fills=fills, rejects=self._reject_rows(),
            decisions=(pd.concat(self.p_decisions, ignore_index=True) if self.p_decisions
                       else None),
            state=self._state_rows(every_tile),
            cp=replace(self.cp), batches=self.p_batches)
        self.inflight_ids = self.p_ids  # the previous commit's fills are in the store now
        # the cursor is opened here: a connection is used by one thread at a time
        self._writer = threading.Thread(target=self._commit, args=(job, self.con.cursor()),
                                        name="traderseg-checkpoint", daemon=True)
        self._writer.start()
        self._reset_pending()

    def _state_rows(self, every_tile: bool) -> S.StateRows:
        """Serialise the checkpoint's state: changed tiles' keys, tiles written, accounts."""
        new = self.p_tiles - self.stale
        self._mark_stale(new)
        write = self._tiles_to_write(every_tile)
        return S.state_rows(self.cp, self.states, write, self.p_accounts, self.assignment,
                            self.open_fills, stale_tiles=new - write)

    def _writer_idle(self) -> bool:
        """Whether no background commit is running (one that failed raises here)."""
        if self._writer is not None and not self._writer.is_alive():
            self._wait_writer()
        return self._writer is None

    def _wait_writer(self, *, raise_error: bool = True) -> None:
        """Wait for the background commit; re-raise what it failed with."""
        if self._writer is not None:
            self._writer.join()
            self._writer = None
        error, self._writer_error = self._writer_error, None
        if error is not None and raise_error:
            raise error

    def _commit(self, job: _Commit, con: duckdb.DuckDBPyConnection) -> None:
        """Store, acknowledge and publish one checkpoint (runs in the background thread)."""
        try:
            try:
                audit = self._store(con, job)
            except (duckdb.Error, OSError) as exc:  # rolled back: nothing of it is stored
                reason = " ".join(str(exc).split()) or type(exc).__name__
                raise StoreError(
                    f"{self._store_label}: checkpoint not committed ({reason}); nothing of "
                    "it is stored and its messages stay unacknowledged, so a restart "
                    "resumes from the last checkpoint") from exc
            finally:
                con.close()
            self.stats.audit_rows += audit
            self.source.ack(job.batches)
            if self.cfg.record_latency:
                # Redis entry ids start with the server's time of the XADD in milliseconds
                now_ms = time.time() * 1000.0
                self.stats.latencies_ms.extend(
                    now_ms - int(i.split("-", 1)[0]) for b in job.batches for i in b.ack)
            if self.publish is not None and job.decisions is not None:
                self.publish(job.decisions)
            self.stats.checkpoints += 1
            logger.info("checkpoint %d: %d fills in the store from this source, position %s",
                        self.stats.checkpoints, job.cp.fills, job.cp.position)
            if self.on_checkpoint is not None:
                self.on_checkpoint(self.stats)
        except BaseException as exc:  # handed to the consumer's thread
            self._writer_error = exc

    def _store(self, con: duckdb.DuckDBPyConnection, job: _Commit) -> int:
        """Write one checkpoint in one transaction; return the audit rows appended."""
        con.begin()
        try:
            if job.fills is not None:
                con.register("_stream_fills", job.fills)
                try:
                    con.execute(f"INSERT INTO fills ({', '.join(FILLS.names)}, source) "
                                "SELECT * FROM _stream_fills")
                finally:
                    con.unregister("_stream_fills")
            if job.rejects is not None:
                con.register("_stream_rejects", job.rejects)
                try:
                    con.execute(
                        "INSERT INTO rejects SELECT r.* FROM _stream_rejects r WHERE NOT EXISTS "
                        "(SELECT 1 FROM rejects o WHERE o.source = r.source AND o.line = r.line "
                        "AND o.field = r.field AND o.reason = r.reason)")
                finally:
                    con.unregister("_stream_rejects")
            audit = 0
            if job.decisions is not None:
                audit = write_decisions(con, job.decisions, actor="stream")
            S.write_state(con, self.cfg.consumer, job.cp, job.state)
            con.commit()
        except BaseException:
            con.rollback()
            raise
        return audit

    def _reject_rows(self) -> pd.DataFrame | None:
        """Return the pending rejects as rows of ``rejects`` (None: none)."""
        if not self.p_rejects:
            return None
        now = datetime.now(UTC)
        rows = []
        for ref, fld, reason, raw in self.p_rejects:
            # FILE:LINE, stdin:LINE, STREAM:ENTRY#LINE (a packed entry) or STREAM:ENTRY
            src, sep, line = ref.rpartition("#")
            if not (sep and line.isdigit() and src):
                src, _, line = ref.rpartition(":")
            if line.isdigit() and src:
                rows.append((src, int(line), fld, reason, raw, now))
            else:
                rows.append((ref, 0, fld, reason, raw, now))
        return pd.DataFrame(rows, columns=["source", "line", "field", "reason", "raw",
                                           "ingested_at"])


@dataclass(frozen=True)
class _Commit:
    """One checkpoint's work, taken when it was submitted (see ``StreamConsumer._submit``)."""

    fills: pa.Table | None
    rejects: pd.DataFrame | None
    decisions: pd.DataFrame | None
    state: S.StateRows
    cp: S.Checkpoint
    batches: list[Batch]


def _xadd_ms(refs: list[str]) -> np.ndarray:
    """XADD times (ms) of Redis fills from their references ``STREAM:ENTRY[#LINE]``.

    A Redis entry id starts with the server's time of the XADD in milliseconds.
    """
    return np.array([float(r.rpartition(":")[2].partition("-")[0]) for r in refs])


def _event_times(con: duckdb.DuckDBPyConnection) -> list[tuple[int, date]] | None:
    """Market-event bars as (time in microseconds, UTC day); None when there are none."""
    rows = con.execute("SELECT epoch_us(ts), CAST(ts AS DATE) FROM market "
                       "WHERE event IS NOT NULL").fetchall()
    if not rows:
        return None
    return [(int(t), d) for t, d in rows]


FULL_COLLECTION_EVERY = 1_000  # second-generation collections between full ones while running


def _rare_full_collections() -> tuple[int, ...]:
    """Make the collector's full collections rarer; return the thresholds to restore.

    A full collection walks every object alive, the online states first among them, and
    the states grow with every new account-day: by default that triggers one every few
    hundred milliseconds of consuming (about a tenth of the wall time measured). The
    states form no reference cycles, so little waits for a full collection; the young
    generations are collected as usual.
    """
    before = gc.get_threshold()
    gc.set_threshold(before[0], before[1], max(before[2], FULL_COLLECTION_EVERY))
    return before


def _install_term_handler(stop: Callable[[], None]) -> Any:
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, lambda *_: stop())


def _restore_term_handler(previous: Any) -> None:
    if previous is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, previous)
