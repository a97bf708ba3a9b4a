"""What every pruning method returns, and how masks are put on a model.

Masks follow ``torch.nn.utils.prune``: after :func:`apply_masks` a masked module has a
``weight_orig`` parameter and a ``weight_mask`` buffer, and ``weight`` is their product, so
``prune.remove``, state dicts and other tools keep working.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from topoprune.errors import TopopruneError
from topoprune.files import atomic_write

RESULT_FORMAT = 1


def architecture(model: nn.Module) -> dict[str, Any]:
    """A fingerprint of the conv and Linear layers of ``model``: their count and a digest of
    their names and weight shapes, so that a result is applied only to the architecture it was
    made for.

    >>> from topoprune.models import create_model
    >>> architecture(create_model("resnet20"))["layers"]
    20
    """
    import hashlib

    shapes = [
        f"{name}:{tuple(module.weight.shape)}"
        for name, module in model.named_modules()
        if isinstance(module, (nn.Conv2d, nn.Linear)) and not name.startswith("skip_projections")
    ]
    digest = hashlib.sha256(";".join(shapes).encode()).hexdigest()[:16]
    return {"layers": len(shapes), "digest": digest}


def apply_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> nn.Module:
    """Put each ``masks[name]`` (same shape as that module's weight) on ``model`` in place.

    Names and shapes are checked before anything changes, so a mismatch leaves the model as it was.
    """
    modules = dict(model.named_modules())
    for name, mask in masks.items():
        module = modules.get(name)
        if module is None or not hasattr(module, "weight"):
            raise TopopruneError(f"the model has no layer {name!r} with a weight to mask")
        if tuple(module.weight.shape) != tuple(mask.shape):
            raise TopopruneError(
                f"mask for {name!r} has shape {tuple(mask.shape)} but the layer's weight is "
                f"{tuple(module.weight.shape)}: prune a model of the same architecture"
            )
    for name, mask in masks.items():
        module = modules[name]
        torch_prune.custom_from_mask(module, "weight", mask.to(module.weight.device, torch.float32))
    return model


@dataclass
class PruneResult:
    """The outcome of :func:`topoprune.prune`.

    masks: layer name -> bool tensor shaped like that layer's weight (True = kept).
    graph: the (n, n) adjacency mapped onto the layers, for graph methods; None otherwise.
    record: JSON-serialisable description of every choice (method, sparsity, options, seed) —
        ``prune(fresh_model, **result.record["call"])`` replays it.
    metrics: graph metrics (ASPL, diameter, Moore bound and gap) and counts (nominal and true
        params/MACs reduction), JSON-serialisable.
    layers: one JSON row per masked layer (name, shape, nodes, degree, kept fraction).
    widths: for ``search`` methods, the width list of the narrower model to build and train.
    skips: skip projections the method added between Linear layers (re-added by
        :meth:`apply_to` before the masks).
    """

    method: str
    masks: dict[str, torch.Tensor]
    record: dict[str, Any]
    graph: np.ndarray | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    layers: list[dict[str, Any]] = field(default_factory=list)
    widths: list[int] | None = None
    skips: list[dict[str, Any]] | None = None

    @property
    def protocol(self) -> str:
        """``at-init``, ``after-training`` or ``search`` (see :mod:`topoprune.pruning.registry`)."""
        return self.record.get("protocol", "at-init")

    def apply_to(self, model: nn.Module) -> nn.Module:
        """Mask a fresh model of the same architecture in place and return it."""
        made_for, given = self.record.get("architecture"), architecture(model)
        if made_for is not None and made_for != given:
            differs = (
                f"{made_for['layers']} conv and Linear layers, this model has {given['layers']}"
                if made_for["layers"] != given["layers"]
                else "the same number of layers but other shapes"
            )
            raise TopopruneError(
                f"this pruning was made for another architecture ({differs}): "
                "prune this model instead"
            )
        if self.skips:
            from topoprune.pruning.skips import attach_skips

            attach_skips(model, self.skips, seed=self.record["call"].get("seed", 0))
        return apply_masks(model, self.masks)

    def to_dict(self) -> dict[str, Any]:
        """Everything but the masks and the adjacency, for JSON reports."""
        return {
            "method": self.method,
            "record": self.record,
            "metrics": self.metrics,
            "layers": self.layers,
            "widths": self.widths,
            "skips": self.skips,
        }

    def save(self, path: str | Path) -> Path:
        """Write the result (masks packed as bool, graph, record) atomically to ``path``."""
        state = {
            "format": RESULT_FORMAT,
            **self.to_dict(),
            "masks": {name: mask.bool().cpu() for name, mask in self.masks.items()},
            "graph": None if self.graph is None else torch.from_numpy(self.graph.astype(np.uint8)),
        }
        return atomic_write(path, lambda handle: torch.save(state, handle))

    @classmethod
    def load(cls, path: str | Path) -> PruneResult:
        """Read a result written by :meth:`save`."""
        path = Path(path)
        if not path.is_file():
            raise TopopruneError(f"no pruning result at {path}: pass a file written by save()")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # a corrupt or foreign file: say so in one line
            raise TopopruneError(f"{path} is not a topoprune pruning result ({err})") from None
        if not isinstance(state, dict) or state.get("format") != RESULT_FORMAT:
            raise TopopruneError(f"{path} is not a topoprune pruning result (format mismatch)")
        graph = state["graph"]
        return cls(
            method=state["method"],
            masks=state["masks"],
            record=state["record"],
            graph=None if graph is None else graph.numpy(),
            metrics=state["metrics"],
            layers=state["layers"],
            widths=state.get("widths"),
            skips=state.get("skips"),
        )
