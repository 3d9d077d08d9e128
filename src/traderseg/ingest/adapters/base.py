"""What every adapter shares: the run context, the adapter interface and small helpers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from traderseg.errors import ConfigError, SchemaError
from traderseg.ingest.coerce import as_bool, as_float, as_int, as_string, as_timestamp
from traderseg.ingest.instruments import Instrument
from traderseg.ingest.validate import Problems
from traderseg.schema import TS, Table

# Stable coins counted at one US dollar when converting fees and PnL.
USD_LIKE = frozenset({"USD", "USDT", "USDC", "BUSD", "FDUSD", "USDE", "USDH", "DAI"})
F64 = pa.float64()


@dataclass(frozen=True)
class Context:
    """Options of an ingest run that adapters may need.

    Attributes
    ----------
    account_id : str or None
        Account the export belongs to, for venue exports without an account column.
    asset_prices : Mapping[str, float]
        USD prices of assets fees may be charged in (e.g. ``{"BNB": 600.0}``).
    """

    account_id: str | None = None
    asset_prices: Mapping[str, float] = field(default_factory=dict)


class Adapter:
    """Turns source batches into batches of one canonical table.

    Subclasses set :attr:`name`, :attr:`table` and :attr:`required`, and implement
    :meth:`convert`.
    """

    name: str = ""
    table: Table
    required: tuple[str, ...] = ()
    account_columns: tuple[str, ...] = ()
    # whether convert() reads each row's source line (column ``__source_line__``)
    wants_lines: bool = False

    def check_source(self, source: str, columns: list[str] | None, ctx: Context) -> None:
        """Refuse a whole source whose columns cannot make the table.

        ``columns`` is ``None`` for a JSON source without any record: nothing to check.

        Raises
        ------
        SchemaError
            When required source columns are missing (named in the message).
        ConfigError
            When the account cannot be known (no column and no ``account_id``).
        """
        if columns is None:
            return
        missing = [c for c in self.required if c not in columns]
        if missing:
            raise SchemaError(
                f"{source}: missing required column(s) {', '.join(missing)} for format "
                f"{self.name!r} (found: {', '.join(columns) or 'none'})"
            )
        if self.account_columns and ctx.account_id is None and not any(
            c in columns for c in self.account_columns
        ):
            raise ConfigError(
                f"{source}: no account column ({' / '.join(self.account_columns)}); "
                "pass the account the export belongs to (--account-id)"
            )

    def convert(self, raw: pa.Table, ctx: Context, problems: Problems) -> pa.Table:
        """Return the canonical batch for ``raw``, adding conversion problems."""
        raise NotImplementedError


def column(raw: pa.Table, name: str) -> pa.Array:
    """Return column ``name`` of ``raw``, or nulls when absent."""
    if name in raw.column_names:
        arr = raw.column(name)
        return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    return pa.nulls(raw.num_rows, pa.string())


def text(raw: pa.Table, name: str) -> pa.Array:
    """Return source column ``name`` as strings (nulls when absent)."""
    out, _ = as_string(column(raw, name))
    return out


def read_as(raw: pa.Table, name: str, typ: pa.DataType, problems: Problems,
            field_name: str | None = None, unit: str = "auto", tz: str | None = None) -> pa.Array:
    """Convert source column ``name`` to ``typ``; unreadable values become problems.

    ``unit`` and ``tz`` apply to timestamps (see :func:`traderseg.ingest.coerce.as_timestamp`).
    """
    arr = column(raw, name)
    label = field_name or name
    if pa.types.is_timestamp(typ):
        out, bad = as_timestamp(arr, unit, tz=tz, name=name)
        problems.add(bad, label, f"cannot read {name!r} as a timestamp ({unit})")
    elif pa.types.is_floating(typ):
        out, bad = as_float(arr)
        problems.add(bad, label, f"cannot read {name!r} as a number")
    elif pa.types.is_integer(typ):
        out, bad = as_int(arr)
        problems.add(bad, label, f"cannot read {name!r} as an integer")
    elif pa.types.is_boolean(typ):
        out, bad = as_bool(arr)
        problems.add(bad, label, f"cannot read {name!r} as true/false")
    else:
        out, _ = as_string(arr)
    return out


def account_ids(raw: pa.Table, candidates: tuple[str, ...], ctx: Context) -> pa.Array:
    """Return each row's account: the first account column present, else the run's id."""
    for name in candidates:
        if name in raw.column_names:
            ids, _ = as_string(column(raw, name))
            if ctx.account_id is not None:
                ids = pc.fill_null(ids, ctx.account_id)
            return ids
    if ctx.account_id is None:
        raise ConfigError("no account column and no account id given (--account-id)")
    return pa.array([ctx.account_id] * raw.num_rows, pa.string())


def prefixed_ids(prefix: str, *parts: pa.Array) -> pa.Array:
    """Join ``prefix`` and the parts with ``:``; null when any part is null."""
    out = pc.binary_join_element_wise(pa.scalar(prefix), *[pc.cast(p, pa.string()) for p in parts],
                                      ":")
    return out


def build(spec: Table, n: int, cols: dict[str, pa.Array]) -> pa.Table:
    """Assemble a canonical table from converted columns; absent columns are null."""
    unknown = set(cols) - set(spec.names)
    if unknown:
        raise SchemaError(f"not columns of {spec.name}: {', '.join(sorted(unknown))}")
    arrays = []
    for c in spec.columns:
        arr = cols.get(c.name)
        if arr is None:
            arr = pa.nulls(n, c.type)
        elif arr.type != c.type:
            arr = pc.cast(arr, c.type)
        if c.allowed and pa.types.is_string(c.type):
            arr = pc.utf8_lower(arr)  # BUY, Sell: enumerations are read without regard to case
        arrays.append(arr)
    schema = pa.schema([pa.field(c.name, c.type) for c in spec.columns])
    return pa.Table.from_arrays(arrays, schema=schema)


def to_numpy(arr: pa.Array) -> np.ndarray:
    """Return a float column as numpy, nulls as NaN."""
    filled = pc.fill_null(pc.cast(arr, pa.float64()), np.nan)
    return np.asarray(filled.to_numpy(zero_copy_only=False), dtype=float)


def strings(arr: pa.Array) -> np.ndarray:
    """Return a string column as a numpy object array (None for nulls)."""
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=object)


def floats(values: np.ndarray) -> pa.Array:
    """Return a float64 Arrow column from numpy, NaN as null."""
    return pa.array(values, F64, from_pandas=True)


def parse_instruments(names: np.ndarray, parse: Callable[[str], Instrument | None],
                      problems: Problems, hint: str = "") -> list[Instrument | None]:
    """Parse each row's instrument name once per distinct name.

    Names ``parse`` does not recognise are added to ``problems`` (field ``instrument``,
    reason ``unknown instrument 'NAME'`` followed by ``hint``); null names stay None
    without a problem (their own required-field check reports them).
    """
    cache: dict[str, Instrument | None] = {}
    out: list[Instrument | None] = []
    for name in names.tolist():
        if name is None:
            out.append(None)
            continue
        if name not in cache:
            cache[name] = parse(name)
        out.append(cache[name])
    unknown = np.array([n is not None and i is None for n, i in zip(names.tolist(), out,
                                                                    strict=True)])
    if unknown.any():
        reasons = np.array([f"unknown instrument {n!r}{hint}" for n in names.tolist()],
                           dtype=object)
        problems.add(unknown, "instrument", reasons)
    return out


def instrument_values(inst: list[Instrument | None], attr: str) -> np.ndarray:
    """Return attribute ``attr`` of each row's instrument (None where unknown)."""
    return np.array([getattr(i, attr) if i else None for i in inst], dtype=object)


def expiries(inst: list[Instrument | None]) -> pa.Array:
    """Return the expiry of each row's instrument as a timestamp column."""
    return pa.array([i.expiry if i else None for i in inst], TS)


def usd_rate(currency: np.ndarray, underlying: np.ndarray, underlying_usd: np.ndarray,
             ctx: Context) -> np.ndarray:
    """Return the USD value of one unit of each row's currency (NaN when unknown).

    USD-like stable coins count 1; the underlying asset counts at the row's underlying
    price; other assets at the price given in ``ctx.asset_prices``.
    """
    rate = np.full(len(currency), np.nan)
    for cur in {c for c in currency.tolist() if c is not None}:
        rows = currency == cur
        if cur in USD_LIKE:
            rate[rows] = 1.0
        elif cur in ctx.asset_prices:
            rate[rows] = float(ctx.asset_prices[cur])
        match = rows & (underlying == cur)
        rate[match] = underlying_usd[match]
    return rate


def unconvertible(problems: Problems, field_name: str, rate: np.ndarray, amount: np.ndarray,
                  currency: np.ndarray) -> None:
    """Flag rows with an amount in a currency that has no USD rate."""
    bad = np.isnan(rate) & ~np.isnan(amount)
    if bad.any():
        reasons = np.array([f"cannot convert {c!r} to USD (give its price with --asset-price)"
                            for c in currency.tolist()], dtype=object)
        problems.add(bad, field_name, reasons)


def fee_usd(fee: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """Fee in USD; a zero fee is zero whatever its currency."""
    return np.where(fee == 0, 0.0, fee * rate)


def fees_in_usd(fee: np.ndarray, currency: np.ndarray, underlying: np.ndarray,
                underlying_usd: np.ndarray, ctx: Context, problems: Problems) -> np.ndarray:
    """Convert fees to USD (see :func:`usd_rate`), flagging non-zero fees with no rate."""
    rate = usd_rate(currency, underlying, underlying_usd, ctx)
    unconvertible(problems, "fee_usd", rate, np.where(fee == 0, np.nan, fee), currency)
    return fee_usd(fee, rate)
