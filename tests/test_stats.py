"""Intervals and tests, against closed formulas and scipy."""
import numpy as np
import pytest
from scipy.stats import chi2_contingency

from funnelkit.stats import adjust_pvalues, chi2_independence, rate_frame, wilson_interval


def wilson_closed_form(k, n, z=1.959963984540054):
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


@pytest.mark.parametrize("k,n", [(0, 10), (3, 10), (10, 10), (512, 10_000)])
def test_wilson_matches_closed_form(k, n):
    low, high = wilson_interval([k], [n])
    assert (low[0], high[0]) == pytest.approx(wilson_closed_form(k, n))


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
    table = np.array([[0, 5], [3, 300]])
    expected = chi2_contingency(table, correction=False)
    got = chi2_independence(table)
    assert got["chi2"] == pytest.approx(expected.statistic) and got["pvalue"] == pytest.approx(expected.pvalue)
