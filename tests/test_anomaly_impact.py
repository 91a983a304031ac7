"""How flagged users distort the funnel, their sessions, and what false flags cost: known answers."""
from __future__ import annotations

import pandas as pd
import pytest

from funnelkit.anomaly import impact
from funnelkit.params import FunnelParams
from funnelkit.schema import COLUMNS
from tests.test_funnel import at, log_of, steps

SPEC = FunnelParams(steps=steps("view", "purchase"), window="1D")
# users 1-8 view; 1-2 buy; the bot (9) views twice; the fake buyer (10) views and buys within a minute
ROWS = [(u, u * 10, "view") for u in range(1, 9)] + [(1, 15, "purchase"), (2, 25, "purchase")] + \
       [(9, 0, "view"), (9, 1, "view"), (10, 0, "view"), (10, 1, "purchase")]


@pytest.fixture(scope="module")
def log():
    frame, log = log_of(ROWS)
    return frame, log


def test_distortion_is_the_removed_share_times_the_rate_gap(log):
    _, events = log
    d = impact.conversion_distortion(events, SPEC.model_copy(update={"censoring": "naive"}), ["9", "10"])
    assert (d["all"]["entrants"], d["all"]["converted"]) == (10, 3)
    assert (d["kept"]["entrants"], d["kept"]["converted"]) == (8, 2)
    assert d["difference"] == pytest.approx(3 / 10 - 2 / 8)
    # exactly (n_r / n) * (p_r - p_kept): removed convert at 1/2, kept at 1/4
    assert d["difference"] == pytest.approx(2 / 10 * (1 / 2 - 2 / 8))
    assert d["low"] < d["difference"] < d["high"]


def test_distortion_interval_is_newcombes_scaled_by_the_removed_share(log):
    from statsmodels.stats.proportion import confint_proportions_2indep

    _, events = log
    d = impact.conversion_distortion(events, SPEC.model_copy(update={"censoring": "naive"}), ["9", "10"])
    low, high = confint_proportions_2indep(1, 2, 2, 8, method="newcomb", compare="diff")
    assert (d["low"], d["high"]) == pytest.approx((0.2 * low, 0.2 * high))


def test_removing_nobody_changes_nothing(log):
    _, events = log
    d = impact.conversion_distortion(events, SPEC.model_copy(update={"censoring": "naive"}), [])
    assert d["difference"] == 0 and d["all"] == d["kept"]


def test_traffic_share_counts_events_and_sessions(log):
    frame, events = log
    share = impact.traffic_share(events, ["9", "10"])
    assert share["events"] == pytest.approx(4 / len(frame))
    assert share["sessions"] == pytest.approx(2 / 10)  # log_of uses the user as the session


def test_flagged_sessions_list_each_session_with_counts_and_the_reason(log):
    _, events = log
    flagged = pd.DataFrame({COLUMNS.user_id: ["10"], "detectors": ["LOF"], "reasons": ["<b>fast</b>"]})
    sessions = impact.flagged_sessions(events, flagged)
    assert len(sessions) == 1
    row = sessions.iloc[0]
    assert (row["events"], row["views"], row["purchases"], row["reasons"]) == (2, 1, 1, "<b>fast</b>")
    # first and last event as UTC times, whichever engine ran the query (Spark hands back naive times)
    assert (row["start"], row["end"]) == (at(0), at(1))
    assert str(sessions["start"].dt.tz) == "UTC" and str(sessions["end"].dt.tz) == "UTC"


def test_false_flag_cost_counts_real_customers_and_their_revenue():
    frame, events = log_of([(1, 0, "view"), (1, 1, "purchase"), (2, 0, "purchase"), (3, 0, "view")],
                           price=[0.0, 30.0, 10.0, 0.0])
    labels = pd.Series({"1": "human", "2": "human", "3": "bot"})
    cost = impact.false_flag_cost(events, ["1", "3"], labels)
    assert cost["humans_flagged"] == 1 and cost["share_of_humans"] == 0.5
    assert cost["human_revenue_flagged"] == 30.0 and cost["share_of_human_revenue"] == pytest.approx(0.75)


def test_headline_and_table_say_which_way_conversion_moves(log):
    _, events = log
    d = impact.conversion_distortion(events, SPEC.model_copy(update={"censoring": "naive"}), ["9", "10"])
    text = impact.headline_text(None, {}, {"events": 0.25, "sessions": 0.2}, d, 2)
    # +5 points, but from 2 removed users: the interval (−5.6 to +13.9) includes zero, so no direction is claimed
    assert "no measurable change: the interval includes zero (+5.0 percentage points, 95% CI −5.6 to +13.9)" in text
    assert "raise" not in text and "2 users" in text and "25.0% of all events" in text
    table = impact.distortion_table(d)
    assert table.iloc[2]["conversion (95% CI)"] == "+5.0 pp (−5.6 to +13.9 pp)"


# --- the correction in words (issue 18): a direction only when the interval excludes zero, points never "%" ----


def test_a_correction_whose_interval_is_above_zero_raises_conversion_by_points():
    text = impact.change_text(0.00036, 0.00015, 0.00064)
    assert text == "they raise it by 0.036 percentage points (95% CI 0.015 to 0.064)"
    assert "%" not in text.replace("95% CI", "")


def test_a_correction_whose_interval_is_below_zero_lowers_it_by_the_size_of_the_drop():
    # the sizes of the drop, smallest first: a reader compares magnitudes, not signed numbers
    text = impact.change_text(-0.0001, -0.0002, -0.00005)
    assert text == "they lower it by 0.01 percentage points (95% CI 0.005 to 0.02)"


def test_a_correction_whose_interval_includes_zero_is_no_measurable_change():
    # the report's own example: "lower it by 0.01 points (95% CI −0.01 to +0.12)" claimed a direction
    text = impact.change_text(-0.0001, -0.0001, 0.0012)
    assert text.startswith("no measurable change: the interval includes zero")
    assert "(−0.01 percentage points, 95% CI −0.01 to +0.12)" in text
    assert "lower" not in text and "raise" not in text and "%" not in text.replace("95% CI", "")
    # an interval touching zero does not exclude it
    assert impact.change_text(0.001, 0.0, 0.002).startswith("no measurable change")


def test_points_keep_two_significant_digits_below_one_point():
    assert [impact.points(v) for v in (0.00036, 0.0004, 0.012, -0.00036, 0.0)] == ["0.036", "0.04", "1.2", "−0.036", "0"]
    assert impact.points(0.00036, signed=True) == "+0.036"


def test_the_headline_on_a_log_without_known_incidents_names_one_detector_and_its_days():
    from tests.test_anomaly_incidents import alarm_rows

    alarms = {"day": alarm_rows([("cart", "rate test", 24 * 2, True), ("cart", "rate test", 24 * 5, True),
                                 ("purchase", "rate test", 24 * 5, True), ("cart", "3-sigma", 24 * 9, True),
                                 ("entrants", "3-sigma", 24 * 3, True)])}
    distortion = {"difference": 0.001, "low": 0.0005, "high": 0.002, "removed_entrants": 4,
                  "kept": {"conversion": 0.1, "ci_low": 0.09, "ci_high": 0.11}}
    text = impact.headline_text(None, alarms, {"events": 0.01, "sessions": 0.02}, distortion, 3)
    # the rate test's two days (09-08 and 09-11), not the 3-sigma's third day nor traffic alarms
    assert "- **Broken days:** 2 days with a drop in a step's conversion, by the rate test detector on daily " \
           "conversion" in text
    assert "planted" not in text and "built-in" not in text and "day(s)" not in text
    assert "they raise it by 0.1 percentage points (95% CI 0.05 to 0.2)" in text


def test_the_headline_when_no_frequency_is_monitored_says_so_instead_of_zero_days():
    distortion = {"difference": 0.0, "low": 0.0, "high": 0.0, "removed_entrants": 0,
                  "kept": {"conversion": 0.1, "ci_low": 0.09, "ci_high": 0.11}}
    text = impact.headline_text(None, {}, {"events": 0.01, "sessions": 0.02}, distortion, 1,
                                {"day": "the median day has 3 session(s) entering the funnel"})
    assert "not watched: no KPI frequency had enough sessions to monitor" in text and "0 day" not in text
    assert "- **Not monitored daily:** the median day has 3 session(s) entering the funnel." in text
    assert "the flagged users never entered the funnel, so it is unchanged" in text


def test_follow_up_tables_keep_the_real_ids_with_the_reports_pseudonym_beside_each():
    from funnelkit.pseudonym import pseudonymise

    frame = pd.DataFrame({COLUMNS.user_id: ["u1", "u2"], COLUMNS.session_id: ["s1", "s2"], "events": [3, 4]})
    out = impact.with_pseudonyms(frame, env="FUNNELKIT_TEST_ID_KEY")
    assert list(out.columns) == [COLUMNS.user_id, f"{COLUMNS.user_id}_pseudonym", COLUMNS.session_id,
                                 f"{COLUMNS.session_id}_pseudonym", "events"]
    assert out[COLUMNS.user_id].tolist() == ["u1", "u2"]  # the real ids stay
    shown = pseudonymise(frame, [COLUMNS.user_id, COLUMNS.session_id], env="FUNNELKIT_TEST_ID_KEY")
    assert out[f"{COLUMNS.user_id}_pseudonym"].tolist() == shown[COLUMNS.user_id].tolist()  # what the report shows
    assert out[f"{COLUMNS.session_id}_pseudonym"].tolist() == shown[COLUMNS.session_id].tolist()
    assert impact.with_pseudonyms(frame, enabled=False) is frame
    assert list(impact.with_pseudonyms(frame[["events"]], env="FUNNELKIT_TEST_ID_KEY").columns) == ["events"]


def test_the_headline_on_a_quiet_log_says_no_day_instead_of_zero_days():
    from tests.test_anomaly_incidents import alarm_rows

    alarms = {"day": alarm_rows([("cart", "rate test", 0, False), ("cart", "STL", 24, True)])}
    distortion = {"difference": 0.0, "low": -0.001, "high": 0.001, "removed_entrants": 2,
                  "kept": {"conversion": 0.1, "ci_low": 0.09, "ci_high": 0.11}}
    text = impact.headline_text(None, alarms, {"events": 0.01, "sessions": 0.02}, distortion, 2)
    assert "- **Broken days:** no day with a drop in a step's conversion, by the rate test detector on daily " \
           "conversion" in text
    assert "0 day" not in text and "shaded" not in text
