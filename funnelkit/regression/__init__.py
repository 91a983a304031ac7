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

Modules
-------
One job each; import from the package, which re-exports every public name:

* ``_base`` -- errors, :func:`add_constant`, design/target validation with the
  rank check, and the coefficient-table base of the results classes;
* ``least_squares`` -- :func:`ols`, :class:`OLSResults`;
* ``logistic`` -- :func:`logit`, :class:`LogitResults`, separation detection;
* ``svm`` -- :class:`LinearSVM` and its dual coordinate descent;
* ``estimators`` -- :class:`LeastSquares`, :class:`LogisticIRLS`;
* ``accuracy`` -- :func:`log_relative_error`, :func:`accuracy_table` and the
  test designs.
"""

from ._base import (
    RankDeficientError,
    RegressionError,
    SeparationError,
    SeparationInfo,
    add_constant,
)
from .accuracy import (
    LONGLEY_CERTIFIED,
    LONGLEY_DATA,
    MAX_LRE,  # the digits cap of log_relative_error: importable here, not in __all__
    Design,
    accuracy_table,
    collinear,
    log_relative_error,
    longley,
    wampler,
    wampler1,
)
from .estimators import LeastSquares, LogisticIRLS
from .least_squares import OLSResults, ols
from .logistic import LogitResults, logit
from .svm import LinearSVM

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
