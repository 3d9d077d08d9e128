"""Validation of streamed fills: the same conversion and contract as ``traderseg ingest``.

A batch of :class:`~traderseg.online.sources.Message` objects becomes a canonical ``fills``
table through the canonical adapter and :func:`traderseg.ingest.validate.validate_table`;
messages that fail go to ``rejects`` with their reference (``FILE:LINE``, ``stdin:LINE`` or
the stream entry id), the field and the reason, and the stream goes on.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa

from traderseg.ingest.adapters.base import Context
from traderseg.ingest.adapters.canonical import CanonicalAdapter
from traderseg.ingest.validate import Problems, validate_table
from traderseg.online.sources import Message
from traderseg.schema import FILLS

_ADAPTER = CanonicalAdapter(FILLS)
_CONTEXT = Context()


@dataclass
class Validated:
    """Accepted fills of a batch and the rejected messages."""

    fills: pa.Table  # canonical fills, in message order
    refs: list[str]  # reference of each accepted fill
    rejects: list[tuple[str, str, str, str | None]]  # (ref, field, reason, raw)


def _column(values: list[Any]) -> pa.Array:
    """Build an Arrow column from message values: typed when they agree, else text."""
    try:  # text, as Redis and CSV-like sources carry every field
        return pa.array(values, pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    present = [v for v in values if v is not None]
    if not present:
        return pa.nulls(len(values), pa.string())
    if all(isinstance(v, str) for v in present):
        return pa.array(values, pa.string())
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if v is None else _text(v) for v in values], pa.string())


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, datetime):
        return v.isoformat()
    return str(v)


def _raw(m: Message) -> str:
    if m.raw is not None:
        return m.raw
    return json.dumps({k: v if isinstance(v, str | int | float | bool) or v is None
                       else _text(v) for k, v in m.fields.items()}, sort_keys=True)


def validate_messages(messages: Sequence[Message], now: datetime) -> Validated:
    """Convert and check a batch of streamed fills.

    Parameters
    ----------
    messages : sequence of Message
        Fills as delivered.
    now : datetime
        Time of the check (fills may not lie in the future).

    Returns
    -------
    Validated
        The accepted canonical fills and the rejects.
    """
    rejects: list[tuple[str, str, str, str | None]] = []
    good = []
    for m in messages:
        err = m.fields.get("__error__")
        if err is not None:
            rejects.append((m.ref, "*", str(err), _raw(m)))
        else:
            good.append(m)
    n = len(good)
    if n == 0:
        return Validated(FILLS.arrow_schema().empty_table(), [], rejects)
    names = [c.name for c in FILLS.columns]
    raw = pa.table({c: _column([m.fields.get(c) for m in good]) for c in names})
    out = validate_raw(raw, [m.ref for m in good], now, raws=lambda i: _raw(good[i]))
    out.rejects[:0] = rejects
    return out


def validate_raw(raw: pa.Table, refs: list[str], now: datetime, *,
                 raws: Any = None) -> Validated:
    """Convert and check a table of fills (text or typed canonical columns).

    ``refs`` names each row for its reject; ``raws(i)`` gives row ``i`` as JSON text (by
    default the row of ``raw``).
    """
    n = raw.num_rows
    rejects: list[tuple[str, str, str, str | None]] = []
    if n == 0:
        return Validated(FILLS.arrow_schema().empty_table(), [], rejects)
    raw = raw.select([c for c in raw.column_names if c in set(FILLS.names)])
    problems = Problems(n)
    canon = _ADAPTER.convert(raw, _CONTEXT, problems)
    validate_table(canon, FILLS, problems, now)
    if problems.bad.any():
        for i in np.flatnonzero(problems.bad):
            text = raws(int(i)) if raws is not None else json.dumps(
                {k: _text(v) for k, v in raw.slice(int(i), 1).to_pylist()[0].items()
                 if v is not None}, sort_keys=True)
            rejects.append((refs[i], str(problems.field[i]), str(problems.reason[i]), text))
        keep = ~problems.bad
        canon = canon.filter(pa.array(keep))
        refs = [r for r, k in zip(refs, keep, strict=True) if k]
    return Validated(canon, list(refs), rejects)
