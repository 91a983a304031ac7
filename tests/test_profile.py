"""Descriptive counts against pandas on a small log."""
import pandas as pd

from funnelkit.eventlog import EventLog
from funnelkit.profile import daily_event_counts, event_mix


def _frame():
    t0 = pd.Timestamp("2026-03-01 23:30", tz="UTC")
    rows = [("a", 0, "view"), ("a", 20, "view"), ("a", 40, "cart"), ("b", 10, "view"), ("b", 1500, "purchase")]
    return pd.DataFrame({"user_id": [r[0] for r in rows], "session_id": [r[0] for r in rows],
                         "event_time": [t0 + pd.Timedelta(minutes=r[1]) for r in rows],
                         "event_type": [r[2] for r in rows]})


def test_daily_counts_are_per_utc_day_and_type():
    frame = _frame()
    got = daily_event_counts(EventLog.from_frame(frame))
    expected = (frame.assign(day=frame["event_time"].dt.floor("D")).groupby(["day", "event_type"]).size()
                .rename("events").reset_index())
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expected, check_dtype=False)


def test_event_mix_counts_events_users_and_shares():
    mix = event_mix(EventLog.from_frame(_frame())).set_index("event_type")
    assert mix.loc["view", "events"] == 3 and mix.loc["view", "users"] == 2
    assert mix.loc["cart", "users"] == 1
    assert mix["share_of_events"].sum() == 1.0 and mix.loc["view", "share_of_events"] == 3 / 5
