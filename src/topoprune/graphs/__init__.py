"""The graph engine, numpy only (importing it never imports torch).

A graph is a symmetric 0/1 ``numpy.uint8`` adjacency of shape (n, n) with a zero diagonal.

>>> from topoprune.graphs import random_regular, optimize, distance_stats, moore_bound
>>> start = random_regular(64, 4, seed=0)
>>> best = optimize(start, max_steps=2000, seed=0)
>>> distance_stats(best.adj).aspl >= moore_bound(64, 4).aspl
True
"""

from topoprune.graphs.generate import (
    check_adjacency,
    check_regular,
    complete,
    component_labels,
    degree_for,
    edge_list,
    erdos_renyi,
    from_neighbours,
    random_regular,
    ring_lattice,
    to_neighbours,
    watts_strogatz,
)
from topoprune.graphs.io import (
    graph_metadata,
    load_graph,
    load_json,
    load_npy,
    read_edgelist,
    save_bank,
    save_graph,
    save_json,
    save_npy,
    write_edgelist,
)
from topoprune.graphs.paths import (
    MooreBound,
    PathStats,
    aspl,
    diameter,
    distance_stats,
    is_connected,
    moore_bound,
)
from topoprune.graphs.smallworld import (
    average_clustering,
    characteristic_path_length,
    lattice_reference,
    omega,
    random_reference,
    sigma,
)
from topoprune.graphs.swap import STRATEGIES, BankGraph, SwapResult, bank, optimize

__all__ = [
    "STRATEGIES",
    "BankGraph",
    "MooreBound",
    "PathStats",
    "SwapResult",
    "aspl",
    "average_clustering",
    "bank",
    "characteristic_path_length",
    "check_adjacency",
    "check_regular",
    "complete",
    "component_labels",
    "degree_for",
    "diameter",
    "distance_stats",
    "edge_list",
    "erdos_renyi",
    "from_neighbours",
    "graph_metadata",
    "is_connected",
    "lattice_reference",
    "load_graph",
    "load_json",
    "load_npy",
    "moore_bound",
    "omega",
    "optimize",
    "random_reference",
    "random_regular",
    "read_edgelist",
    "ring_lattice",
    "save_bank",
    "save_graph",
    "save_json",
    "save_npy",
    "sigma",
    "to_neighbours",
    "watts_strogatz",
    "write_edgelist",
]
