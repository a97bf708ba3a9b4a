"""``prune(model, method=..., sparsity=..., **options)``: one entry point for every method."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
from torch import nn

from topoprune.errors import TopopruneError
from topoprune.graphs.swap import search_engine
from topoprune.pruning.base import PruneResult, apply_masks
from topoprune.pruning.baselines import random_masks
from topoprune.pruning.layers import prunable_layers
from topoprune.pruning.rgp import (
    DEFAULT_STEPS,
    GRAPH_METHODS,
    GraphChoice,
    graph_masks,
    graph_metrics,
)

METHODS = (*GRAPH_METHODS, "random")


def _check_sparsity(sparsity: float) -> float:
    if not isinstance(sparsity, (int, float)) or not 0.0 <= sparsity < 1.0:
        raise TopopruneError(f"sparsity must be a fraction in [0, 1), got {sparsity!r}")
    return float(sparsity)


def prune(
    model: nn.Module,
    method: str = "rgp",
    sparsity: float = 0.9,
    *,
    nodes: int = 64,
    graph: np.ndarray | None = None,
    strategy: str = "anneal",
    steps: int | None = DEFAULT_STEPS,
    seconds: float | None = None,
    self_loops: bool = False,
    layers: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    seed: int = 0,
    input_size: tuple[int, int, int] | None = None,
) -> PruneResult:
    """Prune ``model`` in place with ``method`` and return what was done.

    method: ``"rgp"`` (an ASPL-optimised k-regular graph on ``nodes`` nodes, k from ``sparsity``),
        ``"lattice"`` (the ring lattice), ``"random-regular"`` (a random k-regular graph), or
        ``"random"`` (unstructured random masks of the same density per layer).
    graph: use this (n, n) adjacency instead of making one (``nodes`` is then its size).
    strategy, steps, seconds: how ``rgp`` optimises its graph (see ``topoprune.graphs.optimize``);
        a step budget repeats exactly, a time budget does not.
    layers, exclude: shell-style name patterns choosing the masked layers.
    input_size: (C, H, W); when given, true params and MACs are counted before and after.

    >>> from topoprune.models import create_model
    >>> model = create_model("resnet20")
    >>> result = prune(model, "rgp", sparsity=0.75, nodes=16, steps=200)
    >>> result.metrics["graph"]["k"], round(result.metrics["nominal_reduction"], 4)
    (4, 0.75)
    """
    if method not in METHODS:
        raise TopopruneError(f"unknown pruning method {method!r}: use one of {', '.join(METHODS)}")
    sparsity = _check_sparsity(sparsity)
    chosen = prunable_layers(model, include=layers, exclude=exclude)
    call = {
        "method": method,
        "sparsity": sparsity,
        "nodes": nodes,
        "strategy": strategy,
        "steps": steps,
        "seconds": seconds,
        "self_loops": self_loops,
        "layers": None if layers is None else list(layers),
        "exclude": list(exclude),
        "seed": seed,
    }
    metrics: dict[str, Any] = {}
    adjacency = None
    rows: list[dict[str, Any]] = []
    if method == "random":
        masks = random_masks(chosen, sparsity, seed)
        metrics["nominal_reduction"] = sparsity
    else:
        choice = GraphChoice(method, strategy, seed, steps, seconds, self_loops)
        masks, adjacency, rows = graph_masks(chosen, sparsity, nodes, choice, graph)
        metrics["graph"] = graph_metrics(adjacency, self_loops)
        if method == "rgp" and graph is None:
            metrics["graph"]["search_engine"] = search_engine(strategy)
        metrics["nominal_reduction"] = 1.0 - metrics["graph"]["nominal_kept"]
    dense = copy.deepcopy(model) if input_size is not None else None
    apply_masks(model, masks)
    metrics.update(_true_reduction(model, dense, input_size))
    if not rows:
        rows = [
            {"name": name, "shape": list(mask.shape), "kept": mask.float().mean().item()}
            for name, mask in masks.items()
        ]
    record = {"call": call, "graph_given": graph is not None}
    return PruneResult(method, masks, record, adjacency, metrics, rows)


def _true_reduction(
    model: nn.Module, dense: nn.Module | None, input_size: tuple[int, int, int] | None
) -> dict[str, Any]:
    """Fraction of all params (and MACs, given an input size) removed, dense layers included."""
    if dense is None:
        total = sum(p.numel() for p in model.parameters())
        masks = [m.weight_mask for m in model.modules() if hasattr(m, "weight_mask")]
        removed = sum(int((mask == 0).sum()) for mask in masks)
        return {
            "params": total - removed,
            "dense_params": total,
            "params_reduction": removed / total,
        }
    from topoprune.measure import count

    before, after = count(dense, input_size), count(model, input_size)
    reduction = after.reduction(before)
    return {
        "params": after.params,
        "dense_params": before.params,
        "macs": after.macs,
        "dense_macs": before.macs,
        "params_reduction": reduction["params"],
        "macs_reduction": reduction["macs"],
    }
