"""Next-event models of journeys: what a shopper does next, and whether the session will end in a purchase.

Every model is fitted on :class:`~funnelkit.journeys.paths.Sequences` and predicts for :class:`Examples`:
a journey's prefix ``s_0 … s_t`` (``s_0`` = ``start``) with ``next_proba`` (a distribution over the
vocabulary for ``s_{t+1}``) and ``purchase_proba`` (the chance the journey ends in ``purchase``).

- :class:`MarkovModel` (``order=1``): ``P(s_{t+1} | s_t)``, counts smoothed towards the overall next-state
  frequencies; the chance to buy is the absorbing chain's ``B[s_t, purchase]`` (:mod:`.chain`).
- :class:`MarkovModel` (``order=2``): ``P(s_{t+1} | s_{t-1}, s_t)``, counts smoothed towards the first-order
  chain (a Dirichlet prior centred on it, weight :data:`SECOND_ORDER_PRIOR`); the chance to buy from the
  chain over pairs of states.
- :class:`GradientBoostingModel`: scikit-learn's histogram gradient boosting on n-gram and recency features of
  the prefix (the last three states, position, how often each state was seen so far).
- :class:`LSTMModel` (``funnelkit.journeys.lstm``, the ``sequence`` extra): a recurrent network over the prefix.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from . import chain
from .paths import Sequences

FIRST_ORDER_PRIOR = 1.0
"""Pseudo-count of the first-order chain's smoothing towards the overall next-state frequencies."""
SECOND_ORDER_PRIOR = 5.0
"""Pseudo-count of the second-order chain's smoothing towards the first-order one."""
FLOOR = 1e-6
"""Smallest probability any model gives a next state (a log-loss of a state never seen in training stays finite)."""


@dataclass
class Examples:
    """Prefixes of journeys: one per position ``t`` of a journey that has a next state.

    Attributes
    ----------
    journey : ndarray of int
        The journey (index into the sequences) of each example.
    position : ndarray of int
        ``t``: the prefix is the journey's tokens ``0 … t``.
    current, previous, before : ndarray of int
        ``s_t``, ``s_{t-1}`` and ``s_{t-2}`` (:data:`PAD` = -1 before the journey's start).
    target : ndarray of int
        ``s_{t+1}``.
    bought : ndarray of bool
        The journey ends in ``purchase``.
    seen : ndarray of float, shape (n, vocabulary)
        How often each state occurs in the prefix.
    user : ndarray of int
    """

    journey: np.ndarray
    position: np.ndarray
    current: np.ndarray
    previous: np.ndarray
    before: np.ndarray
    target: np.ndarray
    bought: np.ndarray
    seen: np.ndarray
    user: np.ndarray

    def __len__(self) -> int:
        return len(self.journey)

    def take(self, mask: np.ndarray) -> "Examples":
        return Examples(*(getattr(self, f)[mask] for f in self.__dataclass_fields__))


PAD = -1


def examples(seqs: Sequences, max_length: int | None = None) -> Examples:
    """Every prefix of every journey that has a next state (positions below ``max_length``, when given)."""
    lengths = np.diff(seqs.offsets)
    journey = np.repeat(np.arange(len(lengths)), lengths)
    position = np.arange(len(seqs.tokens)) - np.repeat(seqs.offsets[:-1], lengths)
    has_next = position < np.repeat(lengths, lengths) - 1
    if max_length is not None:
        has_next &= position < max_length
    tokens = seqs.tokens
    index = np.flatnonzero(has_next)
    shifted = [np.where(position[index] >= k, tokens[np.maximum(index - k, 0)], PAD) for k in (1, 2)]
    vocabulary = len(seqs.vocabulary)
    one_hot = np.zeros((len(tokens), vocabulary))
    one_hot[np.arange(len(tokens)), tokens] = 1
    running = np.cumsum(one_hot, axis=0)
    before_journey = np.repeat(running[seqs.offsets[:-1]] - one_hot[seqs.offsets[:-1]], lengths, axis=0)
    seen = (running - before_journey)[index]
    last = tokens[seqs.offsets[1:] - 1]
    purchase = seqs.vocabulary.index("purchase")
    return Examples(journey[index], position[index], tokens[index], shifted[0], shifted[1], tokens[index + 1],
                    (last == purchase)[journey[index]], seen, seqs.user[journey[index]])


def _floored(p: np.ndarray) -> np.ndarray:
    p = np.maximum(p, FLOOR)
    return p / p.sum(axis=1, keepdims=True)


class MarkovModel:
    """A first- or second-order Markov chain of journeys (see the module docstring).

    Parameters
    ----------
    order : {1, 2}
    """

    def __init__(self, order: int = 1):
        self.order = order

    @property
    def name(self) -> str:
        return "Markov, first order" if self.order == 1 else "Markov, second order"

    def fit(self, seqs: Sequences, ex: Examples | None = None) -> "MarkovModel":
        """Fit on the journeys ``seqs`` (``ex``: their :func:`examples`, when already made)."""
        v = len(seqs.vocabulary)
        ex = examples(seqs) if ex is None else ex
        counts = np.zeros((v, v))
        np.add.at(counts, (ex.current, ex.target), 1)
        overall = counts.sum(axis=0) + 1e-3 * (np.arange(v) > 0)  # no state goes back to start
        overall /= overall.sum()
        first = (counts + FIRST_ORDER_PRIOR * overall) / (counts.sum(axis=1, keepdims=True) + FIRST_ORDER_PRIOR)
        self.first_ = first
        self.vocabulary_ = list(seqs.vocabulary)
        if self.order == 2:
            pairs = np.zeros((v + 1, v, v))  # previous (the last index: before the start), current, next
            np.add.at(pairs, (ex.previous, ex.current, ex.target), 1)
            self.second_ = (pairs + SECOND_ORDER_PRIOR * first[None]) / (
                pairs.sum(axis=2, keepdims=True) + SECOND_ORDER_PRIOR)
        self.buy_ = self._absorption()
        return self

    def _absorption(self) -> np.ndarray:
        """Chance to end in purchase from each state (order 1) or each (previous, current) pair (order 2)."""
        v = len(self.vocabulary_)
        k = v - 2  # transient tokens: start and the states; then purchase, exit
        if self.order == 1:
            return chain.absorption_probabilities(self.first_[:k])[:, 0]
        # pair chain: state (h, i) for h in PAD + transient, i transient; (h, i) → (i, j) with P(j | h, i)
        previous = [v] + list(range(k))  # v is PAD's row in second_
        index = {(h, i): n for n, (h, i) in enumerate((h, i) for h in previous for i in range(k))}
        P = np.zeros((len(index), len(index) + 2))
        for (h, i), row in index.items():
            probs = self.second_[h, i]
            for j in range(k):
                P[row, index[(i, j)]] += probs[j]
            P[row, len(index):] = probs[k:]
        buy = chain.absorption_probabilities(P)[:, 0]
        out = np.zeros((v + 1, v))
        for (h, i), row in index.items():
            out[h, i] = buy[row]
        return out

    def next_proba(self, ex: Examples) -> np.ndarray:
        if self.order == 1:
            return _floored(self.first_[ex.current])
        previous = np.where(ex.previous == PAD, len(self.vocabulary_), ex.previous)
        return _floored(self.second_[previous, ex.current])

    def purchase_proba(self, ex: Examples) -> np.ndarray:
        if self.order == 1:
            return self.buy_[ex.current]
        previous = np.where(ex.previous == PAD, len(self.vocabulary_), ex.previous)
        return self.buy_[previous, ex.current]


def _features(ex: Examples, vocabulary: int) -> np.ndarray:
    """n-gram and recency features: the last three states (categorical; ``vocabulary`` stands for none),
    the position, and how often each state was seen so far."""
    codes = [np.where(x == PAD, vocabulary, x) for x in (ex.current, ex.previous, ex.before)]
    return np.column_stack([*codes, ex.position, ex.seen])


class GradientBoostingModel:
    """Histogram gradient boosting (scikit-learn) on :func:`_features`: one multiclass model of the next state
    and one binary model of "the journey ends in a purchase".

    Parameters
    ----------
    max_examples : int
        Training prefixes drawn at most (seeded), for each of the two models. More is not better here: on
        200,000 prefixes of the built-in shop the multiclass fit overshot (test log-loss 1.50 nats against
        1.13 at 50,000), its leaves too pure for the Newton steps.
    seed : int
    """

    name = "Gradient boosting on n-grams"

    def __init__(self, max_examples: int = 50_000, seed: int = 0):
        self.max_examples = max_examples
        self.seed = seed

    def fit(self, seqs: Sequences, ex: Examples | None = None) -> "GradientBoostingModel":
        """Fit on the journeys ``seqs`` (``ex``: their :func:`examples`, when already made)."""
        from sklearn.ensemble import HistGradientBoostingClassifier

        ex = examples(seqs) if ex is None else ex
        rng = np.random.default_rng(self.seed)
        if len(ex) > self.max_examples:
            ex = ex.take(np.sort(rng.choice(len(ex), self.max_examples, replace=False)))
        self.vocabulary_ = list(seqs.vocabulary)
        v = len(self.vocabulary_)
        x = _features(ex, v)
        categorical = [True, True, True] + [False] * (x.shape[1] - 3)
        # the L2 penalty and the leaf minimum keep the Newton steps finite where a transition is (nearly)
        # certain (checkout → delivery): without them the multiclass fit diverged after a few iterations
        options = dict(categorical_features=categorical, max_iter=80, learning_rate=0.15, l2_regularization=5.0,
                       min_samples_leaf=100, max_leaf_nodes=15, early_stopping=True, validation_fraction=0.1,
                       n_iter_no_change=5, random_state=self.seed)
        # one OpenMP thread: beside another busy process (a second notebook, the test suite) two threads made
        # the fit 6 times slower on the 2-core machine (22.8 s against 3.9 s on the CI shop)
        with threadpool_limits(1, user_api="openmp"):
            self.next_ = HistGradientBoostingClassifier(**options).fit(x, ex.target)
            self.buy_ = HistGradientBoostingClassifier(**options).fit(x, ex.bought)
        return self

    def next_proba(self, ex: Examples) -> np.ndarray:
        out = np.zeros((len(ex), len(self.vocabulary_)))
        with threadpool_limits(1, user_api="openmp"):
            out[:, self.next_.classes_] = self.next_.predict_proba(_features(ex, len(self.vocabulary_)))
        return _floored(out)

    def purchase_proba(self, ex: Examples) -> np.ndarray:
        with threadpool_limits(1, user_api="openmp"):
            proba = self.buy_.predict_proba(_features(ex, len(self.vocabulary_)))
        return proba[:, list(self.buy_.classes_).index(True)] if True in self.buy_.classes_ else np.zeros(len(ex))
