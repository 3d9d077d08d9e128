"""One fill as text fields and back: the encoding of the live stream (Redis and JSONL).

Declared once from the canonical ``fills`` columns (:data:`traderseg.schema.FILLS`), so
the simulator's live mode and the stream consumer cannot disagree:

* timestamps as ISO-8601 UTC with microseconds, ``2024-01-10T13:05:59.657964Z``;
* floats as ``repr`` (the shortest text that reads back to the same float);
* booleans as ``true`` / ``false``;
* strings as they are;
* nulls (``None``, and NaN, which the project reads as unknown) are omitted.

A JSONL line of the live mode is ``json.dumps(encode_fill(fill))``: an object of strings.

A Redis entry holds one fill (its fields are the encoded columns) or, *packed*, several: a
single field :data:`PACKED_FIELD` whose value is their JSONL lines joined by newlines, in
order (:func:`encode_packed`). Packed entries cost the server and the consumer one string
for many fills instead of two per column of each fill.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from traderseg.errors import SchemaError
from traderseg.schema import FILLS

_BOOLS = {"true": True, "false": False}


class FillDecodeError(SchemaError):
    """A field of an encoded fill cannot be read.

    Attributes
    ----------
    field : str
        The field (``*`` for the message as a whole).
    reason : str
        Why, with the offending value.
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"field {field!r}: {reason}")
        self.field = field
        self.reason = reason


def _encode_ts(value: Any) -> str:
    if not isinstance(value, datetime):
        raise SchemaError(f"expected a datetime, got {type(value).__name__}")
    offset = value.utcoffset()  # naive times are UTC throughout the project
    if offset:
        value = value - offset
    # YYYY-MM-DDTHH:MM:SS.ffffff, then any offset (now +00:00) replaced by Z
    return value.isoformat(timespec="microseconds")[:26] + "Z"


def _encode_float(value: Any) -> str:
    return repr(float(value))


def _encode_bool(value: Any) -> str:
    return "true" if value else "false"


def _decode_ts(text: str) -> datetime:
    when = datetime.fromisoformat(text)
    if when.tzinfo is None:
        raise ValueError("a time without a UTC offset")
    return when.astimezone(UTC)


def _decode_bool(text: str) -> bool:
    return _BOOLS[text]


def _codec(typ: pa.DataType) -> tuple[Callable[[Any], str], Callable[[str], Any], str]:
    """Return the encoder, decoder and the description of a readable value of a type."""
    if pa.types.is_timestamp(typ):
        return _encode_ts, _decode_ts, "an ISO-8601 time with offset"
    if pa.types.is_floating(typ):
        return _encode_float, float, "a number"
    if pa.types.is_boolean(typ):
        return _encode_bool, _decode_bool, "true or false"
    return str, str, "text"


_CODECS = {c.name: _codec(c.type) for c in FILLS.columns}
_ENCODERS = tuple((name, codec[0]) for name, codec in _CODECS.items())
_REQUIRED = tuple(FILLS.required)


def encode_fill(fill: Mapping[str, Any]) -> dict[str, str]:
    """Encode one fill as text fields (canonical columns only, nulls omitted).

    Parameters
    ----------
    fill : Mapping
        A canonical fill (column name to Python value); keys that are not canonical
        columns (such as the store's ``source``) are left out.

    Returns
    -------
    dict of str to str
        Fields in the order of the canonical columns.

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> encode_fill({"fill_id": "f1", "ts": datetime(2024, 1, 10, 13, 5, tzinfo=UTC),
    ...              "qty": 0.1, "is_maker": False, "strike": None})
    {'fill_id': 'f1', 'ts': '2024-01-10T13:05:00.000000Z', 'qty': '0.1', 'is_maker': 'false'}
    """
    out: dict[str, str] = {}
    get = fill.get
    for name, enc in _ENCODERS:
        value = get(name)
        if value is not None and value == value:  # None and NaN are null
            out[name] = enc(value)
    return out


PACKED_FIELD = "fills"
"""The one field of a packed Redis entry: the JSONL lines of its fills."""


def encode_packed(fills: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    r"""Encode several fills as the fields of one packed stream entry.

    Examples
    --------
    >>> encode_packed([{"fill_id": "f1", "qty": 0.1}, {"fill_id": "f2", "qty": 0.2}])
    {'fills': '{"fill_id": "f1", "qty": "0.1"}\n{"fill_id": "f2", "qty": "0.2"}'}
    """
    return {PACKED_FIELD: "\n".join(json.dumps(encode_fill(f)) for f in fills)}


def packed_lines(fields: Mapping[str, str] | Mapping[bytes, bytes]) -> list[str] | None:
    """Return the JSONL lines of a packed entry's fields (None when it holds one fill)."""
    value = fields.get(PACKED_FIELD)  # type: ignore[call-overload]
    if value is None:
        value = fields.get(PACKED_FIELD.encode())  # type: ignore[call-overload]
    if value is None:
        return None
    return _text(value).rstrip("\n").split("\n")


def _text(value: str | bytes) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def decode_fill(fields: Mapping[str, str] | Mapping[bytes, bytes]) -> dict[str, Any]:
    """Decode text fields (as :func:`encode_fill` wrote them) into a canonical fill.

    Parameters
    ----------
    fields : Mapping
        Field name to text, as ``str`` or as the ``bytes`` a Redis client returns.

    Returns
    -------
    dict
        Every canonical column, ``None`` where the field was absent.

    Raises
    ------
    FillDecodeError
        Naming the field: not a canonical column, a required field missing, or a value
        that cannot be read (quoted).

    Examples
    --------
    >>> decode_fill({"fill_id": "f1", "ts": "2024-01-10T13:05:00.000000Z",
    ...              "account_id": "a", "instrument": "BTC-PERPETUAL", "underlying": "BTC",
    ...              "kind": "perp", "side": "buy", "qty": "0.1", "price": "42000.0",
    ...              "notional_usd": "4200.0", "fee_usd": "2.1", "is_maker": "false"})["qty"]
    0.1
    """
    out: dict[str, Any] = dict.fromkeys(_CODECS)
    for key, raw in fields.items():
        name = _text(key)
        codec = _CODECS.get(name)
        if codec is None:
            raise FillDecodeError(name, "not a canonical fill column")
        try:
            text = _text(raw)
            out[name] = codec[1](text)
        except (ValueError, KeyError, UnicodeDecodeError):
            got = _text_or_repr(raw)
            raise FillDecodeError(name, f"expected {codec[2]}, got {got!r}") from None
    for name in _REQUIRED:
        if out[name] is None:
            raise FillDecodeError(name, "required field missing")
    return out


def _text_or_repr(raw: str | bytes) -> str:
    try:
        return _text(raw)[:80]
    except UnicodeDecodeError:
        return repr(raw)[:80]
