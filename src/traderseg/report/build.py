"""Build the report file: collect the analyses, draw, render, write."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from traderseg.report.collect import ReportData, collect_report
from traderseg.report.render import render_html

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuiltReport:
    """A written report.

    Attributes
    ----------
    path : Path
        The HTML file.
    data : ReportData
        What it shows.
    unavailable : dict of str to str
        Sections left out, with the reason.
    """

    path: Path
    data: ReportData
    unavailable: dict[str, str]


def build_report(
    db: str | Path | duckdb.DuckDBPyConnection,
    model_dir: str | Path,
    out: str | Path,
    *,
    as_of: str | datetime | None = None,
    compare_as_of: str | datetime | None = None,
    title: str | None = None,
    generated_at: datetime | None = None,
    **collect_options: Any,
) -> BuiltReport:
    """Write the self-contained HTML report of a segmented venue.

    Parameters
    ----------
    db : str, Path or duckdb connection
        The fills store.
    model_dir : str or Path
        A saved segmentation model.
    out : str or Path
        HTML file to write (its folder is created).
    as_of, compare_as_of : str or datetime, optional
        Report and comparison cutoffs (see :func:`~traderseg.report.collect.collect_report`).
    title : str, optional
        Page title.
    generated_at : datetime, optional
        Time printed in the footer (none by default: the same data renders to the same
        file).
    **collect_options
        Passed to :func:`~traderseg.report.collect.collect_report` (event windows, seed).

    Returns
    -------
    BuiltReport
        Path, data and the sections left out.

    Examples
    --------
    >>> build_report("venue.duckdb", "model/", "report.html")  # doctest: +SKIP
    """
    data = collect_report(db, model_dir, as_of=as_of, compare_as_of=compare_as_of,
                          **collect_options)
    html = render_html(data, title=title, generated_at=generated_at)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    unavailable = {k: s.unavailable for k, s in data.sections.items() if s.unavailable}
    logger.info("wrote report %s (%d bytes, %d sections left out)", path, len(html),
                len(unavailable))
    return BuiltReport(path, data, unavailable)
