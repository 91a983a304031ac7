"""Ranking metrics: hand-computed answers, a brute force on random cases, agreement with
implicit's own evaluation, bootstrap intervals against theory, and bad inputs refused."""
from __future__ import annotations

import math
import time
import tracemalloc

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from funnelkit.recommend import metrics
from tests.reference import ranking_bruteforce as brute

# ---------------------------------------------------------------------------
# a crafted example, worked out by hand
# ---------------------------------------------------------------------------
#   user 0: ranks 1..5 = items 2 5 7 1 0, relevant {2, 7}      -> rel 1 0 1 0 0, R = 2
#   user 1: ranks 1..5 = items 4 3 -  -  -, relevant {3, 6, 7} -> rel 0 1 0 0 0, R = 3
#           (its padding -1 encodes the pair key of user 0's item 7: it must not count)
#   user 2: ranks 1..5 = items 0 1 2 3 4, relevant {5}          -> rel 0 0 0 0 0, R = 1
#           (item 0 is stored as an explicit 0 and item 5 twice: 0.5 + 0.5)
N_ITEMS = 8
RECOMMENDED = np.array([[2, 5, 7, 1, 0], [4, 3, -1, -1, -1], [0, 1, 2, 3, 4]])
LOG2_3 = math.log2(3)


def crafted_truth() -> sp.csr_matrix:
    # built from raw CSR arrays so the duplicate and the stored zero survive (not canonical)
    indptr = [0, 2, 5, 8]
    indices = [7, 2, 6, 3, 7, 5, 0, 5]
    data = [1.0, 3.0, 1.0, 1.0, 2.0, 0.5, 0.0, 0.5]
    return sp.csr_matrix((data, indices, indptr), shape=(3, N_ITEMS))


EXPECTED = {
    # user 0
    (0, "precision", 1): 1.0, (0, "recall", 1): 0.5, (0, "ap", 1): 1.0, (0, "ndcg", 1): 1.0, (0, "hit", 1): 1.0,
    (0, "precision", 3): 2 / 3, (0, "recall", 3): 1.0, (0, "ap", 3): (1 / 1 + 2 / 3) / 2,
    (0, "ndcg", 3): (1 + 1 / 2) / (1 + 1 / LOG2_3), (0, "hit", 3): 1.0,
    (0, "precision", 5): 2 / 5, (0, "recall", 5): 1.0, (0, "ap", 5): (1 / 1 + 2 / 3) / 2,
    (0, "ndcg", 5): (1 + 1 / math.log2(4)) / (1 + 1 / LOG2_3), (0, "hit", 5): 1.0,
    # user 1: one hit at rank 2
    (1, "precision", 1): 0.0, (1, "recall", 1): 0.0, (1, "ap", 1): 0.0, (1, "ndcg", 1): 0.0, (1, "hit", 1): 0.0,
    (1, "precision", 3): 1 / 3, (1, "recall", 3): 1 / 3, (1, "ap", 3): (1 / 2) / 3,
    (1, "ndcg", 3): (1 / LOG2_3) / (1 + 1 / LOG2_3 + 1 / 2), (1, "hit", 3): 1.0,
    (1, "precision", 5): 1 / 5, (1, "recall", 5): 1 / 3, (1, "ap", 5): (1 / 2) / 3,
    (1, "ndcg", 5): (1 / LOG2_3) / (1 + 1 / LOG2_3 + 1 / 2), (1, "hit", 5): 1.0,
}
for _k in (1, 3, 5):  # user 2 finds nothing
    for _name in metrics.METRICS:
        EXPECTED[(2, _name, _k)] = 0.0


def test_hits_on_crafted_example():
    expected = np.array([[1, 0, 1, 0, 0], [0, 1, 0, 0, 0], [0, 0, 0, 0, 0]], dtype=bool)
    np.testing.assert_array_equal(metrics.hits(RECOMMENDED, crafted_truth()), expected)


def test_per_user_metrics_on_crafted_example():
    table = metrics.per_user_metrics(RECOMMENDED, crafted_truth(), [1, 3, 5])
    assert list(table.columns) == ["n_relevant"] + [f"{m}@{k}" for k in (1, 3, 5) for m in metrics.METRICS]
    assert table["n_relevant"].tolist() == [2, 3, 1]
    for (user, name, k), value in EXPECTED.items():
        assert table.loc[user, f"{name}@{k}"] == pytest.approx(value, abs=1e-15), (user, name, k)


def test_k_can_be_given_in_any_order_and_as_numpy_ints():
    table = metrics.per_user_metrics(RECOMMENDED, crafted_truth(), np.array([5, 1]))
    assert list(table.columns[1:6]) == [f"{m}@5" for m in metrics.METRICS]
    assert table.loc[0, "ap@5"] == pytest.approx((1 + 2 / 3) / 2)


def test_implicit_style_on_crafted_example():
    result = metrics.implicit_style(RECOMMENDED, crafted_truth(), 5)
    # pooled: (2 + 1 + 0) hits over min(5, R) = 2 + 3 + 1
    assert result["precision"] == pytest.approx(3 / 6)
    assert result["map"] == pytest.approx(((1 + 2 / 3) / 2 + 1 / 6 + 0) / 3)
    assert result["ndcg"] == pytest.approx(
        ((1 + 1 / 2) / (1 + 1 / LOG2_3) + (1 / LOG2_3) / (1 + 1 / LOG2_3 + 1 / 2)) / 3)
    # ...whereas the standard precision@5 is the mean of 2/5, 1/5, 0
    assert metrics.per_user_metrics(RECOMMENDED, crafted_truth(), [5])["precision@5"].mean() == pytest.approx(1 / 5)


def test_coverage_known_answers():
    assert metrics.coverage(RECOMMENDED, N_ITEMS, 1) == 3 / 8  # items 2, 4, 0
    assert metrics.coverage(RECOMMENDED, N_ITEMS, 2) == 6 / 8  # + 5, 3, 1
    assert metrics.coverage(RECOMMENDED, N_ITEMS, 5) == 7 / 8  # + 7 (padding is no item); 6 never shown
    assert metrics.coverage(RECOMMENDED, 100, 5) == 7 / 100


def test_novelty_known_answers():
    recommended = np.array([[0, 1], [3, -1]])
    popularity = np.array([0.5, 0.25, 0.125, 1 / 16])
    assert metrics.novelty(recommended, popularity, 2) == pytest.approx((1 + 2 + 4) / 3)
    assert metrics.novelty(recommended, popularity, 1) == pytest.approx((1 + 4) / 2)
    everyone = np.array([1.0, 1.0])
    assert metrics.novelty(np.array([[0, 1]]), everyone, 2) == 0.0


def test_novelty_floors_unseen_items():
    recommended = np.array([[0, 1]])
    popularity = np.array([0.0, 0.5])
    assert metrics.novelty(recommended, popularity, 2) == pytest.approx((math.log2(1e6) + 1) / 2)
    assert metrics.novelty(recommended, popularity, 2, min_share=2.0**-10) == pytest.approx((10 + 1) / 2)
    # the floor only lifts shares below it
    assert metrics.novelty(np.array([[1]]), popularity, 1, min_share=0.3) == pytest.approx(1.0)


# ---------------------------------------------------------------------------
# random cases against the brute force
# ---------------------------------------------------------------------------


@st.composite
def ranking_cases(draw, every_user_relevant: bool = True):
    """(recommended, truth, k_values) with distinct items per row, -1 padding anywhere, and a
    non-canonical truth: shuffled columns, values split over duplicate entries, stored zeros and
    entries that cancel to 0 (not relevant)."""
    n_users = draw(st.integers(1, 6))
    n_items = draw(st.integers(1, 10))
    width = draw(st.integers(1, 7))
    rows = []
    for _ in range(n_users):
        n_shown = draw(st.integers(0, min(width, n_items)))
        row = draw(st.permutations(range(n_items)))[:n_shown] + [-1] * (width - n_shown)
        rows.append(draw(st.permutations(row)) if draw(st.booleans()) else row)
    indptr, indices, data = [0], [], []
    for _ in range(n_users):
        relevant = draw(st.sets(st.integers(0, n_items - 1), min_size=int(every_user_relevant), max_size=n_items))
        others = [i for i in range(n_items) if i not in relevant]
        entries = []
        for item in relevant:
            value = draw(st.sampled_from([1.0, 2.5, -1.0]))
            entries += [(item, value / 2), (item, value / 2)] if draw(st.booleans()) else [(item, value)]
        for item in draw(st.sets(st.sampled_from(others), max_size=len(others))) if others else ():
            entries += [(item, 0.0)] if draw(st.booleans()) else [(item, 1.0), (item, -1.0)]
        entries = draw(st.permutations(entries))
        indices += [item for item, _ in entries]
        data += [value for _, value in entries]
        indptr.append(len(indices))
    truth = sp.csr_matrix((np.array(data, dtype=float), np.array(indices, dtype=np.int32), np.array(indptr)),
                          shape=(n_users, n_items))
    k_values = draw(st.lists(st.integers(1, width), min_size=1, max_size=width, unique=True))
    return np.array(rows, dtype=np.int64).reshape(n_users, width), truth, k_values


@settings(max_examples=300, deadline=None)
@given(ranking_cases())
def test_per_user_metrics_match_brute_force(case):
    recommended, truth, k_values = case
    table = metrics.per_user_metrics(recommended, truth, k_values)
    expected = pd.DataFrame(brute.per_user_metrics(recommended, truth, k_values))
    assert list(table.columns) == list(expected.columns)
    np.testing.assert_array_equal(table["n_relevant"].to_numpy(), expected["n_relevant"].to_numpy())
    np.testing.assert_allclose(table.to_numpy(dtype=float), expected.to_numpy(dtype=float), rtol=0, atol=1e-12)
    for k in k_values:
        ours = metrics.implicit_style(recommended, truth, k)
        theirs = brute.implicit_style(recommended, truth, k)
        for name in ("precision", "map", "ndcg"):
            assert ours[name] == pytest.approx(theirs[name], abs=1e-12)


@settings(max_examples=300, deadline=None)
@given(ranking_cases(every_user_relevant=False), st.data())
def test_hits_coverage_novelty_match_brute_force(case, data):
    recommended, truth, k_values = case
    np.testing.assert_array_equal(metrics.hits(recommended, truth), np.array(brute.hits(recommended, truth), bool))
    n_items = truth.shape[1]
    popularity = np.array(data.draw(st.lists(st.sampled_from([0.0, 1e-9, 0.01, 0.3, 1.0]),
                                             min_size=n_items, max_size=n_items)))
    for k in k_values:
        assert metrics.coverage(recommended, n_items, k) == pytest.approx(
            brute.coverage(recommended, n_items, k), abs=1e-12)
        if (recommended[:, :k] >= 0).any():
            assert metrics.novelty(recommended, popularity, k) == pytest.approx(
                brute.novelty(recommended, popularity, k), abs=1e-12)
            assert metrics.novelty(recommended, popularity, k, min_share=0.05) == pytest.approx(
                brute.novelty(recommended, popularity, k, min_share=0.05), abs=1e-12)
        else:
            with pytest.raises(ValueError, match="all padding"):
                metrics.novelty(recommended, popularity, k)


# ---------------------------------------------------------------------------
# agreement with implicit
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def als_case():
    from implicit.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(7)
    n_users, n_items = 200, 100
    # four taste groups, each mostly buying its own quarter of the catalogue, so the model finds hits
    in_group = (np.arange(n_users)[:, None] % 4) == (np.arange(n_items)[None, :] // 25)
    share = np.where(in_group, 0.3, 0.02)
    draw = rng.random((n_users, n_items))
    train = draw < 0.6 * share
    test = (draw >= 0.6 * share) & (draw < share)  # disjoint from train
    test[rng.choice(n_users, 20, replace=False)] = False  # users without test items: implicit skips them
    train, test = sp.csr_matrix(train.astype(np.float32)), sp.csr_matrix(test.astype(np.float32))
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(factors=8, iterations=3, random_state=0, use_gpu=False)
        model.fit(train, show_progress=False)
    return model, train, test


@pytest.mark.parametrize("k", [1, 5, 10])
def test_implicit_style_equals_implicit_ranking_metrics(als_case, k):
    from implicit.evaluation import ranking_metrics_at_k

    model, train, test = als_case
    users = np.flatnonzero(np.diff(test.indptr))
    assert 0 < users.size < train.shape[0]  # some users without test items, to check they are skipped
    ids, _ = model.recommend(users, train[users], N=k, filter_already_liked_items=True)
    ours = metrics.implicit_style(ids, test[users], k)
    theirs = ranking_metrics_at_k(model, train, test, K=k, show_progress=False)
    for name in ("precision", "map", "ndcg"):
        assert ours[name] == pytest.approx(theirs[name], abs=1e-9), name
    assert ours["precision"] > 0  # the comparison must involve hits
    # implicit's precision is pooled over min(k, R): it is never below the mean standard precision@k,
    # and above it as soon as a user with hits has fewer than k relevant items
    standard = metrics.per_user_metrics(ids, test[users], [k])[f"precision@{k}"].mean()
    if k > 1:
        assert theirs["precision"] > standard + 1e-6


# ---------------------------------------------------------------------------
# bootstrap
# ---------------------------------------------------------------------------


def test_bootstrap_interval_covers_a_known_mean_about_95_times_in_100():
    """200 seeded samples of 200 exponential values (mean 1, skewed as per-user metrics are): the percentile
    interval misses the true mean 1 in about 5% of them (a bit more for a skewed mean at this n)."""
    covered = []
    for seed in range(200):
        values = np.random.default_rng(seed).exponential(size=200)
        low, high = metrics.bootstrap_interval(values, n_boot=500, seed=seed)
        covered.append(low <= 1.0 <= high)
    assert 0.88 <= np.mean(covered) <= 0.98, np.mean(covered)


def test_bootstrap_interval_is_deterministic_and_widens_with_the_level():
    values = np.random.default_rng(1).exponential(size=500)
    low, high = metrics.bootstrap_interval(values, seed=3)
    assert metrics.bootstrap_interval(values, seed=3) == (low, high)
    assert metrics.bootstrap_interval(values, seed=4) != (low, high)
    wider = metrics.bootstrap_interval(values, seed=3, level=0.99)
    assert wider[0] < low and wider[1] > high


@pytest.mark.parametrize("kind", ["continuous", "binary"])
def test_bootstrap_width_shrinks_like_one_over_sqrt_n(kind):
    rng = np.random.default_rng(2)

    def sample(n):
        return rng.normal(size=n) if kind == "continuous" else (rng.random(n) < 0.3).astype(float)

    small = metrics.bootstrap_interval(sample(2_000), seed=0)
    large = metrics.bootstrap_interval(sample(8_000), seed=0)
    ratio = (large[1] - large[0]) / (small[1] - small[0])
    assert 0.35 < ratio < 0.65  # 1/sqrt(4) = 0.5


def test_bootstrap_matches_normal_theory_for_continuous_values():
    values = np.random.default_rng(5).normal(loc=3.0, scale=2.0, size=20_000)
    low, high = metrics.bootstrap_interval(values, seed=0)
    half = 1.96 * values.std(ddof=1) / math.sqrt(values.size)
    assert low == pytest.approx(values.mean() - half, abs=0.1 * half)
    assert high == pytest.approx(values.mean() + half, abs=0.1 * half)


def test_bootstrap_matches_normal_theory_for_few_distinct_values():
    # few distinct values: the multinomial-counts path
    values = (np.random.default_rng(6).random(200_000) < 0.3).astype(float)
    p = values.mean()
    low, high = metrics.bootstrap_interval(values, seed=0)
    half = 1.96 * math.sqrt(p * (1 - p) / values.size)
    assert low == pytest.approx(p - half, abs=0.1 * half)
    assert high == pytest.approx(p + half, abs=0.1 * half)


def test_bootstrap_of_a_constant_is_that_constant():
    assert metrics.bootstrap_interval(np.full(50, 0.25)) == (0.25, 0.25)  # index path (50 users, 1 value)
    assert metrics.bootstrap_interval(np.full(5_000, 0.25)) == (0.25, 0.25)  # multinomial path


def test_bootstrap_million_users_is_fast():
    # per-user ranking metrics take few distinct values (ndcg@k of binary relevance)
    rng = np.random.default_rng(8)
    support = rng.random(300)
    values = rng.choice(support, size=1_000_000)
    start = time.perf_counter()
    low, high = metrics.bootstrap_interval(values, n_boot=1000)
    assert time.perf_counter() - start < 5
    # the multinomial path draws the true bootstrap distribution: the normal-theory interval, with the
    # standard deviation of the known support
    half = 1.96 * support.std() / math.sqrt(values.size)
    assert low == pytest.approx(values.mean() - half, abs=0.1 * half)
    assert high == pytest.approx(values.mean() + half, abs=0.1 * half)


def test_bootstrap_memory_is_bounded():
    values = np.random.default_rng(9).random(200_000)  # all distinct: the index path
    tracemalloc.start()
    try:
        metrics.bootstrap_interval(values, n_boot=200)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # a 200 x 200_000 matrix of int64 indices alone would be 320 MB
    assert peak < 120e6


def test_paired_difference():
    rng = np.random.default_rng(10)
    a = rng.random(1_000)
    assert metrics.paired_difference(a, a.copy()) == (0.0, 0.0, 0.0)
    shifted = metrics.paired_difference(a + 0.1, a)
    assert shifted == pytest.approx((0.1, 0.1, 0.1), abs=1e-12)
    # pairing removes the shared between-user spread: the interval is far narrower than unpaired ones
    b = a + rng.normal(scale=0.01, size=a.size)
    estimate, low, high = metrics.paired_difference(a, b, seed=1)
    assert estimate == pytest.approx(a.mean() - b.mean())
    unpaired = metrics.bootstrap_interval(a)
    assert high - low < (unpaired[1] - unpaired[0]) / 10


def test_paired_difference_covers_a_known_difference_about_95_times_in_100():
    """Two models sharing each user's spread (exponential), one better by 0.1 plus its own noise: over 200
    seeded samples of 300 users the paired interval holds the true difference 0.1 in about 95% of them."""
    covered = []
    for seed in range(200):
        rng = np.random.default_rng(seed)
        shared = rng.exponential(size=300)
        a, b = shared + 0.1 + rng.normal(scale=0.05, size=300), shared
        _, low, high = metrics.paired_difference(a, b, n_boot=500, seed=seed)
        covered.append(low <= 0.1 <= high)
    assert 0.88 <= np.mean(covered) <= 0.98, np.mean(covered)


# ---------------------------------------------------------------------------
# summarize
# ---------------------------------------------------------------------------


def test_summarize():
    per_user = metrics.per_user_metrics(RECOMMENDED, crafted_truth(), [3, 5])
    table = metrics.summarize(per_user, n_boot=200, seed=4)
    assert list(table.columns) == ["metric", "k", "value", "low", "high", "users"]
    assert table["metric"].tolist() == list(metrics.METRICS) * 2
    assert table["k"].tolist() == [3] * 5 + [5] * 5
    assert all(isinstance(k, (int, np.integer)) for k in table["k"])
    ndcg5 = table[(table["metric"] == "ndcg") & (table["k"] == 5)].iloc[0]
    assert ndcg5["value"] == pytest.approx((EXPECTED[(0, "ndcg", 5)] + EXPECTED[(1, "ndcg", 5)]) / 3)
    assert (ndcg5["low"], ndcg5["high"]) == metrics.bootstrap_interval(per_user["ndcg@5"].to_numpy(), n_boot=200,
                                                                       seed=4)
    assert (table["users"] == 3).all()
    for row in table.itertuples():  # every mean against the hand-computed per-user answers
        assert row.value == pytest.approx(sum(EXPECTED[(u, row.metric, row.k)] for u in range(3)) / 3), row


def test_summarize_intervals_of_three_users_are_their_smallest_and_largest_values():
    """With 3 users, all 3 resampled from the lowest (or the highest) has probability at least 1/27 > 2.5%:
    the exact bootstrap interval is [min, max] of the per-user values (hand-computed in EXPECTED); 4000
    resamples put about 148 means at each end, far more than the 100 the 2.5% quantile reads."""
    per_user = metrics.per_user_metrics(RECOMMENDED, crafted_truth(), [3, 5])
    table = metrics.summarize(per_user, n_boot=4000, seed=4)
    for row in table.itertuples():
        users = [EXPECTED[(u, row.metric, row.k)] for u in range(3)]
        assert (row.low, row.high) == pytest.approx((min(users), max(users)), abs=1e-12), row


def test_summarize_rejects_unnamed_columns():
    with pytest.raises(ValueError, match="metric@k"):
        metrics.summarize(pd.DataFrame({"n_relevant": [1], "score": [0.5]}))
    with pytest.raises(ValueError, match="no metric column"):
        metrics.summarize(pd.DataFrame({"n_relevant": [1]}))


# ---------------------------------------------------------------------------
# scale: vectorised over users
# ---------------------------------------------------------------------------


def test_million_users_top_20():
    rng = np.random.default_rng(11)
    n_users, n_items, k, step = 1_000_000, 50_000, 20, 7_919  # step is prime to n_items: distinct items per row
    offset = rng.integers(0, n_items, n_users)
    recommended = ((offset[:, None] + step * np.arange(k)) % n_items).astype(np.int32)
    recommended[rng.random(n_users) < 0.1, 15:] = -1
    n_relevant = rng.integers(1, 6, n_users)
    rows = np.repeat(np.arange(n_users), n_relevant)
    # positions 0..39 along the same progression: about half fall inside the top 20
    columns = (offset[rows] + step * rng.integers(0, 40, rows.size)) % n_items
    truth = sp.csr_matrix((np.ones(rows.size), (rows, columns)), shape=(n_users, n_items))
    start = time.perf_counter()
    table = metrics.per_user_metrics(recommended, truth, [5, 10, 20])
    assert time.perf_counter() - start < 20  # ~2 s vectorised; a loop over users takes minutes
    assert table["hit@20"].mean() > 0.5
    check = rng.choice(n_users, 200, replace=False)
    expected = pd.DataFrame(brute.per_user_metrics(recommended[check], truth[check], [5, 10, 20]))
    np.testing.assert_allclose(table.iloc[check].to_numpy(dtype=float), expected.to_numpy(dtype=float), atol=1e-12)


# ---------------------------------------------------------------------------
# bad inputs
# ---------------------------------------------------------------------------


def test_k_larger_than_width_is_refused():
    with pytest.raises(ValueError, match=r"k=6.*5 columns"):
        metrics.per_user_metrics(RECOMMENDED, crafted_truth(), [5, 6])
    with pytest.raises(ValueError, match=r"k=0"):
        metrics.per_user_metrics(RECOMMENDED, crafted_truth(), [0])
    with pytest.raises(ValueError, match=r"k=6"):
        metrics.implicit_style(RECOMMENDED, crafted_truth(), 6)
    with pytest.raises(ValueError, match=r"k=6"):
        metrics.coverage(RECOMMENDED, N_ITEMS, 6)
    with pytest.raises(ValueError, match=r"k=9"):
        metrics.novelty(RECOMMENDED, np.full(N_ITEMS, 0.5), 9)


def test_users_without_relevant_items_are_refused():
    truth = sp.csr_matrix(([1.0, 0.0], ([0, 2], [2, 5])), shape=(3, N_ITEMS))  # row 2 only has a stored 0
    with pytest.raises(ValueError, match="2 of 3 rows"):
        metrics.per_user_metrics(RECOMMENDED, truth, [5])
    with pytest.raises(ValueError, match="2 of 3 rows"):
        metrics.implicit_style(RECOMMENDED, truth, 5)


@pytest.mark.parametrize(
    "recommended, error, message",
    [
        (np.array([2, 5, 7]), ValueError, "2-D"),
        (RECOMMENDED.astype(float), TypeError, "integer"),
        (RECOMMENDED[:2], ValueError, "2 rows but truth has 3"),
        (np.where(RECOMMENDED == 7, 8, RECOMMENDED), ValueError, "item 8"),
        (np.where(RECOMMENDED == -1, -2, RECOMMENDED), ValueError, "-2"),
        (np.array([[2, 5, 2, 1, 0], [4, 3, -1, -1, -1], [0, 1, 2, 3, 4]]), ValueError, "1 rows .* twice"),
    ],
)
def test_bad_recommended_is_refused(recommended, error, message):
    with pytest.raises(error, match=message):
        metrics.per_user_metrics(recommended, crafted_truth(), [3])


def test_bad_truth_and_k_values_are_refused():
    with pytest.raises(TypeError, match="scipy.sparse"):
        metrics.hits(RECOMMENDED, crafted_truth().toarray())
    with pytest.raises(ValueError, match="empty"):
        metrics.per_user_metrics(RECOMMENDED, crafted_truth(), [])
    with pytest.raises(ValueError, match="repeated"):
        metrics.per_user_metrics(RECOMMENDED, crafted_truth(), [3, 3])
    with pytest.raises(TypeError, match="sequence"):
        metrics.per_user_metrics(RECOMMENDED, crafted_truth(), 3)


def test_bad_catalogue_inputs_are_refused():
    with pytest.raises(ValueError, match="n_items"):
        metrics.coverage(RECOMMENDED, 0, 1)
    with pytest.raises(ValueError, match="item 7 but there are only 5"):
        metrics.coverage(RECOMMENDED, 5, 5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        metrics.novelty(RECOMMENDED, np.full(N_ITEMS, 1.5), 1)
    with pytest.raises(ValueError, match="min_share"):
        metrics.novelty(RECOMMENDED, np.full(N_ITEMS, 0.5), 1, min_share=0)
    with pytest.raises(ValueError, match="item 7 but there are only 4"):
        metrics.novelty(RECOMMENDED, np.full(4, 0.5), 5)


@pytest.mark.parametrize(
    "values, kwargs, message",
    [
        (np.array([0.1, np.nan]), {}, "NaN"),
        (np.array([]), {}, "empty"),
        (np.ones((3, 2)), {}, "1-D"),
        (np.ones(3), {"level": 1.5}, "level"),
        (np.ones(3), {"n_boot": 0}, "n_boot"),
    ],
)
def test_bad_bootstrap_inputs_are_refused(values, kwargs, message):
    with pytest.raises(ValueError, match=message):
        metrics.bootstrap_interval(values, **kwargs)


def test_paired_difference_needs_the_same_users():
    with pytest.raises(ValueError, match="same users"):
        metrics.paired_difference(np.ones(3), np.ones(4))
