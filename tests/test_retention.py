"""The retention study: cohorts, lifecycle, survival and the per-user tables, against hand-worked answers.

The SQL-built tables run on every engine (the ``engine`` fixture); the estimators are checked against
brute-force product-limit and Greenwood computations written out here, and the study against the
built-in shop's planted return process.
"""
import warnings

import numpy as np
import pandas as pd
import pytest

from funnelkit.errors import DataError, SchemaError
from funnelkit.eventlog import EventLog
from funnelkit.params import RetentionParams, SimulationParams
from funnelkit.retention import activity, clv, run
from funnelkit.retention.cohorts import average_curve, cohort_matrix
from funnelkit.retention.lifecycle import lifecycle_table
from funnelkit.retention.survival import compare, group_labels, kaplan_meier
from funnelkit.schema import COLUMNS as C
from funnelkit.text import escape_md

MONDAY = pd.Timestamp("2026-09-07", tz="UTC")  # a Monday


def day(n: float, hours: float = 10) -> pd.Timestamp:
    return MONDAY + pd.Timedelta(days=n, hours=hours)


def log_of(rows, engine, segment=None) -> EventLog:
    """rows: (user, session, days after MONDAY 10:00, event_type[, price])."""
    records = []
    for row in rows:
        user, session, when, kind, *rest = row
        record = {C.user_id: user, C.session_id: session, C.event_time: day(when), C.event_type: kind,
                  C.price: rest[0] if rest else None}
        if segment:
            record["segment"] = segment[user]
        records.append(record)
    frame = pd.DataFrame(records)
    frame[C.price] = frame[C.price].astype(float)
    return EventLog.from_frame(frame, engine)


# a small shop: weeks start Mondays 09-07, 09-14, 09-21; the data ends on 09-23 (a Wednesday)
SHOP = [
    ("a", "a1", 0, "view"), ("a", "a1", 0.01, "purchase", 10.0), ("a", "a2", 8, "view"), ("a", "a3", 15, "view"),
    ("b", "b1", 1, "view"), ("b", "b2", 15.5, "view"), ("b", "b2", 15.51, "purchase", 20.0),
    ("c", "c1", 2, "view"),
    ("d", "d1", 7, "view"), ("d", "d1", 7.01, "purchase", 5.0), ("d", "d2", 9, "view"),
    ("d", "d2", 9.01, "purchase", 7.0), ("d", "d2", 9.02, "purchase", 3.0), ("d", "d3", 16, "purchase", 4.0),
]


def test_cohort_counts_and_cells_follow_the_calendar_and_leave_the_unfinished_week_without_a_rate(engine):
    events = log_of(SHOP, engine)
    sizes, active = activity.cohort_counts(events, "week", None)
    assert sizes.set_index("cohort")["users"].to_dict() == {MONDAY: 3, MONDAY + pd.Timedelta(days=7): 1}
    table = cohort_matrix(sizes, active, period="week", periods=4, data_start=day(0), data_end=events.data_end)
    cells = table.set_index(["cohort", "k"])
    first = cells.loc[MONDAY]
    # cohort of 09-07 (a, b, c): week 1 only a; week 2 a and b — in progress (the data ends on Wednesday)
    assert list(first.index) == [0, 1, 2]
    assert first["active"].tolist() == [3, 1, 2]
    assert first["share"].iloc[:2].tolist() == [1.0, pytest.approx(1 / 3)]
    assert first["in_progress"].tolist() == [False, False, True]
    assert np.isnan(first["share"].iloc[2]) and np.isnan(first["ci_low"].iloc[2])
    # Wilson's interval written out, for the finished 1 of 3
    z, n, p = 1.959963984540054, 3, 1 / 3
    centre, half = p + z * z / (2 * n), z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert first["ci_low"].iloc[1] == pytest.approx((centre - half) / (1 + z * z / n))
    assert first["ci_high"].iloc[1] == pytest.approx((centre + half) / (1 + z * z / n))
    # d's cohort (09-14): week 0 finished, week 1 in progress
    assert cells.loc[MONDAY + pd.Timedelta(days=7), "in_progress"].tolist() == [False, True]
    # the log starts at 10:00 on the first Monday: that week was not watched whole
    assert table.groupby("cohort")["partial_cohort"].first().tolist() == [True, False]


def test_the_return_event_decides_who_counts_as_back(engine):
    sizes, active = activity.cohort_counts(log_of(SHOP, engine), "week", "purchase")
    table = cohort_matrix(sizes, active, period="week", periods=3, data_start=day(0), data_end=day(16))
    first = table[table["cohort"] == MONDAY].set_index("k")
    assert first["active"].tolist() == [1, 0, 1]  # a bought in week 0; b in week 2


def test_the_pooled_curve_uses_finished_cells_only():
    table = pd.DataFrame({"cohort": [1, 1, 2, 2], "k": [0, 1, 0, 1], "users": [10, 10, 30, 30],
                          "active": [10, 4, 30, 2], "in_progress": [False, False, False, True]})
    curve = average_curve(table).set_index("k")
    assert curve.loc[1, "users"] == 10 and curve.loc[1, "share"] == pytest.approx(0.4)  # not (4 + 2) / 40
    assert curve.loc[0, "share"] == 1.0


def test_only_a_cohort_whose_week_began_before_the_log_is_marked_partial(engine):
    events = log_of(SHOP, engine)
    sizes, active = activity.cohort_counts(events, "week", None)
    table = cohort_matrix(sizes, active, period="week", periods=2, data_start=MONDAY, data_end=events.data_end)
    assert not table["partial_cohort"].any()


def test_months_are_calendar_months(engine):
    rows = [("a", "a1", 0, "view"), ("a", "a2", 25, "view"), ("b", "b1", 24, "view"), ("b", "b2", 26, "view")]
    sizes, active = activity.cohort_counts(log_of(rows, engine), "month", None)
    september, october = pd.Timestamp("2026-09-01", tz="UTC"), pd.Timestamp("2026-10-01", tz="UTC")
    assert sizes.set_index("cohort")["users"].to_dict() == {september: 1, october: 1}
    assert active.set_index(["cohort", "period"])["users"].to_dict() == {
        (september, september): 1, (september, october): 1, (october, october): 1}


def test_lifecycle_states_by_hand(engine):
    events = log_of(SHOP, engine)
    table = lifecycle_table(activity.activity_patterns(events, "week"), period="week", data_end=events.data_end)
    rows = table.set_index("period")
    w0, w1, w2 = MONDAY, MONDAY + pd.Timedelta(days=7), MONDAY + pd.Timedelta(days=14)
    # week 0: a, b, c new. week 1: a returning, d new; b and c went dormant.
    # week 2 (in progress): a returning, b resurrecting, d returning; no dormant count yet
    assert rows.loc[w0, ["new", "returning", "resurrecting", "dormant"]].tolist() == [3, 0, 0, 0]
    assert rows.loc[w1, ["new", "returning", "resurrecting", "dormant"]].tolist() == [1, 1, 0, 2]
    assert rows.loc[w2, ["new", "returning", "resurrecting"]].tolist() == [0, 2, 1]
    assert rows.loc[w2, "in_progress"] and pd.isna(rows.loc[w2, "dormant"])
    assert not rows.loc[w1, "in_progress"]


def test_user_timeline_and_customer_summary_by_hand(engine):
    events = log_of(SHOP, engine)
    timeline = activity.user_timeline(events).set_index(C.user_id)
    us = lambda n, hours=10: day(n, hours).value // 1000  # noqa: E731
    assert timeline.loc["a", "first_visit"] == us(0) and timeline.loc["a", "second_visit"] == us(8)
    assert timeline.loc["a", "visits"] == 3 and timeline.loc["a", "orders"] == 1
    assert pd.isna(timeline.loc["c", "second_visit"]) and timeline.loc["c", "orders"] == 0
    assert timeline.loc["b", "first_order"] == day(15.51).value // 1000
    assert timeline.loc["d", "second_order"] == day(9.01).value // 1000 and timeline.loc["d", "orders"] == 3

    cut = day(12)
    summary = activity.customer_summary(events, cut).set_index(C.user_id)
    assert set(summary.index) == {"a", "d"}  # b's first order is after the cut
    d = summary.loc["d"]
    assert d["frequency"] == 1  # the orders of 09-14 and 09-16 before the cut; two purchases, one order
    assert d["recency"] == pytest.approx(2.0) and d["T"] == pytest.approx((cut - day(7.01)) / pd.Timedelta(days=1))
    assert d["monetary_value"] == pytest.approx(10.0)  # the repeat order: 7 + 3
    assert d["holdout_frequency"] == 1
    a = summary.loc["a"]
    assert a["frequency"] == 0 and a["recency"] == 0 and np.isnan(a["monetary_value"])


def test_a_segment_missing_from_the_log_is_named(engine):
    with pytest.raises(SchemaError, match=r"retention.segment names 'device'"):
        activity.user_timeline(log_of(SHOP, engine), "device")


# --------------------------------------------------------------------------- Kaplan–Meier


def brute_force_km(durations, observed, t):
    """Product-limit estimate and Greenwood variance at ``t``, written out."""
    s, greenwood = 1.0, 0.0
    for time in sorted(set(durations[observed])):
        if time > t:
            break
        at_risk = int((durations >= time).sum())
        events = int(((durations == time) & observed).sum())
        s *= 1 - events / at_risk
        if at_risk > events:
            greenwood += events / (at_risk * (at_risk - events))
    return s, s * s * greenwood


def test_kaplan_meier_matches_the_product_limit_and_greenwoods_log_log_interval():
    rng = np.random.default_rng(3)
    durations = np.round(rng.exponential(10, 300), 1)
    observed = rng.uniform(size=300) < 0.7
    curve = kaplan_meier(durations, observed)
    for t in (2, 5, 10, 20):
        s, variance = brute_force_km(durations, observed, t)
        estimate, low, high = curve.at(t)
        assert estimate == pytest.approx(s, rel=1e-12)
        spread = 1.959963984540054 * np.sqrt(variance) / (s * abs(np.log(s)))
        assert (low, high) == pytest.approx((s ** np.exp(spread), s ** np.exp(-spread)), rel=1e-9)


def test_censored_visitors_are_not_counted_as_never_returning():
    # everyone returns after exactly 10 days, but half arrive 5 days before the data ends
    durations = np.array([10.0] * 50 + [5.0] * 50)
    observed = np.array([True] * 50 + [False] * 50)
    curve = kaplan_meier(durations, observed)
    assert curve.at(4)[0] == 1.0
    assert curve.at(10)[0] == 0.0  # all who were watched 10 days came back: not 50%
    assert curve.at(11, min_at_risk=1) == (0.0, 0.0, 0.0) or np.isnan(curve.at(11)[0])


def test_times_nobody_was_watched_for_give_no_estimate():
    curve = kaplan_meier([1.0, 2.0, 3.0], [True, False, False])
    assert np.isnan(curve.at(3.5)[0])
    assert curve.at(2.5, min_at_risk=1)[0] == pytest.approx(2 / 3)
    assert np.isnan(curve.at(2.5, min_at_risk=2)[0])


def test_pointwise_intervals_cover_the_true_curve_about_95_percent_of_the_time():
    rng = np.random.default_rng(11)
    t, truth, hits, trials = 7.0, np.exp(-7.0 / 10), 0, 400
    for _ in range(trials):
        event = rng.exponential(10, 200)
        censor = rng.uniform(0, 30, 200)
        curve = kaplan_meier(np.minimum(event, censor), event <= censor)
        _, low, high = curve.at(t)
        hits += low <= truth <= high
    assert 0.92 <= hits / trials <= 0.98


def test_bad_durations_are_rejected():
    with pytest.raises(DataError, match="negative or not finite"):
        kaplan_meier([1.0, -2.0], [True, True])


def test_log_rank_separates_different_curves_and_not_equal_ones():
    rng = np.random.default_rng(5)
    fast, slow = rng.exponential(5, 400), rng.exponential(10, 400)
    groups = pd.Series(["fast"] * 400 + ["slow"] * 400)
    different = compare(np.concatenate([fast, slow]), np.ones(800, bool), groups, "speed")
    assert different.pvalue < 1e-6 and [c.label for c in different.curves] == ["fast", "slow"]
    same = compare(rng.exponential(5, 800), np.ones(800, bool), groups, "speed")
    assert same.pvalue > 0.01


def test_small_and_missing_segment_values_are_pooled():
    values = pd.Series(["a"] * 40 + ["b"] * 5 + [None] * 35)
    labels = group_labels(values, min_units=30)
    assert labels.value_counts().to_dict() == {"a": 40, "(missing)": 35, "(other)": 5}


# --------------------------------------------------------------------------- the study


@pytest.fixture(scope="module")
def small_shop(tmp_path_factory):
    from funnelkit.groundtruth import Planted
    from funnelkit.simulate import simulate

    dataset = simulate(SimulationParams(n_users=6000, days=35, seed=4), tmp_path_factory.mktemp("shop"))
    events = EventLog.from_parquet(dataset.events_path)
    truth = Planted(dataset)
    spec = RetentionParams(segment="customer_type", return_within="14D")
    return run(events, spec, currency="EUR", truth=truth), truth


def test_the_study_recovers_the_planted_return_times(small_shop):
    study, truth = small_shop
    check = truth.return_check(study)
    assert len(check) == 10
    assert check["z"].abs().max() < 3  # every planted share within three standard errors
    assert check["inside"].mean() >= 0.8


def test_bgnbd_recovers_the_planted_return_process_of_the_default_shop():
    from pathlib import Path

    from funnelkit.groundtruth import Planted
    from funnelkit.params import load_params
    from funnelkit.simulate import ensure_dataset

    params = load_params(Path(__file__).resolve().parents[1] / "params" / "default.yaml")
    truth = Planted(ensure_dataset(params.simulation))
    fit = truth.return_process_fit()
    assert len(fit) == 8 and fit["inside"].all(), fit
    # the report's holdout check on the shop it is made on: the calibration fit predicts the last quarter's repeat
    # orders (a few hundred) to within a fifth
    study = run(EventLog.from_parquet(truth.dataset.events_path), params.retention, currency="EUR", truth=truth)
    totals = study.value.holdout_totals
    assert totals["actual"] > 100
    assert totals["predicted"] == pytest.approx(totals["actual"], rel=0.2), totals


def test_the_study_leaves_the_planted_fraud_out_and_reports_what_it_measured(small_shop):
    study, truth = small_shop
    assert not set(study.timeline[C.user_id]) & truth.anomalous_accounts
    metrics = {m.name: m for m in study.metrics()}
    share = metrics["return_within_share"]
    assert 0 < share.ci[0] < share.value < share.ci[1] < 1
    assert metrics["customers"].value == study.repurchase.n > 100
    value = study.value
    assert value.purchases is not None and value.holdout_totals["actual"] > 0
    # the holdout totals, recomputed: the orders (sessions with a purchase) after the cut of every customer who
    # ordered before it, and the calibration fit's expected orders of those customers over the held-out days
    events = pd.read_parquet(truth.dataset.events_path, columns=[C.user_id, C.session_id, C.event_time,
                                                                   C.event_type])
    orders = (events[events[C.event_type] == "purchase"].groupby(C.session_id)
              .agg(user=(C.user_id, "first"), time=(C.event_time, "min")))
    orders = orders[~orders["user"].isin(truth.anomalous_accounts)]
    early = set(orders.loc[orders["time"] < value.cut, "user"])
    assert value.holdout_totals["customers"] == len(early)
    assert value.holdout_totals["actual"] == int((orders["user"].isin(early) & (orders["time"] >= value.cut)).sum())
    summary = activity.customer_summary(EventLog.from_parquet(truth.dataset.events_path)
                                        .without_users(truth.anomalous_accounts), value.cut)
    expected = value.calibration.conditional_expected_purchases(value.holdout_totals["days"], summary["frequency"],
                                                                summary["recency"], summary["T"])
    assert value.holdout_totals["predicted"] == pytest.approx(float(np.sum(expected)), rel=1e-12)
    headline = study.headline()
    assert "come back within 14 days" in headline and "log-rank p" in headline
    values = study.customer_values()
    assert len(values) == len(value.summary) and values["probability_active"].between(0, 1).all()
    assert values["expected_orders"].is_monotonic_decreasing or "expected_value" in values


def test_a_log_without_prices_or_repeat_orders_says_what_it_cannot_estimate(engine):
    rows = [(u, f"{u}{k}", k * 3 + i * 0.1, "view") for i, u in enumerate("abcdefgh") for k in range(3)]
    rows += [("a", "a0", 0.05, "purchase")]
    events = log_of(rows, engine)
    study = run(events, RetentionParams(return_within="30D"))
    metrics = {m.name: m for m in study.metrics()}
    assert metrics["return_within_share"].value.startswith("not estimable")
    assert metrics["new_customer_value"].value.startswith("not estimated")
    assert "Customer value not estimated" in study.headline()



def test_a_model_that_cannot_be_fitted_is_said_in_words_with_the_optimisers_account_in_a_note(engine, monkeypatch):
    rows = [(f"u{i}", f"u{i}-{k}", i * 0.2 + k * 5, "purchase", 20.0) for i in range(40) for k in range(2)]
    message = "BG/NBD: the maximum likelihood fit did not converge from 3 start(s) (it stopped at r=2.02e+05, ...)"

    def fails(self, *columns):
        raise DataError(message)

    monkeypatch.setattr(clv.BetaGeo, "fit", fails)
    study = run(log_of(rows, engine), RetentionParams(return_within="7D"))
    headline = study.headline()
    assert "Customer value not estimated**: " + escape_md("the repeat-order model could not be fitted on these 40 "
                                                          "customers (40 with a repeat order)") in headline
    assert "r=2.02e+05" not in headline  # the optimiser's stopping point is not a headline
    assert study.value.notes == [f"Why the repeat-order model was not fitted: {message}."]

def test_the_study_gives_the_same_answers_on_spark(spark):
    from pathlib import Path

    from funnelkit.engines.spark import SparkEngine
    from funnelkit.groundtruth import Planted
    from funnelkit.params import load_params
    from funnelkit.simulate import ensure_dataset

    params = load_params(Path(__file__).resolve().parents[1] / "params" / "ci.yaml")
    dataset = ensure_dataset(params.simulation)
    truth = Planted(dataset)
    studies = {name: run(EventLog.from_parquet(dataset.events_path, engine), params.retention, truth=truth)
               for name, engine in (("duckdb", None), ("spark", SparkEngine(spark)))}
    duck, on_spark = studies["duckdb"], studies["spark"]
    for table in ("cohorts", "lifecycle", "timeline"):
        pd.testing.assert_frame_equal(getattr(on_spark, table), getattr(duck, table), check_dtype=False, obj=table)
    pd.testing.assert_frame_equal(on_spark.value.summary, duck.value.summary, check_dtype=False)
    pd.testing.assert_frame_equal(on_spark.summary(), duck.summary())


class _BoundaryFit:
    """A stand-in model whose fit lands on a boundary (as BG/NBD does when every customer drops out alike)."""

    def fit(self, *columns):
        self.params_ = pd.Series({"r": 0.22, "alpha": 25.4, "a": 5.6e5, "b": 2.9e6})
        warnings.warn("BG/NBD: the observed information is not positive definite", clv.BoundaryWarning)
        warnings.warn("an unrelated warning", UserWarning)
        return self


def test_a_fit_on_a_boundary_is_said_in_words_in_the_report_not_printed_as_a_warning():
    from funnelkit.retention.study import _fit

    notes = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fitted, failure = _fit(_BoundaryFit(), [1], what="The holdout check's fit", notes=notes,
                               consequence=", so nothing")
    assert failure is None and fitted.params_["a"] == 5.6e5
    # the boundary warning became a note; any other warning still reaches the caller
    assert [w.category for w in caught] == [UserWarning]
    assert len(notes) == 1 and notes[0].startswith("The holdout check's fit sits where the data cannot tell")
    assert "a = 5.6e+05" in notes[0] and "same chance, 16%, to stop" in notes[0] and notes[0].endswith(", so nothing.")


class _LooseFit:
    """A stand-in model whose fit is regular but leaves a and b almost free (as on a log of a few repeat customers)."""

    def fit(self, *columns):
        self.params_ = pd.Series({"r": 1.3, "alpha": 147.0, "a": 2.576e5, "b": 1.046e5})
        return self

    def summary(self):
        return pd.DataFrame({"coef": self.params_, "ci_lower": [0.5, 60.0, 1.3e-13, 1.2e-13],
                             "ci_upper": [3.0, 400.0, 5.0e23, 8.9e22]})


def test_a_parameter_the_data_barely_pins_down_is_said_in_words():
    from funnelkit.retention.study import _fit

    notes = []
    _fit(_LooseFit(), [1], what="The repeat-order model (BG/NBD)", notes=notes)
    assert notes == ["The repeat-order model (BG/NBD): the data pin down a, b only loosely (95% intervals spanning "
                     "more than a factor of 10,000; r = 1.3, alpha = 147, a = 2.58e+05, b = 1.05e+05; a very large "
                     "a and b mean every customer has about the same chance, 71%, to stop after an order)."]
