"""scikit-learn estimators around :func:`ols` and :func:`logit`.

:class:`LeastSquares` and :class:`LogisticIRLS`, plus the binary-classifier
plumbing (``_binary_classes``, ``_BinaryTags``) they share with
:class:`~funnelkit.regression.svm.LinearSVM`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .least_squares import ols
from .logistic import logit

__all__ = ["LeastSquares", "LogisticIRLS"]

def _design_with_intercept(X: np.ndarray, names, fit_intercept: bool):
    """The design an estimator passes to its solver: a leading ``const`` column when fitting an
    intercept; columns named after the DataFrame's, else ``x1, x2, ...``."""
    names = list(names) if names is not None else [f"x{j + 1}" for j in range(X.shape[1])]
    if fit_intercept:
        return np.hstack([np.ones((X.shape[0], 1)), X]), ["const", *names]
    return X, names


def _binary_classes(y) -> tuple[np.ndarray, np.ndarray]:
    check_classification_targets(y)
    classes, yi = np.unique(y, return_inverse=True)
    if classes.size != 2:
        raise ValueError(
            "Only binary classification is supported: y must have exactly 2 classes, "
            f"got {classes.size} class(es)"
        )
    return classes, yi.astype(np.float64)


class _BinaryTags:
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags


# --------------------------------------------------------------------------
# scikit-learn estimators around ols / logit
# --------------------------------------------------------------------------
class LeastSquares(RegressorMixin, BaseEstimator):
    """Linear least squares as a scikit-learn regressor (wraps :func:`ols`).

    Parameters
    ----------
    method : {"qr", "normal"}, default "qr"
        See :func:`ols`.
    fit_intercept : bool, default True
        Prepend a constant column to X (X itself must not contain one).
    cov_type : {"nonrobust", "HC3"}, default "nonrobust"
        Covariance of the stored ``results_``.

    Attributes
    ----------
    coef_ : numpy.ndarray of shape (n_features,)
    intercept_ : float
    results_ : OLSResults
        Full inference (names ``const``, ``x1``, ... or the DataFrame columns).
    n_features_in_ : int
    """

    def __init__(self, method="qr", *, fit_intercept=True, cov_type="nonrobust"):
        self.method = method
        self.fit_intercept = fit_intercept
        self.cov_type = cov_type

    def fit(self, X, y, sample_weight=None):
        """Fit by :func:`ols` (``sample_weight`` are WLS weights); returns ``self``."""
        names = [str(c) for c in X.columns] if isinstance(X, pd.DataFrame) else None
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True)
        design, names = _design_with_intercept(X, names, self.fit_intercept)
        self.results_ = ols(
            design, y, method=self.method, weights=sample_weight, cov_type=self.cov_type, names=names
        )
        b = self.results_.params.to_numpy()
        self.coef_ = b[1:] if self.fit_intercept else b
        self.intercept_ = float(b[0]) if self.fit_intercept else 0.0
        return self

    def predict(self, X) -> np.ndarray:
        """Predictions ``X @ coef_ + intercept_``."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return X @ self.coef_ + self.intercept_


class LogisticIRLS(_BinaryTags, ClassifierMixin, BaseEstimator):
    r"""Binary logistic regression as a scikit-learn classifier (wraps :func:`logit`).

    Parameters
    ----------
    l2 : float, default 0.0
        Penalty :math:`\lambda` on the coefficients, intercept excluded
        (scikit-learn's ``LogisticRegression(C=1/l2)``).
    fit_intercept : bool, default True
        Prepend a constant column (X must not contain one).
    max_iter : int, default 100
    tol : float, default 1e-10
        See :func:`logit`.
    on_separation : {"raise", "warn", "ignore"}, default "raise"
        See :func:`logit`.

    Attributes
    ----------
    classes_ : numpy.ndarray of shape (2,)
        ``classes_[1]`` is the event (y = 1).
    coef_ : numpy.ndarray of shape (1, n_features)
    intercept_ : numpy.ndarray of shape (1,)
    results_ : LogitResults
    n_iter_ : int
    n_features_in_ : int
    """

    def __init__(self, l2=0.0, *, fit_intercept=True, max_iter=100, tol=1e-10, on_separation="raise"):
        self.l2 = l2
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.on_separation = on_separation

    def fit(self, X, y):
        """Fit by :func:`logit`; returns ``self``."""
        names = [str(c) for c in X.columns] if isinstance(X, pd.DataFrame) else None
        X, y = validate_data(self, X, y, dtype=np.float64)
        self.classes_, yi = _binary_classes(y)
        design, names = _design_with_intercept(X, names, self.fit_intercept)
        self.results_ = logit(
            design, yi, l2=self.l2, names=names, max_iter=self.max_iter, tol=self.tol,
            on_separation=self.on_separation,
        )
        b = self.results_.params.to_numpy()
        self.coef_ = (b[1:] if self.fit_intercept else b)[None, :]
        self.intercept_ = np.array([b[0] if self.fit_intercept else 0.0])
        self.n_iter_ = self.results_.n_iter
        return self

    def decision_function(self, X) -> np.ndarray:
        """Log-odds :math:`x'\\beta` of ``classes_[1]``."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return X @ self.coef_[0] + self.intercept_[0]

    def predict_proba(self, X) -> np.ndarray:
        """Probabilities, columns ordered as ``classes_``."""
        p1 = special.expit(self.decision_function(X))
        return np.column_stack([1.0 - p1, p1])

    def predict(self, X) -> np.ndarray:
        """The class with probability > 1/2 (``classes_[1]`` on ties excluded)."""
        positive = self.decision_function(X) > 0
        return self.classes_[positive.astype(int)]
