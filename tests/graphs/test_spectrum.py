"""Spectral gap and the Ramanujan property, against networkx's spectrum and closed forms."""

import math

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from topoprune.errors import TopopruneError
from topoprune.graphs.generate import complete, random_regular, ring_lattice
from topoprune.graphs.io import graph_metadata
from topoprune.graphs.spectrum import is_ramanujan, nontrivial_eigenvalues, spectral_gap


@settings(max_examples=25, deadline=None)
@given(n=st.integers(6, 40), half_k=st.integers(1, 3), seed=st.integers(0, 10_000))
def test_the_gap_matches_networkx_spectrum(n, half_k, seed):
    k = 2 * half_k
    if k >= n:
        return
    adj = random_regular(n, k, seed=seed)
    graph = nx.from_numpy_array(adj)
    if not nx.is_connected(graph):
        return
    spectrum = np.sort(np.real(nx.adjacency_spectrum(graph)))
    trivial = [k] + ([-k] if nx.is_bipartite(graph) else [])
    rest = list(spectrum)
    for value in trivial:
        rest.pop(int(np.argmin(np.abs(np.array(rest) - value))))
    assert spectral_gap(adj) == pytest.approx(k - max(abs(v) for v in rest), abs=1e-9)
    bound = 2 * math.sqrt(k - 1)
    assert is_ramanujan(adj) == (max(abs(v) for v in rest) <= bound + 1e-9)


def test_closed_forms():
    assert spectral_gap(complete(6)) == pytest.approx(4.0)  # 5 - |-1|
    petersen = nx.to_numpy_array(nx.petersen_graph(), dtype=np.int64)
    assert spectral_gap(petersen) == pytest.approx(1.0) and is_ramanujan(petersen)  # 3, 1, -2
    cycle = ring_lattice(10, 2)  # bipartite: -2 is trivial too
    assert len(nontrivial_eigenvalues(cycle)) == 8
    assert spectral_gap(cycle) == pytest.approx(2 - 2 * math.cos(2 * math.pi / 10))


def test_irregular_or_disconnected_graphs_are_refused():
    two_triangles = np.kron(np.eye(2, dtype=np.int64), complete(3))
    with pytest.raises(TopopruneError, match="connected"):
        spectral_gap(two_triangles)
    path = np.diag(np.ones(3, dtype=np.int64), 1) + np.diag(np.ones(3, dtype=np.int64), -1)
    with pytest.raises(TopopruneError, match="regular graphs only"):
        spectral_gap(path)


def test_metadata_reports_the_gap_beside_aspl():
    lattice, optimised = ring_lattice(32, 4), random_regular(32, 4, seed=0)
    lattice_meta, random_meta = graph_metadata(lattice), graph_metadata(optimised)
    assert lattice_meta["spectral_gap"] == pytest.approx(spectral_gap(lattice))
    assert lattice_meta["aspl"] > random_meta["aspl"]  # the lattice: long paths ...
    assert lattice_meta["spectral_gap"] < random_meta["spectral_gap"]  # ... and poor expansion
    assert graph_metadata(complete(4))["ramanujan"] is True
