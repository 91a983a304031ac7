"""What units do next: transition matrix of event types and the paths that end in drop-off."""
from __future__ import annotations

import pandas as pd

from ..engines import quote
from ..eventlog import EventLog
from ..schema import COLUMNS, EVENTS
from .result import FunnelResult
from .sql import micros, unit_column

EXIT = "(exit)"


def transition_matrix(events: EventLog, unit: str = "session", normalize: bool = True) -> pd.DataFrame:
    """Counts (or row shares) of the next event type after each event type.

    Events of a unit are taken in time order (simultaneous events by type
    name, so the result is deterministic); the unit's last event goes to
    ``"(exit)"``. Rows: current event type; columns: next event type.
    With ``normalize`` each row sums to 1 (share of next events).
    """
    unit_col = quote(unit_column(unit))
    kind, time = quote(COLUMNS.event_type), quote(COLUMNS.event_time)
    counts = events.query(
        f"WITH seq AS (SELECT {kind} AS current, coalesce(lead({kind}) OVER (PARTITION BY {unit_col} "
        f"ORDER BY {time}, {kind}), '{EXIT}') AS next FROM {quote(events.table)} WHERE {unit_col} IS NOT NULL) "
        f"SELECT current, next, count(*) AS n FROM seq GROUP BY ALL"
    )
    matrix = counts.pivot(index="current", columns="next", values="n").fillna(0).astype(int)
    # funnel events in funnel order first, then any other event names alphabetically
    seen = set(matrix.index) | (set(matrix.columns) - {EXIT})
    order = [t for t in EVENTS.funnel if t in seen] + sorted(seen - set(EVENTS.funnel))
    matrix = matrix.reindex(index=[t for t in order if t in matrix.index], columns=order + [EXIT], fill_value=0)
    if normalize:
        return matrix.div(matrix.sum(axis=1), axis=0)
    return matrix


def dropoff_paths(result: FunnelResult, step: str | int, max_events: int = 4, top: int = 10) -> pd.DataFrame:
    """The most common event paths of units that reached ``step`` and went no further.

    For each resolved (uncensored) unit whose furthest step is ``step``, the
    event types it did after reaching it, within its conversion window
    (entry + window), consecutive repeats collapsed, the first
    ``max_events`` kept and ``"(exit)"`` appended. Columns: ``path``,
    ``units``, ``share`` of those drop-offs.
    """
    k = result.step_index(step)
    n = len(result.step_names)
    if not 0 <= k < n - 1:
        raise ValueError(f"step must be a step before the last one, got {step!r}")
    unit_col = quote(unit_column(result.spec.unit))
    kind, time = quote(COLUMNS.event_type), quote(COLUMNS.event_time)
    frame = result.events.query(
        f"WITH dropped AS (SELECT unit, T{k} AS since, entry + {micros(result.spec.window)} AS until "
        f"FROM {result.units_sql(furthest=k)} AS u), "
        f"ev AS (SELECT d.unit, e.{kind} AS kind, epoch_us(e.{time}) AS t FROM dropped d "
        f"JOIN {quote(result.events.table)} e ON e.{unit_col} = d.unit "
        f"AND epoch_us(e.{time}) > d.since AND epoch_us(e.{time}) <= d.until), "
        f"marked AS (SELECT *, kind IS DISTINCT FROM lag(kind) OVER (PARTITION BY unit ORDER BY t, kind) AS new FROM ev), "
        f"runs AS (SELECT unit, kind, row_number() OVER (PARTITION BY unit ORDER BY t, kind) AS i FROM marked WHERE new), "
        f"paths AS (SELECT d.unit, coalesce(string_agg(r.kind, ' → ' ORDER BY r.i) FILTER (WHERE r.i <= {int(max_events)}), '') AS path "
        f"FROM dropped d LEFT JOIN runs r ON r.unit = d.unit GROUP BY d.unit) "
        f"SELECT path, count(*) AS units FROM paths GROUP BY path ORDER BY units DESC, path LIMIT {int(top)}"
    )
    total = result.steps["entrants"].iloc[k] - result.steps["entrants"].iloc[k + 1]
    frame["path"] = [f"{result.step_names[k]} → " + (p + " → " if p else "") + EXIT for p in frame["path"]]
    frame["share"] = frame["units"] / total if total else float("nan")
    return frame
