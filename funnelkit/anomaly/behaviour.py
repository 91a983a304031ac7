"""Behavioural anomaly detection: per-user features, detectors, and how well they find planted abuse.

The flow, in one direction::

    features = user_features(events)              # the engine (DuckDB or Spark) → one row per user (pandas)
    scores = detector_scores(features)            # unsupervised: rules, IsolationForest, LOF, k-means
    scores["logistic (out-of-fold)"] = supervised_scores(features, labels)   # when labels exist
    table = score_detectors(scores, labels)       # PR-AUC, R-precision, recall at a false-positive rate
    flagged = flag_users(features, scores)        # who to look at, and why

Every score is "higher = more anomalous" and is indexed by ``user_id``.

Conventions
-----------
Feature transform
    Counts, rates and durations are heavy tailed (most users visit once, a
    scraper makes thousands of requests), so the rules, the robust z-scores
    of the reasons and the matrix the detectors see use ``log1p(x)`` for the
    columns in :data:`LOG_FEATURES`; shares (in [0, 1]) and ``gap_cv`` enter
    as they are.
Labels
    A :class:`pandas.Series` indexed by ``user_id`` whose values are
    ``"human"`` (:data:`NORMAL`) or the name of an anomaly type (the
    simulator's ``bot``, ``click_farm``, ``fake_order``): e.g. ``planted(params).labels``
    (``funnelkit.groundtruth``).

References
----------
.. [1] F. T. Liu, K. M. Ting, Z.-H. Zhou, "Isolation Forest", ICDM 2008.
.. [2] M. M. Breunig, H.-P. Kriegel, R. T. Ng, J. Sander, "LOF: identifying
   density-based local outliers", SIGMOD 2000.
.. [3] B. Iglewicz, D. C. Hoaglin, *How to Detect and Handle Outliers*, ASQC
   1993 (the modified z-score and its 3.5 threshold).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.ensemble import IsolationForest
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, RobustScaler
from threadpoolctl import threadpool_limits

from ..errors import DataError, ParamsError, SchemaError
from ..eventlog import EventLog
from ..engines import distinct_counts, literal, quote
from ..requirements import unavailable
from ..schema import COLUMNS, EVENTS, US_PER_DAY, US_PER_HOUR
from .kpi import MAD_SCALE, MEAN_AD_SCALE
from .lof import local_outlier_factors

__all__ = ["FEATURES", "SOURCES", "unavailable_features", "LOG_FEATURES", "DETECTION_FEATURES", "RULES", "UNSUPERVISED", "NORMAL", "ANY", "REASON_Z", "user_features",
           "preparation", "prepared", "rule_scores", "detector_scores", "classifier", "supervised_scores",
           "score_detectors", "flag_users"]

FEATURES: dict[str, str] = {
    "events": "events of the user (count)",
    "sessions": "distinct sessions of the user (count)",
    "events_per_minute": "events / active minutes; a session is active from its first to its last event, "
                         "at least 1 minute (events per minute)",
    "gap_cv": "coefficient of variation (population sd / mean) of the seconds between consecutive events "
              "within sessions; NaN with fewer than 3 gaps; low = machine-regular (ratio)",
    "median_gap_seconds": "median seconds between consecutive events within sessions; NaN without a gap (s)",
    "night_share": "share of events between 00:00 and 06:00 UTC (0-1)",
    "views_per_purchase": "view events / max(purchase events, 1) (views per purchase)",
    "distinct_items": "distinct non-null item ids among the user's events (count)",
    "distinct_categories": "distinct non-null categories among the user's events; NaN when the log has no "
                           "category column (count)",
    "top_item_purchase_share": "largest share of the user's purchase events on one item; 0 without purchases (0-1)",
    "hours_to_first_purchase": "hours from the user's first event to their first purchase; NaN without a "
                               "purchase (h)",
    "sessions_per_day": "sessions / distinct UTC calendar days with an event (sessions per active day)",
    "carts": "cart events (count)",
    "purchases": "purchase events (count)",
}
"""Feature name → one-line definition with its unit, in the column order of :func:`user_features`."""

SOURCES: dict[str, str] = {"distinct_items": COLUMNS.item_id, "distinct_categories": COLUMNS.category,
                           "top_item_purchase_share": COLUMNS.item_id}
"""Features that come from an optional column of the log: NaN for every user when the log lacks it."""

LOG_FEATURES: tuple[str, ...] = (
    "events", "sessions", "events_per_minute", "median_gap_seconds", "views_per_purchase", "distinct_items",
    "distinct_categories", "hours_to_first_purchase", "sessions_per_day", "carts", "purchases",
)
"""Heavy-tailed non-negative features that the rules, the reasons and the detectors see as ``log1p(x)``."""

DETECTION_FEATURES: tuple[str, ...] = (
    "events", "events_per_minute", "median_gap_seconds", "night_share", "views_per_purchase", "distinct_items",
    "distinct_categories", "top_item_purchase_share", "sessions_per_day",
)
"""The features the unsupervised detectors look at by default: how a user behaves. Left out: the counts of
sessions, carts and purchases (a loyal customer has many, which is not an anomaly), ``hours_to_first_purchase``
(undefined for most users and widely spread among buyers) and ``gap_cv``. With all fourteen, the heavy tails of
ordinary customers crowd the top of every ranking: on the default built-in shop (50,000 users) the best
unsupervised PR-AUC on the planted bots was 0.27; with these nine it is 1.0 for the rules and IsolationForest."""

RULES = ("3-sigma", "IQR")
"""Per-feature rules of :func:`rule_scores`."""

UNSUPERVISED = (*RULES, "IsolationForest", "LOF", "k-means distance")
"""Detectors of :func:`detector_scores`, in its order."""

NORMAL = "human"
"""The label of normal users."""

ANY = "any"
"""The pseudo anomaly type of :func:`score_detectors` that pools every anomaly type."""

REASON_Z = 3.5
"""A feature is a reason when its robust z-score exceeds this in absolute value (Iglewicz & Hoaglin [3]_)."""

_NIGHT_END_US = 6 * US_PER_HOUR


# --------------------------------------------------------------------------- features

def user_features(events: EventLog) -> pd.DataFrame:
    """One row of behavioural features per user, computed in the log's engine (DuckDB or Spark).

    Only the one-row-per-user result becomes pandas. Events without a
    ``user_id`` are ignored.

    Parameters
    ----------
    events : EventLog
        Canonical events (``funnelkit.data.load_events``) with at least
        ``user_id``, ``session_id``, ``event_time`` and ``event_type``;
        ``item_id`` and ``category`` are optional.

    Returns
    -------
    pandas.DataFrame
        Index ``user_id`` (sorted ascending), one float column per entry of
        :data:`FEATURES`, in that order. With *gaps* the differences between
        consecutive event times (sorted) within a session of the user:

        ``events``, ``sessions``
            Number of events; number of distinct ``session_id`` values.
        ``events_per_minute``
            ``events / Σ_sessions max((last − first event) in minutes, 1)``.
        ``gap_cv``
            Population standard deviation / mean of the gaps (seconds), pooled
            over the user's sessions; NaN with fewer than 3 gaps or a zero mean.
        ``median_gap_seconds``
            Median of the gaps in seconds (the mean of the two middle ones for
            an even count); NaN without a gap.
        ``night_share``
            Share of events whose UTC time of day is in [00:00, 06:00).
        ``views_per_purchase``
            ``view events / max(purchase events, 1)``.
        ``distinct_items``, ``distinct_categories``
            Distinct non-null ``item_id`` / ``category`` values (0 when all are
            null); NaN when the log has no such column.
        ``top_item_purchase_share``
            ``max over items of (purchases of the item) / purchases``;
            purchases without an ``item_id`` count in the denominator only;
            0 without purchases (NaN without an ``item_id`` column).
        ``hours_to_first_purchase``
            ``(first purchase − first event) / 1 h``; NaN without a purchase.
        ``sessions_per_day``
            ``sessions / distinct UTC calendar days with an event``.
        ``carts``, ``purchases``
            Number of ``cart`` / ``purchase`` events.

    Raises
    ------
    SchemaError
        A required column is missing.
    DataError
        No event has a user, or an event of a user has no ``session_id``.
    """
    types = events.column_types()
    where = events.source or events.table
    for column in (COLUMNS.user_id, COLUMNS.session_id, COLUMNS.event_time, COLUMNS.event_type):
        if column not in types:
            raise SchemaError(f"user_features: column {column!r} not found in the events of {where}; "
                              f"columns found: {', '.join(types)}")
    has_item, has_cat = COLUMNS.item_id in types, COLUMNS.category in types
    table, user = quote(events.table), quote(COLUMNS.user_id)
    users, no_session = events.rows(
        f"SELECT count(DISTINCT {user}), count(*) FILTER (WHERE {quote(COLUMNS.session_id)} IS NULL) "
        f"FROM {table} WHERE {user} IS NOT NULL")[0]
    if not users:
        raise DataError(f"user_features: the events of {where} have no user: no row to build")
    if no_session:
        raise DataError(f"user_features: {no_session:,} events of {where} have no {COLUMNS.session_id!r}")

    frame = events.query(_features_sql(events.table, has_item, has_cat))
    frame = frame.set_index(COLUMNS.user_id)
    return frame[list(FEATURES)].astype(float)


def _features_sql(table: str, has_item: bool, has_cat: bool) -> str:
    view, cart, purchase = (literal(k) for k in (EVENTS.view, EVENTS.cart, EVENTS.purchase))
    item = quote(COLUMNS.item_id) if has_item else "NULL"
    cat = quote(COLUMNS.category) if has_cat else "NULL"
    days_items_cats = f"(SELECT uid, item, cat, floor(t / {float(US_PER_DAY)!r}) AS day FROM ev)"
    distinct = {"item": "items", "cat": "cats", "day": "days"}
    ctes = [
        f"ev AS (SELECT {quote(COLUMNS.user_id)} AS uid, {quote(COLUMNS.session_id)} AS sid, "
        f"epoch_us({quote(COLUMNS.event_time)}) AS t, {quote(COLUMNS.event_type)} AS et, {item} AS item, "
        f"{cat} AS cat FROM {quote(table)} WHERE {quote(COLUMNS.user_id)} IS NOT NULL)",
        "gaps AS (SELECT uid, (t - lag(t) OVER (PARTITION BY uid, sid ORDER BY t)) / 1e6 AS gap FROM ev)",
        # the median from each user's gaps in order (NULLs, a session's first event, last): quantile_cont keeps
        # every user's values in memory, 76 s and more than the memory limit on a log of 15M events
        "ranked AS (SELECT uid, gap, row_number() OVER (PARTITION BY uid ORDER BY gap NULLS LAST) AS r, "
        "count(gap) OVER (PARTITION BY uid) AS n FROM gaps)",
        "gap_stats AS (SELECT uid, CASE WHEN count(gap) >= 3 AND avg(gap) > 0 THEN stddev_pop(gap) / avg(gap) END "
        "AS gap_cv, avg(gap) FILTER (WHERE r = (n + 1) // 2 OR r = n // 2 + 1) AS median_gap "
        "FROM ranked GROUP BY uid)",
        "sess AS (SELECT uid, count(*) AS sessions, sum(greatest((max_t - min_t) / 6e7, 1.0)) AS active_minutes "
        "FROM (SELECT uid, sid, min(t) AS min_t, max(t) AS max_t FROM ev GROUP BY uid, sid) GROUP BY uid)",
        f"distinct_counts AS ({distinct_counts(days_items_cats, 'uid', distinct)})",
        f"top_item AS (SELECT uid, max(n) AS top FROM (SELECT uid, item, count(*) AS n FROM ev "
        f"WHERE et = {purchase} AND item IS NOT NULL GROUP BY uid, item) GROUP BY uid)",
        f"agg AS (SELECT uid, count(*) AS events, "
        f"count(*) FILTER (WHERE ((t % {US_PER_DAY}) + {US_PER_DAY}) % {US_PER_DAY} < {_NIGHT_END_US}) AS night, "
        f"count(*) FILTER (WHERE et = {view}) AS views, count(*) FILTER (WHERE et = {cart}) AS carts, "
        f"count(*) FILTER (WHERE et = {purchase}) AS purchases, min(t) AS first_t, "
        f"min(t) FILTER (WHERE et = {purchase}) AS first_buy FROM ev GROUP BY uid)",
    ]
    nan = "CAST('NaN' AS DOUBLE)"
    out = {
        "events": "a.events",
        "sessions": "s.sessions",
        "events_per_minute": "a.events / s.active_minutes",
        "gap_cv": "g.gap_cv",
        "median_gap_seconds": "g.median_gap",
        "night_share": "a.night / a.events",
        "views_per_purchase": "a.views / greatest(a.purchases, 1)",
        "distinct_items": "d.items" if has_item else nan,
        "distinct_categories": "d.cats" if has_cat else nan,
        "top_item_purchase_share": ("CASE WHEN a.purchases > 0 THEN coalesce(ti.top, 0) / a.purchases ELSE 0 END"
                                    if has_item else nan),
        "hours_to_first_purchase": f"(a.first_buy - a.first_t) / {float(US_PER_HOUR)!r}",
        "sessions_per_day": "s.sessions / d.days",
        "carts": "a.carts",
        "purchases": "a.purchases",
    }
    select = ", ".join(f"CAST({expr} AS DOUBLE) AS {quote(name)}" for name, expr in out.items())
    return (f"WITH {', '.join(ctes)} SELECT a.uid AS {quote(COLUMNS.user_id)}, {select} FROM agg a "
            f"JOIN sess s USING (uid) JOIN distinct_counts d USING (uid) JOIN gap_stats g USING (uid) "
            f"LEFT JOIN top_item ti USING (uid) ORDER BY a.uid")


def unavailable_features(events: EventLog) -> dict[str, str]:
    """The features :func:`user_features` cannot compute on this log (NaN for every user: the detectors
    see them as typical, :func:`prepared`), each with the reason (``"the log has no item_id column"``)."""
    return unavailable(events, SOURCES)


# --------------------------------------------------------------------------- the matrix detectors see

def _checked(features: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in FEATURES if c not in features.columns]
    if missing:
        raise SchemaError(f"feature column(s) {missing} missing; expected the columns of user_features: "
                          f"{', '.join(FEATURES)}")
    if len(features) < 2:
        raise DataError(f"need at least 2 users to tell an anomaly from the rest, got {len(features)}")
    return features[list(FEATURES)].astype(float)


def _log1p(features: pd.DataFrame) -> pd.DataFrame:
    """The columns of :data:`LOG_FEATURES` as ``log1p``, the others unchanged (same index and order)."""
    out = features[list(FEATURES)].astype(float).copy()
    logged = list(LOG_FEATURES)
    out[logged] = np.log1p(out[logged])
    return out


def preparation() -> Pipeline:
    """The (unfitted) scikit-learn pipeline behind :func:`prepared`.

    Steps: ``log1p`` of :data:`LOG_FEATURES` (a ``FunctionTransformer`` taking
    a DataFrame with the columns of :data:`FEATURES`), ``SimpleImputer``
    (column median of the fitted rows) and ``RobustScaler`` (centre the median,
    divide by the interquartile range; a column whose IQR is 0 is only centred).
    Fitted inside a model it learns medians and IQRs from training rows only.
    """
    return Pipeline([
        ("log1p", FunctionTransformer(_log1p, validate=False)),
        ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
        ("scale", RobustScaler()),
    ])


def prepared(features: pd.DataFrame) -> np.ndarray:
    """The matrix the unsupervised detectors see: log1p, median-filled, robust-scaled features.

    Parameters
    ----------
    features : pandas.DataFrame
        The result of :func:`user_features` (extra columns are ignored).

    Returns
    -------
    numpy.ndarray
        Shape ``(n_users, len(FEATURES))``, rows in the order of
        ``features``, columns in the order of :data:`FEATURES`:
        ``(f(x) − median) / IQR`` where ``f`` is ``log1p`` for
        :data:`LOG_FEATURES` and the identity otherwise, and the median and
        IQR are those of the column over all users (a column with IQR 0 is
        only centred). Deterministic.

    Notes
    -----
    A missing value is replaced by the column median (after ``log1p``),
    i.e. it looks typical and contributes nothing to an anomaly score:

    ``gap_cv`` (fewer than 3 gaps), ``median_gap_seconds`` (no gap)
        Too few events to measure regularity or speed: no evidence either
        way. The speed of such users still shows in ``events_per_minute``.
    ``hours_to_first_purchase`` (no purchase)
        Filled with the median buyer's value rather than a "never" value such
        as a large number: most users never buy, so a large fill would become
        the column's median and make every buyer an outlier. Not buying is
        already in ``purchases`` and ``views_per_purchase``.
    ``distinct_items``, ``distinct_categories``, ``top_item_purchase_share``
        NaN only when the log lacks the column; every user then gets 0 (an
        all-missing column carries no information).
    """
    return preparation().fit_transform(_checked(features))


# --------------------------------------------------------------------------- rules

def _exceedance_score(exceedance: pd.DataFrame, flags: pd.DataFrame) -> pd.Series:
    """Number of flags plus a tie-break in [0, 1) increasing in the largest exceedance."""
    values = exceedance.to_numpy(dtype=float)
    usable = np.isfinite(values).any(axis=1)
    largest = np.full(len(values), -np.inf)
    largest[usable] = np.nanmax(np.where(np.isfinite(values), values, np.nan)[usable], axis=1)
    tie_break = 0.5 + np.arctan(largest) / np.pi  # -inf → 0, 0 → 0.5, +inf → 1
    tie_break = np.minimum(tie_break, np.nextafter(1.0, 0.0))
    return pd.Series(flags.sum(axis=1).to_numpy(float) + tie_break, index=flags.index, name="score")


def rule_scores(features: pd.DataFrame, method: Literal["3-sigma", "IQR"]) -> tuple[pd.Series, pd.DataFrame]:
    """Per-feature outlier rules: how many features flag each user, and which.

    Each rule is applied to every column of :data:`FEATURES`, after
    ``log1p`` for :data:`LOG_FEATURES`. With ``x`` a user's transformed
    value and the statistics computed over users with a value:

    ``"3-sigma"``
        Flag when ``|x − mean| > 3 sd`` (``sd`` with ``ddof=1``); the
        *exceedance* is ``|x − mean| / sd − 3`` (sd units beyond the bound).
    ``"IQR"``
        Flag when ``x < Q1 − 1.5 IQR`` or ``x > Q3 + 1.5 IQR`` (quartiles by
        linear interpolation, ``IQR = Q3 − Q1``); the exceedance is the
        distance beyond the nearer fence (negative inside) divided by the IQR,
        or by the sd when the IQR is 0 (then any value off the common
        quartile is flagged, as the rule says).

    A missing value is never flagged; a column whose spread (sd, or IQR and
    sd) is 0 flags no one.

    Parameters
    ----------
    features : pandas.DataFrame
        The result of :func:`user_features`.
    method : {"3-sigma", "IQR"}

    Returns
    -------
    score : pandas.Series
        Index ``user_id``: ``number of flagged features + g(e)``, where ``e``
        is the user's largest exceedance over features and
        ``g(e) = 1/2 + arctan(e)/π`` (in [0, 1)). Users therefore rank by
        their number of flags first and by their most extreme feature next.
    flags : pandas.DataFrame of bool
        Index ``user_id``, one column per feature: the reasons.

    Raises
    ------
    ParamsError
        Unknown ``method``.
    """
    if method not in RULES:
        raise ParamsError(f"method must be one of {RULES}, got {method!r}")
    x = _log1p(_checked(features))
    if method == "3-sigma":
        centre, sd = x.mean(), x.std(ddof=1)
        spread = sd.where(sd > 0)
        exceedance = (x - centre).abs() / spread - 3.0
        flags = (x - centre).abs() > 3.0 * spread
    else:
        q1, q3, sd = x.quantile(0.25), x.quantile(0.75), x.std(ddof=1)
        iqr = q3 - q1
        low, high = q1 - 1.5 * iqr, q3 + 1.5 * iqr
        spread = iqr.where(iqr > 0, sd.where(sd > 0))
        beyond = np.maximum(low - x, x - high)
        exceedance = beyond / spread
        flags = ((x < low) | (x > high)) & spread.notna()
    flags = flags.fillna(False).astype(bool)
    return _exceedance_score(exceedance, flags), flags


# --------------------------------------------------------------------------- detectors

def detector_scores(features: pd.DataFrame, *, seed: int = 0, n_neighbors: int = 20, n_clusters: int = 8,
                    min_cluster_share: float = 0.05,
                    columns: Sequence[str] = DETECTION_FEATURES) -> dict[str, pd.Series]:
    """Anomaly scores of every unsupervised detector (higher = more anomalous).

    Parameters
    ----------
    features : pandas.DataFrame
        The result of :func:`user_features`.
    seed : int, default 0
        ``random_state`` of IsolationForest and KMeans.
    n_neighbors : int, default 20
        Neighbours of LOF (at most ``n_users − 1``).
    n_clusters : int, default 8
        Clusters of KMeans (at most ``n_users``).
    min_cluster_share : float, default 0.05
        A k-means cluster holding at least this share of the users is
        *large*; ``"k-means distance"`` measures to large clusters only. 0
        makes every cluster large (plain distance to the nearest centroid).
    columns : sequence of str, default :data:`DETECTION_FEATURES`
        The features the detectors see; the others are held constant (0),
        which every detector ignores.

    Returns
    -------
    dict of str → pandas.Series
        Keys :data:`UNSUPERVISED`, each a float Series indexed like ``features``:

        ``"3-sigma"``, ``"IQR"``
            :func:`rule_scores` (number of flagged features + tie-break).
        ``"IsolationForest"``
            ``−score_samples`` of ``sklearn.ensemble.IsolationForest``
            (100 trees) fitted on :func:`prepared`: in (0, 1], higher = shorter
            average path = easier to isolate [1]_.
        ``"LOF"``
            The local outlier factor on :func:`prepared`
            (:func:`funnelkit.anomaly.lof.local_outlier_factors`: scikit-learn's
            ``LocalOutlierFactor(novelty=False)``, computed once per distinct
            row), about 1 inside a cluster, larger for points in sparser
            places than their neighbours [2]_.
        ``"k-means distance"``
            Euclidean distance, in the units of :func:`prepared`, to the
            nearest centroid of a large cluster (``min_cluster_share``) of
            ``sklearn.cluster.KMeans(n_init=10)`` fitted on :func:`prepared`
            (all clusters when none is large). This is the large-cluster rule
            of CBLOF [4]_: a tight group of anomalies (a bot farm) wins a
            centroid of its own, and the plain distance to the nearest
            centroid then scores its members as the most typical users.

    Notes
    -----
    All detectors score the users they were fitted on (transductive), which
    is how a batch review of a period works. LOF with many identical rows
    (e.g. single-view visitors) is unstable: the density adds 1e-10 to zero
    reachability distances, so a point next to a clump of duplicates can get
    a very large factor (scikit-learn warns about it; this note stands for
    the warning).

    References
    ----------
    .. [4] Z. He, X. Xu, S. Deng, "Discovering cluster-based local outliers",
       Pattern Recognition Letters 24, 2003.
    """
    if not 0 <= min_cluster_share <= 1:
        raise ParamsError(f"min_cluster_share must be in [0, 1], got {min_cluster_share}")
    features = _checked(features)
    unknown = [c for c in columns if c not in FEATURES]
    if unknown:
        raise ParamsError(f"detector columns {unknown} are not features; features are {', '.join(FEATURES)}")
    features = features.copy()
    features[[c for c in FEATURES if c not in columns]] = 0.0
    X = prepared(features)
    n = len(X)
    index = features.index
    scores = {method: rule_scores(features, method)[0] for method in RULES}
    # One thread (OpenMP and BLAS), as in funnelkit.predict: on the 2-core machine beside a busy process the
    # default pools made these fits 2-10x slower in CPU time (k-means 5.2 s against 0.5 s on 50,000 users),
    # and k-means then gives the same distances on any machine, whatever its number of cores.
    with threadpool_limits(limits=1):
        forest = IsolationForest(n_estimators=100, random_state=seed).fit(X)
        scores["IsolationForest"] = pd.Series(-forest.score_samples(X), index=index)
        # LOF on the columns that vary: a constant column adds exactly 0 to every distance (same neighbours,
        # same factors) and a third of the time of the neighbour search
        varying = np.ptp(X, axis=0) > 0
        scores["LOF"] = pd.Series(local_outlier_factors(X[:, varying] if varying.any() else X, n_neighbors),
                                  index=index)
        kmeans = KMeans(n_clusters=max(1, min(n_clusters, n)), n_init=10, random_state=seed).fit(X)
        distances = kmeans.transform(X)
    sizes = np.bincount(kmeans.labels_, minlength=kmeans.n_clusters)
    large = sizes >= min_cluster_share * n
    if not large.any():
        large[:] = True
    scores["k-means distance"] = pd.Series(distances[:, large].min(axis=1), index=index)
    return {name: score.rename(name).astype(float) for name, score in scores.items()}


def _aligned_labels(labels: pd.Series, index: pd.Index, what: str) -> pd.Series:
    aligned = labels.reindex(index)
    if aligned.isna().any():
        missing = index[aligned.isna().to_numpy()]
        raise DataError(f"{what}: {len(missing):,} user(s) have no label, e.g. {list(missing[:3])}")
    return aligned


def classifier(seed: int = 0) -> Pipeline:
    """The supervised model of :func:`supervised_scores` (unfitted).

    :func:`preparation` (learned on the training rows) followed by
    ``LogisticRegression(class_weight="balanced", max_iter=10_000)``: the L2
    penalty ``C=1`` of scikit-learn's default, classes weighted inversely to
    their frequency so the rare anomalies are not ignored.
    """
    return Pipeline([
        ("prepare", preparation()),
        ("model", LogisticRegression(class_weight="balanced", max_iter=10_000, random_state=seed)),
    ])


def supervised_scores(features: pd.DataFrame, labels: pd.Series, *, seed: int = 0, folds: int = 5) -> pd.Series:
    """Out-of-fold probability that a user is not human, from a logistic regression.

    Users are split by ``StratifiedKFold(folds, shuffle=True,
    random_state=seed)`` on the binary target ``label != "human"``; for each
    fold a fresh :func:`classifier` is fitted on the other folds only
    (preparation medians and IQRs included) and scores the fold. Every user
    is therefore scored by a model that never saw them or their label.

    Parameters
    ----------
    features : pandas.DataFrame
        The result of :func:`user_features`.
    labels : pandas.Series
        Label per ``user_id`` (see the module docstring); every user of
        ``features`` needs one (extra users are ignored).
    seed : int, default 0
        Seed of the fold split.
    folds : int, default 5
        Number of folds (at least 2, at most the size of the smaller class).

    Returns
    -------
    pandas.Series
        Index like ``features``, name ``"logistic (out-of-fold)"``: the
        predicted probability of ``label != "human"``, in [0, 1]. With
        ``class_weight="balanced"`` it is not calibrated to the base rate;
        use it to rank.

    Raises
    ------
    DataError
        A user without a label, or fewer than ``folds`` users in a class.
    ParamsError
        ``folds < 2``.

    Notes
    -----
    This measures how well the features *can* separate the labelled types
    (an upper bound for the unsupervised detectors). In a deployment the
    model would be trained on past, investigated labels and applied to new
    users, whose abuse may not look like the past's.
    """
    if folds < 2:
        raise ParamsError(f"folds must be at least 2, got {folds}")
    features = _checked(features)
    y = (_aligned_labels(labels, features.index, "supervised_scores") != NORMAL).to_numpy()
    smaller = int(min(y.sum(), (~y).sum()))
    if smaller < folds:
        raise DataError(f"supervised_scores: {folds} folds need at least {folds} users of each class "
                        f"(human / not human); the smaller class has {smaller}")
    out = np.full(len(features), np.nan)
    # one thread: 0.8 s against 5.8 s of CPU for the five fits on 50,000 users beside a busy process
    # (see detector_scores)
    with threadpool_limits(limits=1):
        for train, test in StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(features, y):
            model = classifier(seed).fit(features.iloc[train], y[train])
            out[test] = model.predict_proba(features.iloc[test])[:, 1]
    return pd.Series(out, index=features.index, name="logistic (out-of-fold)")


# --------------------------------------------------------------------------- evaluation

def _r_precision(scores: np.ndarray, positive: np.ndarray) -> float:
    """Expected precision of the top k = #positives, ties at the cut broken uniformly at random."""
    k = int(positive.sum())
    cut = np.sort(scores)[::-1][k - 1]
    above, at = scores > cut, scores == cut
    slots = k - int(above.sum())
    return (positive[above].sum() + positive[at].sum() * slots / at.sum()) / k


def score_detectors(scores: Mapping[str, pd.Series], labels: pd.Series, *, fpr: float = 0.01) -> pd.DataFrame:
    """How well each detector ranks each planted anomaly type above the humans.

    For each detector and each anomaly type present among the scored users
    (sorted), and for :data:`ANY` (all anomaly types pooled): positives are
    the users of that type, negatives the humans only; users of the other
    types are left out, so each type is judged on its own.

    Parameters
    ----------
    scores : mapping of str → pandas.Series
        Detector name → score per ``user_id`` (higher = more anomalous).
    labels : pandas.Series
        Label per ``user_id`` (see the module docstring); every scored user
        needs one.
    fpr : float, default 0.01
        False-positive rate (share of humans) of ``recall_at_fpr``, in (0, 1).

    Returns
    -------
    pandas.DataFrame
        One row per detector × type, columns

        ``detector``, ``type``
        ``positives``, ``negatives`` : int
            Users of the type; humans.
        ``pr_auc`` : float
            Average precision ``Σ_n (R_n − R_{n−1}) P_n`` over the score
            thresholds (``sklearn.metrics.average_precision_score``).
        ``precision_at_k`` : float
            R-precision: share of positives among the ``k = positives``
            highest scores; users tied at the k-th score share the remaining
            places (the expectation under a random order of ties).
        ``recall_at_fpr`` : float
            Share of positives scoring strictly above the ``1 − fpr``
            quantile (linear interpolation) of the humans' scores.
        ``baseline_pr_auc`` : float
            ``positives / (positives + negatives)``: the PR-AUC of a random
            ranking.

    Raises
    ------
    DataError
        A scored user without a label, or no human among the scored users.
    ParamsError
        ``fpr`` outside (0, 1).
    """
    if not 0 < fpr < 1:
        raise ParamsError(f"fpr must be in (0, 1), got {fpr}")
    rows = []
    for name, score in scores.items():
        score = score.astype(float)
        label = _aligned_labels(labels, score.index, f"score_detectors ({name})").to_numpy()
        values = score.to_numpy()
        human = label == NORMAL
        if not human.any():
            raise DataError(f"score_detectors ({name}): no {NORMAL!r} user among the scored users")
        threshold = np.quantile(values[human], 1 - fpr)
        types = sorted(set(label[~human]))
        for kind in [*types, ANY]:
            positive = label == kind if kind != ANY else ~human
            if not positive.any():
                continue
            keep = positive | human
            s, y = values[keep], positive[keep]
            rows.append({
                "detector": name, "type": kind, "positives": int(y.sum()), "negatives": int((~y).sum()),
                "pr_auc": float(average_precision_score(y, s)),
                "precision_at_k": float(_r_precision(s, y)),
                "recall_at_fpr": float((values[positive] > threshold).mean()),
                "baseline_pr_auc": float(y.mean()),
            })
    return pd.DataFrame(rows, columns=["detector", "type", "positives", "negatives", "pr_auc", "precision_at_k",
                                       "recall_at_fpr", "baseline_pr_auc"])


# --------------------------------------------------------------------------- flags and reasons

def _robust_z(x: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Modified z-scores per column, and the column medians (NaN values stay NaN)."""
    median = x.median()
    deviation = (x - median).abs()
    mad, mean_ad = deviation.median(), deviation.mean()
    scale = (MAD_SCALE * mad).where(mad > 0, (MEAN_AD_SCALE * mean_ad).where(mean_ad > 0))
    return (x - median) / scale, median


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1_000 else f"{value:.3g}"


def flag_users(features: pd.DataFrame, scores: Mapping[str, pd.Series], *, top_share: float = 0.01,
               detectors: Sequence[str] | None = None) -> pd.DataFrame:
    """The users at the top of at least one detector, with the features that make them unusual.

    Parameters
    ----------
    features : pandas.DataFrame
        The result of :func:`user_features`.
    scores : mapping of str → pandas.Series
        Detector name → score per ``user_id`` (e.g. :func:`detector_scores`).
    top_share : float, default 0.01
        A user is flagged by a detector when their ``rank_share`` there is at
        most ``top_share``, in (0, 1].
    detectors : sequence of str, optional
        Which detectors may flag; default: every key of ``scores``.

    Returns
    -------
    pandas.DataFrame
        One row per flagged user, sorted by ``rank_share`` then ``user_id``,
        default index, columns

        ``user_id``
        ``detectors`` : str
            The chosen detectors that flag the user, comma-separated, in the
            order given.
        ``rank_share`` : float
            The best (smallest), over the chosen detectors, of the share of
            scored users whose score is at least the user's (``1/n`` for the
            single highest score; ties share the larger value).
        ``reasons`` : str
            The features whose modified z-score exceeds :data:`REASON_Z` in
            absolute value, most extreme first, as ``"name value (typical
            median)"`` in the feature's own units, joined by ``"; "``; empty
            when none. The z-score is ``(f(x) − median) / (1.4826 MAD)`` with
            ``f`` = ``log1p`` for :data:`LOG_FEATURES`, the identity
            otherwise, statistics over all users of ``features``; when the
            MAD is 0, ``1.2533 × mean absolute deviation`` replaces
            ``1.4826 MAD``; a feature with neither spread gives no reason.

    Raises
    ------
    ParamsError
        ``top_share`` outside (0, 1], or an unknown detector.
    """
    if not 0 < top_share <= 1:
        raise ParamsError(f"top_share must be in (0, 1], got {top_share}")
    detectors = list(scores) if detectors is None else list(detectors)
    unknown = [d for d in detectors if d not in scores]
    if unknown:
        raise ParamsError(f"unknown detector(s) {unknown}; scores hold {', '.join(scores)}")
    features = _checked(features)
    shares = pd.DataFrame({d: scores[d].astype(float).rank(ascending=False, method="max") / scores[d].notna().sum()
                           for d in detectors})
    hit = shares <= top_share
    flagged = hit.any(axis=1)
    shares, hit = shares[flagged], hit[flagged]

    z, _ = _robust_z(_log1p(features))
    raw_median = features.median()
    reasons = []
    for user in shares.index:
        row = z.loc[user] if user in z.index else pd.Series(dtype=float)
        extreme = row[row.abs() > REASON_Z].abs().sort_values(ascending=False, kind="stable")
        reasons.append("; ".join(f"{name} {_number(features.at[user, name])} (typical {_number(raw_median[name])})"
                                 for name in extreme.index))
    table = pd.DataFrame({
        COLUMNS.user_id: shares.index,
        "detectors": [", ".join(d for d in detectors if hit.at[user, d]) for user in shares.index],
        "rank_share": shares.min(axis=1).to_numpy(),
        "reasons": reasons,
    })
    return table.sort_values(["rank_share", COLUMNS.user_id], kind="stable").reset_index(drop=True)
