"""The engine against what the simulator planted, on a small built-in shop."""
import numpy as np
import pandas as pd
import pytest

from funnelkit.data import load_events
from funnelkit.funnel import run_funnel
from funnelkit.groundtruth import planted_step_check, step_check_metrics
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


def test_step_check_metrics_count_the_rates_inside_their_interval_and_the_largest_z():
    check = pd.DataFrame({"step": ["cart", "checkout", "purchase"], "inside": [True, False, True], "z": [0.5, -2.5, 1.0]})
    figures = {m.name: m.value for m in step_check_metrics(check)}
    assert figures == {"planted_steps_inside_ci": 2, "planted_steps_total": 3, "planted_max_abs_z": 2.5}


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
    units = result.units(resolved=None)
    units = units[~units["censored"]]
    day = pd.to_datetime(units["entry"], unit="us", utc=True).dt.strftime("%Y-%m-%d")
    at_previous = units["depth"] >= k
    rate = (units["depth"] > k)[at_previous].groupby(day[at_previous]).mean()
    others = rate.drop(incident["date"])
    assert rate[incident["date"]] < 0.5 * np.median(others)


def test_driver_recovery_holds_each_estimate_against_its_planted_coefficient():
    from types import SimpleNamespace

    from funnelkit.groundtruth import driver_recovery, planted_effects

    truth = SimpleNamespace(steps={"cart": {"intercept": -2.0, "device[mobile]": -0.5, "log_price": -0.3}})
    effects = pd.DataFrame({"step": ["cart", "cart", "cart", "checkout"],
                            "term": ["device[mobile]", "log_price", "country[FR]", "device[mobile]"],
                            "coef": [-0.45, -0.1, 0.2, 0.05], "coef_low": [-0.6, -0.2, 0.1, -0.1],
                            "coef_high": [-0.3, 0.0, 0.3, 0.2], "p_value": [0.001, 0.04, 0.002, 0.5],
                            "p_adjusted": [0.004, 0.08, 0.006, 0.5]})
    table = planted_effects(effects, truth)
    # a term the simulator left out (country, any term of a step it did not plant) is planted at zero
    assert table["planted"].tolist() == [-0.5, -0.3, 0.0, 0.0]
    assert table["inside"].tolist() == [True, False, False, True]
    assert table.columns.tolist()[-3:] == ["planted", "inside", "p_adjusted"] and "planted" not in effects
    assert driver_recovery(effects, truth) == driver_recovery(table, truth) == {
        "inside": 2, "total": 4, "planted_nonzero_found": 1, "planted_nonzero": 2, "false_positives": 1}
