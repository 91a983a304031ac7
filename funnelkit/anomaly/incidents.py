"""Broken-step days: every detector on every step's conversion series, scored against known incidents."""
from __future__ import annotations

import pandas as pd

from ..funnel import FunnelResult
from . import kpi


def step_alarms(result: FunnelResult, freq: str, *, z_threshold: float = 3.5, rate_alpha: float = 0.001) -> pd.DataFrame:
    """Alarms of every detector on traffic and on each step's conversion series at ``freq``.

    Returns the long table of :func:`kpi.detect` with a ``series`` column:
    ``entrants`` (traffic) or a step name (conversion into that step from
    the previous one).
    """
    series = kpi.kpi_series(result, freq)
    tables = [kpi.detect(series, freq, "entrants", z_threshold=z_threshold, rate_alpha=rate_alpha)
              .assign(series="entrants")]
    for step in result.step_names[1:]:
        tables.append(kpi.detect(series, freq, f"{step}_rate", z_threshold=z_threshold, rate_alpha=rate_alpha)
                      .assign(series=step))
    return pd.concat(tables, ignore_index=True)


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
    return pd.concat([score_incidents(table, incidents, freq) for freq, table in alarms.items()], ignore_index=True)


def alarm_days(alarms: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Days (UTC) with at least one alarm on a step's conversion: which steps, detectors and frequencies."""
    frames = [table[table["alarm"] & (table["series"] != "entrants")].assign(frequency=freq)
              for freq, table in alarms.items()]
    hits = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if hits.empty:
        return pd.DataFrame(columns=["date", "steps", "detectors", "alarms"])
    hits["date"] = pd.to_datetime(hits["period"]).dt.strftime("%Y-%m-%d")
    return (hits.groupby("date")
            .agg(steps=("series", lambda s: ", ".join(sorted(set(s)))),
                 detectors=("detector", lambda s: ", ".join(sorted(set(s)))), alarms=("alarm", "size"))
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
            steps = steps[[(s, d) not in true for s, d in zip(steps["series"], steps["date"])]]
        for detector in table["detector"].unique():
            count = int((steps["detector"] == detector).sum())
            rows.append({"frequency": freq, "detector": detector,
                         "false alarms" if incidents else "alarms": count,
                         "per 30 days": round(count * 30 / max(days, 1e-9), 1)})
    return pd.DataFrame(rows)
