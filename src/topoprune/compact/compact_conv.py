"""CompactConv2d: a block-masked conv stored and run as a grouped conv over gathered channels.

Built from a masked ``nn.Conv2d`` (``CompactConv2d.from_masked``), it keeps only the weights of
the mask's groups (see ``topoprune.compact.structure``) and computes the same outputs. Two ways
to run it, ``impl``:

- ``"grouped"`` (pure torch, trains): gather each group's input channels, one ``conv2d`` with
  ``groups=G``, then put the output channels back in order when groups are padded or permuted;
- ``"direct"``: the native kernel (``topoprune.compact.kernel``), no gather copy, float32 on CPU,
  stride 1. It has no backward: whenever autograd needs one (training), and for inputs it does not
  cover, the layer runs ``"grouped"`` instead, so ``impl`` never changes the result.

Padded weight slots (groups of unequal size) are multiplied by a fixed 0/1 mask, so they stay
zero and get zero gradients: the real weights train exactly like the masked conv's.

>>> import numpy as np, torch
>>> from torch.nn.utils import prune
>>> from topoprune.pruning.blocks import block_mask
>>> ring = np.roll(np.eye(8, dtype=int), 1, 1) + np.roll(np.eye(8, dtype=int), -1, 1)
>>> conv = torch.nn.Conv2d(17, 15, 3, padding=1)
>>> mask = block_mask(ring, 15, 17)[:, :, None, None].expand_as(conv.weight)
>>> conv = prune.custom_from_mask(conv, "weight", mask)
>>> compact = CompactConv2d.from_masked(conv)
>>> tuple(compact.weight.shape)  # 8 groups, <= 2 outputs each, <= 5 gathered inputs each
(8, 2, 5, 3, 3)
>>> x = torch.randn(2, 17, 8, 8)
>>> torch.allclose(compact(x), conv(x), atol=1e-5)
True
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.utils import _pair

from topoprune.compact import kernel
from topoprune.compact.epilogue import NO_CLAMP, Clamp, apply_epilogue
from topoprune.compact.masked import StandsForMaskedConv, masked_weight, require_compactable
from topoprune.compact.native_call import can_run_natively
from topoprune.compact.structure import BlockStructure, find_block_structure
from topoprune.errors import TopopruneError

Impl = Literal["grouped", "direct"]


class CompactConv2d(StandsForMaskedConv, nn.Module):
    """A conv whose output channel groups each read a gathered subset of the input channels.

    Parameters: ``weight`` (G, og, ig, kh, kw) and ``bias`` (C_out,) or None. Buffers
    ``out_index`` (G, og) and ``in_index`` (G, ig) hold the structure (-1 = padding). Input
    (B, C_in, H, W) → output (B, C_out, H', W'), the same shapes as the masked ``nn.Conv2d``.
    ``padding`` may be ints or ``"same"``/``"valid"`` as for ``nn.Conv2d`` (zero padding only).
    """

    def __init__(
        self,
        structure: BlockStructure,
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] | str = 0,
        dilation: int | tuple[int, int] = 1,
        bias: bool = True,
        *,
        impl: Impl = "grouped",
        tile: tuple[int, int] = (1, 1),
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.in_channels = structure.in_channels
        self.out_channels = structure.out_channels
        self.kernel_size = structure.kernel_size
        self.stride = _pair(stride)
        self.padding = padding if isinstance(padding, str) else _pair(padding)
        self.dilation = _pair(dilation)
        self.impl: Impl = impl
        self.tile = tile
        shape = (structure.groups, structure.group_out, structure.group_in, *self.kernel_size)
        self.weight = nn.Parameter(torch.zeros(shape, device=device, dtype=dtype))
        self.bias = (
            nn.Parameter(torch.zeros(self.out_channels, device=device, dtype=dtype))
            if bias
            else None
        )
        self.register_buffer("out_index", structure.out_index.to(device))
        self.register_buffer("in_index", structure.in_index.to(device))
        slots = structure.slot_mask()
        padded_slots = None if bool(slots.all()) else slots[..., None, None].to(device, dtype)
        self.register_buffer("slot_mask", padded_slots, persistent=False)
        in_gather = structure.in_index.clamp(min=0).flatten().to(device)
        out_gather = self._output_positions(structure)
        self.register_buffer("in_gather", in_gather, persistent=False)
        self.register_buffer(
            "out_gather", None if out_gather is None else out_gather.to(device), persistent=False
        )

    @staticmethod
    def _output_positions(structure: BlockStructure) -> torch.Tensor | None:
        """Where each output channel sits in the grouped result (G*og); None if in place."""
        flat = structure.out_index.flatten()
        real = torch.nonzero(flat >= 0).flatten()
        positions = torch.empty(structure.out_channels, dtype=torch.int64)
        positions[flat[real]] = real
        in_place = flat.numel() == structure.out_channels and torch.equal(
            positions, torch.arange(structure.out_channels)
        )
        return None if in_place else positions

    @classmethod
    def from_masked(cls, conv: nn.Conv2d, *, impl: Impl = "grouped") -> CompactConv2d:
        """The compact form of a masked conv (prune convention), structure read from its mask.

        Raises TopopruneError when ``conv`` has no weight mask, is grouped or not zero-padded, or
        its mask has no block structure (``find_block_structure`` returns None).
        """
        require_compactable(conv, "CompactConv2d")
        structure = find_block_structure(conv.weight_mask)
        if structure is None:
            raise TopopruneError(
                "this conv's mask has no block structure (kernel slices partly masked, or no "
                "fewer weights when grouped); keep it dense"
            )
        weight = conv.weight_orig
        layer = cls(
            structure,
            conv.stride,
            conv.padding,
            conv.dilation,
            bias=conv.bias is not None,
            impl=impl,
            device=weight.device,
            dtype=weight.dtype,
        )
        layer.load_dense(masked_weight(conv), conv.bias)
        return layer

    def slot_indices(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Where the real weights sit: ``(mask, rows, cols)``.

        ``mask`` (G, og, ig) is True at real (unpadded) slots; ``rows`` and ``cols`` give the
        dense output and input channel of each real slot, in ``weight[mask]`` order.
        """
        real = (self.out_index >= 0)[:, :, None] & (self.in_index >= 0)[:, None, :]
        rows = self.out_index[:, :, None].expand(real.shape)[real]
        cols = self.in_index[:, None, :].expand(real.shape)[real]
        return real, rows, cols

    @torch.no_grad()
    def load_dense(self, weight: torch.Tensor, bias: torch.Tensor | None = None) -> None:
        """Copy a dense (C_out, C_in, kh, kw) weight's in-structure entries (and the bias) in."""
        real, rows, cols = self.slot_indices()
        self.weight.zero_()
        self.weight[real] = weight[rows, cols].to(self.weight)
        if self.bias is not None and bias is not None:
            self.bias.copy_(bias)

    def dense_weight(self) -> torch.Tensor:
        """The equivalent dense (C_out, C_in, kh, kw) weight, zero outside the structure.

        Differentiable with respect to ``weight``.
        """
        real, rows, cols = self.slot_indices()
        dense = self.weight.new_zeros(self.out_channels, self.in_channels, *self.kernel_size)
        return dense.index_put((rows, cols), self.weight[real])

    def kept_slices(self) -> int:
        """The (out, in) kernel slices in real slots (padding slots hold zeros)."""
        return int(self.slot_indices()[1].numel())

    def channel_mask(self) -> torch.Tensor:
        """(C_out, C_in) 0/1 support, in the weight's dtype and device."""
        _, rows, cols = self.slot_indices()
        mask = self.weight.new_zeros(self.out_channels, self.in_channels)
        mask[rows, cols] = 1.0
        return mask

    def direct_supported(self, x: torch.Tensor) -> bool:
        """Whether the native kernel can compute this layer on ``x`` (no autograd needed)."""
        return (
            can_run_natively(self, x)
            and x.dim() == 4
            and self.stride == (1, 1)
            and not isinstance(self.padding, str)
            and self.weight.shape[1] % self.tile[0] == 0
            and kernel.kernel_available()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fused_forward(x)

    def fused_forward(
        self, x: torch.Tensor, residual: torch.Tensor | None = None, clamp: Clamp = NO_CLAMP
    ) -> torch.Tensor:
        """``clamp(conv(x) + residual)``, in the native kernel's output pass where it runs.

        ``residual`` (B, C_out, H', W') or None; ``clamp`` as in ``topoprune.compact.epilogue``.
        """
        if self.impl == "direct" and self.direct_supported(x):
            return kernel.block_conv2d(
                x,
                self.weight,
                self.in_index,
                self.out_index,
                self.bias,
                self.out_channels,
                self.padding,
                self.dilation,
                self.tile,
                residual,
                clamp,
            )
        return apply_epilogue(self._grouped(x), residual, clamp)

    @torch.no_grad()
    def scale_outputs(self, scale: torch.Tensor, shift: torch.Tensor) -> None:
        """Fold a per-output-channel affine map in: ``conv'(x) = scale * conv(x) + shift``.

        ``scale`` and ``shift`` (C_out,): a BatchNorm in eval mode, for instance. Adds a bias
        when there was none.
        """
        rows = self.out_index.clamp(min=0)
        real = (self.out_index >= 0).to(self.weight.dtype)
        self.weight.mul_((scale[rows] * real)[:, :, None, None, None])
        bias = shift.clone() if self.bias is None else self.bias * scale + shift
        self.bias = nn.Parameter(bias.to(self.weight))

    def _grouped(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight if self.slot_mask is None else self.weight * self.slot_mask
        bias = None
        if self.bias is not None:
            padded = F.pad(self.bias, (0, 1))  # index -1 reads the appended zero
            bias = padded[self.out_index.flatten()]
        y = F.conv2d(
            x.index_select(1, self.in_gather),
            weight.flatten(0, 1),
            bias,
            self.stride,
            self.padding,
            self.dilation,
            groups=self.weight.shape[0],
        )
        return y if self.out_gather is None else y.index_select(1, self.out_gather)

    def extra_repr(self) -> str:
        groups, group_out, group_in = self.weight.shape[:3]
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
            f"groups={groups}x(out {group_out}, in {group_in}), impl={self.impl!r}"
            + (f", tile={self.tile}" if self.impl == "direct" else "")
            + (", bias=False" if self.bias is None else "")
        )
