"""What a running service holds: per venue its store, model and account book; the keys.

Each venue's store is one DuckDB connection opened at start-up; every request works on its
own cursor of it (DuckDB cursors are safe to use from several threads). Writes of one venue
(control overrides, ingest) take that venue's lock, and an ingest that stored new fills
rebuilds the venue's account book, swapped in whole when ready.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from traderseg.errors import DataError
from traderseg.online.book import AccountBook, build_book
from traderseg.online.tables import ensure_online_tables
from traderseg.service.keys import KeyStore
from traderseg.service.settings import ServiceSettings, VenueStore
from traderseg.store import open_store

logger = logging.getLogger(__name__)


@dataclass
class VenueState:
    """One venue of a running service."""

    name: str
    config: VenueStore
    con: duckdb.DuckDBPyConnection
    book: AccountBook
    lock: threading.Lock = field(default_factory=threading.Lock)
    # the controls table as rows by account, read once and dropped after every write
    _controls: dict[str, dict[str, Any]] | None = field(default=None, repr=False)
    _writes: int = field(default=0, repr=False)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """Return a cursor of the venue's store for one request."""
        return self.con.cursor()

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the venue's write lock; what was read from the store before is re-read after.

        The service is the store's one writer (DuckDB lets one process write a file), so
        every change to the controls passes through here.
        """
        with self.lock:
            try:
                yield
            finally:
                self._writes += 1
                self._controls = None

    def control_row(self, account_id: str) -> dict[str, Any] | None:
        """Return the current ``controls`` row of one account (``None`` before any decision)."""
        rows = self._controls
        if rows is None:
            seen = self._writes
            cur = self.cursor()
            try:
                table = cur.execute("SELECT * FROM controls").to_arrow_table()
            finally:
                cur.close()
            rows = {r["account_id"]: r for r in table.to_pylist()}
            if seen == self._writes:  # no write landed while reading: keep it
                self._controls = rows
        return rows.get(str(account_id))

    def rebuild(self) -> None:
        """Recompute the account book from the store (after new fills)."""
        cur = self.cursor()
        try:
            self.book = build_book(cur, self.config.model, self.config.as_of)
        finally:
            cur.close()


@dataclass
class ServiceState:
    """Every venue of the service and its key file."""

    settings: ServiceSettings
    keys: KeyStore
    venues: dict[str, VenueState]

    @property
    def ready(self) -> bool:
        """Whether every venue's store is open with its book built."""
        return bool(self.venues) and all(v.book is not None for v in self.venues.values())

    def close(self) -> None:
        """Close every store."""
        for venue in self.venues.values():
            venue.con.close()


def open_state(settings: ServiceSettings) -> ServiceState:
    """Open every venue's store, load its model and build its account book.

    Raises
    ------
    DataError
        No venue configured, a missing model folder, or a store that cannot be opened.
    """
    if not settings.venues:
        raise DataError("no venue configured: give at least one venue's store and model")
    venues: dict[str, VenueState] = {}
    try:
        for name, cfg in settings.venues.items():
            if not Path(cfg.model).is_dir():
                raise DataError(f"venue {name}: model folder {cfg.model} not found")
            con = open_store(cfg.db)
            ensure_online_tables(con)
            try:
                book = build_book(con, cfg.model, cfg.as_of)
            except BaseException:
                con.close()
                raise
            venues[name] = VenueState(name, cfg, con, book)
            logger.info("venue %s: %d accounts as of %s", name, len(book), book.as_of)
    except BaseException:
        for v in venues.values():
            v.con.close()
        raise
    return ServiceState(settings, KeyStore(settings.keys_file), venues)
