"""The public per-unit API of FunnelResult: units(), units_sql(), by_period(), step_index().

Known answers on a tiny crafted log on every engine (the ``engine`` fixture), the brute force of
``tests/reference`` on random logs, and the two views built on by_period (``trend()`` and the KPI series
of ``anomaly.kpi``) equal to its numbers.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings

from funnelkit.anomaly.kpi import kpi_series
from funnelkit.funnel import run_funnel
from funnelkit.params import FunnelParams
from tests.reference.funnel_bruteforce import unit_results
from tests.test_funnel import _normalise, at, log_of, random_case, steps

DAY = 60 * 24  # minutes
SPEC = FunnelParams(steps=steps("view", "cart", "purchase"), window="1h")
# Day 0: units 1-3; day 1: nobody; day 2: units 4-5; day 3: unit 6, whose window is open at the data end
ROWS = [
    (1, 0, "view"), (1, 5, "cart"), (1, 9, "purchase"),       # depth 3
    (2, 30, "view"), (2, 40, "cart"),                          # depth 2
    (3, 70, "view"),                                           # depth 1
    (4, 2 * DAY, "view"), (4, 2 * DAY + 1, "cart"),            # depth 2
    (5, 2 * DAY + 90, "view"), (5, 2 * DAY + 95, "cart"), (5, 2 * DAY + 99, "purchase"),  # depth 3
    (6, 3 * DAY + 30, "view"), (6, 3 * DAY + 32, "cart"),      # censored, depth 2 so far
]
END = at(3 * DAY + 60)  # day 2 plus the window ends exactly here: day 2 is complete


@pytest.fixture
def crafted(engine):
    return run_funnel(log_of(ROWS, engine=engine)[1], SPEC, data_end=END)


def test_units_keep_resolved_units_by_the_step_they_reached_or_stopped_at(crafted):
    assert crafted.units()["unit"].tolist() == [1, 2, 3, 4, 5]
    assert crafted.units(resolved=False)["unit"].tolist() == [6]
    assert crafted.units(resolved=None)["unit"].tolist() == [1, 2, 3, 4, 5, 6]
    assert crafted.units(reached="cart")["unit"].tolist() == [1, 2, 4, 5]
    assert crafted.units(reached=1, resolved=None)["unit"].tolist() == [1, 2, 4, 5, 6]
    assert crafted.units(furthest="cart")["unit"].tolist() == [2, 4]
    assert crafted.units(furthest="view")["unit"].tolist() == [3]
    # the last step: reaching it and stopping there are the same units
    assert crafted.units(furthest="purchase")["unit"].tolist() == crafted.units(reached=2)["unit"].tolist() == [1, 5]


def test_units_rows_are_the_per_unit_table_with_times_in_microseconds(crafted):
    unit2 = crafted.units(resolved=None).set_index("unit").loc[2]
    assert list(crafted.units().columns) == ["unit", "entry", "start", "depth", "censored", "T0", "T1", "T2"]
    assert unit2["entry"] == unit2["start"] == unit2["T0"] == at(30).value // 1000
    assert unit2["T1"] == at(40).value // 1000 and pd.isna(unit2["T2"])
    assert unit2["depth"] == 2 and not unit2["censored"]


def test_units_sql_is_a_relation_further_queries_can_join(crafted):
    sql = (f"SELECT count(*) AS n, max(u.depth) AS deepest FROM {crafted.units_sql(reached='cart')} AS u "
           f"JOIN {crafted.units_sql(resolved=None)} AS every_unit ON every_unit.unit = u.unit")
    assert crafted.events.rows(sql) == [(4, 3)]


def test_step_index_takes_a_name_or_a_position_and_names_a_bad_one(crafted):
    assert [crafted.step_index(s) for s in ("view", "cart", "purchase", 0, np.int64(2))] == [0, 1, 2, 0, 2]
    with pytest.raises(ValueError, match="no step named 'basket'; the steps are"):
        crafted.step_index("basket")
    for position in (3, -1):
        with pytest.raises(ValueError, match="out of range: the funnel has 3 steps"):
            crafted.step_index(position)
    with pytest.raises(ValueError, match="no step named"):
        crafted.units(furthest="basket")


def test_by_period_counts_entrants_censored_and_each_step_per_day(crafted):
    days = crafted.by_period("day")
    assert list(days.columns) == ["period", "units", "censored", "reached_view", "reached_cart",
                                  "reached_purchase", "complete"]
    assert days["period"].tolist() == [at(0), at(2 * DAY), at(3 * DAY)]  # no row for the empty day
    assert str(days["period"].dt.tz) == "UTC"
    assert days["units"].tolist() == [3, 2, 1]
    assert days["censored"].tolist() == [0, 0, 1]
    assert days["reached_view"].tolist() == [3, 2, 0]
    assert days["reached_cart"].tolist() == [2, 2, 0]
    assert days["reached_purchase"].tolist() == [1, 1, 0]
    # a day is complete when its end plus the 1h window is by the data end
    assert days["complete"].tolist() == [True, True, False]
    counts = days.columns[1:-1]
    assert all(days[c].dtype == np.int64 for c in counts) and days["complete"].dtype == bool


def test_by_period_fills_the_calendar_with_empty_periods_when_asked(crafted):
    days = crafted.by_period("day", empty_periods=True)
    assert days["period"].tolist() == [at(d * DAY) for d in range(4)]
    assert days.iloc[1, 1:-1].tolist() == [0, 0, 0, 0, 0] and days["complete"].tolist() == [True, True, True, False]
    assert all(days[c].dtype == np.int64 for c in days.columns[1:-1])
    hours = crafted.by_period("hour", empty_periods=True)
    assert len(hours) == 3 * 24 + 1 and hours["units"].sum() == 6
    assert hours.loc[hours["period"] == at(60), "units"].item() == 1  # unit 3, at minute 70
    week = crafted.by_period("week")
    assert week["period"].tolist() == [at(0)] and week["units"].tolist() == [6]  # T0 is a Monday
    with pytest.raises(ValueError, match="freq must be one of"):
        crafted.by_period("month")


def test_by_period_under_naive_censoring_has_no_censored_unit_and_every_period_complete(engine):
    result = run_funnel(log_of(ROWS, engine=engine)[1], SPEC, censoring="naive", data_end=END)
    days = result.by_period("day")
    assert days["censored"].tolist() == [0, 0, 0] and days["complete"].all()
    assert days["reached_view"].tolist() == days["units"].tolist() == [3, 2, 1]


def test_by_period_of_a_funnel_nobody_entered_is_empty(engine):
    result = run_funnel(log_of([(1, 0, "cart")], engine=engine)[1], SPEC, data_end=END)
    assert result.units(resolved=None).empty
    for empty_periods in (False, True):
        assert result.by_period("day", empty_periods=empty_periods).empty


def test_trend_is_by_period_with_the_first_and_last_step_as_entrants_and_converted(crafted):
    for freq in ("day", "week"):
        periods, trend = crafted.by_period(freq), crafted.trend(freq)
        assert list(trend.columns) == ["period", "entrants", "converted", "conversion", "ci_low", "ci_high",
                                       "censored", "complete"]
        pd.testing.assert_series_equal(trend["period"], periods["period"])
        assert trend["entrants"].tolist() == periods["reached_view"].tolist()
        assert trend["converted"].tolist() == periods["reached_purchase"].tolist()
        assert trend["censored"].tolist() == periods["censored"].tolist()
        assert trend["complete"].tolist() == periods["complete"].tolist()
    assert crafted.trend("day")["conversion"].iloc[:2].tolist() == [1 / 3, 1 / 2]


def test_kpi_series_is_by_period_on_the_complete_calendar(crafted):
    for freq in ("hour", "day"):
        periods, series = crafted.by_period(freq, empty_periods=True), kpi_series(crafted, freq)
        pd.testing.assert_series_equal(series["period"], periods["period"])
        assert series["entrants"].tolist() == periods["units"].tolist()
        for previous, step in (("view", "cart"), ("cart", "purchase")):
            assert series[f"{step}_from"].tolist() == periods[f"reached_{previous}"].tolist()
            assert series[f"{step}_reached"].tolist() == periods[f"reached_{step}"].tolist()
            trials = periods[f"reached_{previous}"].to_numpy()
            with np.errstate(invalid="ignore", divide="ignore"):
                expected = np.where(trials > 0, periods[f"reached_{step}"] / trials, np.nan)
            np.testing.assert_array_equal(series[f"{step}_rate"].to_numpy(), expected)


def _brute_force_by_period(units: pd.DataFrame, spec: FunnelParams, freq: str) -> dict:
    """``{period start: [units, censored, reached step 0, step 1, ...]}`` from the brute force's units."""
    n, counts = len(spec.steps), {}
    length = {"hour": pd.Timedelta(hours=1), "day": pd.Timedelta(days=1)}[freq]
    for row in units.to_dict("records"):
        entry = pd.Timestamp(int(row["entry"]) * 1000, tz="UTC")
        period = entry.floor(length)
        count = counts.setdefault(period, [0] * (2 + n))
        count[0] += 1
        count[1] += bool(row["censored"])
        for k in range(n):
            count[2 + k] += (not row["censored"]) and row["depth"] > k
    return counts


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_case())
def test_units_and_by_period_agree_with_the_brute_force(case):
    rows, spec, data_end = case
    if not rows:
        return
    # spread the random log's minutes over hours so that periods hold several units and some are empty
    rows = [(unit, minutes * 7, *rest) for unit, minutes, *rest in rows]
    data_end = at((data_end - at(0)) / pd.Timedelta(minutes=1) * 7)
    frame, log = log_of(rows)  # DuckDB: tests/test_spark.py checks Spark against the brute force
    result = run_funnel(log, spec, data_end=data_end)
    expected = unit_results(frame, spec, data_end)
    resolved = expected[~expected["censored"].astype(bool)]
    pd.testing.assert_frame_equal(_normalise(result.units()), _normalise(resolved), check_dtype=False)
    for k, name in enumerate(result.step_names):
        assert sorted(result.units(reached=name)["unit"]) == sorted(resolved.loc[resolved["depth"] > k, "unit"])
        assert sorted(result.units(furthest=k)["unit"]) == sorted(resolved.loc[resolved["depth"] == k + 1, "unit"])
    for freq in ("hour", "day"):
        periods = result.by_period(freq)
        got = {row[0]: list(row[1:-1]) for row in periods.itertuples(index=False)}
        assert got == _brute_force_by_period(expected, spec, freq), freq
