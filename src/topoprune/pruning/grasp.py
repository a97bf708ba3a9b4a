"""GraSP: gradient signal preservation, at initialisation.

Wang, Zhang and Grosse, "Picking Winning Tickets Before Training by Preserving Gradient Flow",
ICLR 2020. Removing weight q changes the gradient norm ``gᵀg`` by about ``−2 w_q (Hg)_q``, ``H``
the Hessian of the loss; the score is ``S = −w ⊙ (Hg)`` and the weights whose removal would
reduce the gradient flow least — the *highest* ``S`` — are removed.

The conventions of the authors' published code (alecwangcq/GraSP, ``pruner/GraSP.py``), followed
here:

- the logits are divided by a temperature ``T = 200`` before the cross-entropy (``temperature``);
- data: ``batches`` (their ``num_iters``, default 1) class-balanced batches of
  ``samples_per_class`` samples of every class (their CIFAR-10 configs: 10), ordered by class as
  their ``GraSP_fetch_data`` returns them, each split into a first and a second half
  ``[:N//2]``, ``[N//2:]``;
- ``g`` is the sum over all halves of the gradient of each half's mean loss, taken as a constant
  (no graph); ``Hg`` is the sum over the halves of the gradient of ``Σ g · ∂L_half/∂w`` (double
  backprop: a Hessian-gradient product, never the Hessian);
- ``g`` and ``Hg`` run over the weights of *every* Conv2d and Linear layer (their ``weights``
  list; biases and BatchNorm excluded), the scores are then read on the layers the call masks;
- the copy that is scored keeps BatchNorm in train mode (their ``copy.deepcopy(net)  # .eval()``);
- one global threshold: the ``round(sparsity · units)`` highest scores are removed, exactly
  ``round((1 − sparsity) · units)`` units kept (ties: the earlier unit kept). Their code's
  normalisation of the scores by ``|Σ S|`` does not change the order and is left out.

Two deliberate differences from that code: it keeps scores ``<=`` the smallest of the
``int(ratio · n)`` highest, which keeps that one too (one weight fewer removed), where the counts
here are exact; and its ``reinit=True`` re-draws the Linear weights of the scoring copy
(Xavier-normal) before scoring, where the model here is scored with the weights it will train
with. Images are normalised with the dataset's mean and std, without their loader's augmentation,
and chosen by a permutation seeded with the call's ``seed``. The first conv and the classifier
stay dense (:mod:`topoprune.pruning.layers`); ``granularity`` (``kernel``: the slice's scores
summed, the highest-summed slices removed) and ``like`` as in :mod:`topoprune.pruning.saliency`.
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
    balanced_batches,
    check_like,
    device_of,
    layers_and_kept,
    positive,
    scoring_copy,
    select,
)

TEMPERATURE = 200.0
"""The logits' temperature of the published code (``T=200``)."""


@dataclass(frozen=True)
class GraspOptions(ScoreOptions):
    """GraSP's data and temperature (the published code's defaults)."""

    samples_per_class: int = option(10, "samples of every class in each batch (published: 10)")
    batches: int = option(1, "class-balanced batches (published num_iters: 1)")
    temperature: float = option(TEMPERATURE, "the logits are divided by it (published T: 200)")


def _halves(batches: Iterable[tuple[torch.Tensor, ...]]) -> list[tuple[torch.Tensor, ...]]:
    """Every batch split into ``[:N//2]`` and ``[N//2:]``, empty halves left out."""
    halves = []
    for images, labels in batches:
        middle = len(labels) // 2
        for part in (slice(None, middle), slice(middle, None)):
            if len(labels[part]):
                halves.append((images[part], labels[part]))
    return halves


def grasp_scores(
    model: nn.Module,
    layers: Sequence[PrunableLayer],
    batches: Iterable[tuple[torch.Tensor, ...]],
    temperature: float = TEMPERATURE,
) -> dict[str, torch.Tensor]:
    """``S = −w ⊙ (Hg)`` for every layer's weight (the highest are removed).

    ``g`` and ``H`` are the gradient and Hessian, with respect to the weights of every Conv2d and
    Linear layer of a scoring copy of ``model``, of the sum over the halves of ``batches`` of
    each half's mean cross-entropy of ``logits / temperature``.

    >>> from topoprune.models import create_model
    >>> from topoprune.pruning import prunable_layers
    >>> model = create_model("lenet5", in_channels=1)
    >>> batch = (torch.randn(4, 1, 28, 28), torch.tensor([0, 1, 2, 3]))
    >>> grasp_scores(model, prunable_layers(model), [batch])["fc1"].shape
    torch.Size([120, 400])
    """
    net = scoring_copy(model, train=True)
    named = {n: m for n, m in net.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    weights = [module.weight for module in named.values()]
    for weight in weights:
        weight.requires_grad_(True)
    halves = _halves(batches)
    device, dtype = device_of(net), weights[0].dtype

    def loss(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        logits = net(images.to(device, dtype)) / temperature
        return F.cross_entropy(logits, labels.to(device))

    def gradient(value: torch.Tensor, graph: bool) -> list[torch.Tensor]:
        parts = torch.autograd.grad(value, weights, create_graph=graph, allow_unused=True)
        return [
            torch.zeros_like(w) if p is None else p for w, p in zip(weights, parts, strict=True)
        ]

    g = [torch.zeros_like(weight) for weight in weights]
    for images, labels in halves:
        for total, part in zip(g, gradient(loss(images, labels), False), strict=True):
            total += part
    hg = [torch.zeros_like(weight) for weight in weights]
    for images, labels in halves:
        first = gradient(loss(images, labels), True)
        z = sum((constant * part).sum() for constant, part in zip(g, first, strict=True))
        for total, part in zip(hg, gradient(z, False), strict=True):
            total += part
    product = {name: hg[i] for i, name in enumerate(named)}
    return {
        layer.name: -(named[layer.name].weight * product[layer.name]).detach() for layer in layers
    }


def _check(sparsity: float, options: GraspOptions) -> None:
    positive(options.samples_per_class, "samples_per_class", "grasp")
    positive(options.batches, "batches", "grasp")
    positive(options.temperature, "temperature", "grasp")
    check_like("grasp")(sparsity, options)


@register_method("grasp", protocol="at-init", options=GraspOptions, match=match_like, check=_check)
def grasp(
    model: nn.Module, sparsity: float, options: GraspOptions, context: PruneContext
) -> Pruning:
    """GraSP (Wang et al., ICLR 2020): remove the highest -w*(Hg) (gradient flow kept), T=200."""
    batches = balanced_batches(
        context.data, options.batches, options.samples_per_class, context.seed, "grasp"
    )
    layers, kept = layers_and_kept(model, sparsity, options, context)
    scores = grasp_scores(model, layers, batches, options.temperature)
    # keeping the highest −S removes the highest S; ties keep the earlier unit either way
    masks = select({name: -score for name, score in scores.items()}, kept, options.granularity)
    metrics = {"samples": sum(len(y) for _, y in batches), "temperature": options.temperature}
    return Pruning(masks=masks, metrics=metrics)
