"""Swap optimiser: invariants after every accepted swap, exact distances, strategies, bank.

Tests taking the ``engine`` fixture run twice: in the native engine (where a compiler exists)
and in the numpy search.
"""

from __future__ import annotations

import json

import networkx as nx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from topoprune import native
from topoprune.errors import TopopruneError
from topoprune.graphs import swap
from topoprune.graphs.engine import NATIVE_CHUNKS, engine_available
from topoprune.graphs.generate import complete, random_regular, ring_lattice
from topoprune.graphs.paths import aspl, distance_stats
from topoprune.graphs.swap import STRATEGIES, SwapSearch, bank, optimize


@pytest.fixture(params=["native", "numpy"])
def engine(request, monkeypatch) -> str:
    """Which engine optimize() uses in this test."""
    if request.param == "native" and native.compiler() is None:
        pytest.skip("no C++ compiler on this machine: only the numpy search can run")
    if request.param == "native" and not engine_available():
        pytest.fail("a C++ compiler exists, so the native engine must build")
    if request.param == "numpy":
        monkeypatch.setattr(swap, "engine_available", lambda: False)
    return request.param


@st.composite
def regular_sizes(draw, max_nodes: int = 40) -> tuple[int, int]:
    """(n, k) with a connected k-regular graph that has room for swaps: 3 <= k <= n - 3."""
    n = draw(st.integers(8, max_nodes))
    k = draw(st.integers(3, n - 3).filter(lambda k: n * k % 2 == 0))
    return n, k


def assert_valid_state(search: SwapSearch, n: int, k: int) -> None:
    """The current graph is simple, k-regular, connected, and its tracked distances are exact."""
    adj = search.adjacency()
    assert adj.shape == (n, n) and adj.dtype == np.uint8
    assert np.array_equal(adj, adj.T)
    assert not adj.diagonal().any()
    assert (adj.sum(axis=1) == k).all()
    stats = distance_stats(adj)
    assert stats.connected
    assert search.aspl == pytest.approx(stats.aspl, abs=1e-12)
    assert search.diameter == stats.diameter


@settings(max_examples=25, deadline=None)
@given(regular_sizes(), st.sampled_from(STRATEGIES), st.integers(0, 2**31 - 1))
def test_every_accepted_swap_keeps_the_graph_regular_simple_and_connected(size, strategy, seed):
    n, k = size
    search = SwapSearch(random_regular(n, k, seed=seed), strategy=strategy, seed=seed)
    assert_valid_state(search, n, k)
    for round_ in range(40):
        before = search.accepted
        tried = search.advance(round_ / 40, 64)
        assert 1 <= tried <= 64
        assert search.accepted - before in (0, 1)
        if search.accepted > before:
            assert_valid_state(search, n, k)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_result_distances_equal_networkx(strategy, engine):
    result = optimize(random_regular(48, 4, seed=2), strategy=strategy, seed=3, max_steps=3000)
    graph = nx.from_numpy_array(result.adj)
    assert result.aspl == pytest.approx(nx.average_shortest_path_length(graph), abs=1e-12)
    assert result.diameter == nx.diameter(graph)
    assert (result.adj.sum(axis=1) == 4).all() and nx.is_connected(graph)


def test_anneal_lowers_the_aspl_of_a_random_regular_graph(engine):
    start = random_regular(64, 4, seed=0)
    result = optimize(start, seed=0, max_steps=20_000)
    assert result.start_aspl == aspl(start)
    assert result.aspl < result.start_aspl - 0.1
    assert result.strategy == "anneal" and result.steps == 20_000
    assert 0 < result.accepted <= result.steps


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.sampled_from([(20, 3), (32, 4), (40, 6)]), st.integers(0, 2**31 - 1))
def test_greedy_never_raises_the_aspl(engine, size, seed):  # the engine is the same throughout
    result = optimize(
        random_regular(*size, seed=seed), strategy="greedy", seed=seed, max_steps=4000
    )
    assert (np.diff(result.trajectory[:, 1]) <= 1e-12).all()
    assert result.aspl == result.trajectory[-1, 1] <= result.start_aspl


def test_rgp_starts_from_the_ring_lattice_and_saves_graphs_below_it():
    result = optimize(random_regular(32, 4, seed=1), strategy="rgp", seed=0, max_steps=3000)
    lattice = distance_stats(ring_lattice(32, 4))
    assert result.start_aspl == lattice.aspl and result.start_diameter == lattice.diameter
    assert tuple(result.trajectory[0]) == (0.0, lattice.aspl, lattice.diameter)
    assert result.aspl < lattice.aspl


def test_rgp_chain_steps_drop_by_the_published_band():
    search = SwapSearch(ring_lattice(40, 4), strategy="rgp", seed=4)
    while len(search.saved) < 4:
        search.advance(0.0, 256)
    values = [total / search.pairs for _, total, _ in search.saved]
    starts = [aspl(ring_lattice(40, 4)), *values[:-1]]
    drops = np.array(starts) - np.array(values)
    assert ((drops > 0.05) & (drops < 0.2)).all()


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_same_seed_same_result(strategy, engine):
    start = random_regular(32, 6, seed=5)
    first = optimize(start, strategy=strategy, seed=11, max_steps=1500)
    second = optimize(start, strategy=strategy, seed=11, max_steps=1500)
    assert np.array_equal(first.adj, second.adj)
    assert (first.steps, first.accepted) == (second.steps, second.accepted)
    assert np.array_equal(first.trajectory, second.trajectory)


def test_result_metadata_and_trajectory_shape(engine):
    start = random_regular(24, 4, seed=0)
    result = optimize(start, seed=1, max_steps=500)
    if engine == "numpy":  # a row per accepted swap
        assert result.trajectory.shape == (result.accepted + 1, 3)
    else:  # the best so far: at new bests and once per chunk
        assert len(result.trajectory) >= 1 + NATIVE_CHUNKS
        assert (np.diff(result.trajectory[:, 1]) <= 1e-12).all()
        assert result.trajectory[-1, 1] == result.aspl
    assert tuple(result.trajectory[0]) == (0.0, result.start_aspl, result.start_diameter)
    assert (np.diff(result.trajectory[:, 0]) >= 0).all() and result.trajectory[-1, 0] <= 500
    record = json.loads(json.dumps(result.to_dict()))
    assert record["n"] == 24 and record["k"] == 4 and record["seed"] == 1
    assert record["steps"] == 500 and record["strategy"] == "anneal"
    assert record["engine"] == engine == swap.search_engine("anneal")
    assert "adj" not in record


def test_the_complete_graph_has_no_swap_and_is_returned_unchanged(engine):
    result = optimize(complete(6), max_steps=100)
    assert np.array_equal(result.adj, complete(6)) and result.steps == 0


def test_progress_bar_is_written_to_stderr(capsys, engine):
    optimize(random_regular(16, 4, seed=0), max_steps=200, progress=True)
    assert "swap" in capsys.readouterr().err


def test_bank_is_sorted_with_the_best_first_and_the_ring_lattice_last():
    graphs = bank(24, 4, 5, seed=2, time_budget=1.0)
    assert [graph.label for graph in graphs] == ["M0", "M1", "M2", "M3", "M4"]
    values = [graph.aspl for graph in graphs]
    assert values == sorted(values)
    assert np.array_equal(graphs[-1].adj, ring_lattice(24, 4))
    for graph in graphs:
        stats = distance_stats(graph.adj)
        assert graph.aspl == stats.aspl and graph.diameter == stats.diameter
        assert (graph.adj.sum(axis=1) == 4).all()
    assert values[0] < values[-1]


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda: optimize(random_regular(16, 4), strategy="tabu", max_steps=10), "strategy"),
        (lambda: optimize(random_regular(16, 4), max_steps=0), "max_steps"),
        (lambda: optimize(random_regular(16, 4), time_budget=-1.0), "time_budget"),
        (lambda: optimize(random_regular(16, 4), time_budget=float("inf")), "time_budget"),
        (lambda: optimize(ring_lattice(16, 4), max_steps=5, symmetry=3), "divisor"),
        (lambda: optimize(ring_lattice(16, 4), strategy="rgp", symmetry=2), "rgp"),
        (
            lambda: optimize(np.kron(np.eye(2, dtype=np.uint8), complete(4)), max_steps=5),
            "connected",
        ),
        (
            lambda: optimize(nx.to_numpy_array(nx.path_graph(5), dtype=np.uint8), max_steps=5),
            "regular",
        ),
        (lambda: bank(9, 3, 4, time_budget=1.0), "n\\*k must be even"),
        (lambda: bank(16, 4, 1, time_budget=1.0), "count"),
        (lambda: bank(16, 4, 3, time_budget=0.0), "time_budget"),
    ],
)
def test_bad_inputs_raise(call, words, engine):
    with pytest.raises(TopopruneError, match=words):
        call()
