"""Small crafted event logs in the public formats, for end-to-end tests on data that is not the built-in shop.

Each builder writes one file and returns its path. The logs are deterministic for a seed and shaped like
the real exports (column names, value formats, event names), with a real funnel in them: some users view,
fewer cart, fewer buy, so every notebook has something to compute. They are small (a few thousand rows)
so that a whole ``funnelkit run`` on them stays fast.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

START = pd.Timestamp("2026-03-02 00:00:00", tz="UTC")


def _journeys(n_users: int, days: int, seed: int, steps=("view", "cart", "purchase"),
              carry=(0.35, 0.5), n_items: int = 60) -> pd.DataFrame:
    """One row per event: user, session, time (UTC), canonical step name, item, category, price, device.

    Each user makes 1-3 sessions; a session views 1-6 items and goes on to each next step with the
    probability in ``carry`` (desktop users convert more, so a breakdown by device has a difference).
    """
    rng = np.random.default_rng(seed)
    prices = np.round(rng.lognormal(3.5, 0.8, n_items), 2)
    categories = [f"cat.{i % 7}" for i in range(n_items)]
    rows = []
    for user in range(n_users):
        device = "desktop" if rng.random() < 0.5 else "mobile"
        lift = 1.3 if device == "desktop" else 0.8
        for session in range(int(rng.integers(1, 4))):
            t = START + pd.Timedelta(seconds=int(rng.integers(0, days * 86_400)))
            item = int(rng.zipf(1.6) % n_items)
            for _ in range(int(rng.integers(1, 7))):
                item = int(rng.zipf(1.6) % n_items)
                rows.append((user, session, t, steps[0], item, device))
                t += pd.Timedelta(seconds=int(rng.integers(5, 300)))
            for step, p in zip(steps[1:], carry):
                if rng.random() >= min(1.0, p * lift):
                    break
                rows.append((user, session, t, step, item, device))
                t += pd.Timedelta(seconds=int(rng.integers(10, 900)))
    frame = pd.DataFrame(rows, columns=["user", "session", "time", "step", "item", "device"])
    frame["price"] = prices[frame["item"]]
    frame["category"] = [categories[i] for i in frame["item"]]
    return frame.sort_values(["time", "user"], kind="stable").reset_index(drop=True)


def canonical_csv(path: Path, n_users: int = 400, days: int = 28, seed: int = 1) -> Path:
    """Canonical columns with ISO times in UTC (``...Z``) and a ``device`` segment."""
    f = _journeys(n_users, days, seed, steps=("view", "cart", "checkout", "purchase"), carry=(0.35, 0.6, 0.7))
    out = pd.DataFrame({
        "user_id": "u" + f["user"].astype(str), "session_id": "s" + f["user"].astype(str) + "_" + f["session"].astype(str),
        "event_time": f["time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"), "event_type": f["step"],
        "item_id": "i" + f["item"].astype(str), "category": f["category"], "price": f["price"],
        "device": f["device"]})
    out.to_csv(path, index=False)
    return Path(path)


def rees46_csv(path: Path, n_users: int = 400, days: int = 28, seed: int = 2) -> Path:
    """REES46 "eCommerce behavior data from multi category store": no checkout event, ``remove_from_cart``."""
    f = _journeys(n_users, days, seed)
    removes = f[f["step"] == "cart"].sample(frac=0.2, random_state=seed).assign(step="remove_from_cart")
    removes["time"] = removes["time"] + pd.Timedelta(seconds=30)
    f = pd.concat([f, removes]).sort_values(["time", "user"], kind="stable")
    out = pd.DataFrame({
        "event_time": f["time"].dt.strftime("%Y-%m-%d %H:%M:%S UTC"), "event_type": f["step"],
        "product_id": 1_000_000 + f["item"], "category_id": 2_053_013_555_631_882_655 + f["item"] % 7,
        "category_code": ["electronics.smartphone" if i % 3 else "" for i in f["item"]],
        "brand": ["apple" if i % 2 else "samsung" for i in f["item"]], "price": f["price"],
        "user_id": 500_000_000 + f["user"], "user_session": [f"{u:08x}-{s:04x}-4e2b-9c3d-5f6a7b8c9d0e"
                                                             for u, s in zip(f["user"], f["session"])]})
    out.to_csv(path, index=False)
    return Path(path)


def retailrocket_csv(path: Path, n_users: int = 400, days: int = 28, seed: int = 3) -> Path:
    """RetailRocket ``events.csv``: epoch milliseconds, ``addtocart`` and ``transaction``, no prices, no sessions."""
    f = _journeys(n_users, days, seed, steps=("view", "addtocart", "transaction"))
    ms = (f["time"] - pd.Timestamp("1970-01-01", tz="UTC")) // pd.Timedelta(milliseconds=1)
    tx = np.where(f["step"] == "transaction", (np.arange(len(f)) + 4000).astype(str), "")
    out = pd.DataFrame({"timestamp": ms, "visitorid": 200_000 + f["user"], "event": f["step"],
                        "itemid": 300_000 + f["item"], "transactionid": tx})
    out.to_csv(path, index=False)
    return Path(path)


def ga4_csv(path: Path, n_users: int = 400, days: int = 28, seed: int = 4) -> Path:
    """A flattened GA4 export: epoch microseconds, ``view_item`` ... ``purchase``, per-user session numbers."""
    f = _journeys(n_users, days, seed, steps=("view_item", "add_to_cart", "begin_checkout", "purchase"),
                  carry=(0.35, 0.6, 0.7))
    us = (f["time"] - pd.Timestamp("1970-01-01", tz="UTC")) // pd.Timedelta(microseconds=1)
    out = pd.DataFrame({"event_timestamp": us, "event_name": f["step"],
                        "user_pseudo_id": [f"{u}.{1_700_000_000 + u}" for u in f["user"]],
                        "ga_session_id": 1_700_000_000 + f["session"], "item_id": "SKU_" + f["item"].astype(str),
                        "item_category": f["category"], "price": f["price"], "device_category": f["device"]})
    out.to_csv(path, index=False)
    return Path(path)


def clickstream_csv(path: Path, n_users: int = 300, days: int = 60, seed: int = 5) -> Path:
    """A retentioneering-style clickstream: many page events, raw ``cart`` is a cart-page view and
    ``add_to_cart`` the action; no items, no prices. Columns ``user_id, event, timestamp`` (naive, UTC)."""
    rng = np.random.default_rng(seed)
    pages = ["main", "catalog", "product", "search", "delivery_choice", "payment_choice", "lost", "cart"]
    rows = []
    for user in range(n_users):
        for _ in range(int(rng.integers(1, 4))):
            t = START + pd.Timedelta(seconds=int(rng.integers(0, days * 86_400)))
            for _ in range(int(rng.integers(2, 9))):
                rows.append((f"user{user}", t, pages[int(rng.integers(0, len(pages)))]))
                t += pd.Timedelta(seconds=int(rng.integers(3, 200)))
            rows.append((f"user{user}", t, "product"))
            if rng.random() < 0.4:
                t += pd.Timedelta(seconds=int(rng.integers(3, 200)))
                rows.append((f"user{user}", t, "add_to_cart"))
                if rng.random() < 0.5:
                    t += pd.Timedelta(seconds=int(rng.integers(3, 600)))
                    rows.append((f"user{user}", t, "payment_done"))
    out = pd.DataFrame(rows, columns=["user_id", "timestamp", "event"]).sort_values("timestamp", kind="stable")
    out["timestamp"] = out["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S")
    out[["user_id", "event", "timestamp"]].to_csv(path, index=False)
    return Path(path)


def without_columns(source: Path, path: Path, columns: list[str]) -> Path:
    """A copy of a CSV log without some columns (a log without prices, without items, ...)."""
    pd.read_csv(source, dtype=str, keep_default_na=False).drop(columns=columns).to_csv(path, index=False)
    return Path(path)


def ratings_csv(path: Path, n_users: int = 600, n_items: int = 300, seed: int = 6, factors: int = 4,
                mean_ratings: float = 20.0) -> Path:
    """A MovieLens-shaped ratings log: ``userId,movieId,rating,timestamp`` (epoch seconds), no event type.

    Planted structure: each user and item has ``factors`` latent tastes; a user rates items with probability
    ∝ popularity × exp(2 · taste match), where popularity is a power law (Zipf-like, exponent 1 over the
    item rank), and rates them higher the better the match (half stars 0.5-5, as MovieLens). Users rate a
    lognormal number of items (at least 5) in sequence over two years, so each user's later ratings follow
    the same taste as their earlier ones: a model that learns the taste beats popularity on a per-user
    temporal split.
    """
    rng = np.random.default_rng(seed)
    users = rng.normal(size=(n_users, factors)) / np.sqrt(factors)
    items = rng.normal(size=(n_items, factors))
    popularity = 1.0 / np.arange(1, n_items + 1)
    start = int(pd.Timestamp("2019-01-01", tz="UTC").timestamp())
    counts = np.clip(rng.lognormal(np.log(mean_ratings) - 0.5, 1.0, n_users).astype(int), 5, n_items // 2)
    rows = []
    for user, n in enumerate(counts):
        match = items @ users[user]
        p = popularity * np.exp(2.0 * match)
        chosen = rng.choice(n_items, size=n, replace=False, p=p / p.sum())
        t = start + int(rng.integers(0, 365 * 86_400))
        for item in chosen:
            t += int(rng.integers(30, 20 * 86_400))
            stars = np.clip(np.round((2.5 + 0.8 * match[item] + rng.normal(0, 0.7)) * 2) / 2, 0.5, 5.0)
            rows.append((user + 1, item + 1, stars, t))
    out = pd.DataFrame(rows, columns=["userId", "movieId", "rating", "timestamp"]).sort_values(
        ["userId", "timestamp"], kind="stable")
    out.to_csv(path, index=False)
    return Path(path)


def orders_csv(path: Path, n_customers: int = 400, n_skus: int = 120, seed: int = 8) -> Path:
    """An orders log: ``customer,sku,quantity,order_date`` (a date, no time, no zone), no event type.

    Customers belong to one of four planted segments that prefer their own quarter of the catalogue; they
    order 2-12 lines over a year, with quantities 1-6 (more of the skus they prefer).
    """
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 4, n_customers)
    rows = []
    for customer in range(n_customers):
        preferred = np.arange(n_skus)[np.arange(n_skus) % 4 == group[customer]]
        day = pd.Timestamp("2025-01-01") + pd.Timedelta(days=int(rng.integers(0, 60)))
        for _ in range(int(rng.integers(2, 13))):
            own = rng.random() < 0.8
            sku = int(rng.choice(preferred) if own else rng.integers(0, n_skus))
            rows.append((f"C{customer:04d}", f"SKU-{sku:03d}", int(rng.integers(1, 7 if own else 3)),
                         day.strftime("%Y-%m-%d")))
            day += pd.Timedelta(days=int(rng.integers(1, 30)))
    pd.DataFrame(rows, columns=["customer", "sku", "quantity", "order_date"]).to_csv(path, index=False)
    return Path(path)
