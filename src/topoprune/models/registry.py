"""One registry for the zoo: register a builder by name, create a model by name.

A builder is a function ``builder(num_classes, in_channels, widths, **options) -> nn.Module``
whose name is the model's name (unless registered with an explicit ``name``). The module it
returns carries

- ``widths``: the full width list it was built with (format documented per builder),
- ``first_conv_name`` and ``classifier_name``: names, as in ``named_modules()``, of the first
  convolution and of the final linear classifier (the layers pruning leaves dense),
- optionally ``image_size``: the (H, W) the architecture is fixed to, when it takes no other.

``create_model`` adds ``arch_name`` and ``config``, the keyword arguments that rebuild the same
architecture: ``create_model(**model.config)``.

>>> from topoprune.models import create_model
>>> model = create_model("resnet20", num_classes=10, seed=0)
>>> model.arch_name, model.widths[:3], model.classifier_name
('resnet20', [16, 32, 64], 'fc')
>>> narrow = create_model(**{**model.config, "widths": [8, 16, 32] + [4] * 9})
"""

import inspect
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from operator import index
from typing import Any, overload

import torch
from torch import nn

from topoprune.errors import TopopruneError

ModelBuilder = Callable[..., nn.Module]

_BUILDERS: dict[str, ModelBuilder] = {}
_CORE_ARGUMENTS = ("num_classes", "in_channels", "widths")


@overload
def register_model(builder: ModelBuilder) -> ModelBuilder: ...
@overload
def register_model(*, name: str) -> Callable[[ModelBuilder], ModelBuilder]: ...
def register_model(
    builder: ModelBuilder | None = None, *, name: str | None = None
) -> ModelBuilder | Callable[[ModelBuilder], ModelBuilder]:
    """Decorator: register ``builder`` under its function name and return it unchanged.

    ``@register_model(name="lenet5-caffe")`` registers under ``name`` instead, for names that
    are no Python identifier.
    """
    if builder is None:
        return lambda builder: _register(name or builder.__name__, builder)
    return _register(name or builder.__name__, builder)


def _register(name: str, builder: ModelBuilder) -> ModelBuilder:
    if name in _BUILDERS:
        raise TopopruneError(f"a model named {name!r} is already registered; pick another name")
    _BUILDERS[name] = builder
    return builder


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    return sorted(_BUILDERS)


def create_model(
    name: str,
    num_classes: int = 10,
    in_channels: int = 3,
    widths: Sequence[int] | None = None,
    *,
    seed: int | None = None,
    **options: Any,
) -> nn.Module:
    """Build the registered model ``name`` with fresh from-scratch weights.

    ``widths`` overrides every layer width (see the builder's docstring for the format, and
    ``default_widths(name)`` for the full-size list). ``seed`` makes the initialisation
    reproducible without touching the global RNG; without it the global RNG is used.
    ``options`` go to the builder (e.g. ``small_input=True`` for ``mobilenetv2``).
    """
    builder = _builder(name)
    _check_positive(name, "num_classes", num_classes)
    _check_positive(name, "in_channels", in_channels)
    _check_options(name, builder, options)
    rng = torch.random.fork_rng(devices=[]) if seed is not None else nullcontext()
    with rng:
        if seed is not None:
            torch.manual_seed(seed)
        model = builder(num_classes=num_classes, in_channels=in_channels, widths=widths, **options)
    model.arch_name = name
    model.config = {
        "name": name,
        "num_classes": num_classes,
        "in_channels": in_channels,
        "widths": list(model.widths),
        **options,
    }
    return model


def default_widths(name: str) -> list[int]:
    """The full-size width list of model ``name`` (built on the meta device, no memory used).

    >>> default_widths("lenet5")
    [6, 16, 120, 84]
    """
    with torch.device("meta"):
        return list(_builder(name)(num_classes=10, in_channels=3, widths=None).widths)


def _builder(name: str) -> ModelBuilder:
    if name not in _BUILDERS:
        raise TopopruneError(f"unknown model {name!r}; choose one of: {', '.join(list_models())}")
    return _BUILDERS[name]


def _check_positive(name: str, argument: str, value: int) -> None:
    try:
        valid = not isinstance(value, bool) and index(value) >= 1
    except TypeError:
        valid = False
    if not valid:
        raise TopopruneError(f"{name}: {argument} must be a positive int, got {value!r}")


def _check_options(name: str, builder: ModelBuilder, options: dict[str, Any]) -> None:
    accepted = [p for p in inspect.signature(builder).parameters if p not in _CORE_ARGUMENTS]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        known = ", ".join(accepted) or "none"
        raise TopopruneError(f"{name} has no option {', '.join(unknown)}; its options are: {known}")
