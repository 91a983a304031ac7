"""Next-event and purchase prediction from the journey so far, evaluated on a temporal split.

The journeys that began before the cut-off train the models; those that began after it test them. A model sees
only the current journey's prefix (no user features), so a shopper's earlier sessions in the training period
are history, not leakage, and no journey is split across the cut-off.

Figures (on the test journeys, positions below ``max_length``):

next event
    For every prefix ``s_0 … s_t`` with a next state: the log-loss ``-ln p(s_{t+1})`` (nats), and whether
    the next state is the model's most likely (top-1) or among its three most likely (top-3).
purchase after k pages
    For the journeys still going after ``k`` pages (not yet bought or left): whether they end in a purchase,
    scored by the model's chance; ROC-AUC and PR-AUC (average precision).

Intervals: a Poisson bootstrap over test users (every figure of a replicate from the same weights), and each
model's difference from the best Markov chain (the lower log-loss, or the higher ROC-AUC at that ``k``) paired
in every replicate.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .models import Examples, GradientBoostingModel, MarkovModel, examples
from .paths import Sequences

MARKOV = ("Markov, first order", "Markov, second order")


# --------------------------------------------------------------------------- weighted ranking metrics

def _groups(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray):
    """Positive and negative weight per distinct score, scores ascending: (B, G) arrays."""
    order = np.argsort(scores, kind="stable")
    s = scores[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    w = np.atleast_2d(weights)[:, order]
    y = labels[order].astype(bool)
    positive = np.add.reduceat(np.where(y, w, 0.0), starts, axis=1)
    negative = np.add.reduceat(np.where(y, 0.0, w), starts, axis=1)
    return positive, negative


def _auc(positive: np.ndarray, negative: np.ndarray) -> np.ndarray:
    below = np.cumsum(negative, axis=1) - negative
    with np.errstate(invalid="ignore", divide="ignore"):
        return (positive * (below + 0.5 * negative)).sum(axis=1) / (positive.sum(axis=1) * negative.sum(axis=1))


def _average_precision(positive: np.ndarray, negative: np.ndarray) -> np.ndarray:
    positive, negative = positive[:, ::-1], negative[:, ::-1]  # thresholds from the highest score down
    caught = np.cumsum(positive, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = caught / (caught + np.cumsum(negative, axis=1))
        return (positive * np.nan_to_num(precision)).sum(axis=1) / positive.sum(axis=1)


def weighted_roc_auc(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ROC-AUC with example weights, for each row of ``weights`` (ties count one half); NaN without both
    classes."""
    return _auc(*_groups(scores, labels, weights))


def weighted_average_precision(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Average precision (scikit-learn's definition: Σ over thresholds of recall gained × precision) with
    example weights, for each row of ``weights``; NaN without positives."""
    return _average_precision(*_groups(scores, labels, weights))


def _ranking(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> dict:
    """ROC-AUC and average precision, unweighted (the estimate) and for each row of ``weights``, from one sort."""
    positive, negative = _groups(scores, labels, np.vstack([np.ones(len(scores)), weights]))
    auc, ap = _auc(positive, negative), _average_precision(positive, negative)
    return {"roc_auc": (auc[0], auc[1:]), "pr_auc": (ap[0], ap[1:])}


# --------------------------------------------------------------------------- the evaluation

@dataclass
class PredictionResults:
    """The model comparison of :func:`compare`.

    Attributes
    ----------
    next_event : DataFrame
        One row per model: ``log_loss``, ``top1``, ``top3`` with ``_low``/``_high``, and ``log_loss_diff``,
        ``top1_diff``, ``top3_diff`` (model − best Markov chain) with intervals (zero for the baseline).
    purchase : DataFrame
        One row per (model, ``k``): ``journeys`` and ``bought`` (of those still going after k pages),
        ``roc_auc``, ``pr_auc`` with intervals, ``roc_auc_diff``, ``pr_auc_diff`` against the best Markov chain
        at that k.
    baseline : str
        The best Markov chain on next-event log-loss.
    cutoff : Timestamp
    train_journeys, test_journeys, test_users : int
    positions_cut : int
        Test prefixes at or beyond ``max_length`` (not evaluated by any model).
    fit_seconds : dict
        Model name → seconds to fit.
    notes : list of str
        Models not fitted and why, samples used.
    """

    next_event: pd.DataFrame
    purchase: pd.DataFrame
    baseline: str
    cutoff: pd.Timestamp
    train_journeys: int
    test_journeys: int
    test_users: int
    positions_cut: int
    max_length: int
    fit_seconds: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)


def _user_weights(users: np.ndarray, replicates: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(index of each example's user, Poisson(1) weights: replicates × users)."""
    unique, index = np.unique(users, return_inverse=True)
    rng = np.random.default_rng(seed)
    # float32: replicates × test users (at most journeys.max_sessions) weights stay a few hundred MB at most
    return index, rng.poisson(1.0, size=(replicates, len(unique))).astype(np.float32)


def percentile_interval(draws: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """95% percentile interval of bootstrap draws along ``axis``; NaN draws (a state absent from a replicate, a
    replicate without both classes) are left out, and an all-NaN slice gives a NaN interval."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the all-NaN slice's warning
        return np.nanpercentile(draws, 2.5, axis=axis), np.nanpercentile(draws, 97.5, axis=axis)


def _interval(draws: np.ndarray) -> tuple[float, float]:
    low, high = percentile_interval(draws)
    return float(low), float(high)


def _weighted_means(values: np.ndarray, index: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Mean of ``values`` (examples) in each replicate: sums per user, then weighted by the user weights."""
    users = weights.shape[1]
    sums = np.bincount(index, weights=values, minlength=users)
    counts = np.bincount(index, minlength=users).astype(float)
    return (weights @ sums) / (weights @ counts)


def split(seqs: Sequences, test_share: float) -> tuple[np.ndarray, np.ndarray, pd.Timestamp]:
    """Journeys before and after the cut-off: the last ``test_share`` of the span of journey starts."""
    first, last = int(seqs.start_us.min()), int(seqs.start_us.max())
    cutoff = first + int((1 - test_share) * (last - first))
    train = np.flatnonzero(seqs.start_us < cutoff)
    test = np.flatnonzero(seqs.start_us >= cutoff)
    return train, test, pd.Timestamp(cutoff, unit="us", tz="UTC")


def compare(seqs: Sequences, *, test_share: float = 0.25, after: tuple = (1, 3, 5), max_length: int = 50,
            replicates: int = 500, seed: int = 0, lstm: bool = True, lstm_journeys: int = 30_000,
            gbm_examples: int = 50_000) -> PredictionResults | None:
    """Fit the four models on the journeys before the cut-off and compare them after it (module docstring).

    Returns None when either side of the cut-off has fewer than 50 journeys.
    """
    train_idx, test_idx, cutoff = split(seqs, test_share)
    if len(train_idx) < 50 or len(test_idx) < 50:
        return None
    train, test = seqs.subset(train_idx), seqs.subset(test_idx)
    ex = examples(test, max_length)
    notes, fit_seconds = [], {}
    models: dict = {}
    train_examples = examples(train)
    for model in (MarkovModel(1), MarkovModel(2), GradientBoostingModel(gbm_examples, seed)):
        began = time.perf_counter()
        models[model.name] = model.fit(train, train_examples)
        fit_seconds[model.name] = time.perf_counter() - began
    predictions = {name: (m.next_proba(ex), m.purchase_proba(ex)) for name, m in models.items()}
    if lstm:
        from . import lstm as lstm_module

        why = lstm_module.available()
        if why is None:
            model = lstm_module.LSTMModel(max_length=max_length, max_journeys=lstm_journeys, seed=seed)
            began = time.perf_counter()
            model.fit(train)
            fit_seconds[model.name] = time.perf_counter() - began
            predictions[model.name] = model.predict(ex, test)
            sample = (f" (a random {model.trained_on_:,} of the {model.sampled_from_:,} training journeys)"
                      if model.sampled_from_ else "")
            notes.append(f"The LSTM trained on {model.trained_on_:,} journeys{sample}, {model.epochs_run_} epochs "
                         f"(the best, {model.best_epoch_}, kept by early stopping on the latest tenth).")
        else:
            notes.append(f"No LSTM: {why}.")
    index, weights = _user_weights(ex.user, replicates, seed)
    next_table, baseline = _next_event_table(predictions, ex, index, weights)
    purchase_table = _purchase_table(predictions, ex, index, weights, after)
    cut = int(np.maximum(np.diff(test.offsets) - 1 - max_length, 0).sum())  # prefixes from max_length on
    return PredictionResults(next_table, purchase_table, baseline, cutoff, len(train_idx), len(test_idx),
                             int(len(np.unique(ex.user))), cut, max_length, fit_seconds, notes)


def _next_event_table(predictions: dict, ex: Examples, index, weights) -> tuple[pd.DataFrame, str]:
    per_example = {}
    for name, (proba, _) in predictions.items():
        p_target = proba[np.arange(len(ex)), ex.target]
        rank = (proba > p_target[:, None]).sum(axis=1)  # states strictly more likely than the right one
        per_example[name] = {"log_loss": -np.log(p_target), "top1": (rank < 1).astype(float),
                             "top3": (rank < 3).astype(float)}
    baseline = min(MARKOV, key=lambda name: per_example[name]["log_loss"].mean())
    rows = []
    for name, values in per_example.items():
        row = {"model": name}
        for metric, v in values.items():
            row[metric] = float(v.mean())
            row[f"{metric}_low"], row[f"{metric}_high"] = _interval(_weighted_means(v, index, weights))
            diff = v - per_example[baseline][metric]
            row[f"{metric}_diff"] = float(diff.mean())
            row[f"{metric}_diff_low"], row[f"{metric}_diff_high"] = (
                (0.0, 0.0) if name == baseline else _interval(_weighted_means(diff, index, weights)))
        rows.append(row)
    return pd.DataFrame(rows), baseline


def _purchase_table(predictions: dict, ex: Examples, index, weights, after) -> pd.DataFrame:
    rows = []
    for k in after:
        at = ex.position == k
        if at.sum() < 20 or ex.bought[at].all() or not ex.bought[at].any():
            continue
        labels, w = ex.bought[at], weights[:, index[at]]
        scores = {name: buy[at] for name, (_, buy) in predictions.items()}
        figures = {name: _ranking(s, labels, w) for name, s in scores.items()}
        best = max(MARKOV, key=lambda name: figures[name]["roc_auc"][0])
        for name, metrics in figures.items():
            row = {"model": name, "k": k, "journeys": int(at.sum()), "bought": int(labels.sum())}
            for metric, (value, draws) in metrics.items():
                row[metric] = float(value)
                row[f"{metric}_low"], row[f"{metric}_high"] = _interval(draws)
                row[f"{metric}_diff"] = float(value - figures[best][metric][0])
                row[f"{metric}_diff_low"], row[f"{metric}_diff_high"] = (
                    (0.0, 0.0) if name == best else _interval(draws - figures[best][metric][1]))
            row["baseline"] = best
            rows.append(row)
    return pd.DataFrame(rows)
