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

import codecs
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
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
        rows = _as_text_table(self.table.take(pa.array(index, pa.int64()))).to_pylist()
        return [json.dumps(r, default=str) for r in rows]


def _as_text_table(table: pa.Table) -> pa.Table:
    """Temporal columns as text, so that times outside Python's range still show."""
    cols = [pc.cast(c, pa.string()) if pa.types.is_temporal(c.type) else c
            for c in table.columns]
    return pa.Table.from_arrays(cols, names=table.column_names)


def file_kind(path: Path) -> str:
    """Return ``"csv"``, ``"parquet"``, ``"json"`` or ``"jsonl"`` from the file suffix."""
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise SchemaError(
            f"{path}: unsupported file type {path.suffix!r}; expected one of "
            f"{', '.join(sorted(SUFFIXES))}"
        )
    return kind


def source_columns(path: Path) -> list[str] | None:
    """Column names of a source file, read from its header without loading it.

    For JSON files these are the keys of the first object, and ``None`` when the file holds
    no record at all (an API page without trades), which has no columns to check. The
    file-level faults are found here, before anything is stored: text that is not UTF-8,
    a CSV line with an unbalanced quote, a column name given twice, a Parquet file that
    cannot be opened.

    Raises
    ------
    DataError
        When the file cannot be read as its type; the message names the file and the fault.
    SchemaError
        When a column name appears twice.
    """
    kind = file_kind(path)
    if kind == "parquet":
        names = list(_parquet_file(path).schema_arrow.names)
    elif kind == "csv":
        check_text(path, csv=True)
        names = _csv_header_of(path)
    else:
        check_text(path, csv=False)
        found: list[str] | None = None
        for batch in iter_batches(path, batch_rows=1):
            if batch.records:
                found = list(batch.records[0].keys())
                break
            if batch.bad_rows:
                found = []
                break
        if found is None:
            return None
        names = found
    _check_unique(path, names)
    return names


def nested_columns(path: Path) -> dict[str, str]:
    """Columns of a Parquet file holding nested values (struct, list, map), with their type."""
    if file_kind(path) != "parquet":
        return {}
    schema = _parquet_file(path).schema_arrow
    return {f.name: str(f.type) for f in schema if pa.types.is_nested(f.type)}


def _check_unique(path: Path, names: list[str]) -> None:
    seen: dict[str, int] = {}
    for i, name in enumerate(names, start=1):
        if name in seen:
            raise SchemaError(f"{path}: column {name!r} appears twice (columns {seen[name]} "
                              f"and {i}); rename one of them")
        seen[name] = i


# Byte-order marks of the encodings that are not UTF-8, longest first.
_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
         (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16"))
_SCAN_BYTES = 16 << 20


def check_text(path: Path, *, csv: bool) -> None:
    """Refuse a text source that is not UTF-8, holds NUL bytes or has an unbalanced quote.

    Quotes are checked in CSV files only (``csv=True``). The whole file is scanned once,
    in blocks, before anything is stored, so that a file in another encoding is refused
    as a whole instead of losing its rows one by one.

    Raises
    ------
    DataError
        Naming the file, the line and what is wrong.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    line, offset, carry = 1, 0, b""
    with path.open("rb") as fh:
        head = fh.read(4)
        for bom, enc in _BOMS:
            if head.startswith(bom):
                raise DataError(f"{path}: text is {enc} (byte-order mark); save it as UTF-8")
        fh.seek(0)
        while block := fh.read(_SCAN_BYTES):
            nul = block.find(b"\x00")
            if nul >= 0:
                at = line + block.count(b"\n", 0, nul)
                raise DataError(f"{path}: NUL byte at line {at} (UTF-16 text or a binary "
                                "file?); save it as UTF-8 text")
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                at = line + block.count(b"\n", 0, max(exc.start, 0))
                bad = block[exc.start] if 0 <= exc.start < len(block) else 0
                raise DataError(f"{path}: not UTF-8 text: byte 0x{bad:02x} at line {at} "
                                f"(byte {offset + exc.start}); save the file as UTF-8") from None
            if csv and b'"' in block:
                carry = _check_quotes(path, carry + block, line - carry.count(b"\n"))
            line += block.count(b"\n")
            offset += len(block)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise DataError(f"{path}: ends inside a UTF-8 character (truncated file?)") from None
        if csv and carry.count(b'"') % 2:
            _unbalanced(path, line - carry.count(b"\n"))


def _check_quotes(path: Path, data: bytes, first_line: int) -> bytes:
    """Check the complete lines of ``data`` for an odd number of quotes; return the rest."""
    cut = data.rfind(b"\n") + 1
    for i, text in enumerate(data[:cut].split(b"\n")):
        if text.count(b'"') % 2:
            _unbalanced(path, first_line + i)
    return data[cut:]


def _unbalanced(path: Path, line: int) -> None:
    raise DataError(f"{path}: line {line} has an unbalanced quote (\"); quoted values must "
                    "open and close on the same line")


def _parquet_file(path: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable Parquet file ({_first_line(exc)})") from None


def _first_line(exc: BaseException, limit: int = 160) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else type(exc).__name__
    return first if len(first) <= limit else first[:limit] + "..."


def _csv_header(header: str) -> list[str]:
    if header.count('"') % 2:
        raise DataError("the header line has an unbalanced quote")
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


def raw_rows_at(path: Path, lines: list[int], batch_rows: int = BATCH_ROWS) -> dict[int, str]:
    """Return the source rows at ``lines`` (numbered as in :class:`RawBatch`) as JSON text.

    Reads the file again; used for the few rows whose raw text was not kept (duplicates
    found after staging).
    """
    wanted = np.unique(np.asarray(lines, dtype=np.int64))
    out: dict[int, str] = {}
    for batch in iter_batches(path, batch_rows):
        idx = np.flatnonzero(np.isin(batch.lines, wanted))
        if len(idx):
            out.update(zip(batch.lines[idx].tolist(), batch.raw_json(idx), strict=True))
    return out


def _parquet_batches(path: Path, batch_rows: int) -> Iterator[RawBatch]:
    start = 1
    batches = _parquet_file(path).iter_batches(batch_size=batch_rows)
    while True:
        try:
            rb = next(batches)
        except StopIteration:
            return
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise DataError(f"{path}: corrupt Parquet data after row {start - 1} "
                            f"({_first_line(exc)})") from None
        n = rb.num_rows
        table = _nested_as_json(pa.Table.from_batches([rb]))
        yield RawBatch(table, np.arange(start, start + n, dtype=np.int64))
        start += n


def _nested_as_json(table: pa.Table) -> pa.Table:
    """Nested columns (struct, list, map) as JSON text, the way JSON sources arrive."""
    for i, f in enumerate(table.schema):
        if pa.types.is_nested(f.type):
            values = [None if v is None else json.dumps(v, default=str)
                      for v in _as_text_table(table.select([i])).column(0).to_pylist()]
            table = table.set_column(i, f.name, pa.array(values, pa.string()))
    return table


def _csv_batches(path: Path) -> Iterator[RawBatch]:
    names = _csv_header_of(path)
    skipped: list[tuple[int, str, int]] = []

    def on_invalid(row: Any) -> str:
        skipped.append((int(row.number), str(row.text), int(row.actual_columns)))
        return "skip"

    reader = _open_csv(
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
    while True:
        try:
            rb = reader.read_next_batch()
        except StopIteration:
            break
        except pa.ArrowException as exc:
            raise DataError(f"{path}: cannot parse as CSV after {done + len(skipped)} rows "
                            f"({_first_line(exc)})") from None
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


def _open_csv(path: Path, **options: Any) -> pacsv.CSVStreamingReader:
    try:
        return pacsv.open_csv(path, **options)
    except pa.ArrowException as exc:
        raise DataError(f"{path}: cannot parse as CSV ({_first_line(exc)})") from None


def _csv_header_of(path: Path) -> list[str]:
    with path.open("rb") as fh:
        raw = fh.readline()
    try:
        header = raw.decode("utf-8-sig").rstrip("\r\n")
    except UnicodeDecodeError:
        raise DataError(f"{path}: the header line is not UTF-8 text; save the file as UTF-8"
                        ) from None
    if not header.strip():
        raise DataError(f"{path}: empty file (no header line)")
    try:
        return _csv_header(header)
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from None
    except pa.ArrowException as exc:
        raise DataError(f"{path}: cannot read the header line ({_first_line(exc)})") from None


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
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text; save the file as UTF-8") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        if "Extra data" in exc.msg:
            return None
        raise DataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise DataError(f"{path}: JSON nested too deeply to be a list of records") from None
    return _unwrap(doc, path)


def _unwrap(doc: Any, path: Path) -> list[Any]:
    """Find the list of records in an API response (``result``, ``trades``, ``data``...)."""
    while isinstance(doc, dict):
        key = next((k for k in ("result", "trades", "fills", "data") if k in doc), None)
        if key is None:
            return [doc]
        doc = doc[key]
    if isinstance(doc, list):
        return doc
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
                                  json.dumps({"line_text": text[:2000]})))
                continue
            except RecursionError:
                bad.append(BadRow(lineno, "JSON nested too deeply to be a record",
                                  json.dumps({"line_text": text[:2000]})))
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
