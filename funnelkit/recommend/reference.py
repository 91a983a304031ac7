r"""Exact implicit-feedback ALS in plain NumPy: a reference for ``implicit`` and for the report.

This is Hu, Koren & Volinsky (2008), "Collaborative Filtering for Implicit Feedback Datasets",
written for clarity rather than speed (problems up to a few hundred users and items), with the
conventions of the ``implicit`` library (0.7.x) so that both give the same factors.

Model and objective
-------------------
Each user ``u`` gets a factor vector :math:`x_u \in \mathbb{R}^f` and each item ``i`` a vector
:math:`y_i \in \mathbb{R}^f`; stacked as rows they form ``X`` (users × f) and ``Y`` (items × f).
Every (user, item) cell, observed or not, has a preference and a confidence:

* observed cell (stored value :math:`c_{ui} > 0` in the confidence matrix): :math:`p_{ui} = 1`
  with confidence :math:`c_{ui}`;
* unobserved cell: :math:`p_{ui} = 0` with confidence 1.

ALS minimises

.. math::

    L(X, Y) = \sum_{u,i} c_{ui}\,(p_{ui} - x_u^\top y_i)^2
              + \lambda \Big(\sum_u \lVert x_u\rVert^2 + \sum_i \lVert y_i\rVert^2\Big).

Half-step: the exact minimiser over X with Y fixed
---------------------------------------------------
With ``Y`` fixed, ``L`` is a sum of independent quadratics, one per user. Writing
:math:`C_u = \operatorname{diag}(c_{u1}, \dots, c_{un})` and :math:`p_u \in \{0, 1\}^n` for user
``u``'s row (n = number of items),

.. math::

    L_u(x) = (p_u - Y x)^\top C_u (p_u - Y x) + \lambda \lVert x\rVert^2,
    \qquad
    \nabla L_u(x) = -2\,Y^\top C_u (p_u - Y x) + 2 \lambda x.

Setting the gradient to zero gives the normal equations

.. math::

    (Y^\top C_u Y + \lambda I)\, x_u = Y^\top C_u\, p_u .

The Hessian :math:`2(Y^\top C_u Y + \lambda I)` is positive definite when :math:`\lambda > 0`
and all confidences are non-negative, so this stationary point is the unique minimiser: every
half-step can only lower ``L``, and a full iteration (users, then items with the *new* user
factors) is one round of block coordinate descent, so the loss never increases.

The trick that makes it cheap. :math:`C_u - I` is zero except on the items ``u`` observed, and
:math:`p_u` is zero off them, so

.. math::

    Y^\top C_u Y = Y^\top Y + \sum_{i \in \mathrm{obs}(u)} (c_{ui} - 1)\, y_i y_i^\top,
    \qquad
    Y^\top C_u p_u = \sum_{i \in \mathrm{obs}(u)} c_{ui}\, y_i .

:math:`Y^\top Y` is computed once per half-step (:math:`O(f^2 n_\mathrm{items})`); each user then
costs :math:`O(f^2 n_u)` to add its corrections plus :math:`O(f^3)` for the Cholesky solve, instead
of :math:`O(f^2 n_\mathrm{items})` to form :math:`Y^\top C_u Y` directly. A user with no observed
item has a zero right-hand side, hence :math:`x_u = 0` (``implicit`` sets it to zero explicitly).
Items are updated the same way with the roles of ``X`` and ``Y`` swapped (transpose the matrix).

Conventions of ``implicit`` (and of this module)
------------------------------------------------
* The confidence of an observed cell is :math:`c_{ui} = \alpha r_{ui}` (``alpha`` times the stored
  value), *not* the paper's :math:`1 + \alpha r_{ui}`; unobserved cells keep confidence 1. To get
  the paper's weights, pass :math:`r'_{ui} = (1 + \alpha r_{ui}) / \alpha`, so that
  :math:`\alpha r'_{ui} = 1 + \alpha r_{ui}`. (With ``implicit``'s convention an observed cell with
  :math:`\alpha r_{ui} < 1` weighs *less* than an unobserved one.)
* The reported training loss is :math:`L` divided by the total confidence mass
  :math:`\sum_{u,i} c_{ui} = \sum_{\mathrm{obs}} c_{ui} + n_\mathrm{users} n_\mathrm{items} - \mathrm{nnz}`
  (see :func:`als_loss`).
* The user factors are solved first, then the item factors from the new user factors. The
  starting user factors therefore do not affect the exact solver (they only warm-start
  ``implicit``'s conjugate-gradient solver); the starting item factors do.

Differences from ``implicit`` on unusual input (checked against implicit 0.7.3):

* Negative values are rejected here. ``implicit`` reads them as :math:`p_{ui} = 0` with
  confidence :math:`|c_{ui}|` in its solvers, but its ``calculate_loss`` then adds
  :math:`|c_{ui}|` for each such cell as though :math:`p_{ui}` were 1.
* Explicitly stored zeros are dropped here (the cell is unobserved: confidence 1). ``implicit``
  keeps them as observed cells with preference 0 and confidence 0 (they add
  :math:`-y_i y_i^\top` to the normal matrix) and counts them in ``nnz``. Call
  ``matrix.eliminate_zeros()`` before handing a matrix to both.
* ``implicit`` casts the confidence matrix to float32 (and the regularization to float32 in its
  loss and its conjugate-gradient solver) even with ``dtype=np.float64``; this module works in
  float64 throughout. The factors agree to float64 rounding when ``alpha`` times the values is
  exactly representable in float32 (integers times 2.5, say) and to about 1e-7 otherwise.
* Duplicate entries of a non-canonical CSR matrix are summed here (SciPy's meaning), whereas
  ``implicit`` would treat each as a separate observation.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from numbers import Integral, Real

import numpy as np
import scipy.linalg
import scipy.sparse as sp

__all__ = ["ExactALSResult", "als_loss", "als_step", "exact_als"]


# --------------------------------------------------------------------------- validation helpers


def _check_csr(matrix, name: str) -> sp.csr_matrix:
    """A canonical float64 copy of a non-negative, finite CSR matrix (zeros dropped)."""
    if not (sp.issparse(matrix) and matrix.format == "csr"):
        kind = type(matrix).__name__
        hint = " (convert it with .tocsr())" if sp.issparse(matrix) else ""
        raise ValueError(f"{name} must be a scipy.sparse CSR matrix, got {kind}{hint}")
    if matrix.ndim != 2:
        raise ValueError(f"{name} must be 2-dimensional, got shape {matrix.shape}")
    if matrix.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold real numbers, got dtype {matrix.dtype}")
    n_rows, n_cols = matrix.shape
    if n_rows == 0 or n_cols == 0:
        raise ValueError(f"{name} must have at least one row and one column, got shape {matrix.shape}")
    checked = sp.csr_matrix(matrix, dtype=np.float64, copy=True)
    checked.sum_duplicates()  # also sorts the indices
    if not np.all(np.isfinite(checked.data)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if np.any(checked.data < 0):
        raise ValueError(
            f"{name} contains negative values; only non-negative confidences are supported "
            "(implicit's 'negative = disliked' convention is not)"
        )
    checked.eliminate_zeros()
    return checked


def _check_factors(factors, name: str, n_rows: int, n_factors: int | None = None) -> np.ndarray:
    """A float64 copy of a finite (n_rows, n_factors) factor array."""
    array = np.array(factors, dtype=np.float64, copy=True)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-dimensional array, got shape {array.shape}")
    if array.shape[0] != n_rows:
        raise ValueError(f"{name} must have {n_rows} rows, got shape {array.shape}")
    if n_factors is not None and array.shape[1] != n_factors:
        raise ValueError(f"{name} must have {n_factors} columns (factors), got shape {array.shape}")
    if array.shape[1] == 0:
        raise ValueError(f"{name} must have at least one column (factor)")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def _check_regularization(regularization) -> float:
    if isinstance(regularization, bool) or not isinstance(regularization, Real):
        raise ValueError(f"regularization must be a real number, got {regularization!r}")
    if not (np.isfinite(regularization) and regularization >= 0):
        raise ValueError(f"regularization must be finite and >= 0, got {regularization!r}")
    return float(regularization)


def _check_positive_int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(value)


# --------------------------------------------------------------------------- the algorithm


def _weighted_objective(confidence: sp.csr_matrix, X: np.ndarray, Y: np.ndarray, lam: float) -> float:
    """Unnormalised L(X, Y) for a validated confidence matrix (see the module docstring)."""
    users = np.repeat(np.arange(confidence.shape[0]), np.diff(confidence.indptr))
    items = confidence.indices
    c = confidence.data
    score = np.einsum("kf,kf->k", X[users], Y[items])  # x_u . y_i on the observed cells
    # Price every cell as unobserved (c = 1, p = 0): sum_{u,i} (x_u . y_i)^2 = trace(X'X Y'Y) ...
    all_cells_unobserved = float(np.sum((X.T @ X) * (Y.T @ Y)))
    # ... then replace the observed cells' term s^2 by c (1 - s)^2.
    observed_correction = float(np.sum(c * (1.0 - score) ** 2 - score**2))
    penalty = lam * (float(np.sum(X**2)) + float(np.sum(Y**2)))
    return all_cells_unobserved + observed_correction + penalty


def _total_confidence(confidence: sp.csr_matrix) -> float:
    """sum_{u,i} c_ui: the observed confidences plus 1 for every unobserved cell."""
    n_users, n_items = confidence.shape
    return float(confidence.data.sum()) + n_users * n_items - confidence.nnz


def als_loss(confidence: sp.csr_matrix, user_factors, item_factors, regularization) -> float:
    r"""``implicit``'s normalised training loss.

    .. math::

        \frac{\sum_{u,i} c_{ui} (p_{ui} - x_u^\top y_i)^2
              + \lambda (\sum_u \lVert x_u\rVert^2 + \sum_i \lVert y_i\rVert^2)}
             {\sum_{\mathrm{obs}} c_{ui} + n_\mathrm{users} n_\mathrm{items} - \mathrm{nnz}}

    where unobserved cells have :math:`c_{ui} = 1, p_{ui} = 0` and observed ones
    :math:`p_{ui} = 1`. ``confidence`` is the already alpha-scaled (users × items) CSR matrix.
    Equals ``implicit.cpu._als.calculate_loss`` (and the loss ``fit`` reports) for
    non-negative input without stored zeros.
    """
    C = _check_csr(confidence, "confidence")
    n_users, n_items = C.shape
    X = _check_factors(user_factors, "user_factors", n_users)
    Y = _check_factors(item_factors, "item_factors", n_items, X.shape[1])
    lam = _check_regularization(regularization)
    return _weighted_objective(C, X, Y, lam) / _total_confidence(C)


def _solve_positive_definite(A: np.ndarray, b: np.ndarray, row: int) -> np.ndarray:
    try:
        factor = scipy.linalg.cho_factor(A)
    except np.linalg.LinAlgError:
        raise ValueError(
            f"the normal equations of row {row} are not positive definite; "
            "increase the regularization"
        ) from None
    return scipy.linalg.cho_solve(factor, b)


def _half_step(C: sp.csr_matrix, Y: np.ndarray, lam: float) -> np.ndarray:
    """als_step on already validated input."""
    n_rows, n_factors = C.shape[0], Y.shape[1]
    shared = Y.T @ Y + lam * np.eye(n_factors)  # Y'Y + lambda I, the same for every row
    solution = np.zeros((n_rows, n_factors))
    for u in range(n_rows):
        observed = slice(C.indptr[u], C.indptr[u + 1])
        if observed.start == observed.stop:
            continue  # nothing observed: right-hand side 0, so x_u = 0
        c = C.data[observed]  # c_ui for i in obs(u)
        Y_u = Y[C.indices[observed]]  # y_i for i in obs(u), one per row
        A = shared + (Y_u.T * (c - 1.0)) @ Y_u  # Y'Y + lambda I + sum (c_ui - 1) y_i y_i'
        b = Y_u.T @ c  # sum c_ui y_i  (= Y' C_u p_u)
        solution[u] = _solve_positive_definite(A, b, u)
    return solution


def als_step(confidence_csr, fixed_factors, regularization) -> np.ndarray:
    r"""One half-step: the exact weighted-least-squares solution for every row.

    For each row ``u`` of ``confidence_csr`` (rows × cols, already alpha-scaled), with
    ``fixed_factors`` = :math:`Y` (cols × f) the other side's factors, returns

    .. math::

        x_u = \Big(Y^\top Y + \lambda I + \sum_{i \in \mathrm{obs}(u)} (c_{ui} - 1)\, y_i y_i^\top\Big)^{-1}
              \sum_{i \in \mathrm{obs}(u)} c_{ui}\, y_i
            = (Y^\top C_u Y + \lambda I)^{-1} Y^\top C_u p_u ,

    the minimiser of :math:`\sum_i c_{ui} (p_{ui} - x^\top y_i)^2 + \lambda \lVert x\rVert^2`,
    and :math:`x_u = 0` for a row with no observed entry. Pass the user × item matrix to update
    users, its transpose (``.T.tocsr()``) to update items. Returns a new (rows × f) float64 array.
    """
    C = _check_csr(confidence_csr, "confidence_csr")
    Y = _check_factors(fixed_factors, "fixed_factors", C.shape[1])
    return _half_step(C, Y, _check_regularization(regularization))


@dataclass
class ExactALSResult:
    """Factors after the last iteration and the normalised loss (:func:`als_loss`) after each."""

    user_factors: np.ndarray
    item_factors: np.ndarray
    losses: list[float] = field(default_factory=list)


def exact_als(
    user_items: sp.csr_matrix,
    *,
    factors: int,
    regularization: float,
    alpha: float = 1.0,
    iterations: int = 15,
    user_factors=None,
    item_factors=None,
    seed: int = 0,
) -> ExactALSResult:
    """Implicit-feedback ALS on ``confidence = alpha * user_items``, exactly, in float64.

    Each iteration solves every user (:func:`als_step` on the user × item matrix), then every
    item from the new user factors, and records :func:`als_loss`. This is what
    ``implicit.als.AlternatingLeastSquares(use_cg=False, dtype=np.float64)`` computes.

    Starting factors default to ``np.random.default_rng(seed).random((n, factors)) * 0.01``,
    users drawn first, then items. That is exactly ``implicit``'s initialisation with
    ``random_state=seed, dtype=np.float64`` (implicit 0.7.3 also seeds ``default_rng``); with
    float32 it draws different numbers, so to compare, pass the same arrays to both. Given
    arrays are copied, never modified. The
    starting user factors do not change the result (users are solved first) but are validated.

    Raises ValueError for a matrix that is not CSR, is empty, or has negative, NaN or infinite
    values; for factor arrays of the wrong shape or with non-finite values; and for
    non-positive ``factors``/``alpha``, negative ``iterations`` or ``regularization``.
    Explicitly stored zeros are treated as unobserved cells.
    """
    X_input = _check_csr(user_items, "user_items")
    n_factors = _check_positive_int(factors, "factors", 1)
    n_iterations = _check_positive_int(iterations, "iterations", 0)
    lam = _check_regularization(regularization)
    if isinstance(alpha, bool) or not isinstance(alpha, Real) or not (np.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha must be a finite number > 0, got {alpha!r}")

    n_users, n_items = X_input.shape
    rng = np.random.default_rng(seed)
    default_users = rng.random((n_users, n_factors)) * 0.01
    default_items = rng.random((n_items, n_factors)) * 0.01
    X = _check_factors(default_users if user_factors is None else user_factors,
                       "user_factors", n_users, n_factors)
    Y = _check_factors(default_items if item_factors is None else item_factors,
                       "item_factors", n_items, n_factors)

    user_confidence = float(alpha) * X_input  # users x items: c_ui = alpha * r_ui
    item_confidence = user_confidence.T.tocsr()  # items x users, for the item half-step
    total_confidence = _total_confidence(user_confidence)

    losses: list[float] = []
    for _ in range(n_iterations):
        X = _half_step(user_confidence, Y, lam)
        Y = _half_step(item_confidence, X, lam)
        losses.append(_weighted_objective(user_confidence, X, Y, lam) / total_confidence)
    return ExactALSResult(user_factors=X, item_factors=Y, losses=losses)
