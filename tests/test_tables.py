"""Tables for people: numbers formatted with units, every data string escaped."""
import html
import re

import pandas as pd
import pytest

from funnelkit import tables
from funnelkit.data import ValidationReport
from funnelkit.eventlog import EventLog
from funnelkit.funnel import dropoff_paths, run_funnel
from funnelkit.params import FunnelParams, StepSpec
from funnelkit.profile import event_mix
from funnelkit.retention.survival import kaplan_meier
from funnelkit.text import duration, escape_md, money, pct_ci

EVIL = "<script>alert(1)</script>"


@pytest.mark.parametrize("seconds, text", [(45, "45 s"), (150, "2.5 min"), (3 * 3600, "3.0 h"),
                                           (7 * 86400, "7 days"), (1.5 * 86400 * 2, "3 days"), (3.6 * 86400, "3.6 days")])
def test_durations_read_naturally(seconds, text):
    assert duration(pd.Timedelta(seconds=seconds)) == text


def test_rates_carry_their_interval():
    assert pct_ci(0.1234, 0.12, 0.1271) == "12.3% (95% CI 12.0%–12.7%)"
    assert pct_ci(float("nan"), 0, 0) == "–"
    assert money(1234.4, "EUR") == "1,234 EUR"


def _log():
    t0 = pd.Timestamp("2026-01-01", tz="UTC")
    rows = [("u1", t0, "view", EVIL), ("u1", t0 + pd.Timedelta(minutes=1), EVIL, EVIL),
            ("u2", t0, "view", "desktop"), ("u2", t0 + pd.Timedelta(minutes=2), "cart", "desktop")]
    frame = pd.DataFrame(rows, columns=["user_id", "event_time", "event_type", "device"])
    frame["session_id"] = frame["user_id"]
    return EventLog.from_frame(frame)


def test_strings_from_the_data_are_escaped_in_every_table():
    log = _log()
    spec = FunnelParams(steps=[StepSpec(name="view", events=["view"]), StepSpec(name="cart", events=["cart"])],
                        window="1D")
    result = run_funnel(log, spec, data_end=pd.Timestamp("2026-02-01", tz="UTC"))
    breakdown = result.breakdown("device")
    rendered = [
        tables.breakdown_table(breakdown),
        tables.breakdown_overview([breakdown]),
        tables.event_mix_table(event_mix(log)),
        tables.paths_table(dropoff_paths(result, "view")),
    ]
    for frame in rendered:
        html = frame.style.hide(axis="index").to_html()
        assert EVIL not in html and "&lt;script&gt;" in html


def test_quality_table_escapes_the_report():
    report = ValidationReport(source=EVIL, format="canonical", files=1, rows_read=10, rows_kept=9, duplicates=1,
                              duplicates_dropped=True, null_ids_dropped=0, unmapped_events={EVIL: 3},
                              first_event=None, last_event=None, users=2, sessions=3, sessions_derived=True,
                              session_gap_minutes=30.0, time_zone="UTC")
    html = tables.quality_table(report).style.hide(axis="index").to_html()
    assert EVIL not in html and html.count("&lt;script&gt;") == 2
    assert "30 minutes" in html


def test_planted_table_formats_rates_and_z():
    check = pd.DataFrame({"step": ["cart"], "sessions": [1200], "expected": [0.1], "observed": [0.11],
                          "ci_low": [0.095], "ci_high": [0.127], "inside": [True], "z": [1.234]})
    row = tables.planted_table(check).iloc[0]
    assert row["planted rate (expected)"] == "10.00%"
    assert row["observed rate"] == "11.00% (95% CI 9.50%–12.70%)"
    assert row["planted rate inside the interval"] == "yes" and row["z (standard deviations)"] == "+1.23"
    assert row["sessions at the previous step"] == "1,200"


@pytest.mark.parametrize("text", ["[click](javascript:alert(1))", EVIL, "**bold** _x_ `code`", "a&b.csv"])
def test_markdown_escaping_keeps_data_as_plain_text(text):
    import mistune  # nbconvert's Markdown renderer

    rendered = mistune.html(escape_md(text))
    assert "<a" not in rendered and "<script" not in rendered and "<strong" not in rendered and "<code" not in rendered
    assert html.unescape(re.sub(r"<[^>]+>", "", rendered)).strip() == text


def test_breakdown_overview_of_no_breakdowns_is_an_empty_table():
    assert tables.breakdown_overview([]).empty and list(tables.breakdown_tests([]).columns)


def test_ranking_and_sweep_views_show_intervals_and_escape_model_names():
    summary = pd.DataFrame([
        {"model": "<b>ALS</b>", "metric": m, "k": 10, "value": v, "low": v - 0.01, "high": v + 0.01, "users": 9}
        for m, v in (("ndcg", 0.07), ("ap", 0.05), ("precision", 0.012), ("recall", 0.11), ("hit", 0.12),
                     ("coverage", 0.056), ("novelty", 6.97))])
    view = tables.ranking_view(summary, 10)
    assert view.loc[0, "model"] == "&lt;b&gt;ALS&lt;/b&gt;"
    assert view.loc[0, "NDCG@10 (95% CI)"] == "0.0700 (0.0600 to 0.0800)"
    assert view.loc[0, "coverage@10"] == "5.6%" and view.loc[0, "novelty@10"] == "6.97 bits"
    sweep = pd.DataFrame({"factors": [16], "regularization": [1.0], "alpha": [10.0], "ndcg@10": [0.05],
                          "low": [0.04], "high": [0.06], "fit_seconds": [1.234]})
    row = tables.sweep_view(sweep).iloc[0]
    assert (row["regularization"], row["alpha"], row["fit time (s)"]) == ("1", "10", "1.2")
    assert row["NDCG@10 on validation (95% CI)"] == "0.0500 (0.0400 to 0.0600)"
    assert tables.escaped(pd.DataFrame({"id": ["<i>"], "n": [1]})).loc[0, "id"] == "&lt;i&gt;"


def test_incident_and_detector_views_format_rates_and_escape_names():
    scored = pd.DataFrame({"frequency": ["day"], "detector": ["<rate>"], "alarms": [2], "false_alarms": [0],
                           "precision": [1.0], "recall": [0.5], "delay_hours": [24.0]})
    row = tables.incident_view(scored).iloc[0]
    assert (row["detector"], row["precision"], row["recall"], row["delay (hours)"]) == ("&lt;rate&gt;", "100.0%", "50.0%", "24")
    table = pd.DataFrame({"detector": ["LOF", "LOF"], "type": ["bot", "any"], "pr_auc": [0.1234, 0.5],
                          "precision_at_k": [0.25, 0.5], "recall_at_fpr": [1.0, 1.0]})
    view = tables.detector_view(table).iloc[0]
    assert (view["PR-AUC bot"], view["PR-AUC any"], view["bots: precision@k"]) == ("0.123", "0.500", "25.0%")


# --- every view and every Markdown helper, with hostile text in the data and in the params -------

HOSTILE = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "{0} {x!r:>{y}}", "*star* _u_", "a|b|c",
           "`tick`", "[l](javascript:alert(1))", "$x$ & \\"]
"""Strings from a log or a params file: HTML, str.format fields, and Markdown's own syntax."""


def _breakdown(text):
    from funnelkit.funnel import Breakdown
    from funnelkit.stats import chi2_independence, rate_frame

    table = pd.DataFrame({"value": [text, "desktop"], "entrants": [7, 40], "converted": [0, 12]})
    table = pd.concat([table, rate_frame(table["converted"], table["entrants"]).rename(
        columns={"rate": "conversion"})], axis=1)
    table["share"] = table["entrants"] / table["entrants"].sum()
    test = chi2_independence(table[["converted"]].assign(lost=table["entrants"] - table["converted"]).to_numpy())
    return Breakdown(column=text, attribution="first_step", table=table, test=test)


def _steps(text):
    log = _log()
    spec = FunnelParams(steps=[StepSpec(name=text, events=["view"]), StepSpec(name=text + " 2", events=["cart"])],
                        window="1D")
    return run_funnel(log, spec, data_end=pd.Timestamp("2026-02-01", tz="UTC"))


def _views(text):
    """Every view of ``funnelkit.tables`` built on inputs whose every text field is ``text``."""
    trend = pd.DataFrame({"period": pd.to_datetime(["2026-01-05"], utc=True), "entrants": [10], "converted": [0],
                          "conversion": [0.0], "ci_low": [0.0], "ci_high": [0.28], "censored": [1], "complete": [False]})
    drivers = pd.DataFrame({"step": [text], "given": [text], "term": [text], "odds_ratio": [1.5], "odds_low": [1.1],
                            "odds_high": [2.0], "effect": [0.01], "effect_low": [0.0], "effect_high": [0.02],
                            "p_adjusted": [0.01], "planted": [0.4], "coef": [0.41], "coef_low": [0.1],
                            "coef_high": [0.7], "inside": [True]})
    scores = pd.DataFrame({"model": [text], **{f"{m}{s}": [0.5] for m in ("roc_auc", "pr_auc", "brier")
                                                for s in ("", "_low", "_high")}})
    coefficients = pd.DataFrame({"coef": [0.1], "std_err": [0.01], "ci_lower": [0.08], "ci_upper": [0.12],
                                 "p_value": [0.001]}, index=[text])
    accuracy = pd.DataFrame({"n": [100], "p": [3], "log10_cond": [2.0], "log10_cond_raw": [5.0], "lre_normal": [10.0],
                             "lre_qr": [14.0], "lre_qr_plain": [13.0]}, index=[text])
    summary = pd.DataFrame([{"model": text, "metric": m, "k": 10, "value": 0.1, "low": 0.05, "high": 0.15, "users": 9}
                            for m in ("ndcg", "ap", "precision", "recall", "hit", "coverage", "novelty")])
    sweep = pd.DataFrame({"factors": [16], "regularization": [1.0], "alpha": [10.0], "ndcg@10": [0.05],
                          "low": [0.04], "high": [0.06], "fit_seconds": [1.0]})
    scored = pd.DataFrame({"frequency": [text], "detector": [text], "alarms": [2], "false_alarms": [0],
                           "precision": [1.0], "recall": [0.5], "delay_hours": [24.0]})
    detectors = pd.DataFrame({"detector": [text, text], "type": ["bot", text], "pr_auc": [0.1, 0.5],
                              "precision_at_k": [0.25, 0.5], "recall_at_fpr": [1.0, 1.0]})
    check = pd.DataFrame({"step": [text], "sessions": [1200], "expected": [0.1], "observed": [0.11], "ci_low": [0.095],
                          "ci_high": [0.127], "inside": [True], "z": [1.234]})
    report = ValidationReport(source=text, format="canonical", files=1, rows_read=10, rows_kept=9, duplicates=1,
                              duplicates_dropped=True, null_ids_dropped=0, unmapped_events={text: 3},
                              first_event=None, last_event=None, users=2, sessions=3, sessions_derived=True,
                              session_gap_minutes=30.0, time_zone="UTC")
    mix = pd.DataFrame({"event_type": [text], "events": [3], "users": [2], "share_of_events": [1.0]})
    paths = pd.DataFrame({"path": [text], "units": [3], "share": [1.0]})
    breakdown = _breakdown(text)
    monday = pd.Timestamp("2026-09-07", tz="UTC")
    cohorts = pd.DataFrame({"cohort": [monday, monday], "k": [0, 1], "users": [10, 10], "active": [10, 2],
                            "share": [1.0, float("nan")], "ci_low": [0.7, float("nan")],
                            "ci_high": [1.0, float("nan")], "in_progress": [False, True],
                            "partial_cohort": [False, False]})
    curve = kaplan_meier([1.0, 3.0, 5.0], [1, 0, 1], label=text)
    parameters = pd.DataFrame({"coef": [0.2], "std_err": [0.01], "ci_lower": [0.18], "ci_upper": [0.22]}, index=[text])
    returns = pd.DataFrame({"customer_type": [text], "days": [30.0], "planted": [0.6], "estimate": [0.61],
                            "ci_low": [0.59], "ci_high": [0.63], "inside": [True], "z": [0.5]})
    process = pd.DataFrame({"customer_type": [text], "parameter": [text], "planted": [0.22], "estimate": [0.2],
                            "ci_low": [0.18], "ci_high": [0.25], "inside": [True]})
    holdout = pd.DataFrame({"group": [text], "customers": [100], "predicted_mean": [0.4], "actual_mean": [0.38],
                            "actual_ci_lower": [0.3], "actual_ci_upper": [0.46]})
    states = pd.DataFrame({"state": ["start", text], "visits": [10, 8], "exits": [0, 3], "exit_share": [0, 0.375],
                           **{f"{m}{s}": [0.1, 0.2]
                              for m in ("purchase_probability", "expected_pages", "removal_effect",
                                        "purchases_through", "visitors_bought")
                              for s in ("", "_low", "_high")}})
    what_ifs = pd.DataFrame({"from": [text], "to": [text], "change": [0.1], "probability": [0.5],
                             "new_probability": [0.55], "conversion": [0.04], "new_conversion": [0.045],
                             "extra_per_1000": [5.0], "extra_per_1000_low": [4.0], "extra_per_1000_high": [6.0],
                             "extra_value_per_1000": [100.0], "extra_value_per_1000_low": [80.0],
                             "extra_value_per_1000_high": [120.0]})
    history = pd.DataFrame({"previous": [text], "state": [text], "next": [text], "visits": [50], "share": [0.5],
                            "share_low": [0.4], "share_high": [0.6], "first_order": [0.45]})
    journey_check = pd.DataFrame({"from": [text], "to": [text], "planted": [0.5], "probability": [0.51],
                                  "ci_low": [0.45], "ci_high": [0.55], "inside": [True]})
    next_event = pd.DataFrame([{"model": name, **{f"{m}{s}": 0.5 for m in ("log_loss", "top1", "top3")
                                                  for s in ("", "_low", "_high", "_diff", "_diff_low", "_diff_high")}}
                               for name in ("Markov, first order", text)])
    purchase = pd.DataFrame([{"model": text, "k": 3, "journeys": 100, "bought": 5, "baseline": "Markov, first order",
                              **{f"{m}{s}": 0.6 for m in ("roc_auc", "pr_auc")
                                 for s in ("", "_low", "_high", "_diff", "_diff_low", "_diff_high")}}])
    return {
        "step_table": tables.step_table(_steps(text).steps),
        "breakdown_tests": tables.breakdown_tests([breakdown]),
        "breakdown_overview": tables.breakdown_overview([breakdown]),
        "breakdown_table": tables.breakdown_table(breakdown),
        "trend_table": tables.trend_table(trend),
        "planted_table": tables.planted_table(check),
        "quality_table": tables.quality_table(report),
        "event_mix_table": tables.event_mix_table(mix),
        "paths_table": tables.paths_table(paths),
        "drivers_view": tables.drivers_view(drivers),
        "scores_view": tables.scores_view(scores),
        "coefficients_view": tables.coefficients_view(coefficients),
        "digits_view": tables.digits_view(pd.DataFrame({"term": [text], "ours": [0.1], "digits": [12.0]})),
        "accuracy_view": tables.accuracy_view(accuracy),
        "ranking_view": tables.ranking_view(summary, 10),
        "sweep_view": tables.sweep_view(sweep),
        "escaped": tables.escaped(pd.DataFrame({"id": [text], "n": [1]})),
        "incident_view": tables.incident_view(scored),
        "detector_view": tables.detector_view(detectors),
        "cohort_view": tables.cohort_view(cohorts, period=text),
        "survival_view": tables.survival_view([curve], min_at_risk=1),
        "parameter_view": tables.parameter_view(parameters, planted={text: 0.2}),
        "planted_return_view": tables.planted_return_view(returns),
        "planted_process_view": tables.planted_process_view(process),
        "holdout_view": tables.holdout_view(holdout),
        "journey_states_view": tables.journey_states_view(states),
        "state_mapping_view": tables.state_mapping_view(pd.DataFrame({"event_type": [text], "state": [text],
                                                                       "events": [3]})),
        "what_if_view": tables.what_if_view(what_ifs, currency=text),
        "history_view": tables.history_view(history),
        "planted_journey_view": tables.planted_journey_view(journey_check),
        "next_event_view": tables.next_event_view(next_event, baseline="Markov, first order"),
        "purchase_prediction_view": tables.purchase_prediction_view(purchase),
    }


#: Views with no text from the data or the params to escape.
NUMBERS_ONLY = {"trend_table", "sweep_view"}
#: Functions of ``funnelkit.tables`` that make strings, not tables (tested for escaping below).
TEXT_HELPERS = {"escape", "escape_md", "pct", "pct_ci", "duration", "money", "data_note"}


def test_every_table_view_is_in_the_escaping_test():
    import inspect

    public = {name for name, f in inspect.getmembers(tables, inspect.isfunction)
              if f.__module__ == tables.__name__ and not name.startswith("_")}
    assert public - TEXT_HELPERS == set(_views("x")), "a new view must be added to _views"


@pytest.mark.parametrize("text", HOSTILE)
def test_every_table_view_shows_hostile_text_as_text(text):
    for name, frame in _views(text).items():
        rendered = frame.style.hide(axis="index").to_html()  # as the notebooks display them
        assert "<script" not in rendered and "<img" not in rendered, name
        if name not in NUMBERS_ONLY:
            assert html.escape(text) in rendered, f"{name} must show the text, escaped"


def test_step_table_escapes_step_names():
    view = tables.step_table(_steps(EVIL).steps)
    assert view["step"].tolist() == [html.escape(EVIL), html.escape(EVIL + " 2")]


def _render(markdown: str) -> str:
    """``markdown`` as HTML, by nbconvert's Markdown renderer."""
    import mistune

    return mistune.html(markdown)


def _plain_text(markdown: str) -> str:
    """What a reader sees of ``markdown`` once rendered (tags removed, entities decoded)."""
    return html.unescape(re.sub(r"<[^>]+>", "", _render(markdown)))


@pytest.mark.parametrize("text", HOSTILE)
def test_data_note_keeps_a_hostile_source_path_as_plain_text(text):
    from funnelkit.params import Params

    note = tables.data_note(Params.model_validate({"data": {"source": f"/data/{text}.csv"}}))
    assert "<script" not in _render(note) and "<img" not in _render(note)
    assert _plain_text(note) == f"Data: /data/{text}.csv, read as format canonical.\n"


def test_data_note_says_simulated_only_for_the_built_in_shop_and_names_a_spark_table():
    from funnelkit.params import Params

    assert tables.data_note(Params()).startswith("**The data is simulated**")
    spark = Params.model_validate({"engine": {"name": "spark", "spark": {"table": "shop.events"}}})
    assert _plain_text(tables.data_note(spark)) == "Data: Spark table shop.events.\n"


@pytest.mark.parametrize("text", HOSTILE)
def test_money_escapes_the_currency_and_is_no_format_string(text):
    assert money(1234.5, text) == f"1,234 {html.escape(text)}"
    assert money(1234.5, text, digits=2) == f"1,234.50 {html.escape(text)}"
    assert _plain_text(money(1.0, text, markdown=True)).strip() == f"1 {text}"


def test_breakdown_tests_say_which_test_gave_the_pvalue():
    view = tables.breakdown_tests([_breakdown("mobile")]).iloc[0]
    # 0 of 7 against 12 of 40: an expected count under 5 in a 2 x 2 table
    assert view["test"].startswith("Fisher's exact test") and view["smallest expected count"] == "1.8"
    single = _breakdown("mobile")
    single.table, single.test = single.table.iloc[:1], {"chi2": float("nan"), "dof": 0, "pvalue": float("nan"),
                                                         "min_expected": float("nan"), "method": "none"}
    row = tables.breakdown_tests([single]).iloc[0]
    assert (row["chi-square"], row["p-value"], row["smallest expected count"]) == ("–", "–", "–")
    assert row["test"].startswith("not tested")


def test_an_in_progress_cohort_cell_is_never_shown_as_a_rate():
    from funnelkit.retention.cohorts import cohort_matrix

    monday = pd.Timestamp("2026-09-07", tz="UTC")
    week = pd.Timedelta(days=7)
    sizes = pd.DataFrame({"cohort": [monday, monday + week], "users": [200, 150]})
    active = pd.DataFrame({"cohort": [monday, monday, monday + week, monday + week],
                           "period": [monday, monday + week, monday + week, monday + 2 * week],
                           "users": [200, 40, 150, 3]})
    # the data ends on the Tuesday of the third week: that week has 3 (and 0) users back so far, not "2%" (or "0%")
    cells = cohort_matrix(sizes, active, period="week", periods=3, data_start=monday,
                          data_end=monday + 2 * week + pd.Timedelta(days=1))
    view = tables.cohort_view(cells)
    shown = view.drop(columns=view.columns[0]).to_numpy().ravel()
    unfinished = [text for text in shown if "in progress" in text]
    assert unfinished == ["in progress (0 so far)", "in progress (3 so far)"]
    assert all("%" not in text for text in unfinished)
    assert view.iloc[0, 2] == "20.0% (95% CI 15.0%–26.1%)"
