"""The preflight on tiny crafted logs: what stops a run before any notebook, and what only warns."""
from __future__ import annotations


import pandas as pd
import pytest

from funnelkit.errors import ParamsError, SchemaError
from funnelkit.eventlog import EventLog
from funnelkit.params import parse_params
from funnelkit.preflight import check_events, params_warnings

EVENTS = pd.DataFrame({
    "user_id": ["u1", "u1", "u2", "u2", "u3"],
    "session_id": ["s1", "s1", "s2", "s2", "s3"],
    "event_time": pd.to_datetime(["2026-03-01 10:00", "2026-03-01 10:05", "2026-03-02 09:00", "2026-03-02 09:01",
                                  "2026-03-03 12:00"], utc=True),
    "event_type": ["view", "cart", "view", "view", "purchase"],
    "item_id": ["a", "a", "b", "c", "b"],
    "price": [10.0, 10.0, 20.0, 30.0, 20.0],
    "paid": [False, False, False, False, True],
    "device": ["mobile", "mobile", "desktop", "desktop", "mobile"],
})


@pytest.fixture
def events():
    return EventLog.from_frame(EVENTS)


def funnel(steps=None, **extra):
    steps = steps or [{"name": "view", "events": ["view"]}, {"name": "cart", "events": ["cart"]}]
    # a test period short enough for this two-day log: the recommendation section is checked too
    return parse_params({"funnel": {"steps": steps, **extra}, "recommend": {"test_period": "1h"}})


def step_with_filter(column, op, value):
    return funnel([{"name": "view", "events": ["view"], "filters": [{"column": column, "op": op, "value": value}]},
                   {"name": "cart", "events": ["cart"]}])


def test_range_and_count_of_the_log(events):
    summary = check_events(funnel(), events)
    assert summary.events == 5
    assert summary.first_event == pd.Timestamp("2026-03-01 10:00", tz="UTC")
    assert summary.last_event == pd.Timestamp("2026-03-03 12:00", tz="UTC")
    assert summary.describe() == "5 events from 2026-03-01 10:00:00 to 2026-03-03 12:00:00 UTC (2.1 days)"


def test_step_without_events_lists_the_log_events_by_frequency(events):
    with pytest.raises(ParamsError) as err:
        check_events(funnel([{"name": "view", "events": ["view"]},
                             {"name": "basket", "events": ["add_to_basket", "basket"]}]), events)
    message = str(err.value)
    assert "step 'basket' (events add_to_basket, basket)" in message
    assert "view (3), cart (1), purchase (1)" in message


def test_filtered_step_that_matches_nothing_is_named_with_its_filter(events):
    with pytest.raises(ParamsError, match=r"step 'view' \(events view with filters device == 'tablet'\)"):
        check_events(step_with_filter("device", "==", "tablet"), events)


@pytest.mark.parametrize("column, op, value, phrase", [
    ("price", "<", "cheap", "column 'price' holds number values (DOUBLE), but 'cheap' is a str"),
    ("price", "==", True, "but True is a bool"),
    ("device", "==", 5, "holds text values (VARCHAR), but 5 is a int (write it in quotes, '5'"),
    ("device", "in", ["mobile", 3], "but 3 is a int"),
    ("paid", "==", "maybe", "holds boolean values"),
    ("event_time", ">=", "yesterday-ish", "holds time values"),
    ("colour", "==", "red", "column 'colour' is not in"),
])
def test_filter_values_must_fit_the_column_type(events, column, op, value, phrase):
    with pytest.raises(SchemaError) as err:
        check_events(step_with_filter(column, op, value), events)
    assert phrase in str(err.value)


@pytest.mark.parametrize("column, op, value", [
    ("price", ">=", "10"), ("price", "<", 15), ("device", "in", ["mobile"]), ("paid", "!=", True),
    ("event_time", "<", "2026-03-02"),
])
def test_filter_values_that_fit_pass(events, column, op, value):
    assert check_events(step_with_filter(column, op, value), events).events == 5


def test_breakdown_not_in_the_log_names_its_segments(events):
    with pytest.raises(SchemaError, match=r"breakdown column 'devise'.*segment columns are: paid, device"):
        check_events(funnel(breakdowns=["devise"]), events)
    assert check_events(funnel(breakdowns=["device"]), events).events == 5


def test_a_retention_segment_not_in_the_log_stops_the_run_naming_the_key(events):
    params = parse_params({"funnel": {"steps": [{"name": "view", "events": ["view"]},
                                                {"name": "cart", "events": ["cart"]}]},
                           "recommend": {"test_period": "1h"}, "retention": {"segment": "customer_type"}})
    with pytest.raises(SchemaError, match=r"'customer_type' \(retention.segment\).*segment columns are: paid, device"):
        check_events(params, events)
    assert check_events(params, events, sections=frozenset({"funnel"})).events == 5


def test_a_what_if_on_states_the_log_does_not_have_stops_the_run_naming_the_key(events):
    params = parse_params({"journeys": {"what_if": [{"transition": ["view", "cart"], "change": 0.1},
                                                    {"transition": ["delivery", "payment"], "change": 0.1}]}})
    with pytest.raises(ParamsError, match=r"journeys.what_if\[1\].transition: 'delivery' → 'payment' is not a "
                                          r"transition.*its states are cart, view, and the ends purchase, exit"):
        check_events(params, events, sections=frozenset({"journeys"}))
    # renamed by journeys.states, the log's names become the chain's states
    renamed = parse_params({"journeys": {"states": {"view": "product"},
                                         "what_if": [{"transition": ["product", "cart"], "change": 0.1}]}})
    assert check_events(renamed, events, sections=frozenset({"journeys"})).events == 5


def test_report_warnings_are_passed_on(events):
    class Report:
        def warnings(self):
            return ["14 events before 2000 were left out"]

    events.report = Report()
    assert check_events(funnel(), events).warnings == ["14 events before 2000 were left out"]


@pytest.mark.parametrize("window, last_events, warned", [
    ("7m", ["purchase"], True), ("59min", ["checkout", "purchase"], True), ("1h", ["purchase"], False),
    ("7m", ["cart"], False), ("7D", ["purchase"], False),
])
def test_short_window_on_a_purchase_funnel_warns(window, last_events, warned):
    params = funnel([{"name": "view", "events": ["view"]}, {"name": "end", "events": last_events}], window=window)
    notes = params_warnings(params)
    assert bool(notes) == warned
    if warned:
        assert "minutes" in notes[0]


def test_funnel_checks_are_left_out_when_no_notebook_of_the_run_uses_the_funnel(events):
    typo = funnel([{"name": "view", "events": ["view"]}, {"name": "cart", "events": ["add_to_basket"]}])
    with pytest.raises(ParamsError, match="add_to_basket"):
        check_events(typo, events)
    assert check_events(typo, events, sections=frozenset({"recommend"})).events == 5


def test_recommend_settings_that_fit_no_event_of_the_log_stop_the_run(events):
    assert check_events(funnel(), events, sections=frozenset({"recommend"})).events == 5
    params = parse_params({"recommend": {"weights": {"rating": 1}}})
    with pytest.raises(ParamsError, match=r"recommend.weights: none of the event types \['rating'\]"):
        check_events(params, events, sections=frozenset({"recommend"}))
    params = parse_params({"recommend": {"test_events": ["rating"]}})
    with pytest.raises(ParamsError, match=r"recommend.test_events: none of the event types \['rating'\]"):
        check_events(params, events, sections=frozenset({"recommend"}))
    assert check_events(params, events, sections=frozenset()).events == 5


def test_a_temporal_split_needs_two_test_periods_inside_the_log(events):
    first, last = events.query(f"SELECT min(event_time) AS a, max(event_time) AS b FROM {events.table}").iloc[0]
    span = last - first
    recommend = frozenset({"recommend"})
    fits = parse_params({"recommend": {"test_period": f"{int(span.total_seconds() // 2) - 1}s"}})
    assert check_events(fits, events, sections=recommend).events == 5
    too_long = parse_params({"recommend": {"test_period": f"{int(span.total_seconds() // 2)}s"}})
    with pytest.raises(ParamsError, match="recommend.test_period .* spans"):
        check_events(too_long, events, sections=recommend)
    user_split = parse_params({"recommend": {"test_period": "30D", "split": "user_temporal"}})
    assert check_events(user_split, events, sections=recommend).events == 5


def test_notebooks_declare_the_params_sections_they_use():
    from funnelkit.runner import project_root, sections_used

    notebooks = sorted((project_root() / "notebooks").glob("*.ipynb"))
    used = {nb.name[:2]: sections_used(nb) for nb in notebooks}
    assert used == {"01": {"funnel"}, "02": {"funnel"}, "03": {"recommend"}, "04": {"funnel"}, "05": {"journeys"},
                    "06": {"retention"}}


def test_an_exclusion_that_matches_no_event_is_a_warning_not_an_error(events):
    """An unused exclusion excludes no one: the numbers are right, so the run goes on, with a word about it."""
    params = funnel(exclusions=[{"name": "refund", "events": ["refund"]}])
    summary = check_events(params, events)
    assert summary.warnings == [
        "funnel exclusion 'refund' (events refund) matches no event in the events, so it excludes no one; "
        "if that is a typo, the most frequent event names of the log are: view (3), cart (1), purchase (1)"]
    assert not any("0% conversion" in note for note in summary.warnings)
    assert check_events(funnel(exclusions=[{"name": "buy", "events": ["purchase"]}]), events).warnings == []


@pytest.mark.parametrize("op", ["<", "<=", ">", ">="])
@pytest.mark.parametrize("value", [30, "30"])
def test_ordering_a_text_column_is_refused_as_alphabetical(op, value):
    """CSV segment columns are VARCHAR: ``age > '30'`` would hold for '4' and not for '100'."""
    log = EventLog.from_frame(EVENTS.assign(age=["4", "100", "30", "30", "55"]))
    with pytest.raises(SchemaError) as err:
        check_events(step_with_filter("age", op, value), log)
    message = str(err.value)
    assert f"filter age {op} {value!r}: column 'age' holds text (VARCHAR" in message
    assert "would compare alphabetically" in message and "Parquet file with a numeric column" in message
    assert "quotes" not in message


@pytest.mark.parametrize("op, value", [("==", "30"), ("!=", "30"), ("in", ["30", "55"])])
def test_equality_on_a_text_column_passes(op, value):
    log = EventLog.from_frame(EVENTS.assign(age=["4", "100", "30", "30", "55"]))
    assert check_events(step_with_filter("age", op, value), log).events == 5
