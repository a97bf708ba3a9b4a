"""Layered (multipartite) graphs for small-world structural pruning.

The graph behind small-world pruning of a network (Krishnan, Du & Cao, arXiv 1911.04453) has one
node per unit (a channel of a conv layer, a neuron of a linear layer) and links only between
consecutive layers. It is given by the layer sizes ``m_0 .. m_L`` and one bipartite block per
consecutive pair: ``blocks[l]`` is a bool array of shape ``(m_{l+1}, m_l)`` (rows: units of the
later layer, columns: units of the earlier layer, the orientation of a weight matrix), True where
the two units are linked. Optional skip blocks ``skips[(f, t)]`` of shape ``(m_t, m_f)``, with
``t > f + 1``, link non-consecutive layers.

The paper has no public code; the choices made here are our own:

- :func:`local_block` is the lattice-like start. Input unit ``i`` sits at position
  ``i * m_out / m_in`` on the output ring and is linked to the outputs nearest to it (circular
  distance; on a tie the output ahead of the position wins). Input ``i`` gets
  ``floor((i + 1) * links / m_in) - floor(i * links / m_in)`` links (floor or ceil of the mean,
  spread evenly). The outputs of one input are thus an arc of the ring. When
  ``links >= m_out``, outputs that no arc covers are covered by shifting neighbouring arcs one
  output each (no link then lies a whole output spacing farther out than its input's farthest
  nearest output would).
- :func:`rewire_block` is Watts–Strogatz inside a layer pair: each link keeps its input and
  moves, with probability ``p``, to a uniformly random output the input is not linked to; a
  move that would leave an output with no input is refused, so coverage survives rewiring.
- :func:`layered_metrics` compares the graph with degree-preserving references made by
  double-edge swaps inside each layer pair (and inside each skip pair), so that references are
  layered graphs with the same layer sizes and block link counts. A layered graph without skips
  is bipartite and has no triangles, so sigma and omega, built on triangle clustering, are
  undefined there; the square clustering of Lind et al. (2005), :func:`square_clustering`,
  stands in for it in ``sigma_square`` and ``omega_square``.

>>> blocks = smallworld_blocks([3, 8, 8, 2], [8, 24, 8], p=0.2, seed=0)
>>> [b.shape for b in blocks], [int(b.sum()) for b in blocks]
([(8, 3), (8, 8), (2, 8)], [8, 24, 8])
>>> metrics = layered_metrics(blocks, samples=1)
>>> metrics["nodes"], metrics["links"], metrics["sigma"], metrics["sigma_square"] is not None
(21, 40, None, True)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from topoprune.errors import TopopruneError
from topoprune.graphs.generate import _check_probability, _count
from topoprune.graphs.paths import aspl
from topoprune.graphs.smallworld import (
    SwapWindow,
    _check_connected,
    _reference_seeds,
    average_clustering,
)

__all__ = [
    "layered_adjacency",
    "layered_metrics",
    "layered_reference",
    "local_block",
    "rewire_across",
    "rewire_block",
    "smallworld_blocks",
    "square_clustering",
]

Skips = Mapping[tuple[int, int], np.ndarray]


def _scaled_offsets(m_in: int, m_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Forward offset and circular distance of output o from input i's position, both scaled.

    Input ``i`` sits at ``i * m_out / m_in`` on a ring of ``m_out`` outputs; multiplying by
    ``m_in`` keeps everything integer. Returns two ``(m_out, m_in)`` int64 arrays: the forward
    offset ``(o * m_in - i * m_out) mod (m_in * m_out)`` and the circular distance (the smaller
    of the forward and the backward offset), both ``m_in`` times the true value.
    """
    span = m_in * m_out
    outs = np.arange(m_out, dtype=np.int64)[:, None]
    ins = np.arange(m_in, dtype=np.int64)[None, :]
    forward = (outs * m_in - ins * m_out) % span
    return forward, np.minimum(forward, (span - forward) % span)


def _nearness(m_in: int, m_out: int) -> np.ndarray:
    """``(m_out, m_in)`` rank keys: lower is nearer; ties go to the output ahead of the position.

    The key is ``2 * distance + (1 if the output lies behind the position else 0)``; the keys of
    one column (one input) are all different, so sorting them is a deterministic total order.
    """
    forward, distance = _scaled_offsets(m_in, m_out)
    return 2 * distance + (forward != distance)


def _positive(value: object, name: str) -> int:
    value = _count(value, name)
    if value < 1:
        raise TopopruneError(f"{name} must be at least 1, got {value}")
    return value


def local_block(m_in: int, m_out: int, links: int) -> np.ndarray:
    """The lattice-like block: each input linked to the outputs nearest to its ring position.

    Returns a bool array of shape ``(m_out, m_in)`` with exactly ``links`` True entries
    (``1 <= links <= m_in * m_out``). Input ``i`` sits at position ``i * m_out / m_in`` of the
    ring of outputs and gets ``floor((i + 1) * links / m_in) - floor(i * links / m_in)`` links
    (the floor or the ceil of ``links / m_in``), to the outputs at the smallest circular distance
    from that position; an exact tie goes to the output ahead of it. Each input's outputs are
    thus an arc of the ring, and every input has a link when ``links >= m_in``.

    When ``links >= m_out``, outputs left without an input are then covered by shifting arcs:
    the arc next to an uncovered output moves one output towards it, which uncovers the far end
    of that arc only if nothing else covers it, and then the next arc along moves, and so on;
    the shortest such chain is applied (the first uncovered output, then the chain from the
    right, break ties) until every output has an input. The per-input counts and the link count
    stay, and each input's outputs stay an arc. For all sizes up to 29 x 29 (every link count)
    no link ends up a whole output spacing farther from its input's position than the farthest
    nearest-output link of that input. (Should no chain exist, a link of the nearest input that
    shares its output with another input is moved to the uncovered output instead; this was
    never needed in those sizes nor in 180 000 random ones up to 120 x 120.) Deterministic.

    >>> local_block(4, 4, 8).astype(int)
    array([[1, 0, 0, 1],
           [1, 1, 0, 0],
           [0, 1, 1, 0],
           [0, 0, 1, 1]])
    """
    m_in = _positive(m_in, "the input size m_in")
    m_out = _positive(m_out, "the output size m_out")
    links = _count(links, "the link count")
    if not 1 <= links <= m_in * m_out:
        raise TopopruneError(
            f"a ({m_out}, {m_in}) block holds 1 to {m_in * m_out} links, got links={links}"
        )
    ins = np.arange(m_in)
    counts = (ins + 1) * links // m_in - ins * links // m_in
    keys = _nearness(m_in, m_out)
    order = np.argsort(keys, axis=0, kind="stable")  # order[r, i]: the r-th nearest output of i
    block = np.zeros((m_out, m_in), dtype=bool)
    np.put_along_axis(block, order, np.arange(m_out)[:, None] < counts[None, :], axis=0)
    if links >= m_out and not block.any(axis=1).all():
        block = _cover_outputs(block, keys)
    return block


def _arcs(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First output and length of each input's arc, for a block whose columns are arcs.

    Column ``i`` must link a contiguous run of outputs on the ring (as the nearest outputs to a
    point are). Returns two ``(m_in,)`` int64 arrays; the start is 0 for an empty or full column.
    """
    counts = block.sum(axis=0)
    firsts = block & ~np.roll(block, 1, axis=0)  # linked, and the output before is not
    return np.where(firsts.any(axis=0), firsts.argmax(axis=0), 0), counts


def _arc_block(starts: np.ndarray, counts: np.ndarray, m_out: int) -> np.ndarray:
    """The ``(m_out, m_in)`` bool block of arcs: input i linked to ``counts[i]`` outputs in a row.

    They are ``starts[i], starts[i] + 1, ...`` (mod ``m_out``).
    """
    steps = np.arange(m_out)[:, None]
    return (steps - starts[None, :]) % m_out < counts[None, :]


def _shift_chain(
    starts: np.ndarray,
    counts: np.ndarray,
    cover: np.ndarray,
    hole: int,
    step: int,
    keys: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, int] | None:
    """Cover ``hole`` by shifting arcs one output each, ``step = +1``: from the right; or None.

    The arc that begins just after the hole (``step = +1``; ends just before it for ``-1``)
    moves one output towards it; that uncovers the output at its far end only if no other arc
    covers it, and then the next arc along moves, and so on. Each input moves at most once
    (among arcs next to the hole, the input nearest to it moves). Returns the new starts and
    cover and the number of arcs moved, or None when the chain runs into another hole.
    """
    m_out = len(cover)
    starts, cover = starts.copy(), cover.copy()
    movable = (counts > 0) & (counts < m_out)
    for moved in range(1, len(starts) + 1):
        after = (hole + step) % m_out
        if cover[after] == 0:
            return None
        edge = starts if step == 1 else (starts + counts - 1) % m_out
        candidates = np.flatnonzero(movable & (edge == after))
        if len(candidates) == 0:
            return None
        source = int(candidates[np.argmin(keys[hole, candidates])])
        movable[source] = False
        freed = (after + step * (counts[source] - 1)) % m_out
        starts[source] = (starts[source] - step) % m_out
        cover[hole] += 1
        cover[freed] -= 1
        if cover[freed] > 0:
            return starts, cover, moved
        hole = int(freed)
    return None


def _cover_outputs(block: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Give every output of an arc-shaped ``block`` an input; returns the new block.

    Needs ``block.sum() >= m_out``. While an output is uncovered, the shortest chain of one-output
    arc shifts that covers one of the uncovered outputs (from the right on a tie) is applied, so
    every input keeps a contiguous arc of outputs that moved by at most one output per repair.
    Should no chain exist, an input nearest to an uncovered output moves its farthest link that
    shares an output with another input there: while an output is uncovered, fewer than
    ``m_out`` outputs hold the links, so one of them has two or more inputs.
    """
    m_out = block.shape[0]
    starts, counts = _arcs(block)
    cover = block.sum(axis=1)
    while (cover == 0).any():
        chains = [
            chain
            for hole in np.flatnonzero(cover == 0).tolist()
            for step in (1, -1)
            if (chain := _shift_chain(starts, counts, cover, hole, step, keys)) is not None
        ]
        if not chains:
            break
        starts, cover, _ = min(chains, key=lambda chain: chain[2])
    block = _arc_block(starts, counts, m_out)
    in_degree = block.sum(axis=1)
    for out in np.flatnonzero(in_degree == 0).tolist():
        for source in np.argsort(keys[out], kind="stable").tolist():
            spare = np.flatnonzero(block[:, source] & (in_degree >= 2))
            if len(spare):
                donor = int(spare[np.argmax(keys[spare, source])])
                block[donor, source], block[out, source] = False, True
                in_degree[donor] -= 1
                in_degree[out] += 1
                break
    return block


def _as_block(block: object, name: str) -> np.ndarray:
    """A 2-D 0/1 array as a bool array (a copy)."""
    array = np.asarray(block)
    if array.ndim != 2:
        raise TopopruneError(f"{name} must be a 2-D (m_out, m_in) array, got shape {array.shape}")
    if array.dtype != np.bool_ and not np.isin(array, (0, 1)).all():
        raise TopopruneError(f"{name} must hold only 0 and 1 (or bool)")
    return array.astype(bool)


def rewire_block(block: np.ndarray, p: float, rng: np.random.Generator) -> np.ndarray:
    """Watts–Strogatz rewiring inside one layer pair; returns a new ``(m_out, m_in)`` bool array.

    The links are visited in column order (input by input, outputs ascending); each is picked
    with probability ``p`` (one ``rng.random`` draw per link, all drawn first) and moved to an
    output drawn uniformly from those its input is not yet linked to, so every input keeps its
    out-degree and the link count stays. A move is refused (the link stays) when its input is
    linked to every output, and, when the block has at least ``m_out`` links, when it would leave
    its output with no input: so an output that has an input keeps one, and a block that links
    every unit on both sides (as :func:`local_block` does when ``links >= max(m_in, m_out)``)
    still does. ``p = 0`` returns an unchanged copy.

    >>> block = local_block(6, 6, 18)
    >>> rewired = rewire_block(block, 0.5, np.random.default_rng(0))
    >>> int(rewired.sum()), rewired.sum(axis=0).tolist(), bool((rewired != block).any())
    (18, [3, 3, 3, 3, 3, 3], True)
    """
    block = _as_block(block, "the block")
    p = _check_probability(p)
    by_input = np.ascontiguousarray(block.T)  # (m_in, m_out): row i = the outputs of input i
    m_out = by_input.shape[1]
    in_degree = by_input.sum(axis=0)
    guard = int(in_degree.sum()) >= m_out
    ins, outs = np.nonzero(by_input)
    picked = rng.random(len(ins)) < p
    for source, out in zip(ins[picked].tolist(), outs[picked].tolist(), strict=True):
        if guard and in_degree[out] == 1:
            continue
        free = np.flatnonzero(~by_input[source])
        if len(free) == 0:
            continue
        target = int(free[rng.integers(len(free))])
        by_input[source, out], by_input[source, target] = False, True
        in_degree[out] -= 1
        in_degree[target] += 1
    return np.ascontiguousarray(by_input.T)


def rewire_across(
    blocks: Sequence[np.ndarray], p: float, rng: np.random.Generator
) -> tuple[list[np.ndarray], dict[tuple[int, int], np.ndarray]]:
    """Watts–Strogatz rewiring across layers: a rewired link may land in any later layer.

    ``blocks`` link node layers 0..L (block ``l`` is ``(m_{l+1}, m_l)``). Each link of block
    ``f`` (input by input, outputs ascending, one ``rng.random`` draw per link, all drawn first)
    is picked with probability ``p`` and moved to a unit drawn uniformly from every unit of the
    layers ``f + 1 .. L`` that its input is not linked to; landing in layer ``t > f + 1`` makes a
    skip link, returned in ``skips[(f, t)]`` of shape ``(m_t, m_f)``. Every input keeps its
    out-degree and the link count stays; as in :func:`rewire_block`, a move that would leave a
    unit of the next layer without an input is refused.

    >>> blocks = [local_block(4, 4, 8), local_block(4, 4, 8), local_block(4, 2, 4)]
    >>> moved, skips = rewire_across(blocks, 0.5, np.random.default_rng(1))
    >>> sum(int(b.sum()) for b in moved) + sum(int(k.sum()) for k in skips.values())
    20
    """
    p = _check_probability(p)
    moved = [_as_block(block, "a block").copy() for block in blocks]
    sizes = [moved[0].shape[1], *(block.shape[0] for block in moved)]
    skips: dict[tuple[int, int], np.ndarray] = {}
    for f, block in enumerate(moved):
        later = [(t, unit) for t in range(f + 1, len(sizes)) for unit in range(sizes[t])]
        in_degree = block.sum(axis=1)
        guard = int(in_degree.sum()) >= block.shape[0]
        outs, ins = np.nonzero(block)
        order = np.lexsort((outs, ins))
        picked = rng.random(len(order)) < p
        for index in order[picked].tolist():
            source, out = int(ins[index]), int(outs[index])
            if guard and in_degree[out] == 1:
                continue

            free = [
                (t, unit)
                for t, unit in later
                if not (
                    block[unit, source]
                    if t == f + 1
                    else (f, t) in skips and skips[(f, t)][unit, source]
                )
            ]
            if not free:
                continue
            t, unit = free[int(rng.integers(len(free)))]
            block[out, source] = False
            in_degree[out] -= 1
            if t == f + 1:
                block[unit, source] = True
                in_degree[unit] += 1
            else:
                skip = skips.setdefault((f, t), np.zeros((sizes[t], sizes[f]), dtype=bool))
                skip[unit, source] = True
    return moved, skips


def smallworld_blocks(
    sizes: Sequence[int], links: Sequence[int], p: float, seed: int = 0
) -> list[np.ndarray]:
    """Small-world blocks: :func:`local_block` then :func:`rewire_block` for each layer pair.

    ``sizes`` holds ``m_0 .. m_L`` (at least two layers) and ``links`` one link count per
    consecutive pair; block ``l`` has shape ``(m_{l+1}, m_l)``. One generator,
    ``np.random.default_rng(seed)``, rewires the blocks in order, so the same seed gives the same
    blocks.

    >>> [b.shape for b in smallworld_blocks([1, 4, 2], [4, 6], p=0.5, seed=1)]
    [(4, 1), (2, 4)]
    """
    sizes = [_positive(m, "a layer size") for m in sizes]
    links = [_count(k, "a link count") for k in links]
    if len(sizes) < 2:
        raise TopopruneError(f"a layered graph needs at least 2 layer sizes, got {len(sizes)}")
    if len(links) != len(sizes) - 1:
        raise TopopruneError(
            f"give one link count per consecutive layer pair: {len(sizes) - 1} for "
            f"{len(sizes)} layers, got {len(links)}"
        )
    p = _check_probability(p)
    rng = np.random.default_rng(seed)
    return [
        rewire_block(local_block(m_in, m_out, k), p, rng)
        for m_in, m_out, k in zip(sizes[:-1], sizes[1:], links, strict=True)
    ]


def _layer_pairs(
    blocks: Sequence[np.ndarray], skips: Skips | None
) -> tuple[list[int], list[tuple[int, int, np.ndarray]]]:
    """Validated layer sizes and ``(from_layer, to_layer, bool block)`` for every block."""
    if len(blocks) == 0:
        raise TopopruneError("a layered graph needs at least one block")
    arrays = [_as_block(b, f"block {layer}") for layer, b in enumerate(blocks)]
    sizes = [arrays[0].shape[1]] + [b.shape[0] for b in arrays]
    for layer, b in enumerate(arrays):
        expected = (sizes[layer + 1], sizes[layer])
        if b.shape != expected:
            raise TopopruneError(
                f"block {layer} must have shape (m_{layer + 1}, m_{layer}) = {expected} "
                f"to follow block {layer - 1}, got {b.shape}"
            )
    if 0 in sizes:
        raise TopopruneError(f"every layer needs at least one unit, got sizes {sizes}")
    pairs = [(layer, layer + 1, b) for layer, b in enumerate(arrays)]
    for key, block in (skips or {}).items():
        if len(key) != 2:
            raise TopopruneError(f"a skip is keyed by (from_layer, to_layer), got {key!r}")
        source, target = (_count(v, "a skip layer") for v in key)
        if not (0 <= source and source + 1 < target < len(sizes)):
            raise TopopruneError(
                f"a skip (from, to) needs 0 <= from and from + 1 < to <= {len(sizes) - 1}, "
                f"got {key}"
            )
        array = _as_block(block, f"skip {key}")
        if array.shape != (sizes[target], sizes[source]):
            raise TopopruneError(
                f"skip {key} must have shape (m_to, m_from) = {(sizes[target], sizes[source])}, "
                f"got {array.shape}"
            )
        pairs.append((source, target, array))
    return sizes, pairs


def _starts(sizes: Sequence[int]) -> list[int]:
    """Index of the first node of each layer (nodes numbered layer by layer)."""
    return np.concatenate([[0], np.cumsum(sizes)]).tolist()


def layered_adjacency(blocks: Sequence[np.ndarray], skips: Skips | None = None) -> np.ndarray:
    """The symmetric ``(N, N)`` uint8 adjacency of a layered graph, N = sum of the layer sizes.

    Nodes are numbered layer by layer: unit ``j`` of layer ``l`` is node
    ``m_0 + ... + m_{l-1} + j``. ``blocks[l]`` (shape ``(m_{l+1}, m_l)``) fills the links between
    layers ``l`` and ``l + 1``; ``skips[(f, t)]`` (shape ``(m_t, m_f)``, ``t > f + 1``) those
    between layers ``f`` and ``t``. The diagonal is zero.

    >>> layered_adjacency([np.ones((2, 1), dtype=bool)]).tolist()
    [[0, 1, 1], [1, 0, 0], [1, 0, 0]]
    """
    sizes, pairs = _layer_pairs(blocks, skips)
    starts = _starts(sizes)
    adj = np.zeros((starts[-1], starts[-1]), dtype=np.uint8)
    for source, target, block in pairs:
        rows = slice(starts[target], starts[target + 1])
        cols = slice(starts[source], starts[source + 1])
        adj[rows, cols] |= block
        adj[cols, rows] |= block.T
    return adj


def square_clustering(adj: np.ndarray) -> float:
    """Mean over all nodes of the square clustering coefficient (Lind et al. 2005).

    The same quantity as ``networkx.square_clustering``, averaged over the nodes of the
    symmetric 0/1 ``(n, n)`` adjacency ``adj``: for node v with neighbours N(v),

        C4(v) = sum_{u<w in N(v)} q(u, w) / sum_{u<w in N(v)} [a(u, w) + q(u, w)]

    with ``q(u, w)`` the common neighbours of u and w other than v and
    ``a(u, w) = (k_u - 1 - q - [u~w]) + (k_w - 1 - q - [u~w])``; 0 where the denominator is 0.
    With ``P = A @ A`` (common-neighbour counts) and degrees ``k``, both sums come from row sums
    in integers: squares = ``(sum_x P[v, x]^2 - (A k)_v - k_v^2 + k_v) / 2`` and the denominator
    ``(k_v - 1) (A k)_v - k_v (k_v - 1) - (A^3)_vv - squares``.

    >>> from topoprune.graphs.generate import complete, ring_lattice
    >>> square_clustering(complete(5)), square_clustering(ring_lattice(4, 2))
    (1.0, 1.0)
    """
    from scipy.sparse import csr_array

    graph = csr_array(np.asarray(adj).astype(np.int64))
    common = graph @ graph
    degrees = np.asarray(graph.sum(axis=1)).ravel()
    neighbour_degrees = graph @ degrees
    closed = np.asarray(common.multiply(graph).sum(axis=1)).ravel()  # (A^3)_vv, 2 * triangles
    squared = np.asarray(common.multiply(common).sum(axis=1)).ravel()
    squares = (squared - neighbour_degrees - degrees * degrees + degrees) // 2
    potential = (degrees - 1) * neighbour_degrees - degrees * (degrees - 1) - closed - squares
    local = np.divide(squares, potential, out=np.zeros(len(degrees)), where=potential > 0)
    return float(local.mean())


def _swap_reference(
    sizes: Sequence[int],
    pairs: Sequence[tuple[int, int, np.ndarray]],
    swaps_per_link: int,
    seed: int,
    *,
    towards_local: bool,
) -> np.ndarray:
    """Adjacency of a reference made by double-edge swaps inside each layer pair (see above).

    ``swaps_per_link * m`` swaps are tried (m links in all): a link ``(a -> x)`` drawn uniformly
    and a link ``(b -> y)`` drawn uniformly from the same pair become ``(a -> y)``, ``(b -> x)``
    when both are new (and, with ``towards_local``, when that lowers the summed circular distance
    ``|i * m_to / m_from - o|`` of the two links). Connectivity is kept as in
    :func:`topoprune.graphs.smallworld.random_reference`, by one
    :class:`~topoprune.graphs.smallworld.SwapWindow`.
    """
    starts = _starts(sizes)
    n = starts[-1]
    current: list[list[int]] = []  # [input node, output node] of each link
    pair_of: list[int] = []
    first: list[int] = []  # index of the first link of each pair in `current`
    for index, (source, target, block) in enumerate(pairs):
        outs, ins = np.nonzero(block)
        first.append(len(current))
        ends = zip((ins + starts[source]).tolist(), (outs + starts[target]).tolist(), strict=True)
        current.extend([a, x] for a, x in ends)
        pair_of.extend([index] * len(ins))
    m = len(current)
    rng = np.random.default_rng(seed)
    tries = swaps_per_link * m
    if tries == 0:
        return _adjacency_of(n, current)
    counts = np.diff(np.array([*first, m], dtype=np.int64))
    picks = rng.integers(m, size=tries)
    pair_picked = np.asarray(pair_of)[picks]
    mates = np.asarray(first)[pair_picked] + rng.integers(counts[pair_picked])
    linked = {a * n + x for a, x in current}
    # Per pair: (start of the source layer, its size, start of the target layer, its size).
    geometry = [(starts[s], sizes[s], starts[t], sizes[t]) for s, t, _ in pairs]

    def distance(index: int, a: int, x: int) -> int:
        in_start, m_in, out_start, m_out = geometry[index]
        offset = ((x - out_start) * m_in - (a - in_start) * m_out) % (m_in * m_out)
        return min(offset, m_in * m_out - offset)

    def undo(record: tuple[int, int, int, int, int, int]) -> None:
        i, j, a, x, b, y = record
        linked.difference_update((a * n + y, b * n + x))
        linked.update((a * n + x, b * n + y))
        current[i], current[j] = [a, x], [b, y]

    window = SwapWindow(n, current, undo)
    for i, j in zip(picks.tolist(), mates.tolist(), strict=True):
        a, x = current[i]
        b, y = current[j]
        if a * n + y in linked or b * n + x in linked:
            continue  # also covers i == j, a == b and x == y
        if towards_local:
            index = pair_of[i]
            before = distance(index, a, x) + distance(index, b, y)
            if distance(index, a, y) + distance(index, b, x) >= before:
                continue
        linked.difference_update((a * n + x, b * n + y))
        linked.update((a * n + y, b * n + x))
        current[i], current[j] = [a, y], [b, x]
        window.accept((i, j, a, x, b, y))
    window.settle()
    return _adjacency_of(n, current)


def _adjacency_of(n: int, links: Sequence[Sequence[int]]) -> np.ndarray:
    adj = np.zeros((n, n), dtype=np.uint8)
    if len(links):
        ends = np.asarray(links)
        adj[ends[:, 0], ends[:, 1]] = 1
        adj[ends[:, 1], ends[:, 0]] = 1
    return adj


def layered_reference(
    blocks: Sequence[np.ndarray],
    *,
    skips: Skips | None = None,
    kind: str = "random",
    swaps_per_link: int = 10,
    seed: int = 0,
) -> np.ndarray:
    """A connected ``(N, N)`` uint8 reference graph with the degrees and layer pairs of a graph.

    ``swaps_per_link * m`` double-edge swaps are tried (m links), each inside one layer pair (a
    block or a skip block): links ``(a -> x)``, ``(b -> y)`` become ``(a -> y)``, ``(b -> x)``
    when both are new. ``kind="random"`` keeps every such swap; ``kind="lattice"`` keeps only
    those that lower the summed circular distance ``|i * m_to / m_from - o|`` of the two links
    (pulling links back towards :func:`local_block` positions). Every node keeps its degree and
    every pair its link count; swaps that disconnect the graph are undone. The graph must be
    connected. Seeded.

    >>> blocks = smallworld_blocks([4, 6, 4], [12, 12], p=0.0)
    >>> ref = layered_reference(blocks, seed=3)
    >>> bool((ref.sum(axis=1) == layered_adjacency(blocks).sum(axis=1)).all())
    True
    """
    if kind not in ("random", "lattice"):
        raise TopopruneError(f"kind must be 'random' or 'lattice', got {kind!r}")
    swaps_per_link = _count(swaps_per_link, "swaps_per_link")
    if swaps_per_link < 0:
        raise TopopruneError(f"swaps_per_link must be at least 0, got {swaps_per_link}")
    sizes, pairs = _layer_pairs(blocks, skips)
    _check_connected(layered_adjacency(blocks, skips), "a layered reference")
    return _swap_reference(sizes, pairs, swaps_per_link, seed, towards_local=kind == "lattice")


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator != 0 else None


def layered_metrics(
    blocks: Sequence[np.ndarray],
    *,
    skips: Skips | None = None,
    samples: int = 3,
    swaps_per_link: int = 10,
    seed: int = 0,
) -> dict[str, int | float | None]:
    """Size, clustering, path length and small-world coefficients of a layered graph.

    Returns a JSON-serialisable dict (Python ints, floats and None; never NaN or inf):

    - ``nodes``, ``links``: N and the number of links (blocks and skips);
    - ``square_clustering`` (:func:`square_clustering`) and ``triangle_clustering``
      (:func:`topoprune.graphs.smallworld.average_clustering`);
    - ``path_length``: L, the ASPL of :func:`layered_adjacency`; None when disconnected;
    - ``sigma = (C / C_rand) / (L / L_rand)`` and ``omega = L_rand / L - C / C_latt`` with the
      triangle clustering C, and ``sigma_square``, ``omega_square`` with the square clustering.

    ``C_rand`` and ``L_rand`` are means over ``samples`` random :func:`layered_reference` graphs;
    ``C_latt`` is the largest clustering among ``samples`` lattice references and the graph
    itself (as in :func:`topoprune.graphs.smallworld.omega`). Reference ``k`` of either kind is
    drawn with seed ``np.random.SeedSequence(seed).generate_state(samples)[k]``.

    A coefficient is None when L is undefined or a denominator is 0: without skips the graph is
    bipartite, so the triangle clustering of the graph and of its references is 0 and ``sigma``
    and ``omega`` are None. With ``samples=3``, a LeNet-like graph (sizes
    ``[1, 20, 50, 500, 10]``, 10k links) takes 1.2 to 2 s on one CPU core.

    >>> metrics = layered_metrics(smallworld_blocks([4, 8, 4], [16, 16], p=0.1), samples=1)
    >>> metrics["triangle_clustering"], metrics["omega"], metrics["omega_square"] is not None
    (0.0, None, True)
    """
    sizes, pairs = _layer_pairs(blocks, skips)
    seeds = _reference_seeds(seed, samples)
    swaps_per_link = _count(swaps_per_link, "swaps_per_link")
    if swaps_per_link < 0:
        raise TopopruneError(f"swaps_per_link must be at least 0, got {swaps_per_link}")
    adj = layered_adjacency(blocks, skips)
    clustering = {"": average_clustering(adj), "_square": square_clustering(adj)}
    length = aspl(adj)
    path_length = None if math.isinf(length) else float(length)
    result: dict[str, int | float | None] = {
        "nodes": int(adj.shape[0]),
        "links": int(adj.sum()) // 2,
        "square_clustering": clustering["_square"],
        "triangle_clustering": clustering[""],
        "path_length": path_length,
    }
    for suffix in clustering:
        result["sigma" + suffix] = result["omega" + suffix] = None
    if path_length is None or path_length == 0:
        return result

    def references(towards_local: bool) -> list[np.ndarray]:
        return [
            _swap_reference(sizes, pairs, swaps_per_link, s, towards_local=towards_local)
            for s in seeds
        ]

    randoms, lattices = references(False), references(True)
    l_rand = float(np.mean([aspl(g) for g in randoms]))
    for suffix, measure in (("", average_clustering), ("_square", square_clustering)):
        c = clustering[suffix]
        c_rand = float(np.mean([measure(g) for g in randoms]))
        c_latt = max(c, *(measure(g) for g in lattices))
        relative, lattice_part = _ratio(c, c_rand), _ratio(c, c_latt)
        if relative is not None:
            result["sigma" + suffix] = relative / (path_length / l_rand)
        if lattice_part is not None:
            result["omega" + suffix] = l_rand / path_length - lattice_part
    return result
