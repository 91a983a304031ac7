"""Predicting conversion: scikit-learn models against honest baselines, cross-validated.

:func:`compare_models` fits, on the same stratified folds,

* ``majority class``: always the base rate (ROC-AUC 0.5: the floor);
* ``one feature``: a logistic regression on a single strong feature;
* ``logistic``: regularised logistic regression on every feature, with and
  without ``class_weight="balanced"`` (the imbalance treatment compared);
* ``linear SVM (calibrated)``: a linear SVM whose scores are turned into
  probabilities by cross-validated Platt scaling;
* ``gradient boosting``: scikit-learn's histogram gradient boosting.

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
from threadpoolctl import threadpool_limits
from sklearn.svm import LinearSVC

from .errors import DataError

METRICS = {"roc_auc": roc_auc_score, "pr_auc": average_precision_score, "brier": brier_score_loss}


def candidate_models(strong_feature_index: int, seed: int = 0, grouped: bool = False) -> dict[str, object]:
    """The models :func:`compare_models` fits, by name (estimators or grid searches)."""
    inner = (StratifiedGroupKFold if grouped else StratifiedKFold)(3, shuffle=True, random_state=seed)

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
        "gradient boosting": tuned(HistGradientBoostingClassifier(random_state=seed),
                                   {"learning_rate": [0.05, 0.2], "max_leaf_nodes": [15, 31]}),
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
                else StratifiedGroupKFold(folds, shuffle=True, random_state=seed))
    probabilities = {name: np.full(len(y), np.nan) for name in models}
    rows = []
    for fold, (train, test) in enumerate(splitter.split(values, y, groups)):
        for name, model in models.items():
            by_group = {"groups": groups[train]} if groups is not None and isinstance(model, GridSearchCV) else {}
            # One thread (OpenMP and BLAS): the many small grid-search fits gain nothing from more, and
            # OpenMP threads that spin for a busy core made notebook 02 20x slower on a loaded machine
            # (12k events: 19 s with one thread, over 400 s with two beside two busy processes).
            with threadpool_limits(limits=1):
                fitted = clone(model).fit(values[train], y[train], **by_group)
            p = fitted.predict_proba(values[test])[:, 1]
            probabilities[name][test] = p
            rows.append({"model": name, "fold": fold, **{m: f(y[test], p) for m, f in METRICS.items()},
                         "best_params": getattr(fitted, "best_params_", None)})
    return ModelComparison(pd.DataFrame(rows), probabilities, y, list(X.columns), test_share=1 / folds)
