"""Session and user tables for modelling, computed in the log's engine without leaking the outcome.

:func:`session_table` turns an event log into one row per session (or per
user): a 0/1 label saying whether the unit reached an event type, and
features that use only what happened *before* it did. :func:`design_matrix`
turns some of those columns into a numeric design matrix with an intercept
and explicitly chosen baseline levels, named like
:data:`funnelkit.simulate.PLANTED_STEPS` (``device[mobile]``).

Fitting each funnel step's model, as the simulator plants them::

    cart = session_table(events, label="cart")
    checkout = session_table(events, label="checkout", given="cart")
    purchase = session_table(events, label="purchase", given="checkout")
    X, names = design_matrix(cart, ["device", "channel", "customer_type", "log_price", "log_views"],
                             baselines={"device": "desktop", "channel": "organic", "customer_type": "new"})
    y = cart["label"].loc[X.index]

All times are compared as integer microseconds since the epoch (UTC), as in
the funnel engine (``funnelkit.funnel``).
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .errors import DataError, ParamsError, SchemaError
from .eventlog import EventLog
from .params import DriversParams
from .engines import distinct_counts, literal, quote
from .schema import COLUMNS, EVENTS, NUMERIC_TYPES, US_PER_DAY, US_PER_SECOND

__all__ = ["session_table", "design_matrix", "count_column", "UNITS", "INTERCEPT"]

UNITS = ("session", "user")
"""Units :func:`session_table` can build a row for."""

INTERCEPT = "intercept"
"""Name of the constant column of :func:`design_matrix` (as in ``PLANTED_STEPS``)."""



def count_column(event_type: str) -> str:
    """Name of the feature counting ``event_type`` events before the cut-off (``n_view``, ...)."""
    return f"n_{event_type}"


def session_table(events: EventLog, *, label: str = EVENTS.purchase, unit: str = "session",
                  window: dt.timedelta | str | None = None, given: str | None = None,
                  data_end: pd.Timestamp | None = None,
                  reference_price: float = DriversParams().reference_price) -> pd.DataFrame:
    """One row per session (or user): did it reach ``label``, and what happened before.

    Everything is computed in the log's engine; only the one-row-per-unit result
    becomes pandas.

    Parameters
    ----------
    events : EventLog
        The canonical event log (``funnelkit.data.load_events``).
    label : str, default ``"purchase"``
        The event type whose occurrence is the outcome.
    unit : {"session", "user"}, default ``"session"``
        What a row is. ``"session"`` needs the ``session_id`` column.
    window : datetime.timedelta or str, optional
        The label counts only when the unit's first ``label`` event is at
        most ``window`` after the unit's first event (``start + window``
        included); a string is read by :class:`pandas.Timedelta` (``"6h"``,
        ``"7D"``). None (default): no limit, any ``label`` event in the log.
    given : str, optional
        Keep only units with at least one ``given`` event before the cut-off
        (``label="checkout", given="cart"``: the sessions that carted,
        labelled by whether they went on to check out). Must differ from
        ``label``.
    data_end : pandas.Timestamp, optional
        End of the data, for ``censored`` (a naive timestamp is read as UTC);
        default ``events.data_end`` (the last event in the log).
    reference_price : float, default ``drivers.reference_price``'s default
        Price (in the log's currency) at which ``log_price`` is 0: the conversion-drivers study passes
        ``drivers.reference_price`` of the params.

    Returns
    -------
    pandas.DataFrame
        One row per unit, ordered by ``start`` then unit id, default index.
        Columns below; those marked † exist only when the log has the column
        they come from (``session_id``, ``item_id``, ``category``, ``price``).

        Identifiers and outcome

        ``session_id`` (session units only), ``user_id``
            The unit; for a session, its user is the user of its first event.
        ``start`` : Timestamp (UTC)
            Time of the unit's first event.
        ``label`` : int
            1 when the unit has a ``label`` event within ``window`` of
            ``start``, else 0.
        ``cutoff`` : Timestamp (UTC)
            Labelled unit: time of its first ``label`` event. Unlabelled unit:
            ``start + window`` (the end of its window, possibly after the end
            of the data) or, without a window, its last event.
        ``censored`` : bool
            An unlabelled unit whose window had not closed by ``data_end``
            (``start + window > data_end``): its outcome is unknown, not 0.
            Always False without a window (the label then means "in the log";
            units near the end of the data had less time to convert).

        Features: the leakage rule
            Every feature below except ``hour``, ``weekday``, the segments,
            ``returning`` and ``days_since_last_visit`` uses only the unit's
            *behaviour events*: for a labelled unit, its events strictly
            before the cut-off (an event at the same microsecond as the label
            event is not before it); for an unlabelled unit, its events at or
            before the cut-off (with a window: up to ``start + window``;
            without: all of them). A unit whose first event is its label event
            has no behaviour events: it is kept, with counts 0,
            ``dwell_seconds`` 0 and NaN prices. The exceptions describe the
            unit's start (``hour``, ``weekday``, segments) or its past
            (``returning``, ``days_since_last_visit``), all known at its first
            event.

        ``n_view``, ``n_cart``, ``n_checkout``, ``n_purchase`` : int
            Behaviour events of each canonical type (:func:`count_column`);
            ``n_<label>`` is 0 for labelled units by construction.
        ``n_events`` : int
            All behaviour events, including event types outside the funnel.
        ``n_sessions`` † : int
            User units only: distinct sessions among the behaviour events.
        ``distinct_items`` †, ``distinct_categories`` † : int
            Distinct non-null ``item_id`` / ``category`` values among them.
        ``dwell_seconds`` : float
            Seconds from ``start`` to the last behaviour event (0 without any).
        ``price_mean`` †, ``price_max`` † : float
            Mean and maximum ``price`` over behaviour events that have one
            (every event type; an item viewed twice counts twice); NaN when
            none has.
        ``last_viewed_price`` † : float
            ``price`` of the last behaviour ``view`` (simultaneous last views:
            the highest price); NaN without a view or when that view has no
            price.
        ``log_price`` † : float
            ``ln(last_viewed_price / reference_price)``; NaN when
            ``last_viewed_price`` is NaN or not positive (never -inf).
        ``log_views`` : float
            ``ln(n_view)``; NaN when ``n_view`` is 0 (never -inf).
        ``hour`` : int, ``weekday`` : int
            Hour (0-23) and day of week (0 = Monday ... 6 = Sunday) of
            ``start``, in UTC.
        ``returning`` : bool
            Session units only: the user has an event (hence a session) in
            the log strictly before this session's ``start``. Visits before
            the log began are invisible.
        ``days_since_last_visit`` : float
            Session units only: days (86,400 s) from the user's last event
            before ``start`` to ``start``; for sessions that do not overlap
            this is from the end of the previous session. NaN when not
            ``returning``.
        segments : one column per ``events.segments``
            The value at the unit's first event (simultaneous first events:
            the smallest value, nulls last).

    Raises
    ------
    SchemaError
        A column the table needs is missing (user_id, event_time,
        event_type; session_id for session units), ``price`` is not numeric,
        a segment is named like a feature, or ``label``/``given`` is neither a
        canonical event type nor present in the log (a typo). A canonical
        type absent from the log is fine: every label is 0 (or, for
        ``given``, no unit is kept).
    DataError
        The log has no events.
    ParamsError
        Unknown ``unit``, a non-positive or unreadable ``window``, or
        ``given == label``.

    Notes
    -----
    Building a model of one funnel step ``label | given`` this way gives the
    same features the built-in simulator used (``funnelkit.simulate``):
    ``log_price`` is the price of the last item viewed before the step and
    ``log_views`` the log number of views before it.
    """
    if unit not in UNITS:
        raise ParamsError(f"unit must be one of {UNITS}, got {unit!r}")
    if given is not None and given == label:
        raise ParamsError(f"given and label are both {label!r}: no unit has a {label!r} event before its first one")
    window_us = None if window is None else _micros(_duration(window))
    types = _column_types(events)
    _require(events, types, unit)
    if not events.rows(f"SELECT 1 FROM {quote(events.table)} LIMIT 1"):
        raise DataError(f"the events of {_where(events)} are empty: no unit to build a row for")
    _check_event_types(events, {"label": label, "given": given})
    if data_end is None and window_us is not None:  # only censoring needs it (a scan of the log)
        data_end = events.data_end
    data_end_us = None if data_end is None else pd.Timestamp(data_end).value // 1000

    sql = _table_sql(events, types, unit, label, given, window_us, data_end_us, reference_price)
    table = events.query(sql)
    for column in ("start", "cutoff"):  # integer µs: UTC whatever the connection's time zone
        table[column] = pd.to_datetime(table[column].astype("int64"), unit="us", utc=True)
    return table


def design_matrix(table: pd.DataFrame, columns: Sequence[str], *, categorical: Sequence[str] | None = None,
                  baselines: Mapping[str, object] | None = None, drop_first: bool = True,
                  missing: str = "drop") -> tuple[pd.DataFrame, list[str]]:
    """A numeric design matrix with an intercept and one-hot segments.

    Parameters
    ----------
    table : pandas.DataFrame
        Typically the result of :func:`session_table`.
    columns : sequence of str
        Columns to use, in order. Numeric and boolean columns enter as they
        are (booleans as 0/1); categorical ones are one-hot encoded.
    categorical : sequence of str, optional
        Which of ``columns`` to one-hot encode; default: those whose dtype is
        neither numeric nor boolean, plus every key of ``baselines``.
    baselines : mapping, optional
        Column → baseline level, the level left out (absorbed in the
        intercept), e.g. ``{"device": "desktop", "channel": "organic",
        "customer_type": "new"}`` for the simulator's baselines. The level
        must occur among the kept rows (levels are those of the kept rows).
    drop_first : bool, default True
        For categorical columns without a baseline, leave out the first
        level in sorted order. False keeps every level: with the intercept
        the matrix is then rank deficient (for penalised models only).
    missing : {"drop", "raise"}, default ``"drop"``
        Rows with a missing or non-finite value in any used column (e.g.
        ``log_price`` of a session without a view) are dropped, or raise
        a ParamsError.

    Returns
    -------
    X : pandas.DataFrame
        Float columns: ``intercept`` (1.0) first, then each column in
        ``columns`` order: a numeric column under its own name, a
        categorical one as indicators ``name[level]`` for each non-baseline
        level in sorted order. The index is the kept rows' index in
        ``table``, so the outcome is ``table["label"].loc[X.index]``.
    names : list of str
        ``list(X.columns)``.

    Raises
    ------
    SchemaError
        A column is not in ``table``.
    ParamsError
        A baseline or categorical column outside ``columns``, a baseline level
        that does not occur, missing values with ``missing="raise"``, or an
        unknown ``missing``.
    """
    columns = list(columns)
    baselines = dict(baselines or {})
    if missing not in ("drop", "raise"):
        raise ParamsError(f"missing must be 'drop' or 'raise', got {missing!r}")
    absent = [c for c in columns if c not in table.columns]
    if absent:
        raise SchemaError(f"design_matrix: column(s) {absent} not in the table; columns found: "
                          f"{', '.join(map(str, table.columns))}")
    if categorical is None:
        categorical = [c for c in columns if not (pd.api.types.is_numeric_dtype(table[c])
                                                  or pd.api.types.is_bool_dtype(table[c]))]
    outside = [c for c in [*categorical, *baselines] if c not in columns]
    if outside:
        raise ParamsError(f"design_matrix: categorical or baseline column(s) {sorted(set(outside))} are not among "
                          f"columns {columns}")
    categorical = set(categorical) | set(baselines)

    unusable = {c: table[c].isna().to_numpy() if c in categorical else ~np.isfinite(table[c].astype(float).to_numpy())
                for c in columns}
    bad = np.logical_or.reduce([np.zeros(len(table), bool), *unusable.values()])
    if bad.any() and missing == "raise":
        raise ParamsError("design_matrix: missing or non-finite values in "
                          + ", ".join(f"{c} ({int(m.sum()):,} rows)" for c, m in unusable.items() if m.any()))
    kept = table.loc[~bad]

    parts = {INTERCEPT: np.ones(len(kept))}
    for c in columns:
        values = kept[c]
        if c not in categorical:
            parts[c] = values.astype(float).to_numpy()
            continue
        levels = _levels(values)  # of the kept rows: no all-zero indicator
        if c in baselines:
            base = baselines[c]
            if base not in levels:
                raise ParamsError(f"design_matrix: baseline {base!r} of {c!r} does not occur; levels found: "
                                  f"{', '.join(map(str, levels))}")
        else:
            base = levels[0] if drop_first and levels else None
        for level in levels:
            if base is None or level != base:
                parts[f"{c}[{level}]"] = (values == level).to_numpy(dtype=float)
    X = pd.DataFrame(parts, index=kept.index)
    return X, list(X.columns)


# --------------------------------------------------------------------------- helpers

def _levels(values: pd.Series) -> list:
    present = pd.unique(values.dropna())
    try:
        return sorted(present)
    except TypeError:  # mixed types: order by their text
        return sorted(present, key=str)


def _duration(window) -> dt.timedelta:
    if isinstance(window, str):
        try:
            parsed = pd.Timedelta(window)
        except (ValueError, TypeError):
            raise ParamsError(f"window: expected a duration such as '6h' or '7D', got {window!r}") from None
        if pd.isna(parsed):
            raise ParamsError(f"window: expected a duration such as '6h' or '7D', got {window!r}")
        window = parsed.to_pytimedelta()
    if not isinstance(window, dt.timedelta):
        raise ParamsError(f"window: expected a timedelta or a duration string, got {type(window).__name__}")
    if window <= dt.timedelta(0):
        raise ParamsError(f"window must be positive, got {window}")
    return window


def _micros(td: dt.timedelta) -> int:
    return int(td // dt.timedelta(microseconds=1))


def _where(events: EventLog) -> str:
    return events.source or events.table


def _column_types(events: EventLog) -> dict[str, str]:
    return events.column_types()


def _require(events: EventLog, types: dict[str, str], unit: str) -> None:
    needed = list(COLUMNS.required) + ([COLUMNS.session_id] if unit == "session" else [])
    for column in needed:
        if column not in types:
            why = "a required column" if column in COLUMNS.required else "needed for unit='session'"
            raise SchemaError(f"session_table: column {column!r} ({why}) not found in the events of "
                              f"{_where(events)}; columns found: {', '.join(types)}")
    price = types.get(COLUMNS.price)
    if price is not None and not price.startswith(NUMERIC_TYPES):
        raise SchemaError(f"session_table: column {COLUMNS.price!r} has type {price}, expected a number")


def _check_event_types(events: EventLog, wanted: dict[str, str | None]) -> None:
    """A label/given outside the canonical funnel must occur in the log: otherwise it is a typo."""
    unknown = {role: kind for role, kind in wanted.items() if kind is not None and kind not in EVENTS.funnel}
    if not unknown:
        return
    found = sorted(str(row[0]) for row in events.rows(
        f"SELECT DISTINCT {quote(COLUMNS.event_type)} FROM {quote(events.table)}"))
    for role, kind in unknown.items():
        if kind not in found:
            raise SchemaError(f"session_table: {role} event type {kind!r} is neither a canonical event type "
                              f"({', '.join(EVENTS.funnel)}) nor in the events of {_where(events)}; "
                              f"event types found: {', '.join(found)}")


def _table_sql(events: EventLog, types: dict[str, str], unit: str, label: str, given: str | None,
               window_us: int | None, data_end_us: int | None, reference_price: float) -> str:
    """The whole table as one query (columns as documented in :func:`session_table`)."""
    has_item, has_cat, has_price = (c in types for c in (COLUMNS.item_id, COLUMNS.category, COLUMNS.price))
    has_session = COLUMNS.session_id in types
    by_session = unit == "session"
    unit_col = COLUMNS.session_id if by_session else COLUMNS.user_id
    segments = list(events.segments)
    aliases = [f"seg_{i}" for i in range(len(segments))]

    missing_segments = [s for s in segments if s not in types]
    if missing_segments:
        raise SchemaError(f"session_table: segment column(s) {missing_segments} not found in the events of "
                          f"{_where(events)}; columns found: {', '.join(types)}")

    ev_cols = [f"{quote(unit_col)} AS unit", f"{quote(COLUMNS.user_id)} AS uid",
               f"epoch_us({quote(COLUMNS.event_time)}) AS t", f"{quote(COLUMNS.event_type)} AS et"]
    if has_item:
        ev_cols.append(f"{quote(COLUMNS.item_id)} AS item")
    if has_cat:
        ev_cols.append(f"{quote(COLUMNS.category)} AS cat")
    if has_price:
        ev_cols.append(f"CAST({quote(COLUMNS.price)} AS DOUBLE) AS price")
    if not by_session and has_session:
        ev_cols.append(f"{quote(COLUMNS.session_id)} AS sid")
    ev_cols += [f"{quote(s)} AS {a}" for s, a in zip(segments, aliases)]

    if window_us is None:
        labelled = "first_label IS NOT NULL"
        cutoff = "CASE WHEN labelled THEN first_label ELSE last_t END"
        censored = "FALSE"
    else:
        labelled = f"coalesce(first_label <= start + {window_us}, FALSE)"
        cutoff = f"CASE WHEN labelled THEN first_label ELSE start + {window_us} END"
        censored = f"(NOT f.labelled AND f.start + {window_us} > {data_end_us})"

    # One pass over the events computes every feature over *all* the events of each (unit, user, segments)
    # group. That is the answer for most units: one group (one user, each segment one value throughout, so no
    # tie to break at the first instant), unlabelled, nothing after the cut-off. Only the other units (the
    # labelled ones, whose label and later events are left out, and the irregular ones) are computed again
    # from their events with the cut-off known: the features count the events before it (FILTER), the first
    # values are the smallest at the start, nulls last (min skips NULLs). Distinct counts have a grouping of
    # their own (:func:`funnelkit.engines.distinct_counts`).
    before = "(e.t < c.cutoff OR (NOT c.labelled AND e.t <= c.cutoff))"
    at_start = "e.t = c.start"
    distinct = {column: name for column, name, present in (
        ("item", "distinct_items", has_item), ("cat", "distinct_categories", has_cat),
        ("sid", "n_sessions", not by_session and has_session)) if present}

    def aggregates(e: str, keep: str | None) -> dict[str, str]:
        """Feature -> its aggregate over the events (columns ``{e}t``, ...) that satisfy ``keep`` (None: all)."""
        def agg(expression: str, where: str | None = None) -> str:
            conditions = [c for c in (keep, where) if c]
            return expression + (f" FILTER (WHERE {' AND '.join(conditions)})" if conditions else "")

        out = {"n_events": agg("count(*)"), "last_before": agg(f"max({e}t)")}
        out |= {quote(count_column(kind)): agg("count(*)", f"{e}et = {literal(kind)}") for kind in EVENTS.funnel}
        if given is not None:
            out["n_given"] = agg("count(*)", f"{e}et = {literal(given)}")
        out |= {name: agg(f"count(DISTINCT {e}{column})") for column, name in distinct.items()}
        if has_price:
            out |= {"price_mean": agg(f"avg({e}price)"), "price_max": agg(f"max({e}price)"),
                    "last_viewed_price": agg(f"arg_max_null({e}price, {{'t': {e}t, 'p': coalesce({e}price, "
                                             "'-inf'::DOUBLE)})", f"{e}et = {literal(EVENTS.view)}")}
        return out

    cut_whole = aggregates("e.", before)
    whole = {name: agg for name, agg in aggregates("", None).items() if name not in distinct.values()}
    features = list(cut_whole)

    group_keys = ["unit", "uid", *aliases]
    group_cols = [*group_keys, "min(t) AS first_t", "max(t) AS last_t",
                  f"min(t) FILTER (WHERE et = {literal(label)}) AS first_label"]
    group_cols += [f"{agg} AS {name}" for name, agg in whole.items()]

    unit_feat = ["e.unit", "c.start", "c.labelled", "c.cutoff", f"min(e.uid) FILTER (WHERE {at_start}) AS uid"]
    unit_feat += [f"min(e.{a}) FILTER (WHERE {at_start}) AS {a}" for a in aliases]
    unit_feat += [f"{agg} AS {name}" for name, agg in cut_whole.items()]
    feat_names = ["unit", "uid", *aliases, *features]
    regular_names = ["p.unit", "c.start", "c.labelled", "c.cutoff"]
    regular_names += [f"d.{n}" if n in distinct.values() else f"p.{n}" for n in feat_names[1:]]
    distinct_join = "JOIN distinct_counts d ON d.unit = c.unit " if distinct else ""

    ctes = [
        # read again by the distinct counts and the irregular units: storing the log costs more than rescanning
        f"ev AS NOT MATERIALIZED (SELECT {', '.join(ev_cols)} FROM {quote(events.table)} "
        f"WHERE {quote(unit_col)} IS NOT NULL)",
        f"groups AS (SELECT {', '.join(group_cols)} FROM ev GROUP BY {', '.join(group_keys)})",
        # the times per (unit, user) pair, for the user's earlier visits below
        "pairs AS (SELECT unit, uid, min(first_t) AS first_t, max(last_t) AS last_t FROM groups GROUP BY unit, uid)",
        "times AS (SELECT unit, min(first_t) AS start, max(last_t) AS last_t, min(first_label) AS first_label, "
        "count(*) = 1 AS regular FROM groups GROUP BY unit)",
        f"lab AS (SELECT *, {labelled} AS labelled FROM times)",
        f"cut AS (SELECT *, {cutoff} AS cutoff FROM lab)",
        *([f"distinct_counts AS ({distinct_counts('ev', 'unit', distinct)})"] if distinct else []),
        # whole: the unit's features are its one group's (no event after its cut-off)
        "units AS (SELECT *, regular AND NOT labelled AND last_t <= cutoff AS whole FROM cut)",
        f"feat AS (SELECT {', '.join(regular_names)} FROM groups p JOIN units c ON p.unit = c.unit {distinct_join}"
        f"WHERE c.whole UNION ALL SELECT {', '.join(unit_feat)} FROM ev e JOIN units c ON e.unit = c.unit "
        "WHERE NOT c.whole GROUP BY e.unit, c.start, c.labelled, c.cutoff)",
    ]
    joins = ""
    if by_session:
        # The user's latest event strictly before the session's start. Each (user, session) pair's
        # ``reach`` is the latest last event of the user's pairs that began strictly earlier: when it is
        # before the start, it is that latest event (no earlier pair has events at or after the start).
        # Otherwise an earlier session of the user overlaps this one, and only for such sessions (rare)
        # the events are searched, by the engine's nearest-time join.
        ctes += [
            "reach AS (SELECT unit, uid, max(last_t) OVER (PARTITION BY uid ORDER BY first_t "
            "RANGE BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS reach FROM pairs)",
            "starts AS (SELECT f.unit, f.uid, f.start, r.reach FROM feat f JOIN reach r ON r.unit = f.unit "
            "AND r.uid = f.uid)",
            "overlapped AS (SELECT unit, uid, start FROM starts WHERE reach >= start)",
            "user_times AS (SELECT uid, t FROM ev WHERE uid IN (SELECT uid FROM overlapped))",
            "searched AS (" + events.asof_sql("overlapped", "user_times", key="uid", right_key="uid", time="start",
                                              op="<", out="prev_t") + ")",
            "prev AS (SELECT s.unit, CASE WHEN s.reach < s.start THEN s.reach ELSE o.prev_t END AS prev_t "
            "FROM starts s LEFT JOIN searched o ON o.unit = s.unit)",
        ]
        joins = "LEFT JOIN prev p ON p.unit = f.unit"

    # output column -> SQL expression, in the documented order
    out = ({COLUMNS.session_id: "f.unit", COLUMNS.user_id: "f.uid"} if by_session else {COLUMNS.user_id: "f.unit"})
    out |= {"start": "f.start", "label": "CAST(f.labelled AS BIGINT)", "cutoff": "f.cutoff", "censored": censored}
    out |= {count_column(kind): f"coalesce(f.{quote(count_column(kind))}, 0)" for kind in EVENTS.funnel}
    out["n_events"] = "coalesce(f.n_events, 0)"
    for name, present in (("n_sessions", not by_session and has_session), ("distinct_items", has_item),
                          ("distinct_categories", has_cat)):
        if present:
            out[name] = f"coalesce(f.{name}, 0)"
    out["dwell_seconds"] = f"coalesce((f.last_before - f.start) / {float(US_PER_SECOND)!r}, 0.0)"
    if has_price:
        out |= {"price_mean": "f.price_mean", "price_max": "f.price_max", "last_viewed_price": "f.last_viewed_price",
                "log_price": f"CASE WHEN f.last_viewed_price > 0 "
                             f"THEN ln(f.last_viewed_price / {float(reference_price)!r}) END"}
    views = f"f.{quote(count_column(EVENTS.view))}"
    out |= {"log_views": f"CASE WHEN {views} > 0 THEN ln({views}) END",
            "hour": "CAST(hour(make_timestamp(f.start)) AS BIGINT)",
            "weekday": "CAST(isodow(make_timestamp(f.start)) - 1 AS BIGINT)"}
    if by_session:
        out |= {"returning": "p.prev_t IS NOT NULL",
                "days_since_last_visit": f"(f.start - p.prev_t) / {float(US_PER_DAY)!r}"}
    clash = sorted(set(segments) & set(out))
    if clash:
        raise SchemaError(f"session_table: segment column(s) {clash} have the name of a feature column; "
                          f"rename them when loading")
    out |= {segment: f"f.{alias}" for segment, alias in zip(segments, aliases)}

    select = ", ".join(f"{expr} AS {quote(name)}" for name, expr in out.items())
    where = "WHERE coalesce(f.n_given, 0) > 0" if given is not None else ""
    return f"WITH {', '.join(ctes)} SELECT {select} FROM feat f {joins} {where} ORDER BY f.start, f.unit"
