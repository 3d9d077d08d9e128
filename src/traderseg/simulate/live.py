"""Live mode of the simulator: a simulated venue's fills written in time order at a rate.

The pieces, each usable on its own (the stream consumer's tests and benchmark drive them):

* :func:`live_fills` reads a simulated venue's fills in time order (then fill id) as
  canonical fill dicts, optionally from / until a time;
* :func:`encode_fill` / :func:`decode_fill` (:mod:`.fillcodec`) are the one encoding of a
  fill as Redis stream fields and JSONL lines;
* :class:`RedisSink` and :class:`JsonlSink` (:mod:`.sinks`) write batches of fills;
* :class:`TokenBucket` paces the writes at ``rate`` fills per second, and
  :func:`write_live` runs the loop: pacing, retries with backoff while a sink is out of
  reach, a clean stop when asked, and resumption after the last fill a sink holds;
* :func:`prepare_live` simulates the venue (or finds it simulated with the same
  parameters) and writes the batch context, the fills and tables before the live start,
  under ``OUT/history`` (:data:`HISTORY_DIR`).

Pacing. The bucket holds up to one batch of tokens and refills at ``rate`` per second;
writing ``n`` fills takes ``n`` tokens, waiting until they are there. Over any stretch of
``T`` seconds at most ``capacity + rate * T`` fills are written, and a run of ``N`` fills
in batches of ``b`` takes ``(N - b) / rate`` seconds. Batches are :func:`batch_size` fills:
a twentieth of a second's worth, between 1 and :data:`MAX_BATCH`.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from traderseg.errors import ConfigError, DataError, SinkError, SinkUnavailable
from traderseg.schema import FILLS
from traderseg.simulate.crash import Crash
from traderseg.simulate.fillcodec import FillDecodeError, decode_fill, encode_fill
from traderseg.simulate.sinks import JsonlSink, RedisSink, Sink, fill_key, open_sink

logger = logging.getLogger(__name__)

__all__ = [
    "FillDecodeError",
    "JsonlSink",
    "LivePlan",
    "LiveResult",
    "RedisSink",
    "TokenBucket",
    "batch_size",
    "decode_fill",
    "encode_fill",
    "live_fills",
    "open_sink",
    "pacing_schedule",
    "prepare_live",
    "write_live",
]

MAX_BATCH = 500  # fills per write at full speed (one Redis pipeline, one file flush)
BATCHES_PER_SECOND = 20
HISTORY_DIR = "history"
MANIFEST = "live.json"
BACKOFF_FIRST, BACKOFF_MAX = 0.1, 5.0  # seconds between retries while a sink is away
DEFAULT_MAX_OUTAGE = 300.0  # seconds a sink may stay away before the run gives up
_STOP_POLL = 0.1  # longest sleep between two looks at the stop flag


def batch_size(rate: float) -> int:
    """Return the fills per write at ``rate`` fills/s (0: as fast as possible).

    Examples
    --------
    >>> batch_size(0), batch_size(100), batch_size(10), batch_size(1e6)
    (500, 5, 1, 500)
    """
    if rate < 0:
        raise ConfigError(f"rate must be >= 0 fills/s, got {rate}")
    if rate == 0:
        return MAX_BATCH
    return max(1, min(MAX_BATCH, int(rate // BATCHES_PER_SECOND)))


@dataclass
class TokenBucket:
    """Token bucket: ``rate`` tokens per second, holding at most ``capacity``.

    Parameters
    ----------
    rate : float
        Refill rate, tokens per second (> 0).
    capacity : float
        Largest number of tokens held (the burst); the bucket starts full.

    Examples
    --------
    >>> b = TokenBucket(rate=10.0, capacity=5.0)
    >>> b.take(5, now=0.0), b.take(5, now=0.0), b.take(5, now=0.5)
    (0.0, 0.5, 0.5)
    """

    rate: float
    capacity: float
    _tokens: float | None = field(default=None, init=False, repr=False)
    _stamp: float = field(default=0.0, init=False, repr=False)

    def take(self, n: int, now: float) -> float:
        """Take ``n`` tokens at time ``now``; return how long to wait before using them.

        The tokens are taken at once (the bucket may go into debt); the caller waits the
        returned number of seconds, by which time the debt is refilled.
        """
        if self._tokens is None:
            self._tokens, self._stamp = self.capacity, now
        elapsed = max(now - self._stamp, 0.0)
        self._tokens = min(self.capacity, self._tokens + elapsed * self.rate)
        self._stamp = max(now, self._stamp)
        self._tokens -= n
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate


def pacing_schedule(sizes: Iterable[int], rate: float, capacity: float | None = None
                    ) -> list[float]:
    """Return the times (seconds from the start) at which batches of ``sizes`` are written.

    What :func:`write_live` does at ``rate``, with writes taking no time.

    Examples
    --------
    >>> pacing_schedule([5, 5, 5, 5], rate=10.0, capacity=5)
    [0.0, 0.5, 1.0, 1.5]
    """
    sizes = list(sizes)
    if rate <= 0:
        return [0.0] * len(sizes)
    bucket = TokenBucket(rate, float(capacity if capacity is not None else batch_size(rate)))
    now, out = 0.0, []
    for n in sizes:
        now += bucket.take(n, now)
        out.append(now)
    return out


def _fills_glob(source: str | Path) -> str:
    p = Path(source)
    if p.is_file():
        return str(p)
    if (p / "fills").is_dir():
        p = p / "fills"
    if not p.is_dir() or not any(p.glob("*.parquet")):
        raise DataError(f"{source}: no fills Parquet files (a simulated venue's folder, its "
                        "fills folder, or a Parquet file)")
    return str(p / "*.parquet")


def live_fills(
    source: str | Path,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    batch_rows: int = 10_000,
) -> Iterator[dict[str, Any]]:
    """Canonical fills of a simulated venue in time order, then fill id.

    Parameters
    ----------
    source : str or Path
        A venue folder written by :func:`traderseg.simulate.simulate_venue`, its
        ``fills`` folder, or one Parquet file of canonical fills.
    since, until : datetime, optional
        Only fills with ``since <= ts < until`` (naive times are UTC).
    batch_rows : int
        Rows read at a time (memory bound).

    Yields
    ------
    dict
        Every canonical column; ``ts`` and ``expiry`` as UTC datetimes, ``None`` for nulls.
    """
    glob = _fills_glob(source)
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        where, params = [], []
        for op, bound in ((">=", since), ("<", until)):
            if bound is not None:
                where.append(f"ts {op} ?")
                params.append(_utc(bound))
        sql = (f"SELECT {', '.join(FILLS.names)} FROM read_parquet(?)"
               f"{' WHERE ' + ' AND '.join(where) if where else ''} ORDER BY ts, fill_id")
        result = con.execute(sql, [glob, *params])
        # DuckDB 1.5 renamed fetch_record_batch; older clients only have the old name
        reader = (getattr(result, "to_arrow_reader", None) or result.fetch_record_batch)(
            batch_rows)
        for batch in reader:
            yield from batch.to_pylist()
    finally:
        con.close()


def _utc(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


@dataclass(frozen=True)
class LiveResult:
    """What a live run wrote.

    Attributes
    ----------
    written : int
        Fills written by this run.
    skipped : int
        Fills the sink already held (a run started again goes on after them).
    stopped : bool
        Whether the run was asked to stop before the end.
    seconds : float
        Wall time of the writing.
    retries : int
        Writes repeated after the sink was out of reach.
    """

    written: int
    skipped: int
    stopped: bool
    seconds: float
    retries: int = 0

    @property
    def fills_per_second(self) -> float:
        """Throughput of the run."""
        return self.written / self.seconds if self.seconds > 0 else float("nan")


def write_live(
    fills: Iterable[dict[str, Any]],
    sink: Sink,
    *,
    rate: float = 0.0,
    should_stop: Callable[[], bool] = lambda: False,
    max_outage: float = DEFAULT_MAX_OUTAGE,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    on_batch: Callable[[int], None] | None = None,
) -> LiveResult:
    """Write fills (time order) to ``sink`` at ``rate`` fills per second.

    Fills up to the last one the sink holds are skipped, so a run started again after a
    stop goes on where it stopped. While the sink is out of reach the batch is retried
    with a doubling backoff (0.1 s to 5 s), with one warning when it goes away and one
    when it is back.

    Parameters
    ----------
    fills : iterable of dict
        Canonical fills in time order, then fill id (:func:`live_fills`).
    sink : Sink
        :class:`RedisSink`, :class:`JsonlSink` or any object with the same methods.
    rate : float
        Fills per second; 0 writes as fast as possible.
    should_stop : callable
        Asked between batches (and while waiting); ``True`` ends the run cleanly.
    max_outage : float
        Seconds the sink may stay out of reach before the run gives up.
    clock, sleep : callable
        Time source and sleep (seconds); a test passes a simulated clock.
    on_batch : callable, optional
        Called with the running count after each batch.

    Returns
    -------
    LiveResult

    Raises
    ------
    SinkError
        The sink refused the fills, or stayed out of reach longer than ``max_outage``.
    """
    size = batch_size(rate)
    bucket = TokenBucket(rate, float(size)) if rate > 0 else None
    began = clock()
    attempts = [0]
    resume = _with_retry(sink.last_written, sink, should_stop, max_outage, clock, sleep,
                         attempts)
    written = skipped = 0
    stopped = False
    batch: list[dict[str, Any]] = []

    def flush() -> bool:
        nonlocal written
        if bucket is not None and not _wait(bucket.take(len(batch), clock()), should_stop,
                                            clock, sleep):
            return False

        def send() -> bool:
            sink.write(batch)
            return True

        ok = _with_retry(send, sink, should_stop, max_outage, clock, sleep, attempts)
        if ok is None:
            return False
        written += len(batch)
        if on_batch is not None:
            on_batch(written)
        return True

    for fill in fills:
        if resume is not None and fill_key(fill) <= resume:
            skipped += 1
            continue
        batch.append(fill)
        if len(batch) >= size:
            if should_stop() or not flush():
                stopped = True
                break
            batch = []
    else:
        if batch and (should_stop() or not flush()):
            stopped = True
    return LiveResult(written=written, skipped=skipped, stopped=stopped,
                      seconds=clock() - began, retries=attempts[0])


def _wait(seconds: float, should_stop: Callable[[], bool], clock: Callable[[], float],
          sleep: Callable[[float], None]) -> bool:
    """Sleep ``seconds`` in short slices; ``False`` when asked to stop meanwhile."""
    end = clock() + seconds
    while True:
        left = end - clock()
        if left <= 0:
            return True
        if should_stop():
            return False
        sleep(min(left, _STOP_POLL))


def _with_retry(
    call: Callable[[], Any], sink: Sink, should_stop: Callable[[], bool], max_outage: float,
    clock: Callable[[], float], sleep: Callable[[float], None], attempts: list[int] | None = None,
) -> Any:
    """Run ``call``, retrying with backoff while the sink is away (``None``: stopped)."""
    delay, since = BACKOFF_FIRST, None
    while True:
        try:
            out = call()
        except SinkUnavailable as exc:
            now = clock()
            if since is None:
                since = now
                logger.warning("%s; retrying with backoff", str(exc).rstrip("."))
            elif now - since > max_outage:
                raise SinkError(f"{str(exc).rstrip('.')}; gave up after {max_outage:.0f} s"
                                ) from None
            if attempts is not None:
                attempts[0] += 1
            if not _wait(delay, should_stop, clock, sleep):
                return None
            delay = min(delay * 2, BACKOFF_MAX)
            continue
        if since is not None:
            logger.warning("%s is back after %.1f s", sink.name, clock() - since)
        return out


@dataclass(frozen=True)
class LivePlan:
    """A venue simulated for the live mode.

    Attributes
    ----------
    out : Path
        The venue folder (all tables, all fills, as ``traderseg simulate`` writes them).
    live_start : datetime or None
        Fills from this time on are the live part; ``None``: all of them.
    history : Path or None
        ``OUT/history``: accounts, market, transfers and fills before ``live_start``.
    simulated : bool
        Whether this call ran the simulation (``False``: found with the same parameters).
    """

    out: Path
    live_start: datetime | None
    history: Path | None
    simulated: bool


def prepare_live(
    out: str | Path,
    *,
    accounts: int,
    days: int,
    seed: int,
    start: date,
    difficulty: str,
    crash: Crash | None = None,
    history_until: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> LivePlan:
    """Simulate the venue for a live run, or find it simulated, and write its history.

    The parameters are kept in ``OUT/live.json``; a second call with the same ones reuses
    the simulation (so a stopped run can be started again and go on), with different ones
    it is refused. With ``history_until``, ``OUT/history`` is (re)written with the tables
    as they stood before it: fills and transfers before it, accounts created before it,
    and the daily market bars that closed by then.

    Raises
    ------
    ConfigError
        ``OUT`` holds another simulation, or ``history_until`` is outside the window.
    """
    from traderseg.simulate.writer import simulate_venue

    out = Path(out)
    params = {"accounts": accounts, "days": days, "seed": seed, "start": start.isoformat(),
              "difficulty": difficulty,
              "crash": None if crash is None else {**asdict(crash), "day": crash.day.isoformat()}}
    manifest = out / MANIFEST
    if history_until is not None:
        cut = _utc(history_until)
        lo = datetime(start.year, start.month, start.day, tzinfo=UTC)
        if not lo < cut <= lo + timedelta(days=days):
            raise ConfigError(f"--history-until {cut.isoformat()} is outside the simulated "
                              f"window {start} + {days} days")
    simulated = False
    if manifest.exists():
        try:
            old = json.loads(manifest.read_text())
        except json.JSONDecodeError:
            raise ConfigError(f"{manifest}: not a live-mode manifest (not JSON)") from None
        if old != params:
            changed = sorted(k for k in params if old.get(k) != params[k])
            raise ConfigError(f"{out} holds a simulation with other parameters "
                              f"({', '.join(changed)}); choose a new output folder")
    else:
        simulate_venue(out, accounts=accounts, days=days, seed=seed, start=start,
                       difficulty=difficulty, crash=crash, progress=progress)
        manifest.write_text(json.dumps(params, indent=2) + "\n")
        simulated = True
    history = None
    if history_until is not None:
        history = write_history(out, _utc(history_until))
    return LivePlan(out=out, live_start=None if history_until is None else _utc(history_until),
                    history=history, simulated=simulated)


def write_history(out: Path, until: datetime) -> Path:
    """Write ``out/history``: the venue's tables as they stood before ``until``.

    Returns
    -------
    Path
        The history folder (``fills/part-*.parquet``, accounts, market, transfers).
    """
    target = out / HISTORY_DIR
    if target.exists():
        shutil.rmtree(target)
    (target / "fills").mkdir(parents=True)
    cut = pa.scalar(until, pa.timestamp("us", tz="UTC"))
    for part in sorted((out / "fills").glob("part-*.parquet")):
        t = pq.read_table(part)
        pq.write_table(t.filter(pc.less(t["ts"], cut)), target / "fills" / part.name,
                       compression="zstd")
    day_us = 86_400_000_000
    for name, column, shift in (("accounts", "created_at", 0), ("transfers", "ts", 0),
                                ("market", "ts", day_us)):
        t = pq.read_table(out / f"{name}.parquet")
        # a daily bar is known once its day has closed
        ends = pc.add(t[column].cast(pa.int64()), shift)
        keep = pc.less_equal(ends, pa.scalar(cut.value, pa.int64())) if shift else \
            pc.less(t[column], cut)
        pq.write_table(t.filter(keep), target / f"{name}.parquet", compression="zstd")
    return target

