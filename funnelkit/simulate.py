"""The built-in shop: a realistic event log with the truth planted in it.

:func:`simulate` writes, for a :class:`~funnelkit.params.SimulationParams`,
a folder holding

``events.parquet``
    The event log in the canonical schema (``funnelkit.schema``) plus the
    segment columns ``device``, ``channel``, ``country``, ``customer_type``.
    Ids are strings; ``event_time`` is a UTC timestamp (µs).
``sessions.parquet``
    One row per session: ``session_id``, ``user_id``, ``start``, ``label``,
    ``incident`` (the session started on an incident day), ``n_views``,
    ``target_item``, the planted probabilities ``p_cart`` (of a cart given
    the views), ``p_checkout`` (given a cart) and ``p_purchase`` (given a
    checkout, the logistic model), ``reached`` (0 = views only … 3 = purchase),
    ``searched`` (the session opened a search page) and ``p_purchase_path``
    (the chance to buy after a checkout given the session's pages, actually
    used; its mean given the segments is ``p_purchase``:
    :mod:`funnelkit.simulate_journeys`).
``labels.parquet``
    ``user_id``, ``label``: ``human``, ``bot``, ``click_farm`` or ``fake_order``.
``items.parquet``, ``user_factors.parquet``
    The catalogue (``item_id``, ``category``, ``price``, ``popularity`` and
    the latent ``f0…`` taste factors) and the users' latent taste factors.
``ground_truth.json``
    The planted model: step coefficients, incident days, sale days,
    anomaly targets, the taste model, and the counts written.

The same parameters always give the same files (and the same fingerprint):
every random draw comes from one seeded generator per block of users.

The model, per human session
----------------------------
* A user has segments drawn once (device, acquisition channel, country,
  ``customer_type`` = ``returning`` if they bought before the simulated period,
  else ``new``). Their first visit (acquisition) falls in the period following
  hour-of-day and day-of-week seasonality with sale-day spikes, and more often
  early in the period: acquisitions decline as the returns of earlier
  visitors grow, so that the expected traffic stays level
  (:func:`acquisition_weights`), as in a log that starts in a shop's steady state.
* The return process (BG/NBD, Fader, Hardie & Lee 2005, on visits): after
  the first visit a user comes back at rate λ per *seasonal day* while
  active, λ ~ Gamma(shape r, rate α) by ``customer_type``
  (:data:`RETURN_RATE`), with at least :data:`MIN_RETURN_GAP` seasonal days
  between visits; after each return they become inactive for good with
  probability p ~ Beta(a, b) (:data:`DROPOUT`). The seasonal clock
  (:func:`seasonal_clock`) runs faster at busy hours and on sale days and
  advances ``days`` over the period, so returns follow the same seasonality.
  Most users visit once; a heavy tail comes back often. Visits after the
  period are cut off (censored), as in a real export.
* A session has one intent: a category c drawn with probability ∝ (its
  number of items) × exp(user factors · category factors / τ_c), so a user
  keeps coming back to the categories of their taste. It views ``1 + NegBin``
  items (heavy tail) of that category, each with probability ∝ popularity ×
  exp(affinity / τ), affinity = user factors · item factors (sampled by
  importance resampling from candidates drawn by popularity within c).
* The last viewed item is the session's *target*. The session adds it to the
  cart with probability ``p_cart = logistic(x·β_cart)``, then checks out with
  ``p_checkout = logistic(x·β_checkout)`` and buys with
  ``p_purchase = logistic(x·β_purchase)``; ``x`` holds segment dummies,
  ``log_price = ln(target price / 50 EUR)`` and ``log_views = ln(views)``
  (coefficients in :data:`PLANTED_STEPS`). On an incident day one step's
  probability is multiplied by :data:`INCIDENT_FACTOR`.
* Between these events the shopper passes through navigation pages (home, search, category, cart view,
  delivery, payment) drawn by a planted Markov chain (:mod:`funnelkit.simulate_journeys`, with its own
  generator, so the views, carts and checkouts above are unchanged by it); who buys after a checkout is
  drawn from ``p_purchase_path``, whose mean given the segments and views is ``p_purchase``.
* Anomalies: bots (scrapers: hundreds of views seconds apart, uniform over
  the catalogue, no carts), a click farm (a burst of new accounts viewing and
  carting the same few items), a fake-order ring (fresh accounts buying the
  same few items within seconds, ``p = 1`` at every step).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import simulate_journeys as journeys
from .params import SimulationParams
from .schema import COLUMNS, EVENTS, SEGMENTS, US_PER_DAY, US_PER_HOUR

SIMULATOR_VERSION = "5"
"""Bump when the generated data changes for the same parameters (invalidates caches)."""

USERS_PER_BLOCK = 100_000
REFERENCE_PRICE = 50.0
TASTE_TEMPERATURE = 0.5
CATEGORY_TEMPERATURE = 0.15
CANDIDATES_PER_VIEW = 32
POPULARITY_EXPONENT = 0.8
INCIDENT_FACTOR = 0.15
VIEWS_NEGBIN = (0.8, 0.8 / (0.8 + 2.5))  # views per session: 1 + NegBin(n, p), mean 3.5, a heavy tail
SALE_DAY_TRAFFIC = 2.0

DEVICES = {"desktop": 0.38, "mobile": 0.55, "tablet": 0.07}
CHANNELS = {"organic": 0.35, "paid_search": 0.22, "social": 0.15, "email": 0.10, "direct": 0.18}
COUNTRIES = {"DE": 0.30, "FR": 0.18, "GB": 0.15, "PL": 0.10, "ES": 0.10, "IT": 0.10, "NL": 0.07}
RETURNING_SHARE = 0.3
CUSTOMER_TYPES = ("new", "returning")

# The planted return process (module docstring): λ ~ Gamma(shape r, rate α) returns per seasonal day by
# customer type (mean r/α: one return every 67 days for new customers, every 7.5 for returning ones; widely
# spread, so a few shoppers come back often), dropout after each return p ~ Beta(a, b) (mean 0.09). Calibrated
# so about two visitors in three come once and the shoppers who do come back bring enough history for the
# recommendation study to learn their taste (its notebook test).
RETURN_RATE: dict[str, dict[str, float]] = {"new": {"r": 0.15, "alpha": 10.0},
                                            "returning": {"r": 0.4, "alpha": 3.0}}
DROPOUT: dict[str, float] = {"a": 0.5, "b": 5.0}
# seasonal days between two visits at least: 6 h at average traffic, more than 1.4 h at the busiest hour
# of a sale day, so a 30-minute inactivity gap always separates sessions
MIN_RETURN_GAP = 0.25

# Planted logistic coefficients per step (baseline: desktop, organic, new).
# Country has no effect on purpose: a regression should find none.
PLANTED_STEPS: dict[str, dict[str, float]] = {
    EVENTS.cart: {
        "intercept": -2.8, "device[mobile]": -0.35, "device[tablet]": -0.15,
        "channel[paid_search]": 0.20, "channel[social]": -0.30, "channel[email]": 0.45, "channel[direct]": 0.10,
        "customer_type[returning]": 0.60, "log_price": -0.30, "log_views": 0.45,
    },
    EVENTS.checkout: {
        "intercept": 0.35, "device[mobile]": -0.45, "device[tablet]": -0.20,
        "customer_type[returning]": 0.50, "log_price": -0.25,
    },
    EVENTS.purchase: {
        "intercept": 0.80, "device[mobile]": -0.30, "channel[email]": 0.30,
        "customer_type[returning]": 0.40, "log_price": -0.20,
    },
}
STEP_OF_PROBABILITY = {EVENTS.cart: "p_cart", EVENTS.checkout: "p_checkout", EVENTS.purchase: "p_purchase"}

# hour-of-day traffic (UTC), low at night, lunch and evening peaks
HOUR_WEIGHTS = np.array([2, 1.2, .8, .6, .6, .8, 1.5, 2.5, 3.5, 4, 4.2, 4.5,
                         5, 5, 4.6, 4.4, 4.5, 4.8, 5.5, 6.5, 7, 6.5, 5, 3.5])
WEEKDAY_WEIGHTS = np.array([1.0, 0.97, 0.97, 1.0, 1.05, 1.1, 1.2])  # Monday first

DEPARTMENTS = ("apparel", "electronics", "home", "beauty", "sports", "toys", "books", "garden", "kitchen", "auto")
KINDS = ("basics", "premium", "accessories", "outlet", "new_in", "bundles")


# --------------------------------------------------------------------------- data set on disk

@dataclass(frozen=True)
class SimulatedDataset:
    """A generated shop on disk (see the module docstring for the files)."""

    directory: Path

    @property
    def events_path(self) -> Path:
        return self.directory / "events.parquet"

    @cached_property
    def ground_truth(self) -> dict:
        return json.loads((self.directory / "ground_truth.json").read_text())

    @property
    def fingerprint(self) -> str:
        """Identifies the generated data: simulator version and parameters (the data is deterministic)."""
        return self.ground_truth["fingerprint"]

    def labels(self) -> pd.DataFrame:
        return pd.read_parquet(self.directory / "labels.parquet")

    def sessions(self) -> pd.DataFrame:
        return pd.read_parquet(self.directory / "sessions.parquet")

    def items(self) -> pd.DataFrame:
        return pd.read_parquet(self.directory / "items.parquet")

    def user_factors(self) -> pd.DataFrame:
        return pd.read_parquet(self.directory / "user_factors.parquet")


def fingerprint(params: SimulationParams) -> str:
    """16 hex digits identifying the data ``params`` generate (the cache folder ignores ``cache_dir``)."""
    content = params.model_dump(mode="json", exclude={"cache_dir"})
    blob = json.dumps({"version": SIMULATOR_VERSION, "params": content}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def ensure_dataset(params: SimulationParams) -> SimulatedDataset:
    """The dataset for ``params`` from the cache folder, generated on first use.

    Generation writes to a temporary folder beside the cache entry and renames
    it into place, so an interrupted run never leaves a half-written dataset
    and concurrent runs do not see each other's partial files.
    """
    target = Path(params.cache_dir) / f"shop-{fingerprint(params)}"
    if (target / "ground_truth.json").is_file():
        return SimulatedDataset(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        simulate(params, scratch)
        try:
            os.rename(scratch, target)
        except OSError:
            if not (target / "ground_truth.json").is_file():  # not a concurrent winner: a real failure
                raise
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)
    return SimulatedDataset(target)


# --------------------------------------------------------------------------- the simulation

def simulate(params: SimulationParams, directory: str | Path) -> SimulatedDataset:
    """Generate the shop described by ``params`` into ``directory`` (created if missing)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    root = np.random.SeedSequence(params.seed)
    shop_seed, human_seed, anomaly_seed = root.spawn(3)
    shop = _Shop.build(params, np.random.default_rng(shop_seed))

    events_writer = _Writer(directory / "events.parquet")
    sessions_writer = _Writer(directory / "sessions.parquet")
    labels, factors, counts = [], [], {"events": 0, "sessions": 0}
    journey_counts = []

    def emit(block: "_Block") -> None:
        events_writer.write(block.events)
        sessions_writer.write(block.sessions)
        labels.append(block.labels)
        counts["events"] += block.events.num_rows
        counts["sessions"] += block.sessions.num_rows
        if block.journeys is not None:
            journey_counts.append(block.journeys)

    first_session = 0
    block_seeds = human_seed.spawn(max(1, -(-params.n_users // USERS_PER_BLOCK)))
    for index, seed in enumerate(block_seeds):
        first_user = index * USERS_PER_BLOCK
        n = min(USERS_PER_BLOCK, params.n_users - first_user)
        block, user_factors = _humans(shop, np.random.default_rng(seed), first_user, n, first_session)
        emit(block)
        factors.append(user_factors)
        first_session += block.sessions.num_rows

    anomalies = _Anomalies(shop, np.random.default_rng(anomaly_seed))
    next_user = params.n_users
    for make in (anomalies.bots, anomalies.click_farm, anomalies.fake_orders):
        block = make(next_user, first_session)
        if block is not None:
            emit(block)
            next_user += block.labels.num_rows
            first_session += block.sessions.num_rows

    events_writer.close()
    sessions_writer.close()
    pq.write_table(pa.concat_tables(labels), directory / "labels.parquet")
    pq.write_table(pa.concat_tables(factors), directory / "user_factors.parquet")
    pq.write_table(shop.items_table(), directory / "items.parquet")
    truth = shop.ground_truth(anomalies) | {"counts": counts | {"users": next_user}}
    visits, expected, capped = (sum(parts) for parts in zip(*journey_counts))
    truth["journeys"] = journeys.planted_rules() | {
        "capped_sessions": int(capped),
        "transitions": journeys.transitions_truth(visits, expected),
        "transitions_about": "complete human sessions (every event inside the period): for each (previous, "
                             "state) its visits and the sum over them of the planted chance of each next state",
    }
    truth["fingerprint"] = fingerprint(params)
    (directory / "ground_truth.json").write_text(json.dumps(truth, indent=2, default=str))
    return SimulatedDataset(directory)


class _Writer:
    """Appends Arrow tables to one Parquet file, a row group per block (bounded memory)."""

    def __init__(self, path: Path):
        self.path, self._writer = path, None

    def write(self, table: pa.Table) -> None:
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, table.schema, compression="zstd")
        self._writer.write_table(table.cast(self._writer.schema))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


@dataclass
class _Block:
    events: pa.Table
    sessions: pa.Table
    labels: pa.Table
    # the planted journey chain's (visits, expected next counts) of the block's complete human sessions, and
    # how many sessions' chance to buy after a checkout was capped (see simulate_journeys)
    journeys: tuple[np.ndarray, np.ndarray, int] | None = None


def _logistic(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _choice(rng: np.random.Generator, weights: dict[str, float], size: int) -> np.ndarray:
    names = np.array(list(weights))
    p = np.array(list(weights.values()))
    return names[rng.choice(len(names), size=size, p=p / p.sum())]


def _ids(prefix: str, numbers: np.ndarray) -> pa.Array:
    """String ids such as ``u123`` built in Arrow (fast for tens of millions)."""
    return pc.binary_join_element_wise(prefix, pc.cast(pa.array(numbers, pa.int64()), pa.string()), "")


def _spaced(groups: np.ndarray, times: np.ndarray, gap: int) -> np.ndarray:
    """Push sorted times within each group so consecutive ones are at least ``gap`` apart:
    t'_i = max(t_i, t'_(i-1) + gap) = i·gap + max_(j<=i)(t_j - j·gap), as a running maximum."""
    counts = np.bincount(groups)
    position = np.arange(len(times)) - np.repeat(np.cumsum(counts) - counts, counts)
    shifted = times - position * gap
    lift = groups.astype(np.int64) * (shifted.max() - shifted.min() + 1)  # keeps groups apart in the running max
    return np.maximum.accumulate(shifted + lift) - lift + position * gap


def _cumsum_within(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Cumulative sums restarting at each group of ``counts`` consecutive values."""
    total = np.cumsum(values)
    ends = np.cumsum(counts)
    before = np.concatenate([[0.0], total[ends[:-1] - 1]]) if len(counts) else np.array([])
    return total - np.repeat(before, counts)


def expected_returns(days: np.ndarray) -> np.ndarray:
    """Expected returns of one new visitor within ``days`` seasonal days of their first visit (both customer types).

    Given λ and p, the n-th return happens when the n-th event of a Poisson(λ) process falls within
    t and the visitor survived n - 1 dropouts: E[N(t) | λ, p] = Σ (1-p)^(n-1) P(Poisson(λt) >= n)
    = (1 - exp(-λpt)) / p; averaged over λ ~ Gamma(r, α): (1 - (α / (α + pt))^r) / p, then over
    p ~ Beta(a, b) numerically. The minimum gap between visits is ignored (it is short).
    """
    from scipy import integrate, stats

    dropout = stats.beta(DROPOUT["a"], DROPOUT["b"])
    shares = {"new": 1 - RETURNING_SHARE, "returning": RETURNING_SHARE}
    out = np.zeros(len(days))
    for kind, share in shares.items():
        r, alpha = RETURN_RATE[kind]["r"], RETURN_RATE[kind]["alpha"]
        for i, t in enumerate(days):
            mean = integrate.quad(lambda p: (1 - (alpha / (alpha + p * t)) ** r) / p * dropout.pdf(p), 0, 1,
                                  limit=200)[0]
            out[i] += share * mean
    return out


def acquisition_weights(days: int) -> np.ndarray:
    """Relative first visits per seasonal day that keep the expected visits per seasonal day level.

    Day d's visits are its acquisitions plus the returns of the visitors acquired on earlier days:
    a(d) = 1 - Σ_(u<d) a(u) R(d - u), with R(k) the expected returns on the k-th day after a first
    visit (:func:`expected_returns`). Normalised to sum to 1.
    """
    per_day = np.diff(expected_returns(np.arange(days + 1, dtype=float)))
    acquired = np.zeros(days)
    for d in range(days):
        acquired[d] = max(1.0 - float(np.dot(acquired[:d], per_day[:d][::-1])), 0.0)
    return acquired / acquired.sum()


def calendar_weights(start: pd.Timestamp, days: int, sale_days) -> np.ndarray:
    """Relative traffic of each day of the period: its weekday's weight, doubled on sale days (sums to 1)."""
    weekdays = np.array([(start + pd.Timedelta(days=d)).dayofweek for d in range(days)])
    weights = WEEKDAY_WEIGHTS[weekdays].astype(float)
    weights[list(sale_days)] *= SALE_DAY_TRAFFIC
    return weights / weights.sum()


def seasonal_clock(start: pd.Timestamp, day_weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The shop's seasonal clock: hour boundaries (µs since the epoch) and the clock's reading at each.

    The clock advances at the expected traffic intensity (hour-of-day × day weight, sale days
    included), scaled so it reads 0 at ``start`` and ``len(day_weights)`` at the end of the period:
    a process at constant rate on this clock has the shop's seasonality in real time. Between
    boundaries it runs at a constant speed, so ``np.interp`` maps both ways exactly.
    """
    days = len(day_weights)
    edges = start.value // 1000 + np.arange(days * 24 + 1, dtype=np.int64) * US_PER_HOUR
    speed = np.repeat(day_weights / day_weights.sum() * days, 24) * np.tile(HOUR_WEIGHTS / HOUR_WEIGHTS.mean(), days)
    return edges, np.concatenate([[0.0], np.cumsum(speed / 24)])


@dataclass
class _Shop:
    """The calendar and the catalogue, shared by every block."""

    params: SimulationParams
    start: pd.Timestamp
    day_weights: np.ndarray
    sale_days: list[int]
    incidents: list[dict]
    categories: np.ndarray  # names
    item_category: np.ndarray
    item_price: np.ndarray
    item_popularity: np.ndarray
    item_factors: np.ndarray
    category_factors: np.ndarray
    # items sorted by category, and the running popularity mass in that order
    items_by_category: np.ndarray
    category_cdf: np.ndarray

    @classmethod
    def build(cls, params: SimulationParams, rng: np.random.Generator) -> "_Shop":
        start = pd.Timestamp(params.start, tz="UTC")
        # one sale day every four weeks, never the first or last days
        sale_days = sorted(int(d) for d in rng.choice(np.arange(3, params.days - 3), size=max(1, params.days // 28),
                                                      replace=False))
        day_weights = calendar_weights(start, params.days, sale_days)
        candidates = np.setdiff1d(np.arange(3, params.days - 3), sale_days)
        incident_days = sorted(int(d) for d in rng.choice(candidates, size=min(params.incident_days, len(candidates)),
                                                          replace=False))
        broken = (EVENTS.checkout, EVENTS.purchase)
        incidents = [{"day": d, "date": str((start + pd.Timedelta(days=d)).date()), "step": broken[i % 2],
                      "factor": INCIDENT_FACTOR} for i, d in enumerate(incident_days)]

        n_cat, f = params.n_categories, params.taste_factors
        names = [f"{DEPARTMENTS[i % len(DEPARTMENTS)]}.{KINDS[(i // len(DEPARTMENTS)) % len(KINDS)]}"
                 + (f"_{i // (len(DEPARTMENTS) * len(KINDS))}" if i >= len(DEPARTMENTS) * len(KINDS) else "")
                 for i in range(n_cat)]
        category_size = rng.dirichlet(np.full(n_cat, 1.5))
        item_category = rng.choice(n_cat, size=params.n_items, p=category_size)
        category_median_price = np.exp(rng.uniform(np.log(8), np.log(400), size=n_cat))
        item_price = np.round(category_median_price[item_category] * rng.lognormal(0, 0.45, params.n_items), 2)
        item_price = np.maximum(item_price, 0.99)
        category_factors = rng.normal(0, 1 / np.sqrt(f), size=(n_cat, f))
        item_factors = category_factors[item_category] + rng.normal(0, 0.5 / np.sqrt(f), size=(params.n_items, f))
        # power-law popularity over a random ranking of the items
        rank = rng.permutation(params.n_items) + 1
        popularity = rank ** -POPULARITY_EXPONENT
        popularity /= popularity.sum()
        items_by_category = np.argsort(item_category, kind="stable")
        return cls(params, start, day_weights / day_weights.sum(), sale_days, incidents, np.array(names),
                   item_category, item_price, popularity, item_factors, category_factors, items_by_category,
                   np.cumsum(popularity[items_by_category]))

    # times -----------------------------------------------------------------
    def session_times(self, rng: np.random.Generator, n: int, day_weights: np.ndarray | None = None) -> np.ndarray:
        """Seasonal session start times in µs since the epoch (days drawn by ``day_weights``, default the shop's)."""
        day_weights = self.day_weights if day_weights is None else day_weights
        day = rng.choice(len(day_weights), size=n, p=day_weights)
        hour = rng.choice(24, size=n, p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum())
        seconds = day * 86400 + hour * 3600 + rng.uniform(0, 3600, size=n)
        return (self.start.value // 1000 + (seconds * 1e6)).astype(np.int64)

    def visits(self, rng: np.random.Generator, customer_type: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every visit of ``len(customer_type)`` users (the planted return process): (user index, start µs),
        sorted by user then time."""
        n = len(customer_type)
        acquisitions = self.day_weights * acquisition_weights(len(self.day_weights))
        first = self.session_times(rng, n, acquisitions / acquisitions.sum())
        returning = customer_type == CUSTOMER_TYPES[1]
        shape, rate = (np.where(returning, RETURN_RATE["returning"][k], RETURN_RATE["new"][k]) for k in ("r", "alpha"))
        return_rate = rng.gamma(shape, 1 / rate)
        dropout = rng.beta(DROPOUT["a"], DROPOUT["b"], size=n)
        edges, clock = seasonal_clock(self.start, self.day_weights)
        now = np.interp(first, edges, clock)
        users, times, active = [np.arange(n)], [first], np.arange(n)
        with np.errstate(divide="ignore"):  # a rate drawn as 0 never returns
            while active.size:
                now[active] += MIN_RETURN_GAP + rng.exponential(size=active.size) / return_rate[active]
                active = active[now[active] < clock[-1]]
                users.append(active)
                times.append(np.interp(now[active], clock, edges).astype(np.int64))
                active = active[rng.uniform(size=active.size) >= dropout[active]]
        user, start = np.concatenate(users), np.concatenate(times)
        order = np.lexsort((start, user))
        return user[order], start[order]

    def day_of(self, times_us: np.ndarray) -> np.ndarray:
        return ((times_us - self.start.value // 1000) // US_PER_DAY).astype(np.int64)

    @property
    def end_us(self) -> int:
        return self.start.value // 1000 + self.params.days * US_PER_DAY

    # items -----------------------------------------------------------------
    @property
    def category_mass(self) -> np.ndarray:
        """Each category's share of popularity (categories without items have none)."""
        return np.bincount(self.item_category, weights=self.item_popularity, minlength=len(self.categories))

    def pick_categories(self, rng: np.random.Generator, user_factors: np.ndarray) -> np.ndarray:
        """One intent category per row of ``user_factors``: ∝ items × exp(user · category factors / τ_c) (Gumbel-max).

        The prior is the category's number of items, not its popularity: one best-seller should not pull every
        shopper into its category."""
        with np.errstate(divide="ignore"):
            log_size = np.log(np.bincount(self.item_category, minlength=len(self.categories)))
        logits = log_size + user_factors @ self.category_factors.T / CATEGORY_TEMPERATURE
        return np.argmax(logits + rng.gumbel(size=logits.shape), axis=1)

    def pick_items(self, rng: np.random.Generator, user_factors: np.ndarray, categories: np.ndarray) -> np.ndarray:
        """One item of ``categories[n]`` per row of ``user_factors``: ∝ popularity × exp(affinity/τ), by resampling
        candidates drawn by popularity within the category with weights exp(affinity/τ) (Gumbel-max)."""
        n = len(user_factors)
        upper = np.cumsum(self.category_mass)[categories]
        lower = upper - self.category_mass[categories]
        draws = lower[:, None] + rng.uniform(size=(n, CANDIDATES_PER_VIEW)) * (upper - lower)[:, None]
        position = np.minimum(np.searchsorted(self.category_cdf, draws, side="right"), len(self.category_cdf) - 1)
        candidates = self.items_by_category[position]
        affinity = np.einsum("nf,nkf->nk", user_factors, self.item_factors[candidates])
        best = np.argmax(affinity / TASTE_TEMPERATURE + rng.gumbel(size=affinity.shape), axis=1)
        return candidates[np.arange(n), best]

    def items_table(self) -> pa.Table:
        columns = {
            COLUMNS.item_id: _ids("i", np.arange(len(self.item_price))),
            COLUMNS.category: pa.array(self.categories[self.item_category]),
            COLUMNS.price: pa.array(self.item_price),
            "popularity": pa.array(self.item_popularity),
        }
        columns |= {f"f{k}": pa.array(self.item_factors[:, k]) for k in range(self.item_factors.shape[1])}
        return pa.table(columns)

    def ground_truth(self, anomalies: "_Anomalies") -> dict:
        return {
            "simulator_version": SIMULATOR_VERSION,
            "params": self.params.model_dump(mode="json", exclude={"cache_dir"}),
            "steps": {
                "model": "P(step | previous step) = logistic(sum of coefficient × feature); baseline segment "
                         "values: device=desktop, channel=organic, customer_type=new; country has no effect",
                "features": {
                    "log_price": f"ln(price of the session's last viewed item / {REFERENCE_PRICE:g})",
                    "log_views": "ln(number of views in the session before the cart)",
                },
                "coefficients": PLANTED_STEPS,
                "probability_columns": STEP_OF_PROBABILITY,
            },
            "returns": {
                "model": "BG/NBD on visits: after the first visit a user returns at rate λ per seasonal day while "
                         "active, λ ~ Gamma(shape r, rate alpha) by customer_type, at least min_gap_days seasonal "
                         "days apart; after each return they become inactive with probability p ~ Beta(a, b)",
                "clock": "seasonal days: the clock runs at the expected traffic intensity (hour of day × day of "
                         "week × sale day), reads 0 at the start and `days` at the end of the period",
                "rate": RETURN_RATE,
                "dropout": DROPOUT,
                "min_gap_days": MIN_RETURN_GAP,
            },
            "incidents": self.incidents,
            "sale_days": [str((self.start + pd.Timedelta(days=d)).date()) for d in self.sale_days],
            "taste": {
                "model": "P(session category c) ∝ n_items_c × exp(user_factors · category_factors_c / "
                         "category_temperature); P(view item i | c) ∝ popularity_i × exp(user_factors · "
                         "item_factors_i / temperature) over the items of c",
                "temperature": TASTE_TEMPERATURE,
                "category_temperature": CATEGORY_TEMPERATURE,
                "factors": self.params.taste_factors,
                "popularity_exponent": POPULARITY_EXPONENT,
                "category_factors": {str(name): [float(x) for x in f]
                                     for name, f in zip(self.categories, self.category_factors)},
            },
            "anomalies": anomalies.truth,
            "segments": {"device": DEVICES, "channel": CHANNELS, "country": COUNTRIES,
                         "customer_type": {"returning": RETURNING_SHARE}},
        }


def _step_logit(step: str, columns: dict[str, np.ndarray]) -> np.ndarray:
    """x·β for one step; ``columns`` maps feature names (as in PLANTED_STEPS) to arrays."""
    coefficients = PLANTED_STEPS[step]
    logit = np.full(len(columns["log_price"]), coefficients["intercept"])
    for name, beta in coefficients.items():
        if name == "intercept":
            continue
        if "[" in name:
            segment, value = name[:-1].split("[")
            logit = logit + beta * (columns[segment] == value)
        else:
            logit = logit + beta * columns[name]
    return logit


def _events_table(user, session, time_us, kind, item, shop: _Shop, segments: dict[str, np.ndarray]) -> pa.Table:
    """Arrow events in the canonical column order; segments are per event."""
    return pa.table({
        COLUMNS.user_id: _ids("u", user),
        COLUMNS.session_id: _ids("s", session),
        COLUMNS.event_time: pa.array(time_us, pa.timestamp("us", tz="UTC")),
        COLUMNS.event_type: pa.array(kind),
        COLUMNS.item_id: _ids("i", item),
        COLUMNS.category: pa.array(shop.categories[shop.item_category[item]]),
        COLUMNS.price: pa.array(shop.item_price[item]),
        **{name: pa.array(values).dictionary_encode() for name, values in segments.items()},
    })


def _sessions_table(session, user, start_us, label, incident, n_views, target, p, reached, searched=None,
                    p_purchase_path=None) -> pa.Table:
    """Sessions of a block; ``searched`` (default none did) and ``p_purchase_path`` (default ``p_purchase``):
    the session opened a search page, and its chance to buy after a checkout given its pages."""
    return pa.table({
        COLUMNS.session_id: _ids("s", session),
        COLUMNS.user_id: _ids("u", user),
        "start": pa.array(start_us, pa.timestamp("us", tz="UTC")),
        "label": pa.array(np.broadcast_to(label, len(session)) if np.ndim(label) == 0 else label, pa.string()),
        "incident": pa.array(incident, pa.bool_()),
        "n_views": pa.array(n_views, pa.int32()),
        "target_item": _ids("i", target),
        **{STEP_OF_PROBABILITY[s]: pa.array(p[k], pa.float64()) for k, s in enumerate(STEP_OF_PROBABILITY)},
        "reached": pa.array(reached, pa.int8()),
        "searched": pa.array(np.zeros(len(session), bool) if searched is None else searched, pa.bool_()),
        "p_purchase_path": pa.array(p[2] if p_purchase_path is None else p_purchase_path, pa.float64()),
    })


def _funnel_events(rng, last_view_us, p, order_gaps_s):
    """Draw each session's cart → checkout → purchase; return (reached, per-step times in µs).

    ``order_gaps_s`` are the median seconds between view→cart, cart→checkout
    and checkout→purchase; actual gaps are lognormal around them.
    """
    n = len(last_view_us)
    reached = np.zeros(n, dtype=np.int8)
    alive = np.ones(n, dtype=bool)
    times, now = [], last_view_us.astype(np.int64)
    for k in range(3):
        alive &= rng.uniform(size=n) < p[k]
        reached += alive
        now = now + (rng.lognormal(np.log(order_gaps_s[k]), 0.8, size=n) * 1e6).astype(np.int64)
        times.append(now.copy())
    return reached, times


def _view_times(rng, starts, n_views, view_gap_median_s) -> np.ndarray:
    """Times (µs) of each session's views: the first at the session start, then lognormal gaps."""
    gaps = rng.lognormal(np.log(view_gap_median_s), 0.9, size=n_views.sum()) * 1e6
    gaps[np.cumsum(n_views) - n_views] = 0  # the first view opens the session
    return np.repeat(starts, n_views) + _cumsum_within(gaps, n_views).astype(np.int64)


def _views_continue(n_views: np.ndarray) -> np.ndarray:
    """Per view (sessions in order), the planted chance of another view after it given the views so far:
    P(N > k | N ≥ k) for the k-th view, N = 1 + NegBin(:data:`VIEWS_NEGBIN`)."""
    from scipy.stats import nbinom

    k = np.arange(n_views.sum()) - np.repeat(np.cumsum(n_views) - n_views, n_views) + 1
    at_least = nbinom.sf(k - 2, *VIEWS_NEGBIN)  # P(N ≥ k) = P(NegBin ≥ k − 1)
    return nbinom.sf(k - 1, *VIEWS_NEGBIN) / at_least


def _cart_chance_per_view(shop, session_segments, view_items, n_views, incident_factor) -> np.ndarray:
    """Per view, the planted chance to add it to the cart were it the session's last: the cart model with
    that item's price and the views so far (``incident_factor`` per session: 1 unless the cart step broke)."""
    session = np.repeat(np.arange(len(n_views)), n_views)
    k = np.arange(len(session)) - np.repeat(np.cumsum(n_views) - n_views, n_views) + 1
    features = {name: values[session] for name, values in session_segments.items()} | {
        "log_price": np.log(shop.item_price[view_items] / REFERENCE_PRICE), "log_views": np.log(k)}
    return _logistic(_step_logit(EVENTS.cart, features)) * incident_factor[session]


def _pages_table(user, session, time_us, kind, segments) -> pa.Table:
    """Navigation page events: no item, category or price."""
    n = len(user)
    return pa.table({
        COLUMNS.user_id: _ids("u", user),
        COLUMNS.session_id: _ids("s", session),
        COLUMNS.event_time: pa.array(time_us, pa.timestamp("us", tz="UTC")),
        COLUMNS.event_type: pa.array(kind.astype(str)),
        COLUMNS.item_id: pa.nulls(n, pa.string()),
        COLUMNS.category: pa.nulls(n, pa.string()),
        COLUMNS.price: pa.nulls(n, pa.float64()),
        **{name: pa.array(values).dictionary_encode() for name, values in segments.items()},
    })


def _assemble(shop, session_users, session_ids, starts, n_views, view_items, view_times,
              reached, step_times, checkout_logged, segments_of_session) -> pa.Table:
    """Events of many sessions: their views, then cart/checkout/purchase on the target item."""
    target = view_items[np.cumsum(n_views) - 1]
    parts_session = [np.repeat(np.arange(len(starts)), n_views)]
    parts_time, parts_kind, parts_item = [view_times], [np.full(len(view_times), EVENTS.view)], [view_items]
    for k, kind in enumerate((EVENTS.cart, EVENTS.checkout, EVENTS.purchase)):
        keep = reached > k
        if kind == EVENTS.checkout:
            keep &= checkout_logged
        parts_session.append(np.flatnonzero(keep))
        parts_time.append(step_times[k][keep])
        parts_kind.append(np.full(keep.sum(), kind))
        parts_item.append(target[keep])
    local = np.concatenate(parts_session)
    events = _events_table(session_users[local], session_ids[local], np.concatenate(parts_time),
                           np.concatenate(parts_kind), np.concatenate(parts_item), shop,
                           {name: values[local] for name, values in segments_of_session.items()})
    # the log is exported at the end of the period: later events of the last sessions are cut off
    return events.filter(pc.less(pc.cast(events[COLUMNS.event_time], pa.int64()), shop.end_us))


def _humans(shop: _Shop, rng: np.random.Generator, first_user: int, n: int, first_session: int):
    params = shop.params
    users = first_user + np.arange(n)
    segments = {
        SEGMENTS.device: _choice(rng, DEVICES, n),
        SEGMENTS.channel: _choice(rng, CHANNELS, n),
        SEGMENTS.country: _choice(rng, COUNTRIES, n),
        SEGMENTS.customer_type: np.where(rng.uniform(size=n) < RETURNING_SHARE, *CUSTOMER_TYPES[::-1]),
    }
    factors = rng.normal(0, 1 / np.sqrt(params.taste_factors), size=(n, params.taste_factors))

    session_user, starts = shop.visits(rng, segments[SEGMENTS.customer_type])
    n_sess = len(starts)
    session_ids = first_session + np.arange(n_sess)

    n_views = 1 + rng.negative_binomial(*VIEWS_NEGBIN, size=n_sess)
    intent = shop.pick_categories(rng, factors[session_user])
    view_items = shop.pick_items(rng, factors[np.repeat(session_user, n_views)], np.repeat(intent, n_views))
    target = view_items[np.cumsum(n_views) - 1]
    session_segments = {name: values[session_user] for name, values in segments.items()}
    features = session_segments | {
        "log_price": np.log(shop.item_price[target] / REFERENCE_PRICE),
        "log_views": np.log(n_views),
    }
    p = np.stack([_logistic(_step_logit(step, features)) for step in STEP_OF_PROBABILITY])
    day = shop.day_of(starts)
    incident = np.zeros(n_sess, dtype=bool)
    cart_factor = np.ones(n_sess)
    for inc in shop.incidents:
        hit = day == inc["day"]
        p[list(STEP_OF_PROBABILITY).index(inc["step"]), hit] *= inc["factor"]
        cart_factor[hit] *= inc["factor"] if inc["step"] == EVENTS.cart else 1.0
        incident |= hit

    view_gap = 35.0
    view_times = _view_times(rng, starts, n_views, view_gap)
    # the navigation pages have their own generator: every draw of the main one stays as it was
    nav_rng = np.random.default_rng([params.seed, first_user, 0x6A6F75726E6579])
    device, channel, customer_type = (session_segments[k] for k in (SEGMENTS.device, SEGMENTS.channel,
                                                                       SEGMENTS.customer_type))
    walks = journeys.draw_walks(nav_rng, device, channel, n_views)
    searched = np.zeros(n_sess, dtype=bool)
    searched[walks.session[walks.searches > 0]] = True
    buy, pay, capped = journeys.purchase_given_checkout(p[2], searched,
                                                        journeys.no_search_chance(device, channel, n_views),
                                                        customer_type)
    # the cart comes after the last view (the target), so every view precedes it
    reached, step_times = _funnel_events(rng, view_times[np.cumsum(n_views) - 1], np.stack([p[0], p[1], buy]),
                                         (30.0, 90.0, 150.0))
    checkout_logged = rng.uniform(size=n_sess) < params.checkout_logged_share
    path = journeys.draw_checkout_path(nav_rng, reached, buy, customer_type)
    rows = journeys.journey_rows(nav_rng, journeys.Sessions(
        device, channel, customer_type, n_views, view_times, _views_continue(n_views),
        _cart_chance_per_view(shop, session_segments, view_items, n_views, cart_factor),
        p[1], pay, checkout_logged, reached, step_times), walks, path)
    inside = (rows["time"] >= shop.start.value // 1000) & (rows["time"] < shop.end_us)
    observed = rows["state"] != journeys.STATES.index(journeys.START)
    complete = np.ones(n_sess, dtype=bool)
    complete[rows["session"][observed & ~inside]] = False
    session_users = users[session_user]
    page = np.flatnonzero(rows["page"] & inside)
    pages = _pages_table(session_users[rows["session"][page]], session_ids[rows["session"][page]],
                         rows["time"][page], np.asarray(journeys.STATES)[rows["state"][page]],
                         {name: values[rows["session"][page]] for name, values in session_segments.items()})
    events = _assemble(shop, session_users, session_ids, starts, n_views, view_items, view_times, reached,
                       step_times, checkout_logged, session_segments)
    events = pa.concat_tables([events, pages.cast(events.schema)])
    sessions = _sessions_table(session_ids, session_users, starts, "human", incident, n_views, target, p, reached,
                               searched, buy)
    labels = pa.table({COLUMNS.user_id: _ids("u", users), "label": pa.array(np.full(n, "human"))})
    user_factors = pa.table({COLUMNS.user_id: _ids("u", users),
                             **{f"f{k}": pa.array(factors[:, k]) for k in range(params.taste_factors)}})
    return _Block(events, sessions, labels, (*journeys.expected_transitions(rows, complete), capped)), user_factors


class _Anomalies:
    """The planted fraud and abuse; ``truth`` describes what was planted."""

    def __init__(self, shop: _Shop, rng: np.random.Generator):
        self.shop, self.rng, self.truth = shop, rng, {}

    def _span(self, start_day: float, days: float, size: int) -> np.ndarray:
        """Uniform times (µs) in ``days`` days from ``start_day`` (any hour: machines do not sleep)."""
        seconds = (start_day + self.rng.uniform(0, days, size)) * 86400
        return (self.shop.start.value // 1000 + seconds * 1e6).astype(np.int64)

    def _block(self, label, first_user, first_session, sessions_per_account, starts, n_views, view_items,
               view_gap_s, p, order_gaps_s, segments) -> _Block:
        shop, rng = self.shop, self.rng
        n_accounts = len(sessions_per_account)
        users = first_user + np.arange(n_accounts)
        session_user = np.repeat(np.arange(n_accounts), sessions_per_account)
        starts = _spaced(session_user, starts[np.lexsort((starts, session_user))], US_PER_HOUR)
        session_users = users[session_user]
        session_ids = first_session + np.arange(len(starts))
        p = np.broadcast_to(np.asarray(p, float)[:, None], (3, len(starts)))
        view_times = _view_times(rng, starts, n_views, view_gap_s)
        reached, step_times = _funnel_events(rng, view_times[np.cumsum(n_views) - 1], p, order_gaps_s)
        session_segments = {name: np.full(len(starts), value) for name, value in segments.items()}
        events = _assemble(shop, session_users, session_ids, starts, n_views, view_items, view_times, reached,
                           step_times, np.ones(len(starts), bool), session_segments)
        target = view_items[np.cumsum(n_views) - 1]
        incident = np.zeros(len(starts), bool)
        sessions = _sessions_table(session_ids, session_users, starts, label, incident, n_views, target, p, reached)
        labels = pa.table({COLUMNS.user_id: _ids("u", users), "label": pa.array(np.full(n_accounts, label))})
        self.truth[label] |= {"accounts": int(n_accounts), "first_user": f"u{first_user}",
                              "sessions": int(len(starts)), "events": int(events.num_rows)}
        return _Block(events, sessions, labels)

    def bots(self, first_user: int, first_session: int) -> _Block | None:
        """Scrapers: many long sessions of views seconds apart, uniform over the catalogue, never buying."""
        shop, rng, n = self.shop, self.rng, self.shop.params.n_bots
        if n == 0:
            return None
        self.truth["bot"] = {"views_per_session": [80, 400], "median_seconds_between_views": 2.0}
        per_account = 3 + rng.poisson(10 * shop.params.days / 56, size=n)
        starts = self._span(0, shop.params.days, per_account.sum())
        n_views = rng.integers(80, 401, size=len(starts))
        items = rng.integers(0, len(shop.item_price), size=n_views.sum())
        return self._block("bot", first_user, first_session, per_account, starts, n_views, items, 2.0, (0, 0, 0),
                           (30.0, 90.0, 150.0), {SEGMENTS.device: "desktop", SEGMENTS.channel: "direct",
                                                 SEGMENTS.country: "NL", SEGMENTS.customer_type: "new"})

    def click_farm(self, first_user: int, first_session: int) -> _Block | None:
        """A burst of new accounts viewing (and sometimes carting) the same few obscure items."""
        shop, rng, n = self.shop, self.rng, self.shop.params.click_farm_accounts
        if n == 0:
            return None
        obscure = np.flatnonzero(shop.item_popularity < np.median(shop.item_popularity))
        targets = np.sort(rng.choice(obscure, size=6, replace=False))
        day = int(rng.integers(shop.params.days // 3, 2 * shop.params.days // 3))
        self.truth["click_farm"] = {"items": [f"i{i}" for i in targets], "start": str((shop.start + pd.Timedelta(days=day)).date()),
                                    "hours": 36, "cart_probability": 0.25}
        per_account = rng.integers(1, 3, size=n)
        starts = self._span(day, 1.5, per_account.sum())
        n_views = rng.integers(4, 13, size=len(starts))
        items = targets[rng.integers(0, len(targets), size=n_views.sum())]
        return self._block("click_farm", first_user, first_session, per_account, starts, n_views, items, 5.0,
                           (0.25, 0, 0), (8.0, 90.0, 150.0), {SEGMENTS.device: "mobile", SEGMENTS.channel: "social",
                                                              SEGMENTS.country: "PL", SEGMENTS.customer_type: "new"})

    def fake_orders(self, first_user: int, first_session: int) -> _Block | None:
        """Fresh accounts buying the same few items within seconds of arriving (``p = 1`` at every step)."""
        shop, rng, n = self.shop, self.rng, self.shop.params.fake_order_accounts
        if n == 0:
            return None
        targets = np.sort(rng.choice(len(shop.item_price), size=3, replace=False))
        day = int(rng.integers(0, shop.params.days // 2))
        self.truth["fake_order"] = {"items": [f"i{i}" for i in targets], "start": str((shop.start + pd.Timedelta(days=day)).date()),
                                    "days": 14}
        per_account = rng.integers(1, 4, size=n)
        starts = self._span(day, min(14, shop.params.days - day), per_account.sum())
        n_views = rng.integers(1, 3, size=len(starts))
        items = np.repeat(targets[rng.integers(0, len(targets), size=len(starts))], n_views)
        return self._block("fake_order", first_user, first_session, per_account, starts, n_views, items, 4.0,
                           (1, 1, 1), (5.0, 8.0, 10.0), {SEGMENTS.device: "desktop", SEGMENTS.channel: "direct",
                                                         SEGMENTS.country: "DE", SEGMENTS.customer_type: "new"})
