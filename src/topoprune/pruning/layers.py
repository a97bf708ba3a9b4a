"""Which layers a pruning method may mask, and how many channels (units) each has.

Prunable: every ``Conv2d`` except the model's first conv — 3×3, 1×1 and projection-shortcut convs
alike — and every ``Linear`` except the final classifier (the hidden layers of an MLP head).
Left dense: the first conv, the classifier, BatchNorm, and grouped/depthwise convs (a channel-block
mask does not apply when each output sees only its own group's inputs).

Models from :mod:`topoprune.models` name their first conv and classifier (``first_conv_name``,
``classifier_name``); for other models the first ``Conv2d`` and the last ``Linear`` found in
``named_modules()`` order are taken.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

from topoprune.errors import TopopruneError


@dataclass(frozen=True)
class PrunableLayer:
    """A layer that may be masked: ``weight`` is (out_units, in_units[, kh, kw])."""

    name: str
    module: nn.Module

    @property
    def out_units(self) -> int:
        return self.module.weight.shape[0]

    @property
    def in_units(self) -> int:
        return self.module.weight.shape[1]


def _first_conv_and_classifier(model: nn.Module) -> tuple[str | None, str | None]:
    first = getattr(model, "first_conv_name", None)
    last = getattr(model, "classifier_name", None)
    named = list(model.named_modules())
    if first is None:
        first = next((n for n, m in named if isinstance(m, nn.Conv2d)), None)
    if last is None:
        last = next((n for n, m in reversed(named) if isinstance(m, nn.Linear)), None)
    return first, last


def _matches(name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def prunable_layers(
    model: nn.Module,
    *,
    include: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    ends: bool = False,
) -> list[PrunableLayer]:
    """The layers to mask, in ``named_modules()`` order.

    ``include``/``exclude`` are shell-style name patterns (``"layer1.*"``, ``"*.shortcut.*"``):
    when ``include`` is given only matching layers are kept, then ``exclude`` removes layers.
    ``ends=True`` adds the first conv and the classifier (for methods whose graph spans input to
    output).

    >>> from topoprune.models import create_model
    >>> [layer.name for layer in prunable_layers(create_model("lenet5", in_channels=1))]
    ['conv2', 'fc1', 'fc2']
    """
    first, last = _first_conv_and_classifier(model)
    layers = []
    for name, module in model.named_modules():
        if name in (first, last) and not ends:
            continue
        is_conv = isinstance(module, nn.Conv2d) and module.groups == 1
        if not (is_conv or isinstance(module, nn.Linear)):
            continue
        if include is not None and not _matches(name, include):
            continue
        if _matches(name, exclude):
            continue
        layers.append(PrunableLayer(name, module))
    if not layers:
        raise TopopruneError(
            "no prunable layer left: the model needs a conv other than the first or a hidden "
            "Linear layer, and --layers/--exclude patterns must leave at least one"
        )
    return layers
