"""DuckDB SQL for the funnel: one row per unit with its depth, times and censoring.

The semantics are documented in ``funnelkit.funnel``. Everything heavy runs
inside DuckDB; the per-unit table is materialised as a temporary table in the
event log's connection and the result object aggregates it further.
"""
from __future__ import annotations

import itertools

import pandas as pd
from pydantic import ValidationError

from ..errors import ParamsError, SchemaError
from ..eventlog import EventLog, quote
from ..params import ExclusionSpec, FunnelParams, Params, format_validation_error
from ..schema import COLUMNS
from .result import FunnelResult
from .sql import match_sql, micros, unit_column

_ids = itertools.count()


def _check_columns(events: EventLog, spec: FunnelParams) -> str:
    """Fail early, naming the step and column, when the log lacks a column."""
    available = events.columns
    unit = unit_column(spec.unit)
    if unit not in available:
        raise SchemaError(
            f"funnel unit {spec.unit!r} needs column {unit!r}, which the events of {events.source or events.table} "
            f"do not have; columns found: {', '.join(available)}"
        )
    for kind, items in (("step", spec.steps), ("exclusion", spec.exclusions)):
        for item in items:
            for flt in item.filters:
                if flt.column not in available:
                    raise SchemaError(
                        f"{kind} {item.name!r} filters on column {flt.column!r}, which the events do not have; "
                        f"columns found: {', '.join(available)}"
                    )
    return unit


def _hits(table: str, unit: str, event_types, filters) -> str:
    """Distinct (unit, time) pairs of one step's events; time in microseconds."""
    return (
        f"SELECT DISTINCT {quote(unit)} AS unit, epoch_us({quote(COLUMNS.event_time)}) AS t "
        f"FROM {quote(table)} WHERE {quote(unit)} IS NOT NULL AND {match_sql(event_types, filters)}"
    )


def _ordered(n: int) -> tuple[list[str], str]:
    """CTEs chaining each step to the earliest next-step hit (ASOF join)."""
    ctes = ["a0 AS (SELECT unit, t AS st, t AS T0 FROM h0)"]
    for k in range(1, n):
        ctes.append(
            f"a{k} AS (SELECT a.*, h.t AS T{k} FROM a{k - 1} a "
            f"ASOF LEFT JOIN h{k} h ON a.unit = h.unit AND h.t >= a.T{k - 1})"
        )
    return ctes, f"a{n - 1}"


def _strict(n: int) -> tuple[list[str], str]:
    """CTEs taking the next funnel events in time order (lead) after each first-step hit."""
    union = " UNION ALL ".join(f"SELECT unit, {k} AS s, t FROM h{k}" for k in range(n))
    leads = ", ".join(
        f"lead(s, {j}) OVER w AS ns{j}, lead(t, {j}) OVER w AS nt{j}" for j in range(1, n)
    )
    steps = ", ".join(f"CASE WHEN ns{k} = {k} THEN nt{k} END AS T{k}" for k in range(1, n))
    ctes = [
        f"hits AS ({union})",
        f"seq AS (SELECT unit, s, t, {leads} FROM hits WINDOW w AS (PARTITION BY unit ORDER BY t, s))",
        f"a AS (SELECT unit, t AS st, t AS T0, {steps} FROM seq WHERE s = 0)",
    ]
    return ctes, "a"


def _any_order(n: int) -> tuple[list[str], str]:
    """CTEs finding, from every funnel hit, each step's first hit; T_k = prefix completion."""
    union = " UNION ".join(f"SELECT unit, t FROM h{k}" for k in range(n))
    ctes = [f"f_1 AS (SELECT DISTINCT unit, t AS st FROM ({union}))"]
    for k in range(n):
        prev = f"f{k - 1}" if k else "f_1"
        ctes.append(
            f"f{k} AS (SELECT a.*, h.t AS F{k} FROM {prev} a "
            f"ASOF LEFT JOIN h{k} h ON a.unit = h.unit AND h.t >= a.st)"
        )
    # A prefix completes when its latest first-hit happens; greatest() ignores
    # NULLs, so a missing step is handled by the depth cascade, which stops there.
    times = ", ".join(f"greatest({', '.join(f'F{j}' for j in range(k + 1))}) AS T{k}" for k in range(n))
    ctes.append(f"a AS (SELECT unit, st, {times}, {', '.join(f'F{k}' for k in range(n))} FROM f{n - 1})")
    return ctes, "a"


def _first_found(mode: str) -> str:
    return "F0" if mode == "any_order" else "T0"


def _entry_cte(spec: FunnelParams, attempts: str) -> str:
    """The unit's entry ``e0``: the start of its first attempt that finds the first step in its window."""
    window, first = micros(spec.window), _first_found(spec.mode)
    return (
        f"entered AS (SELECT *, min(st) FILTER (WHERE {first} IS NOT NULL AND {first} - st <= {window}) "
        f"OVER (PARTITION BY unit) AS e0 FROM {attempts})"
    )


def _depth_sql(spec: FunnelParams, mode: str) -> str:
    """CASE cascade: the first step that fails stops the attempt.

    A step counts when found within the window of the attempt's start and by
    the end of the unit's window (entry ``e0`` + window)."""
    window = micros(spec.window)
    n = len(spec.steps)

    def in_window(found: str) -> str:
        return f"e0 IS NOT NULL AND {found} IS NOT NULL AND {found} - st <= {window} AND {found} <= e0 + {window}"

    cases = [f"WHEN NOT ({in_window(_first_found(mode))}) THEN 0"]
    for k in range(1, n):
        found = f"F{k}" if mode == "any_order" else f"T{k}"
        ok = in_window(found)
        max_time = spec.steps[k].max_time
        if max_time is not None:
            ok += f" AND T{k} - T{k - 1} <= {micros(max_time)}"
        cases.append(f"WHEN NOT ({ok}) THEN {k}")
    return "CASE " + " ".join(cases) + f" ELSE {n} END"


def _exclusion_ctes(spec: FunnelParams, source: str) -> tuple[list[str], str, str]:
    """ASOF-join each exclusion's first event after step a; flag attempts it drops."""
    names = [s.name for s in spec.steps]
    window = micros(spec.window)
    ctes, flags, current = [], [], source
    for i, exc in enumerate(spec.exclusions):
        a, b = _exclusion_bounds(exc, names)
        ctes.append(
            f"x{i}_j AS (SELECT c.*, x.t AS X{i} FROM {current} c "
            f"ASOF LEFT JOIN x{i} x ON c.unit = x.unit AND x.t > c.T{a})"
        )
        current = f"x{i}_j"
        flags.append(
            f"(depth > {a} AND X{i} IS NOT NULL AND "
            f"CASE WHEN depth > {b} THEN X{i} < T{b} ELSE X{i} <= e0 + {window} END)"
        )
    return ctes, current, " OR ".join(flags) if flags else "FALSE"


def _exclusion_bounds(exc: ExclusionSpec, names: list[str]) -> tuple[int, int]:
    if exc.between is None:
        return 0, len(names) - 1
    return names.index(exc.between[0]), names.index(exc.between[1])


def build_units_sql(events: EventLog, spec: FunnelParams, data_end_us: int) -> str:
    """SQL for the per-unit table: unit, entry, start, depth, censored, T0..T{n-1}."""
    unit = _check_columns(events, spec)
    n = len(spec.steps)
    hit_ctes = [f"h{k} AS ({_hits(events.table, unit, s.events, s.filters)})" for k, s in enumerate(spec.steps)]
    hit_ctes += [
        f"x{i} AS ({_hits(events.table, unit, e.events, e.filters)})" for i, e in enumerate(spec.exclusions)
    ]
    mode_ctes, attempts = {"ordered": _ordered, "strict": _strict, "any_order": _any_order}[spec.mode](n)
    times = ", ".join(f"T{k}" for k in range(n))
    depth = _depth_sql(spec, spec.mode)
    scored = f"scored AS (SELECT * , {depth} AS depth FROM entered)"
    exc_ctes, with_x, excluded = _exclusion_ctes(spec, "scored")
    clean_times = ", ".join(f"CASE WHEN depth > {k} THEN T{k} END AS T{k}" for k in range(n))
    valid = f"valid AS (SELECT unit, st, e0, depth, {clean_times} FROM {with_x} WHERE depth > 0 AND NOT ({excluded}))"
    best = "struct_pack(d := depth, neg_start := -st)"
    picks = ", ".join(f"arg_max(T{k}, {best}) AS T{k}" for k in range(n))
    units = (
        f"units AS (SELECT unit, min(e0) AS entry, arg_max(st, {best}) AS start, max(depth) AS depth, {picks} "
        f"FROM valid GROUP BY unit)"
    )
    censored = "FALSE" if spec.censoring == "naive" else f"entry + {micros(spec.window)} > {data_end_us}"
    ctes = hit_ctes + mode_ctes + [_entry_cte(spec, attempts), scored] + exc_ctes + [valid, units]
    return (
        "WITH " + ",\n".join(ctes)
        + f"\nSELECT unit, entry, start, depth, {censored} AS censored, {times} FROM units"
    )


def run_funnel(events: EventLog, spec: FunnelParams | None = None, *, data_end=None, **overrides) -> FunnelResult:
    """Compute a funnel over an event log.

    Parameters
    ----------
    events : EventLog
        Canonical events (see ``funnelkit.data.load_events``).
    spec : FunnelParams, optional
        Steps, window, mode, unit, exclusions, censoring and attribution
        (``funnelkit.params.FunnelParams``); keyword ``overrides`` replace
        fields, e.g. ``run_funnel(log, unit="session")``.
    data_end : timestamp, optional
        Where the data ends for censoring; default the last event of the log.

    Returns
    -------
    FunnelResult
        Per-step table, censored units, breakdowns, trends and durations.

    Raises
    ------
    SchemaError
        If the unit column or a filtered column is missing from the events.
    """
    try:
        # validated as a params file's funnel section, so messages name funnel.<key>
        spec = Params.model_validate({"funnel": {**(spec or FunnelParams()).model_dump(), **overrides}}).funnel
    except ValidationError as exc:
        raise ParamsError(format_validation_error(exc, "run_funnel arguments")) from None
    end = events.data_end if data_end is None else pd.Timestamp(data_end)
    if end.tzinfo is None:
        end = end.tz_localize("UTC")
    end_us = end.value // 1000
    table = f"funnel_units_{next(_ids)}"
    sql = build_units_sql(events, spec, end_us)
    events.con.execute(f"CREATE TEMP TABLE {table} AS {sql}")
    return FunnelResult(events=events, spec=spec, units_table=table, data_end=end)
