"""Session and user tables: no leakage, known answers on crafted logs, a brute force
on random logs, and the simulator's planted step models recovered from the table."""
from __future__ import annotations

import inspect
import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from funnelkit.data import load_events
from funnelkit.errors import DataError, ParamsError, SchemaError
from funnelkit.eventlog import EventLog
from funnelkit.features import count_column, design_matrix, session_table
from funnelkit.params import DriversParams, SimulationParams
from funnelkit.schema import COLUMNS, EVENTS, SEGMENTS
from funnelkit.simulate import PLANTED_STEPS, REFERENCE_PRICE, simulate

C, E = COLUMNS, EVENTS
T0 = pd.Timestamp("2026-03-02", tz="UTC")  # a Monday
COUNTS = [count_column(k) for k in E.funnel]
BASELINES = {SEGMENTS.device: "desktop", SEGMENTS.channel: "organic", SEGMENTS.customer_type: "new"}


def at(day: float = 0, hour: float = 0, minute: float = 0, second: float = 0) -> pd.Timestamp:
    return T0 + pd.Timedelta(days=day, hours=hour, minutes=minute, seconds=second)


def frame_of(rows) -> pd.DataFrame:
    """rows: (user, session, time, event_type, item, category, price, device, channel)."""
    names = [C.user_id, C.session_id, C.event_time, C.event_type, C.item_id, C.category, C.price,
             SEGMENTS.device, SEGMENTS.channel]
    return pd.DataFrame([dict(zip(names, r)) for r in rows], columns=names)


def by_id(table: pd.DataFrame, column: str = C.session_id) -> dict:
    return {row[column]: row for row in table.to_dict("records")}


def assert_row(row: dict, expected: dict) -> None:
    for key, want in expected.items():
        got = row[key]
        if isinstance(want, float) and math.isnan(want):
            assert isinstance(got, float) and math.isnan(got), (key, got)
        elif isinstance(want, float):
            assert got == pytest.approx(want, rel=1e-12, abs=1e-9), (key, got, want)
        else:
            assert got == want, (key, got, want)


# --------------------------------------------------------------------------- leakage

LEAK_BEFORE = [  # the session's behaviour up to its cart
    ("u1", "s1", at(hour=9), E.view, "i1", "c1", 10.0, "mobile", "email"),
    ("u1", "s1", at(hour=9, minute=1), E.view, "i2", "c2", 30.0, "mobile", "email"),
    ("u1", "s1", at(hour=9, minute=2), E.cart, "i2", "c2", 30.0, "mobile", "email"),  # the label event
]
LEAK_AFTER = [  # would change every feature if it leaked
    ("u1", "s1", at(hour=9, minute=2), E.view, "i9", "c9", 999.0, "tablet", "social"),  # same instant: not before
    ("u1", "s1", at(hour=9, minute=3), E.view, "i3", "c3", 500.0, "tablet", "social"),
    ("u1", "s1", at(hour=9, minute=4), E.cart, "i3", "c3", 500.0, "tablet", "social"),
    ("u1", "s1", at(hour=9, minute=5), E.checkout, "i3", "c3", 500.0, "tablet", "social"),
    ("u1", "s1", at(day=1, hour=22), E.view, "i4", "c4", 900.0, "tablet", "social"),
    ("u1", "s1", at(day=1, hour=23), E.purchase, "i4", "c4", 900.0, "tablet", "social"),
]
LEAK_EXPECTED = {
    "label": 1, "cutoff": at(hour=9, minute=2), "start": at(hour=9), "censored": False,
    "n_view": 2, "n_cart": 0, "n_checkout": 0, "n_purchase": 0, "n_events": 2,
    "distinct_items": 2, "distinct_categories": 2, "dwell_seconds": 60.0,
    "price_mean": 20.0, "price_max": 30.0, "last_viewed_price": 30.0,
    "log_price": math.log(30.0 / REFERENCE_PRICE), "log_views": math.log(2),
    "hour": 9, "weekday": 0, "returning": False, "days_since_last_visit": float("nan"),
    "device": "mobile", "channel": "email",
}


def test_log_price_is_relative_to_the_reference_price_whose_default_is_the_shops():
    # one reference price everywhere by default, so the estimated log_price effect compares with the planted one
    default = inspect.signature(session_table).parameters["reference_price"].default
    assert default == DriversParams().reference_price == REFERENCE_PRICE
    row = session_table(EventLog.from_frame(frame_of(LEAK_BEFORE)), label=E.cart, reference_price=15.0).iloc[0]
    assert row["log_price"] == pytest.approx(math.log(30.0 / 15.0), rel=1e-12)


def test_features_use_only_events_before_the_label_event():
    table = session_table(EventLog.from_frame(frame_of(LEAK_BEFORE + LEAK_AFTER)), label=E.cart)
    assert len(table) == 1
    assert_row(table.iloc[0].to_dict(), LEAK_EXPECTED)


def test_appending_events_after_the_label_leaves_the_row_unchanged():
    before = session_table(EventLog.from_frame(frame_of(LEAK_BEFORE)), label=E.cart)
    with_after = session_table(EventLog.from_frame(frame_of(LEAK_BEFORE + LEAK_AFTER)), label=E.cart)
    pd.testing.assert_frame_equal(before, with_after)
    assert_row(before.iloc[0].to_dict(), LEAK_EXPECTED)


def test_a_unit_whose_first_event_is_the_label_is_kept_with_zero_behaviour():
    rows = [("u1", "s1", at(hour=3), E.cart, "i1", "c1", 20.0, "mobile", "email"),
            ("u1", "s1", at(hour=3, minute=1), E.view, "i2", "c2", 40.0, "mobile", "email")]
    row = session_table(EventLog.from_frame(frame_of(rows)), label=E.cart).iloc[0].to_dict()
    assert_row(row, {"label": 1, "cutoff": at(hour=3), **{c: 0 for c in COUNTS}, "n_events": 0,
                     "distinct_items": 0, "distinct_categories": 0, "dwell_seconds": 0.0,
                     "price_mean": float("nan"), "price_max": float("nan"), "last_viewed_price": float("nan"),
                     "log_price": float("nan"), "log_views": float("nan"), "hour": 3, "device": "mobile"})


# --------------------------------------------------------------------------- known answers

SHOP = [
    # user a: two sessions; a1 goes all the way, a2 only views (on another device)
    ("a", "a1", at(hour=9), E.view, "i1", "c1", 10.0, "mobile", "email"),
    ("a", "a1", at(hour=9, minute=1), E.view, "i1", "c1", 10.0, "mobile", "email"),
    ("a", "a1", at(hour=9, minute=3), E.view, "i2", "c1", 20.0, "mobile", "email"),
    ("a", "a1", at(hour=9, minute=4), E.cart, "i2", "c1", 20.0, "mobile", "email"),
    ("a", "a1", at(hour=9, minute=6), E.checkout, "i2", "c1", 20.0, "mobile", "email"),
    ("a", "a1", at(hour=9, minute=7), E.purchase, "i2", "c1", 20.0, "mobile", "email"),
    ("a", "a2", at(day=2, hour=21, minute=30), E.view, "i3", "c2", 40.0, "desktop", "email"),
    ("a", "a2", at(day=2, hour=21, minute=40), E.view, "i4", "c3", 80.0, "desktop", "email"),
    # user b: a session that starts with a cart (Sunday night)
    ("b", "b1", at(day=6, hour=23, minute=30), E.cart, "i5", "c2", 5.0, "desktop", "organic"),
    ("b", "b1", at(day=6, hour=23, minute=35), E.view, "i5", "c2", 5.0, "desktop", "organic"),
    # user c: carts 30 minutes after viewing
    ("c", "c1", at(day=1, hour=12), E.view, "i6", "c4", 60.0, "tablet", "social"),
    ("c", "c1", at(day=1, hour=12, minute=30), E.cart, "i6", "c4", 60.0, "tablet", "social"),
    # user d: views just before the end of the data
    ("d", "d1", at(day=6, hour=23, minute=50), E.view, "i1", "c1", 10.0, "mobile", "direct"),
    # user e: views, comes back three days later and buys
    ("e", "e1", at(hour=10), E.view, "i7", "c4", 15.0, "desktop", "organic"),
    ("e", "e2", at(day=3, hour=10), E.view, "i7", "c4", 15.0, "desktop", "organic"),
    ("e", "e2", at(day=3, hour=10, minute=2), E.cart, "i7", "c4", 15.0, "desktop", "organic"),
    ("e", "e2", at(day=3, hour=10, minute=3), E.checkout, "i7", "c4", 15.0, "desktop", "organic"),
    ("e", "e2", at(day=3, hour=10, minute=4), E.purchase, "i7", "c4", 15.0, "desktop", "organic"),
    # user f: a checkout logged before its cart
    ("f", "f1", at(day=4, hour=8), E.checkout, "i8", "c5", 7.0, "mobile", "organic"),
    ("f", "f1", at(day=4, hour=8, minute=1), E.cart, "i8", "c5", 7.0, "mobile", "organic"),
]
NAN = float("nan")


@pytest.fixture(scope="module")
def shop_log():
    return EventLog.from_frame(frame_of(SHOP))


def test_session_features_known_answers(shop_log):
    table = session_table(shop_log, label=E.cart)
    assert table[C.session_id].tolist() == ["a1", "e1", "c1", "a2", "e2", "f1", "b1", "d1"]  # by start
    assert table.columns[:2].tolist() == [C.session_id, C.user_id]
    rows = by_id(table)
    assert_row(rows["a1"], {
        C.user_id: "a", "start": at(hour=9), "label": 1, "cutoff": at(hour=9, minute=4), "censored": False,
        "n_view": 3, "n_cart": 0, "n_checkout": 0, "n_purchase": 0, "n_events": 3,
        "distinct_items": 2, "distinct_categories": 1, "dwell_seconds": 180.0,
        "price_mean": 40 / 3, "price_max": 20.0, "last_viewed_price": 20.0,
        "log_price": math.log(20 / 50), "log_views": math.log(3), "hour": 9, "weekday": 0,
        "returning": False, "days_since_last_visit": NAN, "device": "mobile", "channel": "email"})
    assert_row(rows["a2"], {
        C.user_id: "a", "label": 0, "cutoff": at(day=2, hour=21, minute=40),
        "n_view": 2, "n_events": 2, "distinct_items": 2, "distinct_categories": 2, "dwell_seconds": 600.0,
        "price_mean": 60.0, "price_max": 80.0, "last_viewed_price": 80.0, "log_price": math.log(80 / 50),
        "log_views": math.log(2), "hour": 21, "weekday": 2, "returning": True,
        "days_since_last_visit": (at(day=2, hour=21, minute=30) - at(hour=9, minute=7)) / pd.Timedelta(days=1),
        "device": "desktop", "channel": "email"})
    assert_row(rows["b1"], {
        "label": 1, "cutoff": at(day=6, hour=23, minute=30), "n_view": 0, "n_events": 0, "dwell_seconds": 0.0,
        "distinct_items": 0, "last_viewed_price": NAN, "log_views": NAN, "hour": 23, "weekday": 6,
        "returning": False, "device": "desktop", "channel": "organic"})
    assert_row(rows["c1"], {"label": 1, "n_view": 1, "dwell_seconds": 0.0, "last_viewed_price": 60.0,
                            "log_views": 0.0, "hour": 12, "weekday": 1, "device": "tablet"})
    assert_row(rows["e2"], {
        "label": 1, "n_view": 1, "n_events": 1, "returning": True, "days_since_last_visit": 3.0,
        "hour": 10, "weekday": 3})
    assert_row(rows["e1"], {"label": 0, "returning": False, "days_since_last_visit": NAN})
    assert_row(rows["f1"], {"label": 1, "n_checkout": 1, "n_cart": 0, "n_events": 1, "n_view": 0,
                            "last_viewed_price": NAN, "price_mean": 7.0, "log_price": NAN})
    assert table.dtypes["label"] == np.int64 and table.dtypes["n_view"] == np.int64
    assert str(table["start"].dt.tz) == "UTC"


def test_simultaneous_first_events_give_the_smallest_value_nulls_last():
    rows = [  # (user, session, time, type, item, category, price, device, channel)
        ("u1", "s1", at(hour=8), E.view, "i3", "c1", 10.0, "desktop", "seo"),  # used only in the last check
        ("u1", "s1", at(hour=9), E.view, "i1", "c1", 10.0, None, "email"),
        ("u1", "s1", at(hour=9), E.view, "i2", "c1", 10.0, "tablet", None),
        ("u1", "s1", at(hour=9), E.view, "i3", "c1", 10.0, "mobile", None),
        ("u2", "s2", at(hour=9), E.view, "i1", "c1", 10.0, None, None),
        ("u3", "s3", at(hour=9), E.view, "i1", "c1", 10.0, "tablet", "seo"),
        ("u0", "s3", at(hour=9), E.view, "i1", "c1", 10.0, "mobile", "email"),  # same time, smaller user
        ("u3", "s3", at(hour=10), E.view, "i1", "c1", 10.0, "desktop", "direct"),
    ]
    table = by_id(session_table(EventLog.from_frame(frame_of(rows[1:])), label=E.purchase))
    assert_row(table["s1"], {"device": "mobile", "channel": "email"})  # a NULL loses to any value
    assert table["s2"]["device"] is None and table["s2"]["channel"] is None
    assert_row(table["s3"], {C.user_id: "u0", "device": "mobile", "channel": "email"})
    assert_row(by_id(session_table(EventLog.from_frame(frame_of(rows)), label=E.purchase))["s1"],
               {"device": "desktop", "channel": "seo"})


def test_window_cuts_a_late_label_and_marks_unfinished_windows_censored(shop_log):
    table = session_table(shop_log, label=E.cart, window="20min")
    rows = by_id(table)
    # c1 carted 30 minutes in: not within 20 minutes, so 0, and its features stop at start + 20 min
    assert_row(rows["c1"], {"label": 0, "cutoff": at(day=1, hour=12, minute=20), "censored": False,
                            "n_view": 1, "n_cart": 0, "n_events": 1})
    assert_row(rows["a1"], {"label": 1, "cutoff": at(hour=9, minute=4), "n_view": 3})
    assert_row(rows["b1"], {"label": 1, "censored": False})
    # d1 started 5 minutes before the last event: its 20-minute window is still open
    assert_row(rows["d1"], {"label": 0, "censored": True, "cutoff": at(day=6, hour=24, minute=10)})
    assert table["censored"].sum() == 1
    later = session_table(shop_log, label=E.cart, window="20min", data_end=at(day=30))
    assert not later["censored"].any()
    # exactly at the window's end still counts
    assert by_id(session_table(shop_log, label=E.cart, window="30min"))["c1"]["label"] == 1


def test_user_features_known_answers(shop_log):
    table = session_table(shop_log, label=E.purchase, unit="user")
    assert table[C.user_id].tolist() == ["a", "e", "c", "f", "b", "d"]
    assert C.session_id not in table and "returning" not in table
    rows = by_id(table, C.user_id)
    assert_row(rows["a"], {
        "label": 1, "cutoff": at(hour=9, minute=7), "n_view": 3, "n_cart": 1, "n_checkout": 1, "n_purchase": 0,
        "n_events": 5, "n_sessions": 1, "distinct_items": 2, "distinct_categories": 1, "dwell_seconds": 360.0,
        "price_mean": 16.0, "price_max": 20.0, "last_viewed_price": 20.0, "hour": 9, "weekday": 0,
        "device": "mobile"})
    assert_row(rows["e"], {
        "label": 1, "cutoff": at(day=3, hour=10, minute=4), "n_view": 2, "n_cart": 1, "n_checkout": 1,
        "n_events": 4, "n_sessions": 2, "distinct_items": 1, "dwell_seconds": 3 * 86400.0 + 180,
        "log_views": math.log(2), "hour": 10, "weekday": 0, "channel": "organic"})
    assert_row(rows["b"], {"label": 0, "cutoff": at(day=6, hour=23, minute=35), "n_view": 1, "n_cart": 1,
                           "n_events": 2, "dwell_seconds": 300.0, "censored": False})
    # a two-day window from the first visit misses e's purchase on day three
    windowed = by_id(session_table(shop_log, label=E.purchase, unit="user", window="2D"), C.user_id)
    assert_row(windowed["e"], {"label": 0, "cutoff": at(day=2, hour=10), "n_view": 1, "n_cart": 0,
                               "n_sessions": 1, "n_events": 1, "dwell_seconds": 0.0, "censored": False})
    assert windowed["a"]["label"] == 1


def test_given_keeps_units_with_the_previous_step_before_the_cutoff(shop_log):
    table = session_table(shop_log, label=E.checkout, given=E.cart)
    # f1's cart came after its checkout: not a checkout given a cart
    assert table[C.session_id].tolist() == ["a1", "c1", "e2", "b1"]
    assert table["label"].tolist() == [1, 0, 1, 0]
    assert (table["n_cart"] >= 1).all()
    rows = by_id(table)
    assert_row(rows["a1"], {"cutoff": at(hour=9, minute=6), "n_view": 3, "n_cart": 1, "n_events": 4,
                            "last_viewed_price": 20.0})
    assert_row(rows["b1"], {"n_view": 1, "n_cart": 1, "last_viewed_price": 5.0})
    purchase = session_table(shop_log, label=E.purchase, given=E.checkout)
    assert purchase[C.session_id].tolist() == ["a1", "e2", "f1"]  # f1 checked out (without a cart first)
    assert purchase["label"].tolist() == [1, 1, 0]


def test_a_label_absent_from_the_log_gives_all_zeros_and_an_empty_given_gives_no_rows():
    rows = [r for r in SHOP if r[3] != E.checkout]
    log = EventLog.from_frame(frame_of(rows))
    table = session_table(log, label=E.checkout)
    assert len(table) == 8 and table["label"].eq(0).all()
    empty = session_table(log, label=E.purchase, given=E.checkout)
    assert empty.empty and "label" in empty and "log_price" in empty


def test_optional_columns_absent_drop_their_features():
    frame = frame_of(SHOP)[[C.user_id, C.session_id, C.event_time, C.event_type]]
    table = session_table(EventLog.from_frame(frame), label=E.cart)
    for column in ("distinct_items", "distinct_categories", "price_mean", "last_viewed_price", "log_price"):
        assert column not in table
    assert by_id(table)["a1"]["n_view"] == 3
    users = session_table(EventLog.from_frame(frame.drop(columns=C.session_id)), label=E.cart, unit="user")
    assert "n_sessions" not in users and len(users) == 6


# --------------------------------------------------------------------------- errors

def test_missing_columns_and_unknown_event_types_are_named():
    frame = frame_of(SHOP)
    with pytest.raises(SchemaError, match=C.event_type):
        session_table(EventLog.from_frame(frame.drop(columns=C.event_type)))
    with pytest.raises(SchemaError, match=C.session_id):
        session_table(EventLog.from_frame(frame.drop(columns=C.session_id)), unit="session")
    log = EventLog.from_frame(frame)
    with pytest.raises(SchemaError, match="purchse"):
        session_table(log, label="purchse")
    with pytest.raises(SchemaError, match="crat"):
        session_table(log, label=E.checkout, given="crat")
    with pytest.raises(DataError, match="empty"):
        session_table(EventLog.from_frame(frame.iloc[:0]))
    with pytest.raises(ParamsError, match="unit"):
        session_table(log, unit="visit")
    with pytest.raises(ParamsError, match="given"):
        session_table(log, label=E.cart, given=E.cart)
    with pytest.raises(ParamsError, match="window"):
        session_table(log, window="-1h")
    with pytest.raises(SchemaError, match="price"):
        session_table(EventLog.from_frame(frame.assign(**{C.price: "cheap"})))
    with pytest.raises(SchemaError, match="hour"):  # a segment may not shadow a feature
        session_table(EventLog.from_frame(frame.assign(hour=1)))


def test_a_non_canonical_label_present_in_the_log_is_accepted():
    rows = SHOP + [("a", "a2", at(day=2, hour=21, minute=35), "wishlist", "i3", "c2", 40.0, "desktop", "email")]
    table = session_table(EventLog.from_frame(frame_of(rows)), label="wishlist")
    assert_row(by_id(table)["a2"], {"label": 1, "n_view": 1, "n_events": 1})
    assert table["label"].sum() == 1


# --------------------------------------------------------------------------- design matrix

def test_design_matrix_encodes_segments_against_chosen_baselines():
    table = session_table(EventLog.from_frame(frame_of(SHOP)), label=E.cart)
    X, names = design_matrix(table, ["device", "channel", "log_views", "returning"],
                             baselines={"device": "desktop", "channel": "organic"})
    assert names == ["intercept", "device[mobile]", "device[tablet]", "channel[direct]", "channel[email]",
                     "channel[social]", "log_views", "returning"]
    kept = table.loc[X.index]
    assert len(X) == int(table["n_view"].gt(0).sum())  # sessions without a view have no log_views
    assert (X["intercept"] == 1.0).all()
    assert (X["device[mobile]"] == (kept["device"] == "mobile")).all()
    assert (X["returning"] == kept["returning"].astype(float)).all()
    assert X.dtypes.eq(float).all()
    # without a baseline the first level (sorted) is left out; drop_first=False keeps all
    _, first = design_matrix(table, ["device"])
    assert first == ["intercept", "device[mobile]", "device[tablet]"]
    _, every = design_matrix(table, ["device"], drop_first=False)
    assert every == ["intercept", "device[desktop]", "device[mobile]", "device[tablet]"]
    _, hours = design_matrix(table, ["hour"], categorical=["hour"])
    assert hours[1:] == [f"hour[{h}]" for h in sorted(table["hour"].unique())[1:]]


def test_design_matrix_errors():
    table = session_table(EventLog.from_frame(frame_of(SHOP)), label=E.cart)
    with pytest.raises(ParamsError, match="phone"):
        design_matrix(table, ["device"], baselines={"device": "phone"})
    with pytest.raises(ParamsError, match="log_price"):
        design_matrix(table, ["log_price"], missing="raise")
    with pytest.raises(SchemaError, match="nope"):
        design_matrix(table, ["nope"])
    with pytest.raises(ParamsError, match="channel"):
        design_matrix(table, ["device"], baselines={"channel": "organic"})


# --------------------------------------------------------------------------- brute force

def brute_force(frame: pd.DataFrame, label: str, unit: str, window, given) -> pd.DataFrame:
    """The documented rules as plain loops over raw rows (times in µs)."""
    key = C.session_id if unit == "session" else C.user_id
    window_us = None if window is None else window // pd.Timedelta(microseconds=1)
    rows = []
    for unit_id, group in frame.groupby(key):
        times = [t.value // 1000 for t in group[C.event_time]]
        kinds = list(group[C.event_type])
        start = min(times)
        labels = [t for t, k in zip(times, kinds) if k == label]
        labelled = bool(labels) and (window_us is None or min(labels) - start <= window_us)
        if labelled:
            cutoff = min(labels)
            before = [i for i, t in enumerate(times) if t < cutoff]
        else:
            cutoff = max(times) if window_us is None else start + window_us
            before = [i for i, t in enumerate(times) if t <= cutoff]
        row = {key: unit_id, "start_us": start, "label": int(labelled), "n_events": len(before),
               "distinct_items": len({group[C.item_id].iloc[i] for i in before})}
        row |= {count_column(k): sum(kinds[i] == k for i in before) for k in E.funnel}
        # the value at the first event; simultaneous first events: the smallest, nulls last
        firsts = [d for t, d in zip(times, group[SEGMENTS.device]) if t == start and d is not None]
        row[SEGMENTS.device] = min(firsts) if firsts else None
        if unit == "session":  # its user is the user of its first event; their latest event before it
            user = min(u for t, u in zip(times, group[C.user_id]) if t == start)
            earlier = [t.value // 1000 for t in frame.loc[frame[C.user_id] == user, C.event_time]
                       if t.value // 1000 < start]
            row |= {C.user_id: user, "returning": bool(earlier),
                    "days_since_last_visit": (start - max(earlier)) / 86_400e6 if earlier else np.nan}
        if given is None or any(kinds[i] == given for i in before):
            rows.append(row)
    columns = [key, "start_us", "label", "n_events", "distinct_items", *COUNTS, SEGMENTS.device]
    if unit == "session":
        columns += [C.user_id, "returning", "days_since_last_visit"]
    result = pd.DataFrame(rows, columns=columns).sort_values(["start_us", key], kind="stable")
    return result.drop(columns="start_us").reset_index(drop=True)


kinds = st.sampled_from([*E.funnel, "remove_from_cart"])
events_strategy = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 2), st.integers(0, 40), kinds, st.integers(0, 4),
              st.sampled_from([None, "mobile", "desktop"])),
    min_size=1, max_size=40)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=events_strategy, label=st.sampled_from(E.funnel), unit=st.sampled_from(["session", "user"]),
       window=st.one_of(st.none(), st.integers(1, 30)), given_kind=st.one_of(st.none(), st.sampled_from(E.funnel)))
def test_counts_and_label_agree_with_a_brute_force(events, label, unit, window, given_kind):
    if given_kind == label:
        given_kind = None
    frame = pd.DataFrame({
        C.user_id: [f"u{u}" for u, *_ in events],
        # users 2 and 3 share session ids (a session of two users; their sessions overlap in time)
        C.session_id: [f"u{min(u, 2)}s{s}" for u, s, *_ in events],
        C.event_time: [at(minute=m) for _, _, m, *_ in events],
        C.event_type: [k for *_, k, _, _ in events],
        C.item_id: [f"i{i}" for *_, i, _ in events],
        SEGMENTS.device: pd.Series([d for *_, d in events], dtype=object),
    })
    window = None if window is None else pd.Timedelta(minutes=window)
    table = session_table(EventLog.from_frame(frame), label=label, unit=unit, window=window, given=given_kind)
    expected = brute_force(frame, label, unit, window, given_kind)
    got = table[expected.columns].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)


# --------------------------------------------------------------------------- the simulated shop

SHOP_PARAMS = SimulationParams(n_users=30_000, days=14, n_bots=0, click_farm_accounts=0, fake_order_accounts=0,
                               incident_days=0)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    dataset = simulate(SHOP_PARAMS, tmp_path_factory.mktemp("shop"))
    sessions = dataset.sessions().set_index(C.session_id)
    prices = dataset.items().set_index(C.item_id)[C.price]
    sessions["target_price"] = prices.loc[sessions["target_item"]].to_numpy()
    return load_events(dataset.events_path), sessions


def test_cart_table_reproduces_the_planted_features(simulated):
    events, sessions = simulated
    table = session_table(events, label=E.cart, window="6h")
    assert set(table[C.session_id]) == set(sessions.index)
    truth = sessions.loc[table[C.session_id]]
    done = ~table["censored"].to_numpy()
    assert done.mean() > 0.95
    # the label is the simulator's outcome wherever the 6-hour window closed inside the data
    np.testing.assert_array_equal(table["label"].to_numpy()[done], (truth["reached"] >= 1).to_numpy()[done])
    # carts follow the last view: every view precedes the cart, the target is the last viewed item
    carted = table["label"].to_numpy() == 1
    assert carted.sum() > 1000
    np.testing.assert_array_equal(table["n_view"].to_numpy()[carted], truth["n_views"].to_numpy()[carted])
    np.testing.assert_array_equal(table["last_viewed_price"].to_numpy()[carted],
                                  truth["target_price"].to_numpy()[carted])
    np.testing.assert_allclose(table["log_price"].to_numpy()[carted],
                               np.log(truth["target_price"].to_numpy()[carted] / REFERENCE_PRICE), rtol=0, atol=1e-12)
    np.testing.assert_allclose(table["log_views"].to_numpy()[carted], np.log(truth["n_views"].to_numpy()[carted]),
                               rtol=0, atol=1e-12)
    # sessions without a cart whose window closed saw every planted view too
    closed = done & ~carted
    np.testing.assert_array_equal(table["n_view"].to_numpy()[closed], truth["n_views"].to_numpy()[closed])
    np.testing.assert_array_equal(table["last_viewed_price"].to_numpy()[closed],
                                  truth["target_price"].to_numpy()[closed])
    for segment in (SEGMENTS.device, SEGMENTS.channel, SEGMENTS.customer_type):
        assert table[segment].notna().all()


STEP_TABLES = {E.cart: None, E.checkout: E.cart, E.purchase: E.checkout}


@pytest.mark.parametrize("step", list(STEP_TABLES))
def test_logit_on_the_step_table_recovers_the_planted_coefficients(simulated, step):
    events, _ = simulated
    table = session_table(events, label=step, given=STEP_TABLES[step], window="6h")
    table = table[~table["censored"]]
    planted = PLANTED_STEPS[step]
    segments = sorted({name.split("[")[0] for name in planted if "[" in name})
    numeric = [name for name in ("log_price", "log_views") if name in planted]
    X, names = design_matrix(table, segments + numeric, baselines={s: BASELINES[s] for s in segments})
    fit = sm.Logit(table["label"].loc[X.index], X).fit(disp=0)
    assert len(X) == len(table)  # every session viewed something priced
    extra = set(names) - set(planted)  # segment levels planted at zero (e.g. checkout does not use channel)
    truth = pd.Series({name: planted.get(name, 0.0) for name in names})
    z = (fit.params - truth) / fit.bse
    assert z.abs().max() < 4, (z.round(2).to_dict(), extra)
