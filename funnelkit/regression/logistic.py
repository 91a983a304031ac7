"""Logistic regression by Newton-Raphson / IRLS: :func:`logit`, :class:`LogitResults`
and the linear-programming check for (quasi-)complete separation."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from functools import cached_property
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import linalg, optimize, special, stats

from ._base import (
    _EPS,
    RegressionError,
    SeparationError,
    SeparationInfo,
    _CoefResults,
    _design,
    _target,
    _unit_columns,
)

__all__ = ["logit", "LogitResults"]

#: Linear predictors up to this size (fitted p in [3e-7, 1 - 3e-7]) cannot come from a
#: Newton run that "converged" along a separating direction (see :func:`logit`).
_ETA_SAFE = 15.0

# --------------------------------------------------------------------------
# Logistic regression
# --------------------------------------------------------------------------
def _log1pexp(eta: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, eta)


def _loglik(eta: np.ndarray, y: np.ndarray) -> float:
    return float(np.sum(y * eta - _log1pexp(eta)))


def _objective(X: np.ndarray, y: np.ndarray, lam: np.ndarray, beta: np.ndarray) -> float:
    r"""The maximised function :math:`\ell(\beta) - \tfrac12\beta'\mathrm{diag}(\lambda)\beta`."""
    return _loglik(X @ beta, y) - 0.5 * float(beta @ (lam * beta))


class _BinaryData(NamedTuple):
    """A validated logistic problem: what :func:`logit` fits and :class:`LogitResults` keeps."""

    X: np.ndarray
    """The design as given, shape (n, p)."""
    y: np.ndarray
    """The 0/1 outcomes, shape (n,)."""
    names: list[str]
    """Column names."""
    const: int | None
    """Index of the constant column, or None."""


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
    d = _lp_separated(A, free)
    if d is None:
        return None
    d_complete = _complete_direction(A, free)
    complete = d_complete is not None
    if complete:
        d = d_complete
    d_show, cols, alone = _sparse_direction(A, free, const, d)
    columns = [names[j] for j in cols]
    with_const = alone and const is not None and const not in cols and abs(d_show[const]) > 1e-9

    n_perfect = int(np.sum(A @ d > 1e-9))
    direction = d_show / scale
    direction = direction / np.max(np.abs(direction))
    kind = "complete" if complete else "quasi-complete"
    quoted = ", ".join(repr(c) for c in columns)
    if alone and cols == [const]:
        what = f"the outcome is constant (all {int(y[0])}): the intercept {names[const]!r} diverges"
    elif alone:
        what = (
            ("each of the columns " if len(columns) > 1 else "column ")
            + quoted
            + (f" (with the intercept {names[const]!r})" if with_const else "")
            + " separates the outcome on its own"
        )
    else:
        what = f"a linear combination of the columns {quoted} separates the outcome"
    message = (
        f"{kind} separation: {what}; {n_perfect} of {len(y)} observations are predicted perfectly"
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


def _complete_direction(A: np.ndarray, free: np.ndarray):
    """A direction with ``A d > 0`` in every row (complete separation), or None.

    The LP: max t s.t. A d >= t, |d| <= 1 (d_j = 0 for non-free j), 0 <= t <= 1.
    """
    p = A.shape[1]
    bounds = [(-1.0, 1.0) if free[j] else (0.0, 0.0) for j in range(p)] + [(0.0, 1.0)]
    c = np.zeros(p + 1)
    c[-1] = -1.0
    lp = optimize.linprog(
        c=c, A_ub=np.hstack([-A, np.ones((A.shape[0], 1))]), b_ub=np.zeros(A.shape[0]),
        bounds=bounds, method="highs",
    )
    if lp.status == 0 and -lp.fun > 1e-9 and np.min(A @ lp.x[:p]) > 0:
        return lp.x[:p]
    return None


def _sparse_direction(A: np.ndarray, free: np.ndarray, const: int | None, d: np.ndarray):
    """A separating direction on few columns, to name them in the message.

    The constant alone is tried first (if free), then each free column alone (with
    the constant, if free).

    Returns
    -------
    direction : numpy.ndarray
        The direction to show.
    columns : list of int
        The columns that separate on their own (``alone``: ``direction`` is the
        first one's), else the support of an L1-minimal separating direction.
    alone : bool
    """
    p = A.shape[1]
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
            if _lp_separated(A, sub) is not None:
                singles.append(j)
    if singles:
        sub = base.copy()
        sub[singles[0]] = True
        return _lp_separated(A, sub), singles, True
    d_show = _l1_minimal_direction(A, free, fallback=d)
    big = np.abs(d_show) > 1e-9 * np.max(np.abs(d_show))
    return d_show, [int(j) for j in np.flatnonzero(big)], False


def _l1_minimal_direction(A: np.ndarray, free: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """min |d|_1 s.t. A d >= 0, 1'A d >= 1 over the free columns (``fallback`` if infeasible)."""
    p = A.shape[1]
    idx = np.flatnonzero(free)
    Af = A[:, idx]
    k = idx.size
    A_ub = np.vstack([np.hstack([-Af, Af]), -np.hstack([Af.sum(0), -Af.sum(0)])[None, :]])
    b_ub = np.concatenate([np.zeros(A.shape[0]), [-1.0]])
    lp = optimize.linprog(c=np.ones(2 * k), A_ub=A_ub, b_ub=b_ub, bounds=[(0, None)] * (2 * k), method="highs")
    if lp.status != 0:  # pragma: no cover - a separating direction exists, so this LP is feasible
        return fallback
    d = np.zeros(p)
    d[idx] = lp.x[:k] - lp.x[k:]
    return d


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

    def __init__(
        self,
        params: np.ndarray,
        cov: np.ndarray,
        data: _BinaryData,
        *,
        l2: float,
        penalized: np.ndarray,
        converged: bool,
        n_iter: int,
        history: pd.DataFrame,
        separation: SeparationInfo | None,
    ):
        super().__init__(params, cov, data.names, df=None)
        self._data = data
        self.l2 = l2
        self.penalized = penalized
        self.converged = converged
        self.n_iter = n_iter
        self.history = history
        self.separation = separation

    # fit -------------------------------------------------------------------
    @cached_property
    def fittedvalues(self) -> np.ndarray:
        r"""Fitted probabilities :math:`\hat p_i = 1/(1+e^{-x_i'\hat\beta})`."""
        return special.expit(self._data.X @ self.params.to_numpy())

    @cached_property
    def llf(self) -> float:
        """Log-likelihood at the estimates, without the penalty."""
        return _loglik(self._data.X @ self.params.to_numpy(), self._data.y)

    @cached_property
    def objective(self) -> float:
        """Penalised log-likelihood at the estimates (the maximised function)."""
        return _objective(self._data.X, self._data.y, self.l2 * self.penalized, self.params.to_numpy())

    @cached_property
    def llnull(self) -> float:
        """Log-likelihood of the constant-only model."""
        ybar = float(self._data.y.mean())
        return self.nobs * sum(v * math.log(v) for v in (ybar, 1.0 - ybar) if v > 0)

    @property
    def llr(self) -> float:
        """Likelihood-ratio statistic ``2 (llf - llnull)``."""
        return 2.0 * (self.llf - self.llnull)

    @property
    def llr_pvalue(self) -> float:
        """Chi-squared (``df_model``) p-value of :attr:`llr`; NaN when ``df_model = 0``."""
        return float(stats.chi2.sf(self.llr, self.df_model)) if self.df_model > 0 else np.nan

    @property
    def prsquared(self) -> float:
        """McFadden's pseudo R-squared ``1 - llf / llnull``."""
        return 1.0 - self.llf / self.llnull if self.llnull != 0 else np.nan

    @property
    def grad_norm(self) -> float:
        """Largest absolute gradient component of the objective at the last iterate."""
        return float(self.history["grad_norm"].iloc[-1])

    # use -------------------------------------------------------------------
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
        return special.expit(self._linear_predictor(X))

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

    def marginal_effects(self, alpha: float = 0.05, dummy: bool = True) -> pd.DataFrame:
        r"""Average marginal effects with delta-method standard errors.

        For each non-constant continuous column j, the average derivative

        .. math:: \mathrm{AME}_j = \frac1n\sum_i \frac{\partial p_i}{\partial x_{ij}}
                  = \frac1n\sum_i \hat p_i(1-\hat p_i)\,\hat\beta_j

        (probability per unit of column j), with gradient
        :math:`\partial\mathrm{AME}_j/\partial\beta_k = \frac1n\sum_i
        [\hat p_i(1-\hat p_i)\delta_{jk} + \hat\beta_j\hat p_i(1-\hat p_i)(1-2\hat p_i)x_{ik}]`.
        With ``dummy=True`` a 0/1 column gets the average *discrete change*
        :math:`\frac1n\sum_i [p_i(x_{ij}=1) - p_i(x_{ij}=0)]` (the change in
        probability of switching the indicator on), with gradient
        :math:`\frac1n\sum_i [p^1_i(1-p^1_i)x^1_i - p^0_i(1-p^0_i)x^0_i]`.
        :math:`\mathrm{Var}(\mathrm{AME}) = J V J'` with V = ``cov_params()``
        (delta method; statsmodels' ``get_margeff(at="overall", dummy=...)``).

        Returns
        -------
        pandas.DataFrame
            Columns ``dy_dx``, ``std_err``, ``z``, ``p_value``, ``ci_lower``,
            ``ci_upper``, indexed by the non-constant columns.
        """
        beta = self.params.to_numpy()
        X = self._data.X
        pr = special.expit(X @ beta)
        w = pr * (1.0 - pr)
        n = X.shape[0]
        keep = [j for j in range(len(beta)) if j != self._data.const]
        ame = w.mean() * beta
        J = np.diag(np.full(len(beta), w.mean())) + np.outer(beta, (w * (1.0 - 2.0 * pr)) @ X / n)
        if dummy:
            for j in keep:
                if not np.isin(X[:, j], (0.0, 1.0)).all():
                    continue
                on, off = X.copy(), X.copy()
                on[:, j], off[:, j] = 1.0, 0.0
                p_on, p_off = special.expit(on @ beta), special.expit(off @ beta)
                ame[j] = (p_on - p_off).mean()
                J[j] = ((p_on * (1 - p_on)) @ on - (p_off * (1 - p_off)) @ off) / n
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
    l2 = _check_options(on_separation, l2, max_iter)
    data = _binary_data(X, y, names)
    penalized = _penalized(data, l2, penalize_intercept)
    lam = l2 * penalized
    beta, converged, n_iter, history = _newton_raphson(
        data, lam, _start(start_params, len(data.names)), max_iter=max_iter, tol=tol
    )
    cov = _inverse_information(data.X, beta, lam)
    separation = None
    if on_separation != "ignore":
        separation = _check_separation(data, lam, beta, converged, raise_error=on_separation == "raise")
    res = LogitResults(
        beta, cov, data, l2=l2, penalized=penalized,
        # no maximum exists under separation: whatever the iterations did, it is not an MLE
        converged=converged and separation is None,
        n_iter=n_iter, history=history, separation=separation,
    )
    if not converged and separation is None:
        warnings.warn(
            f"Newton-Raphson did not converge in {n_iter} iterations (max |grad| {res.grad_norm:.2e})",
            RuntimeWarning,
            stacklevel=2,
        )
    return res


def _check_options(on_separation: str, l2: float, max_iter: int) -> float:
    """Validate :func:`logit`'s options; return ``l2`` as a float."""
    if on_separation not in ("raise", "warn", "ignore"):
        raise RegressionError(f"on_separation must be 'raise', 'warn' or 'ignore', got {on_separation!r}")
    l2 = float(l2)
    if not (l2 >= 0.0 and math.isfinite(l2)):
        raise RegressionError(f"l2 must be a finite number >= 0, got {l2}")
    if int(max_iter) < 1:
        raise RegressionError(f"max_iter must be >= 1, got {max_iter}")
    return l2


def _binary_data(X, y, names: Sequence[str] | None) -> _BinaryData:
    """Validate the design (full column rank, n > p) and the 0/1 outcomes."""
    Xa, names, const = _design(X, names)
    ya = _target(y, Xa.shape[0])
    if not np.all((ya == 0) | (ya == 1)):
        raise RegressionError("y must be coded 0/1")
    _unit_columns(Xa, names)
    return _BinaryData(Xa, ya, names, const)


def _penalized(data: _BinaryData, l2: float, penalize_intercept: bool) -> np.ndarray:
    """Which coefficients ``l2`` applies to: none without a penalty, else all but the
    constant (unless ``penalize_intercept``)."""
    penalized = np.full(len(data.names), l2 > 0)
    if data.const is not None and not penalize_intercept:
        penalized[data.const] = False
    return penalized


def _start(start_params, p: int) -> np.ndarray:
    """The first iterate: ``start_params``, or zeros."""
    if start_params is None:
        return np.zeros(p)
    beta = np.array(start_params, dtype=np.float64).reshape(-1)
    if beta.shape != (p,) or not np.all(np.isfinite(beta)):
        raise RegressionError(f"start_params must be {p} finite numbers")
    return beta


def _no_worse(new: float, old: float) -> bool:
    """``new`` does not decrease the objective beyond its rounding error."""
    return new >= old - 10.0 * _EPS * (1.0 + abs(old))


def _information(X: np.ndarray, pr: np.ndarray, lam: np.ndarray) -> np.ndarray:
    r"""Negative Hessian of the objective, :math:`X'WX + \mathrm{diag}(\lambda)`, at fitted
    probabilities ``pr`` (:math:`W = \mathrm{diag}(p_i(1-p_i))`)."""
    wts = pr * (1.0 - pr)
    return X.T @ (X * wts[:, None]) + np.diag(lam)


def _newton_raphson(data: _BinaryData, lam: np.ndarray, beta: np.ndarray, *, max_iter: int, tol: float):
    """Maximise the objective from ``beta`` by Newton steps with step halving (see :func:`logit`).

    Returns
    -------
    beta : numpy.ndarray
        The last accepted iterate.
    converged : bool
        The step or the Newton decrement fell below the tolerance.
    n_iter : int
        Newton steps taken.
    history : pandas.DataFrame
        One row per recorded iterate, as :attr:`LogitResults.history`.
    """
    X, y = data.X, data.y
    obj = _objective(X, y, lam, beta)
    history = []
    converged, it, step, halvings = False, 0, np.nan, 0
    while True:
        pr = special.expit(X @ beta)
        g = X.T @ (y - pr) - lam * beta
        history.append(
            {
                "iteration": it,
                "llf": _loglik(X @ beta, y),
                "objective": obj,
                "grad_norm": float(np.max(np.abs(g))),
                "step": step,
                "halvings": halvings,
            }
        )
        if converged or it >= max_iter:
            break
        try:
            cho = linalg.cho_factor(_information(X, pr, lam), lower=True, check_finite=False)
        except linalg.LinAlgError:
            break  # information numerically singular (fitted p at 0/1): stop, not converged
        delta = linalg.cho_solve(cho, g, check_finite=False)
        converged = bool(
            np.max(np.abs(delta) / (1.0 + np.abs(beta))) <= tol  # small step
            or 0.5 * float(g @ delta) <= 10.0 * _EPS * (1.0 + abs(obj))  # small decrement
        )
        it += 1
        cand, obj_new, step, halvings = _halve_step(data, lam, beta, delta, obj)
        if _no_worse(obj_new, obj):
            beta, obj = cand, obj_new
        elif not converged:
            break  # 50 halvings without ascent: stuck, report non-convergence
    return beta, converged, it, pd.DataFrame(history).set_index("iteration")


def _halve_step(data: _BinaryData, lam: np.ndarray, beta: np.ndarray, delta: np.ndarray, obj: float):
    """The first of ``beta + delta``, ``beta + delta/2``, ... (at most 50 halvings) that does not
    decrease the objective ``obj`` at ``beta``: (candidate, its objective, step, halvings)."""
    step, halvings = 1.0, 0
    while True:
        cand = beta + step * delta
        obj_new = _objective(data.X, data.y, lam, cand)
        if _no_worse(obj_new, obj) or halvings >= 50:
            return cand, obj_new, step, halvings
        step *= 0.5
        halvings += 1


def _inverse_information(X: np.ndarray, beta: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """Covariance of the estimates: the inverse information at ``beta`` (NaN where singular)."""
    p = X.shape[1]
    information = _information(X, special.expit(X @ beta), lam)
    try:
        cov = linalg.cho_solve(linalg.cho_factor(information, lower=True, check_finite=False), np.eye(p))
    except linalg.LinAlgError:
        return np.full((p, p), np.nan)
    return 0.5 * (cov + cov.T)


def _check_separation(
    data: _BinaryData, lam: np.ndarray, beta: np.ndarray, converged: bool, *, raise_error: bool
) -> SeparationInfo | None:
    """Run the separation LP when the fit leaves room for it; raise or warn on what it finds.

    A stationary point of the strictly concave objective is its maximum, so if Newton
    converged with all fitted probabilities away from 0 and 1 (``|eta| <= 15``) the
    (penalised) MLE exists and there can be no separation: the LP is skipped.
    """
    free = lam == 0.0
    if not np.any(free) or (converged and float(np.max(np.abs(data.X @ beta))) <= _ETA_SAFE):
        return None
    separation = _find_separation(data.X, data.y, data.names, data.const, free)
    if separation is not None:
        if raise_error:
            raise SeparationError(separation)
        warnings.warn(separation.message, RuntimeWarning, stacklevel=3)
    return separation
