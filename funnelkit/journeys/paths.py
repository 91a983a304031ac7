"""What the journeys study reads from the event log: sessions as sequences of states, counted in the engine.

Definitions
-----------
state
    An event's type, renamed or merged by ``journeys.states``; the :data:`~JourneysParams.max_states` most
    frequent states keep their name (the funnel's step events always do), the others become ``other``.
journey
    A session's states in time order (ties by state name, so every engine orders alike), from the
    virtual state ``start`` to ``purchase`` (the first purchase absorbs: what follows it in the session
    is another journey's business) or to ``exit`` (the session ended without one).
unfinished session
    A session whose last event lies within the session gap (``data.session_gap_minutes``) of the log's
    last event: it may still be going on, so its "exit" is not known. Likewise a session whose first
    event lies within the gap of the log's first event may have begun before the log. Both are left out
    and counted.

Only counts leave the engine: per user, how often each (state two steps back, previous state, state)
occurred — the first-order chain, its second-order refinement and the bootstrap (users resampled) are
all sums of these rows.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..engines import literal, quote, unique_name
from ..errors import ParamsError, SchemaError
from ..eventlog import EventLog
from ..schema import COLUMNS, EVENTS, US_PER_DAY

START, EXIT, OTHER = "start", "exit", "other"
RESERVED = (START, EXIT)
US_PER_MINUTE = US_PER_DAY // (24 * 60)


@dataclass
class JourneyCounts:
    """The journeys of a log, as counts.

    Attributes
    ----------
    triples : DataFrame
        ``user`` (an integer per user), ``before`` (state two steps back; ``start`` for the first step, NULL
        before it), ``previous``, ``state``, ``n``: how often the user's journeys stepped from ``previous``
        to ``state`` having been at ``before`` one step earlier. ``state`` includes ``purchase`` and ``exit``.
    visited : DataFrame
        ``user`` (numbered as in ``triples``), ``state``, ``sessions`` (the user's journeys that visited the
        state at least once) and ``bought`` (those of them that ended in a purchase).
    states : list of str
        The named states (without ``start``, ``purchase``, ``exit``), most visited first.
    sessions : int
        Journeys counted.
    unfinished : int
        Sessions left out because they may have begun before the log or still be going on at its end.
    event_counts : DataFrame
        ``event_type``, ``state``, ``events``: how the log's event names became states.
    names : dict
        Event name → state (:func:`state_names`).
    gap_us : int
        The session gap (µs) that decided which sessions are unfinished.
    order_value : float
        Mean value of an order: the sum of ``price`` over a session's purchase events, averaged over the
        sessions with a priced purchase; NaN without prices.
    """

    triples: pd.DataFrame
    visited: pd.DataFrame
    states: list
    sessions: int
    unfinished: int
    event_counts: pd.DataFrame
    names: dict
    gap_us: int
    order_value: float


def state_names(event_counts: pd.DataFrame, mapping: dict[str, str], max_states: int,
                keep=EVENTS.funnel) -> dict[str, str]:
    """Event name → state: ``mapping`` applied, then every state beyond the ``max_states`` most frequent ``other``.

    Parameters
    ----------
    event_counts : DataFrame
        ``event_type``, ``events`` (the log's event names and their counts).
    mapping : dict
        ``journeys.states``.
    max_states : int
    keep : iterable of str
        States always named (the funnel's step events).
    """
    mapped = {str(e): mapping.get(str(e), str(e)) for e in event_counts["event_type"]}
    reserved = sorted({s for s in mapped.values() if s in RESERVED})
    if reserved:
        names = [e for e, s in mapped.items() if s in reserved]
        raise ParamsError(f"journeys.states: {', '.join(map(repr, reserved))} name the journey's virtual start and "
                          f"end; map the event name(s) {', '.join(map(repr, names))} to another state in "
                          f"journeys.states (e.g. {{{names[0]}: {names[0]}_page}})")
    totals = (event_counts.assign(state=event_counts["event_type"].astype(str).map(mapped))
              .groupby("state")["events"].sum().sort_values(ascending=False, kind="stable"))
    always = [s for s in totals.index if s in set(keep)]
    others = [s for s in totals.index if s not in set(keep)]
    named = set(always + others[:max(max_states - len(always), 0)])
    if len(totals) - len(named) == 1:  # an "other" of one state would only hide its name
        named = set(totals.index)
    return {e: (s if s in named else OTHER) for e, s in mapped.items()}


def _event_counts(events: EventLog) -> pd.DataFrame:
    et = quote(COLUMNS.event_type)
    return events.query(f"SELECT CAST({et} AS VARCHAR) AS event_type, count(*) AS events FROM {quote(events.table)} "
                        f"WHERE {et} IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1")


def journey_states(events: EventLog, mapping: dict[str, str], max_states: int) -> set:
    """The states the journeys of ``events`` pass through (``purchase`` among them when the log has it)."""
    _require(events)
    return set(state_names(_event_counts(events), mapping, max_states).values())


def check_what_ifs(what_if, states, where: str) -> None:
    """Raise ParamsError for the first ``journeys.what_if`` whose transition is not between ``states`` (the
    chain's pages; ``start`` and the ends ``purchase`` and ``exit`` need not be in it) or into an end."""
    ends = {EVENTS.purchase, EXIT}
    pages = set(states) - ends - {START}
    for n, change in enumerate(what_if):
        source, target = change.transition
        if source not in pages or target not in pages | ends:
            raise ParamsError(f"journeys.what_if[{n}].transition: {source!r} → {target!r} is not a transition of the "
                              f"journeys in {where}; its states are {', '.join(sorted(pages)) or 'none'}, and the "
                              f"ends {EVENTS.purchase}, {EXIT} (journeys.states renames or merges event names; "
                              f"beyond journeys.max_states the rarest become 'other')")


def _require(events: EventLog) -> dict[str, str]:
    types = events.column_types()
    needed = [COLUMNS.user_id, COLUMNS.session_id, COLUMNS.event_time, COLUMNS.event_type]
    missing = [c for c in needed if c not in types]
    if missing:
        where = events.source or f"table {events.table}"
        raise SchemaError(f"journeys: column(s) {', '.join(missing)} not found in the events of {where}; "
                          f"columns found: {', '.join(types)}")
    return types


def _session_key() -> str:
    """SQL of a session's key: its user and session id together (the length first, so no two pairs collide).

    A session id need not be unique across users (REES46 or a custom log may number each user's sessions
    from 1): every query here partitions, joins and samples by this key.
    """
    uid = f"CAST({quote(COLUMNS.user_id)} AS VARCHAR)"
    return f"concat(CAST(length({uid}) AS VARCHAR), ':', {uid}, CAST({quote(COLUMNS.session_id)} AS VARCHAR))"


def _journey_ctes(events: EventLog, names: dict[str, str], gap: int) -> str:
    """The CTEs up to ``journey`` (uid, sid, k, state: start = 0, then the states, then exit unless bought) and
    ``finished`` (uid, sid, t0, t1: the complete sessions), in DuckDB's dialect."""
    table = quote(events.table)
    et, t = quote(COLUMNS.event_type), quote(COLUMNS.event_time)
    case = " ".join(f"WHEN {literal(e)} THEN {literal(s)}" for e, s in names.items())
    state_sql = f"CASE CAST({et} AS VARCHAR) {case} END" if names else "CAST(NULL AS VARCHAR)"
    purchase, start, exit_ = literal(EVENTS.purchase), literal(START), literal(EXIT)
    return f"""
WITH ev AS (
  SELECT CAST({quote(COLUMNS.user_id)} AS VARCHAR) AS uid, {_session_key()} AS sid,
         epoch_us({t}) AS t, {state_sql} AS state
  FROM {table}
  WHERE {quote(COLUMNS.user_id)} IS NOT NULL AND {quote(COLUMNS.session_id)} IS NOT NULL AND {t} IS NOT NULL
    AND {et} IS NOT NULL),
span AS (SELECT min(t) AS first_t, max(t) AS last_t FROM ev),
sessions AS (
  SELECT uid, sid, min(t) AS t0, max(t) AS t1,
         min(CASE WHEN state = {purchase} THEN t END) AS bought
  FROM ev GROUP BY uid, sid),
finished AS (
  SELECT s.* FROM sessions s, span
  WHERE s.t0 >= span.first_t + {gap} AND s.t1 <= span.last_t - {gap}),
steps AS (
  SELECT e.uid, e.sid, e.state, e.t,
         row_number() OVER (PARTITION BY e.sid ORDER BY e.t, e.state) AS k
  FROM ev e JOIN finished f ON e.sid = f.sid AND e.uid = f.uid
  WHERE f.bought IS NULL OR e.t <= f.bought),
cut AS (
  -- the first purchase absorbs: nothing after it (ties at its time included, then cut by step number)
  SELECT s.* FROM steps s LEFT JOIN (SELECT sid, min(k) AS kb FROM steps WHERE state = {purchase} GROUP BY sid) b
    ON s.sid = b.sid
  WHERE b.kb IS NULL OR s.k <= b.kb),
journey AS (
  SELECT uid, sid, k, state FROM cut
  UNION ALL SELECT uid, sid, 0, {start} FROM finished
  UNION ALL SELECT uid, sid, max(k) + 1, {exit_} FROM cut GROUP BY uid, sid
    HAVING max(CASE WHEN state = {purchase} THEN 1 ELSE 0 END) = 0)"""


def journey_counts(events: EventLog, mapping: dict[str, str], max_states: int,
                   session_gap_minutes: float = 30.0) -> JourneyCounts:
    """Count the journeys of ``events`` (see the module docstring); everything runs in the log's engine."""
    types = _require(events)
    event_counts = _event_counts(events)
    names = state_names(event_counts, mapping, max_states)
    event_counts["state"] = event_counts["event_type"].map(names)
    gap = int(round(session_gap_minutes * US_PER_MINUTE))
    # the journeys once, as tables the three counts read: each count would otherwise build them again
    # from the events (at 15M events about 15 s each)
    journey, finished = unique_name("journeys"), unique_name("finished_sessions")
    ctes = _journey_ctes(events, names, gap)
    events.create_table(journey, f"{ctes} SELECT uid, sid, k, state FROM journey")
    try:
        events.create_table(finished, f"{ctes} SELECT uid, sid FROM finished")
        triples = events.query(f"""
WITH triples AS (
  SELECT uid, lag(state, 2) OVER w AS before, lag(state, 1) OVER w AS previous, state
  FROM {journey} WINDOW w AS (PARTITION BY sid ORDER BY k))
SELECT dense_rank() OVER (ORDER BY uid) - 1 AS "user", before, previous, state, count(*) AS n
FROM triples WHERE previous IS NOT NULL
GROUP BY uid, before, previous, state
ORDER BY "user", before NULLS FIRST, previous, state""")
        purchase, start, exit_ = literal(EVENTS.purchase), literal(START), literal(EXIT)
        visited = events.query(f"""
WITH users AS (SELECT uid, dense_rank() OVER (ORDER BY uid) - 1 AS u FROM (SELECT DISTINCT uid FROM {finished}) x),
outcome AS (SELECT sid, max(CASE WHEN state = {purchase} THEN 1 ELSE 0 END) AS bought FROM {journey} GROUP BY sid),
seen AS (SELECT DISTINCT uid, sid, state FROM {journey} WHERE state NOT IN ({start}, {purchase}, {exit_}))
SELECT users.u AS "user", seen.state, count(*) AS sessions, sum(outcome.bought) AS bought
FROM seen JOIN outcome ON seen.sid = outcome.sid JOIN users ON seen.uid = users.uid
GROUP BY users.u, seen.state
ORDER BY "user", seen.state""")
        sessions, unfinished = events.rows(f"""{ctes}
SELECT (SELECT count(*) FROM {finished}), (SELECT count(*) FROM sessions) - (SELECT count(*) FROM {finished})""")[0]
    finally:
        for name in (journey, finished):
            events.drop_table(name)
    price = f"CAST({quote(COLUMNS.price)} AS DOUBLE)"
    order_value = _order_value(events, price) if COLUMNS.price in types else float("nan")
    visits = triples.groupby("previous")["n"].sum()
    states = [s for s in visits.sort_values(ascending=False, kind="stable").index
              if s not in (START, EVENTS.purchase, EXIT)]
    return JourneyCounts(triples, visited, states, int(sessions or 0), int(unfinished or 0), event_counts, names,
                         gap, order_value)


@dataclass
class Sequences:
    """Journeys as integer sequences, for the next-event models.

    Attributes
    ----------
    vocabulary : list of str
        ``start``, the named states, ``purchase``, ``exit``: token ``i`` is ``vocabulary[i]``.
    tokens : ndarray of int
        Every journey's tokens one after the other (each begins with ``start`` and ends with ``purchase`` or
        ``exit``).
    offsets : ndarray of int
        Journey ``j`` is ``tokens[offsets[j]:offsets[j + 1]]``; journeys in order of their first event.
    start_us : ndarray of int
        Each journey's first event (µs since the epoch).
    user : ndarray of int
        Each journey's user, numbered from 0.
    sampled_from : int or None
        The complete sessions the journeys were sampled from (None: every one is here).
    """

    vocabulary: list
    tokens: np.ndarray
    offsets: np.ndarray
    start_us: np.ndarray
    user: np.ndarray
    sampled_from: int | None = None

    def __len__(self) -> int:
        return len(self.start_us)

    def subset(self, journeys: np.ndarray) -> "Sequences":
        """The journeys ``journeys`` (indices, in the order given)."""
        lengths = np.diff(self.offsets)[journeys]
        starts = self.offsets[journeys]
        take = np.repeat(starts - np.r_[0, np.cumsum(lengths)[:-1]], lengths) + np.arange(lengths.sum())
        return Sequences(self.vocabulary, self.tokens[take], np.r_[0, np.cumsum(lengths)], self.start_us[journeys],
                         self.user[journeys], self.sampled_from)


def journey_sequences(events: EventLog, counts: JourneyCounts, max_sessions: int | None = None,
                      seed: int = 0) -> Sequences:
    """The journeys of ``events`` as :class:`Sequences` (states as :func:`journey_counts` named them).

    With more complete sessions than ``max_sessions``, a random sample of about ``max_sessions`` of them,
    chosen in the engine by a hash of the session id and ``seed`` (the same on every engine).
    """
    ctes = _journey_ctes(events, counts.names, counts.gap_us)
    sample = ""
    sampled_from = None
    if max_sessions is not None and counts.sessions > max_sessions:
        # the first 8 hex digits of md5 as a number in [0, 16^8): keep those below the share wanted
        threshold = f"{int(16 ** 8 * max_sessions / counts.sessions):08x}"
        sample = f"WHERE substr(md5(concat(sid, {literal(str(seed))})), 1, 8) < {literal(threshold)}"
        sampled_from = counts.sessions
    frame = events.query(f"""{ctes},
chosen AS (SELECT uid, sid, t0 FROM finished {sample})
SELECT dense_rank() OVER (ORDER BY c.t0, c.sid) - 1 AS journey, dense_rank() OVER (ORDER BY c.uid) - 1 AS "user",
       c.t0, j.k, j.state
FROM journey j JOIN chosen c ON j.sid = c.sid AND j.uid = c.uid
ORDER BY journey, j.k""")
    vocabulary = [START, *counts.states, EVENTS.purchase, EXIT]
    code = {s: i for i, s in enumerate(vocabulary)}
    journey = frame["journey"].to_numpy(np.int64)
    first = np.r_[True, journey[1:] != journey[:-1]] if len(journey) else np.zeros(0, bool)
    offsets = np.r_[np.flatnonzero(first), len(journey)].astype(np.int64)
    return Sequences(vocabulary, frame["state"].map(code).to_numpy(np.int64), offsets,
                     frame["t0"].to_numpy(np.int64)[first], frame["user"].to_numpy(np.int64)[first], sampled_from)


def _order_value(events: EventLog, price: str) -> float:
    """Mean order value of the sessions with a purchase: the sum of their purchase events' prices."""
    table, t = quote(events.table), quote(COLUMNS.event_time)
    ((value,),) = events.rows(f"""
SELECT avg(v) FROM (SELECT sum({price}) AS v FROM {table}
                    WHERE {quote(COLUMNS.event_type)} = {literal(EVENTS.purchase)} AND {t} IS NOT NULL
                    GROUP BY {quote(COLUMNS.user_id)}, {quote(COLUMNS.session_id)} HAVING count({price}) > 0)""")
    return float("nan") if value is None else float(value)
