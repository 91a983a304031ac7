"""The conversion-drivers study: what moves each funnel step, and by how much.

Each funnel step gets its own logistic model on the sessions that reached the
previous step (cart | session, checkout | cart, purchase | checkout), with
features from :func:`funnelkit.features.session_table` that use only events
before the step. This is how the built-in shop planted its effects, so on the
simulated data the estimates can be held against the truth. Effects are
reported as odds ratios and average marginal effects with 95% intervals, and
their p-values are adjusted for testing every term of every step at once.

:func:`run` is the study (``drivers`` section of the params): the step
models, who buys predicted while browsing (:mod:`funnelkit.predict`), the
order-value regression, and the checks of the derived solvers on the same
data, in one :class:`DriversResults`.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.diagnostic import het_breuschpagan
from statsmodels.stats.stattools import jarque_bera
from threadpoolctl import threadpool_limits

from .eventlog import EventLog
from .engines import quote
from .features import INTERCEPT, design_matrix, session_table
from .groundtruth import Planted, driver_recovery, planted_effects
from .params import DriversParams, describe_duration
from .predict import ModelComparison, compare_models
from .regression import LinearSVM, accuracy_table, log_relative_error, logit, ols
from .requirements import StudyNotApplicable, missing, require, unavailable
from .schema import COLUMNS, EVENTS, SEGMENTS
from .stats import adjust_pvalues
from .study import Metric, StudyResults
from .text import escape_md, points

BEHAVIOUR = ("log_price", "log_views")
SOURCES = {"log_price": COLUMNS.price, "price_mean": COLUMNS.price, "distinct_items": COLUMNS.item_id,
           "distinct_categories": COLUMNS.category}
"""Features of the step and prediction models that come from an optional column of the log."""
PREFERRED_BASELINES = {SEGMENTS.device: "desktop", SEGMENTS.channel: "organic", SEGMENTS.customer_type: "new",
                       SEGMENTS.country: "DE"}
"""The built-in shop's reference levels; other data falls back to each segment's most common value."""


@dataclass
class StepModel:
    """One step's logistic model: ``results`` (a :class:`funnelkit.regression.LogitResults`);
    ``baselines`` the reference level of each segment (``{"device": "desktop"}``), the session every
    odds ratio compares with."""

    step: str
    given: str | None
    sessions: int
    converted: int
    results: object
    X: pd.DataFrame
    y: np.ndarray
    baselines: dict = field(default_factory=dict)


@dataclass
class PurchasePrediction:
    """Who buys, predicted from a session's browsing (:func:`purchase_data`, :func:`funnelkit.predict.compare_models`).

    Attributes
    ----------
    X : DataFrame
        The features of each session, before its first ``drivers.before`` event.
    y : ndarray
        1 when the session bought within ``drivers.window`` of its start.
    users : ndarray
        The user of each row (a user's sessions stay in one fold).
    comparison : ModelComparison
        Every model's cross-validated scores and out-of-fold probabilities.
    """

    X: pd.DataFrame
    y: np.ndarray
    users: np.ndarray
    comparison: ModelComparison


@dataclass
class OrderValue:
    """The order-value regression (:func:`order_value_model`) and its diagnostics.

    Attributes
    ----------
    orders : DataFrame
        One row per purchasing session (:func:`order_values`), ``revenue`` in the log's currency.
    results : OLSResults
        OLS of ln(revenue) with HC3 standard errors.
    X : DataFrame
        Its design (intercept included).
    y : ndarray
        ln(revenue) of each row of ``X``.
    residuals, tests : DataFrame
        :func:`residual_diagnostics`: residuals for the plots, Jarque–Bera and Breusch–Pagan.
    """

    orders: pd.DataFrame
    results: object
    X: pd.DataFrame
    y: np.ndarray
    residuals: pd.DataFrame
    tests: pd.DataFrame


@dataclass
class MethodChecks:
    """The derived solvers checked against independent references, on this study's data.

    Attributes
    ----------
    logit : DataFrame
        The cart model by IRLS against statsmodels' Newton (:func:`against_statsmodels`).
    svm : DataFrame
        The derived linear SVM against LIBLINEAR on the prediction data (:func:`svm_against_sklearn`).
    accuracy : DataFrame
        Correct digits of QR and the normal equations on designs with certified answers
        (:func:`funnelkit.regression.accuracy_table`).
    ols : DataFrame or None
        The order-value regression by QR and by the normal equations against statsmodels; None
        when the log has no prices (no order-value model).
    """

    logit: pd.DataFrame
    svm: pd.DataFrame
    accuracy: pd.DataFrame
    ols: pd.DataFrame | None = None


@dataclass
class DriversResults(StudyResults):
    """What the conversion-drivers study found (:func:`run`).

    Attributes
    ----------
    spec : DriversParams
        The settings it ran with.
    models : list of StepModel
        One logistic model per funnel step.
    effects : DataFrame
        :func:`drivers_table`: every term of every step; with the planted truth also ``planted`` and
        ``inside`` (:func:`funnelkit.groundtruth.planted_effects`).
    left_out : dict
        Features this log cannot give, with the reason (:func:`left_out_features`).
    excluded : set or None
        Accounts left out of every model (the planted bots, click farm and fake orders); None when
        every account is in.
    prediction : PurchasePrediction
    order_value : OrderValue or None
        None when the log has no prices; ``order_value_missing`` then says so.
    order_value_missing : StudyNotApplicable or None
    checks : MethodChecks
    recovery : dict or None
        :func:`funnelkit.groundtruth.driver_recovery` when the planted truth was given.
    """

    spec: DriversParams
    models: list[StepModel]
    effects: pd.DataFrame
    left_out: dict[str, str]
    excluded: set | None
    prediction: PurchasePrediction
    order_value: OrderValue | None
    order_value_missing: StudyNotApplicable | None
    checks: MethodChecks
    recovery: dict | None = None

    def headline(self) -> str:
        """Markdown: the largest effects that survive the multiple-testing adjustment (:func:`headline_drivers`)."""
        return headline_drivers(self.effects)

    def metrics(self) -> list[Metric]:
        """The study's figures, in the report's order.

        The two strongest significant drivers (pp), the sessions of each step model, the recovery of
        the planted coefficients (with the truth), the prediction's ROC-AUC against its baselines and
        the purchase rate, the order-value model (with prices), and the checks of the derivations
        (digits agreeing with statsmodels, the SVM objective against LIBLINEAR, least squares on
        certified designs).
        """
        figures = headline_figures(self.effects, top=2)
        figures += [Metric(f"sessions_{model.step}_model", model.sessions, unit="sessions",
                           label=f"Sessions in the {model.step} model") for model in self.models]
        if self.recovery is not None:
            figures += [
                Metric("planted_effects_inside", self.recovery["inside"], label="Planted coefficients inside their 95% CI"),
                Metric("planted_effects_total", self.recovery["total"], label="Planted coefficients checked"),
                Metric("false_positive_drivers", self.recovery["false_positives"],
                       label="Zero planted effects called significant (Holm)"),
            ]
        comparison = self.prediction.comparison
        scores = comparison.table().set_index("model")
        gain = comparison.difference("logistic", "one feature")
        before = f"before the first {self.spec.before}" if self.spec.before else "before the purchase"
        within = "a day" if self.spec.window == dt.timedelta(days=1) else describe_duration(self.spec.window)
        figures += [
            Metric("logistic_auc", float(scores.loc["logistic", "roc_auc"]), unit="ROC-AUC",
                   label=(f"Telling buyers from browsers {before}: ROC-AUC of the logistic model "
                          f"(one-feature baseline {scores.loc['one feature', 'roc_auc']:.2f}, chance 0.50)"),
                   ci=(float(scores.loc["logistic", "roc_auc_low"]), float(scores.loc["logistic", "roc_auc_high"])),
                   headline=True),
            Metric("logistic_gain_over_one_feature", gain["difference"], unit="ROC-AUC",
                   label="Logistic minus one-feature baseline (paired by fold)", ci=(gain["low"], gain["high"])),
            Metric("best_model", comparison.best(), label="Highest mean ROC-AUC (same folds: optimistic)"),
            Metric("purchase_rate", float(self.prediction.y.mean()), unit="share of sessions",
                   label=f"Sessions that buy within {within}", headline=True),
        ]
        if self.order_value is not None:
            figures += [
                Metric("order_value_sessions", len(self.order_value.X), unit="sessions",
                       label="Purchasing sessions modelled"),
                Metric("order_value_r2", float(self.order_value.results.rsquared), label="Order value model R²"),
            ]
        svm = self.checks.svm.set_index("quantity")["ours"]
        return figures + [
            Metric("logit_min_digits", float(self.checks.logit["IRLS digits"].min()), unit="digits",
                   label="Logit coefficients: digits agreeing with statsmodels (min)"),
            Metric("svm_objective_rel_diff", float(svm["relative difference of objectives"]),
                   label="SVM objective: relative difference to LIBLINEAR"),
            Metric("lre_qr_min", float(self.checks.accuracy["lre_qr"].min()), unit="digits",
                   label="Least squares by QR: fewest correct digits"),
            Metric("lre_normal_min", float(self.checks.accuracy["lre_normal"].min()), unit="digits",
                   label="Normal equations: fewest correct digits"),
        ]


def run(events: EventLog, spec: DriversParams, *, truth: Planted | None = None) -> DriversResults:
    """The conversion-drivers study: step models, purchase prediction, order value, checks of the method.

    Parameters
    ----------
    events : EventLog
        The canonical event log, with purchase events (the label).
    spec : DriversParams
        The ``drivers`` section of the params: conversion window, reference price, the prediction's
        cut-off event, folds, row sample and seed.
    truth : Planted, optional
        The planted truth of the built-in shop (:func:`funnelkit.groundtruth.planted`): its bots,
        click farm and fake-order accounts are left out of every model (they do not behave like
        customers), and the estimates are held against the planted coefficients.

    Returns
    -------
    DriversResults

    Notes
    -----
    The order-value model needs prices: without a price column ``order_value`` is None and
    ``order_value_missing`` says why, and the price features are left out of the other models.
    """
    # One BLAS/OpenMP thread for the whole study (funnelkit.predict says why): its matrices are thin (tens
    # of columns), where a second thread buys little on a quiet machine and costs much beside a busy process
    # (the statsmodels check of the cart model: 1.3 s of CPU with two threads, 0.1 s with one).
    with threadpool_limits(limits=1):
        return _run(events, spec, truth=truth)


def _run(events: EventLog, spec: DriversParams, *, truth: Planted | None) -> DriversResults:
    excluded = None if truth is None else truth.anomalous_accounts
    models = step_models(events, window=spec.window, reference_price=spec.reference_price, exclude_users=excluded)
    effects = drivers_table(models)
    recovery = None
    if truth is not None:
        effects = planted_effects(effects, truth)
        recovery = driver_recovery(effects, truth)
    # the sessions labelled "purchased within the window": the prediction's label and the order-value rows
    purchases = session_table(events, label=EVENTS.purchase, window=spec.window)
    X, y, users = purchase_data(events, window=spec.window, before=spec.before, exclude_users=excluded,
                                purchases=purchases)
    comparison = compare_models(X, y, strong_feature=baseline_feature(X), groups=users, folds=spec.folds,
                                seed=spec.seed, max_rows=spec.max_rows)
    no_prices = missing(events, study="The order-value model", columns=[COLUMNS.price])
    order_value = None
    if no_prices is None:
        orders = order_values(events, window=spec.window, exclude_users=excluded, purchases=purchases)
        value_model, value_X, value_y = order_value_model(orders)
        order_value = OrderValue(orders, value_model, value_X, value_y, *residual_diagnostics(value_model, value_X))
    checks = MethodChecks(
        logit=against_statsmodels(models[0].X, models[0].y, "logit", fitted=models[0].results),
        svm=svm_against_sklearn(X, y),
        accuracy=accuracy_table(),
        ols=None if order_value is None else against_statsmodels(order_value.X, order_value.y, "ols"))
    return DriversResults(spec, models, effects, left_out_features(events), excluded,
                          PurchasePrediction(X, y, users, comparison), order_value, no_prices, checks, recovery)


def _study_sessions(events: EventLog, table: pd.DataFrame, window, exclude_users) -> pd.DataFrame:
    """Sessions whose window closed before the data ends, whatever their label (dropping only the
    unlabelled open ones would keep the early converters of the last day), without excluded accounts."""
    closed = table["start"] + pd.Timedelta(window) <= events.data_end
    keep = closed & ~table[COLUMNS.user_id].isin(exclude_users or ())
    return table[keep]


def funnel_steps(events: EventLog) -> list[tuple[str, str | None]]:
    """(step, the step before it) along cart → checkout → purchase, for the event types the log has:
    each step's model is fitted on the sessions that reached the one before, and a log without
    checkout events (REES46, RetailRocket) chains purchase straight to cart."""
    present = {row[0] for row in events.rows(
        f"SELECT DISTINCT {quote(COLUMNS.event_type)} FROM {quote(events.table)}")}
    chain = [kind for kind in EVENTS.funnel[1:] if kind in present]
    return [(step, chain[i - 1] if i else None) for i, step in enumerate(chain)]


def left_out_features(events: EventLog) -> dict[str, str]:
    """The model features this log cannot give, each with the reason (``{"log_price": "the log has no price
    column"}``): the step models and the purchase prediction are fitted without them."""
    return unavailable(events, SOURCES)


def baselines(table: pd.DataFrame, segments) -> dict[str, str]:
    """Reference level per segment: the built-in shop's when present, else the most common value."""
    out = {}
    for column in segments:
        values = table[column].dropna()
        preferred = PREFERRED_BASELINES.get(column)
        out[column] = preferred if preferred in set(values) else values.mode().iloc[0]
    return out


def step_models(events: EventLog, *, window, reference_price: float, segments=None,
                exclude_users=None) -> list[StepModel]:
    """Fit each step's logistic model on the sessions that reached the step before.

    Parameters
    ----------
    events : EventLog
    window : duration (timedelta or a string such as ``"1D"``)
        A session's label is the step happening within ``window`` of its
        start; sessions whose window is still open at the end of the data
        are left out, converted or not.
    reference_price : float
        Price at which ``log_price`` is 0 (``drivers.reference_price``).
    segments : list of str, optional
        Segment columns in the model (default: those of the built-in shop
        present in the data).
    exclude_users : collection of user ids, optional
        Accounts left out (bots, click farms, fake orders: traffic that does
        not follow any customer's behaviour and would bias every estimate).

    Notes
    -----
    The steps are those of :func:`funnel_steps`; a feature the log cannot
    give (``log_price`` without a price column: :func:`left_out_features`)
    is left out of every model.
    """
    segments = [s for s in (segments or SEGMENTS.all) if s in events.segments]
    left_out = left_out_features(events)
    behaviour = [feature for feature in BEHAVIOUR if feature not in left_out]
    models = []
    for step, given in funnel_steps(events):
        table = session_table(events, label=step, given=given, window=window, reference_price=reference_price)
        table = _study_sessions(events, table, window, exclude_users)
        reference = baselines(table, segments)
        X, names = design_matrix(table, [*behaviour, *segments], baselines=reference)
        y = table.loc[X.index, "label"].to_numpy()
        models.append(StepModel(step, given, len(y), int(y.sum()), logit(X, y, names=names), X, y, reference))
    return models


def drivers_table(models: list[StepModel], method: str = "holm") -> pd.DataFrame:
    """Every term of every step: odds ratio and average marginal effect with 95% intervals, adjusted p-value.

    ``p_adjusted`` corrects for testing all the terms of all the steps at once
    (``method``: ``holm`` or ``fdr_bh``); ``driver`` names the term for people
    (:func:`term_label`: ``device = mobile (vs desktop)``). The planted coefficients of the built-in
    shop are added beside the estimates by :func:`funnelkit.groundtruth.planted_effects`.
    """
    rows = []
    for model in models:
        frame = model.results.to_frame()
        odds = model.results.odds_ratios()
        effects = model.results.marginal_effects()
        for term in frame.index:
            if term == INTERCEPT:
                continue
            row = {"step": model.step, "given": model.given, "term": term,
                   "driver": term_label(term, model.baselines),
                   "coef": frame.loc[term, "coef"], "coef_low": frame.loc[term, "ci_lower"],
                   "coef_high": frame.loc[term, "ci_upper"], "odds_ratio": odds.loc[term, "odds_ratio"],
                   "odds_low": odds.loc[term, "ci_lower"], "odds_high": odds.loc[term, "ci_upper"],
                   "effect": effects.loc[term, "dy_dx"], "effect_low": effects.loc[term, "ci_lower"],
                   "effect_high": effects.loc[term, "ci_upper"], "p_value": frame.loc[term, "p_value"]}
            rows.append(row)
    table = pd.DataFrame(rows)
    table["p_adjusted"] = adjust_pvalues(table["p_value"].to_numpy(), method)
    return table


def headline_drivers(table: pd.DataFrame, alpha: float = 0.05, top: int = 6) -> str:
    """Plain-language Markdown: the largest effects that survive the multiple-testing adjustment."""
    significant = strongest_drivers(table, alpha, top)
    if significant.empty:
        return "- No effect is distinguishable from zero after adjusting for the number of tests."
    lines = []
    for row in significant.itertuples():
        reached = f"{row.given}" if row.given else "a visit"
        direction = "raises" if row.effect > 0 else "lowers"
        lines.append(
            f"- **{escape_md(_driver(row))}** {direction} the chance of **{escape_md(row.step)}** "
            f"(after {escape_md(reached)}) by {points(abs(row.effect))} percentage points (95% CI "
            f"{points(row.effect_low, signed=True)} to {points(row.effect_high, signed=True)}; "
            f"odds ratio {row.odds_ratio:.2f})."
        )
    return "\n".join(lines)


def strongest_drivers(table: pd.DataFrame, alpha: float = 0.05, top: int | None = None) -> pd.DataFrame:
    """The rows of :func:`drivers_table` significant after adjustment (``p_adjusted < alpha``), largest
    average marginal effect (in absolute value) first; the first ``top`` of them."""
    significant = table[table["p_adjusted"] < alpha]
    ordered = significant.reindex(significant["effect"].abs().sort_values(ascending=False, kind="stable").index)
    return ordered if top is None else ordered.head(top)


def headline_figures(table: pd.DataFrame, alpha: float = 0.05, top: int = 2) -> list[Metric]:
    """The ``top`` strongest significant drivers as headline figures for the index card, in words.

    Returns one :class:`funnelkit.study.Metric` per driver: ``name`` (``top_driver_1``, ...), ``value``
    (the average marginal effect, a difference of two chances, unit ``"pp"``), its 95% ``ci`` and a
    ``label`` naming the trait, the step and the odds ratio with its interval ("device = mobile (vs
    desktop) lowers the chance of checkout among sessions that reached cart; odds ratio 0.61, 95% CI
    0.56–0.66"), ``headline=True``. Empty when no effect is significant.
    """
    figures = []
    for rank, row in enumerate(strongest_drivers(table, alpha, top).itertuples(), start=1):
        among = f"among sessions that reached {row.given}" if row.given else "in a session"
        direction = "raises" if row.effect > 0 else "lowers"
        figures.append(Metric(
            f"top_driver_{rank}", float(row.effect), unit="pp", ci=(float(row.effect_low), float(row.effect_high)),
            label=(f"{_driver(row)} {direction} the chance of {row.step} {among}; odds ratio "
                   f"{row.odds_ratio:.2f}, 95% CI {row.odds_low:.2f}–{row.odds_high:.2f}"),
            headline=True))
    return figures


def _driver(row) -> str:
    return getattr(row, "driver", None) or term_label(row.term)


def term_label(term: str, baselines: dict | None = None) -> str:
    """A model term for people: ``device[mobile]`` is ``device = mobile (vs desktop)`` given the
    segment's reference level in ``baselines``; ``log_price`` and ``log_views`` say what changes."""
    if "[" in term:
        segment, value = term[:-1].split("[", 1)
        reference = (baselines or {}).get(segment)
        return f"{segment} = {value}" + (f" (vs {reference})" if reference is not None else "")
    return {"log_price": "a higher price (per ×e of the viewed price)",
            "log_views": "more views (per ×e of the number of views)"}.get(term, term)


def baseline_text(models: list[StepModel]) -> str:
    """Markdown: the session every odds ratio compares with, from the reference levels the models used
    (the built-in shop's when the log has them, else each segment's most common value)."""
    levels = [model.baselines for model in models if model.baselines]
    if not levels:
        return ("The log has no segment columns (device, channel, customer type, country), so the models "
                "hold only how the session browsed.")

    def describe(reference: dict) -> str:
        return ", ".join(f"{escape_md(segment)} = {escape_md(value)}" for segment, value in reference.items())

    if all(reference == levels[0] for reference in levels):
        return (f"The baseline is a session with {describe(levels[0])}: each segment's odds ratio compares "
                f"sessions that differ from it in that one trait, the others held fixed.")
    per_step = "; ".join(f"{escape_md(model.step)}: {describe(model.baselines)}" for model in models if model.baselines)
    return (f"The baseline (each segment's most common value among the step's sessions) differs by step: "
            f"{per_step}. Each segment's odds ratio compares sessions that differ from it in that one trait.")


def exclusion_text(excluded) -> str:
    """Markdown: which accounts the models leave out (``excluded``: user ids, or None when the data
    carries no labels of bots and fake orders)."""
    if excluded is None:
        return ("Every account of the log is in the models. Bots and fake orders do not behave like customers "
                "and would bias every estimate: if the log holds them (notebook 04 flags suspects), leave them "
                "out first.")
    return (f"The {len(excluded):,} accounts the built-in shop labels as bots, click farm and fake orders are left "
            f"out of every model and table here: they do not behave like customers (bots view hundreds of items "
            f"and never buy, the fake-order ring buys every time) and would bias every estimate.")


# --------------------------------------------------------------------------- ours against statsmodels

def against_statsmodels(X: pd.DataFrame, y, kind: str, fitted=None) -> pd.DataFrame:
    """Coefficients and standard errors of the derived solvers next to statsmodels' on the same data.

    ``kind``: ``"ols"`` (QR and normal equations against ``sm.OLS``) or
    ``"logit"`` (IRLS against ``sm.Logit``). ``digits`` columns are the log
    relative error: the number of significant digits that agree. ``fitted`` (logit only): our
    :func:`funnelkit.regression.logit` already fitted to ``X``, ``y`` with its default settings (a step
    model's ``results``), compared as it is instead of fitted a second time.
    """
    y = np.asarray(y, dtype=float)
    if kind == "ols":
        reference = sm.OLS(y, X).fit()
        ours = {"QR": ols(X, y, method="qr"), "normal equations": ols(X, y, method="normal")}
    elif kind == "logit":
        reference = sm.Logit(y, X).fit(disp=0, method="newton", tol=1e-12, maxiter=100)
        ours = {"IRLS": logit(X, y) if fitted is None else fitted}
    else:
        raise ValueError(f"kind must be 'ols' or 'logit', got {kind!r}")
    frame = pd.DataFrame({"term": X.columns, "statsmodels": reference.params.to_numpy(),
                          "statsmodels_se": reference.bse.to_numpy()})
    for name, result in ours.items():
        frame[name] = result.params.to_numpy()
        frame[f"{name} digits"] = log_relative_error(result.params.to_numpy(), reference.params.to_numpy())
        frame[f"{name} se digits"] = log_relative_error(result.bse.to_numpy(), reference.bse.to_numpy())
    return frame


SVM_FEATURES = ("n_view", "dwell_seconds", "price_mean", "returning")
"""The columns of :func:`purchase_data` the SVM check uses by default (those of them the data has)."""


def svm_against_sklearn(X: pd.DataFrame, y, C: float = 0.1, max_rows: int = 1000, seed: int = 0,
                        tol: float = 1e-8, columns=None) -> pd.DataFrame:
    """The derived linear SVM (dual coordinate descent) next to scikit-learn's ``LinearSVC`` (LIBLINEAR).

    Both solve the same primal (hinge loss, L2 penalty including the bias) on
    the same standardised sample of at most ``max_rows`` rows (our solver is a
    plain Python loop) of ``columns`` of ``X`` (default: those of
    :data:`SVM_FEATURES` in ``X``; a log without prices has no ``price_mean``);
    the table gives the primal objective of each solution,
    their relative difference, the share of identical predicted classes, our
    support vectors (α > 0) and the points on or inside scikit-learn's margin
    (every support vector must be one; with duplicated rows some margin points
    may carry α = 0).
    """
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    # a class-balanced sample: on rare positives a hinge-loss SVM at small C is w = 0 (all negative),
    # a comparison that would prove nothing
    X = X[list(columns) if columns is not None else [c for c in SVM_FEATURES if c in X.columns]]
    rng = np.random.default_rng(seed)
    labels_all = np.asarray(y)
    per_class = min(max_rows // 2, *(int((labels_all == c).sum()) for c in (0, 1)))
    rows = np.concatenate([rng.choice(np.flatnonzero(labels_all == c), size=per_class, replace=False) for c in (0, 1)])
    Z = StandardScaler().fit_transform(X.to_numpy(dtype=float)[rows])
    labels = np.asarray(y)[rows]
    ours = LinearSVM(C=C, tol=tol, max_iter=5_000, random_state=seed).fit(Z, labels)
    theirs = LinearSVC(C=C, loss="hinge", dual=True, tol=1e-10, max_iter=1_000_000, random_state=seed).fit(Z, labels)

    def primal(coef, intercept):
        w = np.append(coef.ravel(), intercept)
        margins = (2 * labels - 1) * (Z @ coef.ravel() + intercept)
        return 0.5 * w @ w + C * np.maximum(0, 1 - margins).sum()

    ours_objective = primal(ours.coef_, ours.intercept_[0])
    theirs_objective = primal(theirs.coef_, theirs.intercept_[0])
    margin = (2 * labels - 1) * theirs.decision_function(Z)
    return pd.DataFrame([
        {"quantity": "primal objective", "ours": ours_objective, "scikit-learn": theirs_objective},
        {"quantity": "relative difference of objectives",
         "ours": abs(ours_objective - theirs_objective) / abs(theirs_objective), "scikit-learn": np.nan},
        {"quantity": "duality gap (ours)", "ours": ours.duality_gap_, "scikit-learn": np.nan},
        {"quantity": "length of the weight vector |w|", "ours": float(np.linalg.norm(ours.coef_)),
         "scikit-learn": float(np.linalg.norm(theirs.coef_))},
        {"quantity": "identical predicted classes (share)", "ours": float((ours.predict(Z) == theirs.predict(Z)).mean()),
         "scikit-learn": np.nan},
        {"quantity": "support vectors (ours) / points on or inside the margin (scikit-learn)",
         "ours": float(len(ours.support_)), "scikit-learn": float((margin <= 1 + 1e-6).sum())},
        {"quantity": "our support vectors on or inside scikit-learn's margin (share)",
         "ours": float((margin[ours.support_] <= 1 + 1e-4).mean()), "scikit-learn": np.nan},
    ])


# --------------------------------------------------------------------------- modelling frame

PREDICTORS = ("n_view", "n_cart", "n_checkout", "distinct_items", "distinct_categories", "dwell_seconds",
              "price_mean", "hour", "weekday", "returning", "days_since_last_visit")


def purchase_data(events: EventLog, *, window, before: str | None, exclude_users=None,
                  purchases: pd.DataFrame | None = None) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Session features and the label "purchased within ``window``", ready for models.

    The features use only events before the session's first ``before`` event
    (``drivers.before``, by default the first cart; a session that never carts is described by
    all of its browsing), so a model ranks sessions on their browsing, when
    a nudge can still change the outcome; ``before=None`` uses everything
    before the purchase itself. Returns ``(X, y, groups)``, ``groups`` the
    user of each row (for folds that keep a user's sessions together). Missing values get an
    explicit meaning: ``days_since_last_visit`` of a first visit becomes 0
    with ``first_visit`` = 1; ``price_mean`` of a session without prices
    becomes the median. Segments are one-hot encoded. ``purchases``: the caller's
    ``session_table(events, label="purchase", window=window)``, when it has it (not built again).
    """
    if purchases is None:
        purchases = session_table(events, label=EVENTS.purchase, window=window)
    label = before or EVENTS.purchase
    table = purchases if label == EVENTS.purchase else session_table(events, label=label, window=window)
    outcome = _study_sessions(events, purchases, window, exclude_users)
    outcome = outcome[[COLUMNS.session_id, "label"]].rename(columns={"label": "purchased"})
    table = table.drop(columns="label").merge(outcome, on=COLUMNS.session_id, how="inner")
    columns = [c for c in PREDICTORS if c in table.columns and table[c].nunique() > 1]
    if "days_since_last_visit" in table:
        table["first_visit"] = table["days_since_last_visit"].isna().astype(float)
        table["days_since_last_visit"] = table["days_since_last_visit"].fillna(0.0)
        columns.append("first_visit")
    if "price_mean" in table:
        table["price_mean"] = table["price_mean"].fillna(table["price_mean"].median())
    segments = [s for s in events.segments if s in table.columns]
    X, _ = design_matrix(table, columns + segments, baselines=baselines(table, segments))
    rows = table.loc[X.index]
    return X.drop(columns=INTERCEPT), rows["purchased"].to_numpy(), rows[COLUMNS.user_id].to_numpy()


def baseline_feature(X: pd.DataFrame) -> str:
    """The one feature an analyst tries first: being a returning customer (the segment when the data
    has it, else "had an earlier session in the log"). Chosen by name, not by peeking at the scores."""
    segment = f"{SEGMENTS.customer_type}[returning]"
    return segment if segment in X.columns else "returning"


# --------------------------------------------------------------------------- order value

def order_values(events: EventLog, *, window, exclude_users=None, purchases: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per purchasing session: its features before the purchase and ``revenue``
    (sum of the prices of its purchase events, in the data's currency). ``purchases``: the caller's
    ``session_table(events, label="purchase", window=window)``, when it has it (not built again).

    Raises
    ------
    StudyNotApplicable
        The log has no price column.
    """
    require(events, study="The order-value model", columns=[COLUMNS.price])
    if purchases is None:
        purchases = session_table(events, label=EVENTS.purchase, window=window)
    table = _study_sessions(events, purchases, window, exclude_users)
    table = table[table["label"] == 1]
    revenue = events.query(events.revenue_sql(quote(COLUMNS.session_id))).rename(columns={"key": "session_id"})
    return table.merge(revenue, left_on=COLUMNS.session_id, right_on="session_id", how="inner")


def order_value_model(orders: pd.DataFrame, segments=None):
    """OLS of ln(revenue) on what the session showed before buying, with HC3 standard errors.

    Regressors: ln(views), returning, hour of day and segment dummies. The
    prices viewed are left out on purpose: the bought item is among them
    (on the built-in shop the order value *is* the last viewed price), so
    they would explain the order value by construction. Returns
    ``(results, X, y)``.
    """
    segments = [s for s in (segments or SEGMENTS.all) if s in orders.columns]
    frame = orders.assign(log_revenue=np.log(orders["revenue"]))
    X, names = design_matrix(frame, ["log_views", "returning", "hour", *segments],
                             baselines=baselines(frame, segments))
    y = frame.loc[X.index, "log_revenue"].to_numpy()
    return ols(X, y, names=names, cov_type="HC3"), X, y


def residual_diagnostics(results, X: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Residuals for plots (fitted, residual, normal quantile) and a table of tests.

    Tests: Jarque–Bera (normality of residuals) and Breusch–Pagan
    (heteroscedasticity; when it rejects, use the HC3 errors).
    """
    fitted, residual = np.asarray(results.fittedvalues), np.asarray(results.resid)
    order = np.argsort(residual)
    quantiles = stats.norm.ppf((np.arange(1, len(residual) + 1) - 0.5) / len(residual))
    points = pd.DataFrame({"fitted": fitted, "residual": residual})
    points["normal_quantile"] = np.nan
    points.loc[points.index[order], "normal_quantile"] = quantiles
    jb, jb_p, skew, kurtosis = jarque_bera(residual)
    bp, bp_p, _, _ = het_breuschpagan(residual, X.to_numpy())
    tests = pd.DataFrame([
        {"test": "Jarque–Bera (residuals normal)", "statistic": jb, "p_value": jb_p,
         "note": f"skewness {skew:.2f}, kurtosis {kurtosis:.2f}"},
        {"test": "Breusch–Pagan (constant variance)", "statistic": bp, "p_value": bp_p,
         "note": "a small p-value: read the HC3 (robust) standard errors"},
    ])
    return points, tests
