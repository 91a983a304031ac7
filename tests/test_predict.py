"""Model comparison: honest folds, baselines at their floor, real signal found."""
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from funnelkit.errors import DataError
from funnelkit.predict import compare_models


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    n = 3000
    X = pd.DataFrame({"strong": rng.normal(size=n), "weak": rng.normal(size=n), "noise": rng.normal(size=n),
                      "interaction": rng.normal(size=n)})
    logit = -2.0 + 1.5 * X["strong"] + 0.7 * X["weak"] + 2.0 * X["strong"] * X["interaction"]
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y


@pytest.fixture(scope="module")
def comparison(data):
    X, y = data
    return compare_models(X, y, strong_feature="strong", folds=4, seed=0)


def test_every_model_is_scored_on_every_fold_out_of_fold(comparison, data):
    X, y = data
    assert comparison.folds.groupby("model").size().eq(4).all()
    for p in comparison.probabilities.values():
        assert not np.isnan(p).any() and ((0 <= p) & (p <= 1)).all()
    assert (comparison.y == y).all()


def test_baselines_sit_where_they_must(comparison):
    table = comparison.table().set_index("model")
    assert table.loc["majority class", "roc_auc"] == pytest.approx(0.5)
    # the base rate is the majority model's PR-AUC
    assert table.loc["majority class", "pr_auc"] == pytest.approx(comparison.y.mean(), abs=0.02)
    # more features beat one; boosting finds the interaction a linear model cannot
    assert table.loc["logistic", "roc_auc"] > table.loc["one feature", "roc_auc"] + 0.02
    assert table.loc["gradient boosting", "roc_auc"] > table.loc["logistic", "roc_auc"] + 0.02
    assert comparison.best() == "gradient boosting"


def population(n: int = 1_000_000, seed: int = 99) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """A large fresh sample of the ``data`` fixture's population: features, true logit, label."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({name: rng.normal(size=n) for name in ("strong", "weak", "noise", "interaction")})
    logit = -2.0 + 1.5 * X["strong"] + 0.7 * X["weak"] + 2.0 * X["strong"] * X["interaction"]
    return X, logit.to_numpy(), (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).to_numpy().astype(int)


def test_auc_intervals_hold_the_population_auc_computed_from_a_million_fresh_draws(comparison):
    """The one-feature model ranks by ``strong`` alone (a logistic of one feature is monotone in it), so its
    out-of-fold ROC AUC estimates the population AUC of ``strong``; no model can beat the true logit's AUC."""
    from sklearn.metrics import roc_auc_score

    X, logit, y = population()
    strong_auc, bayes_auc = roc_auc_score(y, X["strong"]), roc_auc_score(y, logit)
    table = comparison.table().set_index("model")
    low, high = table.loc["one feature", ["roc_auc_low", "roc_auc_high"]]
    assert low < strong_auc < high
    assert high - low < 0.25  # an interval, not the whole range
    assert table.loc["gradient boosting", "roc_auc_low"] < bayes_auc
    assert table.loc["majority class", ["roc_auc_low", "roc_auc_high"]].tolist() == [0.5, 0.5]


def test_corrected_interval_covers_a_known_mean_as_often_as_theory_says():
    """Fold scores drawn independently from N(0.7, 0.02²), 4 folds: the Nadeau–Bengio interval is the
    t-interval widened by sqrt(1 + k·test/(1 - test)) = sqrt(1 + 4/3), so it covers 0.7 with probability
    P(|t_3| < t_{0.975,3}·sqrt(7/3)), about 98.3% (the uncorrected t-interval: 95%); 400 seeded draws."""
    from scipy import stats

    from funnelkit.predict import ModelComparison

    covered = []
    for seed in range(400):
        scores = np.random.default_rng(seed).normal(0.7, 0.02, size=4)
        folds = pd.DataFrame({"model": "m", "fold": range(4), "roc_auc": scores, "pr_auc": scores,
                              "brier": scores})
        row = ModelComparison(folds, {}, np.array([]), test_share=0.25).table().iloc[0]
        covered.append(row["roc_auc_low"] <= 0.7 <= row["roc_auc_high"])
    theory = 2 * stats.t.cdf(stats.t.ppf(0.975, 3) * np.sqrt(7 / 3), 3) - 1
    assert abs(np.mean(covered) - theory) < 0.02, (np.mean(covered), theory)


def test_class_weights_change_calibration_not_ranking(comparison):
    table = comparison.table().set_index("model")
    assert abs(table.loc["logistic, class-weighted", "roc_auc"] - table.loc["logistic", "roc_auc"]) < 0.01
    # balanced weights inflate probabilities of a rare class: worse Brier score, over-predicted mean
    assert table.loc["logistic, class-weighted", "brier"] > table.loc["logistic", "brier"]
    assert comparison.probabilities["logistic, class-weighted"].mean() > comparison.y.mean() + 0.1
    def calibration_error(model):
        curve = comparison.calibration(model)
        return np.abs(curve["predicted"] - curve["observed"]).mean()

    assert calibration_error("logistic") < calibration_error("logistic, class-weighted") / 2


def test_grid_search_runs_inside_each_fold(comparison):
    params = comparison.folds.set_index("model").loc["logistic", "best_params"]
    assert all("logisticregression__C" in p for p in params)


def test_bad_inputs_are_named(data):
    X, y = data
    with pytest.raises(DataError, match="strong_feature 'nope'"):
        compare_models(X, y, strong_feature="nope")
    with pytest.raises(DataError, match="missing values in \\['weak'\\]"):
        compare_models(X.assign(weak=np.nan), y, strong_feature="strong")
    with pytest.raises(DataError, match="at least 5 rows of each class"):
        compare_models(X, np.zeros(len(y), int), strong_feature="strong")


def test_curves_and_their_charts(comparison):
    import matplotlib

    matplotlib.use("Agg")
    from funnelkit import plots
    from tests.test_plots import labelled

    roc = comparison.roc("logistic")
    assert roc.iloc[0].tolist() == [0.0, 0.0] and roc.iloc[-1].tolist() == [1.0, 1.0]
    pr = comparison.precision_recall("majority class")
    assert pr["precision"].min() == pytest.approx(comparison.y.mean())
    assert labelled(plots.model_curves_chart(comparison, ["majority class", "logistic"]))
    assert labelled(plots.calibration_chart(comparison, ["logistic"]))


def test_paired_difference_and_corrected_intervals(comparison):
    gain = comparison.difference("logistic", "one feature")
    table = comparison.table().set_index("model")
    assert gain["difference"] == pytest.approx(table.loc["logistic", "roc_auc"] - table.loc["one feature", "roc_auc"])
    assert 0 < gain["low"] < gain["difference"] < gain["high"]
    # the Nadeau–Bengio interval is wider than the naive t-interval over folds
    scores = comparison.folds[comparison.folds["model"] == "logistic"]["roc_auc"]
    from scipy import stats
    naive = stats.t.ppf(0.975, len(scores) - 1) * scores.std(ddof=1) / np.sqrt(len(scores))
    assert table.loc["logistic", "roc_auc_high"] - table.loc["logistic", "roc_auc"] > naive


def test_groups_keep_a_users_rows_in_one_fold(data):
    X, y = data
    groups = np.arange(len(y)) // 3  # three rows per "user"
    result = compare_models(X.iloc[:900], y[:900], strong_feature="strong", groups=groups[:900], folds=3, seed=1)
    assert result.folds.groupby("model").size().eq(3).all()
    from sklearn.model_selection import StratifiedGroupKFold
    for train, test in StratifiedGroupKFold(3, shuffle=True, random_state=1).split(X.iloc[:900], y[:900], groups[:900]):
        assert not set(groups[train]) & set(groups[test])


@settings(max_examples=300, deadline=None)
@given(st.integers(2, 6), st.integers(0, 2**31 - 1), st.booleans(), st.data())
def test_fast_stratified_group_folds_are_scikit_learns(n_splits, seed, shuffle, data):
    """FastStratifiedGroupKFold deals every group to the fold scikit-learn's StratifiedGroupKFold does: random
    0/1 labels (rare positives included) and group sizes, many groups with the same class counts (ties)."""
    from sklearn.model_selection import StratifiedGroupKFold

    from funnelkit.predict import FastStratifiedGroupKFold

    n = data.draw(st.integers(n_splits * 2, 400), label="rows")
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, data.draw(st.integers(n_splits, n), label="groups"), size=n)
    y = (rng.uniform(size=n) < data.draw(st.sampled_from([0.02, 0.1, 0.5]), label="rate")).astype(int)
    y[:n_splits], y[n_splits:2 * n_splits] = 0, 1  # each class fills every fold at least once
    if len(np.unique(groups)) < n_splits:
        return
    random_state = seed if shuffle else None
    ours = list(FastStratifiedGroupKFold(n_splits, shuffle=shuffle, random_state=random_state).split(y, y, groups))
    theirs = list(StratifiedGroupKFold(n_splits, shuffle=shuffle, random_state=random_state).split(y, y, groups))
    assert len(ours) == len(theirs)
    for (train, test), (train_ref, test_ref) in zip(ours, theirs):
        np.testing.assert_array_equal(test, test_ref)
        np.testing.assert_array_equal(train, train_ref)


def test_fast_stratified_group_folds_leave_other_labels_to_scikit_learn():
    """Three classes, and a class smaller than the folds: scikit-learn's own path (its folds, its warning)."""
    from sklearn.model_selection import StratifiedGroupKFold

    from funnelkit.predict import FastStratifiedGroupKFold

    rng = np.random.default_rng(0)
    groups, y = rng.integers(0, 60, size=300), rng.integers(0, 3, size=300)
    for a, b in zip(FastStratifiedGroupKFold(4, shuffle=True, random_state=1).split(y, y, groups),
                    StratifiedGroupKFold(4, shuffle=True, random_state=1).split(y, y, groups)):
        np.testing.assert_array_equal(a[1], b[1])
    y = np.zeros(300, dtype=int)
    y[:2] = 1
    with pytest.warns(UserWarning, match="least populated class"):
        folds = list(FastStratifiedGroupKFold(4).split(y, y, groups))
    assert len(folds) == 4
