"""Intervals and tests shared by the studies; the tests are delegated to scipy and statsmodels.

Rates are proportions of units; intervals are Wilson score intervals, which
keep their coverage for small counts and rates near 0 or 1 (unlike the
normal approximation that analytics tools often print).

scipy and statsmodels are imported inside the functions that test: every
funnel needs intervals, few need a test, and importing the two costs more
than half a second.
"""
from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pandas as pd


def wilson_interval(successes, trials, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for ``successes / trials`` (elementwise).

    Returns NaN bounds where ``trials`` is 0. The bounds are clamped exactly:
    0 successes give ``low == 0.0``, ``trials`` successes give ``high == 1.0``,
    and always ``0 <= low <= rate <= high <= 1``. statsmodels' closed formula
    leaves rounding errors of about 1e-17 there (0 of 7 gives a lower bound
    2.8e-17 *above* the rate), which would draw negative error bars and print
    as "4.3e-17%".
    """
    successes = np.asarray(successes, dtype=float)
    trials = np.asarray(trials, dtype=float)
    empty = trials <= 0
    safe = np.where(empty, 1.0, trials)
    rate = successes / safe
    # statsmodels' proportion_confint(method="wilson") formula (the tests hold the two together)
    z2 = NormalDist().inv_cdf(1 - alpha / 2) ** 2
    center = (rate + z2 / (2 * safe)) / (1 + z2 / safe)
    with np.errstate(invalid="ignore"):
        half = np.sqrt(z2 * (rate * (1 - rate) / safe + z2 / (4 * safe ** 2))) / (1 + z2 / safe)
    low, high = center - half, center + half
    low = np.where(successes <= 0, 0.0, np.clip(np.minimum(low, rate), 0.0, 1.0))
    high = np.where(successes >= safe, 1.0, np.clip(np.maximum(high, rate), 0.0, 1.0))
    return np.where(empty, np.nan, low), np.where(empty, np.nan, high)


def rate_frame(successes, trials, alpha: float = 0.05, prefix: str = "") -> pd.DataFrame:
    """``rate``, ``ci_low``, ``ci_high`` columns for successes/trials."""
    successes = np.asarray(successes, dtype=float)
    trials = np.asarray(trials, dtype=float)
    low, high = wilson_interval(successes, trials, alpha)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(trials > 0, successes / np.where(trials > 0, trials, 1), np.nan)
    return pd.DataFrame({f"{prefix}rate": rate, f"{prefix}ci_low": low, f"{prefix}ci_high": high})


#: Below this smallest expected count the chi-square approximation is not trusted (Cochran's rule).
MIN_EXPECTED = 5.0
#: Random tables drawn for the Monte-Carlo test (p-values resolve to 1 / 10,000).
MONTE_CARLO_TABLES = 9_999

TEST_NAMES = {
    "chi-square": "Pearson chi-square",
    "fisher": "Fisher's exact test (an expected count is under 5)",
    "monte-carlo": f"Monte-Carlo exact test, {MONTE_CARLO_TABLES:,} random tables (an expected count is under 5)",
    "none": "not tested (fewer than two values with units)",
}
"""Readable name of each ``method`` that :func:`chi2_independence` returns."""


def chi2_independence(counts: np.ndarray, seed: int = 0) -> dict:
    """Test of independence of a groups x outcomes table: chi-square, or exact when counts are small.

    Rows or columns that are all zero are dropped first (they carry no
    information and would make the expected counts zero). The statistic is
    always Pearson's chi-square; its p-value comes from

    - the chi-square distribution when the smallest expected count is at
      least :data:`MIN_EXPECTED` (``method="chi-square"``);
    - otherwise Fisher's exact test for a 2 x 2 table (``"fisher"``,
      scipy's two-sided test), or for a larger table a Monte-Carlo exact
      test (``"monte-carlo"``): the share of :data:`MONTE_CARLO_TABLES`
      random tables with the observed margins (scipy's ``random_table``)
      whose statistic is at least the observed one, counting the observed
      table too, so the p-value is never 0. Deterministic for ``seed``.

    Returns
    -------
    dict
        ``chi2``, ``dof``, ``pvalue``, ``min_expected`` (smallest expected
        count under independence) and ``method`` (a key of
        :data:`TEST_NAMES`). NaN statistic and p-value, ``method="none"``,
        when fewer than two rows or columns remain.
    """
    from scipy.stats import chi2, fisher_exact
    from scipy.stats.contingency import expected_freq

    table = np.asarray(counts, dtype=float)
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0] if table.size else table
    if table.ndim != 2 or min(table.shape) < 2:
        return {"chi2": np.nan, "dof": 0, "pvalue": np.nan, "min_expected": np.nan, "method": "none"}
    expected = expected_freq(table)
    statistic = _pearson(table, expected)
    dof = (table.shape[0] - 1) * (table.shape[1] - 1)
    min_expected = float(expected.min())
    if min_expected >= MIN_EXPECTED:
        method, pvalue = "chi-square", float(chi2.sf(statistic, dof))
    elif table.shape == (2, 2):
        method, pvalue = "fisher", float(fisher_exact(table.astype(np.int64)).pvalue)
    else:
        method, pvalue = "monte-carlo", _monte_carlo_pvalue(table, expected, statistic, seed)
    return {"chi2": float(statistic), "dof": int(dof), "pvalue": pvalue, "min_expected": min_expected,
            "method": method}


def _pearson(table: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Pearson's statistic of each table in ``table`` (last two axes) against ``expected``."""
    return ((table - expected) ** 2 / expected).sum(axis=(-2, -1))


def _monte_carlo_pvalue(table: np.ndarray, expected: np.ndarray, statistic: float, seed: int) -> float:
    from scipy.stats import random_table

    rows, cols = table.sum(axis=1).astype(np.int64), table.sum(axis=0).astype(np.int64)
    draws = random_table(rows, cols, seed=np.random.default_rng(seed)).rvs(MONTE_CARLO_TABLES)
    # a relative tolerance: a drawn table equal to the observed one must count as "at least as extreme"
    # even when the two sums of the same terms round differently
    extreme = np.count_nonzero(_pearson(draws, expected) >= statistic * (1 - 1e-9))
    return (extreme + 1) / (MONTE_CARLO_TABLES + 1)


def pool_small(frame: pd.DataFrame, key: str, size: str, min_size: int, unit: str = "units") -> pd.DataFrame:
    """Rows of ``frame`` whose ``size`` is under ``min_size`` summed into one row.

    The pooled row comes last; its ``key`` reads ``"other (3 values under 30
    units)"`` and every numeric column holds the sum over the pooled rows
    (so column totals are unchanged); other columns are left empty. Nothing
    changes when no row is under ``min_size``; a single small row is
    relabelled too, so the reader sees it was small.
    """
    small = frame[size] < min_size
    if not small.any():
        return frame.reset_index(drop=True)
    pooled = frame[small].sum(numeric_only=True).to_frame().T
    count = int(small.sum())
    pooled[key] = f"other ({count} value{'s' if count > 1 else ''} under {min_size:,} {unit})"
    pooled = pooled.astype({c: frame[c].dtype for c in pooled.columns if c != key})
    return pd.concat([frame[~small], pooled[[c for c in frame.columns if c in pooled.columns]]],
                     ignore_index=True)


def adjust_pvalues(pvalues, method: str = "holm") -> np.ndarray:
    """Multiple-testing adjusted p-values (Holm by default; ``fdr_bh`` for BH)."""
    from statsmodels.stats.multitest import multipletests

    pvalues = np.asarray(pvalues, dtype=float)
    out = np.full_like(pvalues, np.nan)
    ok = ~np.isnan(pvalues)
    if ok.any():
        out[ok] = multipletests(pvalues[ok], method=method)[1]
    return out
