"""Broken-step days: every detector on every step's conversion series, scored against known incidents."""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from ..funnel import FunnelResult
from . import kpi


def step_alarms(result: FunnelResult, freq: str, *, z_threshold: float = 3.5, rate_alpha: float = 0.001,
                min_sessions: int = 1, traffic: bool = True) -> pd.DataFrame:
    """Alarms of every detector on traffic and on each step's conversion series at ``freq``.

    Returns the long table of :func:`kpi.detect` with a ``series`` column:
    ``entrants`` (traffic) or a step name (conversion into that step from
    the previous one), and ``sessions``: the period's sessions behind the
    value (entrants for traffic, the step's ``{s}_from`` for a rate). A
    step's rate from fewer than ``min_sessions`` sessions is left out of
    every detector (``kpi.detect``'s ``min_trials``), and only drops of a
    rate alarm. ``traffic=False`` leaves out the traffic series.
    """
    series = kpi.kpi_series(result, freq)
    columns = (["entrants"] if traffic else []) + [f"{step}_rate" for step in result.step_names[1:]]
    tables = []
    for column in columns:
        name = column.removesuffix("_rate")
        sessions = series["entrants" if column == "entrants" else f"{name}_from"]
        table = kpi.detect(series, freq, column, z_threshold=z_threshold, rate_alpha=rate_alpha,
                           min_trials=min_sessions)
        detectors_run = len(table) // max(len(series), 1)  # detect stacks one full series per detector
        tables.append(table.assign(series=name, sessions=np.tile(sessions.to_numpy(), detectors_run)))
    return pd.concat(tables, ignore_index=True)


def sparse_frequencies(result: FunnelResult, freqs: Iterable[str], min_sessions: int) -> dict[str, str]:
    """The frequencies too sparse to monitor, each with the reason in words.

    A frequency is too sparse when its median period (on the complete
    calendar of :func:`kpi.kpi_series`, empty periods included) has fewer
    than ``min_sessions`` sessions entering the funnel: most of its
    conversion rates would come from too few sessions to be left in
    (:func:`step_alarms`), and on a long log its STL fits are the slowest
    part of the study.
    """
    skipped = {}
    for freq in freqs:
        entrants = kpi.kpi_series(result, freq)["entrants"]
        median = float(entrants.median()) if len(entrants) else 0.0
        if median < min_sessions:
            skipped[freq] = (f"the median {freq} has {median:g} session(s) entering the funnel, fewer than "
                             f"`anomaly.min_sessions_per_period` ({min_sessions})")
    return skipped


def conversion_alarms(alarms: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The alarms on the steps' conversion series, one row each: ``frequency``, ``period``, ``date`` (UTC),
    ``step``, ``detector``, ``value``, ``expected``, ``score`` and ``sessions`` (as :func:`step_alarms`)."""
    columns = ["frequency", "period", "date", "step", "detector", "value", "expected", "score", "sessions"]
    frames = [table[table["alarm"] & (table["series"] != "entrants")].assign(frequency=freq)
              for freq, table in alarms.items()]
    hits = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if hits.empty:
        return pd.DataFrame(columns=columns)
    hits["date"] = pd.to_datetime(hits["period"]).dt.strftime("%Y-%m-%d")
    return hits.rename(columns={"series": "step"}).reindex(columns=columns)


def score_incidents(alarms: pd.DataFrame, incidents: list[dict], freq: str) -> pd.DataFrame:
    """Per detector: alarms on the step series against the incident days of each step.

    An alarm is right when it falls on an incident date *of that series'
    step*; ``precision`` pools the detector's alarms over all step series,
    ``recall`` is the share of incidents found on their step's series, and
    ``delay_hours`` the mean time from the incident day's midnight (UTC) to
    the end of the first alarmed period (when the alarm could be raised).
    Traffic alarms are left out (incidents break conversion, not traffic).
    """
    rows = []
    steps = alarms.loc[alarms["series"] != "entrants", "series"].unique()
    for detector, part in alarms[alarms["series"] != "entrants"].groupby("detector", sort=False):
        per_step = []
        for step in steps:
            dates = [i["date"] for i in incidents if i["step"] == step]
            scored = kpi.score_against_incidents(part[part["series"] == step], dates, freq)
            per_step.append(scored.assign(incidents=len(dates)))
        table = pd.concat(per_step, ignore_index=True)
        alarmed = int(table["alarms"].sum())
        found = float((table["recall"].fillna(0) * table["incidents"]).sum())
        true_alarms = alarmed - int(table["false_alarms"].sum())
        delays = table.loc[table["incidents"] > 0, "delay_hours"].dropna()
        rows.append({"frequency": freq, "detector": detector, "alarms": alarmed,
                     "false_alarms": int(table["false_alarms"].sum()),
                     "precision": true_alarms / alarmed if alarmed else float("nan"),
                     "recall": found / max(len(incidents), 1) if incidents else float("nan"),
                     "delay_hours": float(delays.mean()) if len(delays) else float("nan")})
    return pd.DataFrame(rows)


def best_detector(scored: pd.DataFrame) -> pd.Series:
    """The row of :func:`score_table` with the highest recall, then precision (then fewest false alarms)."""
    ranked = scored.assign(_p=scored["precision"].fillna(0))
    return ranked.sort_values(["recall", "_p", "false_alarms"], ascending=[False, False, True]).iloc[0].drop("_p")


def score_table(alarms: dict[str, pd.DataFrame], incidents: list[dict]) -> pd.DataFrame:
    """:func:`score_incidents` for every frequency of ``alarms`` ({freq: step_alarms table})."""
    columns = ["frequency", "detector", "alarms", "false_alarms", "precision", "recall", "delay_hours"]
    tables = [score_incidents(table, incidents, freq) for freq, table in alarms.items()]
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=columns)


def alarm_days(alarms: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Days (UTC) with at least one alarm on a step's conversion: which steps, detectors and frequencies."""
    hits = conversion_alarms(alarms)
    if hits.empty:
        return pd.DataFrame(columns=["date", "steps", "detectors", "alarms"])
    return (hits.groupby("date")
            .agg(steps=("step", lambda s: ", ".join(sorted(set(s)))),
                 detectors=("detector", lambda s: ", ".join(sorted(set(s)))), alarms=("detector", "size"))
            .reset_index())


def false_alarm_rates(alarms: dict[str, pd.DataFrame], days: float, incidents: list[dict] | None = None) -> pd.DataFrame:
    """Alarms on the conversion series per 30 days, per frequency and detector.

    With known ``incidents``, alarms on an incident day of that step are not
    counted: what remains is the false-alarm rate an analyst would live with.
    """
    rows = []
    for freq, table in alarms.items():
        steps = table[(table["series"] != "entrants") & table["alarm"]].copy()
        steps["date"] = pd.to_datetime(steps["period"]).dt.strftime("%Y-%m-%d")
        if incidents:
            true = {(i["step"], i["date"]) for i in incidents}
            # a boolean array, not a list: an empty list would select no columns instead of no rows
            steps = steps[np.array([(s, d) not in true for s, d in zip(steps["series"], steps["date"])], dtype=bool)]
        for detector in table["detector"].unique():
            count = int((steps["detector"] == detector).sum())
            rows.append({"frequency": freq, "detector": detector,
                         "false alarms" if incidents else "alarms": count,
                         "per 30 days": round(count * 30 / max(days, 1e-9), 1)})
    return pd.DataFrame(rows, columns=["frequency", "detector", "false alarms" if incidents else "alarms",
                                       "per 30 days"])


#: The detector a report headlines when no incidents are known: the only one that weighs each period's rate by
#: its own sessions (a quiet day's 0% is no alarm), at the coarsest monitored frequency (a day holds 24 hours'
#: sessions). With known incidents the headline names the detector that found them best (:func:`best_detector`).
DEFAULT_HEADLINE_DETECTOR = "rate test"
_COARSEST_FIRST = ("day", "hour")


def headline_detector(alarms: dict[str, pd.DataFrame], scored: pd.DataFrame | None = None) -> dict | None:
    """The one detector and frequency a report's headline names and its charts shade.

    Parameters
    ----------
    alarms : dict
        ``{freq: step_alarms table}`` of the monitored frequencies.
    scored : DataFrame, optional
        :func:`score_table` against known incidents (the built-in shop).

    Returns
    -------
    dict or None
        ``{"frequency": ..., "detector": ...}``; None when no frequency is
        monitored. With ``scored``: its :func:`best_detector`. Without:
        :data:`DEFAULT_HEADLINE_DETECTOR` at the coarsest monitored
        frequency, or that frequency's first detector when the rate test did
        not run there.

    Notes
    -----
    One detector, not "any detector": the headline counts its alarms and the
    charts shade exactly those, so the count a reader sees matches the days
    they see marked. Every detector's alarms stay in the tables and in
    ``conversion_alarms.csv``.
    """
    if scored is not None and len(scored):
        best = best_detector(scored)
        return {"frequency": best["frequency"], "detector": best["detector"]}
    for freq in [f for f in _COARSEST_FIRST if f in alarms] + [f for f in alarms if f not in _COARSEST_FIRST]:
        detectors = list(dict.fromkeys(alarms[freq]["detector"]))
        if detectors:
            chosen = DEFAULT_HEADLINE_DETECTOR if DEFAULT_HEADLINE_DETECTOR in detectors else detectors[0]
            return {"frequency": freq, "detector": chosen}
    return None


def detector_alarms(alarms: dict[str, pd.DataFrame], lead: dict | None, series: str | None = None) -> pd.DataFrame:
    """The rows of ``lead``'s detector at its frequency (``alarms[lead["frequency"]]``), for one ``series``
    (``entrants`` or a step name) or all; every row, alarmed or not, as :func:`step_alarms` gives them.
    Empty when ``lead`` is None (nothing monitored)."""
    if lead is None or lead["frequency"] not in alarms:
        return pd.DataFrame(columns=["period", "detector", "value", "expected", "score", "alarm", "series",
                                     "sessions"])
    table = alarms[lead["frequency"]]
    rows = table["detector"] == lead["detector"]
    if series is not None:
        rows &= table["series"] == series
    return table[rows]


def lead_alarm_days(alarms: dict[str, pd.DataFrame], lead: dict | None) -> list[str]:
    """Days (UTC, ``YYYY-MM-DD``, sorted) with an alarm of ``lead`` on a step's conversion (traffic left out)."""
    hits = conversion_alarms(alarms)
    if lead is None or hits.empty:
        return []
    mine = hits[(hits["frequency"] == lead["frequency"]) & (hits["detector"] == lead["detector"])]
    return sorted(set(mine["date"]))


_ADJECTIVE = {"hour": "hourly", "day": "daily"}


def lead_label(lead: dict | None, what: str = "conversion") -> str:
    """``lead`` (:func:`headline_detector`) in words: ``"3-sigma detector on daily conversion"`` (``what`` names
    the series: ``"traffic"`` for the entrants); ``""`` for None."""
    if lead is None:
        return ""
    return f"{lead['detector']} detector on {_ADJECTIVE.get(lead['frequency'], lead['frequency'])} {what}"
