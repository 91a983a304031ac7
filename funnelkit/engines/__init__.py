"""Engines: where the events live and the queries run.

The protocol
------------
Every query of the package (the funnel in every mode, its results, paths, the session and
feature tables, the data-quality counts, the anomaly and recommendation queries) is written
once, in DuckDB's SQL dialect, with the helpers below (:func:`quote`, :func:`literal`,
:func:`timestamp_literal`). An :class:`~funnelkit.eventlog.EventLog` hands each one to its
engine, an object with the small set of methods of :class:`~funnelkit.engines.protocol.Engine`:
run a query (``query``, ``rows``), make and drop temporary tables and views (``create_table``,
``drop_table``, ``create_view``, ``store_frame``), bring events in (``table_from_frame``,
``table_from_parquet``), describe a table (``column_types``, in DuckDB's type names), write
the one construct engines spell differently (``asof_sql``), ``translate`` DuckDB's dialect into
its own, and ``close``. Results come back as small pandas frames with the dtypes DuckDB gives,
so the studies never know which engine ran them.

=========  ============================  ================================================
name       module                        what it is for
=========  ============================  ================================================
duckdb     :mod:`.duckdb`                one machine (default); reads and checks every format
spark      :mod:`.spark`                 events in a Spark cluster (canonical Parquet or a table)
=========  ============================  ================================================

:func:`open_events` picks the engine named by ``engine.name`` of the params and lets it
open the run's events. Engine modules are imported only when chosen, so an engine's
library (PySpark) stays an optional extra.

How to add an engine
--------------------
1. Write ``funnelkit/engines/<name>.py``: a class with the methods of
   :class:`~funnelkit.engines.protocol.Engine` (``translate`` does the dialect: sqlglot
   reads DuckDB's and writes most others; ``asof_sql`` writes the nearest-time join in SQL
   the engine runs), and ``open_events(params) -> EventLog`` that reads the run's data into it.
2. Add ``"<name>": "funnelkit.engines.<name>"`` to :data:`ENGINES`: ``engine.name: <name>``
   in a params file then chooses it (the params check names against this registry).
3. Add the name to ``ENGINE_PARAMS`` of ``tests/conftest.py`` and how to make an empty engine
   of it to its ``engine`` fixture: the known-answer tests of
   the funnel and ``tests/test_engines.py`` then run on it.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .protocol import Engine
from .sql import distinct_counts, literal, quote, timestamp_literal, unique_name

if TYPE_CHECKING:  # pragma: no cover
    from ..eventlog import EventLog
    from ..params import Params

__all__ = ["ENGINES", "Engine", "distinct_counts", "literal", "open_events", "quote", "timestamp_literal",
           "unique_name"]

#: engine name (``engine.name`` of a params file) → the module implementing it, imported when chosen
ENGINES = {
    "duckdb": "funnelkit.engines.duckdb",
    "spark": "funnelkit.engines.spark",
}


def open_events(params: "Params") -> "EventLog":
    """The events a run analyses, opened by the engine ``params.engine.name``.

    ``data.source``, or the built-in simulated shop when the params name no data
    (``params.simulated``); on Spark also ``engine.spark.table``. Each engine's
    ``open_events`` says what it reads and checks.

    Raises
    ------
    ParamsError
        No engine of that name.
    """
    from ..errors import ParamsError

    name = params.engine.name
    if name not in ENGINES:
        raise ParamsError(f"engine.name: no engine {name!r}; the engines are {', '.join(ENGINES)}")
    return importlib.import_module(ENGINES[name]).open_events(params)
