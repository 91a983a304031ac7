"""The Spark engine gives exactly the DuckDB engine's answers, and both the brute force's.

Every test here runs Spark in ``local[2]`` through the ``spark`` fixture (tests/conftest.py):
skipped without PySpark on a developer's machine, a failure under ``CI=true``.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from funnelkit import journeys
from funnelkit.engines import open_events
from funnelkit.eventlog import EventLog
from funnelkit.features import session_table
from funnelkit.funnel import dropoff_paths, run_funnel, transition_matrix
from funnelkit.params import ExclusionSpec, FilterSpec, FunnelParams, JourneysParams, Params, StepSpec, load_params
from funnelkit.schema import COLUMNS
from funnelkit.engines.spark import WAREHOUSE_OPTION, SparkEngine, session_options, to_spark_sql
from tests.reference.funnel_bruteforce import step_counts, unit_results
from tests.test_funnel import TYPES, _normalise, at

CI_PARAMS = "params/ci.yaml"


def test_translation_rewrites_what_sqlglot_leaves_in_duckdb_dialect(sqlglot):
    # the sqlglot fixture (tests/conftest.py): skipped without the spark extra, a failure under CI=true
    sql = to_spark_sql('WITH x AS MATERIALIZED (SELECT epoch_us("t") AS us, quantile_cont(v, 0.5) AS m, '
                       "arg_min_null(v, {'t': t}) AS f, isodow(t) AS d, v / 1e6 AS s FROM e) "
                       "SELECT * FROM x SEMI JOIN y USING (k)")
    assert "UNIX_MICROS(`t`)" in sql and "PERCENTILE(v, " in sql and "MIN_BY(v, STRUCT(t AS t))" in sql
    assert "WEEKDAY(t) + 1" in sql and "v / CAST(1e6 AS DOUBLE)" in sql
    assert "MATERIALIZED" not in sql and "LEFT SEMI JOIN" in sql


def test_sessions_keep_their_warehouse_in_the_temporary_folder_unless_told_otherwise(spark):
    default = session_options()[WAREHOUSE_OPTION]
    # not ./spark-warehouse of wherever the session starts (the runner starts notebooks in notebooks/)
    assert Path(default).parent == Path(tempfile.gettempdir()) and session_options()[WAREHOUSE_OPTION] == default
    assert Path(spark.conf.get(WAREHOUSE_OPTION).removeprefix("file:")) == Path(default)
    # the params' options still win, over this default and over DEFAULT_OPTIONS
    mine = session_options({WAREHOUSE_OPTION: "/lake/warehouse", "spark.sql.shuffle.partitions": "4"})
    assert mine[WAREHOUSE_OPTION] == "/lake/warehouse" and mine["spark.sql.shuffle.partitions"] == "4"
    assert mine["spark.sql.session.timeZone"] == "UTC"


def test_weekday_and_hour_are_utc_and_monday_based(spark):
    # 2026-03-02 is a Monday; 23:30 UTC is already Tuesday in UTC+1, so a time-zone slip shows
    frame = pd.DataFrame({COLUMNS.user_id: ["a", "b"], COLUMNS.session_id: ["a1", "b1"],
                          COLUMNS.event_type: ["view", "view"],
                          COLUMNS.event_time: pd.to_datetime(["2026-03-02 23:30", "2026-03-08 01:00"], utc=True)})
    table = session_table(EventLog.from_frame(frame, SparkEngine(spark)), label="cart")
    assert table["weekday"].tolist() == [0, 6] and table["hour"].tolist() == [23, 1]


# --- random logs: Spark = DuckDB = brute force, mode by mode ------------------------------

@st.composite
def cases(draw, mode: str, limits: bool, entry: str = "first"):
    """Several small random logs (units renamed apart) and one funnel of ``mode`` and ``entry``.

    One Spark query then checks many logs at once: a unit's result depends only on its own
    events and the data end, so logs side by side do not interact.
    """
    rows = []
    for case in range(draw(st.integers(1, 6))):
        for unit in range(draw(st.integers(1, 4))):
            for _ in range(draw(st.integers(0, 10))):
                rows.append((f"c{case}u{unit}", draw(st.integers(0, 40)), draw(st.sampled_from(TYPES)),
                             draw(st.sampled_from(["m", "d"]))))
    n_steps = draw(st.integers(2, 4))
    step_specs = []
    for k in range(n_steps):
        events = draw(st.lists(st.sampled_from(TYPES[:4]), min_size=1, max_size=2, unique=True))
        max_time = draw(st.sampled_from([None, "3min", "10min"])) if k and limits else None
        filters = [FilterSpec(column="device", value="m")] if draw(st.integers(0, 5)) == 0 else []
        step_specs.append(StepSpec(name=f"s{k}", events=events, max_time=max_time, filters=filters))
    exclusions = []
    if limits and draw(st.booleans()):
        a = draw(st.integers(0, n_steps - 2))
        b = draw(st.integers(a + 1, n_steps - 1))
        exclusions.append(ExclusionSpec(name="x", events=["x"], between=[f"s{a}", f"s{b}"]))
    spec = FunnelParams(steps=step_specs, window=draw(st.sampled_from(["5min", "15min", "1h"])), mode=mode,
                        entry=entry, exclusions=exclusions, censoring=draw(st.sampled_from(["exclude", "naive"])))
    return rows, spec, at(draw(st.integers(0, 60)))


def _frame(rows) -> pd.DataFrame:
    return pd.DataFrame({COLUMNS.user_id: [r[0] for r in rows], COLUMNS.session_id: [r[0] for r in rows],
                         COLUMNS.event_time: [at(r[1]) for r in rows], COLUMNS.event_type: [r[2] for r in rows],
                         "device": [r[3] for r in rows]})


@pytest.mark.parametrize("entry", ["first", "every"])
@pytest.mark.parametrize("mode", ["ordered", "strict", "any_order"])
@pytest.mark.parametrize("limits", [False, True], ids=["plain", "max_time+exclusion"])
def test_spark_duckdb_and_brute_force_agree_on_random_logs(spark, mode, limits, entry):
    @settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(cases(mode, limits, entry))
    def check(case):
        rows, spec, data_end = case
        if not rows:
            return
        frame = _frame(rows)
        expected = _normalise(unit_results(frame, spec, data_end))
        results = {name: run_funnel(log, spec, data_end=data_end)
                   for name, log in (("duckdb", EventLog.from_frame(frame)),
                                     ("spark", EventLog.from_frame(frame, SparkEngine(spark))))}
        for name, result in results.items():
            pd.testing.assert_frame_equal(_normalise(result.units(resolved=None)), expected, check_dtype=False, obj=name)
            assert result.steps["entrants"].tolist() == step_counts(expected, len(spec.steps)), name
        pd.testing.assert_frame_equal(results["spark"].steps, results["duckdb"].steps)

    check()


# --- the CI shop: every result method and the session table, engine against engine -----------

@pytest.fixture(scope="module")
def shop_logs(spark):
    params = load_params(CI_PARAMS)
    duck = open_events(params)
    spark_params = Params.model_validate({**params.model_dump(), "engine": {"name": "spark"}})
    return duck, open_events(spark_params)


def test_loading_reports_the_same_data_on_both_engines(shop_logs):
    duck, spark_log = shop_logs
    a, b = duck.report, spark_log.report
    for field in ("rows_kept", "duplicates", "users", "sessions", "first_event", "last_event", "unmapped_events"):
        assert getattr(a, field) == getattr(b, field), field
    assert duck.data_end == spark_log.data_end
    assert set(duck.segments) == set(spark_log.segments)


@pytest.mark.parametrize("spec", [
    FunnelParams(),
    FunnelParams(unit="session", attribution="last_step"),
    FunnelParams(mode="strict", censoring="naive"),
    FunnelParams(entry="every", attribution="last_step"),
], ids=["ordered-user", "ordered-session-last-step", "strict-naive", "every-last-step"])
def test_result_tables_are_identical_on_the_ci_shop(shop_logs, spec):
    duck, spark_log = (run_funnel(log, spec) for log in shop_logs)
    pd.testing.assert_frame_equal(spark_log.units(resolved=None), duck.units(resolved=None))
    for table in ("steps", "censored"):
        pd.testing.assert_frame_equal(getattr(spark_log, table), getattr(duck, table), obj=table)
    for column in ("device", "channel"):
        pd.testing.assert_frame_equal(spark_log.breakdown(column).table, duck.breakdown(column).table, obj=column)
        assert spark_log.breakdown(column).test["pvalue"] == pytest.approx(duck.breakdown(column).test["pvalue"])
    for freq in ("day", "week"):
        pd.testing.assert_frame_equal(spark_log.trend(freq), duck.trend(freq), obj=freq)
    for name, series in duck.step_durations().items():
        pd.testing.assert_series_equal(spark_log.step_durations()[name], series, obj=name)
    assert spark_log.revenue_per_conversion() == pytest.approx(duck.revenue_per_conversion(), rel=1e-12)
    pd.testing.assert_frame_equal(dropoff_paths(spark_log, 1), dropoff_paths(duck, 1))


def test_transitions_are_identical(shop_logs):
    duck, spark_log = shop_logs
    for unit in ("user", "session"):
        pd.testing.assert_frame_equal(transition_matrix(spark_log, unit=unit), transition_matrix(duck, unit=unit))


@pytest.mark.parametrize("kwargs", [
    {"label": "purchase", "window": "1D"},
    {"label": "checkout", "given": "cart", "window": "6h"},
    {"label": "purchase", "unit": "user"},
], ids=["purchase-1D", "checkout-given-cart", "user-no-window"])
def test_session_table_is_identical(shop_logs, kwargs):
    duck, spark_log = shop_logs
    pd.testing.assert_frame_equal(session_table(spark_log, **kwargs), session_table(duck, **kwargs))


def test_results_convert_to_pandas_the_same_with_and_without_arrow(shop_logs, spark):
    _, spark_log = shop_logs
    sql = (f"SELECT {COLUMNS.user_id}, {COLUMNS.event_time}, price, "
           f"CASE WHEN price > 50 THEN 1 END AS nullable_int, price > 50 AS flag "
           f"FROM {spark_log.table} ORDER BY {COLUMNS.user_id}, {COLUMNS.event_time}, price LIMIT 500")
    key = "spark.sql.execution.arrow.pyspark.enabled"
    try:
        spark.conf.set(key, "true")
        with_arrow = spark_log.query(sql)
        spark.conf.set(key, "false")
        without = spark_log.query(sql)
    finally:
        spark.conf.set(key, "true")
    pd.testing.assert_frame_equal(with_arrow, without)
    assert with_arrow["nullable_int"].dtype == "Int64" and with_arrow["nullable_int"].isna().any()
    assert with_arrow[COLUMNS.event_time].dtype == "datetime64[us, UTC]"  # an instant, as DuckDB gives it


# --- the notebooks on the Spark engine ---------------------------------------------------

def test_funnel_and_drivers_notebooks_run_on_spark_with_the_duckdb_answers(spark, tmp_path, ci_reports):
    from funnelkit import runner
    from funnelkit.report import read_metrics

    root = Path(__file__).resolve().parents[1]
    summary = runner.run(root / "params" / "ci-spark.yaml", only=["01", "02"], jobs=1,
                         notebooks_dir=root / "notebooks", reports_dir=tmp_path / "spark", progress=False)
    assert summary.ok, summary
    runs = {"spark": tmp_path / "spark", "duckdb": ci_reports}  # the DuckDB run of every notebook, shared
    spark_funnel, duck_funnel = (read_metrics(runs[e] / "01_funnel_eda.ipynb") for e in ("spark", "duckdb"))
    assert spark_funnel.keys() == duck_funnel.keys()
    for name, metric in duck_funnel.items():
        if isinstance(metric["value"], float):
            assert spark_funnel[name]["value"] == pytest.approx(metric["value"], rel=1e-9), name
        else:
            assert spark_funnel[name]["value"] == metric["value"], name
    drivers = read_metrics(runs["spark"] / "02_conversion_drivers.ipynb")
    total = drivers["planted_effects_total"]["value"]  # as tests/test_notebooks.py asks of the DuckDB run
    assert total >= 30 and drivers["planted_effects_inside"]["value"] >= total - 4


def test_journeys_are_counted_alike_and_the_study_gives_the_same_answers(shop_logs):
    duck, spark_log = shop_logs
    spec = JourneysParams(bootstrap=100, what_if=[{"transition": ["delivery", "payment"], "change": 0.1}])
    results = {name: journeys.run(log, spec) for name, log in (("duckdb", duck), ("spark", spark_log))}
    a, b = results["duckdb"], results["spark"]
    # users are numbered in the same order, so the bootstrap draws the same weights for the same user
    pd.testing.assert_frame_equal(b.counts.triples, a.counts.triples, check_dtype=False)
    assert (b.counts.sessions, b.counts.unfinished) == (a.counts.sessions, a.counts.unfinished)
    assert b.counts.order_value == pytest.approx(a.counts.order_value, rel=1e-12)
    for table in ("transitions", "by_state", "what_ifs", "history"):
        pd.testing.assert_frame_equal(getattr(b, table), getattr(a, table), obj=table)


@pytest.mark.parametrize("max_sessions", [None, 2_000], ids=["all", "sampled"])
def test_journey_sequences_and_their_sample_are_the_same_on_both_engines(shop_logs, max_sessions):
    from funnelkit.journeys.paths import journey_counts, journey_sequences

    duck, spark_log = shop_logs
    got = {}
    for name, log in (("duckdb", duck), ("spark", spark_log)):
        got[name] = journey_sequences(log, journey_counts(log, {}, 12), max_sessions, seed=3)
    a, b = got["duckdb"], got["spark"]
    assert a.vocabulary == b.vocabulary and a.sampled_from == b.sampled_from
    for field in ("tokens", "offsets", "start_us", "user"):
        np.testing.assert_array_equal(getattr(b, field), getattr(a, field), err_msg=field)
    if max_sessions is not None:  # the engine's sample: about the size asked for, of the whole
        assert a.sampled_from > max_sessions and abs(len(a) - max_sessions) < 0.2 * max_sessions
