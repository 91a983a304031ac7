"""Spark MLlib's ALS (``engine: spark``): the objective the installed MLlib solves, its interface contract,
and implicit's ALS and MLlib's ranking the planted problem of test_recommend.py alike.

Every fit runs in the session-scoped ``local[2]`` session of tests/conftest.py (skipped without PySpark,
a failure under ``CI=true``). Spark plans slowly, so the file makes three small fits: the planted problem,
a 30 × 8 matrix, and one sweep setting.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy import stats

from funnelkit.eventlog import EventLog
from funnelkit.params import SweepGrid
from funnelkit.recommend import (ALSRecommender, BPRRecommender, ItemKNNRecommender, PopularityRecommender,
                                 RandomRecommender, SparkALSRecommender, evaluate, models_from_params, sweep,
                                 temporal_split)
from funnelkit.recommend import metrics
from funnelkit.recommend.matrix import stored
from tests.test_recommend import PLANTED_SPEC, planted_frame

# ---------------------------------------------------------------------------
# a small matrix with the awkward rows: an empty user, a user whose only entry is a stored 0, an
# item nobody has with a positive weight, and a stored 0 beside positive entries
# ---------------------------------------------------------------------------
SMALL_USERS, SMALL_ITEMS = 30, 8
EMPTY_USER, ZERO_USER, ZERO_ITEM = 28, 29, 7
SMALL = dict(factors=4, regularization=0.1, alpha=2.5, iterations=5, seed=3)


def small_matrix() -> sp.csr_matrix:
    rng = np.random.default_rng(0)
    cells = rng.random((SMALL_USERS, SMALL_ITEMS)) < 0.4
    cells[np.arange(SMALL_USERS), rng.integers(0, ZERO_ITEM, SMALL_USERS)] = True  # every user has an item
    cells[np.arange(ZERO_ITEM), np.arange(ZERO_ITEM)] = True  # and every item but ZERO_ITEM a user
    cells[:, ZERO_ITEM] = False
    cells[[EMPTY_USER, ZERO_USER]] = False
    rows, cols = np.nonzero(cells)
    data = rng.integers(1, 11, len(rows)).astype(np.float32)
    # stored zeros: user 29's only entry (on the zero item) and one beside user 0's positive entries
    zero_col = int(np.flatnonzero(~cells[0, :ZERO_ITEM])[0])
    rows, cols = np.r_[rows, ZERO_USER, 0], np.r_[cols, ZERO_ITEM, zero_col]
    data = np.r_[data, 0.0, 0.0].astype(np.float32)
    matrix = sp.csr_matrix((data, (rows, cols)), shape=(SMALL_USERS, SMALL_ITEMS))
    assert matrix.nnz == cells.sum() + 2  # the zeros are stored: the users have seen those items
    return matrix


@pytest.fixture(scope="module")
def small(spark):
    train = small_matrix()
    model = SparkALSRecommender(**SMALL, spark=spark)
    assert not [name for name in vars(model) if name.endswith("_")]  # nothing learned before fit
    assert model.fit(train) is model
    return train, model


def test_mllib_user_factors_solve_the_documented_normal_equations(small):
    """MLlib's last half-step solves the users from the final item factors, so the collected factors must
    solve (YᵀY + Σ_i α r_ui y_i y_iᵀ + λ n_u I) x_u = Σ_i (1 + α r_ui) y_i exactly (confidence 1 + α r,
    preference 1, λ scaled by the user's number of positive entries), and not implicit's
    (YᵀY + Σ_i (α r_ui − 1) y_i y_iᵀ + λ I) x_u = Σ_i α r_ui y_i."""
    train, model = small
    alpha, lam = SMALL["alpha"], SMALL["regularization"]
    X, Y = model.user_factors_.astype(np.float64), model.item_factors_.astype(np.float64)
    gram, eye = Y.T @ Y, np.eye(Y.shape[1])
    solved = []
    for u in range(SMALL_USERS):
        row = train[u]
        items, r = row.indices[row.data > 0], row.data[row.data > 0].astype(np.float64)
        if not len(items):
            continue
        Yu = Y[items]
        mllib = np.linalg.solve(gram + (Yu.T * (alpha * r)) @ Yu + lam * len(items) * eye, Yu.T @ (1 + alpha * r))
        implicit = np.linalg.solve(gram + (Yu.T * (alpha * r - 1)) @ Yu + lam * eye, Yu.T @ (alpha * r))
        solved.append((X[u], mllib, implicit))
    got, mllib, implicit = (np.array(column) for column in zip(*solved))
    assert len(got) == SMALL_USERS - 2
    scale = np.abs(got).max()
    # float32 factors out of a float64 solve: ~1e-7 relative; a wrong confidence or λ is off by > 1e-2
    np.testing.assert_allclose(got, mllib, rtol=1e-4, atol=1e-5 * scale)
    assert np.abs(got - implicit).max() > 1e-2 * scale


def test_rows_and_columns_without_a_positive_entry_get_zero_factors(small):
    train, model = small
    assert model.user_factors_.shape == (SMALL_USERS, SMALL["factors"]) and model.user_factors_.dtype == np.float32
    assert model.item_factors_.shape == (SMALL_ITEMS, SMALL["factors"]) and model.item_factors_.dtype == np.float32
    assert not model.user_factors_[[EMPTY_USER, ZERO_USER]].any() and not model.item_factors_[ZERO_ITEM].any()
    others = np.delete(model.user_factors_, [EMPTY_USER, ZERO_USER], axis=0)
    assert (np.abs(others).sum(axis=1) > 0).all()


def test_spark_als_follows_the_estimator_contract(small, spark):
    _, model = small
    assert (model.factors, model.regularization, model.alpha, model.iterations, model.seed) == \
        tuple(SMALL[key] for key in ("factors", "regularization", "alpha", "iterations", "seed"))
    assert model.spark is spark and model.blocks is None  # parameters stay as given
    assert model.name == "ALS" and model.library == "Spark MLlib" and model.spark_version_ == spark.version
    assert set(model.timings_) == {"to_spark", "fit", "collect"}
    assert model.fit_seconds_ > 0 and model.fit_seconds_ == pytest.approx(sum(model.timings_.values()))


def test_spark_als_pads_with_minus_one_and_never_returns_seen_items_including_stored_zeros(small):
    train, model = small
    users = np.array([0, 1, 2, 3, EMPTY_USER, ZERO_USER])
    k = SMALL_ITEMS + 2
    seen = stored(train[users]).toarray() != 0  # a stored 0 is a seen item
    got = model.recommend(users, train, k, exclude_seen=True)
    assert got.shape == (len(users), k) and got.dtype == np.int64
    for u, row in enumerate(got):
        shown = row[row >= 0]
        assert sorted(shown) == np.flatnonzero(~seen[u]).tolist(), (users[u], row)
        assert (row[len(shown):] == -1).all()
    zero_col = train[0].indices[train[0].data == 0][0]
    assert zero_col not in got[0]
    kept = model.recommend(users, train, k, exclude_seen=False)
    assert (np.sort(kept[:, :SMALL_ITEMS], axis=1) == np.arange(SMALL_ITEMS)).all()
    assert (kept[:, SMALL_ITEMS:] == -1).all()
    # the ranking is the factors' dot product, best first
    scores = model.user_factors_[users] @ model.item_factors_.T
    assert (np.diff(np.take_along_axis(scores, kept[:, :SMALL_ITEMS], axis=1), axis=1) <= 0).all()
    assert model.recommend(np.array([], dtype=int), train, 3).shape == (0, 3)


def test_similar_items_are_the_cosine_nearest_item_factors_without_the_item(small):
    _, model = small
    Y = model.item_factors_.astype(np.float64)
    items = np.array([0, 3, 5])
    got = model.similar_items(items, 3)
    assert got.shape == (3, 3)
    for item, row in zip(items, got):
        cosine = Y @ Y[item] / (np.linalg.norm(Y, axis=1) * np.linalg.norm(Y[item]) + 1e-300)
        cosine[item] = -np.inf
        np.testing.assert_array_equal(row, np.argsort(-cosine, kind="stable")[:3])
    everything = model.similar_items(items, SMALL_ITEMS + 1)
    assert (everything[:, SMALL_ITEMS - 1:] == -1).all() and not (everything == items[:, None]).any()


# ---------------------------------------------------------------------------
# the planted problem: four taste groups with their own blocks of items (tests/test_recommend.py)
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def planted():
    return temporal_split(EventLog.from_frame(planted_frame()), PLANTED_SPEC)


@pytest.fixture(scope="module")
def both(planted, spark):
    als = PLANTED_SPEC.als
    models = {
        "implicit": ALSRecommender(als.factors, als.regularization, als.alpha, als.iterations, 1, PLANTED_SPEC.seed),
        "MLlib": SparkALSRecommender(als.factors, als.regularization, als.alpha, als.iterations,
                                     seed=PLANTED_SPEC.seed, spark=spark),
        "popularity": PopularityRecommender(),
    }
    return evaluate(models, planted, PLANTED_SPEC.k)


def test_implicit_and_mllib_als_both_beat_popularity_on_the_planted_blocks(both):
    # ALS's NDCG@5 is 0.34-0.41 and popularity's about 0.01 on seeds 0-3 of the planted problem, for both libraries
    ndcg = {name: frame["ndcg@5"].mean() for name, frame in both.per_user.items()}
    for name in ("implicit", "MLlib"):
        assert ndcg[name] > ndcg["popularity"] + 0.2, ndcg
        diff, low, high = both.difference(name, "popularity", "ndcg", 5, n_boot=500)
        assert low > 0.15 and low <= diff <= high
    assert both.per_user["MLlib"]["hit@5"].mean() > 0.6  # popularity's hit@5 is about 0.05
    # the MLlib lists went through the same metric code
    again = metrics.per_user_metrics(both.recommended["MLlib"], both.split.truth[both.users], PLANTED_SPEC.k)
    assert again.equals(both.per_user["MLlib"])


def scores_of(model, users) -> np.ndarray:
    if isinstance(model, SparkALSRecommender):
        return model.user_factors_[users] @ model.item_factors_.T
    if isinstance(model, PopularityRecommender):
        return np.broadcast_to(model.scores_, (len(users), len(model.scores_)))
    return model.model_.user_factors[users] @ model.model_.item_factors.T


def planted_auc(scores, own_block, unseen) -> np.ndarray:
    """Per user, P(an unseen item of the user's own block outscores an unseen item of another block or a popular
    item): 1 = the planted taste perfectly recovered, 0.5 = blind to it."""
    out = []
    for s, own, candidate in zip(scores, own_block, unseen):
        pos, neg = s[own & candidate], s[~own & candidate]
        out.append(stats.mannwhitneyu(pos, neg).statistic / (len(pos) * len(neg)))
    return np.array(out)


def test_implicit_and_mllib_rank_the_planted_preferences_alike(both, planted):
    """Both recover the planted blocks, and they agree with each other about as much as implicit agrees with
    itself started from another seed.

    Measured on seeds 0-3 of the planted problem: per-user AUC of the own block 0.988-0.998 for both (popularity,
    blind to taste, is near 0.5 or below); between MLlib and implicit a mean Spearman correlation of the per-user
    scores of unseen items of 0.70-0.89 and a top-10 overlap of 0.88-0.93, against 0.72-0.84 and 0.90-0.92 for
    implicit with seed 0 against seed 1, and 0.04-0.08 (Spearman) and 0.17-0.20 (overlap) for ALS against
    popularity. The thresholds sit below the worst seed and far above the popularity contrast."""
    users, train = both.users, planted.train.matrix
    user_group = np.array([u[:2] for u in planted.train.user_ids[users]])
    item_group = np.array([i[:2] for i in planted.train.item_ids])
    own_block = user_group[:, None] == item_group[None, :]
    unseen = train[users].toarray() == 0
    models = both.models
    auc = {name: planted_auc(scores_of(m, users), own_block, unseen).mean() for name, m in models.items()}
    assert auc["implicit"] > 0.95 and auc["MLlib"] > 0.95 and auc["popularity"] < 0.65, auc

    als = PLANTED_SPEC.als
    reseeded = ALSRecommender(als.factors, als.regularization, als.alpha, als.iterations, 1, seed=1).fit(train)

    def spearman(a, b) -> float:
        return float(np.mean([stats.spearmanr(x[m], y[m]).statistic for x, y, m in zip(a, b, unseen)]))

    def overlap(a, b, k=10) -> float:
        return float(np.mean([len(set(x) & set(y)) / k for x, y in zip(a[:, :k], b[:, :k])]))

    mllib, implicit = scores_of(models["MLlib"], users), scores_of(models["implicit"], users)
    rho = spearman(mllib, implicit)
    rho_self = spearman(scores_of(reseeded, users), implicit)
    rho_popularity = spearman(scores_of(models["popularity"], users), implicit)
    assert rho > 0.6 and rho > rho_self - 0.15 and rho_popularity < 0.3, (rho, rho_self, rho_popularity)
    lists = both.recommended
    shared = overlap(lists["MLlib"], lists["implicit"])
    shared_self = overlap(reseeded.recommend(users, train, 10), lists["implicit"])
    assert shared > 0.8 and shared > shared_self - 0.1, (shared, shared_self)
    assert overlap(lists["popularity"], lists["implicit"]) < 0.4


# ---------------------------------------------------------------------------
# models_from_params and the sweep with a session
# ---------------------------------------------------------------------------


def test_models_from_params_with_a_session_fits_als_with_mllib_and_keeps_the_baselines(spark):
    spec = PLANTED_SPEC
    default, on_spark = models_from_params(spec), models_from_params(spec, spark=spark)
    assert list(on_spark) == list(default) == ["ALS", "BPR", "item-kNN", "popularity", "random"]
    als = on_spark["ALS"]
    assert isinstance(als, SparkALSRecommender) and als.library == "Spark MLlib" and als.spark is spark
    assert (als.factors, als.regularization, als.alpha, als.iterations, als.seed) == \
        (spec.als.factors, spec.als.regularization, spec.als.alpha, spec.als.iterations, spec.seed)
    assert isinstance(default["ALS"], ALSRecommender) and default["ALS"].library == "implicit"
    for name, kind in (("BPR", BPRRecommender), ("item-kNN", ItemKNNRecommender),
                       ("popularity", PopularityRecommender), ("random", RandomRecommender)):
        assert type(on_spark[name]) is kind
    chosen = spec.als.model_copy(update={"factors": 4, "alpha": 1.0})
    assert models_from_params(spec, chosen, spark=spark)["ALS"].factors == 4


def test_sweep_with_a_session_scores_mllib_fits(both, planted, spark):
    """One grid setting equal to the planted settings, swept on the planted split: the row is the NDCG@5 of the
    MLlib model the ``both`` fixture evaluated (same settings, seed, blocks and users: MLlib is deterministic)."""
    als = PLANTED_SPEC.als
    grid = SweepGrid(factors=[als.factors], regularization=[als.regularization], alpha=[als.alpha])
    spec = PLANTED_SPEC.model_copy(update={"sweep": grid})
    table = sweep(planted, spec, spark=spark)
    assert len(table) == 1
    assert table.loc[0, "ndcg@5"] == pytest.approx(both.per_user["MLlib"]["ndcg@5"].mean(), abs=1e-12)
    assert table.loc[0, "ndcg@5"] != pytest.approx(both.per_user["implicit"]["ndcg@5"].mean(), abs=1e-12)
