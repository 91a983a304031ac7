"""Reports on hostile inputs, end to end: tiny segments that convert 0% or 100%, and HTML, Markdown and
``str.format`` syntax in the data and in every params string that reaches a report.

One run of notebook 01 and one of notebook 03 on the same crafted log and params (notebook runs are slow):
the log is the canonical one of :mod:`tests.hostile.logs` with a ``campaign`` segment holding a value
that converts 0 of 7 units, one that converts 7 of 7 (statsmodels' Wilson bounds for such counts were
1e-17 on the wrong side of the rate: notebook 01 crashed drawing a negative error bar), two values on 2
units each (pooled by ``funnel.min_segment_units``) and a ``<script>`` value; the params hold a hostile
currency (which also crashed notebook 03 through a ``str.format`` pattern), a hostile step name and a
hostile source file name.
"""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from . import logs
from .conftest import run_cli, write_params

pytestmark = pytest.mark.notebooks  # executes notebooks end to end (slow)

SCRIPT = "<script>alert(1)</script>"
CURRENCY = "<img src=x onerror=alert(1)>{0}{"
STEP = "<script>alert(2)</script> check*out*"
#: The hostile strings as live HTML. nbconvert rewrites a raw tag it renders from Markdown
#: (``<img alt="..." onerror="alert(1)" src="x"/>``), so a tag is matched by its name and handler.
RAW = re.compile(r"<script>alert|<img\b[^>]*onerror", re.IGNORECASE)
#: A percentage in scientific notation ("4.3e-17%", "2.8e-17 %"), the print of an unclamped bound.
TINY_PERCENT = re.compile(r"\de[-+]?\d+\s*%")


def _campaign_log(folder: Path) -> Path:
    """The canonical log with a ``campaign`` segment, plus 7 units that never buy and 7 that all buy."""
    base = pd.read_csv(logs.canonical_csv(folder / "base.csv", n_users=400), dtype=str, keep_default_na=False)
    users = sorted(base["user_id"].unique())
    campaign = {user: ("spring" if i % 2 else "summer") for i, user in enumerate(users)}
    campaign.update({user: SCRIPT for user in users[:10]})
    campaign.update({users[10]: "tiny a", users[11]: "tiny a", users[12]: "tiny b", users[13]: "tiny b"})
    base["campaign"] = base["user_id"].map(campaign)
    start = pd.Timestamp("2026-03-03 10:00:00", tz="UTC")
    extra = []
    for i in range(7):
        at = start + pd.Timedelta(hours=i)
        extra.append((f"zero{i}", f"zs{i}", at, "view", "zero"))
        steps = ("view", "cart", "checkout", "purchase")
        extra += [(f"all{i}", f"as{i}", at + pd.Timedelta(minutes=k), step, "all") for k, step in enumerate(steps)]
    extra = pd.DataFrame(extra, columns=["user_id", "session_id", "event_time", "event_type", "campaign"])
    extra["event_time"] = extra["event_time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    extra = extra.assign(item_id="i1", category="cat.1", price="25.0", device="desktop")
    path = folder / "events <img src=x onerror=alert(3)>.csv"
    pd.concat([base, extra[base.columns]], ignore_index=True).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def run_01(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report_inputs")
    params = write_params(
        folder,
        data={"source": str(_campaign_log(folder)), "currency": CURRENCY},
        funnel={"steps": [{"name": "view", "events": ["view"]}, {"name": "cart", "events": ["cart"]},
                          {"name": STEP, "events": ["checkout"]}, {"name": "purchase", "events": ["purchase"]}],
                "breakdowns": ["campaign", "device"], "min_segment_units": 5},
        recommend={"sweep": {"factors": [8], "regularization": [0.05], "alpha": [10.0]}, "bootstrap": 100,
                   "bpr": {"iterations": 10}, "test_period": "7D"},
    )
    reports = folder / "reports"
    result = run_cli("run", "--params", str(params), "--reports", str(reports), "--only", "01_funnel_eda",
                     "--no-progress")
    return params, reports, result


def _assert_escaped(text: str, where: str) -> None:
    live = RAW.search(text)
    assert live is None, f"{where}: {text[max(live.start() - 80, 0):live.end() + 80]!r}"


def test_notebook_01_renders_tiny_segments_and_hostile_strings_safely(run_01):
    _, reports, result = run_01
    assert result.code == 0, result.output
    page = (reports / "01_funnel_eda.html").read_text(encoding="utf-8")
    index = (reports / "index.html").read_text(encoding="utf-8")
    _assert_escaped(page, "01_funnel_eda.html")
    _assert_escaped(index, "index.html")
    # the hostile strings are shown, as text
    assert "&lt;img src=x onerror=alert(1)&gt;" in page  # the currency, in the headline
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # the segment value, in the breakdown table
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in page  # the step name
    assert "events &lt;img src=x onerror=alert(3)&gt;.csv" in page  # the source file name
    # 0 of 7 and 7 of 7: intervals clamped at exactly 0% and 100%, nothing in scientific notation
    assert "0.00% (95% CI 0.00%–" in page and "100.00% (95% CI" in page and "–100.00%)" in page
    assert not TINY_PERCENT.search(page) and not TINY_PERCENT.search(index)
    # values under funnel.min_segment_units pooled; the small expected counts get an exact test
    assert "other (2 values under 5 units)" in page and "tiny a" not in page
    assert "Monte-Carlo exact test" in page


def test_notebook_03_takes_a_currency_with_braces(run_01):
    params, reports, _ = run_01
    result = run_cli("run", "--params", str(params), "--reports", str(reports), "--only", "03_als_recommendations",
                     "--no-progress")
    assert result.code == 0, result.output
    page = (reports / "03_als_recommendations.html").read_text(encoding="utf-8")
    _assert_escaped(page, "03_als_recommendations.html")
    assert "&lt;img src=x onerror=alert(1)&gt;{0}{" in page  # the example lists' prices
