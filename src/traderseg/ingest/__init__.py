"""Ingest: venue adapters, validation, rejects and an idempotent load into the store.

>>> from traderseg.ingest import ingest  # doctest: +SKIP
>>> report = ingest(["sim/"], "venue.duckdb")  # doctest: +SKIP
"""

from traderseg.ingest.pipeline import FORMATS, IngestReport, SourceReport, ingest

__all__ = ["FORMATS", "IngestReport", "SourceReport", "ingest"]
