"""The group structure hidden in a conv weight mask: output channels that share one input support.

A mask ``(C_out, C_in, kh, kw)`` whose every kernel slice ``mask[o, i]`` is all ones or all zeros
has a channel *support* ``S[o] = {i : mask[o, i] != 0}``. Output channels with identical supports
form a group; a group's outputs need only its own inputs, so the masked conv equals a grouped conv
over gathered inputs. A regular-graph block mask (``topoprune.pruning.blocks.block_mask``) gives one
group per graph node, holding that node's channel block and reading its k neighbours' blocks.
Groups of unequal size are padded to the largest (index -1): ``G * og * ig`` weights are stored
where the dense conv has ``C_out * C_in``.

>>> import numpy as np
>>> from topoprune.pruning.blocks import block_mask
>>> ring = np.roll(np.eye(8, dtype=int), 1, 1) + np.roll(np.eye(8, dtype=int), -1, 1)
>>> mask = block_mask(ring, 15, 17)[:, :, None, None].expand(15, 17, 3, 3)
>>> found = find_block_structure(mask)
>>> found.groups, found.group_out, found.group_in
(8, 2, 5)
>>> found.out_index[0].tolist(), found.in_index[0].tolist()  # node 0 reads nodes 1 and 7
([0, 1], [3, 4, 15, 16, -1])
>>> found.out_index[7].tolist(), found.in_index[7].tolist()  # node 7 reads nodes 0 and 6
([14, -1], [0, 1, 2, 13, 14])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

MAX_PADDED_FRACTION = 1.0
"""A mask counts as structured when its padded grouped form stores fewer than this share of the
dense conv's weights (by default: fewer weights than the dense conv at all)."""


@dataclass(frozen=True, eq=False)
class BlockStructure:
    """Groups of output channels with one shared input support.

    ``out_index`` (G, og) and ``in_index`` (G, ig) are int64 channel numbers, ascending within a
    row, padded with -1 at the end; every output channel appears exactly once in ``out_index``.
    Groups are ordered by their first output channel.
    """

    out_index: torch.Tensor
    in_index: torch.Tensor
    in_channels: int
    kernel_size: tuple[int, int]

    @property
    def groups(self) -> int:
        return self.out_index.shape[0]

    @property
    def group_out(self) -> int:
        return self.out_index.shape[1]

    @property
    def group_in(self) -> int:
        return self.in_index.shape[1]

    @property
    def out_channels(self) -> int:
        return int((self.out_index >= 0).sum())

    def slot_mask(self) -> torch.Tensor:
        """(G, og, ig) bool: True where both the output row and the input slot are real."""
        return (self.out_index >= 0)[:, :, None] & (self.in_index >= 0)[:, None, :]

    def channel_mask(self) -> torch.Tensor:
        """(C_out, C_in) float 0/1 support matrix this structure stands for."""
        mask = torch.zeros(self.out_channels, self.in_channels)
        real = self.slot_mask()
        rows = self.out_index[:, :, None].expand(real.shape)[real]
        cols = self.in_index[:, None, :].expand(real.shape)[real]
        mask[rows, cols] = 1.0
        return mask

    def padded_fraction(self) -> float:
        """Stored weights of the padded grouped form over the dense conv's: G*og*ig/(C_out*C_in)."""
        stored = self.groups * self.group_out * self.group_in
        return stored / (self.out_channels * self.in_channels)


def _padded_rows(row_of: np.ndarray, values: np.ndarray, rows: int) -> np.ndarray:
    """Put ``values[j]`` into row ``row_of[j]`` (``row_of`` sorted), left-aligned, -1 padded."""
    counts = np.bincount(row_of, minlength=rows)
    table = np.full((rows, max(1, int(counts.max(initial=0)))), -1, dtype=np.int64)
    starts = np.cumsum(counts) - counts
    table[row_of, np.arange(row_of.size) - starts[row_of]] = values
    return table


def slice_support(mask: torch.Tensor) -> torch.Tensor | None:
    """(C_out, C_in) bool: the kernel slices a conv weight mask (C_out, C_in, kh, kw) keeps, when
    every slice is kept whole or removed whole; None for a mask that keeps part of a slice."""
    kept = (mask.detach() != 0).flatten(2)
    support = kept.any(dim=2)
    return support if torch.equal(support, kept.all(dim=2)) else None


def find_block_structure(
    mask: torch.Tensor, max_padded_fraction: float = MAX_PADDED_FRACTION
) -> BlockStructure | None:
    """The group structure of a conv weight mask ``(C_out, C_in, kh, kw)``, or None if it has none.

    None when some kernel slice is partly masked (element-wise masks) or when the padded grouped
    form would not store fewer than ``max_padded_fraction`` of the dense weights (for instance a
    mask of all ones, one group reading every channel).
    """
    out_channels, in_channels, kernel_h, kernel_w = mask.shape
    support = slice_support(mask)
    if support is None:
        return None
    rows = support.cpu().numpy()
    _, first, inverse = np.unique(rows, axis=0, return_index=True, return_inverse=True)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first)] = np.arange(first.size)
    group_of = rank[inverse.ravel()]
    members = np.argsort(group_of, kind="stable")
    out_index = _padded_rows(group_of[members], members, first.size)
    group_rows, in_channel = np.nonzero(rows[out_index[:, 0]])
    in_index = _padded_rows(group_rows, in_channel, first.size)
    structure = BlockStructure(
        out_index=torch.from_numpy(out_index),
        in_index=torch.from_numpy(in_index),
        in_channels=in_channels,
        kernel_size=(kernel_h, kernel_w),
    )
    if structure.padded_fraction() >= max_padded_fraction:
        return None
    return structure
