"""SNIP: single-shot network pruning by connection sensitivity, at initialisation.

Lee, Ajanthan and Torr, "SNIP: Single-shot Network Pruning based on Connection Sensitivity",
ICLR 2019. The sensitivity of weight j is ``|∂L(c ⊙ w)/∂c_j|`` at ``c = 1``, that is
``|g_j · w_j|`` with ``g = ∂L/∂w`` (the paper's eq. 6; its normalisation by the sum of all
sensitivities does not change the order and is left out). The highest-scored weights are kept
under one global threshold over every masked layer (the paper's κ largest).

Conventions here (the paper's unless said otherwise):

- loss: cross-entropy of the model's logits on ``batches`` training batches (default 1, the
  paper's single mini-batch) of ``samples`` samples each (default 128; the option is not called
  ``batch_size``, the CLI's training flag), chosen by a permutation seeded with the call's
  ``seed`` (no sample twice); images normalised with the dataset's mean and std,
  no augmentation; with several batches the gradients of the per-batch mean losses are summed (as
  the SNIP of Tanaka et al.'s ganguli-lab/Synaptic-Flow code accumulates them);
- the model is scored as given (its own initialisation), on a copy: BatchNorm uses the batch's
  statistics (train mode, as at the first training step), dropout is off, ``model`` is unchanged;
- which weights: those of the layers the call masks (:mod:`topoprune.pruning.layers`: the first
  conv and the classifier stay dense, ``layers``/``exclude`` apply), where the paper scores every
  layer;
- exactly ``round((1 − sparsity) · units)`` units are kept (ties: the earlier unit);
  ``granularity`` and ``like`` as described in :mod:`topoprune.pruning.saliency`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from topoprune.pruning.baselines import match_like
from topoprune.pruning.layers import PrunableLayer
from topoprune.pruning.registry import PruneContext, Pruning, option, register_method
from topoprune.pruning.saliency import (
    ScoreOptions,
    check_like,
    device_of,
    layers_and_kept,
    positive,
    scoring_copy,
    select,
    training_batches,
)


@dataclass(frozen=True)
class SnipOptions(ScoreOptions):
    """SNIP's data: how many training batches, of how many samples."""

    batches: int = option(1, "training batches the gradient is computed on (the paper: 1)")
    samples: int = option(128, "training samples in each batch")


def snip_scores(
    model: nn.Module, layers: Sequence[PrunableLayer], batches: Iterable[tuple[torch.Tensor, ...]]
) -> dict[str, torch.Tensor]:
    """``|g ⊙ w|`` for every layer's weight, ``g`` the gradient of the cross-entropy summed over
    ``batches`` of (images, labels), computed on a scoring copy of ``model``.

    >>> from topoprune.models import create_model
    >>> from topoprune.pruning import prunable_layers
    >>> model = create_model("lenet5", in_channels=1)
    >>> batch = (torch.randn(4, 1, 28, 28), torch.tensor([0, 1, 2, 3]))
    >>> scores = snip_scores(model, prunable_layers(model), [batch])
    >>> scores["conv2"].shape == model.conv2.weight.shape, bool((scores["fc1"] >= 0).all())
    (True, True)
    """
    net = scoring_copy(model, train=True)
    modules = dict(net.named_modules())
    weights = [modules[layer.name].weight for layer in layers]
    for weight in weights:
        weight.requires_grad_(True)
    grads = [torch.zeros_like(weight) for weight in weights]
    device, dtype = device_of(net), weights[0].dtype
    for images, labels in batches:
        logits = net(images.to(device, dtype))
        loss = F.cross_entropy(logits, labels.to(device))
        parts = torch.autograd.grad(loss, weights, allow_unused=True)
        for grad, part in zip(grads, parts, strict=True):
            if part is not None:
                grad += part
    return {
        layer.name: (grad * weight).abs().detach()
        for layer, grad, weight in zip(layers, grads, weights, strict=True)
    }


def _check(sparsity: float, options: SnipOptions) -> None:
    positive(options.batches, "batches", "snip")
    positive(options.samples, "samples", "snip")
    check_like("snip")(sparsity, options)


@register_method("snip", protocol="at-init", options=SnipOptions, match=match_like, check=_check)
def snip(model: nn.Module, sparsity: float, options: SnipOptions, context: PruneContext) -> Pruning:
    """SNIP (Lee et al., ICLR 2019): keep the largest |gradient x weight| on a training batch."""
    batches = training_batches(context.data, options.batches, options.samples, context.seed, "snip")
    layers, kept = layers_and_kept(model, sparsity, options, context)
    scores = snip_scores(model, layers, batches)
    masks = select(scores, kept, options.granularity)
    return Pruning(masks=masks, metrics={"samples": sum(len(y) for _, y in batches)})
