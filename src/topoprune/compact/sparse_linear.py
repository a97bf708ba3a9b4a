"""SparseLinear: a masked ``nn.Linear`` storing and multiplying only its kept weights (CSR).

Built from a linear layer pruned with ``torch.nn.utils.prune`` (element-wise masks welcome),
``SparseLinear.from_masked`` keeps the kept weights row by row: output ``o`` reads inputs
``col[row_ptr[o]:row_ptr[o + 1]]`` with the matching entries of ``weight``. Very sparse layers
(LeNet-5's fully connected layers keep 3%) then cost a few multiply-adds per output.

It runs on the native kernel of :mod:`topoprune.compact.slice_kernel` (float32 CPU, no autograd
needed, not tracing or exporting): measured on a 2-core AVX-512 machine, it beat both the dense
layer and ``torch.sparse.mm`` with a CSR weight (whose fixed cost, tens of microseconds, loses to
the dense layer on small layers). Otherwise, for training, it computes exactly the masked layer
with torch: ``F.linear`` with the dense weight rebuilt by ``index_put`` (differentiable; the
removed weights stay zero and get no gradient). ``activation="relu"`` applies a ReLU in the same
output pass.

>>> import torch
>>> from torch.nn.utils import prune
>>> linear = torch.nn.Linear(20, 6)
>>> keep = torch.rand(6, 20, generator=torch.Generator().manual_seed(0)) < 0.2
>>> linear = prune.custom_from_mask(linear, "weight", keep)
>>> sparse = SparseLinear.from_masked(linear)
>>> sparse.weight.numel() == int(keep.sum())
True
>>> x = torch.randn(3, 20)
>>> torch.allclose(sparse(x), linear(x), atol=1e-6)
True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import prune

from topoprune.compact import slice_kernel
from topoprune.compact.epilogue import apply_epilogue
from topoprune.compact.native_call import can_run_natively
from topoprune.compact.sparse_conv import ACTIVATIONS, Activation, csr_from_support, csr_rows
from topoprune.errors import TopopruneError


def is_masked_linear(module: nn.Module) -> bool:
    """Whether ``module`` is an ``nn.Linear`` with a pruning mask on its weight."""
    return (
        isinstance(module, nn.Linear)
        and hasattr(module, "weight_mask")
        and hasattr(module, "weight_orig")
    )


class SparseLinear(nn.Module):
    """A linear layer computing with its kept weights only, stored as CSR.

    Parameters: ``weight`` (nnz,) and ``bias`` (out_features,) or None. Buffers ``row_ptr``
    (out_features + 1,) and ``col`` (nnz,), int64: output ``o`` sums ``weight[k] * x[..., col[k]]``
    for ``k`` in ``row_ptr[o]:row_ptr[o + 1]``. Input (..., in_features) → output
    (..., out_features), as for ``nn.Linear``. ``activation`` (``"relu"`` or None) is applied
    last.
    """

    def __init__(
        self,
        row_ptr: torch.Tensor,
        col: torch.Tensor,
        in_features: int,
        bias: bool = True,
        *,
        activation: Activation = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise TopopruneError(f"activation must be 'relu' or None, not {activation!r}")
        self.in_features = in_features
        self.out_features = row_ptr.numel() - 1
        self.activation: Activation = activation
        self.weight = nn.Parameter(torch.zeros(col.numel(), device=device, dtype=dtype))
        self.bias = (
            nn.Parameter(torch.zeros(self.out_features, device=device, dtype=dtype))
            if bias
            else None
        )
        self.register_buffer("row_ptr", row_ptr.to(device=device, dtype=torch.int64))
        self.register_buffer("col", col.to(device=device, dtype=torch.int64))
        self.register_buffer("row", csr_rows(self.row_ptr), persistent=False)  # see sparse_conv

    @classmethod
    def from_masked(cls, linear: nn.Linear) -> SparseLinear:
        """The CSR form of a masked ``nn.Linear`` (prune convention), the kept weights read from
        its mask. Raises TopopruneError when ``linear`` has no weight mask."""
        if not is_masked_linear(linear):
            raise TopopruneError(
                "SparseLinear.from_masked needs an nn.Linear pruned with torch.nn.utils.prune "
                "(weight_orig + weight_mask); apply a mask first"
            )
        row_ptr, col, row = csr_from_support(linear.weight_mask.detach())
        weight = linear.weight_orig
        layer = cls(
            row_ptr.cpu(),
            col.cpu(),
            linear.in_features,
            bias=linear.bias is not None,
            device=weight.device,
            dtype=weight.dtype,
        )
        with torch.no_grad():
            layer.weight.copy_((linear.weight_orig * linear.weight_mask)[row, col])
            if linear.bias is not None:
                layer.bias.copy_(linear.bias)
        return layer

    def rows(self) -> torch.Tensor:
        """(nnz,) int64: the output of each kept weight (``row_ptr`` expanded)."""
        return self.row

    def dense_weight(self) -> torch.Tensor:
        """The equivalent dense (out_features, in_features) weight, zero where removed.

        Differentiable with respect to ``weight``.
        """
        dense = self.weight.new_zeros(self.out_features, self.in_features)
        return dense.index_put((self.rows(), self.col), self.weight)

    def weight_mask(self) -> torch.Tensor:
        """(out_features, in_features) 0/1 mask of the kept weights, in the weight's dtype."""
        mask = self.weight.new_zeros(self.out_features, self.in_features)
        mask[self.rows(), self.col] = 1.0
        return mask

    def param_counts(self) -> tuple[int, int]:
        """``(params, dense_params)`` for :func:`topoprune.count`: the kept weights plus the bias,
        and the same for the dense layer it stands for."""
        bias = 0 if self.bias is None else self.out_features
        return self.col.numel() + bias, self.out_features * self.in_features + bias

    def mac_counts(self, x: torch.Tensor, y: torch.Tensor) -> tuple[int, int]:
        """``(macs, dense_macs)`` of one call with output ``y`` (..., out_features): every kept
        weight applied once per row, as for the masked layer."""
        rows = y.numel() // self.out_features if self.out_features else 0
        return rows * self.col.numel(), rows * self.out_features * self.in_features

    def to_masked(self) -> nn.Linear:
        """A dense ``nn.Linear`` with this layer's weights and a prune mask (``weight_mask``).

        Its ``state_dict`` is the masked model's. The ``activation`` is not part of it.
        """
        linear = nn.Linear(
            self.in_features,
            self.out_features,
            bias=self.bias is not None,
            device=self.weight.device,
            dtype=self.weight.dtype,
        )
        with torch.no_grad():
            linear.weight.copy_(self.dense_weight())
            if self.bias is not None:
                linear.bias.copy_(self.bias)
        return prune.custom_from_mask(linear, "weight", self.weight_mask())

    def native_supported(self, x: torch.Tensor) -> bool:
        """Whether the native kernel can compute this layer on ``x`` with no autograd needed."""
        return (
            can_run_natively(self, x)
            and x.dim() >= 1
            and x.shape[-1] == self.in_features
            and slice_kernel.slice_kernel_available()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``activation(x @ dense_weight.T + bias)``: (..., in_features) → (..., out_features)."""
        clamp = ACTIVATIONS[self.activation]
        if not self.native_supported(x):
            return apply_epilogue(F.linear(x, self.dense_weight(), self.bias), None, clamp)
        if x.dim() == 2:
            return slice_kernel.sparse_linear(
                x, self.weight, self.row_ptr, self.col, self.bias, clamp
            )
        rows = x.reshape(-1, self.in_features)
        y = slice_kernel.sparse_linear(rows, self.weight, self.row_ptr, self.col, self.bias, clamp)
        return y.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"kept={self.col.numel()}/{self.out_features * self.in_features}"
            + (f", activation={self.activation!r}" if self.activation else "")
            + (", bias=False" if self.bias is None else "")
        )
