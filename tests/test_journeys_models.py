"""Next-event models of journeys against brute force and scikit-learn, and the planted second-order effect."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from funnelkit.eventlog import EventLog
from funnelkit.groundtruth import Planted
from funnelkit.journeys import evaluate
from funnelkit.journeys.models import FIRST_ORDER_PRIOR, PAD, MarkovModel, examples
from funnelkit.journeys.paths import Sequences, journey_counts, journey_sequences
from funnelkit.params import SimulationParams
from funnelkit.simulate import simulate

VOCAB = ["start", "a", "b", "c", "purchase", "exit"]


def _sequences(journeys: list[list[str]], users=None, starts=None) -> Sequences:
    code = {s: i for i, s in enumerate(VOCAB)}
    tokens = np.array([code[s] for j in journeys for s in ["start", *j]])
    lengths = [len(j) + 1 for j in journeys]
    n = len(journeys)
    return Sequences(VOCAB, tokens, np.r_[0, np.cumsum(lengths)], np.arange(n) if starts is None else starts,
                     np.arange(n) if users is None else np.asarray(users))


def test_examples_are_every_prefix_with_its_next_state_and_what_it_has_seen():
    ex = examples(_sequences([["a", "b", "a", "purchase"], ["c", "exit"]]))
    code = VOCAB.index
    assert ex.position.tolist() == [0, 1, 2, 3, 0, 1]
    assert ex.current.tolist() == [code(s) for s in ("start", "a", "b", "a", "start", "c")]
    assert ex.previous.tolist() == [PAD, 0, code("a"), code("b"), PAD, 0]
    assert ex.before.tolist() == [PAD, PAD, 0, code("a"), PAD, PAD]
    assert ex.target.tolist() == [code(s) for s in ("a", "b", "a", "purchase", "c", "exit")]
    assert ex.bought.tolist() == [True] * 4 + [False] * 2
    assert ex.seen[3].tolist() == [1, 2, 1, 0, 0, 0]  # start, a twice, b: the prefix start a b a
    assert examples(_sequences([["a", "b", "a", "purchase"]]), max_length=2).position.tolist() == [0, 1]


def _random_journeys(seed: int, n: int = 400) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        path = []
        while True:
            step = rng.choice(["a", "b", "c", "purchase", "exit"], p=[.35, .25, .2, .08, .12])
            path.append(str(step))
            if step in ("purchase", "exit") or len(path) > 12:
                break
        if path[-1] not in ("purchase", "exit"):
            path.append("exit")
        out.append(path)
    return out


def test_the_first_order_chain_is_the_smoothed_transition_frequencies_and_its_absorption():
    seqs = _sequences(_random_journeys(1))
    model = MarkovModel(1).fit(seqs)
    ex = examples(seqs)
    counts = pd.crosstab(ex.current, ex.target).reindex(index=range(6), columns=range(6), fill_value=0).to_numpy()
    overall = counts.sum(axis=0) + 1e-3 * (np.arange(6) > 0)
    overall = overall / overall.sum()
    expected = (counts + FIRST_ORDER_PRIOR * overall) / (counts.sum(axis=1, keepdims=True) + FIRST_ORDER_PRIOR)
    np.testing.assert_allclose(model.first_, expected, rtol=1e-12)
    # the chance to buy from a state: value iteration of u = P_purchase + Q u (independent of the linear solve)
    u = np.zeros(4)
    for _ in range(3000):
        u = expected[:4, 4] + expected[:4, :4] @ u
    np.testing.assert_allclose(model.buy_, u, rtol=1e-9)


def test_the_second_order_chance_to_buy_follows_the_pair_recursion():
    seqs = _sequences(_random_journeys(2))
    model = MarkovModel(2).fit(seqs)
    second = model.second_  # previous (6 = before the start), current, next
    u = np.zeros((7, 4))
    for _ in range(3000):  # u(h, i) = P(purchase | h, i) + Σ_j transient P(j | h, i) u(i, j)
        u = second[:, :4, 4] + np.einsum("hij,ij->hi", second[:, :4, :4], u[:4])
    ex = examples(seqs)
    previous = np.where(ex.previous == PAD, 6, ex.previous)
    np.testing.assert_allclose(model.purchase_proba(ex), u[previous, ex.current], rtol=1e-9)
    rows = model.next_proba(ex)
    np.testing.assert_allclose(rows.sum(axis=1), 1.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_weighted_ranking_metrics_equal_scikit_learns_with_sample_weights(seed):
    rng = np.random.default_rng(seed)
    scores = np.round(rng.uniform(size=300), 1)  # many ties
    labels = rng.uniform(size=300) < 0.3
    weights = rng.poisson(1.0, size=(4, 300)).astype(float)
    auc = evaluate.weighted_roc_auc(scores, labels, weights)
    ap = evaluate.weighted_average_precision(scores, labels, weights)
    for row in range(4):
        assert auc[row] == pytest.approx(roc_auc_score(labels, scores, sample_weight=weights[row]), rel=1e-12)
        assert ap[row] == pytest.approx(average_precision_score(labels, scores, sample_weight=weights[row]),
                                        rel=1e-12)


def test_the_split_trains_on_journeys_before_the_cutoff_and_tests_on_the_others():
    seqs = _sequences(_random_journeys(3, 100), starts=np.arange(100) * 1_000_000)
    train, test, cutoff = evaluate.split(seqs, 0.25)
    cut_us = cutoff.value // 1000
    assert (seqs.start_us[train] < cut_us).all() and (seqs.start_us[test] >= cut_us).all()
    assert len(train) + len(test) == 100 and len(test) == 25


def test_a_second_order_pattern_is_found_by_the_second_order_chain_and_not_the_first():
    # after "a", "c" leads to purchase; after "b", "c" leads out: only the state before tells them apart
    rng = np.random.default_rng(4)
    journeys = [[first, "c", "purchase" if first == "a" else "exit"] for first in rng.choice(["a", "b"], 600)]
    seqs = _sequences(journeys, users=np.arange(600) // 3, starts=np.arange(600))
    result = evaluate.compare(seqs, replicates=200, lstm=False, after=(2,))
    table = result.next_event.set_index("model")
    assert result.baseline == "Markov, second order"
    first = table.loc["Markov, first order"]
    # ln 2 nats lost at the third of each journey's three steps (the smoothing costs a little more)
    assert first["log_loss_diff"] == pytest.approx(np.log(2) / 3, abs=0.02) and first["log_loss_diff_low"] > 0.15
    purchase = result.purchase.set_index("model")
    assert purchase.loc["Markov, second order", "roc_auc"] == pytest.approx(1.0)
    assert purchase.loc["Markov, first order", "roc_auc"] == pytest.approx(0.5)


@pytest.fixture(scope="module")
def shop_sequences(tmp_path_factory):
    params = SimulationParams(seed=11, n_users=20_000, days=28)
    dataset = simulate(params, tmp_path_factory.mktemp("journey_models_shop"))
    events = EventLog.from_parquet(dataset.events_path).without_users(Planted(dataset).anomalous_accounts)
    return journey_sequences(events, journey_counts(events, {}, 12))


def test_the_planted_second_order_effect_makes_the_second_order_chain_predict_better(shop_sequences):
    result = evaluate.compare(shop_sequences, replicates=200, lstm=False)
    table = result.next_event.set_index("model")
    assert result.baseline == "Markov, second order"
    assert table.loc["Markov, first order", "log_loss_diff_low"] > 0  # first order worse, beyond noise
    # a working fit, not a diverged one (1.50 nats when the multiclass fit overshot on 200,000 prefixes)
    assert table.loc["Gradient boosting on n-grams", "log_loss"] < 1.2


def test_the_lstm_learns_what_only_the_state_two_back_says_and_repeats_itself(keras):
    from funnelkit.journeys.lstm import LSTMModel

    # after "a", the third state is "c" then purchase; after "b", it is "a" then exit: only memory tells
    rng = np.random.default_rng(5)
    journeys = [["a", "b", "c", "purchase"] if x == "a" else ["b", "b", "a", "exit"]
                for x in rng.choice(["a", "b"], 800)]
    seqs = _sequences(journeys)
    ex = examples(seqs)
    fits = [LSTMModel(max_length=6, epochs=30, seed=3).fit(seqs) for _ in range(2)]
    (p1, b1), (p2, b2) = (f.predict(ex, seqs) for f in fits)
    np.testing.assert_array_equal(p1, p2)  # the same seed, the same numbers
    np.testing.assert_array_equal(b1, b2)
    at_third = ex.position == 2
    assert (p1[at_third, ex.target[at_third]] > 0.9).all()
    assert (np.abs(b1[ex.position == 1] - ex.bought[ex.position == 1]) < 0.1).all()
