"""Reading pruning masks in the torch.nn.utils.prune convention.

A pruned parameter ``name`` of a module is stored as a parameter ``name_orig`` and a buffer
``name_mask`` of the same shape; ``module.name`` is recomputed as ``name_orig * name_mask`` before
every forward. Counting reads only the mask, never the weight values: a weight that happens to be
zero but is not masked still counts, and after ``prune.remove`` (no mask left) a layer counts as
dense.

Example
-------
>>> import torch
>>> from torch.nn.utils import prune
>>> layer = torch.nn.Linear(4, 2)
>>> _ = prune.custom_from_mask(layer, "weight", torch.tensor([[1, 0, 0, 1], [0, 0, 0, 1]]))
>>> kept_numel(layer, "weight"), layer.weight.numel()
(3, 8)
"""

from __future__ import annotations

import torch
from torch import nn

ORIG_SUFFIX = "_orig"
MASK_SUFFIX = "_mask"


def mask_of(module: nn.Module, name: str) -> torch.Tensor | None:
    """The mask of parameter ``name`` of ``module`` (same shape as the parameter), or None.

    A mask counts only when both ``name_orig`` (parameter) and ``name_mask`` (buffer) exist.
    """
    mask = module._buffers.get(name + MASK_SUFFIX)
    if mask is None or module._parameters.get(name + ORIG_SUFFIX) is None:
        return None
    return mask


def kept_numel(module: nn.Module, name: str) -> int:
    """Number of entries of ``module.<name>`` that survive its mask (all of them when unmasked)."""
    mask = mask_of(module, name)
    if mask is None:
        return getattr(module, name).numel()
    return int(torch.count_nonzero(mask))


def kept_parameter_numel(module: nn.Module, param_name: str) -> int:
    """Kept entries of a parameter as registered on ``module`` (e.g. ``weight_orig`` or ``bias``).

    ``weight_orig`` counts its entries kept by ``weight_mask``; any other parameter counts whole.
    """
    if param_name.endswith(ORIG_SUFFIX):
        mask = mask_of(module, param_name[: -len(ORIG_SUFFIX)])
        if mask is not None:
            return int(torch.count_nonzero(mask))
    return module._parameters[param_name].numel()


def is_masked(module: nn.Module) -> bool:
    """True when any parameter of ``module`` itself (not its children) carries a pruning mask."""
    return any(
        name.endswith(ORIG_SUFFIX) and mask_of(module, name[: -len(ORIG_SUFFIX)]) is not None
        for name, param in module._parameters.items()
        if param is not None
    )
