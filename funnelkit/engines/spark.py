"""The Spark engine: the same queries as on DuckDB, translated by sqlglot and run in a Spark session.

Every query of the funnel engine, its results, the path analyses and the
session table is written once, in DuckDB's dialect. :class:`SparkEngine`
holds the events as Spark tables or views; it translates each query with
`sqlglot <https://sqlglot.com>`_ (plus the few rewrites in :func:`to_spark_sql`),
runs it in Spark and brings back only the (small) result as pandas. The one
construct with no Spark counterpart, the ASOF join, is generated as a window
query instead (:meth:`SparkEngine.asof_sql`). Tests hold both engines to the
same brute-force reference on random logs.

Spark is worth it when the events do not fit one machine (or already live in
a Spark cluster). On one machine DuckDB is much faster: Spark pays for query
planning, task scheduling and the JVM (see the README's performance section).

PySpark is an optional extra: ``pip install -e ".[spark]"``; this module imports
it only when a session is made, so it imports without it.
"""
from __future__ import annotations

import getpass
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ..errors import FunnelkitError, ParamsError, SchemaError
from ..schema import COLUMNS
from .protocol import ASOF_OPS
from .sql import unique_name

if TYPE_CHECKING:  # pragma: no cover
    from ..eventlog import EventLog
    from ..params import Params

#: settings every funnelkit Spark session gets (params' ``engine.spark.options`` add to them)
DEFAULT_OPTIONS = {
    # the engine's SQL compares UTC microseconds; periods and hours must be UTC too
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    # Spark's default of 200 shuffle partitions makes every small query schedule 200 tasks
    "spark.sql.shuffle.partitions": "8",
}

#: where Spark keeps managed tables; unless set, a folder of the system's temporary folder (:func:`session_options`)
WAREHOUSE_OPTION = "spark.sql.warehouse.dir"

#: settings fixed when the session starts: setting them on a running session is an error
_STATIC_PREFIXES = ("spark.ui.", "spark.driver.", "spark.executor.", "spark.master", WAREHOUSE_OPTION)

#: Spark's simple type names → the DuckDB names the rest of the package checks against
_INTEGER_TYPES = ("bigint", "int", "smallint", "tinyint")
_TYPE_NAMES = {
    "string": "VARCHAR", "double": "DOUBLE", "float": "FLOAT", "bigint": "BIGINT", "int": "INTEGER",
    "smallint": "SMALLINT", "tinyint": "TINYINT", "boolean": "BOOLEAN", "date": "DATE",
    "timestamp": "TIMESTAMP WITH TIME ZONE", "timestamp_ntz": "TIMESTAMP",
}


def spark_session(master: str = "local[2]", options: dict[str, str] | None = None):
    """A Spark session (created, or the running one) with funnelkit's settings.

    Parameters
    ----------
    master : str
        Spark master URL, e.g. ``local[2]`` or ``spark://host:7077``.
    options : dict, optional
        Extra Spark settings (``spark.executor.memory``, ...), applied after :data:`DEFAULT_OPTIONS`
        (:func:`session_options`). Without ``spark.sql.warehouse.dir`` a new session keeps its
        warehouse in the system's temporary folder, not in ``spark-warehouse`` of the working directory.
        Settings fixed at start-up (``spark.driver.*``, the warehouse, ...) do not change a running session.

    Raises
    ------
    FunnelkitError
        PySpark is not installed.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError:  # pragma: no cover - depends on the installed extras
        raise FunnelkitError('engine "spark" needs PySpark: pip install -e ".[spark]"') from None
    settings = session_options(options)
    builder = SparkSession.builder.master(master).appName("funnelkit")
    for key, value in settings.items():
        builder = builder.config(key, str(value))
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    for key, value in settings.items():
        if not key.startswith(_STATIC_PREFIXES):
            session.conf.set(key, str(value))  # a running session keeps its old runtime settings otherwise
    return session


def session_options(options: dict[str, str] | None = None) -> dict[str, str]:
    """The settings :func:`spark_session` gives a session: :data:`DEFAULT_OPTIONS`, then ``options``.

    Unless ``options`` name ``spark.sql.warehouse.dir``, the warehouse (where Spark keeps managed
    tables; funnelkit makes none) is ``funnelkit-spark-warehouse-<user>`` in the system's temporary
    folder, so that no ``spark-warehouse`` folder appears where the session starts (``notebooks/``).
    """
    settings = {**DEFAULT_OPTIONS, **(options or {})}
    if WAREHOUSE_OPTION not in settings:
        settings[WAREHOUSE_OPTION] = _temporary_warehouse()
    return settings


def _temporary_warehouse() -> str:
    # one folder per user, shared by every session, never deleted: a folder per process would pile up,
    # because a Jupyter kernel holding a Spark session is killed at shutdown before its exit handlers run
    try:
        user = getpass.getuser()
    except Exception:  # no user name in the environment or the password database
        user = "unknown"
    return str(Path(tempfile.gettempdir()) / f"funnelkit-spark-warehouse-{user}")


def session_of(events: "EventLog"):
    """The ``SparkSession`` that holds ``events`` when they live in Spark (``engine.name: spark``), else None.

    The recommendation study passes it as ``spark`` to :func:`funnelkit.recommend.models_from_params`
    and :func:`funnelkit.recommend.sweep`, so ALS is fitted by Spark MLlib where the events are in
    Spark, and by ``implicit`` otherwise.
    Needs no PySpark for a DuckDB log.
    """
    return events.engine.session if isinstance(events.engine, SparkEngine) else None


@lru_cache(maxsize=512)
def to_spark_sql(sql: str) -> str:
    """Translate one query from DuckDB's dialect to Spark SQL.

    sqlglot does the grammar; these rewrites cover what it leaves alone:
    ``epoch_us`` → ``unix_micros``, ``quantile_cont`` → ``percentile`` (both
    interpolate linearly between order statistics), ``isodow`` → ``weekday + 1``, ``arg_min_null`` /
    ``arg_max_null`` → ``min_by`` / ``max_by`` (Spark's keep NULL values),
    ``SEMI`` / ``ANTI JOIN`` → ``LEFT SEMI`` / ``LEFT ANTI``, and
    ``AS MATERIALIZED`` CTE hints are dropped, and decimal literals become DOUBLE (Spark reads
    ``1.5`` as DECIMAL).
    """
    import sqlglot
    from sqlglot import expressions as exp

    def rewrite(node):
        if isinstance(node, exp.Anonymous):
            name = node.name.lower()
            renamed = {"epoch_us": "UNIX_MICROS", "arg_min_null": "MIN_BY", "arg_max_null": "MAX_BY"}.get(name)
            if renamed:
                return exp.Anonymous(this=renamed, expressions=node.expressions)
        if isinstance(node, exp.Literal) and not node.is_string and any(c in node.this for c in ".eE"):
            # Spark reads 1000000.0 as DECIMAL (pandas then gets Decimal objects); DuckDB as DOUBLE
            return exp.Cast(this=node.copy(), to=exp.DataType.build("DOUBLE"))
        if isinstance(node, exp.DayOfWeekIso):
            # sqlglot writes (DAYOFWEEK(x) % 7) + 1, which counts from Sunday = 2; Spark's WEEKDAY is 0 on Monday
            return exp.Add(this=exp.Anonymous(this="WEEKDAY", expressions=[node.this]), expression=exp.Literal.number(1))
        if isinstance(node, exp.PercentileCont):
            return exp.Anonymous(this="PERCENTILE", expressions=[node.this, node.expression])
        if isinstance(node, exp.CTE) and node.args.get("materialized") is not None:
            node.set("materialized", None)
        if isinstance(node, exp.Join) and (node.kind or "").upper() in ("SEMI", "ANTI") and not node.side:
            node.set("side", "LEFT")
        return node

    tree = sqlglot.parse_one(sql, read="duckdb").transform(rewrite)
    return tree.sql(dialect="spark")


class SparkEngine:
    """The :class:`~funnelkit.engines.protocol.Engine` protocol on a ``SparkSession``.

    Queries are written in DuckDB's dialect and translated (:func:`to_spark_sql`);
    tables are temporary views, those of :meth:`create_table` cached.

    Parameters
    ----------
    session : pyspark.sql.SparkSession, optional
        The session to run in; default :func:`spark_session` (``local[2]``). It is
        shared, not owned: :meth:`close` drops what this engine made and leaves it running.
    """

    name = "spark"

    def __init__(self, session=None):
        self.session = session if session is not None else spark_session()
        self._made: set[str] = set()  # the views and cached tables close() drops

    def __repr__(self) -> str:
        return f"SparkEngine({self.session!r})"

    def query(self, sql: str) -> pd.DataFrame:
        frame = self.session.sql(to_spark_sql(sql))
        table = frame.toPandas()
        # the dtypes DuckDB gives: integer columns with NULLs arrive as float NaN here (DuckDB: nullable
        # Int64), timestamps in nanoseconds (DuckDB: microseconds, the resolution both engines keep), and
        # Spark's TIMESTAMP (an instant, DuckDB's TIMESTAMPTZ) naive in the session's zone (DuckDB: UTC-aware)
        zone = self.session.conf.get("spark.sql.session.timeZone")
        for field in frame.schema.fields:
            column = table[field.name]
            kind = field.dataType.simpleString()
            if kind in _INTEGER_TYPES and column.dtype.kind == "f":
                table[field.name] = column.astype("Int64")
            elif column.dtype.kind == "M":
                column = column.dt.as_unit("us")
                table[field.name] = column.dt.tz_localize(zone).dt.tz_convert("UTC") if kind == "timestamp" else column
        return table

    def rows(self, sql: str) -> list[tuple]:
        return [tuple(row) for row in self.session.sql(to_spark_sql(sql)).collect()]

    def create_table(self, name: str, sql: str) -> None:
        frame = self.session.sql(to_spark_sql(sql)).persist()
        frame.count()  # compute it now: errors surface here, and later queries read the cached rows
        self._view(frame, name)

    def drop_table(self, name: str) -> None:
        if self.session.catalog.tableExists(name):
            self.session.table(name).unpersist()
            self.session.catalog.dropTempView(name)
        self._made.discard(name)

    def create_view(self, name: str, sql: str) -> None:
        self._view(self.session.sql(to_spark_sql(sql)), name)

    def store_frame(self, name: str, frame: pd.DataFrame) -> None:
        # text columns, declared so an empty list needs no type inference
        schema = ", ".join(f"`{column}` string" for column in frame.columns)
        self._view(self.session.createDataFrame(frame, schema), name)

    def table_from_frame(self, frame: pd.DataFrame) -> str:
        name = unique_name("spark_frame")
        self._view(self.session.createDataFrame(frame), name)
        return name

    def table_from_parquet(self, path: str) -> str:
        name = unique_name("spark_parquet")
        self._view(self.session.read.parquet(str(path)), name)
        return name

    def table_from_table(self, table: str) -> str:
        """A new view over ``table`` of the session (``db.table`` or a view name); return its name."""
        name = unique_name("spark_events")
        self._view(self.session.table(table), name)
        return name

    def _view(self, frame, name: str) -> None:
        frame.createOrReplaceTempView(name)
        self._made.add(name)

    def column_types(self, table: str) -> dict[str, str]:
        fields = self.session.table(table).schema.fields
        return {f.name: _TYPE_NAMES.get(f.dataType.simpleString(), f.dataType.simpleString().upper())
                for f in fields}

    def asof_sql(self, left: str, right: str, *, key: str, time: str, op: str, out: str,
                 right_key: str = "unit") -> str:
        """The ASOF join of :meth:`Engine.asof_sql <funnelkit.engines.protocol.Engine.asof_sql>` as a running
        minimum (or maximum) over a window.

        The distinct (key, time) pairs of ``left`` and the rows of ``right`` are
        sorted together per key; ``out`` is a running min over ``right``'s times
        from the end (or a running max from the start), so each pair sees only
        the rows on its side. Ties are settled by the sort: a ``left`` row sorts
        after the equal ``right`` times it may take (``>=``) and before those it
        may not (``>``, ``<``). Running frames cost O(n) per key in Spark, where
        a frame running to the end would cost O(n²).
        """
        if op not in ASOF_OPS:
            raise ValueError(f"op must be one of {ASOF_OPS}, got {op!r}")
        # src: 1 = a right row; 0/2 = a left row placed after/before equal right times in the sort
        if op == "<":
            left_src, window, agg = 0, "ORDER BY x, src ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW", "max"
        else:
            left_src = 0 if op == ">=" else 2
            window = "ORDER BY x DESC, src DESC ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW"
            agg = "min"
        both = (f"SELECT DISTINCT {key} AS k, {time} AS x, {left_src} AS src FROM {left} WHERE {time} IS NOT NULL "
                f"UNION ALL SELECT {right_key} AS k, t AS x, 1 AS src FROM {right}")
        nearest = (f"SELECT k, x, {agg}(CASE WHEN src = 1 THEN x END) OVER (PARTITION BY k {window}) AS found, src "
                   f"FROM ({both}) AS sorted_times")
        return (f"SELECT l.*, n.found AS {out} FROM {left} l LEFT JOIN "
                f"(SELECT k, x, found FROM ({nearest}) AS running WHERE src <> 1) n "
                f"ON l.{key} = n.k AND l.{time} = n.x")

    def translate(self, sql: str) -> str:
        return to_spark_sql(sql)

    def close(self) -> None:
        """Drop the views and cached tables this engine made; the session keeps running (it may be shared)."""
        for name in list(self._made):
            self.drop_table(name)


def open_events(params: "Params") -> "EventLog":
    """The events of a run on the Spark engine, read by Spark and left there.

    The source is ``engine.spark.table`` (a table of the session), or canonical Parquet:
    ``data.source`` or the built-in shop. Spark reads the files in place, so the checks
    :func:`funnelkit.data.load_events` makes on the way into DuckDB (and its format adapters) do not
    apply: convert other formats to canonical Parquet first (load them with DuckDB and
    ``COPY ... TO 'events.parquet'``). The validation report is computed in Spark.

    Raises
    ------
    ParamsError
        ``data.format`` is not ``canonical`` or the source is not Parquet.
    SchemaError
        Required columns are missing.
    """
    from ..data import KIND_NAMES, input_files, simulated_label, validation_report
    from ..eventlog import EventLog

    spark_params = params.engine.spark
    if spark_params.table is None:
        if params.data.format != "canonical":
            raise ParamsError(f"engine spark reads canonical Parquet; data.format is {params.data.format!r}: "
                              "convert the data to canonical Parquet first, or use engine duckdb")
        if params.simulated:
            from ..simulate import ensure_dataset

            path, label, files = ensure_dataset(params.simulation).events_path, simulated_label(params), 1
        else:
            found, kind = input_files(Path(params.data.source))
            if kind != "parquet":
                raise ParamsError(f"engine spark reads Parquet; {params.data.source} holds {KIND_NAMES[kind]}")
            path, label, files = params.data.source, str(params.data.source), len(found)
    engine = SparkEngine(spark_session(spark_params.master, {k: str(v) for k, v in spark_params.options.items()}))
    if spark_params.table is None:
        events = EventLog.from_parquet(path, engine)
    else:
        label, files = spark_params.table, 0
        events = EventLog.from_table(engine.table_from_table(spark_params.table), engine)
    missing = [c for c in COLUMNS.required if c not in events.columns]
    if missing:
        where = label if spark_params.table is None else f"Spark table {label!r}"
        raise SchemaError(f"{where} lacks the required column(s) {missing}; "
                          f"columns found: {', '.join(events.columns)}")
    events.source = label
    events.report = validation_report(events, label, params.data, files, None, 0, False, "as stored (UTC)")
    return events
