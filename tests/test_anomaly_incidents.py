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
