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
channels than ``nodes`` gets its own graph on as many nodes as it has channels (with a warning;
each layer's row in the result says which graph it really got). A graph the user gives may be
irregular (Watts–Strogatz, Erdős–Rényi, ...): it must be connected, fit every layer, and keep the
fraction of blocks that ``sparsity`` asks for (to half a block per node).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from topoprune.errors import TopopruneError
from topoprune.graphs.generate import check_regular, degree_for, random_regular, ring_lattice
from topoprune.graphs.io import graph_metadata, load_graph
from topoprune.graphs.swap import STRATEGIES, optimize, search_engine
from topoprune.pruning.blocks import block_mask
from topoprune.pruning.layers import PrunableLayer
from topoprune.pruning.registry import (
    CheckedOptions,
    PruneContext,
    Pruning,
    get_method,
    option,
    register_method,
)

DEFAULT_NODES = 64
DEFAULT_STEPS = 200_000


@dataclass(frozen=True)
class GraphOptions:
    """Options of every method that maps one graph onto the layers."""

    nodes: int | None = option(
        None, f"graph nodes = channel blocks per layer (default {DEFAULT_NODES}, or the graph's)"
    )
    self_loops: bool = option(False, "each node also keeps its own block (degree k - 1)")

    @property
    def node_count(self) -> int:
        return DEFAULT_NODES if self.nodes is None else self.nodes


@dataclass(frozen=True)
class RGPOptions(GraphOptions):
    """RGP's options: the graph search, or a graph of the user's."""

    graph: Any = option(None, "use this graph: an (n, n) adjacency or a .npy/.json/.txt file")
    strategy: str = option("anneal", "graph search: anneal, greedy or rgp", choices=STRATEGIES)
    steps: int | None = option(
        None, f"swaps to try (default {DEFAULT_STEPS:,} unless seconds is given)"
    )
    seconds: float | None = option(None, "graph search time limit (does not repeat exactly)")


@dataclass(frozen=True)
class GraphChoice:
    """How the graph of a layer is made: its kind, the optimiser strategy and budget, the seed."""

    kind: str  # "optimized", "lattice" or "random-regular"
    strategy: str
    seed: int
    steps: int | None
    seconds: float | None
    self_loops: bool


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
    if choice.kind == "lattice":
        return ring_lattice(nodes, degree)
    start = random_regular(nodes, degree, seed=choice.seed)
    if choice.kind == "random-regular":
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


def check_given_graph(
    graph: np.ndarray,
    layers: Sequence[PrunableLayer],
    sparsity: float,
    nodes: int | None,
    self_loops: bool,
) -> None:
    """Refuse a user's graph that does not fit: disconnected, larger than a layer, or at odds
    with ``nodes`` or ``sparsity`` (its kept blocks per node, mean degree + self-loop, must be
    within half a block of n·(1 − sparsity))."""
    meta = graph_metadata(graph)
    n = meta["n"]
    if not meta["connected"]:
        raise TopopruneError("the given graph is disconnected: pass a connected graph")
    if nodes is not None and nodes != n:
        raise TopopruneError(f"the given graph has {n} nodes but nodes={nodes}: drop one of them")
    small = next((layer for layer in layers if min(layer.in_units, layer.out_units) < n), None)
    if small is not None:
        raise TopopruneError(
            f"the given graph has {n} nodes but layer {small.name} has only "
            f"{min(small.in_units, small.out_units)} channels: use a smaller graph or --exclude it"
        )
    kept = meta["degree_mean"] + (1 if self_loops else 0)
    if abs(kept - n * (1.0 - sparsity)) > 0.5:
        raise TopopruneError(
            f"the given graph keeps {kept:g} of {n} blocks per node (sparsity "
            f"{1 - kept / n:.4f}), not sparsity {sparsity:g}: pass a matching sparsity"
        )


def graph_masks(
    layers: Sequence[PrunableLayer],
    sparsity: float,
    nodes: int,
    choice: GraphChoice,
    graph: np.ndarray | None = None,
) -> tuple[dict[str, torch.Tensor], np.ndarray, list[dict[str, Any]]]:
    """Masks for ``layers`` from one graph on ``nodes`` nodes (``graph`` if given, else made).

    Returns (masks by layer name, the main adjacency, one row per layer with the nodes and
    degree of the graph that layer really got). Layers with fewer channels than ``nodes`` get a
    graph of their own on ``min(in, out)`` nodes; layers too small for any regular graph (fewer
    than 3 channels) stay dense. Both are warned about. A given ``graph`` must fit every layer
    (:func:`check_given_graph`).
    """
    if graph is not None:
        graph = np.asarray(graph, dtype=np.uint8)
        nodes = len(graph)
    else:
        graph = make_graph(nodes, layer_degree(nodes, sparsity, choice.self_loops), choice)
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
        degrees = adj.sum(axis=1)
        rows.append(
            {
                "name": layer.name,
                "shape": list(layer.module.weight.shape),
                "nodes": layer_nodes,
                "degree": int(degrees[0]) if (degrees == degrees[0]).all() else None,
                "degree_mean": float(degrees.mean()),
                "kept": masks[layer.name].float().mean().item(),
            }
        )
    return masks, graph, rows


def graph_metrics(graph: np.ndarray, self_loops: bool) -> dict[str, Any]:
    """ASPL, diameter, degrees, Moore bound and gap of the mapped graph, its nominal kept
    fraction (mean kept blocks per node / n)."""
    meta = graph_metadata(graph)
    kept_blocks = meta["degree_mean"] + (1 if self_loops else 0)
    return {**meta, "nominal_kept": kept_blocks / meta["n"], "self_loops": self_loops}


def graph_pruning(
    sparsity: float,
    options: GraphOptions,
    context: PruneContext,
    kind: str,
    graph: np.ndarray | None = None,
) -> Pruning:
    """Masks from one graph of ``kind`` (or the given ``graph``) on every layer of ``context``."""
    strategy = getattr(options, "strategy", "anneal")
    seconds = getattr(options, "seconds", None)
    steps = getattr(options, "steps", None)
    if steps is None and seconds is None:
        steps = DEFAULT_STEPS
    choice = GraphChoice(kind, strategy, context.seed, steps, seconds, options.self_loops)
    if graph is not None:
        check_given_graph(graph, context.layers, sparsity, options.nodes, options.self_loops)
    nodes = len(graph) if graph is not None else options.node_count
    masks, adjacency, rows = graph_masks(context.layers, sparsity, nodes, choice, graph)
    metrics: dict[str, Any] = {"graph": graph_metrics(adjacency, options.self_loops)}
    if kind == "optimized" and graph is None:
        metrics["graph"]["search_engine"] = search_engine(strategy)
    metrics["nominal_reduction"] = 1.0 - metrics["graph"]["nominal_kept"]
    return Pruning(masks=masks, graph=adjacency, metrics=metrics, layers=rows)


def match_degree(
    model: nn.Module, kind: str, target: float, checked: CheckedOptions, **where: Any
) -> tuple[float, dict[str, Any]]:
    """The sparsity of the valid degree whose true ``kind`` ("params"/"macs") reduction is
    nearest ``target`` on the chosen layers; the counts depend only on the degree, so ring
    lattices stand in for whatever graph the method would make. A given graph has one
    sparsity of its own."""
    from topoprune.pruning.match import true_reduction

    options = checked.method
    shift = 1 if options.self_loops else 0
    graph = getattr(options, "graph", None)
    if graph is not None:
        adj = load_graph(graph) if isinstance(graph, str) else np.asarray(graph)
        return 1.0 - (adj.sum(axis=1).mean() + shift) / len(adj), {}
    nodes = options.node_count
    best: tuple[float, float] | None = None
    for degree in range(2, nodes):
        if (nodes * degree) % 2:
            continue
        sparsity = 1.0 - (degree + shift) / nodes
        lattice = {
            "nodes": nodes,
            "self_loops": options.self_loops,
            "layers": checked.common.layers,
            "exclude": checked.common.exclude,
        }
        achieved = true_reduction(model, get_method("lattice"), sparsity, lattice, kind, **where)
        if best is None or abs(achieved - target) < abs(best[1] - target):
            best = (sparsity, achieved)
    if best is None:
        raise TopopruneError(f"no regular graph exists on {nodes} nodes")
    return best[0], {}


def check_degree(sparsity: float, options: GraphOptions) -> None:
    """A made graph needs a valid degree at ``sparsity``; a graph file must load (whether a
    given graph fits the layers is checked when it is mapped)."""
    graph = getattr(options, "graph", None)
    if graph is None:
        layer_degree(options.node_count, sparsity, options.self_loops)
    elif isinstance(graph, str):
        load_graph(graph)


@register_method(
    "rgp", protocol="at-init", options=RGPOptions, match=match_degree, check=check_degree
)
def rgp(model: nn.Module, sparsity: float, options: RGPOptions, context: PruneContext) -> Pruning:
    """An ASPL-optimised k-regular graph on every masked layer (k = nodes·(1 − sparsity))."""
    graph = options.graph
    if isinstance(graph, str):
        graph = load_graph(graph)
    elif graph is not None:
        graph = np.asarray(graph)
    return graph_pruning(sparsity, options, context, "optimized", graph)
