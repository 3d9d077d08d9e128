"""Parsing of the command-line values shared by several commands, with one-line errors."""

from __future__ import annotations

from datetime import UTC, datetime

from traderseg.errors import ConfigError, DataError
from traderseg.store import as_utc

# Cutoffs outside these years cannot be right for crypto fills.
EARLIEST_AS_OF = datetime(2009, 1, 3, tzinfo=UTC)
LATEST_AS_OF = datetime(2100, 1, 1, tzinfo=UTC)


def parse_windows(text: str) -> tuple[str, ...]:
    """Parse ``--windows`` (``7d,30d,all``): whole days up to ten years, each once.

    Examples
    --------
    >>> parse_windows("7d, 30d,all")
    ('7d', '30d', 'all')
    """
    from traderseg.errors import SchemaError
    from traderseg.features.compute import check_windows

    items = [w.strip() for w in text.split(",")]
    if not any(items):
        raise ConfigError(f"--windows {text!r}: give windows such as 7d,30d,all")
    try:
        check_windows(items)
    except SchemaError as exc:
        raise ConfigError(f"--windows {text!r}: {exc}") from None
    return tuple(items)


def parse_as_of(text: str, option: str = "--as-of") -> datetime:
    """Parse a cutoff (naive = UTC) between 2009-01-03 and 2100."""
    try:
        when = as_utc(text, option).to_pydatetime()
    except (DataError, OverflowError):
        raise ConfigError(f"{option} {text!r}: not a date or time (e.g. 2024-03-01)") from None
    if not EARLIEST_AS_OF <= when < LATEST_AS_OF:
        raise ConfigError(f"{option} {text!r}: out of range (2009-01-03 to 2099-12-31)")
    return when


def parse_segments(text: str) -> int | str:
    """Parse ``--segments``: ``auto`` or a whole number of at least 2."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        k = int(text)
    except ValueError:
        raise ConfigError(f"--segments {text!r}: expected a whole number (2 or more) or "
                          "'auto'") from None
    if k < 2:
        raise ConfigError(f"--segments {text!r}: at least 2 segments")
    return k
