"""``prune(model, method, sparsity, **options)``: one entry point for every registered method."""

from __future__ import annotations

import copy
from typing import Any

from torch import nn

from topoprune.errors import TopopruneError
from topoprune.pruning.base import PruneResult, apply_masks, architecture
from topoprune.pruning.layers import prunable_layers
from topoprune.pruning.registry import PruneContext, check_options, get_method


def check_sparsity(sparsity: float) -> float:
    """``sparsity`` as a float in [0, 1), or one clear error."""
    if (
        isinstance(sparsity, bool)
        or not isinstance(sparsity, (int, float))
        or not 0.0 <= sparsity < 1.0
    ):
        raise TopopruneError(f"sparsity must be a fraction in [0, 1), got {sparsity!r}")
    return float(sparsity)


def prune(
    model: nn.Module,
    method: str,
    sparsity: float = 0.9,
    *,
    input_size: tuple[int, int, int] | None = None,
    data: Any = None,
    **options: Any,
) -> PruneResult:
    """Prune ``model`` in place with the registered ``method`` and return what was done.

    sparsity: the fraction of weights removed from the layers the method masks (the result's
        metrics add the true params and MACs removed from the whole model); ``smallworld``
        masks every layer and reads it as the true fraction of params, ``l1`` as the budget of
        a mask method at that sparsity (each method's docstring says).
    options: the method's options (``topoprune prune --list-methods`` lists them), checked
        against its dataclass; every method takes ``seed``, ``layers`` and ``exclude``.
    input_size: (C, H, W); when given, true params and MACs are counted before and after.
    data: dataset splits, for methods that need data (search methods).

    A ``search`` method leaves ``model`` as it is and returns the ``widths`` to build.

    >>> from topoprune.models import create_model
    >>> model = create_model("resnet20")
    >>> result = prune(model, "rgp", sparsity=0.75, nodes=16, steps=200)
    >>> result.metrics["graph"]["k"], round(result.metrics["nominal_reduction"], 4)
    (4, 0.75)
    """
    spec = get_method(method)
    sparsity = check_sparsity(sparsity)
    checked = check_options(spec, options, sparsity)
    include, exclude = checked.common.layers, checked.common.exclude
    layers = prunable_layers(model, include=include, exclude=exclude)
    context = PruneContext(layers, checked.common.seed, input_size, data, include, exclude)
    dense = copy.deepcopy(model) if input_size is not None else None
    dense_total = sum(p.numel() for p in model.parameters())
    made_for = architecture(model)
    outcome = spec.function(model, sparsity, checked.method, context)
    if outcome.skips:
        from topoprune.pruning.skips import attach_skips

        attach_skips(model, outcome.skips, seed=checked.common.seed)
    apply_masks(model, outcome.masks)
    metrics = {"nominal_reduction": sparsity, **outcome.metrics}
    counted = model
    if outcome.widths is not None:
        from topoprune.models import create_model

        counted = create_model(**{**model.config, "widths": outcome.widths})
    metrics.update(_true_reduction(counted, dense, input_size, dense_total))
    rows = outcome.layers or [
        {"name": name, "shape": list(mask.shape), "kept": mask.float().mean().item()}
        for name, mask in outcome.masks.items()
    ]
    record = {
        "call": call_record(method, sparsity, options),
        "protocol": spec.protocol,
        "graph_given": _array_given(options),
        "architecture": made_for,
    }
    return PruneResult(
        method,
        outcome.masks,
        record,
        outcome.graph,
        metrics,
        rows,
        widths=outcome.widths,
        skips=outcome.skips,
    )


def _array_given(options: dict[str, Any]) -> bool:
    return not isinstance(options.get("graph"), (str, type(None)))


def call_record(method: str, sparsity: float, options: dict[str, Any]) -> dict[str, Any]:
    """The JSON record of a call: method, sparsity and every option with defaults filled in.

    ``prune(fresh_model, **call_record(...))`` replays the call (a graph given as an array is
    left out: the result keeps it). Checks the options like :func:`prune` does.

    >>> call_record("lattice", 0.75, {"nodes": 16})["self_loops"]
    False
    """
    spec = get_method(method)
    sparsity = check_sparsity(sparsity)
    call = {"method": method, "sparsity": sparsity}
    call.update(check_options(spec, options, sparsity).to_dict())
    if _array_given(options):
        del call["graph"]
    return call


def _true_reduction(
    model: nn.Module,
    dense: nn.Module | None,
    input_size: tuple[int, int, int] | None,
    dense_total: int,
) -> dict[str, Any]:
    """Fraction of all params (and MACs, given an input size) removed, dense layers included;
    ``dense_total`` is the params of the model before pruning (skip projections excluded)."""
    if dense is None:
        kept = sum(
            int(m.weight_mask.sum())
            if name == "weight_orig" and hasattr(m, "weight_mask")
            else p.numel()
            for m in model.modules()
            for name, p in m.named_parameters(recurse=False)
        )
        return {
            "params": kept,
            "dense_params": dense_total,
            "params_reduction": 1.0 - kept / dense_total,
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
