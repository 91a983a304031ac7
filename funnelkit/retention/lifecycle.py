"""Lifecycle: each period's users as new, returning or resurrecting, and those who went dormant.

For a period P (calendar week or month) and a user active in it (any event):

- **new**: P is the user's first active period in the log;
- **returning**: the user was also active in the period before P;
- **resurrecting**: the user was active before, but not in the period before P.

A user active in the period before P but not in P went **dormant** in P. The last period of
the log is in progress when it ends after the data does: users may still come in it, so its
counts are marked and its dormant count is only provisional.
"""
from __future__ import annotations

import pandas as pd

from .cohorts import PERIOD_OFFSETS

STATES = ("new", "returning", "resurrecting", "dormant")


def lifecycle_table(patterns: pd.DataFrame, *, period: str, data_end: pd.Timestamp) -> pd.DataFrame:
    """Users per period and lifecycle state.

    Parameters
    ----------
    patterns : DataFrame
        From :func:`funnelkit.retention.activity.activity_patterns`.
    period : {"week", "month"}
    data_end : Timestamp
        The last event of the log (UTC).

    Returns
    -------
    DataFrame
        One row per period from the first active one to the one holding ``data_end``:
        ``period`` (start, UTC), ``new``, ``returning``, ``resurrecting``, ``dormant`` (users,
        nullable Int64), ``active`` (new + returning + resurrecting), ``in_progress`` (the period
        ends after ``data_end``). ``dormant`` is missing (``<NA>``) in a period in progress.
    """
    offset = PERIOD_OFFSETS[period]
    columns = ["period", *STATES, "active", "in_progress"]
    if patterns.empty:
        return pd.DataFrame(columns=columns)
    p = patterns
    before = p["period"] - offset
    state = pd.Series("resurrecting", index=p.index)
    state[p["previous"] == before] = "returning"
    state[p["is_new"]] = "new"
    counts = p.groupby([p["period"], state])["users"].sum().unstack(fill_value=0)
    # dormant in P: active in the period before P, next active later than P (or never)
    follow = p["period"] + offset
    went = p["next"].isna() | (p["next"] > follow)
    dormant = p[went].groupby(follow[went])["users"].sum()
    calendar = pd.date_range(p["period"].min(), data_end, freq="W-MON" if period == "week" else "MS")
    calendar = calendar[calendar <= data_end]
    table = counts.reindex(calendar, fill_value=0).reindex(columns=list(STATES[:3]), fill_value=0)
    table["dormant"] = dormant.reindex(calendar, fill_value=0)
    table = table.rename_axis("period").reset_index()
    table[list(STATES)] = table[list(STATES)].astype("Int64")
    table["active"] = table[["new", "returning", "resurrecting"]].sum(axis=1)
    table["in_progress"] = table["period"] + offset > data_end
    table.loc[table["in_progress"], "dormant"] = pd.NA
    return table[columns]
