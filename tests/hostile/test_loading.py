"""Issue 17 §2, loading: logs that used to give silently wrong answers or crash, run through the CLI.

Each case runs ``funnelkit validate`` (which loads the data once, as ``funnelkit run`` does before any
notebook) on a small crafted log and checks the exit code and what the user reads. One case runs
notebook 01 to the end, on a log holding every oddity that must be excluded or kept apart. Every test
also checks that the user's files are left byte for byte as they were.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from . import logs
from .conftest import run_cli


def digests(*paths: Path) -> dict[Path, str]:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def validate(params: Path, *inputs: Path):
    """``funnelkit validate --params``; asserts that the inputs are unchanged afterwards."""
    before = digests(*inputs)
    result = run_cli("validate", "--params", str(params))
    assert digests(*inputs) == before
    return result


def run_01(params: Path, reports: Path, *inputs: Path):
    """``funnelkit run --only 01_funnel_eda`` into ``reports``; asserts that the inputs are unchanged afterwards."""
    before = digests(*inputs)
    result = run_cli("run", "--params", str(params), "--reports", str(reports), "--only", "01_funnel_eda")
    assert digests(*inputs) == before
    return result


def loaded_events(result) -> int:
    """The number of events ``funnelkit validate`` says it loaded."""
    return int(re.search(r"# data: ([\d,]+) events", result.stdout).group(1).replace(",", ""))


def clickstream_params(path: Path, **data) -> dict:
    return {"data": {"source": str(path), "format": "custom",
                     "columns": {"event_type": "event", "event_time": "timestamp"}, "assume_timezone": "UTC",
                     "event_names": {"add_to_cart": "cart", "payment_done": "purchase"}, **data},
            "funnel": {"steps": [{"name": "product", "events": ["product"]}, {"name": "cart", "events": ["cart"]},
                                 {"name": "purchase", "events": ["purchase"]}]}}


def test_a_mapping_onto_the_logs_own_cart_event_stops_naming_both(tmp_path, params_in):
    path = logs.clickstream_csv(tmp_path / "clicks.csv")
    raw = pd.read_csv(path)["event"].value_counts()
    result = validate(params_in(**clickstream_params(path)), path)
    assert result.code == 2, result.output
    assert f"'add_to_cart' ({raw['add_to_cart']:,} events)" in result.stderr
    assert f"'cart' ({raw['cart']:,} events)" in result.stderr and "data.merge_event_names" in result.stderr
    merged = validate(params_in(**clickstream_params(path, merge_event_names=True)), path)
    assert merged.code == 0, merged.output
    assert loaded_events(merged) == len(raw.index.repeat(raw))


@pytest.mark.parametrize("name, decoy", [("ev[1].csv", "ev1.csv"), ("a*b.csv", "aXb.csv")])
def test_a_file_name_with_glob_characters_is_the_file_read(tmp_path, params_in, name, decoy):
    path = logs.canonical_csv(tmp_path / name, n_users=60)
    broken = tmp_path / decoy
    broken.write_text("user_id,event_time\nu1,not a time\n")  # read by mistake, it would stop the run
    result = validate(params_in(data={"source": str(path)}), path, broken)
    assert result.code == 0, result.output
    assert loaded_events(result) == len(pd.read_csv(path))


def odd_times_log(tmp_path: Path, odd: list[str]) -> tuple[Path, int]:
    """The canonical crafted log with extra view events at the ``odd`` times; its number of normal rows."""
    path = logs.canonical_csv(tmp_path / "events.csv", n_users=120)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    extra = pd.DataFrame([{**frame.iloc[0].to_dict(), "event_time": t} for t in odd])
    pd.concat([frame, extra]).to_csv(path, index=False)
    return path, len(frame)


def test_far_and_infinite_times_are_excluded_counted_and_shown(tmp_path, params_in):
    odd = ["2099-01-01T00:00:00Z", "1970-01-01T00:00:00Z", "infinity", "12026-01-01T00:00:00Z"]
    path, normal = odd_times_log(tmp_path, odd)
    result = validate(params_in(data={"source": str(path)}), path)
    assert result.code == 0, result.output
    assert loaded_events(result) == normal
    assert "4 events outside the plausible time range" in result.stderr and "1 before" in result.stderr
    last = pd.read_csv(path).event_time.iloc[:normal].max()  # the ISO strings sort in time order
    assert pd.Timestamp(last).strftime("%Y-%m-%d %H:%M:%S") in result.stdout


def test_times_pandas_cannot_hold_stop_the_run_when_every_event_is_kept(tmp_path, params_in):
    path, normal = odd_times_log(tmp_path, ["12026-01-01T00:00:00Z", "infinity"])
    result = validate(params_in(data={"source": str(path), "time_range": "all"}), path)
    assert result.code == 2, result.output
    assert "2 timestamps are outside" in result.stderr and f"row {normal + 1:,}" in result.stderr
    assert "Traceback" not in result.output


def test_naive_times_with_single_digits_follow_the_assumed_zone(tmp_path, params_in):
    path = logs.canonical_csv(tmp_path / "events.csv", n_users=60)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    times = pd.to_datetime(frame["event_time"], utc=True)
    # '2026-3-2 1:5', single spaces and double spaces alternating, no zone
    frame["event_time"] = [f"{t.year}-{t.month}-{t.day}{'  ' if i % 2 else ' '}{t.hour}:{t.minute}:{t.second}"
                           for i, t in enumerate(times)]
    frame.to_csv(path, index=False)
    unzoned = validate(params_in(data={"source": str(path)}), path)
    assert unzoned.code == 2 and "data.assume_timezone" in unzoned.stderr, unzoned.output
    result = validate(params_in(data={"source": str(path), "assume_timezone": "America/New_York"}), path)
    assert result.code == 0, result.output
    first = times.min() + pd.Timedelta(hours=5)  # EST in early March
    assert f"from {first.strftime('%Y-%m-%d %H:%M:%S')}" in result.stdout


def test_a_timestamp_unit_off_by_a_thousand_is_flagged(tmp_path, params_in):
    path = logs.retailrocket_csv(tmp_path / "events.csv", n_users=60)
    params = params_in(data={"source": str(path), "format": "retailrocket", "timestamp_unit": "us"},
                       funnel={"steps": [{"name": "view", "events": ["view"]}, {"name": "cart", "events": ["cart"]},
                                         {"name": "purchase", "events": ["purchase"]}]})
    result = validate(params, path)
    # read as µs, 28 days of ms timestamps span 40 minutes of January 1970: too short for the recommendation
    # split too, and that error must come after the warning that names the likely cause
    assert result.code == 2, result.output
    warning = result.stderr.index("warning")
    assert "1970-01-" in result.stderr[warning:] and "data.timestamp_unit" in result.stderr[warning:]
    assert warning < result.stderr.index("error: recommend.test_period")


@pytest.mark.parametrize("bad", ["inf", "nan"])
def test_non_finite_prices_stop_the_run_before_any_notebook(tmp_path, params_in, bad):
    path = logs.canonical_csv(tmp_path / "events.csv", n_users=60)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.loc[[3, 7], "price"] = bad
    frame.to_csv(path, index=False)
    reports = tmp_path / "reports"
    result = run_01(params_in(data={"source": str(path)}), reports, path)
    assert result.code == 2, result.output
    assert f"'price': 2 prices are not finite numbers; first at row 4 (line 5): '{bad}'" in result.stderr
    assert not list(reports.glob("*.html"))


@pytest.mark.notebooks
def test_notebook_01_runs_on_refunds_odd_times_and_a_pandas_index(tmp_path, params_in):
    """One notebook run for the cases that must load and then give the right numbers."""
    csv = logs.canonical_csv(tmp_path / "events.csv", n_users=200)
    frame = pd.read_csv(csv, dtype={"user_id": str, "session_id": str, "item_id": str})
    purchases = frame.index[frame.event_type == "purchase"]
    refunds = purchases[np.arange(len(purchases)) % 3 > 0]  # most orders refunded: read as purchases, the
    frame.loc[refunds, "price"] *= -1                        # revenue would be negative and its interval reversed
    odd = frame.iloc[[0, 0]].assign(event_time=["2099-01-01T00:00:00Z", "1970-01-01T00:00:00Z"])
    frame = pd.concat([frame, odd]).set_index(np.arange(len(frame) + 2) * 10)  # an index pandas writes out
    frame["event_time"] = pd.to_datetime(frame["event_time"], utc=True, format="ISO8601")
    path = tmp_path / "events.parquet"
    frame.to_parquet(path)
    reports = tmp_path / "reports"
    result = run_01(params_in(data={"source": str(path)}), reports, path)
    assert result.code == 0, result.output
    html = (reports / "01_funnel_eda.html").read_text()
    assert "__index_level_0__" not in html
    assert f"{len(refunds):,}, totalling" in html
    assert "2: 1 before" in html
