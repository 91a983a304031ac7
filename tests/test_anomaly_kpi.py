"""KPI series and detectors: known answers on crafted logs and planted series, and the simulator's incidents."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from funnelkit.anomaly.kpi import (
    DETECTORS, detect, kpi_series, rate_test, robust_z, score_against_incidents, stl_residual, three_sigma,
)
from funnelkit.funnel import run_funnel
from funnelkit.params import FunnelParams
from tests.test_funnel import T0, at, log_of, steps

DAY = 60 * 24  # minutes

# --- kpi_series ------------------------------------------------------------------------


# Seven units over three days; hour 1 and day 1 are empty; unit 7 is censored (tests/test_spark_studies.py
# runs the same log on Spark)
CRAFTED_ROWS = [
    (1, 5, "view"), (1, 6, "cart"), (1, 7, "checkout"),      # hour 0: depth 3
    (2, 10, "view"), (2, 12, "cart"),                        # hour 0: depth 2
    (3, 20, "view"),                                         # hour 0: depth 1
    (4, 125, "view"), (4, 126, "cart"),                      # hour 2: depth 2
    (5, 130, "view"),                                        # hour 2: depth 1
    (6, 170, "view"), (6, 171, "cart"), (6, 172, "checkout"),  # hour 2: depth 3
    (7, 2 * DAY + 10, "view"), (7, 2 * DAY + 11, "cart"),    # day 2, hour 48: censored
]
CRAFTED_SPEC = FunnelParams(steps=steps("view", "cart", "checkout"), window="30min")
CRAFTED_END = at(2 * DAY + 20)


@pytest.fixture(scope="module")
def crafted():
    _, log = log_of(CRAFTED_ROWS)
    return run_funnel(log, CRAFTED_SPEC, data_end=CRAFTED_END)


def test_kpi_series_hourly_counts_with_empty_hours_and_censored_traffic(crafted):
    hourly = kpi_series(crafted, "hour")
    assert list(hourly.columns) == ["period", "entrants", "cart_from", "cart_reached", "cart_rate",
                                    "checkout_from", "checkout_reached", "checkout_rate"]
    assert len(hourly) == 49  # hour 0 to hour 48, every hour in between
    assert hourly["period"].tolist() == [T0 + pd.Timedelta(hours=h) for h in range(49)]
    assert str(hourly["period"].dt.tz) == "UTC"
    rows = hourly.set_index(hourly["period"].sub(T0).dt.total_seconds().div(3600).astype(int))
    counts = ["entrants", "cart_from", "cart_reached", "checkout_from", "checkout_reached"]
    assert rows.loc[0, counts].tolist() == [3, 3, 2, 2, 1]
    assert rows.loc[2, counts].tolist() == [3, 3, 2, 2, 1]
    assert rows.loc[0, "cart_rate"] == pytest.approx(2 / 3) and rows.loc[0, "checkout_rate"] == 0.5
    # an empty hour in the middle: zeros, and no rate
    assert rows.loc[1, counts].tolist() == [0, 0, 0, 0, 0]
    assert np.isnan(rows.loc[1, "cart_rate"]) and np.isnan(rows.loc[1, "checkout_rate"])
    # the censored unit is traffic but not (yet) a conversion count
    assert rows.loc[48, counts].tolist() == [1, 0, 0, 0, 0] and np.isnan(rows.loc[48, "cart_rate"])
    assert hourly["entrants"].sum() == 7
    assert all(hourly[c].dtype == np.int64 for c in counts)


def test_kpi_series_daily_counts(crafted):
    daily = kpi_series(crafted, "day")
    assert daily["period"].tolist() == [T0, T0 + pd.Timedelta(days=1), T0 + pd.Timedelta(days=2)]
    assert daily["entrants"].tolist() == [6, 0, 1]
    assert daily["cart_from"].tolist() == [6, 0, 0]
    assert daily["cart_reached"].tolist() == [4, 0, 0]
    assert daily["checkout_from"].tolist() == [4, 0, 0]
    assert daily["checkout_reached"].tolist() == [2, 0, 0]
    assert daily["checkout_rate"].iloc[0] == 0.5 and daily["checkout_rate"].iloc[1:].isna().all()
    with pytest.raises(ValueError, match="freq must be 'hour' or 'day'"):
        kpi_series(crafted, "week")


# --- 3-sigma and robust z --------------------------------------------------------------


def test_three_sigma_and_robust_z_alarm_exactly_at_a_planted_outlier():
    values = pd.Series(np.random.default_rng(0).normal(10, 1, 50), index=range(100, 150))
    values.iloc[17] = 20.0
    values.iloc[30] = np.nan
    sigma, robust = three_sigma(values), robust_z(values)
    for out in (sigma, robust):
        assert list(out.columns) == ["value", "expected", "score", "alarm"]
        assert out.index.equals(values.index)
        assert out.index[out["alarm"]].tolist() == [117]
        assert np.isnan(out.loc[130, "score"]) and not out.loc[130, "alarm"]
    clean = values.dropna()
    assert sigma["expected"].iloc[0] == pytest.approx(clean.mean())
    assert sigma.loc[117, "score"] == pytest.approx((20 - clean.mean()) / clean.std(ddof=1))
    mad = (clean - clean.median()).abs().median()
    assert robust["expected"].iloc[0] == pytest.approx(clean.median())
    assert robust.loc[117, "score"] == pytest.approx((20 - clean.median()) / (1.4826 * mad))


def test_robust_z_is_not_masked_by_a_second_large_outlier():
    values = pd.Series(np.random.default_rng(1).normal(0, 1, 20))
    values[5], values[12] = 100.0, 10.0
    sigma, robust = three_sigma(values), robust_z(values)
    # the 100 inflates the standard deviation to ~22: the 10 is "within 3 sigma"
    assert sigma.index[sigma["alarm"]].tolist() == [5]
    assert abs(sigma.loc[12, "score"]) < 1
    assert robust.index[robust["alarm"]].tolist() == [5, 12]


def test_robust_z_with_zero_mad_uses_the_mean_absolute_deviation():
    values = pd.Series([5.0] * 8 + [6.0, 50.0])
    out = robust_z(values)
    scale = 1.2533 * np.mean(np.abs(values - 5.0))
    assert out["score"].tolist() == pytest.approx(((values - 5.0) / scale).tolist())
    assert out.index[out["alarm"]].tolist() == [9]


# --- STL / MSTL ---------------------------------------------------------------------------


def seasonal_hours(weeks: int = 3, seed: int = 0) -> pd.Series:
    """Hourly KPI: level 100, daily swing ±30, weekly swing ±15, Gaussian noise sd 3."""
    t = np.arange(168 * weeks)
    noise = np.random.default_rng(seed).normal(0, 3, len(t))
    return pd.Series(100 + 30 * np.sin(2 * np.pi * t / 24) + 15 * np.sin(2 * np.pi * t / 168) + noise)


def test_mstl_alarms_within_the_broken_day_only_where_three_sigma_misses_it():
    values = seasonal_hours()
    broken = range(24 * 10, 24 * 11)  # day 10 drops by 25 (about 8 noise sds, less than the daily swing)
    values[list(broken)] -= 25
    out = stl_residual(values, (24, 168))
    alarmed = set(out.index[out["alarm"]])
    assert alarmed <= set(broken) and len(alarmed) >= 20
    # the seasonal swing is larger than the drop: the broken hours stay within 3 sigma of the mean
    sigma = three_sigma(values)
    assert not sigma["alarm"].iloc[list(broken)].any()
    # the expected value restores the seasonal profile, not the broken level
    assert (out["expected"].iloc[list(broken)] - values.iloc[list(broken)]).mean() == pytest.approx(25, abs=3)


def test_mstl_on_seasonal_noise_alone_does_not_alarm():
    assert not stl_residual(seasonal_hours(seed=1), (24, 168))["alarm"].any()


def test_stl_spike_does_not_make_the_same_weekday_look_anomalous():
    """A sale-day spike must not leak into the weekly profile (the other Fridays would look low)."""
    rng = np.random.default_rng(2)
    weekly = np.array([250, 240, 240, 250, 260, 280, 300])
    values = pd.Series(np.tile(weekly, 3) + rng.normal(0, 8, 21))
    values[3] += 250
    out = stl_residual(values, (7,))
    assert out.index[out["alarm"]].tolist() == [3]


def test_stl_nan_values_are_fitted_through_and_never_alarm():
    values = seasonal_hours(seed=3)
    values[[50, 51, 300]] = np.nan
    out = stl_residual(values, (24, 168))
    assert out["score"].iloc[[50, 51, 300]].isna().all() and not out["alarm"].iloc[[50, 51, 300]].any()
    assert out["expected"].notna().all()


def test_stl_needs_two_cycles_of_the_longest_period():
    with pytest.raises(ValueError, match=r"two full cycles of the longest period \(7 values.*has 13"):
        stl_residual(pd.Series(np.arange(13.0)), (7,))
    with pytest.raises(ValueError, match=r"more than 336 values\); the series has 336"):
        stl_residual(pd.Series(np.arange(336.0)), (24, 168))
    stl_residual(pd.Series(np.random.default_rng(0).normal(size=14)), (7,))  # two cycles: enough for STL


# --- rate test ---------------------------------------------------------------------------


def pooled_at_030() -> tuple[pd.Series, pd.Series]:
    """Ten ordinary periods, a quiet one (0 of 2), a broken one (20 of 500), an empty one; pooled rate 0.3."""
    reached = [163] * 10 + [0, 20, 0]
    trials = [500] * 9 + [498] + [2, 500, 0]
    return pd.Series(reached, dtype=float), pd.Series(trials, dtype=float)


@pytest.mark.parametrize("overdispersed", [False, True])
def test_rate_test_quiet_period_is_no_alarm_a_broken_large_one_is(overdispersed):
    reached, trials = pooled_at_030()
    out = rate_test(reached, trials, overdispersed=overdispersed)
    assert out.attrs["p0"] == pytest.approx(0.3)
    assert out["expected"].iloc[0] == pytest.approx(0.3)
    assert out.index[out["alarm"]].tolist() == [11]
    assert not out.loc[10, "alarm"] and out.loc[10, "value"] == 0.0
    assert np.isnan(out.loc[12, "value"]) and np.isnan(out.loc[12, "score"]) and not out.loc[12, "alarm"]
    assert out.attrs["threshold"] == pytest.approx(0.001 / 12)  # 12 periods have trials


def test_rate_test_binomial_pvalue_is_the_lower_tail():
    reached, trials = pooled_at_030()
    out = rate_test(reached, trials, overdispersed=False)
    ok = trials > 0
    pvalues = stats.binom.cdf(reached[ok], trials[ok], 0.3)
    assert out["score"][ok].tolist() == pytest.approx((-np.log10(pvalues)).tolist(), rel=1e-9)
    assert 10 ** -out.loc[10, "score"] == pytest.approx(0.49)  # 0 of 2 at 0.3
    assert out.attrs["rho"] == 0.0


def test_rate_test_direction_both_also_flags_a_rise():
    reached, trials = pooled_at_030()
    reached[3] = 300  # 300 of 500
    drop = rate_test(reached, trials, overdispersed=False)
    both = rate_test(reached, trials, overdispersed=False, direction="both")
    assert 3 not in drop.index[drop["alarm"]] and 3 in both.index[both["alarm"]]
    low = stats.binom.cdf(20, 500, both.attrs["p0"])
    assert 10 ** -both.loc[11, "score"] == pytest.approx(2 * low, rel=1e-6)


def test_rate_test_overdispersion_removes_the_false_alarms_of_the_binomial():
    rng = np.random.default_rng(0)
    n = rng.integers(200, 2000, size=120)
    rho, p = 0.02, 0.3
    ab = (1 - rho) / rho
    k = stats.betabinom.rvs(n, p * ab, (1 - p) * ab, random_state=rng)  # no anomaly at all
    binomial = rate_test(pd.Series(k), pd.Series(n), overdispersed=False)
    beta = rate_test(pd.Series(k), pd.Series(n))
    assert binomial["alarm"].sum() >= 10  # the binomial takes ordinary variation for incidents
    assert beta["alarm"].sum() == 0
    assert beta.attrs["rho"] == pytest.approx(rho, abs=0.006)
    # the beta-binomial p-value uses that rho
    p0, concentration = beta.attrs["p0"], (1 - beta.attrs["rho"]) / beta.attrs["rho"]
    expected = stats.betabinom.cdf(k[0], n[0], p0 * concentration, (1 - p0) * concentration)
    assert 10 ** -beta["score"].iloc[0] == pytest.approx(expected, rel=1e-6)


def test_rate_test_incident_does_not_hide_itself_in_the_dispersion():
    """One broken day among 21 binomial days: the estimate of rho leaves it out, so it still alarms."""
    rng = np.random.default_rng(4)
    trials = pd.Series(np.full(21, 25))
    reached = pd.Series(rng.binomial(25, 0.6, 21))
    reached[13] = 1
    out = rate_test(reached, trials)
    assert out.index[out["alarm"]].tolist() == [13]
    assert out.attrs["excluded"] >= 1 and out.attrs["rho"] < 0.02


def test_rate_test_rejects_impossible_counts():
    with pytest.raises(ValueError, match="0 <= reached <= trials"):
        rate_test(pd.Series([3.0]), pd.Series([2.0]))


# --- detect and scoring ---------------------------------------------------------------------


def test_detect_runs_the_named_detectors_into_a_long_table():
    hours = pd.date_range("2026-09-01", periods=504, freq="h", tz="UTC")
    rng = np.random.default_rng(5)
    trials = rng.integers(20, 60, size=504)
    series = pd.DataFrame({"period": hours, "entrants": seasonal_hours(seed=5).to_numpy().round(),
                           "cart_from": trials, "cart_reached": rng.binomial(trials, 0.3)})
    series["cart_rate"] = series["cart_reached"] / series["cart_from"]
    rates = detect(series, "hour", "cart_rate")
    assert list(rates.columns) == ["period", "detector", "value", "expected", "score", "alarm"]
    assert rates["detector"].unique().tolist() == list(DETECTORS)
    assert len(rates) == 4 * 504
    stl = rates[rates["detector"] == "STL"].reset_index(drop=True)
    direct = stl_residual(series["cart_rate"], (24, 168))
    assert stl["score"].tolist() == pytest.approx(direct["score"].tolist())
    assert stl["period"].tolist() == hours.tolist()
    test = rates[rates["detector"] == "rate test"].reset_index(drop=True)
    assert test["score"].tolist() == pytest.approx(rate_test(series["cart_reached"], series["cart_from"])["score"].tolist())
    traffic = detect(series, "hour", "entrants", detectors=("3-sigma", "rate test"))
    assert traffic["detector"].unique().tolist() == ["3-sigma"]  # no rate test on traffic
    with pytest.raises(ValueError, match="unknown detector"):
        detect(series, "hour", "entrants", detectors=("5-sigma",))
    with pytest.raises(ValueError, match="no column 'checkout_rate'"):
        detect(series, "hour", "checkout_rate")


def test_score_against_incidents_precision_recall_delay():
    periods = pd.date_range("2026-09-13", periods=8 * 24, freq="h", tz="UTC")
    table = pd.DataFrame({"period": np.tile(periods, 2), "detector": ["A"] * len(periods) + ["B"] * len(periods),
                          "alarm": False})
    alarmed = pd.to_datetime(["2026-09-14 03:00", "2026-09-14 05:00", "2026-09-16 10:00", "2026-09-20 01:00"], utc=True)
    table.loc[(table["detector"] == "A") & table["period"].isin(alarmed), "alarm"] = True
    scores = score_against_incidents(table, ["2026-09-14", pd.Timestamp("2026-09-16"), "2026-09-18"], "hour")
    a, b = scores.set_index("detector").loc["A"], scores.set_index("detector").loc["B"]
    assert list(scores.columns) == ["detector", "alarms", "precision", "recall", "delay_hours", "false_alarms"]
    assert a["alarms"] == 4 and a["precision"] == 0.75 and a["recall"] == pytest.approx(2 / 3)
    assert a["delay_hours"] == pytest.approx((4 + 11) / 2)  # the alarmed hours end at 04:00 and 11:00
    assert a["false_alarms"] == 1
    assert b["alarms"] == 0 and np.isnan(b["precision"]) and b["recall"] == 0 and np.isnan(b["delay_hours"])
    daily = pd.DataFrame({"period": pd.to_datetime(["2026-09-14", "2026-09-15"], utc=True), "detector": "A",
                          "alarm": [True, True]})
    row = score_against_incidents(daily, ["2026-09-14"], "day").iloc[0]
    assert row["delay_hours"] == 24 and row["precision"] == 0.5 and row["false_alarms"] == 1


# --- the simulated shop --------------------------------------------------------------------


def test_rate_test_finds_the_simulated_incidents(tmp_path):
    """The shop's two incident days (one step's probability × 0.15) on the daily step rates.

    The fraud blocks are switched off: with them, a fake-order ring converting at p = 1 and a click
    farm carting without buying move the daily checkout and purchase rates of an 8000-user shop more
    than the incidents do.
    """
    from funnelkit.data import load_events
    from funnelkit.params import DataParams, SimulationParams
    from funnelkit.simulate import simulate

    params = SimulationParams(n_users=8000, days=21, incident_days=2, seed=1,
                              n_bots=0, click_farm_accounts=0, fake_order_accounts=0)
    ds = simulate(params, tmp_path)
    log = load_events(ds.events_path, DataParams(format="canonical"))
    daily = kpi_series(run_funnel(log, unit="session", window="1D"), "day")
    incidents = ds.ground_truth["incidents"]
    assert {i["step"] for i in incidents} == {"checkout", "purchase"}
    for incident in incidents:
        alarms = detect(daily, "day", f"{incident['step']}_rate", detectors=("rate test", "3-sigma"))
        scores = score_against_incidents(alarms, [incident["date"]], "day").set_index("detector")
        assert scores.loc["rate test", "recall"] == 1.0
        assert scores.loc["rate test", "false_alarms"] == 0
        assert scores.loc["rate test", "delay_hours"] == 24.0
    # the sale day doubles traffic: an alarm on entrants, not on the rates; the visitors it brought
    # come back over the next days (the planted return process), which may raise one more
    traffic = detect(daily, "day", "entrants", detectors=("robust z",))
    alarmed = traffic.loc[traffic["alarm"], "period"]
    sale_days = pd.to_datetime(ds.ground_truth["sale_days"], utc=True)
    assert set(sale_days) <= set(alarmed)
    assert all(any(0 <= (day - sale).days <= 3 for sale in sale_days) for day in alarmed), list(alarmed)


def test_a_large_rise_does_not_hide_a_drop_through_the_overdispersion_estimate():
    # scipy's beta-binomial logsf is NaN far in the upper tail: the rise must still count as extreme
    rng = np.random.default_rng(0)
    trials = np.full(56, 1000)
    reached = rng.binomial(1000, 0.3, 56)
    reached[10], reached[20] = 900, 225
    out = rate_test(pd.Series(reached), pd.Series(trials))
    assert out["alarm"].tolist().index(True) == 20 and out["alarm"].sum() == 1
    both = rate_test(pd.Series(reached), pd.Series(trials), direction="both")
    assert set(np.flatnonzero(both["alarm"])) == {10, 20}


# --- drops must alarm: every detector, known answers ------------------------------------------


def test_robust_z_alarms_on_a_drop_with_the_hand_computed_score():
    # median 10; |x - 10| = 1, 0, 1, 0, 1, 1, 0, 8: MAD 1, scale 1.4826; the drop to 2 scores -8 / 1.4826
    values = pd.Series([9.0, 10.0, 11.0, 10.0, 9.0, 11.0, 10.0, 2.0])
    out = robust_z(values)
    assert out["expected"].tolist() == [10.0] * 8
    assert out.loc[7, "score"] == pytest.approx(-8 / 1.4826)
    assert out.index[out["alarm"]].tolist() == [7]  # |-5.40| > 3.5: a drop alarms like a rise


def drop_day_frame(days: int = 28, sessions: int = 400, rate: float = 0.3, broken: int = 17,
                   seed: int = 7) -> pd.DataFrame:
    """Sessions viewing, then carting a minute later with probability ``rate``, the same traffic every day;
    on day ``broken`` the cart rate is cut to 15% of itself, as the simulator's incidents are."""
    from funnelkit.schema import COLUMNS

    rng = np.random.default_rng(seed)
    day = np.repeat(np.arange(days), sessions)
    start = T0 + pd.to_timedelta(day, unit="D") + pd.to_timedelta(rng.integers(0, 22 * 60, day.size), unit="min")
    carts = rng.random(day.size) < np.where(day == broken, 0.15 * rate, rate)
    ids = np.array([f"s{i}" for i in range(day.size)])
    return pd.DataFrame({COLUMNS.user_id: np.concatenate([ids, ids[carts]]),
                         COLUMNS.session_id: np.concatenate([ids, ids[carts]]),
                         COLUMNS.event_time: np.concatenate([start, start[carts] + pd.Timedelta(minutes=1)]),
                         COLUMNS.event_type: ["view"] * day.size + ["cart"] * int(carts.sum())})


def test_every_detector_of_the_kpi_study_alarms_on_a_planted_drop():
    """The notebook records only the best detector's score; here each one must find the broken day itself."""
    from funnelkit.anomaly.incidents import score_incidents, step_alarms
    from funnelkit.eventlog import EventLog

    log = EventLog.from_frame(drop_day_frame(broken=17))
    alarms = step_alarms(run_funnel(log, steps=steps("view", "cart"), unit="session", window="1h"), "day")
    broken = (T0 + pd.Timedelta(days=17)).strftime("%Y-%m-%d")
    scores = score_incidents(alarms, [{"step": "cart", "date": broken}], "day").set_index("detector")
    assert sorted(scores.index) == sorted(DETECTORS)
    assert scores["recall"].tolist() == [1.0] * len(DETECTORS), scores
    assert scores["false_alarms"].tolist() == [0] * len(DETECTORS), scores


# --- only drops alarm on a rate, tiny denominators are left out (issue 17) ----------------------------


def daily_cart(kind: str, seed: int = 3) -> pd.DataFrame:
    """28 days of 400 sessions converting at 0.3; day 17 is an upward ``blip`` (240 of 400), a real
    ``drop`` (18 of 400) or a ``tiny`` day (0 of 3 sessions)."""
    rng = np.random.default_rng(seed)
    trials, reached = np.full(28, 400), rng.binomial(400, 0.3, 28)
    if kind == "blip":
        reached[17] = 240
    elif kind == "drop":
        reached[17] = 18
    else:
        trials[17], reached[17] = 3, 0
    series = pd.DataFrame({"period": pd.date_range("2026-09-01", periods=28, freq="D", tz="UTC"),
                           "entrants": trials, "cart_from": trials, "cart_reached": reached})
    series["cart_rate"] = series["cart_reached"] / series["cart_from"]
    return series


def alarmed(table: pd.DataFrame) -> dict[str, list[int]]:
    return {name: np.flatnonzero(part["alarm"]).tolist() for name, part in table.groupby("detector", sort=False)}


def test_an_upward_blip_in_a_conversion_rate_is_no_alarm_for_any_detector():
    out = detect(daily_cart("blip"), "day", "cart_rate")
    assert alarmed(out) == {name: [] for name in DETECTORS}
    day = out[out["period"] == out["period"].iloc[17]].set_index("detector")
    # the blip is far out for the z-score detectors: only its direction keeps it from alarming
    assert (day.loc[["3-sigma", "robust z", "STL"], "score"] > 4).all()
    # traffic still alarms both ways: the same blip as a count is an alarm
    traffic = detect(daily_cart("blip").assign(entrants=lambda f: f["cart_reached"]), "day", "entrants",
                     detectors=("robust z",))
    assert np.flatnonzero(traffic["alarm"]).tolist() == [17]


def test_a_real_drop_in_a_conversion_rate_alarms_on_every_detector():
    out = detect(daily_cart("drop"), "day", "cart_rate", min_trials=10)
    assert alarmed(out) == {name: [17] for name in DETECTORS}


def test_a_rate_from_too_few_sessions_is_left_out_of_every_detector():
    series = daily_cart("tiny")
    kept = detect(series, "day", "cart_rate")  # min_trials=1: 0 of 3 is a "drop" to the z-scores
    assert alarmed(kept) == {"3-sigma": [17], "robust z": [17], "STL": [17], "rate test": []}
    left_out = detect(series, "day", "cart_rate", min_trials=10)
    assert alarmed(left_out) == {name: [] for name in DETECTORS}
    day = left_out[left_out["period"] == series["period"].iloc[17]]
    assert day["value"].isna().all() and day["score"].isna().all()
    # the rate test leaves the day out of the pooled rate and of the Bonferroni count (27 days)
    enough = series["cart_from"] >= 10
    alone = rate_test(series["cart_reached"].where(enough), series["cart_from"].where(enough))
    test = left_out[left_out["detector"] == "rate test"]
    assert test["expected"].iloc[0] == pytest.approx(alone.attrs["p0"])
    assert alone.attrs["p0"] == pytest.approx(series["cart_reached"].drop(17).sum() / (27 * 400))
    assert alone.attrs["threshold"] == pytest.approx(0.001 / 27)


def test_detect_skips_stl_on_a_series_too_short_for_it():
    short = daily_cart("drop").iloc[8:21].reset_index(drop=True)  # 13 days, fewer than two weeks; the drop is day 9
    out = detect(short, "day", "cart_rate")
    assert out["detector"].unique().tolist() == ["3-sigma", "robust z", "rate test"]
    assert alarmed(out) == {"3-sigma": [9], "robust z": [9], "rate test": [9]}
