"""The only door to what the simulator planted, and the checks of results against it.

Studies never import the simulator: a notebook asks :func:`planted` for the
truth of its run (None on the user's own data) and hands it to a study that
can use it (accounts to leave out, labels for a supervised detector) or to
the comparisons here. On the built-in shop, ``sessions.parquet`` records for
every session the planted probability of each step given the previous one
(``p_cart``, ``p_checkout``, ``p_purchase``), ``labels.parquet`` who is a
bot, click farm or fake-order account, and ``ground_truth.json`` the
incidents, sale days, step coefficients and taste model.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.special import logsumexp

from .engines import quote
from .funnel import FunnelResult, run_funnel
from .params import FunnelParams
from .schema import COLUMNS, EVENTS
from .schema import US_PER_DAY
from .simulate import (
    PLANTED_STEPS,
    STEP_OF_PROBABILITY,
    SimulatedDataset,
    calendar_weights,
    ensure_dataset,
    seasonal_clock,
)
from .study import Metric


class Planted:
    """What the simulator planted in the built-in shop of one run's params.

    Build it with :func:`planted`; attributes are read lazily from the dataset's files.

    Attributes
    ----------
    dataset : SimulatedDataset
        The generated shop (files under ``dataset.directory``).
    steps : dict
        The planted logistic coefficients of each funnel step (``simulate.PLANTED_STEPS``).
    """

    def __init__(self, dataset: SimulatedDataset):
        self.dataset = dataset
        self.steps = PLANTED_STEPS
        self._labels: pd.Series | None = None

    @property
    def ground_truth(self) -> dict:
        """``ground_truth.json`` as a dict."""
        return self.dataset.ground_truth

    @property
    def labels(self) -> pd.Series:
        """user id (str) → planted label: ``human``, ``bot``, ``click_farm`` or ``fake_order``."""
        if self._labels is None:
            self._labels = self.dataset.labels().set_index(COLUMNS.user_id)["label"]
        return self._labels

    @property
    def anomalous_accounts(self) -> set:
        """User ids planted as bots, click farm or fake orders: not shoppers, left out of the customer studies."""
        return set(self.labels.index[self.labels != "human"])

    @property
    def incidents(self) -> list[dict]:
        """The planted incidents: one dict per incident (``date``, ``step``, ``factor``, ...)."""
        return self.ground_truth["incidents"]

    @property
    def sale_days(self) -> list:
        """Days with a planted sale (traffic up, not a fault)."""
        return self.ground_truth["sale_days"]

    def step_check(self, events) -> pd.DataFrame:
        """:func:`planted_step_check` on the session-level default funnel of ``events``."""
        # one day is longer than any simulated session, so only the last day's sessions are censored
        sessions = run_funnel(events, FunnelParams(unit="session", window="1D"))
        return planted_step_check(sessions, self.dataset.directory / "sessions.parquet")

    def taste_overlap(self, evaluation, k: int, **options) -> pd.DataFrame:
        """:func:`planted_taste_overlap` of a recommendation ``evaluation`` with this shop's planted taste."""
        return planted_taste_overlap(evaluation, self.dataset, k, **options)


    def return_check(self, results, days=(1, 3, 7, 14, 28)) -> pd.DataFrame | None:
        """:func:`planted_return_check` of a retention study whose curves split by ``customer_type``; None when
        they split otherwise (the planted rates are per customer type)."""
        if results.spec.segment != "customer_type":
            return None
        return planted_return_check(results, self.ground_truth, days)

    def return_process_fit(self) -> pd.DataFrame:
        """:func:`planted_return_process_fit` on this shop's human visits."""
        return planted_return_process_fit(self.dataset)

    def journey_chain(self, order: int = 1) -> pd.DataFrame:
        """:func:`planted_journey_chain` of this shop."""
        return planted_journey_chain(self.ground_truth, order)

    def journey_check(self, results) -> pd.DataFrame:
        """:func:`planted_journey_check` of a journeys study run on this shop (its anomalous accounts left out)."""
        return planted_journey_check(results, self.ground_truth)


def planted(params) -> Planted | None:
    """The planted truth of the run's data: a :class:`Planted` on the built-in shop, None on other data."""
    return Planted(ensure_dataset(params.simulation)) if params.simulated else None


def planted_step_check(result: FunnelResult, sessions_path: str | Path) -> pd.DataFrame:
    """Compare session-level step conversions with their planted expectation.

    For each step *k* after the first, over the resolved sessions that
    reached step *k-1*: ``expected`` is the mean planted probability of
    reaching step *k* (the exact expectation of the observed rate given
    those sessions), ``observed`` the engine's step conversion with its 95%
    Wilson interval, ``inside`` whether the interval contains the expected
    rate, and ``z`` = (observed count − Σp) / √Σp(1−p), the standardised
    difference under the planted Poisson-binomial model.

    Raises
    ------
    ValueError
        If the funnel is not counted per session or its steps are not the
        planted view → cart → checkout → purchase.
    """
    if result.spec.unit != "session":
        raise ValueError("the planted probabilities are per session: run the funnel with unit='session'")
    names = result.step_names
    if names[1:] != [n for n in STEP_OF_PROBABILITY if n in names] or names[0] != EVENTS.view:
        raise ValueError(f"planted steps are {EVENTS.funnel}, got {names}")
    events, rows = result.events, []
    # the engine reads the planted sessions itself: no engine's file-reading SQL here
    source = events.engine.table_from_parquet(str(sessions_path))
    for k, name in enumerate(names[1:], start=1):
        column = quote(STEP_OF_PROBABILITY[name])
        total, successes, p_sum, p_var = events.rows(
            f"SELECT count(*), count(*) FILTER (WHERE u.depth > {k}), sum(s.{column}), sum(s.{column} * (1 - s.{column})) "
            f"FROM {result.units_sql(reached=k - 1)} u JOIN {source} s ON s.{quote(COLUMNS.session_id)} = u.unit"
        )[0]
        step = result.steps.iloc[k]
        expected = p_sum / total if total else np.nan
        rows.append({
            "step": name,
            "sessions": int(total),
            "expected": expected,
            "observed": step["step_conversion"],
            "ci_low": step["step_ci_low"],
            "ci_high": step["step_ci_high"],
            "inside": bool(step["step_ci_low"] <= expected <= step["step_ci_high"]),
            "z": (successes - p_sum) / np.sqrt(p_var) if p_var else np.nan,
        })
    return pd.DataFrame(rows)


def step_check_metrics(check: pd.DataFrame) -> list[Metric]:
    """The figures of :func:`planted_step_check`: planted rates inside the 95% interval, rates checked,
    and the largest |z|."""
    return [
        Metric("planted_steps_inside_ci", int(check["inside"].sum()), label="Planted step rates inside 95% CI"),
        Metric("planted_steps_total", len(check), label="Planted step rates checked"),
        Metric("planted_max_abs_z", float(check["z"].abs().max()), label="Largest |z| vs planted rates"),
    ]


def planted_effects(effects: pd.DataFrame, truth: Planted) -> pd.DataFrame:
    """The drivers table with the planted coefficient of each term beside its estimate.

    Parameters
    ----------
    effects : DataFrame
        :func:`funnelkit.drivers.drivers_table` rows (``step``, ``term``, ``coef_low``, ``coef_high``,
        ``p_adjusted``, ...).
    truth : Planted

    Returns
    -------
    DataFrame
        A copy with ``planted`` (the planted coefficient of ``term`` in ``step``'s model; a term the
        simulator leaves out has coefficient 0) and ``inside`` (the planted coefficient within the
        estimate's 95% interval) inserted before ``p_adjusted``.
    """
    planted = [truth.steps.get(step, {}).get(term, 0.0) for step, term in zip(effects["step"], effects["term"])]
    inside = [bool(low <= value <= high) for low, value, high in zip(effects["coef_low"], planted, effects["coef_high"])]
    table = effects.copy()
    at = table.columns.get_loc("p_adjusted")
    table.insert(at, "inside", inside)
    table.insert(at, "planted", planted)
    return table


def driver_recovery(effects: pd.DataFrame, truth: Planted, alpha: float = 0.05) -> dict:
    """How well the drivers study recovers the planted coefficients.

    Returns
    -------
    dict
        ``inside``: planted coefficients (zeros included) inside their estimate's 95% interval, of
        ``total`` terms; ``planted_nonzero_found``: non-zero planted effects significant after
        adjustment (``p_adjusted < alpha``), of ``planted_nonzero``; ``false_positives``: terms planted
        at zero yet called significant.
    """
    table = effects if "planted" in effects else planted_effects(effects, truth)
    significant, nonzero = table["p_adjusted"] < alpha, table["planted"] != 0
    return {"inside": int(table["inside"].sum()), "total": int(len(table)),
            "planted_nonzero_found": int((nonzero & significant).sum()), "planted_nonzero": int(nonzero.sum()),
            "false_positives": int((~nonzero & significant).sum())}


def planted_preference_scores(dataset, user_ids, item_ids) -> np.ndarray:
    """log P(a view of the user is item i), as the simulator planted it, for every user × item given.

    P(i | u) = P(category c_i | u) × P(i | u, c_i) with P(c | u) ∝ n_items_c ×
    exp(u·c / τ_c) and P(i | u, c) ∝ popularity_i × exp(u·y_i / τ) over the
    items of c (``ground_truth.json``'s taste model). Rows of users without
    planted taste (bots and other anomalies) are NaN.
    """
    truth = dataset.ground_truth["taste"]
    catalogue = dataset.items().set_index(COLUMNS.item_id)
    factors = [c for c in catalogue.columns if c.startswith("f") and c[1:].isdigit()]
    users = dataset.user_factors().set_index(COLUMNS.user_id).reindex(np.asarray(user_ids, dtype=str))
    known = users[factors].notna().all(axis=1).to_numpy()
    U = users[factors].to_numpy(dtype=float)
    all_items = catalogue[factors].to_numpy(dtype=float)
    categories, category_of = np.unique(catalogue[COLUMNS.category].to_numpy(dtype=str), return_inverse=True)
    C = np.array([truth["category_factors"][c] for c in categories])
    with np.errstate(invalid="ignore"):
        category_logit = np.log(np.bincount(category_of, minlength=len(categories))) + U @ C.T / truth["category_temperature"]
        log_p_category = category_logit - logsumexp(category_logit, axis=1, keepdims=True)
        item_logit = np.log(catalogue["popularity"].to_numpy())[None, :] + U @ all_items.T / truth["temperature"]
        # normalise within each category: log Σ over the category's items, per user
        norm = np.full((len(U), len(categories)), -np.inf)
        for c in range(len(categories)):
            norm[:, c] = logsumexp(item_logit[:, category_of == c], axis=1)
    log_p = log_p_category[:, category_of] + item_logit - norm[:, category_of]
    columns = catalogue.index.get_indexer(np.asarray(item_ids, dtype=str))
    out = np.where(columns >= 0, log_p[:, np.maximum(columns, 0)], -np.inf)
    out[~known] = np.nan
    return out


def planted_taste_overlap(evaluation, dataset, k: int, *, exclude_seen: bool = True, n_boot: int = 1000,
                          seed: int = 0) -> pd.DataFrame:
    """How much of each model's top k is in the user's planted top k.

    For each evaluated user with planted taste, the planted top k are the k
    items with the highest planted view probability (leaving out items seen
    in training when ``exclude_seen``, as the models do); overlap@k is the
    share of the model's top k among them. A random list scores about
    k / number of items.
    """
    from .recommend import metrics
    from .recommend.models import top_k

    split = evaluation.split
    user_ids = split.train.user_ids[evaluation.users]
    scores = planted_preference_scores(dataset, user_ids, split.train.item_ids)
    known = ~np.isnan(scores).any(axis=1)
    seen = split.train.matrix[evaluation.users[known]] if exclude_seen else None
    planted = top_k(scores[known], seen, k)
    planted_set = sp.csr_matrix((np.ones(planted.size), (np.repeat(np.arange(len(planted)), k), planted.ravel())),
                                shape=(len(planted), split.train.shape[1]))
    rows = []
    for name, recommended in evaluation.recommended.items():
        overlap = metrics.hits(recommended[known][:, :k], planted_set).mean(axis=1)
        low, high = metrics.bootstrap_interval(overlap, n_boot=n_boot, seed=seed)
        rows.append({"model": name, "overlap": float(overlap.mean()), "low": low, "high": high,
                     "users": int(known.sum())})
    return pd.DataFrame(rows).sort_values("overlap", ascending=False, ignore_index=True)


def _shop_clock(truth: dict) -> tuple[np.ndarray, np.ndarray]:
    """The built-in shop's seasonal clock (``simulate.seasonal_clock``), rebuilt from ``ground_truth.json``."""
    params = truth["params"]
    start = pd.Timestamp(params["start"], tz="UTC")
    sale_days = [(pd.Timestamp(day, tz="UTC") - start).days for day in truth["sale_days"]]
    return seasonal_clock(start, calendar_weights(start, params["days"], sale_days))


def planted_return_survival(truth: dict, first_visit_us: np.ndarray, customer_type: np.ndarray,
                            days: float) -> np.ndarray:
    """Each visitor's planted probability of no return within ``days`` real days of their first visit.

    Given λ the next visit comes after the minimum gap g plus an exponential time on the seasonal
    clock, so P(no return by t | λ) = exp(-λ (Λ(A + t) - Λ(A) - g)⁺) with Λ the clock and A the first
    visit; averaged over λ ~ Gamma(r, α): (α / (α + (Λ(A + t) - Λ(A) - g)⁺))^r. Dropout plays no part
    (it can only follow a return).
    """
    returns = truth["returns"]
    edges, clock = _shop_clock(truth)
    first = np.asarray(first_visit_us, dtype=float)
    elapsed = np.interp(first + days * US_PER_DAY, edges, clock) - np.interp(first, edges, clock)
    exposure = np.maximum(elapsed - returns["min_gap_days"], 0.0)
    kinds = np.asarray(customer_type, dtype=object)
    r = np.array([returns["rate"][k]["r"] for k in kinds], dtype=float)
    alpha = np.array([returns["rate"][k]["alpha"] for k in kinds], dtype=float)
    return (alpha / (alpha + exposure)) ** r


def planted_return_check(results, truth: dict, days=(1, 3, 7, 14, 28)) -> pd.DataFrame:
    """The planted share not yet back after each of ``days`` against the study's Kaplan–Meier estimate.

    ``results`` is a retention study whose curves split by ``customer_type`` (run with the planted
    truth, so without the anomalous accounts). The planted value at t averages each visitor's planted
    survival (:func:`planted_return_survival`) over the visitors of the type watched at least t days,
    the ones the estimate rests on there. Rows: ``customer_type``, ``days``, ``planted``,
    ``estimate``, ``ci_low``, ``ci_high``, ``inside`` (the planted value in the 95% interval) and ``z``
    (planted minus estimate over the standard error read off the interval's width); a time with fewer
    than 30 visitors watched is left out.
    """
    timeline = results.timeline
    end_us = results.data_end.value // 1000
    rows = []
    for curve in results.returns.curves:
        users = timeline[timeline["segment"] == curve.label]
        first = users["first_visit"].to_numpy("int64")
        watched = (end_us - first) / US_PER_DAY
        for t in days:
            estimate, low, high = curve.at(t, 30)
            if np.isnan(estimate):
                continue
            planted_value = planted_return_survival(truth, first[watched >= t], users["segment"][watched >= t], t)
            rows.append({"customer_type": curve.label, "days": t, "planted": float(planted_value.mean()),
                         "estimate": estimate, "ci_low": low, "ci_high": high})
    table = pd.DataFrame(rows, columns=["customer_type", "days", "planted", "estimate", "ci_low", "ci_high"])
    table["inside"] = (table["planted"] >= table["ci_low"]) & (table["planted"] <= table["ci_high"])
    table["z"] = (table["planted"] - table["estimate"]) / ((table["ci_high"] - table["ci_low"]) / (2 * 1.959964))
    return table


def planted_return_process_fit(dataset: SimulatedDataset) -> pd.DataFrame:
    """BG/NBD fitted to the human visits of each customer type, on the seasonal clock, against the planted process.

    On the clock, with the minimum gap g taken out of every wait, the planted visits are exactly a
    BG/NBD process: a visitor with x returns, the last at τ_x (clock days since the first visit), watched
    until the clock's end τ_end, has recency τ_x - x g and T = recency + (τ_end - τ_last - g)⁺. The fit
    (``funnelkit.retention.clv.BetaGeo``) should put each planted r, α, a, b inside its 95% interval.
    Rows: ``customer_type``, ``parameter``, ``planted``, ``estimate``, ``ci_low``, ``ci_high``, ``inside``.
    """
    from .retention.clv import BetaGeo

    truth = dataset.ground_truth
    returns = truth["returns"]
    gap = returns["min_gap_days"]
    edges, clock = _shop_clock(truth)
    sessions = dataset.sessions()
    sessions = sessions[sessions["label"] == "human"]
    kinds = pd.read_parquet(dataset.events_path, columns=[COLUMNS.user_id, "customer_type"]).drop_duplicates(
        COLUMNS.user_id).set_index(COLUMNS.user_id)["customer_type"].astype(str)
    start_us = (sessions["start"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(microseconds=1)
    tau = np.interp(start_us.to_numpy(dtype=float), edges, clock)
    visits = pd.DataFrame({"user": sessions[COLUMNS.user_id].to_numpy(), "tau": tau})
    per_user = visits.groupby("user")["tau"].agg(first="min", last="max", n="size")
    x = per_user["n"] - 1
    recency = per_user["last"] - per_user["first"] - x * gap
    T = recency + np.maximum(clock[-1] - per_user["last"] - gap, 0.0)
    rows = []
    for kind, planted_rate in returns["rate"].items():
        mine = (kinds.reindex(per_user.index) == kind).to_numpy()
        fit = BetaGeo().fit(x[mine], recency[mine], T[mine])
        ci = fit.conf_int()
        planted_values = {"r": planted_rate["r"], "alpha": planted_rate["alpha"], **returns["dropout"]}
        for name, value in planted_values.items():
            low, high = ci.loc[name].to_numpy()
            rows.append({"customer_type": kind, "parameter": name, "planted": value,
                         "estimate": float(fit.params_[name]), "ci_low": float(low), "ci_high": float(high)})
    table = pd.DataFrame(rows)
    table["inside"] = (table["planted"] >= table["ci_low"]) & (table["planted"] <= table["ci_high"])
    return table


def planted_journey_chain(truth: dict, order: int = 1) -> pd.DataFrame:
    """The planted journey chain of the built-in shop as the journeys study estimates it.

    ``ground_truth.json`` holds, for every (previous state, state) of the complete human sessions, its
    visits and the sum over them of the planted chance of each next state given everything observable
    (``funnelkit.simulate_journeys``). The planted first-order transition probability ``state → next`` is
    the sum of those chances over every previous state divided by the visits of ``state``: what the
    estimate ``count(state → next) / count(state)`` converges to.

    Parameters
    ----------
    truth : dict
        ``ground_truth.json``.
    order : {1, 2}
        1: columns ``from``, ``to``, ``visits``, ``planted``; 2: with ``previous`` first (the state before
        ``from``), per (previous, from).
    """
    rows = []
    for record in truth["journeys"]["transitions"]:
        for nxt, expected in record["expected_next"].items():
            rows.append({"previous": record["previous"], "from": record["state"], "to": nxt,
                         "visits": record["visits"], "expected": expected})
    frame = pd.DataFrame(rows)
    keys = ["previous", "from"] if order == 2 else ["from"]
    if order == 1:
        visits = (pd.DataFrame(truth["journeys"]["transitions"]).groupby("state")["visits"].sum()
                  .rename_axis("from"))
        frame = frame.groupby(["from", "to"], as_index=False)["expected"].sum()
        frame["visits"] = frame["from"].map(visits)
    else:
        frame = frame.dropna(subset=["previous"])
    frame["planted"] = frame["expected"] / frame["visits"]
    return frame[[*keys, "to", "visits", "planted"]].sort_values([*keys, "to"], ignore_index=True)


def planted_journey_check(results, truth: dict) -> pd.DataFrame:
    """Each planted first-order transition beside the study's estimate and 95% interval.

    Columns ``from``, ``to``, ``planted``, ``probability``, ``ci_low``, ``ci_high``, ``inside``; a planted
    transition the study never saw has probability 0, no interval and is not inside. The study must have used
    the planted state names (the default ``journeys.states``).
    """
    planted = planted_journey_chain(truth, 1)
    merged = planted.merge(results.transitions, on=["from", "to"], how="left")
    merged["probability"] = merged["probability"].fillna(0.0)
    merged["inside"] = (merged["ci_low"] <= merged["planted"]) & (merged["planted"] <= merged["ci_high"])
    return merged[["from", "to", "planted", "probability", "ci_low", "ci_high", "inside"]]
