"""EXP: random kernel pruning among channels with similar expectation scaling factors.

Sun et al., PeerJ Computer Science 2023, and their published code. The unit is one kernel slice
``W[i, j, :, :]`` (filter i, input channel j). For ``y = Σ w·x`` the expectation is
``E[y] = ψ·E[x]`` with ψ the slice's weight sum (plus the filter's bias where the conv has one),
so slices with similar ψ scale their input alike and one of them can stand in for another.
Slices are put into similarity classes ``round((sigmoid(2ψ / max|ψ|) − 0.5) · N)`` (N = 13 as
published). We divide by the largest *magnitude* of ψ in the layer, not by the largest ψ: the
two agree whenever the largest magnitude belongs to a positive ψ (the usual case), and the
magnitude keeps the argument in [−2, 2] when every ψ is negative or the largest is zero.

Per conv with rate r, exactly ``int(r · f · c)`` slices are zeroed (f filters, c inputs):
classes are visited by descending frequency (ties: the lower class first), and of a class of
``count`` slices a random ``ceil(count · (1 − max_rate − 0.1))`` are kept (at least 0) and the
rest removed, until the budget is spent; if one pass leaves budget, further passes remove random
survivors in the same class order. Mode B applies this over the whole layer. Mode A walks the
filters by ascending |γ| of the BatchNorm after the conv and applies it per filter, each filter
giving at most ``int(r · c)`` slices, then one more slice per filter in the same order while the
layer's budget is not spent. Every choice is seeded per conv (the published code sets no seed),
so a conv gets the same mask from the same weights whether it is pruned alone or with the others.

Registered as the ``after-training`` method ``exp``, pruning in stages: by default (as
published) one conv at a time, in ``named_modules()`` order, with ``finetune_epochs`` of
fine-tuning after each (published: 30, restarting the schedule; default here 1, one schedule
over all stages); ``one_shot=True`` prunes every conv at once and fine-tunes for the same total
epochs. The protocol runner trains dense for the rest of the budget first
(:mod:`topoprune.experiments.protocols`); :func:`topoprune.pruning.prune_progressively` gives
the stages to a training loop of one's own.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from topoprune.errors import TopopruneError
from topoprune.pruning.registry import (
    PruneContext,
    Pruning,
    Stages,
    option,
    register_method,
)

MODES = ("A", "B")
FINETUNE_SCHEDULES = ("continue", "restart")
_TERM = re.compile(r"\s*\[([^\]]*)\]\s*(?:\*\s*(\d+))?\s*")


@dataclass(frozen=True)
class ExpOptions:
    """The rates per conv, the mode and the number of similarity classes."""

    rates: Any = option(
        None,
        "pruning rate per Conv2d: one number, one per conv in named_modules() order (first and "
        "shortcut convs included), or the published form '[0.]+[0.7]*17+[0.4]*2'; "
        "default: one rate on every conv but the first, solved from sparsity",
    )
    mode: str = option(
        "B", "A: filters by ascending |BN gamma|, rule per filter; B: per layer", choices=MODES
    )
    classes: int = option(13, "similarity classes N of the expectation scaling factor")
    one_shot: bool = option(
        False,
        "prune every conv at once, then fine-tune for the same epochs (default: one conv at a "
        "time, fine-tuning after each, as published)",
    )
    finetune_epochs: int = option(
        1, "fine-tuning epochs per pruned conv (one-shot: their total, after the one stage)"
    )
    finetune_total: int | None = option(
        None,
        "one-shot only: fine-tuning epochs in all (default: finetune_epochs x pruned convs), "
        "for a budget shorter than one epoch per conv",
    )
    finetune_schedule: str = option(
        "continue",
        "continue: one learning-rate schedule over all stages; restart: one per stage "
        "(published, with 30 epochs per stage)",
        choices=FINETUNE_SCHEDULES,
    )


def parse_rates(text: str) -> list[float]:
    """The published string form of a rate list, read without ``eval``.

    >>> parse_rates("[0.]+[0.7]*2+[0.4, 0.5]")
    [0.0, 0.7, 0.7, 0.4, 0.5]
    """
    rates: list[float] = []
    for term in text.split("+"):
        found = _TERM.fullmatch(term)
        if found is None:
            raise TopopruneError(
                f"rates {text!r}: each term must look like [0.7] or [0.7, 0.4]*17, joined by +"
            )
        try:
            values = [float(v) for v in found.group(1).split(",") if v.strip()]
        except ValueError:
            raise TopopruneError(f"rates {text!r}: {found.group(1)!r} holds a non-number") from None
        rates += values * int(found.group(2) or 1)
    return rates


def _convs(model: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]


def conv_rates(model: nn.Module, rates: Any) -> list[float]:
    """One rate per Conv2d of ``model`` from ``rates`` (a number, a list or the string form)."""
    convs = _convs(model)
    if isinstance(rates, str):
        rates = parse_rates(rates)
    if isinstance(rates, (int, float)) and not isinstance(rates, bool):
        rates = [float(rates)] * len(convs)
    if not isinstance(rates, (list, tuple)):
        raise TopopruneError(f"rates must be a number, a list or a string, got {rates!r}")
    if len(rates) != len(convs):
        raise TopopruneError(
            f"rates has {len(rates)} entries but the model has {len(convs)} Conv2d layers "
            "(first and shortcut convs included, in named_modules() order)"
        )
    values = [float(r) for r in rates]
    if any(not 0.0 <= r < 1.0 for r in values):
        raise TopopruneError(f"every rate must lie in [0, 1), got {values}")
    return values


def similarity_classes(weight: torch.Tensor, bias: torch.Tensor | None, classes: int) -> np.ndarray:
    """The class of every slice, int (f, c): round((sigmoid(2ψ / max|ψ|) − 0.5) · N)."""
    psi = weight.detach().double().sum(dim=(2, 3))
    if bias is not None:
        psi = psi + bias.detach().double()[:, None]
    largest = psi.abs().max()
    scaled = 2 * psi / largest if largest > 0 else torch.zeros_like(psi)
    return torch.round((torch.sigmoid(scaled) - 0.5) * classes).to(torch.int64).numpy()


def _remove(
    labels: np.ndarray, budget: int, keep_share: float, rng: np.random.Generator
) -> np.ndarray:
    """Bool mask of the slices to remove among ``labels`` (their classes), ``budget`` exactly."""
    removed = np.zeros(len(labels), dtype=bool)
    values, counts = np.unique(labels, return_counts=True)
    order = values[np.lexsort((values, -counts))]  # descending frequency, then lower class
    first_pass = True
    while budget > 0:
        for value in order:
            if budget == 0:
                break
            members = np.flatnonzero((labels == value) & ~removed)
            if len(members) == 0:
                continue
            keep = max(0, math.ceil(len(members) * keep_share)) if first_pass else 0
            candidates = rng.permutation(members)[keep:]
            take = candidates[:budget]
            removed[take] = True
            budget -= len(take)
        first_pass = False
    return removed


def _bn_after(model: nn.Module, conv_name: str, channels: int) -> nn.BatchNorm2d | None:
    """The BatchNorm2d that follows ``conv_name`` in ``named_modules()`` order, if it fits."""
    names = [n for n, _ in model.named_modules()]
    modules = dict(model.named_modules())
    for name in names[names.index(conv_name) + 1 :]:
        module = modules[name]
        if isinstance(module, nn.BatchNorm2d) and module.num_features == channels:
            return module
        if isinstance(module, nn.Conv2d):
            return None
    return None


def exp_mask(
    conv: nn.Conv2d,
    rate: float,
    max_rate: float,
    classes: int,
    rng: np.random.Generator,
    mode: str = "B",
    gamma: torch.Tensor | None = None,
) -> torch.Tensor:
    """Bool mask shaped like ``conv.weight`` with exactly ``int(rate·f·c)`` slices removed.

    >>> conv = nn.Conv2d(4, 6, 3)
    >>> mask = exp_mask(conv, 0.5, 0.5, 13, np.random.default_rng(0))
    >>> int((~mask.flatten(2).any(2)).sum())
    12
    """
    filters, inputs = conv.weight.shape[:2]
    labels = similarity_classes(conv.weight, conv.bias, classes)
    budget = int(rate * filters * inputs)
    keep_share = 1.0 - max_rate - 0.1
    removed = np.zeros((filters, inputs), dtype=bool)
    if mode == "B":
        removed = _remove(labels.ravel(), budget, keep_share, rng).reshape(filters, inputs)
    else:
        order = (
            np.argsort(np.abs(gamma.detach().numpy()), kind="stable")
            if gamma is not None
            else np.arange(filters)
        )
        per_filter = int(rate * inputs)
        for i in order:
            take = min(per_filter, budget)
            removed[i] = _remove(labels[i], take, keep_share, rng)
            budget -= take
        for i in order:  # int(rate·c) per filter can fall short of int(rate·f·c)
            if budget == 0:
                break
            left = np.flatnonzero(~removed[i])
            if len(left):
                removed[i, rng.choice(left)] = True
                budget -= 1
    kept = torch.from_numpy(~removed)
    return kept[:, :, None, None].expand_as(conv.weight).clone()


def _solve_uniform_rate(convs: list[nn.Conv2d], sparsity: float) -> float:
    """The rate whose exact slice counts remove ``sparsity`` of these convs' weights."""
    total = sum(c.weight.numel() for c in convs)

    def removed(rate: float) -> float:
        return (
            sum(
                int(rate * c.weight.shape[0] * c.weight.shape[1]) * c.weight[0, 0].numel()
                for c in convs
            )
            / total
        )

    low, high = 0.0, 0.999
    for _ in range(40):
        middle = (low + high) / 2
        low, high = (middle, high) if removed(middle) < sparsity else (low, middle)
    return min((low, high), key=lambda r: abs(removed(r) - sparsity))


def _check_exp(sparsity: float, options: ExpOptions) -> None:
    if options.classes < 1:
        raise TopopruneError(f"exp classes must be >= 1, got {options.classes}")
    if options.finetune_epochs < 1:
        raise TopopruneError(f"exp finetune_epochs must be >= 1, got {options.finetune_epochs}")
    if options.finetune_total is not None and not options.one_shot:
        raise TopopruneError("exp finetune_total applies to one_shot only: set one_shot: true")
    if options.finetune_total is not None and options.finetune_total < 1:
        raise TopopruneError(f"exp finetune_total must be >= 1, got {options.finetune_total}")
    if isinstance(options.rates, str):
        parse_rates(options.rates)


def _model_rates(model: nn.Module, sparsity: float, options: ExpOptions) -> list[float]:
    """The rate of every Conv2d: the given ones, or a uniform rate on all but the first conv
    (and depthwise/grouped convs, which EXP leaves alone) solved from ``sparsity``."""
    convs = _convs(model)
    if options.rates is not None:
        return conv_rates(model, options.rates)
    rates = [0.0] * len(convs)
    prunable = [conv for _, conv in convs[1:] if conv.groups == 1]
    rate = _solve_uniform_rate(prunable, sparsity) if prunable else 0.0
    rates[1:] = [rate if conv.groups == 1 else 0.0 for _, conv in convs[1:]]
    return rates


def _pruned_convs(model: nn.Module, rates: list[float]) -> list[str]:
    return [
        name
        for (name, conv), rate in zip(_convs(model), rates, strict=True)
        if rate > 0.0 and conv.groups == 1
    ]


def exp_stages(model: nn.Module, sparsity: float, options: ExpOptions) -> Stages:
    """One stage per pruned conv (progressive) or one stage of them all (one-shot).

    >>> from topoprune.models import create_model
    >>> model = create_model("lenet5", in_channels=1)
    >>> exp_stages(model, 0.5, ExpOptions(rates=[0.0, 0.5], finetune_epochs=2))
    Stages(layers=[('conv2',)], epochs=2, restart=False)
    """
    names = _pruned_convs(model, _model_rates(model, sparsity, options))
    restart = options.finetune_schedule == "restart"
    if options.one_shot:
        total = options.finetune_total or options.finetune_epochs * len(names)
        return Stages([tuple(names)], total, restart)
    return Stages([(name,) for name in names], options.finetune_epochs, restart)


@register_method(
    "exp",
    protocol="after-training",
    options=ExpOptions,
    check=_check_exp,
    stages=exp_stages,
    sets_budget=lambda options: options.rates is not None,
)
def exp(model: nn.Module, sparsity: float, options: ExpOptions, context: PruneContext) -> Pruning:
    """Random kernel-slice pruning inside classes of similar expectation scaling factor."""
    convs = _convs(model)
    rates = _model_rates(model, sparsity, options)
    max_rate = max(rates)
    wanted = set(_pruned_convs(model, rates) if context.stage is None else context.stage)
    masks, rows = {}, []
    for index, ((name, conv), rate) in enumerate(zip(convs, rates, strict=True)):
        if name not in wanted or rate == 0.0 or conv.groups != 1:
            continue
        rng = np.random.default_rng([context.seed, index])
        bn = _bn_after(model, name, conv.out_channels) if options.mode == "A" else None
        gamma = None if bn is None else bn.weight
        masks[name] = exp_mask(conv, rate, max_rate, options.classes, rng, options.mode, gamma)
        slices = masks[name].flatten(2).any(2)
        rows.append(
            {
                "name": name,
                "shape": list(conv.weight.shape),
                "rate": rate,
                "kept": masks[name].float().mean().item(),
                "empty_filters": int((~slices.any(1)).sum()),
                "empty_inputs": int((~slices.any(0)).sum()),
            }
        )
    masked = sum(m.numel() for m in masks.values())
    removed = sum(int((~m).sum()) for m in masks.values())
    metrics = {"nominal_reduction": removed / masked if masked else 0.0, "rates": rates}
    return Pruning(masks=masks, metrics=metrics, layers=rows)
