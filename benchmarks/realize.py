"""Dense vs masked vs realized CIFAR VGG-16 on this machine's CPU, in one run.

``topoprune.pruning.prune(..., "rgp")`` masks every conv but the first with one n-node k-regular
graph (default n=64, k=4: 93.75% of those connections removed); ``topoprune.compact.realize``
then picks, per masked conv, the fastest of dense / grouped / native direct kernel, and per max
pool the faster of ``nn.MaxPool2d`` and strided maxima. Since the pools speed up a dense model
too, "dense, pools realized" (the dense model with the same pool choice) is timed as well: the
speed-up over it is what the sparse convs alone bring. The models are timed in interleaved
rounds (median of ``--repeats``), so load from other processes hits them alike.

    python benchmarks/realize.py                 # batch 64, n=64, k=4, torch's default threads
    python benchmarks/realize.py --threads 1 --degree 8
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from torch import nn

from topoprune.compact import kernel_available, realize
from topoprune.compact.masked import copy_model
from topoprune.measure.timing import medians, time_interleaved
from topoprune.graphs.generate import random_regular
from topoprune.models import create_model
from topoprune.pruning import prune


def calibrate_batch_norm(model: nn.Module, x: torch.Tensor) -> nn.Module:
    """Set every batch norm's running statistics to batch ``x``'s; return ``model`` in eval mode.

    Fresh running statistics (mean 0, variance 1) let activations fade through 12 sparse layers
    until the output no longer depends on the input; calibrated ones keep them at unit scale,
    as training would, so the realized-vs-masked output check means something.
    """
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # cumulative average: one batch sets the statistics
    model.train()
    with torch.no_grad():
        model(x)
    return model.eval()


def macs(model: nn.Module, x: torch.Tensor) -> tuple[float, float]:
    """(dense, mask-aware) multiply-accumulates per batch of convs and linears, from shapes.

    A conv costs C_out * C_in/groups * kh * kw * H_out * W_out per image; a masked one keeps the
    share of its (out, in) kernel slices left unmasked (k/n for an RGP block mask).
    """
    totals = [0.0, 0.0]

    def count(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        if isinstance(module, nn.Conv2d):
            per_pixel = module.out_channels * module.in_channels // module.groups
            full = per_pixel * module.kernel_size[0] * module.kernel_size[1] * output[0, 0].numel()
            mask = getattr(module, "weight_mask", None)
            kept = 1.0 if mask is None else float(mask.count_nonzero()) / mask.numel()
        else:
            full, kept = module.in_features * module.out_features, 1.0
        totals[0] += full * x.shape[0]
        totals[1] += full * kept * x.shape[0]

    layers = [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    handles = [layer.register_forward_hook(count) for layer in layers]
    with torch.inference_mode():
        model(x)
    for handle in handles:
        handle.remove()
    return totals[0], totals[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--nodes", type=int, default=64)
    parser.add_argument("--degree", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=15, help="timed rounds per model")
    parser.add_argument("--tune-repeats", type=int, default=7, help="realize's rounds per layer")
    parser.add_argument("--threads", type=int, default=None, help="default: torch's own")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    x = torch.randn(args.batch, 3, 32, 32, generator=torch.Generator().manual_seed(args.seed))
    dense = create_model("vgg16", num_classes=10, seed=args.seed)
    masked = copy_model(dense)
    graph = random_regular(args.nodes, args.degree, seed=args.seed)  # speed: any k-regular graph
    prune(masked, "rgp", sparsity=1 - args.degree / args.nodes, graph=graph, seed=args.seed)
    dense, masked = calibrate_batch_norm(dense, x), calibrate_batch_norm(masked, x)

    start = time.perf_counter()
    realized = realize(masked, x, repeats=args.tune_repeats)
    tune_s = time.perf_counter() - start
    # The fair baseline for the sparse convs: the dense model with the same fast pools.
    dense_pools = realize(dense, x, repeats=args.tune_repeats, candidates=("dense", "pool"))
    with torch.inference_mode():
        reference = masked(x)
        error = float((realized(x) - reference).abs().max() / reference.abs().max())
        samples = time_interleaved(
            {
                "dense": lambda: dense(x),
                "dense, pools realized": lambda: dense_pools(x),
                "masked": lambda: masked(x),
                "realized": lambda: realized(x),
            },
            repeats=args.repeats,
            warmup=2,
        )
    times = medians(samples)
    dense_macs, masked_macs = macs(masked, x)

    print(
        f"VGG-16 (CIFAR, 3x32x32), batch {args.batch}, RGP n={args.nodes} k={args.degree} "
        f"({1 - args.degree / args.nodes:.2%} of masked-conv connections removed), "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"native kernel {'on' if kernel_available() else 'off'}, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print(f"realize() took {tune_s:.1f} s; max |realized - masked| / max |masked| = {error:.1e}")
    print()
    print("| model | median ms | p10-p90 ms | speed-up vs dense | MACs (G) |")
    print("|---|---:|---:|---:|---:|")
    model_macs = {
        "dense": dense_macs,
        "dense, pools realized": dense_macs,
        "masked": dense_macs,
        "realized": masked_macs,
    }
    for name, values in samples.items():
        low, high = np.percentile(values, [10, 90])
        print(
            f"| {name} | {times[name]:.1f} | {low:.1f}-{high:.1f} | "
            f"{times['dense'] / times[name]:.2f}x | {model_macs[name] / 1e9:.3f} |"
        )
    print()
    print(
        f"MACs dense {dense_macs / 1e9:.3f} G vs masked {masked_macs / 1e9:.3f} G per batch: "
        f"{dense_macs / masked_macs:.2f}x fewer (the masked model still runs the dense "
        f"{dense_macs / 1e9:.3f} G); realized speed-up vs dense "
        f"{times['dense'] / times['realized']:.2f}x, vs dense with the same pools "
        f"{times['dense, pools realized'] / times['realized']:.2f}x"
    )
    print()
    print("Per-layer choices (medians on each layer's real input):")
    print(realized.realize_report.table())


if __name__ == "__main__":
    main()
