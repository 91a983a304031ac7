"""What the report shows about the recommendations: headline, funnel tie-in, examples, popularity bias, checks."""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from ..errors import ParamsError
from ..eventlog import EventLog
from ..engines import literal, quote, timestamp_literal
from ..funnel import run_funnel
from ..params import FunnelParams
from ..schema import COLUMNS
from ..text import escape_md, pct, points
from . import metrics
from .evaluate import Evaluation, bpr_epochs, bpr_model, evaluate, models_from_params
from .matrix import ITEM, TIME
from .models import ALSRecommender
from .reference import als_loss, exact_als
from .split import Split


def best_baseline(validation: Split, spec, *, metric: str = "ndcg", model: str = "ALS") -> tuple[str, int]:
    """The baseline with the best ``metric@headline_k`` on the validation split, and BPR's epochs chosen there.

    Choosing it there rather than on the test period keeps the headline's
    comparison free of a winner's curse (the best of four noisy test means
    is biased upwards). BPR is fitted with each of :func:`~.evaluate.bpr_epochs`
    and stands in the comparison with its best, as ALS does after its sweep:
    a baseline left at a poor setting would flatter ALS.
    """
    baselines = {name: m for name, m in models_from_params(spec).items() if name not in (model, "BPR")}
    candidates = {f"BPR, {epochs} epochs": (epochs, bpr_model(spec, epochs)) for epochs in bpr_epochs(spec)}
    result = evaluate(baselines | {name: m for name, (_, m) in candidates.items()}, validation, [spec.headline_k],
                      exclude_seen=spec.exclude_seen, max_users=spec.max_eval_users, seed=spec.seed)
    column = f"{metric}@{spec.headline_k}"
    means = {name: result.per_user[name][column].mean() for name in result.per_user}
    bpr = max(candidates, key=lambda name: means[name])  # the first of equal means: the fewest epochs
    means = {name: value for name, value in means.items() if name not in candidates} | {"BPR": means[bpr]}
    return max(means, key=means.get), candidates[bpr][0]


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


def hit_rate_comparison(evaluation: Evaluation, k: int, *, baseline: str = "popularity", model: str = "ALS",
                        n_boot: int = 1000, seed: int = 0) -> dict:
    """Hit rate@k of ``model`` and ``baseline``, each with its interval, and their paired difference.

    The hit rate is the mean over the evaluated users of ``hit@k``
    (:mod:`.metrics`): the share of users with at least one relevant item
    (an item new to them, carted or bought in the test period) among the k
    items the model ranks first for them. A share for people, unlike NDCG.

    Returns
    -------
    dict
        ``k``, ``model``, ``baseline``, ``value``, ``low``, ``high`` (the
        model's hit rate and percentile bootstrap interval over users),
        ``baseline_value``, ``baseline_low``, ``baseline_high``, and
        ``difference``, ``difference_low``, ``difference_high`` (model minus
        baseline, a difference of two shares, with the paired bootstrap
        interval), ``users`` (users evaluated).
    """
    column = f"hit@{k}"
    out = {"k": k, "model": model, "baseline": baseline, "users": len(evaluation.users)}
    for prefix, name in (("", model), ("baseline_", baseline)):
        values = evaluation.per_user[name][column].to_numpy()
        low, high = metrics.bootstrap_interval(values, n_boot=n_boot, seed=seed)
        out |= {f"{prefix}value": float(values.mean()), f"{prefix}low": low, f"{prefix}high": high}
    diff, low, high = evaluation.difference(model, baseline, "hit", k, n_boot=n_boot, seed=seed)
    return out | {"difference": diff, "difference_low": low, "difference_high": high}


def audience(evaluation: Evaluation) -> dict:
    """Who the evaluation speaks for: users evaluated, users with test items, and cold users left out.

    ``evaluated`` are the users scored (all ``test_users``, or a sample of
    ``max_eval_users``); ``test_users`` have at least one relevant test item
    and a training history; ``cold`` had test interactions but no row in
    the training matrix (no weighted event before the test period, or below
    ``min_user_interactions``): no model here can rank for them.
    ``period`` names the test period of a temporal split in words (None
    for the per-user splits, which have no single cut-off).
    """
    counts = evaluation.split.counts
    return {"evaluated": len(evaluation.users), "test_users": int(counts["test_users"]),
            "cold": int(counts["cold_users"]), "period": _period(evaluation.split)}


_VERBS = {"view": "viewed", "cart": "carted", "checkout": "checked out", "purchase": "bought"}


def _verb(event_type: str) -> str:
    """The past tense of an event type for prose: ``cart`` → ``carted``; unknown names ``had a 'x' event on``."""
    return _VERBS.get(event_type, f"had a '{event_type}' event on")


def outcome(event_types) -> str:
    """What counts as a hit, in words: ``carted or bought`` for the test event types (in the order given)."""
    return " or ".join(dict.fromkeys(_verb(t) for t in event_types))


def _period(split: Split) -> str | None:
    """The test period of a temporal split in words; None for the per-user splits."""
    if split.cutoff is None:
        return None
    end = f" until {split.end:%Y-%m-%d %H:%M} UTC" if split.end is not None else " on"
    return f"the test period (from {split.cutoff:%Y-%m-%d %H:%M} UTC{end})"


def hit_rate_text(hit: dict, who: dict, spec, *, best: dict | None = None) -> str:
    """The headline in plain language (Markdown): hit rates with intervals, the difference in pp, who is left out.

    ``hit`` is :func:`hit_rate_comparison` of the model against the
    best-sellers (``popularity``), ``who`` is :func:`audience`, ``spec`` the
    ``recommend`` params (``test_events``, ``exclude_seen``). ``best`` is the
    same comparison against the best baseline chosen on the validation
    period, shown when that is not the popularity list.
    """
    def name(model: str) -> str:
        return "best-sellers" if model == "popularity" else model

    did = escape_md(outcome(spec.test_events))  # event names come from params: plain text in the Markdown
    k = hit["k"]
    verdict = (f"{hit['model']} does better" if hit["difference_low"] > 0 else
               f"{hit['model']} does worse" if hit["difference_high"] < 0 else "not distinguishable from zero")
    def pp(value: float) -> str:
        return points(value, signed=True)

    text = (f"**{pct(hit['value'])} of shoppers {did} one of the {k} items {hit['model']} would have shown them, "
            f"against {pct(hit['baseline_value'])} with {name(hit['baseline'])}** (95% CI "
            f"{pct(hit['low'])} to {pct(hit['high'])} and {pct(hit['baseline_low'])} to "
            f"{pct(hit['baseline_high'])}), a difference of {pp(hit['difference'])} percentage points "
            f"(95% CI {pp(hit['difference_low'])} to {pp(hit['difference_high'])} pp, paired bootstrap "
            f"over shoppers): {verdict}.")
    if best is not None and best["baseline"] != hit["baseline"]:
        text += (f" The strongest other method, {name(best['baseline'])} (chosen on the validation period), reaches "
                 f"{pct(best['baseline_value'])}; {best['model']} minus {name(best['baseline'])}: "
                 f"{pp(best['difference'])} pp (95% CI {pp(best['difference_low'])} to "
                 f"{pp(best['difference_high'])} pp).")
    sample = (f"a random sample of {who['evaluated']:,} of the {who['test_users']:,} shoppers"
              if who["evaluated"] < who["test_users"] else f"the {who['evaluated']:,} shoppers")
    new = "an item new to them" if spec.exclude_seen else "an item"
    if who["period"] is not None:
        text += f"\n\nMeasured on {sample} with a history before {who['period']} who {did} {new} in it"
    else:
        text += f"\n\nMeasured on {sample} with a history who {did} {new} in their held-out test interactions"
    text += ("; items they already had are neither recommended nor counted." if spec.exclude_seen else ".")
    if who["cold"]:
        before = "before it" if who["period"] is not None else "before their test interactions"
        text += (f" **{who['cold']:,} shoppers who {did} in that period had no usable history {before} (none, or "
                 f"below `recommend.min_user_interactions`) and are left out**: {hit['model']} cannot recommend to "
                 f"someone it has never seen; a shop would usually show them best-sellers (not measured here).")
    return text


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
    before = events.derive(f"SELECT * FROM {quote(events.table)} WHERE {TIME} < {timestamp_literal(until)}")
    result = run_funnel(before, funnel, unit="user", data_end=until)
    return np.array(sorted(result.units(furthest=step)["unit"]), dtype=str)


def recommendation_examples(evaluation: Evaluation, user_ids, catalogue: pd.DataFrame, *, model: str = "ALS",
                            k: int = 5, events: EventLog | None = None, spec=None, reasons: int = 3) -> pd.DataFrame:
    """Top-k of ``model`` for a few users, readable: item, category, price, why, and what the user did later.

    Parameters
    ----------
    evaluation : Evaluation
    user_ids : sequence of str
        Users (ids of ``evaluation.split.train``) among the evaluated users.
    catalogue : DataFrame
        :func:`item_catalogue`; its ``category`` and ``price`` columns are
        used when present.
    model : str
        The model whose lists are shown.
    k : int
        Items per user.
    events : EventLog, optional
        The log, to say what the user did with each item (viewed, carted,
        bought). Read only for these users, before the cut-off for the
        reasons and in the test period for ``later``; only on a temporal
        split (the others have no single cut-off).
    spec : RecommendParams, optional
        ``weights`` rank a user's event types on an item (the strongest
        names it) and ``test_events`` word ``later``.
    reasons : int
        Training items behind each recommendation that the ``why`` names.

    Returns
    -------
    DataFrame
        ``user_id``, ``rank``, ``item``, ``category`` and ``price`` (when the
        catalogue has them), ``why`` (:func:`why_recommended`) and ``later``:
        ``"✓ bought later"`` (or carted, ...) when the item is relevant
        (in the user's test truth), else ``""``.
    """
    split = evaluation.split
    rows_of = dict(zip(split.train.user_ids[evaluation.users], range(len(evaluation.users))))
    weights = dict(spec.weights) if spec is not None else {}
    history = later = {}
    if events is not None and split.cutoff is not None:
        history = _strongest_events(events, user_ids, weights, until=split.cutoff)
        tested = list(spec.test_events) if spec is not None else None
        later = _strongest_events(events, user_ids, weights, since=split.cutoff, until=split.end, types=tested)
    default_later = "✓ " + (outcome(spec.test_events) if spec is not None else "relevant") + " later"
    fitted = evaluation.models[model]
    out = []
    for user in user_ids:
        row = rows_of[user]
        train_row = split.train.user_index([user])[0]
        truth = split.truth[evaluation.users[row]]
        for rank, item in enumerate(evaluation.recommended[model][row, :k], start=1):
            if item < 0:
                continue
            item_id = split.train.item_ids[item]
            contributors = _contributors(fitted, split.train.matrix, train_row, item, reasons)
            record = {"user_id": user, "rank": rank, "item": item_id}
            if "category" in catalogue.columns:
                record["category"] = _field(catalogue, item_id, "category")
            if "price" in catalogue.columns:
                record["price"] = float(_field(catalogue, item_id, "price", np.nan))
            record["why"] = why_recommended([split.train.item_ids[j] for j in contributors], catalogue,
                                            {i: history.get((user, i)) for i in split.train.item_ids[contributors]})
            relevant = bool(truth[0, item] != 0)
            did = later.get((user, item_id))
            record["later"] = (f"✓ {_verb(did)} later" if did else default_later) if relevant else ""
            out.append(record)
    return pd.DataFrame(out)


def _field(catalogue: pd.DataFrame, item_id, column: str, default=None):
    if item_id not in catalogue.index:
        return default
    value = catalogue.at[item_id, column]
    return default if value is None or (isinstance(value, float) and np.isnan(value)) else value


def _contributors(fitted, train: sp.csr_matrix, user: int, item: int, n: int) -> np.ndarray:
    """The user's training items that push ``item`` up most, strongest first.

    implicit's ALS explains its own score (``AlternatingLeastSquares.explain``,
    Hu, Koren & Volinsky 2008, section 5): the score of item i for user u is a
    sum over u's items j of ``c_uj · y_iᵀ W_u y_j``, and the largest terms are
    the reasons. A model without it but with item factors (Spark MLlib's
    ALS) falls back on the user's items nearest to ``item`` by cosine of the
    factors; other models give no reason.
    """
    row = sp.csr_matrix(train[user], dtype=np.float32)
    history = row.indices
    if len(history) == 0:
        return np.zeros(0, dtype=int)
    model = getattr(fitted, "model_", None)
    if model is not None and hasattr(model, "explain") and hasattr(model, "item_factors"):
        _, top, _ = model.explain(0, row, int(item), N=n)
        return np.array([j for j, score in top if score > 0], dtype=int)
    factors = getattr(fitted, "item_factors_", None)
    if factors is None:
        return np.zeros(0, dtype=int)
    norms = np.linalg.norm(factors, axis=1) + 1e-12
    cosine = factors[history] @ factors[item] / (norms[history] * norms[item])
    order = np.argsort(-cosine, kind="stable")[:n]
    return history[order[cosine[order] > 0]]


def why_recommended(items, catalogue: pd.DataFrame, did: dict) -> str:
    """The reason for a recommendation in words, from the training items behind it.

    Grouped by category when the catalogue has one: ``"carted 1 and viewed 2
    items in apparel.basics; viewed 1 item in home.outlet"``; without categories the items
    are named: ``"viewed i12, i40"``. ``did`` maps each item to the user's
    strongest event type on it (None when unknown: ``"interacted with"``).
    Empty when there is no reason to give.
    """
    if len(items) == 0:
        return ""
    verbs = [_verb(did[i]) if did.get(i) else "interacted with" for i in items]
    if "category" not in catalogue.columns:
        grouped: dict[str, list] = {}
        for item, verb in zip(items, verbs):
            grouped.setdefault(verb, []).append(str(item))
        return "; ".join(f"{verb} {', '.join(names)}" for verb, names in grouped.items())
    by_category: dict[str, dict[str, int]] = {}  # category → verb → items, in order of contribution
    for item, verb in zip(items, verbs):
        counts = by_category.setdefault(str(_field(catalogue, item, "category", "no category")), {})
        counts[verb] = counts.get(verb, 0) + 1
    parts = []
    for category, counts in by_category.items():
        actions = " and ".join(f"{verb} {count}" for verb, count in counts.items())
        last = list(counts.values())[-1]  # "carted 1 and viewed 2 items", "carted 2 and viewed 1 item"
        parts.append(f"{actions} item{'s' if last > 1 else ''} in {category}")
    return "; ".join(parts)


def _strongest_events(events: EventLog, user_ids, weights: dict, *, since=None, until=None,
                      types=None) -> dict:
    """``(user_id, item_id) → event type`` for these users' events in ``[since, until)``: the strongest type.

    Strongest = the highest weight in ``weights`` (unweighted types count 0),
    ties broken by the most events of the type. ``types`` keeps only those
    event types (the test events for "later").
    """
    users = [str(u) for u in user_ids]
    if not users:
        return {}
    where = [events.users_condition(users), f"{ITEM} IS NOT NULL"]
    if since is not None:
        where.append(f"{TIME} >= {timestamp_literal(since)}")
    if until is not None:
        where.append(f"{TIME} < {timestamp_literal(until)}")
    if types is not None:
        where.append(f"{quote(COLUMNS.event_type)} IN ({', '.join(literal(t) for t in types)})")
    frame = events.query(
        f"SELECT CAST({quote(COLUMNS.user_id)} AS VARCHAR) AS user_id, CAST({ITEM} AS VARCHAR) AS item_id, "
        f"{quote(COLUMNS.event_type)} AS event_type, count(*) AS n FROM {quote(events.table)} "
        f"WHERE {' AND '.join(where)} GROUP BY ALL")
    if frame.empty:
        return {}
    frame["weight"] = frame["event_type"].map(lambda t: weights.get(t, 0.0))
    frame = frame.sort_values(["user_id", "item_id", "weight", "n", "event_type"],
                              ascending=[True, True, False, False, True])
    first = frame.drop_duplicates(["user_id", "item_id"])
    return dict(zip(zip(first["user_id"], first["item_id"]), first["event_type"]))


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


def recommendations_table(evaluation: Evaluation, k: int, model: str = "ALS", *,
                          id_key_env: str | None = None) -> pd.DataFrame:
    """``model``'s top-k per evaluated user, with whether each item was a test hit (``recommendations.csv``).

    Columns: ``user_id`` (the real id: the file is for acting on), then
    ``user_pseudonym`` when ``id_key_env`` names the pseudonym key's
    environment variable (the id as the report shows it,
    :mod:`funnelkit.pseudonym`), ``rank`` (1 = best), ``item_id``,
    ``relevant`` (the user carted or bought it in the test period) and
    ``n_relevant`` (the user's number of test items), enough to recompute
    every ranking metric from the file alone.
    """
    from ..pseudonym import pseudonymise

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
    if id_key_env is not None:
        shown = pseudonymise(frame[["user_id"]], ["user_id"], env=id_key_env)["user_id"]
        frame.insert(1, "user_pseudonym", shown)
    return frame
