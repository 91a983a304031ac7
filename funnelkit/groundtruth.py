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
from .simulate import PLANTED_STEPS, STEP_OF_PROBABILITY, SimulatedDataset, ensure_dataset
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
