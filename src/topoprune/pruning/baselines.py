"""Baselines that stand beside the graph methods under the same budget.

``random``: an unstructured random mask per layer that keeps exactly ``round(density·numel)``
weights, with the density a graph method would give that layer (``1 − sparsity``), so the
comparison isolates the *pattern* from the amount.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from topoprune.pruning.layers import PrunableLayer


def random_masks(
    layers: Sequence[PrunableLayer], sparsity: float, seed: int
) -> dict[str, torch.Tensor]:
    """Bool masks shaped like each layer's weight, ``1 − sparsity`` of entries kept at random.

    >>> from torch import nn
    >>> layer = PrunableLayer("fc", nn.Linear(10, 4))
    >>> int(random_masks([layer], 0.75, seed=0)["fc"].sum())
    10
    """
    generator = torch.Generator().manual_seed(seed)
    masks = {}
    for layer in layers:
        weight = layer.module.weight
        kept = round((1.0 - sparsity) * weight.numel())
        order = torch.randperm(weight.numel(), generator=generator)
        flat = torch.zeros(weight.numel(), dtype=torch.bool)
        flat[order[:kept]] = True
        masks[layer.name] = flat.view_as(weight)
    return masks
