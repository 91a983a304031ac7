"""Small SQL pieces shared by the funnel engine, its results and the path analyses."""
from __future__ import annotations

from datetime import timedelta

from ..engines import literal, quote
from ..params import FilterSpec
from ..schema import COLUMNS, US_PER_SECOND


def unit_column(unit: str) -> str:
    """The column that identifies a counting unit (``user`` or ``session``)."""
    return {"user": COLUMNS.user_id, "session": COLUMNS.session_id}[unit]


def micros(td: timedelta) -> int:
    """A duration in whole microseconds (the engine's time unit)."""
    return int(round(td.total_seconds() * US_PER_SECOND))


def filter_sql(flt: FilterSpec) -> str:
    """SQL condition of a filter; a missing value never matches (SQL NULL logic)."""
    column = quote(flt.column)
    if flt.op in ("in", "not_in"):
        values = ", ".join(literal(v) for v in flt.value)
        return f"{column} {'IN' if flt.op == 'in' else 'NOT IN'} ({values})"
    op = "=" if flt.op == "==" else flt.op
    return f"{column} {op} {literal(flt.value)}"


def match_sql(event_types: list[str], filters: list[FilterSpec]) -> str:
    """SQL condition selecting the events of one step or exclusion."""
    types = ", ".join(literal(t) for t in event_types)
    conditions = [f"{quote(COLUMNS.event_type)} IN ({types})"] + [f"({filter_sql(f)})" for f in filters]
    return " AND ".join(conditions)
