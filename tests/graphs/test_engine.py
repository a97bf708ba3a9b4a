"""The native swap search: exact distances and valid graphs after every move, symmetry, fallback."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from topoprune import native
from topoprune.errors import TopopruneError
from topoprune.graphs import engine, swap
from topoprune.graphs.generate import from_neighbours, random_regular, ring_lattice, to_neighbours
from topoprune.graphs.paths import distance_stats
from topoprune.graphs.swap import optimize


def test_no_compiler_means_the_numpy_search_and_one_warning(monkeypatch):
    monkeypatch.setattr(native, "compiler", lambda: None)
    engine.load_engine.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match="no C\\+\\+ compiler"):
            result = optimize(random_regular(16, 4, seed=0), max_steps=50)
        assert result.engine == "numpy" and result.steps == 50
    finally:
        engine.load_engine.cache_clear()


needs_compiler = pytest.mark.skipif(
    native.compiler() is None, reason="no C++ compiler: the numpy search is tested instead"
)


def ordered_total(adj: np.ndarray) -> int:
    stats = distance_stats(adj)
    return round(stats.aspl * len(adj) * (len(adj) - 1))


def assert_valid(nbrs: np.ndarray, k: int, total: int, diameter: int, symmetry: int) -> None:
    """``nbrs`` is a simple connected k-regular graph, invariant under the rotation, with exactly
    the given distance sum and diameter."""
    adj = from_neighbours(nbrs.astype(np.intp))
    assert np.array_equal(adj, adj.T) and not adj.diagonal().any()
    assert (adj.sum(axis=1) == k).all()  # no repeated edge either: the rows hold k distinct nodes
    stats = distance_stats(adj)
    assert stats.connected
    assert total == round(stats.aspl * len(adj) * (len(adj) - 1)) and diameter == stats.diameter
    assert engine.is_rotation_invariant(nbrs, symmetry)


@st.composite
def searches(draw) -> tuple[int, int, int, int]:
    """(n, k, symmetry, seed): symmetric searches start from the ring lattice."""
    symmetry = draw(st.sampled_from([1, 1, 2, 4]))
    n = symmetry * draw(st.integers(max(3, 8 // symmetry), 40 // symmetry))
    k = draw(st.integers(3, n - 3).filter(lambda k: n * k % 2 == 0))
    return n, k, symmetry, draw(st.integers(0, 2**31 - 1))


@needs_compiler
@settings(max_examples=30, deadline=None)
@given(searches(), st.sampled_from([(3.0, 1.0), (0.0, 0.0)]), st.sampled_from([0.0, 0.5, 1.0]))
def test_every_move_leaves_a_valid_graph_with_exact_distances(search, temperatures, targeted):
    n, k, symmetry, seed = search
    start = ring_lattice(n, k) if symmetry > 1 else random_regular(n, k, seed=seed)
    stats = distance_stats(start)
    state = engine.NativeSearch(
        to_neighbours(start), ordered_total(start), stats.diameter, seed=seed, shift=n // symmetry
    )
    for _ in range(60):  # one swap tried per call, checked after each
        tried, _, _ = state.run(1, math.inf, temperatures, targeted)
        assert tried == 1
        assert_valid(state.nbrs, k, state.total, state.diameter, symmetry)
        assert state.best_total <= state.total
    assert_valid(state.best_nbrs, k, state.best_total, state.best_diameter, symmetry)


@st.composite
def counted_searches(draw) -> tuple[np.ndarray, int]:
    """(a random regular graph of diameter <= 3, seed): where the search may count."""
    n = draw(st.integers(8, 48))
    k = draw(st.integers(max(3, n // 6), n - 2).filter(lambda k: n * k % 2 == 0))
    seed = draw(st.integers(0, 2**31 - 1))
    start = random_regular(n, k, seed=seed)
    assume(distance_stats(start).diameter <= 3)
    return start, seed


@needs_compiler
@settings(max_examples=40, deadline=None)
@given(counted_searches(), st.sampled_from([(6.0, 2.0), (0.0, 0.0)]), st.sampled_from([0.0, 0.5]))
def test_every_counted_move_leaves_a_valid_graph_within_diameter_three(
    search, temperatures, targeted
):
    """Scoring by common-neighbour counts: the sums stay exact and no swap makes a pair four hops
    apart, even annealing hot."""
    start, seed = search
    stats = distance_stats(start)
    state = engine.NativeSearch(
        to_neighbours(start), ordered_total(start), stats.diameter, seed=seed
    )
    assert state.can_count()
    for _ in range(60):
        tried, _, _ = state.run(1, math.inf, temperatures, targeted, two_hop=True)
        assert tried == 1 and state.diameter <= 3
        assert_valid(state.nbrs, int(start[0].sum()), state.total, state.diameter, 1)
        assert state.best_total <= state.total
    assert_valid(state.best_nbrs, int(start[0].sum()), state.best_total, state.best_diameter, 1)


@needs_compiler
def test_counting_is_refused_where_it_does_not_apply():
    lattice = ring_lattice(64, 4)  # diameter 16
    stats = distance_stats(lattice)
    state = engine.NativeSearch(
        to_neighbours(lattice), ordered_total(lattice), stats.diameter, seed=0
    )
    assert not state.can_count()
    with pytest.raises(ValueError, match="diameter <= 3"):
        state.run(10, math.inf, (0.0, 0.0), two_hop=True)


@needs_compiler
def test_a_counted_search_reaches_diameter_three_graphs_equal_to_networkx():
    """(64, 8) starts at diameter 3, so optimize() counts: the result is still exact."""
    result = optimize(random_regular(64, 8, seed=0), seed=0, max_steps=200_000)
    graph = nx.from_numpy_array(result.adj)
    assert result.aspl == pytest.approx(nx.average_shortest_path_length(graph), abs=1e-12)
    assert result.diameter == nx.diameter(graph) == 3
    assert result.aspl < result.start_aspl


@needs_compiler
@pytest.mark.parametrize("symmetry", [2, 4, 8])
def test_symmetric_search_keeps_the_rotation_and_equals_networkx(symmetry):
    result = optimize(ring_lattice(64, 6), seed=1, max_steps=3000, symmetry=symmetry)
    assert engine.is_rotation_invariant(to_neighbours(result.adj), symmetry)
    graph = nx.from_numpy_array(result.adj)
    assert result.aspl == pytest.approx(nx.average_shortest_path_length(graph), abs=1e-12)
    assert result.aspl < result.start_aspl


@needs_compiler
def test_greedy_descends_from_the_lattice_and_never_rises():
    result = optimize(ring_lattice(32, 4), strategy="greedy", seed=0, max_steps=20_000)
    assert result.aspl < result.start_aspl
    assert (np.diff(result.trajectory[:, 1]) <= 1e-12).all()


@needs_compiler
@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda: optimize(ring_lattice(30, 4), max_steps=5, symmetry=4), "divisor"),
        (lambda: optimize(ring_lattice(30, 4), max_steps=5, symmetry=0), "divisor"),
        (lambda: optimize(random_regular(32, 4, seed=0), max_steps=5, symmetry=2), "maps onto"),
    ],
)
def test_bad_symmetry_raises(call, words):
    with pytest.raises(TopopruneError, match=words):
        call()


@needs_compiler
def test_symmetric_search_can_remove_edges_half_a_turn_long():
    """Odd k: the lattice holds the matching v ~ v + n/2, whose edges are their own rotation by
    half a turn; a swap of two of them has g/2 distinct copies, not g."""
    result = optimize(ring_lattice(64, 5), seed=0, max_steps=20_000, symmetry=4)
    diametral = int(result.adj[np.arange(32), np.arange(32) + 32].sum())
    assert diametral < 32
    assert engine.is_rotation_invariant(to_neighbours(result.adj), 4)


@needs_compiler
def test_a_time_budget_is_kept_and_every_chunk_makes_progress():
    result = optimize(random_regular(1024, 8, seed=0), seed=0, time_budget=0.3)
    assert result.steps >= engine.NATIVE_CHUNKS  # at least one swap per chunk; that it returns
    # at all (no step limit was given) is the check that the budget is kept


def test_symmetry_without_the_native_engine_is_an_error(monkeypatch):
    monkeypatch.setattr(swap, "engine_available", lambda: False)
    with pytest.raises(TopopruneError, match="native engine"):
        optimize(ring_lattice(32, 4), max_steps=5, symmetry=2)


@needs_compiler
def test_a_counted_search_repeats_exactly_under_a_step_budget():
    first, second = (
        optimize(random_regular(64, 8, seed=3), seed=3, max_steps=300_000) for _ in "ab"
    )
    assert np.array_equal(first.adj, second.adj)
    assert np.array_equal(first.trajectory, second.trajectory)
