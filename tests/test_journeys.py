"""The journeys study: journeys counted in the engine, the chain against brute force and the planted chain."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from funnelkit import journeys
from funnelkit.errors import ParamsError
from funnelkit.eventlog import EventLog
from funnelkit.groundtruth import Planted
from funnelkit.journeys.paths import journey_counts, state_names
from funnelkit.params import JourneysParams, SimulationParams
from funnelkit.schema import COLUMNS
from funnelkit.simulate import simulate

T0 = pd.Timestamp("2026-03-02", tz="UTC")
HOUR = pd.Timedelta(hours=1)
SEC = pd.Timedelta(seconds=1)


def _log(sessions: list[tuple[str, str, pd.Timestamp, list[str]]]) -> pd.DataFrame:
    """Events of (user, session, start, [event types one second apart]) plus a first and a last session that
    lie at the log's edges (unfinished), so the sessions given are all complete."""
    rows = [("edge", "first", T0, "view"), ("edge", "last", T0 + pd.Timedelta(days=30), "view")]
    for user, session, start, kinds in sessions:
        rows += [(user, session, start + k * SEC, kind) for k, kind in enumerate(kinds)]
    return pd.DataFrame(rows, columns=[COLUMNS.user_id, COLUMNS.session_id, COLUMNS.event_time,
                                       COLUMNS.event_type])


def _first_order(triples: pd.DataFrame) -> dict:
    counts = triples.groupby(["previous", "state"])["n"].sum()
    return {key: int(n) for key, n in counts.items()}


def test_journeys_run_from_start_to_the_first_purchase_or_exit_and_edge_sessions_are_left_out():
    day = T0 + pd.Timedelta(days=10)
    frame = _log([
        ("u1", "s1", day, ["home", "search", "view", "cart", "purchase", "view", "purchase"]),
        ("u1", "s2", day + 5 * HOUR, ["view", "view"]),
        ("u2", "s3", day + 7 * HOUR, ["category", "view"]),
    ])
    counts = journey_counts(EventLog.from_frame(frame), {}, 12)
    assert counts.sessions == 3 and counts.unfinished == 2
    assert _first_order(counts.triples) == {
        ("start", "home"): 1, ("home", "search"): 1, ("search", "view"): 1, ("view", "cart"): 1,
        ("cart", "purchase"): 1,  # what follows the first purchase is not this journey's
        ("start", "view"): 1, ("view", "view"): 1, ("view", "exit"): 2,
        ("start", "category"): 1, ("category", "view"): 1,
    }
    second = counts.triples.dropna(subset=["before"]).groupby(["before", "previous", "state"])["n"].sum()
    assert second[("start", "view", "view")] == 1 and second[("view", "view", "exit")] == 1
    assert second[("category", "view", "exit")] == 1 and second[("search", "view", "cart")] == 1
    # two users, numbered from 0
    assert sorted(counts.triples["user"].unique()) == [0, 1]


def test_events_at_the_same_time_are_ordered_by_state_name_on_every_engine():
    frame = _log([("u1", "s1", T0 + pd.Timedelta(days=3), ["view"])])
    tie = frame.iloc[-1].copy()
    tie[COLUMNS.event_type] = "cart"
    frame = pd.concat([frame, tie.to_frame().T], ignore_index=True)
    counts = journey_counts(EventLog.from_frame(frame), {}, 12)
    assert _first_order(counts.triples) == {("start", "cart"): 1, ("cart", "view"): 1, ("view", "exit"): 1}


def test_states_are_renamed_merged_and_the_rare_ones_folded_into_other():
    event_counts = pd.DataFrame({"event_type": ["product_view", "main", "catalog", "faq", "help", "purchase"],
                                 "events": [100, 50, 40, 3, 2, 1]})
    names = state_names(event_counts, {"product_view": "view", "main": "home", "catalog": "home"}, max_states=3)
    # the funnel's states are always named; of the others the most frequent fill the rest of the three
    assert names == {"product_view": "view", "main": "home", "catalog": "home", "faq": "other", "help": "other",
                     "purchase": "purchase"}
    # one folded state keeps its name: an "other" of one state only hides it
    assert state_names(event_counts.iloc[[0, 1, 3]], {}, max_states=2)["faq"] == "faq"


def test_an_event_named_like_the_virtual_start_or_exit_is_a_clear_error():
    event_counts = pd.DataFrame({"event_type": ["view", "exit"], "events": [5, 1]})
    with pytest.raises(ParamsError, match=r"journeys.states.*'exit'.*exit_page"):
        state_names(event_counts, {}, 12)
    assert state_names(event_counts, {"exit": "exit_page"}, 12)["exit"] == "exit_page"


def _random_log(seed: int, users: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    kinds = np.array(["home", "search", "view", "cart", "checkout", "purchase", "help"])
    sessions = []
    for u in range(users):
        start = T0 + pd.Timedelta(days=2) + pd.Timedelta(minutes=int(rng.integers(0, 60 * 24 * 20)))
        for s in range(int(rng.integers(1, 4))):
            n = int(rng.integers(1, 9))
            sessions.append((f"u{u}", f"u{u}s{s}", start + s * 3 * HOUR,
                             list(rng.choice(kinds, size=n, p=[.15, .15, .4, .12, .06, .07, .05]))))
    return _log(sessions)


def _brute_force_transitions(frame: pd.DataFrame) -> dict:
    """Pure Python: each complete session's states, cut at the first purchase, from start to the end."""
    counts: dict = {}
    for sid, events in frame.groupby(COLUMNS.session_id):
        if sid in ("first", "last"):
            continue
        states = list(events.sort_values([COLUMNS.event_time, COLUMNS.event_type])[COLUMNS.event_type])
        if "purchase" in states:
            states = states[:states.index("purchase") + 1]
        path = ["start", *states] + ([] if states[-1] == "purchase" else ["exit"])
        for a, b in zip(path, path[1:]):
            counts[(a, b)] = counts.get((a, b), 0) + 1
    return counts


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1))
def test_transition_counts_and_conversion_match_a_brute_force_walk_over_every_session(seed):
    frame = _random_log(seed)
    study = journeys.run(EventLog.from_frame(frame), JourneysParams(bootstrap=100, predict=False))
    counted = {(r["from"], r["to"]): r["count"] for _, r in study.transitions.iterrows()}
    expected = _brute_force_transitions(frame)
    assert counted == expected
    # the chain's conversion from start is the share of journeys that bought (maximum likelihood keeps flows)
    bought = sum(n for (a, b), n in expected.items() if b == "purchase")
    assert study.conversion[0] == pytest.approx(bought / study.counts.sessions, abs=1e-12)
    assert study.conversion[1] <= study.conversion[0] <= study.conversion[2]


def test_a_what_if_naming_an_unknown_or_unseen_transition_is_a_clear_error():
    events = EventLog.from_frame(_random_log(1))
    bad = JourneysParams(bootstrap=100, predict=False, what_if=[{"transition": ["delivery", "payment"], "change": 0.1}])
    with pytest.raises(ParamsError, match=r"journeys.what_if\[0\].transition: 'delivery' → 'payment' is not"):
        journeys.run(events, bad)
    frame = _log([("u1", "s1", T0 + pd.Timedelta(days=3), ["view", "cart", "purchase"]),
                  ("u2", "s2", T0 + pd.Timedelta(days=4), ["view", "home"])])
    unseen = JourneysParams(bootstrap=100, predict=False, what_if=[{"transition": ["home", "cart"], "change": 0.1}])
    with pytest.raises(ParamsError, match="no session went from 'home' to 'cart'"):
        journeys.run(EventLog.from_frame(frame), unseen)


def test_a_what_if_on_the_step_before_purchase_adds_the_purchases_the_chain_predicts():
    # every session: view, then cart (half of them), then purchase (half of the carts); 200 sessions
    sessions = []
    for k in range(200):
        path = ["view", "cart", "purchase"] if k % 4 == 0 else ["view", "cart"] if k % 4 == 1 else ["view"]
        sessions.append((f"u{k}", f"s{k}", T0 + pd.Timedelta(days=2) + k * HOUR, path))
    spec = JourneysParams(bootstrap=200, predict=False, what_if=[{"transition": ["cart", "purchase"], "change": 0.2}])
    study = journeys.run(EventLog.from_frame(_log(sessions)), spec)
    row = study.what_ifs.iloc[0]
    # P(view→cart) = 0.5, P(cart→purchase) = 0.5 → 0.6: conversion 0.25 → 0.30, +50 per 1,000 sessions
    assert row["probability"] == pytest.approx(0.5) and row["new_probability"] == pytest.approx(0.6)
    assert row["extra_per_1000"] == pytest.approx(50.0)
    assert row["extra_per_1000_low"] < 50 < row["extra_per_1000_high"]
    assert np.isnan(row["extra_value_per_1000"])  # no prices in this log
    assert "+50.0 purchases per 1,000 sessions" in study.headline()


def test_without_purchases_the_headline_says_how_to_map_the_order_event():
    frame = _log([(f"u{k}", f"s{k}", T0 + pd.Timedelta(days=2) + k * HOUR, ["main", "catalog"]) for k in range(30)])
    study = journeys.run(EventLog.from_frame(frame), JourneysParams(bootstrap=100, predict=False))
    assert study.conversion[0] == 0
    assert "data.event_names" in study.headline()
    assert study.by_state["removal_effect"].isna().all()


# --------------------------------------------------------------------------- against the planted chain

@pytest.fixture(scope="module")
def shop_study(tmp_path_factory):
    params = SimulationParams(seed=11, n_users=20_000, days=28)
    dataset = simulate(params, tmp_path_factory.mktemp("journeys_shop"))
    truth = Planted(dataset)
    study = journeys.run(EventLog.from_parquet(dataset.events_path), JourneysParams(bootstrap=400, predict=False),
                         truth=truth)
    return truth, study


def test_the_planted_transitions_lie_inside_the_bootstrap_intervals(shop_study):
    truth, study = shop_study
    check = truth.journey_check(study)
    assert len(check) >= 25  # every planted transition of the shop's ten states is checked (27)
    # 95% intervals: about one in twenty may miss by chance, none by far (a bias would miss by many widths)
    assert check["inside"].mean() >= 0.88, check[~check["inside"]]
    width = (check["ci_high"] - check["ci_low"]) / (2 * 1.96)
    assert ((check["probability"] - check["planted"]).abs() <= 4 * width + 1e-9).all(), check


def test_the_planted_second_order_effect_is_found(shop_study):
    truth, study = shop_study
    history = study.history.set_index(["previous", "state", "next"])
    planted = truth.journey_chain(order=2).set_index(["previous", "from", "to"])["planted"]
    after_delivery = history.loc[("delivery", "cart_view", "exit")]
    after_cart = history.loc[("cart", "cart_view", "exit")]
    # a cart view after delivery leads out far more often than one after adding to the cart
    assert after_delivery["share_low"] > after_cart["share_high"]
    for key, row in ((("delivery", "cart_view", "exit"), after_delivery), (("cart", "cart_view", "exit"), after_cart)):
        assert row["share_low"] <= planted[key] <= row["share_high"], (key, planted[key], row)
    assert "cart\\_view" in study.headline() and "after delivery" in study.headline()


def test_planted_anomalous_accounts_are_left_out(shop_study):
    truth, study = shop_study
    planted = truth.journey_chain(order=1)
    # the human sessions of the truth (within a few left out at the log's edges)
    starts = planted.loc[planted["from"] == "start", "visits"].iloc[0]
    assert abs(study.counts.sessions - starts) <= 0.01 * starts


def test_session_ids_shared_by_two_users_are_two_journeys():
    # REES46 or a custom log may number each user's sessions from 1
    day = T0 + pd.Timedelta(days=10)
    frame = _log([("u1", "1", day, ["view", "cart", "purchase"]), ("u2", "1", day + 30 * SEC, ["view", "home"])])
    counts = journey_counts(EventLog.from_frame(frame), {}, 12)
    assert counts.sessions == 2
    assert _first_order(counts.triples) == {("start", "view"): 2, ("view", "cart"): 1, ("cart", "purchase"): 1,
                                            ("view", "home"): 1, ("home", "exit"): 1}


def test_no_sessions_chance_to_buy_after_a_checkout_was_capped(shop_study):
    truth, _ = shop_study
    # a capped session would bend the planted logistic purchase model (simulate_journeys.purchase_given_checkout)
    assert truth.ground_truth["journeys"]["capped_sessions"] == 0


def test_the_data_say_how_many_purchases_visited_each_page_beside_the_chains_removal_effect(shop_study):
    truth, study = shop_study
    states = study.by_state.set_index("state")
    # every purchase passed through view and cart; the removal effect of a mandatory step is 100% too
    assert states.at["view", "purchases_through"] == 1 and states.at["cart", "purchases_through"] == 1
    # searchers buy more often (planted): the chain, seeing only the current page, attributes less to search than
    # the share of purchases whose sessions visited it
    search = states.loc["search"]
    assert search["purchases_through_low"] > search["removal_effect_high"]
    assert search["visitors_bought_low"] > search["purchase_probability_high"]
