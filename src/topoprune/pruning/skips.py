"""Masked skip projections between Linear layers, for graphs whose links skip a layer.

A skip projection takes the input of a ``source`` Linear layer and adds a (masked) linear map of
it to the output of a later ``target`` Linear layer, before that layer's activation:
``target(x) + skip(input of source)``. It is a module of the model
(``model.skip_projections``), so its weight is trained, saved, counted and masked like any
other; forward hooks on the two layers feed it.

>>> from topoprune.models import create_model
>>> model = create_model("lenet5", in_channels=1)
>>> attach_skips(model, [{"source": "fc1", "target": "fc3", "in": 400, "out": 10}], seed=0)
>>> model(torch.ones(1, 1, 28, 28)).shape, model.skip_projections[0].linear.weight.shape
(torch.Size([1, 10]), torch.Size([10, 400]))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from topoprune.errors import TopopruneError

SKIPS_NAME = "skip_projections"


class SkipProjection(nn.Module):
    """``linear``: (out, in) weight from the input of ``source`` to the output of ``target``."""

    def __init__(self, source: str, target: str, in_features: int, out_features: int) -> None:
        super().__init__()
        self.source, self.target = source, target
        self.linear = nn.Linear(in_features, out_features, bias=False)
        self._input: torch.Tensor | None = None

    def remember(self, module: nn.Module, args: tuple) -> None:
        """Pre-hook on ``source``: keep its input (B, in) for this forward pass."""
        self._input = args[0]

    def add(self, module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
        """Hook on ``target``: its output (B, out) plus the projection of the kept input, which
        is then let go (no activations or autograd graph stay on the module)."""
        kept, self._input = self._input, None
        return output + self.linear(kept)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


def attach_skips(model: nn.Module, specs: Sequence[dict[str, Any]], *, seed: int) -> None:
    """Add one :class:`SkipProjection` per spec (``source``, ``target``, ``in``, ``out``) to
    ``model`` in place, weights initialised like a Linear layer from ``seed``."""
    if hasattr(model, SKIPS_NAME):
        raise TopopruneError("the model already has skip projections: prune a fresh model")
    modules = dict(model.named_modules())
    for spec in specs:  # every spec is checked before the model changes
        source, target = modules.get(spec["source"]), modules.get(spec["target"])
        if not isinstance(source, nn.Linear) or not isinstance(target, nn.Linear):
            raise TopopruneError(
                f"a skip projection links two Linear layers; {spec['source']!r} -> "
                f"{spec['target']!r} is not that: replay it on the same architecture"
            )
    generator = torch.Generator().manual_seed(seed)
    skips = nn.ModuleList()
    for spec in specs:
        source, target = modules[spec["source"]], modules[spec["target"]]
        skip = SkipProjection(spec["source"], spec["target"], spec["in"], spec["out"])
        bound = spec["in"] ** -0.5
        with torch.no_grad():
            skip.linear.weight.uniform_(-bound, bound, generator=generator)
        source.register_forward_pre_hook(skip.remember)
        target.register_forward_hook(skip.add)
        skips.append(skip)
    model.add_module(SKIPS_NAME, skips)
