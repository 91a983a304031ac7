"""Which event types a chart or table names, and which it sums into one "other" entry.

Real logs carry dozens of event names (page views, pop-ups, errors...): one line per name or a
heat-map cell per pair of names is unreadable. The presentation functions
(:func:`funnelkit.plots.events_per_day_chart`, :func:`funnelkit.plots.transition_heatmap`,
:func:`funnelkit.tables.event_mix_table`) name the most frequent types and the funnel's step events,
and sum the rest as "other (k event types)".
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .schema import EVENTS

__all__ = ["funnel_event_types", "named_event_types", "other_label"]


def named_event_types(totals: pd.Series, top: int, keep=EVENTS.funnel) -> list:
    """The event types a chart or table names; the others are summed into one "other" entry.

    Logs with dozens of event names make a line per name or a heat-map cell per pair unreadable.

    Parameters
    ----------
    totals : pandas.Series
        A count per event type (index: the event type), ranking the types.
    top : int
        How many types to name, at least: the types of ``keep`` that occur, then the most frequent
        others (ties by name) up to ``top`` in all.
    keep : iterable of str
        Types always named, whatever their count: the funnel's step events (the canonical
        ``view``/``cart``/``checkout``/``purchase`` by default).

    Returns
    -------
    list
        The named types by decreasing total; every type when at most one would be folded (an
        "other" of one type would only hide its name).
    """
    ranked = totals.groupby(level=0).sum()
    ranked = ranked.iloc[np.lexsort((ranked.index.astype(str), -ranked.to_numpy()))]
    keep = set(keep)
    forced = [t for t in ranked.index if t in keep]
    named = set(forced + [t for t in ranked.index if t not in keep][:max(top - len(forced), 0)])
    if len(ranked) - len(named) <= 1:
        return list(ranked.index)
    return [t for t in ranked.index if t in named]


def funnel_event_types(funnel) -> list[str]:
    """The event types of the steps of ``funnel`` (``params.funnel``), in step order: the ``keep`` of
    :func:`named_event_types`, so a chart of a log with many event names never folds a step away."""
    return list(dict.fromkeys(event for step in funnel.steps for event in step.events))


def other_label(folded: int) -> str:
    """Name of the entry that sums ``folded`` event types: ``"other (14 event types)"``."""
    return f"other ({folded} event types)"
