"""Lower the ASPL of a regular graph by degree-preserving double-edge swaps.

A swap takes two edges ``(a, b)``, ``(c, d)`` and rewires them into ``(a, c)``, ``(b, d)`` when
that creates no self-loop and no repeated edge; every degree stays the same. A swap is kept only
when the graph stays connected and the strategy accepts the new distances:

- ``"anneal"`` (default): simulated annealing on (diameter, ASPL), as the Graph Golf solvers do. A
  swap that raises the diameter is refused, one that lowers it is kept, and otherwise the change
  ``delta`` of the total distance (summed over ordered node pairs, an integer) is kept with
  probability ``exp(-delta / T)``; ``T`` falls geometrically from ``ANNEAL_START * n`` to
  ``ANNEAL_END * n`` over the budget. The best graph seen is returned.
- ``"greedy"``: keep a swap when the ASPL does not rise.
- ``"rgp"``: the bounded random walk of the published RGP code (REFERENCE.md §1). It always starts
  from the ring lattice with the same n and k. Each call (a chain step) freezes the ASPL ``a0``
  it starts from, keeps any swap whose ASPL ``a`` stays inside ``(a0 - RGP_MAX_DROP, a0)``, and
  returns, saving the graph, as soon as ``a0 - a > RGP_MIN_DROP``. (Inferred from the
  description: swaps that rise above ``a0`` or drop past the band are refused.) The best saved
  graph is returned.

Candidates are evaluated in batches: the bitset BFS of :mod:`topoprune.graphs.paths` runs on
``B`` candidate graphs stacked into one ``(B * n, W)`` array, which amortises numpy's per-call
cost; the candidates are then scanned in drawing order and the first one accepted is applied, so
the search is exactly the sequential one. Each candidate's BFS stops one level short of the
current diameter: the partial distance sum is then already exact unless the diameter grows, and
only the candidates that pass the acceptance test pay for the last level.

>>> from topoprune.graphs.generate import random_regular
>>> start = random_regular(32, 4, seed=0)
>>> result = optimize(start, max_steps=2000, seed=0)
>>> result.aspl < result.start_aspl
True
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from topoprune.errors import TopopruneError
from topoprune.graphs.generate import (
    check_regular,
    from_neighbours,
    random_regular,
    ring_lattice,
    to_neighbours,
)
from topoprune.graphs.paths import closed_neighbourhoods, distance_stats, expand, word_count

__all__ = [
    "ANNEAL_END",
    "ANNEAL_START",
    "RGP_CHAINS",
    "RGP_MAX_DROP",
    "RGP_MIN_DROP",
    "STRATEGIES",
    "BankGraph",
    "SwapResult",
    "SwapSearch",
    "bank",
    "optimize",
]

STRATEGIES = ("anneal", "greedy", "rgp")
# Annealing temperatures per node, in units of the total distance over ordered node pairs.
ANNEAL_START = 0.5
ANNEAL_END = 0.01
# The published RGP walk: a chain step ends once the ASPL has dropped by more than RGP_MIN_DROP
# below the value frozen at its start, and no swap may drop it by RGP_MAX_DROP or more.
RGP_MIN_DROP = 0.05
RGP_MAX_DROP = 0.2
RGP_CHAINS = 6
DEFAULT_TIME_BUDGET = 10.0
# Screening (graphs of diameter <= 3, n <= SCREEN_MAX_NODES): draw SCREEN_FACTOR swaps per
# candidate that gets the exact BFS.
SCREEN_FACTOR = 16
SCREEN_MAX_NODES = 512
# Words per stacked bitset array: bounds the batch size B so the arrays stay in cache.
_BATCH_WORDS = 1 << 14


@dataclass
class SwapResult:
    """The outcome of :func:`optimize`.

    ``trajectory`` has shape ``(m, 3)``: one row ``(step, aspl, diameter)`` for the start and for
    every accepted swap, ``step`` counting the swaps tried so far.
    """

    adj: np.ndarray
    aspl: float
    diameter: int
    start_aspl: float
    start_diameter: int
    strategy: str
    seed: int
    steps: int
    accepted: int
    seconds: float
    trajectory: np.ndarray

    def to_dict(self) -> dict:
        """JSON-safe metadata (everything but the adjacency and the trajectory rows)."""
        n = self.adj.shape[0]
        return {
            "n": n,
            "k": int(self.adj[0].sum()),
            "strategy": self.strategy,
            "seed": self.seed,
            "aspl": self.aspl,
            "diameter": self.diameter,
            "start_aspl": self.start_aspl,
            "start_diameter": self.start_diameter,
            "steps": self.steps,
            "accepted": self.accepted,
            "seconds": self.seconds,
            "trajectory_rows": len(self.trajectory),
        }


@dataclass
class BankGraph:
    """One graph of a :func:`bank`: ``label`` is ``"M0"`` for the lowest ASPL, then M1, M2, ..."""

    adj: np.ndarray
    aspl: float
    diameter: int
    label: str


@dataclass
class _Proposals:
    """``B`` drawn swaps ``(a, b), (c, d) -> (a, c), (b, d)``, each field of shape ``(B,)``.

    ``slot_a`` is the slot of ``b`` in row ``a`` of the neighbour table, ``slot_b`` that of ``a``
    in row ``b``, ``slot_c`` that of ``d`` in row ``c`` and ``slot_d`` that of ``c`` in row ``d``.
    ``order`` is each swap's position among all the swaps drawn, valid or not (a swap is invalid
    when it would make a self-loop or a repeated edge).
    """

    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    d: np.ndarray
    slot_a: np.ndarray
    slot_b: np.ndarray
    slot_c: np.ndarray
    slot_d: np.ndarray
    order: np.ndarray

    def take(self, keep: np.ndarray) -> _Proposals:
        return _Proposals(*(getattr(self, name)[keep] for name in self.__dataclass_fields__))

    def changes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(rows, slots, lost, gained)``, each ``(4B,)``: the neighbour table rows a swap
        rewrites (row a of every swap, then b, c, d), the slot in each, and the neighbour the slot
        loses and gains (a loses b and gains c, b: a -> d, c: d -> a, d: c -> b)."""
        return (
            np.concatenate([self.a, self.b, self.c, self.d]),
            np.concatenate([self.slot_a, self.slot_b, self.slot_c, self.slot_d]),
            np.concatenate([self.b, self.a, self.d, self.c]),
            np.concatenate([self.c, self.d, self.a, self.b]),
        )

    def one(self, index: int) -> _Proposals:
        return self.take(np.array([index]))


def _bits(nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(word index, one-bit uint64 mask) of each node in a bitset row."""
    return nodes >> 6, np.left_shift(np.uint64(1), nodes.astype(np.uint64) & np.uint64(63))


class _Graph:
    """A connected k-regular graph in the forms the swap loop reads, updated in place.

    ``nbrs`` ``(n, k)``: neighbours; ``slots`` ``(n, k)``: ``slots[v, j]`` is the slot of ``v`` in
    the row of its neighbour ``nbrs[v, j]``; ``linked`` ``(n, n)`` bool adjacency; ``closed`` and
    ``within_two`` ``(n, W)`` uint64: bitsets of the nodes within distance 1 and 2 of each node;
    ``two_counts`` ``(n,)``: popcounts of ``within_two``; ``total``: the sum of distances over
    ordered node pairs; ``diameter``.
    """

    def __init__(self, nbrs: np.ndarray, total: int, diameter: int) -> None:
        self.n, self.k = nbrs.shape
        self.nbrs = nbrs.astype(np.intp)
        owner = np.arange(self.n)[:, None, None]
        self.slots = np.argmax(self.nbrs[self.nbrs] == owner, axis=2)
        self.linked = np.zeros((self.n, self.n), dtype=bool)
        self.linked[np.arange(self.n)[:, None], self.nbrs] = True
        self.closed = closed_neighbourhoods(self.nbrs)
        self._update_within_two()
        self.total, self.diameter = total, diameter

    def _update_within_two(self) -> None:
        scratch = np.empty_like(self.closed)
        self.within_two = expand(self.closed, list(self.nbrs.T), np.empty_like(scratch), scratch)
        self.two_counts = np.bitwise_count(self.within_two).sum(axis=1, dtype=np.int64)

    def draw(self, rng: np.random.Generator, count: int) -> _Proposals:
        """The valid ones among ``count`` uniformly drawn swaps: two edges, each picked as a node
        and one of its slots, and which way to rewire them."""
        n, k = self.n, self.k
        first, second = rng.integers(n * k, size=(2, count))
        flip = rng.integers(2, size=count).astype(bool)
        a, slot_a = np.divmod(first, k)
        x, slot_x = np.divmod(second, k)
        b, slot_b = self.nbrs[a, slot_a], self.slots[a, slot_a]
        y, slot_y = self.nbrs[x, slot_x], self.slots[x, slot_x]
        c, d = np.where(flip, y, x), np.where(flip, x, y)
        slot_c, slot_d = np.where(flip, slot_y, slot_x), np.where(flip, slot_x, slot_y)
        valid = (a != c) & (a != d) & (b != c) & (b != d) & ~self.linked[a, c] & ~self.linked[b, d]
        keep = np.flatnonzero(valid)
        fields = (a, b, c, d, slot_a, slot_b, slot_c, slot_d)
        return _Proposals(*(field[keep] for field in fields), keep)

    def candidate(self, swap: _Proposals) -> np.ndarray:
        """The ``(n, k)`` neighbour table with the single swap ``swap`` applied (a copy)."""
        nbrs = self.nbrs.copy()
        rows, slots, _, gained = swap.changes()
        nbrs[rows, slots] = gained
        return nbrs

    def apply(self, swap: _Proposals, total: int, diameter: int) -> None:
        """Apply the single swap ``swap``, whose distance sum and diameter are given."""
        rows, slots, lost, gained = swap.changes()
        self.nbrs[rows, slots] = gained
        self.slots[rows, slots] = np.concatenate(
            [swap.slot_c, swap.slot_d, swap.slot_a, swap.slot_b]
        )
        self.linked[rows, lost] = False
        self.linked[rows, gained] = True
        for node in (lost, gained):
            words, masks = _bits(node)
            self.closed[rows, words] ^= masks
        self.total, self.diameter = total, diameter
        self._update_within_two()

    def adjacency(self) -> np.ndarray:
        return from_neighbours(self.nbrs)


class _Screen:
    """Cheap first guesses at what a swap does to a graph of diameter at most 3.

    Then the distance sum only depends on which pairs are within distance 2, and with ``P = A +
    A^2`` (paths of length 1 or 2 between two nodes) a swap's effect is close to
    ``lost(a, b) + lost(c, d) - won(a, c) - won(b, d)``: ``lost`` counts the pairs whose only
    short path uses the removed edge, ``won`` the pairs a new edge brings within distance 2. The
    estimate ignores how the four edges interact; it only picks which candidates get the exact
    BFS. ``lost`` and ``won`` are kept as ``(n, n)`` matrices, rebuilt after every accepted swap.
    """

    def __init__(self, graph: _Graph) -> None:
        self.refresh(graph)

    def refresh(self, graph: _Graph) -> None:
        adjacency = graph.linked.astype(np.float32)
        paths = adjacency + adjacency @ adjacency
        np.fill_diagonal(paths, np.inf)
        unjoined = (paths == 0).astype(np.float32)
        single = (paths == 1).astype(np.float32)
        via = unjoined @ adjacency
        self.won = unjoined + via + via.T
        via = single @ adjacency
        self.lost = single + via + via.T

    def estimate(self, swaps: _Proposals) -> np.ndarray:
        """``(B,)`` estimated change of the number of pairs farther apart than 2 (lower is
        better)."""
        a, b, c, d = swaps.a, swaps.b, swaps.c, swaps.d
        return self.lost[a, b] + self.lost[c, d] - self.won[a, c] - self.won[b, d]


class _Stack:
    """``capacity`` stacked copies of the current graph, on which batches of candidates run.

    ``columns`` ``(k, capacity * n)``: neighbour rows, copy ``i`` offset by ``i * n``;
    ``closed`` ``(capacity * n, W)``: the level-1 bitsets. A batch writes candidate ``i``'s swap
    into copy ``i`` and takes it out again afterwards, which is much cheaper than building fresh
    copies.
    """

    def __init__(self, graph: _Graph, capacity: int) -> None:
        self.offsets = np.arange(capacity) * graph.n
        self.columns = (graph.nbrs.T[:, None, :] + self.offsets[:, None]).reshape(graph.k, -1)
        self.closed = np.tile(graph.closed, (capacity, 1))

    def follow(self, graph: _Graph, swap: _Proposals) -> None:
        """Copy an accepted swap into every copy."""
        rows, slots, _, gained = swap.changes()
        stacked = (self.offsets[:, None] + rows).ravel()
        self.columns[np.tile(slots, len(self.offsets)), stacked] = (
            self.offsets[:, None] + gained
        ).ravel()
        self.closed[stacked] = np.tile(graph.closed[rows], (len(self.offsets), 1))

    def write(self, swaps: _Proposals) -> None:
        """Put swap ``i`` of ``swaps`` into copy ``i``."""
        rows, slots, lost, gained = swaps.changes()
        offsets = np.tile(self.offsets[: len(swaps.a)], 4)
        self.columns[slots, rows + offsets] = gained + offsets
        for node in (lost, gained):  # rows are distinct, so no two updates hit one word
            words, masks = _bits(node)
            self.closed[rows + offsets, words] ^= masks

    def erase(self, graph: _Graph, swaps: _Proposals) -> None:
        """Undo :meth:`write`."""
        rows, slots, _, _ = swaps.changes()
        offsets = np.tile(self.offsets[: len(swaps.a)], 4)
        self.columns[slots, rows + offsets] = graph.nbrs[rows, slots] + offsets
        self.closed[rows + offsets] = graph.closed[rows]


@dataclass
class _Batch:
    """Distances of ``B`` candidate graphs (the current graph with one swap each), up to ``level``.

    ``partial`` ``(B,)``: distance sum over the levels 0..level; ``missing`` ``(B,)``: ordered
    pairs farther apart than ``level``; ``diameters`` ``(B,)``: the diameter where already known,
    else -1. ``reach`` ``(B * n, W)``: the stacked bitsets at ``level`` when ``level > 2``;
    ``rows`` ``(B, R)``, ``first`` ``(B, R)`` and ``grown`` ``(B, R, W)``: the level-2 rows that
    differ from the current graph's (``first`` marks a row's first listing).
    """

    level: int
    partial: np.ndarray
    missing: np.ndarray
    diameters: np.ndarray
    reach: np.ndarray | None
    rows: np.ndarray
    first: np.ndarray
    grown: np.ndarray

    def candidate_reach(self, graph: _Graph, index: int) -> np.ndarray:
        """Candidate ``index``'s ``(n, W)`` bitsets at ``level``."""
        if self.reach is not None:
            return self.reach[index * graph.n : (index + 1) * graph.n]
        reach = graph.within_two.copy()
        keep = self.first[index]
        reach[self.rows[index, keep]] = self.grown[index, keep]
        return reach


def _level_two(graph: _Graph, stack: _Stack, swaps: _Proposals) -> tuple[np.ndarray, ...]:
    """Level 2 of every candidate's BFS, from the rows a swap can change (after ``stack.write``).

    Only rows within distance 1 of ``a, b, c, d`` can change: ``rows`` ``(B, 4 + 4k)`` lists
    them, sorted and with repeats (``first`` marks first listings), and ``grown``
    ``(B, 4 + 4k, W)`` holds their new bitsets. Returns ``(rows, first, grown, missing)``,
    ``missing`` ``(B,)`` the ordered pairs farther apart than 2.
    """
    n, count = graph.n, len(swaps.a)
    ends = np.stack([swaps.a, swaps.b, swaps.c, swaps.d], axis=1)
    rows = np.sort(np.concatenate([ends, graph.nbrs[ends].reshape(count, -1)], axis=1), axis=1)
    first = np.ones(rows.shape, dtype=bool)
    first[:, 1:] = rows[:, 1:] != rows[:, :-1]
    stacked = rows + stack.offsets[:count, None]
    grown = np.bitwise_or.reduce(stack.closed[stack.columns[:, stacked]], axis=0)
    counts = np.bitwise_count(grown).sum(axis=2, dtype=np.int64)
    gained = ((counts - graph.two_counts[rows]) * first).sum(axis=1)
    missing = n * n - int(graph.two_counts.sum()) - gained
    return rows, first, grown, missing


def _evaluate(graph: _Graph, stack: _Stack, swaps: _Proposals, level: int) -> _Batch:
    """Run the BFS of every candidate up to ``level >= 2``: level 2 from the rows a swap can
    change, the later levels on the stacked copies."""
    n, count, pairs = graph.n, len(swaps.a), graph.n * graph.n
    stack.write(swaps)
    try:
        rows, first, grown, missing = _level_two(graph, stack, swaps)
        partial = (pairs - n) + (pairs - n - n * graph.k) + missing
        diameters = np.where(missing == 0, 2, -1)
        if level <= 2:
            return _Batch(2, partial, missing, diameters, None, rows, first, grown)
        reach = np.empty((count, n, graph.within_two.shape[1]), dtype=np.uint64)
        reach[:] = graph.within_two
        reach = reach.reshape(count * n, -1)
        reach[(rows + stack.offsets[:count, None])[first]] = grown[first]
        columns = [column[: count * n] for column in stack.columns]
        buffers = (np.empty_like(reach), np.empty_like(reach))
        scratch = np.empty_like(reach)
        popcounts = np.empty(reach.shape, dtype=np.uint8)
        for depth in range(3, level + 1):
            reach = expand(reach, columns, buffers[depth % 2], scratch)
            np.bitwise_count(reach, out=popcounts)
            missing = pairs - popcounts.reshape(count, -1).sum(axis=1, dtype=np.int64)
            partial = partial + missing
            diameters[(missing == 0) & (diameters < 0)] = depth
    finally:
        stack.erase(graph, swaps)
    return _Batch(level, partial, missing, diameters, reach, rows, first, grown)


def _finish(
    graph: _Graph, swaps: _Proposals, batch: _Batch, index: int, limit: float
) -> tuple[int, int] | None:
    """Complete candidate ``index``'s BFS: its (distance sum, diameter), or None when it is
    disconnected or its distance sum exceeds ``limit``."""
    total, missing, level = int(batch.partial[index]), int(batch.missing[index]), batch.level
    if batch.diameters[index] >= 0:
        return (total, int(batch.diameters[index])) if total <= limit else None
    n = graph.n
    reach = batch.candidate_reach(graph, index)
    columns = list(graph.candidate(swaps.one(index)).T)
    scratch = np.empty_like(reach)
    while missing:
        reach = expand(reach, columns, np.empty_like(scratch), scratch)
        level += 1
        now_missing = n * n - int(np.bitwise_count(reach).sum())
        if now_missing == missing:
            return None
        missing = now_missing
        total += missing
        if total > limit:
            return None
    return total, level


class SwapSearch:
    """A swap search that can be advanced batch by batch (see the module docstring).

    ``advance(fraction, tries)`` draws at most ``tries`` swaps, applies at most one and returns
    how many it drew; ``fraction`` in [0, 1] is how much of the budget is spent (it sets the
    annealing temperature). After it, :meth:`adjacency` is the current graph.

    >>> from topoprune.graphs.generate import random_regular
    >>> search = SwapSearch(random_regular(16, 4, seed=0), seed=1)
    >>> tried = search.advance(0.0, 8)
    >>> 1 <= tried <= 8 and search.steps == tried
    True
    """

    def __init__(self, adj: np.ndarray, *, strategy: str = "anneal", seed: int = 0) -> None:
        if strategy not in STRATEGIES:
            raise TopopruneError(f"unknown strategy {strategy!r}; choose one of {STRATEGIES}")
        nbrs = to_neighbours(adj)
        n, k = nbrs.shape
        check_regular(n, k)
        if strategy == "rgp":
            nbrs = to_neighbours(ring_lattice(n, k))
        stats = distance_stats(from_neighbours(nbrs))
        if not stats.connected:
            raise TopopruneError("swap search needs a connected graph; start from random_regular")
        self.strategy, self.seed = strategy, seed
        self.rng = np.random.default_rng(seed)
        self.graph = _Graph(nbrs, _ordered_total(stats), stats.diameter)
        self.pairs = n * (n - 1)
        self.capacity = max(1, min(256, _BATCH_WORDS // (n * word_count(n))))
        self.stack = _Stack(self.graph, self.capacity)
        self.screen: _Screen | None = None
        self.steps = self.accepted = 0
        self.trajectory: list[tuple[int, float, int]] = [(0, self.aspl, self.diameter)]
        self.best_nbrs = self.graph.nbrs.copy()
        self.best_key = (self.graph.total, self.graph.diameter)
        self.frozen = self.graph.total  # rgp: the distance sum at the start of the chain step
        self.saved: list[tuple[np.ndarray, int, int]] = []  # rgp: one graph per chain step
        self._evaluated, self._passed = 1.0, 1.0  # recent candidates evaluated, and accepted

    @property
    def aspl(self) -> float:
        return self.graph.total / self.pairs

    @property
    def diameter(self) -> int:
        return self.graph.diameter

    @property
    def swappable(self) -> bool:
        """False for the complete graph, where no swap exists."""
        return self.graph.k < self.graph.n - 1

    def adjacency(self) -> np.ndarray:
        """The current graph, ``(n, n)`` uint8."""
        return self.graph.adjacency()

    def best(self) -> tuple[np.ndarray, int, int]:
        """The graph to report as ``(nbrs, total distance, diameter)``: the best seen (anneal),
        the current one (greedy) or the best saved chain step (rgp)."""
        if self.strategy == "rgp" and self.saved:
            return min(self.saved, key=lambda entry: entry[1])
        if self.strategy == "anneal":
            return self.best_nbrs, *self.best_key
        return self.graph.nbrs, self.graph.total, self.graph.diameter

    def advance(self, fraction: float, tries: int) -> int:
        """Draw up to ``tries`` swaps, apply the first one accepted; return the number drawn."""
        rate = self._passed / self._evaluated
        count = max(1, min(tries, self.capacity, math.ceil(1.0 / rate)))
        if self._screening():
            drawn = min(tries, count * SCREEN_FACTOR)
            swaps = self.graph.draw(self.rng, drawn)
            if len(swaps.a) > count:
                self.screen = self.screen or _Screen(self.graph)
                best = np.argpartition(self.screen.estimate(swaps), count - 1)[:count]
                swaps = swaps.take(np.sort(best))
            swaps.order[:] = drawn - 1  # every swap drawn was screened
        else:
            drawn = count
            swaps = self.graph.draw(self.rng, count)
        chosen = self._choose(swaps, self._limits(len(swaps.a), fraction))
        evaluated = len(swaps.a) if chosen is None else chosen[0] + 1
        self._evaluated = 0.95 * self._evaluated + evaluated
        self._passed = 0.95 * self._passed + (chosen is not None)
        tried = drawn if chosen is None else int(swaps.order[chosen[0]]) + 1
        self.steps += tried
        if chosen is not None:
            index, total, diameter = chosen
            self._accept(swaps.one(index), total, diameter)
        return tried

    def _screening(self) -> bool:
        graph = self.graph
        return self.strategy != "rgp" and graph.diameter <= 3 and graph.n <= SCREEN_MAX_NODES

    def _limits(self, count: int, fraction: float) -> tuple[np.ndarray, float]:
        """Per candidate, the largest distance sum the strategy accepts, and a floor it must
        stay above."""
        total = self.graph.total
        if self.strategy == "anneal":
            scale = self.graph.n * ANNEAL_START * (ANNEAL_END / ANNEAL_START) ** min(fraction, 1.0)
            return total - scale * np.log1p(-self.rng.random(count)), -math.inf
        if self.strategy == "greedy":
            return np.full(count, float(total)), -math.inf
        return np.full(count, self.frozen - 1.0), self.frozen - RGP_MAX_DROP * self.pairs

    def _choose(
        self, swaps: _Proposals, bounds: tuple[np.ndarray, float]
    ) -> tuple[int, int, int] | None:
        """The first candidate within the bounds, as (index, distance sum, diameter), or None."""
        if len(swaps.a) == 0:
            return None
        limits, floor = bounds
        batch = _evaluate(self.graph, self.stack, swaps, max(2, self.graph.diameter - 1))
        for index in np.flatnonzero(batch.partial <= limits).tolist():
            found = _finish(self.graph, swaps, batch, index, limits[index])
            if found is not None and found[0] > floor:
                return (index, *found)
        return None

    def _accept(self, swap: _Proposals, total: int, diameter: int) -> None:
        graph = self.graph
        graph.apply(swap, total, diameter)
        self.stack.follow(graph, swap)
        self.screen = None
        self.accepted += 1
        self.trajectory.append((self.steps, self.aspl, diameter))
        if (total, diameter) < self.best_key:
            self.best_key = (total, diameter)
            self.best_nbrs = graph.nbrs.copy()
        if self.strategy == "rgp" and self.frozen - total > RGP_MIN_DROP * self.pairs:
            self.saved.append((graph.nbrs.copy(), total, diameter))
            self.frozen = total


def _ordered_total(stats) -> int:
    """Sum of distances over ordered node pairs of a connected graph."""
    return 2 * int(np.arange(len(stats.histogram)) @ stats.histogram)


def _budget(time_budget: float | None, max_steps: int | None) -> tuple[float, float]:
    if time_budget is None and max_steps is None:
        return DEFAULT_TIME_BUDGET, math.inf
    if time_budget is not None and not time_budget > 0:
        raise TopopruneError(f"time_budget must be a positive number of seconds, got {time_budget}")
    if max_steps is not None and max_steps < 1:
        raise TopopruneError(f"max_steps must be a positive integer, got {max_steps}")
    return (
        math.inf if time_budget is None else float(time_budget),
        math.inf if max_steps is None else max_steps,
    )


def optimize(
    adj: np.ndarray,
    *,
    strategy: str = "anneal",
    seed: int = 0,
    time_budget: float | None = None,
    max_steps: int | None = None,
    progress: bool = False,
) -> SwapResult:
    """Lower the ASPL of a connected regular graph by degree-preserving double-edge swaps.

    ``adj`` is the start (``"rgp"`` uses only its n and k and starts from the ring lattice). The
    search stops after ``time_budget`` seconds or ``max_steps`` swaps tried, whichever comes first
    (``DEFAULT_TIME_BUDGET`` seconds when both are None); use ``max_steps`` for results that
    repeat exactly. ``progress`` shows a tqdm bar.

    >>> from topoprune.graphs.generate import random_regular
    >>> result = optimize(random_regular(64, 4, seed=0), strategy="greedy", max_steps=500)
    >>> result.aspl <= result.start_aspl, result.steps
    (True, 500)
    """
    seconds_limit, steps_limit = _budget(time_budget, max_steps)
    search = SwapSearch(adj, strategy=strategy, seed=seed)
    start_aspl, start_diameter = search.aspl, search.diameter
    bar = _progress_bar(progress, steps_limit, seconds_limit)
    started = time.perf_counter()
    elapsed = 0.0
    while search.swappable and search.steps < steps_limit and elapsed < seconds_limit:
        fraction = max(search.steps / steps_limit, elapsed / seconds_limit)
        drawn = search.advance(fraction, int(min(steps_limit - search.steps, 1 << 20)))
        elapsed = time.perf_counter() - started
        if bar is not None:
            bar.update(drawn if math.isfinite(steps_limit) else 0)
            bar.set_postfix(aspl=f"{search.aspl:.4f}", diameter=search.diameter, refresh=False)
    if bar is not None:
        bar.close()
    nbrs, total, diameter = search.best()
    return SwapResult(
        adj=from_neighbours(nbrs),
        aspl=total / search.pairs,
        diameter=diameter,
        start_aspl=start_aspl,
        start_diameter=start_diameter,
        strategy=strategy,
        seed=seed,
        steps=search.steps,
        accepted=search.accepted,
        seconds=elapsed,
        trajectory=np.array(search.trajectory, dtype=np.float64),
    )


def _progress_bar(enabled: bool, steps_limit: float, seconds_limit: float):
    if not enabled:
        return None
    from tqdm import tqdm

    total = steps_limit if math.isfinite(steps_limit) else None
    return tqdm(total=total, desc="swaps", unit="swap", mininterval=0.5)


def bank(
    n: int,
    k: int,
    count: int,
    *,
    seed: int = 0,
    time_budget: float = 60.0,
    progress: bool = False,
) -> list[BankGraph]:
    """``count`` k-regular graphs on n nodes whose ASPLs spread from the best found to the lattice.

    Half the budget anneals a random regular graph (the best graph, M0); the other half runs
    ``RGP_CHAINS`` chains of the published ``"rgp"`` walk from the ring lattice, each chain step
    saving a graph. For evenly spaced ASPL targets between M0 and the ring lattice (the last,
    included) the saved graph nearest each target is taken, so the list is sorted by ASPL, best
    first. Where the saved graphs are sparse a graph can appear twice.

    >>> graphs = bank(16, 4, 3, time_budget=0.5)
    >>> [g.label for g in graphs], graphs[0].aspl <= graphs[1].aspl <= graphs[2].aspl
    (['M0', 'M1', 'M2'], True)
    """
    check_regular(n, k)
    if count < 2:
        raise TopopruneError(
            f"a bank holds the best graph and the ring lattice: count >= 2, got {count}"
        )
    if not time_budget > 0:
        raise TopopruneError(f"time_budget must be a positive number of seconds, got {time_budget}")
    lattice = ring_lattice(n, k)
    best = optimize(
        random_regular(n, k, seed=seed),
        seed=seed,
        time_budget=time_budget / 2,
        progress=progress,
    )
    pool = [(best.aspl, best.diameter, best.adj)]
    for chain in range(RGP_CHAINS):
        walk = SwapSearch(lattice, strategy="rgp", seed=seed + 1 + chain)
        deadline = time.perf_counter() + time_budget / (2 * RGP_CHAINS)
        while walk.swappable and time.perf_counter() < deadline:
            walk.advance(0.0, 1 << 20)
        for nbrs, total, diameter in walk.saved:
            pool.append((total / walk.pairs, diameter, from_neighbours(nbrs)))
    pool.sort(key=lambda entry: entry[0])
    stats = distance_stats(lattice)
    top, bottom = pool[0][0], stats.aspl
    values = np.array([entry[0] for entry in pool])
    chosen = [pool[0]]
    for target in np.linspace(top, bottom, count)[1:-1]:
        chosen.append(pool[int(np.argmin(np.abs(values - target)))])
    chosen.append((stats.aspl, stats.diameter, lattice))
    return [
        BankGraph(adj=adj, aspl=value, diameter=diameter, label=f"M{rank}")
        for rank, (value, diameter, adj) in enumerate(chosen)
    ]
