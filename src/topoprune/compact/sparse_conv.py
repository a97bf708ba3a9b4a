"""SliceSparseConv2d: a conv with irregular slice sparsity, its kept kernel slices stored as CSR.

A mask whose every kernel slice ``mask[o, i]`` is all ones or all zeros, but whose output channels
each keep their own subset of input channels (small-world, EXP or random-slice pruning), has no
useful group structure: ``CompactConv2d`` would pad every output channel to the longest row.
``SliceSparseConv2d.from_masked`` keeps exactly the kept slices instead: output channel ``o``
reads input channels ``col[row_ptr[o]:row_ptr[o + 1]]`` with the matching rows of ``weight``.

It runs on the native kernel of :mod:`topoprune.compact.slice_kernel` (float32 CPU, stride 1, no
autograd needed, not tracing or exporting), else on an exact torch fallback (the dense weight
rebuilt with ``index_put``, then ``F.conv2d``), so the choice never changes the result. The
output pass can add a residual and apply a ReLU (``activation="relu"``), as a fused epilogue.

>>> import torch
>>> from torch.nn.utils import prune
>>> conv = torch.nn.Conv2d(6, 4, 3, padding=1)
>>> keep = torch.rand(4, 6, generator=torch.Generator().manual_seed(0)) < 0.5
>>> conv = prune.custom_from_mask(conv, "weight", keep[:, :, None, None].expand(4, 6, 3, 3))
>>> sparse = SliceSparseConv2d.from_masked(conv)
>>> tuple(sparse.weight.shape) == (int(keep.sum()), 3, 3)  # one (kh, kw) slice per kept pair
True
>>> x = torch.randn(2, 6, 5, 5)
>>> torch.allclose(sparse(x), conv(x), atol=1e-5)
True
>>> residual = torch.randn(2, 4, 5, 5)
>>> sparse.activation = "relu"
>>> torch.allclose(sparse(x, residual), torch.relu(conv(x) + residual), atol=1e-5)
True
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.utils import _pair

from topoprune.compact import slice_kernel
from topoprune.compact.epilogue import NO_CLAMP, RELU, Clamp, apply_epilogue
from topoprune.compact.masked import StandsForMaskedConv, masked_weight, require_compactable
from topoprune.compact.native_call import can_run_natively
from topoprune.compact.structure import slice_support
from topoprune.errors import TopopruneError

Activation = Literal["relu"] | None
ACTIVATIONS: dict[str | None, Clamp] = {None: NO_CLAMP, "relu": RELU}


def csr_from_support(support: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(row_ptr, col, row)`` of a (rows, cols) 0/1 or bool matrix, entries in row-major order.

    ``row_ptr`` (rows + 1,), ``col`` and ``row`` (nnz,), int64 on ``support``'s device.

    >>> row_ptr, col, row = csr_from_support(torch.tensor([[0, 1, 1], [0, 0, 0], [1, 0, 0]]))
    >>> row_ptr.tolist(), col.tolist(), row.tolist()
    ([0, 2, 2, 3], [1, 2, 0], [0, 0, 2])
    """
    row, col = torch.nonzero(support != 0, as_tuple=True)
    counts = torch.bincount(row, minlength=support.shape[0])
    row_ptr = torch.zeros(support.shape[0] + 1, dtype=torch.int64, device=support.device)
    row_ptr[1:] = torch.cumsum(counts, 0)
    return row_ptr, col.contiguous(), row.contiguous()


def csr_rows(row_ptr: torch.Tensor) -> torch.Tensor:
    """``row_ptr`` (rows + 1,) expanded: (nnz,) int64, the row of each stored entry.

    >>> csr_rows(torch.tensor([0, 2, 2, 3])).tolist()
    [0, 0, 2]
    """
    counts = row_ptr[1:] - row_ptr[:-1]
    rows = torch.arange(counts.numel(), device=row_ptr.device)
    return torch.repeat_interleave(rows, counts)


def _int_padding(
    padding: int | tuple[int, int] | str, kernel_size: tuple[int, int], dilation: tuple[int, int]
) -> tuple[int, int] | str:
    """``padding`` as two ints where it has that form: ``"valid"`` is 0, ``"same"`` is half the
    dilated kernel reach when that is even on both axes (otherwise torch pads one side more and
    the string stays, for the torch path)."""
    if padding == "valid":
        return (0, 0)
    if padding == "same":
        reach = [d * (k - 1) for d, k in zip(dilation, kernel_size, strict=True)]
        return (reach[0] // 2, reach[1] // 2) if reach[0] % 2 == reach[1] % 2 == 0 else "same"
    return _pair(padding)


class SliceSparseConv2d(StandsForMaskedConv, nn.Module):
    """A conv computing with its kept (out, in) kernel slices only, stored as CSR.

    Parameters: ``weight`` (nnz, kh, kw) and ``bias`` (C_out,) or None. Buffers ``row_ptr``
    (C_out + 1,) and ``col`` (nnz,), int64: output channel ``o`` reads input channels
    ``col[row_ptr[o]:row_ptr[o + 1]]`` with weights ``weight[row_ptr[o]:row_ptr[o + 1]]``.
    Input (B, C_in, H, W) → output (B, C_out, H', W'), the same shapes as the masked
    ``nn.Conv2d``. ``activation`` (``"relu"`` or None) is applied last, after the optional
    ``residual`` of ``forward``. ``mode`` picks the native kernel's form (see
    ``topoprune.compact.slice_kernel.MODES``; ``"auto"`` by default).
    """

    def __init__(
        self,
        row_ptr: torch.Tensor,
        col: torch.Tensor,
        in_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] | str = 0,
        dilation: int | tuple[int, int] = 1,
        bias: bool = True,
        *,
        activation: Activation = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise TopopruneError(f"activation must be 'relu' or None, not {activation!r}")
        self.in_channels = in_channels
        self.out_channels = row_ptr.numel() - 1
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride)
        self.dilation = _pair(dilation)
        self.padding = _int_padding(padding, self.kernel_size, self.dilation)
        self.activation: Activation = activation
        self.mode = "auto"
        nnz = col.numel()
        self.weight = nn.Parameter(torch.zeros(nnz, *self.kernel_size, device=device, dtype=dtype))
        self.bias = (
            nn.Parameter(torch.zeros(self.out_channels, device=device, dtype=dtype))
            if bias
            else None
        )
        self.register_buffer("row_ptr", row_ptr.to(device=device, dtype=torch.int64))
        self.register_buffer("col", col.to(device=device, dtype=torch.int64))
        # kept with the module, not recomputed per call: ONNX has no repeat_interleave to export
        self.register_buffer("row", csr_rows(self.row_ptr), persistent=False)

    @classmethod
    def from_masked(cls, conv: nn.Conv2d) -> SliceSparseConv2d:
        """The CSR form of a masked conv (prune convention), the kept slices read from its mask.

        Raises TopopruneError when ``conv`` has no weight mask, is grouped or not zero-padded, or
        its mask keeps part of some kernel slice (element-wise masks: keep those dense).
        """
        require_compactable(conv, "SliceSparseConv2d")
        support = slice_support(conv.weight_mask)
        if support is None:
            raise TopopruneError(
                "this conv's mask keeps part of some kernel slices (an element-wise mask); "
                "SliceSparseConv2d needs every (out, in) slice kept whole or removed whole"
            )
        row_ptr, col, row = csr_from_support(support)
        weight = conv.weight_orig
        layer = cls(
            row_ptr.cpu(),
            col.cpu(),
            conv.in_channels,
            conv.kernel_size,
            conv.stride,
            conv.padding,
            conv.dilation,
            bias=conv.bias is not None,
            device=weight.device,
            dtype=weight.dtype,
        )
        with torch.no_grad():
            layer.weight.copy_(masked_weight(conv)[row, col])
            if conv.bias is not None:
                layer.bias.copy_(conv.bias)
        return layer

    def rows(self) -> torch.Tensor:
        """(nnz,) int64: the output channel of each kept slice (``row_ptr`` expanded)."""
        return self.row

    def dense_weight(self) -> torch.Tensor:
        """The equivalent dense (C_out, C_in, kh, kw) weight, zero outside the kept slices.

        Differentiable with respect to ``weight``.
        """
        dense = self.weight.new_zeros(self.out_channels, self.in_channels, *self.kernel_size)
        return dense.index_put((self.rows(), self.col), self.weight)

    def kept_slices(self) -> int:
        """The (out, in) kernel slices kept."""
        return self.col.numel()

    def channel_mask(self) -> torch.Tensor:
        """(C_out, C_in) 0/1 support, in the weight's dtype and device."""
        mask = self.weight.new_zeros(self.out_channels, self.in_channels)
        mask[self.rows(), self.col] = 1.0
        return mask

    @torch.no_grad()
    def scale_outputs(self, scale: torch.Tensor, shift: torch.Tensor) -> None:
        """Fold a per-output-channel affine map in: ``conv'(x) = scale * conv(x) + shift``.

        ``scale`` and ``shift`` (C_out,): a BatchNorm in eval mode, for instance. Adds a bias
        when there was none. Refused (TopopruneError) with an ``activation``, which comes first.
        """
        if self.activation is not None:
            raise TopopruneError(
                "cannot fold an affine map after this conv's activation into its weights; "
                "set activation=None first"
            )
        self.weight.mul_(scale[self.rows()].to(self.weight)[:, None, None])
        bias = shift.clone() if self.bias is None else self.bias * scale + shift
        self.bias = nn.Parameter(bias.to(self.weight))

    def direct_supported(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> bool:
        """Whether the native kernel can compute this layer on ``x`` (and ``residual``) with no
        autograd needed."""
        return (
            can_run_natively(self, x, residual)
            and x.dim() == 4
            and self.stride == (1, 1)
            and not isinstance(self.padding, str)
            and slice_kernel.slice_kernel_available()
        )

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        """``activation(conv(x) + residual)``: ``x`` (B, C_in, H, W), ``residual``
        (B, C_out, H', W') or None → (B, C_out, H', W')."""
        return self._run(x, residual, ACTIVATIONS[self.activation])

    def fused_forward(
        self, x: torch.Tensor, residual: torch.Tensor | None = None, clamp: Clamp = NO_CLAMP
    ) -> torch.Tensor:
        """``clamp(self(x) + residual)``, in the native kernel's output pass where it runs: the
        interface of ``topoprune.compact.fuse.FusedConv2d``. ``clamp`` as in
        ``topoprune.compact.epilogue``."""
        if self.activation is not None:  # activation first, then the residual and clamp
            return apply_epilogue(self(x), residual, clamp)
        return self._run(x, residual, clamp)

    def _run(self, x: torch.Tensor, residual: torch.Tensor | None, clamp: Clamp) -> torch.Tensor:
        if self.direct_supported(x, residual) and x.shape[1] == self.in_channels:
            out_shape = self._output_shape(x)
            # anything else (an input smaller than the kernel, a residual that broadcasts) goes
            # to torch, which raises or broadcasts as the masked conv would
            if min(out_shape[2:]) >= 1 and (residual is None or residual.shape == out_shape):
                return slice_kernel.slice_conv2d(
                    x,
                    self.weight,
                    self.row_ptr,
                    self.col,
                    self.bias,
                    self.padding,
                    self.dilation,
                    residual=residual,
                    clamp=clamp,
                    mode=self.mode,
                )
        y = F.conv2d(x, self.dense_weight(), self.bias, self.stride, self.padding, self.dilation)
        return apply_epilogue(y, residual, clamp)

    def _output_shape(self, x: torch.Tensor) -> torch.Size:
        (kh, kw), (ph, pw), (dh, dw) = self.kernel_size, self.padding, self.dilation
        height = x.shape[2] + 2 * ph - dh * (kh - 1)
        width = x.shape[3] + 2 * pw - dw * (kw - 1)
        return torch.Size((x.shape[0], self.out_channels, height, width))

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
            f"kept_slices={self.col.numel()}/{self.out_channels * self.in_channels}"
            + (f", activation={self.activation!r}" if self.activation else "")
            + (f", mode={self.mode!r}" if self.mode != "auto" else "")
            + (", bias=False" if self.bias is None else "")
        )
