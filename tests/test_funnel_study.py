"""The funnel study (notebook 01): its tables on a crafted log, its figures, and its headline prose."""
import html
import re
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from funnelkit.eventlog import EventLog
from funnelkit.funnel import StepLift, study
from funnelkit.groundtruth import step_check_metrics
from funnelkit.params import FunnelParams, StepSpec

ROOT = Path(__file__).resolve().parents[1]

#: What notebook 01 recorded on params/ci.yaml before it ran the study: the study's figures, in order...
STUDY_METRICS = ["overall_conversion", "worst_step_conversion", "lift_revenue_at_worst_step", "converted_revenue",
                 "lift_conversions_at_worst_step", "worst_step", "entrants", "censored_units", "events"]
#: ... then the check against the planted truth (built-in shop only).
PLANTED_METRICS = ["planted_steps_inside_ci", "planted_steps_total", "planted_max_abs_z"]

T0 = pd.Timestamp("2026-01-01", tz="UTC")


def _shop_log() -> pd.DataFrame:
    """Five users a week before the data ends, and one who came on the last day (censored).

    view → cart: u1..u5 (u3 only views); cart → checkout: u1, u4 (desktop) of u1, u2, u4, u5;
    checkout → purchase: both, at 10 and 20. u5 comes back an hour later for a second session.
    """
    minute = pd.Timedelta(minutes=1)
    rows = []
    for user, device, kinds in (("u1", "desktop", ["view", "cart", "checkout", "purchase"]),
                                ("u2", "mobile", ["view", "cart"]),
                                ("u3", "mobile", ["view", "view"]),
                                ("u4", "desktop", ["view", "cart", "checkout", "purchase"]),
                                ("u5", "mobile", ["view", "cart"])):
        rows += [(user, f"{user}-1", T0 + i * minute, kind, device) for i, kind in enumerate(kinds)]
    rows.append(("u5", "u5-2", T0 + pd.Timedelta(hours=1), "view", "mobile"))
    rows.append(("u9", "u9-1", T0 + pd.Timedelta(days=10), "view", "desktop"))
    frame = pd.DataFrame(rows, columns=["user_id", "session_id", "event_time", "event_type", "device"])
    frame["price"] = [10.0 if (u, k) == ("u1", "purchase") else 20.0 if (u, k) == ("u4", "purchase") else None
                      for u, k in zip(frame["user_id"], frame["event_type"])]
    return frame


def test_run_computes_every_table_of_the_report_on_a_small_log():
    frame = _shop_log()
    spec = FunnelParams(breakdowns=["device"], min_segment_units=1)
    got = study.run(EventLog.from_frame(frame), spec, currency="EUR")
    assert got.unit == "users" and got.step_events == ["view", "cart", "checkout", "purchase"]
    assert got.result.steps["entrants"].tolist() == [5, 4, 2, 2]
    assert (got.worst["step"], got.previous) == ("checkout", "cart")
    assert (got.lift.segment, got.lift.value) == ("device", "desktop") and got.logged_revenue == 30.0
    assert [b.column for b in got.breakdowns] == ["device"]
    assert list(got.step_durations) == ["view → cart", "cart → checkout", "checkout → purchase"]
    # the trend counts sessions: u5's second visit is a unit of its own, u9's is still in its window
    assert got.trend["entrants"].sum() == 6 and got.trend["censored"].sum() == 1
    # the paths of those who reached cart (the step before the worst) and went no further: u2 and u5
    assert dict(zip(got.dropoff_paths["path"], got.dropoff_paths["units"])) == {
        "cart → (exit)": 1, "cart → view → (exit)": 1}
    assert got.transitions.loc["view", "cart"] == 4 and got.event_mix["events"].sum() == len(frame)
    assert got.daily_counts["events"].sum() == len(frame)

    figures = {m.name: m for m in got.metrics()}
    assert list(figures) == STUDY_METRICS
    assert figures["overall_conversion"].value == pytest.approx(2 / 5)
    assert figures["worst_step_conversion"].unit == "share of users at cart"
    assert figures["worst_step_conversion"].label == "Worst step: cart → checkout, share who went on"
    assert (figures["entrants"].value, figures["censored_units"].value, figures["events"].value) == (5, 1, len(frame))
    assert figures["converted_revenue"].value == 30.0 and figures["worst_step"].value == "checkout"


def test_metrics_are_the_figures_notebook_01_recorded_on_the_ci_shop():
    from funnelkit.engines import open_events
    from funnelkit.groundtruth import planted
    from funnelkit.params import load_params

    params = load_params(ROOT / "params" / "ci.yaml")
    events = open_events(params)
    got = study.run(events, params.funnel, currency=params.data.currency)
    metrics = got.metrics()
    check = planted(params).step_check(events)
    assert [m.name for m in metrics + step_check_metrics(check)] == STUDY_METRICS + PLANTED_METRICS
    # the index card: the two conversions and the lift in money beside what converting users spent
    assert {m.name for m in metrics if m.headline} == {"overall_conversion", "worst_step_conversion",
                                                       "lift_revenue_at_worst_step", "converted_revenue"}
    assert next(m.value for m in metrics if m.name == "events") == events.report.rows_kept
    assert got.summary()["name"].tolist() == STUDY_METRICS


# --- the headline prose, on crafted lifts ------------------------------------------------------------

HOSTILE = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "{0} {x!r:>{y}}", "*star* _u_", "a|b|c",
           "`tick`", "[l](javascript:alert(1))", "$x$ & \\"]
"""Strings from a log or a params file: HTML, str.format fields, and Markdown's own syntax."""


def _log(text: str) -> EventLog:
    rows = [("u1", T0, "view", text), ("u1", T0 + pd.Timedelta(minutes=1), text, text),
            ("u2", T0, "view", "desktop"), ("u2", T0 + pd.Timedelta(minutes=2), "cart", "desktop"),
            ("u3", T0 + pd.Timedelta(days=40), "other", "desktop")]  # the data ends well after both windows
    frame = pd.DataFrame(rows, columns=["user_id", "event_time", "event_type", "device"])
    frame["session_id"] = frame["user_id"]
    return EventLog.from_frame(frame)


def _study(text: str, **lift_changes) -> study.FunnelStudy:
    """The study of a two-step funnel whose steps are named ``text`` and ``text 2``, with a lift of round figures
    (``lift_changes`` replace its fields) and 90 EUR of logged revenue."""
    spec = FunnelParams(steps=[StepSpec(name=text, events=["view"]), StepSpec(name=text + " 2", events=["cart"])],
                        window="1D")
    ran = study.run(_log(text), spec, currency="EUR")
    lift = StepLift(step=text + " 2", previous=text, units=100, passed=10, rate=0.1, converted=5, segment="device",
                    value="desktop", best_units=40, best_rate=0.2, extra_conversions=6.2, conversions_ci=(3.1, 9.4),
                    extra_revenue=1234.5, revenue_ci=(1000.0, 1500.0), revenue_per_conversion=12.0,
                    converted_revenue=60.0)
    return replace(ran, lift=replace(lift, **lift_changes), logged_revenue=90.0)


def _render(markdown: str) -> str:
    """``markdown`` as HTML, by nbconvert's Markdown renderer."""
    import mistune

    return mistune.html(markdown)


def _plain_text(markdown: str) -> str:
    """What a reader sees of ``markdown`` once rendered (tags removed, entities decoded)."""
    return html.unescape(re.sub(r"<[^>]+>", "", _render(markdown)))


def test_headline_escapes_step_names():
    spec = FunnelParams(steps=[StepSpec(name="[x](javascript:alert(1))", events=["view"]),
                               StepSpec(name="cart", events=["cart"])], window="1D")
    text = study.run(_log("x"), spec).headline()
    assert "](javascript" not in text and "\\[x\\]" in text


@pytest.mark.parametrize("text", HOSTILE)
def test_headline_keeps_hostile_currency_step_and_segment_names_as_plain_text(text):
    markdown = replace(_study(text, segment=text, value=text), currency=text).headline()
    rendered = _render(markdown)
    assert "<script" not in rendered and "<img" not in rendered and "<a " not in rendered and "<code" not in rendered
    assert "<em" not in rendered and rendered.count("<strong>") == 7  # only the headline's own bold
    seen = _plain_text(markdown)
    assert f"1,234 {text} more revenue" in seen and f"12 {text} per user reaching {text} 2" in seen
    assert f"from {text} to {text} 2" in seen and f"best segment, {text} = {text} (20.0%" in seen
    assert f"(95% CI 1,000 to 1,500 {text})" in seen and f"beside the 60 {text} that" in seen


def test_headline_states_the_lift_its_assumption_and_actual_revenue_beside_it():
    seen = _plain_text(_study("view").headline())
    assert "Overall conversion: 50.00% of users (95% CI" in seen  # u2 of u1, u2 carted
    assert ("What improving view 2 could bring: about 6 more users reaching view 2 (95% CI 3 to 9) and 1,234 EUR more "
            "revenue (95% CI 1,000 to 1,500 EUR), beside the 60 EUR that the 5 users who reached view 2 spent there "
            "(all view 2 events in the log: 90 EUR).") in seen
    assert ("This assumes that view 2 converts for all users as it does today for its best segment, device = desktop "
            "(20.0% of its 40 users, against 10.0% overall), and that the extra users then go on like those who "
            "pass view 2 today, spending 12 EUR per user reaching view 2.") in seen
    for wording in ("simulat", "built-in", "planted", "shop"):  # true of any log, not only the built-in one
        assert wording not in seen.lower()


def test_headline_says_what_cannot_be_computed_instead_of_a_number():
    no_segments = _plain_text(_study("view", reason="the log has no segment columns").headline())
    assert "What improving view 2 could bring: not estimated: the log has no segment columns." in no_segments
    assert "EUR" not in no_segments and "more users" not in no_segments
    no_prices = _plain_text(_study("view", extra_revenue=float("nan"), revenue_reason="the log has no prices").headline())
    assert "about 6 more users reaching view 2 (95% CI 3 to 9), assuming that view 2 converts" in no_prices
    assert no_prices.rstrip().endswith("The revenue cannot be computed: the log has no prices.")
    assert "EUR" not in no_prices and "beside" not in no_prices


def test_a_lift_whose_interval_reaches_zero_is_no_measurable_gain_and_a_missing_interval_is_not_printed():
    unsure = _plain_text(_study("view", extra_conversions=2.0, conversions_ci=(-1.5, 5.5)).headline())
    assert ("What improving view 2 could bring: no measurable gain: the interval includes zero (about 2 more users "
            "reaching view 2, 95% CI −2 to 6), assuming that view 2 converts") in unsure
    assert "EUR" not in unsure and "more revenue" not in unsure
    one_buyer = _plain_text(_study("view", revenue_ci=(float("nan"), float("nan"))).headline())
    assert "and 1,234 EUR more revenue, beside the 60 EUR" in one_buyer and "nan" not in one_buyer


def test_headline_names_the_units_still_in_their_window():
    spec = FunnelParams(steps=[StepSpec(name="view", events=["view"]), StepSpec(name="cart", events=["cart"])],
                        window="1D")
    frame = pd.DataFrame({"user_id": ["u1", "u1", "u2"], "session_id": ["s1", "s1", "s2"],
                          "event_time": [T0, T0 + pd.Timedelta(minutes=1), T0 + pd.Timedelta(days=3)],
                          "event_type": ["view", "cart", "view"]})
    seen = _plain_text(study.run(EventLog.from_frame(frame), spec).headline())
    assert "1 users entered too recently for their window to close" in seen
