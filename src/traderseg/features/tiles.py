"""Daily tiles kept in the store: per (account, UTC day) measure states.

``ingest`` keeps them current in the same transaction as the fills it stores: the tiles of
every (account, day) the run touched are recomputed from the fills of those account-days,
so a refresh costs the new fills' days, not the history. :func:`rebuild` recomputes all
of them. A tile set is *current* when its version (a digest of the measure declarations)
matches and it was built over exactly the fills the store holds (row count and a
fingerprint of the columns the measures read, so fills changed by anything but ingest are
noticed); otherwise the features are computed from the fills and the reason is logged.

Tables: ``tiles_day`` (scalar measures and paired legs), ``tiles_map_{name}`` (per-key
maps), ``tiles_sketch_{name}`` (sketch buckets) and ``tiles_meta``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

import duckdb

from traderseg.features.expr import US_PER_DAY
from traderseg.features.measures import MEASURE_SET, MEASURES_VERSION
from traderseg.features.windows import day_number

if TYPE_CHECKING:
    from traderseg.features import batch

logger = logging.getLogger(__name__)

TILES_LAYOUT = "2"
"""Storage layout of the tiles (2: counts stored as BIGINT, not the HUGEINT an integer SUM
gives in DuckDB, which made every merge of them about 20 times slower)."""
TILES_VERSION = (
    MEASURES_VERSION + "-" + hashlib.sha256(repr(MEASURE_SET).encode()).hexdigest()[:12]
    + "-" + TILES_LAYOUT
)
META = "tiles_meta"
_SRC = "_tile_source"
_TOUCHED = "_tile_touched"
_OLD = "_tile_touched_before"


def table_names() -> dict[str, str]:
    """Store table of each tile part (``day``, ``map:NAME``, ``sketch:NAME``)."""
    out = {"day": "tiles_day"}
    for m in MEASURE_SET.maps:
        out[f"map:{m.name}"] = f"tiles_map_{m.name}"
    for s in MEASURE_SET.sketches:
        out[f"sketch:{s.name}"] = f"tiles_sketch_{s.name}"
    return out


def _tile_sql(con: duckdb.DuckDBPyConnection, source: str) -> dict[str, str]:
    """Compile each tile part to SQL over the fills relation ``source``.

    The SQL depends only on the relation's name and column types: it is compiled once for
    each and kept (:func:`~traderseg.features.sqlcache.cached_text`, in memory and between
    runs), so an ingest that finds it there loads no compiler.
    """
    from traderseg.features import sqlcache

    schema = tuple((str(r[0]), str(r[1])) for r in con.execute(f"DESCRIBE {source}").fetchall())

    def compile_parts() -> str:
        import ibis

        from traderseg.features import batch

        fills = ibis.duckdb.from_connection(con).table(source)
        t = batch.tiles_from_fills(ibis.table(fills.schema(), name=source))
        parts = {"day": t.day}
        parts.update({f"map:{k}": v for k, v in t.maps.items()})
        parts.update({f"sketch:{k}": v for k, v in t.sketches.items()})
        return json.dumps({k: str(ibis.to_sql(v, dialect="duckdb")) for k, v in parts.items()})

    key = sqlcache.cache_key("tiles", source, schema)
    return dict(json.loads(sqlcache.cached_text(key, compile_parts)))


def day_sql(ts: str) -> str:
    """DuckDB SQL of the UTC day number (days since 1970-01-01) of timestamp ``ts``."""
    return f"CAST(FLOOR(epoch_us({ts}) / {US_PER_DAY}) AS BIGINT)"


def touched_sql(table: str) -> str:
    """Select the distinct (account_id, day) pairs of the fills in ``table``."""
    return f"SELECT DISTINCT account_id, {day_sql('ts')} AS day FROM {table}"


def _fills_rows(con: duckdb.DuckDBPyConnection) -> int:
    row = con.execute("SELECT count(*) FROM fills").fetchone()
    return int(row[0]) if row else 0


def fingerprint(con: duckdb.DuckDBPyConnection, relation: str = "fills") -> str:
    """Order-free digest of the fills columns the measures read (count and xor of row hashes).

    It changes whenever a row the tiles summarise is added, removed or altered, whatever
    wrote it; computing it is one scan of those columns. The digest of a union of disjoint
    row sets is :func:`combine_fingerprints` of theirs, so an ingest that only adds rows
    digests the added rows alone.
    """
    cols = ", ".join(c for c in MEASURE_SET.read_columns())
    row = con.execute(f"SELECT count(*), bit_xor(hash({cols})) FROM {relation}").fetchone()
    return f"{int(row[0]) if row else 0}:{(row[1] or 0) if row else 0}"


def combine_fingerprints(a: str, b: str) -> str:
    """Return the fingerprint of the union of two disjoint row sets, from theirs."""
    (na, xa), (nb, xb) = (tuple(int(p) for p in f.split(":")) for f in (a, b))
    return f"{na + nb}:{xa ^ xb}"


def _meta(con: duckdb.DuckDBPyConnection) -> tuple[str, int, str] | str:
    """Read the tiles' (version, fills_rows, fingerprint), or say why none can be used."""
    names = {r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
    ).fetchall()}
    if META not in names or not set(table_names().values()) <= names:
        return "the store has no tiles"
    meta_cols = {r[0] for r in con.execute(
        f"SELECT column_name FROM information_schema.columns WHERE table_name = '{META}'"
    ).fetchall()}
    if "fingerprint" not in meta_cols:
        return "the tiles were built by an earlier version"
    row = con.execute(f"SELECT version, fills_rows, fingerprint FROM {META}").fetchone()
    if row is None:
        return "the store has no tiles"
    if row[0] != TILES_VERSION:
        return f"the tiles were built by measures {row[0]}, not {TILES_VERSION}"
    return str(row[0]), int(row[1]), str(row[2])


def status(con: duckdb.DuckDBPyConnection) -> tuple[bool, str]:
    """Whether the store's tiles are current, and why not."""
    meta = _meta(con)
    if isinstance(meta, str):
        return False, meta
    rows = _fills_rows(con)
    if meta[1] != rows:
        return False, f"the tiles cover {meta[1]:,} fills, the store holds {rows:,}"
    if meta[2] != fingerprint(con):
        return False, "the fills changed after the tiles were built (not through ingest)"
    return True, "current"


def _write_meta(con: duckdb.DuckDBPyConnection, digest: str | None = None) -> None:
    con.execute(f"CREATE OR REPLACE TABLE {META} (version VARCHAR, fills_rows BIGINT, "
                "fingerprint VARCHAR, built_at TIMESTAMPTZ)")
    con.execute(f"INSERT INTO {META} VALUES (?, ?, ?, now())",
                [TILES_VERSION, _fills_rows(con), digest or fingerprint(con)])


def rebuild(con: duckdb.DuckDBPyConnection) -> int:
    """Recompute every tile from the fills; returns the number of day tiles."""
    con.execute("SET TimeZone = 'UTC'")
    sql = _tile_sql(con, "fills")
    for part, table in table_names().items():
        con.execute(f"CREATE OR REPLACE TABLE {table} AS {sql[part]}")
    _write_meta(con)
    row = con.execute("SELECT count(*) FROM tiles_day").fetchone()
    return int(row[0]) if row else 0


def refresh(con: duckdb.DuckDBPyConnection, touched_sql: str, *, rows_before: int,
            added: str | None = None) -> None:
    """Recompute the tiles of the (account_id, day) pairs selected by ``touched_sql``.

    Call inside the transaction that stored the new fills; ``rows_before`` is the fills
    count before them. Tiles that were not current before are rebuilt whole. ``added``
    names a relation holding exactly the rows added (with the fills' columns): the new
    fingerprint then comes from the old one and theirs instead of a scan of every fill.
    """
    before = _meta(con)
    ok, why = _current_over(before, rows_before)
    if not ok:
        logger.info("rebuilding the daily tiles: %s", why)
        rebuild(con)
        return
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_TOUCHED} AS {touched_sql}")
    cols = ", ".join(MEASURE_SET.read_columns())

    def stored(days: str, lo: int, hi: int) -> str:
        # a literal time range besides the join, so the scan skips the row groups of other days
        return (f"SELECT {cols} FROM fills f SEMI JOIN {days} t ON f.account_id = t.account_id "
                f"AND {day_sql('f.ts')} = t.day WHERE f.ts >= to_timestamp({lo * 86400}) "
                f"AND f.ts < to_timestamp({hi * 86400})")

    # the account-days whose tiles are replaced: with ``added``, only those that had a tile
    # before (an account-day without one held no fills: the added rows are all of it)
    old = _TOUCHED
    if added is not None:
        old = _OLD
        con.execute(f"CREATE OR REPLACE TEMP TABLE {_OLD} AS SELECT t.* FROM {_TOUCHED} t "
                    f"SEMI JOIN tiles_day d ON d.account_id = t.account_id AND d.day = t.day")
    span = con.execute(f"SELECT min(day), max(day) FROM {old}").fetchone()
    any_old = span is not None and span[0] is not None
    lo, hi = (int(span[0]), int(span[1]) + 1) if span is not None and any_old else (0, 0)
    if added is None:
        source = stored(_TOUCHED, lo, hi)
    elif any_old:
        source = (f"{stored(_OLD, lo, hi)} UNION ALL SELECT {cols} FROM {added} a ANTI JOIN "
                  f"{_OLD} t ON a.account_id = t.account_id AND {day_sql('a.ts')} = t.day")
    else:
        source = f"SELECT {cols} FROM {added}"
    con.execute(f"CREATE OR REPLACE TEMP VIEW {_SRC} AS {source}")
    sql = _tile_sql(con, _SRC)
    for part, table in table_names().items():
        if any_old:
            con.execute(
                f"DELETE FROM {table} USING {old} t "
                f"WHERE {table}.account_id = t.account_id AND {table}.day = t.day"
            )
        con.execute(f"INSERT INTO {table} {sql[part]}")
    con.execute(f"DROP VIEW {_SRC}")
    con.execute(f"DROP TABLE IF EXISTS {_OLD}")
    con.execute(f"DROP TABLE {_TOUCHED}")
    digest = None
    if added is not None and not isinstance(before, str):  # current before: checked above
        digest = combine_fingerprints(before[2], fingerprint(con, added))
    _write_meta(con, digest)


def _current_over(meta: tuple[str, int, str] | str, rows_before: int) -> tuple[bool, str]:
    """Tell whether tiles of metadata ``meta`` covered the ``rows_before`` fills of a store.

    Used before a load's refresh: the new fills are in the store already, so the check is
    the row count the tiles were built over, not a fingerprint.
    """
    if isinstance(meta, str):
        return False, meta
    if meta[1] != rows_before:
        return False, f"the tiles covered {meta[1]:,} fills, the store held {rows_before:,}"
    return True, "current"


def stored_schemas(con: duckdb.DuckDBPyConnection) -> tuple[tuple[str, str, str], ...]:
    """(table, column, type) of every tile table in the store, in order."""
    names = sorted(table_names().values())
    rows = con.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_catalog = current_database() AND table_schema = 'main' "
        "AND table_name IN (SELECT unnest(?)) "
        "ORDER BY table_name, ordinal_position", [names]).fetchall()
    return tuple((str(t), str(c), str(d)) for t, c, d in rows)


def tile_tables(backend: Any, cutoff: datetime) -> batch.Tiles:
    """Return the stored tiles of the days before the cutoff's day (check :func:`status`)."""
    from traderseg.features import batch

    names = table_names()
    day = day_number(cutoff.date())
    ref = batch.tiles_from_fills(backend.table("fills"))
    schemas = {"day": ref.day.schema()}
    schemas.update({f"map:{k}": v.schema() for k, v in ref.maps.items()})
    schemas.update({f"sketch:{k}": v.schema() for k, v in ref.sketches.items()})

    def part(key: str) -> Any:
        # the engine may widen integer sums when it stores them: read back as declared
        t = backend.table(names[key]).cast(schemas[key])
        return t.filter(t.day < day)

    day_part = part("day")
    return batch.Tiles(
        day_part,
        {m.name: part(f"map:{m.name}") for m in MEASURE_SET.maps},
        {s.name: part(f"sketch:{s.name}") for s in MEASURE_SET.sketches},
        day_part.select("account_id", "day", *batch.day_sums()),
    )

