import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from topoprune.compact.structure import find_block_structure
from topoprune.pruning.blocks import block_mask, node_of_channel

from .helpers import circulant, random_rows


def kernel_mask(channel_mask: torch.Tensor, kernel: tuple[int, int] = (3, 3)) -> torch.Tensor:
    return channel_mask[:, :, None, None].expand(*channel_mask.shape, *kernel)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(3, 9),
    k=st.integers(1, 3),
    extra_out=st.integers(0, 9),
    extra_in=st.integers(0, 9),
    seed=st.integers(0, 10_000),
)
def test_structure_reproduces_any_block_mask(n, k, extra_out, extra_in, seed):
    k = min(k, n - 1)
    adj = random_rows(n, k, seed)
    out_channels, in_channels = n + extra_out, n + extra_in
    channel_mask = block_mask(adj, out_channels, in_channels)
    found = find_block_structure(kernel_mask(channel_mask), max_padded_fraction=float("inf"))
    assert torch.equal(found.channel_mask(), channel_mask)
    # one group per distinct neighbour set; each output channel exactly once
    assert found.groups == len({tuple(row) for row in adj.tolist()})
    real_out = found.out_index[found.out_index >= 0]
    assert sorted(real_out.tolist()) == list(range(out_channels))
    # in a group, outputs and inputs are ascending, padding only at the end
    for table in (found.out_index, found.in_index):
        for row in table.tolist():
            real = [c for c in row if c >= 0]
            assert real == sorted(real) and row[: len(real)] == real


def test_regular_graph_gives_one_group_per_node_with_k_blocks():
    adj = circulant(64, 4)
    found = find_block_structure(kernel_mask(block_mask(adj, 128, 128)))
    assert (found.groups, found.group_out, found.group_in) == (64, 2, 8)
    assert found.padded_fraction() == 4 / 64
    nodes = node_of_channel(128, 64)
    for group in range(64):
        assert set(nodes[found.out_index[group]].tolist()) == {group}
        assert set(nodes[found.in_index[group]].tolist()) == set(np.flatnonzero(adj[group]))


def test_uneven_blocks_are_padded_with_minus_one():
    found = find_block_structure(kernel_mask(block_mask(circulant(8, 2), 15, 17)))
    assert (found.groups, found.group_out, found.group_in) == (8, 2, 5)
    assert found.out_index[7].tolist() == [14, -1]
    assert found.in_index[0].tolist() == [3, 4, 15, 16, -1]
    assert int(found.slot_mask().sum()) == int(block_mask(circulant(8, 2), 15, 17).sum())


def test_partly_masked_kernel_slices_have_no_structure():
    mask = kernel_mask(block_mask(circulant(8, 2), 16, 16)).clone()
    mask[0, 2, 1, 1] = 0  # one tap inside a kept slice
    assert find_block_structure(mask) is None


def test_elementwise_random_mask_has_no_structure():
    generator = torch.Generator().manual_seed(0)
    mask = (torch.rand(32, 32, 3, 3, generator=generator) < 0.1).float()
    assert find_block_structure(mask) is None


def test_all_ones_mask_saves_nothing_so_has_no_structure():
    assert find_block_structure(torch.ones(8, 8, 3, 3)) is None


def test_padding_threshold_is_respected():
    mask = kernel_mask(block_mask(circulant(8, 2), 16, 16))  # stores 2/8 of the weights
    assert find_block_structure(mask, max_padded_fraction=0.25) is None
    assert find_block_structure(mask, max_padded_fraction=0.26) is not None


def test_empty_rows_form_a_group_reading_nothing():
    channel_mask = block_mask(circulant(8, 2), 16, 16)
    channel_mask[3] = 0
    found = find_block_structure(kernel_mask(channel_mask))
    assert torch.equal(found.channel_mask(), channel_mask)
    empty = [g for g in range(found.groups) if (found.in_index[g] < 0).all()]
    assert len(empty) == 1 and found.out_index[empty[0]].tolist()[0] == 3
