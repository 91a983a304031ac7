"""The linear soft-margin SVM, solved in the dual by coordinate descent: :class:`LinearSVM`."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from ._base import _EPS
from .estimators import _binary_classes, _BinaryTags

__all__ = ["LinearSVM"]

# --------------------------------------------------------------------------
# Linear SVM by dual coordinate descent
# --------------------------------------------------------------------------
def _svm_dual_cd(Xa: np.ndarray, s: np.ndarray, C: float, tol: float, max_iter: int, rng):
    """Dual coordinate descent for the L1-loss (hinge) linear SVM.

    See :class:`LinearSVM`, Notes.  ``Xa`` already holds the bias column.
    """
    n, _ = Xa.shape
    qdiag = np.einsum("ij,ij->i", Xa, Xa)
    alpha = np.zeros(n)
    w = np.zeros(Xa.shape[1])
    rows = list(Xa)  # row views, cheaper to index in the loop
    s_list = s.tolist()
    q_list = qdiag.tolist()
    primal = dual = gap = np.nan
    converged = False
    epoch = 0
    for epoch in range(1, max_iter + 1):
        a = alpha.tolist()
        for i in rng.permutation(n).tolist():
            xi = rows[i]
            si = s_list[i]
            G = si * float(w @ xi) - 1.0
            ai = a[i]
            if ai == 0.0:
                pg = min(G, 0.0)
            elif ai == C:
                pg = max(G, 0.0)
            else:
                pg = G
            if pg == 0.0:
                continue
            qi = q_list[i]
            new = C if qi == 0.0 else min(max(ai - G / qi, 0.0), C)
            if new != ai:
                w += ((new - ai) * si) * xi
                a[i] = new
        alpha = np.asarray(a)
        # recompute w from alpha to stop drift, then the duality gap
        w = Xa.T @ (alpha * s)
        margins = s * (Xa @ w)
        ww = float(w @ w)
        primal = 0.5 * ww + C * float(np.sum(np.maximum(0.0, 1.0 - margins)))
        dual = float(np.sum(alpha)) - 0.5 * ww
        gap = primal - dual
        if gap <= tol * max(abs(primal), _EPS):
            converged = True
            break
    return alpha, w, primal, dual, gap, epoch, converged


class LinearSVM(_BinaryTags, ClassifierMixin, BaseEstimator):
    r"""Linear soft-margin SVM (hinge loss + L2), dual coordinate descent.

    Parameters
    ----------
    C : float, default 1.0
        Weight of the hinge loss (inverse regularisation), C > 0.
    fit_intercept : bool, default True
        Append a constant feature of value ``intercept_scaling`` (the bias).
    intercept_scaling : float, default 1.0
        Value B of the constant feature; ``intercept_ = B * w_bias``.
    tol : float, default 1e-6
        Stop when the relative duality gap :math:`(P(w)-D(\alpha))/P(w)`
        falls below ``tol`` (checked after every epoch).
    max_iter : int, default 1000
        Maximum epochs (passes over all observations).
    random_state : int, numpy Generator or None, default None
        Seed of the random permutation of coordinates in each epoch.

    Attributes
    ----------
    classes_ : numpy.ndarray of shape (2,)
        ``classes_[1]`` is the positive class (:math:`s_i = +1`).
    coef_ : numpy.ndarray of shape (1, n_features)
    intercept_ : numpy.ndarray of shape (1,)
    alpha_ : numpy.ndarray of shape (n_samples,)
        Dual variables :math:`0 \le \alpha_i \le C`.
    support_ : numpy.ndarray of int
        Indices with :math:`\alpha_i > 0` (the support vectors).
    support_vectors_ : numpy.ndarray
        ``X[support_]``.
    dual_coef_ : numpy.ndarray of shape (1, n_SV)
        :math:`\alpha_i s_i` for the support vectors (as in scikit-learn's SVC).
    primal_objective_, dual_objective_, duality_gap_ : float
        :math:`P(w)`, :math:`D(\alpha)` and :math:`P - D \ge 0` at the end.
    n_iter_ : int
        Epochs run.
    converged_ : bool
        Whether the gap criterion was met.
    n_features_in_ : int

    Notes
    -----
    Primal.  With :math:`s_i \in \{-1, +1\}` and the augmented
    :math:`\tilde x_i = (x_i, B)`, :math:`\tilde w = (w, b)`,

    .. math:: \min_{\tilde w} P(\tilde w) = \tfrac12\|\tilde w\|^2
              + C\sum_i \max(0,\, 1 - s_i\tilde w'\tilde x_i).

    The bias is a weight like any other, so **it is penalised** (as in
    LIBLINEAR and scikit-learn's ``LinearSVC``; a larger B weakens the
    penalty on the intercept :math:`Bb`).

    Dual.  Writing the hinge with slacks :math:`\xi_i \ge 0`,
    :math:`\xi_i \ge 1 - s_i\tilde w'\tilde x_i`, the Lagrangian is
    :math:`\tfrac12\|\tilde w\|^2 + C\sum\xi_i - \sum\alpha_i(s_i\tilde w'\tilde x_i - 1 + \xi_i) - \sum\mu_i\xi_i`
    with :math:`\alpha, \mu \ge 0`.  Stationarity gives
    :math:`\tilde w = \sum_i\alpha_i s_i\tilde x_i` and
    :math:`C - \alpha_i - \mu_i = 0`, i.e. :math:`0 \le \alpha_i \le C`, and

    .. math:: \max_{0\le\alpha\le C} D(\alpha) = \sum_i\alpha_i - \tfrac12\alpha'Q\alpha,
              \qquad Q_{ij} = s_is_j\tilde x_i'\tilde x_j,

    with no equality constraint (there is no separate unpenalised bias).
    Weak duality gives :math:`P(\tilde w(\alpha)) \ge D(\alpha)`, with
    equality at the optimum, so the gap bounds the suboptimality of both.

    Coordinate descent (Hsieh et al. 2008, Algorithm 1).  For coordinate i,
    the gradient of :math:`-D` is :math:`G_i = s_i\tilde w'\tilde x_i - 1`
    (kept cheap by maintaining :math:`\tilde w`); the exact minimiser along
    it, clipped to the box, is
    :math:`\alpha_i \leftarrow \min(\max(\alpha_i - G_i/Q_{ii}, 0), C)`,
    skipped when the projected gradient is 0.  Coordinates are visited in a
    random order each epoch; no shrinking.  The loop is pure Python: fine
    for thousands of rows, slow for millions.

    KKT at the optimum: :math:`s_i f(x_i) > 1 \Rightarrow \alpha_i = 0`,
    :math:`s_i f(x_i) < 1 \Rightarrow \alpha_i = C`.

    References
    ----------
    Hsieh, C.-J., Chang, K.-W., Lin, C.-J., Keerthi, S.S. & Sundararajan, S.
    (2008) A dual coordinate descent method for large-scale linear SVM.
    ICML, 408-415.
    Fan, R.-E. et al. (2008) LIBLINEAR: a library for large linear
    classification. JMLR 9, 1871-1874.
    """

    def __init__(self, C=1.0, *, fit_intercept=True, intercept_scaling=1.0, tol=1e-6, max_iter=1000, random_state=None):
        self.C = C
        self.fit_intercept = fit_intercept
        self.intercept_scaling = intercept_scaling
        self.tol = tol
        self.max_iter = max_iter
        self.random_state = random_state

    def fit(self, X, y):
        """Fit the SVM; returns ``self``."""
        X, y = validate_data(self, X, y, dtype=np.float64)
        if not (self.C > 0):
            raise ValueError(f"C must be > 0, got {self.C}")
        if not (self.tol > 0):
            raise ValueError(f"tol must be > 0, got {self.tol}")
        if int(self.max_iter) < 1:
            raise ValueError(f"max_iter must be >= 1, got {self.max_iter}")
        self.classes_, yi = _binary_classes(y)
        s = 2.0 * yi - 1.0
        B = float(self.intercept_scaling)
        Xa = np.hstack([X, np.full((X.shape[0], 1), B)]) if self.fit_intercept else X
        rng = np.random.default_rng(self.random_state)
        alpha, w, primal, dual, gap, epochs, converged = _svm_dual_cd(
            Xa, s, float(self.C), float(self.tol), int(self.max_iter), rng
        )
        if not converged:
            warnings.warn(
                f"LinearSVM: relative duality gap {gap / primal:.2e} > tol={self.tol} after {epochs} epochs",
                RuntimeWarning,
                stacklevel=2,
            )
        p = X.shape[1]
        self.coef_ = w[:p][None, :]
        self.intercept_ = np.array([w[p] * B if self.fit_intercept else 0.0])
        self.alpha_ = alpha
        self.support_ = np.flatnonzero(alpha > 0)
        self.support_vectors_ = X[self.support_]
        self.dual_coef_ = (alpha * s)[self.support_][None, :]
        self.primal_objective_ = primal
        self.dual_objective_ = dual
        self.duality_gap_ = gap
        self.n_iter_ = epochs
        self.converged_ = converged
        return self

    def decision_function(self, X) -> np.ndarray:
        """:math:`f(x) = w'x + b`; positive means ``classes_[1]``."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return X @ self.coef_[0] + self.intercept_[0]

    def predict(self, X) -> np.ndarray:
        """Class labels: ``classes_[1]`` where the decision function is > 0."""
        positive = self.decision_function(X) > 0
        return self.classes_[positive.astype(int)]
