"""Train/test splits of the event log that leak nothing from the test truth into training.

Two protocols:

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

Users and items absent from training cannot be scored: their test pairs are
dropped and counted. With ``exclude_seen`` the truth also drops items the
user already interacted with in training, matching the recommendations,
which exclude them.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import DataError, ParamsError
from ..eventlog import EventLog, literal, quote, timestamp_literal
from ..params import RecommendParams
from .matrix import ITEM, TIME, TYPE, USER, Interactions, confidence_matrix, event_types, stored

_names = itertools.count()


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
        ``temporal`` or ``leave_last_out``.
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
        }
        return pd.DataFrame({"what": [labels[k] for k in labels], "count": [self.counts[k] for k in labels]})


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


def make_split(events: EventLog, spec: RecommendParams) -> Split:
    """The split ``spec.split`` names."""
    return temporal_split(events, spec) if spec.split == "temporal" else leave_last_out(events, spec)


def validation_split(events: EventLog, spec: RecommendParams, split: Split) -> Split:
    """A split for tuning that ends where ``split`` starts, so the test truth is never used to choose.

    Temporal: the ``test_period`` before the cut-off is the validation
    period. Leave-last-out: the same protocol applied to the training
    events only (each user's last remaining test-type item is held out).
    """
    if split.kind == "temporal":
        return temporal_split(events, spec, cutoff=split.cutoff - pd.Timedelta(spec.test_period), end=split.cutoff,
                              label="validation cut-off (one recommend.test_period before the test cut-off)")
    return leave_last_out(events.derive(_before_held_sql(quote(events.table), spec)), spec)


def _train(events: EventLog, spec: RecommendParams, relation: str, as_of: pd.Timestamp, what: str) -> Interactions:
    present = event_types(events)
    if not present & set(spec.test_events):
        raise ParamsError(f"recommend.test_events: none of {spec.test_events} occurs in the log, whose event "
                          f"types are {sorted(present)}")
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
