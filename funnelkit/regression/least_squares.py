"""(Weighted) linear least squares: :func:`ols` and its :class:`OLSResults`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cached_property
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import linalg, stats

from ._base import (
    RankDeficientError,
    RegressionError,
    _CoefResults,
    _design,
    _singular_values,
    _target,
    _unit_columns,
)

__all__ = ["ols", "OLSResults"]


class _WeightedData(NamedTuple):
    """A validated least-squares problem: what :func:`ols` fits and :class:`OLSResults` keeps."""

    X: np.ndarray
    """The design as given, shape (n, p)."""
    y: np.ndarray
    """The response, shape (n,)."""
    weights: np.ndarray | None
    """The WLS weights, or None."""
    sqrt_w: np.ndarray
    """Square roots of the weights (ones when unweighted): the weighted problem is
    ``sqrt_w * X``, ``sqrt_w * y``."""
    names: list[str]
    """Column names."""
    const: int | None
    """Index of the constant column, or None."""


# --------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------
class OLSResults(_CoefResults):
    r"""Results of :func:`ols`.

    Attributes
    ----------
    params, bse, tvalues, pvalues : pandas.Series
        Coefficients :math:`\hat\beta`, standard errors, t statistics
        :math:`\hat\beta_j/\mathrm{se}_j` and two-sided p-values from Student's
        t with ``df_resid`` degrees of freedom (also for HC3, where statsmodels
        defaults to the normal; pass ``use_t=True`` there to compare).
    method : {"qr", "normal"}
    cov_type : {"nonrobust", "HC3"}
    nobs : int
        n.
    df_model : int
        p - k_constant.
    df_resid : int
        n - p.
    k_constant : int
        1 if the design has a constant column, else 0.
    resid : numpy.ndarray
        :math:`e = y - X\hat\beta` (unweighted).
    fittedvalues : numpy.ndarray
        :math:`X\hat\beta`.
    ssr : float
        Residual sum of squares :math:`\sum_i w_i e_i^2`.
    tss : float
        Total sum of squares: centred :math:`\sum_i w_i (y_i - \bar y_w)^2`
        with :math:`\bar y_w = \sum w_i y_i / \sum w_i` if ``k_constant``,
        otherwise uncentred :math:`\sum_i w_i y_i^2`.
    ess : float
        ``tss - ssr``.
    rsquared : float
        :math:`R^2 = 1 - \mathrm{ssr}/\mathrm{tss}`.
    rsquared_adj : float
        :math:`1 - (n - k_\mathrm{const})/(n - p)\,(1 - R^2)`.
    scale : float
        :math:`\hat\sigma^2 = \mathrm{ssr}/(n-p)`.
    resid_std : float
        Residual standard deviation :math:`\hat\sigma` (same units as y).
    fvalue, f_pvalue : float
        F test of all non-constant coefficients = 0.  Non-robust:
        :math:`F = (\mathrm{ess}/\mathrm{df_{model}})/(\mathrm{ssr}/\mathrm{df_{resid}})`;
        HC3: the Wald form :math:`(R\hat\beta)'(RVR')^{-1}R\hat\beta/q`.
        Reference distribution :math:`F(q, n-p)`.  NaN when ``df_model = 0``.
    llf, aic, bic : float
        Gaussian log-likelihood
        :math:`-\tfrac n2[\log(2\pi\,\mathrm{ssr}/n) + 1] + \tfrac12\sum\log w_i`,
        :math:`\mathrm{AIC} = -2\ell + 2p`, :math:`\mathrm{BIC} = -2\ell + p\log n`.
    condition_number : float
        2-norm condition number :math:`\kappa_2 = \sigma_{\max}/\sigma_{\min}`
        of the raw (weighted) design :math:`W^{1/2}X` -- statsmodels'
        ``condition_number``.
    condition_number_scaled : float
        :math:`\kappa_2` of the design with columns scaled to unit 2-norm.
        Column scaling is what the QR solve does; this is the number that
        governs normwise accuracy (van der Sluis: within a factor
        :math:`\sqrt p` of the best diagonal scaling).
    leverage : numpy.ndarray
        Diagonal of the hat matrix of the weighted design.
    weights : numpy.ndarray or None
    """

    _stat_label = "t"

    def __init__(
        self,
        params: np.ndarray,
        cov: np.ndarray,
        data: _WeightedData,
        *,
        method: str,
        cov_type: str,
        leverage: np.ndarray,
        condition_number: float,
        condition_number_scaled: float,
    ):
        n, p = data.X.shape
        super().__init__(params, cov, data.names, df=n - p)
        self._data = data
        self.method = method
        self.cov_type = cov_type
        self.leverage = leverage
        self.condition_number = condition_number
        self.condition_number_scaled = condition_number_scaled

    # data -------------------------------------------------------------------
    @property
    def weights(self) -> np.ndarray | None:
        """The WLS weights, or None."""
        return self._data.weights

    # fit -------------------------------------------------------------------
    @cached_property
    def fittedvalues(self) -> np.ndarray:
        r""":math:`X\hat\beta`."""
        return self._data.X @ self.params.to_numpy()

    @cached_property
    def resid(self) -> np.ndarray:
        r""":math:`e = y - X\hat\beta` (unweighted)."""
        return self._data.y - self.fittedvalues

    @cached_property
    def ssr(self) -> float:
        r"""Residual sum of squares :math:`\sum_i w_i e_i^2`."""
        wresid = self._data.sqrt_w * self.resid
        return float(wresid @ wresid)

    @cached_property
    def tss(self) -> float:
        """Total sum of squares, centred on the weighted mean when there is a constant."""
        w, y = self._data.sqrt_w**2, self._data.y
        if self.k_constant:
            ybar = float(np.sum(w * y) / float(np.sum(w)))
            return float(np.sum(w * (y - ybar) ** 2))
        return float(np.sum(w * y**2))

    @property
    def ess(self) -> float:
        """Explained sum of squares ``tss - ssr``."""
        return self.tss - self.ssr

    @property
    def rsquared(self) -> float:
        """``1 - ssr / tss`` (NaN when ``tss = 0``)."""
        return 1.0 - self.ssr / self.tss if self.tss > 0 else np.nan

    @property
    def rsquared_adj(self) -> float:
        """``1 - (n - k_constant) / (n - p) * (1 - R^2)``."""
        return 1.0 - (self.nobs - self.k_constant) / self.df_resid * (1.0 - self.rsquared)

    @property
    def scale(self) -> float:
        """Residual variance ``ssr / (n - p)``."""
        return self.ssr / self.df_resid

    @property
    def resid_std(self) -> float:
        """Residual standard deviation, in the units of y."""
        return math.sqrt(self.scale)

    @cached_property
    def _f_test(self) -> tuple[float, float]:
        """(F, p-value) of all non-constant coefficients = 0; see the class docstring."""
        if self.df_model == 0:
            return float(np.nan), float(np.nan)
        if self.cov_type == "nonrobust":
            fvalue = (self.ess / self.df_model) / self.scale if self.scale > 0 else math.inf
            return float(fvalue), float(stats.f.sf(fvalue, self.df_model, self.df_resid))
        idx = [j for j in range(len(self._names)) if j != self._data.const]
        bsub = self.params.to_numpy()[idx]
        Vsub = self._cov[np.ix_(idx, idx)]
        try:
            fvalue = float(bsub @ linalg.solve(Vsub, bsub, assume_a="pos")) / len(idx)
        except linalg.LinAlgError:  # zero residuals: singular robust covariance
            fvalue = math.inf
        return float(fvalue), float(stats.f.sf(fvalue, len(idx), self.df_resid))

    @property
    def fvalue(self) -> float:
        """F statistic of all non-constant coefficients = 0."""
        return self._f_test[0]

    @property
    def f_pvalue(self) -> float:
        """p-value of :attr:`fvalue`."""
        return self._f_test[1]

    @cached_property
    def llf(self) -> float:
        """Gaussian log-likelihood (``inf`` for an exact fit, where it is unbounded)."""
        n, ssr = self.nobs, self.ssr
        if ssr > 0:
            return -0.5 * n * (math.log(2.0 * math.pi * ssr / n) + 1.0) + float(np.sum(np.log(self._data.sqrt_w)))
        return math.inf

    # use -------------------------------------------------------------------
    @property
    def tvalues(self) -> pd.Series:
        """t statistics ``params / bse``."""
        return self._stat

    def predict(self, X) -> np.ndarray:
        """Linear predictor ``X @ params`` for a design with the same columns."""
        return self._linear_predictor(X)

    def summary(self, alpha: float = 0.05) -> str:
        """A readable report: fit statistics, then the coefficient table."""
        kind = "WLS" if self.weights is not None else "OLS"
        title = f"Least squares ({kind}, method={self.method!r}, cov={self.cov_type!r})"
        header = [
            ("Observations", f"{self.nobs}"),
            ("Df model / resid", f"{self.df_model} / {self.df_resid}"),
            ("R-squared / adj.", f"{self.rsquared:.6f} / {self.rsquared_adj:.6f}"),
            ("F statistic (p)", f"{self.fvalue:.6g} ({self.f_pvalue:.3g})"),
            ("Residual std", f"{self.resid_std:.6g}"),
            ("Log-likelihood", f"{self.llf:.6f}"),
            ("AIC / BIC", f"{self.aic:.4f} / {self.bic:.4f}"),
            ("Cond. number raw / scaled", f"{self.condition_number:.3e} / {self.condition_number_scaled:.3e}"),
        ]
        notes = []
        if self.condition_number_scaled > 1e6:
            notes.append(
                f"the column-scaled design has condition number {self.condition_number_scaled:.1e}: "
                "strong multicollinearity; expect about log10(kappa) lost digits with QR "
                "and 2*log10(kappa) with the normal equations."
            )
        return self._summary(title, header, alpha, notes)


# --------------------------------------------------------------------------
# Fitting, step by step
# --------------------------------------------------------------------------
def ols(
    X,
    y,
    *,
    method: str = "qr",
    weights=None,
    cov_type: str = "nonrobust",
    names: Sequence[str] | None = None,
    refine: int | None = None,
) -> OLSResults:
    r"""Linear least squares: :math:`\hat\beta = \arg\min_\beta \sum_i w_i (y_i - x_i'\beta)^2`.

    Parameters
    ----------
    X : array_like of shape (n, p) or pandas.DataFrame
        The design, used as given (add an intercept with :func:`add_constant`).
    y : array_like of shape (n,)
        The response.
    method : {"qr", "normal"}, default "qr"
        ``"qr"``: scale the columns of :math:`\tilde X = W^{1/2}X` to unit
        2-norm, :math:`\tilde X D^{-1} = QR` (Householder), solve
        :math:`R\gamma = Q'\tilde y`, :math:`\hat\beta = D^{-1}\gamma`, then
        ``refine`` steps of iterative refinement
        :math:`\hat\beta \leftarrow \hat\beta + D^{-1}R^{-1}Q'(\tilde y - \tilde X\hat\beta)`.
        ``"normal"``: form :math:`A = \tilde X'\tilde X`, :math:`b = \tilde X'\tilde y`
        and solve :math:`A\beta = b` by Cholesky :math:`A = LL'`.
    weights : array_like of shape (n,), optional
        Positive weights :math:`w_i` (WLS; :math:`\mathrm{Var}(e_i) = \sigma^2/w_i`).
    cov_type : {"nonrobust", "HC3"}, default "nonrobust"
        ``"nonrobust"``: :math:`\hat\sigma^2(\tilde X'\tilde X)^{-1}`.
        ``"HC3"`` (MacKinnon & White 1985):
        :math:`(\tilde X'\tilde X)^{-1}\tilde X'\,\Omega\,\tilde X(\tilde X'\tilde X)^{-1}`,
        :math:`\Omega = \mathrm{diag}\big(\tilde e_i^2/(1-h_{ii})^2\big)`,
        :math:`h_{ii}` the leverages of :math:`\tilde X`.
    names : sequence of str, optional
        Column names (default: the DataFrame's columns, else ``const``,
        ``x1``, ``x2``, ...).
    refine : int, optional
        Steps of iterative refinement for ``method="qr"`` (default 1; 0 gives
        the plain QR solution).  Not available for ``"normal"``.

    Returns
    -------
    OLSResults

    Raises
    ------
    RegressionError
        Bad shapes, non-finite values, non-positive weights, n <= p, or an
        observation with leverage 1 under HC3.
    RankDeficientError
        The (scaled) design is numerically rank deficient (the message names
        the dependent columns), or the normal-equations matrix is not
        numerically positive definite (Cholesky fails; use ``method="qr"``).

    Notes
    -----
    Accuracy.  With unit roundoff :math:`u \approx 1.1\times10^{-16}` and
    :math:`\kappa = \kappa_2` of the column-scaled design, Householder QR is
    backward stable and the relative error is about
    :math:`u(\kappa + \kappa^2\tan\theta)` (:math:`\theta` the angle between
    y and the column space: the second term vanishes for zero-residual
    problems), i.e. about :math:`\log_{10}\kappa` lost digits; forming
    :math:`X'X` squares the condition number, so the normal equations lose
    about :math:`2\log_{10}\kappa` digits whatever the residual (Golub & Van
    Loan 2013, §5.3; Higham 2002, ch. 20).  Cholesky is invariant to column
    scaling, so the normal equations are solved unscaled.  Per-coefficient
    (componentwise) errors can be larger than these normwise bounds when the
    column norms differ by orders of magnitude (polynomials), which
    :func:`accuracy_table` shows.

    References
    ----------
    Golub, G.H. & Van Loan, C.F. (2013) *Matrix Computations*, 4th ed.
    Higham, N.J. (2002) *Accuracy and Stability of Numerical Algorithms*, 2nd ed.
    MacKinnon, J.G. & White, H. (1985) J. Econometrics 29, 305-325.
    """
    refine = _check_options(method, cov_type, refine)
    data = _weighted_data(X, y, weights, names)
    Xw, yw = data.X * data.sqrt_w[:, None], data.y * data.sqrt_w
    Xs, col_norm, sv_scaled = _unit_columns(Xw, data.names)
    sv_raw = _singular_values(Xw)
    cond_raw, cond_scaled = float(sv_raw[0] / sv_raw[-1]), float(sv_scaled[0] / sv_scaled[-1])
    if method == "qr":
        beta, xtx_inv, leverage = _solve_qr(Xs, yw, col_norm, refine)
    else:
        beta, xtx_inv, leverage = _solve_normal(Xw, yw, cond_scaled)
    wresid = data.sqrt_w * (data.y - data.X @ beta)
    cov = _covariance(cov_type, Xw, wresid, xtx_inv, leverage)
    return OLSResults(
        beta, cov, data, method=method, cov_type=cov_type, leverage=leverage,
        condition_number=cond_raw, condition_number_scaled=cond_scaled,
    )


def _check_options(method: str, cov_type: str, refine: int | None) -> int:
    """Validate :func:`ols`'s options; return the number of refinement steps to take."""
    if method not in ("qr", "normal"):
        raise RegressionError(f"method must be 'qr' or 'normal', got {method!r}")
    if cov_type not in ("nonrobust", "HC3"):
        raise RegressionError(f"cov_type must be 'nonrobust' or 'HC3', got {cov_type!r}")
    if refine is None:
        refine = 1 if method == "qr" else 0
    refine = int(refine)
    if refine < 0:
        raise RegressionError(f"refine must be >= 0, got {refine}")
    if method == "normal" and refine:
        raise RegressionError("refine applies to method='qr' only")
    return refine


def _weighted_data(X, y, weights, names: Sequence[str] | None) -> _WeightedData:
    """Validate the design, the response and the weights (strictly positive)."""
    Xa, names, const = _design(X, names)
    n = Xa.shape[0]
    ya = _target(y, n)
    if weights is None:
        return _WeightedData(Xa, ya, None, np.ones(n), names, const)
    w = _target(weights, n, "weights")
    if np.any(w <= 0):
        raise RegressionError("weights must be strictly positive (got zero or negative weight(s))")
    return _WeightedData(Xa, ya, w, np.sqrt(w), names, const)


def _solve_qr(Xs: np.ndarray, yw: np.ndarray, col_norm: np.ndarray, refine: int):
    r"""Householder QR of the column-scaled design, with ``refine`` steps of iterative refinement.

    Returns
    -------
    beta : numpy.ndarray of shape (p,)
    xtx_inv : numpy.ndarray of shape (p, p)
        :math:`(\tilde X'\tilde X)^{-1} = D^{-1}R^{-1}R^{-T}D^{-1}`.
    leverage : numpy.ndarray of shape (n,)
        Row sums of squares of Q.
    """
    p = Xs.shape[1]
    Q, R = linalg.qr(Xs, mode="economic", check_finite=False)
    gamma = linalg.solve_triangular(R, Q.T @ yw, check_finite=False)
    for _ in range(refine):
        r = yw - Xs @ gamma
        gamma = gamma + linalg.solve_triangular(R, Q.T @ r, check_finite=False)
    Rinv = linalg.solve_triangular(R, np.eye(p), check_finite=False)
    xtx_inv = (Rinv @ Rinv.T) / np.outer(col_norm, col_norm)
    return gamma / col_norm, xtx_inv, np.sum(Q * Q, axis=1)


def _solve_normal(Xw: np.ndarray, yw: np.ndarray, cond_scaled: float):
    """The normal equations by Cholesky, unscaled (Cholesky is invariant to column scaling).

    Returns ``beta``, ``xtx_inv`` and ``leverage`` as :func:`_solve_qr` does; raises
    :class:`RankDeficientError` when :math:`X'X` is not numerically positive definite.
    """
    p = Xw.shape[1]
    try:
        cho = linalg.cho_factor(Xw.T @ Xw, lower=True, check_finite=False)
    except linalg.LinAlgError as exc:
        raise RankDeficientError(
            "the normal equations X'X b = X'y are not numerically positive definite "
            f"(Cholesky failed; kappa(scaled X) = {cond_scaled:.2e}, so kappa(X'X) ~ {cond_scaled**2:.1e}); "
            "use method='qr'"
        ) from exc
    beta = linalg.cho_solve(cho, Xw.T @ yw, check_finite=False)
    xtx_inv = linalg.cho_solve(cho, np.eye(p), check_finite=False)
    xtx_inv = 0.5 * (xtx_inv + xtx_inv.T)
    return beta, xtx_inv, np.einsum("ij,jk,ik->i", Xw, xtx_inv, Xw)


def _covariance(
    cov_type: str, Xw: np.ndarray, wresid: np.ndarray, xtx_inv: np.ndarray, leverage: np.ndarray
) -> np.ndarray:
    """The covariance of the estimates, classical or HC3 (see :func:`ols`).

    Raises :class:`RegressionError` for HC3 when an observation has leverage 1.
    """
    if cov_type == "nonrobust":
        n, p = Xw.shape
        return float(wresid @ wresid) / (n - p) * xtx_inv
    exact = np.flatnonzero(leverage >= 1.0 - 1e-10)
    if exact.size:
        raise RegressionError(
            f"HC3 is undefined: observation(s) {exact[:10].tolist()} have leverage 1 "
            "(each is fitted exactly by its own parameter)"
        )
    u2 = (wresid / (1.0 - leverage)) ** 2
    meat = Xw.T @ (Xw * u2[:, None])
    cov = xtx_inv @ meat @ xtx_inv
    return 0.5 * (cov + cov.T)
