"""The spectral gap of a regular graph: how well it expands, beside its ASPL.

For a connected k-regular graph the adjacency matrix has the eigenvalue k once (and −k once when
the graph is bipartite); every other eigenvalue is *non-trivial*. The spectral gap is
``k − max |λ_non-trivial|``, and the graph is Ramanujan when ``max |λ_non-trivial| ≤ 2√(k−1)``
(Lubotzky, Phillips, Sarnak, Combinatorica 1988). Low-ASPL regular graphs tend to be good
expanders, so ASPL and the gap usually move together, but they are different measures: a study
of a mask's topology reports both.

>>> from topoprune.graphs.generate import complete, ring_lattice
>>> spectral_gap(complete(5))  # eigenvalues 4 and -1 (four times)
3.0
>>> round(spectral_gap(ring_lattice(8, 2)), 4)  # the 8-cycle: 2 - 2 cos(2 pi / 8)
0.5858
"""

from __future__ import annotations

import math

import numpy as np

from topoprune.errors import TopopruneError


def nontrivial_eigenvalues(adj: np.ndarray) -> np.ndarray:
    """The adjacency eigenvalues of a connected k-regular graph without k (and without −k when it
    is bipartite), ascending; (n − 1,) or (n − 2,) float64."""
    degrees = adj.sum(axis=1)
    k = int(degrees[0])
    if not (degrees == k).all():
        raise TopopruneError("the spectral gap is defined here for regular graphs only")
    values = np.linalg.eigvalsh(adj.astype(np.float64))  # ascending; adj is symmetric
    if not math.isclose(values[-1], k, abs_tol=1e-8) or math.isclose(values[-2], k, abs_tol=1e-8):
        raise TopopruneError(
            "the spectral gap needs a connected graph (k is a repeated eigenvalue)"
        )
    values = values[:-1]
    if math.isclose(values[0], -k, abs_tol=1e-8):  # bipartite: -k is trivial too
        values = values[1:]
    return values


def spectral_gap(adj: np.ndarray) -> float:
    """``k − max |λ|`` over the non-trivial adjacency eigenvalues of a connected k-regular graph."""
    values = nontrivial_eigenvalues(adj)
    k = int(adj[0].sum())
    return float(k - np.abs(values).max()) if values.size else float(k)


def is_ramanujan(adj: np.ndarray) -> bool:
    """Whether every non-trivial eigenvalue has ``|λ| ≤ 2√(k−1)`` (a connected k-regular graph)."""
    values = nontrivial_eigenvalues(adj)
    k = int(adj[0].sum())
    return bool(values.size == 0 or np.abs(values).max() <= 2 * math.sqrt(k - 1) + 1e-9)
