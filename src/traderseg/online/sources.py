"""Where the stream's fills come from: file replay, JSONL on standard input, Redis Streams.

Every source yields :class:`Message` batches; a message is one fill as the source carried
it (field name -> value, text or typed) and a *position* the source can resume from. A
source acknowledges positions only once their effects are committed to the store
(:meth:`Source.ack`), so a crash between reading and committing re-delivers them: delivery
is at-least-once and the consumer makes the effects idempotent (a fill id seen twice
changes nothing).

- :class:`ReplaySource` reads a Parquet, CSV or JSONL file, or a folder of them, sorts the
  fills by time and replays them at a chosen speed (``speed=0``: as fast as possible). Its
  position is the number of fills replayed, so a restart skips what was committed.
- :class:`JsonlSource` reads JSON lines from a text stream (standard input); a restart
  cannot rewind it, so its position only counts lines.
- :class:`RedisSource` reads a Redis stream through a consumer group (``XREADGROUP``); it
  first re-reads its own pending entries, reclaims the pending entries of consumers idle
  for longer than ``claim_idle_ms`` (``XAUTOCLAIM``), and acknowledges (``XACK``) after
  each commit.
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.compute as pc

from traderseg.errors import ConfigError, DataError
from traderseg.schema import FILLS
from traderseg.simulate.fillcodec import packed_lines

logger = logging.getLogger(__name__)

REPLAY_SUFFIXES = (".parquet", ".csv", ".jsonl", ".ndjson", ".json")


@dataclass
class Message:
    """One fill as a source delivered it.

    Attributes
    ----------
    fields : dict
        Field name -> value (text from Redis and JSON lines, typed from Parquet).
    ref : str
        Where it came from, for rejects: ``FILE:LINE``, ``stdin:LINE`` or the stream entry
        id.
    raw : str or None
        The message as JSON text, kept with a reject.
    """

    fields: dict[str, Any]
    ref: str
    raw: str | None = None


@dataclass
class Batch:
    """Messages read together and the position after them."""

    messages: list[Message]
    position: str
    # source-specific handles to acknowledge once committed (Redis entry ids)
    ack: list[str] = field(default_factory=list)
    # a replay (or packed entries) hand their rows over as a table instead of messages
    # (same validation)
    table: pa.Table | None = None
    refs: list[str] = field(default_factory=list)
    lines: list[str] | None = None  # the rows as JSON text, for rejects (packed entries)

    @property
    def size(self) -> int:
        """Number of fills in the batch."""
        return len(self.messages) if self.table is None else self.table.num_rows


class Source:
    """Base class of the stream's sources."""

    name = "source"

    def resume(self, position: str | None) -> None:
        """Continue after ``position`` (the last committed one; None: from the start)."""

    def read(self, max_messages: int, block_ms: int) -> Batch | None:
        """Return the next messages (None when a finite source is exhausted)."""
        raise NotImplementedError

    def ack(self, batches: Sequence[Batch]) -> None:
        """Acknowledge batches whose effects are committed."""

    def close(self) -> None:
        """Release the source."""


def parse_source(text: str, *, speed: float = 0.0, group: str = "traderseg",
                 consumer: str = "consumer-1", claim_idle_ms: int = 30_000,
                 stdin: IO[str] | None = None) -> Source:
    """Build a source from its command-line form.

    ``replay:PATH`` (or a bare existing path), ``-`` / ``stdin`` for JSONL on standard
    input, ``redis://HOST:PORT/STREAM`` for a Redis stream.

    Raises
    ------
    ConfigError
        For a form that names no known source.
    """
    if text in ("-", "stdin", "stdin:"):
        import sys

        return JsonlSource(stdin or sys.stdin, name="stdin")
    if text.startswith("redis://") or text.startswith("rediss://"):
        return RedisSource(text, group=group, consumer=consumer, claim_idle_ms=claim_idle_ms)
    path = text[len("replay:"):] if text.startswith("replay:") else text
    if not path.strip():
        raise ConfigError(f"source {text!r}: give the file or folder to replay (replay:PATH)")
    if not text.startswith("replay:") and not Path(path).exists():
        raise ConfigError(f"source {text!r}: expected replay:PATH, redis://HOST:PORT/STREAM or -")
    return ReplaySource(Path(path), speed=speed)


# -- replay --------------------------------------------------------------------------------
def replay_files(path: Path) -> list[Path]:
    """List the files a replay of ``path`` reads (a file, or a folder's fill files by name)."""
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file()
                       and p.suffix.lower() in REPLAY_SUFFIXES)
        if not files:
            raise DataError(f"{path}: no Parquet, CSV or JSONL file in the folder")
        return files
    if path.suffix.lower() not in REPLAY_SUFFIXES:
        raise DataError(f"{path}: not a Parquet, CSV or JSONL file")
    return [path]


def _read_file(path: Path) -> pa.Table:
    """Read one replay file as text columns plus its row references."""
    from traderseg.ingest.readers import iter_batches

    parts = []
    for raw in iter_batches(path):
        if raw.bad_rows:
            bad = ", ".join(f"line {b.line}: {b.reason}" for b in raw.bad_rows[:3])
            raise DataError(f"{path}: unreadable rows ({bad}); fix them or ingest the file "
                            "to send them to rejects")
        t = raw.table
        t = t.append_column("__ref__", pa.array([f"{path}:{int(n)}" for n in raw.lines]))
        parts.append(t)
    if not parts:
        return pa.table({"__ref__": pa.array([], pa.string())})
    return pa.concat_tables(parts, promote_options="permissive")


def _sort_key(table: pa.Table, path: Path) -> pa.Array:
    """Timestamps to order a replay by (unparseable ones sort first and are rejected later)."""
    from traderseg.ingest.coerce import as_timestamp

    if "ts" not in table.column_names:
        raise DataError(f"{path}: no `ts` column to replay the fills in time order")
    ts, _ = as_timestamp(table.column("ts"), name="ts")
    return pc.fill_null(pc.cast(ts, pa.int64()), -(2**62))


class ReplaySource(Source):
    """Replay canonical fills from a file or folder in timestamp order.

    Parameters
    ----------
    path : Path
        Parquet, CSV or JSONL file, or a folder of them.
    speed : float
        Data seconds per wall second (``60``: a minute of fills each second); ``0`` replays
        as fast as possible.
    """

    name = "replay"

    def __init__(self, path: Path, *, speed: float = 0.0) -> None:
        if speed < 0:
            raise ConfigError(f"replay speed must be >= 0, got {speed:g}")
        self.path = path
        self.speed = speed
        tables = []
        keys = []
        for f in replay_files(path):
            t = _read_file(f)
            if t.num_rows:
                keys.append(_sort_key(t, f))
                tables.append(t)
        if not tables:
            raise DataError(f"{path}: no fills to replay")
        table = pa.concat_tables(tables, promote_options="permissive")
        key = pa.chunked_array(keys)
        order = pc.sort_indices(pa.table({"k": key, "i": pa.array(range(len(key)))}),
                                sort_keys=[("k", "ascending"), ("i", "ascending")])
        self.table = table.take(order)
        self.times = key.take(order).to_numpy()
        self.offset = 0
        self._clock: tuple[float, int] | None = None

    def __len__(self) -> int:
        return self.table.num_rows

    def resume(self, position: str | None) -> None:
        """Skip the fills already committed (the position counts them)."""
        self.offset = int(position or 0)
        if self.offset > self.table.num_rows:
            raise DataError(f"{self.path}: the checkpoint is past the end of the replay "
                            f"({self.offset:,} > {self.table.num_rows:,} fills); was the file "
                            "changed?")

    def read(self, max_messages: int, block_ms: int) -> Batch | None:
        """Return the next fills, pacing them at the replay speed."""
        if self.offset >= self.table.num_rows:
            return None
        end = min(self.offset + max_messages, self.table.num_rows)
        if self.speed > 0:
            end = self._pace(end)
        chunk = self.table.slice(self.offset, end - self.offset)
        refs = chunk.column("__ref__").to_pylist()
        self.offset = end
        return Batch([], str(end), table=chunk.drop_columns(["__ref__"]), refs=refs)

    def _pace(self, end: int) -> int:
        """Wait until the first fill is due and return how many are due by then."""
        import numpy as np

        now = time.monotonic()
        if self._clock is None:
            self._clock = (now, int(self.times[self.offset]))
        wall0, data0 = self._clock
        due_us = data0 + (now - wall0) * self.speed * 1e6
        first = int(self.times[self.offset])
        if first > due_us:
            time.sleep(min((first - due_us) / (self.speed * 1e6), 1.0))
            due_us = data0 + (time.monotonic() - wall0) * self.speed * 1e6
        n_due = int(np.searchsorted(self.times[self.offset:end], due_us, side="right"))
        return self.offset + max(n_due, 1)


# -- JSON lines ----------------------------------------------------------------------------
def _line_message(text: str, ref: str) -> Message:
    """One JSON line as a message (one that is not a JSON object carries its error)."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        return Message({"__error__": f"not JSON ({exc.msg})"}, ref, text)
    if not isinstance(obj, dict):
        return Message({"__error__": "not a JSON object"}, ref, text)
    return Message(obj, ref, text)


_TEXT_SCHEMA = pa.schema([(c, pa.string()) for c in FILLS.names])


def _lines_table(lines: list[str]) -> pa.Table | None:
    """Read JSON lines whose values are all text into one table of the canonical columns.

    None when any line is not such an object (not JSON, a typed value, two objects on a
    line, a blank line): the caller then reads the lines one by one, as messages.
    """
    import pyarrow.json as pj

    opts = pj.ParseOptions(explicit_schema=_TEXT_SCHEMA, unexpected_field_behavior="ignore")
    try:
        table = pj.read_json(io.BytesIO("\n".join(lines).encode()), parse_options=opts)
    except (pa.ArrowInvalid, UnicodeEncodeError):
        return None
    return table if table.num_rows == len(lines) else None


class JsonlSource(Source):
    """JSON lines from a text stream (one fill object per line)."""

    name = "jsonl"

    def __init__(self, stream: IO[str], *, name: str = "stdin") -> None:
        self.stream = stream
        self.label = name
        self.line = 0

    def resume(self, position: str | None) -> None:
        """Skip nothing: a pipe cannot rewind."""

    def read(self, max_messages: int, block_ms: int) -> Batch | None:
        """Read up to ``max_messages`` lines (None at the end of the stream)."""
        msgs: list[Message] = []
        for _ in range(max_messages):
            text = self.stream.readline()
            if not text:
                break
            self.line += 1
            text = text.strip()
            if not text:
                continue
            msgs.append(_line_message(text, f"{self.label}:{self.line}"))
        if not msgs:
            return None
        return Batch(msgs, str(self.line))


# -- Redis Streams -------------------------------------------------------------------------
@dataclass(frozen=True)
class RedisAddress:
    """``redis://HOST:PORT/STREAM`` split into its parts."""

    host: str
    port: int
    stream: str
    db: int = 0

    @classmethod
    def parse(cls, url: str) -> RedisAddress:
        """Parse a stream address (``/STREAM`` or ``/DB/STREAM``)."""
        u = urlparse(url)
        parts = [p for p in u.path.split("/") if p]
        if not u.hostname or not parts:
            raise ConfigError(f"{url}: expected redis://HOST:PORT/STREAM")
        db = 0
        if len(parts) == 2 and parts[0].isdigit():
            db = int(parts[0])
            parts = parts[1:]
        if len(parts) != 1:
            raise ConfigError(f"{url}: expected redis://HOST:PORT/STREAM")
        return cls(u.hostname, u.port or 6379, parts[0], db)


def redis_client(addr: RedisAddress) -> Any:
    """Open a redis-py client for ``addr`` (hiredis parses replies when installed)."""
    import redis

    return redis.Redis(host=addr.host, port=addr.port, db=addr.db, decode_responses=True,
                       socket_connect_timeout=2.0, socket_timeout=10.0,
                       health_check_interval=10)


FIRST_READ = 100
"""Entries of a Redis source's first read, before it knows how many fills an entry holds."""


class RedisSource(Source):
    """Read a Redis stream through a consumer group.

    Parameters
    ----------
    url : str
        ``redis://HOST:PORT/STREAM``.
    group : str
        Consumer group (created at the stream's start when missing).
    consumer : str
        This consumer's name within the group.
    claim_idle_ms : int
        Pending entries of other consumers idle for longer than this are claimed.
    retry_s : float
        Longest wait between reconnection attempts when the server goes away.
    """

    name = "redis"

    def __init__(self, url: str, *, group: str = "traderseg", consumer: str = "consumer-1",
                 claim_idle_ms: int = 30_000, retry_s: float = 5.0,
                 give_up_s: float | None = None) -> None:
        self.addr = RedisAddress.parse(url)
        self.url = url
        self.group = group
        self.consumer = consumer
        self.claim_idle_ms = claim_idle_ms
        self.retry_s = retry_s
        self.give_up_s = give_up_s
        self.client = redis_client(self.addr)
        self._pending_done = False
        self._last_claim = 0.0
        self._claim_from: str | None = None  # cursor of a claim that is going on
        self.reconnects = 0
        # fills per entry in the last read (packed entries hold many; None: nothing read)
        self._per_entry: float | None = None

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a Redis call, retrying with backoff while the server is away."""
        import redis

        delay = 0.1
        started = time.monotonic()
        warned = False
        while True:
            try:
                return fn(*args, **kwargs)
            except redis.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                # the server came back without the group (it keeps no data): join again;
                # fills already committed are recognised by their id
                logger.warning("%s: consumer group %s is gone; creating it again", self.url,
                               self.group)
                self._ensure_group()
                self._pending_done = False
                self._claim_from = None
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                if self.give_up_s is not None and time.monotonic() - started > self.give_up_s:
                    raise DataError(f"{self.url}: Redis unreachable for "
                                    f"{self.give_up_s:g} s ({exc})") from None
                if not warned:
                    logger.warning("%s: Redis unreachable (%s); retrying", self.url, exc)
                    warned = True
                time.sleep(delay)
                delay = min(delay * 2, self.retry_s)
                self.reconnects += 1

    def _ensure_group(self) -> None:
        import redis

        try:
            self.client.xgroup_create(self.addr.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def resume(self, position: str | None) -> None:
        """Join the group; pending entries are re-read first (the group keeps positions)."""
        self._call(self._ensure_group)
        self._pending_done = False

    def _batch(self, entries: Sequence[tuple[str, dict[str, str]]]) -> Batch:
        """Turn ``entries`` into a batch positioned at (and acknowledging) the last one.

        A packed entry's fills are named ``STREAM:ENTRY#LINE`` (lines from 1). When any
        entry is packed, the batch's fills are read as JSON lines into one table at once
        (an entry of one fill as the object of its fields).
        """
        stream = self.addr.stream
        ids = [entry_id for entry_id, _ in entries]
        position = ids[-1] if ids else ""
        live = [(i, f) for i, f in entries if f is not None]  # None: deleted while pending
        packs = [packed_lines(f) for _, f in live]
        if all(p is None for p in packs):
            # the raw text of a message is written only if it is rejected (``_raw``)
            return Batch([Message(f, f"{stream}:{i}") for i, f in live], position, ids)
        lines: list[str] = []
        refs: list[str] = []
        for (entry_id, fields), packed in zip(live, packs, strict=True):
            if packed is None:
                lines.append(json.dumps(fields))
                refs.append(f"{stream}:{entry_id}")
            else:
                lines.extend(packed)
                refs.extend(f"{stream}:{entry_id}#{k}" for k in range(1, len(packed) + 1))
        table = _lines_table(lines)
        if table is None:
            return Batch([_line_message(t, r) for t, r in zip(lines, refs, strict=True)],
                         position, ids)
        return Batch([], position, ids, table=table, refs=refs, lines=lines)

    def read(self, max_messages: int, block_ms: int) -> Batch | None:
        """Own pending entries first, then claimed ones, then new ones.

        About ``max_messages`` fills are read: entries are counted at the size of the
        last read's (packed entries hold several fills; the first read takes at most
        :data:`FIRST_READ` entries).
        """
        per = self._per_entry
        count = min(max_messages, FIRST_READ) if per is None else int(max_messages / per)
        batch = self._read(max(1, count), block_ms)
        if batch is not None and batch.ack:
            self._per_entry = max(1.0, batch.size / len(batch.ack))
        return batch

    def _read(self, max_messages: int, block_ms: int) -> Batch | None:
        if not self._pending_done:
            got = self._call(self.client.xreadgroup, self.group, self.consumer,
                             {self.addr.stream: "0"}, count=max_messages)
            entries = got[0][1] if got else []
            if entries:
                return self._batch(entries)
            self._pending_done = True
        now = time.monotonic()
        if (self._claim_from is not None
                or now - self._last_claim > max(self.claim_idle_ms / 1000.0, 0.5)):
            # a claim takes ``max_messages``; the next reads go on from its cursor until the
            # pending list is scanned through: a dead consumer's entries all come before
            # newer ones, so they are folded in their order, not as late fills
            self._last_claim = now
            claimed = self._call(self.client.xautoclaim, self.addr.stream, self.group,
                                 self.consumer, self.claim_idle_ms,
                                 start_id=self._claim_from or "0-0", count=max_messages)
            cursor = claimed[0] if claimed else "0-0"
            entries = claimed[1] if claimed else []
            self._claim_from = cursor if cursor != "0-0" else None  # "0-0": scanned through
            if entries:
                logger.info("%s: claimed %d pending entries of idle consumers",
                            self.url, len(entries))
                return self._batch(entries)
        got = self._call(self.client.xreadgroup, self.group, self.consumer,
                         {self.addr.stream: ">"}, count=max_messages, block=block_ms)
        return self._batch(got[0][1] if got else [])

    def ack(self, batches: Sequence[Batch]) -> None:
        """Acknowledge the committed entries."""
        ids = [i for b in batches for i in b.ack]
        for k in range(0, len(ids), 10_000):
            self._call(self.client.xack, self.addr.stream, self.group, *ids[k:k + 10_000])

    def close(self) -> None:
        """Close the connection."""
        self.client.close()


def iter_all(source: Source, max_messages: int = 10_000) -> Iterator[Batch]:
    """Every batch of a finite source (for tests and tools)."""
    while True:
        b = source.read(max_messages, 0)
        if b is None:
            return
        yield b
