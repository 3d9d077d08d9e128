"""Instrument patterns of a mapping file: fields derived from instrument names.

``kind``, ``underlying`` and the option fields come from the name. A mapping's
``instruments`` entry lists patterns tried in order; the first that matches a
name gives its fields::

    instruments:
      column: Symbol            # source column (default: the one mapped to `instrument`)
      patterns:
        - deribit               # built in: BTC-27DEC24-60000-C, BTC-PERPETUAL, ETH-28MAR25
        - binance               # built in: BTCUSDT (perp), BTCUSDT_250328 (future)
        - perp_suffix           # built in: ETH-PERP, BTC-USDT-SWAP, SOL_PERP
        - hyperliquid           # built in: BTC, kPEPE, xyz:TSLA (perps by coin name)
        - regex: '^(?P<underlying>[A-Z]+)/USD$'
          kind: spot

A ``regex`` pattern names its fields with groups: ``underlying``, ``expiry`` (``27DEC24``,
``250328`` or ``2025-03-28``; expiry at 08:00 UTC), ``strike`` (``d`` or ``.`` as the
decimal point) and ``option_type`` (``C`` / ``P`` / ``call`` / ``put``), and gives ``kind``
either as a group or as a fixed key. Matching is case-insensitive; underlyings are upper
case. A name no pattern matches rejects its row (field ``instrument``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from traderseg.errors import ConfigError
from traderseg.ingest.instruments import (
    EXPIRY_HOUR_UTC,
    Instrument,
    parse_binance,
    parse_deribit,
)
from traderseg.schema import KINDS

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_PERP_SUFFIX = re.compile(
    r"^(?P<base>[A-Z0-9]+)(?:[-_/](?:USD[TC]?|USD))?[-_](?:PERP|PERPETUAL|SWAP)$")
_HL_COIN = re.compile(r"^(?:[A-Z0-9]+:)?(?P<base>[A-Z0-9]+)$", re.IGNORECASE)
_FIELDS = {"underlying", "expiry", "strike", "option_type", "kind"}


def _perp_suffix(name: str) -> Instrument | None:
    m = _PERP_SUFFIX.match(name.strip().upper())
    return Instrument(name, m["base"], "perp", "USD") if m else None


def _hyperliquid(name: str) -> Instrument | None:
    m = _HL_COIN.match(name.strip())
    return Instrument(name, m["base"].upper(), "perp", "USDC") if m else None


BUILTIN: dict[str, Callable[[str], Instrument | None]] = {
    "deribit": parse_deribit,
    "binance": parse_binance,
    "perp_suffix": _perp_suffix,
    "hyperliquid": _hyperliquid,
}


@dataclass(frozen=True)
class RegexPattern:
    """A user pattern: a regular expression with named groups and a fixed kind."""

    regex: re.Pattern[str]
    kind: str | None

    def __call__(self, name: str) -> Instrument | None:
        """Parse ``name``; ``None`` when it does not match or its fields are invalid."""
        m = self.regex.match(name.strip())
        if m is None:
            return None
        groups = m.groupdict()
        kind = (groups.get("kind") or self.kind or "").lower()
        under = (groups.get("underlying") or "").upper()
        if kind not in KINDS or not under:
            return None
        expiry = _expiry(groups.get("expiry"))
        if groups.get("expiry") and expiry is None:
            return None
        strike = _strike(groups.get("strike"))
        right = _right(groups.get("option_type"))
        if kind == "option" and (strike is None or right is None or expiry is None):
            return None
        return Instrument(name, under, kind, "USD", expiry=expiry, strike=strike,
                          option_type=right)


@dataclass(frozen=True)
class InstrumentPatterns:
    """Patterns tried in order on the instrument names of one source column."""

    column: str | None
    patterns: tuple[Callable[[str], Instrument | None], ...]
    labels: tuple[str, ...]

    def parse(self, name: str) -> Instrument | None:
        """Return the fields of ``name`` from the first pattern that matches it."""
        for pattern in self.patterns:
            inst = pattern(name)
            if inst is not None:
                return inst
        return None


def parse_patterns(doc: Any, where: str) -> InstrumentPatterns:
    """Check the ``instruments`` entry of a mapping file.

    Raises
    ------
    ConfigError
        Naming the key that is wrong (``instruments.patterns[2].regex``...).
    """
    if not isinstance(doc, dict):
        raise ConfigError(f"{where}: expected a mapping with 'patterns'")
    unknown = set(doc) - {"column", "patterns"}
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
                          "allowed: column, patterns")
    column = doc.get("column")
    if column is not None and not isinstance(column, str):
        raise ConfigError(f"{where}.column: must be a source column name")
    items = doc.get("patterns")
    if not isinstance(items, list) or not items:
        raise ConfigError(f"{where}.patterns: give a list of patterns "
                          f"({', '.join(BUILTIN)} or {{regex: ..., kind: ...}})")
    patterns: list[Callable[[str], Instrument | None]] = []
    labels: list[str] = []
    for i, item in enumerate(items):
        at = f"{where}.patterns[{i}]"
        if isinstance(item, str):
            if item not in BUILTIN:
                raise ConfigError(f"{at}: unknown pattern {item!r}; built in: "
                                  f"{', '.join(BUILTIN)}")
            patterns.append(BUILTIN[item])
            labels.append(item)
            continue
        patterns.append(_regex_pattern(item, at))
        labels.append(str(item.get("regex")))
    return InstrumentPatterns(column, tuple(patterns), tuple(labels))


def _regex_pattern(item: Any, at: str) -> RegexPattern:
    if not isinstance(item, dict) or "regex" not in item:
        raise ConfigError(f"{at}: expected a built-in name or {{regex: ..., kind: ...}}")
    unknown = set(item) - {"regex", "kind"}
    if unknown:
        raise ConfigError(f"{at}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
                          "allowed: regex, kind")
    try:
        regex = re.compile(str(item["regex"]), re.IGNORECASE)
    except re.error as exc:
        raise ConfigError(f"{at}.regex: not a valid regular expression ({exc})") from None
    bad_groups = set(regex.groupindex) - _FIELDS
    if bad_groups:
        raise ConfigError(f"{at}.regex: unknown group(s) {', '.join(sorted(bad_groups))}; "
                          f"allowed: {', '.join(sorted(_FIELDS))}")
    if "underlying" not in regex.groupindex:
        raise ConfigError(f"{at}.regex: needs a group (?P<underlying>...)")
    kind = item.get("kind")
    if kind is None and "kind" not in regex.groupindex:
        raise ConfigError(f"{at}: give kind ({', '.join(KINDS)}) or a (?P<kind>...) group")
    if kind is not None and kind not in KINDS:
        raise ConfigError(f"{at}.kind: {kind!r} is not one of {', '.join(KINDS)}")
    return RegexPattern(regex, kind)


def _expiry(text: str | None) -> datetime | None:
    if not text:
        return None
    t = text.strip().upper()
    try:
        if m := re.fullmatch(r"(\d{1,2})([A-Z]{3})(\d{2})", t):
            if m[2] not in _MONTHS:
                return None
            return datetime(2000 + int(m[3]), _MONTHS.index(m[2]) + 1, int(m[1]),
                            EXPIRY_HOUR_UTC, tzinfo=UTC)
        if re.fullmatch(r"\d{6}", t):
            return datetime(2000 + int(t[:2]), int(t[2:4]), int(t[4:]), EXPIRY_HOUR_UTC,
                            tzinfo=UTC)
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", t):
            return datetime(int(t[:4]), int(t[5:7]), int(t[8:]), EXPIRY_HOUR_UTC, tzinfo=UTC)
    except ValueError:
        return None
    return None


def _strike(text: str | None) -> float | None:
    if not text:
        return None
    try:
        value = float(text.upper().replace("D", "."))
    except ValueError:
        return None
    return value if value > 0 else None


def _right(text: str | None) -> str | None:
    if not text:
        return None
    return {"C": "call", "CALL": "call", "P": "put", "PUT": "put"}.get(text.strip().upper())
