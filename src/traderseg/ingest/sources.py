"""Which files a run reads, and which canonical table each one holds."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from traderseg.errors import ConfigError, DataError
from traderseg.ingest.readers import SUFFIXES
from traderseg.schema import REJECTS, TABLES, Table

LOADABLE = {name: t for name, t in TABLES.items() if t is not REJECTS}


def expand(paths: Iterable[str | Path]) -> list[Path]:
    """Files named by ``paths``; a directory contributes its data files, sorted, recursively.

    Raises
    ------
    DataError
        When a path does not exist or a directory holds no readable file.
    """
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(
                f for f in p.rglob("*")
                if f.is_file() and f.suffix.lower() in SUFFIXES
                and not any(part.startswith(".") for part in f.relative_to(p).parts)
            )
            if not found:
                raise DataError(f"{p}: directory holds no CSV, Parquet or JSON file")
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            raise DataError(f"{p}: no such file or directory")
    return out


def table_for(path: Path, explicit: str | None, columns: list[str] | None = None) -> Table:
    """Canonical table of a file: ``explicit`` if given, else from its name, else its columns.

    ``accounts.parquet``, ``fills-2024.csv`` and ``fills/part-0.parquet`` are recognised by
    name. A file whose name does not tell is matched on its ``columns``: the one table whose
    required columns are all present (the most specific one when several are).

    Raises
    ------
    ConfigError
        When neither the name nor the columns tell the table.
    """
    if explicit is not None:
        return table_named(explicit)
    for name in (path.name.split(".")[0], path.parent.name):
        low = name.lower()
        for tname, table in LOADABLE.items():
            if low == tname or low.startswith((tname + "-", tname + "_")):
                return table
    if columns:
        inferred = table_from_columns(columns)
        if inferred is not None:
            return inferred
    raise ConfigError(
        f"{path}: cannot tell which table it holds from its name or its columns; name the file "
        f"or folder after one of {', '.join(LOADABLE)} or pass --table"
    )


def table_from_columns(columns: list[str]) -> Table | None:
    """Return the table whose required columns are all in ``columns`` (``None``: none, a tie).

    When several tables fit, the one with the most required columns wins (a fills export
    also holds the three required columns of ``market``), unless two fit equally well.
    """
    have = set(columns)
    fits = sorted(((len(t.required), t) for t in LOADABLE.values()
                   if t.required and set(t.required) <= have), key=lambda x: -x[0])
    if not fits or (len(fits) > 1 and fits[0][0] == fits[1][0]):
        return None
    return fits[0][1]


def table_named(name: str) -> Table:
    """Return the loadable canonical table called ``name``."""
    try:
        return LOADABLE[name]
    except KeyError:
        expected = ", ".join(LOADABLE)
        raise ConfigError(f"unknown table {name!r}; expected one of {expected}") from None
