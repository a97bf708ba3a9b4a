"""The numpy swap search, :class:`SwapSearch`: what :func:`~topoprune.graphs.swap.optimize`
runs where the native engine (:mod:`topoprune.graphs.swap_native`) cannot, and always for the
``"rgp"`` walk. How it evaluates candidates:

- In batches of ``B``: candidate ``i`` is written into copy ``i`` of a stack of copies of the
  graph, and the bitset BFS of :mod:`topoprune.graphs.paths` runs on many of them at once (one
  ``(B * n, W)`` array), which spreads numpy's per-call cost. The candidates are then scanned in
  drawing order and the first one accepted is applied. ``B`` follows the recent acceptance rate
  (about one acceptance per batch).
- Level 2 of the BFS is computed only for the ``4 + 4k`` rows a swap can change (the nodes
  within distance 1 of ``a, b, c, d``); the other rows come from the current graph.
- Each BFS stops one level short of the current diameter: the partial distance sum is then
  exact unless the diameter grows, and only candidates that pass the acceptance test pay for the
  last level.
- Screening, for ``"anneal"`` and ``"greedy"``: while the diameter is at most 3, the distance
  sum depends only on which pairs are within distance 2, and a swap's effect on them can be
  estimated from path counts around its four nodes in a few array lookups; ``SCREEN_FACTOR``
  times more swaps are drawn and only the most promising get the exact BFS. With a larger
  diameter, only the ``1 / PRESCREEN`` of a batch whose exact level 2 left the fewest pairs
  unreached go on to the deeper (costly) levels. The swaps screened out count as tried. The
  ``"rgp"`` walk is never screened.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from topoprune.errors import TopopruneError
from topoprune.graphs.generate import check_regular, from_neighbours, ring_lattice, to_neighbours
from topoprune.graphs.paths import closed_neighbourhoods, expand, word_count
from topoprune.graphs.swap_report import (
    SwapResult,
    ordered_total,
    progress_bar,
    show_progress,
    start_stats,
)

__all__ = [
    "ANNEAL_TEMPERATURES",
    "PRESCREEN",
    "RGP_MAX_DROP",
    "RGP_MIN_DROP",
    "SCREENED_ANNEAL_TEMPERATURES",
    "SCREEN_FACTOR",
    "STRATEGIES",
    "SwapSearch",
    "optimize_numpy",
]

STRATEGIES = ("anneal", "greedy", "rgp")
# Annealing temperature per node, in units of the total distance over ordered node pairs: it
# falls geometrically from the first value to the second over the budget. Tuned on (64, 4),
# (256, 8) and (1024, 8); graphs of diameter <= 3 (screened, see below) do better warmer.
ANNEAL_TEMPERATURES = (0.005, 0.001)
SCREENED_ANNEAL_TEMPERATURES = (0.02, 0.01)
# The published RGP walk: a chain step ends once the ASPL has dropped by more than RGP_MIN_DROP
# below the value frozen at its start, and no swap may drop it by RGP_MAX_DROP or more.
RGP_MIN_DROP = 0.05
RGP_MAX_DROP = 0.2
# Screening (graphs of diameter <= 3, n <= SCREEN_MAX_NODES): draw SCREEN_FACTOR swaps per
# candidate that gets the exact BFS.
SCREEN_FACTOR = 16
SCREEN_MAX_NODES = 512
# Larger diameters: only the best 1 / PRESCREEN of the candidates (by their exact level-2 change)
# get the BFS levels beyond 2.
PRESCREEN = 8
# Distance sum given to candidates dropped by the prescreen.
_DROPPED = 1 << 62
# Words per stacked bitset array: BFS levels beyond 2 run on this many words at a time so the
# arrays stay in cache; a batch holds at most BATCH_CHUNKS such chunks of candidates.
BATCH_WORDS = 1 << 14
BATCH_CHUNKS = 16


class _Proposals:
    """``B`` drawn swaps ``(a, b), (c, d) -> (a, c), (b, d)``.

    ``fields`` ``(8, B)`` holds ``a, b, c, d`` and ``slot_a`` (the slot of ``b`` in row ``a`` of
    the neighbour table), ``slot_b`` (of ``a`` in row ``b``), ``slot_c`` (of ``d`` in row ``c``),
    ``slot_d`` (of ``c`` in row ``d``). ``order`` ``(B,)`` is each swap's position among all the
    swaps drawn, valid or not (a swap is invalid when it would make a self-loop or a repeated
    edge).
    """

    def __init__(self, fields: np.ndarray, order: np.ndarray) -> None:
        self.fields, self.order = fields, order
        self.a, self.b, self.c, self.d = fields[:4]
        self.count = fields.shape[1]

    def take(self, keep: np.ndarray) -> _Proposals:
        return _Proposals(self.fields[:, keep], self.order[keep])

    def one(self, index: int) -> _Proposals:
        return self.take(np.array([index]))

    def changes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(rows, slots, lost, gained)``, each ``(4, B)``: the neighbour table rows a swap
        rewrites (rows a, b, c, d of every swap), the slot in each, and the neighbour the slot
        loses and gains (a loses b and gains c, b: a -> d, c: d -> a, d: c -> b)."""
        fields = self.fields
        return fields[:4], fields[4:], fields[[1, 0, 3, 2]], fields[[2, 3, 0, 1]]


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
        """The valid ones among ``count`` uniformly drawn swaps: two directed edges, each picked
        as a node and one of its slots."""
        a, slot_a = np.divmod(rng.integers(self.n * self.k, size=count), self.k)
        c, slot_c = np.divmod(rng.integers(self.n * self.k, size=count), self.k)
        b, d = self.nbrs[a, slot_a], self.nbrs[c, slot_c]
        fields = np.stack(
            [a, b, c, d, slot_a, self.slots[a, slot_a], slot_c, self.slots[c, slot_c]]
        )
        valid = (a != c) & (a != d) & (b != c) & (b != d) & ~self.linked[a, c] & ~self.linked[b, d]
        keep = np.flatnonzero(valid)
        return _Proposals(fields[:, keep], keep)

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
        self.slots[rows, slots] = slots[[2, 3, 0, 1]]
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
    BFS. ``lost`` and ``won`` are ``(n, n)`` matrices, built for one graph (three matrix
    products).
    """

    def __init__(self, graph: _Graph) -> None:
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
        offsets = self.offsets[:, None, None]
        self.columns[slots, offsets + rows] = offsets + gained
        self.closed[offsets + rows] = graph.closed[rows]

    def write(self, swaps: _Proposals) -> None:
        """Put swap ``i`` of ``swaps`` into copy ``i``."""
        rows, slots, lost, gained = swaps.changes()
        offsets = self.offsets[: swaps.count]
        self.columns[slots, rows + offsets] = gained + offsets
        for node in (lost, gained):  # rows are distinct, so no two updates hit one word
            words, masks = _bits(node)
            self.closed[rows + offsets, words] ^= masks

    def erase(self, graph: _Graph, swaps: _Proposals) -> None:
        """Undo :meth:`write`."""
        rows, slots, _, _ = swaps.changes()
        offsets = self.offsets[: swaps.count]
        self.columns[slots, rows + offsets] = graph.nbrs[rows, slots] + offsets
        self.closed[rows + offsets] = graph.closed[rows]


@dataclass
class _Batch:
    """Distances of ``B`` candidate graphs (the current graph with one swap each), up to ``level``.

    ``partial`` ``(B,)``: distance sum over the levels 0..level (``_DROPPED`` for candidates not
    taken beyond level 2); ``missing`` ``(B,)``: ordered pairs farther apart than ``level``;
    ``diameters`` ``(B,)``: the diameter where already known, else -1. ``rows`` ``(B, R)``,
    ``first`` ``(B, R)`` and ``grown`` ``(B, R, W)``: the level-2 rows that differ from the
    current graph's (``first`` marks a row's first listing). When ``level > 2``, ``reach`` holds
    the bitsets at ``level`` of the candidates taken further, ``chunk`` of them per
    ``(chunk * n, W)`` array, and ``place`` ``(B,)`` each candidate's position among them.
    """

    level: int
    partial: np.ndarray
    missing: np.ndarray
    diameters: np.ndarray
    rows: np.ndarray
    first: np.ndarray
    grown: np.ndarray
    chunk: int
    reach: list[np.ndarray] = field(default_factory=list)
    place: np.ndarray | None = None

    def candidate_reach(self, graph: _Graph, index: int) -> np.ndarray:
        """Candidate ``index``'s ``(n, W)`` bitsets at ``level``."""
        if self.level > 2:
            part, place = divmod(int(self.place[index]), self.chunk)
            return self.reach[part][place * graph.n : (place + 1) * graph.n]
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
    n, count = graph.n, swaps.count
    ends = swaps.fields[:4].T
    rows = np.sort(np.concatenate([ends, graph.nbrs[ends].reshape(count, -1)], axis=1), axis=1)
    first = np.ones(rows.shape, dtype=bool)
    first[:, 1:] = rows[:, 1:] != rows[:, :-1]
    stacked = rows + stack.offsets[:count, None]
    grown = np.bitwise_or.reduce(stack.closed[stack.columns[:, stacked]], axis=0)
    counts = np.bitwise_count(grown).sum(axis=2, dtype=np.int64)
    gained = ((counts - graph.two_counts[rows]) * first).sum(axis=1)
    missing = n * n - int(graph.two_counts.sum()) - gained
    return rows, first, grown, missing


def _evaluate(
    graph: _Graph, stack: _Stack, swaps: _Proposals, level: int, chunk: int, deep: int
) -> _Batch:
    """Run the BFS of every candidate up to ``level >= 2``.

    Level 2 comes from the rows a swap can change. Only the ``deep`` candidates with the fewest
    pairs left beyond distance 2 go on to the later levels, on their stacked copies, ``chunk`` at
    a time so that the arrays stay in cache; the others are dropped.
    """
    n, count, pairs = graph.n, swaps.count, graph.n * graph.n
    stack.write(swaps)
    try:
        rows, first, grown, missing = _level_two(graph, stack, swaps)
        partial = (pairs - n) + (pairs - n - n * graph.k) + missing
        diameters = np.where(missing == 0, 2, -1)
        batch = _Batch(2, partial, missing, diameters, rows, first, grown, chunk)
        if level > 2:
            members = np.arange(count)
            if deep < count:
                members = np.sort(np.argpartition(missing, deep - 1)[:deep])
                dropped = np.ones(count, dtype=bool)
                dropped[members] = False
                partial[dropped] = _DROPPED
            batch.place = np.full(count, -1)
            batch.place[members] = np.arange(len(members))
            for start in range(0, len(members), chunk):
                _deeper(graph, stack, batch, members[start : start + chunk], level)
            batch.level = level
    finally:
        stack.erase(graph, swaps)
    return batch


def _deeper(graph: _Graph, stack: _Stack, batch: _Batch, members: np.ndarray, level: int) -> None:
    """BFS levels 3..level of the candidates ``members`` (sorted), on their stacked copies."""
    n, pairs, size = graph.n, graph.n * graph.n, len(members)
    reach = np.empty((size, n, graph.within_two.shape[1]), dtype=np.uint64)
    reach[:] = graph.within_two
    reach = reach.reshape(size * n, -1)
    first = batch.first[members]
    local = batch.rows[members] + stack.offsets[:size, None]
    reach[local[first]] = batch.grown[members][first]
    start = int(members[0])
    if members[-1] - start == size - 1:  # consecutive copies: a slice, shifted to local rows
        columns = stack.columns[:, start * n : (start + size) * n] - start * n
    else:
        copies = (members[:, None] * n + np.arange(n)).ravel()
        columns = stack.columns[:, copies] - np.repeat((members - np.arange(size)) * n, n)
    column_rows = list(columns)
    buffers = (np.empty_like(reach), np.empty_like(reach))
    scratch = np.empty_like(reach)
    popcounts = np.empty(reach.shape, dtype=np.uint8)
    for depth in range(3, level + 1):
        reach = expand(reach, column_rows, buffers[depth % 2], scratch)
        np.bitwise_count(reach, out=popcounts)
        missing = pairs - popcounts.reshape(size, -1).sum(axis=1, dtype=np.int64)
        batch.partial[members] += missing
        batch.missing[members] = missing
        batch.diameters[members[(missing == 0) & (batch.diameters[members] < 0)]] = depth
    batch.reach.append(reach)


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
    """A swap search on a connected regular graph, advanced batch by batch (see the module
    docstring); :func:`optimize_numpy` drives one.

    ``advance(fraction, tries)`` draws at most ``tries`` swaps, applies at most one and returns
    how many it drew; ``fraction`` in [0, 1] is how much of the budget is spent (it sets the
    annealing temperature). After it, :meth:`adjacency` is the current graph, ``aspl`` and
    ``diameter`` its distances, ``steps`` and ``accepted`` the swaps tried and kept so far. The
    ``"rgp"`` strategy starts from the ring lattice with the n and k of ``adj``.

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
        stats = start_stats(nbrs)
        self.strategy, self.seed = strategy, seed
        self.rng = np.random.default_rng(seed)
        self.graph = _Graph(nbrs, ordered_total(stats), stats.diameter)
        self.pairs = n * (n - 1)
        self.chunk = max(1, min(256, BATCH_WORDS // (n * word_count(n))))
        self.capacity = min(256, BATCH_CHUNKS * self.chunk)
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
            if swaps.count > count:
                self.screen = self.screen or _Screen(self.graph)
                best = np.argpartition(self.screen.estimate(swaps), count - 1)[:count]
                swaps = swaps.take(np.sort(best))
            swaps.order[:] = drawn - 1  # every swap drawn was screened
        else:
            drawn = count
            swaps = self.graph.draw(self.rng, count)
        chosen = self._choose(swaps, self._limits(swaps.count, fraction))
        evaluated = swaps.count if chosen is None else chosen[0] + 1
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
            hot, cold = SCREENED_ANNEAL_TEMPERATURES if self._screening() else ANNEAL_TEMPERATURES
            scale = self.graph.n * hot * (cold / hot) ** min(fraction, 1.0)
            return total - scale * np.log1p(-self.rng.random(count)), -math.inf
        if self.strategy == "greedy":
            return np.full(count, float(total)), -math.inf
        return np.full(count, self.frozen - 1.0), self.frozen - RGP_MAX_DROP * self.pairs

    def _choose(
        self, swaps: _Proposals, bounds: tuple[np.ndarray, float]
    ) -> tuple[int, int, int] | None:
        """The first candidate within the bounds, as (index, distance sum, diameter), or None."""
        if swaps.count == 0:
            return None
        limits, floor = bounds
        level = max(2, self.graph.diameter - 1)
        deep = swaps.count if self.strategy == "rgp" else math.ceil(swaps.count / PRESCREEN)
        batch = _evaluate(self.graph, self.stack, swaps, level, self.chunk, deep)
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


def optimize_numpy(
    adj: np.ndarray,
    strategy: str,
    seed: int,
    seconds_limit: float,
    steps_limit: float,
    progress: bool,
) -> SwapResult:
    """:func:`~topoprune.graphs.swap.optimize` in numpy: a :class:`SwapSearch` on ``adj``,
    advanced until ``steps_limit`` swaps are tried or ``seconds_limit`` seconds pass (one may be
    ``inf``). Its ``trajectory`` holds the current graph at the start and after every accepted
    swap."""
    search = SwapSearch(adj, strategy=strategy, seed=seed)
    start_aspl, start_diameter = search.aspl, search.diameter
    bar = progress_bar(progress, strategy, steps_limit, seconds_limit)
    started = time.perf_counter()
    elapsed = 0.0
    while search.swappable and search.steps < steps_limit and elapsed < seconds_limit:
        fraction = max(search.steps / steps_limit, elapsed / seconds_limit)
        search.advance(fraction, int(min(steps_limit - search.steps, 1 << 20)))
        elapsed = time.perf_counter() - started
        show_progress(bar, search.steps, elapsed, steps_limit, search.aspl, search.diameter)
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
