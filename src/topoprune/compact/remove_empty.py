"""Remove channels that a mask has emptied, exactly: a narrower copy that computes the same outputs.

A *channel* is output channel j of a conv or linear layer together with everything
torch-pruning's dependency graph couples to it (its BatchNorm entry, the input slice j of every
consumer conv or linear, the residual adds and the other layers writing into the same stream).
In eval mode a channel is removed only when that changes no output:

- **dead**: every consumer's input slice j is fully masked (``mask[:, j]`` all False in every
  consuming layer), so nothing reads the channel;
- **zero**: every producer's filter j is fully masked, so each producer writes a constant (its
  bias, if any) whatever the input; every other operation in the group acts channel by channel
  (BatchNorm, ReLU, adds, pooling, flatten), so the value reaching the consumers is one fixed
  map, and it is removed when that value is exactly 0 at every consumer (checked with hooks on
  ``example_input``; a BN shift ``β − γ·μ/√(σ²+ε) ≤ 0`` under a ReLU gives 0, any value that
  is not cut to exactly 0 does not);
- **kept constant**: producers fully masked but a non-zero constant reaches a consumer (a
  positive BN shift): removing it would change the outputs (a padded consumer sees the constant
  inside the image and zeros at the border), so it stays and is reported.

Groups whose channel reaches the model output, passes through an operation the graph cannot map
channel by channel (slices, concatenations, normalisations other than BatchNorm, grouped convs,
bare parameters), or contains a layer kept at full width (the classifier; the residual stream of
a network with option-A shortcuts, see :func:`topoprune.pruning.l1.kept_full_width`) are left
as they are. A group always keeps at least one channel.

>>> import torch
>>> from torch import nn
>>> from topoprune.pruning.base import apply_masks
>>> model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 3),
...                       nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 5))
>>> mask = torch.ones(2, 4, 3, 3, dtype=torch.bool)
>>> mask[:, 1] = False  # nothing reads channel 1 of the first conv
>>> _ = apply_masks(model, {"3": mask})
>>> narrow, report = remove_empty_channels(model, torch.randn(2, 3, 8, 8))
>>> narrow[0].out_channels, tuple(narrow[3].weight_mask.shape), report.totals["removed_dead"]
(3, (2, 3, 3, 3), 1)
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.utils import prune

from topoprune.compact.masked import copy_model
from topoprune.errors import TopopruneError
from topoprune.measure import count
from topoprune.measure.running import evaluating

LAYERS = (nn.modules.conv._ConvNd, nn.Linear)


@dataclass
class LayerChannels:
    """Output channels of one conv or linear layer before and after, and why they went or stayed.

    ``removed_dead`` + ``removed_zero`` = ``before − after``; ``kept_constant`` counts the
    channels whose filters are fully masked but which carry a non-zero constant, so stay.
    """

    name: str
    before: int
    after: int
    removed_dead: int = 0
    removed_zero: int = 0
    kept_constant: int = 0


@dataclass
class EmptyChannelReport:
    """What :func:`remove_empty_channels` did, layer by layer.

    ``layers``: one row per conv and linear layer (output channels), in module order.
    ``skipped``: producer layer name -> why its channel group was left alone (``full width``,
    ``reaches the output``, ``unsupported …``, ``not reached``).
    ``params``/``macs``: mask-aware counts (:func:`topoprune.measure.count`) before and after.
    ``totals``: the per-layer columns summed (a channel shared by several producers, as in a
    residual stream, counts once per producer).
    """

    layers: list[LayerChannels]
    params_before: int
    params_after: int
    macs_before: int
    macs_after: int
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def totals(self) -> dict[str, int]:
        """``before``, ``after``, ``removed_dead``, ``removed_zero``, ``kept_constant`` summed."""
        columns = ("before", "after", "removed_dead", "removed_zero", "kept_constant")
        return {key: sum(getattr(row, key) for row in self.layers) for key in columns}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict, totals included."""
        return {**asdict(self), "totals": self.totals}


def empty_channels(masks: dict[str, torch.Tensor]) -> dict[str, dict[str, int]]:
    """For each weight mask, how many filters and input channels it empties entirely.

    ``masks[name]``: bool (or 0/1) tensor of a conv or linear weight, shape (out, in, *kernel)
    or (out, in); True = kept. Returns ``name -> {"filters": out, "empty_filters": #i with
    mask[i] all False, "inputs": in, "empty_inputs": #j with mask[:, j] all False}`` (for a
    grouped conv ``in`` is the per-group input width). Masks with fewer than 2 dimensions (no
    input axis) are left out.

    >>> mask = torch.ones(3, 4, dtype=torch.bool)
    >>> mask[0] = False
    >>> empty_channels({"fc": mask})["fc"]
    {'filters': 3, 'empty_filters': 1, 'inputs': 4, 'empty_inputs': 0}
    """
    counts = {}
    for name, mask in masks.items():
        if mask.dim() < 2:
            continue
        kept = mask.bool()
        out, inputs = kept.shape[:2]
        counts[name] = {
            "filters": out,
            "empty_filters": int((~kept.reshape(out, -1).any(1)).sum()),
            "inputs": inputs,
            "empty_inputs": int((~kept.transpose(0, 1).reshape(inputs, -1).any(1)).sum()),
        }
    return counts


def _full_width(model: nn.Module) -> set[int]:
    """ids of the layers whose output channels stay (shared with the l1 baseline)."""
    from topoprune.pruning.l1 import kept_full_width

    try:
        return {id(module) for module in kept_full_width(model)}
    except StopIteration:  # no linear classifier: the output check keeps the last layer whole
        return set()


def _zero_inputs(model: nn.Module, example: torch.Tensor) -> dict[int, torch.Tensor]:
    """id(layer) -> bool (in_features,): input channel exactly 0 at every position of every call.

    ``model`` runs ``example`` in eval mode; a layer the example never reaches is left out.
    """
    zero: dict[int, torch.Tensor] = {}

    def hook(module: nn.Module, args: tuple) -> None:
        x = args[0]
        if isinstance(module, nn.Linear):
            flat = x.reshape(-1, x.shape[-1]).transpose(0, 1)
        else:
            flat = x.transpose(0, 1).reshape(x.shape[1], -1)
        found = ~flat.ne(0).any(1)
        key = id(module)
        zero[key] = found if key not in zero else zero[key] & found

    handles = [m.register_forward_pre_hook(hook) for m in model.modules() if isinstance(m, LAYERS)]
    try:
        with evaluating(model), torch.no_grad():
            model(example)
    finally:
        for handle in handles:
            handle.remove()
    return zero


class _Handlers:
    """torch-pruning's pruning functions, sorted by what they do to a conv or linear layer."""

    def __init__(self) -> None:
        import torch_pruning as tp

        self.tp = tp
        self.out = {tp.prune_conv_out_channels, tp.prune_linear_out_channels}
        self.into = {tp.prune_conv_in_channels, tp.prune_linear_in_channels}
        OP = tp.ops.OPTYPE
        self.passive = {OP.BN, OP.ELEMENTWISE, OP.RESHAPE}
        self.layer_types = {OP.CONV, OP.LINEAR}

    def out_fn(self, module: nn.Module) -> Callable:
        return (
            self.tp.prune_linear_out_channels
            if isinstance(module, nn.Linear)
            else self.tp.prune_conv_out_channels
        )

    def unsupported(self, item: Any) -> str | None:
        """Why a group item rules its group out, or None when it maps channel by channel."""
        node, module = item.dep.target, item.dep.target.module
        if node.type in self.layer_types:
            if isinstance(module, nn.modules.conv._ConvTransposeNd) or (
                not isinstance(module, nn.Linear) and module.groups != 1
            ):
                return f"unsupported grouped or transposed conv {node.name}"
            if item.dep.handler not in self.out | self.into:
                return f"unsupported pruning of {node.name}"
            if item.dep.handler in self.out and not node.outputs:
                return "reaches the output"
            return None
        if node.type not in self.passive:
            return f"unsupported {node.type.name.lower()} op"
        if not node.outputs:
            return "reaches the output"
        return None


@dataclass
class _Group:
    """One coupled channel group of the traced copy, with each channel's fate."""

    root: nn.Module
    producers: list[str]
    dead: list[int] = field(default_factory=list)
    zero: list[int] = field(default_factory=list)
    constant: list[int] = field(default_factory=list)


def _positions(item: Any, channels: int) -> list[list[int]]:
    """For each root channel r, the indices of ``item``'s layer that carry it."""
    positions: list[list[int]] = [[] for _ in range(channels)]
    for index, root in zip(item.idxs, item.root_idxs, strict=True):
        positions[root].append(index)
    return positions


def _classify(
    group: Any,
    root: nn.Module,
    names: dict[int, str],
    masks: dict[str, torch.Tensor],
    zero_in: dict[int, torch.Tensor],
    handlers: _Handlers,
) -> tuple[list[int], list[int], list[int]]:
    """(dead, zero, kept-constant) root channels of one eligible group (full index list)."""
    channels = root.weight.shape[0]
    dead = [True] * channels
    empty = [True] * channels
    zero = [True] * channels
    consumers = 0
    for item in group.items:
        module = item.dep.target.module
        if item.dep.handler not in handlers.out | handlers.into:
            continue
        mask = masks.get(names.get(id(module), ""))
        positions = _positions(item, channels)
        if item.dep.handler in handlers.into:
            consumers += 1
            unread = (
                torch.zeros(module.weight.shape[1], dtype=torch.bool)
                if mask is None
                else ~mask.transpose(0, 1).reshape(mask.shape[1], -1).any(1)
            )
            seen = zero_in.get(id(module))
            for r, where in enumerate(positions):
                dead[r] = dead[r] and bool(unread[where].all())
                zero[r] = zero[r] and seen is not None and bool(seen[where].all())
        else:
            unwritten = (
                torch.zeros(module.weight.shape[0], dtype=torch.bool)
                if mask is None
                else ~mask.reshape(mask.shape[0], -1).any(1)
            )
            for r, where in enumerate(positions):
                empty[r] = empty[r] and bool(unwritten[where].all())
    if consumers == 0:
        return [], [], []
    dead_ = [r for r in range(channels) if dead[r]]
    zero_ = [r for r in range(channels) if not dead[r] and empty[r] and zero[r]]
    constant = [r for r in range(channels) if not dead[r] and empty[r] and not zero[r]]
    if len(dead_) + len(zero_) == channels:  # keep one channel: no zero-width layers
        if zero_:
            zero_ = zero_[:-1]
        else:
            dead_ = dead_[:-1]
    return dead_, zero_, constant


def _slice(tensor: torch.Tensor, dim: int, removed: list[int]) -> torch.Tensor:
    gone = set(removed)
    keep = [i for i in range(tensor.shape[dim]) if i not in gone]
    return tensor.index_select(dim, torch.tensor(keep, dtype=torch.long, device=tensor.device))


def _check_equal(reference: Any, narrowed: Any) -> None:
    """Raise when the narrowed model's outputs differ from the masked model's (a bug guard)."""
    if isinstance(reference, (tuple, list)):
        for a, b in zip(reference, narrowed, strict=True):
            _check_equal(a, b)
        return
    if not isinstance(reference, torch.Tensor):
        return
    scale = max(1.0, float(reference.abs().max())) if reference.numel() else 1.0
    if reference.shape != narrowed.shape or not torch.allclose(
        narrowed, reference, rtol=1e-4, atol=1e-5 * scale
    ):
        raise TopopruneError(
            "removing empty channels changed the model's outputs: torch-pruning's dependency "
            "graph does not describe this model; use it without remove_empty"
        )


def remove_empty_channels(
    model: nn.Module, example_input: torch.Tensor
) -> tuple[nn.Module, EmptyChannelReport]:
    """A physically narrower copy of a masked ``model`` without its dead and zero channels.

    ``model``: conv/linear layers masked in the ``torch.nn.utils.prune`` convention (only
    ``weight`` may be masked); it is not modified. ``example_input``: a real batch
    (B, *input_size) on the model's device; it is traced by torch-pruning and shows which
    channels reach the consumers as exactly 0. The copy keeps the remaining mask entries (and
    ``weight_orig``), sliced like the weights, so it can be trained or realized further, and in
    eval mode it computes the masked model's outputs (checked on ``example_input``; a
    ``TopopruneError`` if not). Its train/eval modes are the model's. Returns the copy and an
    :class:`EmptyChannelReport`; see the module docstring for the rules.
    """
    if not isinstance(example_input, torch.Tensor):
        raise TopopruneError("remove_empty_channels needs example_input as one tensor (B, ...)")
    handlers = _Handlers()
    tp = handlers.tp
    input_size = tuple(example_input.shape[1:])
    before_counts = count(model, input_size, device=example_input.device)
    modes = {name: module.training for name, module in model.named_modules()}

    work = copy_model(model)
    names = {id(module): name for name, module in work.named_modules()}
    masks: dict[str, torch.Tensor] = {}
    origs: dict[str, torch.Tensor] = {}
    for name, module in work.named_modules():
        masked = [key[: -len("_mask")] for key in module._buffers if key.endswith("_mask")]
        if not masked:
            continue
        if masked != ["weight"] or not isinstance(module, LAYERS):
            raise TopopruneError(
                f"remove_empty_channels handles masks on conv and linear weights only; "
                f"{name!r} has masks on {masked}"
            )
        masks[name] = module.weight_mask.detach().bool().clone()
        origs[name] = module.weight_orig.detach().clone()
        prune.remove(module, "weight")
    work.eval()
    zero_in = _zero_inputs(work, example_input)
    full_width = _full_width(work)
    grads = {name: p.requires_grad for name, p in work.named_parameters()}

    with warnings.catch_warnings(), torch.enable_grad():
        warnings.simplefilter("ignore")  # torch-pruning warns about layers it leaves alone
        for parameter in work.parameters():
            parameter.requires_grad_(True)
        graph = tp.DependencyGraph().build_dependency(work, example_inputs=example_input)
        groups: list[_Group] = []
        skipped: dict[str, str] = {}
        covered: set[int] = set()
        for name, module in work.named_modules():
            if not isinstance(module, LAYERS) or id(module) in covered:
                continue
            if module not in graph.module2node:
                skipped[name] = "not reached"
                continue
            channels = module.weight.shape[0]
            fn = handlers.out_fn(module)
            group = graph.get_pruning_group(module, fn, idxs=list(range(channels)))
            producers = [
                item.dep.target.module
                for item in group.items
                if item.dep.handler in handlers.out and isinstance(item.dep.target.module, LAYERS)
            ]
            covered.update(id(p) for p in producers)
            reasons = [handlers.unsupported(item) for item in group.items]
            if any(id(p) in full_width for p in producers):
                reasons.insert(0, "full width")
            if any(r is None for item in group.items for r in item.root_idxs):
                reasons.append("unsupported index mapping")
            reason = next((r for r in reasons if r is not None), None)
            if reason is not None:
                skipped.update({names[id(p)]: reason for p in producers})
                continue
            dead, zero, constant = _classify(group, module, names, masks, zero_in, handlers)
            groups.append(_Group(module, [names[id(p)] for p in producers], dead, zero, constant))

        widths = {
            name: module.weight.shape[0]
            for name, module in work.named_modules()
            if isinstance(module, LAYERS)
        }
        for group in groups:
            removed = sorted(group.dead + group.zero)
            if not removed:
                continue
            pruning = graph.get_pruning_group(group.root, handlers.out_fn(group.root), removed)
            cuts = []
            for item in pruning.items:
                name = names.get(id(item.dep.target.module))
                if name in masks and item.dep.handler in handlers.out | handlers.into:
                    cuts.append((name, 0 if item.dep.handler in handlers.out else 1, item.idxs))
            pruning.prune()
            for name, dim, idxs in cuts:
                masks[name] = _slice(masks[name], dim, idxs)
                origs[name] = _slice(origs[name], dim, idxs)
        for name, parameter in work.named_parameters():  # torch-pruning makes new parameters
            parameter.requires_grad_(grads[name])

    from topoprune.pruning.base import apply_masks

    apply_masks(work, masks)
    with torch.no_grad():
        for name, orig in origs.items():
            work.get_submodule(name).weight_orig.copy_(orig)
    with evaluating(model), evaluating(work), torch.no_grad():
        _check_equal(model(example_input), work(example_input))
    for name, module in work.named_modules():
        module.training = modes[name]

    rows = {
        name: LayerChannels(name, width, work.get_submodule(name).weight.shape[0])
        for name, width in widths.items()
    }
    for group in groups:
        for name in group.producers:
            rows[name].removed_dead += len(group.dead)
            rows[name].removed_zero += len(group.zero)
            rows[name].kept_constant += len(group.constant)
    after_counts = count(work, input_size, device=example_input.device)
    report = EmptyChannelReport(
        layers=list(rows.values()),
        params_before=before_counts.params,
        params_after=after_counts.params,
        macs_before=before_counts.macs,
        macs_after=after_counts.macs,
        skipped=skipped,
    )
    return work, report
