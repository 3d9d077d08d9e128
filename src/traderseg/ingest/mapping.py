"""Generic CSV / Parquet / JSON import driven by a YAML mapping file.

A mapping file names the canonical table and, for each canonical column, where its value
comes from::

    table: fills                     # canonical table (default: fills)
    columns:
      fill_id: trade_no              # short form: the source column
      ts: {column: time, format: ms} # s | ms | us | ns | iso | a strftime pattern
      side: {column: dir, map: {B: buy, S: sell}}
      qty: {column: size, scale: 0.001}
      price: px
      notional_usd: {column: size, times: px, scale: 0.001}
      fee_usd: {column: fee, negate: true}
      is_maker: {column: liquidity, map: {M: true, T: false}}
      kind: {const: perp}
      underlying: {column: symbol, default: BTC}

Options of a column entry: ``column`` or ``const`` (exactly one); ``map`` (source value ->
value; a value missing from the map rejects the row); ``format`` (timestamps);
``scale`` (multiply), ``times`` (multiply by another source column), ``negate`` (flip the
sign) for numbers; ``default`` (used where the source is empty). Every required canonical
column must be mapped, except ``account_id`` when the run gives ``--account-id``. Any
other key is an error naming it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from traderseg.errors import ConfigError
from traderseg.ingest.adapters.base import Adapter, Context, build, column, read_as, strings
from traderseg.ingest.coerce import TIME_UNITS, as_float, as_string, present
from traderseg.ingest.sources import table_named
from traderseg.ingest.validate import Problems
from traderseg.schema import Table

logger = logging.getLogger(__name__)

_TOP_KEYS = {"table", "columns", "description"}
_ENTRY_KEYS = {"column", "const", "map", "format", "scale", "times", "negate", "default"}


@dataclass(frozen=True)
class ColumnRule:
    """How one canonical column is filled."""

    target: str
    column: str | None = None
    const: Any = None
    map: dict[str, Any] | None = None
    format: str = "auto"
    scale: float | None = None
    times: str | None = None
    negate: bool = False
    default: Any = None


@dataclass(frozen=True)
class Mapping:
    """A parsed mapping file."""

    source: str
    table: Table
    rules: dict[str, ColumnRule] = field(default_factory=dict)

    @property
    def source_columns(self) -> tuple[str, ...]:
        """Return the source columns the mapping reads."""
        cols: list[str] = []
        for r in self.rules.values():
            cols.extend(c for c in (r.column, r.times) if c is not None and c not in cols)
        return tuple(cols)


def load_mapping(path: str | Path) -> Mapping:
    """Read and check a mapping file.

    Raises
    ------
    ConfigError
        When the file is not valid YAML or a key is unknown, missing or of the wrong type;
        the message names the key.
    """
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"mapping file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"mapping file {path} is not valid YAML: {exc}") from exc
    return parse_mapping(doc, str(path))


def parse_mapping(doc: Any, source: str = "<mapping>") -> Mapping:
    """Check a mapping document (already parsed YAML) and return it as a :class:`Mapping`."""
    if not isinstance(doc, dict):
        raise ConfigError(f"{source}: a mapping file is a YAML mapping with a 'columns' key")
    _check_keys(doc, _TOP_KEYS, source)
    table = table_named(str(doc.get("table", "fills")))
    cols = doc.get("columns")
    if not isinstance(cols, dict) or not cols:
        raise ConfigError(f"{source}: 'columns' must map canonical columns to sources")
    rules = {}
    for target, entry in cols.items():
        key = f"columns.{target}"
        if target not in table.names:
            raise ConfigError(f"{source}: {key}: {target!r} is not a column of {table.name}")
        rules[target] = _rule(str(target), entry, table, f"{source}: {key}")
    return Mapping(source, table, rules)


def _check_keys(doc: dict[Any, Any], allowed: set[str], where: str) -> None:
    unknown = set(doc) - allowed
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(map(str, sorted(unknown)))}; "
                          f"allowed: {', '.join(sorted(allowed))}")


def _rule(target: str, entry: Any, table: Table, where: str) -> ColumnRule:
    if isinstance(entry, str):
        return ColumnRule(target, column=entry)
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected a source column name or a mapping")
    _check_keys(entry, _ENTRY_KEYS, where)
    if ("column" in entry) == ("const" in entry):
        raise ConfigError(f"{where}: give exactly one of 'column' or 'const'")
    col = table.column(target)
    if "column" in entry and not isinstance(entry["column"], str):
        raise ConfigError(f"{where}.column: must be a source column name")
    if "map" in entry and not isinstance(entry["map"], dict):
        raise ConfigError(f"{where}.map: must map source values to values")
    numeric = pa.types.is_floating(col.type) or pa.types.is_integer(col.type)
    for opt in ("scale", "times", "negate"):
        if opt in entry and not numeric:
            raise ConfigError(f"{where}.{opt}: only numeric columns can use {opt!r}")
    if "scale" in entry and not isinstance(entry["scale"], int | float):
        raise ConfigError(f"{where}.scale: must be a number")
    if "negate" in entry and not isinstance(entry["negate"], bool):
        raise ConfigError(f"{where}.negate: must be true or false")
    fmt = str(entry.get("format", "auto"))
    if "format" in entry:
        if not pa.types.is_timestamp(col.type):
            raise ConfigError(f"{where}.format: only timestamp columns take a format")
        if fmt not in TIME_UNITS and fmt not in ("auto", "iso") and "%" not in fmt:
            raise ConfigError(f"{where}.format: {fmt!r} is not s, ms, us, ns, iso or a "
                              "strftime pattern")
    for opt in ("const", "default"):
        if col.allowed and opt in entry and entry[opt] not in col.allowed:
            raise ConfigError(f"{where}.{opt}: {entry[opt]!r} is not one of "
                              f"{', '.join(col.allowed)}")
    mapping = {str(k): v for k, v in entry["map"].items()} if "map" in entry else None
    return ColumnRule(target, column=entry.get("column"), const=entry.get("const"), map=mapping,
                      format=fmt, scale=entry.get("scale"), times=entry.get("times"),
                      negate=bool(entry.get("negate", False)), default=entry.get("default"))


class MappingAdapter(Adapter):
    """Adapter built from a :class:`Mapping`.

    Parameters
    ----------
    mapping : Mapping
        The parsed mapping file.
    """

    name = "mapping"

    def __init__(self, mapping: Mapping) -> None:
        self.mapping = mapping
        self.table = mapping.table
        self.required = mapping.source_columns

    def check_source(self, source: str, columns: list[str] | None, ctx: Context) -> None:
        """Check the mapping covers the table and the file has the mapped columns."""
        for name in self.table.required:
            if name in self.mapping.rules:
                continue
            if name == "account_id" and ctx.account_id is not None:
                continue
            raise ConfigError(f"{self.mapping.source}: columns.{name}: required column of "
                              f"{self.table.name} is not mapped (give a column or a const)")
        super().check_source(source, columns, ctx)

    def convert(self, raw: pa.Table, ctx: Context, problems: Problems) -> pa.Table:
        """Return the canonical batch described by the mapping."""
        n = raw.num_rows
        cols = {t: self._column(raw, r, problems) for t, r in self.mapping.rules.items()}
        if "account_id" in self.table.names and "account_id" not in cols and ctx.account_id:
            cols["account_id"] = pa.array([ctx.account_id] * n, pa.string())
        if "underlying" in cols:  # assets are upper case, as the venue adapters write them
            cols["underlying"] = pc.utf8_upper(cols["underlying"])
        return build(self.table, n, cols)

    def _column(self, raw: pa.Table, rule: ColumnRule, problems: Problems) -> pa.Array:
        typ = self.table.column(rule.target).type
        n = raw.num_rows
        if rule.column is None:
            src: pa.Array = pa.array([rule.const] * n)
        else:
            src = column(raw, rule.column)
        if rule.map is not None:
            src = _apply_map(src, rule, problems)
        if rule.default is not None:
            src = pc.fill_null(pc.cast(src, pa.string()) if src.type != pa.string() else src,
                               str(rule.default))
        key = rule.column or rule.target
        out = read_as(pa.table({key: src}), key, typ, problems, rule.target, unit=rule.format)
        if pa.types.is_floating(typ) or pa.types.is_integer(typ):
            out = self._arith(raw, out, rule, problems, typ)
        return out

    def _arith(self, raw: pa.Table, out: pa.Array, rule: ColumnRule, problems: Problems,
               typ: pa.DataType) -> pa.Array:
        if rule.times is not None:
            other, bad = as_float(column(raw, rule.times))
            problems.add(bad, rule.target, f"cannot read {rule.times!r} as a number")
            out = pc.multiply(pc.cast(out, pa.float64(), safe=False), other)
        if rule.scale is not None:
            out = pc.multiply(pc.cast(out, pa.float64(), safe=False), float(rule.scale))
        if rule.negate:
            out = pc.negate(out)
        return pc.cast(out, typ, safe=False)


def _apply_map(src: pa.Array, rule: ColumnRule, problems: Problems) -> pa.Array:
    text, _ = as_string(src)
    table = rule.map or {}
    values = strings(text)
    out = np.array([table.get(v) if v is not None else None for v in values.tolist()],
                   dtype=object)
    missing = present(text) & np.array([v is not None and v not in table
                                        for v in values.tolist()])
    if missing.any():
        problems.add(missing, rule.target, np.array(
            [f"value {v!r} of {rule.column!r} has no entry in the mapping"
             for v in values.tolist()], dtype=object))
    return pa.array([None if v is None else str(v).lower() if isinstance(v, bool) else str(v)
                     for v in out.tolist()], pa.string())
