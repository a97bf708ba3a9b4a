"""Global magnitude pruning after training: one threshold on |w| over every masked layer.

The strongest simple baseline of Blalock, Gonzalez Ortiz, Frankle and Guttag, "What is the State
of Neural Network Pruning?", MLSys 2020 (ShrinkBench, JJGO/shrinkbench,
``strategies/magnitude.py``: ``GlobalMagnitudePruning``): the weights of all prunable layers are
ranked together by absolute value and the largest are kept, so that layers end up with
different densities; it prunes a trained network, which is then fine-tuned.

Conventions here: exactly ``round((1 − sparsity) · units)`` units are kept over the layers the
call masks (ties: the earlier unit); only weights are masked (ShrinkBench masks biases with the
same threshold too); the first conv and the classifier stay dense (:mod:`topoprune.pruning.layers`;
ShrinkBench leaves the classifier dense by default, ``prune_classifier=False``, but prunes the
first conv). ``granularity="kernel"`` ranks whole (out, in) conv slices by their L1 norm (Linear
layers per weight). A weight already masked counts as 0. Registered ``after-training``: the
runner trains the dense model for ``pretrain_fraction`` of the epochs, prunes, and fine-tunes
for the rest (ShrinkBench's rule of equal total epochs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from topoprune.pruning.baselines import GRANULARITIES
from topoprune.pruning.layers import PrunableLayer
from topoprune.pruning.registry import PruneContext, Pruning, option, register_method
from topoprune.pruning.saliency import kept_count, select, units


@dataclass(frozen=True)
class MagnitudeOptions:
    """The unit kept or removed."""

    granularity: str = option(
        "weight",
        "unit kept or removed: one weight (|w|), or one whole (out, in) conv kernel slice "
        "(its L1 norm; Linear layers stay per weight)",
        choices=GRANULARITIES,
    )


def magnitude_scores(layers: Sequence[PrunableLayer]) -> dict[str, torch.Tensor]:
    """``|w|`` of every layer's (masked, if masked) weight; summed per slice it is the L1 norm."""
    return {layer.name: layer.module.weight.detach().abs() for layer in layers}


@register_method("global-magnitude", protocol="after-training", options=MagnitudeOptions)
def global_magnitude(
    model: nn.Module, sparsity: float, options: MagnitudeOptions, context: PruneContext
) -> Pruning:
    """Global magnitude pruning of the trained model (ShrinkBench's baseline): one |w| threshold."""
    layers = context.layers
    total = sum(units(layer.module.weight.shape, options.granularity) for layer in layers)
    masks = select(magnitude_scores(layers), kept_count(total, sparsity), options.granularity)
    return Pruning(masks=masks)
