"""What a study needs from the event log, checked before it starts.

A study whose inputs the log lacks is not an error of the user's: a log without
item ids cannot give recommendations, but the other studies still can. The
notebook asks :func:`missing` (or :func:`require` in code that should stop) and,
when something is missing, shows the message as a card and skips the rest of the
study (:func:`funnelkit.report.not_applicable`); the run goes on and the index
says "not applicable" with the reason.

What each study needs (the README's table of notebooks says the same):

==============================  ===============================================
study                           needs
==============================  ===============================================
funnel (01)                     the required columns only
conversion drivers (02)         ``purchase`` events (the label); ``price`` for
                                the price features and the order-value model
recommendations (03)            ``item_id``
anomalies (04)                  the required columns only
retention (06)                  the required columns only (``purchase`` events
                                and ``price`` for repurchase and customer value,
                                which the study skips and says so without them)
==============================  ===============================================
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from .errors import FunnelkitError
from .eventlog import EventLog
from .engines import quote
from .schema import COLUMNS

__all__ = ["StudyNotApplicable", "missing", "require", "event_type_counts", "unavailable", "left_out_text"]


class StudyNotApplicable(FunnelkitError):
    """The log lacks a column or an event type a study needs.

    Attributes
    ----------
    study : str
        What cannot run (``"The recommendation study"``).
    columns, event_types : list of str
        What it needs and the log lacks.
    present_columns, present_event_types : list of str
        What the log has, for the message.
    hint : str or None
        What the user can do, appended to the message.
    """

    def __init__(self, study: str, columns: Sequence[str], event_types: Sequence[str],
                 present_columns: Sequence[str], present_event_types: Sequence[str], hint: str | None = None):
        self.study, self.columns, self.event_types = study, list(columns), list(event_types)
        self.present_columns, self.present_event_types = list(present_columns), list(present_event_types)
        self.hint = hint
        super().__init__(self._message())

    def _message(self) -> str:
        needs, has = [], []
        if self.columns:
            needs.append(f"the column{'s' if len(self.columns) > 1 else ''} {', '.join(self.columns)}")
            has.append(f"columns {', '.join(self.present_columns)}")
        if self.event_types:
            needs.append(f"{' and '.join(self.event_types)} events")
            has.append(f"event types {', '.join(self.present_event_types) or '(none)'}")
        message = f"{self.study} needs {' and '.join(needs)}; your log has {' and '.join(has)}."
        return f"{message} {self.hint}" if self.hint else message


def event_type_counts(events: EventLog) -> dict[str, int]:
    """Events of each event type of the log, most frequent first (ties by name); one scan of one column.

    The one query of the package for the log's event types (the studies' checks and the preflight use it).
    Events without a type are not counted.
    """
    column = quote(COLUMNS.event_type)
    rows = events.rows(f"SELECT {column}, count(*) AS n FROM {quote(events.table)} WHERE {column} IS NOT NULL "
                       "GROUP BY 1 ORDER BY n DESC, 1")
    return {str(name): int(count) for name, count in rows}


def missing(events: EventLog, *, study: str, columns: Sequence[str] = (), event_types: Sequence[str] = (),
            hint: str | None = None) -> StudyNotApplicable | None:
    """What ``study`` needs and the log lacks, or None when it has everything.

    Parameters
    ----------
    events : EventLog
        The canonical event log.
    study : str
        Subject of the message, capitalised: ``"The recommendation study"``.
    columns : sequence of str
        Canonical columns the study needs (every one of them).
    event_types : sequence of str
        Event types the study needs (every one of them, at least one event each).
    hint : str, optional
        What the user can do about it, appended to the message.

    Returns
    -------
    StudyNotApplicable or None
        The exception (not raised) whose message names what is missing and what
        the log has: ``"The recommendation study needs the column item_id; your
        log has columns user_id, session_id, event_time, event_type, price."``
    """
    present = events.columns
    lacking = [c for c in columns if c not in present]
    present_types = sorted(event_type_counts(events)) if event_types else []  # a scan of the log: only when asked
    lacking_types = [t for t in event_types if t not in present_types]
    if not lacking and not lacking_types:
        return None
    return StudyNotApplicable(study, lacking, lacking_types, present, present_types, hint)


def require(events: EventLog, *, study: str, columns: Sequence[str] = (), event_types: Sequence[str] = (),
            hint: str | None = None) -> None:
    """Raise :class:`StudyNotApplicable` when the log lacks what ``study`` needs (see :func:`missing`)."""
    problem = missing(events, study=study, columns=columns, event_types=event_types, hint=hint)
    if problem is not None:
        raise problem


def unavailable(events: EventLog, sources: Mapping[str, str]) -> dict[str, str]:
    """The features a study cannot build from this log, each with the reason.

    Parameters
    ----------
    events : EventLog
    sources : mapping
        Feature name → the optional canonical column it is computed from
        (``{"log_price": "price"}``).

    Returns
    -------
    dict
        Feature → ``"the log has no <column> column"``, for the features whose
        column the log lacks, in the order of ``sources``.
    """
    present = set(events.columns)
    return {feature: f"the log has no {column} column" for feature, column in sources.items()
            if column not in present}


def left_out_text(left_out: Mapping[str, str], where: str = "the models") -> str:
    """One Markdown line naming the features left out of ``where`` and why; empty when none is.

    The names and reasons are the package's own (:func:`unavailable`): nothing from the data to escape.
    """
    if not left_out:
        return ""
    by_reason: dict[str, list[str]] = {}
    for feature, reason in left_out.items():
        by_reason.setdefault(reason, []).append(f"`{feature}`")
    parts = "; ".join(f"{', '.join(features)} ({reason})" for reason, features in by_reason.items())
    return f"**Left out of {where} on this log:** {parts}."
