r"""Spark MLlib's implicit-feedback ALS behind the study's recommender interface (``engine: spark``).

:class:`SparkALSRecommender` fits ``pyspark.ml.recommendation.ALS(implicitPrefs=True)``
on the same user × item confidence matrix as :class:`~funnelkit.recommend.models.ALSRecommender`
(``implicit``), brings the factors back as NumPy arrays aligned with the matrix's rows and
columns, and ranks with the same batched top-k code, so both are scored by the same metrics.
The two libraries do not minimise the same objective for the same parameters; the class's
Notes say exactly how they differ, and :func:`normal_equations_check` shows a fitted model
solves MLlib's update (the study's check of its ALS on the Spark engine).

PySpark is an optional extra (``pip install -e ".[spark]"``); it is imported only when a
model is fitted.
"""
from __future__ import annotations

import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from .matrix import stored
from .models import DENSE_CELLS, _Scored, top_k

#: column names of the (user index, item index, weight) DataFrame handed to MLlib
USER, ITEM, RATING = "user_index", "item_index", "weight"

#: checkpoint folders made by :func:`_ensure_checkpoint_dir` (deleted after every fit)
_TEMPORARY_CHECKPOINTS: set[str] = set()


class SparkALSRecommender(_Scored):
    r"""Spark MLlib's ``ALS(implicitPrefs=True)`` trained on the confidence matrix, ranked in NumPy.

    Parameters
    ----------
    factors : int
        MLlib's ``rank``.
    regularization : float
        MLlib's ``regParam`` (λ), passed unchanged: MLlib multiplies it by each user's and
        each item's number of positive entries (see Notes).
    alpha : float
        MLlib's ``alpha``, passed unchanged: an entry of weight r gets confidence 1 + α r.
    iterations : int
        MLlib's ``maxIter`` (each iteration updates the items, then the users).
    seed : int
        MLlib's ``seed`` for the random starting factors.
    spark : pyspark.sql.SparkSession, optional
        The session to fit in; default :func:`funnelkit.engines.spark.spark_session` (``local[2]``
        unless a session is already running). It is shared, never copied.
    blocks : int, optional
        MLlib's ``numUserBlocks`` and ``numItemBlocks``. None: the session's default
        parallelism (its cores: 2 in ``local[2]``), as the RDD-based ``ALS.train(blocks=-1)``
        chose; MLlib's DataFrame default of 10 schedules five times the tasks in ``local[2]``
        (on the default shop, 16 factors: 22 s with 2 blocks, 37 s with 10).
        The blocks also seed the random starting factors (one stream per block), so a
        different number of blocks gives a different fit.
    checkpoint_interval : int
        MLlib's ``checkpointInterval``: cut the RDD lineage every this many iterations.
        Without it the lineage grows with every iteration, and serialising a task of a
        15-iteration fit already overflows the JVM's default thread stack now and then
        (``StackOverflowError``; seen on a freshly started ``local[2]`` session). MLlib only
        checkpoints when the session has a checkpoint directory: when it has none and the
        master is ``local[...]``, :meth:`fit` sets one in a temporary folder and deletes the
        folder when the fit ends (the factors are collected by then; so two fits in one such
        session must not run at the same time); on a cluster, call
        ``spark.sparkContext.setCheckpointDir`` with a shared path (never deleted by funnelkit).

    Attributes
    ----------
    user_factors_ : numpy array (n_users, factors) of float32
        Row u is MLlib's factor of matrix row u; zeros for a row without a positive entry
        (MLlib never sees it).
    item_factors_ : numpy array (n_items, factors) of float32
        Likewise for the columns.
    fit_seconds_ : float
        Wall time of :meth:`fit`: the matrix into Spark, MLlib's fit and the factors back.
    timings_ : dict
        That time split into ``to_spark``, ``fit`` and ``collect`` (seconds).
    spark_version_ : str
        The Spark version that fitted the model.

    Notes
    -----
    Both libraries implement Hu, Koren & Volinsky (2008): every cell (u, i) has a preference
    p and a confidence c, and ALS alternately solves for the user factors x and the item
    factors y the weighted least-squares problem Σ_{u,i} c_ui (p_ui − x_uᵀ y_i)² + penalty.
    For a stored weight r of the matrix (the same matrix is given to both):

    ====================  ==================================  ===========================================
    \                     implicit 0.7.3 (ALSRecommender)     Spark MLlib 4.x (this class)
    ====================  ==================================  ===========================================
    confidence, r > 0     α r                                 1 + α r
    preference, r > 0     1                                   1
    stored r = 0          confidence 0 (the cell drops out)   an unobserved cell (confidence 1, p = 0)
    r < 0                 confidence α|r|, p = 0              confidence 1 + α|r|, p = 0
    unobserved cell       confidence 1, p = 0                 confidence 1, p = 0
    penalty               λ (Σ_u ‖x_u‖² + Σ_i ‖y_i‖²)         λ (Σ_u n_u ‖x_u‖² + Σ_i n_i ‖y_i‖²)
    half-step solver      3 conjugate-gradient steps from     exact Cholesky solve of the normal
                          the previous factors (float32)      equations (accumulated in float64)
    order per iteration   users, then items                   items, then users
    starting factors      uniform on [0, 0.01)                Gaussian, scaled to unit length
    row with no entry     factor set to 0                     absent (zeros here)
    ====================  ==================================  ===========================================

    n_u (n_i) is the number of entries with r > 0 in user u's row (item i's column): MLlib
    scales λ per row ("ALS-WR", Zhou et al. 2008); implicit uses one λ for every row.

    Sources. implicit: ``implicit/cpu/als.py`` ``AlternatingLeastSquares.fit`` multiplies the
    matrix by ``alpha`` (``Cui = self.alpha * Cui``) and calls the solver with
    ``self.regularization``; ``implicit/cpu/_als.pyx`` ``_least_squares_cg`` starts from
    ``YtY + regularization * I``, adds ``(confidence - 1) y yᵀ`` per stored entry and
    ``confidence · y`` to the right-hand side only when ``confidence > 0`` (a non-positive value
    is negated: preference 0, confidence |v|). MLlib: ``ALS.scala`` ``computeFactors`` adds
    ``ls.add(srcFactor, if (rating > 0.0) 1.0 + c1 else 0.0, c1)`` with ``c1 = alpha * |rating|``
    to ``YtY``, counts ``numExplicits`` only for ``rating > 0``, and solves with
    ``numExplicits * regParam`` ("Weight lambda by the number of explicit ratings based on the
    ALS-WR paper"); ``ALS.train`` in implicit mode computes the item factors first, then the
    user factors; ``initialize`` draws Gaussian vectors normalised to length 1. The test
    ``test_mllib_user_factors_solve_the_documented_normal_equations`` checks the confidence,
    preference and λ n_u of the installed MLlib against this table.

    How the parameters map. They are passed unchanged, because no conversion makes the two
    objectives equal in general:

    * the data terms agree if MLlib is given r' = α r − 1 with alpha 1 (1 + r' = α r), but
      only where α r > 1: at α r ≤ 1 the preference turns to 0 (r' ≤ 0). With the default
      event weights (every r ≥ 1 without decay or BM25/TF-IDF) that holds for α > 1 but not
      for α = 1;
    * the penalties agree only if every user and every item had the same number n of positive
      entries (λ' = λ / n). On the default shop's training matrix n_i runs from 1 to 3,479
      (median 19) and n_u from 1 to 99 (median 3), so for the same λ MLlib penalises the most
      popular item's factor 3,479 times as hard as implicit does.

    So "the same settings" means the same numbers, not the same model: compare the two
    libraries by their ranking metrics, not by their factors. Stored zeros are dropped before
    fitting (for MLlib a rating of 0 is exactly an unobserved cell), so a row whose entries
    are all 0 gets a zero factor, as one without entries does.

    Cost. MLlib solves every row exactly (a Cholesky factorisation, O(f³) per user and per
    item in each half-step) where implicit takes three conjugate-gradient steps (O(f²) each).
    On the default shop in ``local[2]``, MLlib's fit took 97 s against implicit's 5 s at 64
    factors and 22 s against 3 s at 16, for the same NDCG@10 within its interval
    (``benchmarks/als_engines.py``).

    References
    ----------
    Hu, Koren & Volinsky (2008), "Collaborative Filtering for Implicit Feedback Datasets", ICDM.
    Zhou, Wilkinson, Schreiber & Pan (2008), "Large-Scale Parallel Collaborative Filtering for
    the Netflix Prize", AAIM (ALS-WR).
    """

    name = "ALS"
    library = "Spark MLlib"

    def __init__(self, factors: int = 64, regularization: float = 0.05, alpha: float = 10.0, iterations: int = 15,
                 seed: int = 0, spark=None, blocks: int | None = None, checkpoint_interval: int = 5):
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.seed = seed
        self.spark = spark
        self.blocks = blocks
        self.checkpoint_interval = checkpoint_interval

    def fit(self, train: sp.csr_matrix) -> "SparkALSRecommender":
        """Fit MLlib's ALS on ``train`` (users × items weights) and collect its factors.

        Raises
        ------
        ValueError
            If ``train`` has no positive entry (MLlib has nothing to fit).
        """
        from ..engines.spark import spark_session

        spark = self.spark if self.spark is not None else spark_session()
        _ensure_checkpoint_dir(spark)
        try:
            return self._fit(spark, train)
        finally:
            _remove_temporary_checkpoints(spark)

    def _fit(self, spark, train: sp.csr_matrix) -> "SparkALSRecommender":
        import pyarrow as pa
        from pyspark.ml.recommendation import ALS

        start = time.perf_counter()
        coo = sp.coo_matrix(train)
        positive = coo.data > 0  # zeros are unobserved cells for MLlib; negatives are not produced by matrix.py
        if not positive.any():
            raise ValueError(f"the training matrix {train.shape} has no positive entry: nothing to fit")
        table = pa.table({USER: coo.row[positive].astype(np.int32), ITEM: coo.col[positive].astype(np.int32),
                          RATING: coo.data[positive].astype(np.float32)})
        ratings = spark.createDataFrame(table)  # Arrow record batches: no Python loop over rows
        fitted = time.perf_counter()
        als = ALS(implicitPrefs=True, rank=self.factors, regParam=self.regularization, alpha=self.alpha,
                  maxIter=self.iterations, seed=self.seed, userCol=USER, itemCol=ITEM, ratingCol=RATING,
                  coldStartStrategy="drop", checkpointInterval=self.checkpoint_interval)
        als.setNumBlocks(self.blocks if self.blocks is not None else spark.sparkContext.defaultParallelism)
        model = als.fit(ratings)  # eager: MLlib materialises both factor RDDs before returning
        collected = time.perf_counter()
        self.user_factors_ = _factors(model.userFactors, train.shape[0], self.factors)
        self.item_factors_ = _factors(model.itemFactors, train.shape[1], self.factors)
        end = time.perf_counter()
        self.timings_ = {"to_spark": fitted - start, "fit": collected - fitted, "collect": end - collected}
        self.fit_seconds_ = end - start
        self.spark_version_ = spark.version
        return self

    def _scores(self, users: np.ndarray, train: sp.csr_matrix) -> np.ndarray:
        return self.user_factors_[users] @ self.item_factors_.T

    def recommend(self, users: np.ndarray, train: sp.csr_matrix, k: int, exclude_seen: bool = True) -> np.ndarray:
        """Top-k item indices per user, best first, −1 padding; with ``exclude_seen`` no stored training entry."""
        return super().recommend(users, stored(train) if exclude_seen else train, k, exclude_seen)

    def similar_items(self, items: np.ndarray, n: int) -> np.ndarray:
        """The n items most similar to each of ``items`` (cosine of item factors), excluding the item itself.

        An item with a zero factor has cosine 0 with every item. Returns an int array
        (len(items), n), −1 padded when the catalogue has fewer than n other items.
        """
        items = np.asarray(items, dtype=np.int64)
        norms = np.linalg.norm(self.item_factors_, axis=1)
        unit = self.item_factors_ / np.where(norms > 0, norms, 1.0)[:, None]
        n_items = unit.shape[0]
        out = np.full((len(items), n), -1, dtype=np.int64)
        batch = max(1, DENSE_CELLS // max(n_items, 1))
        for start in range(0, len(items), batch):
            rows = items[start:start + batch]
            itself = sp.csr_matrix((np.ones(len(rows)), (np.arange(len(rows)), rows)), shape=(len(rows), n_items))
            out[start:start + len(rows)] = top_k(unit[rows] @ unit.T, itself, n)
        return out


def _ensure_checkpoint_dir(spark) -> None:
    """Give a local session without a checkpoint directory a temporary one (see ``checkpoint_interval``)."""
    context = spark.sparkContext
    if context.getCheckpointDir() is not None:
        return
    if not context.master.startswith("local"):
        warnings.warn("the Spark session has no checkpoint directory, so MLlib's ALS cannot cut its lineage and "
                      "long fits may fail with StackOverflowError: call spark.sparkContext.setCheckpointDir(...) "
                      "with a path every executor can reach", RuntimeWarning, stacklevel=3)
        return
    folder = tempfile.mkdtemp(prefix="funnelkit-als-checkpoints-")
    _TEMPORARY_CHECKPOINTS.add(folder)
    context.setCheckpointDir(folder)


def _remove_temporary_checkpoints(spark) -> None:
    """Delete the checkpoint folder of a finished fit if :func:`_ensure_checkpoint_dir` made it.

    After every fit, not at exit: a Jupyter kernel holding a Spark session is killed at shutdown
    before exit handlers run, so each notebook run would leave its checkpoint files in the
    temporary folder. Spark creates the folder again at the next checkpoint.
    """
    current = spark.sparkContext.getCheckpointDir()  # file:<folder>/<id of the SparkContext>
    if current is None:
        return
    path = Path(current.removeprefix("file:"))
    for folder in _TEMPORARY_CHECKPOINTS:
        if path.is_relative_to(folder):
            shutil.rmtree(folder, ignore_errors=True)


def _factors(frame, rows: int, factors: int) -> np.ndarray:
    """MLlib's (id, features) factor DataFrame as a (rows, factors) float32 array; ids not in it stay 0."""
    table = frame.toArrow()
    out = np.zeros((rows, factors), dtype=np.float32)
    if table.num_rows:
        ids = table.column("id").to_numpy()
        features = table.column("features").combine_chunks().flatten().to_numpy(zero_copy_only=False)
        out[ids] = features.reshape(len(ids), factors)
    return out


def normal_equations_check(model: SparkALSRecommender, train: sp.csr_matrix, *, users: int = 300) -> dict:
    r"""How exactly a fitted MLlib ALS solves the normal equations of the objective in :class:`SparkALSRecommender`.

    MLlib's last half-step solves every user's factor from the final item factors Y, so for a
    user u with positive weights r_ui on n_u items (sums over those items)

    .. math::
        \big(Y^\top Y + \textstyle\sum_i \alpha r_{ui}\, y_i y_i^\top + \lambda n_u I\big)\, x_u
        = \textstyle\sum_i (1 + \alpha r_{ui})\, y_i

    (confidence 1 + α r, preference 1, λ scaled by n_u), and not implicit's
    ``(YᵀY + Σ_i (α r_ui − 1) y_i y_iᵀ + λ I) x_u = Σ_i α r_ui y_i``. Both systems are solved in
    float64 for the ``users`` users with the most positive entries (ties: lower row first) and
    compared with the collected factors. This is what the study reports for MLlib in place of
    implicit's check against the NumPy reference (:func:`funnelkit.recommend.explain.reference_check`).

    Parameters
    ----------
    model : SparkALSRecommender
        Fitted on ``train``.
    train : scipy.sparse matrix
        The users × items weights it was fitted on.
    users : int
        At most this many users are checked.

    Returns
    -------
    dict
        ``users``: users checked (those without a positive entry have no equation);
        ``max_difference``: the largest |collected − solved| entry of their factors, divided by
        the largest |entry| of the collected factors (float32 factors: about 1e-6 when MLlib
        solves these equations); ``implicit_form_difference``: the same against implicit's
        equations (of order 0.1 or more: the same numbers are not the same model). NaN when no
        user has a positive entry.
    """
    positive = sp.csr_matrix(train, dtype=np.float64, copy=True)
    positive.data[positive.data < 0] = 0  # MLlib fits positive weights only (see fit)
    positive.eliminate_zeros()
    counts = np.diff(positive.indptr)
    chosen = np.argsort(-counts, kind="stable")[:users]
    chosen = chosen[counts[chosen] > 0]
    if not len(chosen):
        return {"users": 0, "max_difference": float("nan"), "implicit_form_difference": float("nan")}
    X, Y = model.user_factors_.astype(np.float64), model.item_factors_.astype(np.float64)
    alpha, lam = float(model.alpha), float(model.regularization)
    gram, eye = Y.T @ Y, np.eye(Y.shape[1])
    mllib, implicit = np.empty((len(chosen), Y.shape[1])), np.empty((len(chosen), Y.shape[1]))
    for row, u in enumerate(chosen):
        part = slice(positive.indptr[u], positive.indptr[u + 1])
        r, Yu = positive.data[part], Y[positive.indices[part]]
        mllib[row] = np.linalg.solve(gram + (Yu.T * (alpha * r)) @ Yu + lam * len(r) * eye, Yu.T @ (1 + alpha * r))
        implicit[row] = np.linalg.solve(gram + (Yu.T * (alpha * r - 1)) @ Yu + lam * eye, Yu.T @ (alpha * r))
    got = X[chosen]
    scale = max(float(np.abs(got).max()), np.finfo(np.float64).tiny)
    return {"users": len(chosen), "max_difference": float(np.abs(got - mllib).max() / scale),
            "implicit_form_difference": float(np.abs(got - implicit).max() / scale)}
