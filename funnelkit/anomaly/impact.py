"""What flagged traffic does to the funnel's numbers, and what flagging costs."""
from __future__ import annotations

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import confint_proportions_2indep

from ..eventlog import EventLog
from ..engines import literal, quote
from ..funnel import run_funnel
from ..params import FunnelParams
from ..pseudonym import DEFAULT_KEY_ENV, pseudonymise
from ..schema import COLUMNS, EVENTS
from ..text import points


def conversion_distortion(events: EventLog, spec: FunnelParams, flagged, *, unit: str | None = None) -> dict:
    """The funnel's overall conversion with and without the ``flagged`` users, and the distortion they cause.

    Returns ``all`` and ``kept`` (``FunnelResult.overall`` of each: entrants,
    converted, conversion with its 95% Wilson interval), ``removed_entrants``,
    and ``difference`` = conversion(all) − conversion(kept) with its 95%
    interval.

    Notes
    -----
    The two populations are nested (kept ⊂ all), so their intervals are not
    independent. With n_r removed units converting at p_r, the difference is
    exactly (n_r / n_all)·(p_r − p_kept), and p_r, p_kept come from disjoint
    units: its interval is Newcombe's hybrid score interval for p_r − p_kept
    (statsmodels), scaled by n_r / n_all.
    """
    spec = spec if unit is None else spec.model_copy(update={"unit": unit})
    everyone = run_funnel(events, spec).overall
    kept = run_funnel(events.without_users(flagged), spec).overall
    removed_n = everyone["entrants"] - kept["entrants"]
    removed_c = everyone["converted"] - kept["converted"]
    out = {"all": everyone, "kept": kept, "removed_entrants": removed_n, "removed_converted": removed_c}
    if removed_n == 0:
        return out | {"difference": 0.0, "low": 0.0, "high": 0.0}
    share = removed_n / everyone["entrants"]
    low, high = confint_proportions_2indep(removed_c, removed_n, kept["converted"], kept["entrants"],
                                           method="newcomb", compare="diff")
    return out | {"difference": everyone["conversion"] - kept["conversion"], "low": share * low, "high": share * high}


def flagged_sessions(events: EventLog, flagged: pd.DataFrame) -> pd.DataFrame:
    """The sessions of the flagged users, with what happened in them and why their user was flagged.

    ``flagged`` has ``user_id``, ``detectors`` and ``reasons`` (as from
    ``behaviour.flag_users``). Computed in the log's engine; one row per session, ``start`` and
    ``end`` (first and last event) as UTC timestamps.
    """
    user, session, time, kind = (quote(c) for c in (COLUMNS.user_id, COLUMNS.session_id, COLUMNS.event_time,
                                                    COLUMNS.event_type))
    counts = ", ".join(f"count(*) FILTER (WHERE {kind} = {literal(t)}) AS {t}s" for t in EVENTS.funnel)
    sessions = events.query(
        f"SELECT CAST({user} AS VARCHAR) AS user_id, {session} AS session_id, min({time}) AS start, "
        f"max({time}) AS \"end\", count(*) AS events, {counts} FROM {quote(events.table)} "
        f"WHERE {events.users_condition(flagged[COLUMNS.user_id])} GROUP BY ALL ORDER BY user_id, start, session_id")
    return sessions.merge(flagged[[COLUMNS.user_id, "detectors", "reasons"]], on=COLUMNS.user_id, how="left")


def false_flag_cost(events: EventLog, flagged_users, labels: pd.Series) -> dict:
    """What flagging real customers would cost: humans flagged, and their purchases and revenue in the log.

    ``labels`` maps user id → planted label (the built-in shop); revenue is
    the sum of ``price`` over their purchase events.
    """
    flagged_users = pd.Index(pd.Series(list(flagged_users), dtype=str))
    humans = labels.index[labels.eq("human")]
    wrongly = flagged_users.intersection(humans)
    revenue = _revenue(events)
    total = float(revenue.reindex(humans).fillna(0).sum())
    lost = float(revenue.reindex(wrongly).fillna(0).sum())
    return {"flagged": len(flagged_users), "humans_flagged": len(wrongly),
            "share_of_humans": len(wrongly) / max(len(humans), 1),
            "human_revenue_flagged": lost, "share_of_human_revenue": lost / total if total else np.nan}


def _revenue(events: EventLog) -> pd.Series:
    if COLUMNS.price not in events.columns:
        return pd.Series(dtype=float)
    frame = events.query(events.revenue_sql(f"CAST({quote(COLUMNS.user_id)} AS VARCHAR)"))
    return frame.set_index("key").rename_axis("user_id")["revenue"]


def traffic_share(events: EventLog, users) -> dict:
    """Share of the log's events and sessions that come from ``users``."""
    session, mine = quote(COLUMNS.session_id), events.users_condition(users)
    (events_share, sessions_share), = events.rows(
        f"SELECT avg(CASE WHEN {mine} THEN 1.0 ELSE 0.0 END), "
        f"count(DISTINCT {session}) FILTER (WHERE {mine}) / count(DISTINCT {session}) "
        f"FROM {quote(events.table)}")
    return {"events": float(events_share or 0.0), "sessions": float(sessions_share or 0.0)}


def distortion_table(distortion: dict) -> pd.DataFrame:
    """:func:`conversion_distortion` to read: one row per population, the difference last."""
    def row(name, overall):
        return {"users": name, "entrants": f"{overall['entrants']:,}", "converted": f"{overall['converted']:,}",
                "conversion (95% CI)": f"{overall['conversion']:.2%} ({overall['ci_low']:.2%} to {overall['ci_high']:.2%})"}
    difference = {"users": "difference (all − without flagged)", "entrants": f"{distortion['removed_entrants']:,}",
                  "converted": f"{distortion['removed_converted']:,}",
                  "conversion (95% CI)": (f"{points(distortion['difference'], signed=True)} pp "
                                          f"({points(distortion['low'], signed=True)} to "
                                          f"{points(distortion['high'], signed=True)} pp)")}
    return pd.DataFrame([row("all", distortion["all"]), row("without flagged users", distortion["kept"]), difference])


def with_pseudonyms(frame: pd.DataFrame, columns=(COLUMNS.user_id, COLUMNS.session_id), *, enabled: bool = True,
                    env: str = DEFAULT_KEY_ENV) -> pd.DataFrame:
    """A follow-up table (CSV) with each id column followed by its pseudonym, ``<column>_pseudonym``.

    The CSVs keep the real ids, the analyst's handle to act on a row; the pseudonym beside it is what the
    report shows (``funnelkit.pseudonym``, same key), so a row seen in the report can be found in the file.
    Absent columns are skipped; ``enabled=False`` (ids not pseudonymised in the report) adds nothing.
    """
    if not enabled:
        return frame
    present = [c for c in columns if c in frame.columns]
    shown = pseudonymise(frame[present], present, env=env)
    out = frame.copy()
    for column in present:
        out.insert(out.columns.get_loc(column) + 1, f"{column}_pseudonym", shown[column].to_numpy())
    return out
