"""Adapters from source formats to canonical tables."""

from __future__ import annotations

from pathlib import Path

from traderseg.errors import ConfigError
from traderseg.ingest.adapters.base import Adapter, Context
from traderseg.ingest.adapters.canonical import CanonicalAdapter
from traderseg.ingest.sources import table_for

__all__ = ["Adapter", "CanonicalAdapter", "Context", "make_adapter"]


def make_adapter(format: str, path: Path, *, table: str | None = None,
                 mapping: str | Path | None = None, columns: list[str] | None = None) -> Adapter:
    """Adapter for one source file.

    Parameters
    ----------
    format : str
        ``canonical``, ``deribit``, ``binance`` or ``hyperliquid``.
    path : Path
        The source file (its name tells the table in the canonical format).
    table : str, optional
        Canonical table, overriding the name-based guess (canonical format only).
    mapping : path, optional
        Mapping file; when given, the generic mapped import is used whatever ``format``.
    columns : list of str, optional
        Source columns, to tell the table of a canonical file whose name does not.
    """
    if mapping is not None:
        from traderseg.ingest.mapping import MappingAdapter, load_mapping

        return MappingAdapter(load_mapping(mapping))
    if format == "canonical":
        return CanonicalAdapter(table_for(path, table, columns))
    if table not in (None, "fills"):
        raise ConfigError(f"format {format!r} only produces fills, not {table!r}")
    if format == "deribit":
        from traderseg.ingest.adapters.deribit import DeribitAdapter

        return DeribitAdapter()
    if format == "binance":
        from traderseg.ingest.adapters.binance import BinanceAdapter

        return BinanceAdapter()
    if format == "hyperliquid":
        from traderseg.ingest.adapters.hyperliquid import HyperliquidAdapter

        return HyperliquidAdapter()
    raise ConfigError(f"unknown format {format!r}")
