"""The ingest run: resolve sources, check them all, then stream each one into the store."""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from traderseg.errors import ConfigError, DataError, SchemaError, TradersegError
from traderseg.ingest.adapters import make_adapter
from traderseg.ingest.adapters.base import Adapter, Context
from traderseg.ingest.load import RejectGroup, SourceLoader
from traderseg.ingest.mapping import LINE_COLUMN
from traderseg.ingest.readers import (
    BATCH_ROWS,
    RawBatch,
    iter_batches,
    nested_columns,
    raw_rows_at,
    source_columns,
)
from traderseg.ingest.sources import expand
from traderseg.ingest.validate import Problems, validate_table
from traderseg.store import open_store

logger = logging.getLogger(__name__)

FORMATS = ("canonical", "deribit", "binance", "hyperliquid")


@dataclass(frozen=True)
class SourceReport:
    """Counts for one source file; ``read == stored + rejected + already_present``.

    ``top_rejects`` holds the largest groups of the source's rejects (field, reason, count
    and first line), largest first.
    """

    source: str
    format: str
    table: str
    read: int
    stored: int
    rejected: int
    already_present: int
    top_rejects: tuple[RejectGroup, ...] = ()

    @property
    def all_rejected(self) -> bool:
        """Whether the source had rows and every one of them was rejected."""
        return self.read > 0 and self.rejected == self.read

    @property
    def reject_share(self) -> float:
        """Share of the rows read that were rejected (0 for an empty source)."""
        return self.rejected / self.read if self.read else 0.0


@dataclass
class IngestReport:
    """Result of an ingest run."""

    run_id: str
    started_at: datetime
    sources: list[SourceReport] = field(default_factory=list)

    def total(self, name: str) -> int:
        """Sum of count ``name`` (``read``, ``stored``, ...) over the sources."""
        return sum(int(getattr(s, name)) for s in self.sources)


def ingest(
    paths: Iterable[str | Path] | str | Path,
    db: str | Path | duckdb.DuckDBPyConnection,
    *,
    format: str = "canonical",
    mapping: str | Path | None = None,
    table: str | None = None,
    account_id: str | None = None,
    asset_prices: Mapping[str, float] | None = None,
    now: datetime | None = None,
    batch_rows: int = BATCH_ROWS,
    max_reject_share: float | None = None,
    on_source: Callable[[int, int, Path], None] | None = None,
) -> IngestReport:
    """Load source files into the store, with validation, rejects and deduplication.

    Every source is checked first (format, columns, table, account) so that a run with a
    wrong file stores nothing. Each source is then loaded in its own transaction.

    Parameters
    ----------
    paths : path or iterable of paths
        Files, or directories whose CSV / Parquet / JSON files are all read.
    db : path or DuckDB connection
        The store.
    format : str
        ``canonical``, ``deribit``, ``binance`` or ``hyperliquid``; ignored with ``mapping``.
    mapping : path, optional
        YAML mapping file for the generic import (see ``docs/ingest.md``).
    table : str, optional
        Canonical table of the sources (canonical format); inferred from names otherwise.
    account_id : str, optional
        Account of a venue export that has no account column.
    asset_prices : Mapping[str, float], optional
        USD prices of assets that fees may be paid in (e.g. ``{"BNB": 600.0}``).
    now : datetime, optional
        Reference time for the "not in the future" check; the current time by default.
    batch_rows : int
        Rows per batch for Parquet and JSON sources.
    max_reject_share : float, optional
        Refuse a source whose share of rejected rows is above this (0 to 1): its
        transaction is rolled back (nothing of it is stored, rejects included) and the run
        stops with a :class:`DataError` naming the top reasons. Sources loaded before it
        stay stored.
    on_source : callable, optional
        Called as ``on_source(i, n, path)`` before the i-th of n sources is loaded
        (progress reporting).

    Returns
    -------
    IngestReport
        Per-source counts (read, stored, rejected, already present).
    """
    if isinstance(paths, str | Path):
        paths = [paths]
    if mapping is None and format not in FORMATS:
        raise ConfigError(f"unknown format {format!r}; expected one of {', '.join(FORMATS)}")
    started = datetime.now(UTC)
    now = now or started
    if max_reject_share is not None and not 0 <= max_reject_share <= 1:
        raise ConfigError(f"max reject share must be between 0 and 1, not {max_reject_share}")
    prices = dict(asset_prices or {})
    for asset, price in prices.items():
        if not (math.isfinite(price) and price > 0):
            raise ConfigError(f"asset price of {asset} must be a positive number, not {price}")
    ctx = Context(account_id=account_id, asset_prices=prices)
    files = expand(paths)
    plan = []
    for path in files:
        columns = source_columns(path)
        adapter = make_adapter(format, path, table=table, mapping=mapping, columns=columns)
        adapter.check_source(str(path), columns, ctx)
        _check_nested(path, adapter)
        plan.append((path, adapter))
    report = IngestReport(run_id=uuid.uuid4().hex, started_at=started)
    con = db if isinstance(db, duckdb.DuckDBPyConnection) else open_store(db)
    try:
        for i, (path, adapter) in enumerate(plan, start=1):
            if on_source is not None:
                on_source(i, len(plan), path)
            rep = _load_source(con, path, adapter, ctx, now, started, report.run_id, batch_rows,
                               max_reject_share)
            report.sources.append(rep)
    finally:
        if con is not db:
            con.close()
    return report


def _check_nested(path: Path, adapter: Adapter) -> None:
    """Refuse a Parquet source whose scalar fields are nested columns."""
    nested = nested_columns(path)
    used = [c for c in adapter.required if c in nested]
    if used:
        raise SchemaError(f"{path}: column {used[0]!r} holds nested values ({nested[used[0]]}); "
                          "expected one plain value per row")


def _load_source(con: duckdb.DuckDBPyConnection, path: Path, adapter: Adapter, ctx: Context,
                 now: datetime, started: datetime, run_id: str, batch_rows: int,
                 max_reject_share: float | None) -> SourceReport:
    try:
        return _load_source_unchecked(con, path, adapter, ctx, now, started, run_id, batch_rows,
                                      max_reject_share)
    except TradersegError as exc:
        # a fault found while reading (a column in the wrong unit) names the file once
        if str(path) in str(exc) or str(path.resolve()) in str(exc):
            raise
        raise type(exc)(f"{path}: {exc}") from None


def _load_source_unchecked(con: duckdb.DuckDBPyConnection, path: Path, adapter: Adapter,
                           ctx: Context, now: datetime, started: datetime, run_id: str,
                           batch_rows: int, max_reject_share: float | None) -> SourceReport:
    source = str(path.resolve())
    read = 0
    with SourceLoader(con, adapter.table, source, started) as loader:
        for raw in iter_batches(path, batch_rows):
            read += raw.table.num_rows + len(raw.bad_rows)
            _load_batch(loader, raw, adapter, ctx, now)
        counts = loader.finish(lambda lines: raw_rows_at(path, lines, batch_rows))
        rejected = loader.rejected + counts.duplicates
        rep = SourceReport(source, adapter.name, adapter.table.name, read, counts.stored,
                           rejected, counts.already_present, tuple(loader.top_rejects()))
        if rep.read != rep.stored + rep.rejected + rep.already_present:
            raise DataError(f"{source}: counts do not add up ({rep}); nothing stored")
        if max_reject_share is not None and rep.reject_share > max_reject_share:
            top = rep.top_rejects[0]
            raise DataError(
                f"{source}: {rep.rejected:,} of {rep.read:,} rows rejected "
                f"({rep.reject_share:.1%}, above --max-reject-share {max_reject_share:.1%}); "
                f"nothing of this file stored; most common: {top.field}: {top.reason} "
                f"({top.count:,} rows, first at line {top.first_line})")
        con.execute(
            "INSERT INTO ingest_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [run_id, started, source, adapter.name, adapter.table.name, rep.read, rep.stored,
             rep.rejected, rep.already_present],
        )
        loader.commit()
    logger.info("%s: read %d, stored %d, rejected %d, already present %d", source, rep.read,
                rep.stored, rep.rejected, rep.already_present)
    return rep


def _load_batch(loader: SourceLoader, raw: RawBatch, adapter: Adapter, ctx: Context,
                now: datetime) -> None:
    if raw.bad_rows:
        loader.add_rejects(
            np.array([b.line for b in raw.bad_rows], dtype=np.int64),
            ["*"] * len(raw.bad_rows),
            [b.reason for b in raw.bad_rows],
            [b.raw for b in raw.bad_rows],
        )
    n = raw.table.num_rows
    if n == 0:
        return
    problems = Problems(n)
    table = raw.table
    if adapter.wants_lines:
        table = table.append_column(LINE_COLUMN, pa.array(raw.lines, pa.int64()))
    canon = adapter.convert(table, ctx, problems)
    validate_table(canon, adapter.table, problems, now)
    if problems.bad.any():
        idx = np.flatnonzero(problems.bad)
        loader.add_rejects(raw.lines[idx], problems.field[idx].tolist(),
                           problems.reason[idx].tolist(), list(raw.raw_json(idx)))
        keep = ~problems.bad
        loader.add_rows(canon.filter(keep), raw.lines[keep])
    else:
        loader.add_rows(canon, raw.lines)
