"""Layered (multipartite) graphs: local start, rewiring, square clustering, small-world metrics."""

from __future__ import annotations

import json
from fractions import Fraction

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from topoprune.errors import TopopruneError
from topoprune.graphs.layered import (
    layered_adjacency,
    layered_metrics,
    layered_reference,
    local_block,
    rewire_block,
    smallworld_blocks,
    square_clustering,
)


def input_counts(m_in: int, links: int) -> np.ndarray:
    ins = np.arange(m_in)
    return (ins + 1) * links // m_in - ins * links // m_in


def ring_distance(m_in: int, m_out: int, o: int, i: int) -> Fraction:
    """Circular distance from output o to input i's position i * m_out / m_in, exactly."""
    ahead = (o - Fraction(i * m_out, m_in)) % m_out
    return min(ahead, m_out - ahead)


def nearest_block(m_in: int, m_out: int, links: int) -> np.ndarray:
    """Each input linked to its count nearest outputs (ties: the output ahead), by brute force."""
    block = np.zeros((m_out, m_in), dtype=bool)
    for i, count in enumerate(input_counts(m_in, links).tolist()):
        centre = Fraction(i * m_out, m_in)

        def key(o: int, centre: Fraction = centre) -> tuple[Fraction, bool]:
            ahead, behind = (o - centre) % m_out, (centre - o) % m_out
            return min(ahead, behind), ahead > behind

        block[sorted(range(m_out), key=key)[:count], i] = True
    return block


def is_arc(column: np.ndarray) -> bool:
    """Whether the linked outputs of one input form one run on the ring."""
    starts = column & ~np.roll(column, 1)
    return column.all() or not column.any() or int(starts.sum()) == 1


@st.composite
def block_sizes(draw, most: int = 40) -> tuple[int, int, int]:
    m_in, m_out = draw(st.integers(1, most)), draw(st.integers(1, most))
    links = draw(
        st.one_of(
            st.integers(1, m_in * m_out),
            st.integers(max(m_in, m_out), min(m_in * m_out, 2 * max(m_in, m_out))),
        )
    )
    return m_in, m_out, links


@settings(max_examples=150, deadline=None)
@given(sizes=block_sizes())
def test_local_block_counts_and_coverage(sizes):
    m_in, m_out, links = sizes
    block = local_block(m_in, m_out, links)
    assert block.dtype == np.bool_ and block.shape == (m_out, m_in)
    assert int(block.sum()) == links
    out_degrees = block.sum(axis=0)
    assert np.array_equal(out_degrees, input_counts(m_in, links))
    assert out_degrees.max() - out_degrees.min() <= 1
    if links >= m_in:
        assert (out_degrees >= 1).all()
    if links >= m_out:
        assert (block.sum(axis=1) >= 1).all()
    assert np.array_equal(local_block(m_in, m_out, links), block)


def assert_local(block: np.ndarray, m_in: int, m_out: int, links: int) -> None:
    """The block holds each input's nearest outputs, or (repaired) outputs at most one farther."""
    ideal = nearest_block(m_in, m_out, links)
    if links < m_out or ideal.any(axis=1).all():
        assert np.array_equal(block, ideal)  # no repair needed: exactly the nearest outputs
        return
    # Repaired: each input still links a run of outputs, each within one output spacing of the
    # farthest output it would have had without the repair.
    for i in range(m_in):
        assert is_arc(block[:, i])
        if ideal[:, i].any():
            bound = max(ring_distance(m_in, m_out, o, i) for o in np.flatnonzero(ideal[:, i]))
            for o in np.flatnonzero(block[:, i]).tolist():
                assert ring_distance(m_in, m_out, o, i) < bound + 1


@settings(max_examples=150, deadline=None)
@given(sizes=block_sizes())
def test_local_block_links_are_the_nearest_possible(sizes):
    m_in, m_out, links = sizes
    assert_local(local_block(m_in, m_out, links), m_in, m_out, links)


@pytest.mark.parametrize(
    "sizes", [(3, 8, 8), (28, 29, 29), (29, 28, 28), (30, 22, 25), (49, 47, 48)]
)
def test_local_block_repairs_uncovered_outputs(sizes):
    m_in, m_out, links = sizes
    assert not nearest_block(m_in, m_out, links).any(axis=1).all()  # the repair is exercised
    block = local_block(m_in, m_out, links)
    assert block.any(axis=1).all()
    assert int(block.sum()) == links
    assert np.array_equal(block.sum(axis=0), input_counts(m_in, links))
    assert_local(block, m_in, m_out, links)


@pytest.mark.parametrize(
    ("m", "d", "offsets"), [(12, 1, {0}), (12, 3, {-1, 0, 1}), (9, 4, {-1, 0, 1, 2})]
)
def test_local_block_of_equal_layers_is_a_band(m, d, offsets):
    block = local_block(m, m, m * d)
    outs, ins = np.indices((m, m))
    band = np.isin((outs - ins + m // 2) % m - m // 2, sorted(offsets))
    assert np.array_equal(block, band)
    assert (block.sum(axis=1) == d).all()


@pytest.mark.parametrize(
    ("m_in", "m_out", "links"), [(3, 4, 0), (3, 4, 13), (0, 4, 1), (3, -1, 1), (3, 4, 2.5)]
)
def test_local_block_rejects_bad_sizes(m_in, m_out, links):
    with pytest.raises(TopopruneError):
        local_block(m_in, m_out, links)


@settings(max_examples=60, deadline=None)
@given(sizes=block_sizes(30), p=st.floats(0.0, 1.0), seed=st.integers(0, 2**32))
def test_rewiring_keeps_counts_degrees_and_coverage(sizes, p, seed):
    m_in, m_out, links = sizes
    block = local_block(m_in, m_out, links)
    rewired = rewire_block(block, p, np.random.default_rng(seed))
    assert rewired.dtype == np.bool_ and rewired.shape == block.shape
    assert int(rewired.sum()) == links
    assert np.array_equal(rewired.sum(axis=0), block.sum(axis=0))
    if links >= max(m_in, m_out):
        assert rewired.any(axis=0).all() and rewired.any(axis=1).all()
    again = rewire_block(block, p, np.random.default_rng(seed))
    assert np.array_equal(again, rewired)


def test_rewiring_p0_is_identity_and_p1_changes_most_links():
    block = local_block(40, 40, 200)
    assert np.array_equal(rewire_block(block, 0.0, np.random.default_rng(0)), block)
    rewired = rewire_block(block, 1.0, np.random.default_rng(0))
    kept = int((rewired & block).sum())
    assert kept < 0.3 * 200  # about the block density (1/8) of the links land on old places
    # The moved links spread over the ring: their mean distance is near the uniform mean (10).
    outs, ins = np.nonzero(rewired)
    gaps = np.abs(outs - ins)
    assert np.minimum(gaps, 40 - gaps).mean() > 7


def test_rewiring_never_leaves_an_output_without_input():
    diagonal = np.eye(6, dtype=bool)  # every output has exactly one input: each move is refused
    assert np.array_equal(rewire_block(diagonal, 1.0, np.random.default_rng(0)), diagonal)
    sparse = np.zeros((6, 6), dtype=bool)  # fewer links than outputs: moves are free
    sparse[0, :3] = True
    moved = rewire_block(sparse, 1.0, np.random.default_rng(0))
    assert not np.array_equal(moved, sparse) and np.array_equal(
        moved.sum(axis=0), [1, 1, 1, 0, 0, 0]
    )


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_rewiring_rejects_bad_probability(p):
    with pytest.raises(TopopruneError):
        rewire_block(local_block(4, 4, 8), p, np.random.default_rng(0))


def test_smallworld_blocks_are_seeded():
    sizes, links = [3, 16, 16, 4], [16, 64, 20]
    blocks = smallworld_blocks(sizes, links, 0.3, seed=5)
    assert [b.shape for b in blocks] == [(16, 3), (16, 16), (4, 16)]
    assert [int(b.sum()) for b in blocks] == links
    again = smallworld_blocks(sizes, links, 0.3, seed=5)
    assert all(np.array_equal(a, b) for a, b in zip(blocks, again, strict=True))
    other = smallworld_blocks(sizes, links, 0.3, seed=6)
    assert not all(np.array_equal(a, b) for a, b in zip(blocks, other, strict=True))
    start = smallworld_blocks(sizes, links, 0.0)
    assert all(
        np.array_equal(b, local_block(m_in, m_out, k))
        for b, m_in, m_out, k in zip(start, sizes[:-1], sizes[1:], links, strict=True)
    )


@pytest.mark.parametrize(("sizes", "links"), [([4], []), ([4, 4], [4, 4]), ([4, 4, 4], [8])])
def test_smallworld_blocks_rejects_mismatched_lists(sizes, links):
    with pytest.raises(TopopruneError):
        smallworld_blocks(sizes, links, 0.1)


def test_layered_adjacency_places_blocks_and_skips():
    first = np.array([[1, 0], [1, 1], [0, 1]], dtype=bool)  # layer 0 (2 units) -> layer 1 (3)
    second = np.array([[1, 1, 0]], dtype=bool)  # layer 1 -> layer 2 (1 unit)
    skip = np.array([[0, 1]], dtype=bool)  # layer 0 -> layer 2
    adj = layered_adjacency([first, second])
    assert adj.dtype == np.uint8 and adj.shape == (6, 6)
    assert np.array_equal(adj, adj.T) and not adj.diagonal().any()
    assert sorted(map(tuple, np.argwhere(np.triu(adj)).tolist())) == [
        (0, 2),
        (0, 3),
        (1, 3),
        (1, 4),
        (2, 5),
        (3, 5),
    ]
    with_skip = layered_adjacency([first, second], {(0, 2): skip})
    assert np.argwhere(with_skip != adj).tolist() == [[1, 5], [5, 1]]  # unit 1 of layer 0 - node 5
    assert with_skip[1, 5] == 1


@pytest.mark.parametrize(
    "skips",
    [
        {(0, 1): np.ones((3, 2), dtype=bool)},  # not a skip: consecutive layers
        {(0, 3): np.ones((1, 2), dtype=bool)},  # no layer 3
        {(0, 2): np.ones((2, 2), dtype=bool)},  # wrong shape
        {(0, 2, 1): np.ones((1, 2), dtype=bool)},  # not a pair
    ],
)
def test_layered_adjacency_rejects_bad_skips(skips):
    blocks = [np.ones((3, 2), dtype=bool), np.ones((1, 3), dtype=bool)]
    with pytest.raises(TopopruneError):
        layered_adjacency(blocks, skips)


def test_layered_adjacency_rejects_mismatched_blocks():
    with pytest.raises(TopopruneError):
        layered_adjacency([np.ones((3, 2), dtype=bool), np.ones((1, 4), dtype=bool)])
    with pytest.raises(TopopruneError):
        layered_adjacency([])


def assert_square_clustering_is_networkx(adj: np.ndarray) -> None:
    expected = float(np.mean(list(nx.square_clustering(nx.from_numpy_array(adj)).values())))
    assert square_clustering(adj) == pytest.approx(expected, rel=1e-12, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 24), density=st.floats(0.0, 1.0), seed=st.integers(0, 2**32))
def test_square_clustering_equals_networkx_on_random_graphs(n, density, seed):
    upper = np.triu(np.random.default_rng(seed).random((n, n)) < density, 1)
    assert_square_clustering_is_networkx((upper | upper.T).astype(np.uint8))


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 9), min_size=2, max_size=5),
    density=st.floats(0.05, 1.0),
    p=st.floats(0.0, 1.0),
    skip=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_square_clustering_equals_networkx_on_layered_graphs(sizes, density, p, skip, seed):
    links = [max(1, round(density * a * b)) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    blocks = smallworld_blocks(sizes, links, p, seed=seed)
    skips = {}
    if skip and len(sizes) >= 3:
        skips[(0, 2)] = np.random.default_rng(seed).random((sizes[2], sizes[0])) < density
    assert_square_clustering_is_networkx(layered_adjacency(blocks, skips))


def test_square_clustering_exact_values():
    cycle = np.roll(np.eye(4, dtype=np.uint8), 1, axis=1)
    assert square_clustering(cycle | cycle.T) == 1.0
    star = np.zeros((4, 4), dtype=np.uint8)
    star[0, 1:] = star[1:, 0] = 1
    assert square_clustering(star) == 0.0
    assert square_clustering(np.zeros((3, 3), dtype=np.uint8)) == 0.0


def assert_json_safe(metrics: dict) -> None:
    text = json.dumps(metrics, allow_nan=False)
    assert json.loads(text) == metrics
    assert all(value is None or type(value) in (int, float) for value in metrics.values())


KEYS = [
    "nodes",
    "links",
    "square_clustering",
    "triangle_clustering",
    "path_length",
    "sigma",
    "omega",
    "sigma_square",
    "omega_square",
]


def test_metrics_of_a_layered_graph():
    blocks = smallworld_blocks([3, 24, 24, 12, 4], [24, 96, 48, 12], p=0.2, seed=1)
    metrics = layered_metrics(blocks, samples=2)
    assert list(metrics) == KEYS
    assert_json_safe(metrics)
    graph = nx.from_numpy_array(layered_adjacency(blocks))
    assert metrics["nodes"] == 67 and metrics["links"] == 180
    assert metrics["path_length"] == pytest.approx(
        nx.average_shortest_path_length(graph), rel=1e-12
    )
    assert metrics["triangle_clustering"] == 0.0
    assert metrics["square_clustering"] == pytest.approx(
        np.mean(list(nx.square_clustering(graph).values())), rel=1e-12
    )
    assert metrics["sigma"] is None and metrics["omega"] is None  # bipartite: no triangles
    assert isinstance(metrics["sigma_square"], float) and metrics["sigma_square"] > 0
    assert isinstance(metrics["omega_square"], float) and -1.5 < metrics["omega_square"] < 1.5
    assert layered_metrics(blocks, samples=2) == metrics  # seeded


def test_metrics_follow_the_small_world_trend():
    sizes, links = [4, 48, 48, 48, 4], [48, 240, 240, 48]
    lattice = layered_metrics(smallworld_blocks(sizes, links, 0.0), samples=2)
    rewired = layered_metrics(smallworld_blocks(sizes, links, 1.0), samples=2)
    assert rewired["path_length"] < lattice["path_length"]
    assert rewired["square_clustering"] < lattice["square_clustering"]
    assert rewired["omega_square"] > lattice["omega_square"]


def test_metrics_of_a_disconnected_graph_are_none():
    blocks = [np.eye(3, dtype=bool), np.eye(3, dtype=bool)]  # three separate chains
    metrics = layered_metrics(blocks, samples=1)
    assert_json_safe(metrics)
    assert metrics["path_length"] is None
    assert all(metrics[key] is None for key in ("sigma", "omega", "sigma_square", "omega_square"))
    assert metrics["nodes"] == 9 and metrics["links"] == 6


def test_metrics_with_a_skip_block_have_triangles():
    blocks = smallworld_blocks([6, 12, 6], [24, 24], p=0.3, seed=2)
    skips = {(0, 2): local_block(6, 6, 12)}
    metrics = layered_metrics(blocks, skips=skips, samples=2)
    assert_json_safe(metrics)
    graph = nx.from_numpy_array(layered_adjacency(blocks, skips))
    assert metrics["links"] == 60
    assert metrics["triangle_clustering"] > 0
    assert metrics["triangle_clustering"] == pytest.approx(nx.average_clustering(graph), rel=1e-12)
    assert isinstance(metrics["sigma"], float) and isinstance(metrics["omega"], float)


@pytest.mark.parametrize(
    ("samples", "swaps"), [(0, 10), (1, -1)], ids=["no samples", "negative swaps"]
)
def test_metrics_reject_bad_arguments(samples, swaps):
    blocks = smallworld_blocks([2, 4, 2], [4, 4], 0.0)
    with pytest.raises(TopopruneError):
        layered_metrics(blocks, samples=samples, swaps_per_link=swaps)


def pair_regions(blocks, skips) -> list[tuple[slice, slice]]:
    """(rows, cols) of each layer pair's block inside the layered adjacency."""
    sizes = [blocks[0].shape[1]] + [b.shape[0] for b in blocks]
    starts = np.concatenate([[0], np.cumsum(sizes)])
    pairs = [(layer, layer + 1) for layer in range(len(blocks))] + list(skips)
    return [(slice(starts[t], starts[t + 1]), slice(starts[f], starts[f + 1])) for f, t in pairs]


def summed_distance(adj, blocks, skips) -> Fraction:
    """Sum over links of the circular distance between output o and i * m_out / m_in."""
    total = Fraction(0)
    for rows, cols in pair_regions(blocks, skips):
        m_out, m_in = rows.stop - rows.start, cols.stop - cols.start
        for o, i in np.argwhere(adj[rows, cols]).tolist():
            total += ring_distance(m_in, m_out, o, i)
    return total


@pytest.mark.parametrize("with_skip", [False, True])
def test_references_keep_degrees_and_layer_pairs(with_skip):
    blocks = smallworld_blocks([5, 20, 20, 5], [20, 80, 20], p=0.5, seed=3)
    skips = {(0, 2): local_block(5, 20, 20)} if with_skip else {}
    adj = layered_adjacency(blocks, skips)
    regions = pair_regions(blocks, skips)
    allowed = np.zeros_like(adj)
    for rows, cols in regions:
        allowed[rows, cols] = allowed[cols, rows] = 1
    for kind in ("random", "lattice"):
        reference = layered_reference(blocks, skips=skips, kind=kind, seed=4)
        assert reference.dtype == np.uint8 and np.array_equal(reference, reference.T)
        assert np.array_equal(reference.sum(axis=1), adj.sum(axis=1))
        assert not (reference & (1 - allowed)).any()  # no link leaves its layer pair
        for rows, cols in regions:
            assert reference[rows, cols].sum() == adj[rows, cols].sum()
        assert nx.is_connected(nx.from_numpy_array(reference))
        assert not np.array_equal(reference, adj)
        again = layered_reference(blocks, skips=skips, kind=kind, seed=4)
        assert np.array_equal(again, reference)
    lattice = layered_reference(blocks, skips=skips, kind="lattice", seed=4)
    assert summed_distance(lattice, blocks, skips) < summed_distance(adj, blocks, skips)


def test_references_need_a_connected_graph_and_a_known_kind():
    blocks = [np.eye(3, dtype=bool), np.eye(3, dtype=bool)]
    with pytest.raises(TopopruneError):
        layered_reference(blocks)
    with pytest.raises(TopopruneError):
        layered_reference(smallworld_blocks([2, 4, 2], [8, 8], 0.0), kind="ring")


def test_metrics_match_their_definition_on_the_references():
    blocks = smallworld_blocks([6, 12, 6], [24, 24], p=0.3, seed=2)
    skips = {(0, 2): local_block(6, 6, 12)}
    metrics = layered_metrics(blocks, skips=skips, samples=2, seed=7)
    seeds = np.random.SeedSequence(7).generate_state(2).tolist()
    graph = nx.from_numpy_array(layered_adjacency(blocks, skips))
    randoms, lattices = (
        [
            nx.from_numpy_array(layered_reference(blocks, skips=skips, kind=kind, seed=s))
            for s in seeds
        ]
        for kind in ("random", "lattice")
    )
    length = nx.average_shortest_path_length(graph)
    l_rand = np.mean([nx.average_shortest_path_length(g) for g in randoms])

    def squares(g: nx.Graph) -> float:
        return float(np.mean(list(nx.square_clustering(g).values())))

    for suffix, measure in (("", nx.average_clustering), ("_square", squares)):
        c = measure(graph)
        c_rand = np.mean([measure(g) for g in randoms])
        c_latt = max([c] + [measure(g) for g in lattices])
        assert metrics["sigma" + suffix] == pytest.approx((c / c_rand) / (length / l_rand))
        assert metrics["omega" + suffix] == pytest.approx(l_rand / length - c / c_latt)


def test_references_of_a_sparse_graph_stay_connected():
    # Half the units have degree 2 here: some swaps cut the graph (without the undo, random
    # references with seeds 1 and 3 are disconnected) and must be undone.
    blocks = smallworld_blocks([4, 8, 8, 4], [8, 10, 8], p=0.0)
    assert nx.is_connected(nx.from_numpy_array(layered_adjacency(blocks)))
    for seed in range(5):
        for kind in ("random", "lattice"):
            reference = layered_reference(blocks, kind=kind, seed=seed)
            assert nx.is_connected(nx.from_numpy_array(reference))


def test_rewire_across_keeps_links_out_degrees_and_coverage():
    from topoprune.graphs.layered import rewire_across

    blocks = [local_block(16, 12, 48), local_block(12, 10, 30), local_block(10, 4, 12)]
    moved, skips = rewire_across(blocks, 0.6, np.random.default_rng(3))
    assert skips, "p = 0.6 over three layers moves some links past the next layer"
    total = sum(int(b.sum()) for b in moved) + sum(int(s.sum()) for s in skips.values())
    assert total == sum(int(b.sum()) for b in blocks)
    for f, block in enumerate(moved):
        out_degree = block.sum(axis=0) + sum(
            s.sum(axis=0) for (src, _), s in skips.items() if src == f
        )
        assert (out_degree == blocks[f].sum(axis=0)).all()
        assert block.any(axis=1).all()  # every unit of the next layer keeps an input
    for (f, t), skip in skips.items():
        assert t > f + 1 and skip.shape == (moved[t - 1].shape[0], moved[f].shape[1])
    again = rewire_across(blocks, 0.6, np.random.default_rng(3))
    assert all(np.array_equal(a, b) for a, b in zip(again[0], moved, strict=True))
    unchanged, none = rewire_across(blocks, 0.0, np.random.default_rng(3))
    assert not none and all(np.array_equal(a, b) for a, b in zip(unchanged, blocks, strict=True))
