"""The trend a report draws: a shop whose conversion never changes draws a flat line.

Counted per user from their first visit, a flat shop seems to decline: the log has no history before
its start, so people who visit often are first seen early and convert more within their window. Counted
per session (what notebook 01 draws), each period holds that period's visits and the line is flat.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import chi2_contingency

from funnelkit.engines import open_events
from funnelkit.eventlog import EventLog
from funnelkit.funnel import run_funnel
from funnelkit.params import FunnelParams, StepSpec, load_params
from funnelkit.schema import COLUMNS
from funnelkit.simulate import ensure_dataset

ROOT = Path(__file__).resolve().parents[1]
T0 = pd.Timestamp("2026-03-02", tz="UTC")  # a Monday
RATE = 0.08
SPEC = FunnelParams(steps=[StepSpec(name="view", events=["view"]), StepSpec(name="purchase", events=["purchase"])],
                    window="7D")


def _flat_shop(n_users: int = 6_000, days: int = 70, seed: int = 3) -> EventLog:
    """Every session buys with probability RATE, at any time; 30% of users visit about 9 times, the rest 1.2."""
    rng = np.random.default_rng(seed)
    mean_extra = np.where(rng.uniform(size=n_users) < 0.3, 8.0, 0.2)
    visits = 1 + rng.negative_binomial(0.35, 0.35 / (0.35 + mean_extra))
    user = np.repeat(np.arange(n_users), visits)
    views = pd.DataFrame({COLUMNS.user_id: [f"u{u}" for u in user],
                          COLUMNS.session_id: [f"s{s}" for s in range(len(user))],
                          COLUMNS.event_time: T0 + pd.to_timedelta(rng.uniform(0, days * 86_400, len(user)), unit="s"),
                          COLUMNS.event_type: "view"})
    buys = views[rng.uniform(size=len(user)) < RATE].assign(**{COLUMNS.event_type: "purchase"})
    buys[COLUMNS.event_time] += pd.Timedelta(minutes=5)
    return EventLog.from_frame(pd.concat([views, buys], ignore_index=True))


def _homogeneity_pvalue(trend: pd.DataFrame) -> float:
    closed = trend[trend["complete"]]
    return chi2_contingency(np.column_stack([closed["converted"], closed["entrants"] - closed["converted"]]))[1]


def test_a_flat_shop_draws_a_flat_session_trend_and_a_falling_first_visit_one():
    log = _flat_shop()
    sessions = run_funnel(log, SPEC, unit="session").trend()
    closed = sessions[sessions["complete"]]
    assert len(closed) >= 8
    z = (closed["converted"] - RATE * closed["entrants"]) / np.sqrt(RATE * (1 - RATE) * closed["entrants"])
    assert z.abs().max() < 3 and _homogeneity_pvalue(sessions) > 0.05
    # the measure the report used to draw: users by week of first visit, falling although nothing changed
    users = run_funnel(log, SPEC, unit="user").trend()
    first, last = users[users["complete"]].iloc[0], users[users["complete"]].iloc[-1]
    assert first["ci_low"] > last["ci_high"] and _homogeneity_pvalue(users) < 1e-4


def test_the_session_trend_of_the_ci_shop_follows_its_planted_weekly_rate():
    # the simulator plants no trend: each week's rate moves only with incident days and fake-order bursts,
    # so each closed week must agree with the mean planted probability of that week's sessions
    params = load_params(ROOT / "params" / "ci.yaml")
    trend = run_funnel(open_events(params), params.funnel, unit="session").trend()
    planted = ensure_dataset(params.simulation).sessions()
    start = pd.to_datetime(planted["start"], utc=True).dt.floor("D")
    planted["period"] = start - pd.to_timedelta(start.dt.weekday, unit="D")
    planted["p"] = planted["p_cart"] * planted["p_checkout"] * planted["p_purchase"]
    weekly = planted.groupby("period").agg(sessions=("p", "size"), expected=("p", "sum"),
                                           variance=("p", lambda p: (p * (1 - p)).sum()))
    closed = trend[trend["complete"]].merge(weekly, left_on="period", right_index=True)
    assert len(closed) >= 3 and (closed["entrants"] == closed["sessions"]).all()
    z = (closed["converted"] - closed["expected"]) / np.sqrt(closed["variance"])
    assert z.abs().max() < 3
