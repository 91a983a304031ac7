"""Scoring every detector across the step series against known incidents: known answers on hand-made alarms."""
from __future__ import annotations

import pandas as pd
import pytest

from funnelkit.anomaly import incidents

DAY = pd.Timestamp("2026-09-06", tz="UTC")


def alarm_rows(rows):
    """rows: (series, detector, hours after DAY's midnight, alarm)."""
    return pd.DataFrame([{"series": s, "detector": d, "period": DAY + pd.Timedelta(hours=h), "alarm": a,
                          "value": 0.0, "expected": 0.0, "score": 0.0} for s, d, h, a in rows])


INCIDENTS = [{"date": "2026-09-06", "step": "checkout"}, {"date": "2026-09-08", "step": "purchase"}]


def test_an_alarm_counts_only_on_its_own_steps_incident_day():
    alarms = alarm_rows([
        ("checkout", "rate test", 5, True),      # right step, right day: found, ends 6 h after midnight
        ("purchase", "rate test", 7, True),      # right day for checkout, wrong step: a false alarm
        ("purchase", "rate test", 48 + 10, True),  # purchase incident day: found after 11 h
        ("entrants", "rate test", 5, True),      # traffic alarms are left out
        ("checkout", "3-sigma", 30, True),       # the day after: false
        ("checkout", "3-sigma", 5, False),
        ("purchase", "3-sigma", 1, False),
    ])
    scored = incidents.score_incidents(alarms, INCIDENTS, "hour").set_index("detector")
    rate = scored.loc["rate test"]
    assert (rate["alarms"], rate["false_alarms"]) == (3, 1)
    assert rate["precision"] == pytest.approx(2 / 3) and rate["recall"] == 1.0
    assert rate["delay_hours"] == pytest.approx((6 + 11) / 2)
    sigma = scored.loc["3-sigma"]
    assert (sigma["alarms"], sigma["false_alarms"], sigma["recall"]) == (1, 1, 0.0)
    assert sigma["precision"] == 0.0 and pd.isna(sigma["delay_hours"])


def test_alarm_days_and_false_alarm_rates():
    alarms = {"hour": alarm_rows([("checkout", "STL", 5, True), ("purchase", "STL", 6, True),
                                  ("entrants", "STL", 7, True), ("checkout", "robust z", 30, True),
                                  ("checkout", "3-sigma", 1, False)])}
    days = incidents.alarm_days(alarms)
    assert days.to_dict("records") == [
        {"date": "2026-09-06", "steps": "checkout, purchase", "detectors": "STL", "alarms": 2},
        {"date": "2026-09-07", "steps": "checkout", "detectors": "robust z", "alarms": 1}]
    rates = incidents.false_alarm_rates(alarms, days=10, incidents=INCIDENTS).set_index("detector")
    # STL's checkout alarm is the incident; its purchase alarm on that day is false
    assert rates.loc["STL", "false alarms"] == 1 and rates.loc["STL", "per 30 days"] == 3.0
    assert rates.loc["robust z", "false alarms"] == 1 and rates.loc["3-sigma", "false alarms"] == 0
    unknown = incidents.false_alarm_rates(alarms, days=10).set_index("detector")
    assert unknown.loc["STL", "alarms"] == 2


# --- sparse levels, tiny denominators, drops only (issue 17) ------------------------------------------


def test_a_frequency_whose_median_period_has_too_few_sessions_is_not_monitored():
    from funnelkit.funnel import run_funnel
    from tests.test_anomaly_kpi import CRAFTED_END, CRAFTED_ROWS, CRAFTED_SPEC
    from tests.test_funnel import log_of

    _, log = log_of(CRAFTED_ROWS)
    result = run_funnel(log, CRAFTED_SPEC, data_end=CRAFTED_END)
    # entrants per hour: 3, 0, 3, then 0 until hour 48 (1): median 0; per day 6, 0, 1: median 1
    skipped = incidents.sparse_frequencies(result, ["hour", "day"], 1)
    assert list(skipped) == ["hour"]
    assert skipped["hour"].startswith("the median hour has 0 session(s) entering the funnel, fewer than")
    assert list(incidents.sparse_frequencies(result, ["hour", "day"], 2)) == ["hour", "day"]
    assert incidents.sparse_frequencies(result, ["day"], 1) == {}
    # the sessions behind each value: entrants for traffic, the step's resolved entrants into it for a rate
    table = incidents.step_alarms(result, "day")
    assert table["detector"].unique().tolist() == ["3-sigma", "robust z", "rate test"]  # 3 days: too short for STL
    sessions = table[table["detector"] == "3-sigma"].groupby("series", sort=False)["sessions"].apply(list).to_dict()
    assert sessions == {"entrants": [6, 0, 1], "cart": [6, 0, 0], "checkout": [4, 0, 0]}


def session_log(rates: list[float], sessions: list[int], seed: int = 0):
    """One view per session, a cart a minute later for a ``rates[d]`` share of day d's ``sessions[d]`` (exactly)."""
    import numpy as np

    from funnelkit.eventlog import EventLog
    from funnelkit.schema import COLUMNS
    from tests.test_funnel import T0

    rows = []
    for d, (rate, n) in enumerate(zip(rates, sessions)):
        carts = set(np.random.default_rng(seed + d).permutation(n)[: round(rate * n)])
        for i in range(n):
            start = T0 + pd.Timedelta(days=d, minutes=10 + 2 * i)
            rows.append((f"s{d}_{i}", start, "view"))
            if i in carts:
                rows.append((f"s{d}_{i}", start + pd.Timedelta(minutes=1), "cart"))
    frame = pd.DataFrame(rows, columns=[COLUMNS.session_id, COLUMNS.event_time, COLUMNS.event_type])
    frame[COLUMNS.user_id] = frame[COLUMNS.session_id]
    return EventLog.from_frame(frame)


def test_step_alarms_leave_out_tiny_days_alarm_on_drops_only_and_carry_the_sessions():
    from funnelkit.funnel import run_funnel
    from tests.test_funnel import T0, steps

    rates = [0.3, 0.32, 0.28, 0.3, 0.33, 0.29, 0.27, 0.31, 0.3, 0.26, 0.3, 0.32, 0.29, 0.34, 0.28, 0.3, 0.31, 0.27,
             0.33, 0.3, 0.29]
    sessions = [100] * 21
    rates[4], rates[10], rates[16] = 0.9, 0.04, 0.0   # a rise, a real drop, and a tiny day converting nothing
    sessions[16] = 3
    result = run_funnel(session_log(rates, sessions), steps=steps("view", "cart"), unit="session", window="1h",
                        data_end=T0 + pd.Timedelta(days=22))  # every session resolved
    table = incidents.step_alarms(result, "day", min_sessions=10)
    assert sorted(table["series"].unique()) == ["cart", "entrants"]
    cart = table[table["series"] == "cart"]
    assert cart.groupby("detector")["sessions"].apply(list).map(lambda s: s == sessions).all()
    hits = incidents.conversion_alarms({"day": table})
    assert set(hits["date"]) == {cart["period"].iloc[10].strftime("%Y-%m-%d")}, hits
    assert (hits["value"] < hits["expected"]).all() and (hits["sessions"] >= 10).all()
    # the rise is far out for robust z: left in, only its direction keeps it quiet
    z = cart[cart["detector"] == "robust z"].reset_index(drop=True)
    assert z.loc[4, "score"] > 3.5 and not z.loc[4, "alarm"]
    assert pd.isna(z.loc[16, "value"])
    # without the minimum, the tiny day's 0 of 3 is a "broken day" to robust z
    loose = incidents.conversion_alarms({"day": incidents.step_alarms(result, "day")})
    assert cart["period"].iloc[16].strftime("%Y-%m-%d") in set(loose.loc[loose["detector"] == "robust z", "date"])
    assert "entrants" not in set(incidents.step_alarms(result, "day", traffic=False)["series"])


def test_with_every_frequency_skipped_the_tables_are_empty_not_errors():
    assert incidents.conversion_alarms({}).empty and incidents.alarm_days({}).empty
    assert list(incidents.score_table({}, INCIDENTS).columns) == [
        "frequency", "detector", "alarms", "false_alarms", "precision", "recall", "delay_hours"]
    assert list(incidents.false_alarm_rates({}, days=10).columns) == ["frequency", "detector", "alarms", "per 30 days"]


def test_the_headline_says_which_frequency_was_not_monitored_and_why():
    from funnelkit.anomaly.study import headline_text

    overall = {"conversion": 0.1, "ci_low": 0.09, "ci_high": 0.11}
    distortion = {"difference": 0.001, "low": 0.0, "high": 0.002, "kept": overall}
    text = headline_text(None, {}, None, {"events": 0.01, "sessions": 0.02}, distortion, 3,
                         {"hour": "the median hour has 1 session(s) entering the funnel"})
    assert "- **Not monitored hourly:** the median hour has 1 session(s) entering the funnel." in text
    # nothing monitored is said as such, not as "0 day(s) with a drop" (issue 18)
    assert "not watched: no KPI frequency had enough sessions to monitor" in text and "0 day" not in text


def test_false_alarm_rates_when_every_alarm_is_a_true_incident():
    alarms = {"day": alarm_rows([("checkout", "rate test", 5, True), ("checkout", "STL", 30, False)])}
    rates = incidents.false_alarm_rates(alarms, days=30, incidents=INCIDENTS).set_index("detector")
    assert rates["false alarms"].to_dict() == {"rate test": 0, "STL": 0}
    quiet = {"hour": alarm_rows([("checkout", "STL", 5, False), ("entrants", "STL", 6, True)])}  # no conversion alarm
    rates = incidents.false_alarm_rates(quiet, days=30, incidents=INCIDENTS)
    assert rates["false alarms"].tolist() == [0]


# --- one detector in the headline and on the charts (issue 18) -------------------------------------------


def test_the_headline_detector_is_the_best_on_known_incidents_else_the_daily_rate_test():
    alarms = {"hour": alarm_rows([("checkout", "3-sigma", 5, True), ("checkout", "rate test", 5, False)]),
              "day": alarm_rows([("checkout", "3-sigma", 0, True), ("purchase", "rate test", 48, True),
                                 ("checkout", "rate test", 0, True)])}
    scored = incidents.score_table(alarms, INCIDENTS)
    # daily rate test finds both incidents with no false alarm: it beats daily 3-sigma (recall 1/2)
    assert incidents.headline_detector(alarms, scored) == {"frequency": "day", "detector": "rate test"}
    assert incidents.headline_detector(alarms) == {"frequency": "day", "detector": "rate test"}
    assert incidents.headline_detector({"hour": alarms["hour"]}) == {"frequency": "hour", "detector": "rate test"}
    no_rate = {"day": alarm_rows([("entrants", "robust z", 0, False), ("cart", "STL", 0, True)])}
    assert incidents.headline_detector(no_rate) == {"frequency": "day", "detector": "robust z"}
    assert incidents.headline_detector({}) is None and incidents.headline_detector({}, scored.iloc[:0]) is None
    best = incidents.headline_detector({"hour": alarms["hour"]}, incidents.score_table({"hour": alarms["hour"]},
                                                                                     INCIDENTS))
    assert best == {"frequency": "hour", "detector": "3-sigma"}  # found the checkout incident; the rate test none


def test_the_headline_detectors_alarm_days_leave_out_traffic_and_other_detectors():
    alarms = {"day": alarm_rows([("checkout", "rate test", 0, True), ("purchase", "rate test", 1, True),
                                 ("purchase", "rate test", 48, True), ("entrants", "rate test", 72, True),
                                 ("checkout", "STL", 96, True), ("checkout", "rate test", 120, False)])}
    lead = {"frequency": "day", "detector": "rate test"}
    assert incidents.lead_alarm_days(alarms, lead) == ["2026-09-06", "2026-09-08"]
    assert incidents.lead_alarm_days(alarms, {"frequency": "hour", "detector": "rate test"}) == []
    assert incidents.lead_alarm_days(alarms, None) == []
    rows = incidents.detector_alarms(alarms, lead, "checkout")
    assert len(rows) == 2 and set(rows["detector"]) == {"rate test"} and set(rows["series"]) == {"checkout"}
    assert incidents.detector_alarms(alarms, None, "checkout").empty
    assert incidents.lead_label(lead) == "rate test detector on daily conversion"
    assert incidents.lead_label(lead, "traffic") == "rate test detector on daily traffic"


def test_the_headline_on_the_built_in_shop_reports_the_detector_the_charts_shade():
    from funnelkit.anomaly.study import headline_text

    alarms = {"day": alarm_rows([("checkout", "3-sigma", 0, True), ("purchase", "3-sigma", 48, True),
                                 ("cart", "3-sigma", 96, True), ("checkout", "rate test", 0, True)])}
    scored = incidents.score_table(alarms, INCIDENTS)
    overall = {"conversion": 0.1, "ci_low": 0.09, "ci_high": 0.11}
    distortion = {"difference": -0.0001, "low": -0.0002, "high": -0.00005, "kept": overall, "removed_entrants": 5}
    lead = incidents.headline_detector(alarms, scored)
    text = headline_text(scored, alarms, lead, {"events": 0.01, "sessions": 0.02}, distortion, 3)
    assert ("the 3-sigma detector on daily conversion found 100% of the planted incident days with 1 false alarm "
            "(precision 67%)") in text
    assert "they lower it by 0.01 percentage points (95% CI 0.005 to 0.02)" in text


def test_the_incident_table_marks_the_headline_detectors_row():
    from funnelkit import tables

    alarms = {"day": alarm_rows([("checkout", "3-sigma", 0, True), ("checkout", "rate test", 0, True)])}
    scored = incidents.score_table(alarms, INCIDENTS)
    view = tables.incident_view(scored, {"frequency": "day", "detector": "rate test"})
    assert view["in the headline"].tolist() == ["", "yes, shaded on the charts"]
    assert "in the headline" not in tables.incident_view(scored).columns


def test_every_detector_is_scored_against_the_incidents_of_its_step_and_incident_days_are_not_false_alarms():
    alarms = {"day": alarm_rows([("checkout", "rate test", 0, True), ("purchase", "rate test", 0, True),
                                 ("purchase", "rate test", 48, True), ("checkout", "STL", 24, True)])}
    scored = incidents.score_table(alarms, INCIDENTS).set_index("detector")
    assert scored.loc["rate test", ["alarms", "false_alarms", "recall"]].tolist() == [3, 1, 1.0]
    assert scored.loc["STL", ["alarms", "false_alarms", "recall"]].tolist() == [1, 1, 0.0]
    rates = incidents.false_alarm_rates(alarms, 30, INCIDENTS).set_index("detector")
    assert rates["false alarms"].to_dict() == {"rate test": 1, "STL": 1}  # the two incident-day alarms left out
