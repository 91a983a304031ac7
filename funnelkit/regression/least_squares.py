"""(Weighted) linear least squares: :func:`ols` and its :class:`OLSResults`."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import linalg, stats

from ._base import (
    RankDeficientError,
    RegressionError,
    _check_full_rank,
    _CoefResults,
    _design,
    _singular_values,
    _target,
)

__all__ = ["ols", "OLSResults"]

# --------------------------------------------------------------------------
# Linear least squares
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

    Xa, names, const = _design(X, names)
    n, p = Xa.shape
    ya = _target(y, n)
    if weights is None:
        w = None
        sw = np.ones(n)
    else:
        w = _target(weights, n, "weights")
        if np.any(w <= 0):
            raise RegressionError("weights must be strictly positive (got zero or negative weight(s))")
        sw = np.sqrt(w)
    if n <= p:
        raise RegressionError(f"need more observations than columns (n_samples = {n}, n_columns = {p})")
    Xw = Xa * sw[:, None]
    yw = ya * sw

    col_norm = np.sqrt(np.sum(Xw * Xw, axis=0))
    zero = [names[j] for j in np.flatnonzero(col_norm == 0)]
    if zero:
        raise RankDeficientError(f"column(s) {zero} are identically zero")
    Xs = Xw / col_norm
    sv_s = _singular_values(Xs)
    _check_full_rank(Xs, names, sv_s)
    sv_raw = _singular_values(Xw)
    cond_raw = float(sv_raw[0] / sv_raw[-1])
    cond_scaled = float(sv_s[0] / sv_s[-1])

    if method == "qr":
        Q, R = linalg.qr(Xs, mode="economic", check_finite=False)
        gamma = linalg.solve_triangular(R, Q.T @ yw, check_finite=False)
        for _ in range(refine):
            r = yw - Xs @ gamma
            gamma = gamma + linalg.solve_triangular(R, Q.T @ r, check_finite=False)
        beta = gamma / col_norm
        Rinv = linalg.solve_triangular(R, np.eye(p), check_finite=False)
        xtx_inv = (Rinv @ Rinv.T) / np.outer(col_norm, col_norm)
        leverage = np.sum(Q * Q, axis=1)
    else:
        A = Xw.T @ Xw
        b = Xw.T @ yw
        try:
            cho = linalg.cho_factor(A, lower=True, check_finite=False)
        except linalg.LinAlgError as exc:
            raise RankDeficientError(
                "the normal equations X'X b = X'y are not numerically positive definite "
                f"(Cholesky failed; kappa(scaled X) = {cond_scaled:.2e}, so kappa(X'X) ~ {cond_scaled**2:.1e}); "
                "use method='qr'"
            ) from exc
        beta = linalg.cho_solve(cho, b, check_finite=False)
        xtx_inv = linalg.cho_solve(cho, np.eye(p), check_finite=False)
        xtx_inv = 0.5 * (xtx_inv + xtx_inv.T)
        leverage = np.einsum("ij,jk,ik->i", Xw, xtx_inv, Xw)

    fitted = Xa @ beta
    resid = ya - fitted
    wresid = sw * resid
    ssr = float(wresid @ wresid)
    df_resid = n - p
    k_constant = int(const is not None)
    df_model = p - k_constant
    scale = ssr / df_resid
    wsum = float(np.sum(sw**2))
    if k_constant:
        ybar = float(np.sum(sw**2 * ya) / wsum)
        tss = float(np.sum(sw**2 * (ya - ybar) ** 2))
    else:
        tss = float(np.sum(sw**2 * ya**2))
    ess = tss - ssr
    rsquared = 1.0 - ssr / tss if tss > 0 else np.nan
    rsquared_adj = 1.0 - (n - k_constant) / df_resid * (1.0 - rsquared)

    if cov_type == "nonrobust":
        cov = scale * xtx_inv
    else:
        if np.any(leverage >= 1.0 - 1e-10):
            bad = np.flatnonzero(leverage >= 1.0 - 1e-10)
            raise RegressionError(
                f"HC3 is undefined: observation(s) {bad[:10].tolist()} have leverage 1 "
                "(each is fitted exactly by its own parameter)"
            )
        u2 = (wresid / (1.0 - leverage)) ** 2
        meat = Xw.T @ (Xw * u2[:, None])
        cov = xtx_inv @ meat @ xtx_inv
        cov = 0.5 * (cov + cov.T)

    if df_model == 0:
        fvalue = f_pvalue = np.nan
    elif cov_type == "nonrobust":
        fvalue = (ess / df_model) / scale if scale > 0 else math.inf
        f_pvalue = float(stats.f.sf(fvalue, df_model, df_resid))
    else:
        idx = [j for j in range(p) if j != const]
        bsub = beta[idx]
        Vsub = cov[np.ix_(idx, idx)]
        try:
            fvalue = float(bsub @ linalg.solve(Vsub, bsub, assume_a="pos")) / len(idx)
        except linalg.LinAlgError:  # zero residuals: singular robust covariance
            fvalue = math.inf
        f_pvalue = float(stats.f.sf(fvalue, len(idx), df_resid))

    if ssr > 0:
        llf = -0.5 * n * (math.log(2.0 * math.pi * ssr / n) + 1.0) + float(np.sum(np.log(sw)))
    else:  # an exact fit: the Gaussian likelihood is unbounded
        llf = math.inf

    res = OLSResults(beta, cov, names, df=df_resid)
    res.method = method
    res.cov_type = cov_type
    res.nobs = n
    res.df_model = df_model
    res.df_resid = df_resid
    res.k_constant = k_constant
    res.resid = resid
    res.fittedvalues = fitted
    res.ssr = ssr
    res.tss = tss
    res.ess = ess
    res.rsquared = rsquared
    res.rsquared_adj = rsquared_adj
    res.scale = scale
    res.resid_std = math.sqrt(scale)
    res.fvalue = float(fvalue)
    res.f_pvalue = float(f_pvalue)
    res.llf = llf
    res.aic = -2.0 * llf + 2.0 * p
    res.bic = -2.0 * llf + math.log(n) * p
    res.condition_number = cond_raw
    res.condition_number_scaled = cond_scaled
    res.leverage = leverage
    res.weights = w
    return res
