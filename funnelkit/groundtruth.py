"""Checks of a funnel result against what the simulator planted.

Only meaningful on the built-in simulated shop, whose ``sessions.parquet``
records for every session the planted probability of each step given the
previous one (``p_cart``, ``p_checkout``, ``p_purchase``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .eventlog import literal, quote
from .funnel import FunnelResult, run_funnel
from .params import FunnelParams
from .schema import COLUMNS, EVENTS
from .simulate import STEP_OF_PROBABILITY, ensure_dataset



def planted_step_check(result: FunnelResult, sessions_path: str | Path) -> pd.DataFrame:
    """Compare session-level step conversions with their planted expectation.

    For each step *k* after the first, over the resolved sessions that
    reached step *k-1*: ``expected`` is the mean planted probability of
    reaching step *k* (the exact expectation of the observed rate given
    those sessions), ``observed`` the engine's step conversion with its 95%
    Wilson interval, ``inside`` whether the interval contains the expected
    rate, and ``z`` = (observed count − Σp) / √Σp(1−p), the standardised
    difference under the planted Poisson-binomial model.

    Raises
    ------
    ValueError
        If the funnel is not counted per session or its steps are not the
        planted view → cart → checkout → purchase.
    """
    if result.spec.unit != "session":
        raise ValueError("the planted probabilities are per session: run the funnel with unit='session'")
    names = result.step_names
    if names[1:] != [n for n in STEP_OF_PROBABILITY if n in names] or names[0] != EVENTS.view:
        raise ValueError(f"planted steps are {EVENTS.funnel}, got {names}")
    con, rows = result.events.con, []
    source = f"read_parquet({literal(str(sessions_path))})"
    for k, name in enumerate(names[1:], start=1):
        column = quote(STEP_OF_PROBABILITY[name])
        total, successes, p_sum, p_var = con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE u.depth > {k}), sum(s.{column}), sum(s.{column} * (1 - s.{column})) "
            f"FROM {result.units_table} u JOIN {source} s ON s.{quote(COLUMNS.session_id)} = u.unit "
            f"WHERE NOT u.censored AND u.depth >= {k}"
        ).fetchall()[0]
        step = result.steps.iloc[k]
        expected = p_sum / total if total else np.nan
        rows.append({
            "step": name,
            "sessions": int(total),
            "expected": expected,
            "observed": step["step_conversion"],
            "ci_low": step["step_ci_low"],
            "ci_high": step["step_ci_high"],
            "inside": bool(step["step_ci_low"] <= expected <= step["step_ci_high"]),
            "z": (successes - p_sum) / np.sqrt(p_var) if p_var else np.nan,
        })
    return pd.DataFrame(rows)


def planted_check(params, events) -> pd.DataFrame | None:
    """:func:`planted_step_check` on the session-level default funnel of the
    built-in shop; None when the events are not the simulator's."""
    if params.data.source is not None:
        return None
    dataset = ensure_dataset(params.simulation)
    # the planted steps, per session; one day is longer than any simulated
    # session, so only the last day's sessions are censored
    sessions = run_funnel(events, FunnelParams(unit="session", window="1D"))
    return planted_step_check(sessions, dataset.directory / "sessions.parquet")


def anomalous_accounts(params) -> set | None:
    """User ids the built-in shop labels as bots, click farm or fake orders; None for other data.

    Studies of customer behaviour leave them out on the simulated shop so that
    their estimates can be checked against the planted truth.
    """
    if params.data.source is not None:
        return None
    labels = ensure_dataset(params.simulation).labels()
    return set(labels.loc[labels["label"] != "human", COLUMNS.user_id])
