"""The mask-aware parameter and MAC counter.

Params: every parameter of the model counted once (a parameter shared by several modules belongs
to the first that owns it, in ``model.named_modules()`` order); a masked ``weight_orig`` counts
its entries kept by ``weight_mask``; buffers (the masks included) are not parameters.
MACs: one batch-1 forward with a hook on every module that has a rule in
:mod:`topoprune.measure.rules` (see there for the conventions); a module called twice counts twice.
A module may count itself with ``param_counts() -> (params, dense_params)`` and
``mac_counts(x, y) -> (macs, dense_macs)``: realize's ``CompactConv2d`` does, so a realized model
counts the same as the masked model it came from.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from topoprune.measure.counts import Counts, LayerCount
from topoprune.measure.masks import is_masked, kept_parameter_numel
from topoprune.measure.rules import MacRule, mac_rule
from topoprune.measure.running import evaluating, example_input, forward, parse_input_size


def _record_macs(totals: dict[nn.Module, list[int]], rule: MacRule) -> Callable[..., None]:
    """A forward hook adding ``rule``'s ``[macs, dense_macs]`` for each call to ``totals``."""

    def hook(module: nn.Module, args: tuple, output) -> None:
        y = output[0] if isinstance(output, tuple) else output
        macs, dense_macs = rule(module, args[0], y)
        running = totals.setdefault(module, [0, 0])
        running[0] += macs
        running[1] += dense_macs

    return hook


def _forward_macs(model: nn.Module, x: torch.Tensor) -> dict[nn.Module, list[int]]:
    """``{module: [macs, dense_macs]}`` for the modules with a rule that ran on ``x``."""
    totals: dict[nn.Module, list[int]] = {}
    handles = [
        module.register_forward_hook(_record_macs(totals, rule))
        for module in model.modules()
        if (rule := mac_rule(module)) is not None
    ]
    try:
        with evaluating(model), torch.no_grad():
            forward(model, x)
    finally:
        for handle in handles:
            handle.remove()
    return totals


def count(
    model: nn.Module, input_size: Sequence[int], *, device: str | torch.device = "cpu"
) -> Counts:
    """Count parameters and MACs of ``model`` for one input of shape ``(1, *input_size)``.

    Mask-aware (torch.nn.utils.prune convention) and group-aware; ``dense_*`` ignore the masks.
    The model must already be on ``device``; its train/eval modes are left as they were.

    Example
    -------
    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, bias=False), torch.nn.Flatten(),
    ...                             torch.nn.Linear(8 * 30 * 30, 10))
    >>> counts = count(model, (3, 32, 32))
    >>> counts.params, counts.macs  # 216 + 72010; 900·216 + 72000
    (72226, 266400)
    """
    sizes = parse_input_size(input_size)
    macs_by_module = _forward_macs(model, example_input(model, sizes, 1, device))
    layers: list[LayerCount] = []
    uncounted: list[str] = []
    seen: set[int] = set()
    for name, module in model.named_modules():
        own = [
            (param_name, param)
            for param_name, param in module._parameters.items()
            if param is not None and id(param) not in seen
        ]
        seen.update(id(param) for _, param in own)
        if not own and module not in macs_by_module:
            continue
        if own and mac_rule(module) is None:
            uncounted.append(name)
        macs, dense_macs = macs_by_module.get(module, (0, 0))
        counts_itself = bool(own) and callable(getattr(module, "param_counts", None))
        if counts_itself:
            params, dense_params = module.param_counts()
        else:
            params = sum(kept_parameter_numel(module, param_name) for param_name, _ in own)
            dense_params = sum(param.numel() for _, param in own)
        layers.append(
            LayerCount(
                name=name,
                type=type(module).__name__,
                params=params,
                macs=macs,
                dense_params=dense_params,
                dense_macs=dense_macs,
                masked=is_masked(module) or counts_itself,
            )
        )
    return Counts(
        params=sum(layer.params for layer in layers),
        macs=sum(layer.macs for layer in layers),
        dense_params=sum(layer.dense_params for layer in layers),
        dense_macs=sum(layer.dense_macs for layer in layers),
        input_size=sizes,
        layers=layers,
        uncounted=uncounted,
    )
