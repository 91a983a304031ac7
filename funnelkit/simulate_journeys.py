"""The built-in shop's navigation pages: the planted journey chain (used by :mod:`funnelkit.simulate`).

A human session of the shop (``simulate``'s module docstring) views ``n`` products, then may add the
last one to the cart, check out and buy. This module adds the pages a shopper passes through on the way,
drawn by a planted Markov chain, without touching the product views, carts and checkouts the other
studies' planted truths rest on:

* **Browsing**: before the first product view the shopper lands on ``home``, ``search``, ``category``
  or directly on a product (:data:`LANDING`, by acquisition channel); between two product views they
  go on directly (a recommendation) or through ``search``, ``category`` or ``home``
  (:data:`BETWEEN_VIEWS`, by device). From ``home`` they go to search, a category or a product
  (:data:`FROM_HOME`, by device); from a ``category`` page to search with probability
  :data:`CATEGORY_TO_SEARCH`, else to a product; from ``search`` they search again with probability
  :data:`SEARCH_AGAIN`, else open a product. A walk of pages therefore reads home, category, search…
  in that order, each part optional.
* **Cart and checkout**: after adding to the cart the shopper opens the ``cart_view`` page (always when
  they go on to check out, with probability :data:`CART_VIEW_WITHOUT_CHECKOUT` when they do not).
  After ``checkout`` comes ``delivery``; from there they go back to the cart with probability
  :data:`BACKTRACK` (by customer type) or on to ``payment``; from a cart view *reached from delivery*
  they return to delivery with probability :data:`RETURN_AFTER_BACKTRACK`, else leave — a second-order
  effect: a cart view after delivery leads out of the shop far more often than one after adding to the
  cart, which a first-order chain, seeing only "cart view", pools.
* **Purchase**: from ``payment`` the shopper buys with probability π. The shop's planted logistic
  purchase model stays exact: given the session's segments and views, the chance to buy after a
  checkout is still ``p_purchase``, because π is set so that
  ``P(buy | checkout, path) = p + η·p·(1 − p)·(searched − s̄)``, averaged over the paths, equals ``p``
  (``searched``: the session used search before deciding to buy; ``s̄``: its planted chance to, given
  channel, device and number of views; η = :data:`SEARCH_PURCHASE_EFFECT`). A search raises the chance
  of a later purchase; the backtrack lowers it through the exits from the cart view.

Every draw here comes from its own generator, so the product views, carts and checkouts are the ones
the shop had before these pages existed; only who buys after a checkout is redrawn (with the same
uniform numbers) from the path-dependent probability.

The ground truth (:func:`expected_transitions`) is the planted chain as the studies can estimate it: for
every observed pair (previous page, page) of the complete human sessions, the number of visits and the
sum, over those visits, of the planted probability of each next page given everything observable so far
(hidden decisions such as "will add to cart" enter through their planted probabilities). A first-order
estimate ``count(i → j) / count(i)`` converges to the first-order sums of these; its difference from
them is a martingale average, so a correct interval covers them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .schema import EVENTS

HOME, SEARCH, CATEGORY = "home", "search", "category"
CART_VIEW, DELIVERY, PAYMENT = "cart_view", "delivery", "payment"
PAGES = (HOME, SEARCH, CATEGORY, CART_VIEW, DELIVERY, PAYMENT)
START, EXIT = "start", "exit"
STATES = (START, HOME, SEARCH, CATEGORY, EVENTS.view, EVENTS.cart, CART_VIEW, EVENTS.checkout, DELIVERY, PAYMENT,
          EVENTS.purchase, EXIT)
"""Every state of the planted chain: ``start`` (before the first page), the pages, and the two ends."""

# first page of a session by acquisition channel: search ads land on search results, e-mails and social
# posts on a product, typed-in visits on the home page
LANDING: dict[str, dict[str, float]] = {
    "organic": {HOME: 0.30, SEARCH: 0.20, CATEGORY: 0.25, EVENTS.view: 0.25},
    "paid_search": {SEARCH: 0.55, CATEGORY: 0.10, EVENTS.view: 0.35},
    "social": {HOME: 0.25, EVENTS.view: 0.75},
    "email": {HOME: 0.25, CATEGORY: 0.15, EVENTS.view: 0.60},
    "direct": {HOME: 0.55, SEARCH: 0.20, CATEGORY: 0.15, EVENTS.view: 0.10},
}
# how a shopper gets from one product to the next, by device (phones follow recommendations more)
BETWEEN_VIEWS: dict[str, dict[str, float]] = {
    "desktop": {EVENTS.view: 0.40, SEARCH: 0.30, CATEGORY: 0.20, HOME: 0.10},
    "mobile": {EVENTS.view: 0.55, SEARCH: 0.15, CATEGORY: 0.22, HOME: 0.08},
    "tablet": {EVENTS.view: 0.50, SEARCH: 0.20, CATEGORY: 0.22, HOME: 0.08},
}
FROM_HOME: dict[str, dict[str, float]] = {
    "desktop": {SEARCH: 0.40, CATEGORY: 0.45, EVENTS.view: 0.15},
    "mobile": {SEARCH: 0.25, CATEGORY: 0.55, EVENTS.view: 0.20},
    "tablet": {SEARCH: 0.30, CATEGORY: 0.50, EVENTS.view: 0.20},
}
CATEGORY_TO_SEARCH = 0.15
SEARCH_AGAIN = 0.30
CART_VIEW_WITHOUT_CHECKOUT = 0.50
# new customers go back from the delivery page to their cart twice as often (unexpected delivery costs)
BACKTRACK: dict[str, float] = {"new": 0.12, "returning": 0.06}
RETURN_AFTER_BACKTRACK = 0.45
SEARCH_PURCHASE_EFFECT = 0.5
PAGE_GAP_MEDIAN_S = 15.0  # landing pages before the first product view


def planted_rules() -> dict:
    """The planted chain's rules, for ``ground_truth.json``."""
    return {
        "model": "see funnelkit/simulate_journeys.py: pages between the funnel events by a planted Markov chain; "
                 "P(buy | checkout, path) = p + eta * p * (1 - p) * (searched - searched_expected)",
        "states": list(STATES),
        "landing_by_channel": LANDING,
        "between_views_by_device": BETWEEN_VIEWS,
        "from_home_by_device": FROM_HOME,
        "category_to_search": CATEGORY_TO_SEARCH,
        "search_again": SEARCH_AGAIN,
        "cart_view_without_checkout": CART_VIEW_WITHOUT_CHECKOUT,
        "backtrack_by_customer_type": BACKTRACK,
        "return_after_backtrack": RETURN_AFTER_BACKTRACK,
        "search_purchase_effect": SEARCH_PURCHASE_EFFECT,
    }


def _rows(table: dict[str, dict[str, float]], key: np.ndarray, outcomes: tuple[str, ...]) -> np.ndarray:
    """``table[key[i]][outcome]`` for every row i and outcome: shape (len(key), len(outcomes))."""
    names, inverse = np.unique(np.asarray(key, dtype=object).astype(str), return_inverse=True)
    return np.array([[table[name].get(o, 0.0) for o in outcomes] for name in names]).reshape(-1, len(outcomes))[inverse]


def _pick(rng: np.random.Generator, table: dict[str, dict[str, float]], key: np.ndarray,
          outcomes: tuple[str, ...]) -> np.ndarray:
    """One of ``outcomes`` per row, drawn with the probabilities ``table[key]``."""
    cdf = np.cumsum(_rows(table, key, outcomes), axis=1)
    chosen = (rng.uniform(size=len(key))[:, None] > cdf[:, :-1]).sum(axis=1)
    return np.asarray(outcomes, dtype=object)[chosen]


def _prob(table: dict[str, dict[str, float]], key: np.ndarray, outcome: str) -> np.ndarray:
    return _rows(table, key, (outcome,))[:, 0]


@dataclass
class Walks:
    """Walks of browsing pages, one per (session, slot): slot 0 before the first view, slot k before view k+1.

    Each walk is ``home`` (or not), ``category`` (or not), then ``searches`` search pages.
    """

    session: np.ndarray
    slot: np.ndarray
    home: np.ndarray
    category: np.ndarray
    searches: np.ndarray

    @property
    def length(self) -> np.ndarray:
        return self.home.astype(int) + self.category.astype(int) + self.searches


def draw_walks(rng: np.random.Generator, device: np.ndarray, channel: np.ndarray, n_views: np.ndarray) -> Walks:
    """The browsing pages of every session (``device``, ``channel``, ``n_views`` per session)."""
    session = np.repeat(np.arange(len(n_views)), n_views)
    slot = np.arange(len(session)) - np.repeat(np.cumsum(n_views) - n_views, n_views)
    landing = slot == 0
    first = np.empty(len(session), dtype=object)
    outcomes = (EVENTS.view, SEARCH, CATEGORY, HOME)
    first[landing] = _pick(rng, LANDING, channel[session[landing]], outcomes)
    first[~landing] = _pick(rng, BETWEEN_VIEWS, device[session[~landing]], outcomes)
    home = first == HOME
    after_home = np.full(len(session), EVENTS.view, dtype=object)
    after_home[home] = _pick(rng, FROM_HOME, device[session[home]], (SEARCH, CATEGORY, EVENTS.view))
    category = (first == CATEGORY) | (after_home == CATEGORY)
    searched = (first == SEARCH) | (after_home == SEARCH) | (category & (rng.uniform(size=len(session))
                                                                        < CATEGORY_TO_SEARCH))
    searches = searched * rng.geometric(1 - SEARCH_AGAIN, size=len(session))
    return Walks(session, slot, home, category, searches)


def no_search_chance(device: np.ndarray, channel: np.ndarray, n_views: np.ndarray) -> np.ndarray:
    """Planted chance that a session with these segments and views never opens a search page."""
    def walk(first_table, key, device):
        via_home = _prob(FROM_HOME, device, EVENTS.view) + _prob(FROM_HOME, device, CATEGORY) * (1 - CATEGORY_TO_SEARCH)
        return (_prob(first_table, key, EVENTS.view) + _prob(first_table, key, CATEGORY) * (1 - CATEGORY_TO_SEARCH)
                + _prob(first_table, key, HOME) * via_home)
    return walk(LANDING, channel, device) * walk(BETWEEN_VIEWS, device, device) ** (n_views - 1)


def _backtrack(customer_type: np.ndarray) -> np.ndarray:
    return np.array([BACKTRACK[str(t)] for t in customer_type]) if len(customer_type) else np.zeros(0)


def purchase_given_checkout(p_purchase: np.ndarray, searched: np.ndarray, no_search: np.ndarray,
                            customer_type: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """(P(buy | checkout, path), π at payment, sessions capped) per session; see the module docstring.

    P(buy | checkout, path) is capped at the chance to reach payment (π ≤ 1), which would bend the planted
    logistic model for those sessions: ``ground_truth.json`` records how many were capped (none on the default
    shop: its highest P(buy | checkout, path) is 0.928 against a new customer's chance of 0.930 to reach payment).
    """
    b = _backtrack(customer_type)
    reach = (1 - b) / (1 - b * RETURN_AFTER_BACKTRACK)
    p = p_purchase
    buy = p + SEARCH_PURCHASE_EFFECT * p * (1 - p) * (searched - (1 - no_search))
    capped = int((buy > reach).sum())
    buy = np.minimum(buy, reach)
    return buy, buy / reach, capped


@dataclass
class CheckoutPath:
    """The cart and checkout pages of every session: a cart view after the cart (or not), then for sessions
    that checked out ``delivery, (cart_view, delivery) × returns, last`` with ``last`` payment or cart view."""

    cart_view: np.ndarray
    returns: np.ndarray
    leaves_from_cart_view: np.ndarray


def draw_checkout_path(rng: np.random.Generator, reached: np.ndarray, buy: np.ndarray,
                       customer_type: np.ndarray) -> CheckoutPath:
    """Pages given how far each session went (``reached``: 0 views … 3 purchase) and P(buy | checkout, path).

    Drawing the outcome first and the pages given it is the forward chain of the module docstring: the
    returns to delivery are geometric whatever the end, and a shopper who checked out and did not buy left
    from a cart view reached from delivery with probability ``P(leave there) / (1 − P(buy))``.
    """
    n = len(reached)
    b = _backtrack(customer_type)
    c = RETURN_AFTER_BACKTRACK
    cart_view = (reached >= 2) | ((reached == 1) & (rng.uniform(size=n) < CART_VIEW_WITHOUT_CHECKOUT))
    returns = rng.geometric(1 - b * c, size=n) - 1
    leave_at_cart_view = b * (1 - c) / (1 - b * c)
    with np.errstate(divide="ignore", invalid="ignore"):
        leaves = (reached == 2) & (rng.uniform(size=n) < leave_at_cart_view / (1 - buy))
    return CheckoutPath(cart_view, np.where(reached >= 2, returns, 0), leaves)


_CODE = {state: code for code, state in enumerate(STATES)}
_NO_PREVIOUS = len(STATES)  # the previous-state code of the start row


@dataclass
class Sessions:
    """What the journey needs of a block's human sessions (one entry per session unless said)."""

    device: np.ndarray
    channel: np.ndarray
    customer_type: np.ndarray
    n_views: np.ndarray
    view_times: np.ndarray  # per view, sessions in order
    view_continue: np.ndarray  # per view: planted chance of another view after it (given the views so far)
    view_cart: np.ndarray  # per view: planted chance to add to the cart if it is the last view
    p_checkout: np.ndarray
    pay: np.ndarray  # π: chance to buy from the payment page
    checkout_logged: np.ndarray
    reached: np.ndarray
    step_times: list  # cart, checkout, purchase times (µs), drawn for every session


def _vector(n: int, **chances) -> np.ndarray:
    out = np.zeros((n, len(STATES)))
    for state, chance in chances.items():
        out[:, _CODE[state]] = chance
    return out


def _table_vectors(table: dict[str, dict[str, float]], key: np.ndarray) -> np.ndarray:
    return _rows(table, key, STATES)


def journey_rows(rng: np.random.Generator, s: Sessions, walks: Walks, path: CheckoutPath) -> dict[str, np.ndarray]:
    """Every observed state of every session in time order, with the planted chance of each next state.

    Returns arrays ``session``, ``time`` (µs), ``state`` (code into :data:`STATES`), ``page`` (an event
    this module adds, not a funnel event), ``chances`` (rows × states: the planted chance of each next state;
    zero for the purchase row).
    """
    n = len(s.n_views)
    first_view = np.cumsum(s.n_views) - s.n_views
    parts = []

    def part(session, time, state, chances, page):
        parts.append((session, np.asarray(time, np.int64), np.broadcast_to(np.asarray(state), len(session)),
                      chances, np.broadcast_to(page, len(session))))

    sessions = np.arange(n)
    part(sessions, s.view_times[first_view] - 10**12, _CODE[START], _table_vectors(LANDING, s.channel), False)

    # browsing walks: home, category, search × k, spread over the gap before their product view
    length = walks.length
    walk = np.repeat(np.arange(len(length)), length)
    j = np.arange(len(walk)) - np.repeat(np.cumsum(length) - length, length)
    home_pages = walks.home[walk].astype(int)
    kind = np.where(j < home_pages, _CODE[HOME],
                    np.where(j < home_pages + walks.category[walk], _CODE[CATEGORY], _CODE[SEARCH]))
    session, slot = walks.session[walk], walks.slot[walk]
    view_at = s.view_times[first_view[session] + slot]
    landing_gap = rng.lognormal(np.log(PAGE_GAP_MEDIAN_S), 0.5, size=n) * 1e6
    previous_view = s.view_times[np.maximum(first_view[session] + slot - 1, 0)]
    before = np.where(slot == 0, view_at - (length[walk] - j) * landing_gap[session],
                      previous_view + (j + 1) / (length[walk] + 1) * (view_at - previous_view))
    chances = np.zeros((len(walk), len(STATES)))
    home = kind == _CODE[HOME]
    chances[home] = _table_vectors(FROM_HOME, s.device[session[home]])
    chances[kind == _CODE[CATEGORY]] = _vector(1, search=CATEGORY_TO_SEARCH, view=1 - CATEGORY_TO_SEARCH)
    chances[kind == _CODE[SEARCH]] = _vector(1, search=SEARCH_AGAIN, view=1 - SEARCH_AGAIN)
    part(session, before, kind, chances, True)

    # product views: another product (by the between-views route) or stop, then cart or leave
    view_session = np.repeat(sessions, s.n_views)
    h, q = s.view_continue, s.view_cart
    chances = h[:, None] * _table_vectors(BETWEEN_VIEWS, s.device[view_session])
    chances[:, _CODE[EVENTS.cart]] = (1 - h) * q
    chances[:, _CODE[EXIT]] = (1 - h) * (1 - q)
    part(view_session, s.view_times, _CODE[EVENTS.view], chances, False)

    p, v = s.p_checkout, CART_VIEW_WITHOUT_CHECKOUT
    t_cart, t_checkout, t_purchase = s.step_times
    carted = np.flatnonzero(s.reached >= 1)
    on = p[carted] + (1 - p[carted]) * v
    part(carted, t_cart[carted], _CODE[EVENTS.cart], _vector(len(carted), cart_view=on, exit=1 - on), False)
    looked = np.flatnonzero(path.cart_view)
    goes = p[looked] / (p[looked] + (1 - p[looked]) * v)
    logged = s.checkout_logged[looked]
    part(looked, (t_cart[looked] + t_checkout[looked]) // 2, _CODE[CART_VIEW],
         _vector(len(looked), checkout=goes * logged, delivery=goes * ~logged, exit=1 - goes), True)
    checked = np.flatnonzero((s.reached >= 2) & s.checkout_logged)
    part(checked, t_checkout[checked], _CODE[EVENTS.checkout], _vector(len(checked), delivery=1.0), False)

    # checkout pages: delivery, (cart view, delivery) × returns, then payment or a last cart view
    went = np.flatnonzero(s.reached >= 2)
    pages = 2 * path.returns[went] + 2
    session = np.repeat(went, pages)
    j = np.arange(len(session)) - np.repeat(np.cumsum(pages) - pages, pages)
    last = j == np.repeat(pages, pages) - 1
    kind = np.where(last, np.where(path.leaves_from_cart_view[session], _CODE[CART_VIEW], _CODE[PAYMENT]),
                    np.where(j % 2 == 0, _CODE[DELIVERY], _CODE[CART_VIEW]))
    time = t_checkout[session] + (j + 1) / (np.repeat(pages, pages) + 1) * (t_purchase[session] - t_checkout[session])
    b = _backtrack(s.customer_type[session])
    c = RETURN_AFTER_BACKTRACK
    chances = np.zeros((len(session), len(STATES)))
    at = kind == _CODE[DELIVERY]
    chances[at] = _vector(at.sum(), cart_view=b[at], payment=1 - b[at])
    at = kind == _CODE[CART_VIEW]
    chances[at] = _vector(at.sum(), delivery=c, exit=1 - c)
    at = kind == _CODE[PAYMENT]
    chances[at] = _vector(at.sum(), purchase=s.pay[session[at]], exit=1 - s.pay[session[at]])
    part(session, time, kind, chances, True)

    bought = np.flatnonzero(s.reached >= 3)
    part(bought, t_purchase[bought], _CODE[EVENTS.purchase], np.zeros((len(bought), len(STATES))), False)

    session, time, state, chances, page = (np.concatenate([p_[k] for p_ in parts]) for k in range(5))
    order = np.lexsort((time, session))
    return {"session": session[order], "time": time[order], "state": state[order].astype(np.int64),
            "chances": chances[order], "page": page[order]}


def expected_transitions(rows: dict[str, np.ndarray], complete: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(visits, expected) of the rows of ``complete`` sessions, by (previous state, state).

    ``visits[i, j]``: how often state j was seen right after state i (i = len(STATES): j is the start);
    ``expected[i, j, k]``: the sum of the planted chances of k next over those visits.
    """
    keep = complete[rows["session"]] & (rows["state"] != _CODE[EVENTS.purchase])
    session, state = rows["session"], rows["state"]
    previous = np.where(np.r_[True, session[1:] != session[:-1]], _NO_PREVIOUS, np.r_[0, state[:-1]])
    size = len(STATES) + 1
    visits = np.zeros((size, len(STATES)))
    expected = np.zeros((size, len(STATES), len(STATES)))
    np.add.at(visits, (previous[keep], state[keep]), 1)
    np.add.at(expected, (previous[keep], state[keep]), rows["chances"][keep])
    return visits, expected


def transitions_truth(visits: np.ndarray, expected: np.ndarray) -> list[dict]:
    """The planted second-order chain as JSON records: previous state, state, visits, expected next counts."""
    records = []
    for i, j in zip(*np.nonzero(visits)):
        records.append({"previous": STATES[i] if i < len(STATES) else None, "state": STATES[j],
                        "visits": int(visits[i, j]),
                        "expected_next": {STATES[k]: float(x) for k, x in enumerate(expected[i, j]) if x > 0}})
    return records
