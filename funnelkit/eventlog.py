"""The event log as the engines see it: a DuckDB table or view with canonical columns.

Events stay inside DuckDB (over Parquet files or Arrow memory); only small
result tables ever become pandas. ``funnelkit.data.load_events`` builds an
:class:`EventLog`; tests build one from a small DataFrame with
:meth:`EventLog.from_frame`.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import duckdb
import pandas as pd

from .schema import COLUMNS

if TYPE_CHECKING:  # pragma: no cover
    from .params import EngineParams

_names = itertools.count()
_ASOF_OPS = (">=", ">", "<")


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


def timestamp_literal(value) -> str:
    """A DuckDB TIMESTAMPTZ literal for a timestamp (naive values are taken as UTC)."""
    value = pd.Timestamp(value)
    value = value.tz_localize("UTC") if value.tzinfo is None else value.tz_convert("UTC")
    return f"TIMESTAMPTZ {literal(value.isoformat())}"


def quote(identifier: str) -> str:
    """Quote a column or table name for DuckDB SQL."""
    return '"' + identifier.replace('"', '""') + '"'


def literal(value: Any) -> str:
    """A SQL literal for a str/int/float/bool parameter value."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


@dataclass
class EventLog:
    """Canonical events living in a DuckDB connection.

    Attributes
    ----------
    con : duckdb.DuckDBPyConnection
        The connection that holds ``table``.
    table : str
        Name of a table or view with the canonical columns
        (``funnelkit.schema.COLUMNS``); ``event_time`` is TIMESTAMPTZ (UTC).
    segments : tuple of str
        Extra columns usable for breakdowns (device, channel, ...).
    report : object or None
        The validation report of the load (``funnelkit.data.ValidationReport``).
    source : str or None
        Where the events were read from, for messages and the report index.
    """

    con: duckdb.DuckDBPyConnection
    table: str
    segments: tuple[str, ...] = ()
    report: Any = None
    source: str | None = None
    _data_end: pd.Timestamp | None = field(default=None, repr=False)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, con: duckdb.DuckDBPyConnection | None = None) -> "EventLog":
        """Copy a canonical DataFrame into DuckDB (the frame is not modified)."""
        con = con or connect()
        frame = frame.copy()
        frame[COLUMNS.event_time] = pd.to_datetime(frame[COLUMNS.event_time], utc=True)
        name = f"events_{next(_names)}"
        con.register(f"{name}_frame", frame)
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM {name}_frame")
        con.unregister(f"{name}_frame")
        return cls(con, name, segments=_segment_columns(frame.columns))

    @classmethod
    def from_parquet(cls, path, con: duckdb.DuckDBPyConnection | None = None) -> "EventLog":
        """Canonical Parquet file(s) read in place: a view, so each query scans only the columns it needs.

        Nothing is copied or checked: use it for files in the canonical schema written by
        funnelkit itself (the simulator, a previous export); anything else goes through
        :func:`funnelkit.data.load_events`, which validates. ``path`` may be a glob.
        """
        con = con or connect()
        name = f"parquet_events_{next(_names)}"
        con.execute(f"CREATE TEMP VIEW {name} AS SELECT * FROM read_parquet({literal(str(path))})")
        columns = [row[0] for row in con.execute(f"DESCRIBE {name}").fetchall()]
        return cls(con, name, segments=_segment_columns(columns), source=str(path))

    @property
    def columns(self) -> list[str]:
        return [row[0] for row in self.con.execute(f"DESCRIBE {quote(self.table)}").fetchall()]

    @property
    def data_end(self) -> pd.Timestamp:
        """Time of the last event in the log: where every conversion window is cut."""
        if self._data_end is None:
            (value,) = self.con.execute(
                f"SELECT max({quote(COLUMNS.event_time)}) FROM {quote(self.table)}"
            ).fetchall()[0]
            self._data_end = pd.Timestamp(value).tz_convert("UTC")
        return self._data_end

    def users_condition(self, user_ids) -> str:
        """A SQL condition on this log's rows: the event's user is one of ``user_ids`` (compared as text).

        The ids go into a temporary table of the connection, so any number of them stays one
        small join rather than a long literal list.
        """
        name = f"user_ids_{next(_names)}"
        self._store_frame(name, pd.DataFrame({"user_id": pd.Series(sorted(map(str, user_ids)), dtype=object)}))
        return f"CAST({quote(COLUMNS.user_id)} AS VARCHAR) IN (SELECT user_id FROM {name})"

    def _store_frame(self, name: str, frame: pd.DataFrame) -> None:
        """A small DataFrame as temporary table ``name`` of this log's engine."""
        self.con.register(f"{name}_frame", frame)
        self.con.execute(f"CREATE TEMP TABLE {name} AS SELECT * FROM {name}_frame")
        self.con.unregister(f"{name}_frame")

    def without_users(self, user_ids) -> "EventLog":
        """This log without the events of ``user_ids``, as a view (the underlying table is not modified)."""
        # the data still ends where it did: removing users must not move the censoring line
        return self.derive(f"SELECT * FROM {quote(self.table)} WHERE NOT ({self.users_condition(user_ids)})",
                           keep_data_end=True)

    #: the SQL dialect every query is written in; an engine with another dialect translates it
    dialect = "duckdb"

    def query(self, sql: str) -> pd.DataFrame:
        """Run SQL in this log's connection and return a (small) DataFrame."""
        return self.con.execute(sql).df()

    def rows(self, sql: str) -> list[tuple]:
        """Run SQL and return its (few) rows as tuples."""
        return self.con.execute(sql).fetchall()

    def create_table(self, name: str, sql: str) -> None:
        """Materialise the result of ``sql`` as temporary table ``name`` of this log's engine."""
        self.con.execute(f"CREATE TEMP TABLE {quote(name)} AS {sql}")

    def drop_table(self, name: str) -> None:
        """Drop a temporary table made by :meth:`create_table` (no error when it is gone)."""
        self.con.execute(f"DROP TABLE IF EXISTS {quote(name)}")

    def derive(self, sql: str, *, keep_data_end: bool = False) -> "EventLog":
        """A log of the same engine over ``sql`` (a SELECT of canonical columns over this log), as a view.

        Nothing is copied and this log is not modified. ``keep_data_end``: the new log ends
        where this one does (removing events must not move the censoring line).
        """
        name = f"{self.table}_derived_{next(_names)}"
        self._create_view(name, sql)
        return type(self)(self.con, name, self.segments, self.report, self.source,
                          _data_end=self.data_end if keep_data_end else None)

    def _create_view(self, name: str, sql: str) -> None:
        self.con.execute(f"CREATE TEMP VIEW {quote(name)} AS {sql}")

    def column_types(self) -> dict[str, str]:
        """Column name → DuckDB type name (``VARCHAR``, ``DOUBLE``, ``TIMESTAMP WITH TIME ZONE``, ...)."""
        return {row[0]: row[1] for row in self.con.execute(f"DESCRIBE {quote(self.table)}").fetchall()}

    def asof_sql(self, left: str, right: str, *, key: str, time: str, op: str, out: str,
                 right_key: str = "unit") -> str:
        """SELECT every row of ``left`` with the nearest time of ``right`` in one direction as column ``out``.

        ``right`` has columns ``right_key`` and ``t``; for each row of ``left`` (a table, CTE or
        parenthesised query), ``out`` is the smallest ``t`` with ``t >= time`` (``op=">="``) or
        ``t > time`` (``">"``), or the largest with ``t < time`` (``"<"``), among rows of ``right``
        whose ``right_key`` equals the row's ``key``; NULL when there is none. DuckDB runs it as an
        ASOF join; other engines override this with an equivalent of their own.
        """
        if op not in _ASOF_OPS:
            raise ValueError(f"op must be one of {_ASOF_OPS}, got {op!r}")
        return (f"SELECT l.*, r.t AS {out} FROM {left} l ASOF LEFT JOIN {right} r "
                f"ON l.{key} = r.{right_key} AND r.t {op} l.{time}")


def _segment_columns(columns) -> tuple[str, ...]:
    canonical = set(COLUMNS.canonical)
    return tuple(c for c in columns if c not in canonical)
