"""What the retention study reads from the event log: small per-period and per-user tables, built in the engine.

Every query is DuckDB SQL run by the log's engine (Spark translates it), so the events
never reach pandas: only counts per (cohort, period), per lifecycle pattern, and one
row per user or per customer do.

Definitions used throughout
---------------------------
visit
    A session (``session_id``); its time is its first event.
new visitor
    A user as first seen in the log: their first visit is their *acquisition*. Users
    who visited before the log began look new too (the log cannot see earlier visits).
return
    A later visit of the same user.
order
    A visit with at least one ``purchase`` event; its time is its first purchase, its value
    the sum of ``price`` over its purchase events (NaN without a ``price`` column).
"""
from __future__ import annotations

import pandas as pd

from ..engines import literal, quote
from ..errors import SchemaError
from ..eventlog import EventLog
from ..schema import COLUMNS, EVENTS, US_PER_DAY

PERIODS = ("week", "month")


def _where(events: EventLog) -> str:
    return f"{events.source}" if events.source else f"table {events.table}"


def require_columns(events: EventLog, segment: str | None) -> dict[str, str]:
    """The log's column types, after checking it has what the study reads (a clear error otherwise)."""
    types = events.column_types()
    needed = [COLUMNS.user_id, COLUMNS.session_id, COLUMNS.event_time, COLUMNS.event_type]
    if segment is not None:
        needed.append(segment)
    missing = [c for c in needed if c not in types]
    if missing:
        raise SchemaError(f"retention: column(s) {', '.join(missing)} not found in the events of {_where(events)}; "
                          f"columns found: {', '.join(types)}"
                          + ("" if segment is None or segment in types else
                             f" (retention.segment names {segment!r})"))
    return types


def _events_cte(events: EventLog, types: dict[str, str], segment: str | None) -> str:
    price = (f"CAST({quote(COLUMNS.price)} AS DOUBLE)" if COLUMNS.price in types else "CAST(NULL AS DOUBLE)")
    seg = f"CAST({quote(segment)} AS VARCHAR)" if segment else "CAST(NULL AS VARCHAR)"
    return (f"ev AS (SELECT CAST({quote(COLUMNS.user_id)} AS VARCHAR) AS uid, "
            f"CAST({quote(COLUMNS.session_id)} AS VARCHAR) AS sid, epoch_us({quote(COLUMNS.event_time)}) AS t, "
            f"{quote(COLUMNS.event_type)} AS et, {price} AS price, {seg} AS seg FROM {quote(events.table)} "
            f"WHERE {quote(COLUMNS.user_id)} IS NOT NULL AND {quote(COLUMNS.session_id)} IS NOT NULL)")


def _visits_ctes(events: EventLog, types: dict[str, str], segment: str | None) -> str:
    """CTEs ``ev`` (events), ``visits`` (one row per session, numbered per user) and ``orders`` (numbered)."""
    purchase = literal(EVENTS.purchase)
    return ", ".join([
        _events_cte(events, types, segment),
        "sessions AS (SELECT uid, sid, min(t) AS start, "
        f"min(CASE WHEN et = {purchase} THEN t END) AS bought_at, "
        f"sum(CASE WHEN et = {purchase} THEN price END) AS value, min(seg) AS seg FROM ev GROUP BY uid, sid)",
        "visits AS (SELECT *, row_number() OVER (PARTITION BY uid ORDER BY start, sid) AS k FROM sessions)",
        "orders AS (SELECT uid, bought_at AS start, value, "
        "row_number() OVER (PARTITION BY uid ORDER BY bought_at, sid) AS j FROM sessions WHERE bought_at IS NOT NULL)",
    ])


def cohort_counts(events: EventLog, period: str, return_event: str | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Users per cohort, and users of each cohort active in each calendar period.

    Returns
    -------
    sizes : DataFrame
        ``cohort`` (period start, UTC), ``users``: users whose first event is in that period.
    active : DataFrame
        ``cohort``, ``period`` (period start, UTC), ``users``: users of the cohort with at least one
        ``return_event`` event (any event when None) in the period.
    """
    if period not in PERIODS:
        raise ValueError(f"period must be one of {PERIODS}, got {period!r}")
    types = require_columns(events, None)
    trunc = f"date_trunc('{period}', make_timestamp(%s))"
    condition = "TRUE" if return_event is None else f"et = {literal(return_event)}"
    ctes = ", ".join([
        _events_cte(events, types, None),
        f"firsts AS (SELECT uid, {trunc % 'min(t)'} AS cohort FROM ev GROUP BY uid)",
        f"act AS (SELECT DISTINCT uid, {trunc % 't'} AS period FROM ev WHERE {condition})",
    ])
    sizes = events.query(f"WITH {ctes} SELECT cohort, count(*) AS users FROM firsts GROUP BY cohort")
    active = events.query(f"WITH {ctes} SELECT f.cohort, a.period, count(*) AS users FROM act a "
                          f"JOIN firsts f ON f.uid = a.uid GROUP BY f.cohort, a.period")
    for frame in (sizes, active):
        for column in ("cohort", "period"):
            if column in frame:  # naive on DuckDB (make_timestamp), UTC-aware from Spark: UTC either way
                frame[column] = pd.to_datetime(frame[column], utc=True)
        frame["users"] = frame["users"].astype("int64")
    return sizes.sort_values("cohort", ignore_index=True), active.sort_values(["cohort", "period"], ignore_index=True)


def activity_patterns(events: EventLog, period: str) -> pd.DataFrame:
    """Users per (period, their previous active period, their next active period, new or not).

    Enough to classify every active user of every period (new, returning, resurrecting)
    and every user who went dormant, in pandas, from a table of at most periods³ rows.
    ``previous``/``next`` are NaT when there is none.
    """
    if period not in PERIODS:
        raise ValueError(f"period must be one of {PERIODS}, got {period!r}")
    types = require_columns(events, None)
    ctes = ", ".join([
        _events_cte(events, types, None),
        f"act AS (SELECT DISTINCT uid, date_trunc('{period}', make_timestamp(t)) AS period FROM ev)",
        "seq AS (SELECT uid, period, lag(period) OVER (PARTITION BY uid ORDER BY period) AS previous, "
        "lead(period) OVER (PARTITION BY uid ORDER BY period) AS next FROM act)",
    ])
    frame = events.query(f"WITH {ctes} SELECT period, previous, next, previous IS NULL AS is_new, count(*) AS users "
                         f"FROM seq GROUP BY period, previous, next, previous IS NULL")
    for column in ("period", "previous", "next"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    frame["users"] = frame["users"].astype("int64")
    frame["is_new"] = frame["is_new"].astype(bool)
    return frame.sort_values(["period", "previous", "next"], ignore_index=True)


def user_timeline(events: EventLog, segment: str | None = None) -> pd.DataFrame:
    """One row per user: their first two visits and first two orders.

    Returns
    -------
    DataFrame
        ``user_id``; ``first_visit``, ``second_visit`` (µs since the epoch, ``second_visit``
        null without a return); ``visits``; ``first_order``, ``second_order`` (µs, null
        without); ``orders``; ``segment`` (the value at the first visit: the smallest among
        its events; null without ``segment``). Integer columns are nullable ``Int64``.
    """
    types = require_columns(events, segment)
    ctes = _visits_ctes(events, types, segment)
    frame = events.query(
        f"WITH {ctes}, "
        "v AS (SELECT uid, max(CASE WHEN k = 1 THEN start END) AS first_visit, "
        "max(CASE WHEN k = 2 THEN start END) AS second_visit, count(*) AS visits, "
        "max(CASE WHEN k = 1 THEN seg END) AS segment FROM visits GROUP BY uid), "
        "o AS (SELECT uid, max(CASE WHEN j = 1 THEN start END) AS first_order, "
        "max(CASE WHEN j = 2 THEN start END) AS second_order, count(*) AS orders FROM orders GROUP BY uid) "
        f"SELECT v.uid AS {quote(COLUMNS.user_id)}, v.first_visit, v.second_visit, v.visits, o.first_order, "
        "o.second_order, coalesce(o.orders, 0) AS orders, v.segment FROM v LEFT JOIN o ON o.uid = v.uid "
        f"ORDER BY v.uid")
    for column in ("first_visit", "second_visit", "visits", "first_order", "second_order", "orders"):
        frame[column] = frame[column].astype("Int64")
    frame["segment"] = frame["segment"].astype(object).where(frame["segment"].notna(), None)
    return frame


def customer_summary(events: EventLog, cut: pd.Timestamp, *, unit_us: int = US_PER_DAY) -> pd.DataFrame:
    """The recency-frequency-value summary of every customer whose first order is before ``cut``.

    Orders (visits with a purchase) are the transactions, as in the BG/NBD model: the
    first order is the customer's time 0.

    Returns
    -------
    DataFrame
        ``user_id``; ``frequency``: repeat orders before ``cut``; ``recency``: time from the
        first to the last order before ``cut``; ``T``: time from the first order to ``cut``
        (both in ``unit_us`` microseconds, days by default); ``monetary_value``: mean value
        of the repeat orders before ``cut`` (NaN without repeat orders or prices);
        ``holdout_frequency``: orders at or after ``cut`` (the whole log's end bounds them).
    """
    types = require_columns(events, None)
    cut_us = int(pd.Timestamp(cut).value // 1000)
    unit = float(unit_us)
    return events.query(
        f"WITH {_visits_ctes(events, types, None)}, "
        f"firsts AS (SELECT uid, start AS first FROM orders WHERE j = 1 AND start < {cut_us}) "
        f"SELECT f.uid AS {quote(COLUMNS.user_id)}, "
        f"CAST(count(*) FILTER (WHERE o.start < {cut_us}) - 1 AS BIGINT) AS frequency, "
        f"(max(o.start) FILTER (WHERE o.start < {cut_us}) - f.first) / {unit!r} AS recency, "
        f"({cut_us} - f.first) / {unit!r} AS T, "
        f"avg(o.value) FILTER (WHERE o.start < {cut_us} AND o.j > 1) AS monetary_value, "
        f"CAST(count(*) FILTER (WHERE o.start >= {cut_us}) AS BIGINT) AS holdout_frequency "
        f"FROM firsts f JOIN orders o ON o.uid = f.uid GROUP BY f.uid, f.first ORDER BY f.uid")
