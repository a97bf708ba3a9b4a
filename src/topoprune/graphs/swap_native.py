"""Drive the native swap search of :mod:`topoprune.graphs.engine` for
:func:`~topoprune.graphs.swap.optimize`: plan its chunks, follow them with the progress bar, and
turn what it found into a :class:`~topoprune.graphs.swap_report.SwapResult`.
"""

from __future__ import annotations

import numpy as np

from topoprune.errors import TopopruneError
from topoprune.graphs.engine import NativeSearch, Plan, Plans, is_rotation_invariant, run_native
from topoprune.graphs.generate import from_neighbours
from topoprune.graphs.swap_report import (
    SwapResult,
    ordered_total,
    progress_bar,
    show_progress,
    start_stats,
)

__all__ = ["NATIVE_PLANS", "optimize_native"]

# The native engine: annealing temperatures in units of the distance sum over ordered pairs (a
# swap changes it by an even number) and the share of swaps aimed at a pair far apart (one end
# rewired to a neighbour of the other), for chunks scored by BFS (tuned on (64, 4), (256, 8)
# and (1024, 8)) and by counting (diameter <= 3, tuned on (64, 8)). "greedy" keeps the aims.
NATIVE_PLANS = Plans(bfs=Plan((4.0, 0.5), 0.5), two_hop=Plan((1.3, 1.3), 0.7))


def optimize_native(
    nbrs: np.ndarray,
    strategy: str,
    seed: int,
    seconds_limit: float,
    steps_limit: float,
    progress: bool,
    symmetry: int,
) -> SwapResult:
    """:func:`~topoprune.graphs.swap.optimize` in the native engine, from the k-regular graph
    ``nbrs`` ``(n, k)``. Its ``trajectory`` holds the best graph so far at the start, at every
    new best and at the end of each of the ``NATIVE_CHUNKS``."""
    n, k = nbrs.shape
    if not is_rotation_invariant(nbrs, symmetry):
        raise TopopruneError(
            f"symmetry={symmetry} needs a start that maps onto itself under v -> v + "
            f"{n // symmetry} (mod {n}); ring_lattice(n, k) does"
        )
    stats = start_stats(nbrs)
    total = ordered_total(stats)
    search = NativeSearch(nbrs, total, stats.diameter, seed=seed, shift=n // symmetry)
    plans = NATIVE_PLANS if strategy == "anneal" else NATIVE_PLANS.greedy()
    bar = progress_bar(progress, strategy, steps_limit, seconds_limit)
    pairs = n * (n - 1)

    def show(steps: int, elapsed: float) -> None:
        show_progress(bar, steps, elapsed, steps_limit, search.total / pairs, search.diameter)

    if k < n - 1:
        steps, kept, seconds, rows = run_native(search, plans, seconds_limit, steps_limit, show)
    else:  # the complete graph: no swap exists
        steps, kept, seconds = 0, 0, 0.0
        rows = np.array([[0, total, stats.diameter]], dtype=np.int64)
    if bar is not None:
        bar.close()
    trajectory = np.column_stack([rows[:, 0], rows[:, 1] / pairs, rows[:, 2]]).astype(np.float64)
    return SwapResult(
        adj=from_neighbours(search.best_nbrs.astype(np.intp)),
        aspl=search.best_total / pairs,
        diameter=search.best_diameter,
        start_aspl=stats.aspl,
        start_diameter=stats.diameter,
        strategy=strategy,
        seed=seed,
        steps=steps,
        accepted=kept,
        seconds=seconds,
        trajectory=trajectory,
        engine="native",
    )
