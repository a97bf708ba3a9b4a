"""realize(): replace every masked conv by whichever equivalent form runs fastest, by measuring.

Each masked conv (torch.nn.utils.prune convention) gets candidates that compute the same outputs:

- ``dense``: a plain conv with the mask folded into its weight (always available);
- ``grouped``: ``CompactConv2d`` gathering each group's inputs for one grouped conv;
- ``direct{OT}x{NV}``: ``CompactConv2d`` on the native kernel, one per register tile (float32 CPU,
  stride 1, when a C++ compiler is found; see ``topoprune.compact.kernel``);
- ``slices``: ``SliceSparseConv2d``, the compressed-slice kernel (per output channel, the list of
  kept input channels) for masks that keep whole kernel slices without block structure
  (small-world, EXP, random slices; see ``topoprune.compact.sparse_conv``).

Each masked ``nn.Linear`` gets ``dense`` (mask folded in) and ``sparse`` (``SparseLinear``, the
native kernel over the kept weights).

Each ``nn.MaxPool2d`` whose windows do not overlap is a layer too, with two candidates: ``dense``
(the pool as it is) and ``strided`` (``BlockMaxPool2d``, maxima of strided slices, the same values
and much faster on CPU).

Every candidate runs on the conv's real input (captured with a hook while ``example_input`` goes
through the model), its output is checked against ``dense``, and the candidates are timed in
interleaved rounds under ``torch.inference_mode`` (a candidate far behind after three rounds
stops being timed); the lowest median wins. The choices are kept in ``realized.realize_report``
(a ``RealizeReport``).

Example
-------
>>> import numpy as np, torch
>>> from torch.nn.utils import prune
>>> from topoprune.pruning.blocks import block_mask
>>> ring = np.roll(np.eye(8, dtype=int), 1, 1) + np.roll(np.eye(8, dtype=int), -1, 1)
>>> conv = torch.nn.Conv2d(16, 16, 3, padding=1)
>>> mask = block_mask(ring, 16, 16)[:, :, None, None].expand_as(conv.weight)
>>> model = torch.nn.Sequential(prune.custom_from_mask(conv, "weight", mask), torch.nn.ReLU())
>>> x = torch.randn(2, 16, 6, 6)
>>> fast = realize(model, x, repeats=2)
>>> [layer.name for layer in fast.realize_report.layers]
['0']
>>> torch.allclose(fast(x), model(x), atol=1e-5)
True
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.utils import prune

from topoprune.compact import kernel
from topoprune.compact.choice_cache import ChoiceCache, choice_key, default_path
from topoprune.compact.compact_conv import CompactConv2d
from topoprune.compact.fuse import fuse_for_inference
from topoprune.compact.masked import copy_model, folded_conv, is_compactable, is_masked_conv
from topoprune.compact.pool import BlockMaxPool2d
from topoprune.compact.remove_empty import remove_empty_channels
from topoprune.compact.sparse_conv import SliceSparseConv2d
from topoprune.compact.sparse_linear import SparseLinear, is_masked_linear
from topoprune.compact.structure import BlockStructure, find_block_structure, slice_support
from topoprune.errors import TopopruneError
from topoprune.measure.running import evaluating
from topoprune.measure.timing import medians, time_interleaved

KINDS = ("dense", "grouped", "direct", "slices", "linear", "pool")
"""The candidate kinds ``realize`` can be restricted to (``dense`` is always kept; ``slices``:
the compressed-slice kernel for irregular slice masks; ``linear``: the sparse kernel for masked
Linear layers; ``pool`` switches the max-pool candidates on)."""

DROP_FACTOR = 3.0
"""After 3 rounds, a candidate whose median is over this many times the best stops being timed."""


@dataclass
class LayerChoice:
    """What ``realize`` measured and chose for one masked conv or max pool.

    ``times_ms``: median milliseconds per candidate on the layer's captured input (a candidate
    dropped early for being far behind has fewer samples behind its median);
    ``rejected``: candidates dropped because their output differed from ``dense``;
    ``structure``: the mask's groups as ``"G x (out og, in ig)"``, ``"none"``, or
    ``"max pool KxK"``; ``cached``: the choice (and ``times_ms``) came from realize's cache.
    """

    name: str
    chosen: str
    input_shape: tuple[int, ...]
    structure: str
    times_ms: dict[str, float] = field(default_factory=dict)
    rejected: list[str] = field(default_factory=list)
    cached: bool = False

    @property
    def speedup(self) -> float:
        """Dense time over chosen time on this layer."""
        return self.times_ms["dense"] / self.times_ms[self.chosen]


@dataclass
class RealizeReport:
    """Per-layer choices of one ``realize`` call, with the settings it measured under."""

    layers: list[LayerChoice]
    threads: int
    repeats: int
    kernel_available: bool

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return asdict(self)

    def table(self) -> str:
        """A Markdown table: layer, input shape, structure, choice, dense and chosen ms."""
        lines = [
            "| layer | input | structure | chosen | dense ms | chosen ms | speed-up |",
            "|---|---|---|---|---:|---:|---:|",
        ]
        for layer in self.layers:
            shape = "x".join(str(size) for size in layer.input_shape)
            lines.append(
                f"| {layer.name} | {shape} | {layer.structure} | {layer.chosen} | "
                f"{layer.times_ms['dense']:.2f} | {layer.times_ms[layer.chosen]:.2f} | "
                f"{layer.speedup:.2f}x |"
            )
        return "\n".join(lines)


def _check_kinds(candidates: Iterable[str] | None) -> set[str]:
    if isinstance(candidates, str):
        candidates = (candidates,)
    kinds = set(KINDS if candidates is None else candidates)
    unknown = sorted(kinds - set(KINDS))
    if unknown:
        raise TopopruneError(
            f"unknown realize candidates {unknown}; choose from {', '.join(KINDS)}"
        )
    return kinds | {"dense"}


def _capture_inputs(
    model: nn.Module, names: list[str], example_input: torch.Tensor | tuple
) -> dict[str, torch.Tensor]:
    """The input each named module receives on its first call while ``example_input`` runs."""
    captured: dict[str, torch.Tensor] = {}

    def hook_for(name: str):
        def hook(module: nn.Module, args: tuple) -> None:
            captured.setdefault(name, args[0])

        return hook

    handles = [
        model.get_submodule(name).register_forward_pre_hook(hook_for(name)) for name in names
    ]
    args = example_input if isinstance(example_input, tuple) else (example_input,)
    try:
        with evaluating(model), torch.inference_mode():
            model(*args)
    finally:
        for handle in handles:
            handle.remove()
    return captured


def _structure(conv: nn.Conv2d) -> BlockStructure | None:
    return find_block_structure(conv.weight_mask) if is_compactable(conv) else None


def _whole_slices(conv: nn.Conv2d) -> bool:
    """Whether every (out, in) kernel slice of the conv's mask is kept whole or removed whole."""
    return is_compactable(conv) and slice_support(conv.weight_mask) is not None


def _candidates(
    conv: nn.Conv2d, structured: bool, x: torch.Tensor, kinds: set[str]
) -> dict[str, nn.Module]:
    options: dict[str, nn.Module] = {"dense": folded_conv(conv)}
    if "slices" in kinds and _whole_slices(conv):
        slices = SliceSparseConv2d.from_masked(conv)
        with torch.inference_mode():
            if slices.direct_supported(x):
                options["slices"] = slices
    if not structured or not kinds & {"grouped", "direct"}:
        return options
    compact = CompactConv2d.from_masked(conv)
    if "grouped" in kinds:
        options["grouped"] = compact
    if "direct" in kinds:
        for tile in kernel.TILES:
            direct = copy.deepcopy(compact)
            direct.impl, direct.tile = "direct", tile
            with torch.inference_mode():
                if direct.direct_supported(x):
                    options[f"direct{tile[0]}x{tile[1]}"] = direct
    return options


def _agrees(output: torch.Tensor, reference: torch.Tensor) -> bool:
    scale = float(reference.abs().max()) if reference.numel() else 0.0
    return output.shape == reference.shape and torch.allclose(
        output, reference, rtol=1e-4, atol=1e-5 * max(1.0, scale)
    )


def _conv_options(conv: nn.Conv2d, x: torch.Tensor, kinds: set[str]) -> tuple[dict, str]:
    """The candidate forms of a masked conv, and its structure as ``"G x (out og, in ig)"``."""
    structure = _structure(conv)
    described = (
        "none"
        if structure is None
        else f"{structure.groups} x (out {structure.group_out}, in {structure.group_in})"
    )
    return _candidates(conv, structure is not None, x, kinds), described


def _linear_options(linear: nn.Linear, x: torch.Tensor, kinds: set[str]) -> tuple[dict, str]:
    """A masked Linear with its mask folded in (``dense``) and as ``SparseLinear`` (``sparse``:
    the native kernel over the kept weights only, where it runs)."""
    options: dict[str, nn.Module] = {"dense": folded_conv(linear)}
    sparse = SparseLinear.from_masked(linear)
    with torch.inference_mode():
        if "linear" in kinds and sparse.native_supported(x):
            options["sparse"] = sparse
    kept = int(sparse.col.numel())
    return options, f"linear, {kept}/{linear.weight.numel()} kept"


def _pool_options(pool: nn.Module, strided: BlockMaxPool2d) -> tuple[dict, str]:
    """A max pool as it is (``dense``) and as strided maxima (``strided``)."""
    kh, kw = strided.kernel_size
    return {"dense": pool, "strided": strided}, f"max pool {kh}x{kw}"


def _choose(
    name: str,
    module: nn.Module,
    options: dict[str, nn.Module],
    described: str,
    x: torch.Tensor,
    timing: tuple[int, int],
    cache: ChoiceCache | None = None,
) -> tuple[nn.Module, LayerChoice]:
    """Check every option against ``dense`` on ``x``, time the ones that agree (or take the
    choice ``cache`` holds for this layer and input shape), keep the fastest."""
    repeats, warmup = timing
    with torch.inference_mode():
        for option in options.values():
            option.eval()
        reference = options["dense"](x)
        rejected = [key for key, option in options.items() if not _agrees(option(x), reference)]
        for key in rejected:
            del options[key]
        key = choice_key(f"{options['dense']!r} {described}", x.shape, options)
        cached = cache.get(key) if cache is not None else None
        if cached is not None and cached[0] in options:
            chosen, times = cached
        else:
            samples = time_interleaved(
                {key: (lambda option=option: option(x)) for key, option in options.items()},
                repeats=repeats,
                warmup=warmup,
                drop_factor=DROP_FACTOR,
                synchronize=torch.cuda.synchronize if x.is_cuda else None,
            )
            times = medians(samples)
            chosen = min(times, key=times.__getitem__)
            if cache is not None:
                cache.put(key, chosen, times)
    choice = LayerChoice(
        name, chosen, tuple(x.shape), described, times, rejected, cached=cached is not None
    )
    return options[chosen].train(module.training), choice


def _keep_hooks(module: nn.Module, replacement: nn.Module) -> None:
    """Give ``replacement`` the forward hooks ``module`` had (skip projections read and write
    through them), the pruning hook aside: it belongs to the mask that was folded in."""
    replacement._forward_pre_hooks.clear()
    replacement._forward_hooks.clear()
    for key, hook in module._forward_pre_hooks.items():
        if not isinstance(hook, prune.BasePruningMethod):
            replacement._forward_pre_hooks[key] = hook
    replacement._forward_hooks.update(module._forward_hooks)


def realize(
    model: nn.Module,
    example_input: torch.Tensor | tuple,
    *,
    repeats: int = 7,
    warmup: int = 2,
    candidates: Iterable[str] | None = None,
    remove_empty: bool = False,
    trainable: bool = False,
    cache: bool | str | Path = False,
) -> nn.Module:
    """A copy of ``model`` with every masked conv (and non-overlapping max pool) replaced by its
    fastest equivalent form.

    ``example_input``: a batch (or a tuple of forward arguments) like the ones the model will
    serve; each masked conv is timed on the input it receives from it, ``repeats`` interleaved
    samples per candidate after ``warmup`` calls, at the current ``torch.get_num_threads()``.
    ``candidates``: a subset of ``KINDS`` to consider (default all; ``dense`` always stays).
    ``cache``: ``True`` (the file :func:`topoprune.compact.choice_cache.default_path`) or a path
    keeps each layer's choice keyed by the layer, its input shape (batch size included), the
    candidates, the thread count, torch and the CPU, so that realizing the same layers again
    (another seed, another run, batch 1 after batch 64) times only what is new.
    The input model is not modified. The copy computes the same outputs as ``model.eval()`` to
    float tolerance and carries the choices in ``realize_report``.

    By default the copy is fused for inference (:func:`topoprune.compact.fuse.fuse_for_inference`):
    every BatchNorm is folded into the conv before it and residual adds and ReLUs run in the
    conv's output pass; it is an ``InferenceModel`` whose ``train()`` refuses. With
    ``trainable=True`` nothing is fused: the copy keeps the model's class, BatchNorms and mode,
    and backpropagates like the masked model, but while compact layers keep their structure
    through training (the native kernel hands over to autograd-friendly torch ops), layers
    realized ``dense`` are plain convs whose masked-out weights would train too. Train the masked
    model, then realize it. Masked convs that ``example_input`` never reaches are left as they
    are (fusion folds their masks in).

    ``remove_empty``: first make the copy physically narrower with
    :func:`topoprune.compact.remove_empty.remove_empty_channels` (channels no consumer reads, or
    whose value is exactly 0 in eval mode, go; the remaining masks are sliced alike), then
    realize that narrower masked model as above. Its report is kept in
    ``realized.empty_channel_report`` (None without ``remove_empty``). ``example_input`` must
    then be one tensor.
    """
    if repeats < 1 or warmup < 0:
        raise TopopruneError(f"realize needs repeats >= 1 and warmup >= 0; got {repeats}, {warmup}")
    kinds = _check_kinds(candidates)
    empty_report = None
    if remove_empty:
        if not isinstance(example_input, torch.Tensor):
            raise TopopruneError("realize(remove_empty=True) needs example_input as one tensor")
        realized, empty_report = remove_empty_channels(model, example_input)
    else:
        realized = copy_model(model)
    pools = {
        name: strided
        for name, module in realized.named_modules()
        if "pool" in kinds and (strided := BlockMaxPool2d.from_pool(module)) is not None
    }
    names = [
        name
        for name, module in realized.named_modules()
        if is_masked_conv(module) or is_masked_linear(module) or name in pools
    ]
    inputs = _capture_inputs(realized, names, example_input)
    choices = None if cache is False else ChoiceCache(default_path() if cache is True else cache)
    layers = []
    for name in names:
        if name not in inputs:
            continue
        module = realized.get_submodule(name)
        if name in pools:
            options, described = _pool_options(module, pools[name])
        elif is_masked_linear(module):
            options, described = _linear_options(module, inputs[name], kinds)
        else:
            options, described = _conv_options(module, inputs[name], kinds)
        replacement, choice = _choose(
            name, module, options, described, inputs[name], (repeats, warmup), choices
        )
        _keep_hooks(module, replacement)
        parent_name, _, child_name = name.rpartition(".")
        setattr(realized.get_submodule(parent_name), child_name, replacement)
        layers.append(choice)
    if choices is not None:
        choices.save()
    if not trainable:
        realized = fuse_for_inference(realized)
    realized.realize_report = RealizeReport(
        layers, torch.get_num_threads(), repeats, kernel.kernel_available()
    )
    realized.empty_channel_report = empty_report
    return realized
