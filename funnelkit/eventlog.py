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
        ids = pd.DataFrame({"user_id": pd.Series(sorted(map(str, user_ids)), dtype=object)})
        self.con.register(f"{name}_frame", ids)
        self.con.execute(f"CREATE TEMP TABLE {name} AS SELECT * FROM {name}_frame")
        self.con.unregister(f"{name}_frame")
        return f"CAST({quote(COLUMNS.user_id)} AS VARCHAR) IN (SELECT user_id FROM {name})"

    def without_users(self, user_ids) -> "EventLog":
        """This log without the events of ``user_ids``, as a view (the underlying table is not modified)."""
        name = f"{self.table}_without_{next(_names)}"
        self.con.execute(f"CREATE TEMP VIEW {name} AS SELECT * FROM {quote(self.table)} "
                         f"WHERE NOT ({self.users_condition(user_ids)})")
        # the data still ends where it did: removing users must not move the censoring line
        return EventLog(self.con, name, self.segments, self.report, self.source, _data_end=self.data_end)

    def query(self, sql: str) -> pd.DataFrame:
        """Run SQL in this log's connection and return a (small) DataFrame."""
        return self.con.execute(sql).df()


def _segment_columns(columns) -> tuple[str, ...]:
    canonical = set(COLUMNS.canonical)
    return tuple(c for c in columns if c not in canonical)
