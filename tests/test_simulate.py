"""The simulator writes what its documentation says it plants.

Each planted quantity is recomputed here independently from the written
files (events, sessions, items, user factors) and compared with the truth.
"""
import json

import duckdb
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from funnelkit.params import SimulationParams
from funnelkit.schema import COLUMNS, EVENTS, SEGMENTS
from funnelkit.simulate_journeys import PAGES
from funnelkit.simulate import (
    INCIDENT_FACTOR,
    PLANTED_STEPS,
    REFERENCE_PRICE,
    ensure_dataset,
    fingerprint,
    simulate,
)

SMALL = SimulationParams(seed=3, n_users=4000, days=28, n_items=800, n_bots=5, click_farm_accounts=60,
                         fake_order_accounts=20, incident_days=2)


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    return simulate(SMALL, tmp_path_factory.mktemp("shop"))


@pytest.fixture(scope="module")
def events(shop):
    return pd.read_parquet(shop.events_path)


@pytest.fixture(scope="module")
def big_shop(tmp_path_factory):
    """Enough sessions to estimate the planted coefficients precisely."""
    params = SimulationParams(seed=5, n_users=60_000, days=28, n_bots=0, click_farm_accounts=0,
                              fake_order_accounts=0, incident_days=0)
    return simulate(params, tmp_path_factory.mktemp("big"))


def test_same_seed_gives_identical_files_and_fingerprint(shop, tmp_path):
    again = simulate(SMALL, tmp_path)
    for name in ("events.parquet", "sessions.parquet", "labels.parquet", "items.parquet"):
        assert pd.read_parquet(again.directory / name).equals(pd.read_parquet(shop.directory / name)), name
    assert again.fingerprint == shop.fingerprint == fingerprint(SMALL)
    other = SMALL.model_copy(update={"seed": 4})
    assert fingerprint(other) != fingerprint(SMALL)
    assert fingerprint(SMALL.model_copy(update={"cache_dir": tmp_path})) == fingerprint(SMALL)


def test_events_have_the_canonical_schema_and_stay_in_the_period(events):
    assert list(events.columns[:7]) == list(COLUMNS.canonical)
    assert set(SEGMENTS.all) <= set(events.columns)
    assert str(events[COLUMNS.event_time].dt.tz) == "UTC"
    start = pd.Timestamp(SMALL.start, tz="UTC")
    assert events[COLUMNS.event_time].min() >= start
    assert events[COLUMNS.event_time].max() < start + pd.Timedelta(days=SMALL.days)
    assert set(events[COLUMNS.event_type]) == set(EVENTS.funnel) | set(PAGES)
    assert events[[COLUMNS.user_id, COLUMNS.session_id]].notna().all().all()
    # the funnel events name their item; the navigation pages have none
    funnel = events[COLUMNS.event_type].isin(EVENTS.funnel)
    assert events.loc[funnel, [COLUMNS.item_id, COLUMNS.category, COLUMNS.price]].notna().all().all()
    assert events.loc[~funnel, [COLUMNS.item_id, COLUMNS.category, COLUMNS.price]].isna().all().all()
    # every session belongs to one user and sessions of a user are separated by more than 30 minutes
    assert events.groupby(COLUMNS.session_id)[COLUMNS.user_id].nunique().max() == 1
    bounds = events.groupby(COLUMNS.session_id).agg(user=(COLUMNS.user_id, "first"), first=(COLUMNS.event_time, "min"),
                                                    last=(COLUMNS.event_time, "max")).sort_values(["user", "first"])
    same_user = bounds["user"].eq(bounds["user"].shift())
    gaps = bounds["first"] - bounds["last"].shift()
    assert (gaps[same_user] > pd.Timedelta(minutes=30)).all()


def test_sizes_are_realistic(events, shop):
    """Funnel-event mix near the public shops of shared/calibration.md (their logs hold only those events);
    most visitors come once."""
    share = events[COLUMNS.event_type].value_counts()[list(EVENTS.funnel)]
    share /= share.sum()
    assert 0.93 < share[EVENTS.view] < 0.985
    assert 0.005 < share[EVENTS.cart] < 0.04
    assert 0.002 < share[EVENTS.purchase] < 0.02
    sessions_per_user = shop.sessions().groupby(COLUMNS.user_id).size()
    assert (sessions_per_user == 1).mean() > 0.5
    assert sessions_per_user.max() >= 8  # a heavy tail


def test_events_match_the_recorded_session_outcomes(events, shop):
    sessions = shop.sessions().set_index(COLUMNS.session_id)
    counts = events.pivot_table(index=COLUMNS.session_id, columns=COLUMNS.event_type, aggfunc="size", fill_value=0)
    counts = counts.reindex(sessions.index, fill_value=0)
    end = pd.Timestamp(SMALL.start, tz="UTC") + pd.Timedelta(days=SMALL.days)
    whole = sessions["start"] < end - pd.Timedelta(days=1)  # the last day's sessions may be cut off at the end
    assert (counts.loc[whole, EVENTS.view] == sessions.loc[whole, "n_views"]).all()
    for k, step in enumerate((EVENTS.cart, EVENTS.checkout, EVENTS.purchase), start=1):
        assert (counts.loc[whole, step] == (sessions.loc[whole, "reached"] >= k)).all(), step


def _features(sessions: pd.DataFrame, events: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """The planted features, rebuilt from the event log (segments) and the catalogue (prices)."""
    segments = events.groupby(COLUMNS.session_id)[list(SEGMENTS.all)].first()
    frame = sessions.join(segments, on=COLUMNS.session_id)
    price = items.set_index(COLUMNS.item_id)[COLUMNS.price]
    columns = {"intercept": np.ones(len(frame)),
               "log_price": np.log(frame["target_item"].map(price).to_numpy() / REFERENCE_PRICE),
               "log_views": np.log(frame["n_views"].to_numpy())}
    for step in PLANTED_STEPS.values():
        for name in step:
            if "[" in name:
                segment, value = name[:-1].split("[")
                columns[name] = (frame[segment] == value).to_numpy(float)
    return pd.DataFrame(columns, index=frame.index)


def test_recorded_probabilities_follow_the_documented_logistic_model(shop, events):
    sessions = shop.sessions()
    human = sessions[(sessions["label"] == "human") & ~sessions["incident"]]
    x = _features(human, events, shop.items())
    for step, column in ((EVENTS.cart, "p_cart"), (EVENTS.checkout, "p_checkout"), (EVENTS.purchase, "p_purchase")):
        beta = pd.Series(PLANTED_STEPS[step])
        expected = 1 / (1 + np.exp(-(x[beta.index] @ beta)))
        np.testing.assert_allclose(human[column].to_numpy(), expected.to_numpy(), rtol=1e-12)


def test_outcomes_are_drawn_with_the_recorded_probabilities(big_shop):
    sessions = big_shop.sessions()
    for k, column in enumerate(("p_cart", "p_checkout", "p_purchase"), start=1):
        at_risk = sessions[sessions["reached"] >= k - 1]
        p = at_risk[column]
        z = ((at_risk["reached"] >= k).sum() - p.sum()) / np.sqrt((p * (1 - p)).sum())
        assert abs(z) < 4, (column, z)


def test_a_logistic_regression_recovers_the_planted_cart_coefficients(big_shop):
    sessions = big_shop.sessions()
    events = duckdb.sql(
        f"SELECT {COLUMNS.session_id}, any_value({SEGMENTS.device}) AS {SEGMENTS.device}, "
        f"any_value({SEGMENTS.channel}) AS {SEGMENTS.channel}, any_value({SEGMENTS.country}) AS {SEGMENTS.country}, "
        f"any_value({SEGMENTS.customer_type}) AS {SEGMENTS.customer_type} "
        f"FROM read_parquet('{big_shop.events_path}') GROUP BY 1"
    ).df()
    x = _features(sessions, events, big_shop.items())
    beta = pd.Series(PLANTED_STEPS[EVENTS.cart])
    fit = sm.Logit((sessions["reached"] >= 1).astype(float), x[beta.index]).fit(disp=0)
    z = (fit.params - beta) / fit.bse
    assert (z.abs() < 4).all(), z


def test_incident_days_break_the_planted_step(shop):
    sessions = shop.sessions()
    incidents = shop.ground_truth["incidents"]
    assert len(incidents) == SMALL.incident_days
    human = sessions[sessions["label"] == "human"]
    day = human["start"].dt.strftime("%Y-%m-%d")
    for incident in incidents:
        column = {EVENTS.checkout: "p_checkout", EVENTS.purchase: "p_purchase"}[incident["step"]]
        on_day = human[day == incident["date"]]
        assert on_day["incident"].all() and len(on_day) > 0
        assert on_day[column].mean() < 2 * INCIDENT_FACTOR * human.loc[~human["incident"], column].mean()
    assert not human.loc[~day.isin([i["date"] for i in incidents]), "incident"].any()


def test_views_follow_the_planted_tastes(shop, events):
    """Viewed items have a higher affinity to their viewer than popularity alone would give."""
    items = shop.items().set_index(COLUMNS.item_id)
    users = shop.user_factors().set_index(COLUMNS.user_id)
    factors = [c for c in users.columns if c.startswith("f")]
    views = events[(events[COLUMNS.event_type] == EVENTS.view) & events[COLUMNS.user_id].isin(users.index)]
    viewed = np.einsum("nf,nf->n", users.loc[views[COLUMNS.user_id], factors].to_numpy(),
                       items.loc[views[COLUMNS.item_id], factors].to_numpy())
    rng = np.random.default_rng(0)
    by_popularity = rng.choice(len(items), size=len(views), p=items["popularity"] / items["popularity"].sum())
    baseline = np.einsum("nf,nf->n", users.loc[views[COLUMNS.user_id], factors].to_numpy(),
                         items[factors].to_numpy()[by_popularity])
    difference = viewed.mean() - baseline.mean()
    assert difference > 5 * np.sqrt(viewed.var() / len(viewed) + baseline.var() / len(baseline))


def test_traffic_has_daily_seasonality(events):
    hours = events[COLUMNS.event_time].dt.hour.value_counts()
    assert hours[20] > 3 * hours[4]


def test_planted_anomalies_are_labelled_and_behave_as_documented(shop, events):
    labels = shop.labels()
    counts = labels["label"].value_counts()
    assert counts["bot"] == SMALL.n_bots
    assert counts["click_farm"] == SMALL.click_farm_accounts
    assert counts["fake_order"] == SMALL.fake_order_accounts
    assert counts["human"] == SMALL.n_users
    truth = shop.ground_truth["anomalies"]
    labelled = events.merge(labels, on=COLUMNS.user_id)

    bots = labelled[labelled["label"] == "bot"]
    assert set(bots[COLUMNS.event_type]) == {EVENTS.view}
    per_session = bots.groupby(COLUMNS.session_id)[COLUMNS.event_time].agg(["size", "min", "max"])
    assert (per_session["size"] >= 80).all()
    assert ((per_session["max"] - per_session["min"]).dt.total_seconds() / per_session["size"]).median() < 10

    farm = labelled[labelled["label"] == "click_farm"]
    assert set(farm[COLUMNS.item_id]) <= set(truth["click_farm"]["items"])
    assert EVENTS.purchase not in set(farm[COLUMNS.event_type])
    burst = farm[COLUMNS.event_time].max() - farm[COLUMNS.event_time].min()
    assert burst < pd.Timedelta(hours=truth["click_farm"]["hours"] + 1)

    fake = labelled[labelled["label"] == "fake_order"]
    assert set(fake[COLUMNS.item_id]) <= set(truth["fake_order"]["items"])
    assert fake.groupby(COLUMNS.session_id)[COLUMNS.event_type].apply(lambda s: EVENTS.purchase in set(s)).all()


def test_ground_truth_file_describes_the_run(shop):
    truth = json.loads((shop.directory / "ground_truth.json").read_text())
    assert truth["params"]["seed"] == SMALL.seed
    assert truth["steps"]["coefficients"] == PLANTED_STEPS
    assert truth["counts"]["events"] == pq_rows(shop.events_path)


def pq_rows(path) -> int:
    import pyarrow.parquet as pq
    return pq.ParquetFile(path).metadata.num_rows


def test_ensure_dataset_generates_once_into_the_cache(tmp_path):
    params = SMALL.model_copy(update={"n_users": 300, "cache_dir": tmp_path})
    first = ensure_dataset(params)
    assert first.directory.parent == tmp_path and first.events_path.is_file()
    stamp = first.events_path.stat().st_mtime_ns
    again = ensure_dataset(params)
    assert again.directory == first.directory and again.events_path.stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == [first.directory.name]  # no scratch folder left behind


def test_every_view_of_a_session_comes_before_its_cart(events):
    """log_views counts the views before the cart: the cart follows the last view."""
    first_cart = events[events[COLUMNS.event_type] == EVENTS.cart].groupby(COLUMNS.session_id)[COLUMNS.event_time].min()
    last_view = events[events[COLUMNS.event_type] == EVENTS.view].groupby(COLUMNS.session_id)[COLUMNS.event_time].max()
    both = first_cart.index.intersection(last_view.index)
    assert len(both) > 100 and (last_view[both] < first_cart[both]).all()
