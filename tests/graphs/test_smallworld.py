"""Small-world measures against networkx and against the textbook extremes."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from topoprune.errors import TopopruneError
from topoprune.graphs.generate import (
    complete,
    edge_list,
    erdos_renyi,
    random_regular,
    ring_lattice,
    watts_strogatz,
)
from topoprune.graphs.smallworld import (
    average_clustering,
    characteristic_path_length,
    lattice_reference,
    omega,
    random_reference,
    sigma,
)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(3, 60), p=st.floats(0.0, 1.0), seed=st.integers(0, 1000))
def test_clustering_equals_networkx(n, p, seed):
    adj = erdos_renyi(n, p, seed=seed)
    expected = nx.average_clustering(nx.from_numpy_array(adj))
    assert average_clustering(adj) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_clustering_exact_values():
    assert average_clustering(complete(7)) == 1.0
    assert average_clustering(ring_lattice(20, 2)) == 0.0
    assert average_clustering(ring_lattice(20, 4)) == 0.5  # 3 (k - 2) / (4 (k - 1)) for k = 4
    assert average_clustering(ring_lattice(30, 6)) == pytest.approx(0.6, rel=1e-15)


def test_characteristic_path_length_equals_networkx():
    adj = watts_strogatz(60, 4, 0.2, seed=1)
    expected = nx.average_shortest_path_length(nx.from_numpy_array(adj))
    assert characteristic_path_length(adj) == pytest.approx(expected, rel=1e-12)
    assert characteristic_path_length(erdos_renyi(10, 0.0)) == float("inf")


def ring_span(adj: np.ndarray) -> int:
    """Sum over edges of the ring distance between the endpoints' labels."""
    n = len(adj)
    gaps = np.abs(np.diff(edge_list(adj), axis=1))
    return int(np.minimum(gaps, n - gaps).sum())


@pytest.mark.parametrize(
    "adj",
    # The sparse G(n, p) graph is connected but has leaves, so some swap windows disconnect it
    # and must be undone.
    [watts_strogatz(80, 6, 0.4, seed=3), erdos_renyi(60, 0.07, seed=0)],
    ids=["small world", "sparse random"],
)
def test_references_of_an_irregular_graph_keep_degrees_and_connectivity(adj):
    assert nx.is_connected(nx.from_numpy_array(adj))
    for reference in (random_reference(adj, seed=1), lattice_reference(adj, seed=1)):
        assert np.array_equal(reference.sum(axis=1), adj.sum(axis=1))
        assert np.array_equal(reference, reference.T) and not reference.diagonal().any()
        assert nx.is_connected(nx.from_numpy_array(reference))
        assert not np.array_equal(reference, adj)
    assert ring_span(lattice_reference(adj, seed=1)) < ring_span(adj)
    assert np.array_equal(random_reference(adj, seed=1), random_reference(adj, seed=1))


def test_references_of_a_regular_graph_are_exact():
    adj = random_regular(40, 4, seed=2)
    assert np.array_equal(lattice_reference(adj), ring_lattice(40, 4))
    assert np.array_equal(random_reference(adj, seed=9), random_regular(40, 4, seed=9))


def test_watts_strogatz_small_world_has_sigma_above_one():
    small_world = watts_strogatz(120, 6, 0.1, seed=0)
    assert sigma(small_world, samples=3, seed=0) > 3.0
    assert -0.6 < omega(small_world, samples=3, seed=0) < 0.3


def test_random_graph_sigma_near_one_and_omega_near_plus_one():
    random_graph = random_regular(150, 10, seed=4)
    assert 0.7 < sigma(random_graph, samples=5, seed=0) < 1.3
    assert omega(random_graph, samples=3, seed=0) > 0.8


def test_ring_lattice_omega_near_minus_one():
    assert omega(ring_lattice(300, 4), samples=2, seed=0) < -0.85
    assert sigma(ring_lattice(300, 4), samples=2, seed=0) > 1.0


def test_sigma_and_omega_are_seeded():
    adj = watts_strogatz(60, 4, 0.2, seed=2)
    assert sigma(adj, samples=2, seed=5) == sigma(adj, samples=2, seed=5)
    assert omega(adj, samples=2, seed=5) == omega(adj, samples=2, seed=5)


BAD_CALLS = {
    "sigma disconnected": lambda: sigma(erdos_renyi(30, 0.0)),
    "omega disconnected": lambda: omega(erdos_renyi(30, 0.0)),
    "reference disconnected": lambda: random_reference(erdos_renyi(30, 0.0)),
    "no samples": lambda: sigma(ring_lattice(20, 4), samples=0),
    "sigma without triangles": lambda: sigma(ring_lattice(20, 2)),
    "omega without triangles": lambda: omega(ring_lattice(20, 2)),
}


@pytest.mark.parametrize("call", BAD_CALLS.values(), ids=BAD_CALLS.keys())
def test_bad_input_raises_topoprune_error(call):
    with pytest.raises(TopopruneError):
        call()
