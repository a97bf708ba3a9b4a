"""L1 filter pruning with physical channel removal, the structured baseline of the benchmark.

Channels are ranked by the L1 norm of their weights, summed over every layer a channel is coupled
to (the conv's filter, its BatchNorm, the next layer's input slice: torch-pruning's dependency
graph finds the couplings and ``MagnitudeImportance(p=1)`` scores them), and the lowest are
removed for real: the layers become narrower, so params and MACs are those of an ordinary
smaller model and its speed needs no special kernel.

The same fraction of channels is removed from every prunable group (uniform, not global). The
fraction is found by bisection as the smallest one whose narrower model has at most a budget of
MACs (or params); :func:`matched_budget` gives the budget of a mask method at the same sparsity
(every prunable layer keeps ``1 − sparsity`` of its weights, first conv and classifier dense),
so that L1 and the graph methods are compared at the same cost.

Kept at full width: the classifier's outputs and, in networks with parameter-free (option-A)
shortcuts — which slice and zero-pad the residual stream, an operation the dependency graph
cannot follow — the residual stream itself (the stem conv and the last conv of every block), so
that only the inner widths of the blocks shrink, as Li et al. (ICLR 2017) did for ResNet-56.

Registered as the ``after-training`` method ``l1``: L1 norms mean something only on trained
weights, and the model's architecture changes. The protocol runner trains the dense model for
part of the budget, calls it, and fine-tunes for the rest (see
:mod:`topoprune.experiments.protocols`). Its option ``removed`` asks for a true fraction of the
``target`` count removed instead of a mask method's budget (the bench's ``match``).

>>> from topoprune.models import create_model
>>> model = create_model("lenet5", in_channels=1, seed=0)
>>> result = l1_prune(model, 0.75, (1, 28, 28))
>>> model.conv2.out_channels < 16, result.macs <= result.budget
(True, True)
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from topoprune.errors import TopopruneError
from topoprune.measure import count
from topoprune.models.resnet_parts import ZeroPadShortcut
from topoprune.pruning.base import apply_masks
from topoprune.pruning.baselines import random_masks
from topoprune.pruning.layers import prunable_layers
from topoprune.pruning.registry import PruneContext, Pruning, option, register_method

TARGETS = ("macs", "params")
MAX_RATIO = 0.95
"""The largest fraction of channels ever removed from a group."""


@dataclass
class ChannelPruning:
    """What :func:`l1_prune` did: the fraction removed, the counts, the widths before and after.

    ``widths``: layer name -> [output channels before, after] for every layer that shrank.
    ``reached``: False when even ``MAX_RATIO`` left the model above ``budget``.
    """

    ratio: float
    target: str
    budget: int
    params: int
    macs: int
    dense_params: int
    dense_macs: int
    reached: bool
    widths: dict[str, list[int]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_target(target: str) -> str:
    if target not in TARGETS:
        raise TopopruneError(f"unknown l1 target {target!r}: use one of {', '.join(TARGETS)}")
    return target


def matched_budget(
    model: nn.Module, sparsity: float, input_size: Sequence[int], target: str = "macs"
) -> int:
    """MACs (or params) of ``model`` when every prunable layer keeps ``1 − sparsity`` of weights.

    That is what the mask methods (rgp, lattice, random, ...) keep at ``sparsity``, the first
    conv and the classifier staying dense (``topoprune.pruning.layers``). ``model`` is unchanged.

    >>> from topoprune.models import create_model
    >>> model = create_model("lenet5", in_channels=1)
    >>> matched_budget(model, 0.0, (1, 28, 28), "params") == count(model, (1, 28, 28)).params
    True
    """
    check_target(target)
    reference = copy.deepcopy(model)
    layers = prunable_layers(reference)
    kept = {layer.name: round((1.0 - sparsity) * layer.module.weight.numel()) for layer in layers}
    apply_masks(reference, random_masks(layers, kept, seed=0))
    return getattr(count(reference, input_size), target)


def kept_full_width(model: nn.Module) -> list[nn.Module]:
    """The layers whose output channels stay: the classifier, and option-A residual streams."""
    named = dict(model.named_modules())
    classifier = getattr(model, "classifier_name", None)
    if classifier is None:
        classifier = next(n for n, m in reversed(named.items()) if isinstance(m, nn.Linear))
    kept = [named[classifier]]
    if any(isinstance(m, ZeroPadShortcut) for m in model.modules()):
        first = getattr(model, "first_conv_name", None)
        kept += [m for n, m in named.items() if n == first]
        for block in model.modules():
            if hasattr(block, "shortcut"):
                convs = [c for c in block.children() if isinstance(c, nn.Conv2d)]
                kept += convs[-1:]
    return kept


def _remove_channels(model: nn.Module, ratio: float, example: torch.Tensor) -> None:
    """Remove ``ratio`` of every prunable group's channels, lowest group L1 norm first."""
    import torch_pruning as tp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch-pruning warns about layers it leaves alone
        pruner = tp.pruner.MagnitudePruner(
            model,
            example,
            importance=tp.importance.MagnitudeImportance(p=1),
            pruning_ratio=ratio,
            ignored_layers=kept_full_width(model),
        )
        pruner.step()


def _out_widths(model: nn.Module) -> dict[str, int]:
    """Output channels (features) of every conv and linear layer, by name."""
    return {
        name: module.weight.shape[0]
        for name, module in model.named_modules()
        if isinstance(module, (nn.Conv2d, nn.Linear))
    }


def _ratio_range(model: nn.Module) -> tuple[float, int]:
    """(largest ratio that leaves every group a channel, bisection steps to resolve one channel).

    torch-pruning keeps ``int(C · (1 − ratio))`` of a group's C channels and skips a group that
    would lose them all, so the ratio stays below ``1 − 1/C`` of the narrowest prunable layer.
    """
    kept = {id(m) for m in kept_full_width(model)}
    widths = [
        module.weight.shape[0]
        for module in model.modules()
        if isinstance(module, (nn.Conv2d, nn.Linear)) and id(module) not in kept
    ]
    if not widths:
        raise TopopruneError("l1 pruning found no layer whose channels it may remove")
    highest = min(MAX_RATIO, 1.0 - 1.5 / min(widths))
    return max(highest, 0.0), max(1, math.ceil(math.log2(max(widths) * highest + 1)) + 1)


def l1_prune(
    model: nn.Module,
    sparsity: float,
    input_size: Sequence[int],
    *,
    target: str = "macs",
    budget: int | None = None,
) -> ChannelPruning:
    """Remove ``model``'s lowest-L1 channels in place until its ``target`` count fits the budget.

    budget: the most MACs (``target="macs"``) or params the narrower model may have; by default
        :func:`matched_budget` at ``sparsity``. input_size: (C, H, W) of one input.
    The model must not carry masks. The channel widths depend only on the architecture and the
    ratio, so the same call on the same architecture always gives the same widths.
    """
    check_target(target)
    if not 0.0 <= sparsity < 1.0:
        raise TopopruneError(f"sparsity must be a fraction in [0, 1), got {sparsity!r}")
    if any(hasattr(m, "weight_mask") for m in model.modules()):
        raise TopopruneError("l1_prune needs an unmasked model: call prune.remove() first")
    if budget is None:
        budget = matched_budget(model, sparsity, input_size, target)
    dense = count(model, input_size)
    example = torch.randn(1, *input_size, generator=torch.Generator().manual_seed(0))

    def fits(ratio: float) -> bool:
        trial = copy.deepcopy(model)
        _remove_channels(trial, ratio, example)
        return getattr(count(trial, input_size), target) <= budget

    highest, steps = _ratio_range(model)
    low, high = 0.0, highest
    if getattr(dense, target) <= budget:
        high = 0.0
    elif fits(highest):
        for _ in range(steps):  # invariant: the model is over budget at low, within it at high
            middle = (low + high) / 2
            low, high = (low, middle) if fits(middle) else (middle, high)
    before = _out_widths(model)
    if high > 0:
        _remove_channels(model, high, example)
    after = count(model, input_size)
    return ChannelPruning(
        ratio=high,
        target=target,
        budget=int(budget),
        params=after.params,
        macs=after.macs,
        dense_params=dense.params,
        dense_macs=dense.macs,
        reached=getattr(after, target) <= budget,
        widths={
            name: [before[name], width]
            for name, width in _out_widths(model).items()
            if width != before[name]
        },
    )


@dataclass(frozen=True)
class L1Options:
    """What the narrower model is matched on."""

    target: str = option("macs", "count the budget is set on: macs or params", choices=TARGETS)
    removed: float | None = option(
        None, "remove this true fraction of the target count (default: a mask method's budget)"
    )


def _match_l1(
    model: nn.Module, kind: str, target: float, checked: Any, **where: Any
) -> tuple[float, dict[str, Any]]:
    """``match: params|macs`` sets l1's own budget: that fraction of that count removed."""
    return target, {"target": kind, "removed": target}


@register_method("l1", protocol="after-training", options=L1Options, match=_match_l1)
def l1(model: nn.Module, sparsity: float, options: L1Options, context: PruneContext) -> Pruning:
    """Remove the lowest-L1 channels physically, down to a MACs or params budget."""
    if context.include is not None or context.exclude:
        raise TopopruneError(
            "l1 removes channels from every coupled group: layers and exclude do not apply"
        )
    input_size = context.require_input_size("l1")
    budget = None
    if options.removed is not None:
        if not 0.0 <= options.removed < 1.0:
            raise TopopruneError(f"l1 removed must lie in [0, 1), got {options.removed!r}")
        dense = getattr(count(model, input_size), options.target)
        budget = math.floor((1.0 - options.removed) * dense)
    channels = l1_prune(model, sparsity, input_size, target=options.target, budget=budget)
    return Pruning(metrics={"channels": channels.to_dict(), "nominal_reduction": None})
