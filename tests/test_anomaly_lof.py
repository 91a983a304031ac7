"""The local outlier factor computed once per distinct row equals scikit-learn's on rows with duplicates."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.neighbors import LocalOutlierFactor

from funnelkit.anomaly.lof import local_outlier_factors


def sklearn_factors(X: np.ndarray, k: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its warning about duplicates: the point of the test
        return -LocalOutlierFactor(n_neighbors=k).fit(X).negative_outlier_factor_


def with_duplicates(seed: int) -> np.ndarray:
    """Continuous rows (no two distinct rows at tied distances), then copies: a clump larger than any k tested,
    a few pairs and triples, and a row far from the others."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(300, 4))
    copies = [np.repeat(X[:1], 60, axis=0), np.repeat(X[1:6], 2, axis=0), np.repeat(X[6:9], 3, axis=0),
              np.full((1, 4), 8.0)]
    return rng.permutation(np.vstack([X, *copies]))


@pytest.mark.parametrize("k", [1, 2, 5, 20, 70])
@pytest.mark.parametrize("seed", [0, 1])
def test_factors_equal_scikit_learns_on_rows_with_duplicates(seed, k):
    X = with_duplicates(seed)
    got = local_outlier_factors(X, k)
    np.testing.assert_allclose(got, sklearn_factors(X, k), rtol=1e-9)
    assert got.max() > 1.5  # the far row stands out (the test can tell factors apart)


def test_rows_all_alike_have_factor_one_and_k_is_capped_at_the_rows_but_one():
    assert np.array_equal(local_outlier_factors(np.ones((30, 3)), 20), np.ones(30))
    X = with_duplicates(2)[:8]
    np.testing.assert_allclose(local_outlier_factors(X, 20), sklearn_factors(X, 7), rtol=1e-9)
    assert local_outlier_factors(X[:1], 20).tolist() == [1.0]
