"""The anomaly study in one call: :func:`run` returns an :class:`AnomalyResults`.

It scores every user with the behavioural detectors (and, given the planted labels, a supervised model),
flags the top of the flagging detectors, watches the funnel KPIs of the remaining shoppers per hour and
day with every series detector, measures how much the flagged users distort conversion and, given the
planted truth, scores the series detectors against the planted incidents and the behavioural ones
against the planted labels.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..eventlog import EventLog
from ..funnel import FunnelResult, run_funnel
from ..params import AnomalyParams, FunnelParams
from ..schema import COLUMNS
from ..study import Metric, StudyResults
from ..text import plural, points
from . import behaviour, impact, incidents, kpi

#: The features whose distributions the report compares for flagged users and everyone else.
SEPARATING_FEATURES = ("events_per_minute", "median_gap_seconds", "views_per_purchase", "distinct_items")
#: The name of the supervised detector's scores, trained on the planted labels (out of fold).
SUPERVISED = "supervised (logistic)"

_ADJECTIVE = {"hour": "hourly", "day": "daily"}


@dataclass
class AnomalyResults(StudyResults):
    """Everything the anomaly study found, with its tables; built by :func:`run`.

    Attributes
    ----------
    spec : AnomalyParams
        The ``anomaly`` params section.
    features : DataFrame
        :func:`behaviour.user_features`: one row per user (index ``user_id``).
    unavailable : dict
        :func:`behaviour.unavailable_features`: features the log cannot give (e.g. without item ids),
        with the reason.
    scores : dict
        Detector name → scores per user (higher = more anomalous); ``supervised (logistic)`` only given
        the planted labels.
    flagged : DataFrame
        :func:`behaviour.flag_users`: the flagged users, most anomalous first, with the detectors that
        flagged them and the reasons (real ids: pseudonymise before showing).
    flagged_sessions : DataFrame
        :func:`impact.flagged_sessions`: their sessions (real ids).
    sessions : FunnelResult
        The session-level funnel of the shoppers (the log without the flagged users), window
        ``spec.kpi_window``: what the KPI series count.
    skipped : dict
        KPI frequencies too sparse to monitor, with the reason (:func:`incidents.sparse_frequencies`).
    alarms : dict
        Frequency → :func:`incidents.step_alarms` (every detector, every series) of the monitored ones.
    scored : DataFrame or None
        Every series detector against the planted incidents (:func:`incidents.score_table`);
        None without the planted truth.
    lead : dict or None
        The detector and frequency the headline names and the charts shade
        (:func:`incidents.headline_detector`); None when no frequency is monitored.
    daily, lead_series : DataFrame
        :func:`kpi.kpi_series` of ``sessions`` per day, and at the lead's frequency (daily without a lead).
    marked_days : dict
        Legend label → UTC days marked on the KPI charts as context: the planted incident and sale days;
        empty without the planted truth.
    false_alarms : DataFrame
        Conversion alarms per 30 days per frequency and detector (:func:`incidents.false_alarm_rates`); given
        the planted truth, the alarms on a planted incident day of their step are left out.
    distortion : dict
        :func:`impact.conversion_distortion`: the funnel's overall conversion with and without the flagged users.
    traffic : dict
        :func:`impact.traffic_share`: share of events and sessions from the flagged users.
    detector_table : DataFrame or None
        :func:`behaviour.score_detectors` against the planted labels; None without them.
    false_flag_cost : dict or None
        :func:`impact.false_flag_cost`: real customers among the flagged users; None without the planted labels.
    """

    spec: AnomalyParams
    features: pd.DataFrame
    unavailable: dict
    scores: dict
    flagged: pd.DataFrame
    flagged_sessions: pd.DataFrame
    sessions: FunnelResult
    skipped: dict
    alarms: dict
    scored: pd.DataFrame | None
    lead: dict | None
    daily: pd.DataFrame
    lead_series: pd.DataFrame
    marked_days: dict
    false_alarms: pd.DataFrame
    distortion: dict
    traffic: dict
    detector_table: pd.DataFrame | None
    false_flag_cost: dict | None

    # ------------------------------------------------------------------ tables

    @property
    def conversion_alarms(self) -> pd.DataFrame:
        """:func:`incidents.conversion_alarms`: one row per alarm of any detector on a step's conversion."""
        return incidents.conversion_alarms(self.alarms)

    @property
    def alarm_days(self) -> pd.DataFrame:
        """:func:`incidents.alarm_days`: the days with an alarm of any detector on a step's conversion."""
        return incidents.alarm_days(self.alarms)

    @property
    def is_flagged(self) -> pd.Series:
        """Per user of ``features``: flagged or not (bool)."""
        return pd.Series(self.features.index.isin(self.flagged[COLUMNS.user_id]), index=self.features.index)

    @property
    def separating_features(self) -> list[str]:
        """:data:`SEPARATING_FEATURES` the log can give."""
        return [c for c in SEPARATING_FEATURES if c not in self.unavailable]

    # ------------------------------------------------------------------ the headline detector, for the charts

    @property
    def lead_detector(self) -> str | None:
        """The name of the headline detector, None when nothing is monitored."""
        return self.lead["detector"] if self.lead else None

    @property
    def lead_period(self) -> pd.Timedelta:
        """Length of one period of ``lead_series``."""
        return kpi.PERIOD_LENGTH[self.lead["frequency"] if self.lead else "day"]

    def lead_label(self, what: str = "conversion") -> str:
        """The headline detector in words: ``"rate test detector on daily conversion"`` (:func:`incidents.lead_label`)."""
        return incidents.lead_label(self.lead, what)

    def lead_alarms(self, series: str) -> pd.DataFrame:
        """The headline detector's rows for ``series`` (``entrants`` or a step name), alarmed or not."""
        return incidents.detector_alarms(self.alarms, self.lead, series)

    def lead_step_alarms(self) -> dict[str, pd.DataFrame]:
        """Step name → :meth:`lead_alarms` of its conversion, for every step after the first."""
        return {step: self.lead_alarms(step) for step in self.sessions.step_names[1:]}

    # ------------------------------------------------------------------ figures and prose

    def metrics(self) -> list[Metric]:
        """The study's figures: broken days (against the planted incidents when known), flagged traffic and the
        conversion it distorts, and counts.

        ``incidents_found``, ``incident_false_alarms`` and ``incident_detector_precision`` only when the series
        detectors were scored against planted incidents (``broken_days_lead`` otherwise); ``best_bot_pr_auc``
        and ``humans_flagged`` only with the planted labels.
        """
        distortion, kept = self.distortion, self.distortion["kept"]
        if self.scored is not None and len(self.scored):
            best = incidents.best_detector(self.scored)
            out = [
                Metric("incidents_found", float(best["recall"]), "share",
                       f"Planted incident days found ({self.lead_label()})", headline=True),
                Metric("incident_false_alarms", int(best["false_alarms"]), "alarms",
                       "False alarms of that detector (on days without a planted incident)", headline=True),
                Metric("incident_detector_precision", float(best["precision"]), "share",
                       "Precision of that detector's alarms"),
            ]
        elif self.lead is not None:
            n_days = len(incidents.lead_alarm_days(self.alarms, self.lead))
            out = [Metric("broken_days_lead", n_days, "day" if n_days == 1 else "days",
                          f"Days with a drop in a step's conversion ({self.lead_label()})", headline=True)]
        else:
            out = [Metric("broken_days_lead", "not monitored: no KPI frequency had enough sessions",
                          label="Days with a drop in a step's conversion", headline=True)]
        out += [
            Metric("flagged_event_share", self.traffic["events"], "share", "Share of events from flagged accounts",
                   headline=True),
            Metric("conversion_distortion", distortion["difference"], "pp",
                   "Conversion with flagged users minus without", (distortion["low"], distortion["high"]),
                   headline=True),
            Metric("flagged_users", len(self.flagged), "users", "Users flagged by the behavioural detectors"),
            Metric("conversion_without_flagged", kept["conversion"], "share",
                   "Overall conversion without flagged users", (kept["ci_low"], kept["ci_high"])),
        ]
        if self.detector_table is not None:
            table = self.detector_table
            bots = table[(table["type"] == "bot") & ~table["detector"].str.startswith("supervised")]
            best_bot = bots.sort_values("pr_auc", ascending=False).iloc[0]
            out.append(Metric("best_bot_pr_auc", float(best_bot["pr_auc"]),
                              label=("PR-AUC (0 to 1) of the best unsupervised detector on the planted bots "
                                     f"({best_bot['detector']})")))
        if self.false_flag_cost is not None:
            out.append(Metric("humans_flagged", self.false_flag_cost["humans_flagged"], "users",
                              "Real customers among the flagged users"))
        any_days = len(self.alarm_days)
        out += [
            Metric("broken_days", any_days, "day" if any_days == 1 else "days",
                   "Days with a drop in a step's conversion by any detector (any frequency and step)"),
            Metric("kpi_frequencies", ", ".join(self.alarms) or "none",
                   label="KPI frequencies monitored (the others too sparse, see the headline)"),
            Metric("flagged_sessions", len(self.flagged_sessions), "sessions", "Sessions of flagged users"),
        ]
        return out

    def headline(self) -> str:
        """Broken days, the frequencies not monitored, the flagged accounts and the conversion without them
        (Markdown, :func:`headline_text`)."""
        return headline_text(self.scored, self.alarms, self.lead, self.traffic, self.distortion, len(self.flagged),
                             self.skipped)

    def false_flag_text(self) -> str:
        """The real customers among the flagged users and their revenue, in one sentence (Markdown; only with
        the planted labels, ``""`` without)."""
        cost = self.false_flag_cost
        if cost is None:
            return ""
        return (f"{cost['humans_flagged']:,} of the {cost['flagged']:,} flagged users are real customers "
                f"({cost['share_of_humans']:.2%} of all customers), holding {cost['share_of_human_revenue']:.2%} of "
                "customer revenue: flags are leads to review, not verdicts.")


def run(events: EventLog, spec: AnomalyParams, *, funnel: FunnelParams, truth=None) -> AnomalyResults:
    """Run the anomaly study on ``events``.

    Parameters
    ----------
    events : EventLog
        The event log.
    spec : AnomalyParams
        The ``anomaly`` params section: KPI frequencies, window and detector thresholds, the flagging
        detectors and their share, the behavioural detectors' settings.
    funnel : FunnelParams
        The funnel whose steps the KPI series watch and whose overall conversion the flagged users distort.
    truth : funnelkit.groundtruth.Planted, optional
        The planted truth of the built-in shop: its labels train the supervised detector and score the
        behavioural ones, its incidents score the series detectors (and choose the headline detector).

    Returns
    -------
    AnomalyResults

    Notes
    -----
    The KPI series count the shoppers only: flagged accounts (a fake-order ring that converts every time, a
    click farm that carts and never checks out) would move the rates more than a broken step does.
    """
    features = behaviour.user_features(events)
    scores = behaviour.detector_scores(features, seed=spec.seed, n_neighbors=spec.n_neighbors,
                                       n_clusters=spec.n_clusters)
    labels = truth.labels.reindex(features.index) if truth is not None else None
    if labels is not None:
        scores[SUPERVISED] = behaviour.supervised_scores(features, labels, seed=spec.seed)
    flagged = behaviour.flag_users(features, scores, top_share=spec.top_share, detectors=spec.flag_detectors)
    flagged_ids = flagged[COLUMNS.user_id]

    sessions = run_funnel(events.without_users(flagged_ids), funnel, unit="session", window=spec.kpi_window)
    # an hour of a small shop holds a session or two: its rates are noise, and its STL fits the slowest cells
    skipped = incidents.sparse_frequencies(sessions, spec.kpi_freq, spec.min_sessions_per_period)
    # traffic alarms are drawn on the daily chart only: hourly traffic is not watched
    alarms = {freq: incidents.step_alarms(sessions, freq, z_threshold=spec.z_threshold, rate_alpha=spec.rate_alpha,
                                          min_sessions=spec.min_sessions_per_period, traffic=freq == "day")
              for freq in spec.kpi_freq if freq not in skipped}
    scored = incidents.score_table(alarms, truth.incidents) if truth is not None else None
    # the one detector the headline names and the charts shade (best on the planted incidents, else the rate
    # test); every detector's alarms stay in the tables and in conversion_alarms
    lead = incidents.headline_detector(alarms, scored)
    daily = kpi.kpi_series(sessions, "day")
    lead_series = kpi.kpi_series(sessions, lead["frequency"]) if lead else daily
    if truth is not None:
        marked = {"planted incident day": [i["date"] for i in truth.incidents], "sale day": truth.sale_days}
    else:
        marked = {}
    false_alarms = incidents.false_alarm_rates(alarms, len(daily), truth.incidents if truth is not None else None)

    return AnomalyResults(
        spec=spec, features=features, unavailable=behaviour.unavailable_features(events), scores=scores,
        flagged=flagged, flagged_sessions=impact.flagged_sessions(events, flagged), sessions=sessions,
        skipped=skipped, alarms=alarms, scored=scored, lead=lead, daily=daily, lead_series=lead_series,
        marked_days=marked, false_alarms=false_alarms,
        distortion=impact.conversion_distortion(events, funnel, flagged_ids),
        traffic=impact.traffic_share(events, flagged_ids),
        detector_table=behaviour.score_detectors(scores, labels, fpr=spec.fpr) if labels is not None else None,
        false_flag_cost=impact.false_flag_cost(events, flagged_ids, truth.labels) if truth is not None else None,
    )


# --------------------------------------------------------------------------- the headline in words

def change_text(difference: float, low: float, high: float, *, subject: str = "they",
                what: str = "it") -> str:
    """How ``subject`` moves a share, in words, from a difference of two shares and its 95% interval.

    Parameters
    ----------
    difference, low, high : float
        The difference (share with minus share without, in [−1, 1]) and its 95% CI.
    subject, what : str
        Who moves what: "they raise it by …".

    Returns
    -------
    str
        Interval above zero: "they raise it by 0.036 percentage points (95% CI 0.015 to 0.064)";
        below zero: "they lower it by 0.01 percentage points (95% CI 0.005 to 0.02)" (sizes of the drop);
        an interval that includes zero: "no measurable change: the interval includes zero (+0.01
        percentage points, 95% CI −0.01 to +0.12)". Always percentage points, never "%": a difference
        of two rates is not a share of anything.
    """
    if low > 0:
        return (f"{subject} raise {what} by {points(difference)} percentage points "
                f"(95% CI {points(low)} to {points(high)})")
    if high < 0:
        return (f"{subject} lower {what} by {points(-difference)} percentage points "
                f"(95% CI {points(-high)} to {points(-low)})")
    return (f"no measurable change: the interval includes zero ({points(difference, signed=True)} percentage "
            f"points, 95% CI {points(low, signed=True)} to {points(high, signed=True)})")


def _incident_line(scored: pd.DataFrame, lead: dict) -> str:
    row = scored[(scored["frequency"] == lead["frequency"]) & (scored["detector"] == lead["detector"])].iloc[0]
    name = f"the {incidents.lead_label(lead)}"
    false_alarms = plural(int(row["false_alarms"]), "false alarm")
    if not row["recall"] > 0:
        return (f"- **Broken days:** no detector found a planted incident day; the charts shade the alarms of "
                f"{name} ({false_alarms}).")
    return (f"- **Broken days:** {name} found {row['recall']:.0%} of the planted incident days with "
            f"{false_alarms} (precision {row['precision']:.0%}), on average {row['delay_hours']:.0f} hours after "
            "the day began; the charts below shade its alarms.")


def headline_text(scored: pd.DataFrame | None, alarms: dict[str, pd.DataFrame], lead: dict | None, traffic: dict,
                  distortion: dict, n_flagged: int, skipped: dict[str, str] | None = None) -> str:
    """The study's findings in plain language (Markdown).

    Parameters
    ----------
    scored : DataFrame or None
        ``incidents.score_table`` against known incidents (the built-in shop), or None (a log of yours:
        nothing is said about planted incidents).
    alarms : dict
        ``{freq: incidents.step_alarms table}`` of the monitored frequencies.
    lead : dict or None
        The detector and frequency the broken-days line names, ``incidents.headline_detector(alarms, scored)``:
        the one whose alarms the report's charts shade, so its count is what a reader sees marked; None when
        no frequency is monitored.
    traffic : dict
        :func:`impact.traffic_share` of the flagged users.
    distortion : dict
        :func:`impact.conversion_distortion`.
    n_flagged : int
        Number of flagged users.
    skipped : dict, optional
        The KPI frequencies not monitored, with the reason (``incidents.sparse_frequencies``).
    """
    lines = []
    if lead is None:
        lines.append("- **Broken days:** not watched: no KPI frequency had enough sessions to monitor (below).")
    elif scored is not None and len(scored):
        lines.append(_incident_line(scored, lead))
    else:
        days = len(incidents.lead_alarm_days(alarms, lead))
        name = f"the {incidents.lead_label(lead)}"
        if days:
            lines.append(f"- **Broken days:** {plural(days, 'day')} with a drop in a step's conversion, by {name} "
                         "(shaded on the charts; every detector's alarms are in the table below).")
        else:
            lines.append(f"- **Broken days:** no day with a drop in a step's conversion, by {name} (the other "
                         "detectors' alarms, if any, are in the table below).")
    for freq, reason in (skipped or {}).items():
        lines.append(f"- **Not monitored {_ADJECTIVE.get(freq, freq)}:** {reason}.")
    if not n_flagged:
        lines.append("- **Flagged accounts:** none.")
        return "\n".join(lines)
    lines.append(f"- **Flagged accounts:** {plural(n_flagged, 'user')}, who produced {traffic['events']:.1%} of all "
                 f"events and {traffic['sessions']:.1%} of sessions.")
    kept = distortion["kept"]
    corrected = (f"without them overall conversion is {kept['conversion']:.2%} (95% CI {kept['ci_low']:.2%} to "
                 f"{kept['ci_high']:.2%})")
    if not distortion.get("removed_entrants", 1):
        lines.append(f"- **Conversion corrected:** {corrected}: the flagged users never entered the funnel, so "
                     "it is unchanged.")
    else:
        change = change_text(distortion["difference"], distortion["low"], distortion["high"])
        lines.append(f"- **Conversion corrected:** {corrected}; {change}.")
    return "\n".join(lines)
