"""How flagged users distort the funnel, their sessions, and what false flags cost: known answers."""
from __future__ import annotations

import pandas as pd
import pytest

from funnelkit.anomaly import impact
from funnelkit.anomaly.study import headline_text
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
    text = headline_text(None, {}, None, {"events": 0.25, "sessions": 0.2}, d, 2)
    # +5 points, but from 2 removed users: the interval (−5.6 to +13.9) includes zero, so no direction is claimed
    assert "no measurable change: the interval includes zero (+5.0 percentage points, 95% CI −5.6 to +13.9)" in text
    assert "raise" not in text and "2 users" in text and "25.0% of all events" in text
    table = impact.distortion_table(d)
    assert table.iloc[2]["conversion (95% CI)"] == "+5.0 pp (−5.6 to +13.9 pp)"


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
