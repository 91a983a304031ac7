"""The recommendation (03) and anomaly (04) studies on the Spark engine give the DuckDB answers where they must.

The anomaly study queries the events only through the package's SQL, so on Spark every recorded figure and
both files it writes must equal the DuckDB run's. The recommendation study reads the same events into the same
split, so the split, the cart abandoners and the popularity baseline must be equal too; its ALS, fitted by
Spark MLlib on that engine, is another solver of another objective (``SparkALSRecommender``), so it is held
to the notebook's own claim and to the sampling noise of implicit's ALS instead.

Every Spark test uses the ``local[2]`` session fixture of tests/conftest.py (skipped without PySpark on a
developer's machine, a failure under ``CI=true``). The notebooks take most of the time: each starts its own
JVM and Spark pays for planning and scheduling on every query, so the package-level tests use a crafted log
or a few queries on the CI shop.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from funnelkit import runner
from funnelkit.anomaly import behaviour, impact
from funnelkit.anomaly.kpi import kpi_series
from funnelkit.eventlog import EventLog
from funnelkit.funnel import run_funnel
from funnelkit.params import RecommendParams, load_params
from funnelkit.recommend import ItemKNNRecommender, PopularityRecommender, SparkALSRecommender, models_from_params
from funnelkit.recommend.evaluate import ranked_by_implicit
from funnelkit.recommend.spark_als import normal_equations_check
from funnelkit.pseudonym import ensure_key
from funnelkit.report import read_metrics
from funnelkit.schema import COLUMNS
from funnelkit.simulate import ensure_dataset
from funnelkit.engines.spark import SparkEngine, session_of
from tests.test_anomaly_kpi import CRAFTED_END, CRAFTED_ROWS, CRAFTED_SPEC
from tests.test_funnel import log_of

ROOT = Path(__file__).resolve().parents[1]
ALS, ANOMALY = "03_als_recommendations", "04_anomaly_studies"


def _equal(got, expected) -> bool:
    """Equal, floats to 1e-9 relative: Spark may add the same numbers in another order."""
    if isinstance(expected, float) and isinstance(got, float):
        return got == pytest.approx(expected, rel=1e-9, abs=1e-15)
    if isinstance(expected, list) and isinstance(got, list):
        return len(got) == len(expected) and all(_equal(g, e) for g, e in zip(got, expected))
    return got == expected


# --- package level ------------------------------------------------------------------------

def test_the_implicit_metric_check_falls_back_to_bpr_when_mllib_fits_als():
    spec = RecommendParams()
    assert ranked_by_implicit(models_from_params(spec)) == "ALS"
    # building the MLlib model needs no session (it is used only at fit); item-kNN first: it ranks in NumPy
    mllib = {"item-kNN": ItemKNNRecommender(), **models_from_params(spec, spark=object())}
    assert isinstance(mllib["ALS"], SparkALSRecommender)
    assert ranked_by_implicit(mllib) == "BPR"
    with pytest.raises(ValueError, match="ranked by the implicit library"):
        ranked_by_implicit({"item-kNN": ItemKNNRecommender(), "popularity": PopularityRecommender()})


def _solved_factors(train: sp.csr_matrix, item_factors: np.ndarray, *, alpha: float, lam: float,
                    form: str) -> np.ndarray:
    """User factors that exactly solve one library's normal equations, in the textbook dense form.

    Hu, Koren & Volinsky's x_u = (Yᵀ C_u Y + penalty)⁻¹ Yᵀ C_u p_u with C_u = diag(c_u·) over every item:
    MLlib's c = 1 + α r on observed cells (1 elsewhere) and penalty λ n_u I; "mllib-without-n" the same
    with λ I; implicit's c = α r (1 elsewhere) and λ I.
    """
    dense = train.toarray().astype(np.float64)
    out = np.zeros((dense.shape[0], item_factors.shape[1]))
    for u, r in enumerate(dense):
        observed = r > 0
        if not observed.any():
            continue
        confidence = np.where(observed, (1 + alpha * r) if form.startswith("mllib") else alpha * r, 1.0)
        penalty = lam * (observed.sum() if form == "mllib" else 1)
        gram = item_factors.T @ (confidence[:, None] * item_factors) + penalty * np.eye(item_factors.shape[1])
        out[u] = np.linalg.solve(gram, item_factors.T @ (confidence * observed))
    return out


@pytest.mark.parametrize("form, mllib_fits, implicit_fits", [
    ("mllib", True, False), ("implicit", False, True), ("mllib-without-n", False, False),
])
def test_normal_equations_check_recognises_mllibs_update_and_no_other(form, mllib_fits, implicit_fits):
    rng = np.random.default_rng(5)
    train = sp.random(60, 12, density=0.3, format="csr", random_state=rng, data_rvs=lambda n: rng.integers(1, 11, n))
    train.data[train.indptr[7]:train.indptr[8]] = 0  # a user without entries has no equation
    train.eliminate_zeros()
    item_factors = rng.normal(size=(12, 4)).astype(np.float32)  # float32, as MLlib's factors come back
    model = SparkALSRecommender(factors=4, regularization=0.1, alpha=2.5)  # a stand-in for a fitted model
    model.item_factors_ = item_factors
    model.user_factors_ = _solved_factors(train, item_factors.astype(np.float64), alpha=2.5, lam=0.1,
                                          form=form).astype(np.float32)
    check = normal_equations_check(model, train, users=80)
    assert check["users"] == 59
    # float32 factors: ~1e-7 where the equations are the ones solved; a wrong confidence or λ is off by > 1e-2
    assert (check["max_difference"] < 1e-5) is mllib_fits and (check["max_difference"] > 1e-2) is not mllib_fits
    assert (check["implicit_form_difference"] < 1e-5) is implicit_fits
    assert (check["implicit_form_difference"] > 1e-2) is not implicit_fits
    assert normal_equations_check(model, train, users=10)["users"] == 10


def test_mllib_fits_delete_their_temporary_checkpoints_and_the_session_fits_again(spark):
    # a notebook's kernel is killed at shutdown before exit handlers run: the files must go after each fit
    train = sp.random(30, 8, density=0.4, format="csr", random_state=0, data_rvs=lambda n: np.full(n, 3.0))
    for _ in range(2):  # 4 iterations with a checkpoint every 2: MLlib writes checkpoint files in both fits
        model = SparkALSRecommender(factors=3, iterations=4, checkpoint_interval=2, spark=spark).fit(train)
        assert np.abs(model.user_factors_).sum() > 0
        checkpoints = spark.sparkContext.getCheckpointDir()  # file:<temporary folder>/<context id>
        assert "funnelkit-als-checkpoints-" in checkpoints
        assert not Path(checkpoints.removeprefix("file:")).parent.exists()


@pytest.fixture(scope="module")
def crafted_funnels(spark):
    """The crafted KPI log of tests/test_anomaly_kpi.py (empty hours and an empty day), funnel on each engine."""
    frame, duck = log_of(CRAFTED_ROWS)
    spark_log = EventLog.from_frame(frame, SparkEngine(spark))
    assert session_of(spark_log) is spark and session_of(duck) is None
    return tuple(run_funnel(log, CRAFTED_SPEC, data_end=CRAFTED_END) for log in (duck, spark_log))


@pytest.mark.parametrize("freq, periods", [("hour", 49), ("day", 3)])
def test_kpi_series_on_spark_fill_the_empty_periods_as_on_duckdb(crafted_funnels, freq, periods):
    duck, spark_result = crafted_funnels
    got = kpi_series(spark_result, freq)
    pd.testing.assert_frame_equal(got, kpi_series(duck, freq))
    assert len(got) == periods and got["entrants"].eq(0).any()  # the calendar holds the empty periods


@pytest.fixture(scope="module")
def shop(spark):
    """The CI shop's events as read in place by each engine, and its planted labels."""
    dataset = ensure_dataset(load_params(ROOT / "params" / "ci.yaml").simulation)
    labels = dataset.labels().set_index("user_id")["label"]
    on_spark = EventLog.from_parquet(dataset.events_path, SparkEngine(spark))
    return EventLog.from_parquet(dataset.events_path), on_spark, labels


def test_behaviour_features_and_the_cost_of_flags_are_identical_on_the_ci_shop(shop):
    duck, spark_log, labels = shop
    features = behaviour.user_features(duck)
    pd.testing.assert_frame_equal(behaviour.user_features(spark_log), features, rtol=1e-9)
    # the fastest clickers stand in for flagged users: the queries below depend only on who they are
    users = features.nlargest(40, "events_per_minute").index
    flagged = pd.DataFrame({COLUMNS.user_id: users, "detectors": "3-sigma", "reasons": "events_per_minute"})
    sessions = impact.flagged_sessions(spark_log, flagged)
    pd.testing.assert_frame_equal(sessions, impact.flagged_sessions(duck, flagged))
    assert len(sessions) >= len(users) and str(sessions["start"].dt.tz) == "UTC"
    for name, got in impact.traffic_share(spark_log, users).items():
        assert got == pytest.approx(impact.traffic_share(duck, users)[name], rel=1e-12), name
    for name, got in impact.false_flag_cost(spark_log, users, labels).items():
        assert got == pytest.approx(impact.false_flag_cost(duck, users, labels)[name], rel=1e-9), name


# --- the notebooks --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def study_reports(spark, tmp_path_factory, ci_reports):
    """Notebooks 03 and 04 run with params/ci-spark.yaml, and the shared run of every notebook with
    params/ci.yaml (tests/conftest.py): (spark folder, duckdb folder).

    The Spark notebooks run one at a time: two JVMs at once were slower on a loaded two-core machine.
    """
    spark_dir = tmp_path_factory.mktemp("studies") / "spark"
    ensure_key()  # both runs must pseudonymise ids with the same key, or the written files differ
    summary = runner.run(ROOT / "params" / "ci-spark.yaml", only=["03", "04"], jobs=1,
                         notebooks_dir=ROOT / "notebooks", reports_dir=spark_dir, progress=False)
    assert summary.ok, summary
    return spark_dir, ci_reports


def test_anomaly_study_on_spark_records_the_duckdb_figures_and_writes_the_same_files(study_reports):
    spark_dir, duck_dir = study_reports
    got, expected = (read_metrics(folder / f"{ANOMALY}.ipynb") for folder in (spark_dir, duck_dir))
    assert got.keys() == expected.keys()
    for name, metric in expected.items():
        assert _equal(got[name]["value"], metric["value"]), (name, got[name], metric)
        assert _equal(got[name]["ci"], metric["ci"]), (name, got[name], metric)
    for file in ("flagged_users.csv", "flagged_sessions.csv"):
        written = [pd.read_csv(folder / f"{ANOMALY}_files" / file) for folder in (spark_dir, duck_dir)]
        pd.testing.assert_frame_equal(*written, obj=file)
    assert len(written[0]) == expected["flagged_sessions"]["value"] > 0


def test_als_study_on_spark_fits_mllib_and_agrees_with_duckdb_where_it_must(study_reports):
    spark_dir, duck_dir = study_reports
    got, expected = (read_metrics(folder / f"{ALS}.ipynb") for folder in (spark_dir, duck_dir))
    # the same events, split and protocol: the same test users, abandoners, list rows and grid
    for name in ("test_users", "cart_abandoners", "recommendation_rows", "sweep_settings"):
        assert got[name]["value"] == expected[name]["value"], name
    # the popularity baseline is the same model on the same split: the same lists and scores
    popularity_ndcg = [m["ndcg_als"]["value"] - m["ndcg_gain_over_popularity"]["value"] for m in (got, expected)]
    assert popularity_ndcg[0] == pytest.approx(popularity_ndcg[1], rel=1e-12)
    assert _equal(got["planted_overlap_popularity"]["value"], expected["planted_overlap_popularity"]["value"])
    assert _equal(got["planted_overlap_popularity"]["ci"], expected["planted_overlap_popularity"]["ci"])
    # this run's ALS is MLlib's (its factors solve MLlib's update); the metric code is checked on BPR's lists
    assert got["mllib_normal_equations_max_difference"]["value"] < 1e-5
    assert "mllib_normal_equations_max_difference" not in expected
    assert got["metrics_vs_implicit_max_difference"]["value"] < 1e-9
    assert got["reference_max_factor_difference"]["value"] < 1e-8  # implicit = NumPy reference, as on DuckDB
    html = (spark_dir / f"{ALS}.html").read_text()
    assert "fitted by Spark MLlib" in html and "On the lists of <strong>BPR</strong>" in html
    # MLlib's ALS is not implicit's, so its figures differ; it keeps the claim the notebook test makes
    # of implicit's on this shop (its lists overlap the planted taste more than the best-sellers, intervals
    # apart) ...
    als, popular = got["planted_overlap_als"], got["planted_overlap_popularity"]
    assert als["ci"][0] > popular["ci"][1]
    # ... and ranks within the sampling noise of implicit's (the gain over popularity differs between runs exactly
    # by the ALS difference: popularity is the same). How much of the planted taste each learns is not compared:
    # MLlib scales the regularisation by each user's count of items and implicit does not, so on the CI shop
    # MLlib's overlap fell below implicit's interval while both kept well above the best-sellers'.
    low, high = expected["ndcg_gain_over_popularity"]["ci"]
    assert low <= got["ndcg_gain_over_popularity"]["value"] <= high
