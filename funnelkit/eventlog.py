"""The event log as the studies see it: a table or view with canonical columns, in some engine.

Events stay inside the engine (DuckDB over Parquet files or Arrow memory, or a Spark
session); only small result tables ever become pandas. Every query is written in
DuckDB's dialect and run by the log's engine (:mod:`funnelkit.engines`), which
translates it when its own dialect differs. ``funnelkit.engines.open_events(params)``
opens a run's log; tests build one from a small DataFrame with :meth:`EventLog.from_frame`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .engines.duckdb import DuckDBEngine
from .engines.protocol import Engine
from .engines.sql import literal, quote, unique_name
from .schema import COLUMNS, EVENTS


@dataclass
class EventLog:
    """Canonical events held by an engine.

    Attributes
    ----------
    engine : Engine
        Where the events live and every query runs (:class:`funnelkit.engines.protocol.Engine`).
    table : str
        Name of a table or view of ``engine`` with the canonical columns
        (``funnelkit.schema.COLUMNS``); ``event_time`` is TIMESTAMPTZ (UTC).
    segments : tuple of str
        Extra columns usable for breakdowns (device, channel, ...).
    report : object or None
        The validation report of the load (``funnelkit.data.ValidationReport``).
    source : str or None
        Where the events were read from, for messages and the report index.
    """

    engine: Engine
    table: str
    segments: tuple[str, ...] = ()
    report: Any = None
    source: str | None = None
    _data_end: pd.Timestamp | None = field(default=None, repr=False)

    @classmethod
    def from_table(cls, table: str, engine: Engine, *, source: str | None = None) -> "EventLog":
        """The events of ``table`` (a table or view of ``engine``); every non-canonical column is a segment."""
        canonical = set(COLUMNS.canonical)
        segments = tuple(c for c in engine.column_types(table) if c not in canonical)
        return cls(engine, table, segments=segments, source=source)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, engine: Engine | None = None) -> "EventLog":
        """Copy a canonical DataFrame into ``engine`` (default a new DuckDB engine); the frame is not modified."""
        frame = frame.copy()
        frame[COLUMNS.event_time] = pd.to_datetime(frame[COLUMNS.event_time], utc=True)
        engine = engine or DuckDBEngine()
        return cls.from_table(engine.table_from_frame(frame), engine)

    @classmethod
    def from_parquet(cls, path, engine: Engine | None = None) -> "EventLog":
        """Canonical Parquet file(s) read in place: a view, so each query scans only the columns it needs.

        Nothing is copied or checked: use it for files in the canonical schema written by
        funnelkit itself (the simulator, a previous export); anything else goes through
        :func:`funnelkit.data.load_events`, which validates. On DuckDB (the default engine)
        ``path`` may be a glob; Spark reads a folder of files.
        """
        engine = engine or DuckDBEngine()
        return cls.from_table(engine.table_from_parquet(str(path)), engine, source=str(path))

    @property
    def columns(self) -> list[str]:
        return list(self.column_types())

    def column_types(self) -> dict[str, str]:
        """Column name → DuckDB type name (``VARCHAR``, ``DOUBLE``, ``TIMESTAMP WITH TIME ZONE``, ...)."""
        return self.engine.column_types(self.table)

    @property
    def data_end(self) -> pd.Timestamp:
        """Time of the last event in the log: where every conversion window is cut."""
        if self._data_end is None:
            # as integer microseconds: every engine returns those the same way (Spark's collected
            # timestamps are naive, in the driver's local zone)
            (value,), = self.rows(f"SELECT epoch_us(max({quote(COLUMNS.event_time)})) FROM {quote(self.table)}")
            self._data_end = pd.NaT if value is None else pd.Timestamp(int(value), unit="us", tz="UTC")
        return self._data_end

    def query(self, sql: str) -> pd.DataFrame:
        """Run SQL (DuckDB's dialect) in this log's engine and return a (small) DataFrame."""
        return self.engine.query(sql)

    def rows(self, sql: str) -> list[tuple]:
        """Run SQL and return its (few) rows as tuples."""
        return self.engine.rows(sql)

    def create_table(self, name: str, sql: str) -> None:
        """Materialise the result of ``sql`` as temporary table ``name`` of this log's engine."""
        self.engine.create_table(name, sql)

    def drop_table(self, name: str) -> None:
        """Drop a temporary table made by :meth:`create_table` (no error when it is gone)."""
        self.engine.drop_table(name)

    def asof_sql(self, left: str, right: str, *, key: str, time: str, op: str, out: str,
                 right_key: str = "unit") -> str:
        """The engine's nearest-time join (:meth:`funnelkit.engines.protocol.Engine.asof_sql`)."""
        return self.engine.asof_sql(left, right, key=key, time=time, op=op, out=out, right_key=right_key)

    def derive(self, sql: str, *, keep_data_end: bool = False) -> "EventLog":
        """A log of the same engine over ``sql`` (a SELECT of canonical columns over this log), as a view.

        Nothing is copied and this log is not modified. ``keep_data_end``: the new log ends
        where this one does (removing events must not move the censoring line).
        """
        name = unique_name(f"{self.table}_derived")
        self.engine.create_view(name, sql)
        return dataclasses.replace(self, table=name, _data_end=self.data_end if keep_data_end else None)

    def revenue_sql(self, by: str | None = None, *, condition: str | None = None) -> str:
        """SQL of the revenue in the data's currency: the sum of ``price`` over purchase events.

        ``by`` is a SQL expression to group by (the result has columns ``key`` and ``revenue``,
        one row per value); without it the result is one row with ``revenue``. ``condition``
        (SQL) picks the events instead of "the event is a purchase" (a funnel's last step, say). Events without a price
        add nothing; call it only when the log has a ``price`` column.
        """
        condition = condition or f"{quote(COLUMNS.event_type)} = {literal(EVENTS.purchase)}"
        key, group = (f"{by} AS key, ", " GROUP BY 1") if by else ("", "")
        return (f"SELECT {key}sum({quote(COLUMNS.price)}) AS revenue FROM {quote(self.table)} "
                f"WHERE {condition}{group}")

    def users_condition(self, user_ids) -> str:
        """A SQL condition on this log's rows: the event's user is one of ``user_ids`` (compared as text).

        The ids go into a temporary table of the engine, so any number of them stays one
        small join rather than a long literal list.
        """
        name = unique_name("user_ids")
        self.engine.store_frame(name, pd.DataFrame({"user_id": pd.Series(sorted(map(str, user_ids)), dtype=object)}))
        return f"CAST({quote(COLUMNS.user_id)} AS VARCHAR) IN (SELECT user_id FROM {name})"

    def without_users(self, user_ids) -> "EventLog":
        """This log without the events of ``user_ids``, as a view (the underlying table is not modified)."""
        # the data still ends where it did: removing users must not move the censoring line
        return self.derive(f"SELECT * FROM {quote(self.table)} WHERE NOT ({self.users_condition(user_ids)})",
                           keep_data_end=True)

