"""The exact NumPy ALS reference, checked against itself, against textbook algebra and against implicit."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import threadpoolctl
from hypothesis import given, settings
from hypothesis import strategies as st

from funnelkit.recommend.reference import ExactALSResult, als_loss, als_step, exact_als

ALPHA = 2.5  # != 1, and alpha * (integer 1..10) is exact in float32 (implicit casts to float32)
REGULARIZATION = 0.1
FACTORS = 8
RTOL = 1e-8  # float64 rounding gives ~1e-13 here; any formula mistake gives ~1e-2 or more


def random_ratings(n_users=150, n_items=80, density=0.05, seed=3) -> sp.csr_matrix:
    """Sparse matrix of integer ratings 1..10 at random cells."""
    rng = np.random.default_rng(seed)
    matrix = sp.random(n_users, n_items, density=density, random_state=rng,
                       data_rvs=lambda n: rng.integers(1, 11, n).astype(np.float64))
    return sp.csr_matrix(matrix)


def starting_factors(n_users, n_items, factors=FACTORS, seed=11):
    rng = np.random.default_rng(seed)
    return rng.random((n_users, factors)) * 0.01, rng.random((n_items, factors)) * 0.01


def fit_implicit(user_items, user_start, item_start, *, iterations, use_cg=False,
                 alpha=ALPHA, regularization=REGULARIZATION):
    """implicit's ALS from the given float64 factors; returns (model, losses it reported)."""
    from implicit.cpu.als import AlternatingLeastSquares

    with threadpoolctl.threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(
            factors=user_start.shape[1], regularization=regularization, alpha=alpha,
            dtype=np.float64, use_cg=use_cg, iterations=iterations,
            calculate_training_loss=True, random_state=0,
        )
        model.user_factors = np.array(user_start, dtype=np.float64)
        model.item_factors = np.array(item_start, dtype=np.float64)
        losses = []
        model.fit(user_items, show_progress=False,
                  callback=lambda iteration, elapsed, loss: losses.append(loss))
    return model, losses


def assert_factors_close(actual, expected, rtol=RTOL):
    # atol guards entries that happen to be ~0; it is far below any formula mistake's effect
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * 1e-2 * np.abs(expected).max())


def max_relative_deviation(actual, expected) -> float:
    return float(np.abs(actual - expected).max() / np.abs(expected).max())


# --------------------------------------------------------------------- independent textbook algebra


def dense_parts(confidence: sp.csr_matrix):
    """Full confidence matrix (1 on unobserved cells) and preference matrix (1 on observed)."""
    observed = confidence.toarray() > 0
    return np.where(observed, confidence.toarray(), 1.0), observed.astype(float)


def textbook_half_step(weights_a, weights_b, Y, lam):
    """x_u = (Y' diag(wa_u) Y + lam I)^-1 Y' wb_u for every row, with dense n_items-long weights."""
    eye = np.eye(Y.shape[1])
    return np.array([np.linalg.solve(Y.T @ (wa[:, None] * Y) + lam * eye, Y.T @ wb)
                     for wa, wb in zip(weights_a, weights_b)])


def textbook_objective(confidence: sp.csr_matrix, X, Y, lam) -> float:
    C, P = dense_parts(confidence)
    return float(np.sum(C * (P - X @ Y.T) ** 2) + lam * (np.sum(X**2) + np.sum(Y**2)))


# --------------------------------------------------------------------- agreement with implicit


@pytest.fixture(scope="module")
def ratings():
    return random_ratings()


@pytest.mark.parametrize("iterations", [1, 10])
def test_exact_als_matches_implicit_cholesky_solver(ratings, iterations):
    user_start, item_start = starting_factors(*ratings.shape)
    model, _ = fit_implicit(ratings, user_start, item_start, iterations=iterations)
    ours = exact_als(ratings, factors=FACTORS, regularization=REGULARIZATION, alpha=ALPHA,
                     iterations=iterations, user_factors=user_start, item_factors=item_start)
    assert isinstance(ours, ExactALSResult) and len(ours.losses) == iterations
    assert_factors_close(ours.user_factors, model.user_factors)
    assert_factors_close(ours.item_factors, model.item_factors)


def mistaken_first_iteration(ratings, mistake, user_start, item_start):
    """One ALS iteration with a deliberate formula mistake (test-only, dense algebra)."""
    confidence = ALPHA * ratings
    C, P = dense_parts(confidence)
    Ct, Pt = dense_parts(confidence.T.tocsr())
    if mistake == "paper confidence 1 + alpha r":
        C1 = np.where(P > 0, C + 1.0, 1.0)
        X = textbook_half_step(C1, C1 * P, item_start, REGULARIZATION)
        return X, textbook_half_step(C1.T, C1.T * Pt, X, REGULARIZATION)
    if mistake == "forgot the -1":  # Y'Y + lam I + sum c y y' instead of sum (c - 1) y y'
        X = textbook_half_step(C + P, C * P, item_start, REGULARIZATION)
        return X, textbook_half_step(Ct + Pt, Ct * Pt, X, REGULARIZATION)
    if mistake == "items updated first":
        Y = textbook_half_step(Ct, Ct * Pt, user_start, REGULARIZATION)
        return textbook_half_step(C, C * P, Y, REGULARIZATION), Y
    if mistake == "items use the old user factors":
        X = textbook_half_step(C, C * P, item_start, REGULARIZATION)
        return X, textbook_half_step(Ct, Ct * Pt, user_start, REGULARIZATION)
    raise AssertionError(mistake)


@pytest.mark.parametrize("mistake", ["paper confidence 1 + alpha r", "forgot the -1",
                                     "items updated first", "items use the old user factors"])
def test_tolerance_would_catch_formula_mistakes(ratings, mistake):
    user_start, item_start = starting_factors(*ratings.shape)
    model, _ = fit_implicit(ratings, user_start, item_start, iterations=1)
    X, Y = mistaken_first_iteration(ratings, mistake, user_start, item_start)
    deviation = max(max_relative_deviation(X, model.user_factors),
                    max_relative_deviation(Y, model.item_factors))
    assert deviation > 1e4 * RTOL


def test_implicit_reported_loss_equals_als_loss(ratings):
    user_start, item_start = starting_factors(*ratings.shape)
    model, reported = fit_implicit(ratings, user_start, item_start, iterations=5)
    ours = als_loss(ALPHA * ratings, model.user_factors, model.item_factors, REGULARIZATION)
    # implicit casts the regularization to float32 in its loss: 0.1 is off by ~1.5e-8 relative
    assert reported[-1] == pytest.approx(ours, rel=1e-7)
    result = exact_als(ratings, factors=FACTORS, regularization=REGULARIZATION, alpha=ALPHA,
                       iterations=5, user_factors=user_start, item_factors=item_start)
    np.testing.assert_allclose(result.losses, reported, rtol=1e-7)


def test_als_loss_equals_implicit_calculate_loss_at_arbitrary_factors(ratings):
    from implicit.cpu._als import calculate_loss

    rng = np.random.default_rng(5)
    X = rng.normal(size=(ratings.shape[0], FACTORS))
    Y = rng.normal(size=(ratings.shape[1], FACTORS))
    confidence = ALPHA * ratings
    expected = calculate_loss(confidence, X, Y, 0.5, num_threads=1)  # 0.5: exact in float32
    assert als_loss(confidence, X, Y, 0.5) == pytest.approx(expected, rel=1e-10)


def test_cg_solver_reaches_the_exact_loss_within_one_percent(ratings):
    user_start, item_start = starting_factors(*ratings.shape)
    _, cg_losses = fit_implicit(ratings, user_start, item_start, iterations=15, use_cg=True)
    exact = exact_als(ratings, factors=FACTORS, regularization=REGULARIZATION, alpha=ALPHA,
                      iterations=15, user_factors=user_start, item_factors=item_start)
    assert cg_losses[-1] == pytest.approx(exact.losses[-1], rel=0.01)


def test_empty_user_and_item_get_zero_factors_as_in_implicit(ratings):
    matrix = ratings.tolil()
    matrix[4, :] = 0
    matrix[:, 7] = 0
    matrix = matrix.tocsr()
    matrix.eliminate_zeros()
    user_start, item_start = starting_factors(*matrix.shape)
    ours = exact_als(matrix, factors=FACTORS, regularization=REGULARIZATION, alpha=ALPHA,
                     iterations=3, user_factors=user_start, item_factors=item_start)
    assert np.all(ours.user_factors[4] == 0.0)
    assert np.all(ours.item_factors[7] == 0.0)
    model, _ = fit_implicit(matrix, user_start, item_start, iterations=3)
    assert np.all(model.user_factors[4] == 0.0) and np.all(model.item_factors[7] == 0.0)
    assert_factors_close(ours.user_factors, model.user_factors)
    assert_factors_close(ours.item_factors, model.item_factors)


def test_default_start_is_implicits_float64_initialisation(ratings):
    from implicit.cpu.als import AlternatingLeastSquares

    with threadpoolctl.threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(factors=FACTORS, regularization=REGULARIZATION, alpha=ALPHA,
                                        dtype=np.float64, use_cg=False, iterations=4, random_state=7)
        model.fit(ratings, show_progress=False)
    ours = exact_als(ratings, factors=FACTORS, regularization=REGULARIZATION, alpha=ALPHA,
                     iterations=4, seed=7)
    assert_factors_close(ours.user_factors, model.user_factors)
    assert_factors_close(ours.item_factors, model.item_factors)


def test_implicit_rounds_confidence_to_float32(ratings):
    """With alpha = 0.3, implicit works on float32(float32(r) * float32(0.3)), not on 0.3 r."""
    alpha = 0.3
    user_start, item_start = starting_factors(*ratings.shape)
    model, _ = fit_implicit(ratings, user_start, item_start, iterations=3, alpha=alpha)
    common = dict(factors=FACTORS, regularization=REGULARIZATION, iterations=3,
                  user_factors=user_start, item_factors=item_start)
    float32_confidence = ratings.astype(np.float32)
    float32_confidence.data *= np.float32(alpha)
    rounded = exact_als(float32_confidence.astype(np.float64), alpha=1.0, **common)
    assert_factors_close(rounded.user_factors, model.user_factors)
    assert_factors_close(rounded.item_factors, model.item_factors)
    exact = exact_als(ratings, alpha=alpha, **common)
    assert 1e-10 < max_relative_deviation(exact.user_factors, model.user_factors) < 1e-5


# --------------------------------------------------------------------- the algebra itself


def test_als_step_equals_the_textbook_normal_equations(ratings):
    confidence = ALPHA * ratings
    _, item_start = starting_factors(*ratings.shape, seed=2)
    item_start = item_start * 100  # O(1) factors: a less trivial system
    C, P = dense_parts(confidence)
    expected = textbook_half_step(C, C * P, item_start, REGULARIZATION)
    np.testing.assert_allclose(als_step(confidence, item_start, REGULARIZATION), expected,
                               rtol=1e-10, atol=1e-12)


def test_als_loss_equals_the_dense_definition(ratings):
    rng = np.random.default_rng(8)
    X = rng.normal(size=(ratings.shape[0], 3))
    Y = rng.normal(size=(ratings.shape[1], 3))
    confidence = ALPHA * ratings
    C, _ = dense_parts(confidence)
    expected = textbook_objective(confidence, X, Y, 0.7) / C.sum()
    assert als_loss(confidence, X, Y, 0.7) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("side", ["users", "items"])
def test_each_half_step_is_the_minimiser(ratings, side):
    confidence = ALPHA * ratings
    user_start, item_start = starting_factors(*ratings.shape)
    X = als_step(confidence, item_start * 100, REGULARIZATION)
    Y = item_start * 100
    if side == "items":
        Y = als_step(confidence.T.tocsr(), X, REGULARIZATION)
    best = textbook_objective(confidence, X, Y, REGULARIZATION)
    rng = np.random.default_rng(13)
    solved = X if side == "users" else Y
    for row in rng.choice(solved.shape[0], size=20, replace=False):
        step = rng.normal(size=FACTORS)
        step *= 1e-3 * (1.0 + np.linalg.norm(solved[row])) / np.linalg.norm(step)
        for sign in (1.0, -1.0):  # both directions: the gradient is zero, not merely signed
            moved = solved.copy()
            moved[row] += sign * step
            objective = (textbook_objective(confidence, moved, Y, REGULARIZATION) if side == "users"
                         else textbook_objective(confidence, X, moved, REGULARIZATION))
            # increase is step' A step >= lambda |step|^2 ~ 1e-7; rounding is ~1e-12
            assert objective - best > 0.5 * REGULARIZATION * step @ step


@settings(max_examples=60, deadline=None)
@given(
    n_users=st.integers(1, 12),
    n_items=st.integers(1, 10),
    density=st.floats(0.05, 0.8),
    factors=st.integers(1, 5),
    alpha=st.floats(0.05, 40.0),
    regularization=st.floats(1e-3, 10.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_loss_never_increases(n_users, n_items, density, factors, alpha, regularization, seed):
    rng = np.random.default_rng(seed)
    matrix = sp.random(n_users, n_items, density=density, random_state=rng,
                       data_rvs=lambda n: rng.uniform(0.1, 10.0, n), format="csr")
    user_start = rng.normal(size=(n_users, factors))
    item_start = rng.normal(size=(n_items, factors))
    result = exact_als(matrix, factors=factors, regularization=regularization, alpha=alpha,
                       iterations=8, user_factors=user_start, item_factors=item_start)
    losses = [als_loss(alpha * matrix, user_start, item_start, regularization), *result.losses]
    for before, after in zip(losses, losses[1:]):
        assert after <= before * (1 + 1e-10) + 1e-12


# --------------------------------------------------------------------- input handling


def test_inputs_are_not_modified_and_explicit_zeros_are_unobserved(ratings):
    with_zeros = ratings.copy()
    with_zeros.data[::7] = 0.0  # explicitly stored zeros
    without = with_zeros.copy()
    without.eliminate_zeros()
    user_start, item_start = starting_factors(*ratings.shape)
    before = (with_zeros.copy(), user_start.copy(), item_start.copy())
    kept = exact_als(with_zeros, factors=FACTORS, regularization=REGULARIZATION, alpha=ALPHA,
                     iterations=2, user_factors=user_start, item_factors=item_start)
    dropped = exact_als(without, factors=FACTORS, regularization=REGULARIZATION, alpha=ALPHA,
                        iterations=2, user_factors=user_start, item_factors=item_start)
    np.testing.assert_array_equal(kept.user_factors, dropped.user_factors)
    np.testing.assert_array_equal(kept.losses, dropped.losses)
    assert (with_zeros != before[0]).nnz == 0 and with_zeros.nnz == before[0].nnz
    np.testing.assert_array_equal(user_start, before[1])
    np.testing.assert_array_equal(item_start, before[2])


def test_duplicate_entries_are_summed():
    duplicated = sp.csr_matrix((np.array([1.0, 2.0, 4.0]), np.array([1, 1, 0]), np.array([0, 2, 3])),
                               shape=(2, 3))
    assert not duplicated.has_canonical_format
    summed = sp.csr_matrix(np.array([[0.0, 3.0, 0.0], [4.0, 0.0, 0.0]]))
    a = exact_als(duplicated, factors=2, regularization=0.1, iterations=2, seed=1)
    b = exact_als(summed, factors=2, regularization=0.1, iterations=2, seed=1)
    np.testing.assert_allclose(a.user_factors, b.user_factors, rtol=1e-12)


def _csr(values):
    return sp.csr_matrix(np.array(values, dtype=float))


GOOD = _csr([[1.0, 0.0, 2.0], [0.0, 3.0, 0.0]])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(user_items=GOOD.toarray()), "must be a scipy.sparse CSR matrix, got ndarray"),
        (dict(user_items=GOOD.tocoo()), r"got coo_matrix \(convert it with \.tocsr\(\)\)"),
        (dict(user_items=_csr([[1.0, -1.0]])), "negative values"),
        (dict(user_items=_csr([[1.0, np.nan]])), "NaN or infinite"),
        (dict(user_items=_csr([[np.inf, 1.0]])), "NaN or infinite"),
        (dict(user_items=sp.csr_matrix((0, 3))), "at least one row and one column"),
        (dict(user_items=sp.csr_matrix(np.array([[1 + 1j]]))), "real numbers"),
        (dict(user_factors=np.zeros((3, 2))), r"user_factors must have 2 rows, got shape \(3, 2\)"),
        (dict(item_factors=np.zeros((3, 4))), r"item_factors must have 2 columns"),
        (dict(item_factors=np.zeros(3)), "item_factors must be a 2-dimensional array"),
        (dict(user_factors=np.full((2, 2), np.nan)), "user_factors contains NaN"),
        (dict(factors=0), "factors must be >= 1"),
        (dict(factors=2.5), "factors must be an integer"),
        (dict(iterations=-1), "iterations must be >= 0"),
        (dict(alpha=0.0), "alpha must be a finite number > 0"),
        (dict(alpha=float("nan")), "alpha must be a finite number > 0"),
        (dict(regularization=-0.1), "regularization must be finite and >= 0"),
        (dict(regularization="0.1"), "regularization must be a real number"),
    ],
)
def test_exact_als_rejects_bad_input(kwargs, message):
    arguments = dict(user_items=GOOD, factors=2, regularization=0.1, iterations=1)
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        exact_als(arguments.pop("user_items"), **arguments)


def test_als_step_and_als_loss_reject_bad_input():
    with pytest.raises(ValueError, match=r"fixed_factors must have 3 rows"):
        als_step(GOOD, np.ones((2, 2)), 0.1)
    with pytest.raises(ValueError, match="confidence_csr contains negative values"):
        als_step(-GOOD, np.ones((3, 2)), 0.1)
    with pytest.raises(ValueError, match=r"item_factors must have 2 columns"):
        als_loss(GOOD, np.ones((2, 2)), np.ones((3, 3)), 0.1)
    with pytest.raises(ValueError, match="confidence must be a scipy.sparse CSR matrix"):
        als_loss(GOOD.tocsc(), np.ones((2, 2)), np.ones((3, 2)), 0.1)
    # without regularization a user with more factors than items has a singular system
    with pytest.raises(ValueError, match="row 0 are not positive definite; increase the regularization"):
        als_step(_csr([[1.0, 0.0]]), np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]), 0.0)
