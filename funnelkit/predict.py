"""Predicting conversion: scikit-learn models against honest baselines, cross-validated.

:func:`compare_models` fits, on the same stratified folds,

* ``majority class``: always the base rate (ROC-AUC 0.5: the floor);
* ``one feature``: a logistic regression on a single strong feature;
* ``logistic``: regularised logistic regression on every feature, with and
  without ``class_weight="balanced"`` (the imbalance treatment compared);
* ``linear SVM (calibrated)``: a linear SVM whose scores are turned into
  probabilities by cross-validated Platt scaling;
* ``gradient boosting``: scikit-learn's histogram gradient boosting, slow
  learning (rate 0.05) with small trees (15 leaves), the number of trees
  chosen by early stopping on a tenth of the training fold (above 10,000
  rows; otherwise 100 trees).

Hyperparameters are chosen by grid search *inside* each training fold
(nested cross-validation), and with ``groups`` (the user of each session)
a user's sessions stay in one fold, so the held-out scores are honest. For
each model the result holds ROC-AUC, PR-AUC (average precision) and the
Brier score per fold with a 95% interval over folds, and the out-of-fold
probabilities for ROC, precision-recall and calibration curves. Fold scores
are correlated (their training sets overlap), so intervals use the
Nadeau–Bengio corrected variance ``(1/k + n_test/n_train) · s²`` with a
t quantile on k − 1 degrees of freedom; comparisons between two models use
their paired per-fold differences.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.calibration import CalibratedClassifierCV, calibration_curve
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, precision_recall_curve, roc_auc_score, roc_curve
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import type_of_target
from threadpoolctl import threadpool_limits

from .errors import DataError

METRICS = {"roc_auc": roc_auc_score, "pr_auc": average_precision_score, "brier": brier_score_loss}


class FastStratifiedGroupKFold(StratifiedGroupKFold):
    """scikit-learn's ``StratifiedGroupKFold``: the same folds, bit for bit, in a tenth of the time on 0/1 labels.

    scikit-learn deals the groups to folds greedily (largest class imbalance first): each group goes to
    the fold that keeps the per-class shares most even, the mean over classes of the standard deviation
    over folds of (class rows in the fold / class rows). It prices every candidate fold with NumPy calls
    on a (folds × classes) array, about 60 µs per group: 1 s per split of 16,000 users, paid by every
    grid search of every outer fold of :func:`compare_models`. Here the same arithmetic runs on Python
    floats in the same order (NumPy sums a short axis one element after the other, which Python repeats
    exactly), and the spread of a class the group has no rows of is computed once per group, not once
    per candidate fold. Labels that are not binary go to scikit-learn's implementation.
    ``tests/test_predict.py`` holds the two to identical folds on random labels and groups.
    """

    def _iter_test_indices(self, X, y, groups):
        y = np.asarray(y)
        if type_of_target(y) != "binary" or len(np.unique(y)) != 2:
            yield from super()._iter_test_indices(X, y, groups)
            return
        rng = check_random_state(self.random_state)
        _, y_inv, y_cnt = np.unique(y, return_inverse=True, return_counts=True)
        if self.n_splits > y_cnt.min():
            # scikit-learn raises when every class is too small and warns when one is: let it say so
            yield from super()._iter_test_indices(X, y, groups)
            return
        _, groups_inv, groups_cnt = np.unique(groups, return_inverse=True, return_counts=True)
        n_groups, k = len(groups_cnt), self.n_splits
        if k > n_groups:
            raise ValueError(f"Cannot have number of splits n_splits={k} greater than the number of groups: {n_groups}.")
        per_group = np.zeros((n_groups, 2))
        np.add.at(per_group, (groups_inv, y_inv), 1)
        if self.shuffle:
            perm = np.arange(n_groups)
            rng.shuffle(perm)
            per_group = per_group[perm]
            inverse = np.empty_like(perm)
            inverse[perm] = np.arange(perm.size)
            groups_inv = inverse[groups_inv]
        order = np.argsort(-np.std(per_group, axis=1), kind="stable")

        totals = [float(c) for c in y_cnt]
        counts = [[0.0] * k, [0.0] * k]   # counts[class][fold]
        shares = [[0.0] * k, [0.0] * k]   # counts / totals, as NumPy divides them
        fold_of = np.empty(n_groups, dtype=np.intp)
        for group, (g0, g1) in zip(order.tolist(), per_group[order].tolist()):
            added = (g0, g1)
            fixed = [None if added[c] else _spread(shares[c], k) for c in (0, 1)]
            best, min_eval, min_samples = -1, math.inf, math.inf
            for i in range(k):
                spread = [fixed[c] if fixed[c] is not None
                          else _spread(shares[c], k, i, (counts[c][i] + added[c]) / totals[c]) for c in (0, 1)]
                fold_eval = (spread[0] + spread[1]) / 2
                samples = counts[0][i] + counts[1][i]
                if fold_eval < min_eval or (_isclose(fold_eval, min_eval) and samples < min_samples):
                    best, min_eval, min_samples = i, fold_eval, samples
            for c in (0, 1):
                counts[c][best] += added[c]
                shares[c][best] = counts[c][best] / totals[c]
            fold_of[group] = best
        row_fold = fold_of[groups_inv]
        for i in range(k):
            yield np.flatnonzero(row_fold == i)


def _spread(values: list[float], k: int, at: int = -1, value: float = 0.0) -> float:
    """``np.std(values)`` (population) with ``values[at]`` replaced by ``value``, summed in NumPy's order."""
    first = value if at == 0 else values[0]
    total = first
    for j in range(1, k):
        total += value if j == at else values[j]
    mean = total / k
    deviation = first - mean
    squares = deviation * deviation
    for j in range(1, k):
        deviation = (value if j == at else values[j]) - mean
        squares += deviation * deviation
    return math.sqrt(squares / k)


def _isclose(a: float, b: float) -> bool:
    """``np.isclose(a, b)`` for two floats (rtol 1e-5, atol 1e-8; never close to an infinite ``b`` unless equal)."""
    return (abs(a - b) <= 1e-8 + 1e-5 * abs(b) and math.isfinite(b)) or a == b


def candidate_models(strong_feature_index: int, seed: int = 0, grouped: bool = False) -> dict[str, object]:
    """The models :func:`compare_models` fits, by name (estimators or grid searches)."""
    inner = (FastStratifiedGroupKFold if grouped else StratifiedKFold)(3, shuffle=True, random_state=seed)

    def tuned(estimator, grid):
        return GridSearchCV(estimator, grid, scoring="roc_auc", cv=inner)

    logistic = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    c_grid = {"logisticregression__C": [0.01, 0.1, 1.0, 10.0]}
    return {
        "majority class": DummyClassifier(strategy="prior"),
        "one feature": make_pipeline(ColumnTransformer([("one", "passthrough", [strong_feature_index])]),
                                     StandardScaler(), LogisticRegression()),
        "logistic": tuned(logistic, c_grid),
        "logistic, class-weighted": tuned(clone(logistic).set_params(logisticregression__class_weight="balanced"),
                                          c_grid),
        "linear SVM (calibrated)": tuned(
            CalibratedClassifierCV(make_pipeline(StandardScaler(), LinearSVC(dual="auto", max_iter=5000)), cv=3),
            {"estimator__linearsvc__C": [0.01, 0.1, 1.0]}),
        # No grid: the former one (rate 0.05 or 0.2, 15 or 31 leaves) chose its smallest model in every
        # fold of the default and CI shops, and cost 12 of the fold's 13 boosting fits; the same model is
        # now fitted once (identical scores there), its number of trees still set inside the fold.
        "gradient boosting": HistGradientBoostingClassifier(learning_rate=0.05, max_leaf_nodes=15, random_state=seed),
    }


@dataclass
class ModelComparison:
    """Cross-validated scores of every model.

    Attributes
    ----------
    folds : DataFrame
        One row per (model, fold): ``roc_auc``, ``pr_auc``, ``brier``, ``best_params``.
    probabilities : dict of str to ndarray
        Out-of-fold predicted probability of the positive class, per model.
    y : ndarray
        The labels, aligned with ``probabilities``.
    """

    folds: pd.DataFrame
    probabilities: dict[str, np.ndarray]
    y: np.ndarray
    features: list[str] = field(default_factory=list)
    test_share: float = 0.2

    def _interval(self, values: np.ndarray, alpha: float) -> tuple[float, float, float]:
        """Mean and Nadeau–Bengio corrected t-interval of per-fold values."""
        k = len(values)
        variance = (1 / k + self.test_share / (1 - self.test_share)) * values.var(ddof=1)
        half = stats.t.ppf(1 - alpha / 2, k - 1) * np.sqrt(variance)
        return values.mean(), values.mean() - half, values.mean() + half

    def table(self, alpha: float = 0.05) -> pd.DataFrame:
        """Mean of each metric over folds with its ``1 - alpha`` interval, one row per model (in fit order)."""
        rows = []
        for model, part in self.folds.groupby("model", sort=False):
            row = {"model": model, "folds": len(part)}
            for metric in METRICS:
                mean, low, high = self._interval(part[metric].to_numpy(), alpha)
                row |= {metric: mean, f"{metric}_low": low, f"{metric}_high": high}
            rows.append(row)
        return pd.DataFrame(rows)

    def difference(self, model: str, baseline: str, metric: str = "roc_auc", alpha: float = 0.05) -> dict:
        """``model`` minus ``baseline`` on ``metric``, paired by fold, with its corrected interval."""
        scores = self.folds.pivot(index="fold", columns="model", values=metric)
        mean, low, high = self._interval((scores[model] - scores[baseline]).to_numpy(), alpha)
        return {"difference": mean, "low": low, "high": high}

    def best(self, metric: str = "roc_auc") -> str:
        """The model with the highest mean ``metric`` (lowest for the Brier score)."""
        table = self.table().set_index("model")[metric]
        return table.idxmin() if metric == "brier" else table.idxmax()

    def roc(self, model: str) -> pd.DataFrame:
        """ROC curve of the out-of-fold probabilities: ``false_positive_rate``, ``true_positive_rate``."""
        fpr, tpr, _ = roc_curve(self.y, self.probabilities[model])
        return pd.DataFrame({"false_positive_rate": fpr, "true_positive_rate": tpr})

    def precision_recall(self, model: str) -> pd.DataFrame:
        """Precision-recall curve of the out-of-fold probabilities: ``recall``, ``precision``."""
        precision, recall, _ = precision_recall_curve(self.y, self.probabilities[model])
        return pd.DataFrame({"recall": recall, "precision": precision})

    def calibration(self, model: str, bins: int = 10) -> pd.DataFrame:
        """Observed rate against mean predicted probability in quantile bins of the out-of-fold predictions."""
        observed, predicted = calibration_curve(self.y, self.probabilities[model], n_bins=bins, strategy="quantile")
        return pd.DataFrame({"predicted": predicted, "observed": observed})


def compare_models(X: pd.DataFrame, y, *, strong_feature: str, groups=None, folds: int = 5, seed: int = 0,
                   max_rows: int | None = 50_000) -> ModelComparison:
    """Fit :func:`candidate_models` on the same stratified folds and score them out of fold.

    Parameters
    ----------
    X : DataFrame
        Numeric features (NaN-free); one row per unit.
    y : array-like of 0/1
        The label (e.g. "purchased").
    strong_feature : str
        The column of the one-feature baseline.
    groups : array-like, optional
        A group per row (the user): rows of one group never straddle a
        training and a test fold.
    folds : int
        Outer stratified folds.
    seed : int
        Seeds the folds, the row sample and the models.
    max_rows : int or None
        A stratified random sample of at most this many rows is used (grid
        searches are costly; the intervals say how precise the scores are).

    Raises
    ------
    DataError
        When the label has one class only, a class has fewer rows than
        ``folds``, X has missing values, or ``strong_feature`` is not a column.
    """
    y = np.asarray(y).astype(int)
    if strong_feature not in X.columns:
        raise DataError(f"strong_feature {strong_feature!r} is not a feature; features: {list(X.columns)}")
    if X.isna().any().any():
        bad = X.columns[X.isna().any()].tolist()
        raise DataError(f"features have missing values in {bad}: fill or drop them before modelling")
    counts = np.bincount(y, minlength=2)
    if counts.min() < folds:
        raise DataError(f"the label needs at least {folds} rows of each class for {folds}-fold cross-validation; "
                        f"got {counts[0]} negatives and {counts[1]} positives")
    rng = np.random.default_rng(seed)
    if max_rows is not None and len(y) > max_rows:
        keep = np.sort(np.concatenate([
            rng.choice(np.flatnonzero(y == c), size=int(round(max_rows * counts[c] / len(y))), replace=False)
            for c in (0, 1)]))
        X, y = X.iloc[keep], y[keep]
        groups = None if groups is None else np.asarray(groups)[keep]
    values = X.to_numpy(dtype=float)
    models = candidate_models(list(X.columns).index(strong_feature), seed, grouped=groups is not None)
    splitter = (StratifiedKFold(folds, shuffle=True, random_state=seed) if groups is None
                else FastStratifiedGroupKFold(folds, shuffle=True, random_state=seed))
    probabilities = {name: np.full(len(y), np.nan) for name in models}
    rows = []
    for fold, (train, test) in enumerate(splitter.split(values, y, groups)):
        # every grid search of the fold tunes on the same inner folds: split once (grouped splits are costly)
        inner = None
        for name, model in models.items():
            model = clone(model)
            if isinstance(model, GridSearchCV):
                if inner is None:
                    inner = list(model.cv.split(values[train], y[train], None if groups is None else groups[train]))
                model.set_params(cv=inner)
            # One thread (OpenMP and BLAS), predictions included: the many small grid-search fits gain nothing
            # from more, and OpenMP threads that spin for a busy core made notebook 02 20x slower on a loaded
            # machine (12k events: 19 s with one thread, over 400 s with two beside two busy processes).
            with threadpool_limits(limits=1):
                fitted = model.fit(values[train], y[train])
                p = fitted.predict_proba(values[test])[:, 1]
            probabilities[name][test] = p
            rows.append({"model": name, "fold": fold, **{m: f(y[test], p) for m, f in METRICS.items()},
                         "best_params": getattr(fitted, "best_params_", None)})
    return ModelComparison(pd.DataFrame(rows), probabilities, y, list(X.columns), test_share=1 / folds)
