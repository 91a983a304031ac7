"""The absorbing chain of journeys: closed forms (gambler's ruin), independent references (Neumann series,
powers of the full chain, literally removing a state and inverting the smaller chain), hand-computed
removal effects and what-ifs, batching, and properties on random count matrices."""
from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from funnelkit.journeys.chain import (
    absorption_probabilities,
    conversion,
    expected_steps,
    fundamental_matrix,
    removal_effects,
    transition_probabilities,
    what_if,
)

PURCHASE, EXIT = 0, 1  # absorbing columns of the hand-written chains, exit last


def gamblers_ruin_counts(n: int, p: float, scale: float = 1000.0) -> np.ndarray:
    """Counts proportional to gambler's ruin on fortunes 1..n-1 (row i-1), absorbing columns [n, 0]."""
    k = n - 1
    counts = np.zeros((k, k + 2))
    for fortune in range(1, n):
        row = fortune - 1
        up = k if fortune + 1 == n else fortune  # column of fortune + 1: transient row, or absorbing "n"
        down = k + 1 if fortune - 1 == 0 else fortune - 2  # column of fortune - 1: transient, or absorbing "0"
        counts[row, up] += p * scale
        counts[row, down] += (1 - p) * scale
    return counts


def random_counts(rng: np.random.Generator, k: int, a: int = 2, batch: tuple[int, ...] = ()) -> np.ndarray:
    """Random counts whose every row has a positive exit count (so every state reaches absorption)."""
    counts = rng.integers(0, 30, size=(*batch, k, k + a)).astype(float)
    counts[..., :, k:] = rng.integers(0, 5, size=(*batch, k, a))
    counts[..., :, -1] += 1
    return counts


def removal_effects_by_deleting_states(P: np.ndarray, start: int, target: int) -> np.ndarray:
    """Brute force: for each s, redirect transitions into s to exit, delete s, invert the smaller I - Q."""
    k = P.shape[0]
    base = np.linalg.inv(np.eye(k) - P[:, :k]) @ P[:, k:]
    effects = np.full(k, np.nan)
    for s in range(k):
        if s == start:
            continue
        redirected = P.copy()
        redirected[:, -1] += redirected[:, s]
        redirected[:, s] = 0.0
        kept = [i for i in range(k) if i != s]
        smaller = redirected[np.ix_(kept, kept + list(range(k, P.shape[1])))]
        without_s = np.linalg.inv(np.eye(k - 1) - smaller[:, : k - 1]) @ smaller[:, k - 1:]
        effects[s] = 1.0 - without_s[kept.index(start), target] / base[start, target]
    return effects


# Hand-written shop: start, home, search, view, cart; absorbing purchase, exit.
SHOP = transition_probabilities([
    # start home search view cart | purchase exit
    [0, 50, 30, 20, 0, 0, 0],
    [0, 5, 40, 30, 0, 0, 25],
    [0, 10, 10, 50, 0, 0, 30],
    [0, 5, 15, 10, 30, 0, 40],
    [0, 0, 5, 20, 5, 40, 30],
])


@pytest.mark.parametrize("p", [0.4, 0.5, 0.65])
def test_gamblers_ruin_absorption_and_duration_match_their_closed_forms(p):
    n = 7
    P = transition_probabilities(gamblers_ruin_counts(n, p))
    fortune = np.arange(1, n)
    if p == 0.5:
        ruin = 1 - fortune / n
        duration = fortune * (n - fortune)
    else:
        q = 1 - p
        ratio = q / p
        ruin = (ratio**fortune - ratio**n) / (1 - ratio**n)
        duration = fortune / (q - p) - n / (q - p) * (1 - ratio**fortune) / (1 - ratio**n)
    B = absorption_probabilities(P)
    np.testing.assert_allclose(B[:, 1], ruin, rtol=1e-12)
    np.testing.assert_allclose(B[:, 0], 1 - ruin, rtol=1e-12)
    np.testing.assert_allclose(expected_steps(P), duration, rtol=1e-12)


def test_fundamental_matrix_is_the_neumann_series_of_q():
    P = transition_probabilities(random_counts(np.random.default_rng(1), k=6))
    Q = P[:, :6]
    series, term = np.zeros_like(Q), np.eye(6)
    while np.abs(term).max() > 1e-16:
        series += term
        term = term @ Q
    np.testing.assert_allclose(fundamental_matrix(P), series, rtol=1e-10)


def test_absorption_probabilities_are_the_limit_of_powers_of_the_full_chain():
    k, a = 6, 3
    P = transition_probabilities(random_counts(np.random.default_rng(2), k=k, a=a))
    full = np.block([[P], [np.zeros((a, k)), np.eye(a)]])
    limit = np.linalg.matrix_power(full, 4000)
    np.testing.assert_allclose(absorption_probabilities(P), limit[:k, k:], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(absorption_probabilities(P).sum(axis=-1), 1.0, rtol=1e-12)


def test_expected_steps_are_the_row_sums_of_the_fundamental_matrix():
    P = transition_probabilities(random_counts(np.random.default_rng(3), k=5))
    np.testing.assert_allclose(expected_steps(P), fundamental_matrix(P).sum(axis=-1), rtol=1e-12)


def test_expected_steps_count_the_pages_of_a_deterministic_path():
    # start -> a -> b -> purchase surely: 3 transient states visited from start, 3 transitions
    P = transition_probabilities([[0, 1, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 1, 0]])
    np.testing.assert_array_equal(expected_steps(P), [3.0, 2.0, 1.0])


def test_removal_effects_equal_deleting_each_state_and_inverting_the_smaller_chain():
    np.testing.assert_allclose(removal_effects(SHOP, start=0, target=PURCHASE),
                               removal_effects_by_deleting_states(SHOP, start=0, target=PURCHASE), rtol=1e-12)
    P = transition_probabilities(random_counts(np.random.default_rng(4), k=8, a=3))
    for target in (0, 1):
        np.testing.assert_allclose(removal_effects(P, start=2, target=target),
                                   removal_effects_by_deleting_states(P, start=2, target=target), rtol=1e-10)


def test_removing_a_state_on_the_only_path_to_purchase_has_effect_one():
    P = transition_probabilities([
        # start a  b | purchase exit
        [0, 5, 0, 0, 5],
        [0, 0, 6, 0, 4],
        [0, 0, 0, 3, 7],
    ])
    assert conversion(P, 0, PURCHASE) == pytest.approx(0.5 * 0.6 * 0.3, rel=1e-14)
    effects = removal_effects(P, start=0, target=PURCHASE)
    assert np.isnan(effects[0])
    np.testing.assert_allclose(effects[1:], [1.0, 1.0], rtol=1e-14)


def test_removing_one_of_two_parallel_branches_loses_its_share_of_conversion():
    P = transition_probabilities([
        # start a  b | purchase exit
        [0, 6, 4, 0, 0],
        [0, 0, 0, 2, 2],
        [0, 0, 0, 1, 3],
    ])
    # conversion 0.6 * 0.5 + 0.4 * 0.25 = 0.4, of which branch a brings 0.3 and branch b 0.1
    assert conversion(P, 0, PURCHASE) == pytest.approx(0.4, rel=1e-14)
    np.testing.assert_allclose(removal_effects(P, start=0, target=PURCHASE)[1:], [0.75, 0.25], rtol=1e-14)


def test_removal_effects_are_nan_where_nothing_converts_and_refuse_the_exit_target():
    P = SHOP.copy()
    P[:, -2:] = np.column_stack([np.zeros(5), P[:, -2:].sum(axis=1)])  # purchases become exits
    assert np.isnan(removal_effects(P, start=0, target=PURCHASE)).all()
    with pytest.raises(ValueError, match="exit column"):
        removal_effects(SHOP, start=0, target=EXIT)


def test_what_if_sets_the_entry_and_rescales_the_rest_of_the_row_keeping_their_ratios():
    changed = what_if(SHOP, source=3, destination=4, relative_change=0.5)
    assert changed[3, 4] == pytest.approx(SHOP[3, 4] * 1.5, rel=1e-14)
    np.testing.assert_allclose(changed.sum(axis=-1), 1.0, rtol=1e-14)
    others = [0, 1, 2, 3, 5, 6]
    np.testing.assert_allclose(changed[3, others], SHOP[3, others] * (1 - 0.45) / (1 - 0.3), rtol=1e-14)
    np.testing.assert_array_equal(np.delete(changed, 3, axis=0), np.delete(SHOP, 3, axis=0))


def test_what_if_clips_to_one_and_sends_the_remainder_of_a_lone_transition_to_exit():
    everything = what_if(SHOP, source=0, destination=1, relative_change=10.0)
    np.testing.assert_array_equal(everything[0], [0, 1, 0, 0, 0, 0, 0])
    lone = what_if(everything, source=0, destination=1, relative_change=-0.3)
    np.testing.assert_allclose(lone[0], [0, 0.7, 0, 0, 0, 0, 0.3], rtol=1e-14)


def test_raising_a_step_towards_purchase_raises_conversion_as_computed_by_hand():
    P = transition_probabilities([
        # start a  b | purchase exit
        [0, 5, 0, 0, 5],
        [0, 0, 6, 0, 4],
        [0, 0, 0, 3, 7],
    ])
    changes = np.linspace(-0.5, 0.5, 11)
    converted = np.array([conversion(what_if(P, 1, 2, change), 0, PURCHASE) for change in changes])
    np.testing.assert_allclose(converted, 0.5 * 0.6 * (1 + changes) * 0.3, rtol=1e-13)
    assert (np.diff(converted) > 0).all()
    batched = conversion(what_if(np.broadcast_to(P, (11, 3, 5)), 1, 2, changes), 0, PURCHASE)
    np.testing.assert_allclose(batched, converted, rtol=1e-14)


def test_stacked_replicates_give_the_results_of_each_replicate_alone():
    counts = random_counts(np.random.default_rng(5), k=5, a=3, batch=(2, 3))
    counts[1, 2, 3, :] = 0  # one replicate with a state never left
    P = transition_probabilities(counts)
    results = {
        "P": P,
        "N": fundamental_matrix(P),
        "B": absorption_probabilities(P),
        "t": expected_steps(P),
        "effects": removal_effects(P, 0, 1),
        "conversion": conversion(P, 0, 1),
        "what_if": what_if(P, 2, 4, 0.25),
    }
    for i, j in np.ndindex(2, 3):
        alone = transition_probabilities(counts[i, j])
        np.testing.assert_array_equal(results["P"][i, j], alone)
        np.testing.assert_allclose(results["N"][i, j], fundamental_matrix(alone), rtol=1e-13)
        np.testing.assert_allclose(results["B"][i, j], absorption_probabilities(alone), rtol=1e-13)
        np.testing.assert_allclose(results["t"][i, j], expected_steps(alone), rtol=1e-13)
        np.testing.assert_allclose(results["effects"][i, j], removal_effects(alone, 0, 1), rtol=1e-12)
        np.testing.assert_allclose(results["conversion"][i, j], conversion(alone, 0, 1), rtol=1e-13)
        np.testing.assert_array_equal(results["what_if"][i, j], what_if(alone, 2, 4, 0.25))


def test_what_cannot_be_reached_is_exactly_zero_not_rounding_noise():
    # Found by hypothesis: LU solves left +-1e-15 in these entries, a conversion that prints as "-0.0%".
    P = transition_probabilities([
        # start a  b | purchase exit
        [12, 0, 0, 0, 1],  # start only loops on itself or leaves
        [3, 0, 34, 0, 1],
        [0, 0, 0, 2, 1],
    ])
    assert conversion(P, 0, PURCHASE) == 0.0
    N = fundamental_matrix(P)
    assert N[0, 1] == N[0, 2] == N[2, 0] == N[2, 1] == 0.0
    assert np.isnan(removal_effects(P, start=0, target=PURCHASE)).all()
    np.testing.assert_array_equal(removal_effects(P, start=2, target=PURCHASE), [0.0, 0.0, np.nan])  # b: no way back


def test_a_state_never_left_goes_to_exit():
    P = transition_probabilities([
        # start a  b | purchase exit
        [0, 3, 1, 0, 0],
        [0, 0, 1, 1, 2],
        [0, 0, 0, 0, 0],  # b: only ever the last page of sessions
    ])
    np.testing.assert_array_equal(P[2], [0, 0, 0, 0, 1])
    np.testing.assert_allclose(absorption_probabilities(P)[2], [0, 1])
    # conversion: a purchases directly with 1/4; via b never
    assert conversion(P, 0, PURCHASE) == pytest.approx(0.75 * 0.25, rel=1e-14)


def test_a_loop_that_never_reaches_absorption_is_refused_naming_its_states():
    counts = np.array([
        # start a  b  c | purchase exit
        [0, 1, 0, 1, 0, 1],
        [0, 0, 2, 0, 0, 0],  # a -> b -> a ... forever
        [0, 3, 0, 0, 0, 0],
        [0, 0, 0, 1, 1, 1],
    ], dtype=float)
    P = transition_probabilities(counts)
    for solve in (fundamental_matrix, absorption_probabilities, expected_steps):
        with pytest.raises(ValueError, match=r"states \[1, 2\] never reach an absorbing state"):
            solve(P)
    with pytest.raises(ValueError, match=r"states \[1, 2\] \(batch index \(1,\)\)"):
        absorption_probabilities(np.stack([transition_probabilities(np.ones((4, 6))), P]))


def with_an_exit_from_every_state(counts: np.ndarray) -> np.ndarray:
    counts = counts.copy()
    counts[:, -1] += 1
    return counts


counts_with_exits = st.integers(2, 6).flatmap(
    lambda k: hnp.arrays(np.int64, (k, k + 2), elements=st.integers(0, 50)).map(with_an_exit_from_every_state))


@given(counts_with_exits, st.data())
def test_absorption_is_a_distribution_pages_are_at_least_one_and_removal_never_raises_conversion(counts, data):
    # Every row has a positive exit count, so every state reaches absorption.
    k = counts.shape[0]
    P = transition_probabilities(counts)
    B, t = absorption_probabilities(P), expected_steps(P)
    np.testing.assert_allclose(B.sum(axis=-1), 1.0, rtol=1e-12)
    assert ((B >= -1e-15) & (B <= 1 + 1e-12)).all()
    assert (t >= 1 - 1e-12).all()
    start = data.draw(st.integers(0, k - 1))
    effects = removal_effects(P, start=start, target=PURCHASE)
    # Redirecting the transitions into s to exit keeps the walks that avoid s and turns those through s into
    # exits, so conversion can only fall (effect >= 0) and not below 0 (effect <= 1); true for any chain.
    others = np.delete(effects, start)
    defined = ~np.isnan(others)
    assert defined.all() or not defined.any()
    if not defined.any():
        assert B[start, PURCHASE] == 0.0
    assert ((others[defined] >= -1e-12) & (others[defined] <= 1 + 1e-12)).all()
    if defined.any():
        np.testing.assert_allclose(effects, removal_effects_by_deleting_states(P, start, PURCHASE),
                                   rtol=1e-8, atol=1e-12)


def test_a_bootstrap_of_500_replicates_is_solved_in_well_under_a_second():
    P = transition_probabilities(random_counts(np.random.default_rng(6), k=15, batch=(500,)))
    removal_effects(P, 0, PURCHASE)  # warm-up: first-call costs are not the bootstrap's
    began = time.perf_counter()
    effects = removal_effects(P, 0, PURCHASE)
    converted = conversion(P, 0, PURCHASE)
    elapsed = time.perf_counter() - began
    assert effects.shape == (500, 15) and converted.shape == (500,)
    assert elapsed < 0.5, f"{elapsed:.2f} s"


def test_every_matrix_of_the_journeys_bootstrap_gets_the_same_resampled_users(monkeypatch):
    from scipy import sparse

    from funnelkit.journeys import study

    matrices = [sparse.random(40, width, density=0.3, random_state=seed, format="csr")
                for seed, width in ((1, 3), (2, 0), (3, 5))]
    monkeypatch.setattr(study, "WEIGHTS_PER_CHUNK", 40 * 3)  # three replicates per chunk: the chunks join up
    draws = study._bootstrap(matrices, replicates=7, seed=9)
    weights = np.random.default_rng(9).poisson(1.0, size=(7, 40))  # one Poisson(1) weight per replicate and user
    for matrix, got in zip(matrices, draws):
        np.testing.assert_allclose(got, weights @ matrix.toarray())
    assert [d.shape for d in draws] == [(7, 3), (7, 0), (7, 5)]
