"""Brute-force data preparation of the recommendation study, as plain loops over event rows.

Slow on purpose and independent of DuckDB: every function walks the raw rows
of a canonical DataFrame (``event_time`` as tz-aware Timestamps) and follows
the documented rules of ``funnelkit.recommend.matrix`` and
``funnelkit.recommend.split`` literally, so the tests can compare the SQL
against it cell by cell.
"""
from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pandas as pd

from funnelkit.schema import COLUMNS, EVENTS

U, I, T, E = COLUMNS.user_id, COLUMNS.item_id, COLUMNS.event_time, COLUMNS.event_type


def _records(frame: pd.DataFrame) -> list[dict]:
    rows = frame.to_dict("records")
    for r in rows:
        r[T] = pd.Timestamp(r[T])
        if r[T].tzinfo is None:
            r[T] = r[T].tz_localize("UTC")
    return rows


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def pair_weights(frame: pd.DataFrame, weights: dict, *, half_life=None, as_of=None) -> dict:
    """{(user, item): Σ weight × 0.5 ** (max(age, 0) / half_life)} over rows with an item and a weighted type."""
    out: dict = {}
    for r in _records(frame):
        weight = weights.get(r[E], 0.0)
        if weight <= 0 or _missing(r[I]):
            continue
        factor = 1.0
        if half_life is not None:
            age = (pd.Timestamp(as_of) - r[T]) / pd.Timedelta(half_life)
            factor = 0.5 ** max(age, 0.0)
        key = (str(r[U]), str(r[I]))
        out[key] = out.get(key, 0.0) + weight * factor
    return out


def apply_minimums(pairs: dict, min_item: int, min_user: int) -> tuple[dict, dict]:
    """Items with fewer than ``min_item`` distinct users go first, then users with fewer than ``min_user`` kept items."""
    users_per_item = Counter(item for _, item in pairs)
    kept = {p: w for p, w in pairs.items() if users_per_item[p[1]] >= min_item}
    items_per_user = Counter(user for user, _ in kept)
    kept = {p: w for p, w in kept.items() if items_per_user[p[0]] >= min_user}
    removed = {
        "users": len({u for u, _ in pairs}) - len({u for u, _ in kept}),
        "items": len({i for _, i in pairs}) - len({i for _, i in kept}),
        "pairs": len(pairs) - len(kept),
    }
    return kept, removed


def confidence(frame: pd.DataFrame, spec, *, as_of=None):
    """Dense matrix, sorted user ids, sorted item ids and the ``removed`` counts (``weighting='none'``)."""
    pairs = pair_weights(frame, spec.weights, half_life=spec.decay_half_life, as_of=as_of)
    kept, removed = apply_minimums(pairs, spec.min_item_interactions, spec.min_user_interactions)
    user_ids = sorted({u for u, _ in kept})
    item_ids = sorted({i for _, i in kept})
    dense = np.zeros((len(user_ids), len(item_ids)))
    row = {u: n for n, u in enumerate(user_ids)}
    col = {i: n for n, i in enumerate(item_ids)}
    for (u, i), w in kept.items():
        dense[row[u], col[i]] = w
    return dense, np.array(user_ids, dtype=str), np.array(item_ids, dtype=str), removed


def before(frame: pd.DataFrame, cutoff) -> pd.DataFrame:
    """Rows strictly before ``cutoff``, chosen one by one."""
    keep = [r[T] < pd.Timestamp(cutoff) for r in _records(frame)]
    return frame[np.array(keep, dtype=bool)]


def period_pairs(frame: pd.DataFrame, types, start, end=None) -> set:
    """Distinct (user, item) of rows of ``types`` with an item in [start, end)."""
    out = set()
    for r in _records(frame):
        if r[E] in types and not _missing(r[I]) and r[T] >= pd.Timestamp(start) and (
                end is None or r[T] < pd.Timestamp(end)):
            out.add((str(r[U]), str(r[I])))
    return out


def truth(test_pairs: set, dense: np.ndarray, user_ids, item_ids, exclude_seen: bool) -> tuple[set, dict]:
    """The evaluated truth pairs and the counts, following the split's documented drops."""
    users, items = list(user_ids), list(item_ids)
    counts = Counter(test_pairs=len(test_pairs))
    kept, cold_users = set(), set()
    for u, i in test_pairs:
        if u not in users:
            counts["cold_user_pairs"] += 1
            cold_users.add(u)
        elif i not in items:
            counts["cold_item_pairs"] += 1
        elif exclude_seen and dense[users.index(u), items.index(i)] != 0:
            counts["seen_pairs"] += 1
        else:
            kept.add((u, i))
    counts["kept_pairs"] = len(kept)
    counts["test_users"] = len({u for u, _ in kept})
    counts["cold_users"] = len(cold_users)
    names = ("test_pairs", "cold_user_pairs", "cold_item_pairs", "seen_pairs", "kept_pairs", "test_users",
             "cold_users")
    return kept, {n: int(counts[n]) for n in names}


def held_out(frame: pd.DataFrame, types) -> dict:
    """{user: (item, time)} of each user's last row of ``types`` with an item; ties go to the larger item id."""
    best: dict = {}
    for r in _records(frame):
        if r[E] not in types or _missing(r[I]):
            continue
        u, candidate = str(r[U]), (r[T], str(r[I]))
        if u not in best or candidate > best[u]:
            best[u] = candidate
    return {u: (item, time) for u, (time, item) in best.items()}


def leave_last_out_training(frame: pd.DataFrame, types) -> pd.DataFrame:
    """Rows kept for training: all of users without a held-out item; for the others, rows before
    the held-out time that are not on the held-out item."""
    held = held_out(frame, types)
    keep = []
    for r in _records(frame):
        u = str(r[U])
        if u not in held:
            keep.append(True)
            continue
        item, time = held[u]
        keep.append(r[T] < time and (_missing(r[I]) or str(r[I]) != item))
    return frame[np.array(keep, dtype=bool)]


def cart_abandoners(frame: pd.DataFrame, until, window=pd.Timedelta(days=7)) -> list[str]:
    """Users of the ordered user funnel view → cart → checkout → purchase (events before ``until``)
    who entered with their first view, carted at or after it within ``window`` of entry, did not
    check out at or after that cart within the window, and whose window ended by ``until``."""
    until = pd.Timestamp(until)
    by_user: dict = {}
    for r in _records(frame):
        if r[T] < until:
            by_user.setdefault(str(r[U]), []).append((r[T], r[E]))
    out = []
    for user, events in sorted(by_user.items()):
        views = [t for t, e in events if e == EVENTS.view]
        if not views:
            continue
        entry = min(views)
        closes = entry + window
        carts = [t for t, e in events if e == EVENTS.cart and entry <= t <= closes]
        if not carts:
            continue
        cart = min(carts)
        checkouts = [t for t, e in events if e == EVENTS.checkout and cart <= t <= closes]
        if not checkouts and closes <= until:
            out.append(user)
    return out
