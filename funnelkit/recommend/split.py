"""Train/test splits of the event log that leak nothing from the test truth into training.

Three protocols:

``temporal`` (the default)
    One cut-off time for everyone. Training sees only events before it; the
    truth is the (user, item) pairs of ``test_events`` (carts, purchases) at
    or after it. This is how a deployed recommender lives: trained on the
    past, judged on the future.
``leave_last_out``
    Per user, the item of their last ``test_events`` event is held out, and
    training keeps only that user's events before it, without any event on
    the held-out item (on a shop the cart follows a view of the same item:
    keeping the view would hand the answer over). Other users' events are
    all kept, including those after this user's held-out event, so the model
    learns from the future of the crowd: this cross-user leakage flatters
    the scores and is why the temporal split is the default.
``user_temporal``
    Per user, the last ``test_fraction`` of their interactions by time is
    their test set, the protocol most published results on ratings logs use.
    A user's interactions are their events with an item whose type has a
    positive weight or is a test event type, ordered by time (ties by item id,
    then event type); of n of them the last h = floor(test_fraction × n) are
    held out (computed with a 1e-9 tolerance, so that 0.29 of 100 is 29 and
    0.3333333333333333 of 3 is 1) and training keeps the first n − h. A user
    with too few to hold any out (n < 1 / test_fraction) stays in training
    only and is counted. The truth is the (user, item) pairs of ``test_events`` among
    the held-out interactions. Like leave-last-out it trains on other users'
    later events (cross-user leakage); time decay is measured at the log's end.

Users and items absent from training cannot be scored: their test pairs are
dropped and counted. With ``exclude_seen`` the truth also drops items the
user already interacted with in training, matching the recommendations,
which exclude them.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import DataError
from ..eventlog import EventLog
from ..engines import literal, quote, timestamp_literal
from ..params import RecommendParams
from .matrix import ITEM, TIME, TYPE, USER, Interactions, check_event_types, confidence_matrix, stored


@dataclass(frozen=True)
class Split:
    """Training matrix and test truth.

    Attributes
    ----------
    train : Interactions
        The training confidences (rows = every training user).
    truth : scipy.sparse.csr_matrix of float32
        Same shape as ``train.matrix``; 1 where the pair is a test interaction.
    test_users : numpy array of int
        Rows of ``train`` with at least one truth item (the evaluated users).
    kind : str
        ``temporal``, ``user_temporal`` or ``leave_last_out``.
    cutoff : Timestamp or None
        Start of the test period (temporal split).
    end : Timestamp or None
        End of the test period (exclusive), when the split is a validation
        split carved out of an earlier training period.
    counts : dict
        Test pairs found and dropped, and cold-start users (see :meth:`counts_frame`).
    """

    train: Interactions
    truth: sp.csr_matrix
    test_users: np.ndarray
    kind: str
    cutoff: pd.Timestamp | None
    end: pd.Timestamp | None
    counts: dict

    def counts_frame(self) -> pd.DataFrame:
        labels = {
            "test_pairs": "test (user, item) pairs in the test period",
            "cold_user_pairs": "… dropped: user not in training (no interaction before, or below the minimum counts)",
            "cold_item_pairs": "… dropped: item unknown in training",
            "seen_pairs": "… dropped: item already in the user's training history",
            "kept_pairs": "test pairs evaluated",
            "test_users": "users evaluated",
            "cold_users": "users with test items but no training history (not evaluated)",
            "short_users": "users with too few interactions to hold any out (training only)",
        }
        shown = [k for k in labels if k in self.counts]
        return pd.DataFrame({"what": [labels[k] for k in shown], "count": [self.counts[k] for k in shown]})

    def describe(self, spec: RecommendParams) -> str:
        """The protocol in one paragraph of plain text: what the models train on and what they are judged on."""
        truth = f"the items each user went on to have a {' or '.join(spec.test_events)} event on"
        if self.kind == "temporal":
            period = f"from {self.cutoff:%Y-%m-%d %H:%M} UTC" + (
                f" until {self.end:%Y-%m-%d %H:%M} UTC" if self.end is not None else " on")
            return (f"One cut-off for everyone: the models train on the events before {self.cutoff:%Y-%m-%d %H:%M} "
                    f"UTC and are judged on {truth} {period}, as a deployed recommender lives.")
        crowd = ("Other users' later events stay in training, so the models learn from the future of the crowd, "
                 "which flatters the scores compared with one cut-off for everyone (recommend.split: temporal).")
        if self.kind == "user_temporal":
            short = self.counts.get("short_users", 0)
            return (f"Per user: the last {spec.test_fraction * 100:g}% of each user's interactions by time are their "
                    f"test set and the models train on the earlier ones; they are judged on {truth} in that "
                    f"test set. {short:,} users with fewer than {_min_interactions(spec.test_fraction)} "
                    f"interactions train only. {crowd}")
        return (f"Per user: each user's last {' or '.join(spec.test_events)} item is held out and the models "
                f"train on that user's events before it, without any event on that item. {crowd}")


def default_cutoff(events: EventLog, spec: RecommendParams) -> pd.Timestamp:
    """``spec.cutoff`` at UTC midnight, else the log's end minus ``test_period`` rounded down to midnight."""
    if spec.cutoff is not None:
        return pd.Timestamp(spec.cutoff, tz="UTC")
    return (events.data_end - pd.Timedelta(spec.test_period)).floor("D")


def temporal_split(events: EventLog, spec: RecommendParams, cutoff: pd.Timestamp | None = None,
                   end: pd.Timestamp | None = None, label: str = "recommend cut-off") -> Split:
    """Train on events before ``cutoff``; the truth is ``test_events`` pairs in [cutoff, end).

    Parameters
    ----------
    cutoff : Timestamp, optional
        Default :func:`default_cutoff`.
    end : Timestamp, optional
        Exclusive end of the test period; default the end of the log. A
        validation split for tuning passes ``end`` = the real cut-off and an
        earlier ``cutoff``, so tuning never sees the test period.

    Raises
    ------
    DataError
        If the cut-off leaves no training events or no test interaction.
    """
    cutoff = default_cutoff(events, spec) if cutoff is None else _utc(cutoff)
    end = None if end is None else _utc(end)
    table = quote(events.table)
    train_relation = f"(SELECT * FROM {table} WHERE {TIME} < {timestamp_literal(cutoff)})"
    test_bound = f"{TIME} >= {timestamp_literal(cutoff)}"
    if end is not None:
        test_bound += f" AND {TIME} < {timestamp_literal(end)}"
    test_pairs = (f"SELECT DISTINCT {USER} AS user_id, {ITEM} AS item_id FROM {table} "
                  f"WHERE {test_bound} AND {TYPE} IN ({_types(spec)}) AND {ITEM} IS NOT NULL")
    what = f"{label} {cutoff:%Y-%m-%d %H:%M} UTC"
    train = _train(events, spec, train_relation, cutoff, what)
    return _assemble(events, spec, train, test_pairs, "temporal", cutoff, end, what)


def leave_last_out(events: EventLog, spec: RecommendParams) -> Split:
    """Hold out each user's last ``test_events`` item; train on what came before it (see module notes)."""
    table = quote(events.table)
    what = "leave-last-out split"
    train = _train(events, spec, f"({_before_held_sql(table, spec)})", events.data_end, what)
    held = f"SELECT user_id, item_id FROM ({_held_sql(table, spec)})"
    return _assemble(events, spec, train, held, "leave_last_out", None, None, what)


def _held_sql(table: str, spec: RecommendParams) -> str:
    """Each user's last test-type event (ties broken by item id, so the choice is deterministic)."""
    return (
        f"SELECT {USER} AS user_id, {ITEM} AS item_id, {TIME} AS held_time FROM {table} "
        f"WHERE {TYPE} IN ({_types(spec)}) AND {ITEM} IS NOT NULL "
        f"QUALIFY row_number() OVER (PARTITION BY {USER} ORDER BY {TIME} DESC, {ITEM} DESC) = 1"
    )


def _before_held_sql(table: str, spec: RecommendParams) -> str:
    """The events leave-last-out trains on: all but each user's held-out item and their later events."""
    return (
        f"SELECT e.* FROM {table} AS e LEFT JOIN ({_held_sql(table, spec)}) AS h ON e.{USER} = h.user_id "
        f"WHERE h.user_id IS NULL OR (e.{TIME} < h.held_time AND e.{ITEM} IS DISTINCT FROM h.item_id)"
    )


def user_temporal_split(events: EventLog, spec: RecommendParams) -> Split:
    """Hold out each user's last ``test_fraction`` of interactions by time (see module notes)."""
    what = f"per-user temporal split (recommend.test_fraction {spec.test_fraction:g})"
    train = _train(events, spec, f"({_user_part_sql(events, spec, held=False)})", events.data_end, what)
    test = (f"SELECT DISTINCT {USER} AS user_id, {ITEM} AS item_id FROM ({_user_part_sql(events, spec, held=True)}) "
            f"AS t WHERE {TYPE} IN ({_types(spec)})")
    (short,), = events.rows(f"SELECT count(*) FROM ({_ranked_sql(events, spec)}) AS r "
                            f"WHERE _fk_rank = 1 AND {_held_count(spec)} = 0")
    split = _assemble(events, spec, train, test, "user_temporal", None, None, what)
    return dataclasses.replace(split, counts={**split.counts, "short_users": int(short)})


def _ranked_sql(events: EventLog, spec: RecommendParams) -> str:
    """The log's interactions with each one's rank in its user's time order and the user's count."""
    kinds = ", ".join(literal(t) for t in dict.fromkeys([*(t for t, w in spec.weights.items() if w > 0),
                                                          *spec.test_events]))
    columns = ", ".join(quote(c) for c in events.columns)
    return (f"SELECT {columns}, row_number() OVER (PARTITION BY {USER} ORDER BY {TIME}, {ITEM}, {TYPE}) AS _fk_rank, "
            f"count(*) OVER (PARTITION BY {USER}) AS _fk_n FROM {quote(events.table)} "
            f"WHERE {TYPE} IN ({kinds}) AND {ITEM} IS NOT NULL AND {USER} IS NOT NULL")


# floor(fraction × n) must not lose a whole interaction to rounding: in binary floating point 0.29 × 100 is
# 28.999999999999996, and in exact decimals 0.3333333333333333 (1/3 as Python prints it) × 3 is
# 0.9999999999999999; so the double product is floored with this tolerance, in SQL and in Python alike
_TOLERANCE = 1e-9


def _held_count(spec: RecommendParams) -> str:
    """SQL for the held-out count of a user with ``_fk_n`` interactions; the same double arithmetic as :func:`_held`."""
    return f"CAST(floor(CAST({spec.test_fraction!r} AS DOUBLE) * _fk_n + {_TOLERANCE!r}) AS BIGINT)"


def _held(fraction: float, n: int) -> int:
    """How many of a user's ``n`` interactions are held out: floor(fraction × n + tolerance)."""
    return math.floor(fraction * n + _TOLERANCE)


def _min_interactions(fraction: float) -> int:
    """The fewest interactions of which at least one is held out (by :func:`_held`'s rule, so they always agree)."""
    n = max(1, math.floor((1 - _TOLERANCE) / fraction) - 1)
    while _held(fraction, n) < 1:
        n += 1
    return n


def _user_part_sql(events: EventLog, spec: RecommendParams, *, held: bool) -> str:
    """The held-out (``held``) or the training interactions of the per-user temporal split, in the log's columns."""
    columns = ", ".join(quote(c) for c in events.columns)
    return (f"SELECT {columns} FROM ({_ranked_sql(events, spec)}) AS r "
            f"WHERE _fk_rank {'>' if held else '<='} _fk_n - {_held_count(spec)}")


def make_split(events: EventLog, spec: RecommendParams) -> Split:
    """The split ``spec.split`` names."""
    if spec.split == "temporal":
        return temporal_split(events, spec)
    return user_temporal_split(events, spec) if spec.split == "user_temporal" else leave_last_out(events, spec)


def validation_split(events: EventLog, spec: RecommendParams, split: Split) -> Split:
    """A split for tuning that ends where ``split`` starts, so the test truth is never used to choose.

    Temporal: the ``test_period`` before the cut-off is the validation
    period. Leave-last-out and per-user temporal: the same protocol applied
    to the training events only (each user's last remaining test-type item,
    or the last ``test_fraction`` of their training interactions, is held out).
    """
    if split.kind == "temporal":
        return temporal_split(events, spec, cutoff=split.cutoff - pd.Timedelta(spec.test_period), end=split.cutoff,
                              label="validation cut-off (one recommend.test_period before the test cut-off)")
    if split.kind == "user_temporal":
        return user_temporal_split(events.derive(_user_part_sql(events, spec, held=False)), spec)
    return leave_last_out(events.derive(_before_held_sql(quote(events.table), spec)), spec)


def _train(events: EventLog, spec: RecommendParams, relation: str, as_of: pd.Timestamp, what: str) -> Interactions:
    check_event_types(events, spec)
    train = confidence_matrix(events, spec, relation=relation, as_of=as_of)
    if train.matrix.nnz == 0:
        raise DataError(f"{what}: no training interactions (weighted event types {list(spec.weights)}) "
                        f"before the test period; move recommend.cutoff or shorten recommend.test_period")
    return train


def _assemble(events: EventLog, spec: RecommendParams, train: Interactions, test_pairs_sql: str, kind: str,
              cutoff, end, what: str) -> Split:
    pairs = events.query(test_pairs_sql)
    users = train.user_index(pairs["user_id"].tolist())
    items = train.item_index(pairs["item_id"].tolist())
    known = (users >= 0) & (items >= 0)
    counts = {"test_pairs": len(users), "cold_user_pairs": int((users < 0).sum()),
              "cold_item_pairs": int(((users >= 0) & (items < 0)).sum())}
    cold_users = len(set(pairs["user_id"].to_numpy(dtype=object)[users < 0]))
    users, items = users[known], items[known]
    if spec.exclude_seen:
        # seen = a stored training entry, as the models filter them (structure, not value)
        seen = (np.asarray(stored(train.matrix)[users, items]).ravel() != 0 if len(users)
                else np.zeros(0, dtype=bool))
        counts["seen_pairs"] = int(seen.sum())
        users, items = users[~seen], items[~seen]
    else:
        counts["seen_pairs"] = 0
    truth = sp.csr_matrix((np.ones(len(users), dtype=np.float32), (users, items)), shape=train.shape)
    truth.sum_duplicates()
    truth.data[:] = 1.0
    test_users = np.flatnonzero(np.diff(truth.indptr) > 0)
    counts |= {"kept_pairs": int(truth.nnz), "test_users": len(test_users), "cold_users": cold_users}
    if len(test_users) == 0:
        raise DataError(f"{what}: no test interaction of types {spec.test_events} from a user and item seen in "
                        f"training ({counts['test_pairs']} test pairs before filtering); check recommend.test_events "
                        f"and the test period")
    return Split(train, truth, test_users, kind, cutoff, end, counts)


def _types(spec: RecommendParams) -> str:
    return ", ".join(literal(t) for t in spec.test_events)


def _utc(value) -> pd.Timestamp:
    value = pd.Timestamp(value)
    return value.tz_localize("UTC") if value.tzinfo is None else value.tz_convert("UTC")
