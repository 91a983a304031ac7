"""Intervals and tests shared by the studies, delegated to statsmodels.

Rates are proportions of units; intervals are Wilson score intervals, which
keep their coverage for small counts and rates near 0 or 1 (unlike the
normal approximation that analytics tools often print).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from statsmodels.stats.contingency_tables import Table
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint


def wilson_interval(successes, trials, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for ``successes / trials`` (elementwise).

    Returns NaN bounds where ``trials`` is 0.
    """
    successes = np.asarray(successes, dtype=float)
    trials = np.asarray(trials, dtype=float)
    safe = np.where(trials > 0, trials, 1.0)
    low, high = proportion_confint(successes, safe, alpha=alpha, method="wilson")
    empty = trials <= 0
    return np.where(empty, np.nan, low), np.where(empty, np.nan, high)


def rate_frame(successes, trials, alpha: float = 0.05, prefix: str = "") -> pd.DataFrame:
    """``rate``, ``ci_low``, ``ci_high`` columns for successes/trials."""
    successes = np.asarray(successes, dtype=float)
    trials = np.asarray(trials, dtype=float)
    low, high = wilson_interval(successes, trials, alpha)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(trials > 0, successes / np.where(trials > 0, trials, 1), np.nan)
    return pd.DataFrame({f"{prefix}rate": rate, f"{prefix}ci_low": low, f"{prefix}ci_high": high})


def chi2_independence(counts: np.ndarray) -> dict:
    """Pearson chi-square test of independence of a groups x outcomes table.

    Rows or columns that are all zero are dropped first (they carry no
    information and would make the expected counts zero). Returns
    ``{"chi2", "dof", "pvalue", "min_expected"}``; NaN when fewer than two
    rows or columns remain. ``min_expected`` below 5 means the chi-square
    approximation is doubtful.
    """
    table = np.asarray(counts, dtype=float)
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0] if table.size else table
    if table.ndim != 2 or min(table.shape) < 2:
        return {"chi2": np.nan, "dof": 0, "pvalue": np.nan, "min_expected": np.nan}
    # shift_zeros=False: statsmodels would otherwise add 0.5 to every cell of a table with a zero
    # (common: a small segment with no conversions) and test a different table
    result = Table(table, shift_zeros=False).test_nominal_association()
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    return {
        "chi2": float(result.statistic),
        "dof": int(result.df),
        "pvalue": float(result.pvalue),
        "min_expected": float(expected.min()),
    }


def adjust_pvalues(pvalues, method: str = "holm") -> np.ndarray:
    """Multiple-testing adjusted p-values (Holm by default; ``fdr_bh`` for BH)."""
    pvalues = np.asarray(pvalues, dtype=float)
    out = np.full_like(pvalues, np.nan)
    ok = ~np.isnan(pvalues)
    if ok.any():
        out[ok] = multipletests(pvalues[ok], method=method)[1]
    return out
