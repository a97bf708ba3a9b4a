"""SynFlow: iterative synaptic flow pruning, at initialisation and without data.

Tanaka, Kunin, Yamins and Ganguli, "Pruning neural networks without any data by iteratively
conserving synaptic flow", NeurIPS 2020 (Algorithm 1). The network is linearised — every
parameter and buffer replaced by its absolute value — and fed an all-ones input; with
``R = 1ᵀ f(1)`` the sum of its outputs, the score of weight w is ``|∂R/∂w ⊙ w|``. The
highest-scored weights are kept under one global threshold, and the scoring and masking repeat
``iterations`` times (default 100, the paper's) on the masked network, the kept fraction after
iteration i being ``(1 − sparsity)^(i / iterations)`` (the paper's exponential schedule).

Conventions, those of the authors' published code (ganguli-lab/Synaptic-Flow, ``Pruners/
pruners.py`` and ``prune.py``) unless said otherwise:

- linearisation takes the absolute value of every floating entry of the state dict (weights,
  biases, BatchNorm affine parameters and running statistics), and the model is scored in eval
  mode (their ``prune_loop`` with ``train_mode=False``): BatchNorm uses its (absolute) running
  statistics; the input is one all-ones sample of the model's input size;
- masks are applied between iterations (a removed weight is 0, scores 0 and stays removed);
- arithmetic in float64 throughout (the scoring copy and the input are cast to double): the
  product of absolute weights along every path overflows float32 in deep networks. Their code
  carries ``model.double()`` and a float64 input *commented out* and scores in float32; float64
  changes no order where float32 is finite;
- kept after iteration i: exactly ``round(units · d^(i/iterations))`` units, ``d`` the final
  kept fraction ``round((1 − sparsity) · units) / units`` (:func:`synflow_schedule`; the last
  iteration keeps exactly ``round((1 − sparsity) · units)``), where their code thresholds with
  ``<=`` at ``kthvalue`` (ties may remove more); ties keep the earlier unit;
- which weights: those of the layers the call masks (the first conv and the classifier stay
  dense, ``layers``/``exclude`` apply); their code masks every Conv2d and Linear weight;
- the call's ``seed`` is unused: SynFlow makes no random choice.

``granularity="kernel"`` sums the scores of each (out, in) conv slice and keeps or removes whole
slices at every iteration; ``like`` gives each layer its own exponential schedule towards the
copied method's kept count for that layer (see :mod:`topoprune.pruning.saliency`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from topoprune.errors import TopopruneError
from topoprune.pruning.baselines import kept_units, match_like
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
    units,
)


@dataclass(frozen=True)
class SynflowOptions(ScoreOptions):
    """SynFlow's iterations."""

    iterations: int = option(100, "score-and-mask rounds, exponential schedule (the paper: 100)")


def synflow_schedule(total: int, kept: int, iterations: int) -> list[int]:
    """Units kept after each of ``iterations`` rounds, ``total`` units down to ``kept``:
    ``round(total · (kept / total)^(i / iterations))``, the last exactly ``kept``.

    >>> synflow_schedule(1000, 10, 2)
    [100, 10]
    """
    if total == 0:
        return [0] * iterations
    density = kept / total
    steps = [round(total * density ** (i / iterations)) for i in range(1, iterations)]
    return [*steps, kept]


class LinearisedNetwork:
    """A float64 copy of a model with every state entry made non-negative, in eval mode, whose
    masked layers' weights can be masked and scored with SynFlow's ``|∂R/∂w ⊙ w|``."""

    def __init__(
        self, model: nn.Module, layers: Sequence[PrunableLayer], input_size: Sequence[int]
    ) -> None:
        self.net = scoring_copy(model, train=False).double()
        with torch.no_grad():
            for value in self.net.state_dict().values():
                if value.is_floating_point():
                    value.abs_()
        modules = dict(self.net.named_modules())
        self.weights = {layer.name: modules[layer.name].weight for layer in layers}
        self.original = {name: w.detach().clone() for name, w in self.weights.items()}
        for weight in self.weights.values():
            weight.requires_grad_(True)
        device = device_of(self.net)
        self.input = torch.ones(1, *input_size, dtype=torch.float64, device=device)

    def scores(self, masks: Mapping[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """``|∂R/∂w ⊙ w|`` (float64) for every layer, with ``masks`` (True = kept) applied first
        (None: every weight kept)."""
        with torch.no_grad():
            for name, weight in self.weights.items():
                weight.copy_(self.original[name])
                if masks is not None and name in masks:
                    weight.mul_(masks[name].to(weight.device, weight.dtype))
        names = list(self.weights)
        output = self.net(self.input)
        flow = output.sum()
        grads = torch.autograd.grad(flow, [self.weights[n] for n in names], allow_unused=True)
        return {
            name: (torch.zeros_like(self.weights[name]) if grad is None else grad)
            .mul(self.weights[name])
            .abs()
            .detach()
            for name, grad in zip(names, grads, strict=True)
        }


def synflow_scores(
    model: nn.Module,
    layers: Sequence[PrunableLayer],
    input_size: Sequence[int],
    masks: Mapping[str, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """One SynFlow scoring pass: ``|∂R/∂w ⊙ w|`` in float64 on the linearised ``model`` with
    ``masks`` applied (None: unmasked).

    >>> from topoprune.models import create_model
    >>> from topoprune.pruning import prunable_layers
    >>> model = create_model("lenet5", in_channels=1)
    >>> scores = synflow_scores(model, prunable_layers(model), (1, 28, 28))
    >>> scores["conv2"].dtype, bool((scores["fc1"] > 0).all())
    (torch.float64, True)
    """
    return LinearisedNetwork(model, layers, input_size).scores(masks)


def synflow_masks(
    model: nn.Module,
    layers: Sequence[PrunableLayer],
    input_size: Sequence[int],
    kept: int | Mapping[str, int],
    iterations: int = 100,
    granularity: str = "weight",
) -> tuple[dict[str, torch.Tensor], list[int]]:
    """SynFlow's iterative pruning: (masks, units kept over all layers after each iteration).

    kept: the units kept at the end over all ``layers`` together (one global threshold at every
        iteration, the kept count following :func:`synflow_schedule`), or layer name -> units
        kept in that layer (each layer its own schedule, the scores choosing within it).
    """
    network = LinearisedNetwork(model, layers, input_size)
    sizes = {layer.name: units(layer.module.weight.shape, granularity) for layer in layers}
    if isinstance(kept, int):
        plan: list[Any] = synflow_schedule(sum(sizes.values()), kept, iterations)
    else:
        per_layer = {name: synflow_schedule(sizes[name], kept[name], iterations) for name in sizes}
        plan = [{name: steps[i] for name, steps in per_layer.items()} for i in range(iterations)]
    masks: dict[str, torch.Tensor] | None = None
    history = []
    for target in plan:
        # the units removed so far rank below every kept one and stay removed
        masks = select(network.scores(masks), target, granularity, within=masks)
        history.append(sum(kept_units(mask, granularity) for mask in masks.values()))
    assert masks is not None
    return masks, history


def _input_size(context: PruneContext) -> tuple[int, ...]:
    if context.input_size is not None:
        return tuple(context.input_size)
    data = context.data
    if data is not None and hasattr(data, "in_channels") and hasattr(data, "image_size"):
        return (int(data.in_channels), *map(int, data.image_size))
    raise TopopruneError("synflow needs the input size: pass input_size=(C, H, W)")


def _check(sparsity: float, options: SynflowOptions) -> None:
    positive(options.iterations, "iterations", "synflow")
    check_like("synflow")(sparsity, options)


@register_method(
    "synflow", protocol="at-init", options=SynflowOptions, match=match_like, check=_check
)
def synflow(
    model: nn.Module, sparsity: float, options: SynflowOptions, context: PruneContext
) -> Pruning:
    """SynFlow (Tanaka et al., NeurIPS 2020): data-free and iterative, keep the largest flow."""
    input_size = _input_size(context)
    layers, kept = layers_and_kept(model, sparsity, options, context)
    masks, history = synflow_masks(
        model, layers, input_size, kept, options.iterations, options.granularity
    )
    return Pruning(masks=masks, metrics={"iterations": options.iterations, "kept_units": history})
