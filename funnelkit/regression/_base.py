"""Shared pieces of the regression package: errors, input handling, results base.

The error classes (:class:`RegressionError`, :class:`RankDeficientError`,
:class:`SeparationError` with its :class:`SeparationInfo`), :func:`add_constant`,
the private validation of designs and targets (with the rank check) and
``_CoefResults``, the coefficient-table machinery that :class:`OLSResults` and
:class:`LogitResults` share.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import linalg, stats

from funnelkit.errors import FunnelkitError

__all__ = [
    "RegressionError",
    "RankDeficientError",
    "SeparationError",
    "SeparationInfo",
    "add_constant",
]

_EPS = np.finfo(np.float64).eps

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


def _unit_columns(Xw: np.ndarray, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scale a design's columns to unit 2-norm after checking it can identify its coefficients.

    Parameters
    ----------
    Xw : numpy.ndarray of shape (n, p)
        The (weighted) design.
    names : sequence of str
        Column names, for the error messages.

    Returns
    -------
    Xs : numpy.ndarray of shape (n, p)
        ``Xw`` with unit-norm columns.
    col_norm : numpy.ndarray of shape (p,)
        The column norms divided out.
    sv : numpy.ndarray of shape (p,)
        Singular values of ``Xs``, largest first.

    Raises
    ------
    RegressionError
        ``n <= p``.
    RankDeficientError
        A column is identically zero, or ``Xs`` is numerically rank deficient.
    """
    n, p = Xw.shape
    if n <= p:
        raise RegressionError(f"need more observations than columns (n_samples = {n}, n_columns = {p})")
    col_norm = np.sqrt(np.sum(Xw * Xw, axis=0))
    zero = [names[j] for j in np.flatnonzero(col_norm == 0)]
    if zero:
        raise RankDeficientError(f"column(s) {zero} are identically zero")
    Xs = Xw / col_norm
    sv = _singular_values(Xs)
    _check_full_rank(Xs, names, sv)
    return Xs, col_norm, sv


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
    """Shared coefficient table machinery: the fitted ``params`` and their covariance, and
    what derives from them (``bse``, Wald statistics, p-values, intervals).

    Parameters
    ----------
    params : numpy.ndarray of shape (p,)
        The estimates.
    cov : numpy.ndarray of shape (p, p)
        Their estimated covariance.
    names : list of str
        Column names.
    df : float or None
        Degrees of freedom of the Student-t reference distribution; None for the standard normal.
    """

    _stat_label = "t"

    # dimensions, from the design each results class keeps as ``_data`` (its ``X`` and ``const``)
    @property
    def nobs(self) -> int:
        """Number of observations n."""
        return self._data.X.shape[0]

    @property
    def k_constant(self) -> int:
        """1 if the design has a constant column, else 0."""
        return int(self._data.const is not None)

    @property
    def df_model(self) -> int:
        """p - k_constant."""
        return len(self._names) - self.k_constant

    @property
    def df_resid(self) -> int:
        """n - p."""
        return self.nobs - len(self._names)

    # information criteria, from the log-likelihood ``llf`` each results class defines
    @property
    def aic(self) -> float:
        """``-2 llf + 2 p``."""
        return -2.0 * self.llf + 2.0 * len(self._names)

    @property
    def bic(self) -> float:
        """``-2 llf + p log n``."""
        return -2.0 * self.llf + math.log(self.nobs) * len(self._names)

    def __init__(self, params: np.ndarray, cov: np.ndarray, names: list[str], df: float | None):
        self._names = list(names)
        self.params = pd.Series(params, index=self._names, name="coef")
        self._cov = cov
        self._df = df

    @property
    def bse(self) -> pd.Series:
        """Standard errors: square roots of the diagonal of ``cov_params()``."""
        return pd.Series(np.sqrt(np.diag(self._cov)), index=self._names, name="std_err")

    def _linear_predictor(self, X) -> np.ndarray:
        """``X @ params`` for a design with the model's columns."""
        arr = np.asarray(X, dtype=np.float64)
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.shape[1] != len(self._names):
            raise RegressionError(f"X has {arr.shape[1]} columns, the model has {len(self._names)}")
        return arr @ self.params.to_numpy()

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
