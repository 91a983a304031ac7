"""Checks of the params against the data, made once before any notebook starts.

``funnelkit run`` (and ``funnelkit validate`` when the params name a data
source) loads the events once and stops with a
:class:`~funnelkit.errors.FunnelkitError` (exit code 2, nothing written in
``reports/``) when every notebook would fail or silently report nonsense:

- the data cannot be loaded (missing column, unparsable times, ...): the
  loader's own :class:`~funnelkit.errors.SchemaError` or
  :class:`~funnelkit.errors.DataError`;
- a funnel step matches no event of the log (a typo such as
  ``add_to_basket``, or a checkout step on a log without checkouts), which
  would read as "0% conversion": the message lists the step, its events and
  the log's most frequent event names;
- a filter names a column the log lacks, or compares a column with a value of
  another type (``price < 'cheap'``), which DuckDB would reject inside every
  notebook, or orders a text column (``age > 30`` on a CSV segment), which
  would compare alphabetically (``'100' < '30'``);
- a ``funnel.breakdowns`` column, or the ``retention.segment`` column, is not in the log.

Warnings that do not stop the run (a window under an hour on a funnel that
ends in a purchase, an exclusion that matches no event and so excludes no
one, the loader's own warnings) and the loaded time range are printed. The built-in simulated shop is read in place (it is generated and
checked by the simulator), and the Spark engine is not checked here: starting
a JVM to check would cost more than the check.
"""
from __future__ import annotations

import datetime as dt
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO

import duckdb
import pandas as pd

from .errors import DataError, ParamsError, SchemaError
from .engines import quote
from .params import FilterSpec, Params, describe_duration
from .requirements import event_type_counts
from .schema import COLUMNS, EVENTS, NUMERIC_TYPES

if TYPE_CHECKING:  # pragma: no cover
    from .eventlog import EventLog

TOP_EVENTS = 10
"""Event names listed when a step matches nothing."""
SHORT_WINDOW = dt.timedelta(hours=1)
"""A purchase funnel's window shorter than this is probably a unit mistake (``7m`` is 7 minutes)."""


@dataclass
class DataSummary:
    """What the preflight found: the loaded events' size and time range, and warnings."""

    events: int
    first_event: pd.Timestamp | None
    last_event: pd.Timestamp | None
    warnings: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """``48,105 events from 2026-09-01 00:00:03 to 2026-09-28 23:59:41 UTC (28.0 days)``."""
        if self.first_event is None or self.last_event is None:
            return f"{self.events:,} events"
        fmt = "%Y-%m-%d %H:%M:%S"
        days = (self.last_event - self.first_event) / pd.Timedelta(days=1)
        span = f"{days:,.1f} days" if days >= 1 else describe_duration(self.last_event - self.first_event)
        return (f"{self.events:,} events from {self.first_event.strftime(fmt)} to "
                f"{self.last_event.strftime(fmt)} UTC ({span})")


# --------------------------------------------------------------------------- without data


def params_warnings(params: Params) -> list[str]:
    """Warnings about the params alone (no data needed), one sentence each."""
    funnel = params.funnel
    notes = []
    last = funnel.steps[-1]
    ends_in_purchase = last.name == EVENTS.purchase or EVENTS.purchase in last.events
    if ends_in_purchase and funnel.window < SHORT_WINDOW:
        notes.append(f"funnel.window is {describe_duration(funnel.window)}: a purchase funnel rarely closes that fast "
                     "(pandas reads 'm' as minutes; write '7D' for days or '7h' for hours)")
    return notes


# --------------------------------------------------------------------------- with data


SECTIONS = frozenset({"funnel", "recommend", "retention", "journeys"})
"""The params sections checked against the data; a run checks those its notebooks use."""


def preflight(params: Params, stream: TextIO | None = None, *,
              sections: frozenset[str] = SECTIONS) -> DataSummary | None:
    """Load the run's events once and check the params against them (see the module docstring).

    Parameters
    ----------
    params : Params
        Validated params of the run.
    stream : file, optional
        Where warnings and the loaded range are printed (default ``sys.stderr``).
    sections : set of str
        The params sections to check (some of :data:`SECTIONS`): those the run's
        notebooks use. A ratings log run with ``--only 03`` has no funnel to check,
        and a funnel run with ``--only 01`` no recommendation settings.

    Returns
    -------
    DataSummary or None
        None on the Spark engine (not checked).

    Raises
    ------
    SchemaError, DataError
        The data cannot be loaded, a filter or breakdown names a missing column,
        or a filter value does not fit its column's type.
    ParamsError
        A step matches no event of the log.
    """
    stream = stream if stream is not None else sys.stderr
    for note in params_warnings(params) if "funnel" in sections else []:
        print(f"funnelkit: warning: {note}", file=stream)
    if params.engine.name != "duckdb":
        return None
    events = _load(params)
    # the loader's warnings first: a check below may fail because of what they say (a time unit off by
    # 1000 makes the log span minutes, and the recommendation split then cannot fit in it)
    loaded = _load_warnings(events)
    for note in loaded:
        print(f"funnelkit: warning: {note}", file=stream, flush=True)
    try:
        summary = check_events(params, events, sections=sections)
    finally:
        events.engine.close()  # free the loaded copy before the notebooks load their own
    for note in summary.warnings[:len(summary.warnings) - len(loaded)]:
        print(f"funnelkit: warning: {note}", file=stream)
    print(f"funnelkit: data: {summary.describe()}", file=stream, flush=True)
    return summary


def _load(params: Params) -> "EventLog":
    from .engines import open_events

    if params.simulated:  # written and checked by the simulator: read it in place
        from .engines.duckdb import DuckDBEngine, connect
        from .eventlog import EventLog
        from .simulate import ensure_dataset

        return EventLog.from_parquet(ensure_dataset(params.simulation).events_path,
                                     DuckDBEngine(connect(params.engine)))
    return open_events(params)


def check_events(params: Params, events: "EventLog", *, sections: frozenset[str] = SECTIONS) -> DataSummary:
    """Check the ``sections`` of ``params`` against loaded ``events``; raise on the first problem
    (see :func:`preflight`)."""
    time = quote(COLUMNS.event_time)
    (n, first, last), = events.rows(f"SELECT count(*), min({time}), max({time}) FROM {quote(events.table)}")
    first, last = _utc(first), _utc(last)
    notes = _check_funnel(params, events) if "funnel" in sections else []
    if "recommend" in sections:
        _check_recommend(params, events, first, last)
    if "retention" in sections:
        _check_retention(params, events)
    if "journeys" in sections:
        _check_journeys(params, events)
    return DataSummary(int(n), first, last, notes + _load_warnings(events))


def _check_retention(params: Params, events: "EventLog") -> None:
    """The ``retention.segment`` column exists (the survival curves split by it)."""
    column = params.retention.segment
    types = events.column_types()
    if column is not None and column not in types:
        segments = ", ".join(events.segments) or "none"
        raise SchemaError(f"segment column {column!r} (retention.segment) is not in {events.source or 'the events'}; "
                          f"its segment columns are: {segments} (all columns: {', '.join(types)}); set "
                          f"retention.segment to one of them, or to null for one curve")


def _check_journeys(params: Params, events: "EventLog") -> None:
    """The states of ``journeys.what_if`` are states of this log's chain (after ``journeys.states``)."""
    from .journeys.paths import check_what_ifs, journey_states

    spec = params.journeys
    check_what_ifs(spec.what_if, journey_states(events, spec.states, spec.max_states),
                   events.source or "the events")


def _load_warnings(events: "EventLog") -> list[str]:
    """What loading the events warned about (:meth:`funnelkit.data.ValidationReport.warnings`)."""
    report = getattr(events, "report", None)
    return list(report.warnings()) if report is not None and hasattr(report, "warnings") else []


def _check_funnel(params: Params, events: "EventLog") -> list[str]:
    """Breakdown columns exist, filters fit their columns, every step matches some event; returns a warning
    for each exclusion that matches none (it excludes no one: harmless to the numbers, but likely a typo)."""
    types = events.column_types()
    label = events.source or "the events"
    funnel = params.funnel
    for column in funnel.breakdowns:
        if column not in types:
            segments = ", ".join(events.segments) or "none"
            raise SchemaError(f"breakdown column {column!r} (funnel.breakdowns) is not in {label}; its segment "
                              f"columns are: {segments} (all columns: {', '.join(types)})")
    items = [("step", s) for s in funnel.steps] + [("exclusion", e) for e in funnel.exclusions]
    for kind, item in items:
        for flt in item.filters:
            _check_filter(kind, item.name, flt, types, label)
    counts = _match_counts(events, items)
    if 0 not in counts:
        return []
    top = list(event_type_counts(events).items())[:TOP_EVENTS]
    notes = []
    for (kind, item), count in zip(items, counts):
        if count == 0 and kind == "step":
            raise ParamsError(_no_match_message(kind, item, top, label))
        if count == 0:
            notes.append(_unused_exclusion_message(item, top, label))
    return notes


def _check_recommend(params: Params, events: "EventLog", first: pd.Timestamp | None,
                     last: pd.Timestamp | None) -> None:
    """The recommendation settings fit the log: weighted and test event types occur, the weight column holds
    weights, and a temporal split leaves a validation and a test period inside the log. A log without
    item ids is not checked: notebook 03 says it needs them, and the run goes on."""
    from .recommend.matrix import check_event_types, check_weight_column  # late: the other studies never need them

    if COLUMNS.item_id not in events.columns:
        return
    spec, label = params.recommend, events.source or "the log"
    check_event_types(events, spec)  # the study's own checks, before the notebooks rather than inside 03
    check_weight_column(events, spec)
    if spec.split == "temporal" and spec.cutoff is None and first is not None and last is not None:
        span = last - first
        if span <= 2 * spec.test_period:  # the validation period sits one test period before the test period
            raise ParamsError(
                f"recommend.test_period is {describe_duration(spec.test_period)}, but {label} spans "
                f"{describe_duration(span.to_pytimedelta())}: the temporal split needs a validation period and a "
                f"test period of that length, with training events before both; shorten recommend.test_period "
                f"(under {describe_duration((span / 2).to_pytimedelta())}) or use recommend.split: user_temporal")


def _utc(value) -> pd.Timestamp | None:
    if value is None:
        return None
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _match_counts(events: "EventLog", items) -> list[int]:
    """Events matching each step or exclusion, in one scan; a query DuckDB rejects names its step."""
    from .funnel.sql import match_sql

    conditions = [match_sql(item.events, item.filters) for _, item in items]
    table = quote(events.table)
    select = ", ".join(f"count(*) FILTER (WHERE {c})" for c in conditions)
    try:
        return list(events.rows(f"SELECT {select} FROM {table}")[0])
    except duckdb.Error:
        pass
    for (kind, item), condition in zip(items, conditions):  # find which one DuckDB rejects
        try:
            events.rows(f"SELECT count(*) FROM {table} WHERE {condition}")
        except duckdb.Error as exc:
            first = str(exc).strip().splitlines()[0]
            raise DataError(f"{kind} {item.name!r}: its filters cannot be applied to the data: {first}") from None
    raise DataError("the funnel steps cannot be matched against the data")  # pragma: no cover - all passed alone


def _describe_item(kind: str, item) -> str:
    filters = ""
    if item.filters:
        filters = " with filters " + " and ".join(f"{f.column} {f.op} {f.value!r}" for f in item.filters)
    return f"funnel {kind} {item.name!r} (events {', '.join(item.events)}{filters})"


def _names(top: list[tuple[str, int]]) -> str:
    return ", ".join(f"{name} ({count:,})" for name, count in top) or "none"


def _no_match_message(kind: str, item, top: list[tuple[str, int]], label: str) -> str:
    return (f"{_describe_item(kind, item)} matches no event in {label}; "
            f"it would read as 0% conversion. The most frequent event names of the log: {_names(top)}. "
            "Set funnel.steps to event names of the log, or map them with data.event_names")


def _unused_exclusion_message(item, top: list[tuple[str, int]], label: str) -> str:
    return (f"{_describe_item('exclusion', item)} matches no event in {label}, so it excludes no one; "
            f"if that is a typo, the most frequent event names of the log are: {_names(top)}")


def _column_kind(dtype: str) -> str:
    upper = dtype.upper()
    if upper.startswith(NUMERIC_TYPES):
        return "number"
    if upper in ("VARCHAR", "TEXT", "STRING") or upper.startswith("VARCHAR"):
        return "text"
    if upper == "BOOLEAN":
        return "boolean"
    if upper.startswith(("TIMESTAMP", "DATE")):
        return "time"
    return "other"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _is_time(text: str) -> bool:
    try:
        pd.Timestamp(text)
    except (ValueError, TypeError, OverflowError):
        return False
    return True


def _check_filter(kind: str, name: str, flt: FilterSpec, types: dict[str, str], label: str) -> None:
    """A filter's column exists and every value fits its type (DuckDB would stop the notebook otherwise)."""
    where = f"{kind} {name!r}: filter {flt.column} {flt.op} {flt.value!r}"
    if flt.column not in types:
        raise SchemaError(f"{where}: column {flt.column!r} is not in {label}; columns found: {', '.join(types)}")
    dtype = types[flt.column]
    column_kind = _column_kind(dtype)
    if column_kind == "text" and flt.op in ("<", "<=", ">", ">="):  # match_sql compares the value as written
        raise SchemaError(
            f"{where}: column {flt.column!r} holds text ({dtype}; a CSV file's segment columns always do), so "
            f"{flt.op!r} would compare alphabetically ('100' < '30'). For a numeric comparison, give the column "
            "as numbers (a Parquet file with a numeric column); for text, list the values you mean with op: in")
    for value in flt.value if isinstance(flt.value, list) else [flt.value]:
        fits = {
            "number": (isinstance(value, (int, float)) and not isinstance(value, bool))
            or (isinstance(value, str) and _is_number(value)),
            "text": isinstance(value, str),
            "boolean": isinstance(value, bool) or (isinstance(value, str) and value.lower() in ("true", "false")),
            "time": isinstance(value, str) and _is_time(value),
        }.get(column_kind, True)
        if not fits:
            hint = f" (write it in quotes, '{value}', to compare text)" if column_kind == "text" else ""
            raise SchemaError(f"{where}: column {flt.column!r} holds {column_kind} values ({dtype}), "
                              f"but {value!r} is a {type(value).__name__}{hint}")
