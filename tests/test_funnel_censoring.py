"""Censoring at the exact end of the window: fixed answers a random log only sometimes draws.

A unit is censored when ``entry + window > data_end``: a unit whose window closes exactly when the data
ends has had its whole window and is resolved (and may convert at that very last microsecond); one
microsecond later it is censored. The property test of test_funnel.py hits this edge only on the draws
that put an entry exactly one window before the last event, so a ``>=`` slips through most runs.
Every test runs on every engine (the ``engine`` fixture of tests/conftest.py).
"""
from __future__ import annotations

import pandas as pd
import pytest

from funnelkit.eventlog import EventLog
from funnelkit.funnel import run_funnel
from funnelkit.params import FunnelParams, StepSpec
from funnelkit.schema import COLUMNS

T0 = pd.Timestamp("2026-03-02", tz="UTC")  # a Monday
WINDOW = pd.Timedelta(days=7)
US = pd.Timedelta(microseconds=1)
VIEW_CART = [StepSpec(name="view", events=["view"]), StepSpec(name="cart", events=["cart"])]


def log_of(rows, engine) -> EventLog:
    """rows: (user, time, event_type); one session per user; the log on ``engine``."""
    frame = pd.DataFrame(rows, columns=[COLUMNS.user_id, COLUMNS.event_time, COLUMNS.event_type])
    frame[COLUMNS.session_id] = "s" + frame[COLUMNS.user_id]
    frame[COLUMNS.event_time] = pd.to_datetime(frame[COLUMNS.event_time]).dt.as_unit("us")
    return EventLog.from_frame(frame, engine)


@pytest.fixture
def edge(engine) -> EventLog:
    """The data end is the last event, T0 + 7 days: exactly the end of the window of whoever entered at T0."""
    return log_of([
        ("closes_at_end", T0, "view"),                      # a drop-off whose window ends with the data: resolved
        ("buys_at_end", T0, "view"), ("buys_at_end", T0 + WINDOW, "cart"),  # carts at the last moment: converted
        ("one_us_late", T0 + US, "view"),                   # its window ends 1 µs after the data: censored
        ("last", T0 + WINDOW, "view"),                      # the last event of the log: censored
    ], engine)


@pytest.mark.parametrize("spec", [
    FunnelParams(steps=VIEW_CART, window="7D"),  # the first attempt decides: the short SQL path
    FunnelParams(steps=[VIEW_CART[0], StepSpec(name="cart", events=["cart"], max_time="30D")], window="7D"),
    FunnelParams(steps=VIEW_CART, window="7D", mode="strict"),
    FunnelParams(steps=VIEW_CART, window="7D", mode="any_order"),
], ids=["ordered", "ordered_max_time", "strict", "any_order"])
def test_a_unit_whose_window_ends_exactly_at_the_data_end_is_resolved(edge, spec):
    result = run_funnel(edge, spec)
    assert result.data_end == T0 + WINDOW
    units = result.units(resolved=None).set_index("unit")
    assert units["censored"].to_dict() == {"closes_at_end": False, "buys_at_end": False,
                                           "one_us_late": True, "last": True}
    assert result.steps["entrants"].tolist() == [2, 1]
    assert result.steps["drop_off"].tolist()[1] == 1
    assert result.steps["censored"].tolist() == [2, 0]
    assert result.censored["units"].tolist() == [2, 0]


def test_an_explicit_data_end_moves_the_edge_by_the_same_rule(edge):
    one_us_earlier = run_funnel(edge, FunnelParams(steps=VIEW_CART, window="7D"), data_end=T0 + WINDOW - US)
    # now the window of the units entering at T0 ends 1 µs after the data: everyone is censored
    assert one_us_earlier.steps["entrants"].tolist() == [0, 0]
    assert one_us_earlier.steps["censored"].iloc[0] == 4
    naive = run_funnel(edge, FunnelParams(steps=VIEW_CART, window="7D", censoring="naive"))
    assert naive.steps["entrants"].tolist() == [4, 1] and naive.steps["censored"].tolist() == [0, 0]


def test_a_trend_period_is_complete_once_its_last_possible_entrant_window_has_closed(engine):
    """Day d is complete when d + 1 day + window <= data end: its last possible entrant is resolved."""
    log = log_of([("a", T0, "view"), ("b", T0 + pd.Timedelta(days=1), "view"),
                  ("c", T0 + pd.Timedelta(days=2), "view")], engine)
    trend = run_funnel(log, FunnelParams(steps=VIEW_CART, window="1D")).trend("day")
    # data end T0 + 2 D: day 0 closes exactly then (complete), day 1 one day later (provisional)
    assert trend["complete"].tolist() == [True, False, False]
    assert trend["entrants"].tolist() == [1, 1, 0]  # b's window T0+1D..T0+2D ends exactly at the data end
    assert trend["censored"].tolist() == [0, 0, 1]
