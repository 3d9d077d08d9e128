"""The catalogue's SQL compiled once and reused at every later cutoff.

Building the Ibis expression of the whole catalogue and compiling it to SQL takes about two
seconds, whatever the size of the store; at 10M fills that is a quarter of a computation
from the fills and half of one from the tiles. The SQL depends on the cutoff only through a
few literals: the cutoff itself, the start of its day, the day numbers of the window starts
and of the cutoff's day, and the cutoff in microseconds. Everything else (windows, event
days, the cutoff's time of day, the schemas, the code) is part of the cache key.

The first computation of a key keeps its SQL with its cutoff; the same cutoff again reuses
it as it is. The first computation at another cutoff (a whole number of days ``K`` away,
the time of day being in the key) compiles as usual and derives a *template* from the two
texts: they must have the same tokens except for literals that moved by exactly ``K`` days,
and each of those is named after the quantity it is (a day number relative to the cutoff's
day, the cutoff in microseconds, a timestamp at the cutoff or at a whole number of days
from the start of its day). Any other difference, and no template is made. A template is
kept only if rendering it at both cutoffs gives back both compiled texts, character for
character. From then on every cutoff renders the template and nothing is compiled.

Entries live in memory and, unless turned off, in a folder (``TRADERSEG_SQL_CACHE_DIR``, by
default ``$XDG_CACHE_HOME/traderseg/sql`` or ``~/.cache/traderseg/sql``;
``TRADERSEG_SQL_CACHE=false`` keeps them in memory only). The key holds the package
version, the catalogue and measure versions, the Ibis and sqlglot versions and a digest of
the source of the modules that build the SQL, so an edited formula never meets a stale
entry. Each file holds its key and a digest of its content; a file that cannot be read, or
whose key or digest does not match, is ignored. The folder is created readable by its owner
only: its SQL runs on the store. Writing an entry deletes those not used for
:data:`UNUSED_DAYS` days (a file's time is its last use), so new event days, which start new
keys, do not fill it forever.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import re
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from traderseg.features.windows import cutoff_micros, day_number

logger = logging.getLogger(__name__)

_TOKEN = re.compile(
    r"(?P<ts>MAKE_TIMESTAMPTZ\((?P<args>[^)]*)\))"
    r"|(?P<quoted>\"(?:[^\"]|\"\")*\"|'(?:[^']|'')*')"
    r"|(?P<word>[A-Za-z_][A-Za-z_0-9$]*)"
    r"|(?P<num>[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)"
)
_TS_ARGS = re.compile(
    r"^\s*(\d+),\s*(\d+),\s*(\d+),\s*(\d+),\s*(\d+),\s*([0-9.]+(?:e[+-]?\d+)?),\s*'UTC'\s*$")


@dataclass(frozen=True)
class Slot:
    """What one cutoff-dependent literal of a template is.

    ``kind`` is ``day`` (the day number ``offset`` days from the cutoff's day), ``us`` (the
    cutoff in microseconds, as a double), ``cutoff`` (the cutoff as a timestamp) or
    ``day_start`` (the start of the cutoff's day plus ``offset`` days, as a timestamp).
    """

    kind: str
    offset: int = 0


@dataclass(frozen=True)
class Template:
    """SQL text with its cutoff-dependent literals taken out: ``len(parts) == len(slots) + 1``."""

    parts: tuple[str, ...]
    slots: tuple[Slot, ...]

    def render(self, cutoff: datetime) -> str:
        """Render the SQL at ``cutoff`` (an aware UTC datetime)."""
        out = [self.parts[0]]
        for slot, part in zip(self.slots, self.parts[1:], strict=True):
            out.append(_literal(slot, cutoff))
            out.append(part)
        return "".join(out)

    def to_json(self) -> str:
        """Serialise the template."""
        return json.dumps({"parts": list(self.parts),
                           "slots": [[s.kind, s.offset] for s in self.slots]})

    @classmethod
    def from_json(cls, text: str) -> Template:
        """Inverse of :meth:`to_json`; raises ``ValueError`` on a malformed text."""
        d = json.loads(text)
        parts = tuple(str(p) for p in d["parts"])
        slots = tuple(Slot(str(k), int(o)) for k, o in d["slots"])
        if len(parts) != len(slots) + 1 or any(
                s.kind not in ("day", "us", "cutoff", "day_start") for s in slots):
            raise ValueError("malformed template")
        return cls(parts, slots)


def _day_start(cutoff: datetime) -> datetime:
    return datetime(cutoff.year, cutoff.month, cutoff.day, tzinfo=cutoff.tzinfo)


def _timestamp_sql(t: datetime) -> str:
    t = t.astimezone(UTC)
    seconds = t.second + t.microsecond / 1e6
    return (f"MAKE_TIMESTAMPTZ({t.year}, {t.month}, {t.day}, {t.hour}, {t.minute}, "
            f"{seconds!r}, 'UTC')")


def _literal(slot: Slot, cutoff: datetime) -> str:
    if slot.kind == "day":
        return str(day_number(cutoff.date()) + slot.offset)
    if slot.kind == "us":
        return repr(float(cutoff_micros(cutoff)))
    if slot.kind == "cutoff":
        return _timestamp_sql(cutoff)
    return _timestamp_sql(_day_start(cutoff) + timedelta(days=slot.offset))


def _parse_timestamp(args: str) -> datetime | None:
    m = _TS_ARGS.match(args)
    if m is None:
        return None
    y, mo, d, h, mi = (int(m.group(i)) for i in range(1, 6))
    sec = float(m.group(6))
    whole = int(sec)
    micros = round((sec - whole) * 1e6)
    try:
        return datetime(y, mo, d, h, mi, whole, micros, tzinfo=UTC)
    except ValueError:
        return None


def _classify(a: re.Match[str], b: re.Match[str], cutoff: datetime, days: int) -> Slot | None:
    """Name the literal ``a`` (at ``cutoff``) that became ``b`` (``days`` days later)."""
    if a.group("num") is not None and b.group("num") is not None:
        x, y = a.group("num"), b.group("num")
        if x.isdigit() and y.isdigit():
            if int(y) - int(x) == days:
                return Slot("day", int(x) - day_number(cutoff.date()))
            return None
        later = cutoff + timedelta(days=days)
        if float(x) == float(cutoff_micros(cutoff)) and float(y) == float(cutoff_micros(later)):
            return Slot("us")
        return None
    if a.group("ts") is not None and b.group("ts") is not None:
        x_t, y_t = _parse_timestamp(a.group("args")), _parse_timestamp(b.group("args"))
        if x_t is None or y_t is None or y_t - x_t != timedelta(days=days):
            return None
        if x_t == cutoff:
            return Slot("cutoff")
        since = x_t - _day_start(cutoff)
        if since % timedelta(days=1) == timedelta(0):
            return Slot("day_start", since // timedelta(days=1))
    return None


def derive(sql: str, cutoff: datetime, other: str, other_cutoff: datetime) -> Template | None:
    """Template of the SQL compiled at two cutoffs, or None when no template explains both.

    The cutoffs must be a nonzero whole number of days apart.
    """
    gap = other_cutoff - cutoff
    if gap % timedelta(days=1) != timedelta(0) or gap == timedelta(0):
        return None
    days = gap // timedelta(days=1)
    ta = list(_TOKEN.finditer(sql))
    tb = list(_TOKEN.finditer(other))
    if len(ta) != len(tb):
        return None
    parts: list[str] = []
    slots: list[Slot] = []
    pos_a = pos_b = last = 0
    for a, b in zip(ta, tb, strict=True):
        # the text between tokens (operators, spaces) must match too
        if sql[pos_a:a.start()] != other[pos_b:b.start()]:
            return None
        pos_a, pos_b = a.end(), b.end()
        if a.group(0) == b.group(0):
            continue
        slot = _classify(a, b, cutoff, days)
        if slot is None:
            return None
        parts.append(sql[last:a.start()])
        slots.append(slot)
        last = a.end()
    if sql[pos_a:] != other[pos_b:]:
        return None
    parts.append(sql[last:])
    template = Template(tuple(parts), tuple(slots))
    if template.render(cutoff) != sql or template.render(other_cutoff) != other:
        return None
    return template


@lru_cache(maxsize=1)
def _code_digest() -> str:
    """Digest of the source of the modules whose code shapes the SQL."""
    h = hashlib.sha256()
    for name in ("batch", "catalog", "compute", "expr", "measures", "sqlcache", "tiles",
                 "windows"):
        # found, not imported: a run that finds its SQL here needs no compiler loaded
        spec = importlib.util.find_spec(f"traderseg.features.{name}")
        assert spec is not None and spec.origin is not None
        h.update(Path(spec.origin).read_bytes())
    return h.hexdigest()[:16]


@lru_cache(maxsize=1)
def _versions() -> tuple[str, ...]:
    from traderseg import __version__
    from traderseg.features.catalog import CATALOG_VERSION
    from traderseg.features.measures import MEASURES_VERSION

    return (__version__, CATALOG_VERSION, MEASURES_VERSION, metadata.version("ibis-framework"),
            metadata.version("sqlglot"), _code_digest())


def cache_key(*parts: Any, cutoff: datetime | None = None) -> str:
    """Key of the SQL of ``parts`` (anything that shapes it) at cutoffs like ``cutoff``.

    The cutoff adds whether it falls at midnight and its time of day; its date is what a
    template abstracts. SQL without a cutoff (the tiles') has none.
    """
    when = None if cutoff is None else cutoff.astimezone(UTC).time().isoformat()
    text = repr((_versions(), parts, when))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def cache_dir() -> Path | None:
    """Folder of the templates on disk, or None when the disk cache is off."""
    from traderseg.settings import get_settings

    s = get_settings()
    if not s.sql_cache:
        return None
    if s.sql_cache_dir is not None:
        return Path(s.sql_cache_dir)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "traderseg" / "sql"


@dataclass(frozen=True)
class _Pending:
    """The SQL of a key compiled at one cutoff, waiting for a second cutoff."""

    cutoff: datetime
    sql: str


_MEMORY: dict[str, Template | _Pending] = {}

UNUSED_DAYS = 30
"""An entry not read or written for this many days is deleted when another is written."""

counts: Counter[str] = Counter()
"""What this process did: ``compiled``, ``rendered`` (from a template) and ``repeated`` (the
text of the same cutoff again)."""


def _decode(text: str, key: str) -> Template | _Pending:
    """Read an entry written by :func:`_encode` for ``key``; ``ValueError`` if it is not one."""
    d = json.loads(text)
    body = d["entry"]
    if d["key"] != key or d["digest"] != hashlib.sha256(body.encode()).hexdigest():
        raise ValueError("the file is not the entry of its key")
    e = json.loads(body)
    if "pending" in e:
        p = e["pending"]
        return _Pending(datetime.fromisoformat(str(p["cutoff"])).astimezone(UTC), str(p["sql"]))
    return Template.from_json(body)


def _encode(entry: Template | _Pending, key: str) -> str:
    if isinstance(entry, _Pending):
        body = json.dumps({"pending": {"cutoff": entry.cutoff.isoformat(), "sql": entry.sql}})
    else:
        body = entry.to_json()
    return json.dumps({"key": key, "digest": hashlib.sha256(body.encode()).hexdigest(),
                       "entry": body})


def _load(key: str) -> Template | _Pending | None:
    hit = _MEMORY.get(key)
    if hit is not None:
        return hit
    folder = cache_dir()
    if folder is None:
        return None
    path = folder / f"{key}.json"
    try:
        entry = _decode(path.read_text(), key)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.info("SQL cache: ignoring %s (%s)", path, exc)
        return None
    _MEMORY[key] = entry
    try:
        os.utime(path)  # the file's time is its last use: see _prune
    except OSError:
        pass
    return entry


def _prune(folder: Path, now: float) -> None:
    """Delete the entries of ``folder`` not used for :data:`UNUSED_DAYS` days."""
    for old in folder.glob("*.json"):
        try:
            if now - old.stat().st_mtime > UNUSED_DAYS * 86_400:
                old.unlink()
        except OSError:
            continue


def _store(key: str, entry: Template | _Pending) -> None:
    _MEMORY[key] = entry
    folder = cache_dir()
    if folder is None:
        return
    tmp = None
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            fh.write(_encode(entry, key))
        os.replace(tmp, folder / f"{key}.json")
        tmp = None
        _prune(folder, time.time())
    except OSError as exc:  # a read-only home must not stop a computation
        logger.info("SQL cache: cannot write to %s (%s)", folder, exc)
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def cached_sql(key: str, cutoff: datetime, compile_at: Callable[[datetime], str]) -> str:
    """Return the SQL at ``cutoff``: from the entry of ``key``, or compiled by ``compile_at``.

    Nothing is ever compiled twice for one call: a miss compiles once and keeps the text;
    a second cutoff compiles once and turns the two texts into a template.
    """
    cutoff = cutoff.astimezone(UTC)
    entry = _load(key)
    if isinstance(entry, Template):
        counts["rendered"] += 1
        return entry.render(cutoff)
    if isinstance(entry, _Pending) and entry.cutoff == cutoff:
        counts["repeated"] += 1
        return entry.sql
    counts["compiled"] += 1
    sql = compile_at(cutoff)
    if isinstance(entry, _Pending):
        template = derive(entry.sql, entry.cutoff, sql, cutoff)
        if template is not None:
            _store(key, template)
            return sql
        logger.info("SQL cache: the SQL at %s and at %s differ beyond the cutoff's literals",
                    entry.cutoff.isoformat(), cutoff.isoformat())
    _store(key, _Pending(cutoff, sql))
    return sql


def cached_text(key: str, make: Callable[[], str]) -> str:
    """Return the text of ``key`` (SQL that no cutoff enters), made by ``make`` on a miss."""
    entry = _load(key)
    if isinstance(entry, Template) and not entry.slots:
        counts["repeated"] += 1
        return entry.parts[0]
    counts["compiled"] += 1
    text = make()
    _store(key, Template((text,), ()))
    return text


def clear_memory() -> None:
    """Forget the entries held in memory (the folder is left as it is)."""
    _MEMORY.clear()
