"""Small-world measures: clustering, characteristic path length, sigma and omega.

Both small-world coefficients compare a graph with reference graphs that keep its degrees:

- sigma = (C / C_rand) / (L / L_rand)   (Humphries & Gurney 2008; > 1 for a small world)
- omega = L_rand / L - C / C_latt       (Telesford et al. 2011; -1 lattice, 0 small world,
                                         +1 random)

where C is the average clustering coefficient, L the characteristic path length (ASPL), and
C_rand, L_rand, C_latt are averaged over ``samples`` reference graphs. For a k-regular graph the
references are exact: :func:`~topoprune.graphs.generate.random_regular` and
:func:`~topoprune.graphs.generate.ring_lattice`. For any other graph they come from
degree-preserving double-edge swaps that keep the graph connected (random swaps, or swaps that
pull edges towards the ring order of the node labels for the lattice, as Maslov & Sneppen).

>>> from topoprune.graphs.generate import watts_strogatz
>>> sigma(watts_strogatz(100, 6, 0.1, seed=0), samples=2) > 1
True
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from topoprune.errors import TopopruneError
from topoprune.graphs.generate import (
    check_regular,
    component_labels,
    edge_list,
    random_regular,
    ring_lattice,
)
from topoprune.graphs.paths import aspl

__all__ = [
    "average_clustering",
    "characteristic_path_length",
    "lattice_reference",
    "omega",
    "random_reference",
    "sigma",
]


def average_clustering(adj: np.ndarray) -> float:
    """Mean over all n nodes of the local clustering coefficient (0 for nodes of degree < 2).

    The local coefficient of node i is the fraction of pairs of its neighbours that are linked;
    this matches ``networkx.average_clustering``.

    >>> from topoprune.graphs.generate import complete, ring_lattice
    >>> average_clustering(complete(5)), average_clustering(ring_lattice(12, 4))
    (1.0, 0.5)
    """
    from scipy.sparse import csr_array

    graph = csr_array(adj.astype(np.int64))
    closed_walks = np.asarray((graph @ graph).multiply(graph).sum(axis=1)).ravel()  # 2 * triangles
    degrees = np.asarray(graph.sum(axis=1)).ravel()
    pairs = degrees * (degrees - 1)
    local = np.divide(closed_walks, pairs, out=np.zeros(len(pairs)), where=pairs > 0)
    return float(local.mean())


def characteristic_path_length(adj: np.ndarray) -> float:
    """Mean shortest-path length over all node pairs (the ASPL); ``math.inf`` if disconnected.

    >>> from topoprune.graphs.generate import complete
    >>> characteristic_path_length(complete(4))
    1.0
    """
    return aspl(adj)


def _check_connected(adj: np.ndarray, what: str) -> None:
    if component_labels(len(adj), edge_list(adj)).max() != 0:
        raise TopopruneError(f"{what} needs a connected graph; this one is disconnected")


def _regular_degree(adj: np.ndarray) -> int | None:
    """k when adj is a graph that :func:`check_regular` accepts as k-regular, else None."""
    degrees = adj.sum(axis=1)
    k = int(degrees[0])
    if (degrees != k).any():
        return None
    try:
        check_regular(len(adj), k)
    except TopopruneError:
        return None
    return k


def _ring_distance(n: int, a: int, b: int) -> int:
    gap = abs(a - b)
    return min(gap, n - gap)


def _shortens_ring_span(n: int, nodes: tuple[int, int, int, int]) -> bool:
    """Whether swapping (a, b), (c, d) into (a, d), (c, b) lowers the summed ring distance."""
    a, b, c, d = nodes
    before = _ring_distance(n, a, b) + _ring_distance(n, c, d)
    return _ring_distance(n, a, d) + _ring_distance(n, c, b) < before


class SwapWindow:
    """Accepted swaps checked for connectivity a window at a time.

    ``current`` is the live (m, 2) edge list the swaps edit; ``undo(record)`` reverts one
    accepted swap. When ``pending`` swaps fill the window the graph is checked: if it is
    disconnected they are undone, newest first, and the window halves; otherwise it doubles.
    """

    def __init__(self, n: int, current: list[list[int]], undo: Callable[[tuple], None]) -> None:
        self.n, self.current, self.undo = n, current, undo
        self.pending: list[tuple] = []
        self.window = 1

    def accept(self, record: tuple) -> None:
        """Note an accepted swap (``record`` is what ``undo`` needs); check a full window."""
        self.pending.append(record)
        if len(self.pending) >= self.window:
            self.settle()

    def settle(self) -> None:
        """Check the pending swaps now (call once more when the search ends)."""
        if not self.pending:
            return
        if component_labels(self.n, np.asarray(self.current)).max() == 0:
            self.window *= 2
        else:
            for record in reversed(self.pending):
                self.undo(record)
            self.window = max(1, self.window // 2)
        self.pending.clear()


def _rewire(adj: np.ndarray, swaps_per_edge: int, seed: int, *, towards_ring: bool) -> np.ndarray:
    """Degree-preserving double-edge swaps that keep the graph connected.

    ``swaps_per_edge * m`` swaps are tried: edges (a, b), (c, d) become (a, d), (c, b) when both
    are new and not loops (and, with ``towards_ring``, when they shorten the summed ring distance
    of the node labels). Connectivity is checked after a window of accepted swaps; a window that
    disconnects the graph is undone and the window halves, otherwise it doubles.
    """
    n = len(adj)
    adj = adj.copy()
    edges = edge_list(adj)
    m = len(edges)
    rng = np.random.default_rng(seed)
    tries = swaps_per_edge * m
    picks = rng.integers(m, size=(tries, 2)).tolist()
    flips = rng.integers(2, size=tries).tolist()
    current = edges.tolist()

    def undo(record: tuple) -> None:
        i, j, old_i, old_j = record
        (a, d), (c, b) = current[i], current[j]
        adj[a, d] = adj[d, a] = adj[c, b] = adj[b, c] = 0
        current[i], current[j] = old_i, old_j
        adj[old_i[0], old_i[1]] = adj[old_i[1], old_i[0]] = 1
        adj[old_j[0], old_j[1]] = adj[old_j[1], old_j[0]] = 1

    window = SwapWindow(n, current, undo)
    for (i, j), flip in zip(picks, flips, strict=True):
        if i == j:
            continue
        a, b = current[i]
        c, d = current[j] if flip else current[j][::-1]
        if a == d or c == b or adj[a, d] or adj[c, b]:
            continue
        if towards_ring and not _shortens_ring_span(n, (a, b, c, d)):
            continue
        record = (i, j, current[i], current[j])
        adj[a, b] = adj[b, a] = adj[c, d] = adj[d, c] = 0
        adj[a, d] = adj[d, a] = adj[c, b] = adj[b, c] = 1
        current[i], current[j] = [a, d], [c, b]
        window.accept(record)
    window.settle()
    return adj


def random_reference(adj: np.ndarray, *, swaps_per_edge: int = 10, seed: int = 0) -> np.ndarray:
    """A random connected graph with the same degrees as ``adj`` (which must be connected).

    k-regular input gives :func:`random_regular` (n, k, seed); other graphs are shuffled by
    ``swaps_per_edge * m`` tried double-edge swaps.

    >>> from topoprune.graphs.generate import watts_strogatz
    >>> adj = watts_strogatz(30, 4, 0.3, seed=2)
    >>> bool((random_reference(adj).sum(axis=1) == adj.sum(axis=1)).all())
    True
    """
    _check_connected(adj, "a random reference")
    k = _regular_degree(adj)
    if k is not None:
        return random_regular(len(adj), k, seed=seed)
    return _rewire(adj, swaps_per_edge, seed, towards_ring=False)


def lattice_reference(adj: np.ndarray, *, swaps_per_edge: int = 10, seed: int = 0) -> np.ndarray:
    """A lattice-like connected graph with the same degrees as ``adj`` (which must be connected).

    k-regular input gives :func:`ring_lattice` (n, k); other graphs are latticized: of
    ``swaps_per_edge * m`` tried double-edge swaps, those that bring edges closer to the ring
    order of the node labels are kept.

    >>> from topoprune.graphs.generate import ring_lattice
    >>> bool((lattice_reference(ring_lattice(10, 4)) == ring_lattice(10, 4)).all())
    True
    """
    _check_connected(adj, "a lattice reference")
    k = _regular_degree(adj)
    if k is not None:
        return ring_lattice(len(adj), k)
    return _rewire(adj, swaps_per_edge, seed, towards_ring=True)


def _reference_seeds(seed: int, samples: int) -> list[int]:
    if samples < 1:
        raise TopopruneError(f"samples must be at least 1, got {samples}")
    return [int(s) for s in np.random.SeedSequence(seed).generate_state(samples)]


def _nonzero_clustering(value: float, what: str) -> float:
    if value == 0.0:
        raise TopopruneError(
            f"the {what} reference graphs have no triangles, so the ratio is undefined; "
            f"use a denser graph or more samples"
        )
    return value


def sigma(adj: np.ndarray, *, samples: int = 5, swaps_per_edge: int = 10, seed: int = 0) -> float:
    """Small-world coefficient sigma = (C / C_rand) / (L / L_rand); above 1 means small-world.

    C_rand and L_rand are means over ``samples`` :func:`random_reference` graphs.

    >>> from topoprune.graphs.generate import watts_strogatz
    >>> round(sigma(watts_strogatz(200, 6, 0.1, seed=0), samples=3), 1) > 3
    True
    """
    _check_connected(adj, "sigma")
    randoms = [
        random_reference(adj, swaps_per_edge=swaps_per_edge, seed=s)
        for s in _reference_seeds(seed, samples)
    ]
    c_rand = _nonzero_clustering(float(np.mean([average_clustering(g) for g in randoms])), "random")
    l_rand = float(np.mean([aspl(g) for g in randoms]))
    return (average_clustering(adj) / c_rand) / (aspl(adj) / l_rand)


def omega(adj: np.ndarray, *, samples: int = 5, swaps_per_edge: int = 10, seed: int = 0) -> float:
    """Small-world coefficient omega = L_rand / L - C / C_latt, in about [-1, 1].

    Near -1: lattice-like (long paths); near 0: small world (random-like path length with
    lattice-like clustering); near +1: random-like (little clustering). L_rand is the mean over
    ``samples`` :func:`random_reference` graphs; C_latt is the highest clustering among
    ``samples`` :func:`lattice_reference` graphs and the graph itself (latticizing an irregular
    graph by swaps does not always raise its clustering; this keeps omega >= -1).

    >>> from topoprune.graphs.generate import ring_lattice
    >>> omega(ring_lattice(300, 4), samples=2) < -0.8
    True
    """
    _check_connected(adj, "omega")
    seeds = _reference_seeds(seed, samples)
    l_rand = float(
        np.mean([aspl(random_reference(adj, swaps_per_edge=swaps_per_edge, seed=s)) for s in seeds])
    )
    clustering = average_clustering(adj)
    lattices = [lattice_reference(adj, swaps_per_edge=swaps_per_edge, seed=s) for s in seeds]
    c_latt = max(clustering, *(average_clustering(g) for g in lattices))
    return l_rand / aspl(adj) - clustering / _nonzero_clustering(c_latt, "lattice")
