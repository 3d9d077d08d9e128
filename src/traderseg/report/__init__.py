"""The self-contained HTML report of a segmented venue.

:func:`build_report` writes it; :func:`~traderseg.report.collect.collect_report` gathers
the data it shows, :mod:`traderseg.report.charts` draws the pictures and
:func:`~traderseg.report.render.render_html` lays out the page.
"""

from traderseg.report.build import BuiltReport, build_report

__all__ = ["BuiltReport", "build_report"]
