"""Time to return and time to repurchase: Kaplan–Meier curves, right-censored at the end of the data.

A user who has not come back by the end of the log is not "never returning": their time
is *censored* at the time they were observed. The Kaplan–Meier estimator (statsmodels'
``SurvfuncRight``) uses each user for exactly as long as they were watched, so users who
arrived late neither count as lost nor pull the curve down.

Intervals are pointwise 95% intervals on the log(-log) scale from Greenwood's variance
(as R's ``survival`` package and lifelines do by default), so they stay within [0, 1]:
with S the estimate and se its Greenwood standard error,
``S ** exp(± z · se / (S · |ln S|))``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.duration.survfunc import SurvfuncRight, survdiff

from ..errors import DataError

MISSING = "(missing)"
OTHER = "(other)"


@dataclass
class SurvivalCurve:
    """A Kaplan–Meier curve of time to an event (days), with pointwise intervals.

    Attributes
    ----------
    label : str
        Which group (a segment value, or ``"all"``).
    table : DataFrame
        One row per distinct event time: ``days``, ``at_risk``, ``events``, ``survival``
        (the share who have not had the event by then), ``ci_low``, ``ci_high``.
    n : int
        Units in the group; ``events``: how many had the event.
    durations : ndarray
        Each unit's time to the event or to the end of its observation (days).
    """

    label: str
    table: pd.DataFrame
    n: int
    events: int
    durations: np.ndarray
    _fit: SurvfuncRight | None = None

    @property
    def max_follow_up(self) -> float:
        """The longest time any unit was observed (days); 0 without units."""
        return float(self.durations.max()) if self.n else 0.0

    def at_risk(self, days: float) -> int:
        """Units watched for at least ``days`` without the event before: the basis of the estimate there."""
        return int((self.durations >= days).sum())

    def at(self, days: float, min_at_risk: int = 1) -> tuple[float, float, float]:
        """(survival, ci_low, ci_high) at ``days``; NaNs when fewer than ``min_at_risk`` units were still
        watched then (the curve says nothing about times nobody was observed for)."""
        if self.at_risk(days) < max(min_at_risk, 1):
            return (np.nan, np.nan, np.nan)
        before = self.table[self.table["days"] <= days]
        if before.empty:
            return (1.0, 1.0, 1.0)
        last = before.iloc[-1]
        return (float(last["survival"]), float(last["ci_low"]), float(last["ci_high"]))

    def median(self) -> tuple[float, float, float]:
        """Median time (days) with its 95% interval (statsmodels' cloglog method); NaN where not reached."""
        if self._fit is None or self.events == 0:
            return (np.nan, np.nan, np.nan)
        value = self._fit.quantile(0.5)
        low, high = self._fit.quantile_ci(0.5)
        return tuple(float(np.nan if v is None or not np.isfinite(v) else v) for v in (value, low, high))


def kaplan_meier(durations, observed, *, label: str = "all", alpha: float = 0.05) -> SurvivalCurve:
    """Kaplan–Meier estimate of the share without the event by each time.

    Parameters
    ----------
    durations : array-like of float
        Days from the start (first visit, first order) to the event, or to the end of
        observation for a censored unit. Must be finite and >= 0.
    observed : array-like of bool
        True when the event happened (False: censored at ``durations``).
    label : str
        Name of the group.
    alpha : float
        1 - confidence of the pointwise intervals.
    """
    durations = np.asarray(durations, dtype=float)
    observed = np.asarray(observed, dtype=bool)
    if durations.shape != observed.shape:
        raise ValueError("durations and observed must have the same length")
    bad = ~np.isfinite(durations) | (durations < 0)
    if bad.any():
        raise DataError(f"kaplan_meier: {int(bad.sum())} duration(s) are negative or not finite "
                        f"(first: {durations[bad][0]!r}); times must run forward from the start")
    empty = pd.DataFrame(columns=["days", "at_risk", "events", "survival", "ci_low", "ci_high"])
    if not observed.any():
        return SurvivalCurve(label, empty, len(durations), 0, durations)
    fit = SurvfuncRight(durations, observed.astype(float))
    s, se = fit.surv_prob, fit.surv_prob_se
    z = stats.norm.ppf(1 - alpha / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = z * se / (s * np.abs(np.log(s)))
        low, high = s ** np.exp(spread), s ** np.exp(-spread)
    # S = 1 has no log(-log) scale (no event yet) and S = 0 none either: the estimate is the interval
    edge = (s >= 1) | (s <= 0) | ~np.isfinite(spread)
    low, high = np.where(edge, s, low), np.where(edge, s, high)
    table = pd.DataFrame({"days": fit.surv_times, "at_risk": fit.n_risk.astype("int64"),
                          "events": fit.n_events.astype("int64"), "survival": s, "ci_low": low, "ci_high": high})
    return SurvivalCurve(label, table, len(durations), int(observed.sum()), durations, fit)


def group_labels(values: pd.Series, min_units: int, max_groups: int = 8) -> pd.Series:
    """Segment values as curve labels: missing → ``(missing)``; values with fewer than ``min_units`` units, or
    beyond the ``max_groups`` largest, pooled as ``(other)`` (a curve of a handful of users is noise)."""
    labels = values.astype(object).where(values.notna(), MISSING).astype(str)
    sizes = labels.value_counts()
    keep = set(sizes[sizes >= min_units].index[:max_groups])
    return labels.where(labels.isin(keep), OTHER)


@dataclass
class SurvivalComparison:
    """Kaplan–Meier curves of the groups of one segment and the log-rank test of their equality."""

    segment: str | None
    curves: list[SurvivalCurve]
    chi2: float
    dof: int
    pvalue: float


def compare(durations, observed, groups: pd.Series, segment: str | None) -> SurvivalComparison:
    """One curve per group and the log-rank test (statsmodels' ``survdiff``) across them.

    With one group there is nothing to compare: the test is NaN.
    """
    durations = np.asarray(durations, dtype=float)
    observed = np.asarray(observed, dtype=bool)
    groups = pd.Series(groups).reset_index(drop=True)
    order = groups.value_counts().index
    curves = [kaplan_meier(durations[(groups == g).to_numpy()], observed[(groups == g).to_numpy()], label=str(g))
              for g in order]
    chi2, pvalue, dof = np.nan, np.nan, len(order) - 1
    if len(order) > 1 and observed.any():
        chi2, pvalue = survdiff(durations, observed.astype(float), groups.to_numpy())
    return SurvivalComparison(segment, curves, float(chi2), int(dof), float(pvalue))
