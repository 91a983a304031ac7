"""Offline ranking metrics for top-k recommendations, with bootstrap intervals.

Conventions
-----------
``recommended``
    Integer array of shape ``(n_users, width)``: row *u* lists item indices
    for user *u* in rank order (column 0 is rank 1, the best). ``-1`` means
    "no item" (padding, e.g. when fewer candidates than ``width`` were left);
    padding is never relevant but still occupies its rank. A row must not
    list the same item twice.
``truth``
    SciPy sparse matrix of shape ``(n_users, n_items)`` whose rows are aligned
    with the rows of ``recommended`` (same users, same order). Item *i* is
    *relevant* to user *u* when ``truth[u, i] != 0`` (binary relevance: the
    stored value is not used as a grade; explicit zeros are not relevant).

For a user, ``rel_j`` is 1 when the item at rank *j* (1-based) is relevant and
0 otherwise, and ``R`` is the number of items relevant to the user. The
metrics at cut-off *k* are

=============  ======================================================================
precision@k    ``(sum_{j<=k} rel_j) / k``
recall@k       ``(sum_{j<=k} rel_j) / R``
ap@k           ``sum_{j<=k} rel_j * precision@j / min(k, R)``
ndcg@k         ``sum_{j<=k} rel_j / log2(j + 1)``  divided by
               ``sum_{j<=min(k, R)} 1 / log2(j + 1)`` (the best possible ranking)
hit@k          1 if some ``rel_j = 1`` with ``j <= k``, else 0
=============  ======================================================================

A study reports the mean of each metric over users (:func:`summarize`), with a
percentile bootstrap interval that resamples users (:func:`bootstrap_interval`).
Everything is vectorised over users: no Python loop runs once per user.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse

METRICS = ("precision", "recall", "ap", "ndcg", "hit")

# Bootstrap work is done in blocks of resamples holding about this many numbers
# (32 MB of int64), so memory stays bounded whatever n_users * n_boot is.
_BLOCK_ELEMENTS = 1 << 22

# Measured costs (NumPy 2, one core): one category of a multinomial draw ~130 ns,
# one resampled user (draw an index, gather its value) ~13 ns. Drawing counts of
# the distinct values is therefore cheaper when they are fewer than n_users / 10,
# which is the usual case for per-user ranking metrics (they take few values).
_MULTINOMIAL_COST_RATIO = 10


# ---------------------------------------------------------------------------
# input checks
# ---------------------------------------------------------------------------


def _relevance(truth) -> scipy.sparse.csr_matrix:
    """``truth`` as a canonical CSR matrix whose stored entries are exactly the relevant pairs.

    Canonical (sorted indices, no duplicates) so that the linear keys of its
    entries come out sorted; explicit zeros dropped because a stored 0 is not
    relevant. Copies only when something has to change.
    """
    if not scipy.sparse.issparse(truth):
        raise TypeError(f"truth must be a scipy.sparse matrix (users x items), got {type(truth).__name__}")
    if truth.ndim != 2:
        raise ValueError(f"truth must be 2-D (users x items), got {truth.ndim}-D")
    relevance = scipy.sparse.csr_matrix(truth)
    if not relevance.has_canonical_format:
        relevance = relevance.copy()
        relevance.sum_duplicates()  # duplicates summing to 0 leave a stored 0, removed next
    if relevance.nnz and not np.all(relevance.data != 0):
        relevance = relevance.copy()
        relevance.eliminate_zeros()
    return relevance


def _as_recommended(recommended, n_items: int, n_users: int | None = None) -> np.ndarray:
    """Check ``recommended`` (2-D, integer, items in ``-1 .. n_items-1``) and return it as int64."""
    array = np.asarray(recommended)
    if array.ndim != 2:
        raise ValueError(f"recommended must be 2-D (n_users, k), got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"recommended must hold integer item indices, got dtype {array.dtype}")
    if n_users is not None and array.shape[0] != n_users:
        raise ValueError(
            f"recommended has {array.shape[0]} rows but truth has {n_users}: rows must be the same users"
        )
    if array.size:
        low, high = int(array.min()), int(array.max())
        if low < -1:
            raise ValueError(f"recommended holds {low}; item indices are >= 0 and -1 is the only padding value")
        if high >= n_items:
            raise ValueError(f"recommended holds item {high} but there are only {n_items} items (0..{n_items - 1})")
    return array.astype(np.int64, copy=False)


def _check_distinct(recommended: np.ndarray) -> None:
    """Refuse rows listing an item twice: it would count as two hits (precision or recall above 1)."""
    if recommended.shape[1] < 2:
        return
    ordered = np.sort(recommended, axis=1)
    repeated = (ordered[:, 1:] == ordered[:, :-1]) & (ordered[:, 1:] >= 0)
    bad_rows = np.flatnonzero(repeated.any(axis=1))
    if bad_rows.size:
        raise ValueError(
            f"{bad_rows.size} rows of recommended list an item twice (first: row {bad_rows[0]}); "
            "each item may appear once per user"
        )


def _check_k(k, width: int) -> int:
    """``k`` as an int in ``1 .. width``."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"k must be an integer, got {k!r}")
    if k < 1:
        raise ValueError(f"k must be at least 1, got k={k}")
    if k > width:
        raise ValueError(f"k={k} is larger than the width of recommended ({width} columns)")
    return int(k)


# ---------------------------------------------------------------------------
# hits and per-user ranking metrics
# ---------------------------------------------------------------------------


def hits(recommended: np.ndarray, truth: scipy.sparse.spmatrix) -> np.ndarray:
    """Which recommended items are relevant.

    Parameters
    ----------
    recommended : ndarray of int, shape (n_users, k)
        Item indices in rank order (column 0 = rank 1); ``-1`` is padding.
    truth : scipy sparse matrix, shape (n_users, n_items)
        Relevance, rows aligned with ``recommended``; item *i* is relevant to
        user *u* when ``truth[u, i] != 0``.

    Returns
    -------
    ndarray of bool, shape (n_users, k)
        ``hits[u, j]`` is True when ``recommended[u, j] != -1`` and
        ``truth[u, recommended[u, j]] != 0``. Padding is never a hit.

    Notes
    -----
    Each (user, item) pair is encoded as the linear key ``u * n_items + item``;
    the keys of truth's stored entries are sorted (canonical CSR), so every
    recommended key is looked up with one vectorised binary search.
    """
    relevance = _relevance(truth)
    n_users, n_items = relevance.shape
    items = _as_recommended(recommended, n_items, n_users)
    if n_items and n_users > np.iinfo(np.int64).max // n_items:
        raise ValueError(f"{n_users} users x {n_items} items is too large for 64-bit pair keys")
    found = np.zeros(items.shape, dtype=bool)
    if relevance.nnz == 0 or items.size == 0:
        return found
    rows_of_entries = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(relevance.indptr))
    truth_keys = rows_of_entries * n_items + relevance.indices
    keys = np.arange(n_users, dtype=np.int64)[:, None] * n_items + items
    position = np.minimum(np.searchsorted(truth_keys, keys), truth_keys.size - 1)
    np.equal(truth_keys[position], keys, out=found)
    # padding -1 would encode (u, -1) = (u - 1, n_items - 1): the previous user's last item
    found &= items >= 0
    return found


def _discounts(k: int) -> np.ndarray:
    """``1 / log2(j + 1)`` for ranks ``j = 1 .. k``."""
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


def _cumulative(recommended, truth, k_values: Sequence[int]) -> dict[str, np.ndarray]:
    """Running sums over ranks ``1 .. max(k_values)`` from which every metric at every k is a column pick.

    Returns ``n_relevant`` (R per user), ``n_hits`` (hits in the top j),
    ``ap_sum`` (sum of rel_j * precision@j) and ``dcg`` (discounted gain),
    the last three of shape (n_users, max k), column j-1 for rank j.
    """
    relevance = _relevance(truth)
    items = _as_recommended(recommended, relevance.shape[1], relevance.shape[0])
    if isinstance(k_values, (int, np.integer)):
        raise TypeError("k_values must be a sequence of integers, e.g. [5, 10]")
    ks = [_check_k(k, items.shape[1]) for k in k_values]
    if not ks:
        raise ValueError("k_values is empty: give at least one cut-off k")
    if len(set(ks)) != len(ks):
        raise ValueError(f"k_values has repeated cut-offs: {list(k_values)}")
    n_relevant = np.diff(relevance.indptr).astype(np.int64)
    empty = int(np.count_nonzero(n_relevant == 0))
    if empty:
        raise ValueError(
            f"{empty} of {n_relevant.size} rows of truth have no relevant item; recall, ap and ndcg "
            "are undefined for them: pass only users who have test items"
        )
    items = items[:, : max(ks)]
    _check_distinct(items)
    hit = hits(items, relevance)
    n_hits = np.cumsum(hit, axis=1, dtype=np.int64)
    # rel_j * precision@j, summed over ranks in place to spare a second (users x k) array
    ap_sum = n_hits / np.arange(1, items.shape[1] + 1, dtype=np.float64)
    ap_sum *= hit
    np.cumsum(ap_sum, axis=1, out=ap_sum)
    dcg = hit * _discounts(items.shape[1])
    np.cumsum(dcg, axis=1, out=dcg)
    return {"ks": ks, "n_relevant": n_relevant, "n_hits": n_hits, "ap_sum": ap_sum, "dcg": dcg}


def per_user_metrics(recommended: np.ndarray, truth: scipy.sparse.spmatrix, k_values: Sequence[int]) -> pd.DataFrame:
    """Ranking metrics of every user at every cut-off.

    With binary relevance, ``rel_j = 1`` when the item at rank *j* (1-based) is
    relevant to the user, and ``R`` the number of items relevant to the user:

    - ``precision@k = (sum_{j<=k} rel_j) / k`` (the standard definition: the
      divisor is k even when R < k; implicit divides by ``min(k, R)``)
    - ``recall@k = (sum_{j<=k} rel_j) / R``
    - ``ap@k = sum_{j<=k} rel_j * precision@j / min(k, R)`` (average precision)
    - ``ndcg@k = DCG@k / IDCG@k`` with ``DCG@k = sum_{j<=k} rel_j / log2(j + 1)``
      and ``IDCG@k = sum_{j<=min(k, R)} 1 / log2(j + 1)``, the DCG of a ranking
      that puts relevant items first
    - ``hit@k = 1`` if ``rel_j = 1`` for some ``j <= k``, else 0

    Padding (``-1``) is never relevant but counts as a rank.

    Parameters
    ----------
    recommended : ndarray of int, shape (n_users, width)
        Item indices in rank order (column 0 = best); ``-1`` is padding. A
        row must not list an item twice.
    truth : scipy sparse matrix, shape (n_users, n_items)
        Relevant items (``truth[u, i] != 0``), rows aligned with
        ``recommended``. Every row must hold at least one relevant item.
    k_values : sequence of int
        Distinct cut-offs, each between 1 and ``width``.

    Returns
    -------
    DataFrame
        One row per row of ``truth`` (same order, index 0..n_users-1) with
        column ``n_relevant`` (R) then, for each k in ``k_values``,
        ``precision@k``, ``recall@k``, ``ap@k``, ``ndcg@k``, ``hit@k`` (floats).

    Raises
    ------
    ValueError
        If a k exceeds the width of ``recommended`` or is below 1, if rows of
        ``truth`` have no relevant item (the message says how many), if a row
        lists an item twice, or if shapes or item indices do not match.
    """
    parts = _cumulative(recommended, truth, k_values)
    n_relevant = parts["n_relevant"]
    ideal = np.cumsum(_discounts(max(parts["ks"])))
    columns: dict[str, np.ndarray] = {"n_relevant": n_relevant}
    for k in parts["ks"]:
        best = np.minimum(k, n_relevant)  # the most hits a top k can hold
        found = parts["n_hits"][:, k - 1]
        columns[f"precision@{k}"] = found / k
        columns[f"recall@{k}"] = found / n_relevant
        columns[f"ap@{k}"] = parts["ap_sum"][:, k - 1] / best
        columns[f"ndcg@{k}"] = parts["dcg"][:, k - 1] / ideal[best - 1]
        columns[f"hit@{k}"] = (found > 0).astype(np.float64)
    return pd.DataFrame(columns)


def implicit_style(recommended: np.ndarray, truth: scipy.sparse.spmatrix, k: int) -> dict[str, float]:
    """The metrics of ``implicit.evaluation.ranking_metrics_at_k``, to compare with that library.

    - ``"precision"`` = ``sum_u hits_u@k / sum_u min(k, R_u)``: one pooled
      ratio over all users, not a mean of per-user precisions, and with divisor
      ``min(k, R)`` rather than k (so a user with one relevant item found at
      rank 1 counts as precision 1, not 1/k).
    - ``"map"`` = mean over users of ``ap@k`` (as in :func:`per_user_metrics`).
    - ``"ndcg"`` = mean over users of ``ndcg@k`` (as in :func:`per_user_metrics`).

    Parameters
    ----------
    recommended : ndarray of int, shape (n_users, width)
        As in :func:`per_user_metrics`; ``width >= k``.
    truth : scipy sparse matrix, shape (n_users, n_items)
        As in :func:`per_user_metrics`; every row needs a relevant item
        (implicit silently skips users without test items: pass only the
        others, as it does).
    k : int
        Cut-off.

    Returns
    -------
    dict
        ``{"precision": float, "map": float, "ndcg": float}``.
    """
    parts = _cumulative(recommended, truth, [k])
    k = parts["ks"][0]
    best = np.minimum(k, parts["n_relevant"])
    ideal = np.cumsum(_discounts(k))
    return {
        "precision": float(parts["n_hits"][:, k - 1].sum() / best.sum()),
        "map": float(np.mean(parts["ap_sum"][:, k - 1] / best)),
        "ndcg": float(np.mean(parts["dcg"][:, k - 1] / ideal[best - 1])),
    }


# ---------------------------------------------------------------------------
# catalogue-level metrics
# ---------------------------------------------------------------------------


def coverage(recommended: np.ndarray, n_items: int, k: int) -> float:
    """Catalogue coverage at k.

    ``coverage@k = |{ recommended[u, j] : all users u, j < k, not padding }| / n_items``,
    the share of the catalogue that appears in at least one user's top k.

    Parameters
    ----------
    recommended : ndarray of int, shape (n_users, width)
        Item indices in rank order; ``-1`` (padding) is ignored.
    n_items : int
        Size of the catalogue; items are ``0 .. n_items-1``.
    k : int
        Cut-off, between 1 and ``width``.

    Returns
    -------
    float
        Between 0 and 1.
    """
    if isinstance(n_items, bool) or not isinstance(n_items, (int, np.integer)) or n_items < 1:
        raise ValueError(f"n_items must be a positive integer, got {n_items!r}")
    items = _as_recommended(recommended, int(n_items))
    k = _check_k(k, items.shape[1])
    top = items[:, :k]
    # a flag per item is O(n) where np.unique would sort all n_users * k entries
    seen = np.zeros(int(n_items), dtype=bool)
    seen[top[top >= 0]] = True
    return float(np.count_nonzero(seen) / n_items)


def novelty(recommended: np.ndarray, item_popularity: np.ndarray, k: int, *, min_share: float = 1e-6) -> float:
    """Mean self-information, in bits, of the recommended items.

    ``novelty@k = mean over (u, j) with j <= k and recommended[u, j] != -1 of
    -log2(max(p_i, min_share))``, where ``i = recommended[u, j]`` and
    ``p_i = item_popularity[i]`` is the share of training users who interacted
    with item *i*. Recommending an item every user already knows scores 0 bits;
    an item known to 1 user in 1024 scores 10 bits. The mean is over all
    recommended (non-padding) entries, so users with more entries weigh more.

    Items never seen in training (``p_i = 0``) would have infinite
    self-information; their share is raised to ``min_share`` (default 1e-6,
    i.e. at most ~19.9 bits) so the mean stays finite.

    Parameters
    ----------
    recommended : ndarray of int, shape (n_users, width)
        Item indices in rank order; ``-1`` (padding) is ignored.
    item_popularity : ndarray of float, shape (n_items,)
        Share of training users who interacted with each item, in [0, 1].
    k : int
        Cut-off, between 1 and ``width``.
    min_share : float, optional
        Floor applied to ``item_popularity``, in (0, 1].

    Returns
    -------
    float
        Mean self-information in bits (>= 0).
    """
    popularity = np.asarray(item_popularity, dtype=np.float64)
    if popularity.ndim != 1 or popularity.size == 0:
        raise ValueError(
            f"item_popularity must be a non-empty 1-D array (one share per item), got shape {popularity.shape}"
        )
    if not np.all((popularity >= 0) & (popularity <= 1)):
        raise ValueError("item_popularity must hold shares of users in [0, 1] (no NaN)")
    if not 0 < min_share <= 1:
        raise ValueError(f"min_share must be in (0, 1], got {min_share}")
    items = _as_recommended(recommended, popularity.size)
    k = _check_k(k, items.shape[1])
    top = items[:, :k]
    shown = top[top >= 0]
    if shown.size == 0:
        raise ValueError(f"recommended holds no item in its first {k} columns (all padding)")
    # bits per catalogue item first: n_items logarithms instead of n_users * k
    bits = -np.log2(np.maximum(popularity, min_share))
    return float(np.mean(bits[shown]))


# ---------------------------------------------------------------------------
# uncertainty over users
# ---------------------------------------------------------------------------


def _as_sample(values, name: str = "values") -> np.ndarray:
    """A non-empty 1-D float array without NaN or infinity."""
    sample = np.asarray(values)
    if sample.dtype == object or not (np.issubdtype(sample.dtype, np.number) or sample.dtype == bool):
        raise TypeError(f"{name} must be numeric, got dtype {sample.dtype}")
    sample = sample.astype(np.float64, copy=False)
    if sample.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one value per user), got shape {sample.shape}")
    if sample.size == 0:
        raise ValueError(f"{name} is empty: no users to average over")
    if not np.all(np.isfinite(sample)):
        raise ValueError(f"{name} holds {np.count_nonzero(~np.isfinite(sample))} NaN or infinite values")
    return sample


def _check_bootstrap_args(n_boot, level) -> None:
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be strictly between 0 and 1, got {level}")


def _bootstrap_means(sample: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """Means of ``n_boot`` resamples of ``sample`` drawn with replacement (same size).

    Two exact ways to draw the same distribution, chosen by cost:

    - few distinct values (the usual case for ranking metrics): a resample is
      fully described by how many times each distinct value is drawn, a
      multinomial count vector over the distinct values;
    - otherwise: draw user indices, in blocks of resamples.

    Both work in blocks of at most ``_BLOCK_ELEMENTS`` numbers, so memory is
    bounded whatever ``n_boot * n_users``.
    """
    rng = np.random.default_rng(seed)
    n = sample.size
    distinct, counts = np.unique(sample, return_counts=True)
    means = np.empty(n_boot, dtype=np.float64)
    if distinct.size * _MULTINOMIAL_COST_RATIO <= n:
        shares = counts / n
        block = max(1, _BLOCK_ELEMENTS // distinct.size)
        for start in range(0, n_boot, block):
            draws = rng.multinomial(n, shares, size=min(block, n_boot - start))
            means[start : start + draws.shape[0]] = draws @ distinct / n
    else:
        block = max(1, _BLOCK_ELEMENTS // n)
        for start in range(0, n_boot, block):
            picks = rng.integers(0, n, size=(min(block, n_boot - start), n))
            means[start : start + picks.shape[0]] = np.take(sample, picks).mean(axis=1)
    return means


def bootstrap_interval(
    values: np.ndarray, *, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean over users.

    Draw ``n_boot`` resamples of the ``n`` users with replacement (each of
    size ``n``), take the mean of each, and return the ``(1 - level) / 2`` and
    ``(1 + level) / 2`` quantiles of those means (linear interpolation).

    Parameters
    ----------
    values : ndarray, shape (n_users,)
        One finite value per user.
    n_boot : int, optional
        Number of resamples.
    level : float, optional
        Coverage of the interval, in (0, 1).
    seed : int, optional
        Seed of the random generator: the same inputs and seed give the same interval.

    Returns
    -------
    (low, high) : tuple of float

    Notes
    -----
    No ``n_boot x n_users`` matrix is built. When the values take few distinct
    values (fewer than ``n_users / 10``, as ranking metrics do) each resample
    is drawn as multinomial counts of the distinct values, which costs
    ``O(n_distinct)`` instead of ``O(n_users)``; otherwise user indices are drawn
    in blocks of about 4 million. Both draw exactly the bootstrap distribution.
    """
    _check_bootstrap_args(n_boot, level)
    sample = _as_sample(values)
    means = _bootstrap_means(sample, int(n_boot), seed)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def paired_difference(
    a: np.ndarray, b: np.ndarray, *, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """Mean difference ``a - b`` over the same users, with a paired bootstrap interval.

    ``estimate = mean_u (a_u - b_u)``; the interval is the percentile bootstrap
    interval of that mean when users are resampled, each keeping its pair
    ``(a_u, b_u)`` (this is :func:`bootstrap_interval` of ``a - b``). Pairing
    removes the between-user variation both models share, so the interval is
    much narrower than comparing two separate intervals.

    Parameters
    ----------
    a, b : ndarray, shape (n_users,)
        A per-user metric of two models, for the same users in the same order.
    n_boot, level, seed
        As in :func:`bootstrap_interval`.

    Returns
    -------
    (estimate, low, high) : tuple of float
    """
    first, second = _as_sample(a, "a"), _as_sample(b, "b")
    if first.shape != second.shape:
        raise ValueError(f"a and b must hold the same users: {first.size} values vs {second.size}")
    difference = first - second
    low, high = bootstrap_interval(difference, n_boot=n_boot, level=level, seed=seed)
    return float(np.mean(difference)), low, high


def summarize(per_user: pd.DataFrame, *, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """Mean of every metric over users, with bootstrap intervals.

    Parameters
    ----------
    per_user : DataFrame
        As returned by :func:`per_user_metrics`: columns named ``metric@k``
        (every column except ``n_relevant``), one row per user.
    n_boot, level, seed
        As in :func:`bootstrap_interval` (the same seed for every metric).

    Returns
    -------
    DataFrame
        One row per metric column, in column order, with columns ``metric``
        (e.g. ``"ndcg"``), ``k`` (int), ``value`` (mean over users), ``low``
        and ``high`` (percentile bootstrap interval of the mean, resampling
        users) and ``users`` (number of users).
    """
    if not isinstance(per_user, pd.DataFrame):
        raise TypeError(f"per_user must be a DataFrame from per_user_metrics, got {type(per_user).__name__}")
    rows = []
    for column in per_user.columns:
        if column == "n_relevant":
            continue
        metric, _, k = str(column).rpartition("@")
        if not metric or not k.isdigit():
            raise ValueError(f"column {column!r} is not named metric@k (e.g. 'ndcg@10')")
        values = _as_sample(per_user[column].to_numpy(), f"column {column!r}")
        low, high = bootstrap_interval(values, n_boot=n_boot, level=level, seed=seed)
        rows.append({"metric": metric, "k": int(k), "value": float(values.mean()), "low": low,
                     "high": high, "users": int(values.size)})
    if not rows:
        raise ValueError("per_user has no metric column (columns named metric@k)")
    return pd.DataFrame(rows, columns=["metric", "k", "value", "low", "high", "users"])
