"""The graph bank: k-regular graphs whose ASPLs spread from the best found to the ring lattice,
for the ASPL-accuracy study (:func:`bank`)."""

from __future__ import annotations

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
from topoprune.graphs.paths import distance_stats
from topoprune.graphs.swap_numpy import SwapSearch

__all__ = ["RGP_CHAINS", "BankGraph", "bank"]

# The "rgp" walk chains a bank runs, each from the ring lattice with its own seed.
RGP_CHAINS = 6


@dataclass
class BankGraph:
    """One graph of a :func:`bank`: ``label`` is ``"M0"`` for the lowest ASPL, then M1, M2, ..."""

    adj: np.ndarray
    aspl: float
    diameter: int
    label: str


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
    from topoprune.graphs.swap import optimize  # here, not above: swap re-exports bank

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
    pool = [(best.aspl, best.diameter, to_neighbours(best.adj))]  # (ASPL, diameter, nbrs)
    for chain in range(RGP_CHAINS):
        walk = SwapSearch(lattice, strategy="rgp", seed=seed + 1 + chain)
        deadline = time.perf_counter() + time_budget / (2 * RGP_CHAINS)
        while walk.swappable and time.perf_counter() < deadline:
            walk.advance(0.0, 1 << 20)
        pool += [(total / walk.pairs, diameter, nbrs) for nbrs, total, diameter in walk.saved]
    pool.sort(key=lambda entry: entry[0])
    stats = distance_stats(lattice)
    values = np.array([entry[0] for entry in pool])
    chosen = [pool[0]]
    for target in np.linspace(values[0], stats.aspl, count)[1:-1]:
        chosen.append(pool[int(np.argmin(np.abs(values - target)))])
    chosen.append((stats.aspl, stats.diameter, to_neighbours(lattice)))
    return [
        BankGraph(adj=from_neighbours(nbrs), aspl=value, diameter=diameter, label=f"M{rank}")
        for rank, (value, diameter, nbrs) in enumerate(chosen)
    ]
