"""Checks of the output paths given on the command line, before any work is done."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from traderseg.errors import ConfigError

# file name suffixes and the format they promise; an output named for another format than
# the one a command writes is refused (a file name without a known suffix is accepted)
_SUFFIX_FORMATS = {
    ".parquet": "Parquet", ".pq": "Parquet", ".csv": "CSV", ".tsv": "TSV", ".txt": "text",
    ".json": "JSON", ".jsonl": "JSON lines", ".ndjson": "JSON lines", ".xlsx": "Excel",
    ".xls": "Excel", ".html": "HTML", ".htm": "HTML", ".yaml": "YAML", ".yml": "YAML",
    ".duckdb": "DuckDB", ".db": "database", ".arrow": "Arrow", ".feather": "Arrow",
}
_FORMAT_SUFFIX = {"Parquet": ".parquet", "CSV": ".csv", "HTML": ".html"}
PARQUET = ("Parquet",)
CSV = ("CSV",)
PARQUET_OR_CSV = ("Parquet", "CSV")  # a name without a known suffix: Parquet
CSV_OR_PARQUET = ("CSV", "Parquet")  # a name without a known suffix: CSV
HTML = ("HTML",)


def write_frame(frame: Any, out: Path, writes: tuple[str, ...]) -> None:
    """Write ``frame`` as Parquet or CSV, as its name says (:func:`check_format` ran first).

    A name without a known suffix gets the first of ``writes``.
    """
    named = _SUFFIX_FORMATS.get(out.suffix.lower())
    if not out.parent.exists():  # removed while the command ran
        raise ConfigError(f"{out}: folder {out.parent} does not exist")
    if (named or writes[0]) == "Parquet":
        frame.to_parquet(out, index=False)
    else:
        frame.to_csv(out, index=False, lineterminator="\n")


def check_format(path: Path, option: str, writes: tuple[str, ...] = PARQUET) -> None:
    """Refuse an output whose name promises another format than the command ``writes``.

    Raises
    ------
    ConfigError
        Naming the option, the path, the format its name promises and the one written.
    """
    named = _SUFFIX_FORMATS.get(path.suffix.lower())
    if named is not None and named not in writes:
        names = " or ".join(f"{f} ({_FORMAT_SUFFIX[f]})" for f in writes)
        raise ConfigError(f"{option} {path}: the name is of a {named} file, but this writes "
                          f"{names}")


def check_out_file(path: Path, option: str, *, overwrite: bool = False,
                   writes: tuple[str, ...] = PARQUET) -> None:
    """Refuse an output file that is a directory, sits in a missing folder, or exists.

    Parameters
    ----------
    path : Path
        The output file.
    option : str
        The option that named it (``--out``), for the message.
    overwrite : bool
        Allow replacing an existing file.
    writes : tuple of str
        The formats the command writes (:func:`check_format`).

    Raises
    ------
    ConfigError
        Naming the option, the path and what is wrong.
    """
    check_out_path(path, option, writes=writes)
    if path.exists() and not overwrite:
        raise ConfigError(f"{option} {path}: file exists; pass --overwrite to replace it")


def check_out_path(path: Path | None, option: str, *, makes_folder: bool = False,
                   writes: tuple[str, ...] = PARQUET) -> None:
    """Refuse an output file that is a directory or sits in a missing folder (None: none).

    For the outputs a command replaces when they exist. ``makes_folder``: the command
    creates a missing folder when it writes, so only a folder that is a file is refused.
    A name of another format than ``writes`` is refused too (:func:`check_format`).

    Raises
    ------
    ConfigError
        Naming the option, the path and what is wrong.
    """
    if path is None:
        return
    if path.is_dir():
        raise ConfigError(f"{option} {path}: is a directory; give a file name")
    check_format(path, option, writes)
    up = next((p for p in path.parents if p.exists()), None)
    if up is not None and not up.is_dir():
        raise ConfigError(f"{option} {path}: folder {up} is not a folder")
    if not makes_folder and not path.parent.exists():
        raise ConfigError(f"{option} {path}: folder {path.parent} does not exist")


def check_out_dataset(path: Path, option: str, *, overwrite: bool = False) -> None:
    """Refuse an output dataset (a Parquet folder written by Spark) that exists or has no folder.

    With ``overwrite`` an existing file or folder is accepted (the writer replaces it).

    Raises
    ------
    ConfigError
        Naming the option, the path and what is wrong.
    """
    if not path.parent.exists():
        raise ConfigError(f"{option} {path}: folder {path.parent} does not exist")
    if path.exists() and not overwrite:
        raise ConfigError(f"{option} {path}: exists; pass --overwrite to replace it")
