"""Seeded fuzzing of the ingest: mutated source files in every input format.

Usage: python bench/ingest_fuzz.py [FILES] [SEED] [WORKDIR]

Builds FILES (default 1,500) mutated source files from valid seeds of the five input formats
(canonical, deribit, binance, hyperliquid, and the generic mapping import), each written as
CSV, JSON, JSON lines or Parquet, and ingests every one into a fresh store. A file may end in
a clean one-line error (a :class:`traderseg.errors.TradersegError`) or in a report; anything
else is counted as a traceback. For every report the counts must balance
(``read = stored + rejected + already_present``) and agree with what the store holds.

The test suite runs the same engine on a small seeded sample (``tests/ingest/test_fuzz.py``).
"""

from __future__ import annotations

import io
import json
import random
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from traderseg.errors import TradersegError
from traderseg.ingest import ingest
from traderseg.store import connect

NOW = datetime(2026, 1, 1, tzinfo=UTC)
FORMATS = ("canonical", "deribit", "binance", "hyperliquid", "mapping")
FILE_TYPES = ("csv", "json", "jsonl", "parquet")

_T0 = 1_714_000_000_000  # 2024-04-24, epoch ms

MAPPING_YAML = """\
table: fills
columns:
  fill_id: TradeNo
  ts: {column: Time, format: "%Y-%m-%d %H:%M:%S"}
  account_id: Wallet
  instrument: Market
  underlying: {const: BTC}
  kind: {const: perp}
  side: {column: Dir, map: {B: buy, S: sell}}
  qty: {column: SizeMilli, scale: 0.001}
  price: Px
  notional_usd: {column: SizeMilli, times: Px, scale: 0.001}
  fee_usd: {column: Fee, negate: true}
  is_maker: {column: Liq, map: {M: true, T: false}}
"""


def _canonical(i: int) -> dict[str, Any]:
    opt = i % 4 == 3
    return {
        "fill_id": f"f-{i}", "ts": f"2024-04-{1 + i % 27:02d}T10:{i % 60:02d}:00Z",
        "account_id": f"a{i % 3}",
        "instrument": "BTC-27DEC24-60000-C" if opt else "BTC-PERPETUAL",
        "underlying": "BTC", "kind": "option" if opt else "perp",
        "side": "buy" if i % 2 else "sell", "qty": 1 + i % 5, "price": 0.01 if opt else 60000,
        "notional_usd": 60000, "fee_usd": 0.5 - (i % 3) * 0.4, "is_maker": i % 2 == 0,
        "option_type": "call" if opt else None, "strike": 60000 if opt else None,
        "expiry": "2024-12-27T08:00:00Z" if opt else None, "is_liquidation": i % 7 == 0,
    }


def _deribit(i: int) -> dict[str, Any]:
    opt = i % 3 == 0
    return {
        "trade_id": f"BTC-{1000 + i}", "timestamp": _T0 + i * 1000,
        "instrument_name": "BTC-27DEC24-60000-C" if opt else "BTC-PERPETUAL",
        "direction": "buy" if i % 2 else "sell", "amount": 0.5 if opt else 10.0 * (1 + i % 4),
        "price": 0.012 if opt else 60000.0, "index_price": 60000.0, "fee_currency": "BTC",
        "fee": 0.00015, "liquidity": "T" if i % 2 else "M", "iv": 55.0 if opt else None,
        "underlying_price": 60100.0 if opt else None, "profit_loss": 0.0001 * (i % 3),
        "user_id": f"u{i % 2}",
    }


def _binance(i: int) -> dict[str, Any]:
    return {
        "symbol": "BTCUSDT" if i % 2 else "ETHUSDT_250328", "id": 5000 + i, "orderId": 9 + i,
        "side": "BUY" if i % 2 else "SELL", "price": "60000.1", "qty": "0.010",
        "realizedPnl": "1.5", "quoteQty": "600.001", "commission": "0.24",
        "commissionAsset": "USDT", "time": _T0 + i * 500, "positionSide": "BOTH",
        "maker": i % 3 == 0, "buyer": i % 2 == 1, "account_id": "b1",
    }


def _hyperliquid(i: int) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "closedPnl": "0.0", "coin": ("BTC", "ETH", "@107", "PURR/USDC", "xyz:TSLA")[i % 5],
        "crossed": i % 2 == 0, "dir": "Open Long" if i % 2 else "Close Short", "hash": "0xab",
        "oid": 900 + i, "px": "60000.0", "side": "B" if i % 2 else "A", "startPosition": "0.0",
        "sz": "0.1", "time": _T0 + i * 700, "fee": "0.6", "feeToken": "USDC", "tid": 7000 + i,
        "user": "0xabc",
    }
    if i % 6 == 5:
        rec["liquidation"] = {"liquidatedUser": "0xabc", "markPx": "59000", "method": "market"}
    return rec


def _generic(i: int) -> dict[str, Any]:
    return {
        "TradeNo": f"T-{i}", "Time": f"2024-05-01 12:00:{i % 60:02d}", "Wallet": f"w{i % 2}",
        "Market": "BTC-PERP", "Dir": "B" if i % 2 else "S", "SizeMilli": 100 * (1 + i % 9),
        "Px": 62000.5, "Fee": 0.1, "Liq": "M" if i % 2 else "T",
    }


SEEDS: dict[str, Callable[[int], dict[str, Any]]] = {
    "canonical": _canonical, "deribit": _deribit, "binance": _binance,
    "hyperliquid": _hyperliquid, "mapping": _generic,
}

# Values a field is replaced with: text, numbers, timestamps of every unit, nested values.
ODD_VALUES: tuple[Any, ...] = (
    "", " ", "NaN", "nan", "inf", "-inf", "-1", "0", "1e400", "-0", "null", "None", "abc",
    "12,5", "0x1F", "١٢٣", "😀", "é", "\u0000", "x" * 300, "2024-13-45 99:00", "2024-02-30",
    "10000-01-01T00:00:00Z", "0001-01-01", "2999-01-01T00:00:00Z", "1969-12-31T23:59:59Z",
    "2024-04-01T10:00:00+05:30", "2024-04-01", "12:00", 1714000000, 1714000000000,
    1714000000000000, 1714000000000000000, -1714000000000, 2**63, -(2**63), 1e300, 0.0,
    -0.0, True, False, None, [], [1, 2], {}, {"a": {"b": [1]}}, "true", "no", "BUY", "Sell",
    "b", "A", "M", "MT", "call", "PUT", "option", "swap",
)


@dataclass(frozen=True)
class Case:
    """One mutated source file and how to ingest it."""

    index: int
    format: str
    file_type: str
    mutation: str
    path: Path
    mapping: Path | None = None


@dataclass
class Outcome:
    """What ingesting one case gave."""

    case: Case
    kind: str  # "report", "error" or "traceback"
    message: str = ""
    read: int = 0
    stored: int = 0
    rejected: int = 0
    already_present: int = 0
    balanced: bool = True


@dataclass
class Summary:
    """Counts over a fuzz run."""

    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def tracebacks(self) -> list[Outcome]:
        """Outcomes that ended in an exception other than a traderseg error."""
        return [o for o in self.outcomes if o.kind == "traceback"]

    @property
    def unbalanced(self) -> list[Outcome]:
        """Reports whose counts do not add up or disagree with the store."""
        return [o for o in self.outcomes if not o.balanced]

    @property
    def multiline(self) -> list[Outcome]:
        """Errors whose message is not one line."""
        return [o for o in self.outcomes if o.kind == "error" and "\n" in o.message]

    def counts(self) -> Counter[str]:
        """Number of outcomes of each kind."""
        return Counter(o.kind for o in self.outcomes)


# ---------------------------------------------------------------- record-level mutations

Records = list[dict[str, Any]]


def _set_value(rng: random.Random, recs: Records) -> str:
    for _ in range(rng.randint(1, 3)):
        rec = rng.choice(recs)
        key = rng.choice(list(rec))
        rec[key] = rng.choice(ODD_VALUES)
    return "odd value"


def _drop_key(rng: random.Random, recs: Records) -> str:
    key = rng.choice(list(recs[0]))
    for rec in recs:
        rec.pop(key, None)
    return f"drop column {key}"


def _drop_key_some(rng: random.Random, recs: Records) -> str:
    key = rng.choice(list(recs[0]))
    for rec in rng.sample(recs, k=max(1, len(recs) // 3)):
        rec.pop(key, None)
    return "drop a value"


def _repeat_rows(rng: random.Random, recs: Records) -> str:
    recs.extend(dict(r) for r in rng.sample(recs, k=max(1, len(recs) // 2)))
    return "repeated rows"


def _case_flip(rng: random.Random, recs: Records) -> str:
    for rec in recs:
        for k, v in rec.items():
            if isinstance(v, str) and rng.random() < 0.3:
                rec[k] = v.upper() if rng.random() < 0.5 else v.lower()
    return "case"


def _ts_unit(rng: random.Random, recs: Records) -> str:
    factor = rng.choice((1e-3, 1e3, 1e6, 1e9))
    for rec in recs:
        for k, v in rec.items():
            if isinstance(v, int) and not isinstance(v, bool) and v > 10**12:
                rec[k] = int(v * factor)
    return "time unit"


def _nest(rng: random.Random, recs: Records) -> str:
    key = rng.choice(list(recs[0]))
    for rec in recs:
        rec[key] = {"value": rec.get(key), "list": [rec.get(key)]}
    return "nested column"


def _deep_value(rng: random.Random, recs: Records) -> str:
    depth = rng.choice((20, 400))
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    rng.choice(recs)[rng.choice(list(recs[0]))] = value
    return f"value nested {depth} deep"


def _empty(rng: random.Random, recs: Records) -> str:
    recs.clear()
    return "no rows"


def _extra_key(rng: random.Random, recs: Records) -> str:
    for rec in recs:
        rec[rng.choice(("extra", "note", ""))] = rng.choice(ODD_VALUES)
    return "extra column"


RECORD_MUTATIONS = (_set_value, _set_value, _set_value, _drop_key, _drop_key_some, _repeat_rows,
                    _case_flip, _ts_unit, _nest, _empty, _extra_key, _deep_value)


# ------------------------------------------------------------------- writing and bytes

def _text_value(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict | list):
        return json.dumps(v)
    return str(v)


def _csv_bytes(recs: Records, columns: list[str]) -> bytes:
    import csv

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for rec in recs:
        w.writerow([_text_value(rec.get(c)) for c in columns])
    return buf.getvalue().encode()


def _parquet_bytes(rng: random.Random, recs: Records, columns: list[str]) -> bytes:
    cols: dict[str, pa.Array] = {}
    for c in columns:
        values = [r.get(c) for r in recs]
        try:
            cols[c] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            cols[c] = pa.array([None if v is None else _text_value(v) for v in values],
                               pa.string())
    if not cols:
        cols["__none__"] = pa.nulls(len(recs))
    table = pa.table(cols)
    choice = rng.random()
    if choice < 0.15 and table.num_columns:
        # a column name twice
        table = pa.Table.from_arrays(list(table.columns) + [table.column(0)],
                                     names=table.column_names + [table.column_names[0]])
    elif choice < 0.3:
        # timestamp columns as native timestamps in another unit, or structs
        for i, name in enumerate(table.column_names):
            arr = table.column(i)
            if pa.types.is_integer(arr.type) and name in ("time", "timestamp"):
                unit = rng.choice(("s", "ms", "us", "ns"))
                values = [None if v is None or abs(v) > 9 * 10**12 else v * 1_000_000
                          for v in arr.to_pylist()]
                table = table.set_column(i, name, pa.array(values, pa.timestamp("ns")).cast(
                    pa.timestamp(unit), safe=False))
    buf = io.BytesIO()
    try:
        pq.write_table(table, buf)
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):  # e.g. a struct with no field
        text = {c: pa.array([None if v is None else _text_value(v) for v in
                             (r.get(c) for r in recs)], pa.string()) for c in columns}
        buf = io.BytesIO()
        pq.write_table(pa.table(text) if text else table, buf)
    return buf.getvalue()


def _serialise(rng: random.Random, recs: Records, file_type: str, fmt: str) -> bytes:
    columns: list[str] = []
    for r in recs:
        columns.extend(k for k in r if k not in columns)
    if file_type == "csv":
        return _csv_bytes(recs, columns)
    if file_type == "parquet":
        return _parquet_bytes(rng, recs, columns)
    if file_type == "jsonl":
        return "".join(json.dumps(r) + "\n" for r in recs).encode()
    doc: Any = recs
    if fmt == "deribit":
        doc = {"jsonrpc": "2.0", "id": 1, "result": {"trades": recs, "has_more": False}}
    return json.dumps(doc, indent=1).encode()


def _truncate(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    return data[: rng.randint(0, max(0, len(data) - 1))], "truncated"


def _flip_bytes(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    b = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if b:
            b[rng.randrange(len(b))] = rng.randrange(256)
    return bytes(b), "flipped bytes"


def _insert_bytes(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    pos = rng.randint(0, len(data))
    junk = rng.choice((b'"', b"\"\"\"", b",", b"\n", b"\r\n", b"\x00", b"\xff\xfe", b"{", b"]",
                       b"\\", "é".encode("latin-1"), b"\t"))
    return data[:pos] + junk + data[pos:], "inserted bytes"


def _encoding(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    text = data.decode("utf-8", errors="replace").replace("BTC", "BTC\u00e9", 1)
    enc = rng.choice(("utf-16", "utf-16-le", "latin-1", "cp1252", "utf-8-sig", "utf-32"))
    return text.encode(enc, errors="replace"), f"encoding {enc}"


def _duplicate_header(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    head, sep, rest = data.partition(b"\n")
    first = head.split(b",")[0]
    return head + b"," + first + sep + rest.replace(b"\n", b",x\n"), "duplicated column"


def _unbalanced_quote(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    lines = data.split(b"\n")
    i = rng.randrange(len(lines))
    lines[i] = b'"' + lines[i]
    return b"\n".join(lines), "unbalanced quote"


def _deep_json(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    depth = rng.choice((200, 5_000, 100_000))
    return b"[" * depth + b"]" * depth, f"nested {depth} deep"


def _empty_file(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    return rng.choice((b"", b"\n", b" ", b"\xef\xbb\xbf")), "empty file"


def _duplicate_key(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    return data.replace(b'{"', b'{"price": 1, "', 1).replace(b"{\n", b'{\n "price": 1,\n', 1), (
        "repeated key")


def _crlf(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    return data.replace(b"\n", b"\r\n"), "CRLF line ends"


def _json_scalar(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    return rng.choice((b"42", b'"text"', b"null", b"true", b'{"result": 5}', b"[1, 2]")), "scalar"


BYTE_MUTATIONS: dict[str, tuple[Callable[[random.Random, bytes], tuple[bytes, str]], ...]] = {
    "csv": (_truncate, _flip_bytes, _insert_bytes, _encoding, _duplicate_header,
            _unbalanced_quote, _empty_file, _crlf),
    "json": (_truncate, _flip_bytes, _insert_bytes, _encoding, _deep_json, _empty_file,
             _json_scalar, _duplicate_key),
    "jsonl": (_truncate, _flip_bytes, _insert_bytes, _encoding, _deep_json, _empty_file,
              _json_scalar, _duplicate_key, _crlf),
    "parquet": (_truncate, _flip_bytes, _empty_file),
}


# ---------------------------------------------------------------------------- the run

def make_case(index: int, rng: random.Random, work: Path) -> Case:
    """Write one mutated source file into ``work`` and return how to ingest it."""
    fmt = FORMATS[index % len(FORMATS)]
    file_type = rng.choice(FILE_TYPES)
    recs = [SEEDS[fmt](i) for i in range(rng.randint(1, 12))]
    labels = []
    if rng.random() < 0.8:
        for _ in range(rng.randint(1, 2)):
            if recs and recs[0]:
                labels.append(rng.choice(RECORD_MUTATIONS)(rng, recs))
    data = _serialise(rng, recs, file_type, fmt)
    if rng.random() < 0.45:
        data, label = rng.choice(BYTE_MUTATIONS[file_type])(rng, data)
        labels.append(label)
    stem = "fills" if fmt == "canonical" else f"{fmt}-{index}"
    folder = work / f"case-{index:05d}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}.{file_type}"
    path.write_bytes(data)
    mapping = None
    if fmt == "mapping":
        mapping = folder / "mapping.yaml"
        mapping.write_text(MAPPING_YAML)
    return Case(index, fmt, file_type, "+".join(labels) or "none", path, mapping)


def run_case(case: Case) -> Outcome:
    """Ingest one case into a fresh in-memory store and classify what happened."""
    con = connect(":memory:")
    try:
        rep = ingest(case.path, con, format="canonical" if case.format == "mapping"
                     else case.format, mapping=case.mapping, now=NOW)
    except TradersegError as exc:
        con.close()
        return Outcome(case, "error", str(exc))
    except Exception:  # noqa: BLE001 - counting what escapes is the point
        con.close()
        return Outcome(case, "traceback", traceback.format_exc())
    try:
        s = rep.sources[0]
        stored = _count(con, "fills")
        rejected = _count(con, "rejects")
        ok = (s.read == s.stored + s.rejected + s.already_present and stored == s.stored
              and rejected == s.rejected and s.already_present == 0)
        return Outcome(case, "report", read=s.read, stored=s.stored, rejected=s.rejected,
                       already_present=s.already_present, balanced=ok)
    finally:
        con.close()


def _count(con: Any, table: str) -> int:
    row = con.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


def run(files: int, seed: int, work: Path) -> Summary:
    """Build and ingest ``files`` mutated files from ``seed``; return the outcomes."""
    rng = random.Random(seed)
    summary = Summary()
    for i in range(files):
        case = make_case(i, rng, work)
        summary.outcomes.append(run_case(case))
    return summary


def main() -> None:
    files = int(sys.argv[1]) if len(sys.argv) > 1 else 1500
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    work = Path(sys.argv[3]) if len(sys.argv) > 3 else Path(tempfile.mkdtemp())
    t = time.perf_counter()
    summary = run(files, seed, work)
    elapsed = time.perf_counter() - t
    counts = summary.counts()
    reports = [o for o in summary.outcomes if o.kind == "report"]
    print(f"files {files:,} (seed {seed}) in {elapsed:.0f}s")
    print(f"  clean one-line errors   {counts['error']:,}")
    print(f"  ingested with a report  {counts['report']:,}")
    print(f"  tracebacks              {counts['traceback']:,}")
    print(f"  multi-line errors       {len(summary.multiline):,}")
    print(f"  counts not conserved    {len(summary.unbalanced):,}")
    print(f"  rows read {sum(o.read for o in reports):,} = stored "
          f"{sum(o.stored for o in reports):,} + rejected {sum(o.rejected for o in reports):,}"
          f" + already present {sum(o.already_present for o in reports):,}")
    by_format = Counter((o.case.format, o.kind) for o in summary.outcomes)
    for fmt in FORMATS:
        print(f"  {fmt:<12} " + "  ".join(f"{k} {by_format[(fmt, k)]}" for k in
                                          ("report", "error", "traceback")))
    for o in summary.tracebacks[:10] + summary.unbalanced[:10]:
        print(f"--- case {o.case.index} {o.case.format} {o.case.file_type} {o.case.mutation}")
        print(o.message.strip().splitlines()[-1] if o.message else o)
    if summary.tracebacks or summary.unbalanced or summary.multiline:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
