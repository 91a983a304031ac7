r"""Least squares, logistic maximum likelihood and a linear SVM, derived.

Everything numerical here is written from the mathematics with NumPy/SciPy
linear algebra (``scipy.linalg``, ``scipy.optimize.linprog`` for the
separation check, ``scipy.stats`` for reference distributions).  statsmodels
and scikit-learn are *not* used for any computation: they are the independent
references of ``tests/test_regression.py``.  The three estimator classes
inherit scikit-learn's ``BaseEstimator`` and mixins and use its input
validation so that ``clone``, ``Pipeline`` and ``GridSearchCV`` work; that is
the estimator *contract*, not the mathematics.

Contents
--------
Functions returning statsmodels-like results objects (``params``, ``bse``,
``pvalues``, ``conf_int()``, ``summary()``, ``to_frame()``):

* :func:`ols` -- (weighted) linear least squares by Householder QR of the
  column-scaled design (``method="qr"``) or by the normal equations with a
  Cholesky factorisation (``method="normal"``); classical or HC3 covariance.
* :func:`logit` -- logistic regression by Newton-Raphson (= IRLS) with step
  halving, an optional L2 penalty, a linear-programming check for complete or
  quasi-complete separation (:class:`SeparationError`), odds ratios and
  average marginal effects with delta-method standard errors.

scikit-learn estimators: :class:`LeastSquares`, :class:`LogisticIRLS`,
:class:`LinearSVM` (soft-margin SVM solved in the dual by coordinate descent,
Hsieh et al. 2008, stopped on the duality gap).

Numerical accuracy: :func:`log_relative_error`, :func:`accuracy_table` and the
test designs :func:`wampler`, :func:`wampler1`, :func:`longley`,
:func:`collinear`.

The constant column
-------------------
:func:`ols` and :func:`logit` take the design ``X`` *as given*: add the
intercept yourself with :func:`add_constant`.  A column whose values are all
equal and non-zero is recognised as the constant (named ``"const"`` for array
input; it sets ``k_constant = 1``, centres the total sum of squares and is the
column left unpenalised by ``l2``).  The estimators add the intercept
themselves when ``fit_intercept=True`` (the default) and never expect a
constant column in ``X``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import linalg, optimize, special, stats
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from funnelkit.errors import FunnelkitError

__all__ = [
    "RegressionError",
    "RankDeficientError",
    "SeparationError",
    "SeparationInfo",
    "add_constant",
    "ols",
    "OLSResults",
    "logit",
    "LogitResults",
    "LeastSquares",
    "LogisticIRLS",
    "LinearSVM",
    "log_relative_error",
    "accuracy_table",
    "Design",
    "wampler",
    "wampler1",
    "longley",
    "collinear",
    "LONGLEY_DATA",
    "LONGLEY_CERTIFIED",
]

_EPS = np.finfo(np.float64).eps
#: Linear predictors up to this size (fitted p in [3e-7, 1 - 3e-7]) cannot come from a
#: Newton run that "converged" along a separating direction (see :func:`logit`).
_ETA_SAFE = 15.0
#: Largest LRE a double can show: -log10(eps/2) rounded down (~15.95).
MAX_LRE = 15.9


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------
class RegressionError(FunnelkitError, ValueError):
    """The data given to a regression cannot be fitted as asked.

    Also a :class:`ValueError`, so that scikit-learn's conventions (and code
    that catches ``ValueError``) keep working.
    """


class RankDeficientError(RegressionError):
    """The design matrix does not have full column rank (numerically)."""


@dataclass(frozen=True)
class SeparationInfo:
    """What the separation check found.

    Attributes
    ----------
    kind : {"complete", "quasi-complete"}
        *Complete*: some direction ``d`` gives ``s_i x_i'd > 0`` for every
        observation (``s_i = 2 y_i - 1``); *quasi-complete*: ``s_i x_i'd >= 0``
        for all ``i`` with equality for some (Albert & Anderson 1984).  In both
        cases the log-likelihood increases along ``d`` forever and the maximum
        likelihood estimate does not exist.
    columns : tuple of str
        Columns of a sparse separating direction (see :func:`logit`, Notes).
    direction : pandas.Series
        That direction, in the units of the original columns, normalised to
        max-abs 1.
    n_perfect : int
        Observations predicted perfectly along ``direction``
        (``s_i x_i'd > 0``); for quasi-complete separation the others lie on
        the separating hyperplane.
    message : str
        The human-readable explanation (also the error message).
    """

    kind: str
    columns: tuple[str, ...]
    direction: pd.Series
    n_perfect: int
    message: str


class SeparationError(RegressionError):
    """Complete or quasi-complete separation: the logistic MLE does not exist.

    The message names the offending columns; ``.info`` holds a
    :class:`SeparationInfo`.
    """

    def __init__(self, info: SeparationInfo):
        super().__init__(info.message)
        self.info = info


# --------------------------------------------------------------------------
# Input handling
# --------------------------------------------------------------------------
def add_constant(X, *, prepend: bool = True, name: str = "const", has_constant: str = "skip"):
    """Add a column of ones to a design matrix.

    Parameters
    ----------
    X : array_like of shape (n, p) or pandas.DataFrame
        The design without intercept.  A 1-D array is one column.
    prepend : bool, default True
        Put the constant first (True) or last (False).
    name : str, default "const"
        Column name when ``X`` is a DataFrame.
    has_constant : {"skip", "add", "raise"}, default "skip"
        What to do if ``X`` already has a constant column (all values equal
        and non-zero): return ``X`` unchanged, add another, or raise
        :class:`RegressionError`.

    Returns
    -------
    numpy.ndarray or pandas.DataFrame
        ``X`` with a column of ones, of the same kind as the input.
    """
    if has_constant not in ("skip", "add", "raise"):
        raise RegressionError(f"has_constant must be 'skip', 'add' or 'raise', got {has_constant!r}")
    is_frame = isinstance(X, pd.DataFrame)
    arr = np.asarray(X, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if _constant_index(arr) is not None and has_constant != "add":
        if has_constant == "raise":
            raise RegressionError("X already has a constant column")
        return X
    if is_frame:
        out = X.copy()
        out.insert(0 if prepend else out.shape[1], name, 1.0)
        return out
    ones = np.ones((arr.shape[0], 1))
    return np.hstack([ones, arr] if prepend else [arr, ones])


def _constant_index(X: np.ndarray) -> int | None:
    """Index of the first column whose values are all equal and non-zero."""
    if X.shape[0] == 0:
        return None
    first = X[0]
    is_const = np.all(X == first, axis=0) & (first != 0)
    idx = np.flatnonzero(is_const)
    return int(idx[0]) if idx.size else None


def _design(X, names: Sequence[str] | None) -> tuple[np.ndarray, list[str], int | None]:
    """Validate a design; return (float array, column names, constant index)."""
    if isinstance(X, pd.DataFrame):
        default_names = [str(c) for c in X.columns]
    else:
        default_names = None
    arr = np.asarray(X, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise RegressionError(f"X must be 2-D (n_samples, n_columns), got shape {arr.shape}")
    n, p = arr.shape
    if p == 0:
        raise RegressionError("X has no columns")
    if not np.all(np.isfinite(arr)):
        raise RegressionError("X contains NaN or infinite values")
    const = _constant_index(arr)
    if names is None:
        names = default_names
    if names is None:
        names, k = [], 0
        for j in range(p):
            if j == const:
                names.append("const")
            else:
                k += 1
                names.append(f"x{k}")
    names = [str(s) for s in names]
    if len(names) != p:
        raise RegressionError(f"names has {len(names)} entries but X has {p} columns")
    if len(set(names)) != p:
        raise RegressionError(f"column names must be unique, got {names}")
    return arr, names, const


def _target(y, n: int, what: str = "y") -> np.ndarray:
    arr = np.asarray(y, dtype=np.float64)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise RegressionError(f"{what} must be 1-D, got shape {arr.shape}")
    if arr.shape[0] != n:
        raise RegressionError(f"{what} has {arr.shape[0]} rows but X has {n}")
    if not np.all(np.isfinite(arr)):
        raise RegressionError(f"{what} contains NaN or infinite values")
    return arr


def _singular_values(A: np.ndarray) -> np.ndarray:
    return linalg.svdvals(A, check_finite=False)


def _check_full_rank(Xs: np.ndarray, names: Sequence[str], sv: np.ndarray) -> None:
    """Raise RankDeficientError naming dependent columns if Xs is rank deficient.

    ``Xs`` has unit-norm columns; the numerical rank uses the LAPACK default
    tolerance ``max(n, p) * eps * s_max``.  The dependent columns are the ones
    a column-pivoted QR puts last.
    """
    n, p = Xs.shape
    if n < p:
        raise RankDeficientError(f"{n} observations cannot identify {p} coefficients (need n > p)")
    tol = max(n, p) * _EPS * sv[0]
    rank = int(np.sum(sv > tol))
    if rank == p:
        return
    _, R, piv = linalg.qr(Xs, mode="economic", pivoting=True)
    dependent = [names[j] for j in piv[rank:]]
    raise RankDeficientError(
        f"the design matrix is rank deficient (rank {rank} < {p} columns): "
        f"column(s) {dependent} are (numerically) linear combinations of the others; "
        "drop them or merge categories"
    )


# --------------------------------------------------------------------------
# Results base
# --------------------------------------------------------------------------
class _CoefResults:
    """Shared coefficient table machinery (params, bse, tests, intervals)."""

    _stat_label = "t"

    def __init__(self, params: np.ndarray, cov: np.ndarray, names: list[str], df: float | None):
        self._names = list(names)
        self.params = pd.Series(params, index=self._names, name="coef")
        self._cov = cov
        self._df = df  # None -> standard normal reference distribution
        self.bse = pd.Series(np.sqrt(np.diag(cov)), index=self._names, name="std_err")

    # reference distribution of the Wald statistic
    def _sf2(self, stat):
        if self._df is None:
            return 2.0 * stats.norm.sf(np.abs(stat))
        return 2.0 * stats.t.sf(np.abs(stat), self._df)

    def _ppf(self, q):
        return stats.norm.ppf(q) if self._df is None else stats.t.ppf(q, self._df)

    def cov_params(self) -> pd.DataFrame:
        """Estimated covariance matrix of ``params`` (DataFrame indexed by name)."""
        return pd.DataFrame(self._cov, index=self._names, columns=self._names)

    @property
    def _stat(self) -> pd.Series:
        with np.errstate(divide="ignore", invalid="ignore"):
            stat = self.params.to_numpy() / self.bse.to_numpy()
        return pd.Series(stat, index=self._names, name=self._stat_label)

    @property
    def pvalues(self) -> pd.Series:
        """Two-sided p-values of H0: coefficient = 0."""
        return pd.Series(self._sf2(self._stat.to_numpy()), index=self._names, name="p_value")

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        """Wald confidence intervals ``params -/+ q_{1-alpha/2} * bse``.

        Parameters
        ----------
        alpha : float, default 0.05
            1 - coverage; ``q`` is the Student-t (OLS) or standard normal
            (logit) quantile.

        Returns
        -------
        pandas.DataFrame
            Columns ``lower`` and ``upper``, indexed by column name.
        """
        if not 0.0 < alpha < 1.0:
            raise RegressionError(f"alpha must be in (0, 1), got {alpha}")
        q = self._ppf(1.0 - alpha / 2.0)
        b, s = self.params.to_numpy(), self.bse.to_numpy()
        return pd.DataFrame({"lower": b - q * s, "upper": b + q * s}, index=self._names)

    def to_frame(self, alpha: float = 0.05) -> pd.DataFrame:
        """The coefficient table for code.

        Returns
        -------
        pandas.DataFrame
            Indexed by column name, with columns ``coef``, ``std_err``,
            ``t`` (OLS) or ``z`` (logit), ``p_value``, ``ci_lower``,
            ``ci_upper`` (at level ``1 - alpha``).
        """
        ci = self.conf_int(alpha)
        return pd.DataFrame(
            {
                "coef": self.params,
                "std_err": self.bse,
                self._stat_label: self._stat,
                "p_value": self.pvalues,
                "ci_lower": ci["lower"],
                "ci_upper": ci["upper"],
            }
        )

    def _summary(self, title: str, header: list[tuple[str, str]], alpha: float, notes: list[str]) -> str:
        table = self.to_frame(alpha)
        lines = [title, "=" * max(len(title), 60)]
        width = max(len(k) for k, _ in header)
        lines += [f"{k:<{width}} : {v}" for k, v in header]
        lines.append("-" * 60)
        with pd.option_context("display.float_format", "{:.6g}".format, "display.width", 120):
            lines.append(table.to_string())
        if notes:
            lines.append("-" * 60)
            lines += [f"Note: {s}" for s in notes]
        return "\n".join(lines)


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
        arr = np.asarray(X, dtype=np.float64)
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.shape[1] != len(self._names):
            raise RegressionError(f"X has {arr.shape[1]} columns, the model has {len(self._names)}")
        return arr @ self.params.to_numpy()

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


# --------------------------------------------------------------------------
# Logistic regression
# --------------------------------------------------------------------------
def _log1pexp(eta: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, eta)


def _loglik(eta: np.ndarray, y: np.ndarray) -> float:
    return float(np.sum(y * eta - _log1pexp(eta)))


def _lp_separated(A: np.ndarray, free: np.ndarray, thresh: float = 1e-6):
    """Konis's LP: max 1'A d s.t. A d >= 0, |d| <= 1, d_j = 0 for non-free j.

    Returns the optimal d if the optimum exceeds ``thresh`` (separation),
    else None.
    """
    p = A.shape[1]
    bounds = [(-1.0, 1.0) if free[j] else (0.0, 0.0) for j in range(p)]
    res = optimize.linprog(
        c=-A.sum(axis=0), A_ub=-A, b_ub=np.zeros(A.shape[0]), bounds=bounds, method="highs"
    )
    if res.status != 0:  # pragma: no cover - d = 0 is always feasible and the box bounds it
        raise RuntimeError(f"separation LP failed: {res.message}")
    if -res.fun > thresh:
        return res.x
    return None


def _find_separation(X: np.ndarray, y: np.ndarray, names: list[str], const: int | None, free: np.ndarray):
    """Detect (quasi-)complete separation along the ``free`` columns.

    See :func:`logit`, Notes.  Returns a :class:`SeparationInfo` or None.
    """
    scale = np.max(np.abs(X), axis=0)
    scale[scale == 0] = 1.0
    s = 2.0 * y - 1.0
    A = s[:, None] * (X / scale)
    p = A.shape[1]
    d = _lp_separated(A, free)
    if d is None:
        return None

    # complete separation: max t s.t. A d >= t, |d| <= 1, 0 <= t <= 1
    bounds = [(-1.0, 1.0) if free[j] else (0.0, 0.0) for j in range(p)] + [(0.0, 1.0)]
    c = np.zeros(p + 1)
    c[-1] = -1.0
    lp = optimize.linprog(
        c=c, A_ub=np.hstack([-A, np.ones((A.shape[0], 1))]), b_ub=np.zeros(A.shape[0]),
        bounds=bounds, method="highs",
    )
    complete = lp.status == 0 and -lp.fun > 1e-9 and np.min(A @ lp.x[:p]) > 0
    if complete:
        d = lp.x[:p]

    # a sparse description: single columns (with the constant, if free) first
    singles = []
    base = np.zeros(p, dtype=bool)
    if const is not None and free[const]:
        base[const] = True
        if _lp_separated(A, base) is not None:
            singles = [const]
    if not singles:
        for j in range(p):
            if j == const or not free[j]:
                continue
            sub = base.copy()
            sub[j] = True
            dj = _lp_separated(A, sub)
            if dj is not None:
                singles.append(j)
    if singles:
        sub = base.copy()
        sub[singles[0]] = True
        d_show = _lp_separated(A, sub)
        columns = [names[j] for j in singles]
        with_const = const is not None and const not in singles and abs(d_show[const]) > 1e-9
    else:
        # L1-minimal separating direction: min |d|_1 s.t. A d >= 0, 1'A d >= 1
        idx = np.flatnonzero(free)
        Af = A[:, idx]
        k = idx.size
        A_ub = np.vstack([np.hstack([-Af, Af]), -np.hstack([Af.sum(0), -Af.sum(0)])[None, :]])
        b_ub = np.concatenate([np.zeros(A.shape[0]), [-1.0]])
        lp1 = optimize.linprog(c=np.ones(2 * k), A_ub=A_ub, b_ub=b_ub, bounds=[(0, None)] * (2 * k), method="highs")
        d_show = np.zeros(p)
        if lp1.status == 0:
            d_show[idx] = lp1.x[:k] - lp1.x[k:]
        else:  # pragma: no cover - LP1 found a direction, so this LP is feasible
            d_show = d
        big = np.abs(d_show) > 1e-9 * np.max(np.abs(d_show))
        columns = [names[j] for j in np.flatnonzero(big)]
        with_const = False

    margins = A @ d
    n_perfect = int(np.sum(margins > 1e-9))
    n = len(y)
    direction = d_show / scale
    direction = direction / np.max(np.abs(direction))
    kind = "complete" if complete else "quasi-complete"
    quoted = ", ".join(repr(c) for c in columns)
    if singles and singles == [const]:
        what = f"the outcome is constant (all {int(y[0])}): the intercept {names[const]!r} diverges"
    elif singles:
        what = (
            ("each of the columns " if len(columns) > 1 else "column ")
            + quoted
            + (f" (with the intercept {names[const]!r})" if with_const else "")
            + " separates the outcome on its own"
        )
    else:
        what = f"a linear combination of the columns {quoted} separates the outcome"
    message = (
        f"{kind} separation: {what}; {n_perfect} of {n} observations are predicted perfectly"
        + ("" if complete else " and the rest lie on the separating hyperplane")
        + ". The maximum likelihood estimate does not exist (those coefficients diverge to +/-inf). "
        "Drop or merge the offending column(s), or fit a penalised model (l2 > 0)."
    )
    return SeparationInfo(
        kind=kind,
        columns=tuple(columns),
        direction=pd.Series(direction, index=names, name="direction"),
        n_perfect=n_perfect,
        message=message,
    )


class LogitResults(_CoefResults):
    r"""Results of :func:`logit`.

    Attributes
    ----------
    params, bse, zvalues, pvalues : pandas.Series
        Coefficients (log-odds), standard errors from the inverse of the
        observed information :math:`X'WX + \lambda P` at :math:`\hat\beta`,
        Wald z statistics and two-sided normal p-values.  ``tvalues`` is an
        alias of ``zvalues``.
    l2 : float
        The penalty :math:`\lambda`.
    penalized : numpy.ndarray of bool
        Which coefficients the penalty applies to (the diagonal of P).
    nobs, df_model, df_resid, k_constant : int
        n, p - k_constant, n - p, 1 if a constant column is present.
    llf : float
        Log-likelihood :math:`\ell(\hat\beta) = \sum_i y_i\eta_i - \log(1+e^{\eta_i})`
        (without the penalty).
    objective : float
        Penalised log-likelihood :math:`\ell(\hat\beta) - \tfrac\lambda2\beta'P\beta`
        (the maximised function).
    llnull : float
        Log-likelihood of the constant-only model
        :math:`n[\bar y\log\bar y + (1-\bar y)\log(1-\bar y)]`.
    llr, llr_pvalue : float
        :math:`2(\ell - \ell_0)` and its :math:`\chi^2_{\mathrm{df_{model}}}` p-value.
    prsquared : float
        McFadden's pseudo :math:`R^2 = 1 - \ell/\ell_0`.
    aic, bic : float
        :math:`-2\ell + 2p`, :math:`-2\ell + p\log n`.
    converged : bool
    n_iter : int
        Newton iterations taken.
    grad_norm : float
        :math:`\max_j |\partial/\partial\beta_j|` of the objective at the end.
    history : pandas.DataFrame
        One row per iterate (iteration 0 is the start, :math:`\beta = 0` by default):
        ``llf``, ``objective``, ``grad_norm``, ``step`` (fraction of the
        Newton step taken, :math:`2^{-\text{halvings}}`), ``halvings``.
    fittedvalues : numpy.ndarray
        :math:`\hat p_i = 1/(1+e^{-x_i'\hat\beta})`.
    separation : SeparationInfo or None
        Set when ``on_separation="warn"`` and separation was found.
    """

    _stat_label = "z"

    @property
    def zvalues(self) -> pd.Series:
        """Wald statistics ``params / bse``."""
        return self._stat

    @property
    def tvalues(self) -> pd.Series:
        """Alias of :attr:`zvalues` (statsmodels' name)."""
        return self._stat

    def predict(self, X) -> np.ndarray:
        """Probabilities :math:`1/(1+e^{-X\\hat\\beta})` for a design with the same columns."""
        arr = np.asarray(X, dtype=np.float64)
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.shape[1] != len(self._names):
            raise RegressionError(f"X has {arr.shape[1]} columns, the model has {len(self._names)}")
        return special.expit(arr @ self.params.to_numpy())

    def odds_ratios(self, alpha: float = 0.05) -> pd.DataFrame:
        r"""Odds ratios :math:`e^{\hat\beta_j}` with Wald intervals :math:`e^{\hat\beta_j \mp z\,\mathrm{se}_j}`.

        Returns
        -------
        pandas.DataFrame
            Columns ``odds_ratio``, ``ci_lower``, ``ci_upper``; the odds ratio
            is the multiplicative change in :math:`p/(1-p)` per unit of the
            column (for the constant: the odds at x = 0).
        """
        ci = self.conf_int(alpha)
        return pd.DataFrame(
            {
                "odds_ratio": np.exp(self.params),
                "ci_lower": np.exp(ci["lower"]),
                "ci_upper": np.exp(ci["upper"]),
            }
        )

    def marginal_effects(self, alpha: float = 0.05) -> pd.DataFrame:
        r"""Average marginal effects with delta-method standard errors.

        For each non-constant column j,

        .. math:: \mathrm{AME}_j = \frac1n\sum_i \frac{\partial p_i}{\partial x_{ij}}
                  = \frac1n\sum_i \hat p_i(1-\hat p_i)\,\hat\beta_j,

        the average change in probability (units: probability per unit of
        column j; for a 0/1 dummy this is the derivative, not the discrete
        difference).  Its gradient is
        :math:`\partial\mathrm{AME}_j/\partial\beta_k = \frac1n\sum_i
        [\hat p_i(1-\hat p_i)\delta_{jk} + \hat\beta_j\hat p_i(1-\hat p_i)(1-2\hat p_i)x_{ik}]`,
        and :math:`\mathrm{Var}(\mathrm{AME}) = J V J'` with V = ``cov_params()``
        (delta method; statsmodels' ``get_margeff(at="overall")``).

        Returns
        -------
        pandas.DataFrame
            Columns ``dy_dx``, ``std_err``, ``z``, ``p_value``, ``ci_lower``,
            ``ci_upper``, indexed by the non-constant columns.
        """
        beta = self.params.to_numpy()
        X = self._X
        pr = special.expit(X @ beta)
        w = pr * (1.0 - pr)
        n = X.shape[0]
        keep = [j for j in range(len(beta)) if j != self._const]
        ame = w.mean() * beta
        J = np.diag(np.full(len(beta), w.mean())) + np.outer(beta, (w * (1.0 - 2.0 * pr)) @ X / n)
        V = J @ self._cov @ J.T
        se = np.sqrt(np.diag(V))
        z = ame / se
        q = stats.norm.ppf(1.0 - alpha / 2.0)
        out = pd.DataFrame(
            {
                "dy_dx": ame,
                "std_err": se,
                "z": z,
                "p_value": 2.0 * stats.norm.sf(np.abs(z)),
                "ci_lower": ame - q * se,
                "ci_upper": ame + q * se,
            },
            index=self._names,
        )
        return out.iloc[keep]

    def summary(self, alpha: float = 0.05) -> str:
        """A readable report: convergence and fit statistics, then coefficients."""
        title = "Logistic regression (maximum likelihood" + (f", L2 penalty {self.l2:g})" if self.l2 else ")")
        header = [
            ("Observations", f"{self.nobs}"),
            ("Df model / resid", f"{self.df_model} / {self.df_resid}"),
            ("Converged", f"{self.converged} after {self.n_iter} Newton iterations (max |grad| {self.grad_norm:.2e})"),
            ("Log-likelihood", f"{self.llf:.6f}"),
            ("LL-null", f"{self.llnull:.6f}"),
            ("Pseudo R-squared", f"{self.prsquared:.6f}"),
            ("LLR p-value", f"{self.llr_pvalue:.4g}"),
            ("AIC / BIC", f"{self.aic:.4f} / {self.bic:.4f}"),
        ]
        notes = []
        if self.l2:
            notes.append("penalised fit: standard errors are the inverse penalised information (not sandwich).")
        if self.separation is not None:
            notes.append(self.separation.message)
        if not self.converged:
            notes.append("Newton-Raphson did not converge; the estimates are not the MLE.")
        return self._summary(title, header, alpha, notes)


def logit(
    X,
    y,
    *,
    l2: float = 0.0,
    penalize_intercept: bool = False,
    names: Sequence[str] | None = None,
    max_iter: int = 100,
    tol: float = 1e-10,
    on_separation: str = "raise",
    start_params=None,
) -> LogitResults:
    r"""Logistic regression by (penalised) maximum likelihood, Newton-Raphson / IRLS.

    Maximises

    .. math:: Q(\beta) = \sum_{i=1}^n \big[y_i\,x_i'\beta - \log(1 + e^{x_i'\beta})\big]
              - \frac\lambda2\,\beta' P\beta,

    :math:`P` diagonal with 1 for penalised coefficients (all but the constant
    unless ``penalize_intercept``).

    Parameters
    ----------
    X : array_like of shape (n, p) or pandas.DataFrame
        The design, used as given (add an intercept with :func:`add_constant`).
    y : array_like of shape (n,)
        Outcomes coded 0/1 (or bool).
    l2 : float, default 0.0
        :math:`\lambda \ge 0`.  scikit-learn's ``LogisticRegression(C=C)``
        with an L2 penalty minimises :math:`C\sum_i\mathrm{loss}_i + \tfrac12\|w\|^2`
        with the intercept unpenalised (solvers lbfgs, newton-cg,
        newton-cholesky, sag, saga), i.e. the same optimum as ``l2 = 1/C``.
        (liblinear instead penalises the intercept.)
    penalize_intercept : bool, default False
        Apply the penalty to the constant column too.
    names : sequence of str, optional
        Column names.
    max_iter : int, default 100
        Maximum Newton iterations.
    tol : float, default 1e-10
        Convergence when the Newton step satisfies
        :math:`\max_j |\delta_j|/(1+|\beta_j|) \le` ``tol`` (the step is
        taken), or when the Newton decrement :math:`g'\delta/2` is below
        :math:`10\,\epsilon(1+|Q|)` (no representable improvement left).
    on_separation : {"raise", "warn", "ignore"}, default "raise"
        What to do when the data are (quasi-)completely separated along the
        unpenalised coefficients: raise :class:`SeparationError`, warn and fit
        anyway (``results.separation`` is set, ``converged`` will be False or
        the coefficients huge), or skip the check.
    start_params : array_like of shape (p,), optional
        Starting coefficients (default: all zeros).

    Returns
    -------
    LogitResults

    Raises
    ------
    SeparationError
        Complete or quasi-complete separation (message names the columns).
    RankDeficientError
        The design is rank deficient (message names the dependent columns).
    RegressionError
        Invalid input (y not 0/1, shapes, non-finite values).

    Notes
    -----
    Newton-Raphson.  With :math:`p_i = 1/(1+e^{-x_i'\beta})`,
    :math:`W = \mathrm{diag}(p_i(1-p_i))`, the gradient is
    :math:`g = X'(y - p) - \lambda P\beta` and the negative Hessian
    :math:`H = X'WX + \lambda P` (positive definite for a full-rank X).  The
    step :math:`\delta = H^{-1}g` (Cholesky) equals one IRLS step: weighted
    least squares of the working response :math:`z = X\beta + W^{-1}(y-p)`.
    If :math:`Q(\beta+\delta) < Q(\beta)` the step is halved (up to 50 times).
    For the logit link the observed and expected information coincide, so
    ``bse`` :math:`= \sqrt{\mathrm{diag}(H^{-1})}` at :math:`\hat\beta`.

    Separation.  The MLE exists iff no :math:`d \ne 0` has
    :math:`s_i x_i'd \ge 0` for all i, :math:`s_i = 2y_i-1` (Albert &
    Anderson 1984; X of full rank).  Following Konis (2007) this is the
    linear programme :math:`\max 1'Ad` s.t. :math:`Ad \ge 0`,
    :math:`|d_j| \le 1` (:math:`A = \mathrm{diag}(s)\,X` with columns scaled to
    max-abs 1; penalised coefficients fixed at 0 when ``l2 > 0``): a positive
    optimum means separation.  Separation is *complete* if
    :math:`\max t` s.t. :math:`Ad \ge t` is positive.  To name the columns,
    each column (together with the constant) is tried alone; if none
    separates alone, the support of an L1-minimal separating direction is
    reported.  The LP is solved only when needed: after Newton-Raphson has
    converged with every :math:`|x_i'\hat\beta| \le 15` a stationary point
    of the strictly concave objective exists, hence the maximum does and the
    data are not separated.  (Along a separating direction convergence by the
    decrement rule needs the perfectly predicted :math:`|\eta_i|` above
    about :math:`\log(1/(\epsilon n))`, i.e. > 19 for n up to :math:`10^6`.)
    On non-converged or extreme fits the LP costs a few seconds for
    :math:`10^5`-:math:`10^6` rows.

    References
    ----------
    Albert, A. & Anderson, J.A. (1984) Biometrika 71, 1-10.
    Konis, K. (2007) *Linear programming algorithms for detecting separated
    data in binary logistic regression models*, DPhil thesis, Oxford.
    McCullagh, P. & Nelder, J.A. (1989) *Generalized Linear Models*, 2nd ed.
    """
    if on_separation not in ("raise", "warn", "ignore"):
        raise RegressionError(f"on_separation must be 'raise', 'warn' or 'ignore', got {on_separation!r}")
    l2 = float(l2)
    if not (l2 >= 0.0 and math.isfinite(l2)):
        raise RegressionError(f"l2 must be a finite number >= 0, got {l2}")
    if int(max_iter) < 1:
        raise RegressionError(f"max_iter must be >= 1, got {max_iter}")
    Xa, names, const = _design(X, names)
    n, p = Xa.shape
    ya = _target(y, n)
    if not np.all((ya == 0) | (ya == 1)):
        raise RegressionError("y must be coded 0/1")
    if n <= p:
        raise RegressionError(f"need more observations than columns (n_samples = {n}, n_columns = {p})")
    col_norm = np.sqrt(np.sum(Xa * Xa, axis=0))
    zero = [names[j] for j in np.flatnonzero(col_norm == 0)]
    if zero:
        raise RankDeficientError(f"column(s) {zero} are identically zero")
    Xs = Xa / col_norm
    _check_full_rank(Xs, names, _singular_values(Xs))

    pen = np.ones(p) if l2 > 0 else np.zeros(p)
    if const is not None and not penalize_intercept:
        pen[const] = 0.0
    lam = l2 * pen

    def objective(b):
        eta = Xa @ b
        return _loglik(eta, ya) - 0.5 * float(b @ (lam * b))

    if start_params is None:
        beta = np.zeros(p)
    else:
        beta = np.array(start_params, dtype=np.float64).reshape(-1)
        if beta.shape != (p,) or not np.all(np.isfinite(beta)):
            raise RegressionError(f"start_params must be {p} finite numbers")
    history = []
    obj = objective(beta)
    converged = False
    it = 0
    step = np.nan
    halvings = 0
    while True:
        pr = special.expit(Xa @ beta)
        g = Xa.T @ (ya - pr) - lam * beta
        history.append(
            {
                "iteration": it,
                "llf": _loglik(Xa @ beta, ya),
                "objective": obj,
                "grad_norm": float(np.max(np.abs(g))),
                "step": step,
                "halvings": halvings,
            }
        )
        if converged or it >= max_iter:
            break
        wts = pr * (1.0 - pr)
        H = Xa.T @ (Xa * wts[:, None]) + np.diag(lam)
        try:
            cho = linalg.cho_factor(H, lower=True, check_finite=False)
        except linalg.LinAlgError:
            break  # information numerically singular (fitted p at 0/1): stop, not converged
        delta = linalg.cho_solve(cho, g, check_finite=False)
        small_step = np.max(np.abs(delta) / (1.0 + np.abs(beta))) <= tol
        small_decrement = 0.5 * float(g @ delta) <= 10.0 * _EPS * (1.0 + abs(obj))
        it += 1
        step, halvings = 1.0, 0
        while True:
            cand = beta + step * delta
            obj_new = objective(cand)
            # accept any non-decrease up to rounding error of the objective
            if obj_new >= obj - 10.0 * _EPS * (1.0 + abs(obj)) or halvings >= 50:
                break
            step *= 0.5
            halvings += 1
        converged = bool(small_step or small_decrement)
        if obj_new >= obj - 10.0 * _EPS * (1.0 + abs(obj)):
            beta, obj = cand, obj_new
        elif not converged:
            break  # 50 halvings without ascent: stuck, report non-convergence

    pr = special.expit(Xa @ beta)
    wts = pr * (1.0 - pr)
    H = Xa.T @ (Xa * wts[:, None]) + np.diag(lam)
    try:
        cov = linalg.cho_solve(linalg.cho_factor(H, lower=True, check_finite=False), np.eye(p))
        cov = 0.5 * (cov + cov.T)
    except linalg.LinAlgError:
        cov = np.full((p, p), np.nan)

    # Separation check.  A stationary point of the strictly concave objective is its
    # maximum, so if Newton converged with all fitted probabilities away from 0 and 1
    # (|eta| <= 15) the (penalised) MLE exists and there can be no separation: skip the LP.
    separation = None
    free = lam == 0.0
    eta_max = float(np.max(np.abs(Xa @ beta)))
    if on_separation != "ignore" and np.any(free) and not (converged and eta_max <= _ETA_SAFE):
        separation = _find_separation(Xa, ya, names, const, free)
        if separation is not None:
            if on_separation == "raise":
                raise SeparationError(separation)
            warnings.warn(separation.message, RuntimeWarning, stacklevel=2)
            converged = False  # no maximum exists: whatever the iterations did, it is not an MLE

    res = LogitResults(beta, cov, names, df=None)
    ybar = float(ya.mean())
    llnull = n * sum(v * math.log(v) for v in (ybar, 1.0 - ybar) if v > 0)
    llf = _loglik(Xa @ beta, ya)
    k_constant = int(const is not None)
    res.l2 = l2
    res.penalized = pen.astype(bool)
    res.nobs = n
    res.k_constant = k_constant
    res.df_model = p - k_constant
    res.df_resid = n - p
    res.llf = llf
    res.objective = obj
    res.llnull = llnull
    res.llr = 2.0 * (llf - llnull)
    res.llr_pvalue = float(stats.chi2.sf(res.llr, res.df_model)) if res.df_model > 0 else np.nan
    res.prsquared = 1.0 - llf / llnull if llnull != 0 else np.nan
    res.aic = -2.0 * llf + 2.0 * p
    res.bic = -2.0 * llf + math.log(n) * p
    res.converged = converged
    res.n_iter = it
    res.grad_norm = history[-1]["grad_norm"]
    res.history = pd.DataFrame(history).set_index("iteration")
    res.fittedvalues = pr
    res.separation = separation
    res._X = Xa
    res._const = const
    if not converged and separation is None:
        warnings.warn(
            f"Newton-Raphson did not converge in {it} iterations (max |grad| {res.grad_norm:.2e})",
            RuntimeWarning,
            stacklevel=2,
        )
    return res


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
        p = X.shape[1]
        if names is None:
            names = [f"x{j + 1}" for j in range(p)]
        design = X
        if self.fit_intercept:
            design = np.hstack([np.ones((X.shape[0], 1)), X])
            names = ["const", *names]
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
        p = X.shape[1]
        if names is None:
            names = [f"x{j + 1}" for j in range(p)]
        design = X
        if self.fit_intercept:
            design = np.hstack([np.ones((X.shape[0], 1)), X])
            names = ["const", *names]
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


# --------------------------------------------------------------------------
# Accuracy: LRE and the test designs
# --------------------------------------------------------------------------
def log_relative_error(estimate, reference, *, max_digits: float = MAX_LRE) -> np.ndarray:
    r"""Log relative error, the number of correct significant digits.

    .. math:: \mathrm{LRE} = -\log_{10}\frac{|\hat x - x|}{|x|}
              \quad(x \ne 0), \qquad -\log_{10}|\hat x - x| \quad (x = 0),

    elementwise, clipped to ``[0, max_digits]`` (``max_digits`` when
    :math:`\hat x = x`; 0 when the error exceeds 100 %).  McCullough (1998).

    Parameters
    ----------
    estimate, reference : array_like
        Same shape (broadcastable).
    max_digits : float, default 15.9
        Cap; a double carries about 15.95 significant digits.

    Returns
    -------
    numpy.ndarray
        LRE in digits (float array of the broadcast shape).
    """
    est = np.asarray(estimate, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    err = np.abs(est - ref)
    denom = np.where(ref == 0, 1.0, np.abs(ref))
    with np.errstate(divide="ignore"):
        lre = -np.log10(err / denom)
    lre = np.where(err == 0, max_digits, lre)
    lre = np.where(np.isnan(est), 0.0, lre)
    return np.clip(lre, 0.0, max_digits)


@dataclass(frozen=True)
class Design:
    """A least-squares test problem with a known answer.

    Attributes
    ----------
    name : str
    X : numpy.ndarray of shape (n, p)
        The design, constant column included.
    y : numpy.ndarray of shape (n,)
    names : tuple of str
    certified : numpy.ndarray of shape (p,)
        The exact or certified coefficients.
    source : str
        Where the answer comes from.
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    names: tuple[str, ...]
    certified: np.ndarray
    source: str


def wampler(degree: int = 5) -> Design:
    r"""Wampler-style polynomial: :math:`y = \sum_{k=0}^{d} x^k`, x = 0, 1, ..., 20.

    The design has columns :math:`1, x, \dots, x^d`; the exact coefficients
    are all 1 and the residuals exactly 0 (all values are integers below
    :math:`2^{53}`, hence exact in double precision, for ``degree <= 12``).
    ``degree=5`` is NIST StRD *Wampler1* (lower difficulty).

    Raises
    ------
    RegressionError
        ``degree`` outside 1..12.
    """
    degree = int(degree)
    if not 1 <= degree <= 12:
        raise RegressionError(f"degree must be in 1..12 (exact in double precision), got {degree}")
    x = np.arange(21.0)
    X = np.vander(x, degree + 1, increasing=True)
    y = X.sum(axis=1)
    names = ("const",) + tuple(f"x^{k}" for k in range(1, degree + 1))
    name = "Wampler1" if degree == 5 else f"Wampler-style degree {degree}"
    return Design(
        name=name, X=X, y=y, names=names, certified=np.ones(degree + 1),
        source=(
            "exact by construction; degree 5 is NIST StRD Wampler1 (Wampler 1970), "
            "https://www.itl.nist.gov/div898/strd/lls/data/Wampler1.shtml"
        ),
    )


def wampler1() -> Design:
    """NIST StRD Wampler1: :func:`wampler` with degree 5 (certified coefficients all 1)."""
    return wampler(5)


#: Longley (1967) data as distributed by NIST StRD
#: (https://www.itl.nist.gov/div898/strd/lls/data/Longley.shtml).
#: Columns: y = total employment, x1 = GNP deflator, x2 = GNP, x3 = unemployed,
#: x4 = armed forces, x5 = population (>= 14 years), x6 = year; 1947-1962.
LONGLEY_DATA = np.array(
    [
        [60323, 83.0, 234289, 2356, 1590, 107608, 1947],
        [61122, 88.5, 259426, 2325, 1456, 108632, 1948],
        [60171, 88.2, 258054, 3682, 1616, 109773, 1949],
        [61187, 89.5, 284599, 3351, 1650, 110929, 1950],
        [63221, 96.2, 328975, 2099, 3099, 112075, 1951],
        [63639, 98.1, 346999, 1932, 3594, 113270, 1952],
        [64989, 99.0, 365385, 1870, 3547, 115094, 1953],
        [63761, 100.0, 363112, 3578, 3350, 116219, 1954],
        [66019, 101.2, 397469, 2904, 3048, 117388, 1955],
        [67857, 104.6, 419180, 2822, 2857, 118734, 1956],
        [68169, 108.4, 442769, 2936, 2798, 120445, 1957],
        [66513, 110.8, 444546, 4681, 2637, 121950, 1958],
        [68655, 112.6, 482704, 3813, 2552, 123366, 1959],
        [69564, 114.2, 502601, 3931, 2514, 125368, 1960],
        [69331, 115.7, 518173, 4806, 2572, 127852, 1961],
        [70551, 116.9, 554894, 4007, 2827, 130081, 1962],
    ],
    dtype=np.float64,
)

#: NIST certified coefficients for Longley (const, x1, ..., x6), 15 digits.
LONGLEY_CERTIFIED = np.array(
    [
        -3482258.63459582,
        15.0618722713733,
        -0.358191792925910e-01,
        -2.02022980381683,
        -1.03322686717359,
        -0.511041056535807e-01,
        1829.15146461355,
    ]
)


def longley() -> Design:
    """NIST StRD Longley: employment on six macro series, 16 x 7 with constant.

    Returns
    -------
    Design
        ``certified`` holds NIST's certified values (15 significant digits).

    References
    ----------
    Longley, J.W. (1967) An appraisal of least squares programs for the
    electronic computer from the point of view of the user. JASA 62, 819-841.
    NIST StRD, https://www.itl.nist.gov/div898/strd/lls/data/Longley.shtml
    """
    X = np.hstack([np.ones((16, 1)), LONGLEY_DATA[:, 1:]])
    names = ("const", "GNPDEFL", "GNP", "UNEMP", "ARMED", "POP", "YEAR")
    return Design(
        name="Longley", X=X, y=LONGLEY_DATA[:, 0].copy(), names=names, certified=LONGLEY_CERTIFIED.copy(),
        source="NIST StRD Longley (Longley 1967), certified values",
    )


def collinear(log10_kappa: float = 7.0, *, n: int = 50, seed: int = 0) -> Design:
    r"""A synthetic nearly collinear design with an exactly known answer.

    Columns: constant, :math:`x_1`, :math:`x_2 = x_1 + \delta z` and
    :math:`x_3`, with :math:`x_1, x_3` uniform on the grid
    :math:`1.25 + 2^{-44}\mathbb{Z}` in [1.25, 1.75), :math:`z_i = \pm1` at
    random and :math:`\delta = 2^{-k}`; :math:`y = 1 + x_1 + x_2 + x_3`.
    Every value (y included) is a dyadic rational with fewer than 53
    significant bits, hence exact in double precision, so the exact
    least-squares solution is (1, 1, 1, 1) with zero residual.  The products
    in :math:`X'X` need about 90 bits, so forming the normal equations rounds
    as it does on real data.  k (at most 44) is chosen so that
    :math:`\kappa_2` of the column-scaled design is close to
    :math:`10^{\text{log10\_kappa}}` (within a factor of about 2).

    Parameters
    ----------
    log10_kappa : float, default 7.0
        Target :math:`\log_{10}` condition number of the column-scaled
        design, between 1 and 13.
    n : int, default 50
    seed : int, default 0
    """
    if not 1.0 <= log10_kappa <= 13.0:
        raise RegressionError(f"log10_kappa must be in [1, 13], got {log10_kappa}")
    rng = np.random.default_rng(seed)
    grid = 2.0**-44
    x1 = 1.25 + np.floor(rng.random(n) * (0.5 / grid)) * grid
    x3 = 1.25 + np.floor(rng.random(n) * (0.5 / grid)) * grid
    z = rng.choice([-1.0, 1.0], size=n)

    def build(k):
        return np.column_stack([np.ones(n), x1, x1 + z * 2.0**-k, x3])

    def kappa(X):
        sv = linalg.svdvals(X / np.linalg.norm(X, axis=0))
        return sv[0] / sv[-1]

    k0 = 4
    k = k0 + int(round((log10_kappa - math.log10(kappa(build(k0)))) / math.log10(2.0)))
    k = max(0, min(k, 44))
    X = build(k)
    y = X.sum(axis=1)
    return Design(
        name=f"collinear (delta=2^-{k})", X=X, y=y, names=("const", "x1", "x2", "x3"), certified=np.ones(4),
        source="synthetic, exact by construction (dyadic values, zero residual)",
    )


def _default_designs() -> list[Design]:
    return [wampler1(), wampler(7), longley(), collinear(7.0)]


def accuracy_table(designs: Sequence[Design] | None = None, methods: Sequence[str] = ("normal", "qr")) -> pd.DataFrame:
    r"""Correct digits of each least-squares method on designs with known answers.

    For each design and method, the minimum over coefficients of
    :func:`log_relative_error` of :func:`ols`'s estimate against
    ``design.certified``.  A method that fails (Cholesky breakdown of
    :math:`X'X`) scores 0 digits.

    Parameters
    ----------
    designs : sequence of Design, optional
        Default: Wampler1, the degree-7 Wampler-style polynomial, Longley and
        ``collinear(7.0)``.
    methods : sequence of {"normal", "qr"}, default ("normal", "qr")
        ``"qr"`` is the default QR solve (one refinement step); the column
        ``lre_qr_plain`` (no refinement) is always added.

    Returns
    -------
    pandas.DataFrame
        Indexed by design name; columns ``n``, ``p``, ``log10_cond``
        (:math:`\log_{10}\kappa_2` of the column-scaled design),
        ``log10_cond_raw`` (of the raw design), ``lre_<method>`` per method and
        ``lre_qr_plain``.  Rule of thumb: ``lre_qr`` :math:`\approx 15.95 -
        \log_{10}\kappa` and ``lre_normal`` :math:`\approx 15.95 -
        2\log_{10}\kappa` (with componentwise losses beyond the normwise
        :math:`\kappa` for badly graded columns such as polynomials).
    """
    if designs is None:
        designs = _default_designs()
    rows = []
    for d in designs:
        Xs = d.X / np.linalg.norm(d.X, axis=0)
        row = {
            "n": d.X.shape[0],
            "p": d.X.shape[1],
            "log10_cond": math.log10(np.linalg.cond(Xs)),
            "log10_cond_raw": math.log10(np.linalg.cond(d.X)),
        }
        runs = [(m, m, None) for m in methods] + [("qr_plain", "qr", 0)]
        for label, m, refine in runs:
            try:
                est = ols(d.X, d.y, method=m, names=list(d.names), refine=refine).params.to_numpy()
                row[f"lre_{label}"] = float(np.min(log_relative_error(est, d.certified)))
            except RankDeficientError:
                row[f"lre_{label}"] = 0.0
        rows.append(row)
    table = pd.DataFrame(rows, index=pd.Index([d.name for d in designs], name="design"))
    return table.astype({"n": int, "p": int})
