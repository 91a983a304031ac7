"""The recommenders compared in the study, behind one small interface.

Every model has ``fit(train)`` (a users × items CSR confidence matrix,
returns ``self``) and ``recommend(users, train, k, exclude_seen)`` returning
an int array (len(users), k) of item indices, best first, padded with −1
when fewer than k items are eligible. Parameters are set in ``__init__`` and
learned state ends in ``_`` (scikit-learn's contract).

ALS, BPR and item-kNN are the ``implicit`` library's; popularity and random
are the honest floors any recommender has to beat.
"""
from __future__ import annotations

import time
import warnings
from contextlib import contextmanager

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from . import metrics
from .matrix import stored

FILTERED_SCORE = -1e30
"""implicit scores a filtered item -FLT_MAX (ALS, BPR): anything at or below this is not a candidate."""
BATCH_USERS = 20_000
"""Users per call into implicit's batched top-k (bounds memory, not a per-user loop)."""
DENSE_CELLS = 5_000_000
"""Largest users × items score block the batched baselines build at once (40 MB of float64)."""


@contextmanager
def implicit_quietly():
    """BLAS on one thread and implicit's harmless warnings silenced, for implicit's fits.

    implicit's solvers run their own OpenMP threads; a multi-threaded BLAS underneath them
    oversubscribes the cores (implicit warns about it). Its own internals warn too: tqdm.auto
    complains in Jupyter without ipywidgets (no bar is shown), and the cosine recommender hands a
    COO matrix to its own CSR-only kNN routine. Both settings are process-wide: fits run side by
    side in threads must be inside one such block entered before them.
    """
    with threadpool_limits(1, "blas"), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="IProgress not found")
        warnings.filterwarnings("ignore", message="Method expects CSR input")
        yield


class _Implicit:
    """Shared fit/recommend around an implicit model built by ``_model()``."""

    name = "implicit"
    library = "implicit"
    """The library that fits the model (``"Spark MLlib"`` for :class:`~.spark_als.SparkALSRecommender`)."""

    def _model(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def fit(self, train: sp.csr_matrix) -> "_Implicit":
        with implicit_quietly():
            self.model_ = self._model()
            start = time.perf_counter()
            self.model_.fit(sp.csr_matrix(train, dtype=np.float32), show_progress=False)
            self.fit_seconds_ = time.perf_counter() - start
        return self

    def recommend(self, users: np.ndarray, train: sp.csr_matrix, k: int, exclude_seen: bool = True) -> np.ndarray:
        users = np.asarray(users, dtype=np.int32)
        out = np.full((len(users), k), -1, dtype=np.int64)
        n = min(k, train.shape[1])
        with threadpool_limits(1, "blas"):
            for start in range(0, len(users), BATCH_USERS):
                batch = users[start:start + BATCH_USERS]
                seen = train[batch]
                ids, scores = self.model_.recommend(batch, seen, N=n, filter_already_liked_items=exclude_seen)
                ids = np.asarray(ids).reshape(len(batch), -1).astype(np.int64)
                scores = np.asarray(scores).reshape(ids.shape)
                # when fewer than k items are eligible implicit fills the tail with filtered items
                # (score -inf, or 0 for item-kNN) or repeats of item 0: make that tail padding
                invalid = ~np.isfinite(scores) | (scores <= FILTERED_SCORE) | (ids < 0)
                if exclude_seen:
                    invalid |= metrics.hits(ids, stored(seen))
                out[start:start + len(batch), :n] = np.where(invalid, -1, ids)
        return out


def first_kept(candidates: np.ndarray, drop: np.ndarray, n: int) -> np.ndarray:
    """The first n entries of each row of ``candidates`` not marked in ``drop``, in order, −1 padding."""
    position = np.argsort(drop, axis=1, kind="stable")[:, :n]
    kept = np.take_along_axis(candidates, position, axis=1)
    return np.where(np.take_along_axis(drop, position, axis=1), -1, kept)


class ALSRecommender(_Implicit):
    """implicit's ``AlternatingLeastSquares`` (conjugate-gradient solver), trained on alpha × train.

    Parameters
    ----------
    factors, regularization, alpha, iterations
        As in implicit; implicit's confidence of an observed pair is
        ``alpha × value`` and of an unobserved pair 1. The defaults are
        :class:`~funnelkit.params.ALSSettings`'s.
    threads : int
        OpenMP threads of the solver (0 = all cores).
    seed : int
        Seed of the random starting factors.
    track_loss : bool
        Record the training loss after every iteration in ``losses_``.
    """

    name = "ALS"

    def __init__(self, factors: int = 16, regularization: float = 1.0, alpha: float = 1.0, iterations: int = 15,
                 threads: int = 0, seed: int = 0, track_loss: bool = False):
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.threads = threads
        self.seed = seed
        self.track_loss = track_loss

    def _model(self):
        from implicit.cpu.als import AlternatingLeastSquares

        self.losses_: list[float] = []
        model = AlternatingLeastSquares(
            factors=self.factors, regularization=self.regularization, alpha=self.alpha, iterations=self.iterations,
            calculate_training_loss=self.track_loss, num_threads=self.threads, random_state=self.seed)
        if self.track_loss:
            model.fit_callback = lambda _iteration, _seconds, loss: self.losses_.append(float(loss))
        return model

    def similar_items(self, items: np.ndarray, n: int) -> np.ndarray:
        """The n items most similar to each of ``items`` (cosine of item factors), excluding the item itself."""
        ids, _ = self.model_.similar_items(np.asarray(items, dtype=np.int32), N=n + 1)
        ids = np.asarray(ids).reshape(len(items), -1)
        keep = ids != np.asarray(items)[:, None]
        return np.stack([row[mask][:n] for row, mask in zip(ids, keep)])


class BPRRecommender(_Implicit):
    """implicit's Bayesian personalised ranking (uses which pairs are non-zero, not their weights).

    One thread by default: implicit's BPR is lock-free SGD whose threads race on the shared factors, so
    with more than one the same data and seed give a different model, and different report figures, on
    every run; on one thread it is reproducible.
    """

    name = "BPR"

    def __init__(self, factors: int = 64, learning_rate: float = 0.05, regularization: float = 0.01,
                 iterations: int = 100, threads: int = 1, seed: int = 0):
        self.factors = factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.iterations = iterations
        self.threads = threads
        self.seed = seed

    def _model(self):
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        return BayesianPersonalizedRanking(factors=self.factors, learning_rate=self.learning_rate,
                                           regularization=self.regularization, iterations=self.iterations,
                                           num_threads=self.threads, random_state=self.seed)


class _Scored:
    """Models whose scores for a batch of users are a dense users × items block, ranked by :func:`top_k`."""

    def _scores(self, users: np.ndarray, train: sp.csr_matrix) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def recommend(self, users: np.ndarray, train: sp.csr_matrix, k: int, exclude_seen: bool = True) -> np.ndarray:
        users = np.asarray(users)
        out = np.full((len(users), k), -1, dtype=np.int64)
        batch = max(1, DENSE_CELLS // max(train.shape[1], 1))
        for start in range(0, len(users), batch):
            rows = users[start:start + batch]
            out[start:start + len(rows)] = top_k(self._scores(rows, train), train[rows] if exclude_seen else None, k)
        return out


class ItemKNNRecommender(_Scored, _Implicit):
    """implicit's item-item cosine nearest neighbours: score = Σ over the user's items of similarity × weight.

    implicit computes the similarity matrix; the scores are the same product
    implicit's scorer forms, done here for a whole batch of users at once
    (implicit's own ``recommend`` loops over the users in Python).
    """

    name = "item-kNN"

    def __init__(self, neighbours: int = 50, threads: int = 0):
        self.neighbours = neighbours
        self.threads = threads

    def _model(self):
        from implicit.nearest_neighbours import CosineRecommender

        return CosineRecommender(K=self.neighbours, num_threads=self.threads)

    def _scores(self, users: np.ndarray, train: sp.csr_matrix) -> np.ndarray:
        return (train[users] @ self.model_.similarity).toarray()


class PopularityRecommender(_Scored):
    """Everyone gets the items most users interacted with in training (ties: lower index first)."""

    name = "popularity"

    def fit(self, train: sp.csr_matrix) -> "PopularityRecommender":
        start = time.perf_counter()
        users_per_item = np.bincount(sp.csr_matrix(train).indices, minlength=train.shape[1]).astype(np.float64)
        # a vanishing index penalty breaks ties deterministically towards the lower item index
        self.scores_ = users_per_item - np.arange(train.shape[1]) * 1e-9
        self.order_ = np.argsort(-self.scores_, kind="stable")
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def _scores(self, users: np.ndarray, train: sp.csr_matrix) -> np.ndarray:
        return np.broadcast_to(self.scores_, (len(users), len(self.scores_)))

    def recommend(self, users: np.ndarray, train: sp.csr_matrix, k: int, exclude_seen: bool = True) -> np.ndarray:
        """The catalogue's order for everyone, each user's seen items skipped: :func:`top_k` of the
        scores without sorting a users × items block (the scores are distinct, so the order is one)."""
        users = np.asarray(users)
        out = np.full((len(users), k), -1, dtype=np.int64)
        n = min(k, train.shape[1])
        if not exclude_seen:
            out[:, :n] = self.order_[:n]
            return out
        history = stored(train[users])
        wide = min(train.shape[1], n + int(np.diff(history.indptr).max(initial=0)))
        batch = max(1, DENSE_CELLS // max(wide, 1))
        for start in range(0, len(users), batch):
            seen = history[start:start + batch]
            candidates = np.broadcast_to(self.order_[:wide], (seen.shape[0], wide))
            out[start:start + seen.shape[0], :n] = first_kept(candidates, metrics.hits(candidates, seen), n)
        return out


class RandomRecommender(_Scored):
    """A uniformly random ranking per user (seeded): the floor that shows what chance gives."""

    name = "random"

    def __init__(self, seed: int = 0):
        self.seed = seed

    def fit(self, train: sp.csr_matrix) -> "RandomRecommender":
        self.n_items_ = train.shape[1]
        self.rng_ = np.random.default_rng(self.seed)
        self.fit_seconds_ = 0.0
        return self

    def _scores(self, users: np.ndarray, train: sp.csr_matrix) -> np.ndarray:
        return self.rng_.random((len(users), self.n_items_), dtype=np.float32)


def top_k(scores: np.ndarray, seen: sp.csr_matrix | None, k: int) -> np.ndarray:
    """Indices of the k highest scores per row, best first, skipping ``seen`` non-zeros (−1 pads).

    ``scores`` is (n, items); ``seen`` is None or an (n, items) CSR matrix.
    """
    scores = np.array(scores, dtype=np.float64)  # a copy: the caller's block may be a broadcast view
    if seen is not None and seen.nnz:
        coo = sp.coo_matrix(seen)
        scores[coo.row, coo.col] = -np.inf
    k_eff = min(k, scores.shape[1])
    part = np.argpartition(-scores, k_eff - 1, axis=1)[:, :k_eff]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    best = np.take_along_axis(part, order, axis=1)
    best = np.where(np.isneginf(np.take_along_axis(scores, best, axis=1)), -1, best)
    out = np.full((scores.shape[0], k), -1, dtype=np.int64)
    out[:, :k_eff] = best
    return out
