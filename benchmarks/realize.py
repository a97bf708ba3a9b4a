"""Whole-network speed of RGP masks: dense, masked, realized, channel-pruned and ONNX Runtime.

For each model (RGP graph n_k: a random k-regular graph on n nodes masks every conv but the first,
k/n of their kernel slices kept) and each batch size, one interleaved timing run (median of
``--repeats`` rounds, so that load from other processes hits every form alike) of:

- ``dense (fused)``: the dense model fused for inference (BatchNorm folded into the convs, ReLU
  and residual adds in their output pass): the fair baseline;
- ``masked``: the masked model as it trains (``torch.nn.utils.prune``: dense convs, masks applied);
- ``realized``: ``topoprune.compact.realize`` (fastest form per conv, then fused);
- ``channel-pruned``: the dense model with every width scaled by sqrt(k/n), about the realized
  model's MACs, fused: the speed a structured (channel) pruning of the same budget gets;
- ``realized, ONNX Runtime``: the realized model exported to ONNX and run by onnxruntime (with as
  many threads as torch), when onnx, onnxscript and onnxruntime are installed.

MACs are per image, as executed (a conv realized ``dense`` computes its masked-out weights);
weights are the bytes of every parameter and buffer.

    python benchmarks/realize.py                          # the four models, batch 64 and 1
    python benchmarks/realize.py --models vgg16 --batches 64 --threads 2 --layers
    python benchmarks/realize.py --device cuda            # on a GPU (no ONNX Runtime row)
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from topoprune import count
from topoprune.compact import kernel_available, realize
from topoprune.compact.fuse import fuse_for_inference
from topoprune.compact.masked import copy_model
from topoprune.graphs.generate import random_regular
from topoprune.measure.timing import medians, time_interleaved
from topoprune.models import create_model, default_widths
from topoprune.pruning import prune

SETTINGS = {  # model: (nodes n, degree k), the settings the issue tracks
    "vgg16": (64, 4),
    "cresnet18": (64, 4),
    "resnet56": (16, 4),
    "mobilenetv2": (16, 4),
}


def calibrate_batch_norm(model: nn.Module, x: torch.Tensor) -> nn.Module:
    """Set every batch norm's running statistics to batch ``x``'s; return ``model`` in eval mode.

    Fresh running statistics (mean 0, variance 1) let activations fade through many sparse
    layers until the output no longer depends on the input; calibrated ones keep them at unit
    scale, as training would, so the realized-vs-masked output check means something.
    """
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # cumulative average: one batch sets the statistics
    model.train()
    with torch.no_grad():
        model(x)
    return model.eval()


def weight_bytes(model: nn.Module) -> int:
    """Bytes of every parameter and buffer (index buffers included)."""
    tensors = [*model.parameters(), *model.buffers()]
    return sum(tensor.numel() * tensor.element_size() for tensor in tensors)


def onnx_runner(model: nn.Module, x: torch.Tensor, folder: Path):
    """A callable running ``model`` exported to ONNX in onnxruntime on ``x``; None when the
    export packages are missing."""
    try:
        import onnxruntime

        from topoprune.compact.export import export_onnx
    except ImportError:
        return None
    path = folder / "model.onnx"
    export_onnx(model, x, path)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    feed = {name: x.numpy()}
    return lambda: session.run(None, feed)


def build_forms(name: str, batch: int, device: str, seed: int, folder: Path) -> dict:
    """Each form of ``name`` for ``batch`` images: ``runners`` (form: a call to time),
    ``models`` (form: the model it runs), the realized model, realize's seconds, the realized
    model's largest difference from the masked one, and the MACs the masks keep."""
    nodes, degree = SETTINGS[name]
    generator = torch.Generator().manual_seed(seed)
    calibration = torch.randn(64, 3, 32, 32, generator=generator)
    x = calibration[:batch].contiguous()
    dense = calibrate_batch_norm(create_model(name, num_classes=10, seed=seed), calibration)
    masked = copy_model(dense)
    graph = random_regular(nodes, degree, seed=seed)  # speed: any k-regular graph
    prune(masked, "rgp", sparsity=1 - degree / nodes, graph=graph, seed=seed)
    scale = math.sqrt(degree / nodes)
    narrow_widths = [max(1, round(width * scale)) for width in default_widths(name)]
    channel = create_model(name, num_classes=10, widths=narrow_widths, seed=seed)
    channel = calibrate_batch_norm(channel, calibration)
    models = {"dense (fused)": dense, "masked": masked, "channel-pruned": channel}
    models = {form: model.to(device) for form, model in models.items()}
    x = x.to(device)
    started = time.perf_counter()
    realized = realize(models["masked"], x)
    realize_s = time.perf_counter() - started
    forms = {
        "dense (fused)": fuse_for_inference(models["dense (fused)"]),
        "masked": models["masked"],
        "realized": realized,
        "channel-pruned": fuse_for_inference(models["channel-pruned"]),
    }
    with torch.inference_mode():
        reference = masked(x)
        error = float((realized(x) - reference).abs().max() / reference.abs().max())
    runners = {form: (lambda m=model: m(x)) for form, model in forms.items()}
    if device == "cpu":
        ort = onnx_runner(realized, x, folder)
        if ort is not None:
            runners["realized, ONNX Runtime"] = ort
    return {
        "runners": runners,
        "models": forms,
        "realized": realized,
        "realize_s": realize_s,
        "error": error,
        "macs_kept": count(masked, (3, 32, 32)).macs,
    }


def report(name: str, batch: int, built: dict, repeats: int, device: str) -> None:
    synchronize = torch.cuda.synchronize if device == "cuda" else None
    with torch.inference_mode():
        samples = time_interleaved(
            built["runners"], repeats=repeats, warmup=3, synchronize=synchronize
        )
    times = medians(samples)
    nodes, degree = SETTINGS[name]
    dense_ms = times["dense (fused)"]
    print(
        f"\n### {name} {nodes}_{degree}, batch {batch} "
        f"(realize {built['realize_s']:.1f} s, max |realized - masked| / max |masked| = "
        f"{built['error']:.1e}; MACs the masks keep: {built['macs_kept'] / 1e6:.1f} M/image)\n"
    )
    print("| form | median ms | p10-p90 ms | vs dense (fused) | MACs (M/image) | weights (MB) |")
    print("|---|---:|---:|---:|---:|---:|")
    for form, values in samples.items():
        low, high = np.percentile(values, [10, 90])
        model = built["models"].get(form, built["models"]["realized"])
        counts = count(model, (3, 32, 32), device=device)
        macs = (counts.dense_macs if form == "masked" else counts.macs) / 1e6  # as executed
        print(
            f"| {form} | {times[form]:.2f} | {low:.2f}-{high:.2f} | {dense_ms / times[form]:.2f}x "
            f"| {macs:.1f} | {weight_bytes(model) / 2**20:.2f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(SETTINGS), help="comma-separated")
    parser.add_argument("--batches", default="64,1", help="comma-separated batch sizes")
    parser.add_argument("--repeats", type=int, default=15, help="timed rounds per table")
    parser.add_argument("--threads", type=int, default=None, help="default: torch's own")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--layers", action="store_true", help="print realize's per-layer table")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {args.device}, {torch.get_num_threads()} threads, "
        f"native kernel {'on' if kernel_available() else 'off'}, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    with tempfile.TemporaryDirectory() as folder:
        for name in args.models.split(","):
            for batch in (int(b) for b in args.batches.split(",")):
                built = build_forms(name, batch, args.device, args.seed, Path(folder))
                report(name, batch, built, args.repeats, args.device)
                if args.layers:
                    print("\nPer-layer choices (medians on each layer's real input):")
                    print(built["realized"].realize_report.table())


if __name__ == "__main__":
    main()
