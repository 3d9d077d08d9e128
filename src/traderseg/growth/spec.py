"""YAML specs validated by pydantic, with errors naming the file, the line and the key.

:func:`load_spec` parses a YAML file while remembering the line of every mapping key and
sequence item, validates it against a pydantic model, and turns the first validation
error into a :class:`traderseg.errors.ConfigError` such as
``audience.yaml:7: select.value_tiers[1]: 'tin' is not one of bronze, silver, gold,
platinum``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from traderseg.errors import ConfigError

M = TypeVar("M", bound=BaseModel)
Loc = tuple[str | int, ...]


def _construct(node: yaml.Node, path: Loc, lines: dict[Loc, int]) -> Any:
    """Build Python values from a composed YAML node, recording each key's line."""
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = yaml.safe_load(yaml.serialize(key_node))
            if key in out:
                raise ConfigError(f"line {key_node.start_mark.line + 1}: key {key!r} is given "
                                  "twice")
            lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = _construct(value_node, (*path, key), lines)
            lines[(*path, key)] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, (*path, i), lines) for i, item in enumerate(node.value)]
    return yaml.safe_load(yaml.serialize(node))


def read_yaml(path: str | Path) -> tuple[Any, dict[Loc, int]]:
    """Parse a YAML file; return its value and the 1-based line of every key and item.

    Raises
    ------
    ConfigError
        The file is missing, unreadable or not YAML (naming the file and line).
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read the file ({exc})") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{p}:{mark.line + 1}" if mark is not None else str(p)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: not valid YAML ({problem})") from None
    lines: dict[Loc, int] = {}
    if node is None:
        return None, lines
    try:
        return _construct(node, (), lines), lines
    except ConfigError as exc:
        raise ConfigError(f"{p}:{str(exc).removeprefix('line ')}") from None


def _where(loc: Loc, lines: dict[Loc, int]) -> int | None:
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


def _dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load_spec(path: str | Path, model: type[M]) -> M:
    """Read and validate a YAML spec file against a pydantic ``model``.

    Parameters
    ----------
    path : str or Path
        The YAML file.
    model : type of pydantic.BaseModel
        The schema (models should forbid unknown keys).

    Returns
    -------
    pydantic.BaseModel
        The validated spec.

    Raises
    ------
    ConfigError
        ``FILE:LINE: key: reason`` for the first problem.
    """
    data, lines = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: the file must hold a mapping of keys, got "
                          f"{type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))
        line = _where(loc, lines)
        key = _dotted(loc) or "(top)"
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        prefix = f"{path}:{line}" if line is not None else str(path)
        raise ConfigError(f"{prefix}: {key}: {msg}") from None
