"""Loading event logs: every adapter on tiny crafted files, session derivation
against a brute force, and every bad input stopped with a message a person can act on."""
from __future__ import annotations

import gzip
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from funnelkit.data import (
    ValidationReport,
    _duplicates_sql,
    describe_source,
    load_events,
    source_fingerprint,
)
from funnelkit.engines import open_events
from funnelkit.errors import DataError, SchemaError
from funnelkit.eventlog import EventLog
from funnelkit.params import DataParams, Params, SimulationParams
from funnelkit.schema import COLUMNS, EVENTS

C = COLUMNS
REES46_HEADER = "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session"
_ITEM = "3900821,2053013552326770905,appliances.water_heater,aqua,33.20,554748717,9333dfbd"
REES46_ROWS = [
    "2019-10-01 00:00:00 UTC,view,44600062,2103807459595387724,,shiseido,35.79,541312140,72d76fde",
    f"2019-10-01 00:00:05 UTC,cart,{_ITEM}",
    f"2019-10-01 00:01:00 UTC,remove_from_cart,{_ITEM}",
    f"2019-10-01 00:02:00 UTC,purchase,{_ITEM}",
]


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def write(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def frame_of(events) -> pd.DataFrame:
    """The loaded table in a deterministic order."""
    columns = ", ".join(f'"{c}"' for c in events.columns)
    frame = events.query(f"SELECT * FROM {events.table} ORDER BY {columns}")
    frame[C.event_time] = pd.to_datetime(frame[C.event_time], utc=True)
    return frame


def column_types(events) -> dict[str, str]:
    return events.column_types()


def canonical_csv(path: Path, rows, header=(C.user_id, C.event_time, C.event_type)) -> Path:
    return write(path, [",".join(header)] + [",".join(map(str, r)) for r in rows])


# ---------------------------------------------------------------- adapters


def test_rees46_csv_maps_columns_and_keeps_brand_as_segment(tmp_path):
    events = load_events(write(tmp_path / "2019-Oct.csv", [REES46_HEADER, *REES46_ROWS]), DataParams(format="rees46"))
    assert events.columns == [C.user_id, C.session_id, C.event_time, C.event_type, C.item_id, C.category, C.price,
                              "brand"]
    assert events.segments == ("brand",)
    types = column_types(events)
    assert types[C.user_id] == types[C.session_id] == types[C.item_id] == "VARCHAR"
    assert types[C.event_time] == "TIMESTAMP WITH TIME ZONE" and types[C.price] == "DOUBLE"
    frame = frame_of(events).sort_values(C.event_time)
    assert frame[C.user_id].tolist() == ["541312140", "554748717", "554748717", "554748717"]
    assert frame[C.session_id].tolist() == ["72d76fde", "9333dfbd", "9333dfbd", "9333dfbd"]
    assert frame[C.event_time].tolist() == [utc("2019-10-01 00:00:00"), utc("2019-10-01 00:00:05"),
                                            utc("2019-10-01 00:01:00"), utc("2019-10-01 00:02:00")]
    assert frame[C.event_type].tolist() == ["view", "cart", "remove_from_cart", "purchase"]
    assert frame[C.item_id].tolist() == ["44600062", "3900821", "3900821", "3900821"]
    # an empty category_code falls back to category_id
    assert frame[C.category].tolist() == ["2103807459595387724"] + ["appliances.water_heater"] * 3
    assert frame[C.price].tolist() == [35.79, 33.2, 33.2, 33.2]
    assert frame["brand"].tolist() == ["shiseido", "aqua", "aqua", "aqua"]
    assert events.report.unmapped_events == {"remove_from_cart": 1}
    assert not events.report.sessions_derived
    assert (events.report.users, events.report.sessions) == (2, 2)


def test_gzipped_rees46_reads_like_the_plain_file(tmp_path):
    plain = write(tmp_path / "plain.csv", [REES46_HEADER, *REES46_ROWS])
    packed = tmp_path / "packed.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    schema = DataParams(format="rees46")
    pd.testing.assert_frame_equal(frame_of(load_events(packed, schema)), frame_of(load_events(plain, schema)))


def test_retailrocket_epoch_milliseconds_become_exact_utc_times(tmp_path):
    path = write(tmp_path / "events.csv", [
        "timestamp,visitorid,event,itemid,transactionid",
        "1433221332117,257597,view,355908,",
        "1433221332118,257597,addtocart,355908,",
        "1433224214164,257597,transaction,355908,4000",
    ])
    events = load_events(path, DataParams(format="retailrocket"))
    frame = frame_of(events)
    assert frame[C.event_time].tolist() == [pd.Timestamp(ms, unit="ms", tz="UTC")
                                            for ms in (1433221332117, 1433221332118, 1433224214164)]
    assert frame[C.event_time].iloc[0] == utc("2015-06-02 05:02:12.117")
    assert frame[C.event_type].tolist() == [EVENTS.view, EVENTS.cart, EVENTS.purchase]
    assert frame[C.user_id].unique().tolist() == ["257597"] and frame[C.item_id].unique().tolist() == ["355908"]
    # 48 minutes between the cart and the purchase: a second session
    assert frame[C.session_id].tolist() == ["257597:1", "257597:1", "257597:2"]
    assert events.segments == () and "transactionid" not in events.columns
    assert events.report.sessions_derived and events.report.unmapped_events == {}


def test_retailrocket_transaction_id_is_kept_when_listed_as_segment(tmp_path):
    path = write(tmp_path / "events.csv", ["timestamp,visitorid,event,itemid,transactionid",
                                           "1433224214164,1,transaction,2,4000"])
    events = load_events(path, DataParams(format="retailrocket", segments=["transactionid"]))
    assert events.segments == ("transactionid",)
    assert frame_of(events)["transactionid"].tolist() == ["4000"]


def test_ga4_microseconds_and_session_ids_unique_per_user(tmp_path):
    t0 = 1_700_000_000_123_456  # µs
    pd.DataFrame({
        "event_timestamp": [t0, t0 + 1, t0 + 2, t0 + 3],
        "event_name": ["page_view", "view_item", "add_to_cart", "view_item"],
        "user_pseudo_id": ["a.1", "a.1", "a.1", "b.2"],
        "ga_session_id": [1700000000, 1700000000, 1700000000, 1700000000],  # same number, two users
        "item_id": [None, "SKU1", "SKU1", "SKU2"],
        "item_category": [None, "Shoes", "Shoes", "Hats"],
        "price": [None, 59.9, 59.9, 12.0],
        "device_category": ["mobile", "mobile", "mobile", "desktop"],
    }).to_parquet(tmp_path / "ga4.parquet")
    events = load_events(tmp_path / "ga4.parquet", DataParams(format="ga4"))
    frame = frame_of(events).sort_values(C.event_time)
    assert frame[C.event_time].iloc[0] == utc("2023-11-14 22:13:20.123456")
    assert frame[C.event_time].tolist() == [pd.Timestamp(t0 + k, unit="us", tz="UTC") for k in range(4)]
    assert frame[C.session_id].tolist() == ["a.1:1700000000"] * 3 + ["b.2:1700000000"]
    assert frame[C.event_type].tolist() == ["page_view", EVENTS.view, EVENTS.cart, EVENTS.view]
    assert frame[C.category].tolist()[1:] == ["Shoes", "Shoes", "Hats"]
    assert events.segments == ("device_category",)
    assert events.report.unmapped_events == {"page_view": 1}
    assert events.report.sessions == 2


def test_custom_mapping_renames_columns_events_and_limits_segments(tmp_path):
    path = write(tmp_path / "clicks.csv", [
        "visitor,ts,action,sku,cost,device,campaign",
        "007,1700000000,pageview,A,1.5,mobile,x",
        "007,1700000060,add,A,1.5,mobile,x",
        "008,1700000120,order,B,2,desktop,y",
    ])
    schema = DataParams(
        format="custom", timestamp_unit="s", segments=["device"],
        columns={C.user_id: "visitor", C.event_time: "ts", C.event_type: "action", C.item_id: "sku",
                 C.price: "cost"},
        event_names={"pageview": EVENTS.view, "add": EVENTS.cart, "order": EVENTS.purchase},
    )
    events = load_events(path, schema)
    assert events.columns == [C.user_id, C.session_id, C.event_time, C.event_type, C.item_id, C.price, "device"]
    frame = frame_of(events)
    assert frame[C.user_id].tolist() == ["007", "007", "008"]  # leading zeros survive
    assert frame[C.event_time].tolist() == [pd.Timestamp(s, unit="s", tz="UTC")
                                            for s in (1700000000, 1700000060, 1700000120)]
    assert frame[C.event_type].tolist() == [EVENTS.view, EVENTS.cart, EVENTS.purchase]
    assert frame[C.price].tolist() == [1.5, 1.5, 2.0]
    assert frame[C.session_id].tolist() == ["007:1", "007:1", "008:1"]


def test_event_names_override_the_format_mapping(tmp_path):
    path = write(tmp_path / "r.csv", [REES46_HEADER, *REES46_ROWS])
    events = load_events(path, DataParams(format="rees46", event_names={"remove_from_cart": "unbasket"}))
    assert "unbasket" in frame_of(events)[C.event_type].tolist()
    assert events.report.unmapped_events == {"unbasket": 1}


def test_canonical_parquet_keeps_times_and_makes_ids_text(tmp_path):
    times = pd.to_datetime(["2026-09-01 10:00", "2026-09-01 10:05", "2026-09-02 08:00"]).tz_localize("UTC")
    pd.DataFrame({
        C.user_id: [1, 1, 2], C.session_id: [10, 10, 11], C.event_time: times,
        C.event_type: ["view", "cart", "view"], C.item_id: [5, 6, 5], C.category: ["c1", "c2", "c1"],
        C.price: [9.5, 3.0, 9.5], "device": ["mobile"] * 3, "channel": ["ads", "ads", "seo"],
        "country": ["DE"] * 3, "customer_type": ["new", "new", "returning"],
    }).to_parquet(tmp_path / "events.parquet")
    events = load_events(tmp_path / "events.parquet")
    assert events.columns == [*C.canonical, "device", "channel", "country", "customer_type"]
    assert events.segments == ("device", "channel", "country", "customer_type")
    frame = frame_of(events)
    assert frame[C.user_id].tolist() == ["1", "1", "2"] and frame[C.session_id].tolist() == ["10", "10", "11"]
    assert frame[C.item_id].tolist() == ["5", "6", "5"]
    assert frame[C.event_time].tolist() == list(times)
    assert events.report.time_zone.startswith("stored with a time zone")


def test_folder_of_csv_files_is_read_recursively(tmp_path):
    canonical_csv(tmp_path / "logs" / "a.csv", [("u1", "2026-01-01T00:00:00Z", "view")])
    canonical_csv(tmp_path / "logs" / "2026" / "b.csv", [("u2", "2026-01-02T00:00:00Z", "cart")])
    write(tmp_path / "logs" / "README.txt", ["not data"])
    write(tmp_path / "logs" / "_SUCCESS", [""])
    events = load_events(tmp_path / "logs")
    frame = frame_of(events)
    assert frame[[C.user_id, C.event_type]].values.tolist() == [["u1", "view"], ["u2", "cart"]]
    assert events.report.files == 2 and events.source == str(tmp_path / "logs")


def test_a_file_of_a_folder_lacking_a_column_is_named(tmp_path):
    canonical_csv(tmp_path / "logs" / "a.csv", [("u1", "2026-01-01T00:00:00Z", "view")])
    write(tmp_path / "logs" / "b.csv", ["event_time,event_type", "2026-01-02T00:00:00Z,cart"])
    with pytest.raises(SchemaError, match=r"b\.csv in .*logs: column\(s\) \['user_id'\] not found; columns found: "
                                          r"event_time, event_type"):
        load_events(tmp_path / "logs")


def test_folder_mixing_csv_and_parquet_is_refused(tmp_path):
    canonical_csv(tmp_path / "a.csv", [("u1", "2026-01-01T00:00:00Z", "view")])
    pd.DataFrame({C.user_id: ["u"]}).to_parquet(tmp_path / "b.parquet")
    with pytest.raises(DataError, match="mixes CSV and Parquet"):
        load_events(tmp_path)


# ---------------------------------------------------------------- sessions


def brute_force_sessions(frame: pd.DataFrame, gap_minutes: float) -> list[tuple]:
    out = []
    for user, group in frame.groupby(C.user_id):
        number, previous = 0, None
        for t in sorted(group[C.event_time]):
            if previous is None or (t - previous) > pd.Timedelta(minutes=gap_minutes):
                number += 1
            out.append((user, t, f"{user}:{number}"))
            previous = t
    return sorted(out)


@settings(max_examples=50, deadline=None)
@given(
    # times on a 2.5-minute grid and gaps on the same grid: gaps exactly equal to the threshold are common
    rows=st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 48)), min_size=1, max_size=40),
    gap=st.sampled_from([2.5, 5, 7.5, 30]),
)
def test_derived_sessions_match_brute_force(rows, gap):
    t0 = pd.Timestamp("2026-03-01", tz="UTC")
    frame = pd.DataFrame({
        C.user_id: [u for u, _ in rows],
        C.event_time: [t0 + pd.Timedelta(minutes=2.5 * k) for _, k in rows],
        C.event_type: "view",
    })
    with tempfile.TemporaryDirectory() as folder:
        frame.to_parquet(Path(folder) / "e.parquet")
        events = load_events(Path(folder) / "e.parquet", DataParams(session_gap_minutes=gap))
        got = frame_of(events)
    assert sorted(zip(got[C.user_id], got[C.event_time], got[C.session_id])) == brute_force_sessions(frame, gap)
    assert events.report.sessions == len({s for *_, s in brute_force_sessions(frame, gap)})


def test_gap_equal_to_threshold_continues_the_session(tmp_path):
    path = canonical_csv(tmp_path / "e.csv", [
        ("u", "2026-01-01T00:00:00Z", "view"),
        ("u", "2026-01-01T00:30:00Z", "view"),      # exactly 30 minutes: same session
        ("u", "2026-01-01T01:00:00.001Z", "cart"),  # 30 min + 1 ms: new session
        ("v", "2026-01-01T01:00:00.001Z", "view"),
    ])
    frame = frame_of(load_events(path))
    assert frame[C.session_id].tolist() == ["u:1", "u:1", "u:2", "v:1"]


# ---------------------------------------------------------------- time zones


def test_offsets_and_zone_names_are_converted_to_utc(tmp_path):
    path = canonical_csv(tmp_path / "e.csv", [
        ("u", "2026-01-01 02:00:00+02:00", "view"),
        ("u", "2026-01-01T00:10:00Z", "view"),
        ("u", "2026-01-01 00:20:00 UTC", "view"),
        ("u", "2025-12-31 19:30:00 EST", "view"),
        ("u", "2025-12-31 21:40:00 America/Argentina/Buenos_Aires", "view"),
        ("u", "2025-12-31 21:50:00 Etc/GMT+3", "view"),
    ])
    events = load_events(path)
    assert frame_of(events)[C.event_time].tolist() == [utc("2026-01-01 00:00"), utc("2026-01-01 00:10"),
                                                       utc("2026-01-01 00:20"), utc("2026-01-01 00:30"),
                                                       utc("2026-01-01 00:40"), utc("2026-01-01 00:50")]


def test_zone_names_are_never_silently_ignored(tmp_path):
    """With assume_timezone set, a zone written in the data still wins over the assumption."""
    path = canonical_csv(tmp_path / "e.csv", [("u", "2026-01-01 10:00:00 EST", "view")])
    events = load_events(path, DataParams(assume_timezone="UTC"))
    assert frame_of(events)[C.event_time].tolist() == [utc("2026-01-01 15:00")]


def test_an_unknown_zone_name_is_an_unparsable_timestamp(tmp_path):
    path = canonical_csv(tmp_path / "e.csv", [("u", "2026-01-01 10:00:00", "view"), ("u", "2026-01-01 10:00:00 XYZ", "view")])
    with pytest.raises(DataError, match="1 timestamps cannot be parsed; first at row 2") as info:
        load_events(path, DataParams(assume_timezone="UTC"))
    assert "XYZ" in str(info.value)


def test_naive_times_are_read_in_the_assumed_zone(tmp_path):
    path = canonical_csv(tmp_path / "e.csv", [("u", "2026-07-01 02:00:00", "view")])
    events = load_events(path, DataParams(assume_timezone="Europe/Berlin"))
    assert frame_of(events)[C.event_time].tolist() == [utc("2026-07-01 00:00")]
    assert "Europe/Berlin" in events.report.time_zone


def test_naive_times_without_assumed_zone_are_refused(tmp_path):
    path = canonical_csv(tmp_path / "e.csv", [("u", "2026-07-01 02:00:00", "view")] * 2)
    with pytest.raises(SchemaError, match="data.assume_timezone") as info:
        load_events(path)
    assert "e.csv" in str(info.value) and C.event_time in str(info.value) and "2 times" in str(info.value)


def test_naive_parquet_timestamps_follow_the_assumed_zone_rule(tmp_path):
    pd.DataFrame({C.user_id: ["u"], C.event_time: [pd.Timestamp("2026-01-01 09:00")], C.event_type: ["view"]}
                 ).to_parquet(tmp_path / "e.parquet")
    with pytest.raises(SchemaError, match="assume_timezone"):
        load_events(tmp_path / "e.parquet")
    events = load_events(tmp_path / "e.parquet", DataParams(assume_timezone="America/New_York"))
    assert frame_of(events)[C.event_time].tolist() == [utc("2026-01-01 14:00")]


def test_mixed_time_zones_are_refused_with_counts_and_first_naive_row(tmp_path):
    path = canonical_csv(tmp_path / "e.csv", [
        ("u", "2026-01-01T00:00:00Z", "view"),
        ("u", "2026-01-01T00:01:00Z", "view"),
        ("u", "2026-01-01 00:02:00", "view"),
    ])
    with pytest.raises(DataError, match="mixed time zones") as info:
        load_events(path, DataParams(assume_timezone="UTC"))
    message = str(info.value)
    assert "1 times have no zone while 2 have one" in message
    assert "row 3 (line 4)" in message and "'2026-01-01 00:02:00'" in message


def test_unknown_assumed_zone_is_refused(tmp_path):
    path = canonical_csv(tmp_path / "e.csv", [("u", "2026-07-01 02:00:00", "view")])
    with pytest.raises(SchemaError, match="Mars/Olympus"):
        load_events(path, DataParams(assume_timezone="Mars/Olympus"))


def test_numeric_timestamps_need_a_unit(tmp_path):
    path = canonical_csv(tmp_path / "e.csv", [("u", 1700000000, "view")])
    with pytest.raises(SchemaError, match="timestamp_unit"):
        load_events(path, DataParams(format="custom"))


# ---------------------------------------------------------------- bad inputs


def test_missing_column_names_canonical_and_source_column_and_lists_columns_found(tmp_path):
    path = write(tmp_path / "events.csv", ["timestamp,visitor,event,itemid", "1433221332117,1,view,2"])
    with pytest.raises(SchemaError) as info:
        load_events(path, DataParams(format="retailrocket"))
    message = str(info.value)
    assert str(path) in message and "'user_id'" in message and "'visitorid'" in message
    assert "columns found: timestamp, visitor, event, itemid" in message


def test_unparsable_timestamps_report_count_and_first_row(tmp_path):
    path = canonical_csv(tmp_path / "e.csv", [
        ("u", "2026-01-01T00:00:00Z", "view"),
        ("u", "2026-13-45T00:00:00Z", "view"),
        ("u", "2026-01-01T00:00:01Z", "view"),
        ("u", "yesterday at noonZ", "view"),
    ])
    with pytest.raises(DataError) as info:
        load_events(path)
    message = str(info.value)
    assert "2 timestamps cannot be parsed" in message and "'event_time'" in message
    assert "row 2 (line 3): '2026-13-45T00:00:00Z'" in message and "e.csv" in message


def test_first_bad_row_names_the_file_within_a_folder(tmp_path):
    canonical_csv(tmp_path / "d" / "a.csv", [("u", "2026-01-01T00:00:00Z", "view")])
    canonical_csv(tmp_path / "d" / "b.csv", [("u", "2026-01-01T00:00:00Z", "view"), ("u", "garbageZ", "view")])
    with pytest.raises(DataError, match=r"b\.csv row 2 \(line 3\): 'garbageZ'"):
        load_events(tmp_path / "d")


def test_null_user_ids_are_an_error_by_default(tmp_path):
    path = canonical_csv(tmp_path / "e.csv", [
        ("u", "2026-01-01T00:00:00Z", "view"), ("", "2026-01-01T00:00:01Z", "view"),
        ("", "2026-01-01T00:00:02Z", "cart"),
    ])
    with pytest.raises(DataError) as info:
        load_events(path)
    message = str(info.value)
    assert "2 rows have no user_id" in message and "row 2" in message and "null_ids: drop" in message


def test_null_user_ids_are_dropped_and_counted_when_asked(tmp_path):
    path = canonical_csv(tmp_path / "e.csv", [
        ("u", "2026-01-01T00:00:00Z", "view"), ("", "2026-01-01T00:00:01Z", "view"),
        ("", "2026-01-01T00:00:02Z", "cart"),
    ])
    events = load_events(path, DataParams(null_ids="drop"))
    assert events.report.null_ids_dropped == 2
    assert (events.report.rows_read, events.report.rows_kept) == (3, 1)
    assert frame_of(events)[C.user_id].tolist() == ["u"]


def test_null_session_ids_from_the_source_are_checked(tmp_path):
    rows = [REES46_ROWS[0], REES46_ROWS[1].rsplit(",", 1)[0] + ","]
    path = write(tmp_path / "r.csv", [REES46_HEADER, *rows])
    with pytest.raises(DataError, match=r"'user_session': 1 rows have no session_id; first at row 2"):
        load_events(path, DataParams(format="rees46"))
    assert load_events(path, DataParams(format="rees46", null_ids="drop")).report.null_ids_dropped == 1


def test_unparsable_prices_are_reported(tmp_path):
    rows = [REES46_ROWS[0], REES46_ROWS[1].replace("33.20", "cheap")]
    with pytest.raises(DataError, match=r"'price': 1 prices are not numbers; first at row 2 \(line 3\): 'cheap'"):
        load_events(write(tmp_path / "r.csv", [REES46_HEADER, *rows]), DataParams(format="rees46"))


def test_unmapped_event_names_are_counted_and_kept(tmp_path):
    path = canonical_csv(tmp_path / "e.csv", [
        ("u", "2026-01-01T00:00:00Z", "view"), ("u", "2026-01-01T00:00:01Z", "wishlist"),
        ("u", "2026-01-01T00:00:02Z", "wishlist"), ("u", "2026-01-01T00:00:03Z", "share"),
    ])
    events = load_events(path)
    assert events.report.unmapped_events == {"wishlist": 2, "share": 1}
    assert events.report.rows_kept == 4
    assert sorted(frame_of(events)[C.event_type]) == ["share", "view", "wishlist", "wishlist"]


def test_duplicates_are_counted_and_dropped_only_with_the_flag(tmp_path):
    row = ("u", "2026-01-01T00:00:00Z", "view")
    path = canonical_csv(tmp_path / "e.csv", [row, row, row, ("u", "2026-01-01T00:00:00Z", "cart")])
    kept = load_events(path)
    assert (kept.report.duplicates, kept.report.rows_kept, kept.report.duplicates_dropped) == (2, 4, False)
    dropped = load_events(path, DataParams(drop_duplicates=True))
    assert (dropped.report.duplicates, dropped.report.rows_kept, dropped.report.duplicates_dropped) == (2, 2, True)
    assert sorted(frame_of(dropped)[C.event_type]) == ["cart", "view"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["a", "b"]), st.integers(0, 2), st.sampled_from(["view", "cart"]),
                          st.sampled_from([1.0, 2.0, None]), st.sampled_from(["m", None])), min_size=1, max_size=25))
def test_exact_copies_are_counted_among_rows_that_share_their_user_and_time(engine, rows):
    # the count looks for copies only among rows of one user and instant: equal to pandas' over whole rows,
    # NULLs equal to NULLs, whatever the other columns
    frame = pd.DataFrame(rows, columns=[C.user_id, "second", C.event_type, C.price, "device"])
    frame[C.event_time] = pd.to_datetime(frame.pop("second"), unit="s", utc=True)
    frame[C.session_id] = frame[C.user_id]
    frame[C.price], frame["device"] = frame[C.price].astype(float), frame["device"].astype("string")
    log = EventLog.from_frame(frame, engine)
    assert log.rows(_duplicates_sql(log.table, log.columns))[0][0] == frame.duplicated().sum()


@pytest.mark.parametrize("content", ["", "user_id,event_time,event_type\n"], ids=["zero_bytes", "header_only"])
def test_empty_input_is_a_data_error(tmp_path, content):
    path = tmp_path / "e.csv"
    path.write_text(content)
    with pytest.raises(DataError, match="no events") as info:
        load_events(path)
    assert str(path) in str(info.value)


def test_ragged_csv_is_a_data_error_naming_the_line(tmp_path):
    good = ("u", "2026-01-01T00:00:00Z", "view")
    path = canonical_csv(tmp_path / "e.csv", [good] * 30_000 + [(*good, "extra")] + [good] * 5)
    with pytest.raises(DataError, match=r"e\.csv: could not be read as comma-separated CSV.*Line: 30002"):
        load_events(path)
    # a short ragged file must not have its rows skipped by the dialect sniffer
    short = canonical_csv(tmp_path / "short.csv", [good, (*good, "extra", "more")])
    with pytest.raises(DataError, match="could not be read"):
        load_events(short)


def test_events_live_in_the_given_connection_without_leftovers(tmp_path):
    from funnelkit.engines.duckdb import connect

    con = connect()
    good = canonical_csv(tmp_path / "good.csv", [("u", "2026-01-01T00:00:00Z", "view")])
    bad = canonical_csv(tmp_path / "bad.csv", [("", "2026-01-01T00:00:00Z", "view")])
    with pytest.raises(DataError):
        load_events(bad, con=con)
    events = load_events(good, con=con)
    assert events.engine.con is con
    names = {row[0] for row in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert names == {events.table}


def test_missing_path_is_a_data_error_naming_it(tmp_path):
    with pytest.raises(DataError, match="not found") as info:
        load_events(tmp_path / "nowhere.csv")
    assert str(tmp_path / "nowhere.csv") in str(info.value)


def test_folder_without_data_files_is_a_data_error(tmp_path):
    write(tmp_path / "notes.txt", ["hello"])
    with pytest.raises(DataError, match="no .csv, .csv.gz or .parquet"):
        load_events(tmp_path)


def test_unknown_column_mapping_key_is_a_schema_error(tmp_path):
    path = canonical_csv(tmp_path / "e.csv", [("u", "2026-01-01T00:00:00Z", "view")])
    with pytest.raises(SchemaError, match="userid"):
        load_events(path, DataParams(format="custom", columns={"userid": "user_id"}))


def test_input_file_is_never_modified(tmp_path):
    path = write(tmp_path / "r.csv", [REES46_HEADER, *REES46_ROWS, REES46_ROWS[0]])
    os.utime(path, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    before, stat = path.read_bytes(), path.stat()
    load_events(path, DataParams(format="rees46", drop_duplicates=True))
    assert path.read_bytes() == before and path.stat().st_mtime_ns == stat.st_mtime_ns
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv"]


# ---------------------------------------------------------------- report, fingerprint, params


def test_report_frame_is_readable(tmp_path):
    row = ("u", "2026-01-01T00:00:00Z", "view")
    path = canonical_csv(tmp_path / "e.csv", [*([row] * 1001), ("v", "2026-01-02T10:00:00Z", "share")])
    report = load_events(path).report
    assert isinstance(report, ValidationReport)
    frame = report.to_frame()
    assert frame.columns.tolist() == ["check", "value"]
    values = dict(zip(frame["check"], frame["value"]))
    assert values["Source"] == str(path) and values["Read as"] == "canonical format, 1 file"
    assert values["Events read"] == "1,002" and values["Events kept"] == "1,002"
    assert values["Exact duplicate rows"].startswith("1,000, kept")
    assert values["Event names outside view/cart/checkout/purchase (kept)"] == "share: 1"
    assert values["First event"] == "2026-01-01 00:00:00 UTC" and values["Last event"] == "2026-01-02 10:00:00 UTC"
    assert values["Users"] == "2"
    assert values["Sessions"] == "2 (derived: a new session after 30 minutes without events)"
    assert all(isinstance(v, str) for v in frame["value"])


def test_fingerprint_follows_content_not_mtime_or_location(tmp_path):
    path = write(tmp_path / "a" / "e.csv", ["user_id,event_time,event_type", "u,2026-01-01T00:00:00Z,view"])
    first = source_fingerprint(path)
    assert len(first) == 16 and int(first, 16) >= 0
    os.utime(path, (1_000_000, 1_000_000))
    assert source_fingerprint(path) == first
    copy = write(tmp_path / "b" / "e.csv", path.read_text().splitlines())
    assert source_fingerprint(copy) == first
    path.write_text(path.read_text().replace("view", "cart"))
    assert source_fingerprint(path) != first
    # a folder covers relative paths too: renaming a file changes it
    folder = source_fingerprint(tmp_path / "b")
    copy.rename(tmp_path / "b" / "f.csv")
    assert source_fingerprint(tmp_path / "b") != folder


def test_params_with_a_source_load_that_source(tmp_path):
    path = write(tmp_path / "r.csv", [REES46_HEADER, *REES46_ROWS])
    params = Params(data=DataParams(source=path, format="rees46"))
    events = open_events(params)
    assert events.report.rows_kept == 4 and events.source == str(path)
    assert describe_source(params) == (str(path), source_fingerprint(path))


def test_a_spark_table_is_described_without_reading_it():
    # hashing a table of the Spark session would start a JVM before any notebook: no fingerprint
    params = Params.model_validate({"engine": {"name": "spark", "spark": {"table": "lake.events"}}})
    assert describe_source(params) == ("Spark table lake.events", "")


def test_describe_source_refuses_a_missing_path(tmp_path):
    with pytest.raises(DataError, match="not found"):
        describe_source(Params(data=DataParams(source=tmp_path / "gone.csv")))


def test_simulated_shop_loads_as_canonical_events(tmp_path):
    simulate = pytest.importorskip("funnelkit.simulate")
    params = Params(simulation=SimulationParams(n_users=200, days=7, n_items=50, cache_dir=tmp_path))
    label, fingerprint = describe_source(params)
    assert label.startswith("built-in simulated shop (seed 7")
    assert fingerprint == simulate.ensure_dataset(params.simulation).fingerprint
    events = open_events(params)
    assert events.source == label and events.report.rows_kept > 0
    assert events.columns[:4] == [C.user_id, C.session_id, C.event_time, C.event_type]
    assert column_types(events)[C.event_time] == "TIMESTAMP WITH TIME ZONE"
    assert np.isin(list(events.report.unmapped_events), list(EVENTS.funnel)).sum() == 0


# ---------------------------------------------------------------- issue 17: silent wrong answers in loading


def test_a_mapping_onto_an_event_name_the_log_already_holds_is_refused(tmp_path):
    """Raw ``cart`` (a cart-page view) and ``add_to_cart -> cart`` would be counted as one step."""
    path = canonical_csv(tmp_path / "e.csv", [("u", "2026-01-01T00:00:00Z", "cart")] * 2
                         + [("u", "2026-01-01T00:01:00Z", "add_to_cart")] * 3 + [("u", "2026-01-01T00:02:00Z", "view")])
    with pytest.raises(SchemaError) as info:
        load_events(path, DataParams(event_names={"add_to_cart": EVENTS.cart}))
    message = str(info.value)
    assert "'add_to_cart' (3 events)" in message and "'cart' (2 events)" in message
    assert "data.merge_event_names" in message and "e.csv" in message
    merged = load_events(path, DataParams(event_names={"add_to_cart": EVENTS.cart}, merge_event_names=True))
    assert sorted(frame_of(merged)[C.event_type]) == [EVENTS.cart] * 5 + [EVENTS.view]


def test_a_format_mapping_onto_a_raw_event_name_is_refused_too(tmp_path):
    path = write(tmp_path / "events.csv", ["timestamp,visitorid,event,itemid,transactionid",
                                           "1433221332117,1,addtocart,2,", "1433221332118,1,cart,2,",
                                           "1433221332119,1,cart,2,"])
    with pytest.raises(SchemaError, match=r"format 'retailrocket' maps 'addtocart' \(1 events?\) to 'cart'.*"
                                          r"'cart' \(2 events\)"):
        load_events(path, DataParams(format="retailrocket"))


def test_a_mapping_onto_a_name_the_format_maps_to_itself_is_refused(tmp_path):
    """REES46 maps its own ``cart`` to cart: mapping ``remove_from_cart`` there too would merge them."""
    path = write(tmp_path / "r.csv", [REES46_HEADER, *REES46_ROWS])
    with pytest.raises(SchemaError, match=r"data.event_names maps 'remove_from_cart' \(1 event\) to 'cart'.*"
                                          r"'cart' \(1 event\)"):
        load_events(path, DataParams(format="rees46", event_names={"remove_from_cart": EVENTS.cart}))


def test_a_raw_name_mapped_away_is_no_merge(tmp_path):
    path = canonical_csv(tmp_path / "e.csv", [("u", "2026-01-01T00:00:00Z", "cart"),
                                              ("u", "2026-01-01T00:01:00Z", "add_to_cart")])
    events = load_events(path, DataParams(event_names={"cart": "cart_page", "add_to_cart": EVENTS.cart}))
    assert sorted(frame_of(events)[C.event_type]) == [EVENTS.cart, "cart_page"]
    # two raw names the user sends to one new name on purpose are no surprise either
    both = load_events(path, DataParams(event_names={"cart": "basket", "add_to_cart": "basket"}))
    assert frame_of(both)[C.event_type].tolist() == ["basket", "basket"]


@pytest.mark.parametrize("name, decoy", [("ev[1].csv", "ev1.csv"), ("a*b.csv", "aXb.csv"), ("q?.csv", "qq.csv")])
def test_a_file_name_with_glob_characters_is_read_exactly(tmp_path, name, decoy):
    canonical_csv(tmp_path / decoy, [("decoy", "2026-01-01T00:00:00Z", "view")])
    path = canonical_csv(tmp_path / name, [("mine", "2026-01-01T00:00:00Z", "view")])
    events = load_events(path)
    assert frame_of(events)[C.user_id].tolist() == ["mine"]
    assert events.report.files == 1 and events.report.rows_read == 1
    # and the fingerprint covers that same file: changing the decoy changes nothing
    before = source_fingerprint(path)
    canonical_csv(tmp_path / decoy, [("decoy", "2026-01-02T00:00:00Z", "cart")])
    assert source_fingerprint(path) == before


def test_a_folder_with_glob_characters_in_its_names_is_read_file_by_file(tmp_path):
    canonical_csv(tmp_path / "logs[1]" / "a*.csv", [("u1", "2026-01-01T00:00:00Z", "view")])
    canonical_csv(tmp_path / "logs[1]" / "d[2]" / "b.csv", [("u2", "2026-01-02T00:00:00Z", "cart")])
    canonical_csv(tmp_path / "logs1" / "a.csv", [("decoy", "2026-01-01T00:00:00Z", "view")])
    events = load_events(tmp_path / "logs[1]")
    assert frame_of(events)[C.user_id].tolist() == ["u1", "u2"] and events.report.files == 2


def test_a_name_duckdb_cannot_read_exactly_is_an_error_not_another_file(tmp_path):
    canonical_csv(tmp_path / "b[c.csv", [("decoy", "2026-01-01T00:00:00Z", "view")])
    path = canonical_csv(tmp_path / "b\\[c.csv", [("mine", "2026-01-01T00:00:00Z", "view")])
    with pytest.raises(DataError, match=r"b\\\[c\.csv: DuckDB cannot read a file under this name.*rename"):
        load_events(path)


def bulk_rows(n: int = 200, days: int = 10, start: str = "2026-03-01") -> list[tuple]:
    """``n`` events spread evenly over ``days`` days, for logs with a few odd times added."""
    t0 = pd.Timestamp(start, tz="UTC")
    return [(f"u{i % 40}", (t0 + pd.Timedelta(days=days) * i / n).strftime("%Y-%m-%dT%H:%M:%SZ"), "view")
            for i in range(n)]


def test_a_lone_event_far_from_the_bulk_is_excluded_counted_and_does_not_move_the_data_end(tmp_path):
    rows = bulk_rows() + [("late", "2099-01-01T00:00:00Z", "purchase"), ("early", "1970-01-01T00:00:00Z", "view")]
    events = load_events(canonical_csv(tmp_path / "e.csv", rows))
    report = events.report
    assert (report.rows_read, report.rows_kept) == (202, 200)
    assert (report.excluded_before, report.excluded_after) == (1, 1)
    last = max(pd.Timestamp(t) for _, t, _ in bulk_rows())
    assert events.data_end == last == report.last_event
    assert report.first_event == utc("2026-03-01")
    assert set(frame_of(events)[C.user_id]) == {f"u{i}" for i in range(40)}
    values = dict(zip(*report.to_frame().T.values))
    assert values["Events outside the plausible time range (excluded)"].startswith("2: 1 before 2026-")
    assert any("2 events outside" in w for w in report.warnings())
    kept = load_events(canonical_csv(tmp_path / "e.csv", rows), DataParams(time_range="all"))
    assert kept.report.rows_kept == 202 and kept.data_end == utc("2099-01-01")


def test_a_lone_far_event_in_a_small_log_is_excluded(tmp_path):
    events = load_events(canonical_csv(tmp_path / "e.csv", bulk_rows(20) + [("late", "2031-01-01T00:00:00Z", "view")]))
    assert (events.report.rows_kept, events.report.excluded_after) == (20, 1)


def test_the_auto_range_starts_and_ends_at_midnight_and_counts_exactly_what_it_drops(tmp_path):
    """Bulk 2026-03-01 to 03-10 (10 days), widened by 10 days: kept from 02-19 00:00 up to 03-21 00:00."""
    edges = [("a", "2026-02-18T23:59:59Z", "view"), ("b", "2026-02-19T00:00:00Z", "view"),
             ("c", "2026-03-20T23:59:59Z", "view"), ("d", "2026-03-21T00:00:00Z", "view")]
    events = load_events(canonical_csv(tmp_path / "e.csv", bulk_rows() + edges))
    assert {"b", "c"} <= set(frame_of(events)[C.user_id]) and not {"a", "d"} & set(frame_of(events)[C.user_id])
    report = events.report
    assert (report.excluded_before, report.excluded_after, report.rows_kept) == (1, 1, 202)
    assert (report.range_start, report.range_end) == (utc("2026-02-19"), utc("2026-03-21"))


@pytest.mark.parametrize("shape", ["uniform", "growing", "two_bursts", "single_day"])
def test_a_normal_log_loses_nothing_to_the_time_range(tmp_path, shape):
    rng = np.random.default_rng(3)
    u = rng.random(2000)
    days = {"uniform": 90 * u, "growing": 365 * u ** 0.25,  # traffic grows like t³ over a year
            "two_bursts": np.where(u < 0.5, u, 59 + u), "single_day": u}[shape]
    times = pd.Timestamp("2025-01-01", tz="UTC") + pd.to_timedelta(np.sort(days), unit="D")
    rows = [(f"u{i % 97}", t.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "view") for i, t in enumerate(times)]
    events = load_events(canonical_csv(tmp_path / "e.csv", rows))
    assert events.report.rows_kept == 2000 and events.report.excluded_before == events.report.excluded_after == 0


@pytest.mark.parametrize("odd", ["infinity", "-infinity", "12026-01-01T00:00:00Z", "0001-01-01T00:00:00Z"])
def test_infinite_and_unrepresentable_times_are_excluded_not_a_crash(tmp_path, odd):
    events = load_events(canonical_csv(tmp_path / "e.csv", bulk_rows() + [("odd", odd, "view")]))
    assert events.report.rows_kept == 200 and events.report.excluded_before + events.report.excluded_after == 1
    assert "odd" not in set(frame_of(events)[C.user_id])  # pandas can hold every kept time


def test_unrepresentable_times_are_an_error_when_every_event_is_kept(tmp_path):
    path = canonical_csv(tmp_path / "e.csv", bulk_rows() + [("odd", "infinity", "view")] * 2)
    with pytest.raises(DataError, match=r"'event_time': 2 timestamps are outside .*1678.*2262.*first at row 201 "
                                        r"\(line 202\): 'infinity'"):
        load_events(path, DataParams(time_range="all"))


def test_an_explicit_time_range_keeps_start_up_to_end(tmp_path):
    rows = [("u", f"2026-01-0{d}T00:00:00Z", "view") for d in range(1, 6)]
    events = load_events(canonical_csv(tmp_path / "e.csv", rows),
                         DataParams(time_range={"start": "2026-01-02", "end": "2026-01-04"}))
    assert frame_of(events)[C.event_time].tolist() == [utc("2026-01-02"), utc("2026-01-03")]
    assert (events.report.excluded_before, events.report.excluded_after) == (1, 2)


def test_every_event_outside_the_range_is_an_error_naming_the_loaded_range(tmp_path):
    path = canonical_csv(tmp_path / "e.csv", [("u", "2026-01-01T00:00:00Z", "view")])
    with pytest.raises(DataError, match="all 1 events are outside data.time_range.*2026-01-01"):
        load_events(path, DataParams(time_range={"start": "2027-01-01"}))


@pytest.mark.parametrize("text, expected", [
    ("2026-03-29 1:5", "2026-03-29 05:05"), ("2026-03-29  10:05:00", "2026-03-29 14:05"),
    ("2026-03-29T1:05:07", "2026-03-29 05:05:07"), ("2026-3-9 10:05", "2026-03-09 14:05"),
    ("2026/03/29 10:05", "2026-03-29 14:05"), ("2026-03-29", "2026-03-29 04:00"),
])
def test_every_naive_time_is_read_in_the_assumed_zone(tmp_path, text, expected):
    path = canonical_csv(tmp_path / "e.csv", [("u", text, "view")])
    events = load_events(path, DataParams(assume_timezone="America/New_York"))
    assert frame_of(events)[C.event_time].tolist() == [utc(expected)]
    with pytest.raises(SchemaError, match="assume_timezone"):
        load_events(path)


def test_a_twelve_hour_clock_is_unparsable_not_misread(tmp_path):
    path = canonical_csv(tmp_path / "e.csv", [("u", "2026-03-29 1:05:07 PM", "view")])
    with pytest.raises(DataError, match="cannot be parsed"):
        load_events(path, DataParams(assume_timezone="UTC"))


def test_report_gives_the_loaded_time_range_and_the_plausible_one(tmp_path):
    report = load_events(canonical_csv(tmp_path / "e.csv", bulk_rows())).report
    values = dict(zip(*report.to_frame().T.values))
    assert values["First event"] == "2026-03-01 00:00:00 UTC" and values["Last event"] == "2026-03-10 22:48:00 UTC"
    assert values["Time span"] == "9 days 22 hours 48 minutes"
    # the bulk (5th to 95th percentile day) is 2026-03-01 to 03-10: 10 days, widened by 10 days on each side
    assert values["Plausible time range"] == ("2026-02-19 00:00:00 UTC to 2026-03-21 00:00:00 UTC "
                                              "(auto: the bulk of the log widened by its span)")
    assert values["Events outside the plausible time range (excluded)"] == "none"
    assert report.warnings() == []


def test_warnings_flag_a_timestamp_unit_off_by_a_thousand(tmp_path):
    seconds = [1_772_000_000 + 3_600 * i for i in range(100)]  # March 2026, read as milliseconds: January 1970
    path = write(tmp_path / "e.csv", ["user_id,event_time,event_type"] + [f"u,{s},view" for s in seconds])
    report = load_events(path, DataParams(timestamp_unit="ms")).report
    assert report.first_event.year == 1970
    (warning,) = report.warnings()
    assert "1970-01-21" in warning and "before 1990" in warning and "data.timestamp_unit" in warning
    assert load_events(path, DataParams(timestamp_unit="s")).report.warnings() == []
    # read as microseconds in the wrong direction: year 58,000 and beyond, nothing pandas can hold
    with pytest.raises(DataError, match="all 100 events are outside.*data.timestamp_unit"):
        load_events(write(tmp_path / "ms.csv", ["user_id,event_time,event_type"]
                          + [f"u,{s * 1000},view" for s in seconds]), DataParams(timestamp_unit="s"))


def test_warnings_flag_many_events_within_a_minute(tmp_path):
    rows = [("u", f"2026-01-01T00:00:{i % 50:02d}Z", "view") for i in range(1001)]
    (warning,) = load_events(canonical_csv(tmp_path / "e.csv", rows)).report.warnings()
    assert "1,001 events" in warning and "49 seconds" in warning


def test_warnings_flag_times_far_in_the_future(tmp_path):
    rows = [("u", f"2090-01-{d:02d}T00:00:00Z", "view") for d in range(1, 20)]
    (warning,) = load_events(canonical_csv(tmp_path / "e.csv", rows)).report.warnings()
    assert "2090-01-19" in warning and "in the future" in warning


@pytest.mark.parametrize("bad", ["inf", "-inf", "nan", "Infinity", "NaN"])
def test_non_finite_prices_are_refused_naming_column_count_and_first_row(tmp_path, bad):
    rows = [REES46_ROWS[0], REES46_ROWS[1].replace("33.20", bad), REES46_ROWS[2].replace("33.20", bad)]
    with pytest.raises(DataError, match=rf"'price': 2 prices are not finite numbers; first at row 2 \(line 3\): "
                                        rf"'{bad}'"):
        load_events(write(tmp_path / "r.csv", [REES46_HEADER, *rows]), DataParams(format="rees46"))


def test_non_finite_prices_in_parquet_are_refused(tmp_path):
    pd.DataFrame({C.user_id: ["u", "u"], C.event_time: pd.to_datetime(["2026-01-01", "2026-01-02"], utc=True),
                  C.event_type: ["view", "purchase"], C.price: [1.0, np.inf]}).to_parquet(tmp_path / "e.parquet")
    with pytest.raises(DataError, match=r"'price': 1 prices are not finite numbers; first at row 2: 'inf'"):
        load_events(tmp_path / "e.parquet")


def test_negative_purchase_prices_are_refunds_kept_apart_from_purchases(tmp_path):
    header = (C.user_id, C.event_time, C.event_type, C.price)
    path = canonical_csv(tmp_path / "e.csv", [
        ("u", "2026-01-01T00:00:00Z", "view", "-3"), ("u", "2026-01-01T00:01:00Z", "purchase", "20"),
        ("u", "2026-01-02T00:00:00Z", "purchase", "-20"), ("v", "2026-01-02T00:00:00Z", "purchase", "-5.5"),
        ("v", "2026-01-02T00:01:00Z", "purchase", "0")], header=header)
    events = load_events(path)
    frame = frame_of(events).sort_values([C.event_time, C.user_id])
    assert frame[C.event_type].tolist() == ["view", "purchase", "refund", "refund", "purchase"]
    assert (frame.loc[frame[C.event_type] == EVENTS.purchase, C.price] >= 0).all()
    assert (events.report.refunds, events.report.refund_total) == (2, -25.5)
    values = dict(zip(*events.report.to_frame().T.values))
    assert values["Refunds (purchases with a negative price)"].startswith("2, totalling -25.50")


def test_pandas_index_columns_in_parquet_are_not_segments(tmp_path):
    frame = pd.DataFrame({C.user_id: ["u", "v", "w"], C.event_time: pd.to_datetime(["2026-01-01"] * 3, utc=True),
                          C.event_type: ["view"] * 3, "device": ["m", "d", "m"]})
    frame[frame[C.user_id] != "v"].to_parquet(tmp_path / "e.parquet")  # a filtered frame keeps its index
    events = load_events(tmp_path / "e.parquet")
    assert events.segments == ("device",) and "__index_level_0__" not in events.columns
