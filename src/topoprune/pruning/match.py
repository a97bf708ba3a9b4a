"""One budget rule for every method: a true fraction of params or MACs removed → its setting.

A bench operating point may ask for ``match: params`` or ``match: macs`` with a true fraction
removed (dense first conv and classifier, biases and BatchNorm counted). Each method maps that to
its own setting: a registered ``match`` function (RGP and its baselines: the degree whose counts
are nearest; l1: its own budget) or, by default, a bisection over ``sparsity`` on copies of the
model, which works for any method whose true reduction grows with its sparsity.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from torch import nn

from topoprune.errors import TopopruneError
from topoprune.pruning.registry import Method, check_options, get_method

KINDS = ("params", "macs")
BISECTION_STEPS = 24
HIGHEST_SPARSITY = 0.999


@dataclass(frozen=True)
class Match:
    """The setting found for a requested true reduction, and the reduction it achieves."""

    kind: str
    requested: float
    sparsity: float
    overrides: dict[str, Any]
    achieved: float | None


def true_reduction(
    model: nn.Module,
    method: Method,
    sparsity: float,
    options: dict[str, Any],
    kind: str,
    *,
    input_size: tuple[int, int, int] | None = None,
    data: Any = None,
) -> float:
    """The true fraction of ``kind`` removed when ``method`` prunes a copy of ``model``."""
    from topoprune.pruning.api import prune

    trial = copy.deepcopy(model)
    result = prune(trial, method.name, sparsity, input_size=input_size, data=data, **options)
    return result.metrics[f"{kind}_reduction"]


def match_sparsity(
    model: nn.Module,
    method: str,
    kind: str,
    target: float,
    options: dict[str, Any] | None = None,
    *,
    input_size: tuple[int, int, int] | None = None,
    data: Any = None,
    measure: bool = True,
) -> Match:
    """The setting of ``method`` that removes the true fraction ``target`` of ``kind``.

    ``options`` are the method's options (``layers``/``exclude`` included: only those layers
    count); ``measure=False`` skips the final pruning that reports ``achieved`` (then None).

    >>> from topoprune.models import create_model
    >>> model = create_model("lenet5", in_channels=1)
    >>> found = match_sparsity(model, "random", "params", 0.5, input_size=(1, 28, 28))
    >>> abs(found.achieved - 0.5) < 1e-3
    True
    """
    if kind not in KINDS:
        raise TopopruneError(f"match must be one of {', '.join(KINDS)}, got {kind!r}")
    if not 0.0 < target < 1.0:
        raise TopopruneError(f"a matched fraction must lie in (0, 1), got {target!r}")
    if input_size is None:
        raise TopopruneError("matching a true reduction needs input_size=(C, H, W)")
    spec = get_method(method)
    options = dict(options or {})
    where = {"input_size": input_size, "data": data}
    found = None
    if spec.match is not None:
        found = spec.match(model, kind, target, check_options(spec, options), **where)
    if found is None:
        sparsity, overrides = _bisect(model, spec, kind, target, options, where), {}
    else:
        sparsity, overrides = found
    achieved = None
    if measure:
        achieved = true_reduction(model, spec, sparsity, {**options, **overrides}, kind, **where)
    return Match(kind, target, sparsity, overrides, achieved)


def _bisect(
    model: nn.Module,
    method: Method,
    kind: str,
    target: float,
    options: dict[str, Any],
    where: dict[str, Any],
) -> float:
    """The sparsity in [0, HIGHEST_SPARSITY] whose true reduction is nearest ``target``."""
    low, high = 0.0, HIGHEST_SPARSITY
    if true_reduction(model, method, high, options, kind, **where) < target:
        raise TopopruneError(
            f"{method.name} removes less than {target:g} of the {kind} even at sparsity "
            f"{HIGHEST_SPARSITY}: ask for less (its dense layers keep the rest)"
        )
    for _ in range(BISECTION_STEPS):
        middle = (low + high) / 2
        if true_reduction(model, method, middle, options, kind, **where) < target:
            low = middle
        else:
            high = middle
    below = true_reduction(model, method, low, options, kind, **where)
    above = true_reduction(model, method, high, options, kind, **where)
    return low if abs(below - target) < abs(above - target) else high
