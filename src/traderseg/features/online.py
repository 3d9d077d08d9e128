"""Online per-account feature state, derived from the same measures as batch.

:class:`AccountState` follows river's running statistics: ``update(fill)`` folds one fill
in, ``merge(other)`` combines two states of the same account built from disjoint fills,
``get(as_of, windows)`` returns the catalogue's features. The state is a set of daily
tiles — the same per (account, UTC day) states the store keeps — so ``get`` at any cutoff
after the last fill equals the batch computation over the same fills: exactly for exact
aggregates (up to floating-point summation order), within the sketch's bound for quantiles.

The per-fill update is Python source generated once from the measure declarations
(:mod:`traderseg.features.measures`), with the measures grouped under their conditions, so
a perp fill never evaluates the option measures. Fills are mappings with the canonical
field names; timestamps are aware datetimes, pandas Timestamps or integer microseconds
since the epoch.

Tiles older than the longest window in use may be compacted (:meth:`AccountState.compact`):
their measures fold into one lifetime tile and each old day keeps only the four numbers the
lifetime window's day-level values need.
"""

from __future__ import annotations

import bisect
import json
import math
import operator
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from datetime import date, datetime
from functools import partial
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from traderseg.errors import DataError
from traderseg.features import measures as M
from traderseg.features.catalog import CATALOG, column_name
from traderseg.features.expr import (
    US_PER_DAY,
    Bin,
    Lit,
    compile_np,
    compile_py,
    new_compiler,
    py_condition,
    py_source,
    safe_div,
)
from traderseg.features.measures import MEASURE_SET
from traderseg.features.windows import (
    cutoff_end_day,
    cutoff_micros,
    day_number,
    effective_formula,
    window_start,
)

_SCALARS = MEASURE_SET.scalars
_INDEX = {m.name: i for i, m in enumerate(_SCALARS)}
_N = _INDEX["n"]
_NOTIONAL = _INDEX["notional_total"]
_PNL = _INDEX["pnl_sum"]
_PAIR = MEASURE_SET.pairs[0]
_MAP = MEASURE_SET.maps[0]
_SKETCH = MEASURE_SET.sketches[0]
_EPOCH = pd.Timestamp("1970-01-01", tz="UTC")
_IDENTITY = tuple(m.identity for m in _SCALARS)


def to_us(ts: Any) -> int | None:
    """Integer microseconds since the epoch of a timestamp (None stays None)."""
    if ts is None:
        return None
    if isinstance(ts, int):
        return ts
    t = pd.Timestamp(ts)
    if t is pd.NaT:
        return None
    if t.tzinfo is None:
        t = t.tz_localize("UTC")
    return int(t.value // 1000)


# -- code generation -------------------------------------------------------------------


def _measure_lines(m: M.Measure, c: Any, state: str, index: int) -> list[str]:
    slot = f"{state}[{index}]"
    if m.agg == "count":
        if m.expr is None:
            return [f"{slot} += 1"]
        v = py_source(m.expr, c)
        return [f"if {v} is not None: {slot} += 1"] if m.expr.nullable else [f"{slot} += 1"]
    assert m.expr is not None
    v = py_source(m.expr, c)
    if m.agg == "sum":
        if m.expr.nullable:
            return [f"if {v} is not None: {slot} += {v}"]
        return [f"{slot} += {v}"]
    op = "<" if m.agg == "min" else ">"
    guard = f"{v} is not None and " if m.expr.nullable else ""
    return [f"if {guard}({slot} is None or {v} {op} {slot}): {slot} = {v}"]


def _one_hot(ms: Sequence[M.Measure]) -> tuple[Any, int] | None:
    """``(x, base)`` when ``ms`` count ``x == 0, 1, ...`` into consecutive slots."""
    first = _INDEX[ms[0].name]
    x = None
    for i, m in enumerate(ms):
        w = m.where
        if (m.agg != "count" or m.expr is not None or not isinstance(w, Bin) or w.op != "=="
                or not isinstance(w.b, Lit) or w.b.value != i or w.a.nullable
                or _INDEX[m.name] != first + i or (x is not None and w.a is not x)):
            return None
        x = w.a
    return x, first


def _generate() -> str:
    """Python source of ``_update(s, maps, sketch, pairs, f)`` for one day tile."""
    top = new_compiler("f")
    body: list[str] = []
    blocks: dict[int, tuple[Any, list[M.Measure]]] = {}
    order: list[int] = []
    for m in _SCALARS:
        key = id(m.where) if m.where is not None else 0
        w = m.where
        if (m.agg == "count" and m.expr is None and isinstance(w, Bin) and w.op == "=="
                and isinstance(w.b, Lit) and isinstance(w.b.value, int)):
            key = id(w.a)  # counts of x == 0, 1, ... may share one block
        if key not in blocks:
            blocks[key] = (m.where, [])
            order.append(key)
        blocks[key][1].append(m)
    for key in order:
        where, ms = blocks[key]
        onehot = _one_hot(ms)
        if onehot is not None:
            x, base = onehot
            v = py_source(x, top)
            body += top.lines
            top.lines = []
            body.append(f"s[{base} + {v}] += 1")
            continue
        if where is None:
            lines: list[str] = []
            for m in ms:
                lines += _measure_lines(m, top, "s", _INDEX[m.name])
            body += top.lines + lines
            top.lines = []
        else:
            cond = py_condition(where, top)
            body += top.lines
            top.lines = []
            inner = top.child()
            lines = []
            for m in ms:
                lines += _measure_lines(m, inner, "s", _INDEX[m.name])
            body.append(f"if {cond}:")
            body += [f"    {x}" for x in inner.lines + lines]
    # keyed map
    keys = [py_source(e, top) for _, e in _MAP.keys]
    body += top.lines
    top.lines = []
    body.append(f"k = ({', '.join(keys)},)")
    body.append("e = maps.get(k)")
    body.append("if e is None: maps[k] = e = [0, 0.0]")
    for i, mv in enumerate(_MAP.values):
        body += _measure_lines(mv, top, "e", i)
    body += top.lines
    top.lines = []
    # sketch
    x = py_source(_SKETCH.expr, top)
    body += top.lines
    top.lines = []
    body.append(f"b = _bucket({x})")
    body.append("sketch[b] = sketch.get(b, 0) + 1")
    # paired legs
    cond = py_condition(_PAIR.where, top)
    body += top.lines
    top.lines = []
    inner = top.child()
    pk = [py_source(e, inner) for _, e in _PAIR.keys]
    tv = py_source(_PAIR.type_expr, inner)
    body.append(f"if {cond}:")
    body += [f"    {x}" for x in inner.lines]
    body.append(f"    pk = ({', '.join(pk)},)")
    body.append("    g = pairs.get(pk)")
    body.append("    if g is None: pairs[pk] = g = [set(), 0]")
    body.append(f"    g[0].add({tv})")
    body.append("    g[1] += 1")
    return "def _update(s, maps, sketch, pairs, f):\n" + "\n".join(f"    {b}" for b in body) + "\n"


UPDATE_SOURCE = _generate()
_INV_LOG_GAMMA = _SKETCH.inv_log_gamma


def _bucket(x: float) -> int:
    """Sketch bucket of ``x`` (the constants of :class:`~traderseg.features.measures.Sketch`)."""
    if x < M.SKETCH_MIN_VALUE:
        return M.ZERO_BUCKET
    return math.ceil(math.log(x) * _INV_LOG_GAMMA)


_ns: dict[str, Any] = {"_log": math.log, "_sqrt": math.sqrt, "_bucket": _bucket,
                       "_div": safe_div}
exec(compile(UPDATE_SOURCE, "<traderseg online update>", "exec"), _ns)  # noqa: S102
_update: Callable[..., None] = _ns["_update"]

def _blocks() -> list[tuple[int, int, M.Measure]]:
    """Split the measures into runs ``(start, end, first)``: additive runs, min/max alone."""
    out: list[tuple[int, int, M.Measure]] = []
    for i, m in enumerate(_SCALARS):
        additive = m.agg in ("count", "sum")
        if additive and out and out[-1][2].agg in ("count", "sum") and out[-1][1] == i:
            out[-1] = (out[-1][0], i + 1, out[-1][2])
        else:
            out.append((i, i + 1, m))
    return out


def _merge_source() -> str:
    """Python source folding one tile's scalar measures into another's.

    Runs of additive measures are added slice by slice (``map`` over the slice, one
    addition per measure as before); minima and maxima keep the larger or smaller.
    """
    lines = ["def _merge_scalars(a, b):"]
    for lo, hi, m in _blocks():
        if m.agg in ("count", "sum"):
            if hi - lo == 1:
                lines.append(f"    a[{lo}] = a[{lo}] + b[{lo}]")
            else:
                lines.append(f"    a[{lo}:{hi}] = map(_add, a[{lo}:{hi}], b[{lo}:{hi}])")
        else:
            op = "<" if m.agg == "min" else ">"
            lines.append(f"    if b[{lo}] is not None and "
                         f"(a[{lo}] is None or b[{lo}] {op} a[{lo}]):")
            lines.append(f"        a[{lo}] = b[{lo}]")
    return "\n".join(lines) + "\n"


_ns["_add"] = operator.add
exec(compile(_merge_source(), "<traderseg online merge>", "exec"), _ns)  # noqa: S102
_merge_scalars: Callable[[list[Any], list[Any]], None] = _ns["_merge_scalars"]


def _sum_source() -> str:
    """Python source of a new list holding two tiles' scalar measures combined."""
    parts = []
    for lo, hi, m in _blocks():
        if m.agg in ("count", "sum"):
            if hi - lo == 1:
                parts.append(f"a[{lo}] + b[{lo}]")
            else:
                parts.append(f"*map(_add, a[{lo}:{hi}], b[{lo}:{hi}])")
        else:
            op = "<" if m.agg == "min" else ">"
            parts.append(f"(a[{lo}] if b[{lo}] is None or (a[{lo}] is not None and "
                         f"not b[{lo}] {op} a[{lo}]) else b[{lo}])")
    return "def _sum_scalars(a, b):\n    return [" + ",\n        ".join(parts) + "]\n"


exec(compile(_sum_source(), "<traderseg online sum>", "exec"), _ns)  # noqa: S102
_sum_scalars: Callable[[list[Any], list[Any]], list[Any]] = _ns["_sum_scalars"]
_NAMES = tuple(m.name for m in _SCALARS)
_Q_NAMES = _SKETCH.value_names
# the values a read returns besides the scalar measures, in the order of ``AccountState._reads``
_EXTRA_NAMES = (_PAIR.name, "days", "first_day", "last_day", "pnl_day_sq", "ev_fills",
                "ev_notional", "top_notional", "instrument_breadth", "underlying_count",
                "cutoff_us", "span_days", "events_known", "ev_days")
VALUE_NAMES = (*_NAMES, *_EXTRA_NAMES, *_Q_NAMES)
_MINS = [i for i, m in enumerate(_SCALARS) if m.agg == "min"]
_MAXES = [i for i, m in enumerate(_SCALARS) if m.agg == "max"]

_FORMULAS = compile_py({f.name: effective_formula(f) for f in CATALOG})
_NP_FORMULAS = compile_np({f.name: effective_formula(f) for f in CATALOG})
_NP_SOME: dict[tuple[str, ...], Callable[[Mapping[str, Any], int], dict[str, np.ndarray]]] = {}
# features whose formula reads a sketch quantile; those reading the keyed map's values
_READS_QUANTILES = frozenset(f.name for f in CATALOG
                             if effective_formula(f).columns() & set(_Q_NAMES))
_MAP_VALUES = frozenset({"top_notional", "instrument_breadth", "underlying_count"})
_READS_MAP = frozenset(f.name for f in CATALOG if effective_formula(f).columns() & _MAP_VALUES)
if not _MAP_VALUES <= set(_EXTRA_NAMES):  # the names _reads returns
    raise AssertionError("map values missing from the read's values")


# -- state -----------------------------------------------------------------------------


class DayTile:
    """Measure states of one account and one UTC day."""

    __slots__ = ("s", "maps", "sketch", "pairs", "straddles")

    def __init__(self) -> None:
        self.s: list[Any] = list(_IDENTITY)
        self.maps: dict[tuple[Any, ...], list[Any]] = {}
        self.sketch: dict[int, int] = {}
        self.pairs: dict[tuple[Any, ...], list[Any]] = {}
        self.straddles = 0  # legs of pairs already folded away (compacted tiles)

    def straddle_legs(self) -> int:
        """Count fills in groups of at least two option types (the day's straddle legs)."""
        legs = self.straddles
        for types, n in self.pairs.values():
            if len(types) >= _PAIR.min_types:
                legs += n
        return legs

    def copy(self) -> DayTile:
        """Return an independent copy."""
        t = DayTile()
        t.s = list(self.s)
        t.maps = {k: list(v) for k, v in self.maps.items()}
        t.sketch = dict(self.sketch)
        t.pairs = {k: [set(g[0]), g[1]] for k, g in self.pairs.items()}
        t.straddles = self.straddles
        return t

    def merge_from(self, other: DayTile, *, same_day: bool = True) -> None:
        """Fold ``other`` into this tile."""
        _merge_scalars(self.s, other.s)
        for k, v in other.maps.items():
            e = self.maps.setdefault(k, [0, 0.0])
            e[0] += v[0]
            e[1] += v[1]
        for b_, c in other.sketch.items():
            self.sketch[b_] = self.sketch.get(b_, 0) + c
        if same_day:
            for k, (types, n) in other.pairs.items():
                g = self.pairs.setdefault(k, [set(), 0])
                g[0] |= types
                g[1] += n
            self.straddles += other.straddles
        else:
            self.straddles += other.straddle_legs()

    def merge_scalars_from(self, other: DayTile) -> None:
        """Fold another day's scalar measures and straddle legs in, not its map or sketch.

        The scalars and legs are those :meth:`merge_from` (``same_day=False``) gives, to the
        last bit: a read that needs neither the map nor the sketch merges only these.
        """
        _merge_scalars(self.s, other.s)
        self.straddles += other.straddle_legs()

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-able form."""
        return {
            "s": self.s,
            "maps": [[list(k), v] for k, v in self.maps.items()],
            "sketch": [[b, c] for b, c in self.sketch.items()],
            "pairs": [[list(k), sorted(t), n] for k, (t, n) in self.pairs.items()],
            "straddles": self.straddles,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> DayTile:
        """Inverse of :meth:`to_json`."""
        t = cls()
        t.s = list(d["s"])
        t.maps = {tuple(k): list(v) for k, v in d["maps"]}
        t.sketch = {int(b): int(c) for b, c in d["sketch"]}
        t.pairs = {tuple(k): [set(ts), int(n)] for k, ts, n in d["pairs"]}
        t.straddles = int(d["straddles"])
        return t


class _Older(NamedTuple):
    """A window's days before the newest, merged, their day-level sums and read summaries.

    The summary of the keyed map (the instruments in use, their underlyings, ranked by
    notional) is what a read combines with the newest day's few entries.
    """

    tile: DayTile
    days: int
    first: int | None
    last: int | None
    pnl_sq: float
    n_tiles: int  # day tiles merged (compacted days not counted)
    ranked: list[tuple[float, tuple[Any, ...]]]  # (notional, key) of keys in use, descending
    underlyings: frozenset[Any]
    sketch_buckets: np.ndarray  # the sketch's buckets, ascending
    sketch_counts: np.ndarray  # their counts
    values: np.ndarray  # the tile's scalar measures as floats (NaN for a missing min or max)


_NO_BUCKETS = np.empty(0, dtype=np.int64)
_NO_TOP = -(1 << 62)  # below every day number: no merge kept


def _older_summary(tile: DayTile, days: int, first: int | None, last: int | None,
                   pnl_sq: float, n_tiles: int, light: bool = False) -> _Older:
    if light:  # the scalars alone (see ReadPlan.light)
        return _Older(tile, days, first, last, pnl_sq, n_tiles, [], frozenset(), _NO_BUCKETS,
                      _NO_BUCKETS, np.array(tile.s, dtype=np.float64))
    ranked = sorted(((e[1], k) for k, e in tile.maps.items() if e[0] > 0),
                    key=operator.itemgetter(0), reverse=True)
    items = sorted(tile.sketch.items())
    return _Older(tile, days, first, last, pnl_sq, n_tiles, ranked,
                  frozenset(k[1] for _, k in ranked),
                  np.array([b for b, _ in items], dtype=np.int64),
                  np.array([c for _, c in items], dtype=np.int64),
                  np.array(tile.s, dtype=np.float64))


SketchParts = tuple[np.ndarray, np.ndarray, "Mapping[int, int] | None"]


class ReadPlan(NamedTuple):
    """What reads at one cutoff share: computed once for every account read at it."""

    cutoff_us: int
    end: int  # day number just past the cutoff's day
    windows: tuple[tuple[str, int | None], ...]  # (window, first day; None for all)
    events: tuple[int, ...] | None  # event day numbers, ascending (None: none known)
    # windows read without the keyed map and the sketch: their map values and quantiles
    # are missing (NaN), so only the features that read neither are right there
    light: frozenset[str] = frozenset()


def read_plan(cutoff: datetime, windows: Sequence[str], event_days: set[int] | None,
              columns: Iterable[str] | None = None) -> ReadPlan:
    """Plan the reads of ``windows`` (and ``all``) at an aware ``cutoff``.

    With ``columns``, the windows none of whose columns read the keyed map or the sketch
    are read without them (:func:`light_windows`): cheaper, and right for those columns.
    """
    from traderseg.features.compute import window_days

    wins = []
    for w in sorted({*windows, "all"}):
        start = window_start(cutoff, window_days(w))
        wins.append((w, None if start is None else day_number(start.date())))
    evs = None if event_days is None else tuple(sorted(event_days))
    light = frozenset() if columns is None else light_windows(windows, columns)
    return ReadPlan(cutoff_micros(cutoff), cutoff_end_day(cutoff), tuple(wins), evs, light)


class AccountState:
    """Online feature state of one account (see the module docstring)."""

    __slots__ = ("tiles", "base", "old_days", "last_us", "folded_through", "_cache",
                 "_cache_top")

    def __init__(self) -> None:
        self.tiles: dict[int, DayTile] = {}
        self.base: DayTile | None = None  # compacted days
        self.old_days: dict[int, tuple[float, float, float]] = {}  # day -> (n, notional, pnl)
        self.folded_through = -1  # last compacted day (kept so update() need not scan old_days)
        self.last_us: int | None = None
        # merged tiles of the days before the newest, per window start (see _reads)
        self._cache: dict[tuple[int | None, int, bool], _Older] | None = None
        self._cache_top = _NO_TOP  # the newest day a kept merge was made for

    def _drop_cache(self) -> None:
        self._cache = None
        self._cache_top = _NO_TOP

    def note_day(self, day: int) -> None:
        """Forget the kept merges if a fill of ``day`` lands before their newest day."""
        if day < self._cache_top:
            self._drop_cache()

    # -- updating ------------------------------------------------------------------------
    def update(self, fill: Mapping[str, Any]) -> None:
        """Fold one fill in (timestamps as datetimes or integer microseconds)."""
        ts = fill["ts"]
        if type(ts) is not int or (fill.get("expiry") is not None
                                   and type(fill["expiry"]) is not int):
            fill = dict(fill)
            fill["ts"] = ts = to_us(ts)
            fill["expiry"] = to_us(fill.get("expiry"))
        day = ts // US_PER_DAY
        if day <= self.folded_through:
            raise DataError(f"fill at day {day} falls in the compacted history of the account")
        tile = self.tiles.get(day)
        if tile is None:
            tile = self.tiles[day] = DayTile()
        if day < self._cache_top:
            self._drop_cache()  # a fill before the newest day: the cached merges are stale
        _update(tile.s, tile.maps, tile.sketch, tile.pairs, fill)
        if self.last_us is None or ts > self.last_us:
            self.last_us = ts

    def update_many(self, fills: Iterable[Mapping[str, Any]]) -> None:
        """Fold several fills in."""
        for f in fills:
            self.update(f)

    def merge(self, other: AccountState) -> AccountState:
        """Combine with the state of disjoint fills of the same account (in place)."""
        self._drop_cache()
        for day, t in other.tiles.items():
            mine = self.tiles.get(day)
            if mine is None:
                mine = self.tiles[day] = DayTile()
            mine.merge_from(t)
        if other.base is not None:
            if self.base is None:
                self.base = DayTile()
            self.base.merge_from(other.base, same_day=False)
            for d, v in other.old_days.items():
                a = self.old_days.get(d, (0.0, 0.0, 0.0))
                self.old_days[d] = (a[0] + v[0], a[1] + v[1], a[2] + v[2])
            self.folded_through = max(self.folded_through, other.folded_through)
        if other.last_us is not None and (self.last_us is None or other.last_us > self.last_us):
            self.last_us = other.last_us
        return self

    def compact(self, before_day: int) -> None:
        """Fold the tiles of days before ``before_day`` into the lifetime tile."""
        self._drop_cache()
        old = [d for d in self.tiles if d < before_day]
        if not old:
            return
        if self.base is None:
            self.base = DayTile()
        for d in sorted(old):
            t = self.tiles.pop(d)
            self.old_days[d] = (t.s[_N], t.s[_NOTIONAL], t.s[_PNL])
            self.folded_through = max(self.folded_through, d)
            self.base.merge_from(t, same_day=False)

    # -- reading -------------------------------------------------------------------------
    def get(self, as_of: Any, windows: Sequence[str] = ("30d", "all"),
            event_days: Iterable[date] | None = None) -> dict[str, float]:
        """Features as of ``as_of`` (after every fill seen), named ``{feature}__{window}``.

        ``event_days`` are the market-event days (None: no market events known).
        """
        from traderseg.features.compute import parse_as_of

        cutoff = parse_as_of(as_of)
        evs = None if event_days is None else {day_number(d) for d in event_days}
        out: dict[str, float] = {}
        formulas = {w: _FORMULAS(v) for w, v in self.window_values(cutoff, windows,
                                                                    evs).items()}
        for w in windows:
            feats = formulas[w]
            for name, col in _columns(w, False):
                x = feats[name]
                out[col] = _NAN if x is None else float(x)
        life = formulas["all"]
        for name, col in _columns("all", True):
            x = life[name]
            out[col] = _NAN if x is None else float(x)
        return out

    def window_values(self, cutoff: datetime, windows: Sequence[str],
                      event_days: set[int] | None) -> dict[str, dict[str, Any]]:
        """Return the merged window values the formulas read, per window (and ``all``).

        ``cutoff`` is an aware datetime after every fill seen; ``event_days`` are day
        numbers (:func:`~traderseg.features.windows.day_number`), or None when no market
        events are known. :func:`read_parts` reads many accounts at once.
        """
        plan = read_plan(cutoff, windows, event_days)
        out = {}
        for (w, _), (older, cur, extra, sketches) in zip(plan.windows, self._reads(plan),
                                                         strict=True):
            base = older.tile.s
            v = dict(zip(_NAMES, base if cur is None else _sum_scalars(base, cur), strict=True))
            v.update(zip(_EXTRA_NAMES, extra, strict=True))
            qs = sketch_quantiles([sketches])
            v.update((name, None if math.isnan(q) else float(q))
                     for name, q in zip(_Q_NAMES, qs[0], strict=True))
            out[w] = v
        return out

    def _older(self, lo: int | None, top: int, light: bool = False) -> _Older:
        """Merge the window's days before ``top`` (and the compacted days for ``all``).

        They change rarely: the merge is kept until a fill lands on one of them (see
        :meth:`update`) or a newer day starts, so repeated reads within a day combine two
        tiles instead of the whole window. When a newer day starts and no day has left the
        window, the merge kept for the previous newest day takes in that day alone. The
        merge order (compacted days, then the days in ascending order) is the one a merge
        from nothing follows, so the result is the same to the last bit.

        A ``light`` merge (:attr:`ReadPlan.light`) holds the scalar measures and straddle
        legs alone, the same bits as a full merge's; the two are kept apart.
        """
        key = (lo, top, light)
        cache = self._cache
        if cache is not None:
            hit = cache.get(key)
            if hit is not None:
                return hit
        tiles = self.tiles
        days = sorted(d for d in tiles if d != top and (lo is None or d >= lo))
        out = None
        for (plo, ptop, plight), prev in (cache or {}).items():
            # the days merged before plus the previous newest day must be exactly ``days``.
            # No day before the previous newest has gained a fill since (that would have
            # emptied the cache), so ``days`` holds no day the earlier merge lacked but the
            # previous newest day when that is its last; then the count tells whether a
            # day has left the window.
            if (ptop >= top or (plo is None) != (lo is None) or plight != light or not days
                    or len(days) != prev.n_tiles + 1 or days[-1] != ptop):
                continue
            # extend the merge in place and forget it: the newest day only moves on (a fill
            # before it empties the cache), so no read asks for the merge up to ``ptop``
            # again; what reads keep of a merge (its summary's arrays) is copied out
            newest = tiles[ptop]
            assert cache is not None  # the loop ran over it
            del cache[(plo, ptop, plight)]
            tile = prev.tile
            if light:
                tile.merge_scalars_from(newest)
            else:
                tile.merge_from(newest, same_day=False)
            pnl = newest.s[_PNL]
            out = _older_summary(tile, prev.days + 1,
                                 ptop if prev.first is None else prev.first, ptop,
                                 prev.pnl_sq + pnl * pnl, len(days), light)
            break
        if out is None:
            tile = DayTile()
            rows: list[tuple[int, float]] = []
            merge = tile.merge_scalars_from if light else partial(tile.merge_from, same_day=False)
            if lo is None and self.base is not None:
                merge(self.base)
                rows = [(d, v[2]) for d, v in self.old_days.items()]
            for d in days:
                merge(tiles[d])
            rows += [(d, tiles[d].s[_PNL]) for d in days]
            out = _older_summary(tile, len(rows), min((r[0] for r in rows), default=None),
                                 max((r[0] for r in rows), default=None),
                                 sum(r[1] * r[1] for r in rows), len(days), light)
        if cache is None:
            cache = self._cache = {}
        cache[key] = out
        if top > self._cache_top:
            self._cache_top = top
        if len(cache) > 2:
            # keep the merges of the two newest days read (the older ones extend no more)
            tops = sorted({k[1] for k in cache})
            if len(tops) > 2:
                for k in [k for k in cache if k[1] < tops[-2]]:
                    del cache[k]
        return out

    def _reads(self, plan: ReadPlan) -> list[tuple[_Older, list[Any] | None, list[Any],
                                                   SketchParts]]:
        """Read every window of ``plan``: one item per window, in the plan's order.

        An item holds the older days' merge (:class:`_Older`, whose ``values`` are its
        scalar measures), a copy of the newest day's scalar measures (None when that day is
        outside the window), the other values in the order of ``_EXTRA_NAMES``, and the
        older days' sketch (buckets and counts) with a copy of the newest day's, whose
        quantiles :func:`sketch_quantiles` reads. What only the newest day gives is copied
        once for every window.

        A window of ``plan.light`` is read without the keyed map and the sketch: its map
        values are None and its sketches empty.

        The scalar measures are combined by the caller: one account at a time
        (:meth:`window_values`) or many at once over arrays (:func:`combine`).
        """
        if self.last_us is None:
            raise DataError("the account has no fills")
        if self.last_us >= plan.cutoff_us:
            raise DataError("the state holds fills at or after the cutoff")
        tiles = self.tiles
        top = max(tiles) if tiles else -1
        newest = tiles.get(top)
        # the newest day's tile changes with every fill: reads keep copies of its parts
        if newest is not None:
            cur_s = list(newest.s)
            cur_sketch = dict(newest.sketch) if newest.sketch else None
            cur_legs = newest.straddle_legs()
            cur_pnl = newest.s[_PNL]
            cur_maps = newest.maps
        evs = plan.events
        # the event days' fills and notional, ascending; a compacted day counts in ``all``
        ev_tiles: list[tuple[int, float, float, bool]] = []
        if evs:
            for e in evs:
                t = tiles.get(e)
                if t is not None:
                    ev_tiles.append((e, t.s[_N], t.s[_NOTIONAL], False))
                elif e in self.old_days:
                    o = self.old_days[e]
                    ev_tiles.append((e, o[0], o[1], True))
        out: list[tuple[_Older, list[Any] | None, list[Any], SketchParts]] = []
        first: int | None
        last: int | None
        light_set = plan.light
        for w, lo in plan.windows:
            light = w in light_set
            inside = newest is not None and (lo is None or top >= lo)
            older = self._older(lo, top if inside else -1, light)
            base = older.tile
            if inside:
                days = older.days + 1
                first = top if older.first is None else min(older.first, top)
                last = top if older.last is None else max(older.last, top)
                pnl_sq = older.pnl_sq + cur_pnl * cur_pnl
                straddles = base.straddles + cur_legs
            else:
                days, first, last, pnl_sq = older.days, older.first, older.last, older.pnl_sq
                straddles = base.straddles
            # market-event days in the window
            ev_fills = ev_notional = 0.0
            ev_days = 0.0
            if evs:
                for e, n_, x_, compacted in ev_tiles:
                    if lo is None or (e >= lo and not compacted):
                        ev_fills += n_
                        ev_notional += x_
                if first is not None:
                    ev_days = float(bisect.bisect_left(evs, plan.end)
                                    - bisect.bisect_left(evs, first))
            # the keyed map: instruments in use, their underlyings, the largest notional
            ranked = older.ranked
            breadth = len(ranked)
            n_under = len(older.underlyings)
            top_notional = None
            if light:
                pass  # not read: the map values are None
            elif inside and cur_maps:
                bm = base.maps
                extra_under: set[Any] = set()
                for k, add in cur_maps.items():
                    old = bm.get(k)
                    if old is None:
                        c, x, was = add[0], add[1], False
                    else:
                        c, x, was = old[0] + add[0], old[1] + add[1], old[0] > 0
                    if c > 0:
                        if not was:
                            breadth += 1
                            if k[1] not in older.underlyings:
                                extra_under.add(k[1])
                        if top_notional is None or x > top_notional:
                            top_notional = x
                n_under += len(extra_under)
                for x, k in ranked:
                    if k not in cur_maps:
                        if top_notional is None or x > top_notional:
                            top_notional = x
                        break
            elif ranked:
                top_notional = ranked[0][0]
            out.append((older, cur_s if inside else None, [
                straddles, days, first, last, pnl_sq, ev_fills, ev_notional, top_notional,
                None if light else breadth, None if light else n_under, float(plan.cutoff_us),
                None if first is None else float(plan.end - first),
                0.0 if evs is None else 1.0, 0.0 if first is None else ev_days],
                (older.sketch_buckets, older.sketch_counts,
                 cur_sketch if inside and not light else None)))
        return out

    # -- snapshots -----------------------------------------------------------------------
    def to_json(self) -> str:
        """Serialise the state (JSON text)."""
        return json.dumps({
            "tiles": [[d, t.to_json()] for d, t in self.tiles.items()],
            "base": None if self.base is None else self.base.to_json(),
            "old_days": [[d, *v] for d, v in self.old_days.items()],
            "last_us": self.last_us,
        })

    @classmethod
    def from_json(cls, text: str) -> AccountState:
        """Inverse of :meth:`to_json`."""
        d = json.loads(text)
        st = cls()
        st.tiles = {int(k): DayTile.from_json(v) for k, v in d["tiles"]}
        st.base = None if d["base"] is None else DayTile.from_json(d["base"])
        st.old_days = {int(r[0]): (r[1], r[2], r[3]) for r in d["old_days"]}
        st.folded_through = max(st.old_days, default=-1)
        st.last_us = d["last_us"]
        return st


Parts = dict[str, tuple[list[np.ndarray], list[Any], list[Any], list[Any]]]


def read_parts(states: Mapping[str, AccountState], accounts: Sequence[str], plan: ReadPlan,
               into: Parts | None = None) -> Parts:
    """Read many accounts at one cutoff, keeping what each state gives (see :func:`combine`).

    Per window: the older days' scalar measures (an array kept with their merge), the
    newest day's, the other values and the two sketches of each account, appended to
    ``into`` when given (reads at several cutoffs then combine at once). The parts hold no
    reference to anything a later fill changes.
    """
    out: Parts = {} if into is None else into
    lists = [out.setdefault(w, ([], [], [], [])) for w, _ in plan.windows]
    for a in accounts:
        for (bases, curs, extras, sketches), (older, cur, extra, sk) in zip(
                lists, states[a]._reads(plan), strict=True):
            bases.append(older.values)
            curs.append(_IDENTITY if cur is None else cur)
            extras.append(extra)
            sketches.append(sk)
    return out


def _windows_reading(features: frozenset[str], windows: Sequence[str],
                     columns: Iterable[str]) -> set[str]:
    """Windows (of ``windows`` and ``all``) where one of ``columns`` is one of ``features``."""
    wanted = set(columns)
    return {w for w in {*windows, "all"}
            if any(col in wanted and name in features
                   for name, col in (*_columns(w, False),
                                     *(_columns(w, True) if w == "all" else ())))}


def quantile_windows(windows: Sequence[str], columns: Iterable[str] | None = None) -> set[str]:
    """Windows (of ``windows`` and ``all``) whose ``columns`` read a sketch quantile.

    Every window when ``columns`` is None. :func:`combine` computes the quantiles of these
    windows only.
    """
    if columns is None:
        return {*windows, "all"}
    return _windows_reading(_READS_QUANTILES, windows, columns)


def light_windows(windows: Sequence[str], columns: Iterable[str]) -> frozenset[str]:
    """Windows (of ``windows`` and ``all``) whose ``columns`` read neither map nor sketch.

    The keyed map gives the instruments in use and the largest notional. :func:`read_plan`
    reads these windows without the map and the sketch.
    """
    cols = list(columns)
    heavy = _windows_reading(_READS_QUANTILES | _READS_MAP, windows, cols)
    return frozenset({*windows, "all"} - heavy)


def combine(parts: Parts, quantiles: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """Window values from :func:`read_parts`: per window, one row per account read.

    The columns are ``VALUE_NAMES``; the scalar measures of the older days and of the
    newest day are combined over the arrays as :meth:`AccountState.window_values` combines
    them one account at a time (a missing minimum or maximum is NaN, as it is None there).
    ``quantiles`` names the windows whose sketch quantiles are computed (default: every
    window; the others' are NaN, see :func:`quantile_windows`). :func:`values_frame` turns
    these into features.
    """
    keep = None if quantiles is None else set(quantiles)
    out: dict[str, np.ndarray] = {}
    for w, (bases, curs, extras, sketches) in parts.items():
        if not bases:
            out[w] = np.empty((0, len(VALUE_NAMES)))
            continue
        b = np.stack(bases)
        c = np.array(curs, dtype=np.float64)
        s = b + c
        s[:, _MINS] = np.fmin(b[:, _MINS], c[:, _MINS])
        s[:, _MAXES] = np.fmax(b[:, _MAXES], c[:, _MAXES])
        q = (sketch_quantiles(sketches) if keep is None or w in keep
             else np.full((len(bases), len(_Q_NAMES)), np.nan))
        out[w] = np.concatenate([s, np.array(extras, dtype=np.float64), q], axis=1)
    return out


def values_frame(blocks: Sequence[Mapping[str, np.ndarray]], windows: Sequence[str],
                 index: Sequence[str], columns: Iterable[str] | None = None) -> pd.DataFrame:
    """Features of the rows of :func:`combine` blocks (stacked in order).

    Row ``i`` equals ``get`` of the state it was read from, at the same cutoff (the
    formulas run over arrays, :func:`~traderseg.features.expr.compile_np`); the columns are
    in the order ``get`` returns them. ``columns``, when given, keeps those columns only
    (and evaluates only their formulas).
    """
    n = len(index)
    wanted = None if columns is None else set(columns)
    picked: dict[str, list[tuple[str, str]]] = {}
    for w in windows:
        picked[w] = [(name, col) for name, col in _columns(w, False)
                     if wanted is None or col in wanted]
    lifetime = [(name, col) for name, col in _columns("all", True)
                if wanted is None or col in wanted]
    per_window: dict[str, dict[str, Any]] = {}
    for w in {*windows, "all"}:
        names = tuple(dict.fromkeys(
            name for name, _ in (*picked.get(w, ()), *(lifetime if w == "all" else ()))))
        if n == 0:
            per_window[w] = {name: np.empty(0) for name in names}
            continue
        arr = np.concatenate([blk[w] for blk in blocks], axis=0)
        if len(arr) != n:
            raise ValueError("one index label per row of values")
        env = {k: arr[:, j] for j, k in enumerate(VALUE_NAMES)}
        per_window[w] = _np_formulas(names)(env, n)
    cols: dict[str, np.ndarray] = {}
    for w in windows:
        feats = per_window[w]
        for name, col in picked[w]:
            cols[col] = feats[name]
    for name, col in lifetime:
        cols[col] = per_window["all"][name]
    return pd.DataFrame(cols, index=pd.Index(list(index), name="account_id"))


def _np_formulas(names: tuple[str, ...]) -> Callable[[Mapping[str, Any], int],
                                                     dict[str, np.ndarray]]:
    """Return the array evaluation of the formulas of ``names`` (kept per set of names)."""
    if len(names) == len(CATALOG):
        return _NP_FORMULAS
    f = _NP_SOME.get(names)
    if f is None:
        by_name = {x.name: x for x in CATALOG}
        f = _NP_SOME[names] = compile_np({n: effective_formula(by_name[n]) for n in names})
    return f


def sketch_quantiles(sketches: Sequence[SketchParts]) -> np.ndarray:
    """Quantiles of many merged sketches at once: one row per read, one column per quantile.

    Each read holds the older days' sketch (buckets ascending, counts) and the newest day's
    (bucket -> count, or None), read as one: merged in (read, bucket) order, the rank rule is
    :meth:`Sketch.quantiles_of <traderseg.features.measures.Sketch.quantiles_of>`. NaN when
    a read's sketches are empty.
    """
    n = len(sketches)
    out = np.full((n, len(_SKETCH.quantiles)), np.nan)
    if n == 0:
        return out
    older_b: list[np.ndarray] = []
    older_c: list[np.ndarray] = []
    new_b: list[int] = []
    new_c: list[int] = []
    lens = np.empty(n, dtype=np.int64)
    new_lens = np.zeros(n, dtype=np.int64)
    for i, (ob, oc, cur) in enumerate(sketches):
        older_b.append(ob)
        older_c.append(oc)
        lens[i] = len(ob)
        if cur:
            new_b.extend(cur.keys())
            new_c.extend(cur.values())
            new_lens[i] = len(cur)
    ob = np.concatenate(older_b) if older_b else np.empty(0, dtype=np.int64)
    nb = np.array(new_b, dtype=np.int64)
    if ob.size + nb.size == 0:
        return out
    oc = np.concatenate(older_c) if older_c else np.empty(0, dtype=np.int64)
    nc = np.array(new_c, dtype=np.int64)
    ids = np.arange(n)
    low = min(int(ob.min(initial=0)), int(nb.min(initial=0)))
    width = max(int(ob.max(initial=0)), int(nb.max(initial=0))) - low + 1
    # order by (read, bucket): the older parts are in that order already (reads in turn,
    # buckets ascending), so only the newest days' entries are sorted, then merged in
    okey = np.repeat(ids, lens) * width + (ob - low)
    nkey = np.repeat(ids, new_lens) * width + (nb - low)
    norder = np.argsort(nkey, kind="stable")
    nkey = nkey[norder]
    # an entry of the newest day goes after the older entries of equal or smaller key
    at_new = np.arange(nb.size) + np.searchsorted(okey, nkey, side="right")
    older_at = np.ones(ob.size + nb.size, dtype=bool)
    older_at[at_new] = False
    at_old = np.flatnonzero(older_at)
    bk = np.empty(ob.size + nb.size, dtype=np.int64)
    ct = np.empty_like(bk)
    bk[at_old] = ob
    bk[at_new] = nb[norder]
    ct[at_old] = oc
    ct[at_new] = nc[norder]
    return _SKETCH.quantiles_of(bk, ct, lens + new_lens)


_NAN = float("nan")
_COLUMNS: dict[tuple[str, bool], list[tuple[str, str]]] = {}


def _columns(window: str, lifetime_only: bool) -> list[tuple[str, str]]:
    """(feature, column) of the catalogue's features of one window (lifetime-only or not)."""
    key = (window, lifetime_only)
    cols = _COLUMNS.get(key)
    if cols is None:
        cols = _COLUMNS[key] = [(f.name, column_name(f.name, window)) for f in CATALOG
                                if f.lifetime_only == lifetime_only]
    return cols


def _num(x: Any) -> float:
    return float("nan") if x is None else float(x)


def states_from_frame(fills: pd.DataFrame) -> dict[str, AccountState]:
    """Build one state per account from a frame of canonical fills."""
    states: dict[str, AccountState] = {}
    fold_records(states, records_from_frame(fills))
    return states


def fold_records(states: MutableMapping[str, AccountState],
                 records: Iterable[Mapping[str, Any]]) -> None:
    """Fold fills one by one into their accounts' states (created when new), in order."""
    for rec in records:
        acct = rec["account_id"]
        st = states.get(acct)
        if st is None:
            st = states[acct] = AccountState()
        st.update(rec)


def records_from_frame(fills: pd.DataFrame) -> Iterable[dict[str, Any]]:
    """Canonical fills as mappings for :meth:`AccountState.update` (times in microseconds)."""
    df = fills.copy()
    for c in ("ts", "expiry"):
        if c in df.columns:
            s = pd.to_datetime(df[c], utc=True)
            us = s.dt.as_unit("us").astype("int64").astype("object")
            df[c] = us.where(s.notna(), None)
    df = df.astype(object).where(df.notna(), None)
    return df.to_dict("records")  # type: ignore[return-value]
