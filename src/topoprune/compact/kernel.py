"""The native direct-convolution kernel: compiled on first use, loaded with ctypes, optional.

``block_conv.cpp`` (next to this file) is plain C++ with no Python or torch headers, built by
:mod:`topoprune.native` (a few seconds, once per machine). Without a compiler, or if
compilation fails, ``load_kernel()`` returns ``None`` (with one warning) and callers use the
pure-torch path. ``TOPOPRUNE_NO_NATIVE=1`` turns the kernel off.

>>> from topoprune.compact.kernel import load_kernel
>>> kernel = load_kernel()  # None when no compiler is available
"""

from __future__ import annotations

import ctypes
import functools
import math
from pathlib import Path

import torch

from topoprune import native

SOURCE = Path(__file__).with_name("block_conv.cpp")
FLAGS = (*native.BASE_FLAGS, "-pthread")
SYMBOL = "topoprune_block_conv2d"
TILES = ((1, 1), (1, 2), (1, 4), (2, 1), (2, 2), (4, 1), (4, 2), (8, 1))
"""(output channels, 16-float vectors) register tiles the kernel is compiled for."""

_I64 = ctypes.c_int64
_PTR = ctypes.c_void_p
_ARGTYPES = (
    [_PTR, _I64, _I64, _I64, _I64]  # x, batch, channels, height, width
    + [_PTR, _I64, _I64, _I64, _I64, _I64]  # w, groups, group_out, group_in, kernel_h, kernel_w
    + [_PTR, _PTR, _PTR, _PTR]  # in_idx, out_idx, bias, residual
    + [ctypes.c_float, ctypes.c_float, _PTR, _I64]  # lo, hi, out, out_channels
    + [_I64, _I64, _I64, _I64]  # pad_h, pad_w, dil_h, dil_w
    + [ctypes.c_int, ctypes.c_int, ctypes.c_int]  # ot, nv, threads
)


@functools.cache
def load_kernel() -> ctypes.CDLL | None:
    """The compiled kernel library, building it on first use; ``None`` where that is impossible."""
    return native.load_library(
        SOURCE,
        FLAGS,
        (SYMBOL, _ARGTYPES),
        "kernel",
        "realize() chooses among the pure-torch forms",
    )


def kernel_available() -> bool:
    """Whether the native kernel compiled and loaded on this machine."""
    return load_kernel() is not None


def block_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    in_index: torch.Tensor,
    out_index: torch.Tensor,
    bias: torch.Tensor | None,
    out_channels: int,
    padding: tuple[int, int],
    dilation: tuple[int, int],
    tile: tuple[int, int],
    residual: torch.Tensor | None = None,
    clamp: tuple[float, float] = (-math.inf, math.inf),
) -> torch.Tensor:
    """Stride-1 group-gathered convolution with the native kernel (float32, CPU).

    ``x`` (B, C, H, W); ``weight`` (G, og, ig, kh, kw); ``in_index`` (G, ig) and ``out_index``
    (G, og) int64 channel numbers with -1 for padding slots; ``bias`` (out_channels,) or None;
    ``residual`` (B, out_channels, Ho, Wo) or None. Returns (B, out_channels, Ho, Wo) with
    ``out[:, out_index[g, o]] = clamp(bias + residual[:, out_index[g, o]]
    + sum_s conv2d(x[:, in_index[g, s]], weight[g, o, s]), *clamp)``: the epilogue of a folded
    BatchNorm, a residual add and a ReLU (``clamp=(0, inf)``) in the pass that writes the output.
    Every output channel must appear in ``out_index`` exactly once. ``tile`` is one of ``TILES``
    with its first number dividing og. Raises RuntimeError when the kernel is not available.
    """
    library = load_kernel()
    if library is None:
        raise RuntimeError("the native kernel is not available; check kernel_available() first")
    x, weight = x.contiguous(), weight.contiguous()
    in_index, out_index = in_index.contiguous(), out_index.contiguous()
    bias = bias.contiguous() if bias is not None else None
    batch, channels, height, width = x.shape
    groups, group_out, group_in, kernel_h, kernel_w = weight.shape
    out_h = height + 2 * padding[0] - dilation[0] * (kernel_h - 1)
    out_w = width + 2 * padding[1] - dilation[1] * (kernel_w - 1)
    if out_h < 1 or out_w < 1:
        raise RuntimeError(f"input {height}x{width} is smaller than the dilated kernel")
    out = torch.empty(batch, out_channels, out_h, out_w, dtype=x.dtype, device=x.device)
    if residual is not None:
        if residual.shape != out.shape or residual.dtype != x.dtype:
            raise RuntimeError(
                f"residual {tuple(residual.shape)} does not match {tuple(out.shape)}"
            )
        residual = residual.contiguous()
    bias_ptr = bias.data_ptr() if bias is not None else None
    residual_ptr = residual.data_ptr() if residual is not None else None
    status = getattr(library, SYMBOL)(
        x.data_ptr(), batch, channels, height, width,
        weight.data_ptr(), groups, group_out, group_in, kernel_h, kernel_w,
        in_index.data_ptr(), out_index.data_ptr(), bias_ptr, residual_ptr,
        clamp[0], clamp[1], out.data_ptr(), out_channels,
        padding[0], padding[1], dilation[0], dilation[1],
        tile[0], tile[1], torch.get_num_threads(),
    )  # fmt: skip
    if status != 0:
        raise RuntimeError(f"native block_conv2d failed with status {status} (tile {tile})")
    return out
