"""The recommendation study: confidence matrix, leak-free splits, models, evaluation, explanations,
the simulator's planted tastes and the whole study (``recommend.run``); crafted logs against a brute
force, a planted block problem that ALS must solve, and a small simulated shop against its ground truth."""
from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import threading
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from funnelkit import recommend
from funnelkit.data import load_events
from funnelkit.errors import DataError, ParamsError, SchemaError
from funnelkit.eventlog import EventLog
from funnelkit.groundtruth import planted_preference_scores, planted_taste_overlap
from funnelkit.params import (ALSSettings, BPRSettings, FunnelParams, RecommendParams, SimulationParams,
                              SweepGrid)
from funnelkit.recommend import (ALSRecommender, BPRRecommender, Evaluation, ItemKNNRecommender,
                                 PopularityRecommender, RandomRecommender, chosen_settings, confidence_matrix,
                                 default_cutoff, evaluate, evaluation_users, leave_last_out, make_split,
                                 models_from_params, sweep, temporal_split, top_k, user_temporal_split,
                                 validation_split)
from funnelkit.recommend import explain, metrics
from funnelkit.recommend.evaluate import FitPool, bpr_model
from funnelkit.simulate import simulate
from tests.reference import recommend_bruteforce as brute

T0 = pd.Timestamp("2026-03-02", tz="UTC")
COLUMNS = ["user_id", "event_type", "item_id", "event_time"]


def at(hours: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(hours=hours)


def frame_of(rows) -> pd.DataFrame:
    """Canonical frame from (user, type, item, hours after T0 or a Timestamp) rows."""
    return pd.DataFrame([(u, e, i, h if isinstance(h, pd.Timestamp) else at(h)) for u, e, i, h in rows],
                        columns=COLUMNS)


def dense(interactions) -> np.ndarray:
    return interactions.matrix.toarray().astype(np.float64)


def pairs_of(matrix: sp.spmatrix, user_ids, item_ids) -> set:
    """(user id, item id) of the stored entries of ``matrix``."""
    coo = sp.coo_matrix(matrix)
    return {(str(user_ids[r]), str(item_ids[c])) for r, c in zip(coo.row, coo.col)}


def assert_matches_brute(interactions, frame, spec, *, as_of=None):
    expected, users, items, removed = brute.confidence(frame, spec, as_of=as_of)
    np.testing.assert_array_equal(interactions.user_ids, users)
    np.testing.assert_array_equal(interactions.item_ids, items)
    np.testing.assert_allclose(dense(interactions), expected, rtol=1e-6, atol=0)
    assert interactions.removed == removed


# ---------------------------------------------------------------------------
# the confidence matrix on a crafted log
# ---------------------------------------------------------------------------
#   u10: view a, checkout a                      -> a = 1 + 6 = 7 (a view without item is ignored)
#   u2 : view b, view b, cart b; purchase a      -> b = 1 + 1 + 4 = 6, a = 10 (a click on c is ignored)
#   u3 : view c, purchase c; cart b              -> c = 1 + 10 = 11, b = 4
#   item d only ever has an unweighted event ("wishlist"): no column.
#   Ids sort as strings: u10 < u2 < u3.
MATRIX_ROWS = [
    ("u2", "view", "b", 1), ("u2", "view", "b", 2), ("u2", "cart", "b", 3), ("u2", "click", "c", 4),
    ("u2", "purchase", "a", 5),
    ("u10", "view", "a", 1), ("u10", "checkout", "a", 2), ("u10", "view", None, 3), ("u10", "wishlist", "d", 4),
    ("u3", "view", "c", 6), ("u3", "purchase", "c", 7), ("u3", "cart", "b", 8),
]
MATRIX_EXPECTED = np.array([[7, 0, 0], [10, 6, 0], [0, 4, 11]], dtype=float)


@pytest.fixture(scope="module")
def matrix_log():
    frame = frame_of(MATRIX_ROWS)
    return frame, EventLog.from_frame(frame)


def test_confidence_matrix_sums_event_weights_per_pair_with_sorted_ids(matrix_log):
    frame, log = matrix_log
    spec = RecommendParams()
    result = confidence_matrix(log, spec)
    assert result.user_ids.tolist() == ["u10", "u2", "u3"]
    assert result.item_ids.tolist() == ["a", "b", "c"]
    np.testing.assert_array_equal(dense(result), MATRIX_EXPECTED)
    assert result.matrix.dtype == np.float32 and sp.isspmatrix_csr(result.matrix)
    assert result.removed == {"users": 0, "items": 0, "pairs": 0}
    assert_matches_brute(result, frame, spec)
    assert result.user_index(["u3", "nobody", "u10"]).tolist() == [2, -1, 0]
    assert result.item_index(["d", "a"]).tolist() == [-1, 0]


def test_confidence_matrix_uses_the_given_weights_only(matrix_log):
    frame, log = matrix_log
    spec = RecommendParams(weights={"cart": 2.0, "click": 3.0, "view": 0.0})
    result = confidence_matrix(log, spec)
    # u2: cart b = 2, click c = 3; u3: cart b = 2; views, checkouts and purchases count nothing
    assert result.user_ids.tolist() == ["u2", "u3"] and result.item_ids.tolist() == ["b", "c"]
    np.testing.assert_array_equal(dense(result), [[2, 3], [2, 0]])
    assert_matches_brute(result, frame, spec)


def test_decay_halves_an_event_one_half_life_before_as_of():
    as_of = at(48)
    frame = frame_of([("u1", "view", "a", 24), ("u1", "cart", "a", 48), ("u1", "view", "b", 0),
                      ("u1", "purchase", "c", 30)])
    spec = RecommendParams(decay_half_life=dt.timedelta(hours=24))
    result = confidence_matrix(EventLog.from_frame(frame), spec, as_of=as_of)
    # a: view one half-life old (1 × 0.5) + cart at as_of (4 × 1); b: two half-lives (0.25);
    # c: 18 h old, 10 × 0.5 ** 0.75
    np.testing.assert_allclose(dense(result), [[4.5, 0.25, 10 * 0.5 ** 0.75]], rtol=1e-6)
    assert_matches_brute(result, frame, spec, as_of=as_of)
    with pytest.raises(ValueError, match="as_of"):
        confidence_matrix(EventLog.from_frame(frame), spec)


@pytest.mark.parametrize("min_item, min_user, removed", [
    # c has one user: removed; then every user keeps at least one item
    (2, 1, {"users": 0, "items": 1, "pairs": 1}),
    # no item is rare; u10 has one item: removed
    (1, 2, {"users": 1, "items": 0, "pairs": 1}),
    # c removed first, which leaves u3 with b only: u3 goes too, and u10 (a only) as well
    (2, 2, {"users": 2, "items": 1, "pairs": 3}),
])
def test_minimum_counts_remove_items_first_then_users(matrix_log, min_item, min_user, removed):
    frame, log = matrix_log
    spec = RecommendParams(min_item_interactions=min_item, min_user_interactions=min_user)
    result = confidence_matrix(log, spec)
    assert result.removed == removed
    assert_matches_brute(result, frame, spec)


def test_minimum_counts_keep_only_u2_when_both_bars_are_two(matrix_log):
    _, log = matrix_log
    result = confidence_matrix(log, RecommendParams(min_item_interactions=2, min_user_interactions=2))
    assert result.user_ids.tolist() == ["u2"] and result.item_ids.tolist() == ["a", "b"]
    np.testing.assert_array_equal(dense(result), [[10, 6]])


@pytest.mark.parametrize("weighting", ["bm25", "tfidf"])
def test_bm25_and_tfidf_equal_implicits_helpers_on_the_unweighted_matrix(matrix_log, weighting):
    from implicit.nearest_neighbours import bm25_weight, tfidf_weight

    _, log = matrix_log
    plain = confidence_matrix(log, RecommendParams()).matrix
    expected = bm25_weight(plain, K1=100, B=0.8) if weighting == "bm25" else tfidf_weight(plain)
    result = confidence_matrix(log, RecommendParams(weighting=weighting))
    np.testing.assert_allclose(dense(result), sp.csr_matrix(expected).toarray(), rtol=1e-6, atol=1e-7)
    assert not np.allclose(dense(result), plain.toarray())  # the reweighting did something


def test_confidence_matrix_leaves_the_input_frame_unmodified():
    frame = frame_of(MATRIX_ROWS)
    before = frame.copy(deep=True)
    log = EventLog.from_frame(frame)
    confidence_matrix(log, RecommendParams(weighting="bm25", min_item_interactions=2))
    temporal_split(log, RecommendParams(), cutoff=at(4))
    pd.testing.assert_frame_equal(frame, before)


def test_log_without_item_id_is_refused_naming_the_column():
    frame = frame_of(MATRIX_ROWS).drop(columns="item_id")
    with pytest.raises(SchemaError, match="item_id"):
        confidence_matrix(EventLog.from_frame(frame), RecommendParams())


def test_weights_naming_no_event_type_of_the_log_are_refused(matrix_log):
    _, log = matrix_log
    with pytest.raises(ParamsError, match="like"):
        confidence_matrix(log, RecommendParams(weights={"like": 1.0, "share": 2.0}))


# ---------------------------------------------------------------------------
# temporal split: no leakage, and the truth's documented drops
# ---------------------------------------------------------------------------
#   cut-off at hour 100.
#   u1: views a, b; cart b 1 µs before the cut-off (training); cart c AT the cut-off (test);
#       purchase a (test, but a is in u1's history: seen); checkout b and view d (not test types)
#   u2: view c; cart a at hour 150; purchase z (item unknown in training); a cart without item
#   u3: only test-period events (cold user); u5: only an unweighted click before (cold user)
#   u4: view a; cart b at the cut-off and again later (one pair)
SPLIT_CUTOFF = at(100)
SPLIT_ROWS = [
    ("u1", "view", "a", 10), ("u1", "view", "b", 20), ("u1", "cart", "b", at(100) - pd.Timedelta(microseconds=1)),
    ("u1", "cart", "c", 100), ("u1", "purchase", "a", 120), ("u1", "checkout", "b", 110), ("u1", "view", "d", 130),
    ("u2", "view", "c", 5), ("u2", "cart", "a", 150), ("u2", "purchase", "z", 160), ("u2", "cart", None, 170),
    ("u3", "view", "a", 101), ("u3", "cart", "a", 105),
    ("u4", "view", "a", 50), ("u4", "cart", "b", 100), ("u4", "purchase", "b", 200),
    ("u5", "click", "b", 30), ("u5", "purchase", "c", 140),
]


@pytest.fixture(scope="module")
def split_log():
    frame = frame_of(SPLIT_ROWS)
    return frame, EventLog.from_frame(frame)


def truth_pairs(split) -> set:
    return pairs_of(split.truth, split.train.user_ids, split.train.item_ids)


def test_temporal_split_on_crafted_log_known_answer(split_log):
    _, log = split_log
    split = temporal_split(log, RecommendParams(), cutoff=SPLIT_CUTOFF)
    assert split.kind == "temporal" and split.cutoff == SPLIT_CUTOFF and split.end is None
    assert split.train.user_ids.tolist() == ["u1", "u2", "u4"]
    assert split.train.item_ids.tolist() == ["a", "b", "c"]
    # the cart of b 1 µs before the cut-off counts (1 + 4); the cart of c at the cut-off does not
    np.testing.assert_allclose(dense(split.train), [[1, 5, 0], [0, 0, 1], [1, 0, 0]])
    assert truth_pairs(split) == {("u1", "c"), ("u2", "a"), ("u4", "b")}
    assert split.counts == {"test_pairs": 7, "cold_user_pairs": 2, "cold_item_pairs": 1, "seen_pairs": 1,
                            "kept_pairs": 3, "test_users": 3, "cold_users": 2}
    assert split.test_users.tolist() == [0, 1, 2]
    assert split.truth.shape == split.train.shape and set(split.truth.data) == {1.0}
    assert split.counts_frame()["count"].tolist() == [7, 2, 1, 1, 3, 3, 2]


@pytest.mark.parametrize("spec", [
    RecommendParams(),
    RecommendParams(exclude_seen=False),
    RecommendParams(decay_half_life=dt.timedelta(hours=30)),
    RecommendParams(test_events=["purchase", "checkout"], weights={"view": 1.0, "cart": 3.0}),
], ids=["default", "keep-seen", "decay", "other-test-events"])
def test_temporal_split_trains_only_on_events_strictly_before_the_cutoff(split_log, spec):
    frame, log = split_log
    split = temporal_split(log, spec, cutoff=SPLIT_CUTOFF)
    # the decay is measured at the cut-off
    assert_matches_brute(split.train, brute.before(frame, SPLIT_CUTOFF), spec, as_of=SPLIT_CUTOFF)
    expected_train = brute.confidence(brute.before(frame, SPLIT_CUTOFF), spec, as_of=SPLIT_CUTOFF)[0]
    test = brute.period_pairs(frame, spec.test_events, SPLIT_CUTOFF)
    expected, counts = brute.truth(test, expected_train, split.train.user_ids, split.train.item_ids,
                                   spec.exclude_seen)
    assert truth_pairs(split) == expected
    assert split.counts == counts


def test_temporal_split_keeps_seen_pairs_in_the_truth_when_exclude_seen_is_false(split_log):
    _, log = split_log
    kept = temporal_split(log, RecommendParams(exclude_seen=False), cutoff=SPLIT_CUTOFF)
    assert truth_pairs(kept) == {("u1", "c"), ("u2", "a"), ("u4", "b"), ("u1", "a")}
    assert kept.counts["seen_pairs"] == 0 and kept.counts["kept_pairs"] == 4


def test_temporal_split_end_is_exclusive(split_log):
    _, log = split_log
    split = temporal_split(log, RecommendParams(), cutoff=SPLIT_CUTOFF, end=at(150))
    assert split.end == at(150)
    # u2's cart of a at hour 150 (= end) and purchase of z at 160 are outside [cut-off, end)
    assert truth_pairs(split) == {("u1", "c"), ("u4", "b")}
    assert split.counts["test_pairs"] == 5 and split.counts["cold_item_pairs"] == 0


def test_temporal_split_without_training_events_raises(split_log):
    _, log = split_log
    with pytest.raises(DataError, match="no training interactions"):
        temporal_split(log, RecommendParams(), cutoff=at(1))




@pytest.mark.parametrize("spec, cutoff", [
    pytest.param(RecommendParams(exclude_seen=False), at(300), id="no-test-events-keep-seen"),
    pytest.param(RecommendParams(), at(300), id="no-test-events"),
])
def test_temporal_split_without_a_usable_test_pair_raises_data_error(split_log, spec, cutoff):
    _, log = split_log
    with pytest.raises(DataError, match="no test interaction"):
        temporal_split(log, spec, cutoff=cutoff)


def test_test_events_absent_from_the_log_are_a_params_error_naming_the_key(split_log):
    _, log = split_log
    with pytest.raises(ParamsError, match=r"recommend.test_events.*purchased"):
        temporal_split(log, RecommendParams(test_events=["purchased"]), cutoff=SPLIT_CUTOFF)


def test_temporal_split_whose_test_pairs_are_all_cold_raises_data_error():
    # u2 buys for the first time (cold user); u1 buys an item nobody had seen (cold item)
    log = EventLog.from_frame(frame_of([("u1", "view", "a", 0), ("u2", "cart", "a", 30), ("u1", "purchase", "z", 30)]))
    with pytest.raises(DataError, match="no test interaction"):
        temporal_split(log, RecommendParams(), cutoff=at(24))


def test_default_cutoff_is_midnight_of_cutoff_or_log_end_minus_test_period(split_log):
    _, log = split_log
    assert default_cutoff(log, RecommendParams(cutoff=dt.date(2026, 3, 5))) == pd.Timestamp("2026-03-05", tz="UTC")
    # the log ends at hour 200 = 2026-03-10 08:00; minus 14 days = 2026-02-24 08:00, floored
    assert log.data_end == at(200)
    assert default_cutoff(log, RecommendParams()) == pd.Timestamp("2026-02-24", tz="UTC")
    assert default_cutoff(log, RecommendParams(test_period=dt.timedelta(days=2))) == \
        pd.Timestamp("2026-03-08", tz="UTC")


HOURS = 48
HYPOTHESIS_CUTOFF = 24


@st.composite
def small_logs(draw):
    rows = draw(st.lists(st.tuples(
        st.sampled_from(["u0", "u1", "u2", "u3"]),
        st.sampled_from(["view", "cart", "checkout", "purchase", "click"]),
        st.sampled_from(["i0", "i1", "i2", "i3", "i4", None]),
        st.integers(0, HOURS)), min_size=1, max_size=25))
    spec = RecommendParams(exclude_seen=draw(st.booleans()), min_item_interactions=draw(st.integers(1, 2)),
                           decay_half_life=draw(st.sampled_from([None, dt.timedelta(hours=6)])))
    return frame_of(rows), spec


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_logs())
def test_temporal_split_property_no_truth_pair_is_a_training_pair_or_before_the_cutoff(case):
    frame, spec = case
    cutoff = at(HYPOTHESIS_CUTOFF)
    log = EventLog.from_frame(frame)
    present = set(frame["event_type"])
    if not present & {t for t, w in spec.weights.items() if w > 0} or not present & set(spec.test_events):
        with pytest.raises(ParamsError):
            temporal_split(log, spec, cutoff=cutoff)
        return
    train_frame = brute.before(frame, cutoff)
    expected_train, users, items, _ = brute.confidence(train_frame, spec, as_of=cutoff)
    if not expected_train.any():
        with pytest.raises(DataError):
            temporal_split(log, spec, cutoff=cutoff)
        return
    test = brute.period_pairs(frame, spec.test_events, cutoff)
    expected_truth, counts = brute.truth(test, expected_train, users, items, spec.exclude_seen)
    if not expected_truth:
        with pytest.raises(DataError):
            temporal_split(log, spec, cutoff=cutoff)
        return
    split = temporal_split(log, spec, cutoff=cutoff)
    np.testing.assert_array_equal(split.train.user_ids, users)
    np.testing.assert_array_equal(split.train.item_ids, items)
    truth = truth_pairs(split)
    assert truth == expected_truth and split.counts == counts
    np.testing.assert_allclose(dense(split.train), expected_train, rtol=1e-6)
    train = pairs_of(split.train.matrix, split.train.user_ids, split.train.item_ids)
    if spec.exclude_seen:
        assert not truth & train
    late = {(u, i) for u, e, i, t in frame[COLUMNS].itertuples(index=False)
            if e in spec.test_events and t >= cutoff}
    assert truth <= late




@pytest.mark.parametrize("spec, rows", [
    pytest.param(RecommendParams(weighting="bm25"),
                 [("u1", "view", "x", 0), ("u2", "view", "x", 0), ("u3", "view", "x", 0), ("u4", "view", "y", 0),
                  ("u1", "view", "y", 1), ("u1", "cart", "x", 30), ("u2", "cart", "y", 30)],
                 id="bm25-idf-zero"),
    pytest.param(RecommendParams(weighting="tfidf"),
                 [("u1", "view", "x", 0), ("u2", "view", "x", 0), ("u3", "view", "x", 0), ("u4", "view", "y", 0),
                  ("u1", "view", "y", 1), ("u1", "cart", "x", 30), ("u2", "cart", "y", 30)],
                 id="tfidf-idf-zero"),
    pytest.param(RecommendParams(decay_half_life=dt.timedelta(hours=1)),
                 [("u1", "view", "x", 0), ("u1", "view", "y", 23), ("u2", "view", "x", 23),
                  ("u1", "cart", "x", 30), ("u2", "cart", "y", 30)],
                 id="decay-still-representable"),
    pytest.param(RecommendParams(decay_half_life=dt.timedelta(hours=1)),
                 [("u1", "view", "x", -200), ("u1", "view", "y", 23), ("u2", "view", "x", 23),
                  ("u1", "cart", "x", 30), ("u2", "cart", "y", 30)],
                 id="decay-underflows-float32"),
])
def test_truth_never_holds_a_pair_the_models_treat_as_seen(spec, rows):
    """u1 has x in training and carts it in the test period: with exclude_seen the pair must leave the
    truth (the models, which skip every stored training entry, can never recommend it)."""
    split = temporal_split(EventLog.from_frame(frame_of(rows)), spec, cutoff=at(24))
    stored = pairs_of(split.train.matrix, split.train.user_ids, split.train.item_ids)
    assert ("u1", "x") in stored
    assert not truth_pairs(split) & stored
    assert split.counts["seen_pairs"] == 1
    # what the models do with it: popularity (top_k) and ALS (implicit) both skip it for u1
    u1, x = split.train.user_index(["u1"])[0], split.train.item_index(["x"])[0]
    train = split.train.matrix
    assert x not in PopularityRecommender().fit(train).recommend(np.array([u1]), train, 2)[0]


def test_validation_split_ends_at_the_test_cutoff(planted):
    frame, log, spec, split = planted
    validation = validation_split(log, spec, split)
    start = split.cutoff - pd.Timedelta(spec.test_period)
    assert validation.kind == "temporal" and validation.cutoff == start and validation.end == split.cutoff
    assert_matches_brute(validation.train, brute.before(frame, start), spec, as_of=start)
    expected_train, users, items, _ = brute.confidence(brute.before(frame, start), spec)
    test = brute.period_pairs(frame, spec.test_events, start, split.cutoff)
    expected, counts = brute.truth(test, expected_train, users, items, spec.exclude_seen)
    assert truth_pairs(validation) == expected and validation.counts == counts
    # the test period's truth is not in it: every validation pair has an event in [start, cut-off)
    assert truth_pairs(validation).isdisjoint(truth_pairs(split))


def test_make_split_follows_spec_split(split_log):
    _, log = split_log
    assert make_split(log, RecommendParams(cutoff=dt.date(2026, 3, 6))).kind == "temporal"
    assert make_split(log, RecommendParams(split="leave_last_out")).kind == "leave_last_out"


# ---------------------------------------------------------------------------
# leave-last-out
# ---------------------------------------------------------------------------
#   u1: held out c (purchase at 5); trains on a (views at 0 and 4) and b (view 1 + cart 2); the view of c
#       at 1 (held item) and the view of b at 6 (after the held event) are dropped
#   u2: cart a and purchase b both at hour 3: the tie goes to the larger item id, b; the cart of a at the
#       held time is dropped too (only events strictly before it train)
#   u3: never carts: all events kept, including the view of b at hour 20, after everyone's held event
#   u4: held out a (cart at 10); its view of b at 30 is dropped
#   u5: a cart only: held out, no training history (cold user)
LLO_ROWS = [
    ("u1", "view", "a", 0), ("u1", "view", "b", 1), ("u1", "view", "c", 1), ("u1", "cart", "b", 2),
    ("u1", "view", "a", 4), ("u1", "purchase", "c", 5), ("u1", "view", "b", 6),
    ("u2", "view", "a", 0), ("u2", "view", "c", 2), ("u2", "cart", "a", 3), ("u2", "purchase", "b", 3),
    ("u3", "view", "a", 1), ("u3", "view", "b", 20),
    ("u4", "view", "c", 0), ("u4", "cart", "a", 10), ("u4", "view", "b", 30),
    ("u5", "cart", "d", 1),
]


@pytest.fixture(scope="module")
def llo_log():
    frame = frame_of(LLO_ROWS)
    return frame, EventLog.from_frame(frame)


def test_leave_last_out_holds_out_each_users_last_cart_or_purchase_ties_to_larger_item(llo_log):
    frame, log = llo_log
    spec = RecommendParams(split="leave_last_out")
    split = leave_last_out(log, spec)
    assert split.kind == "leave_last_out" and split.cutoff is None
    held = brute.held_out(frame, spec.test_events)
    assert {u: i for u, (i, _) in held.items()} == {"u1": "c", "u2": "b", "u4": "a", "u5": "d"}
    assert truth_pairs(split) == {("u1", "c"), ("u2", "b"), ("u4", "a")}
    assert split.counts["test_pairs"] == 4 and split.counts["cold_user_pairs"] == 1
    assert split.counts["cold_users"] == 1
    # deterministic: the same again
    assert truth_pairs(leave_last_out(log, spec)) == truth_pairs(split)


def test_leave_last_out_training_drops_the_held_pair_and_the_users_later_events(llo_log):
    frame, log = llo_log
    spec = RecommendParams(split="leave_last_out")
    split = leave_last_out(log, spec)
    assert split.train.user_ids.tolist() == ["u1", "u2", "u3", "u4"]
    assert split.train.item_ids.tolist() == ["a", "b", "c"]
    np.testing.assert_array_equal(dense(split.train), [[2, 5, 0], [1, 0, 1], [1, 1, 0], [0, 0, 1]])
    assert_matches_brute(split.train, brute.leave_last_out_training(frame, spec.test_events), spec)
    train = pairs_of(split.train.matrix, split.train.user_ids, split.train.item_ids)
    assert not truth_pairs(split) & train
    for user, (item, time) in brute.held_out(frame, spec.test_events).items():
        if user not in split.train.user_ids:
            continue
        own = frame[(frame["user_id"] == user) & (frame["event_time"] < time) & (frame["item_id"] != item)]
        row = split.train.user_index([user])[0]
        expected = brute.pair_weights(own, spec.weights)
        got = {(user, split.train.item_ids[c]): float(v) for c, v in
               zip(split.train.matrix[row].indices, split.train.matrix[row].data)}
        assert got == pytest.approx(expected)


def test_leave_last_out_cross_user_leakage_other_users_later_events_are_trained_on(llo_log):
    """Documented leakage: u3's view of b at hour 20 is after u1's held purchase (hour 5) and u4's
    held cart (hour 10), yet it trains the model that is then asked about u1 and u4."""
    _, log = llo_log
    split = leave_last_out(log, RecommendParams(split="leave_last_out"))
    u3, b = split.train.user_index(["u3"])[0], split.train.item_index(["b"])[0]
    assert split.train.matrix[u3, b] == 1.0


def test_leave_last_out_validation_holds_out_the_last_remaining_item(llo_log):
    frame, log = llo_log
    spec = RecommendParams(split="leave_last_out")
    validation = validation_split(log, spec, leave_last_out(log, spec))
    remaining = brute.leave_last_out_training(frame, spec.test_events)
    assert validation.kind == "leave_last_out"
    # only u1 (cart b at 2) has a test-type event left; its training drops b and everything from hour 2 on
    assert truth_pairs(validation) == {("u1", "b")}
    assert_matches_brute(validation.train, brute.leave_last_out_training(remaining, spec.test_events), spec)


# ---------------------------------------------------------------------------
# top-k and the baselines
# ---------------------------------------------------------------------------


def brute_top_k(scores: np.ndarray, seen: np.ndarray | None, k: int) -> np.ndarray:
    out = np.full((scores.shape[0], k), -1)
    for u, row in enumerate(scores):
        eligible = [i for i in range(len(row)) if seen is None or not seen[u, i]]
        ranked = sorted(eligible, key=lambda i: -row[i])[:k]
        out[u, :len(ranked)] = ranked
    return out


@pytest.mark.parametrize("seed", range(8))
def test_top_k_equals_a_brute_force_sort_and_pads_with_minus_one(seed):
    rng = np.random.default_rng(seed)
    n, m = rng.integers(1, 9), rng.integers(1, 12)
    scores = rng.permutation(n * m).reshape(n, m) - n * m / 2.0  # distinct, some negative
    seen = rng.random((n, m)) < 0.4
    seen[0] = True  # a user who has seen everything gets only padding
    for k in (1, 3, m, m + 2):
        np.testing.assert_array_equal(top_k(scores, sp.csr_matrix(seen), k), brute_top_k(scores, seen, k))
        np.testing.assert_array_equal(top_k(scores, None, k), brute_top_k(scores, None, k))
    got = top_k(scores, sp.csr_matrix(seen), m)
    assert (got[0] == -1).all()
    assert not any(seen[u, i] for u, row in enumerate(got) for i in row if i >= 0)


def test_popularity_ranks_by_distinct_training_users_not_weights():
    # item 0: 3 users; item 1: 3 users; item 2: 1 user with weight 100; item 3: 2 users; item 4: nobody
    train = sp.csr_matrix(np.array([
        [1, 1, 100, 0, 0],
        [1, 1, 0, 1, 0],
        [2, 5, 0, 1, 0],
        [0, 0, 0, 0, 0],
    ], dtype=np.float32))
    model = PopularityRecommender().fit(train)
    # ties (items 0 and 1) go to the lower index
    assert model.recommend(np.array([3]), train, 5).tolist() == [[0, 1, 3, 2, 4]]
    assert model.recommend(np.array([0, 1]), train, 3).tolist() == [[3, 4, -1], [2, 4, -1]]
    assert model.recommend(np.array([0]), train, 3, exclude_seen=False).tolist() == [[0, 1, 3]]


def test_random_recommender_is_deterministic_per_seed_and_roughly_uniform():
    n_users, n_items = 4000, 20
    train = sp.csr_matrix((n_users, n_items), dtype=np.float32)
    users = np.arange(n_users)
    first = RandomRecommender(seed=3).fit(train).recommend(users, train, n_items)
    again = RandomRecommender(seed=3).fit(train).recommend(users, train, n_items)
    other = RandomRecommender(seed=4).fit(train).recommend(users, train, n_items)
    np.testing.assert_array_equal(first, again)
    assert (first != other).any()
    # every row is a permutation of the catalogue
    assert (np.sort(first, axis=1) == np.arange(n_items)).all()
    for rank in (0, 5, n_items - 1):
        counts = np.bincount(first[:, rank], minlength=n_items)
        assert stats.chisquare(counts).pvalue > 1e-3, rank


def test_random_recommender_never_returns_seen_items():
    rng = np.random.default_rng(1)
    train = sp.csr_matrix((rng.random((50, 12)) < 0.5).astype(np.float32))
    got = RandomRecommender(seed=0).fit(train).recommend(np.arange(50), train, 12)
    seen = train.toarray() > 0
    for u, row in enumerate(got):
        assert sorted(row[row >= 0]) == np.flatnonzero(~seen[u]).tolist()


def implicits_own_filter(model, users: np.ndarray, train: sp.csr_matrix, k: int) -> np.ndarray:
    """The lists of implicit's own ``filter_already_liked_items`` (a sparse-row slice per user), −1 padding:
    what the implicit models returned before they filtered seen items themselves."""
    n = min(k, train.shape[1])
    ids, scores = model.model_.recommend(users.astype(np.int32), train[users], N=n, filter_already_liked_items=True)
    ids, scores = np.asarray(ids).reshape(len(users), n), np.asarray(scores).reshape(len(users), n)
    seen = (train[users].toarray() != 0)[np.arange(len(users))[:, None], ids]
    out = np.full((len(users), k), -1)
    out[:, :n] = np.where(~np.isfinite(scores) | (scores <= -1e30) | seen, -1, ids)
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n_users=st.integers(1, 260), n_items=st.integers(1, 40),
       density=st.floats(0.0, 0.9), k=st.integers(1, 45), ties=st.integers(0, 6),
       make=st.sampled_from(["ALS", "BPR"]))
def test_implicit_models_give_the_lists_of_implicits_own_filter_of_seen_items(seed, n_users, n_items, density, k,
                                                                              ties, make):
    # the models drop seen items from a wider unfiltered list; implicit filters them user by user. Copied
    # item factors make exact ties (also at the last place kept, where implicit's filter decides)
    rng = np.random.default_rng(seed)
    cells = rng.random((n_users, n_items)) < density
    cells[rng.integers(n_users), :] = rng.random(n_items) < 0.95  # a user who has seen (almost) everything
    train = sp.csr_matrix(cells * rng.integers(1, 5, size=cells.shape), dtype=np.float32)
    model = (ALSRecommender(factors=4, iterations=3, threads=1) if make == "ALS"
             else BPRRecommender(factors=4, iterations=3, threads=1)).fit(train)
    for _ in range(ties if n_items > 1 else 0):
        source, target = rng.choice(n_items, 2, replace=False)
        model.model_.item_factors[target] = model.model_.item_factors[source]
    users = np.sort(rng.choice(n_users, size=rng.integers(1, n_users + 1), replace=False))
    np.testing.assert_array_equal(model.recommend(users, train, k), implicits_own_filter(model, users, train, k))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_users=st.integers(1, 60), n_items=st.integers(1, 30),
       density=st.floats(0.0, 1.0), k=st.integers(1, 35), exclude_seen=st.booleans())
def test_popularity_lists_are_top_k_of_its_scores(seed, n_users, n_items, density, k, exclude_seen):
    # the catalogue's order with each user's seen items skipped, against sorting the users x items block
    rng = np.random.default_rng(seed)
    train = sp.csr_matrix((rng.random((n_users, n_items)) < density).astype(np.float32))
    train.data[rng.random(train.nnz) < 0.2] = 0.0  # a stored 0 is a seen item too
    model = PopularityRecommender().fit(train)
    users = rng.permutation(n_users)[:rng.integers(1, n_users + 1)]
    expected = top_k(np.broadcast_to(model.scores_, (len(users), n_items)), train[users] if exclude_seen else None, k)
    np.testing.assert_array_equal(model.recommend(users, train, k, exclude_seen=exclude_seen), expected)


# ---------------------------------------------------------------------------
# a planted problem: four taste groups, each with its own block of items, plus popular noise
# ---------------------------------------------------------------------------
#   days 0-7: views of 5 items of the user's block; days 0-14: views of 2 of 5 popular items;
#   days 8-14: a cart of a 6th block item (the validation truth); days 14-21: carts of a 7th and an
#   8th block item (the test truth); 30% of users also view one item of another block.
GROUPS, PER_GROUP, BLOCK = 4, 60, 15
PLANTED_CUTOFF = dt.date(2026, 3, 16)  # T0 + 14 days


def planted_frame(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    popular = [f"p{j}" for j in range(5)]
    blocks = [[f"g{g}i{j:02d}" for j in range(BLOCK)] for g in range(GROUPS)]
    rows = []
    for g in range(GROUPS):
        for n in range(PER_GROUP):
            user = f"g{g}u{n:02d}"
            chosen = rng.choice(blocks[g], 8, replace=False)
            rows += [(user, "view", item, rng.uniform(0, 6.9) * 24) for item in chosen[:5]]
            rows.append((user, "cart", chosen[5], rng.uniform(8, 13.9) * 24))
            rows += [(user, "cart", item, rng.uniform(14.1, 20.9) * 24) for item in chosen[6:]]
            rows += [(user, "view", item, rng.uniform(0, 13.9) * 24) for item in rng.choice(popular, 2, replace=False)]
            if rng.random() < 0.3:
                other = blocks[(g + 1 + rng.integers(GROUPS - 1)) % GROUPS]
                rows.append((user, "view", rng.choice(other), rng.uniform(0, 13.9) * 24))
    return frame_of(rows)


PLANTED_SPEC = RecommendParams(
    cutoff=PLANTED_CUTOFF, test_period=dt.timedelta(days=7), k=[5, 10], headline_k=5, threads=1, bootstrap=200,
    als=ALSSettings(factors=8, regularization=0.05, alpha=10.0, iterations=15),
    sweep=SweepGrid(factors=[4, 8], regularization=[0.05], alpha=[1.0, 10.0]))


@pytest.fixture(scope="module")
def planted():
    frame = planted_frame()
    log = EventLog.from_frame(frame)
    return frame, log, PLANTED_SPEC, temporal_split(log, PLANTED_SPEC)


@pytest.fixture(scope="module")
def evaluation(planted):
    _, _, spec, split = planted
    return evaluate(models_from_params(spec), split, spec.k)


def test_planted_split_is_what_was_planted(planted):
    frame, _, spec, split = planted
    assert split.cutoff == pd.Timestamp("2026-03-16", tz="UTC")
    assert split.counts["kept_pairs"] == GROUPS * PER_GROUP * 2 and len(split.test_users) == GROUPS * PER_GROUP
    assert_matches_brute(split.train, brute.before(frame, split.cutoff), spec)


@pytest.mark.parametrize("make", [
    lambda: ALSRecommender(factors=8, iterations=10, threads=1),
    lambda: BPRRecommender(factors=8, iterations=30, threads=1),
    lambda: ItemKNNRecommender(neighbours=20, threads=1),
    PopularityRecommender, RandomRecommender,
], ids=["ALS", "BPR", "item-kNN", "popularity", "random"])
def test_recommenders_never_return_training_items_when_exclude_seen(planted, make):
    _, _, _, split = planted
    train = split.train.matrix
    model = make().fit(train)
    users = np.arange(train.shape[0])
    seen = train.toarray() != 0
    got = model.recommend(users, train, 10, exclude_seen=True)
    assert got.shape == (len(users), 10) and (got >= 0).all()
    assert not seen[users[:, None], got].any()
    assert all(len(set(row)) == len(row) for row in got)
    kept = model.recommend(users, train, 10, exclude_seen=False)
    assert (kept >= 0).all()
    if not isinstance(model, RandomRecommender):  # a model of tastes ranks the user's own items high
        assert seen[users[:, None], kept].any()




@pytest.mark.parametrize("make", [
    pytest.param(lambda: ALSRecommender(factors=8, iterations=5, threads=1), id="ALS"),
    pytest.param(lambda: BPRRecommender(factors=8, iterations=5, threads=1), id="BPR"),
    pytest.param(lambda: ItemKNNRecommender(neighbours=20, threads=1), id="item-kNN"),
    pytest.param(PopularityRecommender, id="popularity"),
    pytest.param(RandomRecommender, id="random"),
])
def test_recommenders_pad_with_minus_one_when_fewer_items_than_k_are_eligible(make):
    rng = np.random.default_rng(0)
    cells = rng.random((30, 8)) < 0.4
    cells[0, 0] = True
    train = sp.csr_matrix(cells.astype(np.float32))
    users = np.arange(5)
    seen = train[users].toarray() != 0
    k = train.shape[1] + 2
    got = make().fit(train).recommend(users, train, k, exclude_seen=True)
    for u, row in enumerate(got):
        shown = row[row >= 0]
        assert sorted(shown) == np.flatnonzero(~seen[u]).tolist(), (u, row)
        assert (row[len(shown):] == -1).all()


# ---------------------------------------------------------------------------
# evaluation on the planted problem
# ---------------------------------------------------------------------------


def test_als_beats_popularity_on_the_planted_blocks(evaluation):
    ndcg = {name: frame["ndcg@5"].mean() for name, frame in evaluation.per_user.items()}
    assert ndcg["ALS"] > ndcg["popularity"] + 0.2 and ndcg["ALS"] > ndcg["random"]
    diff, low, high = evaluation.difference("ALS", "popularity", "ndcg", 5, n_boot=500)
    assert low > 0 and low <= diff <= high
    assert diff == pytest.approx(ndcg["ALS"] - ndcg["popularity"])
    # the same users, the same metric code: per_user equals the metrics of the recommended lists
    users = evaluation.users
    np.testing.assert_array_equal(users, evaluation.split.test_users)
    again = metrics.per_user_metrics(evaluation.recommended["ALS"], evaluation.split.truth[users], [5, 10])
    pd.testing.assert_frame_equal(again, evaluation.per_user["ALS"])


def test_summary_has_every_model_metric_and_k_including_coverage_and_novelty(evaluation):
    summary = evaluation.summary(n_boot=100)
    assert list(summary.columns) == ["model", "metric", "k", "value", "low", "high", "users"]
    expected = {(m, metric, k) for m in ("ALS", "BPR", "item-kNN", "popularity", "random")
                for metric in (*metrics.METRICS, "coverage", "novelty") for k in (5, 10)}
    keys = list(zip(summary["model"], summary["metric"], summary["k"]))
    assert set(keys) == expected and len(keys) == len(expected)
    row = summary.set_index(["model", "metric", "k"])
    n_items = evaluation.split.train.shape[1]
    assert row.loc[("ALS", "coverage", 5), "value"] == metrics.coverage(evaluation.recommended["ALS"], n_items, 5)
    assert row.loc[("ALS", "ndcg", 10), "value"] == pytest.approx(evaluation.per_user["ALS"]["ndcg@10"].mean())
    assert np.isnan(row.loc[("random", "novelty", 10), "low"])
    assert (summary["users"] == len(evaluation.users)).all()
    assert set(evaluation.timings["model"]) == {"ALS", "BPR", "item-kNN", "popularity", "random"}


def test_evaluation_users_sample_has_the_requested_size_and_is_deterministic(planted):
    _, _, _, split = planted
    sample = evaluation_users(split, 50, seed=3)
    assert len(sample) == 50 and len(set(sample)) == 50
    assert np.all(np.diff(sample) > 0) and set(sample) <= set(split.test_users)
    np.testing.assert_array_equal(sample, evaluation_users(split, 50, seed=3))
    assert not np.array_equal(sample, evaluation_users(split, 50, seed=4))
    np.testing.assert_array_equal(evaluation_users(split, None, seed=3), split.test_users)
    np.testing.assert_array_equal(evaluation_users(split, 10_000, seed=3), split.test_users)
    result = evaluate({"popularity": PopularityRecommender()}, split, [5], max_users=50, seed=3)
    np.testing.assert_array_equal(result.users, sample)
    assert len(result.per_user["popularity"]) == 50


@pytest.fixture(scope="module")
def sweep_table(planted):
    _, log, spec, split = planted
    return sweep(validation_split(log, spec, split), spec)


def test_sweep_has_one_row_per_grid_setting_sorted_by_the_metric(planted, sweep_table):
    _, log, spec, split = planted
    assert len(sweep_table) == 4
    assert set(zip(sweep_table["factors"], sweep_table["regularization"], sweep_table["alpha"])) == {
        (4, 0.05, 1.0), (4, 0.05, 10.0), (8, 0.05, 1.0), (8, 0.05, 10.0)}
    values = sweep_table["ndcg@5"].to_numpy()
    assert np.all(np.diff(values) <= 0)
    assert (sweep_table["low"] <= sweep_table["high"]).all()
    # a row is the validation score of that setting
    best = sweep_table.iloc[0]
    model = ALSRecommender(int(best["factors"]), best["regularization"], best["alpha"], spec.als.iterations,
                           spec.threads, spec.seed)
    direct = evaluate({"ALS": model}, validation_split(log, spec, split), [5])
    assert direct.per_user["ALS"]["ndcg@5"].mean() == pytest.approx(best["ndcg@5"])


def test_sweep_fitted_side_by_side_is_the_sweep_fitted_one_after_the_other(planted, sweep_table):
    _, log, spec, split = planted
    validation = validation_split(log, spec, split)
    pool = FitPool(spec.model_copy(update={"threads": 3}))
    assert (pool.workers, pool.threads_per_fit) == (3, 1)
    with pool:
        side_by_side = sweep(validation, spec, pool=pool)
    pd.testing.assert_frame_equal(side_by_side.drop(columns="fit_seconds"), sweep_table.drop(columns="fit_seconds"),
                                  check_exact=True)
    # one thread (and Spark): each task runs when submitted, on this thread
    inline = FitPool(spec)
    assert (inline.workers, inline.threads_per_fit) == (1, 1)
    with inline:
        assert inline.submit(threading.get_ident).result() == threading.get_ident()
    assert FitPool(spec.model_copy(update={"threads": 0}), spark=object()).workers == 1


def test_the_studys_bpr_is_the_same_model_on_every_run(planted):
    """implicit's BPR races its threads on the shared factors: the study fits it on one thread, so the same
    data and seed give the same factors (and report figures) every time."""
    _, _, spec, split = planted
    spec = spec.model_copy(update={"threads": 0, "bpr": spec.bpr.model_copy(update={"factors": 16, "iterations": 20})})
    first, second = (models_from_params(spec)["BPR"].fit(split.train.matrix) for _ in range(2))
    assert first.threads == 1
    np.testing.assert_array_equal(first.model_.item_factors, second.model_.item_factors)
    np.testing.assert_array_equal(first.model_.user_factors, second.model_.user_factors)


def test_a_pool_imports_implicit_before_its_threads_start():
    """Fits in threads importing implicit's modules at once deadlocked on Python's module locks
    (``_DeadlockError``): a pool imports them before starting its threads. A fresh interpreter, where
    nothing has imported implicit yet."""
    import subprocess
    import sys

    code = ("import sys; from funnelkit.params import RecommendParams; from funnelkit.recommend.evaluate import FitPool\n"
            "assert 'implicit.cpu.als' not in sys.modules\n"
            "with FitPool(RecommendParams(threads=2)) as pool:\n"
            "    missing = [m for m in ('implicit.cpu.als', 'implicit.cpu.bpr', 'implicit.nearest_neighbours', "
            "'implicit.evaluation') if m not in sys.modules]\n"
            "sys.exit(f'not imported before the threads: {missing}' if missing else 0)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_chosen_settings_are_the_sweeps_first_row(sweep_table):
    chosen = chosen_settings(sweep_table, PLANTED_SPEC)
    best = sweep_table.iloc[0]
    assert (chosen.factors, chosen.regularization, chosen.alpha) == (best["factors"], best["regularization"],
                                                                      best["alpha"])
    assert chosen.iterations == PLANTED_SPEC.als.iterations
    assert isinstance(chosen, ALSSettings)


# ---------------------------------------------------------------------------
# explain
# ---------------------------------------------------------------------------


def test_headline_picks_the_best_other_model_and_says_beats_when_the_interval_is_above_zero(evaluation):
    h = explain.headline(evaluation, 5, n_boot=500)
    means = {n: f["ndcg@5"].mean() for n, f in evaluation.per_user.items()}
    assert h["baseline"] == max((n for n in means if n != "ALS"), key=means.get)
    assert h["value"] == pytest.approx(means["ALS"]) and h["baseline_value"] == pytest.approx(means[h["baseline"]])
    verdict = "beats" if h["low"] > 0 else "loses to" if h["high"] < 0 else "is not distinguishable from"
    assert f"ALS {verdict} the best baseline, {h['baseline']}" in explain.headline_text(h)
    # against the floors alone the gain is certain
    floors = dataclasses.replace(evaluation, recommended={n: evaluation.recommended[n] for n in
                                                          ("ALS", "popularity", "random")},
                                 per_user={n: evaluation.per_user[n] for n in ("ALS", "popularity", "random")})
    h = explain.headline(floors, 5, n_boot=500)
    best_floor = max(("popularity", "random"), key=means.get)
    assert h["baseline"] == best_floor and h["low"] > 0
    assert f"**ALS beats the best baseline, {best_floor}**" in explain.headline_text(h)
    assert h["difference"] == pytest.approx(means["ALS"] - means[best_floor])
    worst = explain.headline(floors, 5, model="random", n_boot=500)
    assert worst["baseline"] == "ALS" and worst["high"] < 0
    assert "**random loses to the best baseline, ALS**" in explain.headline_text(worst)


CART_ROWS = [
    ("a", "view", "x", 0), ("a", "cart", "x", 1),                                   # abandoner
    ("b", "view", "x", 0), ("b", "cart", "x", 1), ("b", "checkout", "x", 2),         # went on
    ("c", "cart", "x", 0), ("c", "view", "x", 1),                                   # cart before the view
    ("d", "view", "x", 24 * 15), ("d", "cart", "x", 24 * 15 + 1),                   # window open at until
    ("e", "view", "x", 0), ("e", "cart", "x", 1), ("e", "checkout", "x", 24 * 8),    # checkout after window
    ("f", "view", "x", 0), ("f", "view", "y", 48), ("f", "cart", "y", 24 * 8),       # cart 8 days after entry
    ("g", "view", "x", 0), ("g", "cart", "x", 1), ("g", "purchase", "x", 2),         # no checkout logged
    ("h", "view", "x", 0), ("h", "view", "y", 5),                                   # views only
    ("i", "cart", "x", 0), ("i", "checkout", "x", 1),                               # never entered
    ("j", "view", "x", 0), ("j", "checkout", "x", 1), ("j", "cart", "x", 2),         # checkout before cart
    ("k", "view", "x", 24 * 10), ("k", "cart", "x", 24 * 10 + 1),                   # closed just in time
    ("k", "checkout", "x", 24 * 21),                                                 # (after until)
    ("m", "view", "x", 24 * 13 + 12), ("m", "cart", "x", 24 * 13 + 13),             # window open: censored
]
CART_UNTIL = at(24 * 20)


def test_cart_abandoners_equal_the_brute_force_funnel():
    frame = frame_of(CART_ROWS)
    got = explain.cart_abandoners(EventLog.from_frame(frame), FunnelParams(), CART_UNTIL)
    expected = brute.cart_abandoners(frame, CART_UNTIL, pd.Timedelta(days=7))
    assert got.tolist() == expected
    assert expected == ["a", "e", "g", "j", "k"]


def test_popularity_bias_shares_sum_to_one_per_model(evaluation):
    table = explain.popularity_bias(evaluation, 5)
    assert set(table["model"]) == set(evaluation.recommended)
    sums = table.groupby("model")["share"].sum()
    np.testing.assert_allclose(sums.to_numpy(), 1.0, rtol=1e-12)
    assert table.groupby("model")["decile"].apply(list).tolist() == [list(range(1, 11))] * len(sums)
    # brute force for one model: decile of each item by descending popularity (stable), share of slots
    popularity = evaluation.split.train.item_popularity()
    ranked = sorted(range(len(popularity)), key=lambda i: (-popularity[i], i))
    decile = {item: rank * 10 // len(ranked) + 1 for rank, item in enumerate(ranked)}
    slots = [decile[i] for i in evaluation.recommended["ALS"][:, :5].ravel() if i >= 0]
    expected = [slots.count(d) / len(slots) for d in range(1, 11)]
    np.testing.assert_allclose(table[table["model"] == "ALS"]["share"].to_numpy(), expected)


def test_our_metrics_agree_with_implicits_evaluation(evaluation):
    table = explain.against_implicit(evaluation, 5)
    assert table["metric"].tolist() == ["precision@5", "map@5", "ndcg@5"]
    assert (table["abs_difference"] < 1e-9).all()
    assert (table["funnelkit"] > 0).all()


def test_reference_check_implicit_exact_solver_equals_numpy_als(planted):
    _, _, _, split = planted
    settings_ = ALSSettings(factors=4, regularization=0.1, alpha=2.5, iterations=4)
    check = explain.reference_check(split, settings_, users=120, items=40)
    assert check["shape"] == (120, 40)
    assert check["max_factor_difference"] < 1e-8
    assert len(check["losses"]) == 4
    np.testing.assert_allclose(check["losses"]["reference (NumPy)"], check["losses"]["implicit (exact solver)"],
                               rtol=1e-8)
    assert check["final_loss_reference"] == pytest.approx(check["final_loss_implicit"], rel=1e-8)


# ---------------------------------------------------------------------------
# the simulator's planted tastes
# ---------------------------------------------------------------------------

SHOP = SimulationParams(seed=5, n_users=3000, days=14, n_items=200, n_categories=8, n_bots=2,
                        click_farm_accounts=5, fake_order_accounts=3)


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    dataset = simulate(SHOP, tmp_path_factory.mktemp("recommend_shop"))
    return dataset, pd.read_parquet(dataset.events_path), dataset.labels(), dataset.items()


def test_planted_preferences_are_a_distribution_over_the_catalogue_and_nan_for_anomalies(shop):
    dataset, _, labels, items = shop
    scores = planted_preference_scores(dataset, labels["user_id"], items["item_id"])
    human = (labels["label"] == "human").to_numpy()
    assert (~human).sum() == 10
    np.testing.assert_allclose(np.exp(scores[human]).sum(axis=1), 1.0, rtol=0, atol=1e-9)
    assert np.isnan(scores[~human]).all() and not np.isnan(scores[human]).any()
    # items outside the catalogue have probability 0; a subset of items keeps its columns
    some = items["item_id"].to_numpy()[[5, 0]]
    part = planted_preference_scores(dataset, labels["user_id"][:3], [*some, "no-such-item"])
    np.testing.assert_array_equal(part[:, :2], scores[:3][:, [5, 0]])
    assert np.isneginf(part[:, 2]).all()


def test_planted_category_probabilities_match_the_simulated_views(shop):
    """Users grouped by their most likely planted category: each group's share of views per category
    follows the group's mean planted category probabilities (loose: correlation above 0.5)."""
    dataset, events, labels, items = shop
    humans = labels.loc[labels["label"] == "human", "user_id"].to_numpy()
    scores = planted_preference_scores(dataset, humans, items["item_id"])
    categories, category_of = np.unique(items["category"].to_numpy(), return_inverse=True)
    planted = np.exp(scores) @ np.eye(len(categories))[category_of]  # users × categories
    views = events[(events["event_type"] == "view") & events["user_id"].isin(humans)]
    observed = np.zeros_like(planted)
    np.add.at(observed, (pd.Index(humans).get_indexer(views["user_id"]),
                         pd.Index(categories).get_indexer(views["category"])), 1)
    group = planted.argmax(axis=1)
    overall_observed, overall_planted = observed.sum(0) / observed.sum(), planted.mean(0)
    checked = 0
    for g in range(len(categories)):
        members = group == g
        if observed[members].sum() < 500:
            continue
        share = observed[members].sum(0) / observed[members].sum()
        expected = planted[members].mean(0)
        assert np.corrcoef(share, expected)[0, 1] > 0.5, g
        # the taste, not only the category sizes: the group's lift over everyone correlates too
        assert np.corrcoef(share - overall_observed, expected - overall_planted)[0, 1] > 0.5, g
        checked += 1
    assert checked >= 3


def test_planted_item_tastes_explain_the_simulated_views_better_than_popularity_within_category(shop):
    """Mean log-likelihood per human view: the planted scores against the same category probabilities
    with the item chosen by popularity alone. The gap is ~0.04 nats with a user-clustered standard error
    of ~0.003 on this shop; 0.01 is a loose bar that an item part without taste (gap 0) cannot pass."""
    dataset, events, labels, items = shop
    humans = labels.loc[labels["label"] == "human", "user_id"].to_numpy()
    scores = planted_preference_scores(dataset, humans, items["item_id"])
    categories, category_of = np.unique(items["category"].to_numpy(), return_inverse=True)
    p_category = np.exp(scores) @ np.eye(len(categories))[category_of]
    popularity = items["popularity"].to_numpy()
    popularity_in_category = popularity / np.bincount(category_of, weights=popularity)[category_of]
    views = events[(events["event_type"] == "view") & events["user_id"].isin(humans)]
    user = pd.Index(humans).get_indexer(views["user_id"])
    item = pd.Index(items["item_id"]).get_indexer(views["item_id"])
    planted = scores[user, item]
    without_taste = np.log(p_category[user, category_of[item]] * popularity_in_category[item])
    assert (planted - without_taste).mean() > 0.01


def test_a_model_recommending_the_planted_top_k_has_overlap_one(shop):
    dataset, _, labels, _ = shop
    k = 5
    log = load_events(dataset.events_path)
    split = temporal_split(log, RecommendParams(test_period=dt.timedelta(days=4)))
    users = split.test_users
    scores = planted_preference_scores(dataset, split.train.user_ids[users], split.train.item_ids)
    known = ~np.isnan(scores).any(axis=1)
    seen = split.train.matrix[users].toarray() != 0
    recommended = {}
    for exclude_seen in (True, False):
        planted_top = np.full((len(users), k), -1)
        planted_top[known] = brute_top_k(scores[known], seen[known] if exclude_seen else None, k)
        recommended[exclude_seen] = planted_top
    random = RandomRecommender(seed=0).fit(split.train.matrix).recommend(users, split.train.matrix, k)
    for exclude_seen in (True, False):
        evaluation = Evaluation(split, users, [k], {"planted": recommended[exclude_seen], "random": random},
                                {}, pd.DataFrame(), {})
        table = planted_taste_overlap(evaluation, dataset, k, exclude_seen=exclude_seen, n_boot=200)
        assert table["model"].tolist() == ["planted", "random"]
        row = table.set_index("model")
        assert row.loc["planted", "overlap"] == 1.0
        assert row.loc["planted", "low"] == 1.0 and row.loc["planted", "high"] == 1.0
        assert row.loc["random", "overlap"] < 0.2
        assert (table["users"] == known.sum()).all()
    # excluding seen items changes the planted lists, so the lists without exclusion no longer match exactly
    assert not np.array_equal(recommended[True][known], recommended[False][known])


def test_item_knn_batched_scores_give_implicits_own_recommendations():
    # funnelkit scores a batch of users as train @ similarity; implicit's recommend does it user by user
    rng = np.random.default_rng(3)
    train = sp.random(120, 60, density=0.08, format="csr", dtype=np.float32, random_state=rng)
    train.data = rng.integers(1, 5, size=train.nnz).astype(np.float32)
    model = ItemKNNRecommender(neighbours=10, threads=1).fit(train)
    users = np.arange(120)
    ours = model.recommend(users, train, 5, exclude_seen=True)
    ids, scores = model.model_.recommend(users.astype(np.int32), train, N=5, filter_already_liked_items=True)
    for row in range(120):  # compare the item sets that have a positive score (ties at 0 are ordered arbitrarily)
        positive = set(ids[row][scores[row] > 0])
        assert positive <= set(ours[row])
        assert not set(ours[row][ours[row] >= 0]) & set(train[row].indices)


def test_bm25_never_gives_a_negative_weight_to_an_item_every_user_has():
    # idf = log N - log(1 + N) < 0 for an item all users interacted with; implicit reads < 0 as a dislike
    log = EventLog.from_frame(frame_of([("u1", "view", "x", 0), ("u2", "view", "x", 0), ("u1", "view", "y", 1)]))
    matrix = confidence_matrix(log, RecommendParams(weighting="bm25")).matrix
    assert (matrix.data >= 0).all() and matrix.nnz == 3


# ---------------------------------------------------------------------------
# a weight column (a rating, a quantity) multiplies the event type's weight
# ---------------------------------------------------------------------------
#   weights {rating: 2}: u1 rates a 4 and b 2.5; u2 rates a 5, then a again 1 (a re-rating adds: 2 × 6)
WEIGHTED_ROWS = [("u1", "rating", "a", 0, "4"), ("u1", "rating", "b", 1, "2.5"), ("u2", "rating", "a", 2, "5"),
                 ("u2", "rating", "a", 3, "1"), ("u2", "view", "b", 4, "3")]


def weighted_frame(rows) -> pd.DataFrame:
    frame = frame_of([row[:4] for row in rows])
    frame["stars"] = [row[4] for row in rows]  # text, as a CSV segment column is loaded
    return frame


def brute_weighted_pairs(frame: pd.DataFrame, spec, as_of=None) -> dict:
    """{(user, item): Σ type weight × float(weight column) × decay} row by row."""
    out: dict = {}
    for row in frame.to_dict("records"):
        weight = spec.weights.get(row["event_type"], 0.0)
        if weight <= 0 or row["item_id"] is None:
            continue
        factor = 1.0 if spec.decay_half_life is None else 0.5 ** (
            max((as_of - row["event_time"]) / pd.Timedelta(spec.decay_half_life), 0.0))
        key = (row["user_id"], row["item_id"])
        out[key] = out.get(key, 0.0) + weight * float(row[spec.weight_column]) * factor
    return out


def test_weight_column_multiplies_each_events_type_weight_known_answer():
    log = EventLog.from_frame(weighted_frame(WEIGHTED_ROWS))
    interactions = confidence_matrix(log, RecommendParams(weights={"rating": 2.0}, weight_column="stars"))
    assert interactions.user_ids.tolist() == ["u1", "u2"] and interactions.item_ids.tolist() == ["a", "b"]
    np.testing.assert_allclose(dense(interactions), [[8, 5], [12, 0]])  # the view of b has no weight


@pytest.mark.parametrize("seed", range(5))
def test_weight_column_with_decay_equals_the_row_by_row_sum(seed):
    rng = np.random.default_rng(seed)
    rows = [(f"u{rng.integers(4)}", str(rng.choice(["view", "cart", "purchase", "click"])),
             str(rng.choice(["i0", "i1", "i2"])), int(rng.integers(0, 48)), f"{rng.integers(0, 13) / 2:g}")
            for _ in range(30)]
    frame = weighted_frame(rows)
    spec = RecommendParams(weight_column="stars", decay_half_life=dt.timedelta(hours=12))
    interactions = confidence_matrix(EventLog.from_frame(frame), spec, as_of=at(48))
    expected = brute_weighted_pairs(frame, spec, as_of=at(48))
    got = {(str(interactions.user_ids[r]), str(interactions.item_ids[c])): v
           for r, c, v in zip(*sp.find(interactions.matrix))}
    assert set(got) <= set(expected)  # sp.find leaves out stored zeros (a weight of 0 is allowed)
    for pair, value in expected.items():
        assert got.get(pair, 0.0) == pytest.approx(value, rel=1e-6)
    assert interactions.matrix.nnz == len(expected)


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "-inf", "1e400", "", "three"])
def test_weight_column_without_a_finite_non_negative_number_is_a_data_error_naming_the_row(value):
    rows = WEIGHTED_ROWS + [("u3", "rating", "b", 5, value)]
    log = EventLog.from_frame(weighted_frame(rows).replace({"stars": {"": None}}))
    with pytest.raises(DataError, match=r"weight_column 'stars': 1 weighted event.*user u3, item b"):
        confidence_matrix(log, RecommendParams(weights={"rating": 1.0}, weight_column="stars"))


def test_a_bad_weight_on_an_unweighted_event_type_is_ignored():
    rows = WEIGHTED_ROWS + [("u3", "click", "b", 5, "-1")]
    log = EventLog.from_frame(weighted_frame(rows))
    confidence_matrix(log, RecommendParams(weights={"rating": 1.0}, weight_column="stars"))


@pytest.mark.parametrize("column", ["quantity", "item_id"])
def test_weight_column_that_is_not_a_value_column_of_the_log_is_a_schema_error(column):
    log = EventLog.from_frame(weighted_frame(WEIGHTED_ROWS))
    with pytest.raises(SchemaError, match=rf"recommend.weight_column: '{column}'.*\['stars'\]"):
        confidence_matrix(log, RecommendParams(weights={"rating": 1.0}, weight_column=column))


# ---------------------------------------------------------------------------
# the per-user temporal split
# ---------------------------------------------------------------------------
#   test_fraction 0.5, weights default (view 1, cart 4, checkout 6, purchase 10), test events cart/purchase
#   u1: view a 1, view b 2, cart b 3, purchase c 4 -> n 4, last 2 held (cart b, purchase c); b is seen
#   u2: view c 1 and purchase c 1 (a tie: same item, 'purchase' < 'view' orders the purchase first),
#       cart a 5 -> n 3, last floor(1.5) = 1 held (cart a); trains on c = 10 + 1
#   u3: view a 2 -> n 1, nothing to hold out: training only (a short user)
#   u4: click d 1 -> no interaction at all
#   u5: purchase b 6 and view a 6 (a tie: a before b) -> n 2, held: purchase b
USER_TEMPORAL_ROWS = [
    ("u1", "view", "a", 1), ("u1", "view", "b", 2), ("u1", "cart", "b", 3), ("u1", "purchase", "c", 4),
    ("u2", "view", "c", 1), ("u2", "purchase", "c", 1), ("u2", "cart", "a", 5),
    ("u3", "view", "a", 2), ("u4", "click", "d", 1),
    ("u5", "purchase", "b", 6), ("u5", "view", "a", 6),
]


def test_user_temporal_split_known_answer():
    log = EventLog.from_frame(frame_of(USER_TEMPORAL_ROWS))
    split = user_temporal_split(log, RecommendParams(split="user_temporal", test_fraction=0.5))
    assert split.kind == "user_temporal" and split.cutoff is None
    assert split.train.user_ids.tolist() == ["u1", "u2", "u3", "u5"]
    assert split.train.item_ids.tolist() == ["a", "b", "c"]
    np.testing.assert_allclose(dense(split.train), [[1, 1, 0], [0, 0, 11], [1, 0, 0], [1, 0, 0]])
    assert truth_pairs(split) == {("u1", "c"), ("u2", "a"), ("u5", "b")}
    assert split.counts == {"test_pairs": 4, "cold_user_pairs": 0, "cold_item_pairs": 0, "seen_pairs": 1,
                            "kept_pairs": 3, "test_users": 3, "cold_users": 0, "short_users": 1}
    assert split.counts_frame()["count"].tolist() == [4, 0, 0, 1, 3, 3, 0, 1]
    assert "last 50% of each user's interactions" in split.describe(RecommendParams(test_fraction=0.5))
    assert make_split(log, RecommendParams(split="user_temporal", test_fraction=0.5)).counts == split.counts


def test_user_temporal_split_holds_out_the_floor_of_the_fraction_exactly():
    # 0.29 × 100 is 28.999999999999996 in binary floating point: 29 interactions must still be held out
    rows = [("u1", "view", f"i{n:03d}", n) for n in range(100)] + [("u2", "view", f"i{99 - n:03d}", n) for n in range(100)]
    split = user_temporal_split(EventLog.from_frame(frame_of(rows)), RecommendParams(
        split="user_temporal", test_fraction=0.29, test_events=["view"]))
    held = {item for user, item in truth_pairs(split) if user == "u1"}
    assert held == {f"i{n:03d}" for n in range(71, 100)}
    assert split.counts["short_users"] == 0


def test_user_temporal_split_at_one_third_holds_out_a_third():
    # 0.3333333333333333 is just under 1/3: without a tolerance 3 interactions would hold out 0 and 300 only 99
    # (u2 and the reversed u300r train on the items u3 and u300 hold out, so these can be scored)
    rows = ([("u3", "view", f"i{n}", n) for n in range(3)] + [("u2", "view", f"i{2 - n}", n) for n in range(2)]
            + [("u300", "view", f"i{n:03d}", n) for n in range(300)]
            + [("u300r", "view", f"i{299 - n:03d}", n) for n in range(300)])
    spec = RecommendParams(split="user_temporal", test_fraction=1 / 3, test_events=["view"])
    split = user_temporal_split(EventLog.from_frame(frame_of(rows)), spec)
    held = {user: {item for u, item in truth_pairs(split) if u == user} for user in ("u2", "u3", "u300")}
    assert held == {"u2": set(), "u3": {"i2"}, "u300": {f"i{n:03d}" for n in range(200, 300)}}
    assert split.counts["short_users"] == 1
    assert "1 users with fewer than 3 interactions train only" in split.describe(spec)


@pytest.mark.parametrize("fraction", [1 / 3, 0.29, 0.2, 0.1, 1 / 7, 0.7, 0.999, 1e-4])
def test_the_fewest_interactions_described_are_the_fewest_that_hold_one_out(fraction):
    from funnelkit.recommend.split import _min_interactions

    fewest = next(n for n in itertools.count(1) if int(Fraction(str(fraction)) * n + Fraction(1, 10**9)) >= 1)
    assert _min_interactions(fraction) == fewest


def brute_user_temporal(frame: pd.DataFrame, spec) -> tuple[pd.DataFrame, set, int]:
    """Training rows, held-out test pairs and short users, following the module notes literally."""
    kinds = {t for t, w in spec.weights.items() if w > 0} | set(spec.test_events)
    rows = [r for r in frame.to_dict("records") if r["event_type"] in kinds and r["item_id"] is not None]
    by_user: dict = {}
    for r in rows:
        by_user.setdefault(r["user_id"], []).append(r)
    train, test, short = [], set(), 0
    for events in by_user.values():
        events.sort(key=lambda r: (r["event_time"], r["item_id"], r["event_type"]))
        # floor of the exact decimal product, with the documented tolerance of 1e-9
        held = int(Fraction(str(spec.test_fraction)) * len(events) + Fraction(1, 10**9))
        short += held == 0
        train += events[:len(events) - held]
        test |= {(r["user_id"], r["item_id"]) for r in events[len(events) - held:]
                 if r["event_type"] in spec.test_events}
    return pd.DataFrame(train, columns=frame.columns), test, short


@pytest.mark.parametrize("fraction", [0.2, 0.3, 1 / 3, 0.5, 0.7])
@pytest.mark.parametrize("seed", range(8))
def test_user_temporal_split_equals_the_brute_force_on_random_logs(seed, fraction):
    rng = np.random.default_rng(seed)
    rows = [(f"u{rng.integers(5)}", str(rng.choice(["view", "cart", "purchase", "click"])),
             rng.choice(["i0", "i1", "i2", "i3", "i4", None]), int(rng.integers(0, 12))) for _ in range(60)]
    frame = frame_of(rows)
    spec = RecommendParams(split="user_temporal", test_fraction=fraction, exclude_seen=bool(seed % 2),
                           decay_half_life=dt.timedelta(hours=6) if seed % 3 == 0 else None)
    log = EventLog.from_frame(frame)
    train_frame, test, short = brute_user_temporal(frame, spec)
    expected_train, users, items, _ = brute.confidence(train_frame, spec, as_of=log.data_end)
    expected, counts = brute.truth(test, expected_train, users, items, spec.exclude_seen)
    if not expected:
        with pytest.raises(DataError, match="no test interaction"):
            user_temporal_split(log, spec)
        return
    split = user_temporal_split(log, spec)
    assert_matches_brute(split.train, train_frame, spec, as_of=log.data_end)
    assert truth_pairs(split) == expected
    assert split.counts == {**counts, "short_users": short}


def test_user_temporal_validation_split_applies_the_protocol_to_the_training_interactions():
    rng = np.random.default_rng(0)
    rows = [(f"u{rng.integers(6)}", str(rng.choice(["view", "cart", "purchase"])), f"i{rng.integers(8)}",
             int(rng.integers(0, 100))) for _ in range(200)]
    frame = frame_of(rows)
    spec = RecommendParams(split="user_temporal", test_fraction=0.25)
    log = EventLog.from_frame(frame)
    split = user_temporal_split(log, spec)
    validation = validation_split(log, spec, split)
    train_frame, _, _ = brute_user_temporal(frame, spec)
    inner_train, inner_test, short = brute_user_temporal(train_frame, spec)
    expected_train, users, items, _ = brute.confidence(inner_train, spec)
    expected, counts = brute.truth(inner_test, expected_train, users, items, spec.exclude_seen)
    assert validation.kind == "user_temporal"
    np.testing.assert_array_equal(validation.train.user_ids, users)
    np.testing.assert_allclose(dense(validation.train), expected_train, rtol=1e-6)
    assert truth_pairs(validation) == expected and validation.counts == {**counts, "short_users": short}


def test_split_descriptions_name_the_protocol_and_its_leakage(split_log):
    _, log = split_log
    spec = RecommendParams(cutoff=dt.date(2026, 3, 6))
    assert "before 2026-03-06 00:00 UTC" in make_split(log, spec).describe(spec)
    loo = RecommendParams(split="leave_last_out")
    assert "last cart or purchase item" in make_split(log, loo).describe(loo)
    assert "future of the crowd" in make_split(log, loo).describe(loo)


def test_user_temporal_split_with_a_weight_column_is_the_same_on_spark(spark):
    """The split's SQL (window ranks, a DECIMAL fraction, the weight range check) translated to Spark SQL."""
    from funnelkit.engines.spark import SparkEngine

    rng = np.random.default_rng(4)
    rows = [(f"u{rng.integers(6)}", str(rng.choice(["view", "cart", "purchase"])), f"i{rng.integers(8)}",
             int(rng.integers(0, 100)), f"{rng.integers(1, 11) / 2:g}") for _ in range(150)]
    frame = weighted_frame(rows)
    spec = RecommendParams(split="user_temporal", test_fraction=0.3, weight_column="stars")
    engine = SparkEngine(spark)
    try:
        duck, on_spark = (make_split(log, spec) for log in (EventLog.from_frame(frame),
                                                            EventLog.from_frame(frame, engine)))
        np.testing.assert_array_equal(on_spark.train.user_ids, duck.train.user_ids)
        np.testing.assert_allclose(dense(on_spark.train), dense(duck.train), rtol=1e-6)
        assert truth_pairs(on_spark) == truth_pairs(duck) and on_spark.counts == duck.counts
        bad = frame.assign(stars=frame["stars"].where(frame.index != 3, "nan"))
        with pytest.raises(DataError, match="1 weighted event"):
            make_split(EventLog.from_frame(bad, engine), spec)
    finally:
        engine.close()


# ---------------------------------------------------------------------------
# the headline in a manager's terms: hit rate, who is left out, readable examples
# ---------------------------------------------------------------------------


def test_hit_rate_comparison_is_the_brute_force_share_of_users_with_a_relevant_item_in_the_top_k(evaluation):
    from tests.reference.ranking_bruteforce import relevant_sets, user_metrics

    relevant = relevant_sets(evaluation.split.truth[evaluation.users])
    hit = explain.hit_rate_comparison(evaluation, 5, n_boot=300, seed=1)
    brute_hits = {}
    for name in ("ALS", "popularity"):
        rows = evaluation.recommended[name].tolist()
        brute_hits[name] = [user_metrics(row, rel, 5)["hit"] for row, rel in zip(rows, relevant)]
    assert hit["value"] == pytest.approx(np.mean(brute_hits["ALS"]), rel=1e-12)
    assert hit["baseline_value"] == pytest.approx(np.mean(brute_hits["popularity"]), rel=1e-12)
    assert hit["difference"] == pytest.approx(hit["value"] - hit["baseline_value"], rel=1e-12)
    assert hit["low"] <= hit["value"] <= hit["high"] and hit["baseline_low"] <= hit["baseline_value"]
    assert hit["difference_low"] <= hit["difference"] <= hit["difference_high"]
    assert hit["users"] == len(evaluation.users) and hit["baseline"] == "popularity" and hit["k"] == 5
    # the paired interval is the bootstrap of the per-user differences, not of two separate means
    diff = np.array(brute_hits["ALS"]) - np.array(brute_hits["popularity"])
    assert (hit["difference_low"], hit["difference_high"]) == pytest.approx(
        metrics.bootstrap_interval(diff, n_boot=300, seed=1))


def test_audience_counts_cold_shoppers_as_the_brute_force_split_does(split_log):
    # u6, new in the test period, carts two items: one cold shopper, two cold pairs
    frame = pd.concat([split_log[0], frame_of([("u6", "cart", "a", 101), ("u6", "purchase", "b", 102)])],
                      ignore_index=True)
    log = EventLog.from_frame(frame)
    spec = RecommendParams()
    split = temporal_split(log, spec, cutoff=SPLIT_CUTOFF)
    result = evaluate({"popularity": PopularityRecommender()}, split, [2])
    expected_train, users, items, _ = brute.confidence(brute.before(frame, SPLIT_CUTOFF), spec)
    _, counts = brute.truth(brute.period_pairs(frame, spec.test_events, SPLIT_CUTOFF), expected_train, users, items,
                            spec.exclude_seen)
    who = explain.audience(result)
    # u3 and u6 had only test-period events, u5 only an unweighted click before the cut-off
    assert who["cold"] == counts["cold_users"] == 3 and split.counts["cold_user_pairs"] == 4
    assert who["evaluated"] == who["test_users"] == counts["test_users"] == 3
    assert who["period"] == "the test period (from 2026-03-06 04:00 UTC on)"
    assert explain.audience(evaluate({"popularity": PopularityRecommender()}, leave_last_out(log, spec), [2]))[
        "period"] is None


def _hit(value=0.12, low=0.10, high=0.14, base=0.077, diff=0.043, diff_low=0.029, diff_high=0.057, baseline="popularity"):
    return {"k": 10, "model": "ALS", "baseline": baseline, "users": 1357, "value": value, "low": low, "high": high,
            "baseline_value": base, "baseline_low": 0.063, "baseline_high": 0.091, "difference": diff,
            "difference_low": diff_low, "difference_high": diff_high}


WHO = {"evaluated": 1357, "test_users": 1357, "cold": 942, "period": "the test period (from 2026-10-12 00:00 UTC on)"}


def test_hit_rate_text_leads_with_shares_and_a_difference_in_points_and_names_the_cold_shoppers():
    text = explain.hit_rate_text(_hit(), WHO, RecommendParams())
    assert text.startswith("**12.0% of shoppers carted or bought one of the 10 items ALS would have shown them, "
                           "against 7.7% with best-sellers**")
    assert "(95% CI 10.0% to 14.0% and 6.3% to 9.1%)" in text
    assert "a difference of +4.3 percentage points (95% CI +2.9 to +5.7 pp" in text and "ALS does better" in text
    assert "4.3%" not in text  # a difference of shares is never printed as a percentage
    assert "Measured on the 1,357 shoppers with a history before the test period (from 2026-10-12 00:00 UTC on)" in text
    assert ("**942 shoppers who carted or bought in that period had no usable history before it (none, or below "
            "`recommend.min_user_interactions`) and are left out**") in text
    assert "best-sellers" in text.split("left out**")[1]
    assert "simulat" not in text and "built-in" not in text  # true of any log


def test_hit_rate_text_reports_an_interval_across_zero_as_such_and_follows_the_params():
    tied = explain.hit_rate_text(_hit(diff=-0.004, diff_low=-0.02, diff_high=0.012), {**WHO, "cold": 0},
                                 RecommendParams(test_events=["purchase"], exclude_seen=False))
    assert "−0.4 percentage points (95% CI −2.0 to +1.2 pp" in tied and "not distinguishable from zero" in tied
    assert "of shoppers bought one of the 10 items" in tied and "carted" not in tied
    assert "left out" not in tied and "new to them" not in tied
    unsure = explain.hit_rate_text(_hit(diff=0.004, diff_low=-0.01, diff_high=0.018), WHO, RecommendParams())
    assert "not distinguishable from zero" in unsure and "does better" not in unsure
    worse = explain.hit_rate_text(_hit(diff=-0.03, diff_low=-0.05, diff_high=-0.01), WHO, RecommendParams())
    assert "ALS does worse" in worse
    sampled = explain.hit_rate_text(_hit(), {**WHO, "evaluated": 500, "period": None}, RecommendParams())
    assert "a random sample of 500 of the 1,357 shoppers with a history who" in sampled
    assert "in their held-out test interactions" in sampled and "before their test interactions" in sampled
    # a best baseline other than the best-sellers is named with its own comparison
    best = _hit(base=0.09, diff=0.03, diff_low=0.01, diff_high=0.05, baseline="item-kNN")
    both = explain.hit_rate_text(_hit(), WHO, RecommendParams(), best=best)
    assert "The strongest other method, item-kNN (chosen on the validation period), reaches 9.0%" in both
    assert "ALS minus item-kNN: +3.0 pp (95% CI +1.0 to +5.0 pp)" in both
    assert "strongest other" not in explain.hit_rate_text(_hit(), WHO, RecommendParams(), best=_hit())
    # an event name from params is plain text in the Markdown headline, not markup
    hostile = explain.hit_rate_text(_hit(), WHO, RecommendParams(test_events=["<b>x</b>*y*"]))
    assert "<b>" not in hostile and "*y*" not in hostile and "&lt;b&gt;" in hostile


class _Factors:
    """A fitted model seen only through its item factors (as Spark MLlib's ALS is)."""

    def __init__(self, item_factors):
        self.item_factors_ = np.asarray(item_factors, dtype=float)


def _crafted_examples(split_log, with_catalogue: bool):
    frame, _ = split_log
    if with_catalogue:
        frame = frame.assign(category=frame["item_id"].map({"a": "shoes", "b": "bags", "c": "shoes", "z": "hats"}),
                             price=frame["item_id"].map({"a": 10.0, "b": 20.0, "c": 30.0, "z": 5.0}))
    log = EventLog.from_frame(frame)
    spec = RecommendParams()
    split = temporal_split(log, spec, cutoff=SPLIT_CUTOFF)  # users u1, u2, u4; items a, b, c
    # a = (1, 0), b = (0, 1), c = (1, 1): c is as close to a as to b, a and b are orthogonal
    model = _Factors([[1, 0], [0, 1], [1, 1]])
    recommended = np.array([[2, -1], [0, 1], [1, 2]])
    evaluation_ = Evaluation(split, split.test_users, [2], {"ALS": recommended}, {}, pd.DataFrame(), {"ALS": model})
    catalogue = explain.item_catalogue(log)
    return explain.recommendation_examples(evaluation_, ["u1", "u2", "u4"], catalogue, k=2, events=log, spec=spec)


def test_recommendation_examples_say_why_and_what_the_shopper_did_later_known_answer(split_log):
    table = _crafted_examples(split_log, with_catalogue=True)
    assert list(table.columns) == ["user_id", "rank", "item", "category", "price", "why", "later"]
    rows = [tuple(r) for r in table[["user_id", "item", "why", "later"]].itertuples(index=False)]
    assert rows == [
        # u1 viewed a (shoes) and viewed then carted b (bags): both as close to c; c carted at the cut-off
        ("u1", "c", "viewed 1 item in shoes; carted 1 item in bags", "✓ carted later"),
        # u2 viewed c before; carted a later; b not
        ("u2", "a", "viewed 1 item in shoes", "✓ carted later"),
        ("u2", "b", "viewed 1 item in shoes", ""),
        # u4 viewed a, orthogonal to b: no reason; b carted at the cut-off and bought later: the stronger event
        ("u4", "b", "", "✓ bought later"),
        ("u4", "c", "viewed 1 item in shoes", ""),
    ]
    assert table["price"].tolist() == [30.0, 10.0, 20.0, 20.0, 30.0]
    assert table["category"].tolist() == ["shoes", "shoes", "bags", "bags", "shoes"]


def test_recommendation_examples_without_categories_name_the_items(split_log):
    table = _crafted_examples(split_log, with_catalogue=False)
    assert list(table.columns) == ["user_id", "rank", "item", "why", "later"]
    assert table["why"].tolist()[:2] == ["viewed a; carted b", "viewed c"]


def test_why_recommended_groups_by_category_and_counts_each_action():
    catalogue = pd.DataFrame({"category": ["A", "A", "A", "B"]}, index=pd.Index(["i1", "i2", "i3", "i4"], name="item_id"))
    did = {"i1": "cart", "i2": "view", "i3": "view", "i4": "purchase"}
    assert (explain.why_recommended(["i1", "i2", "i3", "i4"], catalogue, did)
            == "carted 1 and viewed 2 items in A; bought 1 item in B")
    assert explain.why_recommended(["i2", "i1"], catalogue, did) == "viewed 1 and carted 1 item in A"
    assert explain.why_recommended(["i9"], catalogue, {"i9": "wish"}) == "had a 'wish' event on 1 item in no category"
    assert explain.why_recommended(["i1"], catalogue.drop(columns="category"), {}) == "interacted with i1"
    assert explain.why_recommended([], catalogue, {}) == ""


def test_why_of_implicits_als_names_the_planted_group_of_the_recommended_item(planted, evaluation):
    # the planted shop: users view items of their own group's block; ALS's reasons for a block item must come
    # from that same block (the explanation is implicit's own decomposition of the score)
    _, log, spec, split = planted
    catalogue = explain.item_catalogue(log).assign(category=lambda c: [i[:2] if i.startswith("g") else "popular"
                                                                      for i in c.index])
    users = list(split.train.user_ids[evaluation.users][::5])
    table = explain.recommendation_examples(evaluation, users, catalogue, k=1, events=log, spec=spec)
    block = table[table["category"] != "popular"]
    assert len(block) >= 10
    # the first group of the reason is the category of the strongest contributor
    named = [why.split(";")[0].endswith(f" in {category}") for why, category in zip(block["why"], block["category"])]
    assert np.mean(named) >= 0.9


def test_why_of_implicits_als_is_the_largest_terms_of_the_score_by_the_numpy_formula(planted, evaluation):
    # Hu, Koren & Volinsky (2008), section 5, in implicit's confidence convention (c = alpha·r observed, 1 not):
    # x_u = W_u Σ_j c_uj y_j with W_u = (YᵀY + Σ_j (c_uj − 1) y_j y_jᵀ + λI)⁻¹, so the score y_iᵀx_u is the sum of
    # the terms c_uj · y_iᵀ W_u y_j over the user's items j: the largest positive ones are the reasons
    _, _, spec, split = planted
    fitted = evaluation.models["ALS"]
    y = np.asarray(fitted.model_.item_factors, dtype=np.float64)
    train = split.train.matrix
    checked = 0
    for row, user in enumerate(evaluation.users[:40]):
        item = int(evaluation.recommended["ALS"][row, 0])
        history = train[user].indices
        confidence = fitted.alpha * train[user].data.astype(np.float64)
        a = y.T @ y + fitted.regularization * np.eye(y.shape[1])
        a += (y[history].T * (confidence - 1)) @ y[history]
        terms = confidence * (y[history] @ np.linalg.solve(a, y[item]))
        order = np.argsort(-terms, kind="stable")[:3]
        expected = history[order[terms[order] > 0]]
        got = explain._contributors(fitted, train, user, item, 3)
        assert got.tolist() == expected.tolist()
        checked += len(expected) > 1
    assert checked >= 20  # most users have several reasons, so their order is checked too


def test_recommendations_csv_keeps_the_real_ids_beside_the_report_pseudonym(evaluation, tmp_path, monkeypatch):
    from funnelkit.pseudonym import pseudonym
    from funnelkit.report import write_csv

    monkeypatch.setenv("TEST_KEY", "k" * 32)
    table = explain.recommendations_table(evaluation, 5, id_key_env="TEST_KEY")
    write_csv(table, tmp_path / "r.csv")
    frame = pd.read_csv(tmp_path / "r.csv", dtype={"user_id": str})
    assert list(frame.columns[:3]) == ["user_id", "user_pseudonym", "rank"]
    assert set(frame["user_id"]) == set(evaluation.split.train.user_ids[evaluation.users])
    assert all(p == pseudonym(u, env="TEST_KEY") for u, p in zip(frame["user_id"], frame["user_pseudonym"]))
    assert len(table) == len(frame)
    plain = explain.recommendations_table(evaluation, 5)
    assert "user_pseudonym" not in plain.columns
    pd.testing.assert_frame_equal(plain, table.drop(columns="user_pseudonym"))


# ---------------------------------------------------------------------------
# the whole study in one call: recommend.run on a small simulated shop
# ---------------------------------------------------------------------------

#: what notebook 03 recorded on the CI shop (params/ci.yaml) before the study became recommend.run:
#: name, unit and headline flag, in recording order (the MLlib figure only on the Spark engine)
NOTEBOOK_03_METRICS = [
    ("hit_rate_als", "share of test shoppers", True),
    ("hit_rate_best_sellers", "share of test shoppers", True),
    ("hit_rate_gain_over_best_sellers", "pp", True),
    ("cold_shoppers", "shoppers", True),
    ("ndcg_als", "NDCG@10", False),
    ("ndcg_best_baseline", "NDCG@10", False),
    ("best_baseline", None, False),
    ("ndcg_gain_over_best_baseline", "NDCG@10", False),
    ("ndcg_gain_over_popularity", "NDCG@10", False),
    ("test_users", "users", False),
    ("sweep_settings", "settings", False),
    ("bpr_epochs", "epochs", False),
    ("cart_abandoners", "users", False),
    ("planted_overlap_als", "share", False),
    ("planted_overlap_popularity", "share", False),
    ("reference_max_factor_difference", None, False),
    ("metrics_vs_implicit_max_difference", None, False),
    ("recommendation_rows", "rows", False),
]
PLANTED_METRICS = {"planted_overlap_als", "planted_overlap_popularity"}

STUDY_SPEC = RecommendParams(
    test_period=dt.timedelta(days=4), k=[5, 10], headline_k=10, threads=1, bootstrap=100,
    als=ALSSettings(factors=8, iterations=5), sweep=SweepGrid(factors=[8], regularization=[1.0], alpha=[1.0, 10.0]),
    bpr=BPRSettings(factors=8, iterations=[3, 10]))


@pytest.fixture(scope="module")
def shop_log(shop):
    return load_events(shop[0].events_path)


@pytest.fixture(scope="module")
def study(shop, shop_log):
    from funnelkit.groundtruth import Planted

    return recommend.run(shop_log, STUDY_SPEC, funnel=FunnelParams(), truth=Planted(shop[0]))


@pytest.fixture(scope="module")
def study_without_truth(shop_log):
    return recommend.run(shop_log, STUDY_SPEC)


def test_study_records_the_figures_notebook_03_recorded_with_their_units_and_headline_flags(study):
    got = [(m.name, m.unit, m.headline) for m in study.metrics()]
    assert got == NOTEBOOK_03_METRICS
    assert list(study.summary()["name"]) == [name for name, _, _ in NOTEBOOK_03_METRICS]
    labels = {m.name: m.label for m in study.metrics()}
    assert labels["hit_rate_als"] == "ALS: shoppers who carted or bought one of the 10 items it would have shown"
    assert labels["ndcg_best_baseline"] == f"Best baseline ({study.baseline}) on the test period"
    assert labels["planted_overlap_popularity"] == "popularity: overlap with planted top 10"


def test_study_without_the_planted_truth_keeps_every_account_and_has_no_planted_figures(study_without_truth, shop):
    results = study_without_truth
    assert [m.name for m in results.metrics()] == [n for n, _, _ in NOTEBOOK_03_METRICS if n not in PLANTED_METRICS]
    assert results.excluded == set() and results.planted_overlap is None
    assert "planted" not in results.describe_data()
    # the anomalous accounts are shoppers here: some of them are in the training matrix
    labels = shop[2]
    anomalous = set(labels.loc[labels["label"] != "human", "user_id"])
    assert anomalous & set(results.split.train.user_ids)


def test_study_with_the_planted_truth_leaves_out_its_anomalous_accounts_and_measures_the_taste(study, shop):
    dataset, _, labels, _ = shop
    anomalous = set(labels.loc[labels["label"] != "human", "user_id"])
    assert study.excluded == anomalous and not anomalous & set(study.split.train.user_ids)
    assert f"The {len(anomalous):,} accounts the simulator planted" in study.describe_data()
    expected = planted_taste_overlap(study.evaluation, dataset, 10, n_boot=100, seed=0)
    pd.testing.assert_frame_equal(study.planted_overlap, expected)
    figures = {m.name: m for m in study.metrics()}
    als = expected.set_index("model").loc["ALS"]
    assert figures["planted_overlap_als"].value == als["overlap"]
    assert figures["planted_overlap_als"].ci == (als["low"], als["high"])


def test_study_figures_are_the_parts_they_summarise(study):
    figures = {m.name: m for m in study.metrics()}
    gain = figures["hit_rate_gain_over_best_sellers"]
    assert gain.value == pytest.approx(figures["hit_rate_als"].value - figures["hit_rate_best_sellers"].value)
    assert figures["test_users"].value == len(study.evaluation.users) == study.audience["evaluated"]
    assert figures["sweep_settings"].value == 2 == len(study.sweep)
    assert figures["cart_abandoners"].value == len(study.cart_abandoners) > 0
    assert figures["best_baseline"].value == study.baseline != "ALS"
    ranking = study.ranking.query("model == 'ALS' and metric == 'ndcg' and k == 10")
    assert figures["ndcg_als"].value == pytest.approx(float(ranking["value"].iloc[0]), rel=1e-12)
    assert figures["recommendation_rows"].value == len(study.recommendations) > 0
    assert figures["metrics_vs_implicit_max_difference"].value < 1e-9
    assert figures["reference_max_factor_difference"].value < 1e-8
    # BPR's epochs are the better of the two on the validation split, and the test period's BPR has them
    on_validation = evaluate({epochs: bpr_model(STUDY_SPEC, epochs) for epochs in (3, 10)}, study.validation, [10],
                             exclude_seen=True, seed=STUDY_SPEC.seed).per_user
    best = max((3, 10), key=lambda epochs: on_validation[epochs]["ndcg@10"].mean())
    assert figures["bpr_epochs"].value == study.bpr_iterations == best
    assert figures["bpr_epochs"].label == "BPR's epochs, chosen on the validation split among 3, 10"
    # the study's settings are the sweep's best row, fitted everywhere else
    assert (study.settings.factors, study.settings.alpha) == (int(study.sweep["factors"][0]), study.sweep["alpha"][0])


def test_study_prose_leads_with_the_hit_rates_and_shows_its_checks(study):
    assert study.headline().startswith(f"**{study.hit_rate['value'] * 100:.1f}% of shoppers carted or bought")
    assert study.ndcg_text().startswith("**ALS ") and study.baseline in study.ndcg_text()
    assert study.settings_text().startswith(f"Chosen: **8 factors, regularization 1, alpha {study.settings.alpha:g}**")
    assert "implicit" in study.settings_text() and "with implicit" in study.mllib_text()
    assert study.settings_text().endswith(f"The baseline BPR was tuned on the same split: **{study.bpr_iterations} "
                                          "epochs** (of 3, 10).")
    assert study.implicit_agreement_text() == "On the lists of **ALS**:"
    assert study.planted_overlap_text().startswith("## Against the planted taste")
    assert study.reference_text().startswith("Sub-matrix ")


def test_study_shows_the_cart_abandoners_among_the_test_users_or_says_why_there_are_none(study):
    # on this small shop none of the shoppers who left at the cart came back in the four test days ...
    evaluated = study.split.train.user_ids[study.evaluation.users]
    assert len(study.cart_abandoners) > 0 and not np.isin(evaluated, study.cart_abandoners).any()
    assert study.left_at_cart is None
    assert study.cart_abandoners_text() == "None of the cart abandoners came back in the test period."
    # ... so the examples are of the first three test users
    assert list(dict.fromkeys(study.examples["user_id"])) == list(evaluated[:3])
    assert set(study.examples["rank"]) == {1, 2, 3, 4, 5}
    some = dataclasses.replace(study, left_at_cart=study.ranking.assign(users=1234))
    assert some.cart_abandoners_text() == "1,234 of them are among the test users."
    not_temporal = dataclasses.replace(study, cart_abandoners=None, left_at_cart=None)
    assert not_temporal.cart_abandoners_text().startswith("Not shown: this section needs one cut-off")
    assert [m.value for m in not_temporal.metrics() if m.name == "cart_abandoners"] == [0]


def test_study_without_a_cart_step_or_a_single_cut_off_looks_for_no_abandoners(shop_log):
    no_cart = FunnelParams(steps=[{"name": "view", "events": ["view"]}, {"name": "purchase", "events": ["purchase"]}])
    assert recommend.run(shop_log, STUDY_SPEC, funnel=no_cart).cart_abandoners is None
    per_user = recommend.run(shop_log, STUDY_SPEC.model_copy(update={"split": "leave_last_out"}))
    assert per_user.split.cutoff is None and per_user.cart_abandoners is None
    assert per_user.cart_abandoners_text().startswith("Not shown")


def test_study_on_mllib_records_its_normal_equations_check_after_the_reference_check(study):
    mllib = dataclasses.replace(study, mllib_check={"users": 300, "max_difference": 2e-6,
                                                    "implicit_form_difference": 0.3})
    names = [m.name for m in mllib.metrics()]
    at = names.index("reference_max_factor_difference")
    assert names[at + 1:at + 3] == ["mllib_normal_equations_max_difference", "metrics_vs_implicit_max_difference"]
    assert "is **2.0e-06** of the largest factor entry" in mllib.mllib_text()


def test_study_recommendations_table_adds_the_pseudonym_only_when_asked(study, monkeypatch):
    monkeypatch.setenv("TEST_KEY", "k" * 32)
    plain = study.recommendations_table()
    keyed = study.recommendations_table(id_key_env="TEST_KEY")
    assert "user_pseudonym" not in plain and list(keyed.columns[:2]) == ["user_id", "user_pseudonym"]
    pd.testing.assert_frame_equal(plain, keyed.drop(columns="user_pseudonym"))
