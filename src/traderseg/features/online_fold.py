"""Fold a table of fills into online states at once: the measures evaluated over columns.

:meth:`AccountState.update <traderseg.features.online.AccountState.update>` folds one fill
with generated Python; a stream consumer receives fills in micro-batches, and folding a
batch column by column costs a small fraction of that. :func:`fold_table` derives the same
per (account, UTC day) tile states from the same declarations
(:mod:`traderseg.features.measures`), evaluated over arrays
(:func:`~traderseg.features.expr.compile_np`'s evaluator, string columns dictionary-encoded):

- counts and sums are weighted bincounts over the (account, day) groups, which add in row
  order, so a tile built from one batch holds the same bits as fills folded one by one;
  a tile that already held fills adds the batch's partial state to it (equal up to
  floating-point summation order, as :meth:`~traderseg.features.online.AccountState.merge`);
- minima and maxima are ``ufunc.at`` reductions; measures of integral expressions
  (epoch microseconds) stay Python ints, as the per-fill path keeps them;
- the keyed map and the sketch are counted per (group, key) and inserted in order of first
  appearance, so dictionaries iterate as after per-fill updates; sketch buckets whose
  scaled logarithm lies within 1e-9 of an integer are recomputed by :meth:`Sketch.bucket`
  (the declaration's :func:`math.log` formula, which the per-fill path computes too), so
  a last-bit difference between logarithm implementations never moves a value to the
  neighbouring bucket;
- paired legs (straddles) are grouped per (account-day, expiry, strike, side), with the
  distinct option types of each group.

Fills keep their canonical column names; ``ts`` and ``expiry`` are Arrow timestamps (any
unit; naive is UTC) or integer microseconds since the epoch. Missing nullable columns are
NULL throughout.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from traderseg.errors import DataError
from traderseg.features import measures as M
from traderseg.features.expr import (
    US_PER_DAY,
    Bin,
    Call,
    Col,
    Expr,
    IsIn,
    Lit,
    Named,
    _np_bool,
    _np_truth,
    _NpEvaluator,
)
from traderseg.features.measures import MEASURE_SET
from traderseg.features.online import AccountState, DayTile, _merge_scalars, fold_records

_SCALARS = MEASURE_SET.scalars
_MAP = MEASURE_SET.maps[0]
_SKETCH = MEASURE_SET.sketches[0]
_PAIR = MEASURE_SET.pairs[0]
_INTEGRAL_CALLS = frozenset({"epoch_micros", "epoch_seconds", "day", "hour", "weekday"})


def _walk(e: Expr) -> list[Expr]:
    out = [e]
    for c in e.children():
        out += _walk(c)
    return out


def _column_kinds() -> dict[str, Col]:
    """Every fill column the measures read, with its declaration."""
    exprs: list[Expr] = []
    for m in _SCALARS:
        exprs += [e for e in (m.expr, m.where) if e is not None]
    exprs += [e for _, e in _MAP.keys] + [v.expr for v in _MAP.values if v.expr is not None]
    if _MAP.where is not None:
        exprs.append(_MAP.where)
    exprs += [_SKETCH.expr, _PAIR.where, _PAIR.type_expr] + [e for _, e in _PAIR.keys]
    cols: dict[str, Col] = {}
    for e in exprs:
        for x in _walk(e):
            if isinstance(x, Col):
                cols.setdefault(x.name, x)
    return cols


_COLUMNS = _column_kinds()


def _check_declarations() -> None:
    """Refuse declarations of a shape this module cannot fold (teach it, never skip)."""
    for v in _MAP.values:
        if v.agg not in ("count", "sum"):
            raise TypeError(f"map value {v.name}: only count and sum fold by columns")
    for _, e in (*_PAIR.keys, ("type", _PAIR.type_expr)):
        if not isinstance(e, Col):
            raise TypeError("paired legs: keys and type must be plain columns")
    for _, e in _MAP.keys:
        if not isinstance(e, Col) or e.kind != "str":
            raise TypeError("keyed map: keys must be string columns")


_check_declarations()


def _integral(e: Expr) -> bool:
    """Whether the per-fill path computes ``e`` as a Python int (epoch arithmetic)."""
    if isinstance(e, Named):
        return _integral(e.expr)
    if isinstance(e, Call):
        return e.fn in _INTEGRAL_CALLS
    return isinstance(e, Col) and e.kind == "ts"


def _string_column(e: Expr) -> str | None:
    if isinstance(e, Named):
        return _string_column(e.expr)
    if isinstance(e, Col) and e.kind == "str":
        return e.name
    return None


class _FillEvaluator(_NpEvaluator):
    """The array evaluator over fills: string columns arrive as dictionary codes."""

    def __init__(self, env: dict[str, np.ndarray], n: int,
                 codes: dict[str, dict[str, float]]) -> None:
        super().__init__(env, n)
        self.codes = codes

    def _code(self, column: str, value: Any) -> float:
        return self.codes[column].get(value, -1.0)

    def _eval(self, e: Expr) -> np.ndarray:
        if isinstance(e, Bin) and e.op in ("==", "!="):
            a, b = e.a, e.b
            if isinstance(a, Lit):
                a, b = b, a
            name = _string_column(a)
            if name is not None and isinstance(b, Lit) and isinstance(b.value, str):
                x = self(a)
                r = _np_bool(x == self._code(name, b.value) if e.op == "=="
                             else x != self._code(name, b.value))
                if a.nullable:
                    r[np.isnan(x)] = np.nan
                return r
        if isinstance(e, IsIn):
            name = _string_column(e.a)
            if name is not None:
                wanted = [self._code(name, v) for v in e.values]
                return _np_bool(np.isin(self(e.a), wanted))
        return super()._eval(e)


class _Columns:
    """A batch's fill columns as float arrays (NULL as NaN), strings dictionary-encoded."""

    def __init__(self, table: pa.Table) -> None:
        self.n = table.num_rows
        self.env: dict[str, np.ndarray] = {}
        self.codes: dict[str, dict[str, float]] = {}
        self.values: dict[str, list[Any]] = {}
        for name, decl in _COLUMNS.items():
            if name not in table.column_names:
                if not decl.nullable:
                    raise DataError(f"fills: column {name!r} is missing")
                self.env[name] = np.full(self.n, np.nan)
                if decl.kind == "str":
                    self.codes[name], self.values[name] = {}, []
                continue
            col = table.column(name)
            if decl.kind == "str":
                enc = pc.dictionary_encode(col)
                if isinstance(enc, pa.ChunkedArray):
                    enc = enc.combine_chunks() if enc.num_chunks != 1 else enc.chunk(0)
                values = enc.dictionary.to_pylist()
                self.values[name] = values
                self.codes[name] = {v: float(i) for i, v in enumerate(values)}
                # indices with nulls come out as floats with NaN
                self.env[name] = np.asarray(enc.indices.to_numpy(zero_copy_only=False),
                                            dtype=np.float64)
            elif decl.kind == "ts":
                self.env[name] = _floats(micros(col))
            else:
                self.env[name] = _floats(col)

    def int_codes(self, name: str) -> np.ndarray:
        """Return the dictionary codes of a string column, -1 for NULL."""
        x = self.env[name]
        return np.where(np.isnan(x), -1, x).astype(np.int64)


def micros(col: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """Integer microseconds since the epoch of a timestamp (or integer) column."""
    if pa.types.is_timestamp(col.type):
        if col.type.unit != "us":
            col = pc.cast(col, pa.timestamp("us", tz=col.type.tz))
        return pc.cast(col, pa.int64())
    if pa.types.is_integer(col.type) or pa.types.is_null(col.type):
        return pc.cast(col, pa.int64())
    raise DataError(f"fills: a timestamp column has type {col.type}")


def _floats(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if not pa.types.is_floating(col.type):
        col = pc.cast(col, pa.float64())
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)


def _first_order(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct ``keys`` in order of first appearance, and each row's index into them."""
    codes, uniq = pd.factorize(keys)  # hashing, codes numbered in order of first appearance
    return np.asarray(uniq), codes.astype(np.int64)


def _first_rows(codes: np.ndarray) -> np.ndarray:
    """Row of each code's first appearance, for codes numbered in that order."""
    if not len(codes):
        return np.empty(0, dtype=np.int64)
    top = np.maximum.accumulate(codes)
    return np.flatnonzero(np.concatenate(([True], top[1:] > top[:-1])))


def _sketch_buckets(x: np.ndarray) -> np.ndarray:
    """Bucket of every value, equal to :meth:`Sketch.bucket` value by value."""
    zero = ~(x >= M.SKETCH_MIN_VALUE)
    with np.errstate(all="ignore"):
        y = np.log(np.where(zero, 1.0, x)) * _SKETCH.inv_log_gamma
    b = np.ceil(y)
    near = ~zero & (np.abs(y - np.rint(y)) < 1e-9)
    out = b.astype(np.int64)
    for i in np.flatnonzero(near):
        out[i] = _SKETCH.bucket(float(x[i]))
    out[zero] = M.ZERO_BUCKET
    return out


def _scalar_rows(ev: _FillEvaluator, g: np.ndarray, groups: int) -> list[list[Any]]:
    """Each group's scalar measures, a row per group in the per-fill path's Python types."""
    ones = np.ones(ev.n, dtype=bool)
    masks: dict[int, np.ndarray] = {}
    mat = np.empty((groups, len(_SCALARS)))
    for j, m in enumerate(_SCALARS):
        mask: np.ndarray = ones
        if m.where is not None:
            if id(m.where) not in masks:
                masks[id(m.where)] = _np_truth(ev(m.where))
            mask = masks[id(m.where)]
        v = None if m.expr is None else ev(m.expr)
        if v is not None and m.expr is not None and m.expr.nullable:
            mask = mask & ~np.isnan(v)
        if m.agg == "count":
            mat[:, j] = np.bincount(g, weights=None if mask is ones else mask.astype(np.float64),
                                    minlength=groups)
        elif m.agg == "sum":
            assert v is not None
            mat[:, j] = np.bincount(g, weights=v if mask is ones else np.where(mask, v, 0.0),
                                    minlength=groups)
        else:
            assert v is not None
            fill = np.inf if m.agg == "min" else -np.inf
            r = np.full(groups, fill)
            (np.minimum if m.agg == "min" else np.maximum).at(r, g, np.where(mask, v, fill))
            r[r == fill] = np.nan  # no value: NULL
            mat[:, j] = r
    rows: list[list[Any]] = mat.tolist()
    for j in _INT_EXTREMES:
        for row in rows:
            x = row[j]
            row[j] = None if x != x else int(x)
    for j in _FLOAT_EXTREMES:
        for row in rows:
            if row[j] != row[j]:
                row[j] = None
    return rows


_INT_EXTREMES = tuple(j for j, m in enumerate(_SCALARS)
                      if m.agg in ("min", "max") and _integral(m.expr))  # type: ignore[arg-type]
_FLOAT_EXTREMES = tuple(j for j, m in enumerate(_SCALARS)
                        if m.agg in ("min", "max") and j not in _INT_EXTREMES)


COLUMNAR_FROM_ROWS = 1_000
"""Tables of at least this many fills are folded by columns, smaller ones row by row: the
fixed cost of evaluating every measure over columns (a few milliseconds) exceeds the per-fill
updates of fewer fills (measured in ``bench/bench_engine.py --parts online``)."""


def columnar(rows: int, columnar_from: int = COLUMNAR_FROM_ROWS) -> bool:
    """Whether :func:`fold_table` folds a table of ``rows`` fills by columns."""
    return rows >= columnar_from


def fold_table(states: MutableMapping[str, AccountState], fills: pa.Table | pd.DataFrame, *,
               columnar_from: int = COLUMNAR_FROM_ROWS) -> set[tuple[str, int]]:
    """Fold every fill of ``fills`` into the account's state in ``states`` (created if new).

    The result equals folding the rows one by one with
    :meth:`~traderseg.features.online.AccountState.update`, in row order: exactly for the
    tiles this batch creates, up to floating-point summation order for tiles that already
    held fills. Returns the ``(account_id, day)`` tiles touched. Tables of fewer than
    ``columnar_from`` fills are folded row by row (:data:`COLUMNAR_FROM_ROWS`).

    The cyclic garbage collector is paused while a batch is folded: the tiles it allocates
    form no cycles, and collections in the middle of a batch would traverse the whole
    state again and again.

    Raises
    ------
    DataError
        A required column is missing, or a fill falls in an account's compacted history
        (nothing is folded then).
    """
    with _gc_paused():
        return _fold_table(states, fills, columnar_from)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector (if it runs) for the block."""
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def _fold_table(states: MutableMapping[str, AccountState], fills: pa.Table | pd.DataFrame,
                columnar_from: int) -> set[tuple[str, int]]:
    table = fills if isinstance(fills, pa.Table) else pa.Table.from_pandas(
        fills, preserve_index=False)
    n = table.num_rows
    if n == 0:
        return set()
    if not columnar(n, columnar_from):
        return _fold_rows(states, table)  # its records are checked as they are made
    _check_keys(table)
    cols = _Columns(table)
    ts = np.asarray(micros(table.column("ts")).to_numpy(zero_copy_only=False), dtype=np.int64)
    acct = pc.dictionary_encode(table.column("account_id")).combine_chunks()
    names = acct.dictionary.to_pylist()
    a = acct.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    day = ts // US_PER_DAY
    d0 = int(day.min())
    span = int(day.max()) - d0 + 1
    keys, g = _first_order(a * span + (day - d0))
    n_groups = len(keys)
    g_acct = (keys // span).tolist()
    g_day = (keys % span + d0).tolist()
    _refuse_compacted(states, ((names[ai], d) for ai, d in zip(g_acct, g_day, strict=True)))
    last = np.full(len(names), np.iinfo(np.int64).min)
    np.maximum.at(last, a, ts)

    ev = _FillEvaluator(cols.env, n, cols.codes)
    with np.errstate(all="ignore"):
        rows = _scalar_rows(ev, g, n_groups)
        tiles: list[DayTile] = []
        touched: set[tuple[str, int]] = set()
        for ai, d, row in zip(g_acct, g_day, rows, strict=True):
            acc = names[ai]
            st = states.get(acc)
            if st is None:
                st = states[acc] = AccountState()
            tile = st.tiles.get(d)
            if tile is None:
                tile = st.tiles[d] = DayTile()
                tile.s = row
            else:
                _merge_scalars(tile.s, row)
            st.note_day(d)  # as update(): a fill before the newest day drops kept merges
            tiles.append(tile)
            touched.add((acc, d))
        _fold_map(cols, ev, g, tiles)
        _fold_sketch(ev, g, tiles)
        _fold_pairs(table, cols, ev, g, tiles)
    for ai, t in enumerate(last.tolist()):
        st = states[names[ai]]
        if st.last_us is None or t > st.last_us:
            st.last_us = int(t)
    return touched


def _check_keys(table: pa.Table) -> None:
    """Refuse a table whose fills lack a time or an account."""
    if "ts" not in table.column_names or table.column("ts").null_count:
        raise DataError("fills: ts is missing or NULL")
    if table.column("account_id").null_count:
        raise DataError("fills: account_id is NULL")


def _grouped(parts: list[np.ndarray], rows: np.ndarray | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
    """Group rows by several integer key columns (codes from 0).

    Returns each group's first row (groups in order of first appearance) and each row's
    group. Columns combine into one integer key, made dense again whenever the product of
    their ranges could overflow.
    """
    key = np.zeros(len(parts[0]), dtype=np.int64)
    span = 1
    for p in parts:
        size = int(p.max(initial=0)) + 1
        if span * size >= 2**62:
            key, _ = pd.factorize(key)
            key = key.astype(np.int64)
            span = int(key.max(initial=0)) + 1
        key = key * size + p
        span *= size
    if rows is not None:
        key = key[rows]
    _, codes = _first_order(key)
    return _first_rows(codes), codes


def _decode(cols: _Columns, name: str, codes: np.ndarray) -> list[Any]:
    values = cols.values[name]
    return [None if c < 0 else values[c] for c in codes.tolist()]


def _fold_rows(states: MutableMapping[str, AccountState],
               table: pa.Table) -> set[tuple[str, int]]:
    """Fold a small table row by row (:meth:`AccountState.update`), refusing first."""
    return fold_record_slice(states, fill_records(table))


def fill_records(table: pa.Table) -> list[dict[str, Any]]:
    """Return the fills of ``table`` as records for :meth:`AccountState.update`.

    Times are in microseconds. A table converted once, then folded in slices with
    :func:`fold_record_slice`, costs one conversion instead of one a slice.

    Raises
    ------
    DataError
        A required column is missing, or ``ts`` or ``account_id`` is NULL.
    """
    _check_keys(table)
    cols = {}
    for name in table.column_names:
        if name in _COLUMNS or name == "account_id":
            col = table.column(name)
            ts_kind = name in _COLUMNS and _COLUMNS[name].kind == "ts"
            cols[name] = micros(col) if ts_kind else col
    for name, decl in _COLUMNS.items():
        if name not in cols and not decl.nullable:
            raise DataError(f"fills: column {name!r} is missing")
    return pa.table(cols).to_pylist()


def fold_record_slice(states: MutableMapping[str, AccountState],
                      records: list[dict[str, Any]]) -> set[tuple[str, int]]:
    """Fold records of :func:`fill_records` one by one; return the tiles touched.

    As :func:`fold_table` folds a table of fewer than ``columnar_from`` fills: fills on
    compacted days are refused before anything changes.
    """
    touched = {(r["account_id"], r["ts"] // US_PER_DAY) for r in records}
    _refuse_compacted(states, touched)
    with _gc_paused():
        fold_records(states, records)
    return touched


def _refuse_compacted(states: MutableMapping[str, AccountState],
                      tiles: Iterable[tuple[str, int]]) -> None:
    """Refuse, before anything changes, fills on days an account has compacted."""
    for acc, d in tiles:
        st = states.get(acc)
        if st is not None and d <= st.folded_through:
            raise DataError(f"fill at day {d} falls in the compacted history of the account")


def _fold_map(cols: _Columns, ev: _FillEvaluator, g: np.ndarray, tiles: list[DayTile]) -> None:
    rows = None if _MAP.where is None else np.flatnonzero(_np_truth(ev(_MAP.where)))
    names = [e.name for _, e in _MAP.keys]  # type: ignore[attr-defined]
    codes = [cols.int_codes(name) for name in names]
    first, inv = _grouped([g, *(c + 1 for c in codes)], rows)
    at = first if rows is None else rows[first]
    k = len(first)
    sums: list[list[Any]] = []
    for v in _MAP.values:
        w = np.ones(cols.n) if v.where is None else _np_truth(ev(v.where)).astype(float)
        x = None if v.expr is None else ev(v.expr)
        if x is not None and v.expr is not None and v.expr.nullable:
            w = w * ~np.isnan(x)
        if x is not None:
            w = np.where(w > 0, x, 0.0)
        if rows is not None:
            w = w[rows]
        total = np.bincount(inv, weights=w, minlength=k)
        sums.append(total.astype(np.int64).tolist() if v.agg == "count" else total.tolist())
    keys = zip(*(_decode(cols, name, c[at]) for name, c in zip(names, codes, strict=True)),
               strict=True)
    for grp, mk, vals in zip(g[at].tolist(), keys, zip(*sums, strict=True), strict=True):
        maps = tiles[grp].maps
        e_ = maps.get(mk)
        if e_ is None:
            maps[mk] = list(vals)
        else:
            for i, x_ in enumerate(vals):
                e_[i] += x_


def _fold_sketch(ev: _FillEvaluator, g: np.ndarray, tiles: list[DayTile]) -> None:
    b = _sketch_buckets(ev(_SKETCH.expr))
    lo = int(b[b != M.ZERO_BUCKET].min(initial=0)) - 1
    shifted = np.where(b == M.ZERO_BUCKET, lo, b) - lo
    width = int(shifted.max()) + 1
    uniq, inv = _first_order(g.astype(np.int64) * width + shifted)
    counts = np.bincount(inv, minlength=len(uniq)).tolist()
    buckets = (uniq % width + lo).tolist()
    for grp, bucket, c in zip((uniq // width).tolist(), buckets, counts, strict=True):
        bk = M.ZERO_BUCKET if bucket == lo else bucket
        sk = tiles[grp].sketch
        sk[bk] = sk.get(bk, 0) + c


def _fold_pairs(table: pa.Table, cols: _Columns, ev: _FillEvaluator, g: np.ndarray,
                tiles: list[DayTile]) -> None:
    rows = np.flatnonzero(_np_truth(ev(_PAIR.where)))
    if not len(rows):
        return
    names = [e.name for _, e in _PAIR.keys]  # type: ignore[attr-defined]
    type_name = _PAIR.type_expr.name  # type: ignore[attr-defined]
    values: dict[str, list[Any]] = {}
    codes: dict[str, np.ndarray] = {}
    for name in (*names, type_name):
        if name in cols.values:  # strings: dictionary codes already
            codes[name], values[name] = cols.int_codes(name), cols.values[name]
        elif name not in table.column_names:
            codes[name], values[name] = np.full(cols.n, -1, dtype=np.int64), []
        else:
            c = table.column(name)
            if _COLUMNS[name].kind == "ts":
                c = micros(c)
            enc = pc.dictionary_encode(c).combine_chunks()
            values[name] = enc.dictionary.to_pylist()
            codes[name] = np.asarray(enc.indices.fill_null(-1).to_numpy(zero_copy_only=False),
                                     dtype=np.int64)
    first, inv = _grouped([g, *(codes[n] + 1 for n in names)], rows)
    at = rows[first]
    legs = np.bincount(inv, minlength=len(first)).tolist()
    # the distinct types of each group
    tfirst, tinv = _grouped([inv, codes[type_name][rows] + 1])
    del tinv
    type_of = codes[type_name][rows][tfirst].tolist()
    group_of = inv[tfirst].tolist()
    type_values = values[type_name]
    sets: list[set[Any]] = [set() for _ in range(len(first))]
    for grp, t in zip(group_of, type_of, strict=True):
        sets[grp].add(None if t < 0 else type_values[t])
    keys = zip(*(([None if c < 0 else values[n][c] for c in codes[n][at].tolist()])
                 for n in names), strict=True)
    for grp, pk, types, n in zip(g[at].tolist(), keys, sets, legs, strict=True):
        pairs = tiles[grp].pairs
        e = pairs.get(pk)
        if e is None:
            pairs[pk] = [types, n]
        else:
            e[0] |= types
            e[1] += n
