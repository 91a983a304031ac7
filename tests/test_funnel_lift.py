"""The worst step lifted to its best segment's rate: hand computations, a simulation of the interval, reasons."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from funnelkit.eventlog import EventLog
from funnelkit.funnel import lift_to_best_segment, run_funnel
from funnelkit.funnel.lift import lift_estimate
from funnelkit.params import FunnelParams, StepSpec
from funnelkit.schema import COLUMNS

T0 = pd.Timestamp("2026-03-02", tz="UTC")
END = T0 + pd.Timedelta(days=30)
SPEC = FunnelParams(steps=[StepSpec(name=s, events=[s]) for s in ("view", "cart", "purchase")], window="1D")


def test_lift_estimate_matches_a_hand_computation():
    # best segment 50 of 200 pass (25%), the other 800 units 80 (10%); 65 of the 130 who passed bought
    # (d = 0.5) spending 40 on average (sd 20)
    got = lift_estimate(200, 50, 800, 80, 65, revenue_mean=40.0, revenue_std=20.0, revenue_units=65)
    extra = 800 * (0.25 - 0.10)                                       # 120 more pass the step
    var_extra = 800 ** 2 * (0.25 * 0.75 / 200 + 0.10 * 0.90 / 800)   # 672
    var_conversions = 0.5 ** 2 * var_extra + extra ** 2 * (0.5 * 0.5 / 130)
    var_revenue = 40 ** 2 * var_conversions + (extra * 0.5) ** 2 * (20 ** 2 / 65)
    assert got["extra_passed"] == pytest.approx(120) and got["downstream"] == pytest.approx(0.5)
    assert got["extra_conversions"] == pytest.approx(60) and got["extra_revenue"] == pytest.approx(2400)
    assert got["conversions_se"] == pytest.approx(math.sqrt(var_conversions), rel=1e-12)
    assert got["revenue_se"] == pytest.approx(math.sqrt(var_revenue), rel=1e-12)
    low, high = got["revenue_ci"]
    assert (low, high) == pytest.approx((2400 - 1.959964 * math.sqrt(var_revenue), 2400 + 1.959964 * math.sqrt(var_revenue)))


def test_lift_interval_covers_the_true_value_in_95_percent_of_simulated_shops():
    # the model the delta method assumes, drawn 3,000 times: binomial step rates, binomial downstream,
    # skewed order values; the estimator's spread must match the delta-method standard error, and the
    # interval must hold the true extra revenue about 95% of the time. The sizes give each of the three
    # sources a share of the variance (step rates 35%, downstream 20%, order value 45%): leaving one out
    # makes the intervals too narrow
    rng = np.random.default_rng(18)
    nb, rb, no, ro, d, shape, scale = 20_000, 0.16, 60_000, 0.11, 0.05, 0.5, 100.0
    truth = no * (rb - ro) * d * shape * scale
    estimates, ses, inside = [], [], 0
    for _ in range(3_000):
        xb, xo = rng.binomial(nb, rb), rng.binomial(no, ro)
        converted = rng.binomial(xb + xo, d)
        spend = rng.gamma(shape, scale, size=converted)
        got = lift_estimate(nb, xb, no, xo, converted, spend.mean(), spend.std(ddof=1), converted)
        estimates.append(got["extra_revenue"])
        ses.append(got["revenue_se"])
        inside += got["revenue_ci"][0] <= truth <= got["revenue_ci"][1]
    assert np.mean(estimates) == pytest.approx(truth, rel=0.02)
    assert np.mean(ses) == pytest.approx(np.std(estimates), rel=0.05)
    assert 0.935 <= inside / 3_000 <= 0.965


def _shop(prices: bool = True) -> EventLog:
    """Users of known segments: (device, channel, users, carted, bought, price of a purchase).

    desktop carts 20 of 40 (50%), mobile 6 of 60; tablet carts 5 of 5 but is too small to compete; users
    with no device (nor channel) cart 30 of 35 but "(missing)" never competes; both channels cart under 50%.
    """
    groups = [("desktop", "a", 20, 10, 5, 30.0), ("desktop", "b", 20, 10, 5, 30.0),
              ("mobile", "a", 30, 3, 2, 60.0), ("mobile", "b", 30, 3, 1, 60.0),
              ("tablet", "a", 5, 5, 0, 0.0), (None, None, 35, 30, 0, 0.0)]
    rows, user = [], 0
    for device, channel, users, carted, bought, price in groups:
        for i in range(users):
            t = T0 + pd.Timedelta(minutes=user)
            events = ["view"] + (["cart"] if i < carted else []) + (["purchase"] if i < bought else [])
            rows += [(f"u{user}", t + pd.Timedelta(seconds=j), e, device, channel, price if e == "purchase" else 1.0)
                     for j, e in enumerate(events)]
            user += 1
    # a repeat purchase after the converting one: in the log's revenue, not in the conversion's
    rows.append(("u0", T0 + pd.Timedelta(hours=2), "purchase", "desktop", "a", 99.0))
    frame = pd.DataFrame(rows, columns=[COLUMNS.user_id, COLUMNS.event_time, COLUMNS.event_type, "device", "channel",
                                        COLUMNS.price])
    frame[COLUMNS.session_id] = frame[COLUMNS.user_id]
    return EventLog.from_frame(frame if prices else frame.drop(columns=COLUMNS.price))


def test_the_best_segment_of_any_column_lifts_the_others_to_its_rate():
    result = run_funnel(_shop(), SPEC, data_end=END)
    lift = lift_to_best_segment(result, ["channel", "device"], step="cart", min_units=30)
    assert (lift.segment, lift.value, lift.best_units, lift.best_rate) == ("device", "desktop", 40, 0.5)
    assert (lift.units, lift.passed, lift.converted) == (140, 61, 13)
    # the other 100 users cart at 41/100; lifted to 50% that is 9 more carts, of which 13/61 buy,
    # at (10 × 30 + 3 × 60) / 13 per buyer
    assert lift.extra_conversions == pytest.approx(9 * 13 / 61)
    assert lift.revenue_per_conversion == pytest.approx(480 / 13)
    assert lift.extra_revenue == pytest.approx(9 * 13 / 61 * 480 / 13)
    assert lift.converted_revenue == pytest.approx(480)
    assert lift.conversions_ci[0] < lift.extra_conversions < lift.conversions_ci[1]
    assert lift.reason is None and lift.revenue_reason is None
    assert result.logged_revenue() == pytest.approx(480 + 99)
    spend = result.conversion_revenue()
    assert spend["units"] == 13 and spend["std"] == pytest.approx(np.std([30.0] * 10 + [60.0] * 3, ddof=1))


def test_the_default_step_is_the_worst_and_small_values_compete_when_allowed():
    result = run_funnel(_shop(), SPEC, data_end=END)
    assert lift_to_best_segment(result, ["device"], min_units=30).step == str(result.worst_step()["step"])
    small = lift_to_best_segment(result, ["device"], step="cart", min_units=5)
    assert (small.value, small.best_rate) == ("tablet", 1.0)


def test_without_segments_or_prices_the_lift_says_what_it_cannot_compute():
    result = run_funnel(_shop(), SPEC, data_end=END)
    none = lift_to_best_segment(result, [], step="cart")
    assert math.isnan(none.extra_conversions) and "no segment columns" in none.reason
    assert none.converted_revenue == pytest.approx(480)  # what the converting users spent is known all the same
    too_small = lift_to_best_segment(result, ["device"], step="cart", min_units=1_000)
    assert math.isnan(too_small.extra_revenue) and "no segment value has 1,000 units or more at view" in too_small.reason
    unpriced = lift_to_best_segment(run_funnel(_shop(prices=False), SPEC, data_end=END), ["device"], step="cart")
    assert unpriced.extra_conversions == pytest.approx(9 * 13 / 61)
    assert math.isnan(unpriced.extra_revenue) and unpriced.revenue_reason == "the log has no prices"
    with pytest.raises(ValueError, match="after the first"):
        lift_to_best_segment(result, ["device"], step="view")
