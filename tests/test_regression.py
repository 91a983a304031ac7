"""funnelkit.regression against independent references.

statsmodels (OLS, WLS, HC3, Logit, marginal effects), scikit-learn
(LogisticRegression with the matching L2 penalty, LinearSVC with the hinge
loss), an mpmath 60-digit least-squares solver (tests/reference/
regression_mpmath.py) and NIST's certified values.
"""
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from sklearn.utils.estimator_checks import check_estimator

from funnelkit.errors import FunnelkitError
from funnelkit.regression import (
    LONGLEY_CERTIFIED,
    LONGLEY_DATA,
    LeastSquares,
    LinearSVM,
    LogisticIRLS,
    RankDeficientError,
    SeparationError,
    accuracy_table,
    add_constant,
    collinear,
    log_relative_error,
    logit,
    longley,
    ols,
    wampler,
    wampler1,
)


@pytest.fixture(scope="module")
def mpref():
    """The 60-digit mpmath least-squares reference (mpmath is a dev dependency: never skipped)."""
    from tests.reference import regression_mpmath

    return regression_mpmath


RTOL = 1e-8


def rel(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return np.max(np.abs(a - b) / np.abs(b))


# --------------------------------------------------------------------------- data
@pytest.fixture(scope="module")
def linear_data():
    rng = np.random.default_rng(20240611)
    n = 120
    X = pd.DataFrame(
        {
            "const": 1.0,
            "price": rng.normal(50, 10, n),
            "visits": rng.poisson(5, n).astype(float),
            "mobile": rng.integers(0, 2, n).astype(float),
        }
    )
    # heteroscedastic errors, so HC3 differs from the classical covariance
    scale = 0.5 + X["mobile"] + 0.02 * X["price"]
    y = 3.0 + 0.2 * X["price"] - 0.7 * X["visits"] + 1.5 * X["mobile"] + scale * rng.normal(size=n)
    w = rng.uniform(0.5, 2.0, n)
    return X, y.to_numpy(), w


@pytest.fixture(scope="module")
def binary_data():
    rng = np.random.default_rng(7)
    n = 400
    X = pd.DataFrame(
        {
            "const": 1.0,
            "pages": rng.normal(size=n),
            "dwell": rng.normal(size=n),
            "returning": rng.integers(0, 2, n).astype(float),
        }
    )
    eta = 0.3 + X[["pages", "dwell", "returning"]].to_numpy() @ np.array([0.8, -0.5, 1.0])
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-eta))).astype(float)
    return X, y


@pytest.fixture(scope="module")
def svm_data():
    rng = np.random.default_rng(3)
    n = 200
    X = rng.normal(size=(n, 4))
    y = (X @ np.array([1.0, -1.0, 0.5, 0.0]) + 0.3 + 0.8 * rng.normal(size=n) > 0).astype(int)
    return X, y


# --------------------------------------------------------------------------- OLS / WLS
@pytest.mark.parametrize("method", ["qr", "normal"])
def test_ols_matches_statsmodels(linear_data, method):
    X, y, _ = linear_data
    got = ols(X, y, method=method)
    ref = sm.OLS(y, X).fit()
    assert list(got.params.index) == list(X.columns)
    assert rel(got.params, ref.params) < RTOL
    assert rel(got.bse, ref.bse) < RTOL
    assert rel(got.tvalues, ref.tvalues) < RTOL
    assert rel(got.pvalues, ref.pvalues) < 1e-6
    assert got.rsquared == pytest.approx(ref.rsquared, rel=RTOL)
    assert got.rsquared_adj == pytest.approx(ref.rsquared_adj, rel=RTOL)
    assert got.fvalue == pytest.approx(ref.fvalue, rel=RTOL)
    assert got.f_pvalue == pytest.approx(ref.f_pvalue, rel=1e-6)
    assert got.llf == pytest.approx(ref.llf, rel=RTOL)
    assert got.aic == pytest.approx(ref.aic, rel=RTOL) and got.bic == pytest.approx(ref.bic, rel=RTOL)
    assert got.resid_std == pytest.approx(np.sqrt(ref.scale), rel=RTOL)
    assert got.condition_number == pytest.approx(ref.condition_number, rel=1e-6)
    assert (got.df_model, got.df_resid) == (ref.df_model, ref.df_resid)
    np.testing.assert_allclose(got.conf_int(0.1).to_numpy(), ref.conf_int(0.1).to_numpy(), rtol=1e-8)


def test_wls_matches_statsmodels(linear_data):
    X, y, w = linear_data
    got = ols(X, y, weights=w)
    ref = sm.WLS(y, X, weights=w).fit()
    assert rel(got.params, ref.params) < RTOL
    assert rel(got.bse, ref.bse) < RTOL
    assert got.rsquared == pytest.approx(ref.rsquared, rel=RTOL)
    assert got.rsquared_adj == pytest.approx(ref.rsquared_adj, rel=RTOL)
    assert got.fvalue == pytest.approx(ref.fvalue, rel=RTOL)
    assert got.llf == pytest.approx(ref.llf, rel=RTOL)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("method", ["qr", "normal"])
def test_hc3_matches_statsmodels(linear_data, weighted, method):
    X, y, w = linear_data
    got = ols(X, y, method=method, weights=w if weighted else None, cov_type="HC3")
    model = sm.WLS(y, X, weights=w) if weighted else sm.OLS(y, X)
    ref = model.fit(cov_type="HC3", use_t=True)
    classical = model.fit()
    assert rel(got.bse, ref.bse) < RTOL
    assert rel(got.bse, classical.bse) > 1e-3  # the data are heteroscedastic: HC3 really differs
    assert rel(got.pvalues, ref.pvalues) < 1e-6
    assert got.fvalue == pytest.approx(ref.fvalue, rel=RTOL)
    assert got.f_pvalue == pytest.approx(ref.f_pvalue, rel=1e-6)


def test_ols_without_constant_uses_uncentred_r2_like_statsmodels(linear_data):
    X, y, _ = linear_data
    Xn = X.drop(columns="const")
    got, ref = ols(Xn, y), sm.OLS(y, Xn).fit()
    assert got.k_constant == 0
    assert got.rsquared == pytest.approx(ref.rsquared, rel=RTOL)
    assert got.rsquared_adj == pytest.approx(ref.rsquared_adj, rel=RTOL)
    assert got.fvalue == pytest.approx(ref.fvalue, rel=RTOL)
    assert got.df_model == ref.df_model == 3


def test_ols_frames_and_summary(linear_data):
    X, y, _ = linear_data
    res = ols(X.to_numpy(), y)
    assert list(res.params.index) == ["const", "x1", "x2", "x3"]
    frame = res.to_frame()
    assert list(frame.columns) == ["coef", "std_err", "t", "p_value", "ci_lower", "ci_upper"]
    assert np.all(frame["ci_lower"] < frame["coef"]) and np.all(frame["coef"] < frame["ci_upper"])
    text = res.summary()
    assert "R-squared" in text and "x3" in text and "Cond. number" in text
    np.testing.assert_allclose(res.predict(X.to_numpy()), res.fittedvalues)


def test_add_constant_prepends_and_skips_existing():
    X = np.arange(6.0).reshape(3, 2)
    Xc = add_constant(X)
    assert Xc.shape == (3, 3) and np.all(Xc[:, 0] == 1)
    assert add_constant(Xc) is Xc
    frame = add_constant(pd.DataFrame(X, columns=["a", "b"]))
    assert list(frame.columns) == ["const", "a", "b"]


def test_rank_deficient_design_names_the_dependent_column(linear_data):
    X, y, _ = linear_data
    Xd = X.assign(price_eur=2.0 * X["price"] + X["visits"])
    with pytest.raises(RankDeficientError, match="price_eur") as info:
        ols(Xd, y)
    assert isinstance(info.value, FunnelkitError)


# --------------------------------------------------------------------------- accuracy
def test_log_relative_error_definition():
    lre = log_relative_error([1.0, 1.00001, 1e-7, 3.0, 2.0], [1.0, 1.0, 0.0, 1.0, np.nan])
    assert lre[0] == 15.9  # equal: capped
    assert lre[1] == pytest.approx(5.0, abs=1e-4)  # relative error 1e-5
    assert lre[2] == pytest.approx(7.0)  # reference 0: absolute error
    assert lre[3] == 0.0  # 200 % error: clipped at 0


def test_longley_literal_equals_statsmodels_copy():
    data = sm.datasets.longley.load_pandas()
    expected = np.column_stack([data.endog.to_numpy(), data.exog.to_numpy()])
    np.testing.assert_array_equal(LONGLEY_DATA, expected)


def test_nist_certified_longley_values_match_mpmath(mpref):
    d = longley()
    ref = mpref.lstsq(d.X, d.y)
    assert np.min(log_relative_error(LONGLEY_CERTIFIED, ref["params"])) > 13.5  # NIST prints 15 digits
    assert ref["resid_std"] == pytest.approx(304.854073561965, rel=1e-13)
    assert ref["rsquared"] == pytest.approx(0.995479004577296, rel=1e-13)


@pytest.mark.parametrize("design", [wampler1(), longley()], ids=lambda d: d.name)
def test_qr_agrees_with_mpmath_to_nine_digits(design, mpref):
    ref = mpref.lstsq(design.X, design.y)
    res = ols(design.X, design.y, method="qr")
    assert np.min(log_relative_error(res.params, ref["params"])) >= 9.0
    if ref["resid_std"] > 1e-30 * np.linalg.norm(design.y):
        assert np.min(log_relative_error(res.bse, ref["bse"])) >= 8.0
        assert res.resid_std == pytest.approx(ref["resid_std"], rel=1e-9)
    else:  # Wampler1 fits exactly: NIST certifies residual sd and standard errors 0
        assert res.resid_std < 1e-9 * np.linalg.norm(design.y) and np.all(res.bse < 1e-9)
    normal = ols(design.X, design.y, method="normal")
    lre_qr = np.min(log_relative_error(res.params, ref["params"]))
    lre_ne = np.min(log_relative_error(normal.params, ref["params"]))
    kappa = np.log10(res.condition_number_scaled)
    # normal equations: measurably worse, by about another log10(kappa) digits
    assert lre_ne <= lre_qr - 0.5 * kappa
    assert lre_ne <= 15.95 - 1.5 * kappa


def test_wampler1_exact_answer_is_all_ones(mpref):
    d = wampler1()
    assert np.array_equal(d.certified, np.ones(6))
    assert np.array_equal(d.X @ d.certified, d.y)  # exact in double precision
    ref = mpref.lstsq(d.X, d.y)
    np.testing.assert_array_equal(ref["params"], np.ones(6))
    np.testing.assert_allclose(ols(d.X, d.y).params, np.ones(6), rtol=1e-9)


def test_collinear_design_hits_requested_condition_and_exact_answer(mpref):
    for target in (4.0, 8.0, 12.0):
        d = collinear(target)
        assert np.array_equal(d.X @ d.certified, d.y)
        res = ols(d.X, d.y)
        assert abs(np.log10(res.condition_number_scaled) - target) < 0.5
        np.testing.assert_array_equal(mpref.lstsq(d.X, d.y)["params"], d.certified)


def test_accuracy_table_shows_normal_equations_losing_twice_the_digits():
    designs = [wampler1(), wampler(7), longley(), collinear(7.0)]
    table = accuracy_table(designs)
    assert list(table.index) == [d.name for d in designs]
    for col in ("log10_cond", "log10_cond_raw", "lre_normal", "lre_qr", "lre_qr_plain"):
        assert col in table.columns
    for name, row in table.iterrows():
        kappa = row["log10_cond"]
        assert row["lre_normal"] < row["lre_qr"] - 0.5 * kappa, name
        assert row["lre_normal"] <= 15.95 - 1.5 * kappa, name
        # QR loses at most ~log10(kappa) digits (of the raw design when columns are badly graded)
        assert row["lre_qr"] >= 15.95 - max(kappa, row["log10_cond_raw"]) - 1.0, name
    # the synthetic design: QR loses at most ~log10(kappa) digits, the normal equations ~2 log10(kappa)
    row = table.iloc[3]
    kappa = row["log10_cond"]
    assert row["lre_qr"] >= 15.95 - kappa - 0.5
    assert 15.95 - 2 * kappa - 1.0 <= row["lre_normal"] <= 15.95 - 2 * kappa + 1.5


def test_normal_equations_break_down_on_very_ill_conditioned_design():
    d = collinear(11.0)
    with pytest.raises(RankDeficientError, match="method='qr'"):
        ols(d.X, d.y, method="normal")
    assert np.min(log_relative_error(ols(d.X, d.y).params, d.certified)) > 2.0


# --------------------------------------------------------------------------- logit
def test_logit_matches_statsmodels(binary_data):
    X, y = binary_data
    got = logit(X, y)
    ref = sm.Logit(y, X).fit(method="newton", tol=1e-14, maxiter=100, disp=0)
    assert got.converged and got.n_iter < 15
    assert rel(got.params, ref.params) < RTOL
    assert rel(got.bse, ref.bse) < RTOL
    assert rel(got.zvalues, ref.tvalues) < RTOL
    assert rel(got.pvalues, ref.pvalues) < 1e-6
    assert got.llf == pytest.approx(ref.llf, rel=1e-12)
    assert got.llnull == pytest.approx(ref.llnull, rel=1e-8)
    assert got.prsquared == pytest.approx(ref.prsquared, rel=1e-8)
    assert got.llr_pvalue == pytest.approx(ref.llr_pvalue, rel=1e-6)
    assert got.aic == pytest.approx(ref.aic) and got.bic == pytest.approx(ref.bic)
    np.testing.assert_allclose(got.conf_int().to_numpy(), ref.conf_int().to_numpy(), rtol=1e-8)
    np.testing.assert_allclose(got.predict(X), ref.predict(X), rtol=1e-10)


def test_logit_odds_ratios_and_marginal_effects_match_statsmodels(binary_data):
    X, y = binary_data
    got = logit(X, y)
    ref = sm.Logit(y, X).fit(method="newton", tol=1e-14, disp=0)
    odds = got.odds_ratios(alpha=0.1)
    np.testing.assert_allclose(odds["odds_ratio"], np.exp(ref.params), rtol=1e-8)
    np.testing.assert_allclose(odds["ci_lower"], np.exp(ref.conf_int(0.1)[0]), rtol=1e-8)
    me = got.marginal_effects(dummy=False)
    margeff = ref.get_margeff(at="overall", method="dydx")
    assert list(me.index) == ["pages", "dwell", "returning"]
    np.testing.assert_allclose(me["dy_dx"], margeff.margeff, rtol=1e-8)
    # statsmodels differentiates numerically; the delta-method Jacobian here is analytic
    np.testing.assert_allclose(me["std_err"], margeff.margeff_se, rtol=1e-5)
    # a 0/1 column ("returning") gets the discrete change of switching it on, like dummy=True
    discrete = got.marginal_effects()
    margeff = ref.get_margeff(at="overall", method="dydx", dummy=True)
    np.testing.assert_allclose(discrete["dy_dx"], margeff.margeff, rtol=1e-8)
    np.testing.assert_allclose(discrete["std_err"], margeff.margeff_se, rtol=1e-5)
    assert abs(discrete.loc["returning", "dy_dx"] - me.loc["returning", "dy_dx"]) > 1e-4


def test_logit_convergence_report_and_step_halving():
    x = np.linspace(-9, 9, 37)
    y = (x > 1.5).astype(float)
    y[np.argmin(np.abs(x - 1.0))], y[np.argmin(np.abs(x - 2.0))] = 1.0, 0.0  # overlap: the MLE exists
    X = add_constant(x)
    ref = sm.Logit(y, X).fit(method="bfgs", gtol=1e-12, maxiter=5000, disp=0)
    got = logit(X, y, start_params=[5.0, -5.0])  # far from the optimum: full Newton steps overshoot
    hist = got.history
    assert got.converged and hist["halvings"].sum() > 0
    assert np.all(np.diff(hist["objective"]) >= -1e-12)  # step halving keeps the ascent monotone
    assert got.grad_norm < 1e-10 and hist["grad_norm"].iloc[-1] == got.grad_norm
    assert len(hist) == got.n_iter + 1
    assert rel(got.params, ref.params) < 1e-6
    assert "Converged" in got.summary()


def test_complete_separation_raises_naming_the_column():
    rng = np.random.default_rng(2)
    n = 60
    X = pd.DataFrame(
        {"const": 1.0, "age": rng.normal(size=n), "coupon": rng.normal(5, 1, n), "noise": rng.normal(size=n)}
    )
    y = (X["coupon"] > 5).astype(float)
    with pytest.raises(SeparationError, match="complete separation: column 'coupon'") as info:
        logit(X, y)
    assert info.value.info.kind == "complete" and info.value.info.columns == ("coupon",)
    assert info.value.info.n_perfect == n
    with pytest.raises(SeparationError, match="'coupon'"):
        LogisticIRLS().fit(X.drop(columns="const"), y)
    # a penalty makes the optimum finite
    assert logit(X, y, l2=1.0).converged


def test_quasi_complete_separation_raises_naming_the_column():
    rng = np.random.default_rng(5)
    n = 80
    vip = (rng.random(n) < 0.3).astype(float)
    y = np.where(vip == 1, 1.0, (rng.random(n) < 0.4).astype(float))  # every VIP converts
    X = pd.DataFrame({"const": 1.0, "age": rng.normal(size=n), "vip": vip})
    with pytest.raises(SeparationError, match="quasi-complete separation: column 'vip'") as info:
        logit(X, y)
    assert info.value.info.kind == "quasi-complete"
    assert info.value.info.n_perfect == int(vip.sum())
    with pytest.warns(RuntimeWarning, match="vip"):
        res = logit(X, y, on_separation="warn")
    assert res.separation is not None and not res.converged


def test_separation_by_a_combination_of_columns_names_them():
    rng = np.random.default_rng(11)
    n = 60
    X = pd.DataFrame({"const": 1.0, "a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.normal(size=n)})
    y = (X["a"] + X["b"] > 0).astype(float)
    with pytest.raises(SeparationError, match="combination of the columns 'a', 'b'"):
        logit(X, y)


def test_overlapping_data_are_not_flagged_as_separated(binary_data):
    X, y = binary_data
    assert logit(X.iloc[:40], y[:40]).separation is None
    # stopping Newton early forces the LP check to run: it must find nothing
    with pytest.warns(RuntimeWarning, match="did not converge"):
        early = logit(X.iloc[:40], y[:40], max_iter=1)
    assert early.separation is None and not early.converged and early.n_iter == 1


@pytest.mark.parametrize("l2", [0.5, 5.0])
def test_l2_logit_matches_sklearn_with_c_equal_one_over_l2(binary_data, l2):
    X, y = binary_data
    got = logit(X, y, l2=l2)
    Xf = X.drop(columns="const").to_numpy()
    sk = LogisticRegression(C=1.0 / l2, tol=1e-12, max_iter=10_000).fit(Xf, y)
    np.testing.assert_allclose(got.params.to_numpy(), np.r_[sk.intercept_, sk.coef_[0]], rtol=1e-5, atol=1e-7)
    assert got.penalized.tolist() == [False, True, True, True]
    unpenalised = logit(X, y)
    assert np.all(np.abs(got.params.iloc[1:]) < np.abs(unpenalised.params.iloc[1:]))  # shrinkage
    est = LogisticIRLS(l2=l2).fit(Xf, y)
    np.testing.assert_allclose(est.coef_[0], sk.coef_[0], rtol=1e-5)
    np.testing.assert_allclose(est.predict_proba(Xf), sk.predict_proba(Xf), rtol=1e-6)


# --------------------------------------------------------------------------- SVM
def svm_primal(coef, intercept, C, X, y, B=1.0):
    s = 2 * y - 1
    return 0.5 * (coef @ coef + (intercept / B) ** 2) + C * np.sum(np.maximum(0.0, 1.0 - s * (X @ coef + intercept)))


@pytest.mark.parametrize("C,B", [(0.1, 1.0), (1.0, 1.0), (1.0, 5.0)])
def test_linear_svm_matches_liblinear(svm_data, C, B):
    X, y = svm_data
    got = LinearSVM(C=C, intercept_scaling=B, tol=1e-10, max_iter=20_000, random_state=0).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # liblinear reports non-convergence at this tolerance
        ref = LinearSVC(
            loss="hinge", dual=True, C=C, intercept_scaling=B, tol=1e-12, max_iter=1_000_000, random_state=0
        ).fit(X, y)
    p_ref = svm_primal(ref.coef_[0], ref.intercept_[0], C, X, y, B)
    assert got.converged_ and got.duality_gap_ <= 1e-10 * got.primal_objective_
    assert got.primal_objective_ == pytest.approx(p_ref, rel=1e-6)
    assert got.primal_objective_ == pytest.approx(svm_primal(got.coef_[0], got.intercept_[0], C, X, y, B), rel=1e-12)
    assert got.dual_objective_ <= got.primal_objective_
    np.testing.assert_array_equal(got.predict(X), ref.predict(X))
    # liblinear does not expose alpha: its support vectors are the points on or inside the margin
    margin = (2 * y - 1) * ref.decision_function(X)
    np.testing.assert_array_equal(got.support_, np.flatnonzero(margin < 1 + 1e-6))
    # KKT: alpha = C inside the margin, alpha = 0 outside, and w = sum alpha_i s_i x_i
    own = (2 * y - 1) * got.decision_function(X)
    assert np.all(got.alpha_[own < 1 - 1e-6] == C) and np.all(got.alpha_[own > 1 + 1e-6] == 0)
    np.testing.assert_allclose(got.dual_coef_[0] @ got.support_vectors_, got.coef_[0], atol=1e-12)


def test_linear_svm_labels_and_decision_function(svm_data):
    X, y = svm_data
    labels = np.where(y == 1, "buy", "leave")
    m = LinearSVM(random_state=0).fit(X, labels)
    assert list(m.classes_) == ["buy", "leave"]
    assert np.all((m.decision_function(X) > 0) == (m.predict(X) == "leave"))
    assert m.score(X, labels) > 0.75
    with pytest.raises(ValueError, match="binary"):
        LinearSVM().fit(X, np.arange(len(y)) % 3)


# --------------------------------------------------------------------------- sklearn contract
def test_estimators_clone_pipeline_and_grid_search(binary_data, svm_data, linear_data):
    X, y = binary_data
    Xf = X.drop(columns="const").to_numpy()
    grid = GridSearchCV(make_pipeline(StandardScaler(), LogisticIRLS()), {"logisticirls__l2": [0.0, 1.0, 1000.0]}, cv=3)
    grid.fit(Xf, y)
    assert grid.best_params_["logisticirls__l2"] in (0.0, 1.0)  # a huge penalty predicts worse
    assert grid.best_score_ > 0.65
    assert isinstance(grid.best_estimator_[-1].results_.params, pd.Series)

    Xs, ys = svm_data
    svm = GridSearchCV(LinearSVM(random_state=0), {"C": [0.01, 1.0]}, cv=3).fit(Xs, ys)
    assert svm.best_score_ > 0.75

    Xl, yl, _ = linear_data
    base = LeastSquares(method="normal")
    twin = clone(base)
    assert twin.get_params() == base.get_params() and not hasattr(twin, "coef_")
    lsq = GridSearchCV(LeastSquares(), {"method": ["qr", "normal"]}, cv=3).fit(Xl.drop(columns="const"), yl)
    ref = sm.OLS(yl, Xl).fit()
    np.testing.assert_allclose(np.r_[lsq.best_estimator_.intercept_, lsq.best_estimator_.coef_], ref.params, rtol=1e-8)
    assert lsq.best_estimator_.results_.params.index[1] == "price"


@pytest.mark.parametrize(
    "estimator,expected_failures",
    [
        (LeastSquares(), {"check_sample_weight_equivalence_on_dense_data": "needs n > p; the check uses n < p"}),
        # the default l2=0 raises SeparationError on the checks' well-separated blobs, by design
        (LogisticIRLS(l2=1.0), {}),
        (LinearSVM(tol=1e-4, max_iter=200), {}),
    ],
    ids=lambda v: type(v).__name__ if not isinstance(v, dict) else "",
)
def test_sklearn_estimator_checks(estimator, expected_failures):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(estimator, expected_failed_checks=expected_failures, on_fail=None)
    failed = [r["check_name"] for r in results if r["status"] == "failed"]
    assert failed == []
