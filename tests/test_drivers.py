"""The drivers study on a small built-in shop: planted effects recovered, derivations match statsmodels."""
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from funnelkit import drivers
from funnelkit.data import load_events
from funnelkit.groundtruth import Planted, driver_recovery
from funnelkit.params import DriversParams, SimulationParams
from funnelkit.simulate import PLANTED_STEPS, simulate
from funnelkit.study import Metric

SHOP = SimulationParams(seed=4, n_users=12_000, days=21, n_items=800, n_bots=6, click_farm_accounts=60,
                        fake_order_accounts=20)
SPEC = DriversParams(folds=2, max_rows=1000)
"""The report's settings but a smaller, quicker prediction: its scores are not under test here."""
WINDOW = SPEC.window

NOTEBOOK_METRICS = [  # what notebook 02 recorded, in its order, before the study returned its metrics
    "top_driver_1", "top_driver_2", "sessions_cart_model", "sessions_checkout_model", "sessions_purchase_model",
    "planted_effects_inside", "planted_effects_total", "false_positive_drivers", "logistic_auc",
    "logistic_gain_over_one_feature", "best_model", "purchase_rate", "order_value_sessions", "order_value_r2",
    "logit_min_digits", "svm_objective_rel_diff", "lre_qr_min", "lre_normal_min"]
HEADLINE_METRICS = {"top_driver_1", "top_driver_2", "logistic_auc", "purchase_rate"}


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    dataset = simulate(SHOP, tmp_path_factory.mktemp("shop"))
    truth = Planted(dataset)
    return load_events(dataset.events_path), truth.anomalous_accounts, truth


@pytest.fixture(scope="module")
def study(shop):
    events, _, truth = shop
    return drivers.run(events, SPEC, truth=truth)


@pytest.fixture(scope="module")
def table(study):
    return study.effects


# --------------------------------------------------------------------------- the study as a whole


def test_the_study_reports_the_figures_the_notebook_recorded(study):
    metrics = study.metrics()
    assert all(isinstance(m, Metric) for m in metrics)
    assert [m.name for m in metrics] == NOTEBOOK_METRICS
    assert {m.name for m in metrics if m.headline} == HEADLINE_METRICS
    by_name = {m.name: m for m in metrics}
    assert [by_name[f"sessions_{m.step}_model"].value for m in study.models] == [m.sessions for m in study.models]
    assert by_name["purchase_rate"].value == pytest.approx(study.prediction.y.mean())
    assert by_name["purchase_rate"].label == "Sessions that buy within a day"
    assert by_name["logistic_auc"].label.startswith("Telling buyers from browsers before the first cart")
    assert by_name["order_value_sessions"].value == len(study.order_value.X)
    assert by_name["order_value_r2"].unit is None  # R² has no unit
    assert by_name["planted_effects_total"].value == len(study.effects) == study.recovery["total"]
    assert by_name["logit_min_digits"].value >= 7 and by_name["svm_objective_rel_diff"].value < 1e-6
    assert by_name["lre_qr_min"].value > by_name["lre_normal_min"].value + 3
    assert study.summary()["name"].tolist() == NOTEBOOK_METRICS
    assert study.headline() == drivers.headline_drivers(study.effects)


def test_the_planted_truth_leaves_out_the_anomalous_accounts_and_adds_the_planted_columns(shop, study):
    _, anomalous, _ = shop
    assert study.excluded == anomalous and anomalous
    assert not set(study.prediction.users) & anomalous and not set(study.order_value.orders["user_id"]) & anomalous
    columns = study.effects.columns.tolist()  # as the drivers table always had them: before p_adjusted
    assert columns[-3:] == ["planted", "inside", "p_adjusted"]
    assert study.order_value_missing is None and study.spec == SPEC


def test_a_setting_of_the_drivers_section_reaches_the_models(shop, study):
    events, anomalous, _ = shop
    models = drivers.step_models(events, window="6h", reference_price=SPEC.reference_price, exclude_users=anomalous)
    assert models[0].sessions > study.models[0].sessions  # fewer sessions still open at the end of the data
    doubled = drivers.step_models(events, window=WINDOW, reference_price=2 * SPEC.reference_price,
                                  exclude_users=anomalous)[0]
    # log_price shifts by ln 2: the same slope, the intercept absorbs the shift
    assert doubled.results.params["log_price"] == pytest.approx(study.models[0].results.params["log_price"])
    np.testing.assert_allclose(doubled.X["log_price"], study.models[0].X["log_price"] - np.log(2))


def test_planted_effects_fall_inside_their_intervals(table, shop):
    recovery = driver_recovery(table, shop[2])
    # 95% intervals: about 1 in 20 may miss; a biased model misses many more
    assert recovery["inside"] >= recovery["total"] - 4
    assert recovery["false_positives"] <= 1
    strong = table[table["term"].isin(["customer_type[returning]", "device[mobile]"]) & (table["step"] == "cart")]
    assert (strong["p_adjusted"] < 0.05).all()


def test_anomalous_traffic_biases_the_drivers_when_kept(shop):
    events, _, _ = shop
    biased = drivers.drivers_table(drivers.step_models(events, window=WINDOW, reference_price=SPEC.reference_price))
    cart_views = biased[(biased["step"] == "cart") & (biased["term"] == "log_views")].iloc[0]
    assert cart_views["coef_high"] < PLANTED_STEPS["cart"]["log_views"]  # bots: many views, never a cart


def test_adjusted_p_values_are_holm_over_all_terms(table):
    from statsmodels.stats.multitest import multipletests

    np.testing.assert_allclose(table["p_adjusted"], multipletests(table["p_value"], method="holm")[1])


def test_headline_names_significant_effects_in_plain_language(table):
    text = drivers.headline_drivers(table)
    assert "customer\\_type = returning" in text and "percentage points" in text
    nothing = table.assign(p_adjusted=1.0)
    assert "No effect" in drivers.headline_drivers(nothing)


def test_derived_solvers_agree_with_statsmodels_on_study_data(shop):
    events, _, _ = shop
    X, y, _ = drivers.purchase_data(events, window=WINDOW, before=SPEC.before)
    X = sm.add_constant(X[["n_view", "dwell_seconds", "hour", "returning", "device[mobile]"]].astype(float))
    logit = drivers.against_statsmodels(X, y, "logit")
    assert (logit["IRLS digits"] >= 7).all() and (logit["IRLS se digits"] >= 6).all()
    linear = drivers.against_statsmodels(X, np.log1p(X["n_view"]) + 0.1 * y, "ols")
    assert (linear["QR digits"] >= 8).all() and (linear["normal equations digits"] >= 6).all()


def test_purchase_data_is_complete_and_labelled(shop):
    events, anomalous, _ = shop
    X, y, users = drivers.purchase_data(events, window=WINDOW, before=SPEC.before)
    assert not X.isna().any().any() and len(X) == len(y) == len(users) and 0 < y.mean() < 0.2
    _, y_clean, users_clean = drivers.purchase_data(events, window=WINDOW, before=SPEC.before, exclude_users=anomalous)
    assert not set(users_clean) & anomalous and len(y_clean) < len(y)
    # features stop at the first cart: nothing of the cart, checkout or purchase is known to the model
    assert not {"n_cart", "n_checkout", "n_purchase"} & set(X.columns) and "first_visit" in X.columns
    assert drivers.baseline_feature(X) == "customer_type[returning]"
    assert drivers.baseline_feature(X.drop(columns="customer_type[returning]")) == "returning"



def test_a_shared_purchase_table_gives_what_each_builds_for_itself(shop, study):
    """run() builds the purchase-labelled session table once for the prediction and the order values; passing it
    in changes nothing, with the default cut-off and with none (where the features come from that table too)."""
    from funnelkit.features import session_table

    events, anomalous, _ = shop
    purchases = session_table(events, label="purchase", window=WINDOW)
    for before in (SPEC.before, None):
        own = drivers.purchase_data(events, window=WINDOW, before=before, exclude_users=anomalous)
        shared = drivers.purchase_data(events, window=WINDOW, before=before, exclude_users=anomalous,
                                       purchases=purchases)
        pd.testing.assert_frame_equal(own[0], shared[0])
        np.testing.assert_array_equal(own[1], shared[1])
        np.testing.assert_array_equal(own[2], shared[2])
    pd.testing.assert_frame_equal(drivers.order_values(events, window=WINDOW, exclude_users=anomalous),
                                  drivers.order_values(events, window=WINDOW, exclude_users=anomalous,
                                                       purchases=purchases))
    pd.testing.assert_frame_equal(study.order_value.orders,
                                  drivers.order_values(events, window=WINDOW, exclude_users=anomalous))


def test_the_logit_check_of_the_cart_model_is_the_check_refitted(study):
    """The study compares the cart model it fitted with statsmodels instead of fitting it again: the same table."""
    cart = study.models[0]
    refitted = drivers.against_statsmodels(cart.X, cart.y, "logit")
    pd.testing.assert_frame_equal(drivers.against_statsmodels(cart.X, cart.y, "logit", fitted=cart.results), refitted)
    # the study runs on one BLAS thread, this test on the default pool: equal to rounding
    pd.testing.assert_frame_equal(study.checks.logit[["term", "IRLS"]], refitted[["term", "IRLS"]],
                                  check_exact=False, rtol=1e-12)

def test_order_value_model_matches_statsmodels_hc3(shop):
    events, anomalous, _ = shop
    orders = drivers.order_values(events, window=WINDOW, exclude_users=anomalous)
    assert (orders["revenue"] > 0).all() and orders["session_id"].is_unique
    assert not set(orders["user_id"]) & anomalous
    results, X, _ = drivers.order_value_model(orders)
    reference = sm.OLS(np.log(orders.loc[X.index, "revenue"]), X).fit(cov_type="HC3")
    np.testing.assert_allclose(results.params, reference.params, rtol=1e-8)
    np.testing.assert_allclose(results.bse, reference.bse, rtol=1e-6)
    # viewed prices are not regressors: on the built-in shop they would give the answer away
    assert not any("price" in name for name in X.columns)
    points, tests = drivers.residual_diagnostics(results, X)
    assert len(points) == len(X)
    bp = sm.stats.diagnostic.het_breuschpagan(reference.resid, X)[1]
    assert tests.set_index("test").iloc[1]["p_value"] == pytest.approx(bp)
    # each residual is paired with the normal quantile of its rank (the Q-Q plot)
    assert points.sort_values("residual")["normal_quantile"].is_monotonic_increasing


def test_derived_svm_matches_liblinear_on_study_data(study):
    X, y = study.prediction.X, study.prediction.y
    table = drivers.svm_against_sklearn(X[["n_view", "dwell_seconds", "returning", "price_mean"]], y, max_rows=600)
    values = table.set_index("quantity")["ours"]
    assert values["relative difference of objectives"] < 1e-6
    assert values["identical predicted classes (share)"] == 1.0
    assert values["our support vectors on or inside scikit-learn's margin (share)"] == 1.0
    assert values["length of the weight vector |w|"] > 0.1  # a real separating direction, not w = 0


def test_open_windows_are_dropped_whatever_the_label(shop, study):
    """Dropping only unconverted open sessions would keep the last day's early converters."""
    events, anomalous, _ = shop
    model = study.models[0]
    from funnelkit.features import session_table
    table = session_table(events, label="cart", window="1D")
    closed = table["start"] + pd.Timedelta("1D") <= events.data_end
    kept = table[closed & ~table["user_id"].isin(anomalous)]
    assert model.sessions == len(kept.dropna(subset=["log_price", "log_views"]))


def test_a_log_without_checkouts_chains_purchase_to_cart():
    from funnelkit.eventlog import EventLog

    t0 = pd.Timestamp("2026-01-01", tz="UTC")
    frame = pd.DataFrame({"user_id": ["a", "a", "a", "b"], "session_id": ["s1", "s1", "s1", "s2"],
                          "event_time": [t0, t0 + pd.Timedelta("1min"), t0 + pd.Timedelta("2min"), t0],
                          "event_type": ["view", "cart", "purchase", "view"]})
    assert drivers.funnel_steps(EventLog.from_frame(frame)) == [("cart", None), ("purchase", "cart")]


# --------------------------------------------------------------------------- logs without prices


@pytest.fixture(scope="module")
def no_prices(shop):
    events, anomalous, _ = shop
    return events.derive(f"SELECT * EXCLUDE (price) FROM {events.table}"), anomalous


@pytest.fixture(scope="module")
def own_log(no_prices):
    """The study on a log that is not the built-in shop's: no planted truth, and no prices."""
    events, _ = no_prices
    return drivers.run(events, SPEC)


def test_without_the_truth_or_prices_the_study_reports_what_it_can(own_log):
    names = [m.name for m in own_log.metrics()]
    assert names == [n for n in NOTEBOOK_METRICS if not n.startswith(("planted_", "false_positive", "order_value"))]
    assert {m.name for m in own_log.metrics() if m.headline} == HEADLINE_METRICS
    assert own_log.excluded is None and own_log.recovery is None
    assert "planted" not in own_log.effects and "inside" not in own_log.effects
    assert own_log.order_value is None and own_log.checks.ols is None
    assert "order-value model needs the column price" in str(own_log.order_value_missing)
    assert own_log.left_out == {"log_price": "the log has no price column", "price_mean": "the log has no price column"}
    assert "Every account of the log" in drivers.exclusion_text(own_log.excluded)


def test_a_log_without_prices_fits_the_step_models_without_price_features(no_prices):
    events, anomalous = no_prices
    assert drivers.left_out_features(events) == {"log_price": "the log has no price column",
                                                 "price_mean": "the log has no price column"}
    models = drivers.step_models(events, window=WINDOW, reference_price=SPEC.reference_price, exclude_users=anomalous)
    assert [m.step for m in models] == ["cart", "checkout", "purchase"]
    from funnelkit.features import session_table
    for model in models:
        assert "log_price" not in model.X.columns and "log_views" in model.X.columns
        # the same model by statsmodels on the session table: rows are dropped for missing views only
        table = session_table(events, label=model.step, given=model.given, window="1D")
        table = table[(table["start"] + pd.Timedelta("1D") <= events.data_end) & ~table["user_id"].isin(anomalous)]
        table = table.dropna(subset=["log_views"])
        assert model.sessions == len(table)
        design = pd.get_dummies(table[["log_views", "device", "channel", "country", "customer_type"]],
                                dtype=float).drop(columns=["device_desktop", "channel_organic", "country_DE",
                                                           "customer_type_new"])
        reference = sm.Logit(table["label"].to_numpy(), sm.add_constant(design)).fit(disp=0)
        np.testing.assert_allclose(model.results.params["log_views"], reference.params["log_views"], rtol=1e-6)


def test_a_log_without_prices_predicts_without_price_mean_and_has_no_order_value(no_prices):
    from funnelkit.requirements import StudyNotApplicable

    events, anomalous = no_prices
    X, y, _ = drivers.purchase_data(events, window=WINDOW, before=SPEC.before, exclude_users=anomalous)
    assert "price_mean" not in X.columns and not X.isna().any().any()
    check = drivers.svm_against_sklearn(X, y, max_rows=300).set_index("quantity")["ours"]
    assert check["relative difference of objectives"] < 1e-6
    with pytest.raises(StudyNotApplicable, match=r"The order-value model needs the column price; your log has "
                                                 r"columns user_id, session_id, event_time"):
        drivers.order_values(events, window=WINDOW)


# --------------------------------------------------------------------------- words for people


def test_every_term_is_named_against_its_baseline(table):
    named = table.set_index(["step", "term"])["driver"]
    assert named[("cart", "device[mobile]")] == "device = mobile (vs desktop)"
    assert named[("cart", "customer_type[returning]")] == "customer_type = returning (vs new)"
    assert named[("cart", "log_price")].startswith("a higher price")
    assert drivers.term_label("country[FR]", {"country": "PL"}) == "country = FR (vs PL)"
    assert drivers.term_label("country[FR]") == "country = FR"


def test_headline_figures_are_the_strongest_significant_effects_in_points_with_their_odds_ratio(table):
    figures = drivers.headline_figures(table, top=2)
    significant = table[table["p_adjusted"] < 0.05]
    strongest = significant.loc[significant["effect"].abs().nlargest(2).index]
    assert [f.name for f in figures] == ["top_driver_1", "top_driver_2"] and all(f.headline for f in figures)
    for figure, row in zip(figures, strongest.itertuples()):
        assert figure.unit == "pp" and figure.value == pytest.approx(row.effect)
        assert figure.ci == pytest.approx((row.effect_low, row.effect_high))
        assert row.driver in figure.label and row.step in figure.label
        assert f"odds ratio {row.odds_ratio:.2f}, 95% CI {row.odds_low:.2f}–{row.odds_high:.2f}" in figure.label
        assert ("raises" if row.effect > 0 else "lowers") in figure.label
    assert abs(figures[0].value) >= abs(figures[1].value)
    assert drivers.headline_figures(table.assign(p_adjusted=1.0)) == []  # nothing significant: no figure
    # strongest by size whatever the sign; a larger effect that is not significant is left out
    crafted = pd.DataFrame({"step": ["cart"] * 3, "given": [None] * 3, "term": ["a", "b", "c"],
                            "driver": ["trait a", "trait b", "trait c"], "effect": [0.1, -0.2, 0.3],
                            "effect_low": [0.05, -0.3, -0.1], "effect_high": [0.15, -0.1, 0.7],
                            "odds_ratio": [1.5, 0.5, 2.5], "odds_low": [1.2, 0.4, 0.9], "odds_high": [1.9, 0.7, 7.0],
                            "p_adjusted": [0.01, 0.001, 0.2]})
    figures = drivers.headline_figures(crafted, top=2)
    assert [f.value for f in figures] == [-0.2, 0.1]
    # the sentence writes its interval as the other reports do: signed, a real minus, two digits below a point
    sentence = drivers.headline_drivers(crafted.assign(effect_low=[0.0005, -0.3, -0.1]))
    assert "lowers the chance of **cart** (after a visit) by 20.0 percentage points (95% CI −30.0 to −10.0;" in sentence
    assert "raises the chance of **cart** (after a visit) by 10.0 percentage points (95% CI +0.05 to +15.0;" in sentence
    assert figures[0].label.startswith("trait b lowers the chance of cart in a session")


def test_the_baseline_sentence_names_the_levels_the_models_used_not_the_built_in_shop(study):
    text = drivers.baseline_text(study.models)
    assert "device = desktop" in text and "country = DE" in text
    # another log: its own most common levels, the same in every step, or said per step when they differ
    other = [drivers.StepModel("cart", None, 10, 1, None, None, None, {"device": "mobile", "country": "US"}),
             drivers.StepModel("purchase", "cart", 5, 1, None, None, None, {"device": "mobile", "country": "US"})]
    text = drivers.baseline_text(other)
    assert "device = mobile, country = US" in text and "desktop" not in text and "DE" not in text
    other[1].baselines = {"device": "tablet", "country": "US"}
    text = drivers.baseline_text(other)
    assert "differs by step" in text and "cart: device = mobile" in text and "purchase: device = tablet" in text
    bare = [drivers.StepModel("purchase", "cart", 5, 1, None, None, None, {})]
    assert "no segment columns" in drivers.baseline_text(bare)


def test_only_the_simulated_shop_is_said_to_leave_out_labelled_accounts():
    assert "built-in shop" in drivers.exclusion_text({"u1", "u2"}) and "2 accounts" in drivers.exclusion_text({"u1", "u2"})
    own = drivers.exclusion_text(None)
    assert "built-in" not in own and "Every account of the log" in own
