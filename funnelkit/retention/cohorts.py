"""The cohort matrix: who comes back, period by period, with periods not yet over kept apart.

Product-analytics tools commonly show the current, unfinished period of every cohort as a
rate, so it reads as a fall (or 0%) and the number changes when the period ends. Here a
cell whose period has not ended by the end of the data is *in progress*: it has its count
so far but no rate, and presentation must never show it as one.
"""
from __future__ import annotations

import pandas as pd
from statsmodels.stats.proportion import proportion_confint

PERIOD_OFFSETS = {"week": pd.DateOffset(weeks=1), "month": pd.DateOffset(months=1)}


def cohort_matrix(sizes: pd.DataFrame, active: pd.DataFrame, *, period: str, periods: int,
                  data_start: pd.Timestamp, data_end: pd.Timestamp, alpha: float = 0.05) -> pd.DataFrame:
    """Shares of each cohort active k periods after its own, as a long table.

    Parameters
    ----------
    sizes, active : DataFrame
        From :func:`funnelkit.retention.activity.cohort_counts`.
    period : {"week", "month"}
    periods : int
        Columns k = 0 … ``periods - 1``; later periods are left out.
    data_start, data_end : Timestamp
        First and last event of the log (UTC).
    alpha : float
        1 - confidence of the Wilson intervals.

    Returns
    -------
    DataFrame
        One row per cohort and k whose period has begun by ``data_end``:
        ``cohort`` (period start), ``k``, ``period`` (start of the cohort's k-th period),
        ``users`` (cohort size), ``active`` (users of the cohort active in that period, so far
        when in progress), ``share`` = active / users with its Wilson interval ``ci_low``,
        ``ci_high`` — all three NaN when ``in_progress`` — ``in_progress`` (the period ends
        after ``data_end``: more users may still come back in it), and ``partial_cohort``
        (the cohort's own period began before the log: users first seen then include earlier
        customers whose first visit the log cannot see).
    """
    offset = PERIOD_OFFSETS[period]
    rows = []
    counts = active.set_index(["cohort", "period"])["users"]
    for cohort, users in zip(sizes["cohort"], sizes["users"]):
        for k in range(periods):
            start = cohort + k * offset
            if start > data_end:
                break
            rows.append({"cohort": cohort, "k": k, "period": start, "users": int(users),
                         "active": int(counts.get((cohort, start), 0))})
    columns = ["cohort", "k", "period", "users", "active", "share", "ci_low", "ci_high", "in_progress",
               "partial_cohort"]
    if not rows:
        return pd.DataFrame(columns=columns)
    table = pd.DataFrame(rows)
    table["in_progress"] = [start + offset > data_end for start in table["period"]]
    table["partial_cohort"] = table["cohort"] < data_start
    low, high = proportion_confint(table["active"], table["users"], alpha=alpha, method="wilson")
    closed = ~table["in_progress"]
    table["share"] = (table["active"] / table["users"]).where(closed)
    table["ci_low"] = pd.Series(low, index=table.index).where(closed)
    table["ci_high"] = pd.Series(high, index=table.index).where(closed)
    return table[columns]


def wide(table: pd.DataFrame, value: str = "share") -> pd.DataFrame:
    """The cohort matrix as cohorts × k (NaN where in progress or not begun)."""
    return table.pivot(index="cohort", columns="k", values=value)


def average_curve(table: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Share active k periods after the cohort's, pooled over every cohort whose k-th period is over.

    Each k pools only finished cells (users and active summed over them), so a cohort
    too young to have a finished k-th period does not pull the curve down. Columns ``k``,
    ``cohorts``, ``users``, ``active``, ``share``, ``ci_low``, ``ci_high`` (Wilson).
    """
    done = table[~table["in_progress"]]
    pooled = done.groupby("k").agg(cohorts=("cohort", "size"), users=("users", "sum"), active=("active", "sum"))
    pooled = pooled.reset_index()
    if pooled.empty:
        return pooled.assign(share=[], ci_low=[], ci_high=[])
    low, high = proportion_confint(pooled["active"], pooled["users"], alpha=alpha, method="wilson")
    return pooled.assign(share=pooled["active"] / pooled["users"], ci_low=low, ci_high=high)
