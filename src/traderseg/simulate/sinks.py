"""Where the live mode writes fills: a Redis stream, a JSONL file, or stdout.

A sink takes batches of canonical fills in time order (:meth:`Sink.write`) and says which
fill it holds last (:meth:`Sink.last_written`), so that a run started again after a stop
goes on after it instead of writing the same fills twice. A batch whose write failed
with :class:`~traderseg.errors.SinkUnavailable` may be written again; it is not
duplicated.

Redis stream entries get explicit ids from the fill's time, ``<epoch ms>-<n>`` with ``n``
counting the fills of the same millisecond in stream order. The ids follow the fills, so
a retried or repeated write of the same fill is refused by Redis (an id at or below the
stream's top) instead of being added twice.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Protocol
from urllib.parse import urlsplit

from hiredis import pack_command

from traderseg.errors import ConfigError, SinkError, SinkUnavailable
from traderseg.simulate.fillcodec import decode_fill, encode_fill, encode_packed, packed_lines

logger = logging.getLogger(__name__)

FillKey = tuple[datetime, str]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def fill_key(fill: dict[str, Any]) -> FillKey:
    """Order of fills in the live stream: time, then fill id."""
    return (fill["ts"], fill["fill_id"])


class Sink(Protocol):
    """What the live writer needs of an output."""

    def write(self, fills: Sequence[dict[str, Any]]) -> None:
        """Write one batch of fills (time order); may be repeated after a failure."""

    def last_written(self) -> FillKey | None:
        """Key of the last fill the output holds (``None``: empty or not tracked)."""

    def close(self) -> None:
        """Release the output."""

    @property
    def name(self) -> str:
        """The output, for messages."""


class RedisSink:
    """Append fills to a Redis stream with ``XADD``, one pipeline per batch.

    Parameters
    ----------
    url : str
        ``redis://HOST:PORT/STREAM`` (port 6379 by default).
    maxlen : int, optional
        Keep about this many entries (``XADD MAXLEN ~``); unbounded by default.
    timeout : float
        Socket timeout in seconds.
    pack : int
        Fills per entry: 1 writes each fill as its own entry (its fields the encoded
        columns); more writes packed entries of up to ``pack`` consecutive fills of a
        batch (:func:`~traderseg.simulate.fillcodec.encode_packed`), each with the id of
        its last fill.

    Examples
    --------
    >>> RedisSink("redis://127.0.0.1:6390/fills").name
    'redis://127.0.0.1:6390/fills'
    """

    def __init__(self, url: str, *, maxlen: int | None = None, timeout: float = 5.0,
                 pack: int = 1) -> None:
        import redis

        self.host, self.port, self.stream = parse_redis_url(url)
        if maxlen is not None and maxlen < 1:
            raise ConfigError(f"maxlen must be at least 1, got {maxlen}")
        if pack < 1:
            raise ConfigError(f"fills per entry must be at least 1, got {pack}")
        self.maxlen = maxlen
        self.pack = pack
        self._client = redis.Redis(host=self.host, port=self.port, socket_timeout=timeout,
                                   socket_connect_timeout=timeout)
        # id of the last entry as of the last good write (or the first look at the stream)
        self._base: tuple[int, int] | None = None
        self._base_key: FillKey | None = None  # and the key of its fill
        self._has_base = False
        self._uncertain = False  # a write failed: part of its batch may be in the stream

    @property
    def name(self) -> str:
        """The stream's URL."""
        return f"redis://{self.host}:{self.port}/{self.stream}"

    def _read_top(self) -> tuple[tuple[int, int] | None, dict[bytes, bytes] | None]:
        """Id and fields of the stream's last entry (``None`` for a missing stream)."""
        import redis

        try:
            last: Any = self._client.xrevrange(self.stream, count=1)
        except redis.ResponseError as exc:
            raise SinkError(f"{self.name}: {' '.join(str(exc).split())}") from None
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            raise SinkUnavailable(f"{self.name}: {' '.join(str(exc).split())}") from None
        if not last:
            return None, None
        entry_id, fields = last[0]
        ms, seq = entry_id.decode().split("-")
        return (int(ms), int(seq)), dict(fields)

    def last_written(self) -> FillKey | None:
        """Time and fill id of the stream's last entry (``None`` for an empty stream)."""
        top, fields = self._read_top()
        key = None
        if fields is not None:
            lines = packed_lines(fields)
            key = fill_key(decode_fill(fields if lines is None else json.loads(lines[-1])))
        self._base, self._base_key, self._has_base, self._uncertain = top, key, True, False
        return key

    def _ids(self, fills: Sequence[dict[str, Any]]) -> list[tuple[int, int]]:
        """Entry ids of a batch following the last good write."""
        ids = []
        top = self._base
        for f in fills:
            ms = max((f["ts"] - _EPOCH) // _MS, top[0] if top is not None else 0)
            top = (ms, top[1] + 1 if top is not None and top[0] == ms else 0)
            ids.append(top)
        return ids

    def write(self, fills: Sequence[dict[str, Any]]) -> None:
        """``XADD`` each fill with its id; fills the stream already holds are skipped.

        Raises
        ------
        SinkUnavailable
            The server cannot be reached (the batch may be written again).
        SinkError
            The server refused the entries (e.g. the key is not a stream).
        """
        import redis

        try:
            if not self._has_base:
                self.last_written()
            if self._base_key is not None:
                fills = [f for f in fills if fill_key(f) > self._base_key]
            if not fills:
                return
            ids = self._ids(fills)
            # after a failed write, the part of the batch that got through is skipped
            done = self._read_top()[0] if self._uncertain else self._base
        except SinkUnavailable:
            self._uncertain = True
            raise
        # one pipeline: the commands packed by hiredis, sent at once, then the replies read
        head = ["XADD", self.stream]
        if self.maxlen is not None:
            head += ["MAXLEN", "~", str(self.maxlen)]
        packed = []
        for lo in range(0, len(fills), self.pack):
            hi = min(lo + self.pack, len(fills))
            entry = ids[hi - 1]  # an entry has the id of its last fill
            if done is not None and entry <= done:
                continue
            args = [*head, f"{entry[0]}-{entry[1]}"]
            fields = encode_fill(fills[lo]) if self.pack == 1 else encode_packed(fills[lo:hi])
            for item in fields.items():
                args.extend(item)
            packed.append(pack_command(tuple(args)))  # type: ignore[arg-type]
        if not packed:
            self._base, self._base_key, self._uncertain = ids[-1], fill_key(fills[-1]), False
            return
        pool = self._client.connection_pool
        conn = pool.get_connection()
        errors: list[str] = []
        try:
            conn.send_packed_command([b"".join(packed)])
            for _ in packed:
                try:
                    conn.read_response()
                except redis.ResponseError as exc:
                    errors.append(" ".join(str(exc).split()))
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            conn.disconnect()
            self._uncertain = True
            raise SinkUnavailable(f"{self.name}: {' '.join(str(exc).split())}") from None
        finally:
            pool.release(conn)
        # an entry another writer already added is refused by its id: nothing to do
        refused = [e for e in errors if "equal or smaller" not in e]
        if refused:
            raise SinkError(f"{self.name}: {refused[0]}")
        self._base, self._base_key, self._uncertain = ids[-1], fill_key(fills[-1]), False

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()


def parse_redis_url(url: str) -> tuple[str, int, str]:
    """Split ``redis://HOST:PORT/STREAM`` into host, port and stream name.

    Examples
    --------
    >>> parse_redis_url("redis://localhost/traderseg:fills")
    ('localhost', 6379, 'traderseg:fills')
    """
    parts = urlsplit(url)
    try:
        port = parts.port or 6379
    except ValueError:
        raise ConfigError(f"{url!r}: the port is not a number") from None
    stream = parts.path.lstrip("/")
    if parts.scheme != "redis" or not parts.hostname or not stream:
        raise ConfigError(f"{url!r}: expected redis://HOST:PORT/STREAM")
    return parts.hostname, port, stream


class JsonlSink:
    """Append fills to a JSONL file (one fill a line), flushed per batch; ``-`` is stdout.

    Lines are ``json.dumps(encode_fill(fill))``. A file that ends in a partial line (a
    writer killed mid-line) is cut back to its last whole line when opened.

    Parameters
    ----------
    path : str or Path
        The file, created when missing, or ``-`` for standard output.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = path
        self._out: IO[str] | None = None

    @property
    def name(self) -> str:
        """The file (or ``stdout``)."""
        return "stdout" if str(self.path) == "-" else str(self.path)

    def _stream(self) -> IO[str]:
        if self._out is None:
            if str(self.path) == "-":
                self._out = sys.stdout
            else:
                p = Path(self.path)
                if p.is_dir():
                    raise ConfigError(f"{p}: is a directory; give a file name")
                if not p.parent.exists():
                    raise ConfigError(f"{p}: folder {p.parent} does not exist")
                _cut_partial_line(p)
                self._out = p.open("a", encoding="utf-8")
        return self._out

    def last_written(self) -> FillKey | None:
        """Key of the file's last line (``None`` for stdout or an empty file)."""
        if str(self.path) == "-" or not Path(self.path).exists():
            return None
        p = Path(self.path)
        _cut_partial_line(p)
        line = _last_line(p)
        if line is None:
            return None
        try:
            fields = json.loads(line)
        except json.JSONDecodeError:
            raise SinkError(f"{p}: the last line is not JSON; not a live-mode file") from None
        if not isinstance(fields, dict):
            raise SinkError(f"{p}: the last line is not a JSON object; not a live-mode file")
        return fill_key(decode_fill(fields))

    def write(self, fills: Sequence[dict[str, Any]]) -> None:
        """Append the batch and flush it.

        Raises
        ------
        SinkError
            The reader of stdout went away, or the file cannot be written.
        """
        out = self._stream()
        text = "".join(json.dumps(encode_fill(f), separators=(",", ":")) + "\n" for f in fills)
        try:
            out.write(text)
            out.flush()
        except BrokenPipeError:
            # the reader left: point stdout at nothing so interpreter exit stays quiet
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise SinkError(f"{self.name}: the reader closed the pipe") from None
        except OSError as exc:
            raise SinkError(f"{self.name}: {exc.strerror or exc}") from None

    def close(self) -> None:
        """Close the file (stdout stays open)."""
        if self._out is not None and self._out is not sys.stdout:
            self._out.close()
        self._out = None


def _cut_partial_line(path: Path) -> None:
    """Cut a file back to its last newline (a line half written when a writer died)."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb+") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) == b"\n":
            return
        size = f.tell()
        pos = size
        keep = 0
        while pos > 0:
            step = min(65_536, pos)
            pos -= step
            f.seek(pos)
            chunk = f.read(step)
            nl = chunk.rfind(b"\n")
            if nl >= 0:
                keep = pos + nl + 1
                break
        logger.warning("%s: cut a partial last line (%d bytes)", path, size - keep)
        f.truncate(keep)


def _last_line(path: Path) -> str | None:
    """Last whole line of a file that ends with a newline (``None`` when empty)."""
    with path.open("rb") as f:
        f.seek(0, os.SEEK_END)
        end = f.tell()
        pos, buf = end, b""
        while pos > 0:
            step = min(65_536, pos)
            pos -= step
            f.seek(pos)
            buf = f.read(step) + buf
            body = buf[:-1] if buf.endswith(b"\n") else buf
            nl = body.rfind(b"\n")
            if nl >= 0 or pos == 0:
                line = body[nl + 1:]
                return line.decode("utf-8") if line.strip() else None
    return None


def open_sink(target: str, *, maxlen: int | None = None,
              pack: int | None = None) -> RedisSink | JsonlSink:
    """Sink for a ``--to`` target: ``redis://HOST:PORT/STREAM``, a file, or ``-``."""
    if target.startswith("redis://"):
        return RedisSink(target, maxlen=maxlen, pack=1 if pack is None else pack)
    if "://" in target:
        raise ConfigError(f"--to {target!r}: expected redis://HOST:PORT/STREAM, a file or -")
    if maxlen is not None:
        raise ConfigError("--maxlen applies to a Redis stream only")
    if pack is not None:
        raise ConfigError("--pack applies to a Redis stream only")
    return JsonlSink(target)
