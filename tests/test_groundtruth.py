"""The engine against what the simulator planted, on a small built-in shop."""
import numpy as np
import pandas as pd
import pytest

from funnelkit.data import load_events
from funnelkit.funnel import run_funnel
from funnelkit.groundtruth import planted_step_check
from funnelkit.params import FunnelParams, SimulationParams
from funnelkit.simulate import simulate

SHOP = SimulationParams(seed=21, n_users=5000, days=21, n_items=600, n_bots=4, click_farm_accounts=40,
                        fake_order_accounts=15)


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    dataset = simulate(SHOP, tmp_path_factory.mktemp("shop"))
    events = load_events(dataset.events_path)
    return dataset, events, run_funnel(events, FunnelParams(unit="session", window="1D"))


def test_session_step_counts_equal_the_simulated_outcomes(shop):
    """Every resolved session reaches exactly the step the simulator recorded in ``reached``."""
    dataset, events, result = shop
    sessions = dataset.sessions()
    resolved = sessions[sessions["start"] + pd.Timedelta(days=1) <= result.data_end]
    expected = [len(resolved)] + [int((resolved["reached"] >= k).sum()) for k in (1, 2, 3)]
    assert result.steps["entrants"].tolist() == expected


def test_planted_rates_fall_inside_the_reported_intervals(shop):
    dataset, _, result = shop
    check = planted_step_check(result, dataset.directory / "sessions.parquet")
    assert check["step"].tolist() == ["cart", "checkout", "purchase"]
    assert check["inside"].all() and (check["z"].abs() < 3).all()
    # the expected rate is the mean planted probability over the sessions at the previous step
    sessions = dataset.sessions()
    resolved = sessions[sessions["start"] + pd.Timedelta(days=1) <= result.data_end]
    at_cart = resolved[resolved["reached"] >= 0]
    assert check["expected"].iloc[0] == pytest.approx(at_cart["p_cart"].mean(), rel=1e-12)
    at_checkout = resolved[resolved["reached"] >= 1]
    assert check["expected"].iloc[1] == pytest.approx(at_checkout["p_checkout"].mean(), rel=1e-12)


def test_planted_check_needs_the_session_funnel(shop):
    dataset, events, _ = shop
    users = run_funnel(events, FunnelParams())
    with pytest.raises(ValueError, match="unit='session'"):
        planted_step_check(users, dataset.directory / "sessions.parquet")


def test_incident_day_shows_as_a_broken_step(shop):
    """The planted incident cuts one step's daily conversion far below its other days."""
    dataset, _, result = shop
    incident = dataset.ground_truth["incidents"][0]
    k = result.step_names.index(incident["step"])
    units = result.unit_frame()
    units = units[~units["censored"]]
    day = pd.to_datetime(units["entry"], unit="us", utc=True).dt.strftime("%Y-%m-%d")
    at_previous = units["depth"] >= k
    rate = (units["depth"] > k)[at_previous].groupby(day[at_previous]).mean()
    others = rate.drop(incident["date"])
    assert rate[incident["date"]] < 0.5 * np.median(others)
