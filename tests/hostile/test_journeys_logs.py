"""Notebook 05 (journeys) end to end on crafted public-format logs: states from many event names, no pages."""
from __future__ import annotations

import pytest

from . import logs
from .test_missing_inputs import _metrics, _run

pytestmark = pytest.mark.notebooks  # executes notebooks end to end (slow)

JOURNEYS = "05_journeys"
CLICKSTREAM = {"format": "custom", "columns": {"event_type": "event", "event_time": "timestamp"},
               "assume_timezone": "UTC", "event_names": {"payment_done": "purchase"}}


def test_a_clickstream_with_many_event_names_becomes_the_states_the_params_name(tmp_path):
    source = logs.clickstream_csv(tmp_path / "events.csv", n_users=300)
    # the raw "cart" is the cart page and "add_to_cart" the action: the states say so
    states = {"product": "view", "main": "home", "catalog": "category", "cart": "cart_view", "add_to_cart": "cart"}
    run = _run(tmp_path, source, notebooks=("05",), data=CLICKSTREAM,
               journeys={"states": states, "max_states": 8, "bootstrap": 200,
                         "what_if": [{"transition": ["cart", "purchase"], "change": 0.1}]})
    assert run["result"].code == 0, run["result"].output
    assert run["rows"][JOURNEYS]["status"] == "ok", run["rows"][JOURNEYS]
    metrics = _metrics(run, JOURNEYS)
    conversion = metrics["session_conversion"]
    assert 0 < conversion["ci"][0] < conversion["value"] < conversion["ci"][1] < 1
    # eight states named (the funnel's view and cart among them), the two rarest others folded into "other"
    assert metrics["states"]["value"] == 8
    page = run["pages"][JOURNEYS]
    for state in ("cart_view", "category", "home", "other"):
        assert state in page
    assert "What if cart → purchase changed by +10%" in page
    assert "there is no planted chain to compare with" in page


def test_a_log_without_pages_still_gets_its_chain(tmp_path):
    source = logs.rees46_csv(tmp_path / "events.csv", n_users=300)
    run = _run(tmp_path, source, notebooks=("05",), data={"format": "rees46"}, journeys={"bootstrap": 200})
    assert run["result"].code == 0, run["result"].output
    metrics = _metrics(run, JOURNEYS)
    assert metrics["states"]["value"] == 3  # view, cart and remove_from_cart: REES46 has no other pages
    # the funnel's steps are on every purchase's path: the one state beside them is the one attributed
    assert metrics["largest_removal_effect"]["label"].startswith("Purchases lost if the remove_from_cart state")
    assert "sessions end in a purchase" in run["pages"][JOURNEYS]


def test_a_what_if_on_a_state_the_log_lacks_stops_the_run_before_any_notebook(tmp_path):
    source = logs.rees46_csv(tmp_path / "events.csv", n_users=100)
    run = _run(tmp_path, source, notebooks=("05",), data={"format": "rees46"},
               journeys={"what_if": [{"transition": ["delivery", "payment"], "change": 0.1}]})
    assert run["result"].code == 2
    assert "journeys.what_if[0].transition: 'delivery' → 'payment' is not a transition" in run["result"].output
