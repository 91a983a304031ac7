"""Tests of funnelkit.retention.clv: BG/NBD, Gamma-Gamma, customer value, holdout table.

Known answers: the CDNOW sample (tests/reference/cdnow_summary.csv, provenance in
cdnow_summary.md) against the figures published by Fader, Hardie & Lee (2005) and Fader &
Hardie (2013) and the values of Hardie's spreadsheets that the ``lifetimes`` package asserts
in its tests (lifetimes/tests/test_estimation.py, CamDavidsonPilon/lifetimes). Independent
references: tests/reference/clv_reference.py (mpmath integrals of the individual-level
likelihoods and posteriors, and an exact simulator of the BG/NBD process).
"""

from __future__ import annotations

from pathlib import Path

import mpmath as mp
import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from statsmodels.tools.numdiff import approx_hess3

from funnelkit.errors import DataError
from funnelkit.retention import clv
from tests.reference import clv_reference as ref

CDNOW = Path(__file__).parent / "reference" / "cdnow_summary.csv"

# Fader, Hardie & Lee (2005), "Counting your customers the easy way", section 4: the BG/NBD
# fit to the CDNOW sample (weeks). lifetimes asserts the same four numbers
# (TestBetaGeoFitter.test_params_out_is_close_to_Hardie_paper).
PUBLISHED_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PUBLISHED_BGNBD_LOGLIK = -9582.4
# Fader & Hardie (2013), "The Gamma-Gamma model of monetary value", on the 946 repeat
# customers; lifetimes: TestGammaGammaFitter.test_params_out_is_close_to_Hardie_paper.
PUBLISHED_GAMMA_GAMMA = {"p": 6.25, "q": 3.74, "v": 15.44}

# Parameter points away from CDNOW for the likelihood and gradient checks (a < 1 and a > 1,
# shapes below 1 where the mixing densities are singular at 0).
BGNBD_POINTS = [(0.243, 4.414, 0.793, 2.426), (2.5, 0.7, 3.2, 0.4), (0.08, 30.0, 1.7, 12.0)]
GG_POINTS = [(6.25, 3.74, 15.44), (0.6, 1.4, 2.0), (15.0, 9.0, 120.0)]
# (x, t_x, T): none, few and many repeat purchases, early and late last purchases
CUSTOMERS = [(0, 0.0, 38.86), (1, 1.71, 38.86), (2, 30.43, 38.86), (7, 35.0, 38.0), (29, 37.71, 38.0),
             (150, 20.0, 52.0)]


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return pd.read_csv(CDNOW)


@pytest.fixture(scope="module")
def cdnow_bgnbd(cdnow) -> clv.BetaGeo:
    return clv.BetaGeo().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])


@pytest.fixture(scope="module")
def cdnow_gamma_gamma(cdnow) -> clv.GammaGamma:
    repeat = cdnow[cdnow["frequency"] > 0]
    return clv.GammaGamma().fit(repeat["frequency"], repeat["monetary_value"])


def _bgnbd_with(params) -> clv.BetaGeo:
    """A BetaGeo holding given parameters (to test predictions at chosen points)."""
    model = clv.BetaGeo()
    model.params_ = pd.Series(params, index=["r", "alpha", "a", "b"], dtype=float)
    return model


# ---------------------------------------------------------------------------
# Known answers: CDNOW
# ---------------------------------------------------------------------------


def test_cdnow_sample_is_the_published_one(cdnow):
    assert len(cdnow) == 2357
    assert (cdnow["frequency"] > 0).sum() == 946
    assert list(cdnow.columns) == ["customer", "frequency", "recency", "T", "monetary_value"]


def test_cdnow_bgnbd_fit_reproduces_published_parameters_and_loglik(cdnow_bgnbd):
    for name, published in PUBLISHED_BGNBD.items():
        assert cdnow_bgnbd.params_[name] == pytest.approx(published, rel=5e-3), name
    assert cdnow_bgnbd.loglik_ == pytest.approx(PUBLISHED_BGNBD_LOGLIK, abs=0.05)
    assert cdnow_bgnbd.n_customers_ == 2357 and cdnow_bgnbd.converged_


def test_cdnow_gamma_gamma_fit_reproduces_fader_hardie_parameters(cdnow_gamma_gamma):
    for name, published in PUBLISHED_GAMMA_GAMMA.items():
        assert cdnow_gamma_gamma.params_[name] == pytest.approx(published, rel=1e-2), name
    assert cdnow_gamma_gamma.n_customers_ == 946


def test_cdnow_bgnbd_predictions_match_hardie_spreadsheet(cdnow_bgnbd):
    # lifetimes' test_expectation_returns_same_value_Hardie_excel_sheet (E[X(t)], weeks) and
    # test_conditional_expectation_returns_same_value_as_Hardie_excel_sheet (customer 1);
    # the spreadsheet shows 4 decimals of a fit with its own rounding, hence 5e-4
    times = np.array([0.1429, 1.0, 3.00, 31.8571, 32.00, 78.00])
    expected = np.array([0.0078, 0.0532, 0.1506, 1.0405, 1.0437, 1.8576])
    np.testing.assert_allclose(cdnow_bgnbd.expected_purchases_new(times), expected, atol=5e-4)
    assert cdnow_bgnbd.conditional_expected_purchases(39, 2, 30.43, 38.86) == pytest.approx(1.226, abs=5e-4)


def test_cdnow_expected_spend_matches_hardie_spreadsheet(cdnow, cdnow_gamma_gamma):
    # lifetimes' test_conditional_expected_average_profit: the first 10 CDNOW customers, from
    # http://brucehardie.com/notes/025/ (shown in cents, the first apparently truncated)
    first = cdnow.head(10)
    spend = cdnow_gamma_gamma.conditional_expected_spend(first["frequency"], first["monetary_value"])
    expected = [24.65, 18.91, 35.17, 35.17, 35.17, 71.46, 18.91, 35.17, 27.28, 35.17]
    np.testing.assert_allclose(spend.to_numpy(), expected, atol=0.01)
    # a customer without repeat purchases gets the population mean p v / (q - 1)
    assert spend.iloc[2] == pytest.approx(cdnow_gamma_gamma.expected_spend_new(), rel=1e-12)


# ---------------------------------------------------------------------------
# Likelihoods and gradients against independent references
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("params", BGNBD_POINTS)
def test_bgnbd_loglik_matches_integral_of_individual_likelihood(params):
    x, t_x, T = (np.array(column, dtype=float) for column in zip(*CUSTOMERS))
    ours = clv._bgnbd_loglik(np.array(params), x, t_x, T)
    reference = [ref.bgnbd_loglik_by_integration(params, *customer) for customer in CUSTOMERS]
    np.testing.assert_allclose(ours, reference, rtol=1e-11, atol=1e-11)
    # the gradient routine returns the same log-likelihood as the one above
    np.testing.assert_array_equal(clv._bgnbd_loglik_and_grad(np.array(params), x, t_x, T)[0], ours)


@pytest.mark.parametrize("params", GG_POINTS)
def test_gamma_gamma_loglik_matches_integral_over_nu(params):
    spends = [(1, 11.77), (2, 22.35), (6, 47.2), (40, 3.5)]
    x, m = (np.array(column, dtype=float) for column in zip(*spends))
    ours = clv._gg_loglik(np.array(params), x, m)
    reference = [ref.gg_loglik_by_integration(params, *spend) for spend in spends]
    np.testing.assert_allclose(ours, reference, rtol=1e-11, atol=1e-11)


def _random_points(rng, n, low, high):
    """Log-uniform parameter points."""
    return np.exp(rng.uniform(np.log(low), np.log(high), size=(n, len(low))))


def test_bgnbd_gradient_matches_mpmath_derivative():
    rng = np.random.default_rng(20050401)
    x, t_x, T = (np.array(column, dtype=float) for column in zip(*CUSTOMERS))
    for params in _random_points(rng, 4, low=[0.05, 0.5, 0.2, 0.2], high=[5.0, 50.0, 5.0, 20.0]):
        _, grad = clv._bgnbd_loglik_and_grad(params, x, t_x, T)

        def total(*p):
            return mp.fsum(ref.bgnbd_loglik_closed_form_mp(p, *customer) for customer in CUSTOMERS)

        with mp.workdps(30):
            reference = [float(mp.diff(total, tuple(mp.mpf(v) for v in params), tuple(int(i == k) for i in range(4))))
                         for k in range(4)]
        np.testing.assert_allclose(grad.sum(axis=0), reference, rtol=1e-9, atol=1e-9)


def test_gamma_gamma_gradient_matches_mpmath_derivative():
    rng = np.random.default_rng(2013)
    spends = [(1, 11.77), (2, 22.35), (6, 47.2), (40, 3.5)]
    x, m = (np.array(column, dtype=float) for column in zip(*spends))
    for params in _random_points(rng, 4, low=[0.3, 0.5, 0.5], high=[20.0, 10.0, 200.0]):
        _, grad = clv._gg_loglik_and_grad(params, x, m)

        def total(*p):
            return mp.fsum(ref.gg_loglik_closed_form_mp(p, *spend) for spend in spends)

        with mp.workdps(30):
            reference = [float(mp.diff(total, tuple(mp.mpf(v) for v in params), tuple(int(i == k) for i in range(3))))
                         for k in range(3)]
        np.testing.assert_allclose(grad.sum(axis=0), reference, rtol=1e-9, atol=1e-9)


def test_standard_errors_invert_numerical_hessian_of_loglik(cdnow, cdnow_bgnbd):
    # statsmodels' second differences of the log-likelihood *values*: independent of the
    # analytic gradient the package differentiates
    data = (cdnow["frequency"].to_numpy(float), cdnow["recency"].to_numpy(float), cdnow["T"].to_numpy(float))
    hessian = approx_hess3(cdnow_bgnbd.params_.to_numpy(), lambda p: clv._bgnbd_loglik(p, *data).sum())
    np.testing.assert_allclose(cdnow_bgnbd.cov_params_.to_numpy(), np.linalg.inv(-hessian), rtol=1e-4)
    np.testing.assert_allclose(cdnow_bgnbd.bse_, np.sqrt(np.diag(np.linalg.inv(-hessian))), rtol=1e-4)


# ---------------------------------------------------------------------------
# Predictions against integration and simulation
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("params", [*BGNBD_POINTS, (0.5, 3.0, 1.0 + 1e-9, 2.0)])
def test_expected_purchases_new_matches_integration_over_lambda_and_p(params):
    # the last point sits at a = 1, where the closed form is 0/0
    model = _bgnbd_with(params)
    times = [0.01, 1.0, 39.0, 500.0]
    reference = [ref.bgnbd_expected_new_by_integration(params, t) for t in times]
    np.testing.assert_allclose(model.expected_purchases_new(np.array(times)), reference, rtol=1e-7)


@pytest.mark.parametrize("t", [10.0, 78.0])
def test_expected_purchases_new_matches_simulation(t):
    params = tuple(PUBLISHED_BGNBD.values())
    rng = np.random.default_rng(int(t))
    frequency, _, _ = ref.simulate_bgnbd(params, np.full(200_000, t), rng)
    standard_error = frequency.std(ddof=1) / np.sqrt(frequency.size)
    assert abs(frequency.mean() - _bgnbd_with(params).expected_purchases_new(t)) < 4 * standard_error


@pytest.mark.parametrize("params", BGNBD_POINTS)
def test_conditional_expectation_and_probability_alive_match_posterior_integrals(params):
    model = _bgnbd_with(params)
    x, t_x, T = (np.array(column, dtype=float) for column in zip(*CUSTOMERS))
    horizon = 26.0
    reference = np.array([ref.bgnbd_posterior_by_integration(params, horizon, *customer) for customer in CUSTOMERS])
    np.testing.assert_allclose(model.probability_alive(x, t_x, T), reference[:, 0], rtol=1e-9)
    np.testing.assert_allclose(model.conditional_expected_purchases(horizon, x, t_x, T), reference[:, 1], rtol=1e-8)


@settings(max_examples=40, deadline=None)
@given(
    r=st.floats(0.05, 20), alpha=st.floats(0.1, 500), a=st.floats(0.05, 20), b=st.floats(0.05, 50),
    x=st.integers(0, 600), T=st.floats(0.5, 1000), share=st.floats(0, 1), t=st.floats(0.01, 5000),
    tie=st.sampled_from([None, 0.0, 1e-9, -3e-5, 2e-4]),
)
def test_conditional_expectation_is_accurate_far_from_cdnow(r, alpha, a, b, x, T, share, t, tie):
    # FHL 2005 eq. 10 as printed, evaluated with mpmath's hyp2f1 at 40 digits: the package's
    # Euler-transformed form must agree where SciPy's hyp2f1 on the printed form breaks down,
    # including beside r - a = integer (``tie``), where SciPy's hyp2f1 itself returns inf
    if tie is not None:
        r = a + round(r - a) + tie
    assume(r > 0.01 and a != 1.0)  # the printed form is 0/0 at a = 1 (covered by integration above)
    t_x = share * T if x > 0 else 0.0
    with mp.workdps(40):
        # every sum in mpmath: the printed form is ill-conditioned (1 - P F with P F near 1),
        # so even the rounding of alpha + T + t in floating point would show
        r, alpha, a, b, T, t, t_x = (mp.mpf(v) for v in (r, alpha, a, b, T, t, t_x))
        z = t / (alpha + T + t)
        bracket = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * mp.hyp2f1(r + x, b + x, a + b + x - 1, z)
        odds = a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x) if x > 0 else 0
        expected = float((a + b + x - 1) / (a - 1) * bracket / (1 + odds))
        r, alpha, a, b, T, t, t_x = (float(v) for v in (r, alpha, a, b, T, t, t_x))
    ours = _bgnbd_with((r, alpha, a, b)).conditional_expected_purchases(t, x, t_x, T)
    assert ours == pytest.approx(expected, rel=1e-7, abs=1e-300)


@pytest.mark.parametrize("params", [(2.0, 3.0, 1.0, 1.5), (1.0, 1.0, 2.0, 1.0), (0.5, 2.0, 0.6, 0.4)])
def test_expected_purchases_are_continuous_across_removable_singularities(params):
    # a = 1; r - a = integer (here -1); a + b = 1: the closed form is 0/0 or SciPy's hyp2f1 fails
    model = _bgnbd_with(params)
    x, t_x, T = np.array([0.0, 3.0, 99.0]), np.array([0.0, 20.0, 30.0]), np.array([0.0, 30.0, 31.0])
    for horizon in (2.0, 400.0):
        reference = [ref.bgnbd_posterior_by_integration(params, horizon, *c)[1] for c in zip(x[1:], t_x[1:], T[1:])]
        ours = model.conditional_expected_purchases(horizon, x, t_x, T)
        np.testing.assert_allclose(ours[1:], reference, rtol=1e-9)
        assert ours[0] == pytest.approx(ref.bgnbd_expected_new_by_integration(params, horizon), rel=1e-9)


def test_probability_alive_is_one_without_repeat_purchases(cdnow_bgnbd):
    assert cdnow_bgnbd.probability_alive(0, 0.0, 38.86) == 1.0
    # and falls with the time since the last purchase
    assert cdnow_bgnbd.probability_alive(2, 30.43, 38.86) > cdnow_bgnbd.probability_alive(2, 5.0, 38.86)


def test_predictions_keep_the_callers_index(cdnow, cdnow_bgnbd):
    sample = cdnow.set_index("customer").iloc[:5]
    result = cdnow_bgnbd.conditional_expected_purchases(10, sample["frequency"], sample["recency"], sample["T"])
    assert isinstance(result, pd.Series) and list(result.index) == list(sample.index)
    assert isinstance(cdnow_bgnbd.expected_purchases_new(10.0), float)


# ---------------------------------------------------------------------------
# Recovery of simulated parameters
# ---------------------------------------------------------------------------


def test_bgnbd_recovers_simulated_parameters_inside_their_intervals():
    true = pd.Series({"r": 0.5, "alpha": 6.0, "a": 0.8, "b": 2.5})
    rng = np.random.default_rng(7)
    T = rng.uniform(26, 52, size=20_000)
    frequency, recency, _ = ref.simulate_bgnbd(true.to_numpy(), T, rng)
    model = clv.BetaGeo().fit(frequency, recency, T)
    ci = model.conf_int(0.05)
    assert ((ci["lower"] <= true) & (true <= ci["upper"])).all(), pd.concat([ci, true.rename("true")], axis=1)
    # informative: 20,000 customers pin each parameter within about -/+ 15%
    assert (ci["upper"] / ci["lower"] < 1.4).all(), ci
    summary = model.summary()
    assert list(summary.columns) == ["coef", "std_err", "ci_lower", "ci_upper"]
    assert list(summary.index) == ["r", "alpha", "a", "b"]


def test_gamma_gamma_recovers_simulated_parameters_inside_their_intervals():
    true = pd.Series({"p": 4.0, "q": 3.0, "v": 20.0})
    # a fixed draw; over 60 seeds these intervals covered the truth 93-95% of the time
    rng = np.random.default_rng(0)
    n = 20_000
    frequency = rng.integers(1, 10, size=n).astype(float)
    nu = rng.gamma(true["q"], 1.0 / true["v"], size=n)
    # the mean of x Gamma(p, nu) values is Gamma(p x, rate nu x)
    monetary_value = rng.gamma(true["p"] * frequency, 1.0 / (nu * frequency))
    model = clv.GammaGamma().fit(frequency, monetary_value)
    ci = model.conf_int(0.05)
    assert ((ci["lower"] <= true) & (true <= ci["upper"])).all(), pd.concat([ci, true.rename("true")], axis=1)
    assert (ci["upper"] / ci["lower"] < 1.4).all(), ci


def test_intervals_are_wald_intervals_on_the_log_scale(cdnow_bgnbd):
    # exp(ln theta -/+ z se(theta)/theta): symmetric around ln theta, positive even where a
    # natural-scale interval would not be (b: estimate 2.43, standard error 0.71)
    ci = cdnow_bgnbd.conf_int(0.10)
    estimate, se = cdnow_bgnbd.params_, cdnow_bgnbd.bse_
    z = 1.6448536269514722
    np.testing.assert_allclose(np.log(ci["upper"] / estimate), z * se / estimate, rtol=1e-12)
    np.testing.assert_allclose(np.log(estimate / ci["lower"]), z * se / estimate, rtol=1e-12)
    np.testing.assert_allclose(cdnow_bgnbd.summary(0.10)[["ci_lower", "ci_upper"]].to_numpy(), ci.to_numpy())


def test_fitted_alpha_is_in_the_time_unit_of_the_data(cdnow, cdnow_bgnbd):
    in_days = clv.BetaGeo().fit(cdnow["frequency"], 7 * cdnow["recency"], 7 * cdnow["T"])
    np.testing.assert_allclose(in_days.params_[["r", "a", "b"]], cdnow_bgnbd.params_[["r", "a", "b"]], rtol=1e-5)
    assert in_days.params_["alpha"] == pytest.approx(7 * cdnow_bgnbd.params_["alpha"], rel=1e-5)


# ---------------------------------------------------------------------------
# Inputs, errors, estimator contract
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "column"),
    [
        ({"frequency": [1, -1, 2, 0]}, "frequency"),
        ({"frequency": [1, 1.5, 2, 0]}, "frequency"),
        ({"frequency": [1, np.nan, 2, 0]}, "frequency"),
        ({"recency": [5.0, 12.0, 3.0, 0.0]}, "recency"),
        ({"recency": [5.0, -1.0, 3.0, 0.0]}, "recency"),
        ({"recency": [5.0, 6.0, 3.0, 2.0]}, "recency"),  # no repeat purchase but a recency
        ({"T": [10.0, np.inf, 10.0, 10.0]}, "T"),
    ],
)
def test_bad_bgnbd_input_raises_data_error_naming_the_column(change, column):
    data = {"frequency": [1, 2, 1, 0], "recency": [5.0, 6.0, 3.0, 0.0], "T": [10.0, 10.0, 10.0, 10.0]}
    data.update(change)
    with pytest.raises(DataError, match=rf"^{column}: 1 of 4 row\(s\)") as raised:
        clv.BetaGeo().fit(**data)
    assert "row 1" in str(raised.value) or "row 3" in str(raised.value)


def test_bad_gamma_gamma_input_raises_data_error_naming_the_column():
    with pytest.raises(DataError, match=r"^frequency: 1 of 3 row\(s\) are 0"):
        clv.GammaGamma().fit([0, 1, 2], [0.0, 5.0, 6.0])
    with pytest.raises(DataError, match=r"^monetary_value: 1 of 3 row\(s\) are not positive.*row 'c'"):
        clv.GammaGamma().fit(pd.Series([3, 1, 2], index=list("abc")), pd.Series([4.0, 5.0, -6.0], index=list("abc")))
    with pytest.raises(DataError, match="differ in length"):
        clv.GammaGamma().fit([1, 2], [3.0])


def test_data_without_repeat_customers_raises_data_error():
    with pytest.raises(DataError, match="0 repeat purchases"):
        clv.BetaGeo().fit(np.zeros(50), np.zeros(50), np.full(50, 30.0))


def test_optimiser_that_does_not_converge_raises_data_error(cdnow):
    with pytest.raises(DataError, match="did not converge"):
        clv.BetaGeo(max_iter=2).fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])


def test_customers_who_all_order_alike_get_a_reason_in_words_not_a_bare_optimiser_message():
    # 0-2 repeat orders each, spread less than a Poisson count: the gamma mixing of rates collapses (r, alpha -> inf)
    rng = np.random.default_rng(0)
    frequency = rng.integers(0, 3, 300)
    recency = np.where(frequency > 0, 28 * np.sqrt(rng.uniform(0, 1, 300)), 0.0)
    with pytest.raises(DataError, match=r"did not converge .* ran towards every customer ordering at the same rate "
                                        r"\(r and alpha growing together, r/alpha = 0\.03"):
        clv.BetaGeo().fit(frequency, recency, np.full(300, 28.0))


def test_expected_spend_of_new_customer_needs_q_above_one():
    model = clv.GammaGamma()
    model.params_ = pd.Series({"p": 2.0, "q": 0.8, "v": 10.0})
    with pytest.raises(DataError, match="q = 0.8 <= 1"):
        model.expected_spend_new()
    with pytest.raises(DataError, match="q = 0.8 <= 1"):
        model.conditional_expected_spend([0, 2], [np.nan, 5.0])
    # a repeat customer's posterior mean is finite whenever p x + q > 1
    assert model.conditional_expected_spend(2, 5.0) == pytest.approx(2.0 * (10.0 + 10.0) / (4.0 + 0.8 - 1.0))


def test_estimators_follow_the_scikit_learn_contract(cdnow):
    model = clv.BetaGeo(n_starts=2, tol=1e-9)
    assert model.get_params() == {"n_starts": 2, "tol": 1e-9, "max_iter": 2000}
    assert not any(name.endswith("_") for name in vars(model))
    with pytest.raises(NotFittedError):
        model.probability_alive(1, 2.0, 3.0)
    assert model.fit(cdnow["frequency"], cdnow["recency"], cdnow["T"]) is model
    copy = clone(model)
    assert copy.get_params() == model.get_params() and not hasattr(copy, "params_")
    assert clone(clv.GammaGamma(n_starts=1)).get_params()["n_starts"] == 1


# ---------------------------------------------------------------------------
# Customer value
# ---------------------------------------------------------------------------


def test_customer_value_is_expected_purchases_times_expected_spend(cdnow, cdnow_bgnbd, cdnow_gamma_gamma):
    c = cdnow.iloc[:50]
    value = clv.customer_value(cdnow_bgnbd, cdnow_gamma_gamma, c["frequency"], c["recency"], c["T"],
                               c["monetary_value"], horizon=52)
    purchases = cdnow_bgnbd.conditional_expected_purchases(52, c["frequency"], c["recency"], c["T"])
    spend = cdnow_gamma_gamma.conditional_expected_spend(c["frequency"], c["monetary_value"])
    np.testing.assert_allclose(value, purchases * spend, rtol=1e-12)
    new = clv.new_customer_value(cdnow_bgnbd, cdnow_gamma_gamma, 52)
    assert new == pytest.approx(cdnow_bgnbd.expected_purchases_new(52) * cdnow_gamma_gamma.expected_spend_new())


def test_discounted_value_discounts_each_period_at_its_end(cdnow_bgnbd, cdnow_gamma_gamma):
    x, t_x, T, m, d = 2, 30.43, 38.86, 22.35, 0.01

    def purchases(s):
        return cdnow_bgnbd.conditional_expected_purchases(s, x, t_x, T) if s > 0 else 0.0

    # horizon 3.5 time units: periods (0,1], (1,2], (2,3], (3,3.5] discounted by 1.01^-1..-4
    ends = [0.0, 1.0, 2.0, 3.0, 3.5]
    by_hand = sum((purchases(ends[k]) - purchases(ends[k - 1])) / (1 + d) ** k for k in range(1, 5))
    spend = cdnow_gamma_gamma.conditional_expected_spend(x, m)
    value = clv.customer_value(cdnow_bgnbd, cdnow_gamma_gamma, x, t_x, T, m, horizon=3.5, discount_rate=d)
    assert value == pytest.approx(by_hand * spend, rel=1e-12)
    undiscounted = clv.customer_value(cdnow_bgnbd, cdnow_gamma_gamma, x, t_x, T, m, horizon=3.5)
    assert undiscounted == pytest.approx(purchases(3.5) * spend, rel=1e-12)
    assert value < undiscounted
    new = clv.new_customer_value(cdnow_bgnbd, cdnow_gamma_gamma, 2, discount_rate=d)
    e1, e2 = cdnow_bgnbd.expected_purchases_new(1.0), cdnow_bgnbd.expected_purchases_new(2.0)
    assert new == pytest.approx((e1 / (1 + d) + (e2 - e1) / (1 + d) ** 2) * cdnow_gamma_gamma.expected_spend_new())


# ---------------------------------------------------------------------------
# Calibration / holdout
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def simulated_holdout():
    params = (0.4, 5.0, 0.7, 2.8)
    rng = np.random.default_rng(39)
    T = rng.uniform(27, 39, size=10_000)
    frequency, recency, holdout = ref.simulate_bgnbd(params, T, rng, holdout=39.0)
    model = clv.BetaGeo().fit(frequency, recency, T)
    table = clv.holdout_calibration(model, frequency, recency, T, holdout, 39.0)
    return model, (frequency, recency, T, holdout), table


def test_holdout_table_has_one_row_per_frequency_group(simulated_holdout):
    _, (frequency, *_), table = simulated_holdout
    assert list(table.columns) == ["group", "customers", "actual_mean", "predicted_mean",
                                   "actual_ci_lower", "actual_ci_upper"]
    assert list(table["group"]) == ["0", "1", "2", "3", "4", "5", "6", ">= 7"]
    assert table["customers"].sum() == frequency.size
    assert table["customers"].iloc[-1] == (frequency >= 7).sum()


def test_holdout_predictions_fall_inside_the_actual_intervals(simulated_holdout):
    model, _, table = simulated_holdout
    predicted, lower, upper = table["predicted_mean"], table["actual_ci_lower"], table["actual_ci_upper"]
    assert ((lower <= predicted) & (predicted <= upper)).sum() >= 7, table
    # and the check has teeth: ignoring the customers' histories (E[X(t)] of a new customer
    # for everyone) misses most groups
    naive = model.expected_purchases_new(39.0)
    assert ((table["actual_ci_lower"] <= naive) & (naive <= table["actual_ci_upper"])).sum() <= 2


def test_holdout_interval_is_nan_for_tiny_groups(cdnow_bgnbd):
    frequency = [0] * 12 + [1] * 3
    recency = [0.0] * 12 + [5.0] * 3
    table = clv.holdout_calibration(cdnow_bgnbd, frequency, recency, [30.0] * 15, [0] * 10 + [1, 2] + [1] * 3, 20.0,
                                    max_group=1)
    assert list(table["group"]) == ["0", ">= 1"]
    assert table.loc[0, "actual_mean"] == pytest.approx(3 / 12)
    half_width = 1.959963984540054 * np.std([0] * 10 + [1, 2], ddof=1) / np.sqrt(12)
    assert table.loc[0, "actual_ci_upper"] == pytest.approx(3 / 12 + half_width)
    assert np.isnan(table.loc[1, "actual_ci_lower"]) and np.isnan(table.loc[1, "actual_ci_upper"])


@pytest.mark.parametrize("params", [(0.24, 4.4, 0.79, 2.4), (2.0, 3.0, 1.5, 1.5), (0.1, 15.0, 5.0, 4.0)])
def test_the_quadrature_fallback_agrees_with_the_closed_form_where_both_work(params):
    t, x, T = np.array([1.0, 10.0, 90.0]), np.array([0.0, 2.0, 5.0]), np.array([0.0, 20.0, 30.0])
    np.testing.assert_allclose(clv._purchases_by_quadrature(params, t, x, T), clv._purchases_if_alive(params, t, x, T),
                               rtol=2e-5)


def test_predictions_stay_finite_when_the_fit_lets_a_and_b_grow_without_bound():
    # a few repeat customers cannot tell dropout probabilities apart: a and b grow together (the Beta
    # shrinks to a point mass at a/(a+b)), where SciPy's 2F1 gives NaN; the limit is a fixed p for all
    history = ([0, 1, 2], [0, 5, 10], [30, 30, 30])
    p_fixed = 0.25
    limit = []
    for x, T in ((0, 30), (1, 30), (2, 30)):  # E[(1 - ((alpha+T)/(alpha+T+p t))^(r+x)) / p] at p = b-posterior mean
        limit.append((1 - (45 / (45 + p_fixed * 14)) ** (0.1 + x)) / p_fixed)
    for scale in (1e2, 1e4, 1e6):
        model = _bgnbd_with((0.1, 15.0, scale, 3 * scale))
        new = model.expected_purchases_new(90.0)
        assert np.isfinite(new) and new == pytest.approx((1 - (15 / (15 + p_fixed * 90)) ** 0.1) / p_fixed, rel=0.02)
        ours = np.asarray(model.conditional_expected_purchases(14.0, *history)) / np.asarray(
            model.probability_alive(*history))
        np.testing.assert_allclose(ours, limit, rtol=0.02)
