"""The recommendation study in one call: :func:`run` returns a :class:`RecommendResults`.

It leaves out the planted anomalous accounts when given the planted truth, splits the log
without leakage, tunes ALS on a validation split, evaluates ALS and the baselines on the
test period, compares them (hit rate against the best-sellers, NDCG against the best baseline
chosen on the validation period), looks at the shoppers who left at the cart, and checks the
method: implicit's solver against the NumPy reference, MLlib's factors against its normal
equations (on Spark), the metric code against ``implicit.evaluation``, the other protocol
(leave-last-out) and, on the built-in shop, the overlap with the planted taste.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..engines.spark import session_of
from ..eventlog import EventLog
from ..params import ALSSettings, FunnelParams, RecommendParams
from ..study import Metric, StudyResults
from ..text import escape_md
from . import explain
from .evaluate import (Evaluation, FitPool, als_model, bpr_epochs, chosen_settings, evaluate, models_from_params,
                       ranked_by_implicit)
from .evaluate import sweep as sweep_als
from .models import PopularityRecommender
from .spark_als import normal_equations_check
from .split import Split, leave_last_out, make_split, validation_split

#: the funnel step whose leavers the study looks at (the default step of ``explain.cart_abandoners``)
CART_STEP = "cart"

_PLANTED_TASTE = """## Against the planted taste

The simulator planted each shopper's taste: the probability that their next view is each item. Overlap@k is the
share of a model's k items that are among the shopper's k most likely items under that planted taste (k =
`headline_k`, items already seen left out). Chance is about k / number of items."""


@dataclass
class RecommendResults(StudyResults):
    """Everything the recommendation study found, with its tables; built by :func:`run`.

    Attributes
    ----------
    spec : RecommendParams
        The ``recommend`` params section.
    k : int
        ``spec.headline_k``: the list length of the headline and of every table shown.
    excluded : set
        Accounts left out (planted bots, click farm, fake orders); empty on the user's own data.
    shoppers : EventLog
        The log without ``excluded``: what every model is trained and judged on.
    split, validation : Split
        The test split (``spec.split``) and the validation split carved out of its training period.
    sweep : DataFrame
        :func:`~funnelkit.recommend.sweep` on the validation split, best setting first.
    settings : ALSSettings
        The sweep's best setting, used everywhere else.
    evaluation : Evaluation
        ALS and the baselines on the test split.
    ranking : DataFrame
        ``evaluation.summary()``: model, metric, k, value, 95% bootstrap interval.
    baseline : str
        The best baseline, chosen on the validation split.
    bpr_iterations : int
        BPR's epochs, chosen on the validation split among ``spec.bpr.iterations``.
    ndcg : dict
        :func:`explain.headline`: ALS against ``baseline`` on NDCG@k.
    ndcg_gain_over_popularity : (difference, low, high)
        ALS minus popularity on NDCG@k with its paired bootstrap interval.
    hit_rate, hit_rate_vs_baseline : dict
        :func:`explain.hit_rate_comparison` of ALS against the best-sellers and against ``baseline``.
    audience : dict
        :func:`explain.audience`: users evaluated, test users, cold shoppers.
    cart_abandoners : numpy array of str or None
        Users who left at the cart before the cut-off; None when the split has no single cut-off or
        the funnel no ``cart`` step.
    left_at_cart : DataFrame or None
        ``ranking`` restricted to the abandoners among the evaluated users (None when there are none).
    catalogue, examples, similar_items, popularity_bias : DataFrame
        :func:`explain.item_catalogue`; ALS's first five items for three shoppers (abandoners when
        any) with the reasons (real ids: pseudonymise before showing); the nearest items of the three
        most viewed items; :func:`explain.popularity_bias`.
    planted_overlap : DataFrame or None
        Each model's overlap with the planted top k (only given the planted truth).
    leave_last_out_ranking : DataFrame
        ALS and popularity under the leave-last-out protocol, summarised like ``ranking``.
    reference_check : dict
        :func:`explain.reference_check`: implicit's exact solver against the NumPy reference.
    mllib_check : dict or None
        :func:`~funnelkit.recommend.spark_als.normal_equations_check` when Spark MLlib fitted ALS.
    implicit_model : str
        The model whose lists ``implicit.evaluation`` recomputes (ALS, or BPR when MLlib fitted ALS).
    implicit_agreement : DataFrame
        :func:`explain.against_implicit` on those lists.
    recommendations : DataFrame
        ALS's top k for every evaluated user (:func:`explain.recommendations_table`, real ids).
    """

    spec: RecommendParams
    k: int
    excluded: set
    shoppers: EventLog
    split: Split
    validation: Split
    sweep: pd.DataFrame
    settings: ALSSettings
    evaluation: Evaluation
    ranking: pd.DataFrame
    baseline: str
    bpr_iterations: int
    ndcg: dict
    ndcg_gain_over_popularity: tuple
    hit_rate: dict
    hit_rate_vs_baseline: dict
    audience: dict
    cart_abandoners: np.ndarray | None
    left_at_cart: pd.DataFrame | None
    catalogue: pd.DataFrame
    examples: pd.DataFrame
    similar_items: pd.DataFrame
    popularity_bias: pd.DataFrame
    planted_overlap: pd.DataFrame | None
    leave_last_out_ranking: pd.DataFrame
    reference_check: dict
    mllib_check: dict | None
    implicit_model: str
    implicit_agreement: pd.DataFrame
    recommendations: pd.DataFrame

    # ------------------------------------------------------------------ figures and prose

    def metrics(self) -> list[Metric]:
        """The study's figures: hit rates (the headline), NDCG comparisons, counts and the method's checks.

        ``planted_overlap_*`` only with the planted truth, ``mllib_normal_equations_max_difference``
        only when Spark MLlib fitted ALS.
        """
        k, hit, ndcg = self.k, self.hit_rate, self.ndcg
        did = explain.outcome(self.spec.test_events)
        unit = f"NDCG@{k}"
        gain, low, high = self.ndcg_gain_over_popularity
        out = [
            Metric("hit_rate_als", hit["value"], "share of test shoppers",
                   f"ALS: shoppers who {did} one of the {k} items it would have shown", (hit["low"], hit["high"]),
                   headline=True),
            Metric("hit_rate_best_sellers", hit["baseline_value"], "share of test shoppers",
                   f"Best-sellers: shoppers who {did} one of the {k} items shown",
                   (hit["baseline_low"], hit["baseline_high"]), headline=True),
            Metric("hit_rate_gain_over_best_sellers", hit["difference"], "pp", f"ALS minus best-sellers, hit rate@{k}",
                   (hit["difference_low"], hit["difference_high"]), headline=True),
            Metric("cold_shoppers", self.audience["cold"], "shoppers",
                   f"Left out: {did} in the test period with no history before it (ALS cannot recommend to them)",
                   headline=True),
            Metric("ndcg_als", ndcg["value"], unit, "ALS on the test period"),
            Metric("ndcg_best_baseline", ndcg["baseline_value"], unit,
                   f"Best baseline ({ndcg['baseline']}) on the test period"),
            Metric("best_baseline", ndcg["baseline"], label="Best baseline (chosen on the validation period)"),
            Metric("ndcg_gain_over_best_baseline", ndcg["difference"], unit, "ALS minus best baseline",
                   (ndcg["low"], ndcg["high"])),
            Metric("ndcg_gain_over_popularity", gain, unit, "ALS minus popularity", (low, high)),
            Metric("test_users", len(self.evaluation.users), "users", "Test users evaluated"),
            Metric("sweep_settings", len(self.sweep), "settings", "ALS settings tried on the validation split"),
            Metric("bpr_epochs", self.bpr_iterations, "epochs",
                   f"BPR's epochs, chosen on the validation split among {', '.join(map(str, bpr_epochs(self.spec)))}"),
            Metric("cart_abandoners", 0 if self.cart_abandoners is None else len(self.cart_abandoners), "users",
                   "Users who left at the cart before the cut-off"),
        ]
        if self.planted_overlap is not None:
            by_model = self.planted_overlap.set_index("model")
            out += [Metric(key, float(by_model.loc[name, "overlap"]), "share", f"{name}: overlap with planted top {k}",
                           (float(by_model.loc[name, "low"]), float(by_model.loc[name, "high"])))
                    for name, key in (("ALS", "planted_overlap_als"), ("popularity", "planted_overlap_popularity"))]
        out.append(Metric("reference_max_factor_difference", self.reference_check["max_factor_difference"],
                          label="implicit vs NumPy reference ALS: largest factor difference"))
        if self.mllib_check is not None:
            out.append(Metric("mllib_normal_equations_max_difference", self.mllib_check["max_difference"],
                              label="MLlib ALS user factors vs its normal equations: largest relative difference"))
        out += [
            Metric("metrics_vs_implicit_max_difference", float(self.implicit_agreement["abs_difference"].max()),
                   label="Our metrics vs implicit.evaluation: largest difference"),
            Metric("recommendation_rows", len(self.recommendations), "rows", "Rows in recommendations.csv"),
        ]
        return out

    def headline(self) -> str:
        """Hit rates of ALS and the best-sellers with their difference in pp, and who is left out (Markdown)."""
        return explain.hit_rate_text(self.hit_rate, self.audience, self.spec, best=self.hit_rate_vs_baseline)

    def ndcg_text(self) -> str:
        """ALS against the best baseline on NDCG@k, in words (Markdown)."""
        return explain.headline_text(self.ndcg)

    def describe_data(self) -> str:
        """The split, the training matrix, the event weights and what was left out, in one paragraph (Markdown)."""
        spec, train = self.spec, self.split.train
        weights = ", ".join(f"{t} {w:g}" for t, w in spec.weights.items())
        text = (escape_md(self.split.describe(spec)) + f" Training matrix **{train.shape[0]:,} users × "
                f"{train.shape[1]:,} items**, {train.matrix.nnz:,} user–item pairs "
                f"({train.matrix.nnz / (train.shape[0] * train.shape[1]):.3%} of the cells). "
                f"Event weights: {escape_md(weights)}"
                + (f", each times the event's {escape_md(spec.weight_column)}" if spec.weight_column else "")
                + f"; time decay: {'none' if spec.decay_half_life is None else escape_md(str(spec.decay_half_life))}; "
                f"weighting: {spec.weighting}. Minimum counts (users ≥ {spec.min_user_interactions} items, items ≥ "
                f"{spec.min_item_interactions} users) removed {train.removed['users']:,} users, "
                f"{train.removed['items']:,} items and {train.removed['pairs']:,} pairs.")
        if self.excluded:
            text += (f" The {len(self.excluded):,} accounts the simulator planted as bots, click farm or fake-order "
                     "ring are left out (they are not shoppers; with your own data, remove detected anomalies first).")
        return text

    def settings_text(self) -> str:
        """The ALS setting chosen on the validation split and the library that fitted it, and BPR's epochs
        chosen there too (Markdown)."""
        s = self.settings
        return (f"Chosen: **{s.factors} factors, regularization {s.regularization:g}, alpha {s.alpha:g}**, "
                f"{s.iterations} iterations, fitted by {self.evaluation.models['ALS'].library}. The baseline BPR "
                f"was tuned on the same split: **{self.bpr_iterations} epochs** (of "
                f"{', '.join(map(str, bpr_epochs(self.spec)))}).")

    def cart_abandoners_text(self) -> str:
        """How many cart abandoners are among the test users, or why the section shows nothing (Markdown)."""
        if self.left_at_cart is not None:
            return f"{int(self.left_at_cart['users'].iloc[0]):,} of them are among the test users."
        if self.cart_abandoners is None:
            return ("Not shown: this section needs one cut-off for everyone (`recommend.split: temporal`) and a "
                    "funnel step named `cart`.")
        return "None of the cart abandoners came back in the test period."

    def planted_overlap_text(self) -> str:
        """The heading and definition of the comparison with the planted taste (Markdown; only with the truth)."""
        return _PLANTED_TASTE

    def reference_text(self) -> str:
        """implicit's exact solver against the NumPy reference, in one sentence (Markdown)."""
        check = self.reference_check
        return (f"Sub-matrix {check['shape'][0]} users × {check['shape'][1]} items ({check['nnz']:,} pairs); "
                f"largest factor difference after {self.settings.iterations} iterations: "
                f"**{check['max_factor_difference']:.1e}**; final loss {check['final_loss_reference']:.6f} "
                f"(reference) vs {check['final_loss_implicit']:.6f} (implicit).")

    def mllib_text(self) -> str:
        """MLlib's factors against its normal equations, or which library fitted ALS when not MLlib (Markdown)."""
        check = self.mllib_check
        if check is None:
            return f"This run fitted ALS with {self.evaluation.models['ALS'].library}: the check above is of its model."
        return (f"For the {check['users']} most active training users, the largest difference between "
                f"MLlib's user factors and the solution of these equations is **{check['max_difference']:.1e}** "
                f"of the largest factor entry (float32 factors); against implicit's equations it is "
                f"{check['implicit_form_difference']:.1e}: the same four numbers are not the same model.")

    def implicit_agreement_text(self) -> str:
        """Whose lists the metric check recomputed (Markdown)."""
        return f"On the lists of **{escape_md(self.implicit_model)}**:"

    def recommendations_table(self, *, id_key_env: str | None = None) -> pd.DataFrame:
        """``recommendations``, with the report's pseudonym of each user beside the real id when ``id_key_env``
        names the pseudonym key's environment variable (:func:`explain.recommendations_table`)."""
        if id_key_env is None:
            return self.recommendations
        return explain.recommendations_table(self.evaluation, self.k, id_key_env=id_key_env)


def run(events: EventLog, spec: RecommendParams, *, funnel: FunnelParams | None = None,
        truth=None) -> RecommendResults:
    """Run the recommendation study on ``events``.

    Parameters
    ----------
    events : EventLog
        The event log (with an item column).
    spec : RecommendParams
        The ``recommend`` params section.
    funnel : FunnelParams, optional
        The funnel whose ``cart`` step finds the cart abandoners (default: the default funnel).
    truth : funnelkit.groundtruth.Planted, optional
        The planted truth of the built-in shop: its anomalous accounts are left out, and each model's
        overlap with the planted taste is measured.

    ALS is fitted by Spark MLlib when the events live in Spark (``engine.name: spark``), by ``implicit``
    otherwise.

    Returns
    -------
    RecommendResults
    """
    funnel = funnel or FunnelParams()
    spark = session_of(events)
    k, n_boot, seed = spec.headline_k, spec.bootstrap, spec.seed
    excluded = set(truth.anomalous_accounts) if truth is not None else set()
    shoppers = events.without_users(excluded) if excluded else events

    split = make_split(shoppers, spec)
    validation = validation_split(shoppers, spec, split)
    last_out_split = leave_last_out(shoppers, spec)
    # the fits that do not wait for each other run side by side (FitPool); the queries stay on this thread
    with FitPool(spec, spark) as pool:
        baseline = pool.submit(explain.best_baseline, validation, spec)
        tried = sweep_als(validation, spec, spark=spark, pool=pool)
        settings = chosen_settings(tried, spec)
        last_out = pool.submit(evaluate, {"ALS": als_model(settings, spec, spark, threads=pool.threads_per_fit),
                                          "popularity": PopularityRecommender()}, last_out_split, [k],
                               exclude_seen=spec.exclude_seen, max_users=spec.max_eval_users, seed=seed)
        reference = pool.submit(explain.reference_check, split, settings)
        baseline, bpr_iterations = baseline.result()
        evaluation = evaluate(models_from_params(spec, settings, spark=spark, bpr_iterations=bpr_iterations), split,
                              spec.k, exclude_seen=spec.exclude_seen, max_users=spec.max_eval_users, seed=seed)
        last_out, reference = last_out.result(), reference.result()
    ranking = evaluation.summary(n_boot=n_boot, seed=seed)
    ndcg = explain.headline(evaluation, k, baseline=baseline, n_boot=n_boot, seed=seed)
    hit = explain.hit_rate_comparison(evaluation, k, baseline="popularity", n_boot=n_boot, seed=seed)
    best_hit = explain.hit_rate_comparison(evaluation, k, baseline=baseline, n_boot=n_boot, seed=seed)
    audience = explain.audience(evaluation)
    popularity_gain = evaluation.difference("ALS", "popularity", "ndcg", k, n_boot=n_boot, seed=seed)

    abandoners = None
    if split.cutoff is not None and CART_STEP in [step.name for step in funnel.steps]:
        abandoners = explain.cart_abandoners(shoppers, funnel, split.cutoff)
    evaluated_ids = split.train.user_ids[evaluation.users]
    is_abandoner = np.isin(evaluated_ids, abandoners if abandoners is not None else [])
    left_at_cart = (evaluation.subset(is_abandoner).summary(n_boot=n_boot, seed=seed) if is_abandoner.any()
                    else None)

    catalogue = explain.item_catalogue(shoppers)
    shown = list(evaluated_ids[is_abandoner][:3]) or list(evaluated_ids[:3])
    examples = explain.recommendation_examples(evaluation, shown, catalogue, k=5, events=shoppers, spec=spec)
    most_viewed = catalogue.sort_values("events", ascending=False).index[:3]
    similar = explain.similar_items_table(evaluation.models["ALS"], split, catalogue, most_viewed)
    overlap = (truth.taste_overlap(evaluation, k, exclude_seen=spec.exclude_seen, n_boot=n_boot, seed=seed)
               if truth is not None else None)

    mllib = normal_equations_check(evaluation.models["ALS"], split.train.matrix) if spark is not None else None
    implicit_model = ranked_by_implicit(evaluation.models)

    return RecommendResults(
        spec=spec, k=k, excluded=excluded, shoppers=shoppers, split=split, validation=validation, sweep=tried,
        settings=settings, evaluation=evaluation, ranking=ranking, baseline=baseline, bpr_iterations=bpr_iterations,
        ndcg=ndcg, ndcg_gain_over_popularity=popularity_gain, hit_rate=hit, hit_rate_vs_baseline=best_hit,
        audience=audience, cart_abandoners=abandoners, left_at_cart=left_at_cart, catalogue=catalogue,
        examples=examples, similar_items=similar, popularity_bias=explain.popularity_bias(evaluation, k),
        planted_overlap=overlap,
        leave_last_out_ranking=last_out.summary(n_boot=n_boot, seed=seed), reference_check=reference, mllib_check=mllib,
        implicit_model=implicit_model,
        implicit_agreement=explain.against_implicit(evaluation, k, model=implicit_model),
        recommendations=explain.recommendations_table(evaluation, k),
    )
