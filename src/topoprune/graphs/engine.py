"""The native swap search: ``anneal.cpp`` run through ctypes, used by :func:`optimize` for the
``"anneal"`` and ``"greedy"`` strategies wherever a C++ compiler exists.

Candidates are scored in one of two ways (``two_hop`` in :meth:`NativeSearch.run`):

- by an exact all-sources bitset BFS in compiled code (about two microseconds at (64, 8)),
  stopped early once its distance sum provably fails the acceptance test; any graph;
- by counting, for graphs of diameter at most 3: there the distance sum is fixed by the number
  P of pairs more than two hops apart, and a pair is within two hops exactly when it is linked
  or has a common neighbour. The search keeps every pair's common-neighbour count, updates the
  ``8k`` counts a swap changes, and refuses swaps that would put a pair four hops apart. About
  three times as many candidates a second at (64, 8).

:func:`run_native` counts wherever it can (no symmetry, diameter <= 3, n <= TWO_HOP_MAX_NODES).
Built and cached by :mod:`topoprune.native`; without a compiler :func:`load_engine` returns
None and the numpy search of :mod:`topoprune.graphs.swap_numpy` runs instead.

>>> from topoprune.graphs.generate import random_regular, to_neighbours
>>> from topoprune.graphs.paths import distance_stats
>>> graph = random_regular(32, 4, seed=0)
>>> stats = distance_stats(graph)
>>> total = round(stats.aspl * 32 * 31)  # sum over ordered pairs
>>> search = NativeSearch(to_neighbours(graph), total, stats.diameter, seed=0)
>>> if engine_available():
...     tried, kept, rows = search.run(2000, float("inf"), (0.0, 0.0))  # greedy
...     assert tried == 2000 and search.best_total <= total
"""

from __future__ import annotations

import ctypes
import functools
import math
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from topoprune import native

SOURCE = Path(__file__).with_name("anneal.cpp")
SYMBOL = "topoprune_anneal"
TRAJECTORY_CAPACITY = 4096
"""Rows of new-best records one native call may write before it returns."""
NATIVE_CHUNKS = 100
"""Native calls per search: the progress bar and the trajectory's regular rows follow them."""
TWO_HOP_MAX_NODES = 4096
"""The counting search keeps an (n, n) table of 2-byte counts: 32 MiB at this size."""

_I64 = ctypes.c_int64
_PTR = ctypes.c_void_p
_F64 = ctypes.c_double
_ARGTYPES = [_I64, _I64, _I64, _PTR, _PTR, _I64, _F64, _F64, _F64, _F64, _I64]
_ARGTYPES += [_PTR, _PTR, _PTR, _I64, _PTR]


@functools.cache
def load_engine() -> ctypes.CDLL | None:
    """The compiled swap search, built on first use; None where that is impossible."""
    return native.load_library(
        SOURCE,
        native.BASE_FLAGS,
        (SYMBOL, _ARGTYPES),
        "swap search",
        "optimize() uses the numpy search",
    )


def engine_available() -> bool:
    """Whether the native swap search compiled and loaded on this machine."""
    return load_engine() is not None


class NativeSearch:
    """A swap search on a connected k-regular graph, run in native chunks.

    ``nbrs`` ``(n, k)`` is the start; ``total`` and ``diameter`` its sum of distances over ordered
    node pairs and its diameter. After each :meth:`run`, ``nbrs`` is the current graph and
    ``best_nbrs`` the best seen (lowest sum, then lowest diameter), with ``total``,
    ``diameter``, ``best_total`` and ``best_diameter``. The random state carries over between
    runs, so the same seed and the same chunks of steps give the same graphs.
    """

    def __init__(
        self, nbrs: np.ndarray, total: int, diameter: int, *, seed: int, shift: int | None = None
    ) -> None:
        n = len(nbrs)
        self.shift = shift or n
        if n % self.shift or not ((nbrs >= 0) & (nbrs < n)).all():
            raise ValueError(f"shift {self.shift} must divide n = {n}; neighbours in [0, n)")
        self.nbrs = np.array(nbrs, dtype=np.int32, order="C")  # a copy: the search writes it
        self.best_nbrs = self.nbrs.copy()
        self.stats = np.array([total, diameter, total, diameter, 0, 0], dtype=np.int64)
        self.state = np.random.SeedSequence(seed).generate_state(4, np.uint64)
        self.trajectory = np.zeros((TRAJECTORY_CAPACITY, 3), dtype=np.int64)

    def can_count(self) -> bool:
        """Whether the counting score applies to the current graph (see the module docstring)."""
        n = len(self.nbrs)
        return self.shift == n and self.diameter <= 3 and n <= TWO_HOP_MAX_NODES

    @property
    def total(self) -> int:
        return int(self.stats[0])

    @property
    def diameter(self) -> int:
        return int(self.stats[1])

    @property
    def best_total(self) -> int:
        return int(self.stats[2])

    @property
    def best_diameter(self) -> int:
        return int(self.stats[3])

    def run(
        self,
        steps: int,
        seconds: float,
        temperatures: tuple[float, float],
        targeted: float = 0.0,
        two_hop: bool = False,
    ) -> tuple[int, int, np.ndarray]:
        """Try up to ``steps`` swaps (at least one) for at most ``seconds`` (``inf`` or <= 0: no
        limit), the annealing temperature (in units of the distance sum) falling geometrically
        between the two ``temperatures`` over the chunk (``(0, 0)``: greedy). ``two_hop`` scores
        by counting (see the module docstring): the graph must have diameter <= 3 and no
        symmetry, and keeps diameter <= 3. Returns ``(tried, kept, rows)``: ``rows`` ``(m, 3)``
        int64 holds ``(step within the chunk, sum, diameter)`` per new best."""
        library = load_engine()
        if library is None:
            raise RuntimeError("the native swap search is not available")
        n, k = self.nbrs.shape
        if two_hop and not self.can_count():
            raise ValueError("two_hop needs diameter <= 3, no symmetry and n <= TWO_HOP_MAX_NODES")
        rows = ctypes.c_int64(0)
        getattr(library, SYMBOL)(
            n, k, self.shift, self.nbrs.ctypes.data, self.state.ctypes.data, steps,
            seconds if np.isfinite(seconds) else 0.0, *temperatures, targeted, int(two_hop),
            self.best_nbrs.ctypes.data, self.stats.ctypes.data,
            self.trajectory.ctypes.data, TRAJECTORY_CAPACITY, ctypes.byref(rows),
        )  # fmt: skip
        return int(self.stats[4]), int(self.stats[5]), self.trajectory[: rows.value].copy()


class Plan(NamedTuple):
    """How chunks scored one way are searched: annealing ``temperatures`` ``(start, end)`` in
    units of the distance sum over ordered pairs (``(0, 0)``: greedy descent), and the share of
    swaps ``aimed`` at a pair far apart."""

    temperatures: tuple[float, float]
    aimed: float


class Plans(NamedTuple):
    """The :class:`Plan` for chunks scored by BFS and for chunks scored by counting."""

    bfs: Plan
    two_hop: Plan

    def greedy(self) -> Plans:
        """The same plans with greedy descent in place of annealing."""
        return Plans(*(plan._replace(temperatures=(0.0, 0.0)) for plan in self))


def is_rotation_invariant(nbrs: np.ndarray, symmetry: int) -> bool:
    """Whether the graph ``nbrs`` ``(n, k)`` maps onto itself under ``v -> v + n / symmetry``."""
    n = len(nbrs)
    shift = n // symmetry
    rotated = (np.roll(nbrs, shift, axis=0) + shift) % n
    return bool((np.sort(rotated, axis=1) == np.sort(nbrs, axis=1)).all())


def run_native(
    search: NativeSearch,
    plans: Plans,
    seconds_limit: float,
    steps_limit: float,
    on_chunk=None,
) -> tuple[int, int, float, np.ndarray]:
    """Drive ``search`` in ``NATIVE_CHUNKS`` chunks until ``steps_limit`` swaps are tried or
    ``seconds_limit`` seconds pass (one may be ``inf``). Each chunk counts when it can
    (:meth:`NativeSearch.can_count`), else runs the BFS, and follows ``plans.two_hop`` or
    ``plans.bfs`` accordingly: the temperature falls geometrically over the whole budget.
    ``on_chunk(steps, elapsed)`` is called after each chunk. Returns ``(steps, kept, seconds,
    rows)``; ``rows`` ``(m, 3)`` int64 holds ``(step, distance sum, diameter)`` of the best graph
    so far at the start, at every new best and at each chunk's end, so the sums never rise."""

    def temperature(pair: tuple[float, float], fraction: float) -> float:
        hot, cold = pair
        return hot * (cold / hot) ** min(fraction, 1.0) if hot > 0 else 0.0

    rows = [np.array([[0, search.total, search.diameter]], dtype=np.int64)]
    steps = kept = 0
    started = time.perf_counter()
    elapsed = 0.0
    while steps < steps_limit and elapsed < seconds_limit:
        fraction = max(steps / steps_limit, elapsed / seconds_limit)
        target = min(1.0, (math.floor(fraction * NATIVE_CHUNKS) + 1) / NATIVE_CHUNKS)
        chunk_steps = (
            math.ceil(target * steps_limit) - steps if math.isfinite(steps_limit) else 1 << 62
        )
        chunk_seconds = target * seconds_limit - elapsed
        two_hop = search.can_count()
        plan = plans.two_hop if two_hop else plans.bfs
        tried, chunk_kept, bests = search.run(
            max(1, chunk_steps),
            max(1e-3, chunk_seconds),
            (temperature(plan.temperatures, fraction), temperature(plan.temperatures, target)),
            plan.aimed,
            two_hop,
        )
        bests[:, 0] += steps
        steps, kept = steps + tried, kept + chunk_kept
        elapsed = time.perf_counter() - started
        best_row = [[steps, search.best_total, search.best_diameter]]
        rows += [bests, np.array(best_row, dtype=np.int64)]
        if on_chunk is not None:
            on_chunk(steps, elapsed)
    return steps, kept, elapsed, np.concatenate(rows)
