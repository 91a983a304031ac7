"""Descriptive counts of an event log for the data-quality section of a report."""
from __future__ import annotations

import pandas as pd

from .eventlog import EventLog
from .engines import quote
from .schema import COLUMNS


def daily_event_counts(events: EventLog) -> pd.DataFrame:
    """Events per UTC day and event type: columns ``day``, ``event_type``, ``events``."""
    frame = events.query(
        f"SELECT date_trunc('day', {quote(COLUMNS.event_time)}) AS day, {quote(COLUMNS.event_type)} AS event_type, "
        f"count(*) AS events FROM {quote(events.table)} GROUP BY ALL ORDER BY day, event_type"
    )
    frame["day"] = pd.to_datetime(frame["day"], utc=True)
    return frame


def event_mix(events: EventLog) -> pd.DataFrame:
    """Events and distinct users by event type, with the share of all events."""
    frame = events.query(
        f"SELECT {quote(COLUMNS.event_type)} AS event_type, count(*) AS events, "
        f"count(DISTINCT {quote(COLUMNS.user_id)}) AS users FROM {quote(events.table)} "
        f"GROUP BY ALL ORDER BY events DESC"
    )
    frame["share_of_events"] = frame["events"] / frame["events"].sum()
    return frame
