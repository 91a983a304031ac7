"""The funnel engine: ordered funnels over an event log, computed in the log's engine (DuckDB, Spark).

Semantics
---------
A funnel is a list of steps; a step matches events of any of its event types
(OR) that pass its filters. The counting *unit* is the user or the session.
Steps are matched on (unit, time): one event matching two consecutive steps
counts for both, so give steps disjoint event types (or filters) when they
must be distinct events. All times are compared as microseconds since the epoch (UTC).

Attempts
    Every event of the first step starts an attempt (``any_order``: every
    event of any step does). A unit may make many attempts.

Step times within an attempt, by mode
    ``ordered``  step *k* is the earliest step-*k* event at or after step
                 *k-1*'s time (other events may come between; simultaneous
                 events count as in order). Each step is the *first*
                 qualifying event after the previous one, so a per-step
                 maximum time is measured from that first occurrence.
    ``strict``   the unit's funnel events are sorted by time (simultaneous
                 ones in funnel order, exact repeats of a step at one instant
                 collapsed); step *k* must be the very next funnel event
                 after step *k-1*: any other funnel event in between,
                 including a repeat of step *k-1*, ends the attempt.
    ``any_order`` from the attempt's start ``t0``, step *k*'s first event
                 at or after ``t0`` is found for every step; the attempt
                 reaches depth *d* when steps ``0..d-1`` (as a set) all
                 happened. The time of reaching step *k* is when the prefix
                 ``0..k`` became complete (the latest of those first events).

Entry and window (``entry``)
    The unit *enters* the funnel with its first attempt that finds the
    first step within ``window`` of the attempt's start (``ordered`` and
    ``strict``: its first first-step event); its entry time ``e0`` dates it
    for censoring and trends under both rules.

    ``first``    (default) the unit has one window, from its entry to
                 ``e0 + window``: every step of every attempt must happen by
                 then. Whatever happens after it is a new story, not a
                 conversion, so every unit has the same time to convert and
                 the rate is that of a cohort.
    ``every``    every attempt has a window of its own, from its start ``t0``
                 to ``t0 + window``, and nothing else bounds it: a return
                 visit a month later starts an attempt that can convert.
                 This is what ClickHouse's ``windowFunnel`` and PostHog count.
                 A unit's result then depends on how long it was watched and
                 how often it came: more data or more visits give more
                 attempts, so rates are comparable only over periods of equal
                 length, and frequent visitors look better than under
                 ``first``.

Depth
    The attempt reaches step *k* while every step up to *k* was found
    within ``window`` of the attempt's start (every event it uses is at most
    ``window`` after it), with ``entry: first`` also by the end of the
    unit's window, and within the step's ``max_time`` of the previous step
    (``T_k - T_{k-1} <= max_time``). Depth = number of steps reached (an
    attempt that reaches nothing is not an attempt).

Exclusions
    An exclusion (events + filters, between steps *a* and *b*) drops an
    attempt that reached step *a* when an exclusion event happens strictly
    after ``T_a`` and strictly before ``T_b``, or, when step *b* was not
    reached, at or before the end of the attempt's window: the unit's
    (``e0 + window``) with ``entry: first``, the attempt's own
    (``t0 + window``) with ``entry: every``.

Unit result
    The unit's depth is the furthest depth of its remaining attempts; its
    step times come from the earliest attempt (by start) reaching that
    depth. A unit all of whose attempts are dropped is not counted. With
    ``entry: every`` and ``censoring="exclude"`` only the unit's *closed*
    attempts count (below).

Censoring (which the popular analytics tools get wrong)
    A unit is *censored* when its conversion window, counted from its entry,
    had not closed by the end of the data (``entry + window > data_end``),
    whatever it did: its outcome is not yet known. With
    ``censoring="exclude"`` (default) censored units are left out of every
    count and rate and reported separately (``FunnelResult.censored``); they
    are never drop-offs. ``censoring="naive"`` treats the end of the data as
    if every window had closed, as the popular tools do (for comparison).
    The rule depends on entry time only, never on the outcome, and a
    resolved unit's result uses only events up to ``entry + window <=
    data_end``, so every resolved unit had the same time to convert and the
    rates of closed cohorts are comparable.

    With ``entry: every`` an attempt is *closed* when its own window ended by
    the end of the data (``t0 + window <= data_end``) and *open* otherwise.
    A resolved unit's result is the furthest step of its closed attempts;
    its open attempts (started in the data's last ``window``) are left out,
    neither conversions nor drop-offs. A unit with no closed attempt, that
    is one whose first attempt is open (``e0 + window > data_end``), is
    censored: the same units as with ``entry: first``. Only start times
    decide what counts: taking an open attempt when it has converted but not
    when it has not yet would favour converters, and counting it as lost
    would call an open window a drop-off. So a resolved unit's result counts
    its attempts started by ``data_end - window`` and may grow as data
    arrives. ``censoring="naive"`` counts every attempt, open or not, as
    ``windowFunnel`` does.

Breakdown attribution
    A unit's segment value is taken from the event of its first step
    (``first_step``, default) or of the last step it reached
    (``last_step``) in the attempt that gave its result (with ``entry:
    every`` possibly a later attempt than the entry); simultaneous events of
    one step with different values take the smallest value. Trends count a
    unit in the period of its entry under both rules.

Reading the result
    :func:`run_funnel` returns a :class:`FunnelResult`. Its per-unit table
    stays in the engine; other code reads it through
    :meth:`FunnelResult.units_sql` (a relation to join in further queries),
    :meth:`FunnelResult.units` (the rows as pandas) and
    :meth:`FunnelResult.by_period` (counts by period of entry), which select
    units by the step they reached or stopped at and by censoring.

A brute-force reference of these rules lives in ``tests/reference`` and the
engine is checked against it on random logs with hypothesis.
"""
from .engine import run_funnel
from .lift import StepLift, lift_to_best_segment
from .paths import dropoff_paths, transition_matrix
from .result import Breakdown, FunnelResult
from . import study  # so that `from funnelkit import funnel` gives funnel.study.run

__all__ = ["run_funnel", "FunnelResult", "Breakdown", "transition_matrix", "dropoff_paths", "lift_to_best_segment",
           "StepLift"]
