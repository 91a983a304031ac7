"""The engine protocol: what an :class:`~funnelkit.eventlog.EventLog` asks of the engine that holds its events.

Every method that takes SQL takes it in DuckDB's dialect (:mod:`funnelkit.engines`); an engine
with another dialect translates it (:meth:`Engine.translate`) before running it. Tables and views
an engine makes are temporary: they live as long as the engine (its connection or session).
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import pandas as pd

#: the directions of :meth:`Engine.asof_sql`: the nearest later-or-equal, strictly later, or earlier time
ASOF_OPS = (">=", ">", "<")


@runtime_checkable
class Engine(Protocol):
    """Where events live and queries run.

    Attributes
    ----------
    name : str
        The engine's key in :data:`funnelkit.engines.ENGINES` (``engine.name`` of a params file).
    """

    name: str

    def query(self, sql: str) -> pd.DataFrame:
        """Run ``sql`` and return its (small) result as pandas, with DuckDB's dtypes.

        Integer columns holding NULL are nullable ``Int64``, text is ``object``, timestamps are
        microsecond ``datetime64``: instants (DuckDB's ``TIMESTAMPTZ``, Spark's ``TIMESTAMP``) UTC-aware,
        wall-clock times (DuckDB's ``TIMESTAMP``, Spark's ``TIMESTAMP_NTZ``) naive.
        """

    def rows(self, sql: str) -> list[tuple]:
        """Run ``sql`` and return its (few) rows as tuples of Python values."""

    def create_table(self, name: str, sql: str) -> None:
        """Materialise the result of ``sql`` as temporary table ``name`` (computed now: errors surface here)."""

    def drop_table(self, name: str) -> None:
        """Drop temporary table ``name`` made by :meth:`create_table`; nothing happens when it is gone."""

    def create_view(self, name: str, sql: str) -> None:
        """Make ``sql`` the temporary view ``name``: nothing is computed or copied."""

    def store_frame(self, name: str, frame: pd.DataFrame) -> None:
        """Copy a small DataFrame of text columns (a list of ids) into temporary table ``name``.

        An empty frame makes an empty table with the frame's columns, as text.
        """

    def table_from_frame(self, frame: pd.DataFrame) -> str:
        """Copy a DataFrame into a new table of the engine and return its name (the frame is not modified).

        ``event_time`` arrives as timezone-aware UTC; it must stay ``TIMESTAMP WITH TIME ZONE``.
        """

    def table_from_parquet(self, path: str) -> str:
        """A new view over Parquet file(s) read in place (nothing copied or checked); return its name."""

    def column_types(self, table: str) -> dict[str, str]:
        """Column name → type of table or view ``table``, in order, as DuckDB names the types.

        ``VARCHAR``, ``DOUBLE``, ``BIGINT``, ``BOOLEAN``, ``TIMESTAMP WITH TIME ZONE``, ...:
        the names the rest of the package checks against, whatever the engine calls them.
        """

    def asof_sql(self, left: str, right: str, *, key: str, time: str, op: str, out: str,
                 right_key: str = "unit") -> str:
        """SQL (DuckDB's dialect) selecting every row of ``left`` with the nearest time of ``right`` as ``out``.

        ``right`` has columns ``right_key`` and ``t``. For each row of ``left`` (a table, CTE or
        parenthesised query), ``out`` is the smallest ``t`` with ``t >= time`` (``op=">="``) or
        ``t > time`` (``">"``), or the largest with ``t < time`` (``"<"``), among the rows of
        ``right`` whose ``right_key`` equals the row's ``key``; NULL when there is none. ``op``
        outside :data:`ASOF_OPS` is a ``ValueError``. The one construct each engine writes its
        own way (an ASOF join, a window query); the result goes into queries run by this engine.
        """

    def translate(self, sql: str) -> str:
        """``sql`` in this engine's dialect (the identity for DuckDB).

        The engine applies it itself in ``query``, ``rows``, ``create_table`` and ``create_view``:
        callers pass DuckDB's dialect there. It is public so that a test or a user can see the
        SQL an engine will run.
        """

    def close(self) -> None:
        """Free what the engine holds; it runs no query afterwards."""
