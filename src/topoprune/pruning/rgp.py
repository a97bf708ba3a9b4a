"""RGP: map one regular graph onto every prunable layer as a channel-block connection mask.

Chen, Xiang, Lu, Xuan, "Regular graph pruning" (arXiv 2110.15192): build a k-regular graph on n
nodes whose density meets the pruning ratio (k = n·(1 − sparsity), no self-loops), lower its
average shortest path length by degree-preserving edge swaps, and use it as the relational graph
of every layer (You et al., ICML 2020): the channels of a layer are split into n contiguous blocks
(sizes differ by at most one) and ``mask[o, i, :, :] = A[node(o), node(i)]``. Because every layer
uses the same A, paths through the network follow graph paths.

The same mapping serves two baselines: ``lattice`` (the ring lattice, RGP's starting point and
highest ASPL) and ``random-regular`` (a random k-regular graph, no optimisation).

Differences from the published code, each a parameter: the graph search defaults to simulated
annealing from a random regular graph (``strategy="rgp"`` mirrors the published bounded random
walk from the ring lattice); ``self_loops=True`` adds the diagonal (the graph2nn variant, where a
node also feeds itself), with degree k − 1 so that the kept fraction stays k/n; a layer with fewer
channels than ``nodes`` gets its own graph on as many nodes as it has channels (with a warning).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from topoprune.errors import TopopruneError
from topoprune.graphs.generate import check_regular, degree_for, random_regular, ring_lattice
from topoprune.graphs.io import graph_metadata
from topoprune.graphs.swap import STRATEGIES, optimize
from topoprune.pruning.blocks import block_mask
from topoprune.pruning.layers import PrunableLayer

GRAPH_METHODS = ("rgp", "lattice", "random-regular")
DEFAULT_STEPS = 200_000


@dataclass(frozen=True)
class GraphChoice:
    """How the graph of a layer is made: method, optimiser strategy and budget, seed."""

    method: str
    strategy: str
    seed: int
    steps: int | None
    seconds: float | None
    self_loops: bool

    def __post_init__(self) -> None:
        if self.method not in GRAPH_METHODS:
            raise TopopruneError(
                f"unknown graph method {self.method!r}: use one of {GRAPH_METHODS}"
            )
        if self.strategy not in STRATEGIES:
            raise TopopruneError(f"unknown strategy {self.strategy!r}: use one of {STRATEGIES}")


def layer_degree(nodes: int, sparsity: float, self_loops: bool) -> int:
    """Degree of the graph on ``nodes`` nodes whose kept fraction is nearest ``1 − sparsity``.

    RGP's rule k = round(n·(1 − sparsity)); with self-loops one of the k kept blocks is the node
    itself, so the graph degree is k − 1.

    >>> layer_degree(64, 0.9375, False), layer_degree(64, 0.9375, True)
    (4, 3)
    """
    kept = degree_for(nodes, sparsity) if not self_loops else round(nodes * (1.0 - sparsity))
    degree = kept - 1 if self_loops else kept
    check_regular(nodes, degree)
    return degree


def _nearest_valid_degree(nodes: int, sparsity: float, self_loops: bool) -> int | None:
    """For a small layer: the valid degree closest to the rule, or None when none exists."""
    target = nodes * (1.0 - sparsity) - (1 if self_loops else 0)
    valid = [k for k in range(2, nodes) if (nodes * k) % 2 == 0]
    return min(valid, key=lambda k: (abs(k - target), k)) if valid else None


def make_graph(nodes: int, degree: int, choice: GraphChoice) -> np.ndarray:
    """The (nodes, nodes) adjacency for ``choice``: optimised, ring lattice or random regular."""
    if choice.method == "lattice":
        return ring_lattice(nodes, degree)
    start = random_regular(nodes, degree, seed=choice.seed)
    if choice.method == "random-regular":
        return start
    return optimize(
        start,
        strategy=choice.strategy,
        seed=choice.seed,
        time_budget=choice.seconds,
        max_steps=choice.steps,
    ).adj


def _weight_mask(adj: np.ndarray, layer: PrunableLayer, self_loops: bool) -> torch.Tensor:
    """The layer's weight-shaped bool mask from the adjacency (plus the diagonal if self-loops)."""
    pattern = adj + np.eye(len(adj), dtype=adj.dtype) if self_loops else adj
    mask = block_mask(pattern, layer.out_units, layer.in_units).bool()
    weight = layer.module.weight
    return mask.view(*mask.shape, *([1] * (weight.dim() - 2))).expand_as(weight).clone()


def graph_masks(
    layers: Sequence[PrunableLayer],
    sparsity: float,
    nodes: int,
    choice: GraphChoice,
    graph: np.ndarray | None = None,
) -> tuple[dict[str, torch.Tensor], np.ndarray, list[dict[str, Any]]]:
    """Masks for ``layers`` from one graph on ``nodes`` nodes (``graph`` if given, else made).

    Returns (masks by layer name, the main adjacency, one row per layer). Layers with fewer
    channels than ``nodes`` get a graph of their own on ``min(in, out)`` nodes; layers too small
    for any regular graph (fewer than 3 channels) stay dense. Both are warned about.
    """
    if graph is not None:
        graph = np.asarray(graph, dtype=np.uint8)
        nodes = len(graph)
        degree = int(graph[0].sum())
    else:
        degree = layer_degree(nodes, sparsity, choice.self_loops)
        graph = make_graph(nodes, degree, choice)
    graphs = {nodes: graph}
    masks: dict[str, torch.Tensor] = {}
    rows: list[dict[str, Any]] = []
    for layer in layers:
        layer_nodes = min(nodes, layer.in_units, layer.out_units)
        if layer_nodes not in graphs:
            layer_degree_ = _nearest_valid_degree(layer_nodes, sparsity, choice.self_loops)
            if layer_degree_ is None:
                warnings.warn(
                    f"{layer.name}: {layer_nodes} channels are too few for a regular graph; "
                    "the layer stays dense",
                    stacklevel=3,
                )
                continue
            warnings.warn(
                f"{layer.name}: {layer_nodes} channels < {nodes} nodes; using a graph on "
                f"{layer_nodes} nodes with degree {layer_degree_}",
                stacklevel=3,
            )
            graphs[layer_nodes] = make_graph(layer_nodes, layer_degree_, choice)
        adj = graphs[layer_nodes]
        masks[layer.name] = _weight_mask(adj, layer, choice.self_loops)
        kept = masks[layer.name].float().mean().item()
        rows.append(
            {
                "name": layer.name,
                "shape": list(layer.module.weight.shape),
                "nodes": layer_nodes,
                "degree": int(adj[0].sum()),
                "kept": kept,
            }
        )
    return masks, graph, rows


def graph_metrics(graph: np.ndarray, self_loops: bool) -> dict[str, Any]:
    """ASPL, diameter, Moore bound and gap of the mapped graph, and its nominal kept fraction."""
    meta = graph_metadata(graph)
    kept_blocks = meta["k"] + (1 if self_loops else 0)
    return {**meta, "nominal_kept": kept_blocks / meta["n"], "self_loops": self_loops}
