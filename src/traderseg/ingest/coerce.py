"""Vectorised conversion of source columns to canonical types.

Each function returns the converted Arrow array and a boolean mask of the rows whose value
was present but could not be converted, so that a bad value becomes a reject with a reason
instead of an exception for the whole batch.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from traderseg.errors import ConfigError
from traderseg.schema import TS

TIME_UNITS = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": None}
_TRUE = ("true", "t", "1", "yes", "y")
_FALSE = ("false", "f", "0", "no", "n")


def present(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Boolean mask of non-null values."""
    return np.asarray(pc.is_valid(arr).to_numpy(zero_copy_only=False), dtype=bool)


def mask(expr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Boolean Arrow result as a numpy mask, nulls counting as False."""
    return np.asarray(pc.fill_null(expr, False).to_numpy(zero_copy_only=False), dtype=bool)


def _failed(before: pa.Array | pa.ChunkedArray, after: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return present(before) & ~present(after)


def _clean_strings(arr: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    arr = pc.utf8_trim_whitespace(arr)
    return pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), arr)


def as_string(arr: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """Convert to trimmed strings; empty strings become null."""
    if pa.types.is_floating(arr.type):
        # 12.0 -> "12" so that numeric ids read from floats keep their usual spelling
        ints = pc.cast(arr, pa.int64(), safe=False)
        whole = mask(pc.equal(pc.cast(ints, pa.float64()), arr))
        out = pc.if_else(pa.array(whole), pc.cast(ints, pa.string()), pc.cast(arr, pa.string()))
    else:
        out = pc.cast(arr, pa.string())
    out = _clean_strings(out)
    return _combine(out), np.zeros(len(arr), dtype=bool)


def as_float(arr: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """Convert to float64; text that is not a number is flagged."""
    if pa.types.is_floating(arr.type) or pa.types.is_integer(arr.type) or pa.types.is_decimal(
        arr.type
    ):
        return _combine(pc.cast(arr, pa.float64())), np.zeros(len(arr), dtype=bool)
    if pa.types.is_null(arr.type):
        return pa.nulls(len(arr), pa.float64()), np.zeros(len(arr), dtype=bool)
    text = _clean_strings(pc.cast(arr, pa.string()))
    try:
        out = pc.cast(text, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        values = pd.to_numeric(pd.Series(text.to_numpy(zero_copy_only=False), dtype=object),
                               errors="coerce")
        out = pa.array(values.to_numpy(dtype=float, na_value=np.nan), from_pandas=True)
    return _combine(out), _failed(text, out)


def as_int(arr: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """Convert to int64; fractional or non-numeric values are flagged."""
    if pa.types.is_integer(arr.type):
        return _combine(pc.cast(arr, pa.int64())), np.zeros(len(arr), dtype=bool)
    floats, bad = as_float(arr)
    whole = mask(pc.equal(pc.floor(floats), floats))
    ok = present(floats) & whole
    out = pc.if_else(pa.array(ok), pc.cast(pc.fill_null(pc.if_else(pa.array(ok), floats, 0.0), 0.0),
                                           pa.int64(), safe=False),
                     pa.scalar(None, pa.int64()))
    return _combine(out), bad | (present(floats) & ~whole)


def as_bool(arr: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """Convert to boolean; accepts true/false, t/f, 1/0, yes/no (any case)."""
    if pa.types.is_boolean(arr.type):
        return _combine(arr), np.zeros(len(arr), dtype=bool)
    if pa.types.is_null(arr.type):
        return pa.nulls(len(arr), pa.bool_()), np.zeros(len(arr), dtype=bool)
    text = pc.utf8_lower(_clean_strings(pc.cast(arr, pa.string())))
    is_true = pc.is_in(text, pa.array(_TRUE))
    is_false = pc.is_in(text, pa.array(_FALSE))
    out = pc.if_else(is_true, True, pc.if_else(is_false, False, pa.scalar(None, pa.bool_())))
    return _combine(out), _failed(text, out)


def as_timestamp(
    arr: pa.Array | pa.ChunkedArray, unit: str = "auto"
) -> tuple[pa.Array, np.ndarray]:
    """Convert to UTC microsecond timestamps.

    Parameters
    ----------
    arr : pyarrow.Array
        Timestamps, epoch numbers or text.
    unit : str
        ``"s"``, ``"ms"``, ``"us"``, ``"ns"`` for epoch numbers; ``"iso"`` for ISO 8601
        text; any other text containing ``%`` is a ``strftime`` pattern; ``"auto"`` takes
        Arrow timestamps as they are (naive ones as UTC), ISO text as ISO, and guesses the
        unit of epoch numbers from their size (seconds below 1e11, milliseconds below 1e14,
        microseconds below 1e17, else nanoseconds).

    Returns
    -------
    tuple of (pyarrow.Array, numpy.ndarray)
        Converted values and the mask of values that could not be read.
    """
    n = len(arr)
    if unit not in TIME_UNITS and unit not in ("auto", "iso") and "%" not in unit:
        raise ConfigError(f"unknown timestamp format {unit!r}: use s, ms, us, ns, iso or a "
                          "strftime pattern")
    typ = arr.type
    if pa.types.is_null(typ):
        return pa.nulls(n, TS), np.zeros(n, dtype=bool)
    if pa.types.is_timestamp(typ):
        if typ.tz is None:
            arr = pc.assume_timezone(arr, "UTC")
        return _combine(pc.cast(arr, TS)), np.zeros(n, dtype=bool)
    if pa.types.is_date(typ):
        return _combine(pc.cast(pc.cast(arr, pa.timestamp("us")), TS)), np.zeros(n, dtype=bool)
    if pa.types.is_integer(typ) or pa.types.is_floating(typ):
        return _from_epoch(pc.cast(arr, pa.float64()), unit)
    text = _clean_strings(pc.cast(arr, pa.string()))
    if unit in TIME_UNITS:
        numbers, bad = as_float(text)
        out, bad2 = _from_epoch(numbers, unit)
        return out, bad | bad2
    if unit == "auto":
        numbers, _ = as_float(text)
        if present(text).any() and (present(numbers) == present(text)).all():
            return _from_epoch(numbers, unit)
    series = pd.Series(text.to_numpy(zero_copy_only=False), dtype=object)
    fmt = "ISO8601" if unit in ("auto", "iso") else unit
    try:
        parsed = pd.to_datetime(series, utc=True, errors="coerce", format=fmt)
    except ValueError as exc:
        raise ConfigError(f"timestamp format {unit!r} is not usable: {exc}") from exc
    out = pa.array(parsed.dt.as_unit("us"), type=TS, from_pandas=True)
    return out, _failed(text, out)


def _from_epoch(numbers: pa.Array, unit: str) -> tuple[pa.Array, np.ndarray]:
    vals = np.asarray(numbers.to_numpy(zero_copy_only=False), dtype=float)
    ok = np.isfinite(vals)
    if unit == "auto":
        mag = np.abs(np.where(ok, vals, 0.0))
        factor = np.select([mag < 1e11, mag < 1e14, mag < 1e17], [1e6, 1e3, 1.0], 1e-3)
    elif unit == "ns":
        factor = np.full(len(vals), 1e-3)
    else:
        factor = np.full(len(vals), float(TIME_UNITS[unit] or 1))
    micros = np.where(ok, vals, 0.0) * factor
    ok &= np.abs(micros) < 9.2e18
    out = pa.array(np.where(ok, micros, 0).astype(np.int64), pa.int64(), mask=~ok)
    numbers_present = present(numbers)
    return pc.cast(out, TS), numbers_present & ~ok


def _combine(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(arr, pa.ChunkedArray):
        return arr.combine_chunks()
    return arr
