"""Every engine keeps the protocol of ``funnelkit.engines``: each method on a tiny table, the same answers.

The ``engine`` fixture (tests/conftest.py) runs each test on every engine; the answers are
written once, so an engine that differs fails here before any study sees it.
"""
from __future__ import annotations

import importlib
import subprocess
import sys
import types

import pandas as pd
import pytest

from funnelkit.engines import ENGINES, Engine, open_events
from funnelkit.errors import ParamsError
from funnelkit.eventlog import EventLog
from funnelkit.params import DataParams, EngineParams, Params, load_params
from funnelkit.schema import COLUMNS
from tests.conftest import ENGINE_PARAMS

T0 = pd.Timestamp("2026-03-02", tz="UTC")
FRAME = pd.DataFrame({
    COLUMNS.user_id: ["a", "a", "b"],
    COLUMNS.session_id: ["a1", "a1", "b1"],
    COLUMNS.event_time: [T0, T0 + pd.Timedelta(minutes=5), T0 + pd.Timedelta(hours=1)],
    COLUMNS.event_type: ["view", "purchase", "view"],
    COLUMNS.price: [None, 20.5, None],
    "device": ["mobile", "mobile", "desktop"],
})
TYPES = {COLUMNS.user_id: "VARCHAR", COLUMNS.session_id: "VARCHAR", COLUMNS.event_time: "TIMESTAMP WITH TIME ZONE",
         COLUMNS.event_type: "VARCHAR", COLUMNS.price: "DOUBLE", "device": "VARCHAR"}


def us(timestamp: pd.Timestamp) -> int:
    return timestamp.value // 1000


def test_the_engine_fixture_runs_every_registered_engine():
    names = [p if isinstance(p, str) else p.values[0] for p in ENGINE_PARAMS]
    assert names == list(ENGINES)


def test_each_engine_keeps_the_protocol_and_lives_in_its_registered_module(engine):
    assert isinstance(engine, Engine)
    assert type(engine).__module__ == ENGINES[engine.name]


def test_a_frame_becomes_a_table_typed_with_duckdb_names(engine):
    table = engine.table_from_frame(FRAME)
    assert engine.column_types(table) == TYPES  # in the frame's column order too
    assert list(engine.column_types(table)) == list(FRAME.columns)


def test_parquet_is_read_in_place_with_the_same_types(engine, tmp_path):
    path = tmp_path / "events.parquet"
    FRAME.assign(**{COLUMNS.event_time: FRAME[COLUMNS.event_time].dt.as_unit("us")}).to_parquet(path)
    table = engine.table_from_parquet(str(path))
    assert engine.column_types(table) == TYPES
    assert engine.rows(f"SELECT count(*) FROM {table}") == [(3,)]


def test_query_and_rows_give_the_same_answers_and_dtypes(engine):
    table = engine.table_from_frame(FRAME)
    frame = engine.query(
        f"SELECT {COLUMNS.user_id}, count(*) AS events, sum(price) AS revenue, "
        f"CASE WHEN count(*) > 1 THEN count(*) END AS repeat_events, epoch_us(max({COLUMNS.event_time})) AS last_us "
        f"FROM {table} GROUP BY 1 ORDER BY 1")
    expected = pd.DataFrame({COLUMNS.user_id: ["a", "b"], "events": [2, 1], "revenue": [20.5, None],
                             "repeat_events": pd.array([2, None], dtype="Int64"),
                             "last_us": [us(T0 + pd.Timedelta(minutes=5)), us(T0 + pd.Timedelta(hours=1))]})
    pd.testing.assert_frame_equal(frame, expected, check_dtype=False)
    assert frame["repeat_events"].dtype == "Int64"  # an integer column with NULLs stays integer
    assert engine.rows(f"SELECT count(DISTINCT {COLUMNS.user_id}), epoch_us(min({COLUMNS.event_time})) "
                       f"FROM {table}") == [(2, us(T0))]


def test_instants_come_back_utc_aware_in_microseconds_on_every_engine(engine):
    table = engine.table_from_frame(FRAME)
    frame = engine.query(f"SELECT min({COLUMNS.event_time}) AS first, max({COLUMNS.event_time}) AS last FROM {table}")
    expected = pd.DataFrame({"first": [T0], "last": [T0 + pd.Timedelta(hours=1)]}).astype("datetime64[us, UTC]")
    pd.testing.assert_frame_equal(frame, expected)


def test_tables_and_views_are_made_and_dropped(engine):
    table = engine.table_from_frame(FRAME)
    engine.create_table("buyers", f"SELECT DISTINCT {COLUMNS.user_id} FROM {table} WHERE price > 0")
    engine.create_view("viewers", f"SELECT DISTINCT {COLUMNS.user_id} FROM {table} WHERE {COLUMNS.event_type} = 'view'")
    assert engine.rows("SELECT * FROM buyers") == [("a",)]
    assert sorted(engine.rows("SELECT * FROM viewers")) == [("a",), ("b",)]
    engine.drop_table("buyers")
    engine.drop_table("buyers")  # gone already: nothing happens
    engine.create_table("buyers", "SELECT 1 AS one")  # the name is free again
    assert engine.rows("SELECT * FROM buyers") == [(1,)]


def test_stored_frames_are_text_even_when_empty(engine):
    engine.store_frame("some_ids", pd.DataFrame({"user_id": pd.Series(["b", "c"], dtype=object)}))
    engine.store_frame("no_ids", pd.DataFrame({"user_id": pd.Series([], dtype=object)}))
    assert engine.column_types("some_ids") == engine.column_types("no_ids") == {"user_id": "VARCHAR"}
    assert sorted(engine.rows("SELECT user_id FROM some_ids")) == [("b",), ("c",)]
    assert engine.rows("SELECT count(*) FROM no_ids") == [(0,)]


@pytest.mark.parametrize("op, nearest", [
    (">=", {0: 10, 10: 10, 15: 20, 20: 20, 25: None}),
    (">", {0: 10, 10: 20, 15: 20, 20: None, 25: None}),
    ("<", {0: None, 10: None, 15: 10, 20: 10, 25: 20}),
])
def test_asof_finds_the_nearest_time_on_the_requested_side(engine, op, nearest):
    left = engine.table_from_frame(pd.DataFrame({"unit": ["u"] * 5 + ["other"], "seen": [0, 10, 15, 20, 25, 15]}))
    right = engine.table_from_frame(pd.DataFrame({"unit": ["u", "u"], "t": [10, 20]}))
    sql = engine.asof_sql(left, right, key="unit", time="seen", op=op, out="found")
    got = {(unit, seen): found for unit, seen, found in engine.rows(f"SELECT unit, seen, found FROM ({sql}) AS j")}
    assert got == {**{("u", seen): value for seen, value in nearest.items()}, ("other", 15): None}
    with pytest.raises(ValueError, match="op must be one of"):
        engine.asof_sql(left, right, key="unit", time="seen", op="<=", out="found")


def test_translate_leaves_duckdb_sql_alone_only_on_duckdb(engine):
    sql = f"SELECT epoch_us(max({COLUMNS.event_time})) FROM events"
    translated = engine.translate(sql)
    assert isinstance(translated, str) and (translated == sql) == (engine.name == "duckdb")


def test_close_drops_what_the_engine_made(engine):
    table = engine.table_from_frame(FRAME)
    engine.close()
    with pytest.raises(Exception):
        engine.rows(f"SELECT count(*) FROM {table}")


def test_an_event_log_reads_the_same_on_every_engine(engine):
    log = EventLog.from_frame(FRAME, engine)
    assert log.engine is engine and log.columns == list(FRAME.columns) and log.segments == ("device",)
    assert log.column_types() == TYPES
    assert log.data_end == T0 + pd.Timedelta(hours=1)
    kept = log.without_users({"a"})
    assert kept.engine is engine and kept.rows(f"SELECT {COLUMNS.user_id} FROM {kept.table}") == [("b",)]
    assert kept.data_end == log.data_end  # removing users does not move the censoring line
    later = log.derive(f"SELECT * FROM {log.table} WHERE {COLUMNS.event_time} < TIMESTAMPTZ '2026-03-02 00:10:00+00'")
    assert later.data_end == T0 + pd.Timedelta(minutes=5)


# --- open_events: the factory -------------------------------------------------------------

def test_open_events_picks_duckdb_by_default(tmp_path):
    path = tmp_path / "events.csv"
    FRAME.to_csv(path, index=False)
    events = open_events(Params(data=DataParams(source=path)))
    assert events.engine.name == "duckdb" and events.report.rows_kept == 3


def test_open_events_picks_spark_when_the_params_say_so(spark, tmp_path):
    path = tmp_path / "events.parquet"
    FRAME.assign(**{COLUMNS.event_time: FRAME[COLUMNS.event_time].dt.as_unit("us")}).to_parquet(path)
    events = open_events(Params(data=DataParams(source=path), engine=EngineParams(name="spark")))
    assert events.engine.name == "spark" and events.engine.session is spark
    assert events.report.rows_kept == 3 and events.segments == ("device",)


def test_a_spark_table_without_the_spark_engine_is_refused_rather_than_analyse_the_built_in_shop(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("engine:\n  name: duckdb\n  spark:\n    table: lake.events\n")
    with pytest.raises(ParamsError, match="engine.spark.table .* is read only with engine.name: spark"):
        load_params(path)


def test_a_new_engine_is_one_module_and_its_entry(monkeypatch):
    module = types.ModuleType("funnelkit_engine_for_the_test")
    module.open_events = lambda params: ("opened by", params.engine.name)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(ENGINES, "duckdb", module.__name__)
    assert open_events(Params()) == ("opened by", "duckdb")


def test_an_unknown_engine_name_is_refused_clearly(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("engine:\n  name: chdb\n")
    with pytest.raises(ParamsError, match="engine.name.*expected one of the engines 'duckdb', 'spark', got 'chdb'"):
        load_params(path)
    unchecked = Params.model_construct(engine=EngineParams.model_construct(name="chdb"))
    with pytest.raises(ParamsError, match="no engine 'chdb'; the engines are duckdb, spark"):
        open_events(unchecked)


def test_an_engine_in_the_registry_is_one_params_accept(tmp_path, monkeypatch):
    monkeypatch.setitem(ENGINES, "chdb", "funnelkit.engines.chdb")
    path = tmp_path / "params.yaml"
    path.write_text("engine:\n  name: chdb\n")
    assert load_params(path).engine.name == "chdb"


def test_the_spark_engine_module_imports_without_starting_spark():
    code = ("import sys, funnelkit.engines.spark, funnelkit.engines.duckdb; "
            "sys.exit(1 if {'pyspark', 'sqlglot'} & set(sys.modules) else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
    assert importlib.import_module(ENGINES["spark"]).open_events  # the factory's entry point is there
