"""Graph generators and representation conversions: exact structure, seeding, errors."""

from __future__ import annotations

import subprocess
import sys

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from topoprune.errors import TopopruneError
from topoprune.graphs.generate import (
    _connect,  # the component-merging step, tested directly
    check_adjacency,
    check_regular,
    complete,
    component_labels,
    degree_for,
    edge_list,
    erdos_renyi,
    from_neighbours,
    random_regular,
    ring_lattice,
    to_neighbours,
    watts_strogatz,
)


@st.composite
def regular_sizes(draw, max_nodes: int = 70) -> tuple[int, int]:
    """(n, k) with n >= 3, 2 <= k < n and n*k even."""
    n = draw(st.integers(3, max_nodes))
    k = draw(st.integers(2, n - 1).filter(lambda k: n * k % 2 == 0))
    return n, k


def assert_simple_graph(adj: np.ndarray, n: int) -> None:
    assert adj.shape == (n, n) and adj.dtype == np.uint8
    assert np.array_equal(adj, adj.T)
    assert not adj.diagonal().any()
    assert set(np.unique(adj).tolist()) <= {0, 1}


@settings(max_examples=120, deadline=None)
@given(size=regular_sizes(), seed=st.integers(0, 2**32 - 1))
def test_random_regular_is_a_connected_simple_regular_graph(size, seed):
    n, k = size
    adj = random_regular(n, k, seed=seed)
    assert_simple_graph(adj, n)
    assert adj.sum(axis=1).tolist() == [k] * n
    assert nx.is_connected(nx.from_numpy_array(adj))


@pytest.mark.parametrize("k", [3, 8])
def test_random_regular_handles_4096_nodes(k):
    adj = random_regular(4096, k, seed=7)
    assert_simple_graph(adj, 4096)
    assert (adj.sum(axis=1) == k).all()
    assert component_labels(4096, edge_list(adj)).max() == 0


def test_random_regular_same_seed_same_graph_and_new_seed_new_graph():
    graphs = [random_regular(64, 8, seed=seed) for seed in range(4)]
    assert np.array_equal(graphs[0], random_regular(64, 8, seed=0))
    for i in range(4):
        for j in range(i + 1, 4):
            assert not np.array_equal(graphs[i], graphs[j])


@pytest.mark.parametrize("seed", range(5))
def test_components_are_joined_keeping_degrees(seed):
    # Three disjoint 4-regular pieces (two ring lattices and K5): the merge step must join them.
    pieces = [ring_lattice(8, 4), ring_lattice(9, 4), complete(5)]
    offsets = np.cumsum([0] + [len(p) for p in pieces])
    edges = np.concatenate([edge_list(p) + o for p, o in zip(pieces, offsets, strict=False)])
    u, v = edges[:, 0].copy(), edges[:, 1].copy()
    _connect(22, u, v, np.random.default_rng(seed))
    adj = np.zeros((22, 22), dtype=np.uint8)
    adj[u, v] = adj[v, u] = 1
    assert_simple_graph(adj, 22)
    assert int(adj.sum()) == 2 * len(edges)  # no edge was lost to a repeat
    assert (adj.sum(axis=1) == 4).all()
    assert nx.is_connected(nx.from_numpy_array(adj))


def test_random_regular_two_regular_is_one_cycle_and_dense_is_complete():
    cycle = random_regular(30, 2, seed=3)
    assert nx.is_isomorphic(nx.from_numpy_array(cycle), nx.cycle_graph(30))
    assert np.array_equal(random_regular(9, 8, seed=1), complete(9))


@settings(max_examples=60, deadline=None)
@given(size=regular_sizes(max_nodes=60))
def test_ring_lattice_is_the_circulant_graph(size):
    n, k = size
    offsets = list(range(1, k // 2 + 1)) + ([n // 2] if k % 2 else [])
    expected = nx.to_numpy_array(nx.circulant_graph(n, offsets), nodelist=range(n), dtype=np.uint8)
    adj = ring_lattice(n, k)
    assert_simple_graph(adj, n)
    assert np.array_equal(adj, expected)
    assert (adj.sum(axis=1) == k).all()


def test_ring_lattice_neighbours_exact():
    assert to_neighbours(ring_lattice(10, 4))[0].tolist() == [1, 2, 8, 9]
    assert to_neighbours(ring_lattice(10, 4))[5].tolist() == [3, 4, 6, 7]
    assert to_neighbours(ring_lattice(10, 5))[0].tolist() == [1, 2, 5, 8, 9]
    assert to_neighbours(ring_lattice(8, 7))[3].tolist() == [0, 1, 2, 4, 5, 6, 7]


def test_watts_strogatz_keeps_edges_and_is_seeded():
    assert np.array_equal(watts_strogatz(40, 6, 0.0, seed=5), ring_lattice(40, 6))
    rewired = watts_strogatz(40, 6, 0.3, seed=5)
    assert_simple_graph(rewired, 40)
    assert int(rewired.sum()) == 40 * 6
    assert np.array_equal(rewired, watts_strogatz(40, 6, 0.3, seed=5))
    assert not np.array_equal(rewired, watts_strogatz(40, 6, 0.3, seed=6))
    assert not np.array_equal(rewired, ring_lattice(40, 6))
    all_rewired = watts_strogatz(40, 6, 1.0, seed=5)
    assert int(np.triu(all_rewired & ring_lattice(40, 6)).sum()) < 40


def test_erdos_renyi_extremes_and_seeding():
    assert not erdos_renyi(12, 0.0).any()
    assert np.array_equal(erdos_renyi(12, 1.0), complete(12))
    adj = erdos_renyi(300, 0.05, seed=2)
    assert_simple_graph(adj, 300)
    assert np.array_equal(adj, erdos_renyi(300, 0.05, seed=2))
    assert not np.array_equal(adj, erdos_renyi(300, 0.05, seed=3))
    pairs = 300 * 299 // 2
    edges = int(adj.sum()) // 2
    assert abs(edges - 0.05 * pairs) < 5 * np.sqrt(0.05 * 0.95 * pairs)


def test_complete_graph():
    adj = complete(6)
    assert_simple_graph(adj, 6)
    assert int(adj.sum()) == 30


def test_degree_for_published_table():
    table = {0.9375: 4, 0.90625: 6, 0.875: 8, 0.75: 16, 0.4375: 36}
    assert {s: degree_for(64, s) for s in table} == table
    assert degree_for(16, 0.75) == 4
    assert degree_for(64, 0.0) == 64  # k == n stands for the dense model


def test_conversions_round_trip():
    adj = random_regular(50, 6, seed=4)
    nbrs = to_neighbours(adj)
    assert nbrs.shape == (50, 6) and nbrs.dtype == np.int64
    assert (np.diff(nbrs, axis=1) > 0).all()
    assert np.array_equal(from_neighbours(nbrs), adj)
    edges = edge_list(adj)
    assert edges.shape == (150, 2) and (edges[:, 0] < edges[:, 1]).all()
    assert edges.tolist() == sorted(edges.tolist())
    assert edges.tolist() == sorted(sorted(e) for e in nx.from_numpy_array(adj).edges())


def test_component_labels():
    edges = np.array([[0, 1], [1, 2], [3, 4]])
    assert component_labels(6, edges).tolist() == [0, 0, 0, 1, 1, 2]


BAD_CALLS = {
    "sparsity 1": lambda: degree_for(64, 1.0),
    "negative sparsity": lambda: degree_for(64, -0.1),
    "two nodes": lambda: degree_for(2, 0.5),
    "degree below 2": lambda: degree_for(64, 0.99),
    "odd n*k": lambda: degree_for(63, 1 - 5 / 63),
    "check n < 3": lambda: check_regular(2, 2),
    "check k < 2": lambda: check_regular(10, 1),
    "check k >= n": lambda: check_regular(10, 10),
    "check n*k odd": lambda: check_regular(9, 3),
    "float nodes": lambda: check_regular(10.0, 4),
    "random odd": lambda: random_regular(9, 3),
    "random k >= n": lambda: random_regular(5, 5),
    "lattice odd": lambda: ring_lattice(7, 3),
    "ws p > 1": lambda: watts_strogatz(20, 4, 1.5),
    "ws bad k": lambda: watts_strogatz(20, 1, 0.1),
    "er p < 0": lambda: erdos_renyi(20, -0.1),
    "er n < 3": lambda: erdos_renyi(2, 0.5),
    "complete n < 3": lambda: complete(1),
    "neighbours irregular": lambda: to_neighbours(watts_strogatz(20, 4, 0.5, seed=1)),
    "neighbours out of range": lambda: from_neighbours(np.array([[1, 3], [0, 2], [1, 0]])),
    "neighbours repeated": lambda: from_neighbours(np.array([[1, 1], [0, 2], [1, 0]])),
    "neighbours asymmetric": lambda: from_neighbours(np.array([[1, 2], [0, 2], [1, 3], [0, 1]])),
    "adjacency not square": lambda: check_adjacency(np.zeros((3, 4))),
    "adjacency values": lambda: check_adjacency(2 * complete(4)),
    "adjacency diagonal": lambda: check_adjacency(np.ones((4, 4))),
    "adjacency asymmetric": lambda: check_adjacency(np.triu(complete(4))),
}


@pytest.mark.parametrize("call", BAD_CALLS.values(), ids=BAD_CALLS.keys())
def test_bad_input_raises_topoprune_error(call):
    with pytest.raises(TopopruneError):
        call()


def test_importing_the_graph_engine_does_not_import_torch():
    code = (
        "import sys\n"
        "import topoprune.graphs\n"
        "import topoprune.graphs.generate, topoprune.graphs.smallworld, topoprune.graphs.io\n"
        "import topoprune.graphs.paths, topoprune.graphs.swap\n"
        "topoprune.graphs.generate.random_regular(32, 4)\n"
        "print('torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
