"""Irregular slice sparsity on single layers: dense vs CompactConv2d vs SliceSparseConv2d, and
dense vs SparseLinear, timed in one interleaved run on this machine's CPU.

Convs: 3x3, padding 1, 256 channels at 8x8, 128 at 16x16 and 64 at 32x32, each with 90% of the
(out, in) kernel slices removed at random (every output channel keeps its own random subset of
input channels), at batch 64 and batch 1. Candidates: the dense ``nn.Conv2d`` (mask folded in),
``CompactConv2d`` on the native direct kernel with its best register tile (picked beforehand in
a short interleaved run of all tiles), ``CompactConv2d`` grouped (torch), and
``SliceSparseConv2d``. Block-structured masks (RGP: the channels split into contiguous blocks,
one per node of a random 4-regular graph, ``topoprune.graphs.generate.random_regular``; output
block i reads the input blocks of its 4 neighbours, ``topoprune.pruning.blocks.block_mask``):
ResNet-56's layers with 16 nodes (16 channels at 32x32, 32 at 16x16, 64 at 8x8; 1/4 of the
slices kept) at batch 64, VGG-16's with 64 nodes (64 channels at 32x32 to 512 at 4x4 and 2x2;
1/16 kept) at batch 1: the dense conv, ``CompactConv2d`` direct with its best tile, and
``SliceSparseConv2d``. Linears (LeNet-5's fully connected shapes, 97% of the weights removed at
random): the dense ``nn.Linear``, ``SparseLinear``, and for reference ``torch.sparse.mm`` with a
CSR weight. Every candidate's output is checked against the dense one first; then, layer after
layer, its candidates are timed round-robin (``topoprune.measure.timing.time_interleaved``, as
``realize`` does) under ``torch.inference_mode``, so load from other processes hits them alike,
and the medians are printed with the speed-ups over dense. A candidate more than
``DROP_FACTOR`` times slower than the best after three rounds stops being timed; its median
is of the rounds it ran.

    python benchmarks/irregular_layers.py                 # 2 threads, 15 rounds per layer
    python benchmarks/irregular_layers.py --threads 1 --repeats 30
    python benchmarks/irregular_layers.py --only block    # the block-structured masks alone
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import warnings
from collections.abc import Callable

import torch
from torch import nn
from torch.nn.utils import prune

from topoprune.compact import kernel, slice_kernel
from topoprune.compact.compact_conv import CompactConv2d
from topoprune.compact.masked import folded_conv
from topoprune.compact.sparse_conv import SliceSparseConv2d
from topoprune.compact.sparse_linear import SparseLinear
from topoprune.graphs.generate import random_regular
from topoprune.measure.timing import medians, time_interleaved
from topoprune.pruning.blocks import block_mask

CONVS = ((256, 8), (128, 16), (64, 32))  # (channels, height = width)
LINEARS = ((800, 500), (500, 10))
BATCHES = (64, 1)
SLICES_REMOVED = 0.9
WEIGHTS_REMOVED = 0.97
BLOCK_CONVS = (
    # (model, graph nodes, channels, height = width, batch)
    ("ResNet-56", 16, 16, 32, 64),
    ("ResNet-56", 16, 32, 16, 64),
    ("ResNet-56", 16, 64, 8, 64),
    ("VGG-16", 64, 64, 32, 1),
    ("VGG-16", 64, 128, 16, 1),
    ("VGG-16", 64, 256, 8, 1),
    ("VGG-16", 64, 512, 4, 1),
    ("VGG-16", 64, 512, 2, 1),
)
BLOCK_DEGREE = 4
SECTIONS = ("random", "block", "linear")
DROP_FACTOR = 4.0
"""From round 3, a candidate over this many times the best median stops being timed (the
grouped form, mostly): it cannot win, and its long calls would leave the caches cold for the
candidate after it."""


def random_slice_conv(channels: int, seed: int) -> nn.Conv2d:
    """A 3x3 conv with exactly ``SLICES_REMOVED`` of its (out, in) slices masked, at random."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    conv = nn.Conv2d(channels, channels, 3, padding=1)
    kept = round((1 - SLICES_REMOVED) * channels * channels)
    support = torch.zeros(channels * channels)
    support[torch.randperm(channels * channels, generator=generator)[:kept]] = 1.0
    mask = support.view(channels, channels, 1, 1).expand_as(conv.weight)
    return prune.custom_from_mask(conv, "weight", mask.contiguous())


def block_conv(nodes: int, channels: int, seed: int) -> nn.Conv2d:
    """A 3x3 conv masked by RGP blocks: a random ``BLOCK_DEGREE``-regular graph on ``nodes``
    nodes, output block i reading the input blocks of its neighbours (whole kernel slices)."""
    torch.manual_seed(seed)
    conv = nn.Conv2d(channels, channels, 3, padding=1)
    support = block_mask(random_regular(nodes, BLOCK_DEGREE, seed=seed), channels, channels)
    mask = support[:, :, None, None].expand_as(conv.weight)
    return prune.custom_from_mask(conv, "weight", mask.contiguous())


def best_direct_tile(compact: CompactConv2d, x: torch.Tensor) -> tuple[CompactConv2d, str]:
    """``compact`` on the direct kernel with the tile that ran fastest on ``x`` (short run)."""
    options = {}
    for tile in kernel.TILES:
        direct = copy.deepcopy(compact)
        direct.impl, direct.tile = "direct", tile
        if direct.direct_supported(x):
            options[f"{tile[0]}x{tile[1]}"] = direct
    samples = time_interleaved(
        {name: (lambda layer=layer: layer(x)) for name, layer in options.items()},
        repeats=5,
        warmup=1,
        drop_factor=2.0,
    )
    times = medians(samples)
    best = min(times, key=times.__getitem__)
    return options[best], best


def conv_candidates(
    channels: int, size: int, batch: int, seed: int, nodes: int | None = None
) -> tuple[dict, dict]:
    """The candidates of one conv layer (name -> call) and notes (tile, kept slices): random
    slices removed, or with ``nodes`` an RGP block mask (then no grouped candidate: its torch
    form is far behind the direct kernel)."""
    if nodes is None:
        masked = random_slice_conv(channels, seed)
    else:
        masked = block_conv(nodes, channels, seed)
    x = torch.randn(batch, channels, size, size, generator=torch.Generator().manual_seed(seed))
    dense = folded_conv(masked)
    grouped = CompactConv2d.from_masked(masked)
    sparse = SliceSparseConv2d.from_masked(masked)
    layers: dict[str, nn.Module] = {"dense": dense, "slice": sparse}
    if nodes is None:
        layers["grouped"] = grouped
    notes = {"kept": f"{sparse.col.numel()}/{channels * channels}", "tile": "-"}
    if kernel.kernel_available():
        layers["direct"], notes["tile"] = best_direct_tile(grouped, x)
    calls = {name: (lambda layer=layer: layer(x)) for name, layer in layers.items()}
    reference = calls["dense"]()
    for name, call in calls.items():
        if not torch.allclose(call(), reference, rtol=1e-4, atol=1e-4):
            raise RuntimeError(
                f"{name} disagrees with the dense conv on {channels}ch {size}x{size}"
            )
    return calls, notes


def linear_candidates(inputs: int, outputs: int, batch: int, seed: int) -> tuple[dict, dict]:
    """The candidates of one linear layer (name -> call) and notes (kept weights)."""
    torch.manual_seed(seed)
    masked = prune.random_unstructured(nn.Linear(inputs, outputs), "weight", WEIGHTS_REMOVED)
    dense = nn.Linear(inputs, outputs)
    with torch.no_grad():
        dense.weight.copy_(masked.weight)
        dense.bias.copy_(masked.bias)
    sparse = SparseLinear.from_masked(masked)
    with warnings.catch_warnings():  # "sparse CSR support is in beta"
        warnings.simplefilter("ignore", UserWarning)
        csr = dense.weight.detach().to_sparse_csr()
    bias = dense.bias.detach()
    x = torch.randn(batch, inputs, generator=torch.Generator().manual_seed(seed))
    calls: dict[str, Callable[[], torch.Tensor]] = {
        "dense": lambda: dense(x),
        "sparse": lambda: sparse(x),
        "torch csr": lambda: torch.sparse.mm(csr, x.t()).t() + bias,
    }
    reference = calls["dense"]()
    for name, call in calls.items():
        if not torch.allclose(call(), reference, rtol=1e-4, atol=1e-5):
            raise RuntimeError(f"{name} disagrees with the dense linear {inputs}->{outputs}")
    return calls, {"kept": f"{sparse.col.numel()}/{inputs * outputs}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=15, help="timed rounds per candidate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--only", choices=SECTIONS, action="append", help="run this section (repeatable)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sections = set(args.only or SECTIONS)

    times: dict[str, float] = {}
    rows = []  # (kind, label, batch, key prefix, notes)
    with torch.inference_mode():
        layers: list[tuple[str, tuple, int]] = []
        if "random" in sections:
            layers += [("conv", shape, batch) for shape in CONVS for batch in BATCHES]
        if "block" in sections:
            layers += [("block", spec[1:4], spec[4]) for spec in BLOCK_CONVS]
        if "linear" in sections:
            layers += [("linear", shape, batch) for shape in LINEARS for batch in BATCHES]
        for kind, shape, batch in layers:
            if kind == "conv":
                first, second = shape
                calls, notes = conv_candidates(first, second, batch, args.seed)
                label = f"{first}ch {second}x{second}"
            elif kind == "block":
                nodes, first, second = shape
                calls, notes = conv_candidates(first, second, batch, args.seed, nodes=nodes)
                label = f"{first}ch {second}x{second} RGP {nodes}_{BLOCK_DEGREE}"
            else:
                first, second = shape
                calls, notes = linear_candidates(first, second, batch, args.seed)
                label = f"{first}->{second}"
            prefix = f"{kind} {label} b{batch}"
            samples = time_interleaved(
                calls, repeats=args.repeats, warmup=2, drop_factor=DROP_FACTOR
            )
            times.update({f"{prefix}/{name}": ms for name, ms in medians(samples).items()})
            rows.append((kind, label, batch, prefix, notes))

    print(
        f"Irregular sparsity, {args.repeats} interleaved rounds per layer: torch "
        f"{torch.__version__}, {torch.get_num_threads()} threads, native kernels "
        f"{'on' if slice_kernel.slice_kernel_available() else 'off'}, load average "
        f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
    )
    if "random" in sections:
        print_random_convs(rows, times)
    if "block" in sections:
        print_block_convs(rows, times)
    if "linear" in sections:
        print_linears(rows, times)


def print_random_convs(rows: list, times: dict[str, float]) -> None:
    print()
    print(f"3x3 convs, padding 1, {SLICES_REMOVED:.0%} of kernel slices removed at random; ms")
    print()
    print(
        "| layer | batch | kept slices | dense | direct (tile) | grouped | slice | "
        "slice vs dense | slice vs best compact |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for kind, label, batch, prefix, notes in rows:
        if kind != "conv":
            continue
        t = {
            name: times.get(f"{prefix}/{name}", math.nan)  # no direct without a compiler
            for name in ("dense", "grouped", "slice", "direct")
        }
        compact = min(t["grouped"], t["direct"]) if kernel.kernel_available() else t["grouped"]
        print(
            f"| {label} | {batch} | {notes['kept']} | {t['dense']:.3f} | "
            f"{t['direct']:.3f} ({notes['tile']}) | {t['grouped']:.3f} | {t['slice']:.3f} | "
            f"{t['dense'] / t['slice']:.2f}x | {compact / t['slice']:.2f}x |"
        )


def print_block_convs(rows: list, times: dict[str, float]) -> None:
    print()
    print(
        f"3x3 convs, padding 1, RGP block masks (random {BLOCK_DEGREE}-regular graph, whole "
        "kernel slices); ms"
    )
    print()
    print(
        "| layer | batch | kept slices | dense | direct (tile) | slice | slice vs dense | "
        "slice vs direct |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for kind, label, batch, prefix, notes in rows:
        if kind != "block":
            continue
        t = {name: times.get(f"{prefix}/{name}", math.nan) for name in ("dense", "slice", "direct")}
        print(
            f"| {label} | {batch} | {notes['kept']} | {t['dense']:.3f} | "
            f"{t['direct']:.3f} ({notes['tile']}) | {t['slice']:.3f} | "
            f"{t['dense'] / t['slice']:.2f}x | {t['direct'] / t['slice']:.2f}x |"
        )


def print_linears(rows: list, times: dict[str, float]) -> None:
    print()
    print(f"Linears, {WEIGHTS_REMOVED:.0%} of weights removed at random; ms")
    print()
    print("| layer | batch | kept | dense | SparseLinear | torch csr | SparseLinear vs dense |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for kind, label, batch, prefix, notes in rows:
        if kind != "linear":
            continue
        t = {name: times[f"{prefix}/{name}"] for name in ("dense", "sparse", "torch csr")}
        print(
            f"| {label} | {batch} | {notes['kept']} | {t['dense']:.4f} | {t['sparse']:.4f} | "
            f"{t['torch csr']:.4f} | {t['dense'] / t['sparse']:.2f}x |"
        )


if __name__ == "__main__":
    main()
