"""Number formats and tables of the CLI that stay readable at 80 columns.

Numbers are formatted by unit in few characters (``$2.55M``, ``37.9%``, ``4.6 bp``) and
right-aligned in columns that never wrap, so a number is never folded across lines; names
sit in a column that wraps between words only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from rich import box
from rich.markup import escape
from rich.table import Table

_SUFFIXES = ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k"))


def compact(value: float, digits: int = 3) -> str:
    """Format ``value`` with ``digits`` significant digits and a k / M / B suffix.

    Examples
    --------
    >>> compact(2_554_317.0), compact(-191_281.0), compact(918.47), compact(0.0)
    ('2.55M', '-191k', '918', '0')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if not math.isfinite(value):
        return "inf" if value > 0 else "-inf"
    sign = "-" if value < 0 else ""
    mag = abs(float(value))
    for size, suffix in _SUFFIXES:
        if mag >= size * 0.9995:
            return f"{sign}{_digits(mag / size, digits)}{suffix}"
    return f"{sign}{_digits(mag, digits)}"


def _digits(mag: float, digits: int) -> str:
    if mag == 0:
        return "0"
    if mag >= 10 ** (digits - 1):
        return f"{mag:.0f}"
    decimals = max(0, digits - 1 - int(math.floor(math.log10(mag))))
    text = f"{mag:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def usd(value: float) -> str:
    """Format an amount of US dollars compactly: ``$2.55M``, ``-$191k``."""
    text = compact(value)
    if text.startswith("-"):
        return "-$" + text[1:]
    return text if text == "–" else "$" + text


def share(value: float, decimals: int = 1) -> str:
    """Format a share (0.379) as a percentage (``37.9%``)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{100 * value:.{decimals}f}%"


def count(value: float) -> str:
    """Format a count with thousands separators (``1,030``)."""
    return f"{int(value):,}"


def number(value: float, decimals: int = 2) -> str:
    """Format a plain number with ``decimals`` decimals (``0.47``)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:,.{decimals}f}"


def table(title: str, names: Sequence[str], numeric: Sequence[bool]) -> Table:
    """Return a table whose numeric columns are right-aligned and never wrap.

    Parameters
    ----------
    title : str
        Table title.
    names : sequence of str
        Column headers; a header may hold a line break to stay narrow.
    numeric : sequence of bool
        Whether each column holds numbers.
    """
    out = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                padding=(0, 0), show_edge=False)
    for name, is_num in zip(names, numeric, strict=True):
        if is_num:
            out.add_column(name, justify="right", no_wrap=True)
        else:
            out.add_column(name, overflow="fold")
    return out


def add_rows(out: Table, rows: Sequence[Sequence[str]]) -> Table:
    """Add ``rows`` to ``out``; text columns get at least the width of their longest word.

    Text then wraps between words, never inside one (unless a word is wider than the
    terminal).
    """
    for i, col in enumerate(out.columns):
        if col.no_wrap:
            continue
        words = [len(w) for r in rows for w in str(r[i]).split()] or [0]
        header = [len(w) for w in str(col.header).split()] or [0]
        col.min_width = max(max(words), max(header))
    for r in rows:
        out.add_row(*r)
    return out


def frame_table(df: pd.DataFrame, title: str, *, index: bool = False) -> Table:
    """Render a DataFrame as a rich table (floats to 4 significant digits)."""
    if index:
        df = df.reset_index()
    out = Table(title=title)
    for col in df.columns:
        out.add_column(escape(str(col)), overflow="fold")
    for row in df.itertuples(index=False):
        out.add_row(*(_fmt(v) for v in row))
    return out


def _fmt(v: object) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
        return ""
    if isinstance(v, float | np.floating):
        x = float(v)
        if abs(x) >= 1000:
            return f"{x:,.0f}"
        return f"{x:,.2f}" if abs(x) >= 10 else f"{x:.3g}"
    if isinstance(v, pd.Timestamp):
        return str(v.date()) if v == v.normalize() else v.isoformat()
    return escape(str(v))  # segment[name] is text, not markup
