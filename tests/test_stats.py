"""Intervals and tests, against closed formulas, scipy and brute force."""
import itertools
import math
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import chi2_contingency, fisher_exact

from funnelkit.stats import MONTE_CARLO_TABLES, adjust_pvalues, chi2_independence, pool_small, rate_frame, wilson_interval


def wilson_closed_form(k, n, z=1.959963984540054):
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


@pytest.mark.parametrize("k,n", [(0, 10), (3, 10), (10, 10), (512, 10_000)])
def test_wilson_matches_closed_form(k, n):
    low, high = wilson_interval([k], [n])
    assert (low[0], high[0]) == pytest.approx(wilson_closed_form(k, n))


@given(st.integers(1, 10**7).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
       st.sampled_from([0.01, 0.05, 0.1, 0.32]))
def test_wilson_agrees_with_statsmodels_inside_the_clamped_bounds(case, alpha):
    from statsmodels.stats.proportion import proportion_confint

    k, n = case
    low, high = wilson_interval([k], [n], alpha)
    ref_low, ref_high = proportion_confint(k, n, alpha=alpha, method="wilson")
    # statsmodels' own rounding errors at 0 and n successes are what wilson_interval clamps away
    assert low[0] == (0.0 if k == 0 else pytest.approx(min(ref_low, k / n), rel=1e-12, abs=1e-15))
    assert high[0] == (1.0 if k == n else pytest.approx(max(ref_high, k / n), rel=1e-12, abs=1e-15))


def test_zero_trials_give_nan_not_errors():
    frame = rate_frame([0, 1], [0, 2])
    assert np.isnan(frame["rate"][0]) and np.isnan(frame["ci_low"][0]) and frame["rate"][1] == 0.5


def test_chi2_matches_scipy_and_drops_empty_rows():
    table = np.array([[10, 90], [25, 75], [0, 0], [40, 60]])
    got = chi2_independence(table)
    expected = chi2_contingency(table[[0, 1, 3]], correction=False)
    assert got["chi2"] == pytest.approx(expected.statistic) and got["pvalue"] == pytest.approx(expected.pvalue)
    assert got["dof"] == 2
    assert np.isnan(chi2_independence(np.array([[5, 5]]))["pvalue"])


def test_holm_adjustment():
    adjusted = adjust_pvalues([0.01, 0.04, 0.03, np.nan])
    assert adjusted[:3] == pytest.approx([0.03, 0.06, 0.06]) and np.isnan(adjusted[3])


def test_chi2_with_a_zero_cell_tests_the_observed_table():
    """A segment with no conversions is common; its zero must not be smoothed away."""
    table = np.array([[0, 100], [30, 300]])  # smallest expected count 7.0
    expected = chi2_contingency(table, correction=False)
    got = chi2_independence(table)
    assert got["method"] == "chi-square"
    assert got["chi2"] == pytest.approx(expected.statistic) and got["pvalue"] == pytest.approx(expected.pvalue)


# --- intervals are clamped exactly -------------------------------------------------------------


@pytest.mark.parametrize("n", [7, 9, 12, 14, 18, 19, 20, 23, 28, 34])
def test_wilson_bounds_at_zero_and_all_successes_are_exact(n):
    """statsmodels gives 0/7 a lower bound 2.8e-17 above the rate (a negative error bar); these n all did."""
    low, high = wilson_interval([0, n], [n, n])
    assert low[0] == 0.0 and high[1] == 1.0
    assert low[0] <= 0 / n <= high[0] and low[1] <= n / n <= high[1]


@given(st.integers(1, 5_000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
       st.sampled_from([0.05, 0.01, 0.1]))
def test_wilson_interval_is_the_closed_form_clamped_exactly_at_zero_and_one(case, alpha):
    """The closed form where it is clean; exactly 0 at no successes and 1 at all (where it leaves 1e-17 noise)."""
    k, n = case
    low, high = wilson_interval([k], [n], alpha)
    closed_low, closed_high = wilson_closed_form(k, n, z=NormalDist().inv_cdf(1 - alpha / 2))
    if k == 0:
        assert low[0] == 0.0
    else:
        assert low[0] == pytest.approx(closed_low, rel=1e-12, abs=0)
    if k == n:
        assert high[0] == 1.0
    else:
        assert high[0] == pytest.approx(closed_high, rel=1e-12, abs=0)
    frame = rate_frame([k], [n], alpha)
    assert (frame["rate"][0], frame["ci_low"][0], frame["ci_high"][0]) == (k / n, low[0], high[0])


# --- small expected counts: an exact test, and which one ----------------------------------------


def expected_counts_by_hand(table):
    """Row total x column total / grand total, cell by cell."""
    table = np.asarray(table, dtype=float)
    total = table.sum()
    return [[table[i].sum() * table[:, j].sum() / total for j in range(table.shape[1])]
            for i in range(table.shape[0])]


def test_small_expected_count_in_a_2x2_table_uses_fishers_exact_test():
    # a small segment converting 3 of 7: expected counts 0.42, 6.6, 12.6 and 197, so the smallest is
    # under 5 and the largest far above; chi-square's p-value would be 170 times too small
    table = np.array([[3, 4], [10, 200]])
    got = chi2_independence(table)
    assert got["min_expected"] == pytest.approx(min(min(row) for row in expected_counts_by_hand(table)))
    assert got["method"] == "fisher"
    assert got["pvalue"] == pytest.approx(fisher_exact(table).pvalue)
    assert got["pvalue"] != pytest.approx(chi2_contingency(table, correction=False).pvalue, rel=0.5)
    assert got["chi2"] == pytest.approx(chi2_contingency(table, correction=False).statistic)


def test_expected_counts_of_at_least_five_keep_the_chi_square_test():
    table = np.array([[5, 5], [3, 7], [7, 3]])  # every expected count is 5.0 exactly
    got = chi2_independence(table)
    assert got["min_expected"] == pytest.approx(5.0) and got["method"] == "chi-square"
    assert got["pvalue"] == pytest.approx(chi2_contingency(table, correction=False).pvalue)


def exact_conditional_pvalue(table):
    """P(chi-square >= observed) over every k x 2 table with the observed margins, by enumeration.

    Given the margins, the first column is a multivariate hypergeometric draw of its total from the rows.
    """
    table = np.asarray(table)
    rows, first = table.sum(axis=1), int(table[:, 0].sum())
    expected = np.asarray(expected_counts_by_hand(table))
    observed = ((table - expected) ** 2 / expected).sum()
    total = 0.0
    for column in itertools.product(*(range(r + 1) for r in rows)):
        if sum(column) != first:
            continue
        draw = np.column_stack([column, rows - np.array(column)])
        probability = math.prod(math.comb(int(r), int(c)) for r, c in zip(rows, column)) / math.comb(int(rows.sum()), first)
        if ((draw - expected) ** 2 / expected).sum() >= observed - 1e-9:
            total += probability
    return total


@pytest.mark.parametrize("table", [[[0, 7], [3, 4], [6, 6]], [[1, 6], [2, 9], [0, 8], [5, 3]], [[0, 3], [3, 0], [4, 10]]])
def test_larger_tables_with_small_counts_get_a_monte_carlo_exact_pvalue(table):
    got = chi2_independence(np.array(table))
    exact = exact_conditional_pvalue(table)
    assert got["method"] == "monte-carlo"
    tolerance = 4 * math.sqrt(exact * (1 - exact) / MONTE_CARLO_TABLES) + 1 / MONTE_CARLO_TABLES
    assert abs(got["pvalue"] - exact) <= tolerance
    assert got["pvalue"] == chi2_independence(np.array(table))["pvalue"]  # deterministic


def test_a_single_value_is_not_tested():
    got = chi2_independence(np.array([[3, 4], [0, 0]]))
    assert got["method"] == "none" and np.isnan(got["pvalue"])


# --- pooling small segment values ---------------------------------------------------------------


@given(st.lists(st.tuples(st.integers(1, 80), st.integers(0, 80)), min_size=1, max_size=12), st.integers(0, 60))
def test_pooling_small_values_keeps_totals_and_big_values(rows, min_size):
    frame = pd.DataFrame({"value": [f"v{i}" for i in range(len(rows))],
                          "entrants": [a + b for a, b in rows], "converted": [b for _, b in rows]})
    pooled = pool_small(frame, "value", "entrants", min_size)
    assert pooled[["entrants", "converted"]].sum().tolist() == frame[["entrants", "converted"]].sum().tolist()
    big = frame[frame["entrants"] >= min_size]
    pd.testing.assert_frame_equal(pooled.iloc[:len(big)], big.reset_index(drop=True))
    small = frame[frame["entrants"] < min_size]
    if len(small):
        assert len(pooled) == len(big) + 1
        last = pooled.iloc[-1]
        assert last["value"] == f"other ({len(small)} value{'s' if len(small) > 1 else ''} under {min_size:,} units)"
        assert (last["entrants"], last["converted"]) == (small["entrants"].sum(), small["converted"].sum())
        assert pooled["entrants"].dtype == frame["entrants"].dtype
    else:
        assert len(pooled) == len(frame)


def test_breakdown_pools_small_values_before_the_intervals_and_the_test():
    from funnelkit.eventlog import EventLog
    from funnelkit.funnel import run_funnel
    from funnelkit.params import FunnelParams, StepSpec

    t0 = pd.Timestamp("2026-01-01", tz="UTC")
    rows, user = [], 0
    for device, units, converting in (("desktop", 40, 10), ("mobile", 40, 20), ("tablet", 3, 0), ("tv", 2, 2)):
        for i in range(units):
            user += 1
            rows.append((f"u{user}", t0, "view", device))
            if i < converting:
                rows.append((f"u{user}", t0 + pd.Timedelta(minutes=1), "cart", device))
    frame = pd.DataFrame(rows, columns=["user_id", "event_time", "event_type", "device"]).assign(session_id=lambda f: f["user_id"])
    spec = FunnelParams(steps=[StepSpec(name="view", events=["view"]), StepSpec(name="cart", events=["cart"])])
    result = run_funnel(EventLog.from_frame(frame), spec, data_end=pd.Timestamp("2026-02-01", tz="UTC"))
    raw, pooled = result.breakdown("device"), result.breakdown("device", min_units=30)
    assert len(raw.table) == 4 and pooled.table["value"].tolist() == ["desktop", "mobile", "other (2 values under 30 units)"]
    other = pooled.table.iloc[-1]
    assert (other["entrants"], other["converted"], other["reached_cart"]) == (5, 2, 2)
    low, high = wilson_interval([2], [5])
    assert (other["conversion"], other["ci_low"], other["ci_high"]) == pytest.approx((0.4, low[0], high[0]))
    assert pooled.table["share"].sum() == pytest.approx(1.0)
    counts = np.array([[10, 30], [20, 20], [2, 3]])
    assert pooled.test == chi2_independence(counts)
