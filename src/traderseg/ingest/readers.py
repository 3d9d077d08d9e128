"""Streaming batch readers for CSV, Parquet and JSON / JSON-lines files.

Every reader yields :class:`RawBatch` objects: an Arrow table of the source columns as they
are (Parquet keeps its types; CSV and JSON values arrive as strings), the 1-based line of
each row, and the rows that could not even be parsed (a truncated CSV line, a JSON line that
is not an object). Nothing is read whole except a JSON *array* file, which is how venue APIs
return one page of results; large exports should be JSON lines, CSV or Parquet.

Line numbers: for CSV the physical line counting the header as line 1 (one record per
line; quoted values must not contain line breaks); for JSON lines the physical line; for
Parquet and JSON arrays the 1-based row number.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from traderseg.errors import DataError, SchemaError

logger = logging.getLogger(__name__)

BATCH_ROWS = 262_144
CSV_BLOCK_BYTES = 16 << 20
SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".json": "json",
            ".jsonl": "jsonl", ".ndjson": "jsonl"}


@dataclass(frozen=True)
class BadRow:
    """A row refused while parsing the file itself (before any field is looked at)."""

    line: int
    reason: str
    raw: str


@dataclass
class RawBatch:
    """One batch of source rows.

    Attributes
    ----------
    table : pyarrow.Table
        Source columns, unconverted.
    lines : numpy.ndarray
        1-based line (or row number) of each row of ``table``.
    bad_rows : list of BadRow
        Rows that could not be parsed; they count as read and rejected.
    records : list of dict, optional
        The original JSON objects (JSON sources only), used to report rejected rows as
        they were written.
    """

    table: pa.Table
    lines: np.ndarray
    bad_rows: list[BadRow] = field(default_factory=list)
    records: list[dict[str, Any]] | None = None

    def raw_json(self, index: np.ndarray) -> list[str]:
        """Return the rows at ``index`` as JSON text, for the rejects table."""
        if self.records is not None:
            return [json.dumps(self.records[i], default=str) for i in index.tolist()]
        rows = self.table.take(pa.array(index, pa.int64())).to_pylist()
        return [json.dumps(r, default=str) for r in rows]


def file_kind(path: Path) -> str:
    """Return ``"csv"``, ``"parquet"``, ``"json"`` or ``"jsonl"`` from the file suffix."""
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise SchemaError(
            f"{path}: unsupported file type {path.suffix!r}; expected one of "
            f"{', '.join(sorted(SUFFIXES))}"
        )
    return kind


def source_columns(path: Path) -> list[str]:
    """Column names of a source file, read from its header without loading it.

    For JSON files these are the keys of the first object.
    """
    kind = file_kind(path)
    if kind == "parquet":
        return list(pq.ParquetFile(path).schema_arrow.names)
    if kind == "csv":
        return _csv_header_of(path)
    for batch in iter_batches(path, batch_rows=1):
        if batch.records:
            return list(batch.records[0].keys())
    return []


def _csv_header(header: str) -> list[str]:
    table = pacsv.read_csv(
        pa.py_buffer(header.encode() + b"\n"),
        read_options=pacsv.ReadOptions(autogenerate_column_names=True),
        convert_options=pacsv.ConvertOptions(strings_can_be_null=False),
    )
    return [str(table.column(i)[0].as_py()) for i in range(table.num_columns)]


def iter_batches(path: Path, batch_rows: int = BATCH_ROWS) -> Iterator[RawBatch]:
    """Yield the rows of ``path`` in batches of at most about ``batch_rows`` rows."""
    kind = file_kind(path)
    if kind == "parquet":
        yield from _parquet_batches(path, batch_rows)
    elif kind == "csv":
        yield from _csv_batches(path)
    else:
        yield from _json_batches(path, batch_rows, lines_only=kind == "jsonl")


def _parquet_batches(path: Path, batch_rows: int) -> Iterator[RawBatch]:
    start = 1
    for rb in pq.ParquetFile(path).iter_batches(batch_size=batch_rows):
        n = rb.num_rows
        yield RawBatch(pa.Table.from_batches([rb]), np.arange(start, start + n, dtype=np.int64))
        start += n


def _csv_batches(path: Path) -> Iterator[RawBatch]:
    names = _csv_header_of(path)
    skipped: list[tuple[int, str, int]] = []

    def on_invalid(row: Any) -> str:
        skipped.append((int(row.number), str(row.text), int(row.actual_columns)))
        return "skip"

    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(use_threads=False, block_size=CSV_BLOCK_BYTES),
        parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid, ignore_empty_lines=False),
        convert_options=pacsv.ConvertOptions(
            column_types={n: pa.string() for n in names},
            strings_can_be_null=True,
            null_values=[""],
            quoted_strings_can_be_null=False,
        ),
    )
    expected = len(names)
    done = 0  # valid rows yielded so far
    reported = 0  # skipped rows already attached to a batch
    for rb in reader:
        n = rb.num_rows
        lines = _valid_lines(done, n, [s[0] for s in skipped])
        done += n
        bad = [_bad_csv_row(s, expected) for s in skipped[reported:]]
        reported = len(skipped)
        yield RawBatch(pa.Table.from_batches([rb]), lines, bad)
    tail = [_bad_csv_row(s, expected) for s in skipped[reported:]]
    if tail:
        yield RawBatch(pa.table({n: pa.array([], pa.string()) for n in names}),
                       np.empty(0, np.int64), tail)


def _csv_header_of(path: Path) -> list[str]:
    with path.open("rb") as fh:
        header = fh.readline().decode("utf-8-sig").rstrip("\r\n")
    if not header:
        raise DataError(f"{path}: empty file (no header line)")
    return _csv_header(header)


def _valid_lines(done: int, n: int, skipped_lines: list[int]) -> np.ndarray:
    """Physical lines of valid rows ``done .. done+n`` given the skipped physical lines.

    Line 1 is the header, so without skips valid row ``i`` (0-based) sits on line ``i + 2``.
    """
    idx = np.arange(done, done + n, dtype=np.int64)
    if not skipped_lines:
        return idx + 2
    s = np.sort(np.asarray(skipped_lines, dtype=np.int64))
    valid_before = s - 2 - np.arange(len(s), dtype=np.int64)
    return idx + 2 + np.searchsorted(valid_before, idx, side="right")


def _bad_csv_row(s: tuple[int, str, int], expected: int) -> BadRow:
    line, text, actual = s
    if actual < expected:
        reason = f"truncated or malformed row: {actual} of {expected} fields"
    else:
        reason = f"malformed row: {actual} fields, header has {expected}"
    return BadRow(line, reason, json.dumps({"line_text": text}))


def _json_batches(path: Path, batch_rows: int, lines_only: bool) -> Iterator[RawBatch]:
    if not lines_only:
        records = _json_document(path)
        if records is not None:
            for start in range(0, len(records), batch_rows):
                chunk = records[start:start + batch_rows]
                numbers = list(range(start + 1, start + 1 + len(chunk)))
                yield _records_batch(chunk, numbers, [])
            return
    yield from _jsonl_batches(path, batch_rows)


def _json_document(path: Path) -> list[Any] | None:
    """Return the records of a JSON document, or ``None`` when the file is JSON lines."""
    text = path.read_text(encoding="utf-8-sig")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        if "Extra data" in exc.msg:
            return None
        raise DataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    return _unwrap(doc, path)


def _unwrap(doc: Any, path: Path) -> list[Any]:
    """Find the list of records in an API response (``result``, ``trades``, ``data``...)."""
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict):
        for key in ("result", "trades", "fills", "data"):
            if key in doc:
                return _unwrap(doc[key], path)
        return [doc]
    raise DataError(f"{path}: JSON document holds no list of records")


def _jsonl_batches(path: Path, batch_rows: int) -> Iterator[RawBatch]:
    recs: list[Any] = []
    numbers: list[int] = []
    bad: list[BadRow] = []
    with path.open("r", encoding="utf-8-sig") as fh:
        for lineno, line in enumerate(fh, start=1):
            text = line.strip()
            if not text:
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                bad.append(BadRow(lineno, f"not valid JSON ({exc.msg}); truncated line?",
                                  json.dumps({"line_text": text})))
                continue
            recs.append(obj)
            numbers.append(lineno)
            if len(recs) >= batch_rows:
                yield _records_batch(recs, numbers, bad)
                recs, numbers, bad = [], [], []
    if recs or bad:
        yield _records_batch(recs, numbers, bad)


def _records_batch(recs: list[Any], numbers: list[int], bad: list[BadRow]) -> RawBatch:
    good: list[dict[str, Any]] = []
    good_numbers: list[int] = []
    bad = list(bad)
    for rec, num in zip(recs, numbers, strict=True):
        if isinstance(rec, dict):
            good.append(rec)
            good_numbers.append(num)
        else:
            bad.append(BadRow(num, f"record is a JSON {type(rec).__name__}, not an object",
                              json.dumps(rec, default=str)))
    keys: dict[str, None] = {}
    for rec in good:
        keys.update(dict.fromkeys(rec))
    cols = {k: pa.array([_as_text(r.get(k)) for r in good], pa.string()) for k in keys}
    return RawBatch(_table_or_empty(cols, len(good)),
                    np.asarray(good_numbers, dtype=np.int64), bad, good)


def _table_or_empty(cols: dict[str, pa.Array], n: int) -> pa.Table:
    if cols:
        return pa.table(cols)
    return pa.table({"__empty__": pa.nulls(n, pa.string())})


_TEXT: dict[type, Callable[[Any], str]] = {
    bool: lambda v: "true" if v else "false",
    str: lambda v: v,
}


def _as_text(value: Any) -> str | None:
    """JSON value as text: strings as they are, numbers as written, objects as JSON."""
    if value is None:
        return None
    conv = _TEXT.get(type(value))
    if conv is not None:
        return conv(value)
    if isinstance(value, int | float):
        return json.dumps(value)
    return json.dumps(value, default=str)
