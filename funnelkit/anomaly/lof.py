"""The local outlier factor of every row, computed once per distinct row.

scikit-learn's ``LocalOutlierFactor(novelty=False)`` searches the neighbours of every row; among thousands of
identical rows (single-view visitors: one row shared by 68,845 of the 1,000,385 users of a 1M-user shop) its
tree search degenerates: 472 of notebook 04's 564 s there. Identical rows have identical neighbourhoods, so
:func:`local_outlier_factors` searches among the distinct rows only and counts each with its multiplicity:
the same definition and, where no two distinct rows tie in distance to a row's k-th neighbour, the same
factors as scikit-learn's (``tests/test_anomaly_lof.py``).

Definitions (Breunig et al. 2000, as scikit-learn implements them with exactly k neighbours): the k
neighbours of a row are the k nearest other rows (copies of itself first, at distance 0); its k-distance is
the distance to the last of them; the reachability distance from p to a neighbour o is
max(k-distance(o), d(p, o)); the local reachability density of p is 1 / (mean reachability distance +
1e-10), and its factor the mean density of its neighbours over its own.
"""
from __future__ import annotations

import numpy as np
from sklearn.neighbors import NearestNeighbors


def local_outlier_factors(X: np.ndarray, n_neighbors: int = 20) -> np.ndarray:
    """The local outlier factor of each row of ``X`` (about 1 inside a cluster, larger in sparser places);
    ``n_neighbors`` is capped at ``len(X) - 1``, as scikit-learn does."""
    X = np.asarray(X, dtype=float)
    if len(X) < 2:
        return np.ones(len(X))
    k = max(1, min(n_neighbors, len(X) - 1))
    rows, inverse, copies = np.unique(X, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    n = len(rows)
    if n == 1:  # every row alike: each one's neighbours are its copies, as dense as itself
        return np.ones(len(X))
    own = np.minimum(copies - 1, k)  # the neighbours that are copies of the row itself, at distance 0
    distances, neighbours = NearestNeighbors(n_neighbors=min(k, n - 1)).fit(rows).kneighbors()
    # each distinct neighbour stands for as many of the k as its copies, until the k are filled
    taken_before = own[:, None] + np.cumsum(copies[neighbours], axis=1) - copies[neighbours]
    counts = np.clip(k - taken_before, 0, copies[neighbours])
    last = np.where(counts > 0, np.arange(counts.shape[1]), -1).max(axis=1)
    k_distance = np.where(last >= 0, distances[np.arange(n), np.maximum(last, 0)], 0.0)
    reach = np.maximum(k_distance[neighbours], distances)
    density = 1.0 / ((own * k_distance + (counts * reach).sum(axis=1)) / k + 1e-10)
    factor = (own * density + (counts * density[neighbours]).sum(axis=1)) / k / density
    return factor[inverse]
