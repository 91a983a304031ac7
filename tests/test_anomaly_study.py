"""The anomaly study in one call: what it records with and without the planted truth, and its headline in words."""
from __future__ import annotations

from pathlib import Path

import pytest

from funnelkit.anomaly import AnomalyResults, run
from funnelkit.anomaly.incidents import headline_detector
from funnelkit.anomaly.study import SUPERVISED, change_text, headline_text
from funnelkit.engines import open_events
from funnelkit.groundtruth import planted
from funnelkit.params import load_params
from funnelkit.schema import COLUMNS
from funnelkit.text import points

ROOT = Path(__file__).resolve().parents[1]

#: What notebook 04 recorded on the CI shop (params/ci.yaml) before the study became one call, in order.
CI_SHOP_METRICS = [
    "incidents_found", "incident_false_alarms", "incident_detector_precision", "flagged_event_share",
    "conversion_distortion", "flagged_users", "conversion_without_flagged", "best_bot_pr_auc", "humans_flagged",
    "broken_days", "kpi_frequencies", "flagged_sessions",
]
#: ... and on the same events read as a log of the user's own (no planted truth).
OWN_DATA_METRICS = [
    "broken_days_lead", "flagged_event_share", "conversion_distortion", "flagged_users", "conversion_without_flagged",
    "broken_days", "kpi_frequencies", "flagged_sessions",
]
PLANTED_METRICS = {"incidents_found", "incident_false_alarms", "incident_detector_precision", "best_bot_pr_auc",
                   "humans_flagged"}


@pytest.fixture(scope="module")
def ci_shop():
    """The study on the CI shop, with its planted truth and without it (as if it were the user's own log)."""
    params = load_params(ROOT / "params" / "ci.yaml")
    events = open_events(params)
    with_truth = run(events, params.anomaly, funnel=params.funnel, truth=planted(params))
    without = run(events, params.anomaly, funnel=params.funnel)
    return with_truth, without


def test_on_the_built_in_shop_the_study_records_what_notebook_04_recorded(ci_shop):
    study, _ = ci_shop
    assert isinstance(study, AnomalyResults)
    figures = study.metrics()
    assert [m.name for m in figures] == CI_SHOP_METRICS
    assert {m.name for m in figures if m.headline} == {
        "incidents_found", "incident_false_alarms", "flagged_event_share", "conversion_distortion"}
    by_name = {m.name: m for m in figures}
    assert by_name["conversion_distortion"].unit == "pp"
    assert by_name["conversion_distortion"].ci == (study.distortion["low"], study.distortion["high"])
    assert by_name["incidents_found"].label == f"Planted incident days found ({study.lead_label()})"
    assert by_name["flagged_users"].value == len(study.flagged)
    assert by_name["flagged_sessions"].value == len(study.flagged_sessions)
    assert by_name["broken_days"].value == study.conversion_alarms["date"].nunique() == len(study.alarm_days)
    assert by_name["kpi_frequencies"].value == ", ".join(study.alarms)
    assert by_name["humans_flagged"].value == study.false_flag_cost["humans_flagged"]
    assert list(study.summary()["name"]) == CI_SHOP_METRICS
    # the planted truth is used: labels train the supervised detector and score them all, incidents are marked
    assert SUPERVISED in study.scores and SUPERVISED in set(study.detector_table["detector"])
    assert list(study.marked_days) == ["planted incident day", "sale day"]
    assert "false alarms" in study.false_alarms.columns
    assert "of the planted incident days" in study.headline()
    assert "flagged users are real customers" in study.false_flag_text()


def test_on_a_log_without_planted_truth_the_planted_figures_are_absent(ci_shop):
    _, study = ci_shop
    names = [m.name for m in study.metrics()]
    assert names == OWN_DATA_METRICS and not PLANTED_METRICS & set(names)
    assert set(CI_SHOP_METRICS) - set(names) == PLANTED_METRICS
    assert SUPERVISED not in study.scores
    assert study.scored is None and study.detector_table is None and study.false_flag_cost is None
    assert study.marked_days == {} and study.false_flag_text() == ""
    assert "alarms" in study.false_alarms.columns and "false alarms" not in study.false_alarms.columns
    assert "planted" not in study.headline()


def test_the_planted_truth_adds_figures_but_changes_no_finding_made_without_it(ci_shop):
    with_truth, without = ci_shop
    # flagging uses the unsupervised detectors only, so the same users are flagged and the same alarms raised
    assert with_truth.flagged[COLUMNS.user_id].tolist() == without.flagged[COLUMNS.user_id].tolist()
    assert list(with_truth.alarms) == list(without.alarms)
    for freq, table in with_truth.alarms.items():
        assert table.equals(without.alarms[freq])
    shared = {m.name: m for m in without.metrics()}
    for metric in with_truth.metrics():
        if metric.name in shared:
            assert metric == shared[metric.name]


def test_the_headline_detectors_rows_are_ready_for_one_chart_per_step(ci_shop):
    study, _ = ci_shop
    steps = study.sessions.step_names[1:]
    by_step = study.lead_step_alarms()
    assert list(by_step) == steps
    for step, rows in by_step.items():
        assert set(rows["series"]) == {step} and set(rows["detector"]) == {study.lead_detector}
        assert f"{step}_rate" in study.lead_series.columns
    assert set(study.lead_alarms("entrants")["series"]) <= {"entrants"}
    assert study.lead_period == (study.lead_series["period"].iloc[1] - study.lead_series["period"].iloc[0])
    assert study.is_flagged.sum() == len(study.flagged)
    assert study.separating_features == ["events_per_minute", "median_gap_seconds", "views_per_purchase",
                                         "distinct_items"]  # the shop has item ids: every feature is there


def test_the_anomaly_package_imports_neither_presentation_nor_the_simulator():
    import re

    for path in sorted((ROOT / "funnelkit" / "anomaly").glob("*.py")):
        modules = re.findall(r"^\s*(?:from|import)\s+(\S+)", path.read_text(), re.M)
        forbidden = [m for m in modules if m.lstrip(".").split(".")[0] in {"plots", "tables", "report", "simulate"}]
        assert not forbidden, f"{path.name} imports {forbidden}: the notebook hands results to presentation"


# --- the correction in words (issue 18): a direction only when the interval excludes zero, points never "%" ----


def test_a_correction_whose_interval_is_above_zero_raises_conversion_by_points():
    text = change_text(0.00036, 0.00015, 0.00064)
    assert text == "they raise it by 0.036 percentage points (95% CI 0.015 to 0.064)"
    assert "%" not in text.replace("95% CI", "")


def test_a_correction_whose_interval_is_below_zero_lowers_it_by_the_size_of_the_drop():
    # the sizes of the drop, smallest first: a reader compares magnitudes, not signed numbers
    text = change_text(-0.0001, -0.0002, -0.00005)
    assert text == "they lower it by 0.01 percentage points (95% CI 0.005 to 0.02)"


def test_a_correction_whose_interval_includes_zero_is_no_measurable_change():
    # the report's own example: "lower it by 0.01 points (95% CI −0.01 to +0.12)" claimed a direction
    text = change_text(-0.0001, -0.0001, 0.0012)
    assert text.startswith("no measurable change: the interval includes zero")
    assert "(−0.01 percentage points, 95% CI −0.01 to +0.12)" in text
    assert "lower" not in text and "raise" not in text and "%" not in text.replace("95% CI", "")
    # an interval touching zero does not exclude it
    assert change_text(0.001, 0.0, 0.002).startswith("no measurable change")


def test_points_keep_two_significant_digits_below_one_point():
    # the headline's differences of shares: funnelkit.text.points, shared with the report cards
    assert [points(v) for v in (0.00036, 0.0004, 0.012, -0.00036, 0.0)] == ["0.036", "0.04", "1.2", "−0.036", "0"]
    assert points(0.00036, signed=True) == "+0.036"


def test_the_headline_on_a_log_without_known_incidents_names_one_detector_and_its_days():
    from tests.test_anomaly_incidents import alarm_rows

    alarms = {"day": alarm_rows([("cart", "rate test", 24 * 2, True), ("cart", "rate test", 24 * 5, True),
                                 ("purchase", "rate test", 24 * 5, True), ("cart", "3-sigma", 24 * 9, True),
                                 ("entrants", "3-sigma", 24 * 3, True)])}
    distortion = {"difference": 0.001, "low": 0.0005, "high": 0.002, "removed_entrants": 4,
                  "kept": {"conversion": 0.1, "ci_low": 0.09, "ci_high": 0.11}}
    text = headline_text(None, alarms, headline_detector(alarms, None), {"events": 0.01, "sessions": 0.02},
                         distortion, 3)
    # the rate test's two days (09-08 and 09-11), not the 3-sigma's third day nor traffic alarms
    assert "- **Broken days:** 2 days with a drop in a step's conversion, by the rate test detector on daily " \
           "conversion" in text
    assert "planted" not in text and "built-in" not in text and "day(s)" not in text
    assert "they raise it by 0.1 percentage points (95% CI 0.05 to 0.2)" in text


def test_the_headline_when_no_frequency_is_monitored_says_so_instead_of_zero_days():
    distortion = {"difference": 0.0, "low": 0.0, "high": 0.0, "removed_entrants": 0,
                  "kept": {"conversion": 0.1, "ci_low": 0.09, "ci_high": 0.11}}
    text = headline_text(None, {}, None, {"events": 0.01, "sessions": 0.02}, distortion, 1,
                         {"day": "the median day has 3 session(s) entering the funnel"})
    assert "not watched: no KPI frequency had enough sessions to monitor" in text and "0 day" not in text
    assert "- **Not monitored daily:** the median day has 3 session(s) entering the funnel." in text
    assert "the flagged users never entered the funnel, so it is unchanged" in text


def test_the_headline_on_a_quiet_log_says_no_day_instead_of_zero_days():
    from tests.test_anomaly_incidents import alarm_rows

    alarms = {"day": alarm_rows([("cart", "rate test", 0, False), ("cart", "STL", 24, True)])}
    distortion = {"difference": 0.0, "low": -0.001, "high": 0.001, "removed_entrants": 2,
                  "kept": {"conversion": 0.1, "ci_low": 0.09, "ci_high": 0.11}}
    text = headline_text(None, alarms, headline_detector(alarms, None), {"events": 0.01, "sessions": 0.02},
                         distortion, 2)
    assert "- **Broken days:** no day with a drop in a step's conversion, by the rate test detector on daily " \
           "conversion" in text
    assert "0 day" not in text and "shaded" not in text
