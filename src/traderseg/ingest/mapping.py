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

Options of a column entry: ``column``, ``columns`` (a list, values joined with ``:``) or
``const`` (exactly one); ``line`` (append the row's line in its source, for ids of exports
whose transaction hash repeats on every fill); ``map`` (source value -> value, matched
without regard to case; a value missing from the map rejects the row); ``format`` and ``tz``
(timestamps: unit or pattern, and the IANA time zone of times written without an offset);
``scale`` (multiply), ``times`` (multiply by another source column), ``negate`` (flip the
sign) for numbers; ``default`` (used where the source is empty). Values of enumerated
columns (``side``, ``kind``...) are read without regard to case.

A top-level ``instruments`` entry derives ``kind``, ``underlying`` and the option fields
from instrument names by patterns (see :mod:`traderseg.ingest.patterns`); columns mapped
explicitly win over derived ones. Every required canonical column must be mapped or
derived, except ``account_id`` when the run gives ``--account-id``. Any other key is an
error naming it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from traderseg.errors import ConfigError
from traderseg.ingest.adapters.base import (
    Adapter,
    Context,
    build,
    column,
    expiries,
    instrument_values,
    parse_instruments,
    read_as,
    strings,
)
from traderseg.ingest.coerce import TIME_UNITS, as_float, as_string, present
from traderseg.ingest.patterns import InstrumentPatterns, parse_patterns
from traderseg.ingest.sources import table_named
from traderseg.ingest.validate import Problems
from traderseg.schema import Table

logger = logging.getLogger(__name__)

_TOP_KEYS = {"table", "columns", "description", "instruments"}
_ENTRY_KEYS = {"column", "columns", "const", "line", "map", "format", "tz", "scale", "times",
               "negate", "default"}
# Canonical columns an `instruments` entry derives from a name.
DERIVED = ("underlying", "kind", "option_type", "strike", "expiry")
LINE_COLUMN = "__source_line__"


@dataclass(frozen=True)
class ColumnRule:
    """How one canonical column is filled."""

    target: str
    column: str | None = None
    const: Any = None
    map: dict[str, Any] | None = None
    format: str = "auto"
    columns: tuple[str, ...] = ()
    line: bool = False
    tz: str | None = None
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
    instruments: InstrumentPatterns | None = None

    @property
    def source_columns(self) -> tuple[str, ...]:
        """Return the source columns the mapping reads."""
        cols: list[str] = []
        for r in self.rules.values():
            for c in (r.column, r.times, *r.columns):
                if c is not None and c not in cols:
                    cols.append(c)
        if self.instruments is not None and self.instruments.column is not None:
            if self.instruments.column not in cols:
                cols.append(self.instruments.column)
        return tuple(cols)

    @property
    def instrument_column(self) -> str | None:
        """Source column the instrument patterns read (``None`` without patterns)."""
        if self.instruments is None:
            return None
        if self.instruments.column is not None:
            return self.instruments.column
        rule = self.rules.get("instrument")
        return rule.column if rule is not None else None

    @property
    def uses_lines(self) -> bool:
        """Whether a column is built from the rows' source lines."""
        return any(r.line for r in self.rules.values())


def load_mapping(path: str | Path) -> Mapping:
    """Read and check a mapping file.

    Raises
    ------
    ConfigError
        When the file is not valid YAML or a key is unknown, missing or of the wrong type;
        the message names the key.
    """
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"mapping file {path} is a directory")
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
    patterns = None
    if "instruments" in doc:
        if table.name != "fills":
            raise ConfigError(f"{source}: instruments: only a fills mapping derives "
                              "instrument fields")
        patterns = parse_patterns(doc["instruments"], f"{source}: instruments")
        if patterns.column is None and "instrument" not in rules:
            raise ConfigError(f"{source}: instruments.column: give the source column of the "
                              "names (or map columns.instrument)")
        if patterns.column is None and rules["instrument"].column is None:
            raise ConfigError(f"{source}: instruments.column: columns.instrument is not a "
                              "single source column; name the column here")
    return Mapping(source, table, rules, patterns)


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
    if sum(k in entry for k in ("column", "columns", "const")) != 1:
        raise ConfigError(f"{where}: give exactly one of 'column', 'columns' or 'const'")
    col = table.column(target)
    if "column" in entry and not isinstance(entry["column"], str):
        raise ConfigError(f"{where}.column: must be a source column name")
    many = entry.get("columns", [])
    if "columns" in entry and (not isinstance(many, list) or not many
                               or not all(isinstance(c, str) for c in many)):
        raise ConfigError(f"{where}.columns: must be a list of source column names")
    text_only = not pa.types.is_string(col.type)
    for opt in ("columns", "line"):
        if opt in entry and text_only:
            raise ConfigError(f"{where}.{opt}: only text columns (ids) can use {opt!r}")
    if "line" in entry and not isinstance(entry["line"], bool):
        raise ConfigError(f"{where}.line: must be true or false")
    tz = entry.get("tz")
    if "tz" in entry:
        if not pa.types.is_timestamp(col.type):
            raise ConfigError(f"{where}.tz: only timestamp columns take a time zone")
        _check_zone(tz, f"{where}.tz")
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
    mapping = None
    if "map" in entry:
        mapping = {str(k): v for k, v in entry["map"].items()}
        folded = {k.casefold() for k in mapping}
        if len(folded) < len(mapping):
            raise ConfigError(f"{where}.map: keys differ only by case (matching ignores case)")
        if col.allowed:
            for v in mapping.values():
                if str(v).lower() not in col.allowed:
                    raise ConfigError(f"{where}.map: {v!r} is not one of "
                                      f"{', '.join(col.allowed)}")
    return ColumnRule(target, column=entry.get("column"), const=entry.get("const"), map=mapping,
                      format=fmt, scale=entry.get("scale"), times=entry.get("times"),
                      negate=bool(entry.get("negate", False)), default=entry.get("default"),
                      columns=tuple(many), line=bool(entry.get("line", False)),
                      tz=str(tz) if tz is not None else None)


def _check_zone(tz: Any, where: str) -> None:
    if not isinstance(tz, str):
        raise ConfigError(f"{where}: must be an IANA time zone name such as Asia/Kolkata")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{where}: unknown time zone {tz!r} (use an IANA name such as "
                          "Asia/Kolkata or Europe/Berlin)") from None


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
        self.wants_lines = mapping.uses_lines

    def check_source(self, source: str, columns: list[str] | None, ctx: Context) -> None:
        """Check the mapping covers the table and the file has the mapped columns."""
        derived = DERIVED if self.mapping.instruments is not None else ()
        for name in self.table.required:
            if name in self.mapping.rules or name in derived:
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
        if self.mapping.instruments is not None:
            for name, arr in self._derived(raw, problems).items():
                cols.setdefault(name, arr)
        if "account_id" in self.table.names and "account_id" not in cols and ctx.account_id:
            cols["account_id"] = pa.array([ctx.account_id] * n, pa.string())
        if "underlying" in cols:  # assets are upper case, as the venue adapters write them
            cols["underlying"] = pc.utf8_upper(cols["underlying"])
        return build(self.table, n, cols)

    def _derived(self, raw: pa.Table, problems: Problems) -> dict[str, pa.Array]:
        patterns = self.mapping.instruments
        name_col = self.mapping.instrument_column
        assert patterns is not None and name_col is not None  # checked by parse_mapping
        names = strings(as_string(column(raw, name_col))[0])
        hint = f" (no instruments pattern matches; tried {', '.join(patterns.labels)})"
        inst = parse_instruments(names, patterns.parse, problems, hint)
        return {
            "underlying": pa.array(instrument_values(inst, "underlying"), pa.string()),
            "kind": pa.array(instrument_values(inst, "kind"), pa.string()),
            "option_type": pa.array(instrument_values(inst, "option_type"), pa.string()),
            "strike": pa.array(instrument_values(inst, "strike"), pa.float64()),
            "expiry": expiries(inst),
        }

    def _column(self, raw: pa.Table, rule: ColumnRule, problems: Problems) -> pa.Array:
        typ = self.table.column(rule.target).type
        n = raw.num_rows
        if rule.columns:
            parts = [as_string(column(raw, c))[0] for c in rule.columns]
            src: pa.Array = pc.binary_join_element_wise(*parts, ":")
        elif rule.column is None:
            src = pa.array([rule.const] * n)
        else:
            src = column(raw, rule.column)
        if rule.line:
            lines = pc.cast(column(raw, LINE_COLUMN), pa.string())
            src = pc.binary_join_element_wise(as_string(src)[0], lines, ":")
        if rule.map is not None:
            src = _apply_map(src, rule, problems)
        if rule.default is not None:
            src = pc.fill_null(pc.cast(src, pa.string()) if src.type != pa.string() else src,
                               str(rule.default))
        key = rule.column or rule.target
        out = read_as(pa.table({key: src}), key, typ, problems, rule.target, unit=rule.format,
                      tz=rule.tz)
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
    exact = rule.map or {}
    folded = {k.casefold(): v for k, v in exact.items()}
    values = strings(text)
    found = [None if v is None else exact.get(v, folded.get(v.casefold()))
             for v in values.tolist()]
    out = np.array(found, dtype=object)
    missing = present(text) & np.array([v is not None and f is None
                                        for v, f in zip(values.tolist(), found, strict=True)])
    if missing.any():
        problems.add(missing, rule.target, np.array(
            [f"value {v!r} of {rule.column!r} has no entry in the mapping"
             for v in values.tolist()], dtype=object))
    return pa.array([None if v is None else str(v).lower() if isinstance(v, bool) else str(v)
                     for v in out.tolist()], pa.string())
