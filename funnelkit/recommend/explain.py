"""What the report shows about the recommendations: headline, funnel tie-in, examples, popularity bias, checks."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from ..errors import ParamsError
from ..eventlog import EventLog, quote, timestamp_literal
from ..funnel import run_funnel
from ..params import FunnelParams
from ..schema import COLUMNS
from . import metrics
from .evaluate import Evaluation, evaluate, models_from_params
from .matrix import ITEM, TIME
from .models import ALSRecommender
from .reference import als_loss, exact_als
from .split import Split

_views = itertools.count()


def best_baseline(validation: Split, spec, *, metric: str = "ndcg", model: str = "ALS") -> str:
    """The baseline with the best ``metric@headline_k`` on the validation split.

    Choosing it there rather than on the test period keeps the headline's
    comparison free of a winner's curse (the best of four noisy test means
    is biased upwards).
    """
    baselines = {name: m for name, m in models_from_params(spec).items() if name != model}
    result = evaluate(baselines, validation, [spec.headline_k], exclude_seen=spec.exclude_seen,
                      max_users=spec.max_eval_users, seed=spec.seed)
    column = f"{metric}@{spec.headline_k}"
    return max(result.per_user, key=lambda name: result.per_user[name][column].mean())


def headline(evaluation: Evaluation, k: int, *, baseline: str | None = None, metric: str = "ndcg",
             model: str = "ALS", n_boot: int = 1000, seed: int = 0) -> dict:
    """``model`` against ``baseline`` on ``metric@k``: values, paired difference and its interval.

    ``baseline`` should be chosen before looking at the test period
    (:func:`best_baseline`); without one, the best other model on the test
    users is taken. The interval of the difference resamples users
    (paired), so it answers "is the gain real" directly rather than through
    two overlapping intervals.
    """
    column = f"{metric}@{k}"
    means = {name: float(frame[column].mean()) for name, frame in evaluation.per_user.items()}
    best = baseline or max((n for n in means if n != model), key=means.get)
    diff, low, high = evaluation.difference(model, best, metric, k, n_boot=n_boot, seed=seed)
    return {"metric": column, "model": model, "value": means[model], "baseline": best,
            "baseline_value": means[best], "difference": diff, "low": low, "high": high,
            "relative": diff / means[best] if means[best] > 0 else np.nan, "users": len(evaluation.users)}


def headline_text(h: dict) -> str:
    """The headline in plain language (Markdown)."""
    verdict = ("beats" if h["low"] > 0 else "loses to" if h["high"] < 0 else "is not distinguishable from")
    relative = f" ({h['relative']:+.0%})" if np.isfinite(h["relative"]) else ""
    return (f"**{h['model']} {verdict} the best baseline, {h['baseline']}**, on {h['metric'].upper()} over "
            f"{h['users']:,} test users: {h['value']:.4f} against {h['baseline_value']:.4f}, a difference of "
            f"{h['difference']:+.4f}{relative}, 95% CI {h['low']:+.4f} to {h['high']:+.4f} (paired bootstrap "
            f"over users).")


def item_catalogue(events: EventLog) -> pd.DataFrame:
    """One row per item: ``item_id``, ``category`` and median ``price`` (when the log has them), ``events``."""
    columns = events.columns
    extra = []
    if COLUMNS.category in columns:
        extra.append(f"mode({quote(COLUMNS.category)}) AS category")
    if COLUMNS.price in columns:
        extra.append(f"median({quote(COLUMNS.price)}) AS price")
    select = ", ".join([f"{ITEM} AS item_id", *extra, "count(*) AS events"])
    return events.query(f"SELECT {select} FROM {quote(events.table)} WHERE {ITEM} IS NOT NULL GROUP BY {ITEM}") \
        .set_index("item_id")


def cart_abandoners(events: EventLog, funnel: FunnelParams, until: pd.Timestamp, step: str = "cart") -> np.ndarray:
    """Users whose funnel, counted on the events before ``until``, reached ``step`` and went no further.

    The funnel engine decides (its window, mode and censoring): users whose
    window was still open at ``until`` are not counted as having left.
    """
    names = [s.name for s in funnel.steps]
    if step not in names:
        raise ParamsError(f"funnel.steps: the recommendation study looks for users who left at the {step!r} step, "
                          f"but the funnel's steps are {names}")
    depth = names.index(step) + 1
    before = events.derive(f"SELECT * FROM {quote(events.table)} WHERE {TIME} < {timestamp_literal(until)}")
    result = run_funnel(before, funnel, unit="user", data_end=until)
    rows = events.rows(f"SELECT unit FROM {result.units_table} WHERE NOT censored AND depth = {depth}")
    return np.array(sorted(r[0] for r in rows), dtype=str)


def recommendation_examples(evaluation: Evaluation, user_ids, catalogue: pd.DataFrame, *, model: str = "ALS",
                            k: int = 5, events: EventLog | None = None) -> pd.DataFrame:
    """Top-k of ``model`` for a few users, with each item's category and price, and whether it was a test hit."""
    split = evaluation.split
    rows_of = dict(zip(split.train.user_ids[evaluation.users], range(len(evaluation.users))))
    out = []
    for user in user_ids:
        row = rows_of[user]
        truth = split.truth[evaluation.users[row]]
        for rank, item in enumerate(evaluation.recommended[model][row, :k], start=1):
            if item < 0:
                continue
            item_id = split.train.item_ids[item]
            info = catalogue.loc[item_id] if item_id in catalogue.index else {}
            out.append({"user": user, "rank": rank, "item": item_id, "category": info.get("category"),
                        "price": float(info.get("price", np.nan)), "bought or carted later": bool(truth[0, item] != 0)})
    return pd.DataFrame(out)


def similar_items_table(model: ALSRecommender, split: Split, catalogue: pd.DataFrame, items, n: int = 5) -> pd.DataFrame:
    """For each item of ``items`` (ids), its n nearest items by ALS item factors (cosine), with categories."""
    index = split.train.item_index(items)
    index = index[index >= 0]
    neighbours = model.similar_items(index, n)
    rows = []
    for item, near in zip(index, neighbours):
        item_id = split.train.item_ids[item]
        for rank, other in enumerate(near, start=1):
            other_id = split.train.item_ids[other]
            rows.append({"item": item_id, "item category": catalogue.loc[item_id].get("category"), "rank": rank,
                         "similar item": other_id, "category": catalogue.loc[other_id].get("category")})
    return pd.DataFrame(rows)


def popularity_bias(evaluation: Evaluation, k: int, bins: int = 10) -> pd.DataFrame:
    """Share of each model's top-k slots going to each popularity decile of the catalogue (1 = most popular).

    A model without popularity bias would fill every decile with 1/bins of its slots.
    """
    popularity = evaluation.split.train.item_popularity()
    order = np.argsort(-popularity, kind="stable")
    decile = np.empty(len(order), dtype=int)
    decile[order] = np.arange(len(order)) * bins // len(order) + 1
    rows = []
    for name, recommended in evaluation.recommended.items():
        top = recommended[:, :k]
        top = top[top >= 0]
        share = np.bincount(decile[top], minlength=bins + 1)[1:] / max(len(top), 1)
        rows += [{"model": name, "decile": d, "share": s} for d, s in enumerate(share, start=1)]
    return pd.DataFrame(rows)


def against_implicit(evaluation: Evaluation, k: int, model: str = "ALS") -> pd.DataFrame:
    """Our metric code against ``implicit.evaluation.ranking_metrics_at_k`` on the same fitted model.

    implicit scores every user with a test item, filters training items, and
    defines precision as Σ hits / Σ min(k, R) (pooled over users); we compute
    that variant too (:func:`metrics.implicit_style`) only for this check.
    """
    from implicit.evaluation import ranking_metrics_at_k

    split = evaluation.split
    train = split.train.matrix
    fitted = evaluation.models[model]
    recommended = fitted.recommend(split.test_users, train, k, exclude_seen=True)
    ours = metrics.implicit_style(recommended, split.truth[split.test_users], k)
    with threadpool_limits(1, "blas"):
        theirs = ranking_metrics_at_k(fitted.model_, train, split.truth, K=k, show_progress=False)
    return pd.DataFrame([{"metric": f"{m}@{k}", "funnelkit": ours[m], "implicit": float(theirs[m]),
                          "abs_difference": abs(ours[m] - float(theirs[m]))} for m in ("precision", "map", "ndcg")])


def reference_check(split: Split, settings, *, users: int = 300, items: int = 200, seed: int = 0) -> dict:
    """implicit's exact solver against the NumPy reference ALS on a sub-matrix of the training data.

    Takes the ``users`` most active users and ``items`` most popular items,
    starts both from the same factors, and returns the reference's loss
    curve, implicit's, and the largest factor difference after the last
    iteration.
    """
    from implicit.cpu.als import AlternatingLeastSquares

    matrix = split.train.matrix
    top_items = np.sort(np.argsort(-np.bincount(matrix.indices, minlength=matrix.shape[1]), kind="stable")[:items])
    sub = matrix[:, top_items]
    top_users = np.sort(np.argsort(-np.diff(sub.indptr), kind="stable")[:users])
    sub = sp.csr_matrix(sub[top_users], dtype=np.float64)
    sub.eliminate_zeros()
    sub.data = sub.data.astype(np.float32).astype(np.float64)  # implicit casts its input to float32
    rng = np.random.default_rng(seed)
    x0 = rng.random((sub.shape[0], settings.factors)) * 0.01
    y0 = rng.random((sub.shape[1], settings.factors)) * 0.01
    exact = exact_als(sub, factors=settings.factors, regularization=settings.regularization, alpha=settings.alpha,
                      iterations=settings.iterations, user_factors=x0, item_factors=y0)
    losses: list[float] = []
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(factors=settings.factors, regularization=settings.regularization,
                                        alpha=settings.alpha, iterations=settings.iterations, use_cg=False,
                                        dtype=np.float64, calculate_training_loss=True, random_state=seed)
        model.user_factors, model.item_factors = x0.copy(), y0.copy()
        model.fit(sub, show_progress=False, callback=lambda _i, _s, loss: losses.append(float(loss)))
    scaled = sp.csr_matrix(settings.alpha * sub.astype(np.float32), dtype=np.float64)
    return {
        "shape": sub.shape, "nnz": sub.nnz,
        "losses": pd.DataFrame({"iteration": np.arange(1, len(losses) + 1), "reference (NumPy)": exact.losses,
                                "implicit (exact solver)": losses}),
        "max_factor_difference": float(max(np.abs(model.user_factors - exact.user_factors).max(),
                                           np.abs(model.item_factors - exact.item_factors).max())),
        "final_loss_reference": als_loss(scaled, exact.user_factors, exact.item_factors, settings.regularization),
        "final_loss_implicit": losses[-1],
    }


def write_recommendations(evaluation: Evaluation, path, k: int, model: str = "ALS") -> pd.DataFrame:
    """Write ``model``'s top-k per evaluated user as CSV, with whether each item was a test hit.

    Columns: ``user_id``, ``rank`` (1 = best), ``item_id``, ``relevant``
    (the user carted or bought it in the test period) and ``n_relevant``
    (the user's number of test items), enough to recompute every ranking
    metric from the file alone.
    """
    from ..report import write_csv

    split = evaluation.split
    recommended = evaluation.recommended[model][:, :k]
    truth = split.truth[evaluation.users]
    relevant = metrics.hits(recommended, truth)
    n_users = len(evaluation.users)
    frame = pd.DataFrame({
        "user_id": np.repeat(split.train.user_ids[evaluation.users], k),
        "rank": np.tile(np.arange(1, k + 1), n_users),
        "item_id": np.where(recommended.ravel() >= 0, split.train.item_ids[np.maximum(recommended.ravel(), 0)], ""),
        "relevant": relevant.ravel(),
        "n_relevant": np.repeat(np.diff(truth.indptr), k),
    })
    frame = frame[frame["item_id"] != ""]
    write_csv(frame, path)
    return frame
