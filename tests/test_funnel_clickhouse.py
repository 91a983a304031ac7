"""``entry: every`` gives ClickHouse's ``windowFunnel`` numbers, checked against ClickHouse itself.

ClickHouse runs in-process through ``chdb`` (the ``dev`` extra). ``windowFunnel(window)(t, c1, ..., cn)``
returns, per user, the furthest level of a chain of events matching ``c1``, ``c2``, ... in time
order, every one within ``window`` of the chain's ``c1`` event, over every ``c1`` event: what
funnelkit's ordered mode counts with ``entry: every``, ``censoring: naive`` (windowFunnel knows no
data end: an open window counts as closed) and ``unit: user``. Both take the window inclusively
(``t <= t1 + window``).

Ties: funnelkit counts simultaneous events as in order (a cart at the instant of its view follows
it). windowFunnel walks a user's events sorted by time; the ClickHouse in the pinned chdb (4.4.0,
ClickHouse 26.9) breaks ties by condition number, which gives the same answer, so the random logs
here have simultaneous events on purpose (integer minutes), and
``test_simultaneous_events_in_either_order_agree`` pins it. Older ClickHouse releases sorted by the
time alone, leaving simultaneous events in the order they arrived: there a log with
second-resolution timestamps can give other numbers.

Modes: only ``ordered`` has a windowFunnel twin. Its ``'strict_order'`` option is not funnelkit's
``strict``: it stops the user's whole search at the first event after a chain's start that matches
no condition (a non-funnel event too), where funnelkit's strict mode ends only that attempt and
ignores non-funnel events.
"""
from __future__ import annotations


import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from funnelkit.eventlog import EventLog
from funnelkit.funnel import run_funnel
from funnelkit.params import FilterSpec, FunnelParams, StepSpec
from funnelkit.schema import COLUMNS
from tests.conftest import optional_module
from tests.test_funnel import TYPES, at


@pytest.fixture(scope="module")
def chdb():
    """The ``chdb`` module: skipped without it locally, a failure under ``CI=true`` (the dev extra has it)."""
    return optional_module("chdb", "dev")


def _condition(step: StepSpec) -> str:
    """A step as a ClickHouse condition on the columns ``ev`` and ``device``."""
    types = ", ".join(f"'{t}'" for t in step.events)
    filters = "".join(f" AND device = '{f.value}'" for f in step.filters)
    return f"(ev IN ({types}){filters})"


def clickhouse_levels(chdb, frame: pd.DataFrame, spec: FunnelParams) -> dict:
    """``{user: windowFunnel level}`` for users with level >= 1, times in microseconds since the epoch."""
    rows = ", ".join(
        f"('{r[COLUMNS.user_id]}', {pd.Timestamp(r[COLUMNS.event_time]).value // 1000}, "
        f"'{r[COLUMNS.event_type]}', '{r['device']}')"
        for r in frame.to_dict("records")
    )
    window_us = int(spec.window.total_seconds() * 1_000_000)
    conditions = ", ".join(_condition(s) for s in spec.steps)
    out = chdb.query(
        f"SELECT user, windowFunnel({window_us})(t, {conditions}) AS level "
        f"FROM values('user String, t UInt64, ev String, device String', {rows}) "
        f"GROUP BY user HAVING level > 0 ORDER BY user",
        "CSV",
    )
    levels = {}
    for line in str(out).splitlines():
        user, level = line.rsplit(",", 1)
        levels[user.strip('"')] = int(level)
    return levels


def funnelkit_levels(frame: pd.DataFrame, spec: FunnelParams) -> dict:
    units = run_funnel(EventLog.from_frame(frame), spec).units(resolved=None)
    return {str(u): int(d) for u, d in zip(units["unit"], units["depth"])}


def _frame(rows) -> pd.DataFrame:
    return pd.DataFrame({COLUMNS.user_id: [r[0] for r in rows], COLUMNS.session_id: [r[0] for r in rows],
                         COLUMNS.event_time: [at(r[1]) for r in rows], COLUMNS.event_type: [r[2] for r in rows],
                         "device": [r[3] for r in rows]})


@st.composite
def visit_logs(draw):
    """Users visiting now and then (a few events close together per visit; integer minutes, so
    simultaneous events are common) and an ordered funnel of 2 to 4 steps with overlapping event types."""
    rows = []
    for user in range(draw(st.integers(1, 8))):
        for _ in range(draw(st.integers(1, 4))):  # visits
            start = draw(st.integers(0, 120))
            for offset in draw(st.lists(st.integers(0, 8), min_size=1, max_size=5)):
                rows.append((f"u{user}", start + offset, draw(st.sampled_from(TYPES)), draw(st.sampled_from(["m", "d"]))))
    steps = []
    for k in range(draw(st.integers(2, 4))):
        events = draw(st.lists(st.sampled_from(TYPES[:4]), min_size=1, max_size=2, unique=True))
        filters = [FilterSpec(column="device", value="m")] if draw(st.integers(0, 4)) == 0 else []
        steps.append(StepSpec(name=f"s{k}", events=events, filters=filters))
    window = draw(st.sampled_from(["3min", "10min", "30min"]))
    return rows, FunnelParams(steps=steps, window=window, entry="every", censoring="naive", unit="user")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(visit_logs())
def test_every_entry_gives_windowfunnel_levels_on_random_logs(chdb, case):
    rows, spec = case
    frame = _frame(rows)
    assert funnelkit_levels(frame, spec) == clickhouse_levels(chdb, frame, spec)


def test_windowfunnel_counts_a_later_view_that_first_entry_does_not(chdb):
    """The known answer both ways: the second view's window reaches purchase."""
    rows = [("a", 0, "view", "m"), ("a", 100, "view", "m"), ("a", 110, "cart", "m"), ("a", 130, "purchase", "m")]
    spec = FunnelParams(steps=[StepSpec(name=e, events=[e]) for e in ("view", "cart", "purchase")],
                        window="1h", entry="every", censoring="naive")
    frame = _frame(rows)
    assert clickhouse_levels(chdb, frame, spec) == funnelkit_levels(frame, spec) == {"a": 3}
    assert funnelkit_levels(frame, spec.model_copy(update={"entry": "first"})) == {"a": 1}


def test_simultaneous_events_in_either_order_agree(chdb):
    """A cart at the instant of its view, written after it or before it: both tools reach the cart.

    funnelkit counts simultaneous events as in order; the assertion on ClickHouse pins what the
    pinned chdb does, so an upgrade that changes its tie rule shows up here (and belongs in the README).
    """
    rows = [("a", 0, "view", "m"), ("a", 0, "cart", "m"),   # written in funnel order
            ("b", 0, "cart", "m"), ("b", 0, "view", "m")]   # written in reverse
    spec = FunnelParams(steps=[StepSpec(name=e, events=[e]) for e in ("view", "cart")],
                        window="1h", entry="every", censoring="naive")
    frame = _frame(rows)
    assert funnelkit_levels(frame, spec) == clickhouse_levels(chdb, frame, spec) == {"a": 2, "b": 2}
