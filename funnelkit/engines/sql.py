"""SQL text in DuckDB's dialect, the one every funnelkit query is written in (engines translate it)."""
from __future__ import annotations

import itertools
from typing import Any

import pandas as pd

_names = itertools.count()


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


def timestamp_literal(value) -> str:
    """A DuckDB TIMESTAMPTZ literal for a timestamp (naive values are taken as UTC)."""
    value = pd.Timestamp(value)
    value = value.tz_localize("UTC") if value.tzinfo is None else value.tz_convert("UTC")
    return f"TIMESTAMPTZ {literal(value.isoformat())}"


def distinct_counts(source: str, key: str, columns: dict[str, str]) -> str:
    """A query of ``key`` and, per column of ``columns`` (column -> output name), how many distinct non-null
    values it has for that key, over ``source`` (a table, CTE or parenthesised subquery).

    Not ``count(DISTINCT ...)``: DuckDB materialises an aggregate's whole input for it (the whole log, more
    than the memory limit holds beside the events at 15M events); one grouping per column (``GROUPING SETS``,
    one pass) spills to disk when it must. In the rows of one grouping the other columns are NULL, which
    ``count`` skips.
    """
    sets = ", ".join(f"({key}, {column})" for column in columns)
    counts = ", ".join(f"count({column}) AS {name}" for column, name in columns.items())
    return (f"SELECT {key}, {counts} FROM (SELECT {key}, {', '.join(columns)} FROM {source} "
            f"GROUP BY GROUPING SETS ({sets})) GROUP BY {key}")


def unique_name(prefix: str) -> str:
    """``prefix_N``, a name no other temporary table or view of this process has.

    One counter for every engine: Spark's temporary views belong to the session, which
    several logs (and engines) may share.
    """
    return f"{prefix}_{next(_names)}"
