"""Row validation of canonical tables, vectorised over a batch.

A :class:`Problems` object collects, for each row of a batch, the first field that failed
and why. Adapters add conversion problems (a price that is not a number, an unknown
instrument); :func:`validate_table` then applies the data contract of
:mod:`traderseg.schema` to the converted table.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from traderseg.ingest.coerce import mask, present
from traderseg.schema import FILLS, MARKET, TRANSFERS, Table

EARLIEST = datetime(2009, 1, 3, tzinfo=UTC)  # the first bitcoin block

# Time columns that record something that already happened (so cannot be in the future).
PAST_COLUMNS = {"ts", "created_at", "churned_at"}


class Problems:
    """First problem (field, reason) of each row of a batch.

    Parameters
    ----------
    n : int
        Number of rows in the batch.
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self.bad = np.zeros(n, dtype=bool)
        self.field = np.full(n, None, dtype=object)
        self.reason = np.full(n, None, dtype=object)

    def add(self, rows: np.ndarray, field: str, reason: str | np.ndarray) -> None:
        """Record ``reason`` for ``field`` on the rows of mask ``rows`` not already bad."""
        new = np.asarray(rows, dtype=bool) & ~self.bad
        if not new.any():
            return
        self.bad |= new
        self.field[new] = field
        self.reason[new] = reason[new] if isinstance(reason, np.ndarray) else reason

    def count(self) -> int:
        """Return the number of rows with a problem."""
        return int(self.bad.sum())


def validate_table(table: pa.Table, spec: Table, problems: Problems, now: datetime) -> None:
    """Check a converted batch against the contract of ``spec``; add what fails.

    Parameters
    ----------
    table : pyarrow.Table
        Batch already converted to the canonical column types (all columns present).
    spec : traderseg.schema.Table
        The canonical table the batch is for.
    problems : Problems
        Accumulator the failures are added to.
    now : datetime
        Time of the run; timestamps of past events may not be later.
    """
    for col in spec.columns:
        arr = table.column(col.name)
        if col.required:
            problems.add(~present(arr), col.name, "missing required value")
        if col.allowed:
            bad = present(arr) & ~mask(pc.is_in(arr, pa.array(col.allowed)))
            if bad.any():
                shown = np.asarray(arr.to_numpy(zero_copy_only=False), dtype=object)
                reasons = np.array(
                    [f"{v!r} is not one of {', '.join(col.allowed)}" for v in shown], dtype=object
                )
                problems.add(bad, col.name, reasons)
        if pa.types.is_floating(col.type):
            problems.add(present(arr) & ~mask(pc.is_finite(arr)), col.name, "not a finite number")
        if pa.types.is_timestamp(col.type):
            _check_time(arr, col.name, problems, now)
    if spec is FILLS:
        _check_fills(table, problems)
    elif spec is TRANSFERS:
        _positive(table, "amount_usd", problems)
    elif spec is MARKET:
        _positive(table, "price", problems)
        _rule(table, problems, "high", pc.less(table["high"], table["low"]), "high is below low")
    elif spec.name == "accounts":
        _rule(table, problems, "kyc_tier",
              pc.or_(pc.less(table["kyc_tier"], 0), pc.greater(table["kyc_tier"], 3)),
              "must be between 0 and 3")
        _rule(table, problems, "vip_tier", pc.less(table["vip_tier"], 0), "must be >= 0")


def _check_time(arr: pa.ChunkedArray, name: str, problems: Problems, now: datetime) -> None:
    early = mask(pc.less(arr, pa.scalar(EARLIEST, arr.type)))
    problems.add(early, name, "before 2009-01-03 (earlier than any crypto trading)")
    if name in PAST_COLUMNS:
        late = mask(pc.greater(arr, pa.scalar(now, arr.type)))
        # the reason does not embed the run's clock, so a re-ingest finds the same reject
        problems.add(late, name, "in the future (later than the time of the ingest run)")


def _rule(table: pa.Table, problems: Problems, field: str, failing: pa.ChunkedArray,
          reason: str) -> None:
    problems.add(mask(failing), field, reason)


def _positive(table: pa.Table, name: str, problems: Problems) -> None:
    _rule(table, problems, name, pc.less_equal(table[name], 0), "must be > 0")


def _check_fills(t: pa.Table, problems: Problems) -> None:
    _positive(t, "qty", problems)
    _positive(t, "price", problems)
    _rule(t, problems, "notional_usd", pc.less(t["notional_usd"], 0), "must be >= 0")
    _rule(t, problems, "leverage", pc.less(t["leverage"], 1), "must be >= 1")
    _rule(t, problems, "iv", pc.less(t["iv"], 0), "must be >= 0")
    _rule(t, problems, "underlying_price", pc.less_equal(t["underlying_price"], 0), "must be > 0")
    _rule(t, problems, "delta",
          pc.or_(pc.less(t["delta"], -1), pc.greater(t["delta"], 1)), "must be within [-1, 1]")
    is_opt = mask(pc.equal(t["kind"], "option"))
    no_type = ~present(t["option_type"])
    problems.add(is_opt & no_type, "option_type", "option without option_type (call/put)")
    problems.add(is_opt & ~present(t["strike"]), "strike", "option without strike")
    problems.add(is_opt & mask(pc.less_equal(t["strike"], 0)), "strike", "must be > 0")
    problems.add(is_opt & ~present(t["expiry"]), "expiry", "option without expiry")
    problems.add(is_opt & mask(pc.less_equal(t["expiry"], t["ts"])), "expiry",
                 "option expiry is not after the fill time")
    not_opt = present(t["kind"]) & ~is_opt
    problems.add(not_opt & present(t["strike"]), "strike", "only options carry a strike")
    problems.add(not_opt & ~no_type, "option_type", "only options carry an option_type")
