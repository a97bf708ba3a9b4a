"""What the score-based baselines share: units, selection by score, ``like``, training batches.

``snip``, ``grasp``, ``synflow`` and ``global-magnitude`` each give every weight of the layers
they mask a score, then keep the best-scored *units*:

- ``granularity="weight"``: a unit is one weight, its score the weight's score;
- ``granularity="kernel"``: a unit is one whole (out, in) kernel slice of a conv, its score the
  sum of its weights' scores (Linear layers stay per weight), so the masks compare with the
  structured slice masks of ``random --granularity kernel``, ``exp`` and the graph methods.

By default one global threshold over every masked layer keeps exactly
``round((1 − sparsity) · units)`` units, units being counted over all those layers together (the
convention of the SNIP, GraSP and SynFlow papers and of ShrinkBench's global magnitude pruning),
so layers end up with different densities. With ``like=METHOD`` (or a saved PruneResult file)
each layer keeps instead exactly the units that layer keeps under that method — the same helper
and semantics as ``random --like`` (:mod:`topoprune.pruning.baselines`) — and the scores choose
*which* units within each layer. Ties are broken by position: of equal scores the unit earlier
in layer order (then in the weight's row-major order) is kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from topoprune.errors import TopopruneError
from topoprune.pruning.baselines import GRANULARITIES, like_kept
from topoprune.pruning.layers import PrunableLayer
from topoprune.pruning.registry import PruneContext, check_options, get_method, option

Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class ScoreOptions:
    """Options every score-based at-init baseline shares: granularity and ``like``."""

    granularity: str = option(
        "weight",
        "unit kept or removed: one weight, or one whole (out, in) conv kernel slice (scores "
        "summed over the slice; Linear layers stay per weight)",
        choices=GRANULARITIES,
    )
    like: str | None = option(
        None,
        "keep each layer's kept count of this method (as it prunes this model at the same "
        "sparsity and seed) or of a saved PruneResult file, the scores choosing within each "
        "layer, instead of one global threshold",
    )
    like_options: dict | None = option(None, "options of the method named by like")


def units(weight_shape: Sequence[int], granularity: str) -> int:
    """How many units a weight of this shape has: every entry, or every (out, in) slice."""
    shape = tuple(weight_shape)
    if granularity == "kernel" and len(shape) > 2:
        return shape[0] * shape[1]
    return int(torch.Size(shape).numel())


def unit_scores(score: torch.Tensor, granularity: str) -> torch.Tensor:
    """The flat scores of a weight's units: its entries, or its (out, in) slices' sums.

    >>> unit_scores(torch.ones(2, 3, 3, 3), "kernel").tolist()
    [9.0, 9.0, 9.0, 9.0, 9.0, 9.0]
    """
    if granularity == "kernel" and score.dim() > 2:
        return score.flatten(2).sum(dim=2).flatten()
    return score.flatten()


def unit_mask(kept: torch.Tensor, weight_shape: Sequence[int], granularity: str) -> torch.Tensor:
    """A bool mask shaped like the weight from the flat bool vector of its kept units."""
    shape = torch.Size(tuple(weight_shape))
    if granularity == "kernel" and len(shape) > 2:
        slices = kept.view(shape[0], shape[1], *(1,) * (len(shape) - 2))
        return slices.expand(shape).clone()
    return kept.view(shape).clone()


def kept_count(total: int, sparsity: float) -> int:
    """Units kept out of ``total`` at ``sparsity``: ``round((1 − sparsity) · total)``."""
    return round((1.0 - sparsity) * total)


def layers_and_kept(
    model: nn.Module, sparsity: float, options: Any, context: PruneContext
) -> tuple[list[PrunableLayer], int | dict[str, int]]:
    """The layers to score and how many units to keep: one global count over the context's
    layers, or, with ``options.like``, that method's layers and kept units per layer
    (:func:`topoprune.pruning.baselines.like_kept`)."""
    if options.like is not None:
        return like_kept(model, sparsity, options, context)
    layers = context.layers
    total = sum(units(layer.module.weight.shape, options.granularity) for layer in layers)
    return layers, kept_count(total, sparsity)


def _top(scores: torch.Tensor, count: int) -> torch.Tensor:
    """Bool vector keeping the ``count`` highest ``scores`` (ties: the earlier index)."""
    if torch.isnan(scores).any():
        raise TopopruneError(
            "some pruning scores are NaN (the scoring pass overflowed or diverged): check the "
            "model's initialisation and the data"
        )
    total = scores.numel()
    if count >= total:
        return torch.ones(total, dtype=torch.bool, device=scores.device)
    if count <= 0:
        return torch.zeros(total, dtype=torch.bool, device=scores.device)
    threshold = torch.kthvalue(scores, total - count + 1).values  # the count-th highest
    kept = scores > threshold
    ties = (scores == threshold).nonzero().flatten()
    kept[ties[: count - int(kept.sum())]] = True
    return kept


def select(
    scores: Mapping[str, torch.Tensor],
    kept: int | Mapping[str, int],
    granularity: str = "weight",
    within: Mapping[str, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """Bool masks (shaped like each score, True = kept) keeping the highest-scored units.

    scores: layer name -> a score per weight (higher: more worth keeping), in layer order.
    kept: one int, the units kept over all layers together (one global threshold), or
        layer name -> units kept in that layer.
    within: layer name -> an earlier bool mask: the units it removed rank below every other
        and stay removed while ``kept`` does not exceed the units it kept (SynFlow's rounds).

    >>> masks = select({"a": torch.tensor([[3.0, 1.0]]), "b": torch.tensor([[2.0, 0.0]])}, 2)
    >>> masks["a"].tolist(), masks["b"].tolist()
    ([[True, False]], [[True, False]])
    """
    flat = {name: unit_scores(s.detach(), granularity).double() for name, s in scores.items()}
    for name, earlier in (within or {}).items():
        alive = unit_scores(earlier.to(flat[name].device, torch.float64), granularity) > 0
        flat[name] = flat[name].masked_fill(~alive, float("-inf"))
    if isinstance(kept, int):
        total = sum(s.numel() for s in flat.values())
        if not 0 <= kept <= total:
            raise TopopruneError(f"cannot keep {kept} of {total} units")
        chosen = _top(torch.cat(list(flat.values())), kept).split(
            [s.numel() for s in flat.values()]
        )
        picks = dict(zip(flat, chosen, strict=True))
    else:
        picks = {name: _top(s, kept[name]) for name, s in flat.items()}
    return {name: unit_mask(picks[name], scores[name].shape, granularity).cpu() for name in scores}


def check_like(method: str) -> Callable[[float, Any], None]:
    """A ``check`` hook: the method named by ``like`` must exist, not be ``method`` itself, make
    masks, and accept its ``like_options`` at the sparsity."""

    def check(sparsity: float, options: Any) -> None:
        like = options.like
        if like is None or _is_file(like):
            return
        if like == method:
            raise TopopruneError(
                f"{method} cannot copy itself (its own counts give its own masks): "
                "name another method in like"
            )
        copied = get_method(like)
        if copied.protocol == "search":
            raise TopopruneError(
                f"{method} copies another method's per-layer counts; {like} searches widths "
                "and makes no masks"
            )
        check_options(copied, options.like_options or {}, sparsity)

    return check


def _is_file(like: str) -> bool:
    from pathlib import Path

    return Path(like).is_file()


def positive(value: float, name: str, method: str) -> None:
    """Raise unless ``value`` is a positive number."""
    if not value > 0:
        raise TopopruneError(f"{method} option {name!r} must be positive, got {value!r}")


# --------------------------------------------------------------------------- the scoring copy


def scoring_copy(model: nn.Module, *, train: bool) -> nn.Module:
    """A copy of ``model`` to score: masks already on it folded into the weights (a removed weight
    is 0, so it scores 0), BatchNorm in train (batch statistics) or eval mode, dropout off so
    that the scores are deterministic, and every parameter's gradient off (the scorer turns on
    the weights it differentiates). ``model`` itself is not touched."""
    from topoprune.compact.masked import copy_model

    net = copy_model(model)
    for module in net.modules():
        if hasattr(module, "weight_orig") and hasattr(module, "weight_mask"):
            torch_prune.remove(module, "weight")
    net.train(train)
    for module in net.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd):
            module.eval()
    net.requires_grad_(False)
    return net


def device_of(model: nn.Module) -> torch.device:
    """Where the model's parameters live (CPU for a model without any)."""
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


# ------------------------------------------------------------------------------ training data


def _require_splits(data: Any, method: str) -> Any:
    if data is None or not hasattr(data, "train"):
        raise TopopruneError(
            f"{method} scores weights on training data: pass data=splits "
            "(topoprune.load_dataset(...)); the CLI and bench pass the run's dataset"
        )
    if len(data.train) == 0:
        raise TopopruneError(f"{method} needs training images; the training split is empty")
    return data


def _load(data: Any, indices: torch.Tensor) -> Batch:
    """The normalised images (no augmentation) and labels at ``indices`` of the training split."""
    from topoprune.data.transforms import normalize
    from topoprune.training.trainer import batches

    _, images, labels = next(batches(data.train, indices, max(1, len(indices))))
    return normalize(data)(images), labels


def training_batches(
    data: Any, count: int, batch_size: int, seed: int, method: str = "this method"
) -> list[Batch]:
    """``count`` batches of ``batch_size`` training samples chosen by a permutation seeded with
    ``seed`` (fewer, or a smaller last one, when the split is smaller), normalised with the
    dataset's mean and std and without augmentation.

    >>> from topoprune.data import load_dataset
    >>> splits = load_dataset("synthetic", size=40, image_size=4)
    >>> [tuple(x.shape) for x, _ in training_batches(splits, 2, 8, seed=0)]
    [(8, 3, 4, 4), (8, 3, 4, 4)]
    """
    data = _require_splits(data, method)
    order = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(seed))
    order = order[: count * batch_size]
    return [_load(data, order[s : s + batch_size]) for s in range(0, len(order), batch_size)]


def _labels(dataset: Any, indices: Iterable[int]) -> Iterable[tuple[int, int]]:
    labels = getattr(dataset, "labels", None)
    for index in indices:
        yield index, int(labels[index]) if labels is not None else int(dataset[index][1])


def balanced_batches(
    data: Any, count: int, per_class: int, seed: int, method: str = "this method"
) -> list[Batch]:
    """``count`` class-balanced batches of ``per_class`` training samples of every class,
    ordered by class (class 0's samples first), as GraSP's published ``GraSP_fetch_data`` builds
    them; the samples are the first of each class in a permutation seeded with ``seed``, and the
    batches do not share samples. Normalised, without augmentation."""
    data = _require_splits(data, method)
    classes = int(data.num_classes)
    order = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(seed))
    wanted = count * per_class
    chosen: list[list[int]] = [[] for _ in range(classes)]
    full = 0
    for index, label in _labels(data.train, order.tolist()):
        if len(chosen[label]) < wanted:
            chosen[label].append(index)
            full += len(chosen[label]) == wanted
            if full == classes:
                break
    short = [c for c in range(classes) if len(chosen[c]) < wanted]
    if short:
        have = len(chosen[short[0]])
        raise TopopruneError(
            f"{method} takes {per_class} samples of every class in each of {count} batches, but "
            f"class {short[0]} has {have} training samples: lower samples_per_class or batches"
        )
    result = []
    for b in range(count):
        indices = [
            i for c in range(classes) for i in chosen[c][b * per_class : (b + 1) * per_class]
        ]
        result.append(_load(data, torch.tensor(indices, dtype=torch.int64)))
    return result
