"""From events to the user × item confidence matrix that implicit-feedback models train on.

The aggregation runs in the log's engine: only one row per distinct (user, item)
pair ever reaches NumPy, never the events themselves.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import DataError, ParamsError, SchemaError
from ..eventlog import EventLog
from ..engines import literal, quote, timestamp_literal, unique_name
from ..params import RecommendParams
from ..schema import COLUMNS

USER, ITEM, TIME, TYPE = (quote(c) for c in (COLUMNS.user_id, COLUMNS.item_id, COLUMNS.event_time, COLUMNS.event_type))


@dataclass(frozen=True)
class Interactions:
    """A user × item matrix and the ids behind its rows and columns.

    Attributes
    ----------
    matrix : scipy.sparse.csr_matrix of float32
        ``matrix[u, i]`` = Σ over user u's events on item i of the event
        type's weight (× the event's ``weight_column`` value when one is
        set, × the time-decay factor when one is set), then
        reweighted by BM25/TF-IDF when asked. A stored entry is an
        interaction even when its weight is 0 (BM25's idf of an item nearly
        every user has, the decay of a very old event): the user has seen the
        item, and implicit gives the cell confidence 0, i.e. no pull either way.
    user_ids, item_ids : numpy arrays of str
        The id of each row and of each column (sorted, so indices are stable).
    removed : dict
        What the minimum-count filters took out: ``users``, ``items`` and
        ``pairs`` (distinct user–item pairs).
    """

    matrix: sp.csr_matrix
    user_ids: np.ndarray
    item_ids: np.ndarray
    removed: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return self.matrix.shape

    def user_index(self, ids) -> np.ndarray:
        """Row index of each user id, −1 for ids not in the matrix."""
        return _lookup(self.user_ids, ids)

    def item_index(self, ids) -> np.ndarray:
        """Column index of each item id, −1 for ids not in the matrix."""
        return _lookup(self.item_ids, ids)

    def item_popularity(self) -> np.ndarray:
        """Share of the matrix's users who interacted with each item (for novelty)."""
        users_per_item = np.bincount(self.matrix.indices, minlength=self.shape[1])
        return users_per_item / max(self.shape[0], 1)


def _lookup(sorted_ids: np.ndarray, ids) -> np.ndarray:
    ids = np.asarray(ids, dtype=object).astype(str)
    if len(sorted_ids) == 0:
        return np.full(len(ids), -1)
    position = np.searchsorted(sorted_ids, ids)
    position = np.minimum(position, len(sorted_ids) - 1)
    return np.where(sorted_ids[position] == ids, position, -1)


def _check(events: EventLog, spec: RecommendParams) -> None:
    missing = [c for c in (COLUMNS.user_id, COLUMNS.item_id, COLUMNS.event_time, COLUMNS.event_type)
               if c not in events.columns]
    if missing:
        raise SchemaError(f"{events.source or 'events'}: the recommendation study needs the column(s) "
                          f"{missing}; the log has {events.columns}")
    check_event_types(events, spec, test_events=False)
    check_weight_column(events, spec)


_LISTED_TYPES = 10
"""Event types of the log a message lists."""


def check_event_types(events: EventLog, spec: RecommendParams, *, test_events: bool = True) -> None:
    """Some event of a weighted type occurs in the log, and (``test_events``) some of a test type.

    Raises
    ------
    ParamsError
        Naming the key (``recommend.weights`` or ``recommend.test_events``), its event types and the
        log's own (the ten most frequent).
    """
    present = sorted(event_types(events))
    weighted = [t for t, w in spec.weights.items() if w > 0]
    keys = [("recommend.weights", weighted)] + ([("recommend.test_events", spec.test_events)] if test_events else [])
    listing = ", ".join(present[:_LISTED_TYPES]) + (" ..." if len(present) > _LISTED_TYPES else "")
    for key, wanted in keys:
        if not set(wanted) & set(present):
            raise ParamsError(f"{key}: none of the event types {wanted} occurs in {events.source or 'the log'}, "
                              f"whose event types are {listing}")


_NOT_WEIGHTS = (COLUMNS.user_id, COLUMNS.session_id, COLUMNS.event_time, COLUMNS.event_type, COLUMNS.item_id)


def _weight_sql(spec: RecommendParams, alias: str = "e") -> str:
    """The weight column's value as a DOUBLE (text columns, as CSV segments are, included)."""
    return f"TRY_CAST({alias}.{quote(spec.weight_column)} AS DOUBLE)"


def check_weight_column(events: EventLog, spec: RecommendParams) -> None:
    """``spec.weight_column`` (when set) is a column of ``events`` with a finite number >= 0 on every weighted event.

    Raises
    ------
    SchemaError
        The column is not in the log, or is an id, time or event type column.
    DataError
        Some weighted events (of a type with a positive weight, with a user and an item) have a weight
        that is empty, not a number, NaN, infinite or negative: their count and the first of them.
    """
    column = spec.weight_column
    if column is None:
        return
    weighted = [t for t, w in spec.weights.items() if w > 0]
    if column not in events.columns or column in _NOT_WEIGHTS:
        kept = [c for c in events.columns if c not in _NOT_WEIGHTS]
        raise SchemaError(f"recommend.weight_column: {column!r} is not a column of the loaded log that can weigh events; its "
                          f"other columns are {kept} (a source column is kept as a segment unless "
                          f"data.segments leaves it out)")
    value = _weight_sql(spec)
    types = ", ".join(literal(t) for t in weighted)
    # NaN sorts above +inf in DuckDB and Spark, so this one range test rejects NaN, inf, negatives and nulls
    bad = (f"FROM {quote(events.table)} AS e WHERE e.{TYPE} IN ({types}) AND e.{ITEM} IS NOT NULL "
           f"AND e.{USER} IS NOT NULL AND NOT coalesce({value} >= 0 AND {value} < CAST('Infinity' AS DOUBLE), FALSE)")
    (count,), = events.rows(f"SELECT count(*) {bad}")
    if count:
        (user, item, when, raw), = events.rows(
            f"SELECT e.{USER}, e.{ITEM}, CAST(e.{TIME} AS VARCHAR), CAST(e.{quote(column)} AS VARCHAR) {bad} "
            f"ORDER BY e.{TIME}, e.{USER}, e.{ITEM} LIMIT 1")
        raise DataError(f"recommend.weight_column {column!r}: {count:,} weighted event(s) have no finite weight "
                        f">= 0; first: user {user}, item {item} at {when}: "
                        f"{'an empty value' if raw is None else repr(raw)}. Remove or fix these rows")


def event_types(events: EventLog) -> set[str]:
    """The distinct event types of the log (:func:`funnelkit.requirements.event_type_counts`)."""
    from ..requirements import event_type_counts

    return set(event_type_counts(events))


def _weights_sql(weights: dict[str, float]) -> str:
    rows = ", ".join(f"({literal(t)}, {float(w)!r})" for t, w in weights.items() if w > 0)
    return f"(VALUES {rows}) AS w(event_type, weight)"


def pairs_sql(events: EventLog, spec: RecommendParams, relation: str, as_of: pd.Timestamp | None) -> str:
    """SQL of the weighted (user_id, item_id, weight) pairs of ``relation`` (events in canonical columns)."""
    decay = "1.0"
    if spec.decay_half_life is not None:
        if as_of is None:
            raise ValueError("time decay needs the time the weights are measured at (as_of)")
        half_life_us = spec.decay_half_life // dt.timedelta(microseconds=1)
        age_us = f"epoch_us({timestamp_literal(as_of)}) - epoch_us(e.{TIME})"
        # events after as_of cannot occur in training; clamp guards against clock noise
        decay = f"pow(0.5, greatest({age_us}, 0) / {half_life_us}.0)"
    scale = "1.0" if spec.weight_column is None else _weight_sql(spec)
    return (
        f"SELECT e.{USER} AS user_id, e.{ITEM} AS item_id, sum(w.weight * {decay} * {scale}) AS weight "
        f"FROM {relation} AS e JOIN {_weights_sql(spec.weights)} ON e.{TYPE} = w.event_type "
        f"WHERE e.{ITEM} IS NOT NULL AND e.{USER} IS NOT NULL GROUP BY ALL"
    )


def confidence_matrix(events: EventLog, spec: RecommendParams, *, relation: str | None = None,
                      as_of: pd.Timestamp | None = None) -> Interactions:
    """The user × item matrix of the weighted events of ``relation``.

    Parameters
    ----------
    events : EventLog
        The log (its connection runs the SQL).
    spec : RecommendParams
        ``weights`` per event type, ``weight_column``, ``decay_half_life``, ``weighting``,
        ``min_item_interactions`` and ``min_user_interactions``.
    relation : str, optional
        A table name or parenthesised SELECT over the log (e.g. the training
        period only); default the whole log.
    as_of : Timestamp, optional
        The time ages are measured at for the decay (the training cut-off).

    Returns
    -------
    Interactions

    Notes
    -----
    The minimum counts are applied once each, items first (distinct users
    per item), then users (distinct items per user among the kept items); a
    user who falls below the bar after items are removed is removed too.
    """
    _check(events, spec)
    relation = relation or quote(events.table)
    table, kept_table = unique_name("rec_pairs"), unique_name("rec_kept_pairs")
    user_codes, item_codes = unique_name("rec_user_codes"), unique_name("rec_item_codes")
    events.create_table(table, pairs_sql(events, spec, relation, as_of))
    try:
        kept = table
        if spec.min_item_interactions > 1 or spec.min_user_interactions > 1:
            (total_users, total_items, total_pairs), = events.rows(
                f"SELECT count(DISTINCT user_id), count(DISTINCT item_id), count(*) FROM {table}")
            kept = kept_table
            events.create_table(kept_table, (
                f"WITH items AS (SELECT item_id FROM {table} GROUP BY item_id "
                f"HAVING count(*) >= {spec.min_item_interactions}), "
                f"by_item AS (SELECT * FROM {table} SEMI JOIN items USING (item_id)), "
                f"users AS (SELECT user_id FROM by_item GROUP BY user_id "
                f"HAVING count(*) >= {spec.min_user_interactions}) "
                f"SELECT * FROM by_item SEMI JOIN users USING (user_id)"))
        # rows and columns are ranks in the sorted id lists, computed by the engine: only integers
        # and each id once cross into Python (sorted by code point, as DuckDB and Spark order
        # UTF-8 strings, the order NumPy's searchsorted assumes in Interactions.user_index)
        for codes, column in ((user_codes, "user_id"), (item_codes, "item_id")):
            events.create_table(codes, f"SELECT {column}, row_number() OVER (ORDER BY {column}) - 1 AS code "
                                       f"FROM (SELECT DISTINCT {column} FROM {kept}) AS ids")
        user_ids = events.query(f"SELECT user_id FROM {user_codes} ORDER BY code")["user_id"]
        item_ids = events.query(f"SELECT item_id FROM {item_codes} ORDER BY code")["item_id"]
        pairs = events.query(f"SELECT u.code AS row, i.code AS col, k.weight FROM {kept} k "
                             f"JOIN {user_codes} u ON u.user_id = k.user_id JOIN {item_codes} i ON i.item_id = k.item_id")
    finally:
        for name in (table, kept_table, user_codes, item_codes):
            events.drop_table(name)
    user_ids, item_ids = np.asarray(user_ids, dtype=str), np.asarray(item_ids, dtype=str)
    matrix = sp.csr_matrix((pairs["weight"].to_numpy(np.float32),
                            (pairs["row"].to_numpy(np.int64), pairs["col"].to_numpy(np.int64))),
                           shape=(len(user_ids), len(item_ids)), dtype=np.float32)
    if kept == table:  # nothing filtered
        total_users, total_items, total_pairs = len(user_ids), len(item_ids), matrix.nnz
    matrix = reweight(matrix, spec.weighting)
    removed = {"users": total_users - len(user_ids), "items": total_items - len(item_ids),
               "pairs": total_pairs - matrix.nnz}
    return Interactions(matrix, user_ids, item_ids, removed)


def stored(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """A copy of ``matrix`` with every stored entry set to 1: the pairs the user interacted with, whatever their
    weight (a weight can be 0, see :class:`Interactions`). The models filter exactly these as already seen."""
    pattern = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    pattern.data[:] = 1.0
    return pattern


def reweight(matrix: sp.csr_matrix, weighting: str) -> sp.csr_matrix:
    """BM25 or TF-IDF reweighting (implicit's helpers), users as documents and items as terms.

    Popular items get a low inverse document frequency, so a view of a
    best-seller says less about a user than a view of a niche item; BM25
    also saturates repeated interactions (K1 = 100, B = 0.8, implicit's
    example values).
    """
    if weighting == "none":
        return matrix
    from implicit.nearest_neighbours import bm25_weight, tfidf_weight

    weighted = sp.csr_matrix(bm25_weight(matrix, K1=100, B=0.8) if weighting == "bm25" else tfidf_weight(matrix),
                             dtype=np.float32)
    # an item every user has gets idf log N - log(1 + N) < 0, and implicit reads a negative value as a
    # dislike: such an item says nothing about a user, so its weight is 0 (the entry stays: it was seen)
    np.maximum(weighted.data, 0, out=weighted.data)
    return weighted
