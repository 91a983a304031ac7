"""The DuckDB engine (the default): events in a DuckDB connection, over Parquet files or in memory.

DuckDB runs the package's SQL as written (it is the dialect every query is written in), spills to
a temporary folder beyond ``engine.memory_limit``, and returns results to pandas directly.
:func:`open_events` loads and checks the run's data with :func:`funnelkit.data.load_events`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import duckdb
import pandas as pd

from .protocol import ASOF_OPS
from .sql import literal, quote, unique_name

if TYPE_CHECKING:  # pragma: no cover
    from ..eventlog import EventLog
    from ..params import EngineParams, Params


def connect(engine: "EngineParams | None" = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection set up the way every funnelkit query expects.

    The session time zone is UTC so TIMESTAMPTZ values come back to pandas as
    UTC; ``memory_limit`` bounds memory (DuckDB spills to a temp folder).
    """
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    # progress bars on stderr clutter the CLI; inside Jupyter DuckDB already has them off and
    # refuses to change the setting without ipywidgets, hence the check
    if con.execute("SELECT current_setting('enable_progress_bar')").fetchall()[0][0]:
        con.execute("SET enable_progress_bar = false")
    if engine is not None:
        con.execute(f"SET memory_limit = {literal(engine.memory_limit)}")
        if engine.threads:
            con.execute(f"SET threads = {int(engine.threads)}")
    return con


class DuckDBEngine:
    """The :class:`~funnelkit.engines.protocol.Engine` protocol on a DuckDB connection.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection, optional
        The connection to run in; default a new one from :func:`connect`.
    """

    name = "duckdb"

    def __init__(self, con: duckdb.DuckDBPyConnection | None = None):
        self.con = con if con is not None else connect()

    def __repr__(self) -> str:
        return f"DuckDBEngine({self.con!r})"

    def query(self, sql: str) -> pd.DataFrame:
        return self.con.execute(sql).df()

    def rows(self, sql: str) -> list[tuple]:
        return self.con.execute(sql).fetchall()

    def create_table(self, name: str, sql: str) -> None:
        self.con.execute(f"CREATE TEMP TABLE {quote(name)} AS {sql}")

    def drop_table(self, name: str) -> None:
        self.con.execute(f"DROP TABLE IF EXISTS {quote(name)}")

    def create_view(self, name: str, sql: str) -> None:
        self.con.execute(f"CREATE TEMP VIEW {quote(name)} AS {sql}")

    def store_frame(self, name: str, frame: pd.DataFrame) -> None:
        # text columns, declared: DuckDB would type an empty object column NULL
        text = ", ".join(f"CAST({quote(column)} AS VARCHAR) AS {quote(column)}" for column in frame.columns)
        self._copy(frame, f"CREATE TEMP TABLE {quote(name)}", text)

    def table_from_frame(self, frame: pd.DataFrame) -> str:
        name = unique_name("events")
        self._copy(frame, f"CREATE TABLE {quote(name)}")
        return name

    def _copy(self, frame: pd.DataFrame, create: str, columns: str = "*") -> None:
        """``create AS SELECT columns`` from ``frame``, registered with DuckDB only for the copy."""
        registered = unique_name("frame")
        self.con.register(registered, frame)
        try:
            self.con.execute(f"{create} AS SELECT {columns} FROM {registered}")
        finally:
            self.con.unregister(registered)

    def table_from_parquet(self, path: str) -> str:
        name = unique_name("parquet_events")
        self.create_view(name, f"SELECT * FROM read_parquet({literal(str(path))})")
        return name

    def column_types(self, table: str) -> dict[str, str]:
        return {row[0]: row[1] for row in self.con.execute(f"DESCRIBE {quote(table)}").fetchall()}

    def asof_sql(self, left: str, right: str, *, key: str, time: str, op: str, out: str,
                 right_key: str = "unit") -> str:
        """DuckDB's own ASOF LEFT JOIN (see :meth:`Engine.asof_sql <funnelkit.engines.protocol.Engine.asof_sql>`)."""
        if op not in ASOF_OPS:
            raise ValueError(f"op must be one of {ASOF_OPS}, got {op!r}")
        return (f"SELECT l.*, r.t AS {out} FROM {left} l ASOF LEFT JOIN {right} r "
                f"ON l.{key} = r.{right_key} AND r.t {op} l.{time}")

    def translate(self, sql: str) -> str:
        return sql

    def close(self) -> None:
        self.con.close()


def open_events(params: "Params") -> "EventLog":
    """The run's events loaded into DuckDB and checked: ``data.source``, or the built-in shop when simulated.

    Raises
    ------
    DataError, SchemaError
        As :func:`funnelkit.data.load_events`.
    """
    from ..data import load_events, simulated_label
    from ..params import DataParams

    if params.simulated:
        from ..simulate import ensure_dataset  # late: only needed without data of one's own

        events = load_events(ensure_dataset(params.simulation).events_path, DataParams(format="canonical"),
                             engine=params.engine)
        events.source = events.report.source = simulated_label(params)
        return events
    return load_events(params.data.source, params.data, engine=params.engine)
