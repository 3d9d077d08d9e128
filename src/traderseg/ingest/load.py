"""Idempotent load of one source into the store.

Valid rows of a source are staged in memory as Arrow batches, cast to the table's column
types, and read by DuckDB in place; a source larger than :data:`STAGE_MEMORY_BYTES` moves
to a temporary DuckDB table (which spills to disk when it outgrows memory). Then, in the
same transaction:

1. rows repeating the key of an earlier row of the same source become rejects
   ("duplicate ... in this source (first at line N)"), the first occurrence is kept;
2. the rest are inserted with an anti-join on the key (no index: a primary-key index on
   tens of millions of fill ids costs gigabytes and slows bulk loads); the staged rows not
   inserted are the ``already_present`` ones;
3. for fills, the daily feature tiles of the (account, day) pairs the source touched are
   recomputed (:mod:`traderseg.features.tiles`), so tiles and fills commit together.

Rejects are appended to the ``rejects`` table unless the same (source, line, field,
reason) is already there, so re-ingesting a file adds nothing anywhere. A failure rolls
the whole source back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType

import duckdb
import numpy as np
import pyarrow as pa

from traderseg.errors import DataError
from traderseg.schema import FILLS, REJECTS, Table

logger = logging.getLogger(__name__)

_STAGE = "_ingest_stage"
_STAGE_REJECTS = "_ingest_rejects"
_DUPS = "_ingest_dups"
_BATCH = "_ingest_batch"
STAGE_MEMORY_BYTES = 512 * 2**20
"""A source's staged rows stay in memory up to this size, then go to a temporary table (the
second write of every row is the cost of a table stage: about a tenth of an ingest)."""


@dataclass(frozen=True)
class LoadCounts:
    """What happened to the staged rows of one source."""

    stored: int
    duplicates: int
    already_present: int


@dataclass(frozen=True)
class RejectGroup:
    """Rejects of one source sharing a field and a reason (values in the reason aside).

    Attributes
    ----------
    field : str
        Field that failed (``*`` for a row that could not be parsed).
    reason : str
        Reason of the first reject of the group, as written to the rejects table.
    count : int
        Rejects in the group.
    first_line : int
        Line (or row number) of the first one.
    """

    field: str
    reason: str
    count: int
    first_line: int


# Reasons differ by the values they quote ('swap', a fill id, a line number); these are
# masked to group them.
_GROUP_KEY = ("regexp_replace(regexp_replace(reason, '''[^'']*''|\\S*[0-9]\\S*', '_', 'g'), "
              "'\\s+', ' ', 'g')")


class SourceLoader:
    """Stage rows and rejects of one source, then store them in one transaction.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Store connection (tables created by :func:`traderseg.store.connect`).
    table : traderseg.schema.Table
        Canonical table the source loads into.
    source : str
        Source name recorded with rejects (and with fills).
    ingested_at : datetime
        Time of the run.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, table: Table, source: str,
                 ingested_at: datetime) -> None:
        self.con = con
        self.table = table
        self.source = source
        self.ingested_at = ingested_at
        self.staged = 0
        self.rejected = 0
        self._held: list[pa.Table] = []  # staged rows still in memory
        self._held_bytes = 0
        self._in_table = False  # the stage moved to a temporary table
        self._registered = False
        self._schema: pa.Schema | None = None

    def __enter__(self) -> SourceLoader:
        self.con.begin()
        self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE {_STAGE_REJECTS} AS SELECT * FROM rejects LIMIT 0"
        )
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is not None:
            self.con.rollback()
            logger.info("ingest of %s rolled back: %s", self.source, exc)
        if self._registered:
            self.con.unregister(_STAGE)
            self._registered = False
        for name in (_STAGE, _STAGE_REJECTS, _DUPS):
            self.con.execute(f"DROP TABLE IF EXISTS {name}")
        self._held = []

    @property
    def _stage_schema(self) -> pa.Schema:
        """Arrow schema of the table's columns as DuckDB stores them, plus ``line_no``."""
        if self._schema is None:
            self._schema = self.con.execute(
                f"SELECT *, 0::BIGINT AS line_no FROM {self.table.name} LIMIT 0"
            ).fetch_arrow_table().schema
        return self._schema

    def add_rows(self, rows: pa.Table, lines: np.ndarray) -> None:
        """Stage valid canonical rows with their source lines."""
        if rows.num_rows == 0:
            return
        rows = rows.append_column("line_no", pa.array(lines, pa.int64()))
        # the stored types, so that what reads the stage sees what it would see in the table
        schema = self._stage_schema
        cols = []
        for f in schema:
            if f.name not in rows.column_names:
                cols.append(pa.nulls(rows.num_rows, f.type))
                continue
            col = rows.column(f.name)
            try:
                cols.append(col.cast(f.type))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise DataError(f"column {f.name!r}: its {col.type} values do not fit the "
                                f"store's {self.table.name}.{f.name} ({f.type}): "
                                f"{' '.join(str(exc).split())}") from None
        rows = pa.table(cols, schema=schema)
        self.staged += rows.num_rows
        if self._in_table:
            self._insert(_STAGE, rows)
            return
        self._held.append(rows)
        self._held_bytes += rows.nbytes
        if self._held_bytes > STAGE_MEMORY_BYTES:
            self._to_table()

    def _to_table(self) -> None:
        """Move the staged rows to a temporary table (and stage there from now on)."""
        if self._registered:
            self.con.unregister(_STAGE)
            self._registered = False
        held = self._held_table()
        self._held, self._held_bytes, self._in_table = [], 0, True
        self.con.register(_BATCH, held)
        try:
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE {_STAGE} AS SELECT * FROM {_BATCH}")
        finally:
            self.con.unregister(_BATCH)

    def _expose_stage(self) -> None:
        """Make the staged rows readable as ``_STAGE`` (the held batches, registered)."""
        if self._in_table:
            return
        self.con.register(_STAGE, self._held_table())
        self._registered = True

    def _held_table(self) -> pa.Table:
        return pa.concat_tables(self._held) if self._held else self._stage_schema.empty_table()

    def add_rejects(self, lines: np.ndarray, fields: list[str], reasons: list[str],
                    raws: list[str | None]) -> None:
        """Stage rejected rows of the source."""
        n = len(lines)
        if n == 0:
            return
        rej = pa.table(
            {
                "source": pa.array([self.source] * n, pa.string()),
                "line": pa.array(lines, pa.int64()),
                "field": pa.array(fields, pa.string()),
                "reason": pa.array(reasons, pa.string()),
                "raw": pa.array(raws, pa.string()),
                "ingested_at": pa.array([self.ingested_at] * n, REJECTS.column("ingested_at").type),
            }
        )
        self._insert(_STAGE_REJECTS, rej)
        self.rejected += n

    def finish(self, raw_rows: Callable[[list[int]], dict[int, str]] | None = None
               ) -> LoadCounts:
        """Reject in-source duplicates, insert new rows and rejects (commit is separate).

        Parameters
        ----------
        raw_rows : callable, optional
            Given line numbers, returns the source rows at those lines as JSON text, so
            that a duplicate's reject shows the row as the source wrote it; without it the
            converted row is shown.
        """
        self._expose_stage()
        key = self.table.key
        on = " AND ".join(f"s.{k} = d.{k}" for k in key)
        keys_text = " || ', ' || ".join(f"CAST(s.{k} AS VARCHAR)" for k in key)
        self.con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {_DUPS} AS
            SELECT s.line_no,
                   'duplicate {", ".join(key)} ' || {keys_text}
                     || ' in this source (first at line ' || d.first_line || ')' AS reason,
                   to_json(s) AS raw
            FROM {_STAGE} s
            JOIN (SELECT {", ".join(key)}, min(line_no) AS first_line FROM {_STAGE}
                  GROUP BY ALL HAVING count(*) > 1) d ON {on}
            WHERE s.line_no > d.first_line
            """
        )
        duplicates = self._count(_DUPS)
        if duplicates and raw_rows is not None:
            self._source_raw(raw_rows)
        if duplicates:
            self.con.execute(
                f"INSERT INTO {_STAGE_REJECTS} SELECT ?, line_no, ?, reason, raw, ? FROM {_DUPS}",
                [self.source, key[0], self.ingested_at],
            )
            if not self._in_table:  # rare: the stage is written once to drop them
                self._to_table()
            self.con.execute(f"DELETE FROM {_STAGE} WHERE line_no IN (SELECT line_no FROM {_DUPS})")
        rows_before = self._count(self.table.name) if self.table is FILLS else 0
        match = " AND ".join(f"t.{k} = s.{k}" for k in key)
        names = list(self.table.names)
        values = [f"s.{c}" for c in names]
        params: list[object] = []
        if self.table is FILLS:  # fills remember the source file they came from
            names.append("source")
            values.append("?")
            params.append(self.source)
        # the stored keys among the staged ones first (a semi join: the stage is the build
        # side and the scan of the table is filtered by it), then the staged rows without
        # one; a NOT EXISTS over the whole table ran about 2.5 times slower
        inserted = self.con.execute(
            f"INSERT INTO {self.table.name} ({', '.join(names)}) SELECT {', '.join(values)} "
            f"FROM {_STAGE} s ANTI JOIN (SELECT {', '.join(f't.{k}' for k in key)} "
            f"FROM {self.table.name} t SEMI JOIN {_STAGE} s ON {match}) t ON {match}",
            params,
        ).fetchone()
        stored = int(inserted[0]) if inserted else 0
        # every staged row left after the duplicates is either inserted or already stored
        already = self.staged - duplicates - stored
        if self.table is FILLS and stored:
            # the daily tiles of the account-days this source touched, in the same transaction;
            # when every staged row was new, the stage holds exactly the rows added
            from traderseg.features import tiles

            tiles.refresh(self.con, tiles.touched_sql(_STAGE), rows_before=rows_before,
                          added=_STAGE if already == 0 else None)
        self.con.execute(
            f"""
            INSERT INTO rejects SELECT r.* FROM {_STAGE_REJECTS} r
            WHERE NOT EXISTS (SELECT 1 FROM rejects o WHERE o.source = r.source
              AND o.line = r.line AND o.field = r.field AND o.reason = r.reason)
            """
        )
        return LoadCounts(stored=stored, duplicates=duplicates, already_present=already)

    def top_rejects(self, limit: int = 5) -> list[RejectGroup]:
        """Return the largest groups of this source's rejects, largest first."""
        rows = self.con.execute(
            f"""
            SELECT field, arg_min(reason, line), count(*) AS n, min(line) AS first
            FROM {_STAGE_REJECTS} GROUP BY field, {_GROUP_KEY} ORDER BY n DESC, first LIMIT ?
            """, [limit],
        ).fetchall()
        return [RejectGroup(str(f), str(r), int(n), int(first)) for f, r, n, first in rows]

    def _source_raw(self, raw_rows: Callable[[list[int]], dict[int, str]]) -> None:
        lines = [int(r[0]) for r in self.con.execute(f"SELECT line_no FROM {_DUPS}").fetchall()]
        found = raw_rows(lines)
        if not found:
            return
        table = pa.table({"line_no": pa.array(list(found), pa.int64()),
                          "raw": pa.array(list(found.values()), pa.string())})
        self.con.register(_BATCH, table)
        try:
            self.con.execute(f"UPDATE {_DUPS} SET raw = b.raw FROM {_BATCH} b "
                             f"WHERE {_DUPS}.line_no = b.line_no")
        finally:
            self.con.unregister(_BATCH)

    def commit(self) -> None:
        """Commit the source's transaction."""
        self.con.commit()

    def _count(self, name: str) -> int:
        row = self.con.execute(f"SELECT count(*) FROM {name}").fetchone()
        return int(row[0]) if row else 0

    def _insert(self, target: str, rows: pa.Table) -> None:
        self.con.register(_BATCH, rows)
        try:
            self.con.execute(f"INSERT INTO {target} BY NAME SELECT * FROM {_BATCH}")
        finally:
            self.con.unregister(_BATCH)
