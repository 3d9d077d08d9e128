"""Canonical format: files already in the column names and meaning of :mod:`traderseg.schema`.

This is what the simulator writes (Parquet with the canonical Arrow schemas). CSV and JSON
files with the canonical column names work too: values are read from text, timestamps as
ISO 8601 or epoch numbers (unit guessed from the size, see
:func:`traderseg.ingest.coerce.as_timestamp`). Columns that are not canonical are ignored.
"""

from __future__ import annotations

import pyarrow as pa

from traderseg.ingest.adapters.base import Adapter, Context, build, read_as
from traderseg.ingest.validate import Problems
from traderseg.schema import Table


class CanonicalAdapter(Adapter):
    """Read a canonical table as is, converting types where the file stored text.

    Parameters
    ----------
    table : traderseg.schema.Table
        Canonical table the source holds.
    """

    name = "canonical"

    def __init__(self, table: Table) -> None:
        self.table = table
        self.required = tuple(table.required)

    def convert(self, raw: pa.Table, ctx: Context, problems: Problems) -> pa.Table:
        """Return the canonical batch, with unreadable values added to ``problems``."""
        cols = {
            c.name: read_as(raw, c.name, c.type, problems)
            for c in self.table.columns
            if c.name in raw.column_names
        }
        return build(self.table, raw.num_rows, cols)
