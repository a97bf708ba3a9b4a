"""The native compressed-slice kernels: compiled on first use, loaded with ctypes, optional.

``slice_conv.cpp`` (next to this file) is plain C++ with no Python or torch headers, built by
:mod:`topoprune.native` (a few seconds, once per machine). :func:`slice_conv2d` convolves with a
conv weight stored as CSR over (out, in) kernel slices, for irregular masks where every output
channel keeps its own subset of input channels, with the epilogue ``clamp(conv + bias +
residual)`` in its output pass; :func:`sparse_linear` is the same for a linear layer whose
single weights are CSR. Without a compiler, or if compilation fails, ``load_slice_kernel()``
returns ``None`` (with one warning) and callers use their pure-torch paths.
``TOPOPRUNE_NO_NATIVE=1`` turns it off. Neither function checks that ``col`` stays below the
input width: the modules of :mod:`topoprune.compact.sparse_conv` and
:mod:`topoprune.compact.sparse_linear` build it so.

>>> from topoprune.compact.slice_kernel import load_slice_kernel
>>> library = load_slice_kernel()  # None when no compiler is available
"""

from __future__ import annotations

import ctypes
import functools
import math
from pathlib import Path

import torch

from topoprune import native

SOURCE = Path(__file__).with_name("slice_conv.cpp")
FLAGS = (*native.BASE_FLAGS, "-pthread")
SYMBOL = "topoprune_slice_conv2d"
LINEAR_SYMBOL = "topoprune_sparse_linear"
MODES = {
    "auto": 0, "planar": 1, "batched": 2, "batched_general": 3, "rows": 4, "tiny": 5, "flat": 6,
}  # fmt: skip
"""How the kernel fills its 16-float vectors (see ``slice_conv.cpp``):

- ``planar``: one image at a time, the padded plane flattened, one load per tap;
- ``batched``: 16 images per vector (3x3 kernels at dilation 1 get a form that loads each input
  row once for its three taps); ``batched_general``: the same, one load per tap, any kernel;
- ``rows``: one image at a time, 16 columns of an output row per vector, register tiles of
  output rows (3x3 kernels at dilation 1 only);
- ``tiny``: planes of at most 16 values (4x4, 2x2): a whole plane, of one or more images, per
  vector, every tap's view of it one permute;
- ``flat``: "same" convolutions (output plane = input plane) on planes of more than 16 values:
  the unpadded plane flattened, every tap's view of an output vector one permute;
- ``auto``: picks one by shape, batch and mask structure.

``rows``, ``tiny`` and ``flat`` (and ``batched`` with 3x3 kernels) compute the output channels
of a run (consecutive output channels that keep the same input channels, as block-structured
masks give) together, each input load or permute serving all of them."""

BATCHED_TILES = (
    (2, 8), (4, 4), (1, 8), (8, 2), (2, 6), (2, 4), (4, 2), (1, 4), (1, 1),
    (6, 4), (3, 8), (4, 6), (1, 16),
)  # fmt: skip
"""(output rows, output columns) register tiles of the ``batched`` forms (slice_conv.cpp's
``kBatchedTiles``; the last four have no 3x3 form and run the general one). ``planar`` takes
``(1, vectors)`` with 1 to 8 vectors."""

ROWS_TILES = ((16, 1), (8, 1), (4, 1), (8, 2), (4, 2), (4, 4), (2, 4), (2, 8))
"""(output rows, vectors of 16 columns) register tiles of the ``rows`` form (slice_conv.cpp's
``kRowsTiles``, for one output channel; runs of two or four channels take fewer rows)."""

_I64 = ctypes.c_int64
_PTR = ctypes.c_void_p
_INT = ctypes.c_int
_ARGTYPES = (
    [_PTR, _I64, _I64, _I64, _I64]  # x, batch, channels, height, width
    + [_PTR, _PTR, _PTR, _I64, _I64, _I64]  # w, row_ptr, col, out_channels, kernel_h, kernel_w
    + [_PTR, _PTR, ctypes.c_float, ctypes.c_float, _PTR]  # bias, residual, lo, hi, out
    + [_I64, _I64, _I64, _I64]  # pad_h, pad_w, dil_h, dil_w
    + [_INT, _INT, _INT, _INT]  # mode, tile_rows, tile_cols, threads
)
_LINEAR_ARGTYPES = (
    [_PTR, _I64, _I64]  # x, batch, in_features
    + [_PTR, _PTR, _PTR, _I64]  # w, row_ptr, col, out_features
    + [_PTR, ctypes.c_float, ctypes.c_float, _PTR, _INT]  # bias, lo, hi, out, threads
)


@functools.cache
def load_slice_kernel() -> ctypes.CDLL | None:
    """The compiled library, building it on first use; ``None`` where that is impossible.

    It holds both ``SYMBOL`` (the convolution) and ``LINEAR_SYMBOL`` (the sparse linear layer).
    """
    library = native.load_library(
        SOURCE,
        FLAGS,
        (SYMBOL, _ARGTYPES),
        "slice kernel",
        "SliceSparseConv2d and SparseLinear run their torch fallbacks",
    )
    if library is not None:
        linear = getattr(library, LINEAR_SYMBOL)
        linear.argtypes = _LINEAR_ARGTYPES
        linear.restype = ctypes.c_int
    return library


def slice_kernel_available() -> bool:
    """Whether the native slice kernel compiled and loaded on this machine."""
    return load_slice_kernel() is not None


def slice_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    row_ptr: torch.Tensor,
    col: torch.Tensor,
    bias: torch.Tensor | None,
    padding: tuple[int, int],
    dilation: tuple[int, int],
    *,
    residual: torch.Tensor | None = None,
    clamp: tuple[float, float] = (-math.inf, math.inf),
    mode: str = "auto",
    tile: tuple[int, int] = (0, 0),
) -> torch.Tensor:
    """Stride-1 convolution with CSR kernel slices and a fused epilogue (float32, CPU).

    ``x`` (B, C_in, H, W); ``weight`` (nnz, kh, kw); ``row_ptr`` (C_out + 1,) and ``col`` (nnz,)
    int64: output channel ``o`` reads input channels ``col[row_ptr[o]:row_ptr[o + 1]]`` with
    the matching weights (``col`` need not be sorted within a row); ``bias`` (C_out,) or None;
    ``residual`` (B, C_out, Ho, Wo) or None; ``clamp`` ``(lo, hi)``: ReLU is ``(0, inf)`` (as in
    ``topoprune.compact.epilogue``). Returns (B, C_out, Ho, Wo)::

        out = clamp(conv2d(x, dense_weight, bias, padding=padding, dilation=dilation) + residual)

    ``mode`` is one of ``MODES``; ``tile`` overrides the register tile (``(rows, cols)`` of
    output positions for ``batched``, ``(1, vectors)`` for ``planar``, ``(rows, vectors)`` for
    ``rows``, ignored by ``tiny`` and ``flat``; ``(0, 0)`` chooses). ``rows`` needs a 3x3 kernel
    at dilation 1, ``tiny`` input and output planes of at most 16 values, ``flat`` an output
    plane the size of the input plane, of more than 16 values.
    Raises RuntimeError when the kernel is not available or refuses the mode or tile.
    """
    library = load_slice_kernel()
    if library is None:
        raise RuntimeError("the native slice kernel is not available; check availability first")
    x, weight = x.contiguous(), weight.contiguous()
    row_ptr, col = row_ptr.contiguous(), col.contiguous()
    bias = bias.contiguous() if bias is not None else None
    batch, channels, height, width = x.shape
    kernel_h, kernel_w = weight.shape[1:]
    out_channels = row_ptr.numel() - 1
    out_h = height + 2 * padding[0] - dilation[0] * (kernel_h - 1)
    out_w = width + 2 * padding[1] - dilation[1] * (kernel_w - 1)
    if out_h < 1 or out_w < 1:
        raise RuntimeError(f"input {height}x{width} is smaller than the dilated kernel")
    shape = (batch, out_channels, out_h, out_w)
    if residual is not None:
        if tuple(residual.shape) != shape:
            raise RuntimeError(f"residual has shape {tuple(residual.shape)}, expected {shape}")
        residual = residual.to(x.dtype).contiguous()
    out = torch.empty(shape, dtype=x.dtype, device=x.device)
    status = getattr(library, SYMBOL)(
        x.data_ptr(), batch, channels, height, width,
        weight.data_ptr(), row_ptr.data_ptr(), col.data_ptr(), out_channels, kernel_h, kernel_w,
        None if bias is None else bias.data_ptr(),
        None if residual is None else residual.data_ptr(), clamp[0], clamp[1], out.data_ptr(),
        padding[0], padding[1], dilation[0], dilation[1],
        MODES[mode], tile[0], tile[1], torch.get_num_threads(),
    )  # fmt: skip
    if status != 0:
        raise RuntimeError(f"native slice_conv2d failed with status {status} ({mode}, {tile})")
    return out


def sparse_linear(
    x: torch.Tensor,
    weight: torch.Tensor,
    row_ptr: torch.Tensor,
    col: torch.Tensor,
    bias: torch.Tensor | None,
    clamp: tuple[float, float] = (-math.inf, math.inf),
) -> torch.Tensor:
    """A linear layer with CSR weights and a fused clamp, on the native kernel (float32, CPU).

    ``x`` (B, in_features); ``weight`` (nnz,) with ``row_ptr`` (out_features + 1,) and ``col``
    (nnz,) int64: output ``o`` sums ``weight[k] * x[:, col[k]]`` for ``k`` in
    ``row_ptr[o]:row_ptr[o + 1]``; ``bias`` (out_features,) or None. Returns (B, out_features)
    ``= clamp(x @ dense_weight.T + bias, *clamp)``. Raises RuntimeError when the kernel is not
    available.
    """
    library = load_slice_kernel()
    if library is None:
        raise RuntimeError("the native slice kernel is not available; check availability first")
    # (kept lean: on LeNet-sized layers this Python is most of the call's time)
    x = x.contiguous()
    batch, in_features = x.shape
    out = x.new_empty((batch, row_ptr.numel() - 1))
    status = getattr(library, LINEAR_SYMBOL)(
        x.data_ptr(), batch, in_features,
        weight.contiguous().data_ptr(), row_ptr.contiguous().data_ptr(),
        col.contiguous().data_ptr(), out.shape[1],
        None if bias is None else bias.contiguous().data_ptr(), clamp[0], clamp[1],
        out.data_ptr(), torch.get_num_threads(),
    )  # fmt: skip
    if status != 0:
        raise RuntimeError(f"native sparse_linear failed with status {status}")
    return out
