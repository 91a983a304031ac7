"""Fit every model on one split, rank for the test users in batches, score with one metric code."""
from __future__ import annotations

import contextlib
import itertools
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..params import RecommendParams
from . import metrics
from .models import (ALSRecommender, BPRRecommender, ItemKNNRecommender, PopularityRecommender,
                     RandomRecommender, _Implicit, _Scored, implicit_quietly)
from .spark_als import SparkALSRecommender
from .split import Split


def als_model(settings, spec: RecommendParams, spark=None, *, threads: int | None = None):
    """The ALS of the study with ``settings`` (an :class:`~funnelkit.params.ALSSettings`).

    implicit's :class:`ALSRecommender` by default; with a SparkSession, Spark MLlib's
    :class:`~funnelkit.recommend.spark_als.SparkALSRecommender` with the same four numbers
    (which do not make the same model: see its Notes). ``model.library`` says which. ``threads``
    overrides ``spec.threads`` for implicit's fit.
    """
    if spark is None:
        return ALSRecommender(settings.factors, settings.regularization, settings.alpha, settings.iterations,
                              spec.threads if threads is None else threads, spec.seed)
    return SparkALSRecommender(settings.factors, settings.regularization, settings.alpha, settings.iterations,
                               seed=spec.seed, spark=spark)


def bpr_epochs(spec: RecommendParams) -> list[int]:
    """BPR's candidate numbers of epochs (``recommend.bpr.iterations``, one number or a list), in order."""
    iterations = spec.bpr.iterations
    return [iterations] if isinstance(iterations, int) else list(iterations)


def bpr_model(spec: RecommendParams, iterations: int) -> BPRRecommender:
    """implicit's BPR with ``spec.bpr``'s settings and ``iterations`` epochs, on one thread (reproducible)."""
    bpr = spec.bpr
    return BPRRecommender(bpr.factors, bpr.learning_rate, bpr.regularization, iterations, seed=spec.seed)


def models_from_params(spec: RecommendParams, als=None, spark=None, bpr_iterations: int | None = None
                       ) -> dict[str, object]:
    """ALS (with ``als`` settings, default ``spec.als``) and the four baselines, named for tables.

    With ``spark`` (a SparkSession) the "ALS" entry is fitted by Spark MLlib instead of implicit
    (:func:`als_model`); the key stays "ALS" and the baselines are the same. BPR fits
    ``bpr_iterations`` epochs, by default the first of :func:`bpr_epochs` (the study passes the
    number its validation split chose, :func:`funnelkit.recommend.explain.best_baseline`).
    """
    als = als or spec.als
    return {
        "ALS": als_model(als, spec, spark),
        "BPR": bpr_model(spec, bpr_iterations or bpr_epochs(spec)[0]),
        "item-kNN": ItemKNNRecommender(spec.knn_neighbours, spec.threads),
        "popularity": PopularityRecommender(),
        "random": RandomRecommender(spec.seed),
    }


def ranked_by_implicit(models: dict, preferred: str = "ALS") -> str:
    """The model whose lists ``implicit.evaluation`` can recompute: ``preferred`` if it can, else the first that can.

    ``implicit.evaluation.ranking_metrics_at_k`` ranks with the fitted implicit model's own
    ``recommend``; so do this package's ALS and BPR (:class:`~.models.ALSRecommender`,
    :class:`~.models.BPRRecommender`), so both give the same lists. Models ranked here in NumPy
    cannot be checked that way: Spark MLlib's ALS (``engine: spark``) has no implicit model at all,
    and item-kNN, popularity and random rank their own scores. The check is of the metric code,
    which is the same for every model, so with MLlib's ALS it runs on BPR's lists.

    Raises
    ------
    ValueError
        No model of ``models`` is ranked by implicit.
    """
    def by_implicit(model) -> bool:
        return isinstance(model, _Implicit) and not isinstance(model, _Scored)

    if preferred in models and by_implicit(models[preferred]):
        return preferred
    for name, model in models.items():
        if by_implicit(model):
            return name
    raise ValueError(f"none of the models {list(models)} is ranked by the implicit library")


def evaluation_users(split: Split, max_users: int | None, seed: int) -> np.ndarray:
    """The test users evaluated: all of them, or a seeded random sample of ``max_users``."""
    users = split.test_users
    if max_users is not None and len(users) > max_users:
        users = np.sort(np.random.default_rng(seed).choice(users, size=max_users, replace=False))
    return users


@dataclass
class Evaluation:
    """Every model's top-k lists and per-user metrics on the same users.

    Attributes
    ----------
    split : Split
    users : numpy array of int
        Rows of ``split.train`` evaluated (test users, possibly sampled).
    recommended : dict of str to array (len(users), max k)
    per_user : dict of str to DataFrame
        :func:`funnelkit.recommend.metrics.per_user_metrics` per model.
    timings : DataFrame
        ``model``, ``fit_seconds``, ``recommend_seconds``, ``users``.
    models : dict of str to fitted model
    """

    split: Split
    users: np.ndarray
    k_values: list[int]
    recommended: dict
    per_user: dict
    timings: pd.DataFrame
    models: dict

    def summary(self, *, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
        """Long table: model, metric, k, value, low, high (bootstrap over users), users.

        Coverage and novelty are catalogue-level numbers without an interval.
        """
        frames = []
        popularity = self.split.train.item_popularity()
        n_items = self.split.train.shape[1]
        for name, per_user in self.per_user.items():
            table = metrics.summarize(per_user, n_boot=n_boot, seed=seed)
            extra = [{"metric": m, "k": k, "value": f(self.recommended[name], k), "low": np.nan, "high": np.nan,
                      "users": len(self.users)}
                     for k in self.k_values
                     for m, f in (("coverage", lambda r, k: metrics.coverage(r, n_items, k)),
                                  ("novelty", lambda r, k: metrics.novelty(r, popularity, k)))]
            frames.append(pd.concat([table, pd.DataFrame(extra)], ignore_index=True).assign(model=name))
        out = pd.concat(frames, ignore_index=True)
        return out[["model", "metric", "k", "value", "low", "high", "users"]]

    def difference(self, a: str, b: str, metric: str, k: int, *, n_boot: int = 1000,
                   seed: int = 0) -> tuple[float, float, float]:
        """Mean per-user difference a − b of ``metric@k`` with its paired bootstrap interval."""
        column = f"{metric}@{k}"
        return metrics.paired_difference(self.per_user[a][column].to_numpy(), self.per_user[b][column].to_numpy(),
                                         n_boot=n_boot, seed=seed)

    def subset(self, mask: np.ndarray) -> "Evaluation":
        """The same evaluation restricted to the users where ``mask`` (aligned with ``users``) is true."""
        mask = np.asarray(mask, dtype=bool)
        return Evaluation(self.split, self.users[mask], self.k_values,
                          {n: r[mask] for n, r in self.recommended.items()},
                          {n: f[mask].reset_index(drop=True) for n, f in self.per_user.items()},
                          self.timings, self.models)


def evaluate(models: dict, split: Split, k_values, *, exclude_seen: bool = True, max_users: int | None = None,
             seed: int = 0) -> Evaluation:
    """Fit each model on ``split.train`` and score its top-max(k) lists for the test users.

    Every model ranks the same users, in batches (no Python loop per user),
    and is scored by the same metric code against ``split.truth``.
    """
    k_values = sorted(set(int(k) for k in k_values))
    users = evaluation_users(split, max_users, seed)
    train, truth = split.train.matrix, split.truth[users]
    recommended, per_user, rows = {}, {}, []
    for name, model in models.items():
        model.fit(train)
        start = time.perf_counter()
        recommended[name] = model.recommend(users, train, max(k_values), exclude_seen=exclude_seen)
        seconds = time.perf_counter() - start
        per_user[name] = metrics.per_user_metrics(recommended[name], truth, k_values)
        rows.append({"model": name, "fit_seconds": model.fit_seconds_, "recommend_seconds": seconds,
                     "users": len(users)})
    return Evaluation(split, users, k_values, recommended, per_user, pd.DataFrame(rows), models)


class FitPool:
    """Runs independent model fits side by side: ``spec.threads`` at once (0 = one per core), each on one thread.

    implicit's half-steps are short (milliseconds on the built-in shop), so threads inside one fit
    spend much of their time waiting for each other, the more so on a busy machine; whole fits side by
    side do not wait. implicit's ALS gives the same factors on any number of threads, so what is fitted
    is the same either way (BPR always fits on one thread: see :class:`~.models.BPRRecommender`). With
    one thread or with Spark (``spark`` given), each task runs at once when submitted. Use it as a
    context manager; ``submit`` as in :mod:`concurrent.futures`.

    Attributes
    ----------
    workers : int
        Tasks run at once.
    threads_per_fit : int
        implicit threads of an ALS fit run in the pool (``spec.threads`` when ``workers`` is 1).
    """

    def __init__(self, spec: RecommendParams, spark=None):
        self.workers = 1 if spark is not None else (spec.threads or available_cores())
        self.threads_per_fit = spec.threads if self.workers == 1 else 1
        self._stack = contextlib.ExitStack()
        self._executor = None

    def __enter__(self) -> "FitPool":
        if self.workers > 1:
            # BLAS limits and warning filters are process-wide: set once here, around every fit at once
            self._stack.enter_context(implicit_quietly())
            # implicit's modules are imported by the first fit that needs them; two threads importing them at
            # once can deadlock on Python's module locks (a _DeadlockError on implicit.cpu.als was seen): import
            # them here, before any thread starts (and inside the filters: importing implicit warns in Jupyter)
            import implicit.cpu.als  # noqa: F401
            import implicit.cpu.bpr  # noqa: F401
            import implicit.evaluation  # noqa: F401
            import implicit.nearest_neighbours  # noqa: F401
            self._executor = self._stack.enter_context(ThreadPoolExecutor(self.workers))
        return self

    def __exit__(self, *exc) -> None:
        self._stack.__exit__(*exc)
        self._executor = None

    def submit(self, fn, /, *args, **kwargs) -> Future:
        if self._executor is not None:
            return self._executor.submit(fn, *args, **kwargs)
        future = Future()
        future.set_result(fn(*args, **kwargs))
        return future


def available_cores() -> int:
    """The cores this process may run on (what implicit's ``num_threads=0`` uses)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def sweep(split: Split, spec: RecommendParams, *, metric: str = "ndcg", spark=None,
          pool: FitPool | None = None) -> pd.DataFrame:
    """Fit ALS for every factors × regularization × alpha of ``spec.sweep`` on ``split`` (the validation split).

    Returns one row per setting with ``metric@headline_k`` and its bootstrap
    interval over users, the fit time, sorted best first. With ``spark`` (a
    SparkSession) every setting is fitted by Spark MLlib (:func:`als_model`).
    The settings are fitted side by side in ``pool`` (default: a :class:`FitPool` of ``spec``);
    the table is the same as one after the other. ``fit_seconds`` is each fit's own wall time.
    """
    if pool is None:
        with FitPool(spec, spark) as own:
            return sweep(split, spec, metric=metric, spark=spark, pool=own)
    k = spec.headline_k

    def score(setting) -> dict:
        factors, regularization, alpha = setting
        settings = spec.als.model_copy(update={"factors": factors, "regularization": regularization, "alpha": alpha})
        model = als_model(settings, spec, spark, threads=pool.threads_per_fit)
        result = evaluate({"ALS": model}, split, [k], exclude_seen=spec.exclude_seen,
                          max_users=spec.max_eval_users, seed=spec.seed)
        values = result.per_user["ALS"][f"{metric}@{k}"].to_numpy()
        low, high = metrics.bootstrap_interval(values, n_boot=spec.bootstrap, seed=spec.seed)
        return {"factors": factors, "regularization": regularization, "alpha": alpha,
                f"{metric}@{k}": float(values.mean()), "low": low, "high": high, "fit_seconds": model.fit_seconds_}

    grid = list(itertools.product(spec.sweep.factors, spec.sweep.regularization, spec.sweep.alpha))
    # the most factors first (the longest fits), so that no long fit starts last while the other threads idle
    started = {i: pool.submit(score, grid[i]) for i in sorted(range(len(grid)), key=lambda i: -grid[i][0])}
    rows = [started[i].result() for i in range(len(grid))]
    return pd.DataFrame(rows).sort_values(f"{metric}@{k}", ascending=False, ignore_index=True)


def chosen_settings(sweep_table: pd.DataFrame, spec: RecommendParams):
    """``spec.als`` with factors, regularization and alpha of the sweep's best row."""
    best = sweep_table.iloc[0]
    return spec.als.model_copy(update={"factors": int(best["factors"]), "regularization": float(best["regularization"]),
                                       "alpha": float(best["alpha"])})
