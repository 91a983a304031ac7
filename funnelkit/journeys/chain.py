"""Absorbing Markov chains of shop sessions, solved from transition counts and batched over replicates.

A session is a walk over transient page states (``start``, home, search, view, cart, ...) that ends in one of
``a`` absorbing outcomes (e.g. ``purchase``, ``exit``). Every array here has last two axes ``(k, k + a)``:
row ``i`` is transient state ``i``; the columns are the ``k`` transient states followed by the ``a``
absorbing states, in the caller's order, **the last absorbing column being exit** (where states without
data and removed states are sent). Leading axes are batch axes: bootstrap replicates of shape
``(500, k, k + a)`` are solved in one call. ``start`` is an ordinary transient state (the landing
distribution); functions that need it take its index.

With ``Q = P[..., :, :k]`` (transient to transient) and ``R = P[..., :, k:]`` (transient to absorbing):

- ``N = (I - Q)^-1``, the fundamental matrix: ``N[i, j]`` is the expected number of visits to ``j`` of a
  walk from ``i`` before absorption (the walk's first state counts as a visit);
- ``B = N R``: ``B[i, j]`` is the probability that a walk from ``i`` ends in absorbing state ``j``;
- ``t = N 1``: ``t[i]`` is the expected number of transient states visited from ``i``, ``i`` included.

References
----------
.. [1] Kemeny, J. G. and Snell, J. L. (1960). *Finite Markov Chains*, ch. III (Absorbing Markov chains).
       Van Nostrand.
.. [2] Grinstead, C. M. and Snell, J. L. (1997). *Introduction to Probability*, 2nd ed., §11.2
       (Absorbing Markov chains). American Mathematical Society.
.. [3] Anderl, E., Becker, I., von Wangenheim, F. and Schumann, J. H. (2016). Mapping the customer journey:
       lessons learned from graph-based online attribution modeling. *International Journal of Research in
       Marketing* 33(3), 457-474.
"""
from __future__ import annotations

import operator
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike


def transition_probabilities(counts: ArrayLike) -> np.ndarray:
    """Row-normalise transition counts into transition probabilities.

    Parameters
    ----------
    counts : array_like, shape (..., k, k + a)
        Non-negative numbers of observed transitions from each transient state (rows) to each transient
        state, then each absorbing state (columns; the last one is exit).

    Returns
    -------
    P : ndarray, shape (..., k, k + a)
        ``P[..., i, j] = counts[..., i, j] / counts[..., i, :].sum()``. A row without any count (a state
        never left within the data) goes to exit with probability 1: such a state is seen only as the last
        page of sessions, and a session that ends on a page has left the shop from it.

    Raises
    ------
    ValueError
        If the shape is not ``(..., k, k + a)`` with ``k, a >= 1``, or a count is negative or not finite.
    """
    counts = np.asarray(counts, dtype=np.float64)
    _sizes(counts)
    if not np.isfinite(counts).all() or (counts < 0).any():
        raise ValueError("transition counts must be finite and non-negative")
    totals = counts.sum(axis=-1, keepdims=True)
    never_left = totals == 0
    probabilities = counts / np.where(never_left, 1.0, totals)
    probabilities[..., -1] += never_left[..., 0]
    return probabilities


def fundamental_matrix(P: ArrayLike) -> np.ndarray:
    """Fundamental matrix ``N = (I - Q)^-1`` of the absorbing chain, ``Q = P[..., :, :k]``.

    Parameters
    ----------
    P : array_like, shape (..., k, k + a)
        Transition probabilities (see :func:`transition_probabilities`).

    Returns
    -------
    N : ndarray, shape (..., k, k)
        ``N[..., i, j]`` is the expected number of visits to transient state ``j`` of a walk from ``i``
        before absorption, the first state counting as a visit (so ``N[i, i] >= 1``); equivalently
        ``N = sum_{m >= 0} Q^m`` (Kemeny & Snell 1960, ch. III). Exactly 0 where ``j`` cannot be reached from ``i``.

    Raises
    ------
    ValueError
        If some transient states never reach an absorbing state (a loop that is never left, which makes
        ``I - Q`` singular); the message names them.
    """
    system = _transient_system(P)
    return np.where(system.reaches, np.linalg.solve(system.identity_minus_q, np.eye(system.k)), 0.0)


def absorption_probabilities(P: ArrayLike) -> np.ndarray:
    """Probabilities ``B = N R`` that a walk from each transient state ends in each absorbing state.

    Parameters
    ----------
    P : array_like, shape (..., k, k + a)
        Transition probabilities.

    Returns
    -------
    B : ndarray, shape (..., k, a)
        ``B[..., i, j]`` is the probability that a walk from transient state ``i`` is absorbed in absorbing
        column ``j``; each row sums to 1, and exactly 0 where ``j`` cannot be reached from ``i``. Computed by
        solving ``(I - Q) B = R``, which is more accurate than forming ``N`` first.

    Raises
    ------
    ValueError
        As :func:`fundamental_matrix`.
    """
    system = _transient_system(P)
    return np.where(system.absorbs, np.linalg.solve(system.identity_minus_q, system.to_absorbing), 0.0)


def expected_steps(P: ArrayLike) -> np.ndarray:
    """Expected number of pages of a walk from each transient state, ``t = N 1``.

    Parameters
    ----------
    P : array_like, shape (..., k, k + a)
        Transition probabilities.

    Returns
    -------
    t : ndarray, shape (..., k)
        ``t[..., i]`` is the expected number of visits to transient states of a walk from ``i`` before
        absorption, ``i`` itself included (so ``t >= 1``). Every visit to a transient state is followed by
        exactly one transition, so ``t[i]`` is also the expected number of transitions, the one into the
        absorbing state included. From a virtual ``start`` state, ``t[start] - 1`` is the expected number of
        pages of a session.

    Raises
    ------
    ValueError
        As :func:`fundamental_matrix`.
    """
    system = _transient_system(P)
    return np.linalg.solve(system.identity_minus_q, np.ones((system.k, 1)))[..., 0]


def conversion(P: ArrayLike, start: int, target: int) -> np.ndarray:
    """Probability ``B[start, target]`` that a walk from ``start`` ends in absorbing column ``target``.

    Parameters
    ----------
    P : array_like, shape (..., k, k + a)
        Transition probabilities.
    start : int
        Index of the transient state walks start from.
    target : int
        Index among the absorbing columns (0 to ``a - 1``), e.g. 0 for purchase.

    Returns
    -------
    ndarray, shape (...)
        The probability per batch element (a 0-d array without batch axes).
    """
    P = np.asarray(P, dtype=np.float64)
    k, a = _sizes(P)
    return absorption_probabilities(P)[..., _index("start", start, k), _index("target", target, a)]


def removal_effects(P: ArrayLike, start: int, target: int) -> np.ndarray:
    """Removal effect of every transient state: the relative drop of conversion when the state is removed.

    Parameters
    ----------
    P : array_like, shape (..., k, k + a)
        Transition probabilities.
    start : int
        Index of the transient state walks start from.
    target : int
        Index among the absorbing columns of the outcome that converts (e.g. 0 for purchase); not the last
        (exit) column, into which removed states are redirected.

    Returns
    -------
    effects : ndarray, shape (..., k)
        ``effects[..., s] = 1 - conversion_without_s / conversion``, with ``conversion = B[start, target]``
        and ``conversion_without_s`` the same in the chain where every transition into ``s`` goes to exit
        instead (Anderl et al. 2016). In [0, 1]; exactly 0 for states a walk from ``start`` never visits.
        NaN for ``s == start``, and for every ``s`` where the conversion is 0.

    Notes
    -----
    Removing ``s`` leaves the walks that never visit ``s`` unchanged and sends those that do to exit. A walk
    from ``start`` visits ``s != start`` with probability ``h = N[start, s] / N[s, s]`` (Kemeny & Snell
    1960, ch. III), and from its first visit on it is a walk from ``s``, so ``conversion_without_s =
    B[start, target] - h B[s, target]`` and ``effects[s] = N[start, s] B[s, target] / (N[s, s] B[start,
    target])``: one solve for all ``s`` rather than one per removed state, and no cancellation in
    ``1 - ratio``. The effect cannot leave [0, 1], since removal only takes converting walks away.
    """
    P = np.asarray(P, dtype=np.float64)
    k, a = _sizes(P)
    start, target = _index("start", start, k), _index("target", target, a)
    if target == a - 1:
        raise ValueError("target is the exit column, into which removed states are redirected; "
                         "removal effects need a target among the other absorbing columns")
    system = _transient_system(P)
    both = np.linalg.solve(system.identity_minus_q, np.concatenate(
        [np.broadcast_to(np.eye(k), system.identity_minus_q.shape), system.to_absorbing], axis=-1))
    visits = np.where(system.reaches, both[..., :k], 0.0)
    absorbed = np.where(system.absorbs, both[..., k:], 0.0)
    lost = visits[..., start, :] / np.diagonal(visits, axis1=-2, axis2=-1) * absorbed[..., :, target]
    converts = system.absorbs[..., start, target]
    denominator = np.where(converts, absorbed[..., start, target], 1.0)[..., None]
    effects = np.where(converts[..., None], lost / denominator, np.nan)
    effects[..., start] = np.nan
    return effects


def what_if(P: ArrayLike, source: int, destination: int, relative_change: ArrayLike) -> np.ndarray:
    """Transition probabilities with one transition made ``relative_change`` more likely.

    Parameters
    ----------
    P : array_like, shape (..., k, k + a)
        Transition probabilities.
    source : int
        Transient state (row) whose transition changes.
    destination : int
        Column of the transition in the full ``k + a`` columns (transient states, then absorbing ones).
    relative_change : float or array_like
        ``+0.1`` for 10 % more likely; an array must have the shape of ``P``'s batch axes (one change per
        replicate).

    Returns
    -------
    P_new : ndarray, shape (..., k, k + a)
        A copy of ``P`` whose ``P_new[source, destination] = clip(P[source, destination] * (1 +
        relative_change), 0, 1)``; the other entries of row ``source`` are rescaled by one factor so that the
        row sums to 1 (they keep their ratios). If they are all 0, the remainder goes to exit, so a row that
        only goes to exit cannot change.
    """
    P_new = np.array(P, dtype=np.float64)
    k, a = _sizes(P_new)
    source, destination = _index("source", source, k), _index("destination", destination, k + a)
    row = P_new[..., source, :]
    old = row[..., destination]
    new = np.clip(old * (1.0 + np.asarray(relative_change, dtype=np.float64)), 0.0, 1.0)
    others = row.sum(axis=-1) - old
    has_others = others > 0
    new_row = row * np.where(has_others, (1.0 - new) / np.where(has_others, others, 1.0), 0.0)[..., None]
    new_row[..., destination] = new
    new_row[..., -1] += np.where(has_others, 0.0, 1.0 - new)
    P_new[..., source, :] = new_row
    return P_new


def _sizes(P: np.ndarray) -> tuple[int, int]:
    """``(k, a)``: the numbers of transient and absorbing states of arrays of shape ``(..., k, k + a)``."""
    if P.ndim < 2 or P.shape[-2] < 1 or P.shape[-1] <= P.shape[-2]:
        raise ValueError(f"expected shape (..., k, k + a) with k >= 1 transient and a >= 1 absorbing states, "
                         f"got {P.shape}")
    return P.shape[-2], P.shape[-1] - P.shape[-2]


def _index(name: str, value: int, size: int) -> int:
    """``value`` as an index in ``range(size)``; negative values count from the end, as in Python."""
    value = operator.index(value)
    if not -size <= value < size:
        raise ValueError(f"{name} = {value} is out of range for {size} states")
    return value % size


class _TransientSystem(NamedTuple):
    """``I - Q`` and ``R`` of a chain, with which states reach which (in >= 0 steps, along positive entries)."""

    k: int
    identity_minus_q: np.ndarray  # (..., k, k)
    to_absorbing: np.ndarray  # R, (..., k, a)
    reaches: np.ndarray  # (..., k, k) bool: transient j can be reached from i
    absorbs: np.ndarray  # (..., k, a) bool: absorbing j can be reached from i


def _transient_system(P: ArrayLike) -> _TransientSystem:
    """The system to solve, after checking that every transient state reaches an absorbing state.

    The reachability serves twice: entries that are 0 exactly (e.g. the conversion from a state with no
    path to purchase) are set to 0, where LU solves leave rounding noise of either sign; and singularity
    is checked on the graph, as rounding rarely leaves an exactly singular ``I - Q``, so ``np.linalg.solve``
    would return huge numbers instead of failing.
    """
    P = np.asarray(P, dtype=np.float64)
    k, _ = _sizes(P)
    transient, to_absorbing = P[..., :, :k], P[..., :, k:]
    reaches = np.eye(k) + (transient > 0)
    for _ in range((k - 1).bit_length()):  # m squarings cover paths of up to 2**m >= k - 1 steps: all of them
        reaches = (reaches @ reaches > 0).astype(np.float64)
    absorbs = reaches @ (to_absorbing > 0) > 0
    absorbed = absorbs.any(axis=-1)
    if not absorbed.all():
        replicate = tuple(int(i) for i in np.argwhere(~absorbed)[0, :-1])
        states = np.flatnonzero(~absorbed[replicate]).tolist()
        where = f" (batch index {replicate})" if replicate else ""
        raise ValueError(f"transient states {states}{where} never reach an absorbing state: they form a loop that "
                         f"is never left, or lead only into one, so I - Q is singular")
    return _TransientSystem(k, np.eye(k) - transient, to_absorbing, reaches > 0, absorbs)
