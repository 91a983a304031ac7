"""Notebook 04 on a small, sparse clickstream (issue 17 §3): a day with one session is no broken day.

A retentioneering-style clickstream of 300 users over 60 days holds about ten sessions a day and one an
hour. One day is thinned to a single ordinary session that converts: before issue 17 its 1-of-1 cart rate
was that log's only "broken day" (an upward blip, found by 3-sigma, robust z and STL), and the hourly
series, which could raise nothing, took most of the notebook's time. Another day is made
busy and broken: 40 more sessions view a product and none adds to cart, so the cart step's conversion
collapses on a day with four times the usual traffic. One ``funnelkit run`` checks that: the run
succeeds, the hourly level is skipped and the report says why, the broken day is found (a silenced
detector would pass every other assertion), the quiet day is not, and every conversion alarm is a drop
on enough sessions.
"""
from __future__ import annotations

import pandas as pd
import pytest

from funnelkit.report import read_metrics
from tests.hostile.logs import clickstream_csv

pytestmark = pytest.mark.notebooks  # executes notebooks end to end (slow)

QUIET_DAY = "2026-04-01"
BROKEN_DAY = "2026-03-20"


def quiet_day_clickstream(path):
    """:func:`clickstream_csv` with every event of ``QUIET_DAY`` replaced by one ordinary converting session,
    and ``BROKEN_DAY`` made busy and broken: its carts and purchases removed and 40 sessions added that view
    a product and leave."""
    clickstream_csv(path, n_users=300, days=60)
    log = pd.read_csv(path, dtype=str)
    log = log[~log["timestamp"].str.startswith(QUIET_DAY)]
    log = log[~(log["timestamp"].str.startswith(BROKEN_DAY) & log["event"].isin(["add_to_cart", "payment_done"]))]
    # an existing user browsing for a quarter of an hour, not a bot-like burst the behavioural detectors
    # would flag (flagged users are left out of the KPI series)
    session = pd.DataFrame({"user_id": "user7", "event": ["main", "catalog", "product", "add_to_cart", "payment_done"],
                            "timestamp": [f"{QUIET_DAY} 12:{m:02d}:17" for m in (0, 2, 5, 9, 14)]})
    # new visitors, one every 20 minutes from 06:00, each browsing a few minutes without adding to cart
    start = pd.Timestamp(f"{BROKEN_DAY} 06:00:00")
    leavers = pd.DataFrame([(f"visitor{v}", event, f"{start + pd.Timedelta(minutes=20 * v + m):%Y-%m-%d %H:%M:%S}")
                            for v in range(40) for event, m in (("main", 0), ("catalog", 1), ("product", 3))],
                           columns=["user_id", "event", "timestamp"])
    pd.concat([log, session, leavers]).sort_values("timestamp", kind="stable").to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def sparse_run(tmp_path_factory):
    from tests.hostile.conftest import run_cli, write_params

    folder = tmp_path_factory.mktemp("sparse_anomaly")
    source = quiet_day_clickstream(folder / "clickstream.csv")
    params = write_params(
        folder,
        data={"source": str(source), "format": "custom", "columns": {"event_type": "event", "event_time": "timestamp"},
              "assume_timezone": "UTC", "event_names": {"product": "view", "payment_done": "purchase"}},
        funnel={"steps": [{"name": "view", "events": ["view"]}, {"name": "add_to_cart", "events": ["add_to_cart"]},
                          {"name": "purchase", "events": ["purchase"]}]})
    result = run_cli("run", "--params", str(params), "--only", "04", "--reports", str(folder / "reports"),
                     "--no-progress")
    return result, folder / "reports"


def test_notebook_04_on_a_sparse_clickstream_skips_the_hourly_level_and_finds_only_the_real_drop(sparse_run):
    result, reports = sparse_run
    assert result.code == 0, result.output[-3000:]
    metrics = read_metrics(reports / "04_anomaly_studies.ipynb")
    assert metrics["kpi_frequencies"]["value"] == "day"  # the median hour has about one session
    html = (reports / "04_anomaly_studies.html").read_text()
    assert "Not monitored hourly:</strong> the median hour has" in html
    alarms = pd.read_csv(reports / "04_anomaly_studies_files" / "conversion_alarms.csv")
    assert BROKEN_DAY in set(alarms.loc[alarms["step"] == "add_to_cart", "date"]), alarms
    assert alarms["date"].nunique() == metrics["broken_days"]["value"] >= 1
    assert (alarms["value"] < alarms["expected"]).all(), alarms  # only drops are broken days
    assert (alarms["sessions"] >= 10).all(), alarms  # anomaly.min_sessions_per_period's default
    assert QUIET_DAY not in set(alarms["date"]), alarms
    assert set(alarms["frequency"]) <= {"day"}

