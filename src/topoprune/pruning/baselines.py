"""Baselines that stand beside the graph methods under the same budget.

- ``lattice``: RGP's mapping with the ring lattice (RGP's start, the highest ASPL of its degree);
- ``random-regular``: RGP's mapping with a random k-regular graph (no ASPL optimisation);
- ``random``: unstructured random masks. By default every masked layer keeps exactly
  ``round((1 − sparsity)·units)`` units at random, where a unit is one weight
  (``granularity="weight"``) or one whole (out, in) kernel slice (``granularity="kernel"``).
  With ``like=METHOD`` it copies another method's per-layer kept counts instead (the method is
  run on a copy of the model at the same sparsity and seed; ``like`` may also be a saved
  PruneResult file), so a comparison with it isolates the *pattern* from the amount.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from topoprune.errors import TopopruneError
from topoprune.pruning.layers import PrunableLayer, prunable_layers
from topoprune.pruning.registry import (
    CheckedOptions,
    PruneContext,
    Pruning,
    get_method,
    option,
    register_method,
)
from topoprune.pruning.rgp import GraphOptions, check_degree, graph_pruning, match_degree

GRANULARITIES = ("weight", "kernel")


@dataclass(frozen=True)
class RandomOptions:
    """How much each layer keeps and at which granularity."""

    granularity: str = option(
        "weight",
        "unit kept or removed: one weight, or one whole (out, in) kernel slice",
        choices=GRANULARITIES,
    )
    like: str | None = option(
        None,
        "copy the per-layer kept counts of this method, as it prunes this (untrained) model "
        "(exp's counts depend only on its rates), or of a saved PruneResult file",
    )
    like_options: dict | None = option(None, "options of the method named by like")


def _saved_result(like: str) -> bool:
    """Whether ``like`` names a saved PruneResult file rather than a method."""
    return Path(like).is_file()


def _units(weight: torch.Tensor, granularity: str) -> int:
    """How many units a weight has: every entry, or every (out, in) slice."""
    return weight.numel() if granularity == "weight" else weight.shape[0] * weight.shape[1]


def kept_units(mask: torch.Tensor, granularity: str) -> int:
    """Kept units of a bool mask: kept weights, or (out, in) slices with any weight kept."""
    if granularity == "weight" or mask.dim() == 2:
        return int(mask.sum())
    return int(mask.flatten(2).any(dim=2).sum())


def random_masks(
    layers: Sequence[PrunableLayer],
    kept: Mapping[str, int],
    seed: int,
    granularity: str = "weight",
) -> dict[str, torch.Tensor]:
    """Bool masks shaped like each layer's weight with exactly ``kept[name]`` units kept.

    >>> layer = PrunableLayer("fc", nn.Linear(10, 4))
    >>> int(random_masks([layer], {"fc": 10}, seed=0)["fc"].sum())
    10
    """
    generator = torch.Generator().manual_seed(seed)
    masks = {}
    for layer in layers:
        weight = layer.module.weight
        units = _units(weight, granularity)
        order = torch.randperm(units, generator=generator)
        flat = torch.zeros(units, dtype=torch.bool)
        flat[order[: kept[layer.name]]] = True
        if units == weight.numel():
            masks[layer.name] = flat.view_as(weight)
        else:
            shape = weight.shape[:2] + (1,) * (weight.dim() - 2)
            masks[layer.name] = flat.view(shape).expand_as(weight).clone()
    return masks


def copied_masks(
    model: nn.Module, sparsity: float, options: RandomOptions, context: PruneContext
) -> dict[str, torch.Tensor]:
    """The masks of the method named by ``options.like`` (or read from a saved result)."""
    from topoprune.pruning.api import prune
    from topoprune.pruning.base import PruneResult

    like = options.like
    if _saved_result(like):
        saved = PruneResult.load(like)
        saved.apply_to(copy.deepcopy(model))  # refuses a result made for another architecture
        return saved.masks
    settings = _like_options(options, context.include, context.exclude, context.seed)
    where = {"input_size": context.input_size, "data": context.data}
    return prune(copy.deepcopy(model), like, sparsity, **where, **settings).masks


def _like_options(options: RandomOptions, layers: Any, exclude: Any, seed: int) -> dict:
    """The call of the copied method: its options, and random's layer patterns and seed."""
    return {"seed": seed, "layers": layers, "exclude": exclude, **(options.like_options or {})}


def match_like(
    model: nn.Module, kind: str, target: float, checked: CheckedOptions, **where: Any
) -> tuple[float, dict[str, Any]] | None:
    """``random`` copying another method is matched as that method is."""
    from topoprune.pruning.match import match_sparsity

    options, common = checked.method, checked.common
    if options.like is None or _saved_result(options.like):
        return None
    settings = _like_options(options, common.layers, common.exclude, common.seed)
    found = match_sparsity(model, options.like, kind, target, settings, measure=False, **where)
    return found.sparsity, {}


def _check_like(sparsity: float, options: RandomOptions) -> None:
    """The method named by ``like`` must exist and accept its options at ``sparsity``."""
    from topoprune.pruning.registry import check_options

    like = options.like
    if like is None or _saved_result(like):
        return
    if like == "random":
        raise TopopruneError("random cannot copy itself: name another method in like")
    copied = get_method(like)
    if copied.protocol == "search":
        raise TopopruneError(
            f"random copies another method's masks; {like} searches widths and makes none"
        )
    check_options(copied, options.like_options or {}, sparsity)


def like_kept(
    model: nn.Module, sparsity: float, options: Any, context: PruneContext
) -> tuple[list[PrunableLayer], dict[str, int]]:
    """The layers the method named by ``options.like`` masks, and each one's kept units.

    The masks are made exactly as ``random --like`` makes them (the method run on a copy of
    ``model`` at ``sparsity`` with this call's seed and layer patterns, or a saved result read
    back), and counted in units of ``options.granularity``.
    """
    copied = copied_masks(model, sparsity, options, context)
    if not copied:
        raise TopopruneError(
            f"{options.like} made no masks to copy (it changes the widths instead): "
            "name a method that masks"
        )
    by_name = {layer.name: layer for layer in prunable_layers(model)}
    modules = dict(model.named_modules())
    layers = [
        by_name.get(name) or PrunableLayer(name, modules[name])
        for name in copied
        if name in modules
    ]
    kept = {layer.name: kept_units(copied[layer.name], options.granularity) for layer in layers}
    return layers, kept


@register_method(
    "random", protocol="at-init", options=RandomOptions, match=match_like, check=_check_like
)
def random(
    model: nn.Module, sparsity: float, options: RandomOptions, context: PruneContext
) -> Pruning:
    """Random masks: the same per-layer density (or another method's kept counts), no pattern."""
    if options.like is None:
        layers = context.layers
        kept = {
            layer.name: round((1.0 - sparsity) * _units(layer.module.weight, options.granularity))
            for layer in layers
        }
    else:
        layers, kept = like_kept(model, sparsity, options, context)
    masks = random_masks(layers, kept, context.seed, options.granularity)
    return Pruning(masks=masks)


@register_method(
    "lattice", protocol="at-init", options=GraphOptions, match=match_degree, check=check_degree
)
def lattice(
    model: nn.Module, sparsity: float, options: GraphOptions, context: PruneContext
) -> Pruning:
    """RGP's mapping with the ring lattice of the same degree (RGP's start, highest ASPL)."""
    return graph_pruning(sparsity, options, context, "lattice")


@register_method(
    "random-regular",
    protocol="at-init",
    options=GraphOptions,
    match=match_degree,
    check=check_degree,
)
def random_regular(
    model: nn.Module, sparsity: float, options: GraphOptions, context: PruneContext
) -> Pruning:
    """RGP's mapping with a random k-regular graph (no ASPL optimisation)."""
    return graph_pruning(sparsity, options, context, "random-regular")
