"""Shortest-path statistics: exact agreement with networkx, the Moore bound, bad inputs."""

from __future__ import annotations

import math
import subprocess
import sys

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from topoprune.errors import TopopruneError
from topoprune.graphs.generate import complete, random_regular, ring_lattice
from topoprune.graphs.paths import (
    MooreBound,
    aspl,
    closed_neighbourhoods,
    diameter,
    distance_stats,
    expand,
    is_connected,
    moore_bound,
    neighbour_table,
    pack_rows,
)


def random_graph(n: int, p: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    upper = np.triu(rng.random((n, n)) < p, 1).astype(np.uint8)
    return upper | upper.T


def networkx_histogram(graph: nx.Graph) -> np.ndarray:
    """histogram[d] = unordered pairs at distance d, over the connected pairs."""
    lengths = dict(nx.all_pairs_shortest_path_length(graph))
    distances = [d for u, row in lengths.items() for v, d in row.items() if u < v]
    histogram = np.bincount(np.array(distances, dtype=np.int64), minlength=1)
    histogram[0] = 0
    return histogram


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 80), st.floats(0.0, 0.4), st.integers(0, 2**32 - 1))
def test_distance_stats_equal_networkx_on_random_graphs(n: int, p: float, seed: int):
    adj = random_graph(n, p, seed)
    graph = nx.from_numpy_array(adj)
    stats = distance_stats(adj)
    assert stats.connected == nx.is_connected(graph)
    assert np.array_equal(stats.histogram, networkx_histogram(graph))
    if stats.connected:
        assert stats.aspl == pytest.approx(nx.average_shortest_path_length(graph), abs=1e-12)
        assert stats.diameter == nx.diameter(graph)
    else:
        assert stats.aspl == math.inf and stats.diameter == -1


@settings(max_examples=25, deadline=None)
@given(st.sampled_from([(16, 3), (64, 4), (70, 5), (130, 8), (200, 6)]), st.integers(0, 10**6))
def test_aspl_and_diameter_equal_networkx_on_random_regular_graphs(size, seed):
    adj = random_regular(*size, seed=seed)
    graph = nx.from_numpy_array(adj)
    assert aspl(adj) == pytest.approx(nx.average_shortest_path_length(graph), abs=1e-12)
    assert diameter(adj) == nx.diameter(graph)
    assert is_connected(adj)


def test_closed_forms_for_cycles_complete_graphs_and_single_nodes():
    # A cycle C_n, n even: distances 1 .. n/2, each n times except n/2 (n/2 times).
    assert distance_stats(ring_lattice(10, 2)).histogram.tolist() == [0, 10, 10, 10, 10, 5]
    assert aspl(ring_lattice(10, 2)) == pytest.approx(125 / 45)
    assert distance_stats(complete(7)).histogram.tolist() == [0, 21]
    single = distance_stats(np.zeros((1, 1), dtype=np.uint8))
    assert (single.aspl, single.diameter, single.connected) == (0.0, 0, True)
    assert single.histogram.tolist() == [0]


def test_disconnected_graph_counts_only_connected_pairs():
    two_triangles = np.kron(np.eye(2, dtype=np.uint8), complete(3))
    stats = distance_stats(two_triangles)
    assert (stats.aspl, stats.diameter, stats.connected) == (math.inf, -1, False)
    assert stats.histogram.tolist() == [0, 6]
    assert not is_connected(two_triangles)
    assert distance_stats(np.zeros((4, 4), dtype=np.uint8)).histogram.tolist() == [0]


def test_bool_and_integer_adjacency_give_the_same_result():
    adj = random_regular(40, 4, seed=3)
    expected = aspl(adj)
    assert aspl(adj.astype(bool)) == expected
    assert aspl(adj.astype(np.int64)) == expected


@pytest.mark.parametrize(
    ("n", "k", "value"),
    [(16, 4, 1.7333), (64, 4, 2.8571), (64, 8, 1.8730), (256, 8, 2.7176), (1024, 8, 3.4839)],
)
def test_moore_bound_matches_the_reference_values(n, k, value):
    assert round(moore_bound(n, k).aspl, 4) == value


def test_moore_bound_diameters_and_extreme_degrees():
    sizes = [(16, 4), (64, 4), (64, 8), (256, 8), (1024, 8)]
    assert [moore_bound(n, k).diameter for n, k in sizes] == [2, 4, 2, 3, 4]
    assert moore_bound(10, 9) == MooreBound(aspl=1.0, diameter=1)
    # k = 2: the cycle is the only connected 2-regular graph, and it meets the bound.
    assert moore_bound(11, 2).aspl == pytest.approx(aspl(ring_lattice(11, 2)))
    assert moore_bound(11, 2).diameter == diameter(ring_lattice(11, 2))


@settings(max_examples=20, deadline=None)
@given(st.sampled_from([(10, 3), (24, 4), (50, 6), (64, 8)]), st.integers(0, 10**6))
def test_moore_bound_lies_below_every_random_regular_graph(size, seed):
    adj = random_regular(*size, seed=seed)
    bound = moore_bound(*size)
    assert aspl(adj) >= bound.aspl - 1e-12
    assert diameter(adj) >= bound.diameter


def test_moore_bound_rejects_impossible_sizes():
    with pytest.raises(TopopruneError):
        moore_bound(9, 3)
    with pytest.raises(TopopruneError):
        moore_bound(8, 8)


@pytest.mark.parametrize(
    ("adj", "words"),
    [
        (np.zeros((2, 3), dtype=np.uint8), "square"),
        (np.zeros((0, 0), dtype=np.uint8), "square"),
        (np.full((3, 3), 2, dtype=np.uint8), "0 and 1"),
        (np.array([[0, 0.5], [0.5, 0]]), "0 and 1"),
        (np.array([[0, 1, 0], [0, 0, 1], [0, 1, 0]], dtype=np.uint8), "symmetric"),
        (np.array([[1, 1], [1, 0]], dtype=np.uint8), "diagonal"),
    ],
)
def test_bad_adjacency_raises(adj, words):
    with pytest.raises(TopopruneError, match=words):
        distance_stats(adj)


def test_neighbour_table_pads_short_rows_with_the_node_itself():
    star = np.zeros((4, 4), dtype=np.uint8)
    star[0, 1:] = star[1:, 0] = 1
    assert neighbour_table(star).tolist() == [[1, 2, 3], [0, 1, 1], [0, 2, 2], [0, 3, 3]]


def test_one_expand_step_gives_the_nodes_within_distance_two():
    adj = random_regular(70, 3, seed=5)  # 70 nodes: two words per bitset row
    nbrs = neighbour_table(adj)
    within_one = closed_neighbourhoods(nbrs)
    assert np.array_equal(within_one, pack_rows(adj | np.eye(70, dtype=np.uint8)))
    within_two = expand(
        within_one, list(nbrs.T), np.empty_like(within_one), np.empty_like(within_one)
    )
    squared = ((adj.astype(int) + np.eye(70, dtype=int)) @ (adj + np.eye(70, dtype=int))) > 0
    assert np.array_equal(within_two, pack_rows(squared.astype(np.uint8)))


def test_importing_paths_and_swap_does_not_import_torch():
    code = (
        "import sys\n"
        "import topoprune.graphs.paths, topoprune.graphs.swap\n"
        "print('torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
