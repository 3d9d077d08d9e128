"""Market events and how each trader segment reacts to them.

- :func:`load_market` reads the daily market series (real files or the store).
- :func:`detect_events` finds crashes, rallies, implied-vol spikes and drawdowns.
- :func:`segment_activity` aggregates fills per segment and day in DuckDB.
- :func:`event_study` measures abnormal segment activity around events.
- :func:`activity_correlations` relates segment activity to daily market moves.
- :func:`study_segment_events` runs the whole study from a store (detect, aggregate,
  measure).
"""

from traderseg.analysis.events.activity import segment_activity
from traderseg.analysis.events.correlate import activity_correlations
from traderseg.analysis.events.detect import EVENT_KINDS, daily_signals, detect_events
from traderseg.analysis.events.market import load_market, market_from_store, validate_market
from traderseg.analysis.events.study import abnormal_by_event, event_study
from traderseg.analysis.events.workflow import SegmentEventStudy, study_segment_events

__all__ = [
    "EVENT_KINDS",
    "SegmentEventStudy",
    "abnormal_by_event",
    "activity_correlations",
    "daily_signals",
    "detect_events",
    "event_study",
    "load_market",
    "market_from_store",
    "segment_activity",
    "study_segment_events",
    "validate_market",
]
