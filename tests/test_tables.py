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

EVIL = "<script>alert(1)</script>"


@pytest.mark.parametrize("seconds, text", [(45, "45 s"), (150, "2.5 min"), (3 * 3600, "3.0 h"),
                                           (7 * 86400, "7 days"), (1.5 * 86400 * 2, "3 days"), (3.6 * 86400, "3.6 days")])
def test_durations_read_naturally(seconds, text):
    assert tables.duration(pd.Timedelta(seconds=seconds)) == text


def test_rates_carry_their_interval():
    assert tables.pct_ci(0.1234, 0.12, 0.1271) == "12.3% (95% CI 12.0%–12.7%)"
    assert tables.pct_ci(float("nan"), 0, 0) == "–"
    assert tables.money(1234.4, "EUR") == "1,234 EUR"


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

    rendered = mistune.html(tables.escape_md(text))
    assert "<a" not in rendered and "<script" not in rendered and "<strong" not in rendered and "<code" not in rendered
    assert html.unescape(re.sub(r"<[^>]+>", "", rendered)).strip() == text


def test_headline_escapes_step_names():
    log = _log()
    spec = FunnelParams(steps=[StepSpec(name="[x](javascript:alert(1))", events=["view"]),
                               StepSpec(name="cart", events=["cart"])], window="1D")
    result = run_funnel(log, spec, data_end=pd.Timestamp("2026-02-01", tz="UTC"))
    text = tables.headline(result, None)
    assert "](javascript" not in text and "\\[x\\]" in text


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
