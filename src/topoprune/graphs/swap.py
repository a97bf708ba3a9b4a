"""Lower the ASPL of a regular graph by degree-preserving double-edge swaps.

A swap takes two edges ``(a, b)``, ``(c, d)`` and rewires them into ``(a, c)``, ``(b, d)`` (a
"2-opt" move) when that creates no self-loop and no repeated edge; every degree stays the same.
A swap is kept only when the graph stays connected and the strategy accepts the new distances:

- ``"anneal"`` (default): simulated annealing on the total distance ``S`` (summed over ordered
  node pairs, an integer; ASPL = S / (n (n - 1))). A swap that changes it by ``delta`` is kept
  with probability ``min(1, exp(-delta / T))``; ``T / n`` falls geometrically between the two
  ``ANNEAL_TEMPERATURES`` over the budget (``SCREENED_ANNEAL_TEMPERATURES`` while the diameter
  is at most 3). The graph with the lowest ASPL seen is returned, the lower diameter breaking
  ties. (Graph Golf solvers minimise the diameter first; ranking by ASPL reached lower ASPLs in
  our runs.)
- ``"greedy"``: keep a swap when the ASPL does not rise.
- ``"rgp"``: the bounded random walk of the published RGP code (Chen et al., arXiv
  2110.15192). It always starts from the ring lattice with the same n and k. Each call (a chain
  step) freezes the ASPL ``a0`` it starts from, keeps any swap whose ASPL ``a`` stays inside
  ``(a0 - RGP_MAX_DROP, a0)``, and returns, saving the graph, as soon as
  ``a0 - a > RGP_MIN_DROP``. (Inferred from the description: swaps that rise above ``a0`` or
  drop past the band are refused.) The best saved graph is returned.

Where a C++ compiler exists, ``"anneal"`` and ``"greedy"`` run in the native engine of
:mod:`topoprune.graphs.engine`: an exact bitset BFS per candidate in compiled code, or, while
the graph has diameter <= 3, common-neighbour counts updated per swap (about 1.3 million
candidates a second at (64, 8)), many of them aimed at a pair far apart. The numpy search of
:mod:`topoprune.graphs.swap_numpy` is the fallback, and always runs ``"rgp"``.

This module holds :func:`optimize`, which checks its arguments, sets the budget and picks the
engine; it re-exports the public names of the modules that do the rest:
:mod:`~topoprune.graphs.swap_numpy` (the numpy search), :mod:`~topoprune.graphs.swap_native`
(driving the native engine), :mod:`~topoprune.graphs.swap_report` (:class:`SwapResult`) and
:mod:`~topoprune.graphs.swap_bank` (:func:`bank`).

>>> from topoprune.graphs.generate import random_regular
>>> start = random_regular(32, 4, seed=0)
>>> result = optimize(start, max_steps=2000, seed=0)
>>> result.aspl < result.start_aspl
True
"""

from __future__ import annotations

import math

import numpy as np

from topoprune.errors import TopopruneError
from topoprune.graphs.engine import engine_available
from topoprune.graphs.generate import check_regular, to_neighbours
from topoprune.graphs.swap_bank import RGP_CHAINS, BankGraph, bank
from topoprune.graphs.swap_native import NATIVE_PLANS, optimize_native
from topoprune.graphs.swap_numpy import (
    ANNEAL_TEMPERATURES,
    PRESCREEN,
    RGP_MAX_DROP,
    RGP_MIN_DROP,
    SCREEN_FACTOR,
    SCREENED_ANNEAL_TEMPERATURES,
    STRATEGIES,
    SwapSearch,
    optimize_numpy,
)
from topoprune.graphs.swap_report import SwapResult

__all__ = [
    "ANNEAL_TEMPERATURES",
    "DEFAULT_TIME_BUDGET",
    "NATIVE_PLANS",
    "PRESCREEN",
    "RGP_CHAINS",
    "RGP_MAX_DROP",
    "RGP_MIN_DROP",
    "SCREENED_ANNEAL_TEMPERATURES",
    "SCREEN_FACTOR",
    "STRATEGIES",
    "BankGraph",
    "SwapResult",
    "SwapSearch",
    "bank",
    "optimize",
    "search_engine",
]

DEFAULT_TIME_BUDGET = 10.0


def _budget(time_budget: float | None, max_steps: int | None) -> tuple[float, float]:
    if time_budget is None and max_steps is None:
        return DEFAULT_TIME_BUDGET, math.inf
    if time_budget is not None and not 0 < time_budget < math.inf:
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
    symmetry: int = 1,
) -> SwapResult:
    """Lower the ASPL of a connected regular graph by degree-preserving double-edge swaps.

    ``adj`` is the start (``"rgp"`` uses only its n and k and starts from the ring lattice). The
    search stops after ``time_budget`` seconds or ``max_steps`` swaps tried, whichever comes first
    (``DEFAULT_TIME_BUDGET`` seconds when both are None); use ``max_steps`` for results that
    repeat exactly. ``progress`` shows a tqdm bar.

    ``"anneal"`` and ``"greedy"`` run in the native engine (:mod:`topoprune.graphs.engine`)
    where a C++ compiler exists, else in numpy. ``symmetry`` g > 1 (native only) searches only
    graphs that map onto themselves under ``v -> v + n / g``: ``adj`` must be such a graph (the
    ring lattice is), every swap is made in all its rotated copies, and distances are counted from
    n / g sources, which speeds up large graphs (g = n / 64 works well for n >= 256).

    >>> from topoprune.graphs.generate import random_regular
    >>> result = optimize(random_regular(64, 4, seed=0), strategy="greedy", max_steps=500)
    >>> result.aspl <= result.start_aspl, result.steps
    (True, 500)
    """
    if strategy not in STRATEGIES:
        raise TopopruneError(f"unknown strategy {strategy!r}; choose one of {STRATEGIES}")
    if symmetry < 1 or len(adj) % symmetry:
        raise TopopruneError(
            f"symmetry must be a positive divisor of n = {len(adj)}, got {symmetry}"
        )
    if symmetry > 1 and strategy == "rgp":
        raise TopopruneError("symmetry applies to 'anneal' and 'greedy', not to the 'rgp' walk")
    seconds_limit, steps_limit = _budget(time_budget, max_steps)
    if search_engine(strategy, symmetry) == "numpy":
        return optimize_numpy(adj, strategy, seed, seconds_limit, steps_limit, progress)
    nbrs = to_neighbours(adj)
    check_regular(*nbrs.shape)
    if symmetry > 1 and not engine_available():  # symmetry picks the native engine regardless
        raise TopopruneError("symmetry > 1 needs the native engine (a C++ compiler)")
    return optimize_native(nbrs, strategy, seed, seconds_limit, steps_limit, progress, symmetry)


def search_engine(strategy: str, symmetry: int = 1) -> str:
    """``"native"`` or ``"numpy"``: where :func:`optimize` runs this strategy on this machine. The
    two draw different swaps, so one seed gives different graphs on the two engines.

    >>> search_engine("rgp")
    'numpy'
    """
    native = strategy != "rgp" and (symmetry > 1 or engine_available())
    return "native" if native else "numpy"
