"""``prune(model, method, sparsity, **options)``: one entry point for every registered method."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from topoprune.compact.masked import copy_model
from topoprune.errors import TopopruneError
from topoprune.pruning.base import PruneResult, apply_masks, architecture
from topoprune.pruning.layers import prunable_layers
from topoprune.pruning.registry import PruneContext, Stages, check_options, get_method


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
    work_dir: str | Path | None = None,
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
    work_dir: a folder where a long-running method keeps resumable state (``graphpruning``:
        its PruningNet checkpoint and scored candidates), so that a repeated call continues.

    A ``search`` method leaves ``model`` as it is and returns the ``widths`` to build. A method
    that prunes in stages (``exp``) masks every stage at once here; see
    :func:`prune_progressively` to fine-tune between them.

    >>> from topoprune.models import create_model
    >>> model = create_model("resnet20")
    >>> result = prune(model, "rgp", sparsity=0.75, nodes=16, steps=200)
    >>> result.metrics["graph"]["k"], round(result.metrics["nominal_reduction"], 4)
    (4, 0.75)
    """
    call = _Call(model, method, sparsity, options, input_size, data, work_dir)
    return call.step(None)


@dataclass
class Stage:
    """One stage of :func:`prune_progressively`.

    index: 0-based; count: how many stages there are; layers: the names this stage masked;
    epochs: the fine-tuning epochs the method asks for after it; restart: whether they restart
    the learning-rate schedule; result: the pruning so far (every stage's masks, true counts
    against the model as it was before the first stage).
    """

    index: int
    count: int
    layers: tuple[str, ...]
    epochs: int | None
    restart: bool
    result: PruneResult


def prune_progressively(
    model: nn.Module,
    method: str,
    sparsity: float = 0.9,
    *,
    input_size: tuple[int, int, int] | None = None,
    data: Any = None,
    **options: Any,
) -> Iterator[Stage]:
    """Prune ``model`` in place one stage at a time, yielding after each so that the caller
    fine-tunes between stages (a method without stages gives one stage of every layer).

    Each stage reads the weights as they are when it starts, so the fine-tuning of the earlier
    stages decides the later ones; every choice is seeded per stage, so the same weights give
    the same masks whatever happened before.

    >>> from topoprune.models import create_model
    >>> model = create_model("lenet5", in_channels=1)
    >>> for stage in prune_progressively(model, "exp", rates=[0.0, 0.5]):
    ...     pass  # fine-tune model here, stage.epochs epochs
    >>> stage.count, stage.layers, sorted(stage.result.masks)
    (1, ('conv2',), ['conv2'])
    """
    call = _Call(model, method, sparsity, options, input_size, data)
    plan = call.stages()
    groups = plan.layers if plan is not None else [None]
    for index, group in enumerate(groups):
        result = call.step(group)
        yield Stage(
            index,
            len(groups),
            group if group is not None else tuple(result.masks),
            plan.epochs if plan is not None else None,
            plan.restart if plan is not None else False,
            result,
        )


def pruning_stages(
    model: nn.Module, method: str, sparsity: float = 0.9, **options: Any
) -> Stages | None:
    """The stages ``method`` would prune ``model`` in with these options; None: one stage."""
    spec = get_method(method)
    checked = check_options(spec, options, check_sparsity(sparsity))
    return None if spec.stages is None else spec.stages(model, sparsity, checked.method)


class _Call:
    """One call of a method on a model, in one or several stages whose results accumulate."""

    def __init__(
        self,
        model: nn.Module,
        method: str,
        sparsity: float,
        options: dict[str, Any],
        input_size: tuple[int, int, int] | None,
        data: Any,
        work_dir: str | Path | None = None,
    ) -> None:
        self.spec = get_method(method)
        self.sparsity = check_sparsity(sparsity)
        self.checked = check_options(self.spec, options, self.sparsity)
        self.model, self.options, self.input_size, self.data = model, options, input_size, data
        self.dense = copy_model(model) if input_size is not None else None
        self.dense_total = sum(p.numel() for p in model.parameters())
        self.made_for = architecture(model)
        self.masks: dict[str, torch.Tensor] = {}
        self.rows: list[dict[str, Any]] = []
        self.work_dir = None if work_dir is None else Path(work_dir)

    def stages(self) -> Stages | None:
        if self.spec.stages is None:
            return None
        return self.spec.stages(self.model, self.sparsity, self.checked.method)

    def step(self, stage: tuple[str, ...] | None) -> PruneResult:
        """Run the method on ``stage``'s layers (every layer: None) and return the result so far."""
        common = self.checked.common
        layers = prunable_layers(self.model, include=common.layers, exclude=common.exclude)
        context = PruneContext(
            layers,
            common.seed,
            self.input_size,
            self.data,
            common.layers,
            common.exclude,
            stage,
            self.work_dir,
        )
        outcome = self.spec.function(self.model, self.sparsity, self.checked.method, context)
        if outcome.skips:
            from topoprune.pruning.skips import attach_skips

            attach_skips(self.model, outcome.skips, seed=common.seed)
        apply_masks(self.model, outcome.masks)
        self.masks.update(outcome.masks)
        self.rows += outcome.layers or [
            {"name": name, "shape": list(mask.shape), "kept": mask.float().mean().item()}
            for name, mask in outcome.masks.items()
        ]
        metrics = {"nominal_reduction": self.sparsity, **outcome.metrics}
        if stage is not None:  # the removed share of every stage's layers so far
            masked = sum(mask.numel() for mask in self.masks.values())
            removed = sum(int((~mask.bool()).sum()) for mask in self.masks.values())
            metrics["nominal_reduction"] = removed / masked if masked else 0.0
        counted = self.model
        if outcome.widths is not None:
            from topoprune.models import create_model

            counted = create_model(**{**self.model.config, "widths": outcome.widths})
        metrics.update(_true_reduction(counted, self.dense, self.input_size, self.dense_total))
        record = {
            "call": call_record(self.spec.name, self.sparsity, self.options),
            "protocol": self.spec.protocol,
            "graph_given": _array_given(self.options),
            "architecture": self.made_for,
        }
        return PruneResult(
            self.spec.name,
            dict(self.masks),
            record,
            outcome.graph,
            metrics,
            list(self.rows),
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
