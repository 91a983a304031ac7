"""Benchmark workloads: funnelkit (DuckDB) and plain pandas give the same answers, and checksums identify them."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from benchmarks import workloads
from benchmarks.workloads import IMPLEMENTATIONS, WORKLOADS, answer, checksum
from funnelkit.params import load_params
from funnelkit.schema import COLUMNS, EVENTS
from funnelkit.simulate import ensure_dataset
from tests.reference.funnel_bruteforce import unit_results

ROOT = Path(__file__).resolve().parents[1]
NAMES = ["funnel", "funnel_limits", "breakdown", "features", "matrix"]


def assert_same_answer(duckdb: pd.DataFrame, pandas: pd.DataFrame) -> None:
    """Same columns, dtypes, rows in the same order; floats to 1e-12 (ints and text exactly); same checksum."""
    pd.testing.assert_frame_equal(duckdb, pandas, check_exact=False, rtol=1e-12, atol=0)
    assert checksum(duckdb) == checksum(pandas)


@pytest.fixture(scope="module")
def ci_shop() -> Path:
    return ensure_dataset(load_params(ROOT / "params" / "ci.yaml").simulation).events_path


# --------------------------------------------------------------------------- interface

def test_workloads_and_implementations_are_the_published_ones():
    assert list(WORKLOADS) == NAMES
    assert all(isinstance(text, str) and text and "\n" not in text for text in WORKLOADS.values())
    # Spark on the funnel only: its answer is checked against DuckDB's in tests/test_spark.py
    assert IMPLEMENTATIONS == {name: ("duckdb", "pandas") + (("spark",) if name == "funnel" else ()) for name in NAMES}


def test_unknown_workload_or_implementation_is_refused(ci_shop):
    with pytest.raises(ValueError, match="unknown workload 'funel'"):
        answer("funel", "pandas", ci_shop)
    with pytest.raises(ValueError, match="no implementation 'polars'"):
        answer("funnel", "polars", ci_shop)


# --------------------------------------------------------------------------- the CI shop

@pytest.mark.parametrize("workload", NAMES)
def test_pandas_and_duckdb_agree_on_the_ci_shop(workload, ci_shop):
    duckdb = answer(workload, "duckdb", ci_shop, memory_limit="1GB", threads=1)
    pandas = answer(workload, "pandas", ci_shop)
    assert len(pandas) > 0
    assert_same_answer(duckdb, pandas)


def test_ci_shop_answers_are_meaningful(ci_shop):
    """Not vacuous: the shop has converters, censored entrants and an effect of the limits."""
    funnel = answer("funnel", "pandas", ci_shop).set_index("step")
    limits = answer("funnel_limits", "pandas", ci_shop).set_index("step")
    assert funnel["entrants"].is_monotonic_decreasing and funnel.loc["purchase", "entrants"] > 0
    assert funnel["censored"].iloc[0] > 0
    assert (limits["entrants"] <= funnel["entrants"]).all() and (limits["entrants"] < funnel["entrants"]).any()
    features = answer("features", "pandas", ci_shop)
    assert features[COLUMNS.session_id].is_unique and features["label"].sum() > 0
    assert features["censored"].any() and features["returning"].any()


# --------------------------------------------------------------------------- random small logs

DAY, SLOT = pd.Timedelta(days=1), pd.Timedelta(minutes=30)
BASE = pd.Timestamp("2026-03-02", tz="UTC")  # a Monday
OTHER_TYPES = [EVENTS.view, EVENTS.view, EVENTS.cart, EVENTS.checkout, EVENTS.purchase, "search"]
DAY_OFFSETS = [0, 0, 1, 7, 8]  # of a journey from the user's first day: exact 1-day and 7-day edges are common
GAPS = [0, 1, 1, 2, 2, 3]  # half-hours between a journey's events: ties and exact 1-hour gaps are common


@st.composite
def random_log(draw) -> pd.DataFrame:
    """A small canonical log on a coarse grid.

    Each user makes 1-3 journeys starting on their first day (0..4) plus 0, 1, 7 or 8 days, often at the
    user's first time of day; a journey is 1-6 events, each one 0-90 minutes after the previous, usually the
    next funnel step from a view (sometimes from cart or checkout; else a view, a repeat, a skip or a
    non-funnel event). So simultaneous events and the exact edges of max_time
    (1 h), of the features' window (1 day) and of the funnel's window (7 days) are common, and the data ends
    at the last event (day 12 at most), so late entrants are censored. A few sessions per user (rarely one
    shared by two users); missing items, categories, prices and segment values.
    """
    rows = []
    for user in range(draw(st.integers(1, 5))):
        first_day, first_slot = draw(st.integers(0, 4)), draw(st.integers(0, 3))
        for _ in range(draw(st.integers(1, 3))):
            slot = first_slot if draw(st.booleans()) else draw(st.integers(0, 3))
            time = BASE + (first_day + draw(st.sampled_from(DAY_OFFSETS))) * DAY + slot * SLOT
            step = draw(st.sampled_from([0, 0, 0, 1, 2]))
            for _ in range(draw(st.integers(1, 6))):
                if draw(st.integers(0, 2)):  # two in three: the next step of the funnel
                    kind = EVENTS.funnel[step % len(EVENTS.funnel)]
                    step += 1
                else:
                    kind = draw(st.sampled_from(OTHER_TYPES))
                rows.append({
                    COLUMNS.user_id: f"u{user}",
                    COLUMNS.session_id: draw(st.sampled_from([f"s{user}a", f"s{user}a", f"s{user}b", "shared"])),
                    COLUMNS.event_time: time,
                    COLUMNS.event_type: kind,
                    COLUMNS.item_id: draw(st.sampled_from(["i1", "i2", "i3", "i10", None])),
                    COLUMNS.category: draw(st.sampled_from(["c1", "c2", None])),
                    COLUMNS.price: draw(st.sampled_from([5.0, 12.5, 30.25, 99.99, 0.0, None])),
                    "device": draw(st.sampled_from(["desktop", "mobile", "tablet", None])),
                    "channel": draw(st.sampled_from(["direct", "email", None])),
                })
                time += draw(st.sampled_from(GAPS)) * SLOT
    frame = pd.DataFrame(rows)
    frame[COLUMNS.event_time] = pd.to_datetime(frame[COLUMNS.event_time]).dt.as_unit("us")
    frame["device"] = frame["device"].astype("category")  # dictionary-encoded, as the simulator writes segments
    frame[COLUMNS.price] = frame[COLUMNS.price].astype(float)
    return frame


def answers(frame: pd.DataFrame, workload: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "events.parquet")
        frame.to_parquet(path, index=False)
        return answer(workload, "duckdb", path, threads=1), answer(workload, "pandas", path)


RANDOM = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def no_items_at_all() -> pd.DataFrame:
    """A random log could draw no item, category or price at all: Parquet then stores those columns with its
    null type, which pyarrow does not read as a dictionary (the pandas matrix once failed on ``.cat``)."""
    frame = pd.DataFrame({
        COLUMNS.user_id: ["u0", "u0", "u1", "u1"],
        COLUMNS.session_id: ["s0a", "s0a", "s1a", "shared"],
        COLUMNS.event_time: [BASE, BASE + SLOT, BASE + DAY, BASE + 9 * DAY],
        COLUMNS.event_type: [EVENTS.view, EVENTS.cart, EVENTS.view, EVENTS.purchase],
        COLUMNS.item_id: [None] * 4, COLUMNS.category: [None] * 4, COLUMNS.price: [None] * 4,
        "device": ["mobile", None, "desktop", "desktop"], "channel": [None] * 4,
    })
    frame[COLUMNS.event_time] = pd.to_datetime(frame[COLUMNS.event_time]).dt.as_unit("us")
    frame["device"] = frame["device"].astype("category")
    frame[COLUMNS.price] = frame[COLUMNS.price].astype(float)
    return frame


def seven_that_never_cart() -> pd.DataFrame:
    """0 of 7 units go on: statsmodels' Wilson lower bound is 2.8e-17 there, funnelkit's exactly 0."""
    rows = [(f"u{u}", f"s{u}", BASE + u * SLOT, EVENTS.view, "desktop") for u in range(7)]
    rows += [("late", "late", BASE + 30 * DAY, EVENTS.view, "mobile")]  # closes the seven's windows
    frame = pd.DataFrame(rows, columns=[COLUMNS.user_id, COLUMNS.session_id, COLUMNS.event_time,
                                        COLUMNS.event_type, "device"])
    frame[COLUMNS.event_time] = pd.to_datetime(frame[COLUMNS.event_time]).dt.as_unit("us")
    frame = frame.assign(**{COLUMNS.item_id: "i1", COLUMNS.category: "c1", COLUMNS.price: 1.0, "channel": "web"})
    frame["device"] = frame["device"].astype("category")
    return frame


@pytest.mark.parametrize("workload", list(WORKLOADS))
@RANDOM
@given(frame=random_log())
@example(frame=no_items_at_all())
@example(frame=seven_that_never_cart())
def test_workloads_agree_on_random_logs(workload, frame):
    assert_same_answer(*answers(frame, workload))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_log(), st.sampled_from(["funnel", "funnel_limits"]))
def test_pandas_units_agree_with_the_brute_force_reference(frame, workload):
    """The pandas funnel against tests/reference's literal loops (independent of both engines)."""
    spec = workloads.funnel_spec() if workload == "funnel" else workloads.funnel_limits_spec()
    data_end = frame[COLUMNS.event_time].max()
    events = pd.DataFrame({"u": pd.factorize(frame[COLUMNS.user_id], sort=True)[0],
                           "t": frame[COLUMNS.event_time].dt.as_unit("us").astype("int64").to_numpy(),
                           "et": frame[COLUMNS.event_type].to_numpy()})
    got = workloads._pandas_units(events, spec, data_end.value // 1000)
    expected = unit_results(frame, spec, data_end)
    ids = np.array(sorted(frame[COLUMNS.user_id].unique()))
    got_rows = [(ids[r.u], r.entry, r.start, r.depth, bool(r.censored),
                 *[getattr(r, f"T{k}") if k < r.depth else None for k in range(len(spec.steps))])
                for r in got.itertuples()]
    expected_rows = [(r.unit, r.entry, r.start, r.depth, bool(r.censored),
                      *[None if pd.isna(getattr(r, f"T{k}")) else int(getattr(r, f"T{k}"))
                        for k in range(len(spec.steps))])
                     for r in expected.itertuples()]
    assert sorted(got_rows) == sorted(expected_rows)


# --------------------------------------------------------------------------- known answers

def at(day: int, minutes: int = 0) -> pd.Timestamp:
    return BASE + pd.Timedelta(days=day, minutes=minutes)


def crafted(rows) -> pd.DataFrame:
    """rows: (user, time, event_type); one session per user, constant segments."""
    frame = pd.DataFrame(rows, columns=[COLUMNS.user_id, COLUMNS.event_time, COLUMNS.event_type])
    frame.insert(1, COLUMNS.session_id, "s" + frame[COLUMNS.user_id])
    frame[COLUMNS.event_time] = pd.to_datetime(frame[COLUMNS.event_time]).dt.as_unit("us")
    frame[COLUMNS.item_id], frame[COLUMNS.category], frame[COLUMNS.price] = "i1", "c1", 10.0
    frame["device"] = "mobile"
    return frame


def test_limits_take_the_deepest_attempt_and_drop_browsing_between_checkout_and_purchase():
    frame = crafted([
        # a: the first attempt's checkout comes 2 h after its cart (over max_time); a later view starts an
        # attempt whose cart and checkout are 30 min apart, and it buys: depth 4 from the second attempt
        ("a", at(0), "view"), ("a", at(0, 10), "cart"), ("a", at(0, 130), "checkout"),
        ("a", at(0, 140), "view"), ("a", at(0, 150), "cart"), ("a", at(0, 180), "checkout"),
        ("a", at(0, 200), "purchase"),
        # b: views between checkout and purchase: every attempt that reaches checkout is dropped; the view
        # after checkout starts an attempt that only reaches view
        ("b", at(0), "view"), ("b", at(0, 10), "cart"), ("b", at(0, 20), "checkout"), ("b", at(0, 25), "view"),
        ("b", at(0, 30), "purchase"),
        ("z", at(9), "view"),  # the data end, 9 days on: a and b are resolved, z is censored
    ])
    duckdb, pandas = answers(frame, "funnel_limits")
    assert_same_answer(duckdb, pandas)
    assert pandas["entrants"].tolist() == [2, 1, 1, 1]
    assert pandas["censored"].tolist() == [1, 0, 0, 0]
    minutes = 60_000_000
    assert pandas["time_from_previous_sum_us"].tolist()[1:] == [10 * minutes, 30 * minutes, 20 * minutes]
    plain = answers(frame, "funnel")[1]  # without the limits both reach purchase from their first attempt
    assert plain["entrants"].tolist() == [2, 2, 2, 2]
    # a: 10, 120, 70 minutes; b: 10, 10, 10 minutes
    assert plain["time_from_previous_sum_us"].tolist()[1:] == [20 * minutes, 130 * minutes, 80 * minutes]
    assert plain["time_from_previous_median_ns"].tolist()[1:] == [10 * minutes * 1000, 65 * minutes * 1000,
                                                                  40 * minutes * 1000]


US = pd.Timedelta(microseconds=1)


def test_funnels_at_the_exact_edges_of_max_time_exclusion_window_and_censoring():
    frame = crafted([
        ("u1", at(0), "view"), ("u1", at(0, 10), "cart"), ("u1", at(0, 70), "checkout"),  # exactly 1 h: counts
        ("u1", at(0, 80), "purchase"),
        ("u2", at(0), "view"), ("u2", at(0, 10), "cart"), ("u2", at(0, 70) + US, "checkout"),  # 1 h + 1 µs
        ("u3", at(0), "view"), ("u3", at(0, 10), "cart"), ("u3", at(0, 20), "checkout"),
        ("u3", at(0, 20), "view"), ("u3", at(0, 30), "purchase"),  # a view with the checkout: not between
        ("u4", at(0), "view"), ("u4", at(0, 10), "cart"), ("u4", at(0, 20), "checkout"),
        ("u4", at(0, 30), "purchase"), ("u4", at(0, 30), "view"),  # a view with the purchase: not between
        ("u5", at(0), "view"), ("u5", at(0, 10), "cart"), ("u5", at(0, 20), "checkout"),
        ("u5", at(7), "view"),  # no purchase, a view exactly at the end of the window: dropped
        ("u6", at(0), "view"), ("u6", at(0, 10), "cart"), ("u6", at(0, 20), "checkout"),
        ("u6", at(7) + US, "view"),  # 1 µs after the window: kept
        ("u9", at(0), "view"), ("u9", at(7), "cart"),  # a cart exactly 7 days on: reached
        ("u10", at(0), "view"), ("u10", at(7) + US, "cart"),  # 1 µs later: not reached
        ("u7", at(13), "view"),  # enters exactly 7 days before the data ends: resolved
        ("u8", at(13) + US, "view"),  # 1 µs later: censored
        ("z", at(20), "view"),  # the data end (censored)
    ])
    duckdb, pandas = answers(frame, "funnel_limits")
    assert_same_answer(duckdb, pandas)
    # depths: u1 4, u2 2, u3 4, u4 4, u5 1 (its checkout attempt dropped, the later view's attempt left), u6 3,
    # u7 1, u9 2, u10 1
    assert pandas["entrants"].tolist() == [9, 6, 4, 3]
    assert pandas["censored"].tolist() == [2, 0, 0, 0]
    assert pandas["time_from_previous_sum_us"].iloc[2] == (60 + 10 + 10 + 10) * 60_000_000  # u1, u3, u4, u6
    duckdb, pandas = answers(frame, "funnel")
    assert_same_answer(duckdb, pandas)
    assert pandas["entrants"].tolist() == [9, 7, 6, 3]  # no max_time, no exclusion: u2, u5 reach checkout


def test_features_at_the_exact_edges_of_label_window_ties_and_censoring():
    rows = [  # session, user, time, type, price, device
        ("sa", "a", at(0), "view", 10.0, "mobile"), ("sa", "a", at(0), "view", 20.0, "desktop"),
        ("sa", "a", at(0, 30), "cart", 20.0, "mobile"),
        ("sa", "a", at(1), "purchase", 20.0, "mobile"),  # exactly 1 day on: labelled
        ("sa", "a", at(1), "view", 99.0, "mobile"),  # with the label event: not before it
        ("sb0", "b", at(0), "view", None, None), ("sb0", "b", at(0), "view", 5.0, "tablet"),
        ("sb0", "b", at(1), "view", None, "mobile"), ("sb0", "b", at(1), "view", 12.5, "mobile"),
        ("sb0", "b", at(1) + US, "purchase", 12.5, "mobile"),  # 1 µs too late
        ("sb1", "b", at(2), "view", 7.0, "mobile"),
        ("sy", "y", at(8), "view", 7.0, "mobile"),  # its window closes exactly at the data end
        ("sz", "z", at(9), "view", 7.0, "mobile"),
    ]
    frame = pd.DataFrame(rows, columns=[COLUMNS.session_id, COLUMNS.user_id, COLUMNS.event_time,
                                        COLUMNS.event_type, COLUMNS.price, "device"])
    frame[COLUMNS.event_time] = pd.to_datetime(frame[COLUMNS.event_time]).dt.as_unit("us")
    frame[COLUMNS.item_id], frame[COLUMNS.category] = "i1", "c1"
    frame["device"] = frame["device"].astype("category")
    duckdb, pandas = answers(frame, "features")
    assert_same_answer(duckdb, pandas)
    table = pandas.set_index(COLUMNS.session_id)
    assert table["label"].to_dict() == {"sa": 1, "sb0": 0, "sb1": 0, "sy": 0, "sz": 0}
    assert table["censored"].to_dict() == {"sa": False, "sb0": False, "sb1": False, "sy": False, "sz": True}
    sa, sb0, sb1 = table.loc["sa"], table.loc["sb0"], table.loc["sb1"]
    assert (sa["n_view"], sa["n_cart"], sa["n_purchase"], sa["n_events"]) == (2, 1, 0, 3)
    assert sa["last_viewed_price"] == 20.0 and sa["device"] == "desktop" and sa["dwell_seconds"] == 1800.0
    assert (sb0["n_view"], sb0["n_purchase"], sb0["dwell_seconds"]) == (4, 0, 86_400.0)  # up to start + 1 day
    assert sb0["last_viewed_price"] == 12.5 and sb0["device"] == "tablet"  # a missing value ranks last
    assert sb0["price_mean"] == pytest.approx((5.0 + 12.5) / 2) and sb0["price_max"] == 12.5
    assert sb1["returning"] and sb1["days_since_last_visit"] == (86_400_000_000 - 1) / 86_400_000_000
    assert not table.loc["sa", "returning"] and np.isnan(table.loc["sa", "days_since_last_visit"])


# --------------------------------------------------------------------------- checksum

def sample() -> pd.DataFrame:
    return pd.DataFrame({
        "key": ["a", "b", "c"],
        "count": np.array([1, 2, 3], dtype=np.int64),
        "flag": [True, False, True],
        "rate": [0.1, 2 / 3, np.nan],
        "when": pd.to_datetime(["2026-09-01 00:00:00.000001", "2026-09-02 00:00:00.000000", None], utc=True),
        "sum": pd.array([None, 12_345_678_901_234_567, 7], dtype="Int64"),
        "segment": ["x", None, "y"],
    })


def test_checksum_is_16_hex_digits_and_ignores_row_column_order_and_index():
    frame = sample()
    value = checksum(frame)
    assert len(value) == 16 and int(value, 16) >= 0
    shuffled = frame.iloc[[2, 0, 1], ::-1].set_index(pd.Index([10, 20, 30]))
    assert checksum(shuffled) == value
    assert checksum(frame.copy()) == value


def test_checksum_treats_every_missing_value_alike_and_ignores_the_integer_dtype():
    frame = sample()
    other = frame.copy()
    other["segment"] = pd.Series(["x", np.nan, "y"], dtype=object)
    other["count"] = other["count"].astype("Int64")
    other["when"] = other["when"].dt.as_unit("ns")
    assert checksum(other) == checksum(frame)
    other["segment"] = other["segment"].astype("category")
    assert checksum(other) == checksum(frame)


@pytest.mark.parametrize("column, value", [
    ("key", "d"), ("count", 4), ("flag", False), ("rate", 0.1 * (1 + 1e-8)), ("rate", 0.0),
    ("when", pd.Timestamp("2026-09-01 00:00:00.000002", tz="UTC")), ("sum", 12_345_678_901_234_568),
    ("sum", None), ("segment", "x"), ("segment", "None"),
])
def test_checksum_changes_when_one_value_changes(column, value):
    frame = sample()
    changed = frame.copy()
    changed.loc[0 if column not in ("sum", "segment") else 1, column] = value
    assert checksum(changed) != checksum(frame)


def test_checksum_changes_with_a_column_name_a_duplicated_row_or_a_float_beyond_nine_digits():
    frame = sample()
    assert checksum(frame.rename(columns={"rate": "rates"})) != checksum(frame)
    assert checksum(pd.concat([frame, frame.iloc[[0]]])) != checksum(frame)
    near = frame.copy()
    near.loc[1, "rate"] = 2 / 3 * (1 + 1e-13)  # below the 30-bit resolution: the same answer
    assert checksum(near) == checksum(frame)


def test_checksum_is_the_same_in_another_process_and_on_every_machine():
    frame = sample()
    script = ("import numpy as np, pandas as pd; from benchmarks.workloads import checksum; "
              "from tests.test_benchmark_workloads import sample; print(checksum(sample()))")
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == checksum(frame)
    assert checksum(frame) == GOLDEN  # a fixed value: the serialisation and hash must not drift


GOLDEN = "abd518e89f702d43"


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads Linux /proc")
def test_tree_rss_sums_a_process_and_its_descendants():
    """Spark's JVM is a child of the case's process: the peak must count both, not the larger."""
    from benchmarks.suite import tree_rss_bytes

    hold = "import sys, time; x = bytearray(b'1' * (int(sys.argv[1]) << 20)); print(flush=True); time.sleep(60)"
    parent = subprocess.Popen([sys.executable, "-c", (
        "import subprocess, sys, time; "
        f"child = subprocess.Popen([sys.executable, '-c', {hold!r}, '150'], stdout=subprocess.PIPE); "
        "child.stdout.readline(); "
        f"exec({hold!r}.replace('int(sys.argv[1])', '100'))")], stdout=subprocess.PIPE, start_new_session=True)
    try:
        parent.stdout.readline()  # both hold their memory now
        total = tree_rss_bytes(parent.pid) / 2**20
        own = int(Path(f"/proc/{parent.pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    finally:
        os.killpg(parent.pid, 9)  # the grandchild too
        parent.wait()
    assert 100 <= own < 150 + 100
    assert total >= own + 150


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux /proc")
def test_a_childs_own_peak_excludes_the_memory_of_the_suite_that_forked_it():
    """Linux carries ru_maxrss over exec: a child of a suite that just simulated a log would report the suite's peak."""
    child = ("import resource; from benchmarks.suite import own_peak_bytes; "
             "print(own_peak_bytes() >> 20, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10)")
    parent = ("import subprocess, sys; held = bytearray(b'1' * (600 << 20)); "
              f"sys.stdout.write(subprocess.run([sys.executable, '-c', {child!r}], capture_output=True, text=True, "
              "check=True).stdout)")
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", parent], capture_output=True, text=True, check=True, cwd=root)
    own_mib, inherited_mib = map(int, out.stdout.split())
    assert inherited_mib >= 600  # what ru_maxrss says
    assert own_mib < 300
