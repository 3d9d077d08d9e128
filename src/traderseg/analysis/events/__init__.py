"""Market events and how each trader segment reacts to them.

- :func:`load_market` reads the daily market series (real files or the store).
- :func:`detect_events` finds crashes, rallies, implied-vol spikes and drawdowns.
- :func:`segment_activity` aggregates fills per segment and day in DuckDB.
- :func:`event_study` measures abnormal segment activity around events.
- :func:`activity_correlations` relates segment activity to daily market moves.
"""

from traderseg.analysis.events.activity import segment_activity
from traderseg.analysis.events.correlate import activity_correlations
from traderseg.analysis.events.detect import EVENT_KINDS, daily_signals, detect_events
from traderseg.analysis.events.market import load_market, market_from_store, validate_market
from traderseg.analysis.events.study import abnormal_by_event, event_study

__all__ = [
    "EVENT_KINDS",
    "abnormal_by_event",
    "activity_correlations",
    "daily_signals",
    "detect_events",
    "event_study",
    "load_market",
    "market_from_store",
    "segment_activity",
    "validate_market",
]
