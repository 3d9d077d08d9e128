"""Checks of the output paths given on the command line, before any work is done."""

from __future__ import annotations

from pathlib import Path

from traderseg.errors import ConfigError


def check_out_file(path: Path, option: str, *, overwrite: bool = False) -> None:
    """Refuse an output file that is a directory, sits in a missing folder, or exists.

    Parameters
    ----------
    path : Path
        The output file.
    option : str
        The option that named it (``--out``), for the message.
    overwrite : bool
        Allow replacing an existing file.

    Raises
    ------
    ConfigError
        Naming the option, the path and what is wrong.
    """
    check_out_path(path, option)
    if path.exists() and not overwrite:
        raise ConfigError(f"{option} {path}: file exists; pass --overwrite to replace it")


def check_out_path(path: Path | None, option: str, *, makes_folder: bool = False) -> None:
    """Refuse an output file that is a directory or sits in a missing folder (None: none).

    For the outputs a command replaces when they exist. ``makes_folder``: the command
    creates a missing folder when it writes, so only a folder that is a file is refused.

    Raises
    ------
    ConfigError
        Naming the option, the path and what is wrong.
    """
    if path is None:
        return
    if path.is_dir():
        raise ConfigError(f"{option} {path}: is a directory; give a file name")
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
