"""How a swap search reports, in either engine: its start graph's distances, a tqdm progress bar
while it runs, and the :class:`SwapResult` that :func:`topoprune.graphs.swap.optimize` returns.

>>> from topoprune.graphs.generate import ring_lattice, to_neighbours
>>> stats = start_stats(to_neighbours(ring_lattice(8, 2)))
>>> ordered_total(stats), stats.diameter  # 8 nodes, distances 1, 1, 2, 2, 3, 3, 4 from each
(128, 4)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from topoprune.errors import TopopruneError
from topoprune.graphs.generate import from_neighbours
from topoprune.graphs.paths import PathStats, distance_stats

__all__ = ["SwapResult", "ordered_total", "progress_bar", "show_progress", "start_stats"]


@dataclass
class SwapResult:
    """The outcome of :func:`~topoprune.graphs.swap.optimize`.

    ``trajectory`` has shape ``(m, 3)``, rows ``(step, aspl, diameter)`` with ``step`` counting
    the swaps tried so far. The numpy engine writes the current graph at the start and after
    every accepted swap; the native engine (``engine == "native"``) writes the best graph so far
    at the start, at every new best and at 100 checkpoints.
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
    engine: str = "numpy"

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
            "engine": self.engine,
            "trajectory_rows": len(self.trajectory),
        }


def start_stats(nbrs: np.ndarray) -> PathStats:
    """Distances of a search's start graph ``nbrs`` ``(n, k)``, which must be connected."""
    stats = distance_stats(from_neighbours(nbrs))
    if not stats.connected:
        raise TopopruneError("swap search needs a connected graph; start from random_regular")
    return stats


def show_progress(
    bar, steps: int, elapsed: float, steps_limit: float, aspl: float, diameter: int
) -> None:
    """Advance ``bar`` (if any) to the swaps tried, or the seconds when only time bounds the
    search, and show the current graph's ASPL and diameter."""
    if bar is not None:
        bar.update((steps if math.isfinite(steps_limit) else elapsed) - bar.n)
        bar.set_postfix(aspl=f"{aspl:.4f}", diameter=diameter, refresh=False)


def progress_bar(enabled: bool, strategy: str, steps_limit: float, seconds_limit: float):
    """A tqdm bar over the swaps tried, or over the seconds when only time bounds the search."""
    if not enabled:
        return None
    from tqdm import tqdm

    if math.isfinite(steps_limit):
        return tqdm(total=steps_limit, desc=f"{strategy} swaps", unit="swap", mininterval=0.5)
    return tqdm(total=seconds_limit, desc=f"{strategy} swaps", unit="s", mininterval=0.5)


def ordered_total(stats: PathStats) -> int:
    """Sum of distances over ordered node pairs of a connected graph."""
    return 2 * int(np.arange(len(stats.histogram)) @ stats.histogram)
