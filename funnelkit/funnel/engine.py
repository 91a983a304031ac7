"""SQL for the funnel: one row per unit with its depth, times and censoring.

The semantics are documented in ``funnelkit.funnel``. The SQL is DuckDB's
dialect and runs in the event log's engine (DuckDB, or another after translation,
see ``funnelkit.engines``); the per-unit table is materialised as a temporary
table there, and :class:`FunnelResult` reads it through its public methods
(``units_sql``, ``units``, ``by_period``) and aggregates it further.
"""
from __future__ import annotations

import pandas as pd
from pydantic import ValidationError

from ..engines import quote, unique_name
from ..errors import ParamsError, SchemaError
from ..eventlog import EventLog
from ..params import ExclusionSpec, FunnelParams, Params, format_validation_error
from ..schema import COLUMNS
from .result import FunnelResult
from .sql import match_sql, micros, unit_column


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


def _hits(table: str, unit: str, event_types, filters, distinct: bool = True) -> str:
    """(unit, time) pairs of one step's events, distinct unless told; time in microseconds."""
    return (
        f"SELECT {'DISTINCT ' if distinct else ''}{quote(unit)} AS unit, epoch_us({quote(COLUMNS.event_time)}) AS t "
        f"FROM {quote(table)} WHERE {quote(unit)} IS NOT NULL AND {match_sql(event_types, filters)}"
    )


def _first_attempt_decides(spec: FunnelParams) -> bool:
    """Whether the unit's first attempt alone gives its result (ordered, ``entry: first``, no limits).

    The first attempt starts at the entry ``e0``. Every later attempt's greedy
    step times are at least the first attempt's (the next hit at or after a
    later time is no earlier), and all must fall by ``e0 + window``, which for
    the first attempt is also its own window; so no later attempt gets further,
    and on a tie the earliest attempt wins anyway. A per-step ``max_time`` or an
    exclusion can favour a later start, so those take more attempts (one per step-1 hit,
    :func:`_second_step_decides`, or every one); so does ``entry: every``, where a later
    attempt's own window reaches further.
    """
    return (spec.entry == "first" and spec.mode == "ordered" and not spec.exclusions
            and all(s.max_time is None for s in spec.steps))


def _ordered(events: EventLog, spec: FunnelParams, n: int) -> tuple[list[str], str]:
    """CTEs chaining each step to the earliest next-step hit (an ASOF join).

    Most attempts never reach step 2 (a view with no cart within the window after it).
    Unless an exclusion starts at the first step, only the earliest of those can decide
    the unit's result: they all have depth 1, which no exclusion touches then, and ties go
    to the earliest attempt. So they are cut to one per unit, which skips the later steps'
    joins. An attempt can reach step 2 only if the unit has a step-2 hit between the
    attempt's start and a window later, that is only if its start lies between the unit's
    first step-2 hit minus the window and its last one; only these candidates take part in
    the first join. (Attempts need not be distinct here: equal ones give equal results.)
    With ``entry: every`` the cut still holds: an attempt is closed when its start is early
    enough, so if the earliest depth-1 attempt is open, so are all the later ones.
    """
    window = micros(spec.window)
    ctes = ["a0 AS (SELECT unit, t AS st, t AS T0 FROM h0)"]
    names = [s.name for s in spec.steps]
    if not (n > 2 and all(_exclusion_bounds(exc, names)[0] > 0 for exc in spec.exclusions)):
        for k in range(1, n):
            ctes.append(f"a{k} AS ({events.asof_sql(f'a{k - 1}', f'h{k}', key='unit', time=f'T{k - 1}', op='>=', out=f'T{k}')})")
        return ctes, f"a{n - 1}"
    reaches = f"T1 IS NOT NULL AND T1 - st <= {window}"
    ctes += [
        "b1 AS (SELECT unit, min(t) AS lo, max(t) AS hi FROM h1 GROUP BY unit)",
        f"c0 AS (SELECT a0.unit, a0.st, a0.T0, coalesce(a0.st <= b1.hi AND a0.st >= b1.lo - {window}, FALSE) "
        f"AS candidate FROM a0 LEFT JOIN b1 ON a0.unit = b1.unit)",
        "c1 AS (SELECT unit, st, T0 FROM c0 WHERE candidate)",
        f"a1_all AS ({events.asof_sql('c1', 'h1', key='unit', time='T0', op='>=', out='T1')})",
        f"a1 AS (SELECT unit, st, T0, T1 FROM a1_all WHERE {reaches})",
        f"short AS (SELECT unit, min(st) AS st FROM (SELECT unit, st FROM c0 WHERE NOT candidate UNION ALL "
        f"SELECT unit, st FROM a1_all WHERE NOT coalesce({reaches}, FALSE)) AS depth_one GROUP BY unit)",
    ]
    for k in range(2, n):
        ctes.append(f"a{k} AS ({events.asof_sql(f'a{k - 1}', f'h{k}', key='unit', time=f'T{k - 1}', op='>=', out=f'T{k}')})")
    none = ", ".join(f"CAST(NULL AS BIGINT) AS T{k}" for k in range(1, n))
    ctes.append(f"kept AS (SELECT * FROM a{n - 1} UNION ALL SELECT unit, st, st AS T0, {none} FROM short)")
    return ctes, "kept"


def _strict(events: EventLog, n: int) -> tuple[list[str], str]:
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


def _any_order(events: EventLog, n: int) -> tuple[list[str], str]:
    """CTEs finding, from every funnel hit, each step's first hit; T_k = prefix completion."""
    union = " UNION ".join(f"SELECT unit, t FROM h{k}" for k in range(n))
    ctes = [f"f_1 AS (SELECT DISTINCT unit, t AS st FROM ({union}))"]
    for k in range(n):
        prev = f"f{k - 1}" if k else "f_1"
        ctes.append(f"f{k} AS ({events.asof_sql(prev, f'h{k}', key='unit', time='st', op='>=', out=f'F{k}')})")
    # A prefix completes when its latest first-hit happens; greatest() ignores
    # NULLs, so a missing step is handled by the depth cascade, which stops there.
    times = ", ".join((f"greatest({', '.join(f'F{j}' for j in range(k + 1))})" if k else "F0") + f" AS T{k}"
                      for k in range(n))
    ctes.append(f"a AS (SELECT unit, st, {times}, {', '.join(f'F{k}' for k in range(n))} FROM f{n - 1})")
    return ctes, "a"


def _first_found(mode: str) -> str:
    return "F0" if mode == "any_order" else "T0"


def _entry_cte(spec: FunnelParams, attempts: str) -> str:
    """The unit's entry ``e0``: the start of its first attempt that finds the first step in its window."""
    window, first = micros(spec.window), _first_found(spec.mode)
    return (
        f"entered AS (SELECT *, min(CASE WHEN {first} IS NOT NULL AND {first} - st <= {window} THEN st END) "
        f"OVER (PARTITION BY unit) AS e0 FROM {attempts})"
    )


def _depth_sql(spec: FunnelParams, mode: str) -> str:
    """CASE cascade: the first step that fails stops the attempt.

    A step counts when found within the window of the attempt's start and, with
    ``entry: first``, by the end of the unit's window (entry ``e0`` + window)."""
    window = micros(spec.window)
    n = len(spec.steps)

    def in_window(found: str) -> str:
        unit_bound = f" AND {found} <= e0 + {window}" if spec.entry == "first" else ""
        return f"e0 IS NOT NULL AND {found} IS NOT NULL AND {found} - st <= {window}{unit_bound}"

    cases = [f"WHEN NOT ({in_window(_first_found(mode))}) THEN 0"]
    for k in range(1, n):
        found = f"F{k}" if mode == "any_order" else f"T{k}"
        ok = in_window(found)
        max_time = spec.steps[k].max_time
        if max_time is not None:
            ok += f" AND T{k} - T{k - 1} <= {micros(max_time)}"
        cases.append(f"WHEN NOT ({ok}) THEN {k}")
    return "CASE " + " ".join(cases) + f" ELSE {n} END"


def _exclusion_ctes(events: EventLog, spec: FunnelParams, source: str) -> tuple[list[str], str, str]:
    """ASOF-join each exclusion's first event after step a; flag attempts it drops.

    Only attempts past step a can be dropped, so only those, and only their units'
    exclusion events, take part in the join; the others get no exclusion time.
    """
    names = [s.name for s in spec.steps]
    window_end = _window_end(spec)
    ctes, flags, current = [], [], source
    for i, exc in enumerate(spec.exclusions):
        a, b = _exclusion_bounds(exc, names)
        ctes += [
            f"x{i}_l AS (SELECT * FROM {current} WHERE depth > {a})",
            f"x{i}_r AS (SELECT x.unit, x.t FROM x{i} x SEMI JOIN x{i}_l l ON x.unit = l.unit)",
            f"x{i}_j AS ({events.asof_sql(f'x{i}_l', f'x{i}_r', key='unit', time=f'T{a}', op='>', out=f'X{i}')} "
            f"UNION ALL SELECT *, CAST(NULL AS BIGINT) AS X{i} FROM {current} WHERE depth <= {a})",
        ]
        current = f"x{i}_j"
        flags.append(
            f"(depth > {a} AND X{i} IS NOT NULL AND "
            f"CASE WHEN depth > {b} THEN X{i} < T{b} ELSE X{i} <= {window_end} END)"
        )
    return ctes, current, " OR ".join(flags) if flags else "FALSE"


def _window_end(spec: FunnelParams) -> str:
    """SQL for the end of an attempt's window: the unit's (``entry: first``) or its own (``every``)."""
    return f"{'e0' if spec.entry == 'first' else 'st'} + {micros(spec.window)}"


def _closed_attempts(spec: FunnelParams, data_end_us: int) -> str:
    """SQL condition keeping the attempts that may decide a unit's result.

    With ``entry: every`` and censoring, a resolved unit (``e0 + window <= data_end``) counts
    only its attempts whose own window closed by the data end; a censored unit keeps all of
    them for its depth so far. Otherwise every attempt counts.
    """
    if spec.entry == "first" or spec.censoring == "naive":
        return "TRUE"
    window = micros(spec.window)
    return f"(e0 + {window} > {data_end_us} OR st + {window} <= {data_end_us})"


def _best_attempt_key(spec: FunnelParams) -> str:
    """An integer that orders a unit's valid attempts by depth, then by earliest start.

    With ``entry: first`` a valid attempt starts in the unit's window,
    ``0 <= st - e0 <= window``, so ``depth * (window + 1) + window - (st - e0)`` ranks
    it exactly; a plain BIGINT key makes the final arg_max several times cheaper than
    a struct key. With ``entry: every`` attempts start anywhere in the data, so it
    keeps the struct, as do windows so long that the key could overflow.
    """
    window, n = micros(spec.window), len(spec.steps)
    if spec.entry == "every" or (n + 1) * (window + 1) >= 2**62:
        return "struct_pack(d := depth, neg_start := -st)"
    return f"CAST(depth AS BIGINT) * {window + 1} + {window} - (st - e0)"


def _exclusion_bounds(exc: ExclusionSpec, names: list[str]) -> tuple[int, int]:
    if exc.between is None:
        return 0, len(names) - 1
    return names.index(exc.between[0]), names.index(exc.between[1])


def _entries_and_later_steps(events: EventLog, spec: FunnelParams, unit: str, entries: str) -> list[str]:
    """Two CTEs: ``entries`` (each unit's first step-0 time ``t``) and ``later`` (the later steps' events).

    ``later`` holds ``unit, t`` and a flag ``m{k}`` per step k >= 1, from one scan of the log.
    """
    table, time = quote(events.table), f"epoch_us({quote(COLUMNS.event_time)})"
    first = spec.steps[0]
    matches = [match_sql(s.events, s.filters) for s in spec.steps[1:]]
    flags = ", ".join(f"({m}) AS m{k}" for k, m in enumerate(matches, start=1))
    return [
        f"{entries} AS (SELECT {quote(unit)} AS unit, min({time}) AS t FROM {table} "
        f"WHERE {quote(unit)} IS NOT NULL AND {match_sql(first.events, first.filters)} GROUP BY {quote(unit)})",
        f"later AS MATERIALIZED (SELECT {quote(unit)} AS unit, {time} AS t, {flags} FROM {table} "
        f"WHERE {quote(unit)} IS NOT NULL AND ({' OR '.join(f'({m})' for m in matches)}))",
    ]


def _first_attempt(events: EventLog, spec: FunnelParams, unit: str) -> tuple[list[str], str]:
    """CTEs of each unit's first attempt (see :func:`_first_attempt_decides`): ``unit, st, T0..``.

    The first step is one aggregate over its events; each later step is the
    earliest of its events at or after the previous step, by an equi-join on
    the unit and a minimum. Only units still in the chain take part, so the
    work shrinks with every step, and any SQL engine runs it (no ASOF join).
    The later steps' events come from one scan of the log.
    """
    n = len(spec.steps)
    ctes = [*_entries_and_later_steps(events, spec, unit, "h0"), "r0 AS (SELECT unit, t AS T0 FROM h0)"]
    for k in range(1, n):
        ctes.append(f"r{k} AS (SELECT e.unit, min(e.t) AS T{k} FROM later e JOIN r{k - 1} p "
                    f"ON e.unit = p.unit AND e.t >= p.T{k - 1} WHERE e.m{k} GROUP BY e.unit)")
    # the later steps' few units are joined among themselves first, then once onto every unit
    joins = " ".join(f"LEFT JOIN r{k} ON r{k}.unit = r1.unit" for k in range(2, n))
    ctes.append(f"chain AS (SELECT r1.unit, {', '.join(f'r{k}.T{k}' for k in range(1, n))} FROM r1 {joins})")
    steps = ", ".join(f"chain.T{k}" for k in range(1, n))
    ctes.append(f"attempts AS (SELECT h0.unit, h0.t AS st, h0.t AS T0, {steps} "
                f"FROM h0 LEFT JOIN chain ON chain.unit = h0.unit)")
    return ctes, "attempts"


def _second_step_decides(spec: FunnelParams) -> bool:
    """Whether an attempt's result depends on its start only through its first step-1 hit.

    Ordered mode with ``entry: first``: every attempt starts at or after the unit's entry
    ``e0``, so a step found by ``e0 + window`` is also within the attempt's own window. With
    no ``max_time`` on step 1 and no exclusion starting at step 0, nothing else measures from
    the start: attempts with the same step-1 time ``T1`` have the same later steps, depth and
    exclusions, and only the earliest of them can decide the unit's result (ties go to the
    earliest start).
    """
    names = [s.name for s in spec.steps]
    return (spec.entry == "first" and spec.mode == "ordered" and spec.steps[1].max_time is None
            and all(_exclusion_bounds(exc, names)[0] > 0 for exc in spec.exclusions))


def _by_second_step(events: EventLog, spec: FunnelParams, unit: str) -> list[str]:
    """CTEs of the per-unit table (``units``) when :func:`_second_step_decides`: one attempt per step-1 hit.

    The unit's first step-0 hit is its entry ``e0`` (an aggregate). Only step-1 hits ``c``
    in ``[e0, e0 + window]`` can take an attempt past depth 1; the attempts taking ``c``
    are the step-0 hits in ``(c_prev, c]`` (``c_prev`` the unit's previous step-1 time),
    and the earliest of them stands for them all (see :func:`_second_step_decides`). The
    first such group starts at ``e0`` itself; a later one at the first step-0 hit after
    ``c_prev``, and is empty when that comes after ``c``. The later steps are ASOF joins
    from these few step-1 hits, and an exclusion drops a group when one of its events lies
    in ``(T_a, T_b)``, or ``(T_a, e0 + window]`` when step b was not reached. The other
    attempts reach depth 1 and no exclusion touches them: only the earliest matters, which
    is ``e0`` when the unit has no group, and otherwise the first step-0 hit after its last
    group, needed only when every group may be dropped. Each look-up of "the first event of
    a kind in a range" is an ASOF join from the groups into the events of that kind (from one
    scan of the log): one look-up per group instead of one per step-0 hit, none for the units
    (most) with no step-1 hit in their window, and, being sort-merge joins, no work that grows
    with a unit's step-1 hits times its events (a bot with thousands of both stays linear).
    """
    n, window = len(spec.steps), micros(spec.window)
    names = [s.name for s in spec.steps]
    bounds = [_exclusion_bounds(exc, names) for exc in spec.exclusions]
    # the depth does not depend on which start of a group is taken (no max_time on step 1; the
    # unit's window bounds every step), so it is computed with the group's earliest possible start, e0
    ctes = [
        *_entries_and_later_steps(events, spec, unit, "firsts"),
        "entry AS (SELECT unit, t AS e0 FROM firsts)",
        f"g AS (SELECT DISTINCT e.unit, entry.e0, e.t AS T1 FROM later e JOIN entry ON e.unit = entry.unit "
        f"WHERE e.m1 AND e.t >= entry.e0 AND e.t <= entry.e0 + {window})",
        "g1 AS (SELECT unit, e0, e0 AS st, e0 AS T0, T1, lag(T1) OVER (PARTITION BY unit ORDER BY T1) AS prev FROM g)",
    ]
    for k in range(2, n):
        ctes += [f"h{k} AS (SELECT unit, t FROM later WHERE m{k})",
                 f"g{k} AS ({events.asof_sql(f'g{k - 1}', f'h{k}', key='unit', time=f'T{k - 1}', op='>=', out=f'T{k}')})"]
    ctes.append(f"scored AS (SELECT *, {_depth_sql(spec, 'ordered')} AS depth FROM g{n - 1})")
    # look-ups of "the first event of a kind in (lo, hi]", each an ASOF join from the look-ups into the events
    # of its kind: a group's start (a step-0 hit after the previous group's T1), the unit's depth-one start
    # (a step-0 hit after its last group), an exclusion's first event (before T_b when step b was reached,
    # else by the unit's window end)
    conditions = [match_sql(spec.steps[0].events, spec.steps[0].filters)]
    conditions += [c for c in (match_sql(e.events, e.filters) for e in spec.exclusions) if c not in conditions]
    flag = {c: f"m{j}" for j, c in enumerate(conditions)}
    table = quote(events.table)

    def first_in_range(name: str, lookups: str, condition: str) -> list[str]:
        kind = flag[condition]
        return [f"{name}_l AS ({lookups})",
                f"{name}_r AS (SELECT m.unit, m.t FROM marked m SEMI JOIN {name}_l l ON m.unit = l.unit WHERE m.{kind})",
                f"{name} AS (SELECT * FROM ({events.asof_sql(f'{name}_l', f'{name}_r', key='unit', time='lo', op='>', out='t')}) "
                f"AS nearest WHERE t <= hi)"]

    # only the units with a group look anything up: most units have none, and most events are theirs
    ctes.append(f"marked AS (SELECT e.{quote(unit)} AS unit, epoch_us(e.{quote(COLUMNS.event_time)}) AS t, "
                f"{', '.join(f'coalesce({c}, FALSE) AS {m}' for c, m in flag.items())} FROM {table} e "
                f"SEMI JOIN scored s ON e.{quote(unit)} = s.unit "
                f"WHERE {' OR '.join(f'({c})' for c in conditions)})")
    ctes += first_in_range("group_start", "SELECT unit, T1, prev AS lo, T1 AS hi FROM scored WHERE prev IS NOT NULL",
                           conditions[0])
    for i, (a, b) in enumerate(bounds):
        ctes += first_in_range(f"excluded{i}", f"SELECT unit, T1, T{a} AS lo, CASE WHEN depth > {b} THEN T{b} - 1 "
                                               f"ELSE e0 + {window} END AS hi FROM scored WHERE depth > {a}",
                               match_sql(spec.exclusions[i].events, spec.exclusions[i].filters))
    none = ", ".join(f"CAST(NULL AS BIGINT) AS T{k}" for k in range(1, n))
    depth_one = ""
    if bounds:  # every group may be dropped only when the first one (prev IS NULL) may be
        ctes += first_in_range("depth_one", f"SELECT unit, e0, max(T1) AS lo, e0 + {window} AS hi FROM scored "
                                            f"GROUP BY unit, e0 HAVING max(CASE WHEN prev IS NULL THEN depth END) > "
                                            f"{min(a for a, _ in bounds)}", conditions[0])
        ctes.append(f"dropped AS ({' UNION '.join(f'SELECT unit, T1 FROM excluded{i}' for i in range(len(bounds)))})")
        depth_one = f" UNION ALL SELECT unit, e0, t AS st, 1 AS depth, {none} FROM depth_one"
    kept = ("LEFT JOIN dropped d ON d.unit = s.unit AND d.T1 = s.T1 WHERE d.unit IS NULL AND" if bounds else "WHERE")
    clean_times = ", ".join(f"CASE WHEN depth > {k} THEN T{k} END AS T{k}" for k in range(1, n))
    best = _best_attempt_key(spec)
    picks = ", ".join(f"arg_max(T{k}, {best}) AS T{k}" for k in range(n))
    ctes += [
        f"valid AS (SELECT s.unit, s.e0, CASE WHEN s.prev IS NULL THEN s.e0 ELSE g.t END AS st, s.depth, "
        f"{', '.join(f's.T{k}' for k in range(1, n))} FROM scored s "
        f"LEFT JOIN group_start g ON g.unit = s.unit AND g.T1 = s.T1 {kept} (s.prev IS NULL OR g.t IS NOT NULL)"
        f"{depth_one})",
        f"grouped AS (SELECT unit, min(e0) AS entry, arg_max(st, {best}) AS start, max(depth) AS depth, {picks} "
        f"FROM (SELECT unit, e0, st, depth, st AS T0, {clean_times} FROM valid) AS attempts GROUP BY unit)",
        f"units AS (SELECT entry.unit, entry.e0 AS entry, entry.e0 AS start, 1 AS depth, entry.e0 AS T0, {none} "
        f"FROM entry LEFT JOIN (SELECT unit FROM scored WHERE prev IS NULL) AS first_group "
        f"ON first_group.unit = entry.unit WHERE first_group.unit IS NULL "
        f"UNION ALL SELECT * FROM grouped)",
    ]
    return ctes


def build_units_sql(events: EventLog, spec: FunnelParams, data_end_us: int) -> str:
    """SQL for the per-unit table: unit, entry, start, depth, censored, T0..T{n-1}."""
    unit = _check_columns(events, spec)
    n = len(spec.steps)
    times = ", ".join(f"T{k}" for k in range(n))
    censored = "FALSE" if spec.censoring == "naive" else f"entry + {micros(spec.window)} > {data_end_us}"
    depth = _depth_sql(spec, spec.mode)
    clean_times = ", ".join(f"CASE WHEN depth > {k} THEN T{k} END AS T{k}" for k in range(n))
    if _first_attempt_decides(spec):  # one attempt per unit: it is the entry, nothing to pick among
        ctes, attempts = _first_attempt(events, spec, unit)
        ctes += [
            f"entered AS (SELECT *, st AS e0 FROM {attempts})",
            f"scored AS (SELECT *, {depth} AS depth FROM entered)",
            f"units AS (SELECT unit, e0 AS entry, st AS start, depth, {clean_times} FROM scored)",
        ]
    elif _second_step_decides(spec):  # one attempt per step-1 hit
        ctes = _by_second_step(events, spec, unit)
    else:
        # ordered mode takes each step's first hit at or after a time, which duplicates do not change
        distinct = spec.mode != "ordered"
        ctes = [f"h{k} AS ({_hits(events.table, unit, s.events, s.filters, distinct)})"
                for k, s in enumerate(spec.steps)]
        # an exclusion's first event after a time is the same with duplicates: no DISTINCT needed
        ctes += [f"x{i} AS ({_hits(events.table, unit, e.events, e.filters, distinct=False)})"
                 for i, e in enumerate(spec.exclusions)]
        if spec.mode == "ordered":
            mode_ctes, attempts = _ordered(events, spec, n)
        else:
            mode_ctes, attempts = {"strict": _strict, "any_order": _any_order}[spec.mode](events, n)
        exc_ctes, with_x, excluded = _exclusion_ctes(events, spec, "scored")
        best = _best_attempt_key(spec)
        picks = ", ".join(f"arg_max(T{k}, {best}) AS T{k}" for k in range(n))
        ctes += mode_ctes + [
            _entry_cte(spec, attempts),
            f"scored AS (SELECT *, {depth} AS depth FROM entered)",
            *exc_ctes,
            f"valid AS (SELECT unit, st, e0, depth, {clean_times} FROM {with_x} "
            f"WHERE depth > 0 AND {_closed_attempts(spec, data_end_us)} AND NOT ({excluded}))",
            f"units AS (SELECT unit, min(e0) AS entry, arg_max(st, {best}) AS start, max(depth) AS depth, {picks} "
            f"FROM valid GROUP BY unit)",
        ]
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
        Steps, window, mode, unit, entry, exclusions, censoring and attribution
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
    table = unique_name("funnel_units")
    sql = build_units_sql(events, spec, end_us)
    events.create_table(table, sql)
    return FunnelResult(events=events, spec=spec, units_table=table, data_end=end)
