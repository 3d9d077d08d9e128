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

from traderseg.errors import ConfigError, DataError
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
        whole = mask(pc.equal(pc.cast(ints, pa.float64(), safe=False), arr))
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
        # integers beyond 2**53 become the nearest float, as text numbers do
        return _combine(pc.cast(arr, pa.float64(), safe=False)), np.zeros(len(arr), dtype=bool)
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
    arr: pa.Array | pa.ChunkedArray, unit: str = "auto", *, tz: str | None = None,
    name: str | None = None,
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
    tz : str, optional
        IANA time zone of naive wall-clock times (text without an offset, naive Arrow
        timestamps); UTC when not given. Epoch numbers and text with an offset are absolute
        and ignore it.
    name : str, optional
        Source column, named in the error raised for a whole column in the wrong unit.

    Returns
    -------
    tuple of (pyarrow.Array, numpy.ndarray)
        Converted values and the mask of values that could not be read, including times
        outside years 1 to 9999.

    Raises
    ------
    DataError
        When every epoch number of the batch is implausible in ``unit`` (before 2009 or after
        2100) but plausible in another unit: the column is in the wrong unit, not the rows.
    """
    n = len(arr)
    if unit not in TIME_UNITS and unit not in ("auto", "iso") and "%" not in unit:
        raise ConfigError(f"unknown timestamp format {unit!r}: use s, ms, us, ns, iso or a "
                          "strftime pattern")
    arr = _combine(arr)
    typ = arr.type
    if pa.types.is_null(typ):
        return pa.nulls(n, TS), np.zeros(n, dtype=bool)
    if pa.types.is_timestamp(typ):
        ints = pc.cast(arr, pa.int64())
        out, bad = _epoch_known(ints, typ.unit)
        if typ.tz is None and tz is not None:
            out, bad2 = _wall_clock(out, tz)
            bad |= bad2
        return out, bad
    if pa.types.is_date(typ):
        days = pc.cast(pc.cast(arr, pa.date32()), pa.int32())
        out, bad = _epoch_known(pc.cast(days, pa.int64()), "D")
        return (_wall_clock(out, tz)[0], bad) if tz is not None else (out, bad)
    if pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_boolean(typ):
        if "%" in unit or unit == "iso":
            arr = pc.cast(arr, pa.string())
        else:
            return _epoch(arr, unit, name)
    text = _clean_strings(pc.cast(arr, pa.string()) if not _is_text(typ) else arr)
    if unit in TIME_UNITS:
        return _epoch(text, unit, name)
    if unit in ("auto", "iso") and tz is None:
        fast = _iso_utc(text)
        if fast is not None:
            return fast, np.zeros(n, dtype=bool)
    if unit == "auto":
        numbers, _ = as_float(text)
        if present(text).any() and (present(numbers) == present(text)).all():
            return _epoch(text, unit, name)
    series = pd.Series(text.to_numpy(zero_copy_only=False), dtype=object)
    fmt = "ISO8601" if unit in ("auto", "iso") else unit
    try:
        parsed = _parse_text(series, fmt, tz)
    except ValueError as exc:
        raise ConfigError(f"timestamp format {unit!r} is not usable: {exc}") from exc
    out = pa.array(parsed.dt.as_unit("us"), type=TS, from_pandas=True)
    return out, _failed(text, out)


# UTC times as the live stream and most exports write them: 2024-01-10T13:05:59.657964Z
ISO_UTC = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?Z$"


def _iso_utc(text: pa.Array) -> pa.Array | None:
    """Read text that is all ``ISO_UTC`` with Arrow; None when any value is not.

    The pandas reading below gives the same times (a property test holds them equal) at a
    larger fixed cost, most of a small batch's validation (``bench/bench_stream_parts.py``).
    A value of that shape that is no time (``2024-02-30``, ``24:00:00``) makes Arrow
    fail; the batch then takes the pandas reading, which flags it.
    """
    shaped = pc.match_substring_regex(text, ISO_UTC)
    if not pc.all(pc.or_kleene(pc.is_null(text), shaped)).as_py():
        return None
    try:
        return pc.cast(text, TS)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _is_text(typ: pa.DataType) -> bool:
    return bool(pa.types.is_string(typ) or pa.types.is_large_string(typ))


def _parse_text(series: pd.Series, fmt: str, tz: str | None) -> pd.Series:
    """Parse text times; naive ones are wall-clock times in ``tz`` (UTC by default)."""
    if tz is None:
        return pd.to_datetime(series, utc=True, errors="coerce", format=fmt)
    # rows with an offset are absolute; the others are read in the zone
    parsed = pd.to_datetime(series, utc=True, errors="coerce", format=fmt)
    has_offset = series.str.contains(r"(?:[+-]\d{2}:?\d{2}|Z)\s*$", regex=True, na=False)
    naive = pd.to_datetime(series.where(~has_offset), errors="coerce", format=fmt, utc=False)
    if getattr(naive.dt, "tz", None) is not None:
        naive = naive.dt.tz_localize(None)
    local = naive.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")
    return parsed.where(has_offset, local)


def _wall_clock(out: pa.Array, tz: str) -> tuple[pa.Array, np.ndarray]:
    """Read UTC-labelled naive times as wall-clock times in ``tz``."""
    series = pd.Series(out.to_pandas()).dt.tz_localize(None)
    local = series.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")
    converted = pa.array(local.dt.as_unit("us"), type=TS, from_pandas=True)
    return converted, _failed(out, converted)


# Microseconds per unit of the epoch numbers the readers accept; ns divide by 1,000.
_MICROS = {"D": 86_400_000_000, "s": 1_000_000, "ms": 1_000, "us": 1}
# Times outside years 1..9999 cannot be held by Python, pandas or the store's clients.
MIN_MICROS = -62_135_596_800_000_000
MAX_MICROS = 253_402_300_799_999_999
# Epoch numbers in the wrong unit are recognised by landing outside this span.
_PLAUSIBLE = (1_230_940_800_000_000, 4_102_444_800_000_000)  # 2009-01-03 .. 2100-01-01
_UNIT_NAMES = {"s": "seconds", "ms": "milliseconds", "us": "microseconds",
               "ns": "nanoseconds"}


def _guess_units(mag: np.ndarray) -> np.ndarray:
    return np.select([mag < 1e11, mag < 1e14, mag < 1e17], ["s", "ms", "us"], "ns")


def _epoch(arr: pa.Array, unit: str, name: str | None) -> tuple[pa.Array, np.ndarray]:
    """Epoch numbers (numbers or numeric text) to timestamps, exact for integers."""
    ints: pa.Array | None = None
    if pa.types.is_integer(arr.type):
        ints = pc.cast(arr, pa.int64())
        bad_text = np.zeros(len(arr), dtype=bool)
    else:
        floats, bad_text = as_float(arr)
        if _is_text(arr.type):
            try:
                ints = pc.cast(arr, pa.int64())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                ints = None
    if ints is not None:
        vals = np.asarray(pc.fill_null(ints, 0).to_numpy(zero_copy_only=False), dtype=np.int64)
        ok = present(ints)
        mag = np.abs(vals.astype(float))
    else:
        fvals = np.asarray(pc.fill_null(floats, np.nan).to_numpy(zero_copy_only=False),
                           dtype=float)
        ok = np.isfinite(fvals)
        mag = np.abs(np.where(ok, fvals, 0.0))
    units = _guess_units(mag) if unit == "auto" else np.full(len(mag), unit)
    if unit != "auto":
        _check_unit(mag[ok], unit, name)
    micros = np.zeros(len(mag), dtype=np.int64)
    inside = np.zeros(len(mag), dtype=bool)
    for u in np.unique(units[ok]).tolist():
        rows = ok & (units == u)
        if ints is not None:
            v = vals[rows]
            if u == "ns":
                m, good = v // 1000, np.ones(len(v), dtype=bool)
            else:
                f = _MICROS[u]
                good = (v >= MIN_MICROS // f) & (v <= MAX_MICROS // f)
                m = np.where(good, v, 0) * f
        else:
            fv = fvals[rows] * (1e-3 if u == "ns" else float(_MICROS[u]))
            good = (fv >= MIN_MICROS) & (fv <= MAX_MICROS)
            m = np.where(good, np.floor(fv), 0).astype(np.int64)
        good &= (m >= MIN_MICROS) & (m <= MAX_MICROS)
        micros[rows] = m
        inside[rows] = good
    out = pa.array(micros, pa.int64(), mask=~inside)
    return pc.cast(out, TS), bad_text | (ok & ~inside)


def _check_unit(mag: np.ndarray, unit: str, name: str | None) -> None:
    """Raise when every number is implausible in ``unit`` but plausible in another."""
    if len(mag) == 0:
        return
    scale = 1e-3 if unit == "ns" else float(_MICROS[unit])
    micros = mag * scale
    implausible = (micros < _PLAUSIBLE[0]) | (micros >= _PLAUSIBLE[1])
    if not implausible.all():
        return
    guessed = _guess_units(mag)
    if len(set(guessed.tolist())) != 1 or guessed[0] == unit:
        return
    other = str(guessed[0])
    again = mag * (1e-3 if other == "ns" else float(_MICROS[other]))
    if ((again < _PLAUSIBLE[0]) | (again >= _PLAUSIBLE[1])).any():
        return
    example = int(mag[0]) if float(mag[0]).is_integer() else float(mag[0])
    col = f"column {name!r}" if name else "a timestamp column"
    raise DataError(
        f"{col} holds epoch {_UNIT_NAMES[other]}, not {_UNIT_NAMES[unit]} (e.g. {example}); "
        f"every value of the batch would fall outside 2009-2100"
    )


def _epoch_known(ints: pa.Array, unit: str) -> tuple[pa.Array, np.ndarray]:
    """Integer epoch values of a known unit (``D``, ``s`` .. ``ns``) to timestamps."""
    vals = np.asarray(pc.fill_null(ints, 0).to_numpy(zero_copy_only=False), dtype=np.int64)
    ok = present(ints)
    if unit == "ns":
        m = vals // 1000
        good = np.ones(len(vals), dtype=bool)
    else:
        f = _MICROS[unit]
        good = (vals >= MIN_MICROS // f) & (vals <= MAX_MICROS // f)
        m = np.where(good, vals, 0) * f
    good &= (m >= MIN_MICROS) & (m <= MAX_MICROS) & ok
    out = pa.array(np.where(good, m, 0), pa.int64(), mask=~good)
    return pc.cast(out, TS), ok & ~good


def _combine(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(arr, pa.ChunkedArray):
        return arr.combine_chunks()
    return arr
